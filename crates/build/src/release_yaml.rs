//! What a buildpack's `bin/release` prints: a small YAML document with `addons` (a list),
//! `config_vars` and `default_process_types` (maps of strings). Only that subset of YAML is
//! read: block maps and lists nested one level, flow `[]`/`{}` when empty, plain and quoted
//! scalars. Anything else is an error that names the line.

use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReleaseInfo {
    pub addons: Vec<String>,
    pub config_vars: BTreeMap<String, String>,
    pub default_process_types: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bin/release output line {line}: {message}")]
pub struct ReleaseYamlError {
    pub line: usize,
    pub message: String,
}

enum Section {
    None,
    Addons,
    ConfigVars,
    ProcessTypes,
    Ignored,
}

pub fn parse(text: &str) -> Result<ReleaseInfo, ReleaseYamlError> {
    let mut info = ReleaseInfo::default();
    let mut section = Section::None;
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let error = |message: &str| ReleaseYamlError {
            line,
            message: message.to_owned(),
        };
        let content = strip_comment(raw).trim_end();
        if content.trim().is_empty() || content.trim() == "---" || content.trim() == "..." {
            continue;
        }
        let indented = content.starts_with(' ') || content.starts_with('\t');
        if !indented {
            let (key, rest) = content
                .split_once(':')
                .ok_or_else(|| error("expected `key:` at the top level"))?;
            let rest = rest.trim();
            section = match key.trim() {
                "addons" => Section::Addons,
                "config_vars" => Section::ConfigVars,
                "default_process_types" => Section::ProcessTypes,
                _ => Section::Ignored,
            };
            match rest {
                "" | "[]" | "{}" | "~" | "null" => {}
                _ if matches!(section, Section::Ignored) => {}
                _ if matches!(section, Section::Addons) && rest.starts_with('[') => {
                    let inner = rest
                        .strip_prefix('[')
                        .and_then(|r| r.strip_suffix(']'))
                        .ok_or_else(|| error("unclosed `[`"))?;
                    for item in inner.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                        info.addons.push(scalar(item).map_err(|m| error(&m))?);
                    }
                }
                _ => return Err(error("expected a nested block under this key")),
            }
            continue;
        }
        let item = content.trim();
        match section {
            Section::None => return Err(error("indented line before any key")),
            Section::Ignored => {}
            Section::Addons => {
                let value = item
                    .strip_prefix('-')
                    .ok_or_else(|| error("expected `- addon` in addons"))?;
                info.addons
                    .push(scalar(value.trim()).map_err(|m| error(&m))?);
            }
            Section::ConfigVars | Section::ProcessTypes => {
                let (key, value) =
                    split_pair(item).ok_or_else(|| error("expected `key: value`"))?;
                let key = scalar(key).map_err(|m| error(&m))?;
                let value = scalar(value).map_err(|m| error(&m))?;
                let map = if matches!(section, Section::ConfigVars) {
                    &mut info.config_vars
                } else {
                    // The buildpack's process types become dynos as the Procfile's do.
                    crate::procfile::check_process(&key, &value).map_err(|m| error(&m))?;
                    &mut info.default_process_types
                };
                map.insert(key, value);
            }
        }
    }
    Ok(info)
}

/// Splits `key: value` at the first `:` followed by a space (or the end), so that commands
/// such as `gunicorn app:app` keep their colons; a quoted key is skipped over whole.
fn split_pair(item: &str) -> Option<(&str, &str)> {
    let start = match item.chars().next() {
        Some(quote @ ('"' | '\'')) => item[1..].find(quote).map(|end| end + 2)?,
        _ => 0,
    };
    let bytes = item.as_bytes();
    (start..bytes.len())
        .find(|&i| bytes[i] == b':' && (i + 1 == bytes.len() || bytes[i + 1] == b' '))
        .map(|i| (item[..i].trim(), item[i + 1..].trim()))
}

fn strip_comment(line: &str) -> &str {
    // A `#` starts a comment only at the start or after a space, outside quotes; inside
    // double quotes a backslash escapes the next character (`"a\" #"` is one scalar).
    let mut quote = None;
    let mut previous = ' ';
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (Some('"'), _) if escaped => escaped = false,
            (Some('"'), '\\') => escaped = true,
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '#') if previous == ' ' || previous == '\t' => return &line[..i],
            _ => {}
        }
        previous = c;
    }
    line
}

fn scalar(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    if let Some(inner) = raw.strip_prefix('"') {
        let inner = inner
            .strip_suffix('"')
            .ok_or_else(|| "unclosed double quote".to_owned())?;
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('"') => out.push('"'),
                    Some('\\') => out.push('\\'),
                    Some(other) => {
                        out.push('\\');
                        out.push(other);
                    }
                    None => return Err("a lone backslash ends the string".into()),
                }
            } else {
                out.push(c);
            }
        }
        return Ok(out);
    }
    if let Some(inner) = raw.strip_prefix('\'') {
        let inner = inner
            .strip_suffix('\'')
            .ok_or_else(|| "unclosed single quote".to_owned())?;
        return Ok(inner.replace("''", "'"));
    }
    Ok(raw.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn heroku_style_output() {
        let info = parse(
            "---\naddons:\n  - heroku-postgresql\nconfig_vars:\n  LANG: en_US.UTF-8\n  PATH: \"/app/bin:$PATH\"\ndefault_process_types:\n  web: gunicorn app:app --bind 0.0.0.0:$PORT # serves\n  worker: 'celery -A tasks worker'\n",
        )
        .unwrap();
        assert_eq!(info.addons, ["heroku-postgresql"]);
        assert_eq!(info.config_vars["PATH"], "/app/bin:$PATH");
        assert_eq!(
            info.default_process_types["web"],
            "gunicorn app:app --bind 0.0.0.0:$PORT"
        );
        assert_eq!(
            info.default_process_types["worker"],
            "celery -A tasks worker"
        );
    }

    /// Found by fuzzing: an escaped quote inside double quotes does not end the scalar, so a
    /// `#` after it is part of the value, not a comment.
    #[test]
    fn escaped_quotes_keep_a_hash_inside_the_scalar() {
        let info =
            parse("addons:\n  - \"T\\\" #\"\nconfig_vars:\n  A: \"x\\\\\" # comment\n").unwrap();
        assert_eq!(info.addons, ["T\" #"]);
        assert_eq!(info.config_vars["A"], "x\\");
    }

    #[test]
    fn empty_and_flow_forms() {
        assert_eq!(parse("").unwrap(), ReleaseInfo::default());
        assert_eq!(
            parse("--- {}\n").map(|_| ()),
            Err(ReleaseYamlError {
                line: 1,
                message: "expected `key:` at the top level".into()
            })
        );
        let info = parse("---\naddons: []\ndefault_process_types: {}\n").unwrap();
        assert_eq!(info, ReleaseInfo::default());
        let info = parse("addons: [heroku-redis, \"heroku-postgresql:mini\"]\n").unwrap();
        assert_eq!(info.addons, ["heroku-redis", "heroku-postgresql:mini"]);
    }

    #[test]
    fn unknown_keys_are_skipped_and_errors_name_the_line() {
        let info =
            parse("stack: heroku-24\nother:\n  nested: 1\ndefault_process_types:\n  web: run\n")
                .unwrap();
        assert_eq!(info.default_process_types["web"], "run");
        let err = parse("default_process_types:\n  web: run\n  broken\n").unwrap_err();
        assert_eq!(err.line, 3);
        let err = parse("default_process_types:\n  web: \"unclosed\n").unwrap_err();
        assert_eq!(err.line, 2);
    }

    #[test]
    fn process_types_follow_the_procfiles_rules() {
        // Found by fuzzing: any quoted key became a process type, and so a dyno's name.
        for (text, line) in [
            ("default_process_types:\n  web: run\n  \"../x\": run\n", 3),
            ("default_process_types:\n  \"w\\u0000b\": run\n", 2),
            ("default_process_types:\n  web: \"run\\u0000 evil\"\n", 2),
        ] {
            let text = text.replace("\\u0000", "\0");
            let err = parse(&text).unwrap_err();
            assert_eq!(err.line, line, "{text:?}: {err}");
        }
        // Config vars' names are the buildpack's business: Wharf does not use them.
        assert!(parse("config_vars:\n  \"odd name\": 1\n").is_ok());
    }

    proptest! {
        #[test]
        fn garbage_never_panics(text in "\\PC{0,300}") {
            let _ = parse(&text);
        }

        #[test]
        fn process_types_round_trip(
            types in proptest::collection::btree_map("[a-z][a-z0-9_]{0,8}", "[a-z][a-z0-9 :$./=-]{0,30}[a-z0-9]", 0..5)
        ) {
            let mut text = String::from("---\ndefault_process_types:\n");
            for (k, v) in &types {
                text.push_str(&format!("  {k}: {v}\n"));
            }
            let info = parse(&text).unwrap();
            prop_assert_eq!(info.default_process_types, types);
        }
    }
}
