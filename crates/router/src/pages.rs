//! The small HTML pages the router answers with itself: no such app, an application error,
//! and maintenance mode.

use crate::error::{DynoError, RouterError};

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

/// The page a client gets for `error`.
pub fn error_page(error: RouterError) -> &'static str {
    match error {
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
    }
}
