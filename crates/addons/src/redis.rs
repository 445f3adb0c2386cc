//! `wharf-redis` (also `heroku-redis`): each add-on gets an ACL user and a key prefix on a
//! Redis server the operator runs (`WHARF_ADDON_REDIS_URL`, a URL whose user may run `ACL`).
//!
//! What the isolation gives: the add-on's user (`addon_<hex>_<generation>`, with a random
//! password) may read and write only keys and Pub/Sub channels starting with the add-on's
//! prefix `addon_<hex>:` (given to the app as `<ATTACHMENT>_KEY_PREFIX`), may not run
//! `@admin` or `@dangerous` commands (`FLUSHALL`, `FLUSHDB`, `KEYS`, `CONFIG`, `ACL`, ...) nor
//! `SELECT` another database, and so can neither read nor change another add-on's data.
//! What it does not give: `SCAN` still lists every key name in the database (not their
//! values), and memory and CPU are shared with every other add-on on the server. An app needing
//! more should get a Redis server of its own.
//!
//! Rotation adds the next generation's user; revoking the previous ones deletes them, which
//! closes their connections. Deprovisioning deletes every user of the add-on and its keys.
//! Users are saved with `ACL SAVE` when the server has an ACL file; without one, a restart of
//! Redis forgets them, so operators should configure `aclfile`.

use std::net::{IpAddr, SocketAddr};

use anyhow::Context;
use futures_util::future::BoxFuture;
use serde_json::json;

use crate::exposure::{self, AddonServer, Protocol};
use crate::resp::{Connection, Reply};
use crate::{random_password, AddonConfig, Limits, Plan, Provider, Provisioned, Resource, Service};

/// Keys `SCAN` asks for at a time when deprovisioning deletes an add-on's keys.
const SCAN_BATCH: &str = "500";

pub struct RedisProvider {
    /// `host:port`, where the server wiring reaches the server.
    address: String,
    /// `host:port` in apps' URLs, where dynos reach the server.
    app_address: String,
    /// Set when the provider was told where dynos reach the server.
    dyno_server: Option<AddonServer>,
    admin_user: Option<String>,
    admin_password: Option<String>,
    service: Service,
}

/// The setting that names the admin URL, for errors.
const SETTING: &str = "WHARF_ADDON_REDIS_URL";

/// What an admin URL holds.
#[derive(Debug, PartialEq, Eq)]
struct AdminUrl {
    host: String,
    port: u16,
    user: Option<String>,
    password: Option<String>,
}

impl AdminUrl {
    /// `redis://[user:password@]host[:port][/db]`.
    fn parse(admin_url: &str) -> anyhow::Result<AdminUrl> {
        let rest = admin_url.strip_prefix("redis://").with_context(|| {
            format!("the Redis add-on admin URL ({SETTING}) must start with redis://")
        })?;
        let rest = rest.split('/').next().unwrap_or(rest);
        let (userinfo, address) = match rest.rsplit_once('@') {
            Some((userinfo, address)) => (Some(userinfo), address),
            None => (None, rest),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(userinfo) => match userinfo.split_once(':') {
                Some((user, password)) => (
                    (!user.is_empty()).then(|| user.to_owned()),
                    Some(password.to_owned()),
                ),
                None => (Some(userinfo.to_owned()), None),
            },
        };
        let (host, port) = match address.rsplit_once(':') {
            // `[::1]:6379`, `db:6380`; a bare IPv6 address has more colons than a port.
            Some((host, port)) if !host.contains(':') || host.ends_with(']') => (
                host,
                port.parse().with_context(|| {
                    format!("the Redis add-on admin URL ({SETTING}) has a bad port {port:?}")
                })?,
            ),
            _ => (address, 6379),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        anyhow::ensure!(
            !host.is_empty(),
            "the Redis add-on admin URL ({SETTING}) has no host: use redis://host:port"
        );
        Ok(AdminUrl {
            host: host.to_owned(),
            port,
            user,
            password,
        })
    }
}

/// `host:port`, with brackets around an IPv6 address.
fn host_port(host: &str, port: u16) -> String {
    match host.contains(':') {
        true => format!("[{host}]:{port}"),
        false => format!("{host}:{port}"),
    }
}

/// The server's address from its admin URL, resolved once: where the server wiring finds out
/// where dynos reach it ([`crate::exposure::dyno_address`]).
pub async fn server_address(admin_url: &str) -> anyhow::Result<SocketAddr> {
    let url = AdminUrl::parse(admin_url)?;
    exposure::resolve(&url.host, url.port, SETTING).await
}

impl RedisProvider {
    /// A provider administering the server at `admin_url` (`redis://[user:password@]host:port`).
    /// Apps' URLs name `app_host` (where dynos reach the server), or with `None` the admin
    /// URL's host.
    pub fn new(admin_url: &str, app_host: Option<IpAddr>) -> anyhow::Result<RedisProvider> {
        let url = AdminUrl::parse(admin_url)?;
        let address = host_port(&url.host, url.port);
        let app_address = match app_host {
            Some(host) => host_port(&host.to_string(), url.port),
            None => address.clone(),
        };
        let (admin_user, admin_password) = (url.user, url.password);
        Ok(RedisProvider {
            address,
            app_address,
            dyno_server: app_host.map(|host| AddonServer {
                protocol: Protocol::Redis,
                address: SocketAddr::new(host, url.port),
            }),
            admin_user,
            admin_password,
            service: service(vec![
                Plan {
                    name: "mini".into(),
                    description: "An ACL user and key prefix on the shared server".into(),
                    default: true,
                    limits: Limits::default(),
                },
                Plan {
                    name: "premium-0".into(),
                    description: "Same as mini (for Heroku app.json files)".into(),
                    default: false,
                    limits: Limits::default(),
                },
            ]),
        })
    }

    async fn admin(&self) -> anyhow::Result<Connection> {
        let mut connection = Connection::connect(&self.address).await?;
        if let Some(password) = &self.admin_password {
            let mut args = vec!["AUTH"];
            if let Some(user) = &self.admin_user {
                args.push(user);
            }
            args.push(password);
            connection
                .command(&args)
                .await
                .context("authenticate to the Redis add-on server")?;
        }
        Ok(connection)
    }

    /// Creates (or gives a new password to) the user of `generation`.
    async fn user(
        &self,
        admin: &mut Connection,
        resource: Resource,
        generation: i64,
    ) -> anyhow::Result<Provisioned> {
        let user = format!("{}_{generation}", resource.base_name());
        let prefix = key_prefix(resource);
        let password = random_password();
        admin
            .command(&[
                "ACL",
                "SETUSER",
                &user,
                "reset",
                "on",
                &format!(">{password}"),
                &format!("~{prefix}*"),
                &format!("&{prefix}*"),
                "+@all",
                "-@admin",
                "-@dangerous",
                "-select",
            ])
            .await
            .context("create the add-on's Redis user")?;
        save_acl(admin).await?;
        let url = format!("redis://{user}:{password}@{}", self.app_address);
        Ok(Provisioned {
            config: AddonConfig::from([("URL".to_owned(), url), ("KEY_PREFIX".to_owned(), prefix)]),
            state: json!({ "generation": generation }),
        })
    }

    /// Every user of the resource, every generation.
    async fn users(
        &self,
        admin: &mut Connection,
        resource: Resource,
    ) -> anyhow::Result<Vec<String>> {
        let prefix = format!("{}_", resource.base_name());
        let Reply::Array(Some(users)) = admin.command(&["ACL", "USERS"]).await? else {
            anyhow::bail!("unexpected reply to ACL USERS");
        };
        Ok(users
            .iter()
            .filter_map(Reply::text)
            .filter(|user| user.starts_with(&prefix))
            .collect())
    }
}

/// The `wharf-redis` service with `plans`, wherever its servers are: the names users and
/// app.json files know it by.
pub(crate) fn service(plans: Vec<Plan>) -> Service {
    Service {
        name: "wharf-redis".into(),
        aliases: vec!["heroku-redis".into()],
        human_name: "Wharf Redis".into(),
        default_attachment: "REDIS".into(),
        attachment_prefix: "HEROKU_REDIS".into(),
        addon_name_prefix: "redis".into(),
        plans,
    }
}

/// Keys and channels of the add-on start with this.
pub fn key_prefix(resource: Resource) -> String {
    format!("{}:", resource.base_name())
}

fn generation(state: &serde_json::Value) -> anyhow::Result<i64> {
    state
        .get("generation")
        .and_then(serde_json::Value::as_i64)
        .context("the add-on's provider state has no credential generation")
}

/// Writes the users to the server's ACL file, when it has one.
async fn save_acl(admin: &mut Connection) -> anyhow::Result<()> {
    match admin.raw(&["ACL", "SAVE"]).await? {
        Reply::Error(message) if message.contains("not configured") => Ok(()),
        Reply::Error(message) => anyhow::bail!("Redis refused ACL SAVE: {message}"),
        _ => Ok(()),
    }
}

impl Provider for RedisProvider {
    fn service(&self) -> &Service {
        &self.service
    }

    fn dyno_server(&self) -> Option<AddonServer> {
        self.dyno_server
    }

    fn provision<'a>(
        &'a self,
        resource: Resource,
        _plan: &'a Plan,
        _options: &'a AddonConfig,
    ) -> BoxFuture<'a, anyhow::Result<Provisioned>> {
        Box::pin(async move {
            let mut admin = self.admin().await?;
            self.user(&mut admin, resource, 1).await
        })
    }

    fn rotate<'a>(
        &'a self,
        resource: Resource,
        state: &'a serde_json::Value,
    ) -> BoxFuture<'a, anyhow::Result<Provisioned>> {
        Box::pin(async move {
            let next = generation(state)? + 1;
            let mut admin = self.admin().await?;
            self.user(&mut admin, resource, next).await
        })
    }

    fn revoke_previous<'a>(
        &'a self,
        resource: Resource,
        state: &'a serde_json::Value,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let current = format!("{}_{}", resource.base_name(), generation(state)?);
            let mut admin = self.admin().await?;
            for user in self.users(&mut admin, resource).await? {
                if user != current {
                    // Deleting a user also closes its connections.
                    admin.command(&["ACL", "DELUSER", &user]).await?;
                }
            }
            save_acl(&mut admin).await
        })
    }

    fn deprovision<'a>(
        &'a self,
        resource: Resource,
        _state: &'a serde_json::Value,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let mut admin = self.admin().await?;
            for user in self.users(&mut admin, resource).await? {
                admin.command(&["ACL", "DELUSER", &user]).await?;
            }
            save_acl(&mut admin).await?;
            let pattern = format!("{}*", key_prefix(resource));
            let mut cursor = "0".to_owned();
            loop {
                let reply = admin
                    .command(&["SCAN", &cursor, "MATCH", &pattern, "COUNT", SCAN_BATCH])
                    .await?;
                let Reply::Array(Some(parts)) = reply else {
                    anyhow::bail!("unexpected reply to SCAN");
                };
                let (Some(next), Some(Reply::Array(Some(keys)))) = (parts.first(), parts.get(1))
                else {
                    anyhow::bail!("unexpected reply to SCAN");
                };
                let keys: Vec<String> = keys.iter().filter_map(Reply::text).collect();
                if !keys.is_empty() {
                    let mut args = vec!["UNLINK"];
                    args.extend(keys.iter().map(String::as_str));
                    admin
                        .command(&args)
                        .await
                        .context("delete the add-on's keys")?;
                }
                cursor = next.text().context("unexpected SCAN cursor")?;
                if cursor == "0" {
                    return Ok(());
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_urls() {
        let check = |url: &str, address: &str, user: Option<&str>, password: Option<&str>| {
            let provider = RedisProvider::new(url, None).expect("valid URL");
            assert_eq!(provider.address, address);
            assert_eq!(provider.app_address, address);
            assert_eq!(provider.dyno_server, None);
            assert_eq!(provider.admin_user.as_deref(), user);
            assert_eq!(provider.admin_password.as_deref(), password);
        };
        check("redis://127.0.0.1:6379", "127.0.0.1:6379", None, None);
        check("redis://localhost", "localhost:6379", None, None);
        check("redis://:pw@db:6380/0", "db:6380", None, Some("pw"));
        check(
            "redis://admin:pw@db:6380",
            "db:6380",
            Some("admin"),
            Some("pw"),
        );
        check("redis://[::1]:6380", "[::1]:6380", None, None);
        check("redis://[::1]", "[::1]:6379", None, None);
        assert!(RedisProvider::new("http://db", None).is_err());
        assert!(RedisProvider::new("redis://db:port", None).is_err());
        assert!(RedisProvider::new("redis://", None).is_err());
    }

    #[test]
    fn apps_get_the_host_dynos_reach() {
        let gateway: IpAddr = "198.19.0.1".parse().expect("an address");
        let provider =
            RedisProvider::new("redis://:pw@127.0.0.1:6380", Some(gateway)).expect("valid URL");
        assert_eq!(provider.address, "127.0.0.1:6380");
        assert_eq!(provider.app_address, "198.19.0.1:6380");
        assert_eq!(
            provider
                .dyno_server()
                .map(|server| server.address.to_string()),
            Some("198.19.0.1:6380".to_owned())
        );
    }
}
