//! Running one add-on's server: starting it through the supervisor, waiting until it
//! answers, and talking to it as Wharf's own user.

use std::time::Instant;

use anyhow::Context;

use crate::process::{ProcessSpec, StopSignal};
use crate::resp::{Connection, Reply};
use crate::Resource;

use super::config::ADMIN_USER;
use super::disk::{self, AddonDir};
use super::{info, lock, server_key, ManagedRedis, ADMIN_TIMEOUT, READY_POLL, READY_TIMEOUT};

/// Lines of the server's log quoted when it does not come up (no secret is ever logged:
/// the config and ACL files hold none).
const LOG_LINES_IN_ERRORS: usize = 3;

impl ManagedRedis {
    /// Starts the add-on's server unless it runs, and waits until it answers.
    pub(super) async fn start(
        &self,
        resource: Resource,
        dir: &AddonDir,
        port: u16,
    ) -> anyhow::Result<()> {
        let key = server_key(resource);
        let fresh = !self.supervisor.supervises(&key);
        let died = fresh && info::ended_uncleanly(&dir.log_tail());
        let spec = ProcessSpec {
            program: self.settings.redis_server.clone(),
            args: vec![dir.config().into_os_string()],
            uid: self.user.uid,
            gid: self.user.gid,
            dir: dir.path.clone(),
            log: dir.log(),
            stop_signal: StopSignal::Term,
        };
        self.supervisor
            .ensure(&key, spec)
            .await
            .context("start redis-server")?;
        lock(&self.started).insert(resource.id);
        if died {
            self.event(
                resource,
                "Redis had stopped without shutting down cleanly: started again with its data \
                 (writes of its last second may be lost)",
            );
        }
        self.wait_ready(dir, port).await
    }

    /// Waits until the server answers Wharf's user, at most [`READY_TIMEOUT`].
    async fn wait_ready(&self, dir: &AddonDir, port: u16) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let attempt = async {
                let mut admin = self.admin(dir, port).await?;
                admin.command(&["PING"]).await
            };
            let error = match tokio::time::timeout(ADMIN_TIMEOUT, attempt).await {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(error)) => error,
                Err(_) => anyhow::anyhow!("no answer within {ADMIN_TIMEOUT:?}"),
            };
            if Instant::now() >= deadline {
                let log = dir.log_tail();
                let mut last: Vec<&str> = log
                    .lines()
                    .rev()
                    .filter(|line| !line.trim().is_empty())
                    .take(LOG_LINES_IN_ERRORS)
                    .collect();
                last.reverse();
                anyhow::bail!(
                    "redis-server did not answer within {READY_TIMEOUT:?} ({error:#}); its log {} \
                     ends with: {}",
                    dir.log().display(),
                    last.join(" | ")
                );
            }
            tokio::time::sleep(READY_POLL).await;
        }
    }

    /// A connection to the add-on's server logged in as Wharf's user.
    async fn admin(&self, dir: &AddonDir, port: u16) -> anyhow::Result<Connection> {
        let password = disk::read_secret(&dir.admin_password())?
            .context("the Redis add-on has no admin password")?;
        let login = async {
            let mut connection = Connection::connect(&self.address(port).to_string()).await?;
            connection
                .command(&["AUTH", ADMIN_USER, &password])
                .await
                .context("log in to the add-on's Redis as Wharf")?;
            anyhow::Ok(connection)
        };
        tokio::time::timeout(ADMIN_TIMEOUT, login)
            .await
            .map_err(|_| {
                anyhow::anyhow!("the add-on's Redis did not answer within {ADMIN_TIMEOUT:?}")
            })?
    }

    /// Runs `commands` as Wharf's user, each bounded by [`ADMIN_TIMEOUT`].
    pub(super) async fn administer(
        &self,
        dir: &AddonDir,
        port: u16,
        commands: &[&[&str]],
    ) -> anyhow::Result<Vec<Reply>> {
        let mut admin = self.admin(dir, port).await?;
        let mut replies = Vec::with_capacity(commands.len());
        for command in commands {
            let reply = tokio::time::timeout(ADMIN_TIMEOUT, admin.command(command))
                .await
                .map_err(|_| {
                    anyhow::anyhow!("the add-on's Redis did not answer within {ADMIN_TIMEOUT:?}")
                })??;
            replies.push(reply);
        }
        Ok(replies)
    }
}
