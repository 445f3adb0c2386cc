//! Model values as the API shows them (the types of `wharf-api-types`).

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use wharf_api_types as api;
use wharf_build::buildpack::BuildpackSource;
use wharf_model::{
    Account, App, Build, Collaborator, DynoSize, FormationEntry, Release, Slug, StackName,
};

use crate::ApiConfig;

/// Fixed ids for the things Wharf has exactly one of.
const REGION_ID: &str = "3ec0a1f5-2f3b-4c43-a4f2-5f8d4f5b9f10";
const STACK_ID: &str = "5b0e5a2c-8a3d-4b8e-9d61-7c4a0f1e2d30";
const GENERATION_ID: &str = "0e7c2f9b-1d2a-4c7e-8f3b-6a5d4c3b2a10";
/// Wharf runs one region per server.
pub const REGION: &str = "local";
/// Apps run like Heroku's classic ("cedar") generation: Procfile, slugs, buildpacks.
const GENERATION: &str = "cedar";

/// RFC 3339 in UTC to the second, as Heroku shows times: `2026-11-22T10:00:00Z`.
pub fn timestamp(at: OffsetDateTime) -> String {
    let at = at.replace_nanosecond(0).expect("zero nanoseconds is valid");
    at.format(&Rfc3339).expect("UTC timestamps always format")
}

fn named(id: impl ToString, name: impl ToString) -> api::NamedRef {
    api::NamedRef {
        id: id.to_string(),
        name: name.to_string(),
    }
}

fn account_ref(account: &Account) -> api::AccountRef {
    api::AccountRef {
        id: account.id.to_string(),
        email: account.email.to_string(),
    }
}

pub fn account(account: &Account) -> api::Account {
    let created = timestamp(account.created_at);
    api::Account {
        id: account.id.to_string(),
        email: account.email.to_string(),
        name: None,
        created_at: created.clone(),
        updated_at: created,
        last_login: None,
        allow_tracking: false,
        beta: false,
        verified: true,
        federated: false,
        two_factor_authentication: false,
        sms_number: None,
        suspended_at: None,
        delinquent_at: None,
        default_organization: None,
        default_team: None,
        identity_provider: None,
        country_of_residence: None,
        admin: account.admin,
    }
}

pub fn app(app: &App, config: &ApiConfig) -> api::App {
    let build_stack = stack_ref(app.build_stack.as_str());
    api::App {
        id: app.id.to_string(),
        name: app.name.to_string(),
        owner: account_ref(&app.owner),
        region: named(REGION_ID, REGION),
        stack: app
            .release_stack
            .as_deref()
            .map_or_else(|| build_stack.clone(), stack_ref),
        build_stack,
        generation: named(GENERATION_ID, GENERATION),
        web_url: Some(config.web_url(app.name.as_str())),
        git_url: Some(config.git_url(app.name.as_str())),
        repo_size: app.repo_size,
        slug_size: app.slug_size,
        maintenance: app.maintenance,
        acm: false,
        archived_at: None,
        buildpack_provided_description: None,
        internal_routing: None,
        organization: None,
        team: None,
        space: None,
        created_at: timestamp(app.created_at),
        updated_at: timestamp(app.updated_at),
        released_at: app.released_at.map(timestamp),
    }
}

/// A stack by name, with its id when this server offers it (a slug may name another).
fn stack_ref(name: &str) -> api::NamedRef {
    match StackName::parse(name) {
        Ok(stack) => named(stack.id(), stack.as_str()),
        Err(_) => named(STACK_ID, name),
    }
}

/// `GET /stacks`: Heroku's shape; created when Debian released it.
pub fn stack(stack: StackName) -> api::Stack {
    let released = match stack {
        StackName::Debian12 => "2023-06-10T00:00:00Z",
        StackName::Debian13 => "2025-08-09T00:00:00Z",
    };
    api::Stack {
        id: stack.id().to_string(),
        name: stack.as_str().to_owned(),
        state: "public".to_owned(),
        default: stack.is_default(),
        created_at: released.to_owned(),
        updated_at: released.to_owned(),
    }
}

pub fn release(release: &Release, app: &App) -> api::Release {
    let created = timestamp(release.created_at);
    api::Release {
        id: release.id.to_string(),
        app: named(app.id, &app.name),
        version: release.version,
        description: release.description.clone(),
        status: release.status.to_string(),
        user: account_ref(&release.user),
        slug: release.slug_id.map(|id| api::IdRef { id: id.to_string() }),
        addon_plan_names: release.addon_plan_names.clone(),
        artifacts: Vec::new(),
        current: release.current,
        eligible_for_rollback: release.eligible_for_rollback(),
        output_stream_url: None,
        created_at: created.clone(),
        updated_at: created,
    }
}

pub fn formation(entry: &FormationEntry, app: &App) -> api::Formation {
    api::Formation {
        id: entry.id.to_string(),
        app: named(app.id, &app.name),
        process_type: entry.process_type.to_string(),
        command: entry.command.clone(),
        quantity: entry.quantity,
        size: entry.size.name().to_owned(),
        dyno_size: named(size_id(entry.size), entry.size.name()),
        created_at: timestamp(entry.created_at),
        updated_at: timestamp(entry.updated_at),
    }
}

pub fn collaborator(collaborator: &Collaborator) -> api::Collaborator {
    let created = timestamp(collaborator.created_at);
    api::Collaborator {
        id: collaborator.id.to_string(),
        app: named(collaborator.app_id, &collaborator.app_name),
        user: api::CollaboratorUser {
            id: collaborator.account.id.to_string(),
            email: collaborator.account.email.to_string(),
            federated: false,
        },
        role: Some("collaborator".into()),
        permissions: Vec::new(),
        created_at: created.clone(),
        updated_at: created,
    }
}

pub fn slug(slug: &Slug) -> api::Slug {
    let created = timestamp(slug.created_at);
    api::Slug {
        id: slug.id.to_string(),
        process_types: slug.process_types.clone(),
        commit: slug.commit.clone(),
        commit_description: slug.commit_description.clone(),
        buildpack_provided_description: slug.buildpack_provided_description.clone(),
        stack: stack_ref(&slug.stack),
        size: slug.size,
        checksum: slug.checksum.clone(),
        created_at: created.clone(),
        updated_at: created,
    }
}

/// A build; one without a slug yet shows the stack the app builds on.
pub fn build(build: &Build, app: &App, config: &ApiConfig) -> api::Build {
    api::Build {
        id: build.id.to_string(),
        app: api::IdRef {
            id: build.app_id.to_string(),
        },
        status: build.status.to_string(),
        buildpacks: build
            .buildpacks
            .iter()
            .map(|url| buildpack_ref(url))
            .collect(),
        source_blob: api::SourceBlob {
            url: build.source_url.clone(),
            version: build.source_version.clone(),
            checksum: None,
            version_description: None,
        },
        output_stream_url: format!("{}/build-output/{}", config.public_url, build.output_token),
        release: build.release_id.map(|id| api::IdRef { id: id.to_string() }),
        slug: build.slug_id.map(|id| api::IdRef { id: id.to_string() }),
        stack: build
            .stack
            .clone()
            .unwrap_or_else(|| app.build_stack.to_string()),
        user: account_ref(&build.user),
        created_at: timestamp(build.created_at),
        updated_at: timestamp(build.updated_at),
    }
}

fn buildpack_ref(url: &str) -> api::BuildpackRef {
    let name = match BuildpackSource::parse(url) {
        Ok(BuildpackSource::Builtin(name)) => format!("wharf/{name}"),
        // A registered buildpack's name, a git URL, or a path listed before paths were
        // refused (its builds fail and say to register it): shown as written.
        Ok(BuildpackSource::Registered(_) | BuildpackSource::Git { .. }) | Err(_) => url.to_owned(),
    };
    api::BuildpackRef {
        url: url.to_owned(),
        name,
    }
}

/// A registered buildpack; its directory and who registered it only for admins.
pub fn buildpack_registration(
    registration: &wharf_model::BuildpackRegistration,
    admin: bool,
) -> api::BuildpackRegistration {
    api::BuildpackRegistration {
        name: registration.name.clone(),
        dir: admin.then(|| registration.dir.clone()),
        created_at: timestamp(registration.created_at),
        created_by: admin.then(|| account_ref(&registration.created_by)),
    }
}

pub fn buildpack_installations(urls: &[String]) -> Vec<api::BuildpackInstallation> {
    urls.iter()
        .enumerate()
        .map(|(ordinal, url)| api::BuildpackInstallation {
            ordinal: ordinal as u32,
            buildpack: buildpack_ref(url),
        })
        .collect()
}

pub fn dyno(dyno: &wharf_dynos::DynoInfo, app: &App, release_id: String) -> api::Dyno {
    let updated = timestamp(dyno.updated_at);
    api::Dyno {
        id: dyno.id.to_string(),
        app: named(app.id, &app.name),
        name: dyno.name.to_string(),
        process_type: dyno.process_type.clone(),
        state: dyno.state.to_string(),
        command: dyno.command.clone(),
        size: dyno.size.name().to_owned(),
        attach_url: None,
        release: api::DynoRelease {
            id: release_id,
            version: dyno.release_version,
        },
        created_at: updated.clone(),
        updated_at: updated,
        host: None,
    }
}

/// A dyno a host that joined reports (`wharf agent`), with the host's name.
pub fn reported_dyno(
    dyno: &api::AgentDyno,
    app: &App,
    release_id: String,
    host: String,
) -> api::Dyno {
    api::Dyno {
        id: dyno.id.clone(),
        app: named(app.id, &app.name),
        name: dyno.name.clone(),
        process_type: dyno.process_type.clone(),
        state: dyno.state.clone(),
        command: dyno.command.clone(),
        size: dyno.size.clone(),
        attach_url: None,
        release: api::DynoRelease {
            id: release_id,
            version: dyno.release_version,
        },
        created_at: dyno.updated_at.clone(),
        updated_at: dyno.updated_at.clone(),
        host: Some(host),
    }
}

/// A stable id per size, so that clients may name sizes by id.
pub fn size_id(size: DynoSize) -> &'static str {
    match size {
        DynoSize::Eco => "a7a4f8c2-0b1e-4d5f-9c3a-000000000001",
        DynoSize::Basic => "a7a4f8c2-0b1e-4d5f-9c3a-000000000002",
        DynoSize::Standard1X => "a7a4f8c2-0b1e-4d5f-9c3a-000000000003",
        DynoSize::Standard2X => "a7a4f8c2-0b1e-4d5f-9c3a-000000000004",
        DynoSize::PerformanceM => "a7a4f8c2-0b1e-4d5f-9c3a-000000000005",
        DynoSize::PerformanceL => "a7a4f8c2-0b1e-4d5f-9c3a-000000000006",
    }
}

pub fn dyno_size(size: DynoSize) -> api::DynoSize {
    api::DynoSize {
        id: size_id(size).to_owned(),
        name: size.name().to_owned(),
        memory: size.memory_mb() as f64 / 1024.0,
        compute: size.compute(),
        architecture: "amd64".into(),
        cost: None,
        dedicated: matches!(size, DynoSize::PerformanceM | DynoSize::PerformanceL),
        precise_dyno_units: f64::from(size.compute()),
        private_space_only: false,
        generation: named(GENERATION_ID, GENERATION),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn timestamps_are_whole_seconds_in_utc() {
        assert_eq!(
            timestamp(datetime!(2026-11-22 10:00:00.123456 UTC)),
            "2026-11-22T10:00:00Z"
        );
    }
}
