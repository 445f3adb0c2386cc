//! Accounts: the people (and scripts) that own apps and hold API keys.

use std::fmt;

use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::Invalid;

const EMAIL_MAX: usize = 254;

/// An e-mail address, lowercased; the account's login name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    /// Accepts `local@domain` with a dotted or single-label domain, no spaces; lowercases it.
    pub fn parse(raw: &str) -> Result<Email, Invalid> {
        let email = raw.trim().to_lowercase();
        let valid = match email.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.is_empty()
                    && !domain.contains('@')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && email.len() <= EMAIL_MAX
                    && !email.chars().any(|c| c.is_whitespace() || c.is_control())
            }
            None => false,
        };
        if valid {
            Ok(Email(email))
        } else {
            Err(Invalid::new(format!(
                "{raw:?} is not an e-mail address: expected something like user@example.com"
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: Uuid,
    pub email: Email,
    /// Admins manage users; app access is the same for everyone.
    pub admin: bool,
    pub created_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: &str, expected: Option<&str>) {
        assert_eq!(
            Email::parse(raw)
                .ok()
                .map(|e| e.as_str().to_owned())
                .as_deref(),
            expected,
            "{raw:?}"
        );
    }

    #[test]
    fn email_rules() {
        check("admin@example.com", Some("admin@example.com"));
        check(" Admin@Example.COM ", Some("admin@example.com"));
        check("root@localhost", Some("root@localhost"));
        check("nope", None);
        check("@example.com", None);
        check("a@", None);
        check("a@b@c", None);
        check("a b@c.d", None);
        check("a@.c", None);
    }
}
