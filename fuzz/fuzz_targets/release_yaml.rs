//! Fuzzes the reader of a buildpack's `bin/release` output (`wharf_build::release_yaml::parse`),
//! a small subset of YAML, with arbitrary bytes read as UTF-8 lossily.
//!
//! Invariants: an error names a line that exists; the process types it accepts follow the
//! Procfile's rules (a valid name, a non-empty command without NUL); what it accepts, written
//! back as YAML of the subset it documents (block lists and maps, double-quoted scalars with
//! `\\`, `\"`, `\n` and `\t` escapes), parses to the same addons, config vars and process
//! types.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use wharf_build::release_yaml::{parse, ReleaseInfo};
use wharf_model::ProcessType;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match parse(&text) {
        Ok(info) => {
            let entries =
                info.addons.len() + info.config_vars.len() + info.default_process_types.len();
            // One entry per line, or per item of a flow list (`addons: [a, b]`).
            assert!(entries <= text.lines().count() + text.matches(',').count());
            for (name, command) in &info.default_process_types {
                assert!(ProcessType::parse(name).is_ok(), "process type {name:?}");
                assert!(
                    !command.is_empty() && !command.contains('\0'),
                    "{command:?}"
                );
            }
            let rendered = render(&info);
            assert_eq!(
                parse(&rendered).as_ref(),
                Ok(&info),
                "rendered {rendered:?}"
            );
        }
        Err(error) => {
            let lines = text.lines().count();
            assert!(
                (1..=lines).contains(&error.line),
                "line {} of {lines}",
                error.line
            );
            assert!(!error.message.is_empty());
        }
    }
});

/// `info` as YAML, every scalar double-quoted.
fn render(info: &ReleaseInfo) -> String {
    let mut out = String::from("---\naddons:\n");
    for addon in &info.addons {
        out.push_str(&format!("  - {}\n", quoted(addon)));
    }
    map(&mut out, "config_vars", &info.config_vars);
    map(
        &mut out,
        "default_process_types",
        &info.default_process_types,
    );
    out
}

fn map(out: &mut String, key: &str, map: &BTreeMap<String, String>) {
    out.push_str(key);
    out.push_str(":\n");
    for (key, value) in map {
        out.push_str(&format!("  {}: {}\n", quoted(key), quoted(value)));
    }
}

fn quoted(scalar: &str) -> String {
    let mut out = String::from("\"");
    for c in scalar.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
