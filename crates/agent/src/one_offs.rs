//! What the control plane orders this host to do once, through its dyno manager: start the
//! one-off dynos (`wharf run`) it places here, and restart or stop dynos (`ps:restart`,
//! `ps:stop`). An attached one-off is handed the client's connection by the control plane (an
//! upgraded `GET /agent/one-offs/{id}/attach`) and served here as the rendezvous serves a
//! one-host server's: greeting, stdio both ways, the exit marker.

use std::collections::HashSet;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use wharf_api_types::{AgentAction, AgentOneOff};
use wharf_dynos::{serve_attached, DynoManager, OneOffRequest, Target};
use wharf_model::DynoSize;

use crate::client::ControlPlane;

/// What the last read of this host's desired state ordered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Orders {
    pub one_offs: Vec<AgentOneOff>,
    pub actions: Vec<AgentAction>,
}

/// Carries out each order `orders` lists, once, until `shutdown`.
pub async fn run(
    dynos: DynoManager,
    control_plane: ControlPlane,
    mut orders: watch::Receiver<Orders>,
    shutdown: CancellationToken,
) {
    let mut taken: HashSet<String> = HashSet::new();
    loop {
        let current = orders.borrow_and_update().clone();
        // An order leaves the list once done (this host reported its dyno) or expired: it is
        // never listed again.
        taken.retain(|id| {
            current.one_offs.iter().any(|order| order.id == *id)
                || current.actions.iter().any(|action| action.id == *id)
        });
        for order in current.one_offs {
            if taken.insert(order.id.clone()) {
                tokio::spawn(start(dynos.clone(), control_plane.clone(), order));
            }
        }
        for action in current.actions {
            if taken.insert(action.id.clone()) {
                tokio::spawn(act(dynos.clone(), action));
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            changed = orders.changed() => if changed.is_err() { return },
        }
    }
}

/// Restarts or stops the dynos `action` names.
async fn act(dynos: DynoManager, action: AgentAction) {
    let Ok(app) = Uuid::parse_str(&action.app) else {
        tracing::warn!(action = action.id, "an action names no app");
        return;
    };
    let target = match (action.process_type, action.dyno) {
        (_, Some(dyno)) => Target::Dyno(dyno),
        (Some(process_type), None) => Target::Type(process_type),
        (None, None) => Target::All,
    };
    let done = if action.stop {
        dynos.stop(app, target).await
    } else {
        dynos.restart(app, target).await
    };
    if let Err(error) = done {
        tracing::warn!(%app, "restart or stop dynos: {error:#}");
    }
}

async fn start(dynos: DynoManager, control_plane: ControlPlane, order: AgentOneOff) {
    let (Ok(app), Ok(id)) = (Uuid::parse_str(&order.app), Uuid::parse_str(&order.id)) else {
        tracing::warn!(
            one_off = order.id,
            "a one-off order names no app or dyno id"
        );
        return;
    };
    let size = match DynoSize::parse(&order.size) {
        Ok(size) => size,
        Err(error) => {
            tracing::warn!(one_off = order.id, "a one-off order's size: {error}");
            return;
        }
    };
    let request = OneOffRequest {
        id: Some(id),
        number: Some(order.number),
        command: order.command,
        env: order.env,
        size,
        attach: order.attach,
        tty: order.tty,
        user: order.user,
    };
    let one_off = match dynos.run_one_off(app, request).await {
        Ok(one_off) => one_off,
        Err(error) => {
            tracing::warn!(one_off = %id, "start a one-off dyno: {error:?}");
            return;
        }
    };
    let Some(handle) = one_off.attach else {
        return;
    };
    // Dropping the handle unattached removes the dyno: no client, no run.
    match control_plane.attach(id).await {
        Ok(client) => {
            if let Err(error) = serve_attached(client, handle).await {
                tracing::debug!(one_off = %id, "attached one-off: connection ended: {error}");
            }
        }
        Err(error) => tracing::warn!(one_off = %id, "{error:#}"),
    }
}
