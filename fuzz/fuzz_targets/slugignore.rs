//! Fuzzes `.slugignore` (`wharf_slugignore::SlugIgnore`): a tenant's rules, parsed, then asked
//! about paths given by the fuzzer and paths made from the rules themselves (so that they
//! match often).
//!
//! Invariants, for every path: what an ignored directory holds is ignored; leading and
//! trailing slashes change nothing; an anchored literal rule appended for the path ignores it,
//! and a negated one keeps it unless a directory above it is ignored; the answer is the one a
//! reference matcher (dynamic programming over the same documented rules) gives; and every
//! answer comes in bounded time (libFuzzer's `-timeout`, set by `scripts/fuzz`).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use wharf_slugignore::SlugIgnore;

/// At most this many paths are asked about per input, so that one input stays quick.
const MAX_PATHS: usize = 12;

#[derive(Debug, Arbitrary)]
struct Input {
    rules: String,
    paths: Vec<String>,
}

fuzz_target!(|input: Input| {
    let rules = SlugIgnore::parse(&input.rules);
    let reference = Reference::parse(&input.rules);
    let derived = input.rules.lines().flat_map(derived_paths);
    let paths: Vec<String> = input
        .paths
        .into_iter()
        .chain(derived)
        .filter_map(|p| normalized(&p))
        .take(MAX_PATHS)
        .collect();
    for path in &paths {
        for is_dir in [false, true] {
            check(&input.rules, &rules, &reference, path, is_dir);
        }
    }
});

fn check(text: &str, rules: &SlugIgnore, reference: &Reference, path: &str, is_dir: bool) {
    let ignored = rules.is_ignored(path, is_dir);
    assert_eq!(
        ignored,
        reference.is_ignored(path, is_dir),
        "differs from the reference for {path:?} (directory: {is_dir})"
    );
    assert_eq!(
        rules.is_ignored(&format!("/{path}/"), is_dir),
        ignored,
        "slashes around {path:?} changed the answer"
    );
    if is_dir && ignored {
        let child = format!("{path}/child");
        assert!(
            rules.is_ignored(&child, false) && rules.is_ignored(&child, true),
            "{path:?} is ignored but {child:?} is not"
        );
    }
    if literal(path) {
        let anchored = SlugIgnore::parse(&format!("{text}\n/{path}"));
        assert!(
            anchored.is_ignored(path, is_dir),
            "a last rule /{path} does not ignore {path:?}"
        );
        let negated = SlugIgnore::parse(&format!("{text}\n!/{path}"));
        let parent_ignored = path
            .rsplit_once('/')
            .is_some_and(|(parent, _)| negated.is_ignored(parent, true));
        assert_eq!(
            negated.is_ignored(path, is_dir),
            parent_ignored,
            "a last rule !/{path} does not decide {path:?}"
        );
    }
}

/// Paths a rule line is likely to match: wildcards replaced by names, with and without a
/// directory above.
fn derived_paths(line: &str) -> Vec<String> {
    let line = line.trim().trim_start_matches('!');
    let filled = line.replace("**", "d/e").replace(['*', '?'], "x");
    vec![filled.clone(), format!("sub/{filled}"), line.to_owned()]
}

/// `path` without empty segments and without slashes around it; `None` when nothing is left.
fn normalized(path: &str) -> Option<String> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    (!segments.is_empty()).then(|| segments.join("/"))
}

/// Whether `/path` on a line of its own is an anchored rule matching exactly `path`.
fn literal(path: &str) -> bool {
    !path.contains(['*', '?', '\n', '\r']) && !path.starts_with(['!', '#']) && path.trim() == path
}

/// The rules as `wharf_slugignore`'s documentation states them, matched by dynamic
/// programming: a pattern with a `/` (other than a trailing one) is anchored, else it matches
/// the last segment; a trailing `/` matches directories only; `!` re-includes; the last match
/// wins; a path under an ignored directory is ignored. In globs `*` and `?` stay within a
/// segment, `**` crosses segments, and a `/` right after `**` may be skipped.
struct Reference {
    rules: Vec<Rule>,
}

struct Rule {
    glob: Vec<Token>,
    negated: bool,
    directory_only: bool,
    anchored: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum Token {
    Byte(u8),
    Any,
    Star,
    DoubleStar,
}

impl Reference {
    fn parse(text: &str) -> Reference {
        let mut rules = Vec::new();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (negated, line) = match line.strip_prefix('!') {
                Some(rest) => (true, rest),
                None => (false, line),
            };
            let (directory_only, line) = match line.strip_suffix('/') {
                Some(rest) => (true, rest),
                None => (false, line),
            };
            let anchored = line.contains('/');
            let glob = line.trim_start_matches('/');
            if glob.is_empty() {
                continue;
            }
            rules.push(Rule {
                glob: tokens(glob.as_bytes()),
                negated,
                directory_only,
                anchored,
            });
        }
        Reference { rules }
    }

    fn is_ignored(&self, path: &str, is_dir: bool) -> bool {
        let path = path.trim_matches('/');
        let mut ancestors = path.match_indices('/').map(|(i, _)| &path[..i]);
        ancestors.any(|ancestor| self.matches(ancestor, true)) || self.matches(path, is_dir)
    }

    fn matches(&self, path: &str, is_dir: bool) -> bool {
        let name = path.rsplit('/').next().unwrap_or(path);
        let mut ignored = false;
        for rule in &self.rules {
            if rule.directory_only && !is_dir {
                continue;
            }
            let subject = if rule.anchored { path } else { name };
            if glob(&rule.glob, subject.as_bytes()) {
                ignored = !rule.negated;
            }
        }
        ignored
    }
}

fn tokens(glob: &[u8]) -> Vec<Token> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < glob.len() {
        match glob[i] {
            b'*' if glob.get(i + 1) == Some(&b'*') => {
                out.push(Token::DoubleStar);
                i += 2;
                if glob.get(i) == Some(&b'/') {
                    i += 1;
                }
            }
            b'*' => {
                out.push(Token::Star);
                i += 1;
            }
            b'?' => {
                out.push(Token::Any);
                i += 1;
            }
            byte => {
                out.push(Token::Byte(byte));
                i += 1;
            }
        }
    }
    out
}

/// `matched[i][j]`: the tokens from `i` match the text from `j`.
fn glob(tokens: &[Token], text: &[u8]) -> bool {
    let (m, n) = (tokens.len(), text.len());
    let mut matched = vec![vec![false; n + 1]; m + 1];
    matched[m][n] = true;
    for i in (0..m).rev() {
        for j in (0..=n).rev() {
            matched[i][j] = match tokens[i] {
                Token::Byte(b) => j < n && text[j] == b && matched[i + 1][j + 1],
                Token::Any => j < n && text[j] != b'/' && matched[i + 1][j + 1],
                Token::Star => matched[i + 1][j] || (j < n && text[j] != b'/' && matched[i][j + 1]),
                Token::DoubleStar => matched[i + 1][j] || (j < n && matched[i][j + 1]),
            };
        }
    }
    matched[0][0]
}
