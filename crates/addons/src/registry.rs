//! The services this server offers, found by the names users type: `SERVICE[:PLAN]`, where
//! `SERVICE` is a service's name or one of its aliases.

use std::sync::Arc;

use crate::{Plan, Provider};

/// The providers a server offers. Cheap to clone.
#[derive(Clone, Default)]
pub struct Registry {
    providers: Vec<Arc<dyn Provider>>,
    /// Services known but not set up on this server, with what the operator must do.
    unavailable: Vec<(Vec<String>, String)>,
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

    pub fn providers(&self) -> &[Arc<dyn Provider>] {
        &self.providers
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
