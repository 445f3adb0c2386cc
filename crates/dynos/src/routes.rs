//! The route table the router reads: per app name, the web dynos that are up and where they
//! listen. Computed from the registry by a pure function and published over a `watch` channel.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};

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
    pub port: Option<u16>,
    pub release: i64,
}

/// The table for these dynos: web dynos that are `up` and have a port, on the loopback
/// address (dynos share the host's network), sorted by name then release. Apps without such a
/// dyno are not listed.
pub fn route_table<'a>(dynos: impl IntoIterator<Item = RouteSource<'a>>) -> RouteTable {
    let mut routable: Vec<RouteSource<'a>> = dynos
        .into_iter()
        .filter(|d| d.name.is_web() && d.state == DynoState::Up && d.port.is_some())
        .collect();
    routable.sort_by(|a, b| (a.app_name, a.name, a.release).cmp(&(b.app_name, b.name, b.release)));
    let mut table = RouteTable::new();
    for dyno in routable {
        if let Some(port) = dyno.port {
            table.entry(dyno.app_name.to_owned()).or_default().push((
                dyno.name.to_string(),
                SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            ));
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
        let source = |app, i: usize, state, port, release| RouteSource {
            app_name: app,
            name: &names[i],
            state,
            port,
            release,
        };
        let table = route_table([
            source("b", 1, DynoState::Up, Some(20002), 2),
            source("b", 0, DynoState::Up, Some(20001), 2),
            source("b", 2, DynoState::Up, Some(20003), 2),
            source("b", 3, DynoState::Up, Some(20004), 3),
            source("a", 0, DynoState::Starting, Some(20005), 1),
            source("a", 1, DynoState::Down, Some(20006), 1),
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
                    "web.1=127.0.0.1:20001".to_owned(),
                    "web.1=127.0.0.1:20004".to_owned(),
                    "web.2=127.0.0.1:20002".to_owned()
                ]
            )]
        );
    }
}
