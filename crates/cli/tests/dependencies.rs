//! The client speaks the HTTP API only: of Wharf's crates it may depend on `wharf-api-types`
//! and nothing else (never the server's crates).

const ALLOWED: &[&str] = &["wharf-api-types"];

/// Wharf crate names in the dependency tables of a Cargo manifest.
fn wharf_dependencies(manifest: &str) -> Vec<String> {
    let mut in_dependencies = false;
    let mut found = Vec::new();
    for line in manifest.lines().map(str::trim) {
        if let Some(header) = line.strip_prefix('[') {
            let header = header.trim_end_matches(']');
            in_dependencies = header.contains("dependencies");
            // `[dependencies.wharf-api]` names the dependency in the header.
            if let Some((_, name)) = header.split_once("dependencies.") {
                found.push(name.trim_matches('"').to_string());
            }
            continue;
        }
        if !in_dependencies {
            continue;
        }
        let name = line
            .split(['=', '.'])
            .next()
            .unwrap_or_default()
            .trim()
            .trim_matches('"');
        let package = line
            .split_once("package")
            .and_then(|(_, rest)| rest.split('"').nth(1));
        found.extend(name.starts_with("wharf").then(|| name.to_string()));
        found.extend(
            package
                .filter(|p| p.starts_with("wharf"))
                .map(str::to_string),
        );
    }
    found.retain(|name| name.starts_with("wharf"));
    found
}

#[test]
fn only_the_api_types_crate() {
    let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .expect("read the crate's Cargo.toml");
    let forbidden: Vec<String> = wharf_dependencies(&manifest)
        .into_iter()
        .filter(|name| !ALLOWED.contains(&name.as_str()))
        .collect();
    assert!(
        forbidden.is_empty(),
        "wharf-cli must not depend on {forbidden:?}"
    );
}

#[test]
fn the_manifest_scan_sees_every_form() {
    let check = |manifest: &str, expected: &[&str]| {
        assert_eq!(wharf_dependencies(manifest), expected, "{manifest}");
    };
    check(
        "[package]\nname = \"wharf-cli\"\n[dependencies]\nwharf-api-types.workspace = true\nanyhow = \"1\"\n",
        &["wharf-api-types"],
    );
    check(
        "[dev-dependencies]\nwharf-store = { path = \"../store\" }\n",
        &["wharf-store"],
    );
    check(
        "[dependencies.wharf-api]\npath = \"../api\"\n",
        &["wharf-api"],
    );
    check(
        "[dependencies]\nstore = { package = \"wharf-store\", path = \"x\" }\n",
        &["wharf-store"],
    );
    check("[dependencies]\nserde = \"1\"\n", &[]);
}
