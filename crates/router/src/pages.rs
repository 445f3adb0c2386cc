//! The small HTML pages the router answers with itself: no such app, an application error,
//! maintenance mode, and a bad request.

use crate::error::{ClientError, DynoError, RouterError};

macro_rules! page {
    ($title:literal, $lead:literal, $detail:literal) => {
        concat!(
            "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>",
            $title,
            "</title>\n<style>body{font-family:sans-serif;margin:4em auto;max-width:36em;color:#333}</style>\n</head>\n<body>\n<h1>",
            $title,
            "</h1>\n<p>",
            $lead,
            "</p>\n<p>",
            $detail,
            "</p>\n</body>\n</html>\n"
        )
    };
}

/// The page for a host no app answers to.
pub const NO_SUCH_APP: &str = page!(
    "No such app",
    "There is no app configured at that hostname.",
    "Perhaps the app owner has renamed it, or you mistyped the URL."
);

const APPLICATION_ERROR: &str = page!(
    "Application error",
    "An error occurred in the application and your page could not be served.",
    "If you are the application owner, check your logs for details: wharf logs --tail"
);

const MAINTENANCE: &str = page!(
    "Offline for maintenance",
    "This app is undergoing maintenance right now.",
    "Please check back later."
);

const BAD_REQUEST: &str = page!(
    "Bad request",
    "The request named its host more than once, not at all, or two different ways.",
    "Send one Host header that agrees with the request target."
);

/// The page a client gets for `error`.
pub fn error_page(error: RouterError) -> &'static str {
    match error {
        RouterError::Client(ClientError::BadHost(_)) => BAD_REQUEST,
        RouterError::Dyno(DynoError::Maintenance) => MAINTENANCE,
        _ => APPLICATION_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::PlatformError;

    #[test]
    fn pages_say_what_happened() {
        assert!(NO_SUCH_APP.contains("<title>No such app</title>"));
        assert!(error_page(DynoError::Maintenance.into()).contains("maintenance"));
        assert!(error_page(DynoError::Crashed.into()).contains("Application error"));
        assert!(error_page(PlatformError::Internal.into()).contains("Application error"));
        let bad = ClientError::BadHost(crate::host::BadHost::Mismatch);
        assert!(error_page(bad.into()).contains("<title>Bad request</title>"));
    }
}
