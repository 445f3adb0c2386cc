//! Buildpacks from trusted places only: admins register server directories by name, users
//! add built-in, registered or git buildpacks, and a path on the server is refused with one
//! message whether or not it exists. Also the Builds API's sources expiring.
// A test that cannot go on fails by panicking.
#![allow(clippy::unwrap_used)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use axum::http::StatusCode;
use serde_json::{json, Value};
use support::{Reply, TestApi};

/// A directory with executable `bin/detect` and `bin/compile`.
fn buildpack_dir(root: &Path, name: &str) -> String {
    let dir = root.join(name);
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    for script in ["detect", "compile"] {
        let path = dir.join("bin").join(script);
        std::fs::write(&path, "#!/bin/sh\necho ok\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir.to_str().unwrap().to_owned()
}

async fn register(api: &TestApi, key: &str, name: &str, dir: &str) -> Reply {
    api.call(
        "POST",
        "/buildpack-registrations",
        Some(key),
        Some(json!({"name": name, "dir": dir})),
    )
    .await
}

async fn install(api: &TestApi, key: &str, app: &str, buildpacks: &[&str]) -> Reply {
    let updates: Vec<Value> = buildpacks.iter().map(|b| json!({"buildpack": b})).collect();
    api.call(
        "PUT",
        &format!("/apps/{app}/buildpack-installations"),
        Some(key),
        Some(json!({ "updates": updates })),
    )
    .await
}

fn message(reply: &Reply) -> String {
    reply.body["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn only_admins_register_and_everyone_lists_names() {
    let api = TestApi::new().await;
    let user = api.user("user@example.com").await;
    let root = tempfile::tempdir().unwrap();
    let dir = buildpack_dir(root.path(), "php");

    let refused = register(&api, &user, "php", &dir).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{:?}", refused.body);
    // The refusal does not depend on the body: a non-admin learns nothing about paths.
    let refused_missing = register(&api, &user, "php", "/no/such/dir").await;
    assert_eq!(refused_missing.status, StatusCode::FORBIDDEN);
    assert_eq!(refused_missing.body, refused.body);

    let created = register(&api, &api.admin_key, "php", &dir).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(created.body["name"], "php");
    assert_eq!(created.body["dir"], dir.as_str());
    assert_eq!(created.body["created_by"]["email"], "admin@example.com");

    let as_admin = api
        .call(
            "GET",
            "/buildpack-registrations",
            Some(&api.admin_key),
            None,
        )
        .await;
    assert_eq!(as_admin.status, StatusCode::OK);
    assert_eq!(as_admin.body[0]["dir"], dir.as_str());
    let as_user = api
        .call("GET", "/buildpack-registrations", Some(&user), None)
        .await;
    assert_eq!(as_user.status, StatusCode::OK);
    assert_eq!(as_user.body[0]["name"], "php");
    assert_eq!(as_user.body[0]["dir"], Value::Null, "{:?}", as_user.body);
    assert_eq!(as_user.body[0]["created_by"], Value::Null);

    let not_yours = api
        .call("DELETE", "/buildpack-registrations/php", Some(&user), None)
        .await;
    assert_eq!(not_yours.status, StatusCode::FORBIDDEN);
    let removed = api
        .call(
            "DELETE",
            "/buildpack-registrations/php",
            Some(&api.admin_key),
            None,
        )
        .await;
    assert_eq!(removed.status, StatusCode::OK, "{:?}", removed.body);
    assert_eq!(removed.body["name"], "php");
    let again = api
        .call(
            "DELETE",
            "/buildpack-registrations/php",
            Some(&api.admin_key),
            None,
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn registration_checks_the_name_and_the_directory() {
    let api = TestApi::new().await;
    let admin = api.admin_key.clone();
    let root = tempfile::tempdir().unwrap();
    let good = buildpack_dir(root.path(), "good");
    let no_compile = buildpack_dir(root.path(), "no-compile");
    std::fs::remove_file(Path::new(&no_compile).join("bin/compile")).unwrap();
    let not_executable = buildpack_dir(root.path(), "not-executable");
    std::fs::set_permissions(
        Path::new(&not_executable).join("bin/detect"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let file = root.path().join("file");
    std::fs::write(&file, "").unwrap();

    for (name, dir, says) in [
        ("python", good.as_str(), "built-in"),
        ("Go", good.as_str(), "invalid"),
        ("heroku/go", good.as_str(), "invalid"),
        ("php", "relative/dir", "not an absolute path"),
        ("php", "/no/such/dir", "does not exist"),
        ("php", file.to_str().unwrap(), "not a directory"),
        ("php", no_compile.as_str(), "has no bin/compile"),
        (
            "php",
            not_executable.as_str(),
            "bin/detect that is not executable",
        ),
        ("php", &format!("{good}/../good"), ".."),
    ] {
        let reply = register(&api, &admin, name, dir).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{name} {dir}: {:?}",
            reply.body
        );
        assert!(
            message(&reply).contains(says),
            "{name} {dir}: {:?}",
            reply.body
        );
    }
    // The directory is kept as written, without `.` or a trailing slash.
    let created = register(&api, &admin, "php", &format!("{good}/./")).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(created.body["dir"], good.as_str());
    let twice = register(&api, &admin, "php", &good).await;
    assert_eq!(twice.status, StatusCode::CONFLICT);
    assert!(
        message(&twice).contains("registered already"),
        "{:?}",
        twice.body
    );
}

#[tokio::test]
async fn server_paths_are_refused_alike_whether_they_exist_or_not() {
    let api = TestApi::new().await;
    let user = api.user("user@example.com").await;
    api.app(&user, "pathy").await;

    let existing = install(&api, &user, "pathy", &["/usr/share"]).await;
    let missing = install(&api, &user, "pathy", &["/no/such/dir"]).await;
    let unknown = install(&api, &user, "pathy", &["unregistered"]).await;
    for reply in [&existing, &missing, &unknown] {
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{:?}",
            reply.body
        );
        assert_eq!(reply.body["id"], "invalid_params");
    }
    // One message: the same words around whatever was asked for.
    let template = |reply: &Reply, asked: &str| message(reply).replace(asked, "ASKED");
    assert_eq!(
        template(&existing, "/usr/share"),
        template(&missing, "/no/such/dir")
    );
    assert_eq!(
        template(&existing, "/usr/share"),
        template(&unknown, "unregistered")
    );
    let text = message(&existing);
    for says in [
        "wharf buildpacks:register NAME DIR",
        "git URL",
        "registered",
    ] {
        assert!(text.contains(says), "{text}");
    }
    for refused in ["file:///usr/share", "ssh://git@example.com/bp.git", "../bp"] {
        let reply = install(&api, &user, "pathy", &[refused]).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    }
    // Nothing refused was kept.
    let listed = api
        .call(
            "GET",
            "/apps/pathy/buildpack-installations",
            Some(&user),
            None,
        )
        .await;
    assert_eq!(listed.body, json!([]));
}

#[tokio::test]
async fn apps_use_registered_buildpacks_by_name_until_unregistered() {
    let api = TestApi::new().await;
    let user = api.user("user@example.com").await;
    api.app(&user, "named").await;
    let root = tempfile::tempdir().unwrap();
    let dir = buildpack_dir(root.path(), "php");
    assert_eq!(
        register(&api, &api.admin_key, "php", &dir).await.status,
        StatusCode::CREATED
    );

    let set = install(
        &api,
        &user,
        "named",
        &["heroku/python", "php", "https://example.com/bp.git#v1"],
    )
    .await;
    assert_eq!(set.status, StatusCode::OK, "{:?}", set.body);
    let names: Vec<&str> = set
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["buildpack"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["wharf/python", "php", "https://example.com/bp.git#v1"]
    );
    // A user never sees the registered directory through the app.
    assert!(!set.body.to_string().contains(&dir), "{}", set.body);

    api.call(
        "DELETE",
        "/buildpack-registrations/php",
        Some(&api.admin_key),
        None,
    )
    .await;
    let gone = install(&api, &user, "named", &["php"]).await;
    assert_eq!(gone.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message(&gone).contains("\"php\""), "{:?}", gone.body);
}

/// Uploads `bytes` as a new source of `app`; returns the source URL and the file's path.
async fn upload(api: &TestApi, key: &str, app: &str, bytes: &str) -> (String, std::path::PathBuf) {
    let source = api
        .call("POST", &format!("/apps/{app}/sources"), Some(key), None)
        .await;
    assert_eq!(source.status, StatusCode::CREATED, "{:?}", source.body);
    let url = source.body["source_blob"]["put_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = url
        .strip_prefix("http://127.0.0.1:5000")
        .unwrap()
        .to_owned();
    let put = api
        .request("PUT", &path, None, &[], Some(bytes.to_owned()))
        .await;
    assert_eq!(put.status, StatusCode::OK, "{:?}", put.body);
    let token = path.rsplit('/').next().unwrap();
    let file = api.state.config.data_dir.join("sources").join(token);
    assert!(file.is_file());
    (url, file)
}

#[tokio::test]
async fn the_builds_api_refuses_server_paths_too() {
    let api = TestApi::new().await;
    let user = api.user("user@example.com").await;
    api.app(&user, "tarred").await;
    let (url, _) = upload(&api, &user, "tarred", "not really a tarball").await;
    let mut messages = Vec::new();
    for path in ["/usr/share", "/no/such/dir"] {
        let reply = api
            .call(
                "POST",
                "/apps/tarred/builds",
                Some(&user),
                Some(json!({"source_blob": {"url": url}, "buildpacks": [{"url": path}]})),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{:?}",
            reply.body
        );
        messages.push(message(&reply).replace(path, "ASKED"));
    }
    assert_eq!(messages[0], messages[1]);
    let builds = api
        .call("GET", "/apps/tarred/builds", Some(&user), None)
        .await;
    assert_eq!(builds.body, json!([]), "no build was started");
}

#[tokio::test]
async fn sources_expire_an_hour_after_their_upload() {
    let api = TestApi::new().await;
    let user = api.user("user@example.com").await;
    api.app(&user, "late").await;
    let (url, file) = upload(&api, &user, "late", "tarball").await;
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(61 * 60);
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let path = url.strip_prefix("http://127.0.0.1:5000").unwrap();
    let download = api.call("GET", path, None, None).await;
    assert_eq!(download.status, StatusCode::NOT_FOUND);
    assert!(
        message(&download).contains("expired"),
        "{:?}",
        download.body
    );
    let build = api
        .call(
            "POST",
            "/apps/late/builds",
            Some(&user),
            Some(json!({"source_blob": {"url": url}})),
        )
        .await;
    assert_eq!(build.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message(&build).contains("expired"), "{:?}", build.body);

    // The server's sweep removes it; a fresh source stays.
    let (_, fresh) = upload(&api, &user, "late", "tarball").await;
    let removed = api.state.builder.expire_sources().await.unwrap();
    assert_eq!(removed, 1);
    assert!(!file.exists());
    assert!(fresh.exists());
}
