//! `.slugignore`: `.gitignore`-style patterns for files to leave out of the slug (tests,
//! docs, sources of large assets). Blank lines and `#` comments are skipped; `!` re-includes;
//! a trailing `/` matches directories only; a pattern with a `/` elsewhere is anchored at the
//! app's root, otherwise it matches a name at any depth; `*` and `?` stay within one path
//! segment and `**` crosses segments. The last matching pattern wins.
//!
//! One crate, so that `wharf deploy` leaves out exactly what the slug compiler would.

/// The file, at the app's root, that holds the rules.
pub const FILE_NAME: &str = ".slugignore";

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    glob: String,
    negated: bool,
    directory_only: bool,
    anchored: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlugIgnore {
    patterns: Vec<Pattern>,
}

impl SlugIgnore {
    pub fn parse(text: &str) -> SlugIgnore {
        let patterns = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(|line| {
                let (negated, line) = match line.strip_prefix('!') {
                    Some(rest) => (true, rest),
                    None => (false, line),
                };
                let (directory_only, line) = match line.strip_suffix('/') {
                    Some(rest) => (true, rest),
                    None => (false, line),
                };
                let anchored = line.contains('/');
                Pattern {
                    glob: line.trim_start_matches('/').to_owned(),
                    negated,
                    directory_only,
                    anchored,
                }
            })
            .filter(|p| !p.glob.is_empty())
            .collect();
        SlugIgnore { patterns }
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether `path` (relative to the app's root, `/`-separated) is left out. A path under an
    /// ignored directory is left out too.
    pub fn is_ignored(&self, path: &str, is_dir: bool) -> bool {
        let path = path.trim_matches('/');
        // Check each ancestor directory first: an ignored directory hides all it holds.
        let ancestor_ignored = path
            .char_indices()
            .filter(|(_, c)| *c == '/')
            .any(|(i, _)| self.matches(&path[..i], true));
        ancestor_ignored || self.matches(path, is_dir)
    }

    fn matches(&self, path: &str, is_dir: bool) -> bool {
        let name = path.rsplit('/').next().unwrap_or(path);
        let mut ignored = false;
        for pattern in &self.patterns {
            if pattern.directory_only && !is_dir {
                continue;
            }
            let subject = if pattern.anchored { path } else { name };
            if glob(pattern.glob.as_bytes(), subject.as_bytes()) {
                ignored = !pattern.negated;
            }
        }
        ignored
    }
}

/// One element of a glob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Byte(u8),
    /// `?`: one byte other than `/`.
    Any,
    /// `*`: any bytes other than `/`.
    Star,
    /// `**` (and a `/` right after it): any bytes.
    AnyDepth,
}

/// The pattern's tokens, each run of stars as one (`**` then `*` matches what `**` does).
fn tokens(pattern: &[u8]) -> Vec<Token> {
    let mut tokens: Vec<Token> = Vec::with_capacity(pattern.len());
    let mut rest = pattern;
    while let Some((&first, after)) = rest.split_first() {
        rest = after;
        let token = match first {
            b'*' if rest.first() == Some(&b'*') => {
                rest = &rest[1..];
                rest = rest.strip_prefix(b"/").unwrap_or(rest);
                Token::AnyDepth
            }
            b'*' => Token::Star,
            b'?' => Token::Any,
            byte => Token::Byte(byte),
        };
        match (tokens.last_mut(), token) {
            (Some(last @ (Token::Star | Token::AnyDepth)), Token::Star | Token::AnyDepth) => {
                if token == Token::AnyDepth {
                    *last = Token::AnyDepth;
                }
            }
            _ => tokens.push(token),
        }
    }
    tokens
}

/// Glob matching where `*` and `?` do not cross `/` and `**` does.
///
/// Hazard: the pattern and the path are both the tenant's. Trying each way to share the text
/// among the stars takes exponential time (a line of 20 `*` and an `x` against a name of 30
/// `a`s took 3 s, and each two more stars about twenty times as long), so this works from the
/// pattern's end, one row over the text per token: time proportional to their two lengths
/// multiplied, and at most about the text's length squared.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let n = text.len();
    // `next[j]`: the tokens after the current one match `text[j..]`.
    let mut next = vec![false; n + 1];
    next[n] = true;
    let mut row = vec![false; n + 1];
    for token in tokens(pattern).into_iter().rev() {
        for j in (0..=n).rev() {
            let here = text.get(j).copied();
            row[j] = match token {
                Token::Byte(byte) => here == Some(byte) && next[j + 1],
                Token::Any => here.is_some_and(|c| c != b'/') && next[j + 1],
                Token::Star => next[j] || (here.is_some_and(|c| c != b'/') && row[j + 1]),
                Token::AnyDepth => next[j] || (here.is_some() && row[j + 1]),
            };
        }
        std::mem::swap(&mut row, &mut next);
        // Nothing after here matches anywhere, so nothing before can: stop (a pattern longer
        // than the text gives up after about twice the text's length in tokens).
        if !next.contains(&true) {
            return false;
        }
    }
    next[0]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check(patterns: &str, path: &str, is_dir: bool, expected: bool) {
        assert_eq!(
            SlugIgnore::parse(patterns).is_ignored(path, is_dir),
            expected,
            "{patterns:?} {path:?}"
        );
    }

    #[test]
    fn gitignore_rules() {
        check("*.psd", "art/logo.psd", false, true);
        check("*.psd", "logo.psd", false, true);
        check("*.psd", "logo.png", false, false);
        check("/docs", "docs", true, true);
        check("/docs", "docs/index.md", false, true);
        check("/docs", "app/docs", true, false);
        check("docs", "app/docs/readme", false, true);
        check("tmp/", "tmp", true, true);
        check("tmp/", "tmp", false, false);
        check("spec/**/*.rb", "spec/models/user_spec.rb", false, true);
        check("spec/**/*.rb", "spec/a.rb", false, true);
        check("spec/**/*.rb", "lib/a.rb", false, false);
        check("*.log\n!keep.log", "keep.log", false, false);
        check("*.log\n!keep.log", "drop.log", false, true);
        check("# comment\n\n", "anything", false, false);
        check("a?c", "abc", false, true);
        check("a?c", "a/c", false, false);
        check("lib/*.o", "lib/x/y.o", false, false);
    }

    #[test]
    fn many_wildcards_against_long_names_finish() {
        // Found by fuzzing: a matcher that tries every way to share a name among the stars
        // took seconds for twenty `*` against 30 bytes; these would never finish.
        let stars = SlugIgnore::parse(&format!("{}x", "*".repeat(60)));
        assert!(!stars.is_ignored(&"a".repeat(255), false));
        let alternating = SlugIgnore::parse(&format!("{}b", "*a".repeat(40)));
        let name = "a".repeat(255);
        assert!(!alternating.is_ignored(&name, false));
        assert!(alternating.is_ignored(&format!("{name}b"), false));
        let depths = SlugIgnore::parse(&format!("/{}**b", "**a".repeat(40)));
        let path = "a/".repeat(120);
        assert!(!depths.is_ignored(&path, false));
        assert!(depths.is_ignored(&format!("{path}b"), false));
    }

    proptest! {
        #[test]
        fn a_literal_name_matches_itself_anywhere(dir in "[a-z]{1,5}", name in "[a-z]{1,8}\\.[a-z]{1,3}") {
            let rules = SlugIgnore::parse(&name);
            let in_root = rules.is_ignored(&name, false);
            let nested = rules.is_ignored(&format!("{dir}/{name}"), false);
            prop_assert!(in_root);
            prop_assert!(nested);
        }

        #[test]
        fn garbage_never_panics(patterns in "\\PC{0,60}", path in "[a-z/.*?]{0,30}") {
            let _ = SlugIgnore::parse(&patterns).is_ignored(&path, false);
        }
    }
}
