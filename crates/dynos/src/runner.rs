//! The dyno runner: one supervisor task per dyno runs its process in a container, waits for
//! it to boot (a web dyno must accept connections on `$PORT`), watches its memory, stops it
//! (SIGTERM, then SIGKILL), and tells the registry how each run ended.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::io::AsyncReadExt;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;
use wharf_containers::{
    Container, ContainerSpec, ContainerStdio, ExitReport, Limits, Mount, Network, Overlay, Stack,
    DYNO_USER,
};
use wharf_model::{DynoSize, StackName};

use crate::adopt::{write_record, DynoRecord};
use crate::logs::{LineSplitter, LogBuffer, LogLine, LogSource};
use crate::manager::Shared;
use crate::messages;
use crate::one_off::{self, OneOffIo};
use crate::registry::RunHandle;
use crate::state::DynoName;

/// Every dyno container's id starts with this, so leftovers are found by prefix.
pub const DYNO_PREFIX: &str = "dyno-";

/// How often a booting web dyno's `$PORT` is tried. A refused connection on loopback costs
/// microseconds; a short poll is what lets a woken app serve a few milliseconds after it binds.
const BOOT_POLL: Duration = Duration::from_millis(5);
/// How long one connection attempt to a booting dyno may take.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// The memory limit is this many times the size's quota: above the quota a dyno gets R14
/// warnings, at the limit the kernel kills it (R15).
pub const MEMORY_LIMIT_FACTOR: u64 = 2;
/// The shortest time between two R14 warnings of one dyno.
const R14_REPEAT: Duration = Duration::from_secs(20);
/// Size of a dyno's private `/tmp` (it counts against the dyno's memory).
const DYNO_TMP_BYTES: u64 = 512 * 1024 * 1024;
/// CPU weight per unit of a size's compute.
const CPU_SHARES_PER_COMPUTE: u64 = 1024;
/// How long after SIGKILL a container may take to go before it is deleted by force.
const KILL_GRACE: Duration = Duration::from_secs(10);
/// How long the log pumps may take to drain after the container is gone.
const DRAIN_GRACE: Duration = Duration::from_secs(2);
/// `PATH` in every dyno (the `wharf` binary is in `/wharf/bin`).
const DYNO_PATH: &str = "/app/bin:/usr/local/bin:/usr/bin:/bin:/wharf/bin";

/// A dyno container's id: `dyno-<app id>-<name>-<random>`.
pub fn container_id(app_id: Uuid, name: &DynoName, random: &str) -> String {
    format!("{DYNO_PREFIX}{}-{name}-{random}", app_id.simple())
}

/// What one dyno container runs, without the IO.
pub(crate) struct DynoLaunch<'a> {
    pub container_id: &'a str,
    pub name: &'a DynoName,
    pub command: &'a str,
    pub config: &'a [(String, String)],
    pub port: Option<u16>,
    pub network: Network,
    pub size: DynoSize,
    pub slug_dir: &'a Path,
    /// Where the overlay's upper and work dirs go: the dyno's capped disk, or its own dir
    /// in the data dir when there is no disk pool.
    pub layer_dir: &'a Path,
    pub wharf_dir: &'a Path,
}

/// The container spec of a dyno: the slug as an overlay `/app`, the `wharf` binary at
/// `/wharf/bin/wharf`, the size's limits, and Heroku's environment.
pub(crate) fn dyno_spec(launch: &DynoLaunch<'_>, stack: &Stack) -> ContainerSpec {
    let mut env: Vec<(String, String)> = vec![
        ("HOME".to_owned(), "/app".to_owned()),
        ("PATH".to_owned(), DYNO_PATH.to_owned()),
        ("LANG".to_owned(), "C.UTF-8".to_owned()),
    ];
    env.extend(launch.config.iter().cloned());
    // The platform's own variables win over config vars of the same name.
    env.push(("DYNO".to_owned(), launch.name.to_string()));
    if let Some(port) = launch.port {
        env.push(("PORT".to_owned(), port.to_string()));
    }
    let mut seen = std::collections::HashSet::new();
    let mut deduplicated: Vec<(String, String)> = env
        .into_iter()
        .rev()
        .filter(|(key, _)| seen.insert(key.clone()))
        .collect();
    deduplicated.reverse();

    let size = launch.size;
    ContainerSpec {
        id: launch.container_id.to_owned(),
        stack: stack.clone(),
        args: vec![
            "/bin/bash".to_owned(),
            "-c".to_owned(),
            wharf_build::builder::profile_command(launch.command),
        ],
        env: deduplicated,
        cwd: "/app".to_owned(),
        user: DYNO_USER,
        // Hostnames have no underscores; process types may.
        hostname: launch.name.to_string().replace('_', "-"),
        mounts: vec![Mount {
            source: launch.wharf_dir.to_path_buf(),
            destination: "/wharf".to_owned(),
            readonly: true,
        }],
        app_overlay: Some(Overlay {
            lower: launch.slug_dir.to_path_buf(),
            upper: launch.layer_dir.join("upper"),
            work: launch.layer_dir.join("work"),
        }),
        tmp_size_bytes: DYNO_TMP_BYTES,
        limits: Limits {
            memory_bytes: size.memory_mb() * MEMORY_LIMIT_FACTOR * 1024 * 1024,
            memory_quota_bytes: size.memory_mb() * 1024 * 1024,
            pids: i64::from(size.max_processes()),
            cpu_shares: u64::from(size.compute()) * CPU_SHARES_PER_COMPUTE,
        },
        network: launch.network.clone(),
        readonly_rootfs: true,
    }
}

/// How one run of a dyno's process ended.
#[derive(Debug)]
pub(crate) enum RunEnd {
    /// The process exited by itself, or was killed for a timeout or for memory.
    Exited,
    /// The manager stopped it (for a stop or a restart).
    Stopped,
    /// The container could not be started.
    LaunchFailed,
    /// The server is ending and leaves the container running for the next one to take up.
    Detached,
}

/// What a run needs to know about its dyno, copied out of the registry.
pub(crate) struct RunInput {
    pub app_id: Uuid,
    pub name: DynoName,
    pub slug_id: Uuid,
    /// The stack its slug was built on.
    pub stack: String,
    pub release: i64,
    pub command: String,
    pub config: Vec<(String, String)>,
    pub size: DynoSize,
    pub handle: RunHandle,
}

/// Supervises dyno `id` until it crashes or is removed: runs its process again for as long as
/// the registry asks for restarts.
pub(crate) async fn supervise(shared: Arc<Shared>, id: Uuid) {
    loop {
        let Some(input) = shared.begin_run(id) else {
            // Stopped before it ran (or the manager is closing): the registry still has to
            // hear it ended, or whoever waits for the stop would wait for ever.
            shared.end_run(id, RunEnd::Stopped);
            return;
        };
        let (end, _) = run_once(&shared, id, &input, None).await;
        if matches!(end, RunEnd::Detached) {
            shared.detached(id);
            return;
        }
        if !shared.end_run(id, end) {
            return;
        }
    }
}

/// Runs the dyno's process once; returns how it ended and its exit status, if it had one.
pub(crate) async fn run_once(
    shared: &Arc<Shared>,
    id: Uuid,
    input: &RunInput,
    one_off: Option<&OneOffIo>,
) -> (RunEnd, Option<i32>) {
    // A dyno taken up from the last server: its container runs already.
    let (run, container) = match shared.take_adopted(id) {
        Some(adopted) => (
            Run {
                container_id: adopted.container_id,
                port: adopted.port,
                address: adopted.route,
                place: Place {
                    attachment: adopted.attachment,
                    disk: adopted.disk,
                    disks: shared.disks.clone(),
                },
            },
            Some(adopted.container),
        ),
        None => match prepare_run(shared, id, input, one_off).await {
            Some(run) => (run, None),
            None => return (RunEnd::LaunchFailed, None),
        },
    };
    let dyno_dir = shared.config.data_dir.join("dynos").join(&run.container_id);
    let end = run_container(
        shared,
        id,
        input,
        &ContainerRun {
            container_id: &run.container_id,
            port: run.port,
            address: run.address,
            network: run.place.network(),
            dyno_dir: &dyno_dir,
            layer_dir: run.place.layer_dir().unwrap_or(&dyno_dir),
            one_off,
        },
        container,
    )
    .await;
    finish(shared, input, (run.place, &dyno_dir, run.port), end).await
}

/// One run's container id, port, route and place.
struct Run {
    container_id: String,
    port: Option<u16>,
    address: Option<SocketAddr>,
    place: Place,
}

/// Makes a new run's port, network place and disk, logs `Starting process`, and (with
/// holders) writes the record the next server takes the dyno up by. `None`, with R99 logged
/// and everything released, when it cannot.
async fn prepare_run(
    shared: &Arc<Shared>,
    id: Uuid,
    input: &RunInput,
    one_off: Option<&OneOffIo>,
) -> Option<Run> {
    let container_id = container_id(input.app_id, &input.name, &random_suffix());
    let failed = |what: &str, error: &dyn std::fmt::Display| {
        tracing::error!(dyno = %input.name, "{what}: {error:#}");
        shared.log(input.app_id, &input.name, messages::R99);
    };
    let port = match input.name.is_web() {
        true => match shared.allocate_port() {
            Some(port) => Some(port),
            None => {
                failed("allocate a port", &"no free port in the dyno port range");
                return None;
            }
        },
        false => None,
    };
    let place = match Place::make(shared, input.size).await {
        Ok(place) => place,
        Err(error) => {
            failed("prepare the dyno's network and disk", &format!("{error:#}"));
            if let Some(port) = port {
                shared.release_port(port);
            }
            return None;
        }
    };
    let address = port.map(|port| SocketAddr::from((place.host(), port)));
    shared.record_run(id, &container_id, address);
    shared.log(
        input.app_id,
        &input.name,
        messages::starting(&input.command),
    );
    if shared.runtime.holder().is_some() {
        // What the next server needs to take the dyno up, should this one end first.
        let record = DynoRecord {
            dyno_id: id,
            app_id: input.app_id,
            container_id: container_id.clone(),
            name: input.name.to_string(),
            release: input.release,
            slug_id: input.slug_id,
            stack: Some(input.stack.clone()),
            command: input.command.clone(),
            config: input.config.clone(),
            size: input.size.name().to_owned(),
            started_at: crate::logs::now_micros().unix_timestamp_nanos() / 1000,
            network_address: place
                .attachment
                .as_ref()
                .map(wharf_network::Attachment::address),
            route: address,
            port,
            disk: place.disk.as_ref().map(|(name, _)| name.clone()),
            one_off: one_off.is_some(),
        };
        let dyno_dir = shared.config.data_dir.join("dynos").join(&container_id);
        if let Err(error) = write_record(&dyno_dir, &record).await {
            failed("record the dyno", &format!("{error:#}"));
            finish(
                shared,
                input,
                (place, &dyno_dir, port),
                (RunEnd::LaunchFailed, None),
            )
            .await;
            return None;
        }
    }
    Some(Run {
        container_id,
        port,
        address,
        place,
    })
}

/// After a run: its network place, disk, directory and port are released, unless the
/// container was left running for the next server.
async fn finish(
    shared: &Arc<Shared>,
    input: &RunInput,
    (place, dyno_dir, port): (Place, &Path, Option<u16>),
    end: (RunEnd, Option<i32>),
) -> (RunEnd, Option<i32>) {
    if matches!(end.0, RunEnd::Detached) {
        place.leave();
        return end;
    }
    place.release().await;
    if let Err(error) = remove_dir(dyno_dir).await {
        tracing::warn!(dyno = %input.name, "remove the dyno's directory: {error:#}");
    }
    if let Some(port) = port {
        shared.release_port(port);
    }
    end
}

/// One run's own network namespace and capped disk (each when the manager has a network
/// and a disk pool), made side by side before the container starts and released after it is
/// gone.
struct Place {
    attachment: Option<wharf_network::Attachment>,
    /// The capped disk's name and path.
    disk: Option<(String, PathBuf)>,
    disks: Option<crate::disks::Disks>,
}

impl Place {
    async fn make(shared: &Shared, size: DynoSize) -> anyhow::Result<Place> {
        let attach = async {
            match &shared.config.network {
                Some(network) => network.attach().await.map(Some),
                None => Ok(None),
            }
        };
        let disk = async {
            match &shared.disks {
                Some(disks) => disks.take(size.disk_mb() << 20).await.map(Some),
                None => Ok(None),
            }
        };
        let (attachment, disk) = tokio::join!(attach, disk);
        let disks = shared.disks.clone();
        match (attachment, disk) {
            (Ok(attachment), Ok(disk)) => Ok(Place {
                attachment,
                disk,
                disks,
            }),
            (Err(error), Ok(disk)) => {
                let made = Place {
                    attachment: None,
                    disk,
                    disks,
                };
                made.release().await;
                Err(error)
            }
            // An attachment made is released when dropped.
            (_, Err(error)) => Err(error),
        }
    }

    fn network(&self) -> Network {
        wharf_build::builder::container_network(self.attachment.as_ref())
    }

    /// Where the dyno listens: its own address, or loopback without a network.
    fn host(&self) -> Ipv4Addr {
        self.attachment
            .as_ref()
            .map_or(Ipv4Addr::LOCALHOST, wharf_network::Attachment::address)
    }

    fn layer_dir(&self) -> Option<&Path> {
        self.disk.as_ref().map(|(_, path)| path.as_path())
    }

    /// Leaves the network place and the disk to the container, which runs on.
    fn leave(self) {
        if let Some(attachment) = self.attachment {
            attachment.leave();
        }
    }

    async fn release(self) {
        drop(self.attachment);
        if let (Some((name, _)), Some(disks)) = (&self.disk, &self.disks) {
            if let Err(error) = disks.remove(name).await {
                tracing::warn!(disk = %name, "remove a dyno's disk: {error:#}");
            }
        }
    }
}

/// Where and how one run's container runs.
struct ContainerRun<'a> {
    container_id: &'a str,
    port: Option<u16>,
    /// Where the router reaches a web dyno.
    address: Option<SocketAddr>,
    network: Network,
    dyno_dir: &'a Path,
    layer_dir: &'a Path,
    one_off: Option<&'a OneOffIo>,
}

async fn run_container(
    shared: &Arc<Shared>,
    id: Uuid,
    input: &RunInput,
    run: &ContainerRun<'_>,
    adopted: Option<Container>,
) -> (RunEnd, Option<i32>) {
    let container_id = run.container_id;
    let log = |message: &str| shared.log(input.app_id, &input.name, message);
    let booted = adopted.is_some();
    let launched = match adopted {
        Some(container) => Ok(Some(follow(
            shared,
            input,
            run,
            container,
            None,
            Instant::now(),
        ))),
        None => launch(shared, input, run).await,
    };
    let container = match launched {
        Ok(Some(container)) => container,
        Ok(None) => return (RunEnd::Stopped, None),
        Err(error) => {
            tracing::error!(dyno = %input.name, container = container_id, "launch: {error:#}");
            log(messages::R99);
            return (RunEnd::LaunchFailed, None);
        }
    };
    let Launched {
        wait,
        pumps,
        input: stdin,
        started,
    } = container;
    let mut wait = wait;
    let stop = input.handle.stop.clone();
    let activity = run.one_off.map(|io| &io.activity);
    let end = supervise_container(
        shared,
        id,
        input,
        (container_id, run.address.filter(|_| !booted)),
        started,
        activity,
        &mut wait,
    )
    .await;
    let report = match end {
        Supervised::Exited(report) => report,
        Supervised::Detach => {
            // Letting go of the container ends the connection to its holder between two
            // frames; what was read reaches the logs, what follows waits in the holder for
            // the next server.
            wait.abort();
            drain(pumps).await;
            if let Some(stdin) = stdin {
                stdin.abort();
            }
            return (RunEnd::Detached, None);
        }
        Supervised::Stop => {
            if let Some(address) = run.address {
                // Out of the routes already: let the requests in flight finish first.
                shared
                    .traffic
                    .drained(address, shared.config.stop_timeout)
                    .await;
            }
            stop_container(shared, input, container_id, &mut wait).await
        }
        Supervised::Idle => {
            log(&messages::idle_timeout(one_off::IDLE_TIMEOUT));
            stop_container(shared, input, container_id, &mut wait).await
        }
        Supervised::BootTimeout => {
            log(&messages::boot_timeout(shared.config.boot_timeout));
            log(messages::STOPPING_KILL);
            kill(shared, container_id, "KILL").await;
            await_exit(shared, container_id, &mut wait).await
        }
    };
    if let Some(stdin) = stdin {
        // Nothing reads the dyno's stdin any more; a writer blocked on a full pipe would wait
        // for ever.
        stdin.abort();
    }
    drain(pumps).await;
    let code = report.as_ref().map(|report| report.status.code());
    match report {
        Some(report) => {
            if report.oom_killed {
                log(messages::R15);
            }
            log(&messages::exited(report.status.code()));
        }
        None => log(messages::R99),
    }
    // A process that exits by itself while being stopped was still stopped.
    let end = if stop.is_cancelled() {
        RunEnd::Stopped
    } else {
        RunEnd::Exited
    };
    (end, code)
}

type WaitHandle = JoinHandle<anyhow::Result<ExitReport>>;

struct Launched {
    wait: WaitHandle,
    pumps: Vec<JoinHandle<()>>,
    /// An attached one-off's stdin writer.
    input: Option<JoinHandle<()>>,
    started: Instant,
}

/// The stack a dyno runs on: the one its slug was built on, so that a release keeps its stack
/// until the next deploy and a rollback runs the old slug on its own. A slug whose stack this
/// server does not offer (made through the API before stacks could be chosen) runs on the
/// default stack.
async fn slug_stack(shared: &Arc<Shared>, input: &RunInput) -> anyhow::Result<Stack> {
    let name = StackName::parse(&input.stack).unwrap_or_else(|_| {
        tracing::warn!(slug = %input.slug_id, stack = input.stack, "a slug of an unknown stack runs on the default stack");
        StackName::DEFAULT
    });
    shared
        .stacks
        .get(name)
        .await
        .with_context(|| format!("prepare the {name} stack"))
}

/// Extracts the slug, writes the bundle and starts the container; `None` when the dyno was
/// stopped meanwhile.
async fn launch(
    shared: &Arc<Shared>,
    input: &RunInput,
    run: &ContainerRun<'_>,
) -> anyhow::Result<Option<Launched>> {
    let (container_id, port, dyno_dir) = (run.container_id, run.port, run.dyno_dir);
    let slug_dir = shared
        .slugs
        .extract(shared.source.as_ref(), input.app_id, input.slug_id)
        .await?;
    let wharf_dir = shared.wharf_dir().await?;
    let stack = slug_stack(shared, input).await?;
    let mut spec = dyno_spec(
        &DynoLaunch {
            container_id,
            name: &input.name,
            command: &input.command,
            config: &input.config,
            port,
            network: run.network.clone(),
            size: input.size,
            slug_dir: &slug_dir,
            layer_dir: run.layer_dir,
            wharf_dir: &wharf_dir,
        },
        &stack,
    );
    let stdin = match run.one_off {
        Some(io) => one_off::prepare(io, &mut spec, &input.command, &input.config, dyno_dir)
            .await
            .context("prepare the one-off dyno's terminal")?,
        None => None,
    };
    if input.handle.stop.is_cancelled() {
        return Ok(None);
    }
    let started = Instant::now();
    let container = shared
        .runtime
        .run(&spec, &dyno_dir.join("bundle"), ContainerStdio::Piped)
        .await
        .context("start the container")?;
    Ok(Some(follow(shared, input, run, container, stdin, started)))
}

/// Follows a started container: its output into the logs (or an attached one-off's
/// terminal), an attached one-off's input into it, and its exit.
fn follow(
    shared: &Arc<Shared>,
    input: &RunInput,
    run: &ContainerRun<'_>,
    mut container: Container,
    stdin: Option<PathBuf>,
    started: Instant,
) -> Launched {
    report_lost_output(shared, input, container.lost_output());
    let process = input.name.to_string();
    let activity = run.one_off.map(|io| io.activity.clone());
    let pipes: [Option<Box<dyn tokio::io::AsyncRead + Unpin + Send>>; 2] = [
        container.stdout().map(|out| Box::new(out) as _),
        container.stderr().map(|err| Box::new(err) as _),
    ];
    let pumps = pipes
        .into_iter()
        .flatten()
        .map(|pipe| match run.one_off.and_then(|io| io.output.clone()) {
            Some(output) => one_off::pump_attached(pipe, output, activity.clone()),
            None => pump(
                pipe,
                shared.logs.clone(),
                (input.app_id, &process),
                activity.clone(),
            ),
        })
        .collect();
    let input_task = match (stdin, run.one_off) {
        (Some(stdin), Some(io)) => Some(one_off::feed_stdin(stdin, io)),
        _ => None,
    };
    let wait = tokio::spawn(container.wait());
    Launched {
        wait,
        pumps,
        input: input_task,
        started,
    }
}

/// Logs what the container's holder dropped of its output while no server read it (its
/// buffer is bounded), as Heroku's L10 tells of dropped log lines.
fn report_lost_output(
    shared: &Arc<Shared>,
    input: &RunInput,
    mut lost: tokio::sync::watch::Receiver<u64>,
) {
    let (shared, app_id, name) = (shared.clone(), input.app_id, input.name.clone());
    tokio::spawn(async move {
        let mut reported = 0;
        while lost.changed().await.is_ok() {
            let total = *lost.borrow_and_update();
            if total > reported {
                shared.log(app_id, &name, messages::output_lost(total - reported));
                reported = total;
            }
        }
    });
}

enum Supervised {
    Exited(Option<ExitReport>),
    /// The server is ending and leaves the dyno running.
    Detach,
    Stop,
    BootTimeout,
    /// A one-off had no input or output for [`one_off::IDLE_TIMEOUT`].
    Idle,
}

/// Waits for the dyno to boot, then for it to exit or be stopped, sampling its memory.
async fn supervise_container(
    shared: &Arc<Shared>,
    id: Uuid,
    input: &RunInput,
    (container_id, address): (&str, Option<SocketAddr>),
    started: Instant,
    activity: Option<&Arc<tokio::sync::watch::Sender<Instant>>>,
    wait: &mut WaitHandle,
) -> Supervised {
    let stop = &input.handle.stop;
    let detach = &shared.detaching;
    let idle = one_off::idle(activity);
    tokio::pin!(idle);
    if let Some(address) = address {
        let deadline = started + shared.config.boot_timeout;
        loop {
            tokio::select! {
                report = &mut *wait => return Supervised::Exited(exit_report(report, container_id)),
                () = stop.cancelled() => return Supervised::Stop,
                () = detach.cancelled(), if activity.is_none() => return Supervised::Detach,
                () = tokio::time::sleep(BOOT_POLL) => {}
            }
            if accepts(address).await {
                break;
            }
            if Instant::now() >= deadline {
                return Supervised::BootTimeout;
            }
        }
    }
    shared.dyno_up(id);

    let mut sampling = tokio::time::interval(shared.config.stats_interval);
    sampling.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_warning: Option<Instant> = None;
    let quota = input.size.memory_mb() * 1024 * 1024;
    let mut metrics = crate::metrics::Sampler::new(shared);
    loop {
        tokio::select! {
            report = &mut *wait => return Supervised::Exited(exit_report(report, container_id)),
            () = stop.cancelled() => return Supervised::Stop,
            () = detach.cancelled(), if activity.is_none() => return Supervised::Detach,
            () = &mut idle => return Supervised::Idle,
            () = metrics.tick() => metrics.sample(shared, id, input, container_id).await,
            _ = sampling.tick() => {
                let Ok(stats) = shared.runtime.stats(container_id).await else { continue };
                let used = stats.memory_rss_bytes + stats.memory_swap_bytes;
                let due = last_warning.is_none_or(|at| at.elapsed() >= R14_REPEAT);
                if used > quota && due {
                    last_warning = Some(Instant::now());
                    shared.log(input.app_id, &input.name, messages::memory_usage(used, quota));
                    shared.log(input.app_id, &input.name, messages::R14);
                }
            }
        }
    }
}

/// SIGTERM to every process, SIGKILL to what is left after the stop timeout (R12).
async fn stop_container(
    shared: &Arc<Shared>,
    input: &RunInput,
    container_id: &str,
    wait: &mut WaitHandle,
) -> Option<ExitReport> {
    let log = |message: &str| shared.log(input.app_id, &input.name, message);
    log(messages::STOPPING);
    kill(shared, container_id, "TERM").await;
    match tokio::time::timeout(shared.config.stop_timeout, &mut *wait).await {
        Ok(report) => exit_report(report, container_id),
        Err(_) => {
            log(&messages::exit_timeout(shared.config.stop_timeout));
            log(messages::STOPPING_REMAINING);
            kill(shared, container_id, "KILL").await;
            await_exit(shared, container_id, wait).await
        }
    }
}

/// Waits for a killed container; deletes it by force if it lingers.
async fn await_exit(
    shared: &Arc<Shared>,
    container_id: &str,
    wait: &mut WaitHandle,
) -> Option<ExitReport> {
    match tokio::time::timeout(KILL_GRACE, &mut *wait).await {
        Ok(report) => exit_report(report, container_id),
        Err(_) => {
            tracing::warn!(
                container = container_id,
                "still there after SIGKILL: deleting it"
            );
            if let Err(error) = shared.runtime.delete(container_id).await {
                tracing::error!(container = container_id, "delete: {error:#}");
            }
            wait.await.ok().and_then(Result::ok)
        }
    }
}

async fn kill(shared: &Arc<Shared>, container_id: &str, signal: &str) {
    if let Err(error) = shared.runtime.kill_all(container_id, signal).await {
        // It may have exited meanwhile; the wait tells.
        tracing::debug!(container = container_id, signal, "kill: {error:#}");
    }
}

fn exit_report(
    joined: Result<anyhow::Result<ExitReport>, tokio::task::JoinError>,
    container_id: &str,
) -> Option<ExitReport> {
    match joined {
        Ok(Ok(report)) => Some(report),
        Ok(Err(error)) => {
            tracing::error!(container = container_id, "container failed: {error:#}");
            None
        }
        Err(error) => {
            tracing::error!(container = container_id, "wait task failed: {error}");
            None
        }
    }
}

/// Whether the dyno accepts connections at `address`.
async fn accepts(address: SocketAddr) -> bool {
    let connect = tokio::net::TcpStream::connect(address);
    matches!(
        tokio::time::timeout(CONNECT_TIMEOUT, connect).await,
        Ok(Ok(_))
    )
}

/// Copies a pipe into the log buffer line by line, reading continuously so the dyno never
/// blocks on a full pipe.
fn pump(
    mut pipe: impl tokio::io::AsyncRead + Unpin + Send + 'static,
    logs: LogBuffer,
    (app_id, process): (Uuid, &str),
    activity: Option<Arc<tokio::sync::watch::Sender<Instant>>>,
) -> JoinHandle<()> {
    let process = process.to_owned();
    tokio::spawn(async move {
        let mut buffer = vec![0u8; 64 * 1024];
        let mut splitter = LineSplitter::default();
        loop {
            match pipe.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if let Some(activity) = &activity {
                        activity.send_replace(Instant::now());
                    }
                    // One lock for all the lines of a read: a busy dyno's output stays cheap.
                    let lines = splitter.push(&buffer[..n]);
                    if !lines.is_empty() {
                        let at = crate::logs::now_micros();
                        logs.extend(
                            app_id,
                            lines.into_iter().map(|message| LogLine {
                                at,
                                source: LogSource::App,
                                process: process.clone(),
                                message,
                            }),
                        );
                    }
                }
            }
        }
        if let Some(line) = splitter.finish() {
            logs.append(app_id, LogLine::now(LogSource::App, &process, line));
        }
    })
}

/// Lets the pumps read what is left; a process that kept a pipe open past its container's end
/// (it cannot: the pid namespace is gone) would be cut off after a grace period.
async fn drain(pumps: Vec<JoinHandle<()>>) {
    for pump in pumps {
        let abort = pump.abort_handle();
        if tokio::time::timeout(DRAIN_GRACE, pump).await.is_err() {
            abort.abort();
        }
    }
}

fn random_suffix() -> String {
    Uuid::new_v4().simple().to_string()[..8].to_owned()
}

async fn remove_dir(dir: &Path) -> anyhow::Result<()> {
    let dir: PathBuf = dir.to_path_buf();
    // The dyno wrote into its upper dir: never follow what it left there.
    tokio::task::spawn_blocking(move || {
        wharf_tenant_fs::remove_tree(&dir).with_context(|| format!("remove {}", dir.display()))
    })
    .await
    .context("remove directory: task failed")?
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn container_ids_are_findable_and_valid() {
        let app = Uuid::from_u128(0xabc);
        let id = container_id(app, &DynoName::new("web", 3), "1a2b3c4d");
        assert_eq!(id, "dyno-00000000000000000000000000000abc-web.3-1a2b3c4d");
        wharf_containers::validate_id(&id).unwrap();
        let longest = container_id(app, &DynoName::new(&"w".repeat(30), 100), "1a2b3c4d");
        wharf_containers::validate_id(&longest).unwrap();
    }

    #[test]
    fn spec_has_herokus_environment_and_the_sizes_limits() {
        let dir = tempfile::tempdir().unwrap();
        let stack = Stack::prepare(&dir.path().join("stack")).unwrap();
        let name = DynoName::new("web_x", 2);
        let config = vec![
            ("DATABASE_URL".to_owned(), "postgres://db".to_owned()),
            ("PORT".to_owned(), "1".to_owned()),
            ("PATH".to_owned(), "/custom".to_owned()),
        ];
        let spec = dyno_spec(
            &DynoLaunch {
                container_id: "dyno-x-web_x.2-abc",
                name: &name,
                command: "python3 -m http.server $PORT",
                config: &config,
                port: Some(20001),
                network: Network::Empty,
                size: DynoSize::Standard2X,
                slug_dir: Path::new("/data/slugs/extracted/s"),
                layer_dir: Path::new("/data/disk/mnt/dyno-x-web_x.2-abc"),
                wharf_dir: Path::new("/data/wharf"),
            },
            &stack,
        );
        spec.validate().unwrap();
        let env: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(
            env,
            [
                "HOME=/app",
                "LANG=C.UTF-8",
                "DATABASE_URL=postgres://db",
                "PATH=/custom",
                "DYNO=web_x.2",
                "PORT=20001"
            ]
        );
        assert_eq!(spec.args[..2], ["/bin/bash", "-c"]);
        assert!(spec.args[2].ends_with("; python3 -m http.server $PORT"));
        assert!(spec.args[2].contains("/app/.profile.d/*.sh"));
        assert_eq!(spec.hostname, "web-x.2");
        assert_eq!(spec.user, DYNO_USER);
        assert_eq!(spec.cwd, "/app");
        assert_eq!(
            spec.limits,
            Limits {
                memory_bytes: 2048 << 20,
                memory_quota_bytes: 1024 << 20,
                pids: 512,
                cpu_shares: 2048
            }
        );
        let overlay = spec.app_overlay.unwrap();
        assert_eq!(overlay.lower, Path::new("/data/slugs/extracted/s"));
        assert_eq!(
            overlay.upper,
            Path::new("/data/disk/mnt/dyno-x-web_x.2-abc/upper")
        );
        assert_eq!(
            spec.mounts,
            [Mount {
                source: PathBuf::from("/data/wharf"),
                destination: "/wharf".to_owned(),
                readonly: true
            }]
        );
    }

    #[test]
    fn default_path_finds_the_wharf_binary() {
        assert!(DYNO_PATH.split(':').any(|dir| dir == "/wharf/bin"));
        assert!(DYNO_PATH.starts_with("/app/bin:"));
    }
}
