//! Where PostgreSQL's programs (`pg_dump`, `pg_restore`) connect, as libpq's environment
//! variables: the admin URL's host (or socket directory), port and TLS mode, and the admin's
//! password decoded from it.

use anyhow::Context;
use sqlx::postgres::PgSslMode;

/// Seconds a program waits for the server to accept its connection.
const CONNECT_TIMEOUT_SECONDS: &str = "10";

/// Where a PostgreSQL program connects, in libpq's environment variables.
#[derive(Debug, Clone)]
pub(super) struct Endpoint {
    /// A host name, an address or a socket directory.
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) ssl_mode: Option<&'static str>,
}

impl Endpoint {
    pub(super) fn env(
        &self,
        user: &str,
        password: Option<&str>,
        database: &str,
    ) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("PGHOST", self.host.clone()),
            ("PGPORT", self.port.to_string()),
            ("PGUSER", user.to_owned()),
            ("PGDATABASE", database.to_owned()),
            ("PGCONNECT_TIMEOUT", CONNECT_TIMEOUT_SECONDS.to_owned()),
        ];
        if let Some(password) = password {
            env.push(("PGPASSWORD", password.to_owned()));
        }
        if let Some(ssl_mode) = self.ssl_mode {
            env.push(("PGSSLMODE", ssl_mode.to_owned()));
        }
        env
    }
}

pub(super) fn ssl_mode_name(mode: PgSslMode) -> &'static str {
    match mode {
        PgSslMode::Disable => "disable",
        PgSslMode::Allow => "allow",
        PgSslMode::Prefer => "prefer",
        PgSslMode::Require => "require",
        PgSslMode::VerifyCa => "verify-ca",
        PgSslMode::VerifyFull => "verify-full",
    }
}

/// Decodes a URL's `%XX` escapes (the admin password as the URL carries it).
pub(super) fn percent_decode(text: &str) -> anyhow::Result<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        if byte == b'%' {
            let hex = bytes
                .get(index + 1..index + 3)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok());
            if let Some(value) = hex {
                decoded.push(value);
                index += 3;
                continue;
            }
        }
        decoded.push(byte);
        index += 1;
    }
    String::from_utf8(decoded).context("the admin URL's password is not UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_escapes_are_decoded() {
        assert_eq!(percent_decode("p%40ss%2Fw%3Ard").unwrap(), "p@ss/w:rd");
        assert_eq!(percent_decode("plain%zz%4").unwrap(), "plain%zz%4");
    }

    #[test]
    fn programs_get_their_connection_in_the_environment() {
        let endpoint = Endpoint {
            host: "/srv/run".into(),
            port: 15432,
            ssl_mode: None,
        };
        let env = endpoint.env("postgres", None, "addon_1");
        assert_eq!(
            env,
            [
                ("PGHOST", "/srv/run".to_owned()),
                ("PGPORT", "15432".to_owned()),
                ("PGUSER", "postgres".to_owned()),
                ("PGDATABASE", "addon_1".to_owned()),
                ("PGCONNECT_TIMEOUT", "10".to_owned()),
            ]
        );
    }
}
