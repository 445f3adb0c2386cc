//! Add-ons, their attachments, and the add-on services and plans on offer.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::NamedRef;

/// A plan's price. Wharf bills nothing: `cents` is 0 (Heroku's CLI shows "free").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Price {
    pub cents: i64,
    pub unit: String,
    pub contract: bool,
    pub metered: bool,
}

impl Price {
    pub fn free() -> Price {
        Price {
            cents: 0,
            unit: "month".into(),
            contract: false,
            metered: false,
        }
    }
}

/// The price an add-on is billed at (Heroku's CLI shows this one in `addons`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BilledPrice {
    pub cents: i64,
    pub contract: bool,
    pub unit: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddonPlanRef {
    pub id: String,
    /// `service:plan` (`wharf-postgresql:mini`).
    pub name: String,
    pub price: Price,
}

/// `GET /apps/{app}/addons/{addon}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Addon {
    pub id: String,
    pub name: String,
    /// The app that created the add-on (Heroku's billing app).
    pub app: NamedRef,
    pub addon_service: NamedRef,
    pub plan: AddonPlanRef,
    pub billed_price: Option<BilledPrice>,
    /// `provisioning`, `provisioned` or `deprovisioned`.
    pub state: String,
    /// The names of the config vars the add-on sets on this app (never their values).
    pub config_vars: Vec<String>,
    pub provision_message: Option<String>,
    pub provider_id: String,
    pub web_url: Option<String>,
    pub actions: Vec<serde_json::Value>,
    pub created_at: String,
    pub updated_at: String,
}

/// `plan` in a create request: Heroku's clients send `{"name": "..."}` or a plain string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PlanSpec {
    Name(String),
    Object { name: String },
}

impl PlanSpec {
    pub fn name(&self) -> &str {
        match self {
            PlanSpec::Name(name) | PlanSpec::Object { name } => name,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `POST /apps/{app}/addons`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddonCreate {
    pub plan: PlanSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment: Option<AttachmentSpec>,
    /// Options for the provider. Heroku's CLI sends `-- --flag` as `true`, so values may be
    /// strings, booleans or numbers.
    #[serde(default)]
    pub config: BTreeMap<String, serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm: Option<String>,
}

/// The add-on an attachment refers to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentAddon {
    pub id: String,
    pub name: String,
    pub app: NamedRef,
}

/// `GET /addon-attachments`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddonAttachment {
    pub id: String,
    /// `DATABASE`: the app's config vars are `DATABASE_URL` and so on.
    pub name: String,
    pub app: NamedRef,
    pub addon: AttachmentAddon,
    pub namespace: Option<String>,
    pub web_url: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// A reference to a resource by name or id: a plain string (as Wharf's CLI sends) or an
/// object `{"name": ...}` / `{"id": ...}` (as Heroku's CLI sends).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Identity {
    Plain(String),
    Object {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
}

impl Identity {
    /// The name, else the id (empty when the object has neither).
    pub fn value(&self) -> &str {
        match self {
            Identity::Plain(value) => value,
            Identity::Object { id, name } => name.as_deref().or(id.as_deref()).unwrap_or(""),
        }
    }
}

/// `POST /addon-attachments`: attach an add-on (by name or id) to an app (by name or id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentCreate {
    pub addon: Identity,
    pub app: Identity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm: Option<String>,
}

/// `GET /addon-services`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddonService {
    pub id: String,
    pub name: String,
    pub human_name: String,
    /// Other names that resolve to this service (a Wharf extension).
    pub aliases: Vec<String>,
    pub state: String,
    pub created_at: String,
    pub updated_at: String,
    /// Whether dynos get in to the service's server without a password (a Wharf
    /// extension): `null` when not checked (dynos share the host's network, or the service
    /// has no server of its own).
    #[serde(default)]
    pub dyno_access: Option<AddonDynoAccess>,
}

/// What a dyno meets at an add-on service's server, from the server's last probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddonDynoAccess {
    /// `password_required`, `open` (dynos get in without a password: new add-ons are refused
    /// unless the operator accepted the risk) or `unreachable` (dynos cannot use it).
    pub state: String,
    /// Where dynos reach the server, and what the operator should change.
    pub message: String,
}

/// `GET /addon-services/{service}/plans`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddonPlan {
    pub id: String,
    /// `service:plan`.
    pub name: String,
    pub human_name: String,
    pub description: String,
    pub default: bool,
    pub addon_service: NamedRef,
    pub price: Price,
    pub state: String,
    pub created_at: String,
    pub updated_at: String,
}

/// `POST /actions/addons/resolve`: find an add-on by name, optionally within an app and
/// service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddonResolve {
    pub addon: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addon_service: Option<String>,
}

/// `POST /actions/addon-attachments/resolve`: find attachments by name, optionally within an
/// app and service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentResolve {
    pub addon_attachment: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addon_service: Option<String>,
}

/// One row of `GET /apps/{app}/addons/{addon}/info` (a Wharf extension, what `pg:info` and
/// `redis:info` print): a label and its value, never a credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddonInfoRow {
    pub name: String,
    pub value: String,
}

/// `PATCH /apps/{app}/addons/{addon}/settings` (a Wharf extension): settings of the add-on's
/// resource, such as Redis's `maxmemory-policy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddonSettings {
    pub settings: std::collections::BTreeMap<String, String>,
}

/// A backup of an add-on's data (`GET /apps/{app}/addons/{addon}/backups`, a Wharf
/// extension, what `pg:backups` lists).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddonBackup {
    /// `b001`: numbered per add-on, never reused.
    pub name: String,
    pub addon: NamedRef,
    pub created_at: String,
    /// Bytes.
    pub size: u64,
}

/// `POST /apps/{app}/addons/{addon}/actions/restore` (a Wharf extension): replaces the
/// add-on's data with a backup of its own, or of an add-on of the same service on `from_app`
/// (Heroku's `APP::b001`), which the caller must have access to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddonRestore {
    pub backup: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_app: Option<String>,
}
