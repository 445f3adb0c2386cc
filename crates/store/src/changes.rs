//! Change notification between the processes that share a store: a writer announces what
//! changed, and every subscriber, in any process, hears it and reads the store again.
//!
//! On PostgreSQL an announcement is a `NOTIFY` on one channel, delivered to every session that
//! `LISTEN`s, in other processes too; on SQLite (one process) it goes over an in-process
//! broadcast. A notification is only a hint: subscribers also get [`Change::Reread`] every
//! [`REREAD_INTERVAL`], after their listening connection came back, and when they fell behind.
//! So a lost notification delays a change by at most that interval and never loses it, and a
//! subscriber must treat every change as "read the store again", never as the change itself.

use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::{broadcast, mpsc};
use uuid::Uuid;

use crate::{Backend, Result, Store};

/// How often every subscriber reads everything again, whatever it heard.
pub const REREAD_INTERVAL: Duration = Duration::from_secs(15);

/// The PostgreSQL channel announcements go out on.
const CHANNEL: &str = "wharf_changes";

/// How long a subscriber waits before listening again after its connection failed.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// Announcements a subscriber may fall behind by before it is told to read everything.
const BACKLOG: usize = 1024;

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Something desired of one app: a release, its formation, the app itself.
    App(Uuid),
    /// The hosts or the placements.
    Hosts,
    /// Anything may have changed: read everything.
    Reread,
}

impl Change {
    fn payload(self) -> String {
        match self {
            Change::App(id) => format!("app:{id}"),
            Change::Hosts => "hosts".to_owned(),
            Change::Reread => "reread".to_owned(),
        }
    }

    /// A payload from the channel; anything unknown (a newer writer's) means "read all".
    fn from_payload(payload: &str) -> Change {
        match payload.split_once(':') {
            Some(("app", id)) => Uuid::parse_str(id).map_or(Change::Reread, Change::App),
            _ if payload == "hosts" => Change::Hosts,
            _ => Change::Reread,
        }
    }
}

/// Where announcements travel for one store.
#[derive(Clone)]
pub(crate) enum Announcer {
    /// SQLite: this process only.
    Local(broadcast::Sender<Change>),
    /// PostgreSQL: `LISTEN` connections to this URL hear them.
    Postgres { url: std::sync::Arc<str> },
}

impl Announcer {
    pub(crate) fn new(backend: Backend, url: &str) -> Announcer {
        match backend {
            Backend::Sqlite => Announcer::Local(broadcast::channel(BACKLOG).0),
            Backend::Postgres => Announcer::Postgres { url: url.into() },
        }
    }
}

impl Store {
    /// Tells every subscriber, in every process, that `change` happened. Call it after the
    /// change committed. An error means the announcement may be lost: subscribers still see
    /// the change at their next re-read.
    pub async fn announce(&self, change: Change) -> Result<()> {
        match &self.announcer {
            Announcer::Local(sender) => {
                // No subscriber is not an error: nobody needs to hear it.
                let _ = sender.send(change);
            }
            Announcer::Postgres { .. } => {
                sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(CHANNEL)
                    .bind(change.payload())
                    .execute(&self.pool)
                    .await?;
            }
        }
        Ok(())
    }

    /// A feed of the changes announced from now on, with a [`Change::Reread`] first (the
    /// subscriber has read nothing yet) and at least every [`REREAD_INTERVAL`]. Needs a tokio
    /// runtime; the feed's listening task ends when the feed is dropped.
    pub fn changes(&self) -> ChangeFeed {
        let (sender, receiver) = mpsc::channel(BACKLOG);
        let task = match &self.announcer {
            Announcer::Local(local) => tokio::spawn(relay_local(local.subscribe(), sender)),
            Announcer::Postgres { url } => tokio::spawn(relay_postgres(url.clone(), sender)),
        };
        let mut reread = tokio::time::interval(REREAD_INTERVAL);
        reread.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ChangeFeed {
            receiver,
            reread,
            task,
        }
    }
}

/// Changes as a subscriber hears them; see [`Store::changes`].
pub struct ChangeFeed {
    receiver: mpsc::Receiver<Change>,
    reread: tokio::time::Interval,
    task: tokio::task::JoinHandle<()>,
}

impl ChangeFeed {
    /// The next change. Its first tick is immediate: a new subscriber reads everything once.
    pub async fn next(&mut self) -> Change {
        tokio::select! {
            change = self.receiver.recv() => change.unwrap_or(Change::Reread),
            _ = self.reread.tick() => Change::Reread,
        }
    }
}

impl Drop for ChangeFeed {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay_local(mut local: broadcast::Receiver<Change>, sender: mpsc::Sender<Change>) {
    loop {
        let change = match local.recv().await {
            Ok(change) => change,
            Err(broadcast::error::RecvError::Lagged(_)) => Change::Reread,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if sender.send(change).await.is_err() {
            return;
        }
    }
}

/// Listens on the channel for as long as the feed lives, connecting again after a failure
/// and then asking for a re-read (what was announced meanwhile was not heard).
async fn relay_postgres(url: std::sync::Arc<str>, sender: mpsc::Sender<Change>) {
    let mut connected_before = false;
    loop {
        match listen(&url).await {
            Ok(mut listener) => {
                if connected_before && sender.send(Change::Reread).await.is_err() {
                    return;
                }
                connected_before = true;
                loop {
                    // `try_recv` answers `None` when the connection was lost.
                    let change = match listener.try_recv().await {
                        Ok(Some(notification)) => Change::from_payload(notification.payload()),
                        Ok(None) => break,
                        Err(error) => {
                            tracing::warn!(%error, "store change feed: connection failed");
                            break;
                        }
                    };
                    if sender.send(change).await.is_err() {
                        return;
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "store change feed: cannot listen"),
        }
        if sender.is_closed() {
            return;
        }
        tokio::time::sleep(RECONNECT_DELAY).await;
    }
}

async fn listen(url: &str) -> anyhow::Result<PgListener> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_unknown_ones_mean_reread() {
        let id = Uuid::from_u128(7);
        for change in [Change::App(id), Change::Hosts, Change::Reread] {
            assert_eq!(Change::from_payload(&change.payload()), change);
        }
        for unknown in ["", "app:", "app:nope", "slugs", "hosts:1"] {
            assert_eq!(Change::from_payload(unknown), Change::Reread, "{unknown}");
        }
    }
}
