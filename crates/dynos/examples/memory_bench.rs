//! The platform's memory per running dyno (as root): what Wharf runs beside each dyno's own
//! processes, with 1, 10 and 50 worker dynos, for dynos supervised by a foreground runtime
//! process (`runc run`, as before holders) and for dynos under their holders (`wharf-shim`).
//! Each process is counted by RSS (its resident pages, shared ones too) and by PSS (shared
//! pages divided among the processes that share them: what one more dyno really costs).
//! Prints a Markdown table. Run with `crates/dynos/bench/run.sh` (which builds the holder),
//! or give the holder's path as the first argument.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio_util::sync::CancellationToken;

mod support;
use uuid::Uuid;
use wharf_containers::{HolderConfig, Runtime};
use wharf_dynos::{DynoManager, DynoState};
use wharf_model::{DynoSize, FormationUpdate, Quantity};
use wharf_store::Store;

const COUNTS: [u32; 3] = [1, 10, 50];
const DEADLINE: Duration = Duration::from_secs(120);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
        .with_writer(std::io::stderr)
        .init();
    let holder = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .context("give the holder (wharf-shim) binary's path")?;
    println!("| dynos | supervision | per dyno: supervisor RSS | tini RSS | total RSS | supervisor PSS | tini PSS | total PSS |");
    println!("|---|---|---|---|---|---|---|---|");
    let modes: Vec<bool> = match std::env::var("HELD_ONLY") {
        Ok(_) => vec![true],
        Err(_) => vec![false, true],
    };
    for held in modes {
        let bench = Bench::new(held.then(|| holder.clone())).await?;
        let shutdown = CancellationToken::new();
        let run = tokio::spawn(bench.manager.clone().run(shutdown.clone()));
        let measured = bench.measure().await;
        bench.scale(0).await?;
        bench.until(0).await?;
        shutdown.cancel();
        run.await.context("manager task")??;
        bench.disk.close().await?;
        for row in measured? {
            println!("{row}");
        }
    }
    Ok(())
}

struct Bench {
    _dir: tempfile::TempDir,
    store: Store,
    manager: DynoManager,
    disk: wharf_disk::DiskPool,
    app_id: Uuid,
    data: PathBuf,
    held: bool,
    runtime: String,
}

impl Bench {
    async fn new(holder: Option<PathBuf>) -> anyhow::Result<Bench> {
        let dir = tempfile::Builder::new()
            .prefix("wharf-memory-bench-")
            .tempdir()?;
        let mut runtime = Runtime::detect(&dir.path().join("runtime")).await?;
        let held = holder.is_some();
        if let Some(binary) = holder {
            runtime = runtime.with_holder(HolderConfig {
                binary,
                orphan_after: Duration::from_secs(600),
                stop_grace: Duration::from_secs(5),
            });
        }
        let source = dir.path().join("source");
        std::fs::create_dir_all(&source)?;
        std::fs::write(source.join("README"), "a worker that sleeps\n")?;
        let (store, app_id) =
            support::released_app(dir.path(), &source, &[("worker", "sleep 100000")]).await?;
        let (config, disk) = support::production_config(dir.path(), 30 << 30).await?;
        let stacks = wharf_containers::Stacks::new(wharf_containers::StacksConfig::new(dir.path()));
        let name = runtime.name().to_owned();
        let manager = DynoManager::new(store.clone(), config, runtime, stacks);
        Ok(Bench {
            data: dir.path().to_owned(),
            _dir: dir,
            store,
            manager,
            disk,
            app_id,
            held,
            runtime: name,
        })
    }

    async fn measure(&self) -> anyhow::Result<Vec<String>> {
        let mut rows = Vec::new();
        for count in COUNTS {
            self.scale(count).await?;
            self.until(count).await?;
            // Settled: every start's transient processes are gone.
            tokio::time::sleep(Duration::from_secs(2)).await;
            let supervisors = self.supervisors()?;
            let inits: Vec<u32> = supervisors
                .iter()
                .flat_map(|pid| support::children(*pid).unwrap_or_default())
                .filter(|pid| support::comm(*pid).as_deref() == Some("tini"))
                .collect();
            if supervisors.len() != count as usize || inits.len() != count as usize {
                bail!(
                    "{count} dynos, but {} supervisors and {} inits",
                    supervisors.len(),
                    inits.len()
                );
            }
            let per = |pids: &[u32], field: &str| -> u64 {
                pids.iter().map(|pid| kib(*pid, field)).sum::<u64>() / u64::from(count)
            };
            let (supervisor_rss, init_rss) = (per(&supervisors, "Rss:"), per(&inits, "Rss:"));
            let (supervisor_pss, init_pss) = (per(&supervisors, "Pss:"), per(&inits, "Pss:"));
            let how = match self.held {
                true => "holder (`wharf-shim`)".to_owned(),
                false => format!("foreground `{} run`", self.runtime),
            };
            rows.push(format!(
                "| {count} | {how} | {} | {} | {} | {} | {} | {} |",
                mib(supervisor_rss),
                mib(init_rss),
                mib(supervisor_rss + init_rss),
                mib(supervisor_pss),
                mib(init_pss),
                mib(supervisor_pss + init_pss),
            ));
        }
        Ok(rows)
    }

    /// The process supervising each dyno: the runtime's `run` (a child of this process), or
    /// the holder (started by this process, in a session of its own) of this data dir.
    fn supervisors(&self) -> anyhow::Result<Vec<u32>> {
        let me = std::process::id();
        let data = self.data.to_string_lossy().into_owned();
        Ok(all_pids()?
            .into_iter()
            .filter(|pid| match self.held {
                true => {
                    support::comm(*pid).as_deref() == Some("wharf-shim")
                        && cmdline(*pid).contains(&data)
                }
                false => {
                    parent(*pid) == Some(me)
                        && support::comm(*pid).as_deref() == Some(self.runtime.as_str())
                }
            })
            .collect())
    }

    async fn scale(&self, quantity: u32) -> anyhow::Result<()> {
        let updates = [FormationUpdate {
            process_type: "worker".to_owned(),
            quantity: Some(Quantity::Absolute(quantity)),
            size: Some(DynoSize::Basic),
        }];
        self.store.update_formation(self.app_id, &updates).await?;
        self.manager.notify(self.app_id);
        Ok(())
    }

    async fn until(&self, count: u32) -> anyhow::Result<()> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let dynos = self.manager.dynos(self.app_id);
            let up = dynos.iter().filter(|d| d.state == DynoState::Up).count();
            if up == count as usize && dynos.len() == count as usize {
                return Ok(());
            }
            if Instant::now() > deadline {
                let log: Vec<String> = self
                    .manager
                    .logs()
                    .recent(self.app_id, 20)
                    .into_iter()
                    .map(|line| line.message)
                    .collect();
                bail!("{up} of {count} dynos up; the log ends with {log:#?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn all_pids() -> anyhow::Result<Vec<u32>> {
    Ok(std::fs::read_dir("/proc")?
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
        .collect())
}

fn parent(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|bytes| String::from_utf8_lossy(&bytes).replace('\0', " "))
        .unwrap_or_default()
}

/// A field of `/proc/PID/smaps_rollup` (`Rss:`, `Pss:`), in KiB.
fn kib(pid: u32, field: &str) -> u64 {
    let path = Path::new("/proc")
        .join(pid.to_string())
        .join("smaps_rollup");
    std::fs::read_to_string(path)
        .ok()
        .and_then(|rollup| {
            rollup
                .lines()
                .find_map(|line| line.strip_prefix(field))
                .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn mib(kib: u64) -> String {
    format!("{:.2} MiB", kib as f64 / 1024.0)
}
