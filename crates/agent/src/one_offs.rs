//! Starting the one-off dynos (`wharf run`) the control plane places on this host: each once,
//! through the host's dyno manager; an attached one is handed the client's connection by the
//! control plane (an upgraded `GET /agent/one-offs/{id}/attach`) and served here as the
//! rendezvous serves a one-host server's: greeting, stdio both ways, the exit marker.

use std::collections::HashSet;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use wharf_api_types::AgentOneOff;
use wharf_dynos::{serve_attached, DynoManager, OneOffRequest};
use wharf_model::DynoSize;

use crate::client::ControlPlane;

/// Starts each one-off dyno `orders` lists, once, until `shutdown`.
pub async fn run(
    dynos: DynoManager,
    control_plane: ControlPlane,
    mut orders: watch::Receiver<Vec<AgentOneOff>>,
    shutdown: CancellationToken,
) {
    let mut started: HashSet<String> = HashSet::new();
    loop {
        let current = orders.borrow_and_update().clone();
        // An order leaves the list once this host reported its dyno (or it expired): it is
        // never listed again.
        started.retain(|id| current.iter().any(|order| order.id == *id));
        for order in current {
            if started.insert(order.id.clone()) {
                tokio::spawn(start(dynos.clone(), control_plane.clone(), order));
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            changed = orders.changed() => if changed.is_err() { return },
        }
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
