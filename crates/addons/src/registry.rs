//! The services this server offers, found by the names users type: `SERVICE[:PLAN]`, where
//! `SERVICE` is a service's name or one of its aliases; and what dynos meet at their servers
//! (probed with [`crate::exposure`]), which decides whether a new add-on may be provisioned.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use crate::exposure::{self, DynoNetwork, Report};
use crate::{Plan, Provider};

/// The providers a server offers. Cheap to clone; clones share the last probes.
#[derive(Clone, Default)]
pub struct Registry {
    providers: Vec<Arc<dyn Provider>>,
    /// Services known but not set up on this server, with what the operator must do.
    unavailable: Vec<(Vec<String>, String)>,
    /// Where dynos connect from; `None` when they share the host's network, and then nothing
    /// is probed.
    network: Option<DynoNetwork>,
    /// The operator accepts add-ons on servers that let dynos in without a password.
    allow_open_servers: bool,
    /// The last probe of each service's server, by service name.
    reports: Arc<Mutex<BTreeMap<String, Report>>>,
}

/// A provider and one of its plans.
#[derive(Clone)]
pub struct Resolved {
    pub provider: Arc<dyn Provider>,
    pub plan: Plan,
}

impl Resolved {
    /// `service:plan`, as releases list it in `addon_plan_names`.
    pub fn plan_name(&self) -> String {
        format!("{}:{}", self.provider.service().name, self.plan.name)
    }
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Offers `provider`'s service under its name and aliases.
    pub fn register(&mut self, provider: Arc<dyn Provider>) {
        self.providers.push(provider);
    }

    /// Remembers that the service called `names` exists but is not set up here, so asking for
    /// it says `how` to set it up instead of "unknown service".
    pub fn unavailable(&mut self, names: &[&str], how: impl Into<String>) {
        self.unavailable.push((
            names.iter().map(|name| (*name).to_owned()).collect(),
            how.into(),
        ));
    }

    /// Dynos connect from `network`: their servers are probed from its gateway.
    pub fn set_dyno_network(&mut self, network: DynoNetwork) {
        self.network = Some(network);
    }

    /// Whether add-ons may be provisioned on servers that let dynos in without a password
    /// (`WHARF_ADDONS_ALLOW_OPEN_SERVERS`).
    pub fn set_allow_open_servers(&mut self, allow: bool) {
        self.allow_open_servers = allow;
    }

    pub fn allows_open_servers(&self) -> bool {
        self.allow_open_servers
    }

    pub fn providers(&self) -> &[Arc<dyn Provider>] {
        &self.providers
    }

    /// Every configured server as dynos reach it, `(address, port)`, once each: what the
    /// firewall opens to dynos of the host.
    pub fn dyno_endpoints(&self) -> Vec<(IpAddr, u16)> {
        let mut endpoints: Vec<(IpAddr, u16)> = self
            .providers
            .iter()
            .filter_map(|provider| provider.dyno_server())
            .map(|server| (server.address.ip(), server.address.port()))
            .collect();
        endpoints.sort();
        endpoints.dedup();
        endpoints
    }

    /// Probes the server of `service` (a name or alias) from the dyno network and keeps the
    /// result for [`Registry::last_report`]. `None` without a dyno network, or for a service
    /// without a server dynos connect to.
    pub async fn probe(&self, service: &str) -> Option<Report> {
        let network = self.network?;
        let provider = self.provider(service)?;
        let report = exposure::probe(provider.dyno_server()?, &network).await;
        self.reports
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(provider.service().name.clone(), report.clone());
        Some(report)
    }

    /// Probes every service's server (one after another), as start-up does.
    pub async fn probe_all(&self) -> Vec<(String, Option<Report>)> {
        let mut reports = Vec::new();
        for provider in &self.providers {
            let name = provider.service().name.clone();
            let report = self.probe(&name).await;
            reports.push((name, report));
        }
        reports
    }

    /// The last probe of `service`'s server (by its canonical name), if any.
    pub fn last_report(&self, service: &str) -> Option<Report> {
        self.reports
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(service)
            .cloned()
    }

    /// Probes `service`'s server again (a fixed server needs no restart) and says why a new
    /// add-on of it is refused: its server lets dynos in without a password and the operator
    /// has not accepted that. Without a dyno network nothing is probed or refused.
    pub async fn check_provisioning(&self, service: &str) -> Result<(), String> {
        let Some(report) = self.probe(service).await else {
            return Ok(());
        };
        if let exposure::DynoAccess::Unreachable(_) = report.access {
            tracing::warn!(service, "{}", report.message);
        }
        match exposure::provisioning_refusal(service, &report, self.allow_open_servers) {
            Some(refusal) => Err(refusal),
            None => Ok(()),
        }
    }

    /// The provider whose service is called `name` (or has it as an alias).
    pub fn provider(&self, name: &str) -> Option<&Arc<dyn Provider>> {
        self.providers.iter().find(|provider| {
            let service = provider.service();
            service.name == name || service.aliases.iter().any(|alias| alias == name)
        })
    }

    /// Resolves `SERVICE[:PLAN]` to a provider and plan (the default plan when none is named).
    /// The error says what is known.
    pub fn resolve(&self, requested: &str) -> Result<Resolved, String> {
        let (service_name, plan_name) = match requested.split_once(':') {
            Some((service, plan)) => (service, Some(plan)),
            None => (requested, None),
        };
        let Some(provider) = self.provider(service_name) else {
            if let Some((_, how)) = self
                .unavailable
                .iter()
                .find(|(names, _)| names.iter().any(|name| name == service_name))
            {
                return Err(format!(
                    "The add-on service {service_name} is not set up on this server: {how}"
                ));
            }
            return Err(format!(
                "Couldn't find the add-on service {service_name:?}: this server offers {}",
                self.known_services()
            ));
        };
        let service = provider.service();
        let plan = service.plan(plan_name).ok_or_else(|| {
            let plans: Vec<String> = service
                .plans
                .iter()
                .map(|plan| format!("{}:{}", service.name, plan.name))
                .collect();
            format!(
                "Couldn't find the plan {requested:?}: {} has the plans {}",
                service.name,
                plans.join(", ")
            )
        })?;
        Ok(Resolved {
            provider: provider.clone(),
            plan: plan.clone(),
        })
    }

    fn known_services(&self) -> String {
        let names: Vec<String> = self
            .providers
            .iter()
            .map(|provider| {
                let service = provider.service();
                match service.aliases.is_empty() {
                    true => service.name.clone(),
                    false => format!("{} (also {})", service.name, service.aliases.join(", ")),
                }
            })
            .collect();
        match names.is_empty() {
            true => "no add-on services".to_owned(),
            false => names.join(", "),
        }
    }
}
