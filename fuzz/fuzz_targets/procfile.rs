//! Fuzzes the Procfile parser (`wharf_build::procfile::parse`) with a tenant's file as bytes,
//! read as UTF-8 lossily (as the build reads it) and, when valid, as the exact text.
//!
//! Invariants: every process type it accepts is a valid name with a trimmed, non-empty,
//! one-line command without NUL; rendering what it accepted as `name: command` lines and parsing that gives
//! the same types; an error names a line that exists.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wharf_build::procfile::parse;
use wharf_model::ProcessType;

fuzz_target!(|data: &[u8]| {
    let lossy = String::from_utf8_lossy(data);
    check(&lossy);
});

fn check(text: &str) {
    match parse(text) {
        Ok(types) => {
            let mut rendered = String::new();
            for (name, command) in &types {
                assert!(ProcessType::parse(name).is_ok(), "invalid name {name:?}");
                assert!(!command.is_empty(), "{name} has an empty command");
                assert_eq!(command.trim(), command, "{name}'s command is not trimmed");
                assert!(!command.contains('\n'), "{name}'s command spans lines");
                assert!(!command.contains('\0'), "{name}'s command has a NUL");
                rendered.push_str(&format!("{name}: {command}\n"));
            }
            assert!(types.len() <= text.lines().count());
            assert_eq!(parse(&rendered), Ok(types), "rendered {rendered:?}");
        }
        Err(error) => {
            assert!(
                (1..=text.lines().count()).contains(&error.line),
                "line {} of {} lines",
                error.line,
                text.lines().count()
            );
            assert!(!error.message.is_empty());
        }
    }
}
