//! Where the dyno manager learns what should run on its host: the [`DesiredSource`] boundary.
//!
//! Two implementations: [`crate::StoreSource`] reads the store directly (a server that runs
//! dynos itself, or the control plane's own host), and the agent of a host that joined a
//! control plane reads it over the control plane's API. The manager never knows which: it
//! reads the desired state, the apps' names and the slugs' archives through this trait alone.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use futures_util::future::BoxFuture;
use uuid::Uuid;

use crate::plan::Desired;

/// What a read of the desired state found for the apps in scope.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DesiredRead {
    pub desired: Desired,
    /// Apps the plan may act on: those read, and those that are gone. An app whose read
    /// failed is left out, so its dynos keep running while the source is away.
    pub scope: HashSet<Uuid>,
}

/// The desired state of the dynos of one host, as the dyno manager reads it.
///
/// Every method only reads: calling it again (after an error, or on the next pass) is always
/// safe, and an error means nothing was learnt (the caller keeps what it runs and asks again
/// later; it never stops dynos because a read failed).
pub trait DesiredSource: Send + Sync + 'static {
    /// The desired state of `apps` (all apps this host runs with `None`); `known` are the apps
    /// that have dynos here now, so that gone apps come into scope and get stopped. An app
    /// whose read failed is left out of `scope` (its dynos keep running).
    ///
    /// Called on every reconcile pass (every app periodically, the apps notified in between),
    /// and for one app when a one-off dyno starts. Each process type's numbers are the dynos
    /// this host runs (`1..=quantity` on a single host); an app in scope with no numbers here
    /// is read all the same, so that what it has here stops. An error means the apps could
    /// not be listed at all: the pass acts on nothing.
    fn read<'a>(
        &'a self,
        apps: Option<&'a HashSet<Uuid>>,
        known: &'a HashSet<Uuid>,
    ) -> BoxFuture<'a, anyhow::Result<DesiredRead>>;

    /// Every app's name by id (for taking up dynos a previous process left running). Called
    /// once at start; an app missing from the answer is gone, and its dynos are not taken
    /// up. An error means none are taken up: start-up fails and is retried by the caller.
    fn app_names(&self) -> BoxFuture<'_, anyhow::Result<HashMap<Uuid, String>>>;

    /// Makes sure the packed slug is at `path` (the builder's `slug_path` layout under this
    /// host's data dir) before it is extracted; idempotent; the store source has it already.
    ///
    /// Called before each extraction of a slug not yet extracted here, one call per slug at
    /// a time in this process. A slug already at `path` is left as it is. An error means the
    /// archive is not there (or not whole): the dyno's run fails (R99) and is tried again
    /// after its cool-off.
    fn fetch_slug<'a>(
        &'a self,
        app: Uuid,
        slug: Uuid,
        path: &'a Path,
    ) -> BoxFuture<'a, anyhow::Result<()>>;

    /// Whether the packed slugs [`DesiredSource::fetch_slug`] leaves are copies (fetched from
    /// a control plane), which go once no dyno here needs them; the store source's are the
    /// builder's own, which stay.
    fn slugs_are_copies(&self) -> bool {
        false
    }
}
