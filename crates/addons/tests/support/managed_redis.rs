//! The `redis-server`s Wharf runs itself, one per add-on, as a contract-suite provider: one
//! provider per test binary, its servers on loopback ports of their own, under the target dir.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use wharf_addons::managed_redis::{ManagedRedis, ManagedRedisSettings};
use wharf_addons::{Provider, Resource, Supervisor};

/// Test ports of their own (the managed Redis tests take 26400-26599).
const PORTS: (u16, u16) = (26600, 26699);

static PROVIDER: OnceLock<Arc<ManagedRedis>> = OnceLock::new();

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("contract-managed-redis")
}

pub fn provider() -> Arc<dyn Provider> {
    PROVIDER
        .get_or_init(|| {
            let supervisor = Supervisor::new(Arc::new(|_: &str, _| {})).unwrap();
            let (events, _) = tokio::sync::mpsc::unbounded_channel();
            let settings = ManagedRedisSettings {
                root: root(),
                listen: IpAddr::V4(Ipv4Addr::LOCALHOST),
                ports: PORTS,
                redis_server: "/usr/bin/redis-server".into(),
                user: "redis".into(),
            };
            Arc::new(ManagedRedis::new(settings, supervisor, events).unwrap())
        })
        .clone()
}

/// Whether the resource's server still has its directory (its data).
pub fn exists(resource: Resource) -> bool {
    root().join(resource.id.simple().to_string()).exists()
}
