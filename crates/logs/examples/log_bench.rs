//! Log throughput benchmark (`scripts/bench-logs`): a child process writes lines as fast as it
//! can into a pipe that Wharf's pump reads (the dyno runner's loop: read, split, one
//! `LogBuffer::extend` per read) while a live tail reads them back; then a CPU-bound app that
//! logs heavily, timed writing to /dev/null and to the pump. Prints a Markdown table.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use uuid::Uuid;
use wharf_logs::{LineSplitter, LogBuffer, LogLine, LogSource};

/// Lines the writer sends in the throughput run.
const LINES: u64 = 5_000_000;
/// Lines the CPU-bound app writes.
const APP_LINES: u64 = 300_000;

/// CPU time (user + system) of this process so far.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("read /proc/self/stat");
    let after_name = &stat[stat
        .rfind(')')
        .expect("stat has the command in parentheses")
        + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    // utime and stime are fields 14 and 15 of the whole line, in clock ticks (100 Hz on Linux).
    let ticks: u64 =
        fields[11].parse::<u64>().unwrap_or(0) + fields[12].parse::<u64>().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// A dyno's stdout pipe size, as the container runtime driver sets it.
const DYNO_PIPE_BYTES: usize = 1024 * 1024;

/// Reads a pipe into the buffer the way the dyno runner does; returns bytes read.
async fn pump(mut pipe: impl tokio::io::AsyncRead + Unpin, logs: LogBuffer, app: Uuid) -> u64 {
    let mut buffer = vec![0u8; 64 * 1024];
    let mut splitter = LineSplitter::default();
    let mut bytes = 0;
    loop {
        match pipe.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                bytes += n as u64;
                let lines = splitter.push(&buffer[..n]);
                if !lines.is_empty() {
                    let at = wharf_logs::now_micros();
                    logs.extend(
                        app,
                        lines.into_iter().map(|message| LogLine {
                            at,
                            source: LogSource::App,
                            process: "web.1".to_owned(),
                            message,
                        }),
                    );
                }
            }
        }
    }
    bytes
}

async fn run_writer(command: &str, logs: Option<&LogBuffer>, app: Uuid) -> (Duration, u64) {
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdout(if logs.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .spawn()
        .expect("spawn the writer");
    let started = Instant::now();
    let bytes = match (logs, child.stdout.take()) {
        (Some(logs), Some(stdout)) => {
            // As a dyno's output pipe (`crates/containers`, OUTPUT_PIPE_BYTES).
            let _ = rustix::pipe::fcntl_setpipe_size(
                std::os::fd::AsFd::as_fd(&stdout),
                DYNO_PIPE_BYTES,
            );
            pump(stdout, logs.clone(), app).await
        }
        _ => 0,
    };
    child.wait().await.expect("wait for the writer");
    (started.elapsed(), bytes)
}

#[tokio::main]
async fn main() {
    let logs = LogBuffer::new(1500);
    let app = Uuid::new_v4();

    // Throughput: `yes` of a 100-byte line, into the buffer and out to a tail.
    let mut tail = logs.subscribe();
    let tail_task = tokio::spawn(async move {
        let (mut lines, mut bytes, mut missed) = (0u64, 0u64, 0u64);
        loop {
            match tail.recv().await {
                Ok((_, entry)) => {
                    lines += 1;
                    bytes += entry.message.len() as u64 + 1;
                    if lines >= LINES {
                        break;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    missed += n;
                    lines += n;
                    if lines >= LINES {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        (lines, bytes, missed)
    });
    let line = "x".repeat(99);
    let cpu_before = cpu_time();
    let (elapsed, bytes) =
        run_writer(&format!("yes {line} | head -n {LINES}"), Some(&logs), app).await;
    let (_, tail_bytes, tail_missed) = tail_task.await.expect("tail task");
    let cpu = cpu_time() - cpu_before;
    let seconds = elapsed.as_secs_f64();
    let mb = bytes as f64 / 1e6;

    // Slowdown: a CPU-bound app that logs a line per unit of work.
    let app_command = format!(
        "python3 -c 'import hashlib\nfor i in range({APP_LINES}): print(hashlib.sha256(str(i).encode()).hexdigest() * 2)'"
    );
    let piped_to_cat = format!("{app_command} | cat > /dev/null");
    let (mut to_null, mut to_cat, mut to_pump) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..5 {
        to_null.push(run_writer(&app_command, None, app).await.0.as_secs_f64());
        to_cat.push(run_writer(&piped_to_cat, None, app).await.0.as_secs_f64());
        to_pump.push(
            run_writer(&app_command, Some(&logs), app)
                .await
                .0
                .as_secs_f64(),
        );
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (null_s, cat_s, pump_s) = (median(to_null), median(to_cat), median(to_pump));

    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| lines from one writer into the buffer | {LINES} lines of 100 bytes in {seconds:.2} s |"
    );
    println!("| lines/s | {:.0} |", LINES as f64 / seconds);
    println!("| MB/s (pipe to buffer) | {:.1} |", mb / seconds);
    println!(
        "| tail read | {:.1} MB, {tail_missed} lines skipped as lagged (caught up from the ring in the API) |",
        tail_bytes as f64 / 1e6
    );
    println!(
        "| CPU of pump + tail | {:.2} s, {:.2} s per million lines, {:.0} MB/s per CPU-second |",
        cpu.as_secs_f64(),
        cpu.as_secs_f64() / (LINES as f64 / 1e6),
        mb / cpu.as_secs_f64().max(1e-9)
    );
    println!(
        "| log-heavy app ({APP_LINES} lines, median of 5) | /dev/null {null_s:.2} s; a pipe to cat {cat_s:.2} s ({:+.1}%); Wharf's pump {pump_s:.2} s ({:+.1}%) |",
        (cat_s / null_s - 1.0) * 100.0,
        (pump_s / null_s - 1.0) * 100.0
    );
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "| machine | {} CPUs, load average {} |",
        std::thread::available_parallelism().map_or(0, usize::from),
        load.split(' ').take(3).collect::<Vec<_>>().join(" ")
    );
}
