//! Path globs of `static.json` (`/assets/*`, `/**`, `/**.js`): `*` and `?` stay within one path
//! segment, `**` crosses segments.

use std::fmt;

/// A parsed glob. Matching is on the decoded request path, case-sensitively.
#[derive(Clone, PartialEq, Eq)]
pub struct Glob {
    pattern: String,
    tokens: Vec<Token>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(char),
    /// `?`: one character other than `/`.
    AnyChar,
    /// `*`: any run of characters other than `/`.
    Star,
    /// `**`: any run of characters, `/` included.
    DoubleStar,
}

impl Glob {
    /// Parses a glob; it must start with `/` like the request paths it matches.
    pub fn parse(pattern: &str) -> Result<Glob, String> {
        if !pattern.starts_with('/') {
            return Err(format!(
                "\"{pattern}\" must start with / (it is matched against request paths)"
            ));
        }
        let mut tokens = Vec::new();
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            tokens.push(match c {
                '*' if chars.peek() == Some(&'*') => {
                    chars.next();
                    // `***` means the same as `**`.
                    while chars.peek() == Some(&'*') {
                        chars.next();
                    }
                    Token::DoubleStar
                }
                '*' => Token::Star,
                '?' => Token::AnyChar,
                c => Token::Literal(c),
            });
        }
        Ok(Glob {
            pattern: pattern.to_owned(),
            tokens,
        })
    }

    /// Whether `path` matches the whole glob.
    pub fn matches(&self, path: &str) -> bool {
        let path: Vec<char> = path.chars().collect();
        matches_from(&self.tokens, &path)
    }
}

/// Backtracking match. Patterns in `static.json` are short and have few wildcards, so the
/// worst case (exponential in the number of stars) does not arise in practice; a memo over
/// (token, position) keeps it polynomial anyway.
fn matches_from(tokens: &[Token], path: &[char]) -> bool {
    let mut memo = vec![None; (tokens.len() + 1) * (path.len() + 1)];
    matches_at(tokens, path, 0, 0, &mut memo)
}

fn matches_at(
    tokens: &[Token],
    path: &[char],
    t: usize,
    p: usize,
    memo: &mut [Option<bool>],
) -> bool {
    let key = t * (path.len() + 1) + p;
    if let Some(known) = memo[key] {
        return known;
    }
    let result = match tokens.get(t) {
        None => p == path.len(),
        Some(Token::Literal(c)) => {
            path.get(p) == Some(c) && matches_at(tokens, path, t + 1, p + 1, memo)
        }
        Some(Token::AnyChar) => {
            path.get(p).is_some_and(|c| *c != '/') && matches_at(tokens, path, t + 1, p + 1, memo)
        }
        Some(Token::Star) => {
            let mut end = p;
            loop {
                if matches_at(tokens, path, t + 1, end, memo) {
                    break true;
                }
                match path.get(end) {
                    Some(c) if *c != '/' => end += 1,
                    _ => break false,
                }
            }
        }
        Some(Token::DoubleStar) => {
            (p..=path.len()).any(|end| matches_at(tokens, path, t + 1, end, memo))
        }
    };
    memo[key] = Some(result);
    result
}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Glob({:?})", self.pattern)
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.pattern)
    }
}

#[cfg(test)]
mod tests {
    use super::Glob;

    fn check(pattern: &str, path: &str, expected: bool) {
        let glob = Glob::parse(pattern).unwrap();
        assert_eq!(glob.matches(path), expected, "{pattern} against {path}");
    }

    #[test]
    fn literals_match_only_themselves() {
        check("/old", "/old", true);
        check("/old", "/old/", false);
        check("/old", "/older", false);
        check("/", "/", true);
    }

    #[test]
    fn a_star_stays_within_a_segment() {
        check("/assets/*", "/assets/app.js", true);
        check("/assets/*", "/assets/", true);
        check("/assets/*", "/assets/js/app.js", false);
        check("/*.html", "/about.html", true);
        check("/*.html", "/docs/about.html", false);
        check("/a*b*c", "/aXbYc", true);
        check("/a*b*c", "/aXbY/c", false);
    }

    #[test]
    fn a_double_star_crosses_segments() {
        check("/**", "/", true);
        check("/**", "/deep/ly/nested/route", true);
        check("/**.js", "/assets/js/app.js", true);
        check("/**.js", "/assets/js/app.css", false);
        check("/assets/**", "/assets/a/b", true);
        check("/assets/**", "/other/a", false);
        check("/***", "/x/y", true);
    }

    #[test]
    fn a_question_mark_is_one_character_of_a_segment() {
        check("/v?", "/v1", true);
        check("/v?", "/v12", false);
        check("/v?x", "/v/x", false);
    }

    #[test]
    fn patterns_must_be_absolute() {
        assert!(Glob::parse("assets/*").is_err());
        assert!(Glob::parse("").is_err());
    }

    #[test]
    fn many_stars_stay_fast() {
        let glob = Glob::parse("/*a*a*a*a*a*a*a*a*a*a*b").unwrap();
        assert!(!glob.matches(&format!("/{}", "a".repeat(200))));
    }
}
