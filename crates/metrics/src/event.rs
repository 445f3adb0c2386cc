//! Events: what the platform did or saw that a chart should mark (a deploy, a scale, a crash,
//! a router error), with when, which dyno (when one) and the platform's own words.

use std::fmt;

use time::OffsetDateTime;

use crate::minute::RouterCode;

/// The longest message kept, in bytes (a platform line is at most 10,000).
pub const MAX_MESSAGE_BYTES: usize = 1000;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    Deploy,
    Rollback,
    /// Config vars set or removed.
    Config,
    /// The formation changed.
    Scale,
    Restart,
    /// A dyno crashed.
    Crash,
    /// Memory quota exceeded.
    R14,
    /// Memory quota vastly exceeded: the dyno was killed.
    R15,
    /// A router error (`H12`).
    Router(RouterCode),
}

impl EventKind {
    /// `deploy`, `rollback`, `config`, `scale`, `restart`, `crash`, `R14`, `R15`, `H12`.
    pub fn parse(text: &str) -> Option<EventKind> {
        Some(match text {
            "deploy" => EventKind::Deploy,
            "rollback" => EventKind::Rollback,
            "config" => EventKind::Config,
            "scale" => EventKind::Scale,
            "restart" => EventKind::Restart,
            "crash" => EventKind::Crash,
            "R14" => EventKind::R14,
            "R15" => EventKind::R15,
            code => EventKind::Router(RouterCode::parse(code)?),
        })
    }

    /// Whether events of this kind come in floods (every request, every sample): those are
    /// kept once per kind, dyno and minute, with a count.
    pub fn repeats(self) -> bool {
        matches!(self, EventKind::R14 | EventKind::R15 | EventKind::Router(_))
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventKind::Deploy => f.write_str("deploy"),
            EventKind::Rollback => f.write_str("rollback"),
            EventKind::Config => f.write_str("config"),
            EventKind::Scale => f.write_str("scale"),
            EventKind::Restart => f.write_str("restart"),
            EventKind::Crash => f.write_str("crash"),
            EventKind::R14 => f.write_str("R14"),
            EventKind::R15 => f.write_str("R15"),
            EventKind::Router(code) => code.fmt(f),
        }
    }
}

/// One event of an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub at: OffsetDateTime,
    pub kind: EventKind,
    /// The dyno it concerns (`web.1`); `None` for the app as a whole.
    pub dyno: Option<String>,
    pub message: String,
}

impl Event {
    /// An event with `message` cut to [`MAX_MESSAGE_BYTES`] (on a character boundary).
    pub fn new(at: OffsetDateTime, kind: EventKind, dyno: Option<&str>, message: &str) -> Event {
        Event {
            at,
            kind,
            dyno: dyno.map(str::to_owned),
            message: truncate(message, MAX_MESSAGE_BYTES).to_owned(),
        }
    }
}

fn truncate(text: &str, limit: usize) -> &str {
    if text.len() <= limit {
        return text;
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_read_back_as_written() {
        for text in [
            "deploy", "rollback", "config", "scale", "restart", "crash", "R14", "R15", "H12",
        ] {
            let kind = EventKind::parse(text).expect("a kind");
            assert_eq!(kind.to_string(), text);
        }
        assert_eq!(EventKind::parse("R99"), None);
        assert!(EventKind::parse("H10").is_some_and(EventKind::repeats));
        assert!(!EventKind::Deploy.repeats());
    }

    #[test]
    fn long_messages_are_cut_on_a_character() {
        let message = "é".repeat(MAX_MESSAGE_BYTES);
        let event = Event::new(OffsetDateTime::UNIX_EPOCH, EventKind::Crash, None, &message);
        assert!(event.message.len() <= MAX_MESSAGE_BYTES);
        assert!(event.message.len() >= MAX_MESSAGE_BYTES - 1);
    }
}
