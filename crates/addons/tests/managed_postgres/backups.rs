//! Backups on the managed cluster: capture, reset and restore (into the same add-on or
//! another), retention, names, and a destroy during a capture.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use wharf_addons::postgres::installed_bin_dir;
use wharf_addons::{Limits, Provider};

use super::{
    app, count, plan, provision, refusal, resource, run, shared, support_password, test_plan,
    Cluster,
};

#[tokio::test]
async fn a_backup_brings_back_what_a_reset_removed() {
    let cluster = shared().await;
    let provider = &cluster.provider;
    let backups = provider.backups().unwrap();
    let resource = resource();
    let plan = plan(provider, "mini");
    let provisioned = provision(provider, resource, &plan).await;
    let mut connection = app(&provisioned).await.unwrap();
    run(
        &mut connection,
        "CREATE TABLE notes (id SERIAL PRIMARY KEY, body TEXT);
         INSERT INTO notes (body) SELECT 'note ' || i FROM generate_series(1, 1000) i;
         SELECT lo_from_bytea(4242, 'a large object');",
    )
    .await
    .unwrap();

    let started = Instant::now();
    let backup = backups.capture(resource, &plan).await.unwrap();
    eprintln!(
        "captured {} ({} bytes) in {:?}",
        backup.name,
        backup.size,
        started.elapsed()
    );
    assert_eq!(backup.name, "b001");
    assert!(backup.size > 0);
    assert_eq!(backups.list(resource).await.unwrap(), [backup]);
    let file = backups.file(resource, "b001").await.unwrap();
    assert_eq!(
        file,
        cluster
            .root
            .join("backups")
            .join(resource.id.simple().to_string())
            .join("b001.dump")
    );
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // What users' tools read.
    let listing = std::process::Command::new(installed_bin_dir(None).unwrap().join("pg_restore"))
        .arg("--list")
        .arg(&file)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&listing.stdout).contains("TABLE public notes"));

    let started = Instant::now();
    provider.reset(resource, &provisioned.state).await.unwrap();
    eprintln!("reset in {:?}", started.elapsed());
    assert!(
        count(&mut connection, "notes").await.is_err(),
        "a session survived the reset"
    );
    let mut connection = app(&provisioned).await.unwrap();
    let gone = count(&mut connection, "notes").await.err().unwrap();
    assert!(gone.to_string().contains("does not exist"), "{gone}");
    run(&mut connection, "CREATE TABLE after_reset (x INT)")
        .await
        .unwrap();
    drop(connection);

    let started = Instant::now();
    backups.restore(resource, resource, "b001").await.unwrap();
    eprintln!("restored in {:?}", started.elapsed());
    let mut connection = app(&provisioned).await.unwrap();
    assert_eq!(count(&mut connection, "notes").await.unwrap(), 1000);
    assert!(count(&mut connection, "after_reset").await.is_err());
    run(
        &mut connection,
        "INSERT INTO notes (body) VALUES ('after the restore')",
    )
    .await
    .unwrap();
    let object: Vec<u8> = sqlx::query_scalar("SELECT lo_get(4242)")
        .fetch_one(&mut connection)
        .await
        .unwrap();
    assert_eq!(object, b"a large object");
    let owner: String =
        sqlx::query_scalar("SELECT tableowner::text FROM pg_tables WHERE tablename = 'notes'")
            .fetch_one(&mut connection)
            .await
            .unwrap();
    assert_eq!(owner, resource.base_name());
    // No role of the restore is left.
    let mut admin = cluster.admin("postgres").await;
    let roles: Vec<String> = sqlx::query_scalar(
        "SELECT rolname::text FROM pg_roles WHERE starts_with(rolname, $1) ORDER BY 1",
    )
    .bind(resource.base_name())
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert_eq!(
        roles,
        [resource.base_name(), format!("{}_1", resource.base_name())]
    );

    let info = provider
        .info(resource, &plan, &provisioned.state)
        .await
        .unwrap();
    let password = support_password(&provisioned.config["URL"]);
    for (label, value) in &info {
        assert!(!value.contains(&password) && !label.contains(&password));
    }
    let row = |label: &str| {
        info.iter()
            .find(|(name, _)| name == label)
            .map(|(_, value)| value.clone())
            .unwrap_or_else(|| panic!("no {label} in {info:?}"))
    };
    assert_eq!(row("Plan"), "mini");
    assert_eq!(row("Tables"), "1");
    assert_eq!(row("Backups"), "1 / 2");
    assert_eq!(row("Connections"), "1 / 20");
    assert_eq!(row("Credential generation"), "1");
    assert_eq!(row("Write access"), "ok");
    assert!(row("Data size").contains(" / 1 GB ("), "{info:?}");
    assert!(row("PostgreSQL version").starts_with("15"), "{info:?}");
    eprintln!("{info:#?}");
    drop(connection);
    provider
        .deprovision(resource, &provisioned.state)
        .await
        .unwrap();
    assert!(!file.exists());
}

#[tokio::test]
async fn a_backup_of_another_add_on_restores_into_this_one() {
    let cluster = shared().await;
    let provider = &cluster.provider;
    let backups = provider.backups().unwrap();
    let plan = plan(provider, "mini");
    let (a, b) = (resource(), resource());
    let provisioned_a = provision(provider, a, &plan).await;
    let provisioned_b = provision(provider, b, &plan).await;
    let mut connection_a = app(&provisioned_a).await.unwrap();
    run(
        &mut connection_a,
        "CREATE TABLE shared (x INT); INSERT INTO shared SELECT generate_series(1, 10)",
    )
    .await
    .unwrap();
    backups.capture(a, &plan).await.unwrap();
    backups.restore(b, a, "b001").await.unwrap();
    let mut connection_b = app(&provisioned_b).await.unwrap();
    assert_eq!(count(&mut connection_b, "shared").await.unwrap(), 10);
    run(&mut connection_b, "INSERT INTO shared VALUES (11)")
        .await
        .unwrap();
    assert_eq!(count(&mut connection_a, "shared").await.unwrap(), 10);
    // The backup stays a's.
    assert_eq!(backups.list(b).await.unwrap(), []);
    drop((connection_a, connection_b));
    provider.deprovision(a, &provisioned_a.state).await.unwrap();
    provider.deprovision(b, &provisioned_b.state).await.unwrap();
}

#[tokio::test]
async fn the_plan_s_count_of_backups_is_kept_and_names_are_never_reused() {
    let cluster = shared().await;
    let provider = &cluster.provider;
    let backups = provider.backups().unwrap();
    let resource = resource();
    let plan = test_plan(Limits {
        backups: Some(2),
        ..Limits::default()
    });
    let provisioned = provision(provider, resource, &plan).await;
    for expected in ["b001", "b002", "b003"] {
        assert_eq!(
            backups.capture(resource, &plan).await.unwrap().name,
            expected
        );
    }
    let names: Vec<String> = backups
        .list(resource)
        .await
        .unwrap()
        .into_iter()
        .map(|backup| backup.name)
        .collect();
    assert_eq!(names, ["b002", "b003"]);
    let removed = backups.file(resource, "b001").await.err().unwrap();
    assert!(refusal(&removed).contains("no backup b001"));
    assert_eq!(backups.capture(resource, &plan).await.unwrap().name, "b004");
    provider
        .deprovision(resource, &provisioned.state)
        .await
        .unwrap();
}

#[tokio::test]
async fn bad_and_unknown_backup_names_are_refused() {
    let cluster = shared().await;
    let provider = &cluster.provider;
    let backups = provider.backups().unwrap();
    let plan = plan(provider, "mini");
    let (mine, other) = (resource(), resource());
    let provisioned_mine = provision(provider, mine, &plan).await;
    let provisioned_other = provision(provider, other, &plan).await;
    backups.capture(other, &plan).await.unwrap();
    for name in [
        "",
        "b",
        "../b001",
        "b001/../../b001",
        "b001.dump",
        "B001",
        "b-1",
        "b1234567890",
    ] {
        let refused = backups.file(mine, name).await.err().unwrap();
        assert_eq!(refusal(&refused), "backup names look like b001", "{name:?}");
        let refused = backups.restore(mine, other, name).await.err().unwrap();
        assert_eq!(refusal(&refused), "backup names look like b001", "{name:?}");
    }
    let unknown = backups.restore(mine, mine, "b001").await.err().unwrap();
    let message = refusal(&unknown);
    assert!(message.contains("no backup b001"), "{message}");
    assert!(!message.contains(&other.id.simple().to_string()) && !message.contains("other"));
    let unknown = backups.file(other, "b999").await.err().unwrap();
    assert!(refusal(&unknown).contains("no backup b999"));
    provider
        .deprovision(mine, &provisioned_mine.state)
        .await
        .unwrap();
    provider
        .deprovision(other, &provisioned_other.state)
        .await
        .unwrap();
}

/// Waits until `pg_dump` waits for a lock in the cluster.
async fn pg_dump_waiting(cluster: &Cluster) -> i32 {
    let mut admin = cluster.admin("postgres").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pid: Option<i32> = sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity \
             WHERE application_name = 'pg_dump' AND wait_event_type = 'Lock'",
        )
        .fetch_optional(&mut admin)
        .await
        .unwrap();
        if let Some(pid) = pid {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "pg_dump never waited for the lock"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_destroy_waits_for_a_capture_and_a_failed_capture_leaves_nothing() {
    let cluster = shared().await;
    let provider = cluster.provider.clone();
    let resource = resource();
    let plan = plan(&provider, "mini");
    let provisioned = provision(&provider, resource, &plan).await;
    let mut connection = app(&provisioned).await.unwrap();
    run(&mut connection, "CREATE TABLE busy (x INT)")
        .await
        .unwrap();
    // The app holds a lock that pg_dump waits for.
    run(
        &mut connection,
        "BEGIN; LOCK TABLE busy IN ACCESS EXCLUSIVE MODE",
    )
    .await
    .unwrap();
    let capture = tokio::spawn({
        let provider = provider.clone();
        let plan = plan.clone();
        async move { provider.backups().unwrap().capture(resource, &plan).await }
    });
    let pg_dump = pg_dump_waiting(cluster).await;
    let refused = provider
        .deprovision(resource, &provisioned.state)
        .await
        .err()
        .unwrap();
    assert!(
        refusal(&refused).ends_with("a backup is being captured; try again when it finishes"),
        "{refused}"
    );
    assert!(
        count(&mut connection, "busy").await.is_ok(),
        "the refused destroy touched the database"
    );
    // The capture fails midway.
    let mut admin = cluster.admin("postgres").await;
    sqlx::query("SELECT pg_terminate_backend($1)")
        .bind(pg_dump)
        .execute(&mut admin)
        .await
        .unwrap();
    assert!(capture.await.unwrap().is_err());
    let dir = cluster
        .root
        .join("backups")
        .join(resource.id.simple().to_string());
    let left: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with('b'))
        .collect();
    assert_eq!(left, Vec::<String>::new());
    assert_eq!(
        provider.backups().unwrap().list(resource).await.unwrap(),
        []
    );

    run(&mut connection, "COMMIT").await.unwrap();
    let backup = provider
        .backups()
        .unwrap()
        .capture(resource, &plan)
        .await
        .unwrap();
    assert_eq!(
        backup.name, "b002",
        "a failed capture's number is not reused"
    );
    drop(connection);
    provider
        .deprovision(resource, &provisioned.state)
        .await
        .unwrap();
    assert!(!dir.exists());
}
