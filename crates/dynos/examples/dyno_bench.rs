//! Dyno benchmark (as root): start to exec of a dyno against a bare spawn and a bare runtime
//! run of the same command, a hello-world web dyno to its first HTTP 200 against the same app
//! started bare, scaling web 1 to 10, and the memory the platform spends per running dyno.
//! Prints Markdown tables. Run with `crates/dynos/bench/run.sh`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

mod support;
use uuid::Uuid;
use wharf_containers::{Runtime, Stack};
use wharf_dynos::{DynoManager, DynoState};
use wharf_model::{DynoSize, FormationUpdate, Quantity};
use wharf_store::Store;

const RUNS: usize = 10;
const WORKER: &str = "echo hi; sleep 1000";
const POLL: Duration = Duration::from_millis(2);
const DEADLINE: Duration = Duration::from_secs(120);

struct Bench {
    dir: tempfile::TempDir,
    store: Store,
    runtime: Runtime,
    stack: Stack,
    manager: DynoManager,
    disk: wharf_disk::DiskPool,
    app_id: Uuid,
    source: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let bench = Bench::new().await?;
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(bench.manager.clone().run(shutdown.clone()));
    let result = bench.measure().await;
    shutdown.cancel();
    run.await.context("manager task")??;
    bench.disk.close().await?;
    result
}

impl Bench {
    async fn new() -> anyhow::Result<Bench> {
        let dir = tempfile::Builder::new()
            .prefix("wharf-dyno-bench-")
            .tempdir()?;
        let runtime = Runtime::detect(&dir.path().join("runtime")).await?;
        let stack = Stack::prepare(&dir.path().join("stack"))?;
        let source = dir.path().join("source");
        std::fs::create_dir_all(&source)?;
        std::fs::write(source.join("index.html"), "hello\n")?;
        let (store, app_id) = support::released_app(
            dir.path(),
            &source,
            &[("web", "python3 -m http.server $PORT"), ("worker", WORKER)],
        )
        .await?;
        let (mut config, disk) = support::production_config(dir.path(), 40 << 30).await?;
        config.port_range = 23000..23200;
        let stacks = wharf_containers::Stacks::new(wharf_containers::StacksConfig::new(dir.path()));
        let manager = DynoManager::new(store.clone(), config, runtime.clone(), stacks);
        Ok(Bench {
            dir,
            store,
            runtime,
            stack,
            manager,
            disk,
            app_id,
            source,
        })
    }

    async fn measure(&self) -> anyhow::Result<()> {
        self.scale(&[("web", 0), ("worker", 0)]).await?;
        // Warm up: the slug is extracted once, on the first start.
        self.scale(&[("worker", 1)]).await?;
        self.until(|dynos| dynos.iter().filter(|d| d.1 == DynoState::Up).count() == 1)
            .await?;
        self.scale(&[("worker", 0)]).await?;
        self.until(|dynos| dynos.is_empty()).await?;

        let mut start = Vec::new();
        start.push((
            "dyno: scale to first output".to_owned(),
            self.dyno_exec().await?,
        ));
        start.push((
            "bare spawn (posix_spawn) of the same command".to_owned(),
            bare_spawn().await?,
        ));
        start.push((
            format!("bare `{} run` of the same command", self.runtime.name()),
            self.bare_runtime().await?,
        ));
        println!("| start to exec of `{WORKER}` ({RUNS} runs) | median | min | max |");
        println!("|---|---|---|---|");
        for (label, times) in &start {
            row(label, times);
        }

        let web = vec![
            (
                "web dyno: scale to first HTTP 200".to_owned(),
                self.dyno_http().await?,
            ),
            (
                "the same app started bare".to_owned(),
                self.bare_http().await?,
            ),
        ];
        println!();
        println!(
            "| `python3 -m http.server` to first HTTP 200 ({RUNS} runs) | median | min | max |"
        );
        println!("|---|---|---|---|");
        for (label, times) in &web {
            row(label, times);
        }

        let (scaling, memory) = self.scale_to_ten().await?;
        println!();
        println!("| scaling (3 runs) | median | min | max |");
        println!("|---|---|---|---|");
        row("web 1 -> 10, until all 10 are up", &scaling);

        println!();
        println!("| memory per running dyno (10 web dynos) | RSS |");
        println!("|---|---|");
        for (label, kib) in memory {
            println!("| {label} | {} |", kib_text(kib));
        }
        Ok(())
    }

    async fn scale(&self, quantities: &[(&str, u32)]) -> anyhow::Result<()> {
        let updates: Vec<FormationUpdate> = quantities
            .iter()
            .map(|(process_type, quantity)| FormationUpdate {
                process_type: (*process_type).to_owned(),
                quantity: Some(Quantity::Absolute(*quantity)),
                size: Some(DynoSize::Basic),
            })
            .collect();
        self.store.update_formation(self.app_id, &updates).await?;
        self.manager.notify(self.app_id);
        Ok(())
    }

    /// Waits until the app's dynos (name, state, address) satisfy `check`.
    async fn until(
        &self,
        check: impl Fn(&[(String, DynoState, Option<SocketAddr>)]) -> bool,
    ) -> anyhow::Result<Vec<(String, DynoState, Option<SocketAddr>)>> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let dynos: Vec<_> = self
                .manager
                .dynos(self.app_id)
                .into_iter()
                .map(|d| (d.name, d.state, d.address))
                .collect();
            if check(&dynos) {
                return Ok(dynos);
            }
            if Instant::now() > deadline {
                bail!("timed out; dynos: {dynos:?}");
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn dyno_exec(&self) -> anyhow::Result<Vec<Duration>> {
        let mut times = Vec::new();
        for _ in 0..RUNS {
            let mut tail = self.manager.logs().subscribe();
            let started = Instant::now();
            self.scale(&[("worker", 1)]).await?;
            loop {
                let (app, line) = tokio::time::timeout(DEADLINE, tail.recv()).await??;
                if app == self.app_id && line.process == "worker.1" && line.message == "hi" {
                    break;
                }
            }
            times.push(started.elapsed());
            self.scale(&[("worker", 0)]).await?;
            self.until(|dynos| dynos.is_empty()).await?;
        }
        Ok(times)
    }

    async fn bare_runtime(&self) -> anyhow::Result<Vec<Duration>> {
        let bundle = self.dir.path().join("bare-bundle");
        write_bare_bundle(&self.runtime, &self.stack, &bundle).await?;
        let state = self.dir.path().join("bare-state");
        let mut times = Vec::new();
        for run in 0..RUNS {
            let id = format!("bench-bare-{run}");
            let started = Instant::now();
            let mut child = Command::new(self.runtime.binary())
                .arg("--root")
                .arg(&state)
                .args(["run", "--bundle"])
                .arg(&bundle)
                .arg(&id)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .kill_on_drop(true)
                .spawn()?;
            first_byte(&mut child).await?;
            times.push(started.elapsed());
            let _ = Command::new(self.runtime.binary())
                .arg("--root")
                .arg(&state)
                .args(["delete", "--force", &id])
                .status()
                .await?;
            let _ = child.wait().await;
        }
        Ok(times)
    }

    async fn dyno_http(&self) -> anyhow::Result<Vec<Duration>> {
        let mut times = Vec::new();
        for _ in 0..RUNS {
            let started = Instant::now();
            self.scale(&[("web", 1)]).await?;
            let dynos = self
                .until(|dynos| dynos.iter().any(|d| d.2.is_some()))
                .await?;
            let address = dynos.iter().find_map(|d| d.2).context("an address")?;
            until_ok(address).await?;
            times.push(started.elapsed());
            self.scale(&[("web", 0)]).await?;
            self.until(|dynos| dynos.is_empty()).await?;
        }
        Ok(times)
    }

    async fn bare_http(&self) -> anyhow::Result<Vec<Duration>> {
        let mut times = Vec::new();
        for run in 0..RUNS {
            let port = 23300 + u16::try_from(run)?;
            let started = Instant::now();
            let mut child = Command::new("/usr/bin/python3")
                .args(["-m", "http.server", &port.to_string()])
                .current_dir(&self.source)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()?;
            until_ok(SocketAddr::from(([127, 0, 0, 1], port))).await?;
            times.push(started.elapsed());
            child.kill().await?;
        }
        Ok(times)
    }

    /// Times web 1 -> 10 three times; with 10 up, measures the platform's memory per dyno.
    async fn scale_to_ten(&self) -> anyhow::Result<(Vec<Duration>, Vec<(String, u64)>)> {
        let mut times = Vec::new();
        let mut memory = Vec::new();
        for run in 0..3 {
            self.scale(&[("web", 1)]).await?;
            self.until(|d| d.len() == 1 && d[0].1 == DynoState::Up)
                .await?;
            let before = rss_kib(std::process::id())?;
            let started = Instant::now();
            self.scale(&[("web", 10)]).await?;
            self.until(|d| d.len() == 10 && d.iter().all(|d| d.1 == DynoState::Up))
                .await?;
            times.push(started.elapsed());
            if run == 2 {
                memory = self.platform_memory(before)?;
            }
            self.scale(&[("web", 0)]).await?;
            self.until(|dynos| dynos.is_empty()).await?;
        }
        Ok((times, memory))
    }

    fn platform_memory(&self, manager_before: u64) -> anyhow::Result<Vec<(String, u64)>> {
        let me = std::process::id();
        let runtimes: Vec<u32> = support::children(me)?
            .into_iter()
            .filter(|pid| support::comm(*pid).as_deref() == Some(self.runtime.name()))
            .collect();
        let inits: Vec<u32> = runtimes
            .iter()
            .map(|pid| support::children(*pid))
            .collect::<anyhow::Result<Vec<_>>>()?
            .into_iter()
            .flatten()
            .filter(|pid| support::comm(*pid).as_deref() == Some("tini"))
            .collect();
        let total =
            |pids: &[u32]| -> anyhow::Result<u64> { pids.iter().map(|pid| rss_kib(*pid)).sum() };
        let manager_after = rss_kib(me)?;
        let per = |kib: u64, n: usize| kib / (n.max(1) as u64);
        Ok(vec![
            (
                format!(
                    "`{} run` supervising it ({} found)",
                    self.runtime.name(),
                    runtimes.len()
                ),
                per(total(&runtimes)?, runtimes.len()),
            ),
            (
                format!("tini as PID 1 ({} found)", inits.len()),
                per(total(&inits)?, inits.len()),
            ),
            (
                "the manager's own growth (9 more dynos)".to_owned(),
                manager_after.saturating_sub(manager_before) / 9,
            ),
        ])
    }
}

async fn bare_spawn() -> anyhow::Result<Vec<Duration>> {
    let mut times = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let mut child = Command::new("/bin/bash")
            .args(["-c", WORKER])
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        first_byte(&mut child).await?;
        times.push(started.elapsed());
        child.kill().await?;
    }
    Ok(times)
}

async fn first_byte(child: &mut Child) -> anyhow::Result<()> {
    let mut stdout = child.stdout.take().context("stdout")?;
    let mut byte = [0u8; 1];
    tokio::time::timeout(DEADLINE, stdout.read_exact(&mut byte)).await??;
    Ok(())
}

/// Polls `GET /` at `address` until it answers 200.
async fn until_ok(address: SocketAddr) -> anyhow::Result<()> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Ok(mut stream) = tokio::net::TcpStream::connect(address).await {
            stream.write_all(b"GET / HTTP/1.0\r\n\r\n").await?;
            let mut response = Vec::new();
            stream.read_to_end(&mut response).await?;
            if response.starts_with(b"HTTP/1.0 200") {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!("{address} never answered 200");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// A minimal bundle (the runtime's own `spec`, on the stack's root with `/usr` bound) that runs
/// the worker command as root with no limits, seccomp or init.
async fn write_bare_bundle(runtime: &Runtime, stack: &Stack, bundle: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(bundle)?;
    let status = Command::new(runtime.binary())
        .arg("spec")
        .current_dir(bundle)
        .status()
        .await?;
    if !status.success() {
        bail!("{} spec failed", runtime.name());
    }
    let path = bundle.join("config.json");
    let mut config: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)?;
    config["process"]["terminal"] = false.into();
    config["process"]["args"] = serde_json::json!(["/bin/bash", "-c", WORKER]);
    config["root"]["path"] = stack.rootfs().display().to_string().into();
    config["root"]["readonly"] = true.into();
    config["mounts"]
        .as_array_mut()
        .context("mounts")?
        .push(serde_json::json!({
            "destination": "/usr", "type": "bind", "source": "/usr",
            "options": ["bind", "ro"]
        }));
    std::fs::write(&path, serde_json::to_vec_pretty(&config)?)?;
    Ok(())
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("VmRSS of {pid}"))
}

fn row(label: &str, times: &[Duration]) {
    let mut sorted = times.to_vec();
    sorted.sort();
    let median = sorted[sorted.len() / 2];
    println!(
        "| {label} | {} | {} | {} |",
        millis(median),
        millis(sorted[0]),
        millis(sorted[sorted.len() - 1])
    );
}

fn millis(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

fn kib_text(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}
