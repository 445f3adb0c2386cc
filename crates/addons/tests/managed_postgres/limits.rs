//! Plans on the managed cluster: connection limits, and writes revoked over the storage
//! limit (so that the app cannot take them back) and restored under it.

use sqlx::PgConnection;
use wharf_addons::{Limits, Provider};

use super::{app, count, provision, resource, run, shared, test_plan};

#[tokio::test]
async fn connections_beyond_the_plan_are_refused() {
    let cluster = shared().await;
    let provider = &cluster.provider;
    let resource = resource();
    let plan = test_plan(Limits {
        connections: Some(3),
        ..Limits::default()
    });
    let provisioned = provision(provider, resource, &plan).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(app(&provisioned).await.unwrap());
    }
    let refused = app(&provisioned).await.err().unwrap();
    assert!(
        refused.to_string().contains("too many connections"),
        "{refused}"
    );
    // The app owns its database and may raise the database's limit: its role's still holds,
    // and the next check puts the database's back.
    run(
        &mut open[0],
        &format!(
            "ALTER DATABASE {} CONNECTION LIMIT -1",
            resource.base_name()
        ),
    )
    .await
    .unwrap();
    let refused = app(&provisioned).await.err().unwrap();
    assert!(
        refused.to_string().contains("too many connections"),
        "{refused}"
    );
    provider
        .enforce_limits(&[(resource, plan.clone())])
        .await
        .unwrap();
    // Wharf's own sessions do not count.
    let mut admin = cluster.admin(&resource.base_name()).await;
    let limit: i32 = sqlx::query_scalar("SELECT datconnlimit FROM pg_database WHERE datname = $1")
        .bind(resource.base_name())
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert_eq!(limit, 3);
    // A rotation's new role has the same limit.
    let rotated = provider.rotate(resource, &provisioned.state).await.unwrap();
    let limit: i32 = sqlx::query_scalar("SELECT rolconnlimit FROM pg_roles WHERE rolname = $1")
        .bind(format!("{}_2", resource.base_name()))
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert_eq!(limit, 3);
    drop(open);
    drop(admin);
    provider
        .deprovision(resource, &rotated.state)
        .await
        .unwrap();
}

/// What an app whose writes are revoked could change: rows of its tables, large objects,
/// tables.
async fn contents(connection: &mut PgConnection) -> Vec<i64> {
    sqlx::query_scalar(
        "SELECT ARRAY[(SELECT count(*) FROM big), (SELECT count(*) FROM mine), \
         (SELECT count(*) FROM pg_largeobject_metadata), \
         (SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace)]",
    )
    .fetch_one(connection)
    .await
    .unwrap()
}

#[tokio::test]
async fn writes_are_revoked_over_the_storage_limit_and_restored_under_it() {
    let cluster = shared().await;
    let provider = &cluster.provider;
    let resource = resource();
    let owner = resource.base_name();
    let login = format!("{owner}_1");
    // An empty database takes about 7.5 MB.
    let plan = test_plan(Limits {
        storage_mb: Some(10),
        connections: Some(20),
        ..Limits::default()
    });
    let provisioned = provision(provider, resource, &plan).await;
    let mut connection = app(&provisioned).await.unwrap();
    run(
        &mut connection,
        &format!(
            "CREATE TABLE big (id INT PRIMARY KEY, v TEXT);
             INSERT INTO big SELECT i, repeat(md5(i::text), 30) FROM generate_series(1, 6000) i;
             CREATE FUNCTION sneaky() RETURNS void SECURITY DEFINER LANGUAGE sql
                 AS 'INSERT INTO big VALUES (-3, ''through the owner'')';
             GRANT INSERT, UPDATE ON big TO PUBLIC;
             GRANT INSERT, UPDATE ON big TO {login};
             GRANT CREATE ON SCHEMA public TO PUBLIC;
             SET ROLE NONE;
             CREATE TABLE mine (x INT);
             SET ROLE {owner};"
        ),
    )
    .await
    .unwrap();
    let mine: String =
        sqlx::query_scalar("SELECT tableowner::text FROM pg_tables WHERE tablename = 'mine'")
            .fetch_one(&mut connection)
            .await
            .unwrap();
    assert_eq!(mine, login, "the login role owns a table of its own");
    provider
        .enforce_limits(&[(resource, plan.clone())])
        .await
        .unwrap();
    let events = cluster.events(resource);
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(
        events[0].contains("over the test plan's storage limit")
            && events[0].contains("INSERT, UPDATE and CREATE are revoked"),
        "{events:?}"
    );
    assert!(
        count(&mut connection, "big").await.is_err(),
        "a session from before the revocation survived"
    );

    let mut connection = app(&provisioned).await.unwrap();
    assert_eq!(count(&mut connection, "big").await.unwrap(), 6000);
    for (attempt, sql) in [
        ("insert", "INSERT INTO big VALUES (-1, 'more')".to_owned()),
        (
            "update",
            "UPDATE big SET v = 'changed' WHERE id = 1".to_owned(),
        ),
        ("create a table", "CREATE TABLE more (x INT)".to_owned()),
        (
            "create a temporary table",
            "CREATE TEMP TABLE more (x INT)".to_owned(),
        ),
        ("grant itself", format!("GRANT INSERT ON big TO {login}")),
        (
            "grant the public",
            "GRANT INSERT ON big TO PUBLIC".to_owned(),
        ),
        ("become the owner", format!("SET ROLE {owner}")),
        (
            "turn read-only off",
            "SET default_transaction_read_only = off; INSERT INTO big VALUES (-1, 'more')"
                .to_owned(),
        ),
        ("write through a definer", "SELECT sneaky()".to_owned()),
        (
            "write its own table",
            "INSERT INTO mine VALUES (1)".to_owned(),
        ),
        (
            "grant itself its own table",
            format!("GRANT ALL ON mine TO {login}; INSERT INTO mine VALUES (1)"),
        ),
        (
            "write a large object",
            "SELECT lo_from_bytea(0, 'x')".to_owned(),
        ),
        (
            "raise its connection limit",
            format!("ALTER DATABASE {owner} CONNECTION LIMIT -1"),
        ),
        (
            "act as the owner at the next login",
            format!("ALTER ROLE {login} SET role = {owner}"),
        ),
    ] {
        // Some attempts fail, some are warnings (a grant without the right to grant): what
        // counts is that the attempt writes nothing and writing still fails.
        let before = contents(&mut connection).await;
        run(&mut connection, &format!("BEGIN; {sql}; COMMIT"))
            .await
            .ok();
        run(&mut connection, "ROLLBACK").await.ok();
        let written = run(&mut connection, "INSERT INTO big VALUES (-2, 'after')").await;
        assert!(written.is_err(), "the app writes after trying to {attempt}");
        assert_eq!(contents(&mut connection).await, before, "{attempt}");
    }
    let mut fresh = app(&provisioned).await.unwrap();
    assert!(run(&mut fresh, "INSERT INTO big VALUES (-1, 'again')")
        .await
        .is_err());
    let info = provider
        .info(resource, &plan, &provisioned.state)
        .await
        .unwrap();
    let access = info
        .iter()
        .find(|(label, _)| label == "Write access")
        .unwrap();
    assert!(access.1.starts_with("revoked"), "{info:?}");
    // Checking again changes nothing and says nothing.
    provider
        .enforce_limits(&[(resource, plan.clone())])
        .await
        .unwrap();
    assert_eq!(cluster.events(resource), Vec::<String>::new());
    assert_eq!(count(&mut fresh, "big").await.unwrap(), 6000);
    // Credentials rotated meanwhile are revoked alike.
    let rotated = provider.rotate(resource, &provisioned.state).await.unwrap();
    let mut new = app(&rotated).await.unwrap();
    assert_eq!(count(&mut new, "big").await.unwrap(), 6000);
    assert!(run(&mut new, "INSERT INTO big VALUES (-1, 'new')")
        .await
        .is_err());
    assert!(run(&mut new, &format!("SET ROLE {owner}")).await.is_err());
    drop(new);

    run(&mut fresh, "DELETE FROM big").await.unwrap();
    drop(fresh);
    drop(connection);
    provider
        .enforce_limits(&[(resource, plan.clone())])
        .await
        .unwrap();
    let events = cluster.events(resource);
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].contains("back under"), "{events:?}");
    let mut connection = app(&provisioned).await.unwrap();
    run(
        &mut connection,
        "INSERT INTO big VALUES (-1, 'writable'); CREATE TABLE again (x INT); INSERT INTO again VALUES (1)",
    )
    .await
    .unwrap();
    let owners: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT tableowner::text FROM pg_tables WHERE schemaname = 'public'",
    )
    .fetch_all(&mut connection)
    .await
    .unwrap();
    assert_eq!(owners, [owner]);
    let mut new = app(&rotated).await.unwrap();
    run(&mut new, "INSERT INTO again VALUES (2)").await.unwrap();
    drop((connection, new));
    provider
        .deprovision(resource, &rotated.state)
        .await
        .unwrap();
}

#[tokio::test]
async fn deletes_stay_revoked_where_they_would_run_the_app_s_code() {
    let cluster = shared().await;
    let provider = &cluster.provider;
    let resource = resource();
    let plan = test_plan(Limits {
        storage_mb: Some(10),
        ..Limits::default()
    });
    let provisioned = provision(provider, resource, &plan).await;
    let mut connection = app(&provisioned).await.unwrap();
    // A trigger that writes with the owner's rights whenever a row is deleted.
    run(
        &mut connection,
        "CREATE TABLE big (id INT PRIMARY KEY, v TEXT);
         INSERT INTO big SELECT i, repeat(md5(i::text), 30) FROM generate_series(1, 6000) i;
         CREATE TABLE grows (v TEXT);
         CREATE FUNCTION grow() RETURNS trigger SECURITY DEFINER LANGUAGE plpgsql
             AS 'BEGIN INSERT INTO grows SELECT repeat(''x'', 1000) FROM generate_series(1, 100); RETURN OLD; END';
         CREATE TRIGGER grow BEFORE DELETE ON big FOR EACH ROW EXECUTE FUNCTION grow();",
    )
    .await
    .unwrap();
    provider
        .enforce_limits(&[(resource, plan.clone())])
        .await
        .unwrap();
    let events = cluster.events(resource);
    assert!(
        events.len() == 1 && events[0].contains("DELETE and TRUNCATE do not"),
        "{events:?}"
    );
    let mut connection = app(&provisioned).await.unwrap();
    assert_eq!(count(&mut connection, "big").await.unwrap(), 6000);
    assert!(run(&mut connection, "DELETE FROM big WHERE id = 1")
        .await
        .is_err());
    assert!(run(&mut connection, "TRUNCATE grows").await.is_err());
    assert_eq!(count(&mut connection, "grows").await.unwrap(), 0);
    drop(connection);
    // pg:reset is a way back under: until the next check, the new database is read-only
    // for the app too.
    provider.reset(resource, &provisioned.state).await.unwrap();
    let mut connection = app(&provisioned).await.unwrap();
    assert!(run(&mut connection, "CREATE TABLE fresh (x INT)")
        .await
        .is_err());
    drop(connection);
    provider
        .enforce_limits(&[(resource, plan.clone())])
        .await
        .unwrap();
    assert!(cluster.events(resource)[0].contains("back under"));
    let mut connection = app(&provisioned).await.unwrap();
    run(
        &mut connection,
        "CREATE TABLE fresh (x INT); INSERT INTO fresh VALUES (1)",
    )
    .await
    .unwrap();
    drop(connection);
    provider
        .deprovision(resource, &provisioned.state)
        .await
        .unwrap();
}
