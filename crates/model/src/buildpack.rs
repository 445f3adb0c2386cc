//! Registered buildpacks: directories on the server that an admin named, so that apps may use
//! them by that name (`wharf buildpacks:register NAME DIR`), and the rules for such names.

use std::fmt;

use time::OffsetDateTime;

use crate::{Account, Invalid};

/// The longest a registered buildpack's name may be.
pub const BUILDPACK_NAME_MAX: usize = 64;

/// The names the built-in buildpacks answer to (with their `heroku/` and `wharf/` aliases,
/// which no registered name can spell, having no `/`). A registered buildpack may not take
/// one: `python` must always mean the built-in one.
pub const RESERVED_BUILDPACK_NAMES: &[&str] = &[
    "ruby", "python", "nodejs", "node", "node.js", "go", "static", "procfile",
];

/// A registered buildpack's name: 1 to 64 of lowercase letters, digits, `-`, `_` and `.`,
/// starting with a letter or digit, and none of [`RESERVED_BUILDPACK_NAMES`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BuildpackName(String);

impl BuildpackName {
    pub fn parse(name: &str) -> Result<BuildpackName, Invalid> {
        let valid_chars = name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
        let starts_well = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !(valid_chars && starts_well && name.len() <= BUILDPACK_NAME_MAX) {
            return Err(Invalid::new(format!(
                "Buildpack name {name:?} is invalid: it must start with a lowercase letter or a \
                 digit, contain only lowercase letters, digits, '-', '_' and '.', and be at most \
                 {BUILDPACK_NAME_MAX} characters long"
            )));
        }
        if RESERVED_BUILDPACK_NAMES.contains(&name) {
            return Err(Invalid::new(format!(
                "Buildpack name {name:?} is taken by a built-in buildpack: choose another name"
            )));
        }
        Ok(BuildpackName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BuildpackName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A directory on the server that apps may use as a buildpack by its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildpackRegistration {
    pub name: String,
    /// An absolute path on the server. Only admins see it.
    pub dir: String,
    pub created_at: OffsetDateTime,
    /// The admin who registered it.
    pub created_by: Account,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check(name: &str, valid: bool) {
        assert_eq!(BuildpackName::parse(name).is_ok(), valid, "{name:?}");
    }

    #[test]
    fn buildpack_name_rules() {
        check("php", true);
        check("company-ruby_2.7", true);
        check("1c", true);
        check("x", true);
        check(&"a".repeat(64), true);
        check(&"a".repeat(65), false);
        check("", false);
        check(".", false);
        check("..", false);
        check(".hidden", false);
        check("-flag", false);
        check("_x", false);
        check("Go", false);
        check("my pack", false);
        check("a/b", false);
        check("/opt/buildpacks/go", false);
        check("https://example.com/bp.git", false);
        check("café", false);
        check("a\0b", false);
    }

    #[test]
    fn built_in_names_are_reserved() {
        for name in RESERVED_BUILDPACK_NAMES {
            let message = BuildpackName::parse(name).unwrap_err().to_string();
            assert!(message.contains("built-in"), "{message}");
        }
        for alias in ["heroku/python", "wharf/nodejs"] {
            check(alias, false);
        }
    }

    #[test]
    fn invalid_name_message_says_the_rule() {
        let message = BuildpackName::parse("My Pack").unwrap_err().to_string();
        assert!(message.contains("\"My Pack\""), "{message}");
        assert!(message.contains("lowercase"), "{message}");
    }

    proptest! {
        #[test]
        fn parse_accepts_exactly_the_pattern(name in "\\PC{0,70}") {
            let bytes = name.as_bytes();
            let expected = (1..=BUILDPACK_NAME_MAX).contains(&bytes.len())
                && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
                && bytes.iter().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
                })
                && !RESERVED_BUILDPACK_NAMES.contains(&name.as_str());
            prop_assert_eq!(BuildpackName::parse(&name).is_ok(), expected);
        }

        #[test]
        fn pattern_strings_are_accepted(name in "[a-z0-9][a-z0-9._-]{0,63}") {
            prop_assume!(!RESERVED_BUILDPACK_NAMES.contains(&name.as_str()));
            prop_assert!(BuildpackName::parse(&name).is_ok());
        }
    }
}
