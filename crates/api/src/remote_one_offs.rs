//! One-off dynos placed on hosts (`wharf run` once hosts joined). Each order waits in this
//! process's memory, as the rendezvous's secrets do, until the host's agent starts it (it
//! reads its orders with its desired state) and, for an attached one, takes the client's
//! connection (`GET /agent/one-offs/{id}/attach`). An order no host started within
//! [`ORDER_LIFETIME`] is dropped, as an unattached local one-off is.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;
use uuid::Uuid;
use wharf_api_types as api;

use crate::rendezvous::ClientStream;

/// How long an order waits for its host to start it.
pub const ORDER_LIFETIME: Duration = crate::rendezvous::SECRET_LIFETIME;

struct Order {
    host: Uuid,
    app: Uuid,
    one_off: api::AgentOneOff,
    /// For an attached one: where the client's connection arrives, until the agent takes it.
    client: Option<oneshot::Receiver<ClientStream>>,
    at: Instant,
}

/// The orders, by dyno id. Cheap to clone.
#[derive(Clone, Default)]
pub struct RemoteOneOffs {
    orders: Arc<Mutex<HashMap<Uuid, Order>>>,
}

impl RemoteOneOffs {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Order>> {
        self.orders.lock().expect("one-off orders poisoned")
    }

    /// Places `one_off` of `app` on `host`; `client` receives the client's connection for an
    /// attached one.
    pub fn add(
        &self,
        host: Uuid,
        app: Uuid,
        id: Uuid,
        one_off: api::AgentOneOff,
        client: Option<oneshot::Receiver<ClientStream>>,
    ) {
        self.lock().insert(
            id,
            Order {
                host,
                app,
                one_off,
                client,
                at: Instant::now(),
            },
        );
    }

    /// The orders `host` has still to start, with their apps. Forgets those past their
    /// lifetime, and those a host reported running (`running`, dyno ids) whose client, if
    /// any, was taken.
    pub fn for_host(&self, host: Uuid, running: &HashSet<String>) -> Vec<(Uuid, api::AgentOneOff)> {
        let mut orders = self.lock();
        orders.retain(|id, order| {
            order.at.elapsed() < ORDER_LIFETIME
                && !(running.contains(&id.to_string()) && order.client.is_none())
        });
        orders
            .values()
            .filter(|order| order.host == host && !running.contains(&order.one_off.id))
            .map(|order| (order.app, order.one_off.clone()))
            .collect()
    }

    /// The apps with a one-off dyno ordered on `host` (its agent may fetch their slugs and
    /// write their dynos' lines).
    pub fn apps_on(&self, host: Uuid) -> HashSet<Uuid> {
        self.lock()
            .values()
            .filter(|order| order.host == host && order.at.elapsed() < ORDER_LIFETIME)
            .map(|order| order.app)
            .collect()
    }

    /// The client's connection for the attached one-off `id` placed on `host`, taken once.
    pub fn take_client(&self, id: Uuid, host: Uuid) -> Option<oneshot::Receiver<ClientStream>> {
        let mut orders = self.lock();
        let order = orders.get_mut(&id).filter(|order| order.host == host)?;
        order.client.take()
    }
}

/// Restarts and stops of dynos on hosts, until their hosts take them: each action is listed
/// in its host's desired state for [`ORDER_LIFETIME`] and taken once (the agent remembers the
/// ids it took while they are listed). Cheap to clone.
#[derive(Clone, Default)]
pub struct RemoteActions {
    actions: Arc<Mutex<Vec<(Uuid, api::AgentAction, Instant)>>>,
}

impl RemoteActions {
    pub fn add(&self, host: Uuid, action: api::AgentAction) {
        let mut actions = self.actions.lock().expect("actions poisoned");
        actions.retain(|(_, _, at)| at.elapsed() < ORDER_LIFETIME);
        actions.push((host, action, Instant::now()));
    }

    /// The actions for `host`.
    pub fn for_host(&self, host: Uuid) -> Vec<api::AgentAction> {
        let mut actions = self.actions.lock().expect("actions poisoned");
        actions.retain(|(_, _, at)| at.elapsed() < ORDER_LIFETIME);
        actions
            .iter()
            .filter(|(on, _, _)| *on == host)
            .map(|(_, action, _)| action.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_off(id: Uuid) -> api::AgentOneOff {
        api::AgentOneOff {
            id: id.to_string(),
            app: Uuid::from_u128(9).to_string(),
            number: 1234,
            command: "bash".into(),
            env: vec![],
            size: "Basic".into(),
            attach: true,
            tty: false,
            user: "owner@example.com".into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_order_goes_to_its_host_once_and_is_forgotten_when_done_or_late() {
        let orders = RemoteOneOffs::default();
        let (host, other, app) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(9));
        let (attached, detached) = (Uuid::from_u128(10), Uuid::from_u128(11));
        let (_sender, receiver) = oneshot::channel();
        orders.add(host, app, attached, one_off(attached), Some(receiver));
        orders.add(host, app, detached, one_off(detached), None);
        let none = HashSet::new();
        assert_eq!(orders.for_host(host, &none).len(), 2);
        assert!(orders.for_host(other, &none).is_empty());
        assert_eq!(orders.apps_on(host), HashSet::from([app]));
        assert!(orders.apps_on(other).is_empty());
        // Only its host takes the client, once.
        assert!(orders.take_client(attached, other).is_none());
        assert!(orders.take_client(attached, host).is_some());
        assert!(orders.take_client(attached, host).is_none());
        // Running: neither is ordered again, and both are forgotten (the client was taken).
        let running: HashSet<String> = [attached, detached].iter().map(Uuid::to_string).collect();
        assert!(orders.for_host(host, &running).is_empty());
        assert!(orders.lock().is_empty());

        // Never started: dropped after its lifetime.
        orders.add(host, app, detached, one_off(detached), None);
        tokio::time::advance(ORDER_LIFETIME).await;
        assert!(orders.for_host(host, &none).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn an_action_is_listed_for_its_host_for_a_while() {
        let actions = RemoteActions::default();
        let (host, other) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let action = api::AgentAction {
            id: Uuid::from_u128(3).to_string(),
            app: Uuid::from_u128(9).to_string(),
            process_type: Some("web".into()),
            dyno: None,
            stop: false,
        };
        actions.add(host, action.clone());
        assert_eq!(actions.for_host(host), [action]);
        assert!(actions.for_host(other).is_empty());
        tokio::time::advance(ORDER_LIFETIME).await;
        assert!(actions.for_host(host).is_empty());
    }
}
