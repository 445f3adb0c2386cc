//! The stacks a server offers: the root filesystems builds and dynos run on, their names and
//! ids, where each comes from, and which one new apps get.

use std::fmt;

use uuid::Uuid;

use crate::Invalid;

/// A stack this server knows. A closed set: each one is a way of making a root filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StackName {
    /// The host's own `/usr` (Debian 12), bound read-only.
    Debian12,
    /// A Debian 13 root filesystem that the server builds with debootstrap.
    Debian13,
}

/// Where a stack's root filesystem comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StackSource {
    /// The host's `/usr` under a generated `/etc`.
    Host,
    /// `debootstrap --variant=minbase` of this Debian suite.
    Debootstrap { suite: &'static str },
}

impl StackName {
    /// Every stack, oldest first (the order `GET /stacks` lists them in).
    pub const ALL: [StackName; 2] = [StackName::Debian12, StackName::Debian13];

    /// The stack new apps get.
    pub const DEFAULT: StackName = StackName::Debian12;

    /// The stack named, or with the id, `name_or_id`; the error lists the stacks there are.
    pub fn parse(name_or_id: &str) -> Result<StackName, Invalid> {
        StackName::ALL
            .into_iter()
            .find(|stack| stack.as_str() == name_or_id || stack.id().to_string() == name_or_id)
            .ok_or_else(|| {
                Invalid::new(format!(
                    "Stack {name_or_id:?} is not available: choose one of {}",
                    StackName::ALL.map(StackName::as_str).join(", ")
                ))
            })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StackName::Debian12 => "debian-12",
            StackName::Debian13 => "debian-13",
        }
    }

    /// The stack's id: fixed, so that it is the same on every server and across restarts.
    pub fn id(self) -> Uuid {
        Uuid::from_u128(match self {
            StackName::Debian12 => 0x5b0e5a2c_8a3d_4b8e_9d61_7c4a0f1e2d30,
            StackName::Debian13 => 0x5b0e5a2c_8a3d_4b8e_9d61_7c4a0f1e2d31,
        })
    }

    pub fn source(self) -> StackSource {
        match self {
            StackName::Debian12 => StackSource::Host,
            StackName::Debian13 => StackSource::Debootstrap { suite: "trixie" },
        }
    }

    pub fn is_default(self) -> bool {
        self == StackName::DEFAULT
    }
}

impl fmt::Display for StackName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Option<StackName>) {
        assert_eq!(StackName::parse(input).ok(), expected, "{input:?}");
    }

    #[test]
    fn stacks_are_found_by_name_or_id() {
        check("debian-12", Some(StackName::Debian12));
        check("debian-13", Some(StackName::Debian13));
        check(
            "5b0e5a2c-8a3d-4b8e-9d61-7c4a0f1e2d31",
            Some(StackName::Debian13),
        );
        check("heroku-24", None);
        check("Debian-13", None);
        check("", None);
    }

    #[test]
    fn an_unknown_stack_is_refused_with_the_list() {
        let error = StackName::parse("heroku-24").unwrap_err();
        assert_eq!(
            error.to_string(),
            "Stack \"heroku-24\" is not available: choose one of debian-12, debian-13"
        );
    }

    #[test]
    fn names_and_ids_are_distinct_and_one_is_the_default() {
        let ids: std::collections::HashSet<Uuid> = StackName::ALL.map(StackName::id).into();
        assert_eq!(ids.len(), StackName::ALL.len());
        assert_eq!(
            StackName::ALL
                .iter()
                .filter(|stack| stack.is_default())
                .count(),
            1
        );
        assert_eq!(StackName::DEFAULT.source(), StackSource::Host);
        assert_eq!(
            StackName::Debian13.source(),
            StackSource::Debootstrap { suite: "trixie" }
        );
    }
}
