//! Dynos see their own limits: per dyno size, a one-off dyno reads its own memory quota (the
//! cgroup's soft limit) and limit (twice the quota, where R15 kills) at `/sys/fs/cgroup`
//! (read-only, nothing of the host's or another dyno's), and the built-in buildpacks size
//! `WEB_CONCURRENCY` from the quota as Heroku documents (Node.js: memory
//! ÷ `WEB_MEMORY`; Python: 2 up to 512 MB, 4 up to 1 GB, then two per CPU plus one), unless the
//! app sets its own.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;

use support::fixture_apps::push_fixture;
use support::{Server, User};

/// What a one-off dyno prints about its cgroup and `WEB_CONCURRENCY`, as `probe.KEY=VALUE`
/// lines (the command's own text never holds `probe.` at a line's start).
const PROBE: &str = r#"
cd /sys/fs/cgroup
if [ -f memory.max ]; then
  limit=$(cat memory.max); quota=$(cat memory.low); procs=cgroup.procs
else
  limit=$(cat memory/memory.limit_in_bytes); quota=$(cat memory/memory.soft_limit_in_bytes)
  procs=memory/cgroup.procs
fi
p=probe.
echo "${p}limit=$limit"
echo "${p}quota=$quota"
echo "${p}procs=$(wc -l < $procs)"
echo "${p}concurrency=$WEB_CONCURRENCY"
if touch memory.max memory/memory.limit_in_bytes 2>/dev/null; then w=yes; else w=no; fi
echo "${p}writable=$w"
"#;

/// Runs the probe in a one-off dyno of `size`: its `KEY=VALUE` lines.
fn probe(
    server: &Server,
    user: &User,
    app: &str,
    size: &str,
    env: &[&str],
) -> BTreeMap<String, String> {
    let config = user.home.path().join(".config/wharf");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::copy(server.data_dir.join("tls/ca.pem"), config.join("ca.pem")).unwrap();
    let mut args = vec!["run", "--no-tty", "--size", size, "-a", app];
    for pair in env {
        args.extend(["--env", pair]);
    }
    args.extend(["--", PROBE]);
    let output = user.run(&args).ok();
    output
        .lines()
        .filter_map(|line| line.trim().strip_prefix("probe."))
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
}

#[test]
fn dynos_see_their_own_limits_and_size_web_concurrency_by_them() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let key = server.admin_key();
    let user = User::new(&server.url, Some(&key));
    user.run(&["create", "limits-node"]).ok();
    user.run(&["create", "limits-python"]).ok();
    push_fixture(&server, &key, "limits-node", "nodejs-express-less");
    push_fixture(&server, &key, "limits-python", "python-flask");

    let cpus = std::thread::available_parallelism().unwrap().get();
    // (size, memory in MB, Node.js WEB_CONCURRENCY, Python WEB_CONCURRENCY)
    let sizes: [(&str, u64, usize, usize); 4] = [
        ("basic", 512, 1, 2),
        ("standard-2x", 1024, 2, 4),
        ("performance-m", 2560, 5, cpus * 2 + 1),
        ("performance-l", 14336, 28, cpus * 2 + 1),
    ];
    for (size, memory_mb, node, python) in sizes {
        for (app, expected) in [("limits-node", node), ("limits-python", python)] {
            let seen = probe(&server, &user, app, size, &[]);
            // The size's quota is the soft limit; the kernel kills (R15) at twice it.
            let quota = (memory_mb * 1024 * 1024).to_string();
            let limit = (memory_mb * 2 * 1024 * 1024).to_string();
            assert_eq!(seen.get("quota"), Some(&quota), "{app} on {size}: {seen:?}");
            assert_eq!(seen.get("limit"), Some(&limit), "{app} on {size}: {seen:?}");
            assert_eq!(
                seen.get("concurrency"),
                Some(&expected.to_string()),
                "{app} on {size}: {seen:?}"
            );
            // tini, the shell, and the probe's own commands: this dyno's processes alone.
            let procs: usize = seen["procs"].parse().unwrap();
            assert!((1..=6).contains(&procs), "{app} on {size}: {seen:?}");
            assert_eq!(
                seen.get("writable").map(String::as_str),
                Some("no"),
                "{seen:?}"
            );
        }
    }

    // The app's own setting wins, and Node.js divides by the app's WEB_MEMORY.
    let own = probe(
        &server,
        &user,
        "limits-python",
        "basic",
        &["WEB_CONCURRENCY=7"],
    );
    assert_eq!(
        own.get("concurrency").map(String::as_str),
        Some("7"),
        "{own:?}"
    );
    let node = probe(
        &server,
        &user,
        "limits-node",
        "standard-2x",
        &["WEB_MEMORY=256"],
    );
    assert_eq!(
        node.get("concurrency").map(String::as_str),
        Some("4"),
        "{node:?}"
    );
}
