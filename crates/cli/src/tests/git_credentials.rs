//! `git:credentials`: the answer git gets, with the key from the environment or netrc.

use super::harness::{home, settings};
use crate::commands::git_credentials::respond;

const REQUEST: &str = "protocol=http\nhost=127.0.0.1:5000\n";

#[test]
fn the_api_key_answers_for_the_api_host() {
    let settings = settings("http://127.0.0.1:5000");
    assert_eq!(
        respond("get", REQUEST, &settings).as_deref(),
        Some("username=wharf\npassword=test-key\n")
    );
    assert_eq!(respond("store", REQUEST, &settings), None);
    assert_eq!(
        respond("get", "protocol=https\nhost=github.com\n", &settings),
        None
    );
}

#[test]
fn the_key_in_netrc_answers_too() {
    let (_directory, home) = home();
    std::fs::write(
        home.join(".netrc"),
        "machine 127.0.0.1:5000\n  login me@example.com\n  password NETRC-KEY\n",
    )
    .expect("write netrc");
    let mut settings = settings("http://127.0.0.1:5000");
    settings.api_key = None;
    settings.home = Some(home);
    assert_eq!(
        respond("get", REQUEST, &settings).as_deref(),
        Some("username=wharf\npassword=NETRC-KEY\n")
    );
    // Logged in elsewhere only: no answer, and git asks the user.
    settings.api_url = "http://127.0.0.1:5001".to_string();
    assert_eq!(
        respond("get", "protocol=http\nhost=127.0.0.1:5001\n", &settings),
        None
    );
}
