//! Why a request failed, in Heroku's terms. Each error records who failed (the client, the app
//! and its dynos, or the platform); that picks the Heroku code, the status the client gets, how
//! the router line reports it, and whether the request may be tried on another dyno.

use hyper::StatusCode;

use crate::host::BadHost;

/// Who failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Client,
    /// The app: its dynos, or its state (crashed, scaled to zero, in maintenance).
    Dyno,
    Platform,
}

/// A request the router could not complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RouterError {
    #[error("client: {0}")]
    Client(#[from] ClientError),
    #[error("dyno: {0}")]
    Dyno(#[from] DynoError),
    #[error("platform: {0}")]
    Platform(#[from] PlatformError),
}

/// The client went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// H27: the client went away before the response.
    #[error("Client Request Interrupted")]
    Interrupted,
    /// H28: the client sent nothing of its request body for the idle limit.
    #[error("Client Connection Idle")]
    Idle,
    /// H26: the request names its host more than once, not at all, or two different ways;
    /// answered with 400 before any dyno is chosen. Heroku logs requests its router refuses as
    /// malformed as H26 "Request Error" with a `cause`, and the app's owner should see why
    /// clients were turned away, so these get a line too (in the log of the app the request
    /// target names, if any).
    #[error("Request Error")]
    BadHost(BadHost),
}

/// The app or one of its dynos went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DynoError {
    /// H10: every web dyno is crashed.
    #[error("App crashed")]
    Crashed,
    /// H12: no response headers within the request timeout.
    #[error("Request timeout")]
    RequestTimeout,
    /// H13: the dyno closed the connection without a response.
    #[error("Connection closed without response")]
    ClosedWithoutResponse,
    /// H14: the formation has no web dynos.
    #[error("No web processes running")]
    NoWebDynos,
    /// H15: a streaming response sent nothing for the idle limit.
    #[error("Idle connection")]
    IdleConnection,
    /// H18: the dyno closed the connection while the request body was being sent.
    #[error("Server Request Interrupted")]
    RequestInterrupted,
    /// H19: no connection to the dyno within the connect timeout.
    #[error("Backend connection timeout")]
    ConnectTimeout,
    /// H20: a request held for a booting (or waking) app saw no web dyno come up in time.
    #[error("App boot timeout")]
    BootTimeout,
    /// H21: the dyno refused the connection.
    #[error("Backend connection refused")]
    ConnectRefused,
    /// H80: the app is in maintenance mode.
    #[error("Maintenance mode")]
    Maintenance,
}

/// The router itself went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PlatformError {
    /// H99.
    #[error("Platform error")]
    Internal,
}

/// How a router line reports an error (`at=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warning,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }
}

/// 499 (nginx's "client closed request", as Heroku reports H27).
pub const CLIENT_CLOSED_REQUEST: u16 = 499;

impl RouterError {
    pub fn fault(self) -> Fault {
        match self {
            RouterError::Client(_) => Fault::Client,
            RouterError::Dyno(_) => Fault::Dyno,
            RouterError::Platform(_) => Fault::Platform,
        }
    }

    /// Heroku's code, `H12`.
    pub fn code(self) -> &'static str {
        match self {
            RouterError::Client(ClientError::Interrupted) => "H27",
            RouterError::Client(ClientError::Idle) => "H28",
            RouterError::Client(ClientError::BadHost(_)) => "H26",
            RouterError::Dyno(DynoError::Crashed) => "H10",
            RouterError::Dyno(DynoError::RequestTimeout) => "H12",
            RouterError::Dyno(DynoError::ClosedWithoutResponse) => "H13",
            RouterError::Dyno(DynoError::NoWebDynos) => "H14",
            RouterError::Dyno(DynoError::IdleConnection) => "H15",
            RouterError::Dyno(DynoError::RequestInterrupted) => "H18",
            RouterError::Dyno(DynoError::ConnectTimeout) => "H19",
            RouterError::Dyno(DynoError::BootTimeout) => "H20",
            RouterError::Dyno(DynoError::ConnectRefused) => "H21",
            RouterError::Dyno(DynoError::Maintenance) => "H80",
            RouterError::Platform(PlatformError::Internal) => "H99",
        }
    }

    /// Heroku's description, `Request timeout`.
    pub fn desc(self) -> String {
        match self {
            RouterError::Client(e) => e.to_string(),
            RouterError::Dyno(e) => e.to_string(),
            RouterError::Platform(e) => e.to_string(),
        }
    }

    /// What exactly was wrong, for the errors Heroku gives a `cause` (H26).
    pub fn cause(self) -> Option<&'static str> {
        match self {
            RouterError::Client(ClientError::BadHost(bad)) => Some(bad.as_str()),
            _ => None,
        }
    }

    /// The status the client gets (and the router line shows): 400 for a malformed request,
    /// 499 when the client went away or idle, else 503.
    pub fn status(self) -> StatusCode {
        match self {
            RouterError::Client(ClientError::BadHost(_)) => StatusCode::BAD_REQUEST,
            _ => match self.fault() {
                Fault::Client => StatusCode::from_u16(CLIENT_CLOSED_REQUEST)
                    .expect("499 is within the valid status range"),
                Fault::Dyno | Fault::Platform => StatusCode::SERVICE_UNAVAILABLE,
            },
        }
    }

    pub fn level(self) -> Level {
        match self {
            RouterError::Client(ClientError::Interrupted)
            | RouterError::Dyno(DynoError::Maintenance) => Level::Info,
            RouterError::Client(ClientError::Idle) => Level::Warning,
            _ => Level::Error,
        }
    }

    /// Which socket Heroku names in the line (`sock=backend`), for the errors it names one.
    pub fn sock(self) -> Option<&'static str> {
        match self {
            RouterError::Dyno(DynoError::RequestInterrupted) => Some("backend"),
            RouterError::Client(ClientError::Idle) => Some("client"),
            _ => None,
        }
    }

    /// May the request be sent to another dyno? Only when nothing of it was sent: the dyno
    /// refused or never accepted the connection.
    pub fn retryable(self) -> bool {
        matches!(
            self,
            RouterError::Dyno(DynoError::ConnectRefused | DynoError::ConnectTimeout)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping() {
        let all = [
            RouterError::Client(ClientError::Interrupted),
            RouterError::Client(ClientError::Idle),
            RouterError::Client(ClientError::BadHost(BadHost::Several)),
            RouterError::Client(ClientError::BadHost(BadHost::Mismatch)),
            RouterError::Dyno(DynoError::Crashed),
            RouterError::Dyno(DynoError::RequestTimeout),
            RouterError::Dyno(DynoError::ClosedWithoutResponse),
            RouterError::Dyno(DynoError::NoWebDynos),
            RouterError::Dyno(DynoError::IdleConnection),
            RouterError::Dyno(DynoError::RequestInterrupted),
            RouterError::Dyno(DynoError::ConnectTimeout),
            RouterError::Dyno(DynoError::BootTimeout),
            RouterError::Dyno(DynoError::ConnectRefused),
            RouterError::Dyno(DynoError::Maintenance),
            RouterError::Platform(PlatformError::Internal),
        ];
        let table: String = all
            .iter()
            .map(|e| {
                format!(
                    "{} {:?} {} at={} retry={} sock={} desc={:?} cause={}\n",
                    e.code(),
                    e.fault(),
                    e.status().as_u16(),
                    e.level().as_str(),
                    e.retryable(),
                    e.sock().unwrap_or("-"),
                    e.desc(),
                    e.cause()
                        .map_or("-".to_owned(), |cause| format!("{cause:?}")),
                )
            })
            .collect();
        expect_test::expect![[r#"
            H27 Client 499 at=info retry=false sock=- desc="Client Request Interrupted" cause=-
            H28 Client 499 at=warning retry=false sock=client desc="Client Connection Idle" cause=-
            H26 Client 400 at=error retry=false sock=- desc="Request Error" cause="more than one Host header"
            H26 Client 400 at=error retry=false sock=- desc="Request Error" cause="Host header differs from the request target"
            H10 Dyno 503 at=error retry=false sock=- desc="App crashed" cause=-
            H12 Dyno 503 at=error retry=false sock=- desc="Request timeout" cause=-
            H13 Dyno 503 at=error retry=false sock=- desc="Connection closed without response" cause=-
            H14 Dyno 503 at=error retry=false sock=- desc="No web processes running" cause=-
            H15 Dyno 503 at=error retry=false sock=- desc="Idle connection" cause=-
            H18 Dyno 503 at=error retry=false sock=backend desc="Server Request Interrupted" cause=-
            H19 Dyno 503 at=error retry=true sock=- desc="Backend connection timeout" cause=-
            H20 Dyno 503 at=error retry=false sock=- desc="App boot timeout" cause=-
            H21 Dyno 503 at=error retry=true sock=- desc="Backend connection refused" cause=-
            H80 Dyno 503 at=info retry=false sock=- desc="Maintenance mode" cause=-
            H99 Platform 503 at=error retry=false sock=- desc="Platform error" cause=-
        "#]]
        .assert_eq(&table);
    }
}
