//! Real containers on the real stack, through the detected runtime (run as root): output and
//! exit codes, isolation (user, processes, filesystems, secrets), the overlay `/app`, memory
//! and pids limits, signals through tini, and listing and deleting leftovers.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use wharf_containers::{
    Container, ContainerSpec, ContainerStdio, ExitReport, ExitStatus, Limits, Mount, Network,
    Overlay, Runtime, RuntimeKind, Stack, DYNO_USER,
};

/// How long any one container in these tests may take.
const DEADLINE: Duration = Duration::from_secs(60);

struct Fixture {
    dir: tempfile::TempDir,
    stack: Stack,
    runtime: Runtime,
}

impl Fixture {
    async fn new() -> Fixture {
        let dir = tempfile::Builder::new()
            .prefix("wharf-containers-test-")
            .tempdir()
            .unwrap();
        let stack = Stack::prepare(&dir.path().join("stack")).unwrap();
        let runtime = Runtime::detect(&dir.path().join("state")).await.unwrap();
        Fixture {
            dir,
            stack,
            runtime,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A spec running `script` with `sh -c`, as the dyno user, with roomy limits.
    fn spec(&self, name: &str, script: &str) -> ContainerSpec {
        ContainerSpec {
            id: format!(
                "wharf-test-{name}-{}",
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            ),
            stack: self.stack.clone(),
            args: vec!["/bin/sh".to_owned(), "-c".to_owned(), script.to_owned()],
            env: vec![("HOME".to_owned(), "/app".to_owned())],
            cwd: "/".to_owned(),
            user: DYNO_USER,
            hostname: name.to_owned(),
            mounts: Vec::new(),
            app_overlay: None,
            tmp_size_bytes: 16 << 20,
            limits: Limits {
                memory_bytes: 256 << 20,
                memory_quota_bytes: 0,
                pids: 100,
                cpu_shares: 512,
            },
            network: Network::Empty,
            readonly_rootfs: true,
        }
    }

    async fn start(&self, spec: &ContainerSpec, stdio: ContainerStdio) -> Container {
        let bundle = self.path("bundles").join(&spec.id);
        self.runtime.run(spec, &bundle, stdio).await.unwrap()
    }

    /// Runs `spec` to the end, collecting its output.
    async fn run(&self, spec: &ContainerSpec) -> Outcome {
        let mut container = self.start(spec, ContainerStdio::Piped).await;
        let stdout = read_all(container.stdout().unwrap());
        let stderr = read_all(container.stderr().unwrap());
        let report = tokio::time::timeout(DEADLINE, container.wait())
            .await
            .expect("the container exits before the deadline")
            .unwrap();
        Outcome {
            stdout: stdout.await.unwrap(),
            stderr: stderr.await.unwrap(),
            report,
        }
    }
}

/// A failed test leaves no container running: delete whatever the runtime still knows.
impl Drop for Fixture {
    fn drop(&mut self) {
        let state = self.runtime.state_dir();
        let binary = self.runtime.binary();
        let Ok(output) = std::process::Command::new(binary)
            .arg("--root")
            .arg(state)
            .args(["list", "-f", "json"])
            .output()
        else {
            return;
        };
        let listed: Option<Vec<serde_json::Value>> =
            serde_json::from_slice(&output.stdout).unwrap_or_default();
        for container in listed.unwrap_or_default() {
            if let Some(id) = container["id"].as_str() {
                let _ = std::process::Command::new(binary)
                    .arg("--root")
                    .arg(state)
                    .args(["delete", "--force", id])
                    .status();
            }
        }
    }
}

#[derive(Debug)]
struct Outcome {
    stdout: String,
    stderr: String,
    report: ExitReport,
}

fn read_all(
    mut pipe: impl tokio::io::AsyncRead + Unpin + Send + 'static,
) -> tokio::task::JoinHandle<String> {
    tokio::spawn(async move {
        let mut text = String::new();
        pipe.read_to_string(&mut text).await.unwrap();
        text
    })
}

#[tokio::test]
async fn reports_output_and_exit_codes() {
    let fx = Fixture::new().await;
    assert!(matches!(fx.runtime.name(), "crun" | "runc"));

    let hi = fx.run(&fx.spec("echo", "echo hi")).await;
    assert_eq!(hi.stdout, "hi\n");
    assert_eq!(
        hi.report,
        ExitReport {
            status: ExitStatus::Exited(0),
            oom_killed: false
        }
    );

    let three = fx.run(&fx.spec("exit3", "echo oops >&2; exit 3")).await;
    assert_eq!(three.report.status, ExitStatus::Exited(3));
    assert_eq!(three.stderr, "oops\n");
    assert!(!three.report.oom_killed);
}

#[tokio::test]
async fn runs_unprivileged_without_capabilities() {
    let fx = Fixture::new().await;
    let script = "id -u; id -g; id -un; hostname; \
        grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status; \
        if unshare -U true 2>/dev/null; then echo unshare allowed; else echo unshare refused; fi; \
        ulimit -n";
    let outcome = fx.run(&fx.spec("whoami", script)).await;
    assert!(outcome.report.status.success(), "{outcome:?}");
    let lines: Vec<&str> = outcome.stdout.lines().collect();
    assert_eq!(
        lines[..4],
        ["200000", "200000", "dyno", "whoami"],
        "{outcome:?}"
    );
    for capabilities in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert!(
            outcome
                .stdout
                .contains(&format!("{capabilities}:\t0000000000000000")),
            "{capabilities}: {}",
            outcome.stdout
        );
    }
    assert!(
        outcome.stdout.contains("NoNewPrivs:\t1"),
        "{}",
        outcome.stdout
    );
    assert!(outcome.stdout.contains("Seccomp:\t2"), "{}", outcome.stdout);
    assert!(
        outcome.stdout.contains("unshare refused"),
        "{}",
        outcome.stdout
    );
    assert_eq!(lines.last(), Some(&"10000"));
}

#[tokio::test]
async fn sees_only_its_own_processes() {
    let fx = Fixture::new().await;
    let script = "tr '\\0' ' ' < /proc/1/cmdline; echo; \
        for p in /proc/[0-9]*; do echo \"pid ${p#/proc/}\"; done";
    let outcome = fx.run(&fx.spec("ps", script)).await;
    assert!(outcome.report.status.success(), "{outcome:?}");
    assert!(
        outcome.stdout.starts_with("/usr/bin/tini -g -- /bin/sh -c"),
        "{}",
        outcome.stdout
    );
    let pids: Vec<u32> = outcome
        .stdout
        .lines()
        .filter_map(|line| line.strip_prefix("pid "))
        .map(|pid| pid.parse().unwrap())
        .collect();
    // tini and the shell (and perhaps a helper the shell forked): nothing of the host.
    assert!(pids.contains(&1) && pids.len() <= 3, "{pids:?}");
    assert!(!pids.contains(&std::process::id()));
}

#[tokio::test]
async fn cannot_write_the_root_filesystem() {
    let fx = Fixture::new().await;
    let script = "for f in /usr/x /x /etc/passwd /bin/x /app/x /cache/x; do \
        if touch $f 2>/dev/null; then echo \"$f writable\"; else echo \"$f refused\"; fi; done";
    let outcome = fx.run(&fx.spec("rofs", script)).await;
    assert!(outcome.report.status.success(), "{outcome:?}");
    for path in [
        "/usr/x",
        "/x",
        "/etc/passwd",
        "/bin/x",
        "/app/x",
        "/cache/x",
    ] {
        assert!(
            outcome.stdout.contains(&format!("{path} refused")),
            "{}",
            outcome.stdout
        );
    }
    assert!(!Path::new("/usr/x").exists() && !fx.stack.rootfs().join("x").exists());
}

#[tokio::test]
async fn cannot_see_host_secrets() {
    let fx = Fixture::new().await;
    let secret_dir = tempfile::tempdir().unwrap();
    let secret = secret_dir.path().join("secret.txt");
    std::fs::write(&secret, "hunter2").unwrap();
    let script = format!(
        "for f in /etc/shadow /etc/gshadow /root /home {} {}; do \
            if test -e $f; then echo \"$f visible\"; else echo \"$f hidden\"; fi; done; \
         cut -d: -f1 /etc/passwd | tr '\\n' ' '; echo; ls /etc | tr '\\n' ' '",
        secret.display(),
        fx.dir.path().display(),
    );
    let outcome = fx.run(&fx.spec("secrets", &script)).await;
    assert!(outcome.report.status.success(), "{outcome:?}");
    assert!(!outcome.stdout.contains("visible"), "{}", outcome.stdout);
    assert!(!outcome.stdout.contains("hunter2"));
    let lines: Vec<&str> = outcome.stdout.lines().collect();
    assert_eq!(lines[lines.len() - 2], "root dyno build nobody ");
    let etc: Vec<&str> = lines[lines.len() - 1].split_whitespace().collect();
    for expected in [
        "passwd",
        "group",
        "hosts",
        "resolv.conf",
        "ssl",
        "ld.so.cache",
    ] {
        assert!(etc.contains(&expected), "{expected} missing from {etc:?}");
    }
    for unexpected in ["shadow", "sudoers", "ssh", "machine-id", "fstab"] {
        assert!(!etc.contains(&unexpected), "{unexpected} in {etc:?}");
    }
}

#[tokio::test]
async fn tmp_is_writable_and_private() {
    let fx = Fixture::new().await;
    let host_marker = tempfile::Builder::new()
        .prefix("wharf-host-marker-")
        .tempfile_in("/tmp")
        .unwrap();
    let first = fx
        .run(&fx.spec("tmp1", "echo a > /tmp/a && stat -c %a /tmp && ls -A /tmp"))
        .await;
    assert!(first.report.status.success(), "{first:?}");
    assert_eq!(first.stdout, "1777\na\n");
    let second = fx.run(&fx.spec("tmp2", "ls -A /tmp; echo end")).await;
    assert_eq!(
        second.stdout, "end\n",
        "another container's /tmp and the host's stay out"
    );
    assert!(host_marker.path().exists());
}

#[tokio::test]
async fn overlay_app_is_private_per_container() {
    let fx = Fixture::new().await;
    let lower = fx.path("slug");
    std::fs::create_dir_all(&lower).unwrap();
    std::fs::write(lower.join("Procfile"), "web: ./server\n").unwrap();
    // Slugs are extracted as the dyno user, so the app may change its own files.
    std::os::unix::fs::chown(lower.join("Procfile"), Some(DYNO_USER.0), Some(DYNO_USER.1)).unwrap();
    let overlay = |name: &str| Overlay {
        lower: lower.clone(),
        upper: fx.path(&format!("{name}/upper")),
        work: fx.path(&format!("{name}/work")),
    };

    let mut writer = fx.spec(
        "app1",
        "echo 'web: changed' > /app/Procfile && echo new > /app/new && cat /app/Procfile && stat -c %u /app",
    );
    writer.app_overlay = Some(overlay("one"));
    writer.cwd = "/app".to_owned();
    let written = fx.run(&writer).await;
    assert!(written.report.status.success(), "{written:?}");
    assert_eq!(written.stdout, "web: changed\n200000\n");

    let mut reader = fx.spec("app2", "cat /app/Procfile; ls -A /app");
    reader.app_overlay = Some(overlay("two"));
    let read = fx.run(&reader).await;
    assert!(read.report.status.success(), "{read:?}");
    assert_eq!(read.stdout, "web: ./server\nProcfile\n");

    assert_eq!(
        std::fs::read_to_string(lower.join("Procfile")).unwrap(),
        "web: ./server\n"
    );
    assert!(!lower.join("new").exists());
    assert_eq!(
        std::fs::read_to_string(fx.path("one/upper/new")).unwrap(),
        "new\n"
    );
}

#[tokio::test]
async fn binds_are_read_only_or_writable_as_asked() {
    let fx = Fixture::new().await;
    let cache = fx.path("cache");
    let env = fx.path("env");
    for dir in [&cache, &env] {
        std::fs::create_dir_all(dir).unwrap();
        std::os::unix::fs::chown(dir, Some(DYNO_USER.0), Some(DYNO_USER.1)).unwrap();
    }
    std::fs::write(env.join("DATABASE_URL"), "postgres://db").unwrap();
    let mut spec = fx.spec(
        "binds",
        "cat /env/DATABASE_URL; echo; echo cached > /cache/c && echo cache ok; \
         if touch /env/x 2>/dev/null; then echo env writable; else echo env refused; fi",
    );
    spec.mounts = vec![
        Mount {
            source: cache.clone(),
            destination: "/cache".to_owned(),
            readonly: false,
        },
        Mount {
            source: env.clone(),
            destination: "/env".to_owned(),
            readonly: true,
        },
    ];
    let outcome = fx.run(&spec).await;
    assert_eq!(
        outcome.stdout, "postgres://db\ncache ok\nenv refused\n",
        "{outcome:?}"
    );
    assert_eq!(
        std::fs::read_to_string(cache.join("c")).unwrap(),
        "cached\n"
    );
}

/// The container's own cgroup at `/sys/fs/cgroup`, as cgroup v2 or v1 lays it out: its limits
/// are what the spec says, it holds only its own processes, and it cannot be written.
#[tokio::test]
async fn sees_its_own_cgroup_read_only() {
    let fx = Fixture::new().await;
    let script = r#"
        cd /sys/fs/cgroup || exit 3
        if [ -f memory.max ]; then
            echo "memory $(cat memory.max)"; echo "pids $(cat pids.max)"
            echo "quota $(cat memory.low)"
            procs=cgroup.procs; target=memory.max
        else
            echo "memory $(cat memory/memory.limit_in_bytes)"; echo "pids $(cat pids/pids.max)"
            echo "quota $(cat memory/memory.soft_limit_in_bytes)"
            echo "shares $(cat cpu/cpu.shares)"
            procs=memory/cgroup.procs; target=memory/memory.limit_in_bytes
        fi
        echo "procs $(wc -l < $procs)"
        echo "self $(grep -c ':/$' /proc/self/cgroup) of $(wc -l < /proc/self/cgroup)"
        echo 1 > $target 2>/dev/null && echo "wrote the limit"
        mkdir memory/escape 2>/dev/null || mkdir escape 2>/dev/null && echo "made a cgroup"
        exit 0
    "#;
    let mut spec = fx.spec("cgroup", script);
    spec.limits.memory_quota_bytes = 128 << 20;
    let outcome = fx.run(&spec).await;
    assert_eq!(outcome.report.status, ExitStatus::Exited(0), "{outcome:?}");
    let lines: Vec<&str> = outcome.stdout.lines().collect();
    assert!(lines.contains(&"memory 268435456"), "{outcome:?}");
    assert!(lines.contains(&"quota 134217728"), "{outcome:?}");
    assert!(lines.contains(&"pids 100"), "{outcome:?}");
    if outcome.stdout.contains("shares") {
        assert!(lines.contains(&"shares 512"), "{outcome:?}");
    }
    // tini, the shell and the command substitution's `wc`: the container's own, nobody else's.
    let procs: usize = lines
        .iter()
        .find_map(|line| line.strip_prefix("procs "))
        .and_then(|count| count.trim().parse().ok())
        .unwrap_or_else(|| panic!("a process count: {outcome:?}"));
    assert!((1..=5).contains(&procs), "{outcome:?}");
    // Every hierarchy the process is in is the namespace's root: no host path shows.
    let own = lines
        .iter()
        .find_map(|line| line.strip_prefix("self "))
        .unwrap_or_else(|| panic!("/proc/self/cgroup: {outcome:?}"));
    let (rooted, total) = own.split_once(" of ").unwrap();
    assert_eq!(rooted.trim(), total.trim(), "{outcome:?}");
    assert!(!outcome.stdout.contains("wrote the limit"), "{outcome:?}");
    assert!(!outcome.stdout.contains("made a cgroup"), "{outcome:?}");
}

#[tokio::test]
async fn reports_oom_kills() {
    let fx = Fixture::new().await;
    let hog = "python3 -c 'x = bytearray(600 * 1024 * 1024)'";
    let killed = fx.run(&fx.spec("oom", &format!("exec {hog}"))).await;
    assert_eq!(
        killed.report,
        ExitReport {
            status: ExitStatus::Exited(137),
            oom_killed: true
        }
    );

    // PID 1 and the shell survive; only the counter tells that a child was killed.
    let survived = fx
        .run(&fx.spec("oomchild", &format!("{hog}; echo survived")))
        .await;
    assert_eq!(survived.stdout, "survived\n");
    assert_eq!(
        survived.report,
        ExitReport {
            status: ExitStatus::Exited(0),
            oom_killed: true
        }
    );
}

#[tokio::test]
async fn fork_bomb_hits_the_pids_limit() {
    let fx = Fixture::new().await;
    let mut spec = fx.spec("forks", "for i in $(seq 200); do sleep 5 & done; wait");
    spec.limits.pids = 50;
    let outcome = fx.run(&spec).await;
    assert!(
        outcome.stderr.to_lowercase().contains("fork"),
        "the shell reports fork failures: {outcome:?}"
    );
}

#[tokio::test]
async fn sigterm_reaches_the_command_through_tini() {
    let fx = Fixture::new().await;
    let spec = fx.spec(
        "term",
        "trap 'echo got TERM; exit 7' TERM; echo ready; sleep 300 & wait",
    );
    let mut container = fx.start(&spec, ContainerStdio::Piped).await;
    let mut lines = BufReader::new(container.stdout().unwrap()).lines();
    let ready = tokio::time::timeout(DEADLINE, lines.next_line())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ready.as_deref(), Some("ready"));

    fx.runtime.kill(&spec.id, "TERM").await.unwrap();
    let next = tokio::time::timeout(DEADLINE, lines.next_line())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next.as_deref(), Some("got TERM"));
    let report = tokio::time::timeout(DEADLINE, container.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.status, ExitStatus::Exited(7));
}

#[tokio::test]
async fn lists_and_deletes_running_containers() {
    let fx = Fixture::new().await;
    let spec = fx.spec("listed", "sleep 300");
    let container = fx.start(&spec, ContainerStdio::Null).await;
    let waiting = tokio::spawn(container.wait());

    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let states = fx.runtime.states("wharf-test-listed-").await.unwrap();
        if states
            .iter()
            .any(|s| s.id == spec.id && s.status == "running")
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never listed running: {states:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        fx.runtime.list(&spec.id).await.unwrap(),
        vec![spec.id.clone()]
    );
    assert!(fx
        .runtime
        .list("wharf-test-nothing-")
        .await
        .unwrap()
        .is_empty());

    let stats = fx.runtime.stats(&spec.id).await.unwrap();
    assert_eq!(stats.memory_quota_bytes, Some(256 << 20));
    assert!(
        stats.memory_total_bytes > 0 && stats.cpu_time_ns > 0,
        "{stats:?}"
    );

    let cgroup_dirs = fx.runtime.cgroups().container_dirs(&spec.id);
    assert!(
        cgroup_dirs.iter().any(|dir| dir.exists()),
        "{cgroup_dirs:?}"
    );

    fx.runtime.delete(&spec.id).await.unwrap();
    assert!(fx.runtime.list(&spec.id).await.unwrap().is_empty());
    for dir in &cgroup_dirs {
        assert!(!dir.exists(), "{} is left", dir.display());
    }
    let report = tokio::time::timeout(DEADLINE, waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(report.status, ExitStatus::Exited(137));

    fx.runtime.delete(&spec.id).await.unwrap();
    fx.runtime.delete("wharf-test-never-existed").await.unwrap();
}

#[tokio::test]
async fn runtime_failures_are_errors() {
    let fx = Fixture::new().await;
    let file = fx.path("not-a-directory");
    std::fs::write(&file, "").unwrap();
    let mut spec = fx.spec("broken", "true");
    spec.mounts = vec![Mount {
        source: file,
        destination: "/cache".to_owned(),
        readonly: true,
    }];
    let container = fx.start(&spec, ContainerStdio::Null).await;
    let error = tokio::time::timeout(DEADLINE, container.wait())
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        format!("{error:#}").contains("could not run container"),
        "{error:#}"
    );
    assert!(fx.runtime.list(&spec.id).await.unwrap().is_empty());
}

#[tokio::test]
async fn kill_all_reaches_every_process() {
    let fx = Fixture::new().await;
    // tini passes signals on to its child's process group only: the `setsid` child gets
    // USR1 from `kill --all` alone. The main shell waits for it through its own USR1.
    let script = "trap : USR1; \
        setsid -w sh -c 'trap \"echo got USR1; exit 0\" USR1; echo ready; \
            while :; do sleep 0.1; done' & \
        child=$!; \
        while :; do wait $child; status=$?; [ $status -lt 128 ] && exit $status; done";
    let spec = fx.spec("killall", script);
    let mut container = fx.start(&spec, ContainerStdio::Piped).await;
    let mut lines = BufReader::new(container.stdout().unwrap()).lines();
    let ready = tokio::time::timeout(DEADLINE, lines.next_line())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ready.as_deref(), Some("ready"));

    fx.runtime.kill_all(&spec.id, "USR1").await.unwrap();
    let next = tokio::time::timeout(DEADLINE, lines.next_line())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next.as_deref(), Some("got USR1"));
    let report = tokio::time::timeout(DEADLINE, container.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.status, ExitStatus::Exited(0));
}

/// runc is the fallback wherever crun is picked: it must work too.
#[tokio::test]
async fn runc_runs_the_same_config() {
    let fx = Fixture::new().await;
    let runc = Runtime::with_kind(RuntimeKind::Runc, &fx.path("runc-state"))
        .await
        .unwrap();
    assert_eq!(runc.name(), "runc");
    let spec = fx.spec("runc", "echo via runc; id -u");
    let bundle = fx.path("bundles").join(&spec.id);
    let mut container = runc
        .run(&spec, &bundle, ContainerStdio::Piped)
        .await
        .unwrap();
    let stdout = read_all(container.stdout().unwrap());
    let report = tokio::time::timeout(DEADLINE, container.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stdout.await.unwrap(), "via runc\n200000\n");
    assert!(report.status.success());
}

/// A burst of output larger than Linux's default 64 KiB pipe is written in full while nobody
/// reads: a dyno keeps running while Wharf's log pump is descheduled.
#[tokio::test]
async fn output_pipes_hold_a_burst() {
    let fx = Fixture::new().await;
    let spec = fx.spec(
        "burst",
        "head -c 600000 /dev/zero | tr '\\0' x; echo done >&2",
    );
    let mut container = fx.start(&spec, ContainerStdio::Piped).await;
    let mut stderr = BufReader::new(container.stderr().unwrap()).lines();
    // stdout is not read until the writer says it finished.
    let done = tokio::time::timeout(DEADLINE, stderr.next_line())
        .await
        .expect("the writer finished without a reader on its stdout")
        .unwrap();
    assert_eq!(done.as_deref(), Some("done"));
    let stdout = read_all(container.stdout().unwrap()).await.unwrap();
    assert_eq!(stdout.len(), 600_000);
    let report = tokio::time::timeout(DEADLINE, container.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.status, ExitStatus::Exited(0));
}
