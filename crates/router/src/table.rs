//! The route table the router consumes (plain data, published by the dyno manager over a
//! `watch` channel) and the pure decision of what to do with a request for one app.

use std::collections::HashMap;
use std::net::SocketAddr;

use uuid::Uuid;

use crate::error::DynoError;

/// Everything the router knows about where traffic goes. The router never calls the store:
/// it serves from the last table it was sent, so traffic survives a store outage.
///
/// Keys are lowercase ASCII (app names are; the publisher lowercases custom domains).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteTable {
    /// App name to its routes.
    pub apps: HashMap<String, AppRoutes>,
    /// Custom host (`www.example.com`, or a wildcard `*.example.com` matching one label) to
    /// app name.
    pub domains: HashMap<String, String>,
}

/// One app as the router sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRoutes {
    pub app_id: Uuid,
    /// Answer every request with the maintenance page (H80).
    pub maintenance: bool,
    /// How many web dynos the formation asks for.
    pub web_quantity: u32,
    /// Every web dyno is crashed.
    pub crashed: bool,
    /// Web dynos are starting (or the app is idle and waking).
    pub booting: bool,
    /// The web dynos that are up, and where they listen.
    pub backends: Vec<Backend>,
    /// The `http-session-affinity` feature: a client's requests go to the dyno named in its
    /// signed cookie while that dyno is up (see [`crate::affinity`]).
    pub session_affinity: bool,
}

/// One web dyno that is up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    /// The dyno's id: stable while it lives (restarts in place keep it), never reused, and
    /// different for the old and the new `web.1` of a preboot. Session affinity names dynos
    /// by it; nil means the dyno can be pinned to by no cookie.
    pub id: Uuid,
    /// Its name, `web.1`.
    pub dyno: String,
    pub addr: SocketAddr,
}

/// What to do with a request for an app, from its routes alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Send it to one of the backends.
    Forward,
    /// Hold it until a backend appears (or the boot timeout passes); `wake` says the app is
    /// booting or idle, so the dyno manager is told once.
    Hold { wake: bool },
    /// Answer with this error.
    Refuse(DynoError),
}

/// The decision for a request to `app`, in this order: maintenance (H80), no web dynos wanted
/// (H14), a backend is up (forward), every web dyno crashed (H10), else hold. Holding also
/// covers the moment between a dyno going down and the dyno manager saying why (a restart),
/// within the same boot timeout.
pub fn decide(app: &AppRoutes) -> Decision {
    if app.maintenance {
        Decision::Refuse(DynoError::Maintenance)
    } else if app.web_quantity == 0 {
        Decision::Refuse(DynoError::NoWebDynos)
    } else if !app.backends.is_empty() {
        Decision::Forward
    } else if app.crashed {
        Decision::Refuse(DynoError::Crashed)
    } else {
        Decision::Hold { wake: app.booting }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(maintenance: bool, quantity: u32, crashed: bool, booting: bool, up: usize) -> AppRoutes {
        AppRoutes {
            app_id: Uuid::nil(),
            maintenance,
            web_quantity: quantity,
            crashed,
            booting,
            backends: (0..up)
                .map(|n| Backend {
                    id: Uuid::from_u128(n as u128 + 1),
                    dyno: format!("web.{}", n + 1),
                    addr: SocketAddr::from(([127, 0, 0, 1], 5000 + n as u16)),
                })
                .collect(),
            session_affinity: false,
        }
    }

    #[test]
    fn decisions() {
        let check = |routes: AppRoutes, expected: Decision| assert_eq!(decide(&routes), expected);
        check(app(false, 1, false, false, 1), Decision::Forward);
        check(
            app(true, 1, false, false, 1),
            Decision::Refuse(DynoError::Maintenance),
        );
        check(
            app(false, 0, false, false, 0),
            Decision::Refuse(DynoError::NoWebDynos),
        );
        check(
            app(false, 0, true, false, 0),
            Decision::Refuse(DynoError::NoWebDynos),
        );
        check(
            app(false, 2, true, false, 0),
            Decision::Refuse(DynoError::Crashed),
        );
        // A crashed flag with a dyno up (one of two crashed) still serves.
        check(app(false, 2, true, false, 1), Decision::Forward);
        check(app(false, 1, false, true, 0), Decision::Hold { wake: true });
        check(
            app(false, 1, false, false, 0),
            Decision::Hold { wake: false },
        );
        check(app(false, 1, false, true, 1), Decision::Forward);
    }
}
