//! The router line: one per request, in Heroku's format, written to the app's log as
//! `heroku[router]: at=info method=GET path="/" ... protocol=https`.

use std::fmt;
use std::time::Duration;

use crate::error::RouterError;

/// What the router says about one request. [`fmt::Display`] gives the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterLogLine {
    /// Why it failed; `None` for a request a dyno answered.
    pub error: Option<RouterError>,
    pub method: String,
    /// The path and query, as the client sent them.
    pub path: String,
    pub host: String,
    pub request_id: String,
    /// The `X-Forwarded-For` chain the dyno was sent.
    pub fwd: String,
    /// The dyno it went to; `None` when none was picked.
    pub dyno: Option<String>,
    /// Time to connect to the dyno (zero on a pooled connection).
    pub connect: Option<Duration>,
    /// Time from sending the request to the end of the response.
    pub service: Option<Duration>,
    pub status: u16,
    /// Response body bytes from the dyno; `None` when no dyno answered.
    pub bytes: Option<u64>,
    /// `http` or `https`.
    pub protocol: &'static str,
}

impl RouterLogLine {
    /// The log source of router lines.
    pub const SOURCE: &'static str = "heroku";
    /// The process router lines are written as.
    pub const PROCESS: &'static str = "router";

    /// What the line reports as connect + service time; none when no dyno was tried.
    pub fn total(&self) -> Option<Duration> {
        match (self.connect, self.service) {
            (None, None) => None,
            (connect, service) => Some(connect.unwrap_or_default() + service.unwrap_or_default()),
        }
    }

    /// The message, as [`fmt::Display`] writes it, in one allocation.
    pub fn message(&self) -> String {
        let mut message = String::with_capacity(
            200 + self.path.len() + self.host.len() + self.fwd.len() + self.request_id.len(),
        );
        // Writing to a String cannot fail.
        let _ = fmt::write(&mut message, format_args!("{self}"));
        message
    }
}

impl fmt::Display for RouterLogLine {
    // Written piece by piece rather than with one `write!`: this runs once per request.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.error {
            Some(error) => {
                if let Some(sock) = error.sock() {
                    f.write_str("sock=")?;
                    f.write_str(sock)?;
                    f.write_str(" ")?;
                }
                f.write_str("at=")?;
                f.write_str(error.level().as_str())?;
                f.write_str(" code=")?;
                f.write_str(error.code())?;
                f.write_str(" desc=")?;
                Quoted(&error.desc()).fmt(f)?;
                if let Some(cause) = error.cause() {
                    f.write_str(" cause=")?;
                    Quoted(cause).fmt(f)?;
                }
                f.write_str(" ")?;
            }
            None => f.write_str("at=info ")?,
        }
        f.write_str("method=")?;
        f.write_str(&self.method)?;
        f.write_str(" path=")?;
        Quoted(&self.path).fmt(f)?;
        f.write_str(" host=")?;
        f.write_str(&self.host)?;
        f.write_str(" request_id=")?;
        f.write_str(&self.request_id)?;
        f.write_str(" fwd=")?;
        Quoted(&self.fwd).fmt(f)?;
        f.write_str(" dyno=")?;
        f.write_str(self.dyno.as_deref().unwrap_or(""))?;
        f.write_str(" connect=")?;
        Millis(self.connect).fmt(f)?;
        f.write_str(" service=")?;
        Millis(self.service).fmt(f)?;
        f.write_str(" status=")?;
        f.write_str(itoa::Buffer::new().format(self.status))?;
        f.write_str(" bytes=")?;
        if let Some(bytes) = self.bytes {
            f.write_str(itoa::Buffer::new().format(bytes))?;
        }
        f.write_str(" protocol=")?;
        f.write_str(self.protocol)
    }
}

/// A value in double quotes, with `"` and `\` escaped so a line always parses.
struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for part in self.0.split_inclusive(['"', '\\']) {
            match part.char_indices().last() {
                Some((at, c @ ('"' | '\\'))) => {
                    f.write_str(&part[..at])?;
                    f.write_str(if c == '"' { "\\\"" } else { "\\\\" })?;
                }
                _ => f.write_str(part)?,
            }
        }
        f.write_str("\"")
    }
}

/// `12ms`, or nothing.
struct Millis(Option<Duration>);

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(d) => {
                f.write_str(itoa::Buffer::new().format(d.as_millis()))?;
                f.write_str("ms")
            }
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ClientError, DynoError};
    use expect_test::{expect, Expect};

    fn served() -> RouterLogLine {
        RouterLogLine {
            error: None,
            method: "GET".to_owned(),
            path: "/".to_owned(),
            host: "myapp.localhost".to_owned(),
            request_id: "8601b555-6a83-4c12-8269-97c8e32cdb22".to_owned(),
            fwd: "127.0.0.1".to_owned(),
            dyno: Some("web.1".to_owned()),
            connect: Some(Duration::from_micros(300)),
            service: Some(Duration::from_millis(12)),
            status: 200,
            bytes: Some(1234),
            protocol: "http",
        }
    }

    fn check(line: RouterLogLine, expected: Expect) {
        expected.assert_eq(&line.to_string());
        assert_eq!(line.message(), line.to_string());
    }

    #[test]
    fn a_served_request() {
        check(
            served(),
            expect![[
                r#"at=info method=GET path="/" host=myapp.localhost request_id=8601b555-6a83-4c12-8269-97c8e32cdb22 fwd="127.0.0.1" dyno=web.1 connect=0ms service=12ms status=200 bytes=1234 protocol=http"#
            ]],
        );
    }

    #[test]
    fn a_timeout() {
        let line = RouterLogLine {
            error: Some(DynoError::RequestTimeout.into()),
            service: Some(Duration::from_millis(30_000)),
            status: 503,
            bytes: Some(0),
            ..served()
        };
        check(
            line,
            expect![[
                r#"at=error code=H12 desc="Request timeout" method=GET path="/" host=myapp.localhost request_id=8601b555-6a83-4c12-8269-97c8e32cdb22 fwd="127.0.0.1" dyno=web.1 connect=0ms service=30000ms status=503 bytes=0 protocol=http"#
            ]],
        );
    }

    #[test]
    fn an_error_before_any_dyno() {
        let line = RouterLogLine {
            error: Some(DynoError::Crashed.into()),
            method: "POST".to_owned(),
            path: "/search?q=\"wharf\"".to_owned(),
            fwd: "10.0.0.1, 127.0.0.1".to_owned(),
            dyno: None,
            connect: None,
            service: None,
            status: 503,
            bytes: None,
            protocol: "https",
            ..served()
        };
        check(
            line,
            expect![[
                r#"at=error code=H10 desc="App crashed" method=POST path="/search?q=\"wharf\"" host=myapp.localhost request_id=8601b555-6a83-4c12-8269-97c8e32cdb22 fwd="10.0.0.1, 127.0.0.1" dyno= connect= service= status=503 bytes= protocol=https"#
            ]],
        );
    }

    #[test]
    fn client_and_socket_errors() {
        let interrupted = RouterLogLine {
            error: Some(ClientError::Interrupted.into()),
            status: 499,
            bytes: Some(0),
            ..served()
        };
        check(
            interrupted,
            expect![[
                r#"at=info code=H27 desc="Client Request Interrupted" method=GET path="/" host=myapp.localhost request_id=8601b555-6a83-4c12-8269-97c8e32cdb22 fwd="127.0.0.1" dyno=web.1 connect=0ms service=12ms status=499 bytes=0 protocol=http"#
            ]],
        );
        let server_interrupted = RouterLogLine {
            error: Some(DynoError::RequestInterrupted.into()),
            status: 503,
            bytes: Some(0),
            ..served()
        };
        check(
            server_interrupted,
            expect![[
                r#"sock=backend at=error code=H18 desc="Server Request Interrupted" method=GET path="/" host=myapp.localhost request_id=8601b555-6a83-4c12-8269-97c8e32cdb22 fwd="127.0.0.1" dyno=web.1 connect=0ms service=12ms status=503 bytes=0 protocol=http"#
            ]],
        );
    }

    #[test]
    fn a_bad_request() {
        let line = RouterLogLine {
            error: Some(ClientError::BadHost(crate::host::BadHost::Several).into()),
            dyno: None,
            connect: None,
            service: None,
            status: 400,
            bytes: None,
            ..served()
        };
        check(
            line,
            expect![[
                r#"at=error code=H26 desc="Request Error" cause="more than one Host header" method=GET path="/" host=myapp.localhost request_id=8601b555-6a83-4c12-8269-97c8e32cdb22 fwd="127.0.0.1" dyno= connect= service= status=400 bytes= protocol=http"#
            ]],
        );
    }

    #[test]
    fn quoting_escapes() {
        assert_eq!(Quoted(r#"a"b\c"#).to_string(), r#""a\"b\\c""#);
        assert_eq!(Quoted("").to_string(), r#""""#);
        assert_eq!(Quoted("é\"").to_string(), "\"é\\\"\"");
    }
}
