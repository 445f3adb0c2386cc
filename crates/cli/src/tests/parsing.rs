//! The command line as clap sees it: names, aliases and arguments rejected before any
//! request is made.

use clap::error::ErrorKind;

use super::harness::parse;
use crate::command::Command;

#[test]
fn commands_have_heroku_names() {
    let check = |arguments: &[&str], expected: fn(&Command) -> bool| {
        let command = parse(arguments).unwrap_or_else(|error| panic!("{arguments:?}: {error}"));
        assert!(expected(&command), "{arguments:?} parsed as {command:?}");
    };
    check(&["login"], |c| matches!(c, Command::Login(_)));
    check(&["auth:whoami"], |c| matches!(c, Command::Whoami(_)));
    check(
        &["apps:create", "x", "--no-remote"],
        |c| matches!(c, Command::AppsCreate(a) if a.no_remote),
    );
    check(&["config:set", "A=1"], |c| {
        matches!(c, Command::ConfigSet(_))
    });
    check(&["ps:resize", "web=Basic"], |c| {
        matches!(c, Command::PsType(_))
    });
    check(
        &["ps:type"],
        |c| matches!(c, Command::PsType(a) if a.changes.is_empty()),
    );
    check(
        &["git:remote", "-a", "x", "-r", "prod"],
        |c| matches!(c, Command::GitRemote(a) if a.remote == "prod"),
    );
    check(
        &["git:remote", "-a", "x"],
        |c| matches!(c, Command::GitRemote(a) if a.remote == "wharf"),
    );
    check(
        &["releases"],
        |c| matches!(c, Command::Releases(a) if a.num == 15),
    );
    check(&["maintenance:on", "-a", "x"], |c| {
        matches!(c, Command::MaintenanceOn(_))
    });
}

#[test]
fn bad_arguments_are_usage_errors() {
    let check = |arguments: &[&str], kind: ErrorKind, mentions: &str| {
        let error = parse(arguments).expect_err("a usage error");
        assert_eq!(error.kind(), kind, "{arguments:?}: {error}");
        assert_eq!(error.exit_code(), 2);
        let text = error.to_string();
        assert!(text.contains(mentions), "{arguments:?}: {text}");
    };
    check(&["config:set", "A"], ErrorKind::ValueValidation, "FOO=bar");
    check(
        &["config:set"],
        ErrorKind::MissingRequiredArgument,
        "KEY=VALUE",
    );
    check(
        &["ps:scale", "garbage"],
        ErrorKind::ValueValidation,
        "garbage",
    );
    check(&["ps:type", "web="], ErrorKind::ValueValidation, "web=");
    check(&["releases", "-n", "0"], ErrorKind::ValueValidation, "0");
    check(
        &["config", "--shell", "--json"],
        ErrorKind::ArgumentConflict,
        "--json",
    );
    check(&["apps:nope"], ErrorKind::InvalidSubcommand, "apps:nope");
}
