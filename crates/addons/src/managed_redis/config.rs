//! What a managed Redis add-on is made of, as pure functions: its plans, its state, the
//! server's config file and its ACL file, all generated from plain data.

use std::net::IpAddr;
use std::path::Path;

use anyhow::Context;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::{Limits, Plan, Refused};

/// Wharf's own user on every server: `CONFIG`, `ACL`, `CLIENT KILL`, `INFO`.
pub(super) const ADMIN_USER: &str = "wharf";

/// Connections a server allows beyond its plan: Redis keeps none for an administrator, so
/// without them an app at its limit would lock Wharf out of `info`, `configure` and
/// revocation. An app may use them too; two are not worth a proxy.
pub(super) const ADMIN_CONNECTIONS: u32 = 2;

/// Redis refuses buffer limits below 1 MB.
const MIN_BUFFER_LIMIT: u64 = 1024 * 1024;

/// The setting `configure` knows.
pub(super) const POLICY_SETTING: &str = "maxmemory-policy";

/// Heroku's default: writes fail with an OOM error once the data fills the plan's memory.
pub(super) const DEFAULT_POLICY: &str = "noeviction";

/// Redis's eviction policies.
pub(super) const POLICIES: [&str; 8] = [
    "noeviction",
    "allkeys-lru",
    "volatile-lru",
    "allkeys-lfu",
    "volatile-lfu",
    "allkeys-random",
    "volatile-random",
    "volatile-ttl",
];

/// What the app's user (`default`) may do: everything on every key, channel and database,
/// but the commands that would let it change the server's limits or files (`CONFIG`,
/// `MODULE`, `DEBUG`), stop or block it (`SHUTDOWN`, `SAVE`, `FAILOVER`), make it connect
/// somewhere from the host (`REPLICAOF`/`SLAVEOF`, `MIGRATE`, `CLUSTER`), act as a replica
/// (`SYNC`, `PSYNC`, `REPLCONF`), fork it at will (`BGSAVE`, `BGREWRITEAOF`: each fork may
/// double the memory the host gives it, and the append-only file rewrites itself as it
/// grows), or change users (`ACL`, but `ACL WHOAMI`). Denied commands answer `NOPERM`.
pub(super) const APP_RULES: &str = "~* &* +@all \
    -config -debug -module -shutdown -save -bgsave -bgrewriteaof -failover \
    -replicaof -slaveof -migrate -cluster -sync -psync -replconf \
    -acl +acl|whoami";

/// Wharf's user may do everything.
const ADMIN_RULES: &str = "~* &* +@all";

/// The service's plans (`Limits::memory_mb`, `Limits::connections`), Heroku's names.
pub(super) fn plans() -> Vec<Plan> {
    const TABLE: [(&str, u64, u32); 6] = [
        ("mini", 25, 20),
        ("premium-0", 50, 40),
        ("premium-1", 100, 80),
        ("premium-2", 250, 200),
        ("premium-3", 500, 400),
        ("premium-5", 1024, 1000),
    ];
    TABLE
        .iter()
        .map(|&(name, memory_mb, connections)| Plan {
            name: name.to_owned(),
            description: format!(
                "A Redis server of its own: {memory_mb} MB of memory, {connections} connections"
            ),
            default: name == "mini",
            limits: Limits {
                memory_mb: Some(memory_mb),
                connections: Some(connections),
                storage_mb: None,
                backups: None,
            },
        })
        .collect()
}

/// The eviction policy called `value`, or a refusal listing the valid ones.
pub(super) fn policy(value: &str) -> Result<&'static str, Refused> {
    POLICIES
        .iter()
        .find(|policy| **policy == value)
        .copied()
        .ok_or_else(|| {
            Refused(format!(
                "{value:?} is not a maxmemory-policy: use one of {}",
                POLICIES.join(", ")
            ))
        })
}

/// The policy `settings` asks for; [`Refused`] for any other setting or an unknown value.
pub(super) fn requested_policy(
    settings: &crate::AddonConfig,
) -> Result<Option<&'static str>, Refused> {
    let mut requested = None;
    for (key, value) in settings {
        match key.as_str() {
            POLICY_SETTING => requested = Some(policy(value)?),
            _ => {
                return Err(Refused(format!(
                    "Redis add-ons have no setting {key:?}: the one setting is \
                     {POLICY_SETTING} ({})",
                    POLICIES.join(", ")
                )))
            }
        }
    }
    Ok(requested)
}

/// The app's URL in Heroku's shape: no user name (`AUTH <password>` logs in as `default`),
/// an IPv6 address in brackets.
pub(super) fn app_url(address: std::net::SocketAddr, password: &str) -> String {
    format!("redis://:{password}@{address}")
}

/// `#<sha256 hex>`, as ACL files and `ACL SETUSER` take a password without seeing it.
pub(super) fn password_hash(password: &str) -> String {
    format!("{:x}", Sha256::digest(password.as_bytes()))
}

/// What Wharf stores with the add-on. No secret: the current password is named by its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct State {
    pub port: u16,
    /// 1 when provisioned, one more at every rotation.
    pub generation: u64,
    /// SHA-256 of the app's current password: the one revocation keeps.
    pub password_sha256: String,
    pub policy: &'static str,
}

impl State {
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "port": self.port,
            "generation": self.generation,
            "password_sha256": self.password_sha256,
            "maxmemory_policy": self.policy,
        })
    }

    pub fn from_json(state: &serde_json::Value) -> anyhow::Result<State> {
        let port = state
            .get("port")
            .and_then(serde_json::Value::as_u64)
            .and_then(|port| u16::try_from(port).ok())
            .context("the add-on's provider state has no port")?;
        let generation = state
            .get("generation")
            .and_then(serde_json::Value::as_u64)
            .context("the add-on's provider state has no credential generation")?;
        let password_sha256 = state
            .get("password_sha256")
            .and_then(serde_json::Value::as_str)
            .filter(|hash| is_hash(hash))
            .context("the add-on's provider state names no current password")?
            .to_owned();
        let policy = match state
            .get("maxmemory_policy")
            .and_then(serde_json::Value::as_str)
        {
            Some(value) => policy(value).context("read the add-on's provider state")?,
            None => DEFAULT_POLICY,
        };
        Ok(State {
            port,
            generation,
            password_sha256,
            policy,
        })
    }
}

fn is_hash(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Where a server's files are, for its config file.
pub(super) struct ServerPaths<'a> {
    pub data: &'a Path,
    pub acl: &'a Path,
}

/// The server's config file for a plan's `limits` and an eviction `policy`.
pub(super) fn server_config(
    listen: IpAddr,
    port: u16,
    limits: &Limits,
    policy: &str,
    paths: &ServerPaths<'_>,
) -> anyhow::Result<String> {
    let memory = limits
        .memory_mb
        .context("a managed Redis plan needs a memory limit")?
        * 1024
        * 1024;
    let connections = limits
        .connections
        .context("a managed Redis plan needs a connection limit")?;
    let buffers = memory.max(MIN_BUFFER_LIMIT);
    Ok(format!(
        "# Written by Wharf before every start, from the add-on's plan and settings.\n\
         bind {listen}\n\
         protected-mode yes\n\
         port {port}\n\
         daemonize no\n\
         supervised no\n\
         logfile \"\"\n\
         always-show-logo no\n\
         dir {data}\n\
         aclfile {acl}\n\
         appendonly yes\n\
         appendfsync everysec\n\
         save \"\"\n\
         maxmemory {memory}\n\
         maxmemory-policy {policy}\n\
         maxclients {clients}\n\
         maxmemory-clients {memory}\n\
         client-query-buffer-limit {buffers}\n\
         proto-max-bulk-len {buffers}\n\
         enable-debug-command no\n\
         enable-module-command no\n\
         enable-protected-configs no\n\
         sanitize-dump-payload yes\n\
         tcp-keepalive 300\n",
        data = quoted(paths.data)?,
        acl = quoted(paths.acl)?,
        clients = connections + ADMIN_CONNECTIONS,
    ))
}

/// The ACL file: Wharf's user and the app's `default` with every password in `app_hashes`.
pub(super) fn acl_file(admin_hash: &str, app_hashes: &[String]) -> String {
    let passwords: Vec<String> = app_hashes.iter().map(|hash| format!("#{hash}")).collect();
    format!(
        "user {ADMIN_USER} on #{admin_hash} {ADMIN_RULES}\n\
         user default on {} {APP_RULES}\n",
        passwords.join(" ")
    )
}

/// The hashes of the app's passwords in an ACL file [`acl_file`] wrote.
pub(super) fn app_hashes(acl: &str) -> Vec<String> {
    acl.lines()
        .filter_map(|line| line.strip_prefix("user default "))
        .flat_map(str::split_whitespace)
        .filter_map(|word| word.strip_prefix('#'))
        .filter(|hash| is_hash(hash))
        .map(str::to_owned)
        .collect()
}

/// A path as a double-quoted Redis config string.
fn quoted(path: &Path) -> anyhow::Result<String> {
    let text = path
        .to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))?;
    anyhow::ensure!(
        !text.chars().any(char::is_control),
        "{text:?} holds a control character: choose another data directory"
    );
    Ok(format!(
        "\"{}\"",
        text.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_have_no_user_name_and_bracket_ipv6() {
        let check = |address: &str, expected: &str| {
            let address = address.parse().expect("an address");
            assert_eq!(app_url(address, "pw"), expected);
        };
        check("198.19.0.1:16400", "redis://:pw@198.19.0.1:16400");
        check("[fd00::1]:16400", "redis://:pw@[fd00::1]:16400");
    }

    #[test]
    fn plans_follow_herokus_table() {
        let plans = plans();
        let table: Vec<(&str, Option<u64>, Option<u32>, bool)> = plans
            .iter()
            .map(|plan| {
                (
                    plan.name.as_str(),
                    plan.limits.memory_mb,
                    plan.limits.connections,
                    plan.default,
                )
            })
            .collect();
        assert_eq!(
            table,
            [
                ("mini", Some(25), Some(20), true),
                ("premium-0", Some(50), Some(40), false),
                ("premium-1", Some(100), Some(80), false),
                ("premium-2", Some(250), Some(200), false),
                ("premium-3", Some(500), Some(400), false),
                ("premium-5", Some(1024), Some(1000), false),
            ]
        );
    }

    #[test]
    fn settings_accept_the_eight_policies_and_nothing_else() {
        let check = |key: &str, value: &str, expected: Result<Option<&str>, &str>| {
            let settings = crate::AddonConfig::from([(key.to_owned(), value.to_owned())]);
            match (requested_policy(&settings), expected) {
                (Ok(got), Ok(want)) => assert_eq!(got, want),
                (Err(Refused(message)), Err(part)) => {
                    assert!(message.contains(part), "{message}")
                }
                (got, want) => panic!("{key}={value}: got {got:?}, want {want:?}"),
            }
        };
        for policy in POLICIES {
            check(POLICY_SETTING, policy, Ok(Some(policy)));
        }
        check(POLICY_SETTING, "allkeys-lfu ", Err("volatile-ttl"));
        check(POLICY_SETTING, "", Err("noeviction, allkeys-lru"));
        check(
            "maxmemory",
            "1gb",
            Err("the one setting is maxmemory-policy"),
        );
        assert_eq!(
            requested_policy(&crate::AddonConfig::new()).ok(),
            Some(None)
        );
    }

    #[test]
    fn state_round_trips_and_needs_its_password_hash() {
        let state = State {
            port: 16400,
            generation: 3,
            password_sha256: password_hash("secret"),
            policy: "allkeys-lru",
        };
        assert_eq!(State::from_json(&state.to_json()).ok(), Some(state.clone()));
        let mut json = state.to_json();
        json["password_sha256"] = json!("secret");
        assert!(State::from_json(&json).is_err());
        let mut json = state.to_json();
        json.as_object_mut()
            .expect("an object")
            .remove("maxmemory_policy");
        assert_eq!(
            State::from_json(&json).map(|state| state.policy).ok(),
            Some(DEFAULT_POLICY)
        );
    }

    #[test]
    fn acl_files_hold_hashes_that_read_back() {
        let hashes = vec![password_hash("one"), password_hash("two")];
        let file = acl_file(&password_hash("admin"), &hashes);
        assert!(!file.contains("one") && !file.contains("admin "), "{file}");
        assert_eq!(app_hashes(&file), hashes);
        assert!(file.contains("+acl|whoami"));
        assert_eq!(file.lines().count(), 2);
    }

    #[test]
    fn the_config_sets_the_plans_limits_and_quotes_paths() {
        let limits = plans()[0].limits;
        let paths = ServerPaths {
            data: Path::new("/var/lib/wh\"arf/data"),
            acl: Path::new("/var/lib/wharf/users.acl"),
        };
        let listen: IpAddr = "::1".parse().expect("an address");
        let config =
            server_config(listen, 16400, &limits, "allkeys-lru", &paths).expect("a config");
        for line in [
            "bind ::1",
            "port 16400",
            "protected-mode yes",
            "maxmemory 26214400",
            "maxmemory-policy allkeys-lru",
            "maxclients 22",
            "appendonly yes",
            "appendfsync everysec",
            "dir \"/var/lib/wh\\\"arf/data\"",
            "aclfile \"/var/lib/wharf/users.acl\"",
            "logfile \"\"",
        ] {
            assert!(config.lines().any(|l| l == line), "{line} in\n{config}");
        }
        assert!(!config.contains("daemonize yes"));
        let bad = ServerPaths {
            data: Path::new("/data\nmodule /tmp/x.so"),
            acl: Path::new("/acl"),
        };
        assert!(server_config(listen, 1, &limits, DEFAULT_POLICY, &bad).is_err());
        assert!(server_config(listen, 1, &Limits::default(), DEFAULT_POLICY, &paths).is_err());
    }
}
