//! Config vars: validated keys, the whole set with its size limit, and how a change applies.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Invalid;

/// The most bytes (keys plus values) an app's whole set of config vars may hold.
pub const CONFIG_VARS_MAX_BYTES: usize = 32 * 1024;

/// A config var name: `^[A-Za-z_][A-Za-z0-9_]*$`. Such a name can always be passed into a
/// process environment (`NAME=value`): it holds no `=`, no NUL and nothing a shell would read
/// differently.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ConfigKey(String);

impl ConfigKey {
    pub fn parse(key: &str) -> Result<ConfigKey, Invalid> {
        let mut chars = key.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
            Ok(ConfigKey(key.to_owned()))
        } else {
            Err(Invalid::new(format!(
                "Config var name {key:?} is invalid: use letters, digits and underscores, \
                 not starting with a digit"
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ConfigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An app's config vars at one release. Keys are validated on the way in; the whole set stays
/// within [`CONFIG_VARS_MAX_BYTES`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConfigVars(BTreeMap<String, String>);

impl ConfigVars {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    fn size_bytes(&self) -> usize {
        self.0.iter().map(|(k, v)| k.len() + v.len()).sum()
    }

    /// Applies `changes` whole or not at all. Returns the new set and the release description
    /// ("Set A, B config vars"), or `None` when nothing would change.
    pub fn apply(&self, changes: &ConfigChanges) -> Result<Option<(ConfigVars, String)>, Invalid> {
        let mut next = self.0.clone();
        let mut set = Vec::new();
        let mut removed = Vec::new();
        for (key, value) in &changes.0 {
            match value {
                Some(value) => {
                    if next.insert(key.0.clone(), value.clone()).as_ref() != Some(value) {
                        set.push(key.as_str());
                    }
                }
                None => {
                    if next.remove(key.as_str()).is_some() {
                        removed.push(key.as_str());
                    }
                }
            }
        }
        let next = ConfigVars(next);
        let size = next.size_bytes();
        if size > CONFIG_VARS_MAX_BYTES {
            return Err(Invalid::new(format!(
                "Config vars would total {size} bytes, over the limit of {CONFIG_VARS_MAX_BYTES} \
                 bytes: store large values elsewhere and reference them"
            )));
        }
        let description = match (set.is_empty(), removed.is_empty()) {
            (true, true) => return Ok(None),
            (false, true) => format!("Set {} config vars", set.join(", ")),
            (true, false) => format!("Remove {} config vars", removed.join(", ")),
            (false, false) => format!(
                "Set {} and remove {} config vars",
                set.join(", "),
                removed.join(", ")
            ),
        };
        Ok(Some((next, description)))
    }
}

/// A requested change to config vars: a value sets a key, `None` removes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigChanges(BTreeMap<ConfigKey, Option<String>>);

impl ConfigChanges {
    /// Validates every key and value first, so that a bad one refuses the whole change.
    pub fn parse<'a>(
        pairs: impl IntoIterator<Item = (&'a str, Option<String>)>,
    ) -> Result<ConfigChanges, Invalid> {
        let mut changes = BTreeMap::new();
        for (key, value) in pairs {
            let key = ConfigKey::parse(key)?;
            if let Some(value) = &value {
                check_env_value(&key, value)?;
            }
            changes.insert(key, value);
        }
        Ok(ConfigChanges(changes))
    }
}

/// Can `value` be passed to a process as the environment variable `key`? Every dyno and build
/// gets its config vars in its environment, where an entry is a C string: a NUL byte would end
/// the value early (crun) or make the container fail to start (runc). Values are UTF-8 (they
/// come as JSON strings), and NUL is the one byte of UTF-8 an environment cannot hold.
pub fn check_env_value(key: &ConfigKey, value: &str) -> Result<(), Invalid> {
    match value.find('\0') {
        None => Ok(()),
        Some(at) => Err(Invalid::new(format!(
            "The value of {key} has a NUL character (\\u0000) at byte {at}, which a process \
             environment cannot hold: remove it (to store binary data, encode it, in \
             base64 for example)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn changes(pairs: &[(&str, Option<&str>)]) -> ConfigChanges {
        ConfigChanges::parse(pairs.iter().map(|(k, v)| (*k, v.map(str::to_owned))))
            .expect("valid keys")
    }

    fn vars(pairs: &[(&str, &str)]) -> ConfigVars {
        ConfigVars(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn check(before: &[(&str, &str)], change: &[(&str, Option<&str>)], expected: Option<&str>) {
        let outcome = vars(before).apply(&changes(change)).expect("within limits");
        assert_eq!(outcome.map(|(_, d)| d).as_deref(), expected);
    }

    #[test]
    fn descriptions() {
        check(
            &[],
            &[("FOO", Some("1")), ("BAR", Some("2"))],
            Some("Set BAR, FOO config vars"),
        );
        check(
            &[("FOO", "1")],
            &[("FOO", None)],
            Some("Remove FOO config vars"),
        );
        check(
            &[("FOO", "1")],
            &[("FOO", None), ("BAR", Some("x"))],
            Some("Set BAR and remove FOO config vars"),
        );
        check(&[("FOO", "1")], &[("FOO", Some("1"))], None);
        check(&[], &[("GONE", None)], None);
        check(&[], &[], None);
    }

    #[test]
    fn apply_sets_and_removes() {
        let (next, _) = vars(&[("A", "1"), ("B", "2")])
            .apply(&changes(&[
                ("A", None),
                ("B", Some("3")),
                ("C", Some("é ünïcode")),
            ]))
            .expect("within limits")
            .expect("changed");
        assert_eq!(next, vars(&[("B", "3"), ("C", "é ünïcode")]));
    }

    #[test]
    fn key_rules() {
        for good in ["A", "_", "FOO_BAR", "foo1", "_9"] {
            assert!(ConfigKey::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "1A", "FOO-BAR", "FOO BAR", "FÖÖ", "A=B", "A.B"] {
            assert!(ConfigKey::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_bad_key_refuses_the_whole_change() {
        let err = ConfigChanges::parse([("GOOD", Some("1".into())), ("BAD-KEY", Some("2".into()))])
            .unwrap_err();
        assert!(err.to_string().contains("BAD-KEY"));
    }

    #[test]
    fn a_nul_in_a_value_refuses_the_whole_change() {
        let err = ConfigChanges::parse([("GOOD", Some("1".into())), ("BAD", Some("a\0b".into()))])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "The value of BAD has a NUL character (\\u0000) at byte 1, which a process \
             environment cannot hold: remove it (to store binary data, encode it, in \
             base64 for example)"
        );
        for bad in ["\0", "abc\0", "\0abc"] {
            assert!(
                ConfigChanges::parse([("A", Some(bad.to_owned()))]).is_err(),
                "{bad:?}"
            );
        }
        // Removing a var needs no value; every other character is fine in an environment.
        assert!(ConfigChanges::parse([("A", None)]).is_ok());
        let fine = "é \u{1} \t\n = ; $HOME \u{FFFF} \u{10FFFF}";
        assert!(ConfigChanges::parse([("A", Some(fine.to_owned()))]).is_ok());
    }

    #[test]
    fn keys_never_hold_what_an_environment_cannot() {
        for bad in ["A\0", "\0", "A=B", "=A"] {
            assert!(ConfigKey::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn size_limit_applies_to_the_whole_set() {
        let half = "x".repeat(CONFIG_VARS_MAX_BYTES / 2);
        let base = vars(&[("A", &half)]);
        assert!(base.apply(&changes(&[("B", Some(&half))])).is_err());
        assert!(base
            .apply(&changes(&[("B", Some(&half[..half.len() - 2]))]))
            .is_ok());
    }

    proptest! {
        #[test]
        fn key_parse_matches_pattern(key in "\\PC{0,12}") {
            let expected = key.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            prop_assert_eq!(ConfigKey::parse(&key).is_ok(), expected);
        }

        #[test]
        fn values_are_refused_exactly_when_they_hold_a_nul(value in "\\PC{0,8}|[a\\x00]{0,4}") {
            let refused = ConfigChanges::parse([("A", Some(value.clone()))]).is_err();
            prop_assert_eq!(refused, value.contains('\0'));
        }

        #[test]
        fn applying_twice_changes_nothing_more(
            ops in proptest::collection::vec(("[A-C]", proptest::option::of("[a-z]{0,3}")), 0..8)
        ) {
            let change = ConfigChanges::parse(ops.iter().map(|(k, v)| (k.as_str(), v.clone())))
                .expect("valid keys");
            let start = vars(&[("A", "a"), ("B", "b")]);
            let once = match start.apply(&change).expect("small") {
                Some((next, _)) => next,
                None => start.clone(),
            };
            prop_assert!(once.apply(&change).expect("small").is_none());
        }
    }
}
