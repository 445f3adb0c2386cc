//! The provider contract: every built-in provider, on the operator-server variants (the real
//! PostgreSQL and Redis on this machine, `WHARF_TEST_POSTGRES_URL`, `WHARF_TEST_REDIS_URL`)
//! and on the servers Wharf runs itself (a PostgreSQL cluster, a `redis-server` per add-on),
//! provisions idempotently,
//! hands out credentials that work and reach only their own resource, rotates in two steps,
//! and revokes at once when deprovisioned.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;

use support::{Client, Kind};
use uuid::Uuid;
use wharf_addons::{AddonConfig, Provider, Registry, Resource};

fn providers() -> Vec<(Kind, Arc<dyn Provider>)> {
    vec![
        (Kind::Postgres, support::postgres_provider()),
        (Kind::Postgres, support::managed_postgres::provider()),
        (Kind::Redis, support::redis_provider()),
        (Kind::Redis, support::managed_redis::provider()),
    ]
}

fn resource() -> Resource {
    Resource { id: Uuid::new_v4() }
}

async fn provision(provider: &dyn Provider, resource: Resource) -> wharf_addons::Provisioned {
    let plan = provider.service().plan(None).unwrap().clone();
    provider
        .provision(resource, &plan, &AddonConfig::new())
        .await
        .unwrap()
}

#[tokio::test]
async fn provisioned_credentials_work_and_are_strong() {
    for (kind, provider) in providers() {
        let resource = resource();
        let provisioned = provision(provider.as_ref(), resource).await;
        let url = &provisioned.config["URL"];
        let password = support::password(url);
        assert!(password.len() >= 32, "{kind:?}: weak password");
        let mut client = Client::connect(kind, &provisioned.config).await.unwrap();
        client.write_and_read("greeting", "hello").await.unwrap();
        drop(client);
        provider
            .deprovision(resource, &provisioned.state)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn provisioning_again_finds_the_same_resource_with_its_data() {
    for (kind, provider) in providers() {
        let resource = resource();
        let first = provision(provider.as_ref(), resource).await;
        let mut client = Client::connect(kind, &first.config).await.unwrap();
        client.write_and_read("kept", "yes").await.unwrap();
        drop(client);
        let second = provision(provider.as_ref(), resource).await;
        let mut client = Client::connect(kind, &second.config).await.unwrap();
        assert_eq!(
            client.read("kept").await.unwrap().as_deref(),
            Some("yes"),
            "{kind:?}"
        );
        drop(client);
        provider.deprovision(resource, &second.state).await.unwrap();
    }
}

#[tokio::test]
async fn one_resource_cannot_reach_another() {
    for (kind, provider) in providers() {
        let (a, b) = (resource(), resource());
        let provisioned_a = provision(provider.as_ref(), a).await;
        let provisioned_b = provision(provider.as_ref(), b).await;
        let mut client_b = Client::connect(kind, &provisioned_b.config).await.unwrap();
        client_b.write_and_read("secret", "b's").await.unwrap();
        assert!(
            Client::cross_access(kind, &provisioned_a.config, &provisioned_b.config)
                .await
                .is_err(),
            "{kind:?}: a's credentials reached b's data"
        );
        drop(client_b);
        provider.deprovision(a, &provisioned_a.state).await.unwrap();
        provider.deprovision(b, &provisioned_b.state).await.unwrap();
    }
}

#[tokio::test]
async fn rotation_keeps_the_old_credentials_until_revoked() {
    for (kind, provider) in providers() {
        let resource = resource();
        let old = provision(provider.as_ref(), resource).await;
        let mut client = Client::connect(kind, &old.config).await.unwrap();
        client.write_and_read("before", "rotation").await.unwrap();
        let new = provider.rotate(resource, &old.state).await.unwrap();
        assert_ne!(old.config["URL"], new.config["URL"], "{kind:?}");
        // Both work until the old ones are revoked (the dynos restart in between).
        Client::connect(kind, &old.config).await.unwrap();
        let mut rotated = Client::connect(kind, &new.config).await.unwrap();
        assert_eq!(
            rotated.read("before").await.unwrap().as_deref(),
            Some("rotation"),
            "{kind:?}: data made with the old credentials is readable with the new"
        );
        provider
            .revoke_previous(resource, &new.state)
            .await
            .unwrap();
        assert!(
            Client::connect(kind, &old.config).await.is_err(),
            "{kind:?}: the old credentials still log in"
        );
        assert!(
            client.read("before").await.is_err(),
            "{kind:?}: a session of the old credentials survived"
        );
        rotated = Client::connect(kind, &new.config).await.unwrap();
        rotated.write_and_read("after", "rotation").await.unwrap();
        drop(rotated);
        // Revoking again is harmless.
        provider
            .revoke_previous(resource, &new.state)
            .await
            .unwrap();
        provider.deprovision(resource, &new.state).await.unwrap();
    }
}

#[tokio::test]
async fn deprovisioning_revokes_at_once_and_is_idempotent() {
    for (kind, provider) in providers() {
        let resource = resource();
        let provisioned = provision(provider.as_ref(), resource).await;
        let mut client = Client::connect(kind, &provisioned.config).await.unwrap();
        client.write_and_read("doomed", "data").await.unwrap();
        provider
            .deprovision(resource, &provisioned.state)
            .await
            .unwrap();
        assert!(
            client.read("doomed").await.is_err(),
            "{kind:?}: an open session survived deprovisioning"
        );
        assert!(
            Client::connect(kind, &provisioned.config).await.is_err(),
            "{kind:?}: the credentials still log in"
        );
        assert!(
            !support::resource_exists(kind, resource).await,
            "{kind:?}: the data is still there"
        );
        provider
            .deprovision(resource, &provisioned.state)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn the_registry_resolves_names_aliases_and_plans() {
    let mut registry = Registry::new();
    for (_, provider) in providers() {
        registry.register(provider);
    }
    registry.unavailable(&["wharf-mysql"], "set WHARF_ADDON_MYSQL_URL");
    let check = |requested: &str, expected: &str| {
        assert_eq!(
            registry.resolve(requested).map(|r| r.plan_name()),
            Ok(expected.to_owned())
        );
    };
    check("heroku-postgresql", "wharf-postgresql:mini");
    check(
        "wharf-postgresql:essential-0",
        "wharf-postgresql:essential-0",
    );
    check("heroku-redis", "wharf-redis:mini");
    check("wharf-redis:premium-0", "wharf-redis:premium-0");
    let unknown = registry.resolve("mongolab").err().unwrap();
    assert!(
        unknown.contains("wharf-postgresql (also heroku-postgresql)"),
        "{unknown}"
    );
    assert!(unknown.contains("wharf-redis"), "{unknown}");
    let plan = registry.resolve("heroku-redis:huge").err().unwrap();
    assert!(plan.contains("wharf-redis:mini"), "{plan}");
    let unavailable = registry.resolve("wharf-mysql").err().unwrap();
    assert!(
        unavailable.contains("WHARF_ADDON_MYSQL_URL"),
        "{unavailable}"
    );
}
