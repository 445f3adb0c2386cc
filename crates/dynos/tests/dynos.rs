//! The dyno manager with real containers (run as root): formations come up and answer HTTP,
//! crashes restart, new releases preboot, broken releases keep the old dynos, memory and pids
//! limits hold, `/app` writes are private and ephemeral, dynos are isolated, and a restarted
//! server runs exactly the formation.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use support::{eventually, http_get, open_store, poll, Fixture, DEADLINE};
use wharf_dynos::{DynoState, Target, DYNO_PREFIX};
use wharf_model::{ConfigChanges, DynoSize};

const WEB: &str = "python3 -m http.server $PORT";
const INDEX: (&str, &str) = ("index.html", "hello from wharf\n");
const PROFILE: (&str, &str) = (".profile.d/greeting.sh", "export GREETING=hello\n");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_dynos_come_up_on_distinct_ports_and_answer_http() {
    let fx = Fixture::new().await;
    let app = fx.app("web-app").await;
    let release = fx.deploy(&app, &[("web", WEB)], &[INDEX, PROFILE]).await;
    let running = fx.start(fx.config(21000..21100));
    let mut routes = running.manager.routes();

    let dynos = running.up(&app, &[("web.1", release.version)]).await;
    let address = dynos[0].address.unwrap();
    assert!(fx.network.settings().subnet.contains(match address.ip() {
        std::net::IpAddr::V4(ip) => ip,
        std::net::IpAddr::V6(_) => panic!("dynos have IPv4 addresses"),
    }));
    let (status, body) = http_get(address, "/").await.unwrap();
    assert!(status.contains("200"), "{status}");
    assert_eq!(body, "hello from wharf\n");
    let table = routes.borrow_and_update().clone();
    assert_eq!(
        table.get("web-app").unwrap(),
        &vec![("web.1".to_owned(), address)]
    );
    running
        .logged(
            &app,
            "heroku[web.1]: Starting process with command `python3 -m http.server $PORT`",
        )
        .await;
    running
        .logged(&app, "heroku[web.1]: State changed from starting to up")
        .await;

    fx.scale(&app, "web", 3, DynoSize::Basic).await;
    running.manager.notify(app.id);
    let dynos = running
        .up(
            &app,
            &[
                ("web.1", release.version),
                ("web.2", release.version),
                ("web.3", release.version),
            ],
        )
        .await;
    let ports: HashSet<std::net::SocketAddr> = dynos.iter().map(|d| d.address.unwrap()).collect();
    assert_eq!(ports.len(), 3, "{dynos:?}");
    for port in &ports {
        assert!(http_get(*port, "/").await.unwrap().0.contains("200"));
    }
    assert_eq!(fx.dyno_containers().await.len(), 3);

    // ps:stop: the dyno goes, and the formation brings it back.
    let stopped = dynos.iter().find(|d| d.name == "web.2").unwrap().clone();
    let count = running
        .manager
        .stop(app.id, Target::Dyno("web.2".into()))
        .await
        .unwrap();
    assert_eq!(count, 1);
    running
        .logged(&app, "heroku[web.2]: State changed from up to down")
        .await;
    running
        .logged(&app, "heroku[web.2]: Stopping all processes with SIGTERM")
        .await;
    let back = running
        .dynos_until(&app, "web.2 back up", |dynos| {
            dynos
                .iter()
                .any(|d| d.name == "web.2" && d.state == DynoState::Up && d.id != stopped.id)
        })
        .await;
    assert_eq!(back.len(), 3);

    fx.scale(&app, "web", 1, DynoSize::Basic).await;
    running.manager.notify(app.id);
    running.up(&app, &[("web.1", release.version)]).await;
    running.stop(&fx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_dyno_is_restarted() {
    let fx = Fixture::new().await;
    let app = fx.app("crashing").await;
    fx.deploy(
        &app,
        &[("worker", "echo \"run $GREETING\"; sleep 1; exit 3")],
        &[PROFILE],
    )
    .await;
    fx.scale(&app, "worker", 1, DynoSize::Basic).await;
    let running = fx.start(fx.config(21100..21200));

    running
        .logged(&app, "heroku[worker.1]: Process exited with status 3")
        .await;
    running
        .logged(&app, "heroku[worker.1]: State changed from up to crashed")
        .await;
    running
        .logged(
            &app,
            "heroku[worker.1]: State changed from crashed to starting",
        )
        .await;
    // The first restart is at once; the second crash waits for its cool-off.
    eventually("a second run", || {
        (running.count(&app, "app[worker.1]: run hello") >= 2).then_some(())
    })
    .await;
    let states: Vec<String> = running
        .log(&app)
        .iter()
        .filter(|l| l.contains("State changed"))
        .map(|l| l.split("]: ").nth(1).unwrap().to_owned())
        .collect();
    assert_eq!(
        states[..4],
        [
            "State changed from starting to up",
            "State changed from up to crashed",
            "State changed from crashed to starting",
            "State changed from starting to up",
        ]
    );
    running.stop(&fx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_release_replaces_web_dynos_preboot_style() {
    let fx = Fixture::new().await;
    let app = fx.app("preboot").await;
    let v2 = fx
        .deploy(&app, &[("web", WEB), ("worker", "sleep 1000")], &[INDEX])
        .await;
    fx.scale(&app, "web", 2, DynoSize::Basic).await;
    fx.scale(&app, "worker", 1, DynoSize::Basic).await;
    let running = fx.start(fx.config(21200..21300));
    let old = running
        .up(
            &app,
            &[
                ("web.1", v2.version),
                ("web.2", v2.version),
                ("worker.1", v2.version),
            ],
        )
        .await;

    // Watch the route table from now on: it must never be without a web dyno.
    let mut routes = running.manager.routes();
    let emptied = Arc::new(AtomicUsize::new(0));
    let watcher = {
        let emptied = emptied.clone();
        tokio::spawn(async move {
            while routes.changed().await.is_ok() {
                let table = routes.borrow_and_update().clone();
                if table.get("preboot").is_none_or(Vec::is_empty) {
                    emptied.fetch_add(1, Ordering::SeqCst);
                }
            }
        })
    };
    let (_, v3) = fx
        .store
        .set_config(
            app.id,
            &ConfigChanges::parse([("MESSAGE", Some("new".to_owned()))]).unwrap(),
            &fx.owner,
        )
        .await
        .unwrap();
    let v3 = v3.unwrap();
    running.manager.notify(app.id);
    let new = running
        .up(
            &app,
            &[
                ("web.1", v3.version),
                ("web.2", v3.version),
                ("worker.1", v3.version),
            ],
        )
        .await;
    assert_eq!(
        emptied.load(Ordering::SeqCst),
        0,
        "the route table went empty"
    );
    watcher.abort();

    let old_ports: HashSet<std::net::SocketAddr> = old.iter().filter_map(|d| d.address).collect();
    for dyno in new.iter().filter(|d| d.process_type == "web") {
        assert!(!old_ports.contains(&dyno.address.unwrap()));
    }
    // New web dynos were up before the old ones were told to stop.
    let log = running.log(&app);
    let position = |needle: &str| log.iter().position(|l| l.contains(needle)).unwrap();
    let last_new_up = log
        .iter()
        .enumerate()
        .filter(|(_, l)| l.contains("heroku[web.") && l.contains("starting to up"))
        .map(|(i, _)| i)
        .nth(3)
        .unwrap();
    assert!(position("heroku[web.1]: State changed from up to down") > last_new_up);
    let formation = fx.store.formation(app.id).await.unwrap();
    let quantities: Vec<(String, u32)> = formation
        .iter()
        .map(|e| (e.process_type.to_string(), e.quantity))
        .collect();
    assert_eq!(
        quantities,
        [("web".to_owned(), 2), ("worker".to_owned(), 1)]
    );
    running.stop(&fx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_that_never_binds_keeps_the_old_dynos() {
    let fx = Fixture::new().await;
    let app = fx.app("never-binds").await;
    let v2 = fx.deploy(&app, &[("web", WEB)], &[INDEX]).await;
    let mut config = fx.config(21300..21400);
    config.boot_timeout = Duration::from_secs(2);
    let running = fx.start(config);
    let old = running.up(&app, &[("web.1", v2.version)]).await;

    let v3 = fx.deploy(&app, &[("web", "sleep 1000")], &[]).await;
    running.manager.notify(app.id);
    running
        .logged(
            &app,
            "heroku[web.1]: Error R10 (Boot timeout) -> Web process failed to bind to $PORT within 2 seconds of launch",
        )
        .await;
    running
        .logged(
            &app,
            "heroku[web.1]: State changed from starting to crashed",
        )
        .await;
    let dynos = running.manager.dynos(app.id);
    let serving = dynos
        .iter()
        .find(|d| d.release_version == v2.version)
        .unwrap();
    assert_eq!(serving.state, DynoState::Up);
    assert_eq!(serving.id, old[0].id);
    assert!(dynos
        .iter()
        .any(|d| d.release_version == v3.version && d.state != DynoState::Up));
    let table = running.manager.routes().borrow().clone();
    assert_eq!(
        table.get("never-binds").unwrap(),
        &vec![("web.1".to_owned(), old[0].address.unwrap())]
    );
    assert!(http_get(old[0].address.unwrap(), "/")
        .await
        .unwrap()
        .0
        .contains("200"));
    running.stop(&fx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_hog_gets_r14_then_is_killed_with_r15_and_restarted() {
    let fx = Fixture::new().await;
    let app = fx.app("hog").await;
    // 700 MB is over a Basic dyno's 512 MB quota (R14); 1.3 GB is over its 1 GB limit (R15).
    let hog = "python3 -c \"import time; a = b'x' * (700 << 20); print('allocated', flush=True); \
               time.sleep(3); b = b'y' * (600 << 20); time.sleep(100)\"";
    fx.deploy(&app, &[("worker", hog)], &[]).await;
    fx.scale(&app, "worker", 1, DynoSize::Basic).await;
    let running = fx.start(fx.config(21400..21500));

    running
        .logged(&app, "heroku[worker.1]: Error R14 (Memory quota exceeded)")
        .await;
    running
        .logged(&app, "heroku[worker.1]: Process running mem=")
        .await;
    running
        .logged(
            &app,
            "heroku[worker.1]: Error R15 (Memory quota vastly exceeded)",
        )
        .await;
    running
        .logged(&app, "heroku[worker.1]: State changed from up to crashed")
        .await;
    running
        .logged(
            &app,
            "heroku[worker.1]: State changed from crashed to starting",
        )
        .await;
    eventually("a second run", || {
        (running.count(&app, "app[worker.1]: allocated") >= 2).then_some(())
    })
    .await;
    running.stop(&fx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_writes_are_private_and_vanish_on_restart() {
    let fx = Fixture::new().await;
    let app = fx.app("writes").await;
    let script = "echo \"before: $(ls /app | grep -c written)\"; touch /app/written-$DYNO \
                  && echo wrote; sleep 1000";
    fx.deploy(&app, &[("worker", script)], &[("seed.txt", "seed")])
        .await;
    fx.scale(&app, "worker", 1, DynoSize::Basic).await;
    let running = fx.start(fx.config(21500..21600));
    running.logged(&app, "app[worker.1]: wrote").await;

    fx.scale(&app, "worker", 2, DynoSize::Basic).await;
    running.manager.notify(app.id);
    running.logged(&app, "app[worker.2]: wrote").await;
    assert_eq!(running.count(&app, "app[worker.2]: before: 0"), 1);

    let first = running.manager.dynos(app.id);
    let restarted = running
        .manager
        .restart(app.id, Target::Dyno("worker.1".into()))
        .await
        .unwrap();
    assert_eq!(restarted, 1);
    eventually("worker.1 to write again", || {
        (running.count(&app, "app[worker.1]: wrote") == 2).then_some(())
    })
    .await;
    assert_eq!(running.count(&app, "app[worker.1]: before: 0"), 2);
    running.logged(&app, "heroku[worker.1]: Restarting").await;
    let now = running.manager.dynos(app.id);
    let container = |dynos: &[wharf_dynos::DynoInfo]| {
        dynos
            .iter()
            .find(|d| d.name == "worker.1")
            .and_then(|d| d.container_id.clone())
            .unwrap()
    };
    assert_ne!(container(&first), container(&now));
    // The shared slug was never written; each running dyno has one directory.
    let slug_dirs: Vec<_> = std::fs::read_dir(fx.data_dir().join("slugs/extracted"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(slug_dirs.len(), 1);
    let files: Vec<String> = std::fs::read_dir(slug_dirs[0].path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files, ["seed.txt"]);
    assert_eq!(fx.dyno_dirs().len(), 2);
    running.stop(&fx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dyno_sees_neither_host_processes_nor_the_data_dir() {
    let fx = Fixture::new().await;
    let app = fx.app("isolated").await;
    let data_dir = fx.data_dir().display().to_string();
    let script = format!(
        "echo \"processes: $(ls /proc | grep -cE '^[0-9]+$')\"; \
         ls {data_dir} >/dev/null 2>&1 && echo 'data dir: visible' || echo 'data dir: hidden'; \
         echo \"uid: $(id -u)\"; echo \"host: $(hostname)\"; \
         [ -x /wharf/bin/wharf ] && echo 'wharf: present'; \
         cat /etc/shadow >/dev/null 2>&1 || echo 'shadow: hidden'; sleep 1000"
    );
    fx.deploy(&app, &[("worker", &script)], &[]).await;
    fx.scale(&app, "worker", 1, DynoSize::Basic).await;
    let running = fx.start(fx.config(21600..21700));
    running.logged(&app, "app[worker.1]: shadow: hidden").await;
    let host_processes = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .count();
    let log = running.log(&app);
    let seen: usize = log
        .iter()
        .find_map(|l| l.split("app[worker.1]: processes: ").nth(1))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        seen < 8 && seen < host_processes,
        "{seen} of {host_processes}"
    );
    for expected in [
        "app[worker.1]: data dir: hidden",
        "app[worker.1]: uid: 200000",
        "app[worker.1]: host: worker.1",
        "app[worker.1]: wharf: present",
    ] {
        assert!(
            log.iter().any(|l| l.contains(expected)),
            "{expected}: {log:#?}"
        );
    }
    running.stop(&fx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_bomb_hits_the_pids_limit() {
    let fx = Fixture::new().await;
    let app = fx.app("fork-bomb").await;
    let bomb = "for i in $(seq 1000); do sleep 30 & done; echo spawned; sleep 1000";
    fx.deploy(&app, &[("worker", bomb)], &[]).await;
    fx.scale(&app, "worker", 1, DynoSize::Basic).await;
    let running = fx.start(fx.config(21700..21800));
    running
        .logged(&app, "Resource temporarily unavailable")
        .await;
    let dynos = running.manager.dynos(app.id);
    let container = dynos[0].container_id.clone().unwrap();
    let limit = u64::from(DynoSize::Basic.max_processes());
    let counted = fx
        .runtime
        .cgroups()
        .container_dirs(&container)
        .into_iter()
        .find_map(|dir| std::fs::read_to_string(dir.join("pids.current")).ok())
        .expect("the dyno's pids cgroup");
    let current: u64 = counted.trim().parse().unwrap();
    assert!(current <= limit, "{current} processes, limit {limit}");
    assert!(current > limit / 2, "the bomb forked only {current}");
    running.stop(&fx).await;
}

/// A server killed with SIGKILL leaves its containers running; the next one removes them and
/// runs exactly the formation.
#[test]
fn a_new_manager_after_a_crash_runs_exactly_the_formation() {
    let first_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (mut fx, app, old) = first_runtime.block_on(async {
        let fx = Fixture::new().await;
        let app = fx.app("survivor").await;
        let release = fx
            .deploy(
                &app,
                &[("web", WEB), ("worker", "echo working; sleep 1000")],
                &[INDEX],
            )
            .await;
        fx.scale(&app, "web", 2, DynoSize::Basic).await;
        fx.scale(&app, "worker", 1, DynoSize::Basic).await;
        let running = fx.start(fx.config(21800..21900));
        let version = release.version;
        running
            .up(
                &app,
                &[
                    ("web.1", version),
                    ("web.2", version),
                    ("worker.1", version),
                ],
            )
            .await;
        let old = fx.dyno_containers().await;
        // Dropped without shutdown, as a SIGKILL would.
        drop(running);
        (fx, app, old)
    });
    // Every task of the first manager dies with its runtime; its containers live on.
    first_runtime.shutdown_background();

    let second_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    second_runtime.block_on(async {
        assert_eq!(old.len(), 3, "{old:?}");
        fx.store = open_store(fx.data_dir()).await;
        let running = fx.start(fx.config(21900..22000));
        let version = fx.store.current_release(app.id).await.unwrap().version;
        let dynos = running
            .up(
                &app,
                &[
                    ("web.1", version),
                    ("web.2", version),
                    ("worker.1", version),
                ],
            )
            .await;
        let ours: HashSet<String> = dynos
            .iter()
            .filter_map(|d| d.container_id.clone())
            .collect();
        let listed: HashSet<String> = fx.dyno_containers().await.into_iter().collect();
        assert_eq!(listed, ours);
        assert!(listed.iter().all(|id| id.starts_with(DYNO_PREFIX)));
        for id in &old {
            assert!(!listed.contains(id));
            for dir in fx.runtime.cgroups().container_dirs(id) {
                assert!(!dir.exists(), "{} is left", dir.display());
            }
        }
        assert_eq!(fx.dyno_dirs().len(), 3);
        let answered = poll(DEADLINE, || async {
            let address = dynos.iter().find(|d| d.name == "web.1")?.address?;
            http_get(address, "/")
                .await
                .ok()
                .filter(|r| r.0.contains("200"))
        })
        .await;
        assert!(answered.is_some());
        running.stop(&fx).await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dyno_that_ignores_sigterm_is_killed_after_the_stop_timeout() {
    let fx = Fixture::new().await;
    let app = fx.app("stubborn").await;
    let script = "trap '' TERM; echo ready; while true; do sleep 1; done";
    fx.deploy(&app, &[("worker", script)], &[]).await;
    fx.scale(&app, "worker", 1, DynoSize::Basic).await;
    let mut config = fx.config(22000..22100);
    config.stop_timeout = Duration::from_secs(1);
    let running = fx.start(config);
    running.logged(&app, "app[worker.1]: ready").await;
    let stopped = running
        .manager
        .stop(app.id, Target::Type("worker".into()))
        .await
        .unwrap();
    assert_eq!(stopped, 1);
    let log = running.log(&app);
    let messages: Vec<&str> = log
        .iter()
        .filter(|l| l.contains("heroku[worker.1]"))
        .map(|l| l.split("]: ").nth(1).unwrap())
        .collect();
    // The reconciler may already be starting a new worker.1 after these lines.
    let down = messages
        .iter()
        .position(|m| *m == "State changed from up to down")
        .unwrap();
    assert_eq!(
        messages[down..down + 5],
        [
            "State changed from up to down",
            "Stopping all processes with SIGTERM",
            "Error R12 (Exit timeout) -> At least one process failed to exit within 1 second of SIGTERM",
            "Stopping remaining processes with SIGKILL",
            "Process exited with status 137",
        ]
    );
    running.stop(&fx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynos_are_cycled() {
    let fx = Fixture::new().await;
    let app = fx.app("cycled").await;
    fx.deploy(&app, &[("worker", "echo started; sleep 1000")], &[])
        .await;
    fx.scale(&app, "worker", 1, DynoSize::Basic).await;
    let mut config = fx.config(22100..22200);
    config.cycle_after = Some(Duration::from_secs(1));
    config.cycle_jitter = Duration::ZERO;
    let running = fx.start(config);
    running.logged(&app, "heroku[worker.1]: Cycling").await;
    eventually("a second start", || {
        (running.count(&app, "app[worker.1]: started") >= 2).then_some(())
    })
    .await;
    let log = running.log(&app);
    let cycling = log.iter().position(|l| l.contains("Cycling")).unwrap();
    assert!(log[cycling + 1].ends_with("heroku[worker.1]: State changed from up to starting"));
    assert!(log[cycling + 2].ends_with("heroku[worker.1]: Stopping all processes with SIGTERM"));
    running.stop(&fx).await;
}

/// A dyno's writes (to `/app` and everywhere else it may write but `/tmp`) are capped at its
/// size's disk: past it the app gets ENOSPC, and the host keeps its free space.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dyno_writing_past_its_disk_cap_gets_enospc() {
    let fx = Fixture::new().await;
    let pool_dir = fx.data_dir().join("disk");
    let pool = wharf_disk::DiskPool::open(&pool_dir, 4 << 30)
        .await
        .unwrap();
    let cap = DynoSize::Basic.disk_mb();
    // Fill the cap without writing gigabytes (fallocate), then write past it.
    let command = "df -m /app | tail -1; \
         avail=$(df -m --output=avail /app | tail -1); \
         fallocate -l $((avail - 8))M /app/big && echo allocated; \
         head -c 64M /dev/zero > /app/more; echo \"write status $?\"; \
         head -c 1M /dev/zero > /tmp/small && echo tmp-ok; sleep 1000";
    let app = fx.app("disk-filler").await;
    fx.deploy(&app, &[("worker", command)], &[]).await;
    let mut config = fx.config(21400..21410);
    config.disk = Some(pool.clone());
    let running = fx.start(config);
    let free_before = free_bytes(fx.data_dir());
    fx.scale(&app, "worker", 1, DynoSize::Basic).await;
    running.logged(&app, "app[worker.1]: tmp-ok").await;
    let log = running.log(&app).join("\n");
    assert!(log.contains("app[worker.1]: allocated"), "{log}");
    assert!(log.contains("No space left on device"), "{log}");
    assert!(log.contains("app[worker.1]: write status 1"), "{log}");
    // df inside shows the cap (within the filesystem's own overhead).
    let size_mb: u64 = log
        .lines()
        .find(|line| line.contains("/app") && line.contains("app[worker.1]"))
        .and_then(|line| line.split_whitespace().rev().nth(4))
        .and_then(|size| size.parse().ok())
        .unwrap_or_else(|| panic!("df output in {log}"));
    assert!(
        size_mb <= cap && size_mb > cap * 9 / 10,
        "{size_mb} MiB of {cap}"
    );
    let lost = free_before.saturating_sub(free_bytes(fx.data_dir()));
    assert!(lost < (cap << 20), "the host lost {lost} bytes");
    let holding_the_file = || {
        pool.names()
            .unwrap()
            .iter()
            .filter(|name| pool.path(name).join("upper/big").exists())
            .count()
    };
    assert_eq!(holding_the_file(), 1, "the dyno's writes are on one disk");

    fx.scale(&app, "worker", 0, DynoSize::Basic).await;
    running
        .dynos_until(&app, "no dyno", |dynos| dynos.is_empty())
        .await;
    eventually("the dyno's disk goes with it", || {
        (holding_the_file() == 0).then_some(())
    })
    .await;
    let left = pool.names().unwrap();
    assert!(
        left.len() <= wharf_dynos::SPARE_DISKS,
        "spares only: {left:?}"
    );
    running.stop(&fx).await;
    pool.close().await.unwrap();
}

fn free_bytes(path: &std::path::Path) -> u64 {
    let stat = rustix::fs::statvfs(path).unwrap();
    stat.f_bavail * stat.f_frsize
}
