//! House rules a machine can check: the walls between crates, and the conventions every
//! source file keeps.
// A test that cannot go on fails by panicking.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// The names in a crate's `[dependencies]` table (not dev-dependencies).
fn dependencies(krate: &str) -> Vec<String> {
    let manifest =
        std::fs::read_to_string(workspace().join("crates").join(krate).join("Cargo.toml"))
            .expect("read manifest");
    let mut in_dependencies = false;
    let mut names = Vec::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_dependencies = line == "[dependencies]";
            continue;
        }
        if in_dependencies && !line.is_empty() && !line.starts_with('#') {
            let name = line.split(['=', '.']).next().expect("a key").trim();
            names.push(name.to_owned());
        }
    }
    names
}

fn check_walls(krate: &str, forbidden: &[&str]) {
    let deps = dependencies(krate);
    assert!(!deps.is_empty(), "{krate} has dependencies to read");
    for name in forbidden {
        assert!(
            !deps.iter().any(|d| d == name),
            "{krate} must not depend on {name}"
        );
    }
}

const SERVER_CRATES: &[&str] = &["wharf-store", "wharf-api", "wharf-model"];
const IO_CRATES: &[&str] = &["tokio", "sqlx", "axum", "hyper", "reqwest", "tracing"];

#[test]
fn the_model_does_no_io() {
    check_walls("model", IO_CRATES);
}

#[test]
fn the_cli_speaks_only_the_api() {
    check_walls("cli", SERVER_CRATES);
    assert!(dependencies("cli").iter().any(|d| d == "wharf-api-types"));
}

#[test]
fn the_router_never_calls_the_store() {
    check_walls("router", &["wharf-store", "wharf-api", "sqlx", "axum"]);
}

#[test]
fn agents_speak_only_the_api() {
    // An agent reaches the control plane over its API with its host's credential, never the
    // store, so a host holds no database credential; and the scheduler knows no container.
    check_walls("agent", &["wharf-store", "wharf-api", "sqlx", "axum"]);
    assert!(dependencies("agent").iter().any(|d| d == "wharf-api-types"));
    check_walls(
        "scheduler",
        &["wharf-dynos", "wharf-containers", "wharf-api", "axum"],
    );
}

#[test]
fn the_log_router_knows_nothing_of_its_writers() {
    check_walls(
        "logs",
        &[
            "wharf-store",
            "wharf-api",
            "wharf-dynos",
            "wharf-containers",
            "wharf-router",
            "sqlx",
            "axum",
        ],
    );
}

#[test]
fn the_metrics_history_and_the_dashboard_files_know_no_server_part() {
    // The history is written by the router and the log router and read by the API: it knows
    // none of them, so it can move to wherever the history is kept.
    check_walls(
        "metrics",
        &[
            SERVER_CRATES,
            &[
                "wharf-logs",
                "wharf-dynos",
                "wharf-router",
                "wharf-containers",
                "sqlx",
                "axum",
                "hyper",
            ],
        ]
        .concat(),
    );
    // The dashboard's files are data: the page reaches the server only through its API.
    check_walls("dashboard", &[SERVER_CRATES, IO_CRATES].concat());
}

#[test]
fn the_tenant_tree_code_and_the_outbound_policy_know_no_server_part() {
    // What touches tenants' trees as root is small and blocking, and reachable from every
    // part that needs it; so is the policy of where tenants' URLs may lead.
    check_walls(
        "tenant-fs",
        &[SERVER_CRATES, IO_CRATES, &["wharf-build", "wharf-dynos"]].concat(),
    );
    check_walls(
        "outbound",
        &[
            SERVER_CRATES,
            &[
                "sqlx",
                "axum",
                "hyper",
                "reqwest",
                "wharf-logs",
                "wharf-build",
            ],
        ]
        .concat(),
    );
}

#[test]
fn the_wire_types_stand_alone() {
    check_walls("api-types", &[SERVER_CRATES, IO_CRATES].concat());
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "target") {
                rust_files(&path, found);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn every_source_file_says_what_it_is_for_and_nothing_is_left_half_done() {
    let mut files = Vec::new();
    rust_files(&workspace().join("crates"), &mut files);
    assert!(files.len() > 20);
    let banned = [
        concat!("todo", "!("),
        concat!("unimplemented", "!("),
        concat!("#[", "ignore"),
        concat!("dbg", "!("),
    ];
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read source");
        assert!(
            text.starts_with("//!"),
            "{} must open with a `//!` line saying what it is for",
            file.display()
        );
        for needle in banned {
            assert!(
                !text.contains(needle),
                "{} contains {needle}",
                file.display()
            );
        }
    }
}

/// Crates whose code runs as root beside trees that tenants write: a build's `/app`, its cache
/// and buildpacks, extracted slugs, dynos' writable layers.
const TENANT_TREE_CRATES: &[&str] = &["build", "dynos", "containers", "disk"];

/// Path-based file calls: each follows links and walks `..` wherever the path leads.
const PATH_CALLS: &[&str] = &[
    "std::fs::",
    "tokio::fs::",
    "fs::read",
    "fs::write",
    "fs::copy",
    "fs::remove",
    "fs::create",
    "fs::rename",
    "fs::metadata",
    "fs::symlink_metadata",
    "fs::set_permissions",
    "fs::canonicalize",
    "fs::hard_link",
    "fs::symlink",
    "fs::lchown",
    "fs::chown",
    "File::open",
    "File::create",
    "File::options",
    "DirBuilder",
    ".is_file()",
    ".is_dir()",
    ".exists()",
    "Command::new(\"cp\")",
    "Command::new(\"chown\")",
    "Command::new(\"rm\")",
    "Command::new(\"mkfifo\")",
];

/// What a call on a path the server alone controls carries, on its line or within the three
/// lines above it: `// Server path: <why no tenant can write there>`.
const SERVER_PATH_MARK: &str = "Server path:";
/// What a file whose every path is the server's own says in its opening `//!` lines:
/// `//! Server paths only: <why no tenant can write there>`.
const SERVER_FILE_MARK: &str = "//! Server paths only:";

/// Root never follows a tenant's link: in the crates that handle tenants' trees, every
/// path-based file call outside `crates/tenant-fs` (which resolves paths beneath directory
/// handles without following links) is on a path the server alone writes, and says why.
#[test]
fn root_touches_tenant_trees_only_through_tenant_fs() {
    let mut offences = Vec::new();
    for krate in TENANT_TREE_CRATES {
        let mut files = Vec::new();
        rust_files(
            &workspace().join("crates").join(krate).join("src"),
            &mut files,
        );
        assert!(!files.is_empty(), "{krate} has sources");
        for file in files {
            let text = std::fs::read_to_string(&file).expect("read source");
            let lines: Vec<&str> = text.lines().collect();
            let header = lines.iter().take_while(|line| line.starts_with("//!"));
            if header
                .into_iter()
                .any(|line| line.starts_with(SERVER_FILE_MARK))
            {
                continue;
            }
            for (number, line) in lines.iter().enumerate() {
                // Unit tests build their own trees in temporary directories.
                if line.trim_start().starts_with("#[cfg(test)]") {
                    break;
                }
                let code = line
                    .split("//")
                    .next()
                    .unwrap_or("")
                    .replace("wharf_tenant_fs::", "");
                if !PATH_CALLS.iter().any(|call| code.contains(call)) {
                    continue;
                }
                let marked = lines[number.saturating_sub(3)..=number]
                    .iter()
                    .any(|l| l.contains(SERVER_PATH_MARK));
                if !marked {
                    let shown = file.strip_prefix(workspace()).unwrap_or(&file);
                    offences.push(format!(
                        "{}:{}: {}",
                        shown.display(),
                        number + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(
        offences.is_empty(),
        "path-based file calls where tenants control the tree: use wharf_tenant_fs::TreeDir, \
         or, for a path only the server writes, say so with `// {SERVER_PATH_MARK} <why>` on \
         the line or just above it (or `{SERVER_FILE_MARK} <why>` atop a file that touches \
         only such paths):\n{}",
        offences.join("\n")
    );
}
