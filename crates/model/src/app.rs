//! Apps: the validated app name, Heroku-style generated names, and app records.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Account, Invalid, StackName};

const NAME_MIN: usize = 2;
const NAME_MAX: usize = 30;

/// An app name as Heroku allows it: `^[a-z][a-z0-9-]{1,29}$`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct AppName(String);

impl AppName {
    pub fn parse(name: &str) -> Result<AppName, Invalid> {
        let valid_chars = name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        let starts_with_letter = name.chars().next().is_some_and(|c| c.is_ascii_lowercase());
        if (NAME_MIN..=NAME_MAX).contains(&name.len()) && valid_chars && starts_with_letter {
            Ok(AppName(name.to_owned()))
        } else {
            Err(Invalid::new(format!(
                "Name {name:?} is invalid: an app name must start with a letter, contain only \
                 lowercase letters, digits and dashes, and be {NAME_MIN} to {NAME_MAX} characters long"
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AppName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for AppName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        AppName::parse(&raw).map_err(serde::de::Error::custom)
    }
}

const ADJECTIVES: &[&str] = &[
    "ancient",
    "autumn",
    "billowing",
    "bitter",
    "blue",
    "bold",
    "brave",
    "calm",
    "cold",
    "cool",
    "crimson",
    "damp",
    "dark",
    "dawn",
    "desert",
    "falling",
    "floral",
    "fragrant",
    "frosty",
    "gentle",
    "glacial",
    "hidden",
    "icy",
    "little",
    "lively",
    "misty",
    "morning",
    "muddy",
    "nameless",
    "old",
    "patient",
    "polished",
    "proud",
    "quiet",
    "rapid",
    "red",
    "rough",
    "shy",
    "silent",
    "small",
    "snowy",
    "sparkling",
    "spring",
    "still",
    "summer",
    "sweet",
    "twilight",
    "wandering",
    "weathered",
    "white",
    "wild",
    "winter",
    "young",
];

const NOUNS: &[&str] = &[
    "bay",
    "beach",
    "breeze",
    "brook",
    "butterfly",
    "cave",
    "cliff",
    "cloud",
    "dawn",
    "dew",
    "dream",
    "dust",
    "feather",
    "field",
    "fire",
    "firefly",
    "flower",
    "fog",
    "forest",
    "frog",
    "glade",
    "grass",
    "harbor",
    "haze",
    "hill",
    "lake",
    "leaf",
    "meadow",
    "moon",
    "mountain",
    "night",
    "ocean",
    "paper",
    "pine",
    "pond",
    "rain",
    "reef",
    "resonance",
    "river",
    "sea",
    "shadow",
    "shape",
    "silence",
    "sky",
    "smoke",
    "snow",
    "sound",
    "star",
    "sun",
    "sunset",
    "surf",
    "thunder",
    "tree",
    "violet",
    "water",
    "wave",
    "wildflower",
    "wind",
    "wood",
];

/// A Heroku-style name (`misty-harbor-04821`) from three random numbers the caller draws, so
/// the rule stays pure and testable.
pub fn generate_app_name(adjective: u32, noun: u32, number: u32) -> AppName {
    let adjective = ADJECTIVES[adjective as usize % ADJECTIVES.len()];
    let noun = NOUNS[noun as usize % NOUNS.len()];
    AppName::parse(&format!("{adjective}-{noun}-{:05}", number % 100_000))
        .expect("generated names are built from valid parts")
}

/// An app as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    pub id: Uuid,
    pub name: AppName,
    pub owner: Account,
    pub maintenance: bool,
    /// Bytes of the app's git repository, once the app has one.
    pub repo_size: Option<i64>,
    /// Bytes of the current release's slug, once the app has one.
    pub slug_size: Option<i64>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// When the current release was created.
    pub released_at: Option<OffsetDateTime>,
    /// The stack the app's next build runs on (`heroku stack:set`).
    pub build_stack: StackName,
    /// The stack of the current release's slug, once the app has one: what its dynos run on
    /// until the next deploy.
    pub release_stack: Option<String>,
}

/// An account given access to an app that it does not own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collaborator {
    pub id: Uuid,
    pub app_id: Uuid,
    pub app_name: AppName,
    pub account: Account,
    pub created_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check(name: &str, valid: bool) {
        assert_eq!(AppName::parse(name).is_ok(), valid, "{name:?}");
    }

    #[test]
    fn app_name_rules() {
        check("myapp", true);
        check("my-app-2", true);
        check("ab", true);
        check(&"a".repeat(30), true);
        check(&"a".repeat(31), false);
        check("a", false);
        check("", false);
        check("2app", false);
        check("-app", false);
        check("MyApp", false);
        check("my_app", false);
        check("my.app", false);
        check("my app", false);
        check("café", false);
    }

    #[test]
    fn invalid_name_message_says_the_rule() {
        let message = AppName::parse("My_App").unwrap_err().to_string();
        assert!(message.contains("\"My_App\""), "{message}");
        assert!(message.contains("lowercase"), "{message}");
    }

    proptest! {
        #[test]
        fn parse_accepts_exactly_the_heroku_pattern(name in "\\PC{0,40}") {
            let bytes = name.as_bytes();
            let expected = (2..=30).contains(&bytes.len())
                && bytes[0].is_ascii_lowercase()
                && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
            prop_assert_eq!(AppName::parse(&name).is_ok(), expected);
        }

        #[test]
        fn pattern_strings_are_accepted(name in "[a-z][a-z0-9-]{1,29}") {
            prop_assert!(AppName::parse(&name).is_ok());
        }

        #[test]
        fn generated_names_are_valid(a in any::<u32>(), n in any::<u32>(), x in any::<u32>()) {
            let name = generate_app_name(a, n, x);
            prop_assert!(AppName::parse(name.as_str()).is_ok());
        }
    }
}
