//! The add-on lifecycle around the providers: provision (record first, then the provider, then
//! config vars and a release), destroy (detach in a release, then the provider, then forget),
//! rotate (new credentials in a release, the old ones revoked once the dynos restarted), and
//! start-up reconciliation of whatever a crash interrupted.
//!
//! Provider calls run in their own task, so a client that goes away mid-request does not
//! cancel them half way; start-up reconciliation covers a server that goes away.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use uuid::Uuid;
use wharf_addons::{AddonConfig, Plan, Provider, Resource};
use wharf_model::{Account, Addon, AddonState, Release};

use crate::error::ApiError;
use crate::ApiState;

/// The longest a rotation waits for the dynos to restart with the new credentials before it
/// revokes the old ones anyway (a dyno that keeps crashing must not keep them alive).
const ROTATION_GRACE: Duration = Duration::from_secs(10 * 60);
/// How often a rotation looks at the dynos while it waits.
const RESTART_POLL: Duration = Duration::from_secs(1);

/// The provider of a stored add-on's service.
pub(crate) fn provider_of(state: &ApiState, addon: &Addon) -> Result<Arc<dyn Provider>, ApiError> {
    state
        .addons
        .provider(&addon.service)
        .cloned()
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                format!(
                    "The add-on service {} is not set up on this server any more: the operator \
                 must configure it again",
                    addon.service
                ),
            )
        })
}

fn provider_failed(service: &str, what: &str) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "provider_error",
        format!(
            "{service} could not {what}: the server's log says why; try again, or ask the \
             operator"
        ),
    )
}

pub(crate) fn provider_state(addon: &Addon) -> serde_json::Value {
    serde_json::from_str(&addon.provider_state).unwrap_or(serde_json::Value::Null)
}

/// Refuses a new add-on of `service` while its server lets dynos in without a password,
/// unless the operator accepted the risk (`WHARF_ADDONS_ALLOW_OPEN_SERVERS`). Probes the server
/// again first, so a fixed server needs no restart; the list of services shows this probe.
pub(crate) async fn check_dyno_access(state: &ApiState, service: &str) -> Result<(), ApiError> {
    state
        .addons
        .check_provisioning(service)
        .await
        .map_err(|refusal| {
            tracing::warn!(service, "refused a new add-on: {refusal}");
            ApiError::invalid(refusal)
        })
}

/// Writes `app[api]` lines for a release an add-on change made and reconciles the app's dynos.
pub(crate) fn announce(state: &ApiState, app_id: Uuid, release: &Release, by: &Account) {
    tracing::info!(app = %app_id, release = release.version, "{}", release.description);
    state.changed(
        app_id,
        &[
            format!("{} by {}", release.description, by.email),
            format!("Release v{} created by {}", release.version, by.email),
        ],
    );
}

/// Provisions a recorded (`provisioning`) add-on and attaches it. On a provider failure the
/// provider cleans up and the record goes; if even that fails, the add-on is left
/// `deprovisioning` for start-up to finish.
pub(crate) async fn provision(
    state: ApiState,
    addon: Addon,
    provider: Arc<dyn Provider>,
    plan: Plan,
    options: AddonConfig,
    user: Account,
) -> Result<Addon, ApiError> {
    let task = tokio::spawn(async move {
        let resource = Resource { id: addon.id };
        let provisioned = match provider.provision(resource, &plan, &options).await {
            Ok(provisioned) => provisioned,
            Err(error) => {
                tracing::error!(
                    addon = %addon.name,
                    error = format!("{error:#}"),
                    "provision add-on"
                );
                abandon(&state, &addon, provider.as_ref(), &user).await;
                return Err(provider_failed(&addon.service, "create the add-on"));
            }
        };
        let (addon, release) = state
            .store
            .finish_provisioning(
                addon.id,
                &provisioned.state.to_string(),
                &provisioned.config,
                &user,
            )
            .await?;
        if let Some(release) = release {
            announce(&state, addon.app_id, &release, &user);
        }
        Ok(addon)
    });
    task.await
        .map_err(|error| ApiError::internal(&anyhow::Error::new(error)))?
}

/// Undoes a provisioning that failed.
async fn abandon(state: &ApiState, addon: &Addon, provider: &dyn Provider, user: &Account) {
    let resource = Resource { id: addon.id };
    match provider
        .deprovision(resource, &serde_json::Value::Null)
        .await
    {
        Ok(()) => {
            if let Err(error) = state.store.forget_addon(addon.id).await {
                tracing::error!(addon = %addon.name, error = format!("{error:#}"), "forget add-on");
            }
        }
        Err(error) => {
            tracing::error!(
                addon = %addon.name,
                error = format!("{error:#}"),
                "clean up after a failed provisioning: left for start-up"
            );
            if let Err(error) = state.store.begin_deprovisioning(addon.id, user).await {
                tracing::error!(addon = %addon.name, error = format!("{error:#}"), "mark add-on");
            }
        }
    }
}

/// Detaches the add-on from every app (a release each), destroys its resource and forgets it.
pub(crate) async fn destroy(state: ApiState, addon: Addon, user: Account) -> Result<(), ApiError> {
    let provider = provider_of(&state, &addon)?;
    if let Some(busy) = provider.busy(Resource { id: addon.id }) {
        return Err(ApiError::conflict(format!(
            "{} cannot be destroyed now: {busy}; try again when it finishes",
            addon.name
        )));
    }
    let task = tokio::spawn(async move {
        for (app_id, release) in state.store.begin_deprovisioning(addon.id, &user).await? {
            announce(&state, app_id, &release, &user);
        }
        finish_deprovisioning(&state, &addon, provider.as_ref()).await
    });
    task.await
        .map_err(|error| ApiError::internal(&anyhow::Error::new(error)))?
}

async fn finish_deprovisioning(
    state: &ApiState,
    addon: &Addon,
    provider: &dyn Provider,
) -> Result<(), ApiError> {
    let resource = Resource { id: addon.id };
    if let Err(error) = provider.deprovision(resource, &provider_state(addon)).await {
        tracing::error!(
            addon = %addon.name,
            error = format!("{error:#}"),
            "deprovision add-on: left for start-up"
        );
        return Err(provider_failed(
            &addon.service,
            "destroy the add-on's resource (it is detached; the server retries when it starts)",
        ));
    }
    state.store.forget_addon(addon.id).await?;
    tracing::info!(addon = %addon.name, "destroyed add-on");
    Ok(())
}

/// Gives the add-on new credentials and sets them on every attached app (a release each);
/// the old credentials are revoked in the background once those apps' dynos run the new
/// releases (or after [`ROTATION_GRACE`]).
pub(crate) async fn rotate(state: ApiState, addon: Addon, user: Account) -> Result<(), ApiError> {
    let provider = provider_of(&state, &addon)?;
    let task = tokio::spawn(async move {
        let resource = Resource { id: addon.id };
        let rotated = provider
            .rotate(resource, &provider_state(&addon))
            .await
            .map_err(|error| {
                tracing::error!(addon = %addon.name, error = format!("{error:#}"), "rotate");
                provider_failed(&addon.service, "rotate the add-on's credentials")
            })?;
        let releases = state
            .store
            .rotate_addon(addon.id, &rotated.state.to_string(), &rotated.config, &user)
            .await?;
        for (app_id, release) in &releases {
            announce(&state, *app_id, release, &user);
        }
        let waiting: Vec<(Uuid, i64)> = releases
            .iter()
            .map(|(app_id, release)| (*app_id, release.version))
            .collect();
        tokio::spawn(async move {
            wait_for_restarts(&state, &waiting).await;
            match provider.revoke_previous(resource, &rotated.state).await {
                Ok(()) => tracing::info!(addon = %addon.name, "revoked previous credentials"),
                Err(error) => tracing::error!(
                    addon = %addon.name,
                    error = format!("{error:#}"),
                    "revoke previous credentials: left for start-up"
                ),
            }
        });
        Ok(())
    });
    task.await
        .map_err(|error| ApiError::internal(&anyhow::Error::new(error)))?
}

/// Waits until no dyno of the apps runs a release older than the one given for it.
async fn wait_for_restarts(state: &ApiState, releases: &[(Uuid, i64)]) {
    let deadline = tokio::time::Instant::now() + ROTATION_GRACE;
    while tokio::time::Instant::now() < deadline {
        let restarted = releases.iter().all(|(app_id, version)| {
            state
                .dynos
                .dynos(*app_id)
                .iter()
                .all(|dyno| dyno.release_version >= *version)
        });
        if restarted {
            return;
        }
        tokio::time::sleep(RESTART_POLL).await;
    }
    tracing::warn!("dynos did not restart within the rotation grace period: revoking anyway");
}

/// Start-up, for a provisioned add-on: its server runs again (for services Wharf runs
/// itself), then a rotation a crash interrupted is finished.
async fn resume(provider: &dyn Provider, addon: &Addon) -> Result<(), ApiError> {
    let resource = Resource { id: addon.id };
    let state = provider_state(addon);
    let service = provider.service();
    if let Some(plan) = service.plan(Some(&addon.plan)).or(service.plan(None)) {
        provider
            .resume(resource, plan, &state)
            .await
            .map_err(|error| {
                tracing::error!(error = format!("{error:#}"), "start the add-on's server");
                provider_failed(&addon.service, "start the add-on's server")
            })?;
    }
    provider
        .revoke_previous(resource, &state)
        .await
        .map_err(|error| {
            tracing::error!(error = format!("{error:#}"), "revoke previous credentials");
            provider_failed(&addon.service, "revoke previous credentials")
        })
}

/// Start-up: finishes what a crash interrupted. Add-ons still `provisioning` are provisioned
/// again (the provider finds what it had made) and attached; add-ons `deprovisioning` are
/// destroyed; every provisioned add-on has its previous credentials revoked (finishing a
/// rotation). Failures are logged; the next start-up tries again.
pub async fn reconcile(state: &ApiState) -> anyhow::Result<()> {
    let apps = state.store.all_apps().await?;
    for addon in state.store.all_addons().await? {
        let Some(provider) = state.addons.provider(&addon.service).cloned() else {
            tracing::warn!(addon = %addon.name, service = %addon.service, "add-on service not set up");
            continue;
        };
        let outcome = match addon.state {
            AddonState::Provisioning => {
                let Some(owner) = apps.iter().find(|app| app.id == addon.app_id) else {
                    continue;
                };
                let service = provider.service();
                let Some(plan) = service
                    .plan(Some(&addon.plan))
                    .or(service.plan(None))
                    .cloned()
                else {
                    continue;
                };
                provision(
                    state.clone(),
                    addon.clone(),
                    provider.clone(),
                    plan,
                    AddonConfig::new(),
                    owner.owner.clone(),
                )
                .await
                .map(|_| ())
            }
            AddonState::Deprovisioning => {
                finish_deprovisioning(state, &addon, provider.as_ref()).await
            }
            AddonState::Provisioned => resume(provider.as_ref(), &addon).await,
        };
        match outcome {
            Ok(()) => {
                tracing::info!(addon = %addon.name, state = %addon.state, "reconciled add-on")
            }
            Err(error) => {
                tracing::warn!(addon = %addon.name, error = %error.message, "reconcile add-on")
            }
        }
    }
    Ok(())
}

/// Writes what providers report about add-ons (a server restarted, a database over its
/// plan's size) to the log of every app the add-on is attached to, as `heroku[<source>]`
/// lines. Runs until the providers are gone.
pub async fn forward_events(
    state: ApiState,
    mut events: tokio::sync::mpsc::UnboundedReceiver<wharf_addons::AddonEvent>,
) {
    while let Some(event) = events.recv().await {
        let attachments = match state.store.addon_attachments(event.resource).await {
            Ok(attachments) => attachments,
            Err(error) => {
                tracing::warn!(error = format!("{error:#}"), "find an add-on's apps");
                continue;
            }
        };
        let mut apps: Vec<Uuid> = attachments.iter().map(|t| t.app_id).collect();
        apps.sort_unstable();
        apps.dedup();
        for app_id in apps {
            state.dynos.logs().append(
                app_id,
                wharf_dynos::LogLine::now(
                    wharf_dynos::LogSource::Heroku,
                    event.source,
                    event.message.clone(),
                ),
            );
        }
    }
}
