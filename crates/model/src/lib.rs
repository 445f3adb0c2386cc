//! Wharf's domain: validated names, config vars, the release ledger, the formation and dyno
//! sizes. Everything here is plain data and pure functions: no IO, no async, no SQL, no HTTP.

mod account;
mod addon;
mod app;
mod build;
mod buildpack;
mod config;
mod domain;
mod formation;
mod host;
mod placement;
mod release;
mod size;
mod stack;

pub use account::{Account, Email};
pub use addon::{
    addon_name, attach_description, config_var_name, default_attachment_name, detach_description,
    parse_attachment_name, rotate_description, Addon, AddonAttachment, AddonState,
};
pub use app::{generate_app_name, App, AppName, Collaborator};
pub use build::{Build, BuildStatus};
pub use buildpack::{
    BuildpackName, BuildpackRegistration, BUILDPACK_NAME_MAX, RESERVED_BUILDPACK_NAMES,
};
pub use config::{check_env_value, ConfigChanges, ConfigKey, ConfigVars, CONFIG_VARS_MAX_BYTES};
pub use domain::{
    certificate_covers, generate_sni_endpoint_name, Domain, Hostname, SniEndpoint, SniEndpointRef,
};
pub use formation::{
    apply_formation_updates, initial_quantity, FormationEntry, FormationUpdate, ProcessType,
    Quantity, ScaleError, MAX_QUANTITY,
};
pub use host::{Host, HostName, HostState, HEARTBEAT_INTERVAL, LEASE};
pub use placement::{place, Demand, HostCapacity, Placement, Slot};
pub use release::{NewRelease, ProcessTypes, Release, ReleaseStatus, Slug};
pub use size::DynoSize;
pub use stack::{StackName, StackSource};

/// A rule that input broke, with a message that says what was wrong and what to do.
/// The API turns it into a 422 `invalid_params` error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl Invalid {
    pub fn new(message: impl Into<String>) -> Self {
        Invalid(message.into())
    }
}
