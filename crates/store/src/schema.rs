//! The schema and its migrations: an ordered list of steps, each applied once, in its own
//! transaction, recorded in `schema_migrations`. Steps are never edited once released: add one.
//!
//! Every step is written in SQL that SQLite and PostgreSQL both accept: ids are UUID text,
//! timestamps fixed-width RFC 3339 text (so they sort as text), flags `BIGINT` 0/1, and JSON
//! documents text.

use anyhow::Context;
use sqlx::Executor;

use crate::{rows::now_text, Backend, Store};

/// Arbitrary key for the PostgreSQL advisory lock that serializes migrations across servers.
const MIGRATION_LOCK_KEY: i64 = 0x0057_4841_5246;

const MIGRATIONS: &[&str] = &[
    // 1: accounts, apps, the release ledger, slugs, formation, collaborators.
    r#"
    CREATE TABLE accounts (
        id TEXT PRIMARY KEY,
        email TEXT NOT NULL UNIQUE,
        admin BIGINT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        account_id TEXT NOT NULL REFERENCES accounts (id),
        key_hash TEXT NOT NULL UNIQUE,
        description TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE apps (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        owner_id TEXT NOT NULL REFERENCES accounts (id),
        maintenance BIGINT NOT NULL,
        repo_size BIGINT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE collaborators (
        id TEXT PRIMARY KEY,
        app_id TEXT NOT NULL REFERENCES apps (id),
        account_id TEXT NOT NULL REFERENCES accounts (id),
        created_at TEXT NOT NULL,
        UNIQUE (app_id, account_id)
    );
    CREATE INDEX collaborators_account ON collaborators (account_id);
    CREATE TABLE slugs (
        id TEXT PRIMARY KEY,
        app_id TEXT NOT NULL REFERENCES apps (id),
        process_types TEXT NOT NULL,
        commit_sha TEXT,
        commit_description TEXT,
        buildpack_description TEXT,
        stack TEXT NOT NULL,
        size BIGINT,
        checksum TEXT,
        created_at TEXT NOT NULL
    );
    CREATE INDEX slugs_app ON slugs (app_id);
    CREATE TABLE releases (
        id TEXT PRIMARY KEY,
        app_id TEXT NOT NULL REFERENCES apps (id),
        version BIGINT NOT NULL,
        description TEXT NOT NULL,
        slug_id TEXT REFERENCES slugs (id),
        config TEXT NOT NULL,
        addon_plan_names TEXT NOT NULL,
        status TEXT NOT NULL,
        user_id TEXT NOT NULL REFERENCES accounts (id),
        created_at TEXT NOT NULL,
        UNIQUE (app_id, version)
    );
    CREATE TABLE formations (
        id TEXT PRIMARY KEY,
        app_id TEXT NOT NULL REFERENCES apps (id),
        process_type TEXT NOT NULL,
        quantity BIGINT NOT NULL,
        size TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        UNIQUE (app_id, process_type)
    );
    "#,
    // 2: builds, and the buildpacks an app asks for.
    r#"
    CREATE TABLE builds (
        id TEXT PRIMARY KEY,
        app_id TEXT NOT NULL REFERENCES apps (id),
        status TEXT NOT NULL,
        source_url TEXT,
        source_version TEXT,
        buildpacks TEXT NOT NULL,
        slug_id TEXT REFERENCES slugs (id),
        release_id TEXT REFERENCES releases (id),
        user_id TEXT NOT NULL REFERENCES accounts (id),
        output_token TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX builds_app ON builds (app_id, created_at);
    CREATE TABLE app_buildpacks (
        app_id TEXT NOT NULL REFERENCES apps (id),
        ordinal BIGINT NOT NULL,
        url TEXT NOT NULL,
        PRIMARY KEY (app_id, ordinal)
    );
    "#,
    // 3: custom domains and the SNI endpoints (certificates) they are served with.
    r#"
    CREATE TABLE sni_endpoints (
        id TEXT PRIMARY KEY,
        app_id TEXT NOT NULL REFERENCES apps (id),
        name TEXT NOT NULL UNIQUE,
        certificate_chain TEXT NOT NULL,
        private_key TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX sni_endpoints_app ON sni_endpoints (app_id);
    CREATE TABLE domains (
        id TEXT PRIMARY KEY,
        app_id TEXT NOT NULL REFERENCES apps (id),
        hostname TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        sni_endpoint_id TEXT REFERENCES sni_endpoints (id),
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX domains_app ON domains (app_id, created_at);
    "#,
    // 4: add-ons (the resources providers run) and their attachments to apps.
    r#"
    CREATE TABLE addons (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        app_id TEXT NOT NULL REFERENCES apps (id),
        service TEXT NOT NULL,
        plan TEXT NOT NULL,
        state TEXT NOT NULL,
        provider_state TEXT NOT NULL,
        config TEXT NOT NULL,
        attachment_name TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX addons_app ON addons (app_id);
    CREATE TABLE addon_attachments (
        id TEXT PRIMARY KEY,
        addon_id TEXT NOT NULL REFERENCES addons (id),
        app_id TEXT NOT NULL REFERENCES apps (id),
        name TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        UNIQUE (app_id, name)
    );
    CREATE INDEX addon_attachments_addon ON addon_attachments (addon_id);
    "#,
    // 5: log drains and app features (labs flags such as log-runtime-metrics).
    r#"
    CREATE TABLE log_drains (
        id TEXT PRIMARY KEY,
        app_id TEXT NOT NULL REFERENCES apps (id),
        token TEXT NOT NULL UNIQUE,
        url TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        UNIQUE (app_id, url)
    );
    CREATE TABLE app_features (
        app_id TEXT NOT NULL REFERENCES apps (id),
        name TEXT NOT NULL,
        enabled BIGINT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (app_id, name)
    );
    "#,
    // 6: buildpacks an admin registered: directories on the server apps may use by name.
    r#"
    CREATE TABLE buildpack_registrations (
        name TEXT PRIMARY KEY,
        dir TEXT NOT NULL,
        created_at TEXT NOT NULL,
        created_by TEXT NOT NULL REFERENCES accounts (id)
    );
    "#,
    // 7: the stack an app's next build runs on; apps from before had only debian-12.
    r#"
    ALTER TABLE apps ADD COLUMN build_stack TEXT NOT NULL DEFAULT 'debian-12';
    "#,
    // 8: the dashboard's log-in sessions, each opened with one API key and living no longer
    // than it.
    r#"
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        token_hash TEXT NOT NULL UNIQUE,
        key_id TEXT NOT NULL REFERENCES api_keys (id),
        csrf_token TEXT NOT NULL,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL
    );
    CREATE INDEX sessions_expires_at ON sessions (expires_at);
    "#,
    // 9: hosts that run dynos (their credentials as hashes, their leases on the control
    // plane's clock) and the host each dyno slot of every formation is placed on.
    r#"
    CREATE TABLE hosts (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        credential_hash TEXT NOT NULL UNIQUE,
        memory_mb BIGINT,
        address TEXT,
        draining BIGINT NOT NULL,
        epoch BIGINT NOT NULL,
        last_heartbeat_at TEXT,
        lease_expires_at TEXT,
        dynos TEXT NOT NULL DEFAULT '[]',
        created_at TEXT NOT NULL
    );
    CREATE TABLE dyno_placements (
        app_id TEXT NOT NULL REFERENCES apps (id),
        process_type TEXT NOT NULL,
        number BIGINT NOT NULL,
        host_id TEXT NOT NULL REFERENCES hosts (id),
        memory_mb BIGINT NOT NULL,
        placed_at TEXT NOT NULL,
        PRIMARY KEY (app_id, process_type, number)
    );
    CREATE INDEX dyno_placements_host_id ON dyno_placements (host_id);
    "#,
];

pub(crate) async fn migrate(store: &Store) -> anyhow::Result<()> {
    let mut conn = store.pool.acquire().await.context("acquire connection")?;
    if store.backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(MIGRATION_LOCK_KEY)
            .execute(&mut *conn)
            .await
            .context("take migration lock")?;
    }
    let outcome = apply_pending(&mut conn).await;
    if store.backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(MIGRATION_LOCK_KEY)
            .execute(&mut *conn)
            .await
            .context("release migration lock")?;
    }
    outcome
}

async fn apply_pending(conn: &mut sqlx::AnyConnection) -> anyhow::Result<()> {
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version BIGINT PRIMARY KEY,
            applied_at TEXT NOT NULL
        )",
    )
    .await
    .context("create schema_migrations")?;
    let applied: i64 =
        sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
            .fetch_one(&mut *conn)
            .await
            .context("read schema version")?;
    let known = i64::try_from(MIGRATIONS.len()).expect("a handful of migrations");
    if applied > known {
        anyhow::bail!(
            "the database is at schema version {applied}, newer than this wharf ({known}): \
             run a newer wharf"
        );
    }
    for (index, step) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
        let version = index as i64 + 1;
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        tx.execute(*step)
            .await
            .with_context(|| format!("apply migration {version}"))?;
        sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
            .bind(version)
            .bind(now_text())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(version, "applied schema migration");
    }
    Ok(())
}
