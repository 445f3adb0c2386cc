//! The route table the router reads: per app name, the web dynos that are up and where they
//! listen. Computed from the registry by a pure function and published over a `watch` channel.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use crate::state::{DynoName, DynoState};

/// App name to its routable web dynos, by dyno name (during a preboot the old and the new
/// `web.1` may both be listed, with different addresses).
pub type RouteTable = BTreeMap<String, Vec<(String, SocketAddr)>>;

/// One dyno as the route table needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSource<'a> {
    pub app_name: &'a str,
    pub name: &'a DynoName,
    pub state: DynoState,
    pub address: Option<SocketAddr>,
    pub release: i64,
}

/// The table for these dynos: web dynos that are `up` and have an address (in their own
/// network namespace), sorted by name then release. Apps without such a dyno are not listed.
pub fn route_table<'a>(dynos: impl IntoIterator<Item = RouteSource<'a>>) -> RouteTable {
    let mut routable: Vec<RouteSource<'a>> = dynos
        .into_iter()
        .filter(|d| d.name.is_web() && d.state == DynoState::Up && d.address.is_some())
        .collect();
    routable.sort_by(|a, b| (a.app_name, a.name, a.release).cmp(&(b.app_name, b.name, b.release)));
    let mut table = RouteTable::new();
    for dyno in routable {
        if let Some(address) = dyno.address {
            table
                .entry(dyno.app_name.to_owned())
                .or_default()
                .push((dyno.name.to_string(), address));
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_up_web_dynos_only() {
        let names: Vec<DynoName> = ["web.1", "web.2", "worker.1", "web.1"]
            .iter()
            .map(|n| n.parse().expect("valid"))
            .collect();
        let source = |app, i: usize, state, host: Option<u8>, release| RouteSource {
            app_name: app,
            name: &names[i],
            state,
            address: host.map(|host| SocketAddr::from(([198, 19, 0, host], 5000))),
            release,
        };
        let table = route_table([
            source("b", 1, DynoState::Up, Some(2), 2),
            source("b", 0, DynoState::Up, Some(1), 2),
            source("b", 2, DynoState::Up, Some(3), 2),
            source("b", 3, DynoState::Up, Some(4), 3),
            source("a", 0, DynoState::Starting, Some(5), 1),
            source("a", 1, DynoState::Down, Some(6), 1),
            source("c", 0, DynoState::Up, None, 1),
        ]);
        let shown: Vec<(String, Vec<String>)> = table
            .iter()
            .map(|(app, routes)| {
                (
                    app.clone(),
                    routes.iter().map(|(n, a)| format!("{n}={a}")).collect(),
                )
            })
            .collect();
        assert_eq!(
            shown,
            [(
                "b".to_owned(),
                vec![
                    "web.1=198.19.0.1:5000".to_owned(),
                    "web.1=198.19.0.4:5000".to_owned(),
                    "web.2=198.19.0.2:5000".to_owned()
                ]
            )]
        );
    }
}
