//! One log line as Heroku shows it (`2026-11-22T10:00:00.123456+00:00 app[web.1]: message`).

use std::fmt;

use time::format_description::FormatItem;
use time::macros::format_description;
use time::OffsetDateTime;

pub(crate) const TIMESTAMP: &[FormatItem<'static>] = format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6][offset_hour sign:mandatory]:[offset_minute]"
);

/// Who wrote a line: the app's own output or the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogSource {
    App,
    Heroku,
}

impl LogSource {
    pub fn as_str(self) -> &'static str {
        match self {
            LogSource::App => "app",
            LogSource::Heroku => "heroku",
        }
    }

    pub fn parse(text: &str) -> Option<LogSource> {
        match text {
            "app" => Some(LogSource::App),
            "heroku" => Some(LogSource::Heroku),
            _ => None,
        }
    }
}

impl fmt::Display for LogSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of an app's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// When it was written, to the microsecond.
    pub at: OffsetDateTime,
    pub source: LogSource,
    /// The dyno (`web.1`), or `router`, `api`, `logplex` for platform lines about the app.
    pub process: String,
    pub message: String,
}

impl LogLine {
    /// A line stamped now (UTC, truncated to microseconds).
    pub fn now(source: LogSource, process: &str, message: impl Into<String>) -> LogLine {
        LogLine {
            at: now_micros(),
            source,
            process: process.to_owned(),
            message: message.into(),
        }
    }
}

/// The current time in UTC, truncated to microseconds (what the log format shows).
pub fn now_micros() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_microsecond(now.microsecond())
        .expect("a microsecond taken from a valid time is valid")
}

/// A time as the log format shows it.
pub fn format_time(at: OffsetDateTime) -> String {
    at.format(TIMESTAMP)
        .expect("an OffsetDateTime always formats with a numeric format")
}

impl fmt::Display for LogLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = self.at.format(TIMESTAMP).map_err(|_| fmt::Error)?;
        write!(
            f,
            "{at} {}[{}]: {}",
            self.source, self.process, self.message
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn line(source: LogSource, process: &str, message: &str) -> LogLine {
        LogLine {
            at: datetime!(2026-11-22 10:00:00.123456 UTC),
            source,
            process: process.to_owned(),
            message: message.to_owned(),
        }
    }

    #[test]
    fn formats_like_heroku() {
        let mut whole_second = line(LogSource::App, "web.1", "x");
        whole_second.at = datetime!(2026-01-02 03:04:05 UTC);
        let mut offset = line(LogSource::App, "web.1", "y");
        offset.at = datetime!(2026-01-02 03:04:05.000007 +02:00);
        let shown: Vec<String> = [
            line(LogSource::App, "web.1", "GET / 200"),
            line(
                LogSource::Heroku,
                "worker.2",
                "State changed from starting to up",
            ),
            line(
                LogSource::Heroku,
                "web.1",
                "Starting process with command `bin/web`",
            ),
            whole_second,
            offset,
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        expect_test::expect![[r#"
            2026-11-22T10:00:00.123456+00:00 app[web.1]: GET / 200
            2026-11-22T10:00:00.123456+00:00 heroku[worker.2]: State changed from starting to up
            2026-11-22T10:00:00.123456+00:00 heroku[web.1]: Starting process with command `bin/web`
            2026-01-02T03:04:05.000000+00:00 app[web.1]: x
            2026-01-02T03:04:05.000007+02:00 app[web.1]: y
        "#]]
        .assert_eq(&(shown.join("\n") + "\n"));
    }

    #[test]
    fn now_has_microseconds_only() {
        let at = now_micros();
        assert_eq!(at.nanosecond() % 1000, 0);
    }
}
