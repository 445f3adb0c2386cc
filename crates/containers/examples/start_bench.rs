//! Start-up benchmark (as root): median time to first output of a plain fork/exec of
//! `/bin/echo`, a bare `crun run` and `runc run` of a minimal bundle, and `Runtime::run` with the
//! full Wharf configuration, in a network namespace of its own on the dyno network (as dynos
//! and builds run: the attach included) and in an empty one; and the attach alone. Prints a
//! Markdown table. Run with `bench/start.sh`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use oci_spec::runtime::{LinuxNamespaceType, MountBuilder, Spec};
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};
use wharf_containers::{
    bundle_files, oci_config, ContainerSpec, ContainerStdio, Limits, Network, Runtime, Stack,
    DYNO_USER,
};

const RUNS: usize = 20;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::Builder::new().prefix("wharf-bench-").tempdir()?;
    let stack = Stack::prepare(&dir.path().join("stack"))?;
    let runtime = Runtime::detect(&dir.path().join("state")).await?;
    let bare_bundle = dir.path().join("bare");
    write_bare_bundle(&stack, &bare_bundle)?;
    let full_bundle = dir.path().join("full");
    write_full_bundle(&stack, &full_bundle)?;

    let mut rows = Vec::new();
    rows.push((
        "plain fork/exec of /bin/echo".to_owned(),
        measure(|_| async {
            let child = Command::new("/bin/echo")
                .arg("hi")
                .stdout(Stdio::piped())
                .spawn()?;
            Ok(child)
        })
        .await?,
    ));
    let bundles = [
        ("crun", &bare_bundle, "bare bundle"),
        ("runc", &bare_bundle, "bare bundle"),
        ("crun", &full_bundle, "Wharf's full config, no OOM read"),
    ];
    for (bare, bundle, what) in bundles {
        let state = dir.path().join(format!("bare-state-{bare}"));
        let label = format!("`{bare} run`, {what}");
        let result = measure(|run| {
            let (state, bundle) = (state.clone(), bundle.clone());
            async move {
                let child = Command::new(bare)
                    .arg("--root")
                    .arg(&state)
                    .args(["run", "--bundle"])
                    .arg(&bundle)
                    .arg(format!("wharf-bench-bare-{bare}-{run}"))
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .spawn()?;
                Ok(child)
            }
        })
        .await;
        match result {
            Ok(times) => rows.push((label, times)),
            Err(error) => eprintln!("{label}: unavailable: {error:#}"),
        }
    }
    let network = wharf_network::DynoNetwork::start(wharf_network::test_settings()).await?;
    let ours = measure_runtime(&runtime, &stack, dir.path(), Some(&network)).await?;
    rows.push((
        format!(
            "`Runtime::run` ({}), full config, on the dyno network (attach included)",
            runtime.name()
        ),
        ours,
    ));
    let empty = measure_runtime(&runtime, &stack, dir.path(), None).await?;
    rows.push((
        format!(
            "`Runtime::run` ({}), full config, empty network namespace",
            runtime.name()
        ),
        empty,
    ));
    let mut attaches = Vec::new();
    let mut releases = Vec::new();
    for _ in 0..RUNS {
        let began = Instant::now();
        let attachment = network.attach().await?;
        attaches.push(began.elapsed());
        let began = Instant::now();
        drop(attachment);
        releases.push(began.elapsed());
    }
    rows.push((
        "dyno network attach alone (namespace, veth on the bridge, address, route) / release"
            .to_owned(),
        (median(attaches), median(releases)),
    ));
    network.close().await;

    println!("| what ({RUNS} runs) | median to first output | median to exit |");
    println!("|---|---|---|");
    for (label, (first, exit)) in rows {
        println!("| {label} | {} | {} |", millis(first), millis(exit));
    }
    Ok(())
}

/// Starts `RUNS` children with `start` and returns the median times to the first byte of
/// stdout and to the exit.
async fn measure<F, Fut>(start: F) -> anyhow::Result<(Duration, Duration)>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Child>>,
{
    let (mut first, mut exit) = (Vec::new(), Vec::new());
    for run in 0..RUNS {
        let began = Instant::now();
        let mut child = start(run).await?;
        let mut stdout = child.stdout.take().context("no stdout")?;
        let mut byte = [0u8; 1];
        if stdout.read(&mut byte).await? == 0 {
            bail!("no output: {:?}", child.wait().await?);
        }
        first.push(began.elapsed());
        let status = child.wait().await?;
        exit.push(began.elapsed());
        if !status.success() {
            bail!("exited with {status}");
        }
    }
    Ok((median(first), median(exit)))
}

async fn measure_runtime(
    runtime: &Runtime,
    stack: &Stack,
    dir: &Path,
    network: Option<&wharf_network::DynoNetwork>,
) -> anyhow::Result<(Duration, Duration)> {
    let (mut first, mut exit) = (Vec::new(), Vec::new());
    for run in 0..RUNS {
        let mut spec = echo_spec(
            stack,
            format!("wharf-bench-ours-{run}-{}", uuid::Uuid::new_v4().simple()),
        );
        let began = Instant::now();
        let attachment = match network {
            Some(network) => Some(network.attach().await?),
            None => None,
        };
        if let Some(attachment) = &attachment {
            spec.network = Network::Joined {
                path: attachment.namespace_path(),
                nameserver: attachment.nameserver(),
            };
        }
        let mut container = runtime
            .run(
                &spec,
                &dir.join("bundles").join(&spec.id),
                ContainerStdio::Piped,
            )
            .await?;
        let mut stdout = container.stdout().context("no stdout")?;
        let mut byte = [0u8; 1];
        if stdout.read(&mut byte).await? == 0 {
            bail!("no output: {:?}", container.wait().await?);
        }
        first.push(began.elapsed());
        let report = container.wait().await?;
        exit.push(began.elapsed());
        if !report.status.success() {
            bail!("exited with {report:?}");
        }
    }
    Ok((median(first), median(exit)))
}

/// `/bin/echo hi` as a dyno with ordinary limits.
fn echo_spec(stack: &Stack, id: String) -> ContainerSpec {
    ContainerSpec {
        id,
        stack: stack.clone(),
        args: vec!["/bin/echo".to_owned(), "hi".to_owned()],
        env: Vec::new(),
        cwd: "/".to_owned(),
        user: DYNO_USER,
        hostname: "bench".to_owned(),
        mounts: Vec::new(),
        app_overlay: None,
        tmp_size_bytes: 16 << 20,
        limits: Limits {
            memory_bytes: 256 << 20,
            memory_quota_bytes: 0,
            pids: 100,
            cpu_shares: 1024,
        },
        network: Network::Empty,
        readonly_rootfs: true,
    }
}

/// A minimal bundle on the stack: root, host network, the runtime's default mounts plus
/// `/usr`, default capabilities, no seccomp, no limits.
fn write_bare_bundle(stack: &Stack, bundle: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(bundle)?;
    let mut spec = Spec::default();
    let mut root = spec.root().clone().context("default root")?;
    root.set_path(stack.rootfs().to_path_buf());
    root.set_readonly(Some(true));
    spec.set_root(Some(root));
    let mut process = spec.process().clone().context("default process")?;
    process.set_args(Some(vec!["/bin/echo".to_owned(), "hi".to_owned()]));
    process.set_terminal(Some(false));
    spec.set_process(Some(process));
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    mounts.push(
        MountBuilder::default()
            .destination(PathBuf::from("/usr"))
            .typ("bind")
            .source(PathBuf::from("/usr"))
            .options(vec!["bind".to_owned(), "ro".to_owned()])
            .build()?,
    );
    spec.set_mounts(Some(mounts));
    let mut linux = spec.linux().clone().context("default linux")?;
    let namespaces = linux.namespaces().clone().unwrap_or_default();
    linux.set_namespaces(Some(
        namespaces
            .into_iter()
            .filter(|ns| {
                !matches!(
                    ns.typ(),
                    LinuxNamespaceType::Network | LinuxNamespaceType::Cgroup
                )
            })
            .collect(),
    ));
    linux.set_cgroups_path(Some(PathBuf::from("/wharf/bench-bare")));
    spec.set_linux(Some(linux));
    spec.save(bundle.join("config.json"))?;
    Ok(())
}

/// The bundle `Runtime::run` would write (config, hostname, hosts), to run with a bare
/// runtime command.
fn write_full_bundle(stack: &Stack, bundle: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(bundle)?;
    let spec = echo_spec(stack, "wharf-bench-full".to_owned());
    oci_config(&spec, bundle)?.save(bundle.join("config.json"))?;
    for (name, content) in bundle_files(&spec) {
        // Server path: the bench's own temporary bundle, which no container writes.
        std::fs::write(bundle.join(name), content)?;
    }
    Ok(())
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn millis(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}
