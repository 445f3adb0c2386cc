//! The executor: carries out the plan's actions and the API's stops and restarts on the
//! registry, re-checking each against the registry as it is at that moment, and logs every
//! state change in Heroku's words.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::logs::now_micros;
use crate::manager::{Shared, SHUTDOWN_GRACE};
use crate::messages;
use crate::plan::{Action, Desired, RestartReason};
use crate::registry::{DynoEntry, Intent, Registry, RunHandle};
use crate::runner::supervise;
use crate::state::DynoState;

impl Shared {
    /// Carries out one action, after checking it still applies to the registry as it is now.
    pub(crate) fn execute(
        self: &Arc<Self>,
        registry: &mut Registry,
        desired: &Desired,
        action: Action,
    ) {
        match action {
            Action::Start {
                app,
                name,
                release,
                size,
            } => {
                if self.closing.is_cancelled() || registry.find(app, &name, release).is_some() {
                    return;
                }
                let Some(wanted) = desired.apps.get(&app) else {
                    return;
                };
                let (Some(slug_id), Some(command)) = (
                    wanted.release.slug_id,
                    wanted.release.commands.get(name.process_type()),
                ) else {
                    return;
                };
                let now = now_micros();
                let id = Uuid::new_v4();
                registry.dynos.insert(
                    id,
                    DynoEntry {
                        id,
                        app_id: app,
                        app_name: wanted.name.clone(),
                        name,
                        release,
                        slug_id,
                        stack: wanted.release.stack.clone(),
                        command: command.clone(),
                        config: wanted
                            .release
                            .config
                            .iter()
                            .map(|(k, v)| (k.to_owned(), v.to_owned()))
                            .collect(),
                        size,
                        state: DynoState::Starting,
                        updated_at: now,
                        started_at: now,
                        crashes: 0,
                        next_restart: None,
                        cycle_at: None,
                        address: None,
                        container_id: None,
                        intent: None,
                        run: Some(RunHandle::new()),
                        one_off: false,
                    },
                );
                self.spawn_supervisor(id);
            }
            Action::Restart {
                app,
                name,
                release,
                reason,
            } => {
                let Some(id) = registry.find(app, &name, release).map(|d| d.id) else {
                    return;
                };
                let Some(state) = registry.dynos.get(&id).map(|d| d.state) else {
                    return;
                };
                match (reason, state) {
                    (RestartReason::Crashed, DynoState::Crashed) => {
                        self.restart_crashed(registry, id);
                    }
                    (RestartReason::Cycling, DynoState::Up) => {
                        drop(self.restart_in_place(registry, id, messages::CYCLING));
                    }
                    (RestartReason::Waking, DynoState::Idle) => {
                        drop(self.restart_in_place(registry, id, messages::UNIDLING));
                    }
                    _ => {}
                }
            }
            Action::Idle { app, name, release } => {
                if let Some(id) = registry.find(app, &name, release).map(|d| d.id) {
                    self.idle_dyno(registry, id);
                }
            }
            Action::Stop {
                app, name, release, ..
            } => {
                if let Some(id) = registry.find(app, &name, release).map(|d| d.id) {
                    drop(self.stop_dyno(registry, id));
                }
            }
        }
    }

    pub(crate) fn spawn_supervisor(self: &Arc<Self>, id: Uuid) {
        self.tasks.spawn(supervise(self.clone(), id));
    }

    /// Logs `message` and the state change, and makes the dyno's process run again: a crashed
    /// or idle dyno at once, a running one once its container is gone. The token is cancelled
    /// then.
    pub(crate) fn restart_in_place(
        self: &Arc<Self>,
        registry: &mut Registry,
        id: Uuid,
        message: &str,
    ) -> Option<CancellationToken> {
        let entry = registry.dynos.get_mut(&id)?;
        let (app_id, name) = (entry.app_id, entry.name.clone());
        match entry.state {
            DynoState::Crashed => {
                self.log(app_id, &name, message);
                self.restart_crashed(registry, id);
                None
            }
            DynoState::Idle if entry.run.is_none() => {
                self.log(app_id, &name, message);
                entry.run = Some(RunHandle::new());
                self.transition(registry, id, DynoState::Starting);
                self.spawn_supervisor(id);
                None
            }
            DynoState::Up | DynoState::Starting | DynoState::Idle => {
                if entry.intent == Some(Intent::Idle) {
                    // Still stopping to go idle: run again once that process is gone.
                    entry.intent = Some(Intent::Restart);
                    self.log(app_id, &name, message);
                    self.transition(registry, id, DynoState::Starting);
                    return None;
                }
                if entry.intent.is_some() {
                    return entry.run.as_ref().map(|run| run.done.clone());
                }
                self.log(app_id, &name, message);
                entry.intent = Some(Intent::Restart);
                let run = entry.run.clone();
                self.transition(registry, id, DynoState::Starting);
                run.map(|run| {
                    run.stop.cancel();
                    run.done
                })
            }
            DynoState::Down => None,
        }
    }

    /// Logs `Idling`, takes the dyno out of the routes (state `idle`) and has its supervisor
    /// stop its process; the dyno stays, without a container, until its app wakes.
    pub(crate) fn idle_dyno(&self, registry: &mut Registry, id: Uuid) {
        let Some(entry) = registry.dynos.get_mut(&id) else {
            return;
        };
        if !matches!(entry.state, DynoState::Up | DynoState::Starting) || entry.intent.is_some() {
            return;
        }
        entry.intent = Some(Intent::Idle);
        let (app_id, name) = (entry.app_id, entry.name.clone());
        if let Some(run) = &entry.run {
            run.stop.cancel();
        }
        self.log(app_id, &name, messages::IDLING);
        self.transition(registry, id, DynoState::Idle);
    }

    pub(crate) fn restart_crashed(self: &Arc<Self>, registry: &mut Registry, id: Uuid) {
        if self.closing.is_cancelled() {
            return;
        }
        let Some(entry) = registry.dynos.get_mut(&id) else {
            return;
        };
        if entry.state != DynoState::Crashed {
            return;
        }
        entry.run = Some(RunHandle::new());
        entry.next_restart = None;
        self.transition(registry, id, DynoState::Starting);
        self.spawn_supervisor(id);
    }

    /// Takes the dyno out of the routes (state `down`), then has its supervisor stop it; a
    /// crashed dyno, or an idle one without a process, is removed at once. Returns the token
    /// cancelled once it is gone.
    pub(crate) fn stop_dyno(&self, registry: &mut Registry, id: Uuid) -> Option<CancellationToken> {
        let entry = registry.dynos.get_mut(&id)?;
        match entry.state {
            DynoState::Down => entry.run.as_ref().map(|run| run.done.clone()),
            DynoState::Crashed | DynoState::Idle if entry.run.is_none() => {
                self.transition(registry, id, DynoState::Down);
                registry.dynos.remove(&id);
                None
            }
            DynoState::Starting | DynoState::Up | DynoState::Idle | DynoState::Crashed => {
                entry.intent = Some(Intent::Stop);
                let run = entry.run.clone();
                // Out of the route table before SIGTERM.
                self.transition(registry, id, DynoState::Down);
                run.map(|run| {
                    run.stop.cancel();
                    run.done
                })
            }
        }
    }

    /// Waits until every token is cancelled; an error after the stop timeout plus a grace.
    pub(crate) async fn await_runs(&self, waits: Vec<CancellationToken>) -> anyhow::Result<()> {
        let deadline = self.config.stop_timeout + SHUTDOWN_GRACE;
        let all = futures_join(waits);
        tokio::time::timeout(deadline, all)
            .await
            .map_err(|_| anyhow::anyhow!("dynos still stopping after {deadline:?}"))
    }

    /// Sets a dyno's state, logs the change in Heroku's words, and republishes the routes.
    pub(crate) fn transition(&self, registry: &mut Registry, id: Uuid, to: DynoState) {
        let Some(entry) = registry.dynos.get_mut(&id) else {
            return;
        };
        let from = entry.state;
        if from == to {
            return;
        }
        entry.state = to;
        entry.updated_at = now_micros();
        let (app_id, name) = (entry.app_id, entry.name.clone());
        self.log(app_id, &name, messages::state_changed(from, to));
        self.publish_routes(registry);
    }

    pub(crate) fn publish_routes(&self, registry: &Registry) {
        let table = registry.routes();
        self.routes.send_if_modified(|current| {
            if *current == table {
                false
            } else {
                *current = table;
                true
            }
        });
    }
}

async fn futures_join(tokens: Vec<CancellationToken>) {
    for token in tokens {
        token.cancelled().await;
    }
}
