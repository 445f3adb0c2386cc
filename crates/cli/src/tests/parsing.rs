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
    check(
        &["deploy"],
        |c| matches!(c, Command::Deploy(a) if a.directory == std::path::Path::new(".")),
    );
    check(
        &["deploy", "site", "-a", "x"],
        |c| matches!(c, Command::Deploy(a) if a.directory == std::path::Path::new("site")),
    );
    check(
        &["builds"],
        |c| matches!(c, Command::Builds(a) if a.num == 15),
    );
    check(
        &["builds:cache:purge", "--confirm", "x"],
        |c| matches!(c, Command::BuildsCachePurge(a) if a.confirm.as_deref() == Some("x")),
    );
    check(
        &["buildpacks:add", "python", "--index", "2"],
        |c| matches!(c, Command::BuildpacksAdd(a) if a.index == Some(2)),
    );
    check(
        &["buildpacks:set", "python"],
        |c| matches!(c, Command::BuildpacksSet(a) if a.index == 1),
    );
    check(
        &["buildpacks:remove", "-i", "1"],
        |c| matches!(c, Command::BuildpacksRemove(a) if a.url.is_none() && a.index == Some(1)),
    );
    check(
        &["ps", "web", "worker", "--json"],
        |c| matches!(c, Command::Ps(a) if a.types == ["web", "worker"] && a.json),
    );
    check(
        &["restart", "web.1"],
        |c| matches!(c, Command::PsRestart(a) if a.target.name.as_deref() == Some("web.1")),
    );
    check(
        &["ps:restart", "-p", "web"],
        |c| matches!(c, Command::PsRestart(a) if a.target.process_type.as_deref() == Some("web")),
    );
    check(
        &["ps:restart"],
        |c| matches!(c, Command::PsRestart(a) if a.target.name.is_none()),
    );
    check(
        &["ps:kill", "--dyno-name", "web.2"],
        |c| matches!(c, Command::PsStop(a) if a.target.dyno_name.as_deref() == Some("web.2")),
    );
    check(
        &["logs"],
        |c| matches!(c, Command::Logs(a) if a.num == 100 && !a.tail && a.source.is_none()),
    );
    check(
        &["logs", "-t", "-n", "5", "-s", "heroku", "-d", "web.1"],
        |c| {
            matches!(c, Command::Logs(a) if a.tail && a.num == 5
            && a.source.as_deref() == Some("heroku") && a.dyno_name.as_deref() == Some("web.1"))
        },
    );
    check(
        &["git:credentials", "get"],
        |c| matches!(c, Command::GitCredentials(a) if a.action == "get"),
    );
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
    check(
        &["buildpacks:remove"],
        ErrorKind::MissingRequiredArgument,
        "URL",
    );
    check(
        &["buildpacks:remove", "python", "-i", "1"],
        ErrorKind::ArgumentConflict,
        "--index",
    );
    check(
        &["buildpacks:add", "x", "-i", "0"],
        ErrorKind::ValueValidation,
        "0",
    );
    check(
        &["buildpacks:add"],
        ErrorKind::MissingRequiredArgument,
        "URL",
    );
    check(
        &["ps:stop"],
        ErrorKind::MissingRequiredArgument,
        "DYNO_OR_TYPE",
    );
    check(
        &["ps:stop", "web", "-p", "worker"],
        ErrorKind::ArgumentConflict,
        "--process-type",
    );
    check(
        &["ps:restart", "-p", "web", "-d", "web.1"],
        ErrorKind::ArgumentConflict,
        "--dyno-name",
    );
    check(&["ps:restart", ""], ErrorKind::InvalidValue, "DYNO_OR_TYPE");
    check(
        &["logs", "-p", "web", "-d", "web.1"],
        ErrorKind::ArgumentConflict,
        "--dyno-name",
    );
    check(&["logs", "-s", "router"], ErrorKind::InvalidValue, "router");
    check(&["logs", "-n", "many"], ErrorKind::ValueValidation, "many");
}
