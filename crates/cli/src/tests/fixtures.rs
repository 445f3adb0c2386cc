//! API bodies for canned responses, built from the real wire types.

use wharf_api_types::{
    AccountRef, App, Build, BuildpackInstallation, BuildpackRef, Collaborator, CollaboratorUser,
    Dyno, DynoRelease, Formation, IdRef, NamedRef, Release, SourceBlob,
};

const CREATED_AT: &str = "2020-01-01T00:00:00Z";

fn named(name: &str) -> NamedRef {
    NamedRef {
        id: format!("{name}-id"),
        name: name.to_string(),
    }
}

fn account(email: &str) -> AccountRef {
    AccountRef {
        id: format!("{email}-id"),
        email: email.to_string(),
    }
}

pub fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("fixtures serialize")
}

pub fn app(name: &str, owner: &str) -> App {
    App {
        id: format!("{name}-id"),
        name: name.to_string(),
        owner: account(owner),
        region: named("local"),
        stack: named("heroku-24"),
        build_stack: named("heroku-24"),
        generation: named("cedar"),
        web_url: Some(format!("http://{name}.localhost:8080/")),
        git_url: Some(format!("http://127.0.0.1:5000/{name}.git")),
        repo_size: Some(23 * 1024 * 1024),
        slug_size: None,
        maintenance: false,
        acm: false,
        archived_at: None,
        buildpack_provided_description: None,
        internal_routing: None,
        organization: None,
        team: None,
        space: None,
        created_at: CREATED_AT.to_string(),
        updated_at: CREATED_AT.to_string(),
        released_at: None,
    }
}

pub fn release(version: i64, description: &str, current: bool, eligible: bool) -> Release {
    Release {
        id: format!("release-{version}"),
        app: named("myapp"),
        version,
        description: description.to_string(),
        status: "succeeded".to_string(),
        user: account("admin@example.com"),
        slug: Some(IdRef {
            id: "slug-id".to_string(),
        }),
        addon_plan_names: Vec::new(),
        artifacts: Vec::new(),
        current,
        eligible_for_rollback: eligible,
        output_stream_url: None,
        created_at: CREATED_AT.to_string(),
        updated_at: CREATED_AT.to_string(),
    }
}

pub fn formation(process_type: &str, quantity: u32, size: &str) -> Formation {
    Formation {
        id: format!("{process_type}-id"),
        app: named("myapp"),
        process_type: process_type.to_string(),
        command: "run-it".to_string(),
        quantity,
        size: size.to_string(),
        dyno_size: named(size),
        created_at: CREATED_AT.to_string(),
        updated_at: CREATED_AT.to_string(),
    }
}

/// A dyno of `myapp`; its type is its name up to the dot.
pub fn dyno(name: &str, state: &str, command: &str, size: &str) -> Dyno {
    Dyno {
        id: format!("{name}-id"),
        app: named("myapp"),
        name: name.to_string(),
        process_type: name.split('.').next().unwrap_or(name).to_string(),
        state: state.to_string(),
        command: command.to_string(),
        size: size.to_string(),
        attach_url: None,
        release: DynoRelease {
            id: "release-1".to_string(),
            version: 1,
        },
        created_at: CREATED_AT.to_string(),
        updated_at: CREATED_AT.to_string(),
        host: None,
    }
}

pub fn collaborator(email: &str) -> Collaborator {
    Collaborator {
        id: format!("{email}-id"),
        app: named("myapp"),
        user: CollaboratorUser {
            id: format!("{email}-id"),
            email: email.to_string(),
            federated: false,
        },
        role: Some("collaborator".to_string()),
        permissions: Vec::new(),
        created_at: CREATED_AT.to_string(),
        updated_at: CREATED_AT.to_string(),
    }
}

/// A build whose output streams from `{server}/build-output/{id}-output`.
pub fn build(id: &str, status: &str, version: Option<&str>, server: &str) -> Build {
    Build {
        id: id.to_string(),
        app: IdRef {
            id: "myapp-id".to_string(),
        },
        status: status.to_string(),
        buildpacks: vec![BuildpackRef {
            url: "python".to_string(),
            name: "wharf/python".to_string(),
        }],
        source_blob: SourceBlob {
            url: Some(format!("{server}/sources/secret")),
            version: version.map(str::to_string),
            checksum: None,
            version_description: None,
        },
        output_stream_url: format!("{server}/build-output/{id}-output"),
        release: (status == "succeeded").then(|| IdRef {
            id: format!("{id}-release"),
        }),
        slug: None,
        stack: "heroku-24".to_string(),
        user: account("admin@example.com"),
        created_at: CREATED_AT.to_string(),
        updated_at: CREATED_AT.to_string(),
    }
}

/// The app's buildpack list as the API shows it.
pub fn buildpacks(urls: &[&str]) -> Vec<BuildpackInstallation> {
    urls.iter()
        .zip(1..)
        .map(|(url, ordinal)| BuildpackInstallation {
            ordinal,
            buildpack: BuildpackRef {
                url: url.to_string(),
                name: url.to_string(),
            },
        })
        .collect()
}
