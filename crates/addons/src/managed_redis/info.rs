//! What `redis:info` shows, from the server's `INFO` reply, and what the server's log says
//! about how its last run ended: pure functions over text.

use std::collections::BTreeMap;

use crate::Plan;

use super::config::State;

/// How the server is doing, as far as Wharf sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Status {
    /// It answers.
    Available,
    /// It is supervised but does not answer (starting, loading its data, or waiting to be
    /// started again after it exited).
    Restarting,
    /// Wharf does not run it (not resumed yet, or Wharf is stopping).
    Stopped,
}

impl Status {
    fn text(self) -> &'static str {
        match self {
            Status::Available => "available",
            Status::Restarting => "restarting",
            Status::Stopped => "stopped",
        }
    }
}

/// `INFO`'s `field:value` lines.
pub(super) fn parse(info: &str) -> BTreeMap<String, String> {
    info.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once(':'))
        .map(|(field, value)| (field.to_owned(), value.trim().to_owned()))
        .collect()
}

/// Whether the server cannot write its append-only file (a full disk): it then refuses
/// writes with `MISCONF`.
pub(super) fn write_failing(info: &BTreeMap<String, String>) -> bool {
    info.get("aof_last_write_status").map(String::as_str) == Some("err")
}

/// The rows of `redis:info`; `info` is empty when the server did not answer.
pub(super) fn rows(
    plan: &Plan,
    state: &State,
    status: Status,
    info: &BTreeMap<String, String>,
) -> Vec<(String, String)> {
    let field = |name: &str| info.get(name).cloned();
    let mut rows = vec![
        ("Plan".to_owned(), plan.name.clone()),
        ("Status".to_owned(), status.text().to_owned()),
    ];
    let mut push = |label: &str, value: Option<String>| {
        if let Some(value) = value {
            rows.push((label.to_owned(), value));
        }
    };
    push("Version", field("redis_version"));
    let memory = field("used_memory")
        .and_then(|used| used.parse::<u64>().ok())
        .zip(plan.limits.memory_mb)
        .map(|(used, limit)| format!("{} used of {limit} MB", megabytes(used)));
    push("Memory", memory);
    push(
        "Maxmemory policy",
        Some(field("maxmemory_policy").unwrap_or_else(|| state.policy.to_owned())),
    );
    // Wharf's own connection, which asked, is not the app's.
    let clients = field("connected_clients")
        .and_then(|clients| clients.parse::<u64>().ok())
        .zip(plan.limits.connections)
        .map(|(clients, limit)| format!("{} of {limit}", clients.saturating_sub(1)));
    push("Clients", clients);
    push("Keys", keys(info));
    push(
        "Uptime",
        field("uptime_in_seconds")
            .and_then(|seconds| seconds.parse().ok())
            .map(uptime),
    );
    if !info.is_empty() {
        let persistence = match (field("aof_enabled").as_deref(), write_failing(info)) {
            (Some("1"), false) => "append-only file (fsync every second), writing",
            (Some("1"), true) => {
                "append-only file (fsync every second), cannot write it (disk full?): \
                 writes are refused (MISCONF)"
            }
            _ => "append-only file off",
        };
        push("Persistence", Some(persistence.to_owned()));
    }
    push("Port", Some(state.port.to_string()));
    rows
}

/// Keys in every database, from `INFO`'s `db0:keys=1,expires=0,avg_ttl=0` lines.
fn keys(info: &BTreeMap<String, String>) -> Option<String> {
    if info.is_empty() {
        return None;
    }
    let total: u64 = info
        .iter()
        .filter(|(field, _)| field.starts_with("db"))
        .filter_map(|(_, value)| {
            value
                .split(',')
                .next()?
                .strip_prefix("keys=")?
                .parse::<u64>()
                .ok()
        })
        .sum();
    Some(total.to_string())
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
}

fn uptime(seconds: u64) -> String {
    let (days, hours) = (seconds / 86_400, seconds / 3_600 % 24);
    let (minutes, seconds) = (seconds / 60 % 60, seconds % 60);
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{seconds} s"),
        (0, 0, _) => format!("{minutes} min {seconds} s"),
        (0, _, _) => format!("{hours} h {minutes} min"),
        _ => format!("{days} d {hours} h"),
    }
}

/// What Redis logs once it serves, and as the last thing of a clean shutdown.
const READY_LINE: &str = "Ready to accept connections";
const EXIT_LINE: &str = "ready to exit, bye bye";

/// Whether the log's last run served and then ended without a clean shutdown (killed, or
/// the machine stopped): its last second of writes may be lost.
pub(super) fn ended_uncleanly(log: &str) -> bool {
    match (log.rfind(READY_LINE), log.rfind(EXIT_LINE)) {
        (Some(ready), Some(exit)) => ready > exit,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "# Server\r\nredis_version:7.0.15\r\nuptime_in_seconds:3725\r\n\
        # Clients\r\nconnected_clients:3\r\n# Memory\r\nused_memory:1572864\r\n\
        maxmemory_policy:allkeys-lru\r\n# Persistence\r\naof_enabled:1\r\n\
        aof_last_write_status:ok\r\n# Keyspace\r\ndb0:keys=10,expires=1,avg_ttl=0\r\n\
        db3:keys=5,expires=0,avg_ttl=0\r\n";

    fn state() -> State {
        State {
            port: 16400,
            generation: 1,
            password_sha256: super::super::config::password_hash("x"),
            policy: "noeviction",
        }
    }

    fn mini() -> Plan {
        super::super::config::plans().remove(0)
    }

    fn as_text(rows: &[(String, String)]) -> String {
        rows.iter()
            .map(|(label, value)| format!("{label}: {value}\n"))
            .collect()
    }

    #[test]
    fn rows_of_a_server_that_answers() {
        let rows = rows(&mini(), &state(), Status::Available, &parse(INFO));
        assert_eq!(
            as_text(&rows),
            "Plan: mini\nStatus: available\nVersion: 7.0.15\nMemory: 1.5 MB used of 25 MB\n\
             Maxmemory policy: allkeys-lru\nClients: 2 of 20\nKeys: 15\nUptime: 1 h 2 min\n\
             Persistence: append-only file (fsync every second), writing\nPort: 16400\n"
        );
    }

    #[test]
    fn rows_of_a_server_that_does_not_answer_or_cannot_write() {
        let rows_down = rows(&mini(), &state(), Status::Restarting, &BTreeMap::new());
        assert_eq!(
            as_text(&rows_down),
            "Plan: mini\nStatus: restarting\nMaxmemory policy: noeviction\nPort: 16400\n"
        );
        let failing = parse(&INFO.replace("aof_last_write_status:ok", "aof_last_write_status:err"));
        assert!(write_failing(&failing));
        let text = as_text(&rows(&mini(), &state(), Status::Available, &failing));
        assert!(text.contains("writes are refused (MISCONF)"), "{text}");
    }

    #[test]
    fn the_log_tells_a_clean_end_from_a_kill() {
        let ready = "1:M * Ready to accept connections\n";
        let exit = "1:M # Redis is now ready to exit, bye bye...\n";
        assert!(!ended_uncleanly(""));
        assert!(ended_uncleanly(ready));
        assert!(!ended_uncleanly(&format!("{ready}{exit}")));
        assert!(ended_uncleanly(&format!("{ready}{exit}{ready}")));
        assert!(!ended_uncleanly(&format!("{ready}{ready}{exit}")));
    }
}
