//! `metrics`: the app's metrics history (a Wharf extension): requests through the router per
//! step, each dyno's memory and load, and the platform's events, over 1h, 24h or 7d.

use anyhow::Result;
use clap::Args;
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::OffsetDateTime;
use wharf_api_types::{DynoMetrics, DynoMetricsSeries, MetricsEvents, RouterMetrics};

use crate::args::AppArgs;
use crate::client::decode;
use crate::settings::Settings;
use crate::ui::Ui;

#[derive(Debug, Clone, Args)]
pub struct MetricsArgs {
    #[command(flatten)]
    pub app: AppArgs,
    /// How far back to look: 1h and 24h have a row a minute, 7d one per 10 minutes
    #[arg(long, default_value = "1h", value_parser = ["1h", "24h", "7d"])]
    pub range: String,
    /// Print the API's three answers as one JSON object: {"router", "dynos", "events"}
    #[arg(long)]
    pub json: bool,
}

pub async fn show(args: MetricsArgs, settings: &Settings, ui: &mut Ui) -> Result<()> {
    let name = settings.app(&args.app)?;
    let client = settings.client()?;
    let query = [("range", args.range.as_str())];
    let [router, dynos, events] =
        ["router", "dynos", "events"].map(|what| ["apps", name.as_str(), "metrics", what]);
    let (router, dynos, events) = tokio::try_join!(
        client.get_query(&router, &query),
        client.get_query(&dynos, &query),
        client.get_query(&events, &query),
    )?;
    if args.json {
        return ui.json(&json!({"router": router, "dynos": dynos, "events": events}));
    }
    let router: RouterMetrics = decode(router, "the router metrics")?;
    let dynos: DynoMetrics = decode(dynos, "the dyno metrics")?;
    let events: MetricsEvents = decode(events, "the events")?;
    let app = ui.app(&name);

    ui.line(ui.header(&format!(
        "{app} Router, last {} ({} s steps)",
        router.range, router.step_seconds
    )))?;
    if router.points.is_empty() {
        ui.line("No requests.")?;
    } else {
        let mut rows = vec![header_row(&[
            "time", "requests", "2xx", "3xx", "4xx", "5xx", "p50", "p95", "p99", "max",
        ])];
        for point in &router.points {
            rows.push(vec![
                minute(&point.at),
                point.requests.to_string(),
                point.status_2xx.to_string(),
                point.status_3xx.to_string(),
                point.status_4xx.to_string(),
                point.status_5xx.to_string(),
                millis(point.p50_ms),
                millis(point.p95_ms),
                millis(point.p99_ms),
                millis(point.max_ms),
            ]);
        }
        let totals = &router.totals;
        let sum = |field: fn(&wharf_api_types::RouterMetricsPoint) -> u64| {
            router.points.iter().map(field).sum::<u64>().to_string()
        };
        rows.push(vec![
            "total".to_owned(),
            totals.requests.to_string(),
            sum(|p| p.status_2xx),
            sum(|p| p.status_3xx),
            sum(|p| p.status_4xx),
            sum(|p| p.status_5xx),
            millis(totals.p50_ms),
            millis(totals.p95_ms),
            millis(totals.p99_ms),
            millis(totals.max_ms),
        ]);
        ui.table(&rows)?;
    }
    if !router.errors.is_empty() {
        let errors: Vec<String> = router
            .errors
            .iter()
            .map(|(code, count)| format!("{code} ×{count}"))
            .collect();
        ui.line(format!("Router errors: {}", errors.join(", ")))?;
    }

    ui.line("")?;
    ui.line(ui.header(&format!("{app} Dynos, last {}", dynos.range)))?;
    if dynos.dynos.is_empty() {
        ui.line("No samples.")?;
    } else {
        let mut rows = vec![header_row(&[
            "dyno",
            "type",
            "rss",
            "max rss",
            "max swap",
            "max cache",
            "quota",
            "load",
            "max load",
        ])];
        rows.extend(dynos.dynos.iter().map(dyno_row));
        ui.table(&rows)?;
    }

    ui.line("")?;
    ui.line(ui.header(&format!("{app} Events, last {}", events.range)))?;
    if events.events.is_empty() {
        return ui.line("No events.");
    }
    let rows: Vec<Vec<String>> = events
        .events
        .iter()
        .map(|event| {
            vec![
                second(&event.at),
                event.kind.clone(),
                event.dyno.clone().unwrap_or_default(),
                event.message.clone(),
            ]
        })
        .collect();
    ui.table(&rows)
}

fn header_row(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| name.to_string()).collect()
}

/// One row per dyno: its latest memory and load, and the most over the range.
fn dyno_row(series: &DynoMetricsSeries) -> Vec<String> {
    let most = |field: fn(&wharf_api_types::DynoMetricsPoint) -> f64| {
        series.points.iter().map(field).fold(0.0, f64::max)
    };
    let last = series.points.last();
    vec![
        series.dyno.clone(),
        series.process_type.clone(),
        last.map_or_else(String::new, |p| megabytes(p.memory_rss_mb)),
        megabytes(most(|p| p.memory_rss_mb)),
        megabytes(most(|p| p.memory_swap_mb)),
        megabytes(most(|p| p.memory_cache_mb)),
        last.map_or_else(String::new, |p| megabytes(p.memory_quota_mb)),
        last.map_or_else(String::new, |p| format!("{:.2}", p.load_avg_1m)),
        format!("{:.2}", most(|p| p.load_avg_1m)),
    ]
}

fn megabytes(mb: f64) -> String {
    format!("{mb:.1}MB")
}

/// `12.3ms`, `450ms`, `-` when there is no figure.
fn millis(ms: Option<f64>) -> String {
    match ms {
        None => "-".to_owned(),
        Some(ms) if ms < 100.0 => format!("{ms:.1}ms"),
        Some(ms) => format!("{ms:.0}ms"),
    }
}

/// `2026-11-22 10:00` (UTC) of an API timestamp; shown as is when it does not parse.
fn minute(rfc3339: &str) -> String {
    shown(
        rfc3339,
        format_description!("[year]-[month]-[day] [hour]:[minute]"),
    )
}

/// `2026-11-22 10:00:20` (UTC).
fn second(rfc3339: &str) -> String {
    shown(
        rfc3339,
        format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
    )
}

fn shown(rfc3339: &str, format: &[time::format_description::FormatItem<'_>]) -> String {
    OffsetDateTime::parse(rfc3339, &Rfc3339)
        .ok()
        .and_then(|at| at.to_offset(time::UtcOffset::UTC).format(format).ok())
        .unwrap_or_else(|| rfc3339.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_as_shown() {
        assert_eq!(millis(None), "-");
        assert_eq!(millis(Some(12.288)), "12.3ms");
        assert_eq!(millis(Some(30_000.0)), "30000ms");
        assert_eq!(minute("2026-11-22T10:00:00Z"), "2026-11-22 10:00");
        assert_eq!(second("2026-11-22T10:00:20Z"), "2026-11-22 10:00:20");
        assert_eq!(minute("not a time"), "not a time");
        let series = DynoMetricsSeries {
            dyno: "web.1".into(),
            process_type: "web".into(),
            points: vec![
                wharf_api_types::DynoMetricsPoint {
                    at: "2026-11-22T10:00:00Z".into(),
                    memory_rss_mb: 80.0,
                    memory_swap_mb: 0.0,
                    memory_cache_mb: 2.5,
                    memory_quota_mb: 512.0,
                    load_avg_1m: 0.5,
                },
                wharf_api_types::DynoMetricsPoint {
                    at: "2026-11-22T10:01:00Z".into(),
                    memory_rss_mb: 60.0,
                    memory_swap_mb: 1.0,
                    memory_cache_mb: 2.0,
                    memory_quota_mb: 512.0,
                    load_avg_1m: 0.25,
                },
            ],
        };
        assert_eq!(
            dyno_row(&series),
            ["web.1", "web", "60.0MB", "80.0MB", "1.0MB", "2.5MB", "512.0MB", "0.25", "0.50"]
        );
    }
}
