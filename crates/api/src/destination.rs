//! URLs a tenant names for the server to reach later (log drains, git buildpacks), checked
//! against the outbound policy when they are given, for a clear 422 then. Every connection is
//! checked again when it is made (DNS can change), so a host that does not resolve yet, or
//! not within [`CHECK_TIMEOUT`], is accepted here.

use std::time::Duration;

use crate::error::{ApiError, ApiResult};

/// How long the check may wait for DNS before it lets the URL through.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// Refuses `url` when the outbound policy refuses its host now. `what` names the URL's use
/// in the message, in the plural (`drains`, `buildpacks`).
pub(crate) async fn check(policy: &wharf_outbound::Policy, what: &str, url: &str) -> ApiResult<()> {
    let checked = tokio::time::timeout(CHECK_TIMEOUT, wharf_outbound::check_url(url, policy)).await;
    match checked {
        Ok(Err(refused)) if refused.is_policy() => {
            let one = what.strip_suffix('s').unwrap_or(what);
            Err(ApiError::invalid(format!(
                "{one} {refused}: {what} must point at hosts outside this server and its \
                 internal networks"
            )))
        }
        Ok(Err(wharf_outbound::Refused::Url { error, .. })) => {
            Err(ApiError::invalid(format!("{url:?} {error}")))
        }
        Ok(_) | Err(_) => Ok(()),
    }
}
