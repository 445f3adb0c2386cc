//! A dyno's state and name as Heroku shows them, and which dynos a restart or stop targets.

use std::fmt;
use std::str::FromStr;

/// A dyno's state, with Heroku's names (`heroku ps`, `State changed from starting to up`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DynoState {
    /// Its container is being started, or (web) its process has not yet bound `$PORT`.
    Starting,
    /// Running; a web dyno also accepts connections on its `$PORT`.
    Up,
    /// Its process exited by itself (or was killed for a timeout or memory); it is restarted
    /// when its cool-off ends ([`crate::restart_delay`]).
    Crashed,
    /// Being stopped: out of the route table, SIGTERM sent; it is removed once its container is
    /// gone.
    Down,
    /// Asleep for lack of traffic (Eco dynos): no process, out of the routes, until a request
    /// (or a change to the app) wakes it.
    Idle,
}

impl DynoState {
    pub fn as_str(self) -> &'static str {
        match self {
            DynoState::Starting => "starting",
            DynoState::Up => "up",
            DynoState::Crashed => "crashed",
            DynoState::Down => "down",
            DynoState::Idle => "idle",
        }
    }
}

impl fmt::Display for DynoState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A dyno's name: its process type and number, shown as `web.1`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DynoName {
    process_type: String,
    number: u32,
}

impl DynoName {
    /// A name for dyno `number` (from 1) of `process_type`.
    pub fn new(process_type: &str, number: u32) -> DynoName {
        DynoName {
            process_type: process_type.to_owned(),
            number,
        }
    }

    pub fn process_type(&self) -> &str {
        &self.process_type
    }

    pub fn number(&self) -> u32 {
        self.number
    }

    /// Whether this is a web dyno (the only type that gets a `$PORT` and routes).
    pub fn is_web(&self) -> bool {
        self.process_type == "web"
    }
}

impl fmt::Display for DynoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.process_type, self.number)
    }
}

impl FromStr for DynoName {
    type Err = String;

    /// Parses `web.1`; the number is at least 1.
    fn from_str(raw: &str) -> Result<DynoName, String> {
        let invalid = || format!("{raw:?} is not a dyno name such as web.1");
        let (process_type, number) = raw.rsplit_once('.').ok_or_else(invalid)?;
        let number: u32 = number.parse().map_err(|_| invalid())?;
        let valid_type = !process_type.is_empty()
            && process_type
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if number == 0 || !valid_type {
            return Err(invalid());
        }
        Ok(DynoName::new(process_type, number))
    }
}

/// Which of an app's dynos a restart or stop applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    All,
    /// Every dyno of a process type (`web`).
    Type(String),
    /// One dyno by name (`web.1`).
    Dyno(String),
}

impl Target {
    pub fn matches(&self, name: &DynoName) -> bool {
        match self {
            Target::All => true,
            Target::Type(process_type) => name.process_type() == process_type,
            Target::Dyno(dyno) => name.to_string() == *dyno,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let name: DynoName = "web.12".parse().expect("valid");
        assert_eq!((name.process_type(), name.number()), ("web", 12));
        assert_eq!(name.to_string(), "web.12");
        assert!(name.is_web());
        assert_eq!(
            "clock-2.1".parse::<DynoName>().map(|n| n.to_string()),
            Ok("clock-2.1".to_owned())
        );
        for bad in ["web", "web.0", ".1", "web.x", "we b.1", "web.-1"] {
            assert!(bad.parse::<DynoName>().is_err(), "{bad}");
        }
    }

    #[test]
    fn states_have_herokus_names() {
        let names: Vec<_> = [
            DynoState::Starting,
            DynoState::Up,
            DynoState::Crashed,
            DynoState::Down,
            DynoState::Idle,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(names, ["starting", "up", "crashed", "down", "idle"]);
    }

    #[test]
    fn targets() {
        let web1 = DynoName::new("web", 1);
        let worker1 = DynoName::new("worker", 1);
        assert!(Target::All.matches(&web1));
        assert!(Target::Type("web".into()).matches(&web1));
        assert!(!Target::Type("web".into()).matches(&worker1));
        assert!(Target::Dyno("web.1".into()).matches(&web1));
        assert!(!Target::Dyno("web.2".into()).matches(&web1));
    }
}
