//! `.slugignore`: gitignore-style patterns naming what `deploy` leaves out of the source
//! tarball. Blank lines and `#` comments are skipped; `!` re-includes; a trailing `/` matches
//! directories only; a pattern with a `/` elsewhere is anchored at the root, otherwise it
//! matches a name at any depth; `*` and `?` stay within a segment, `**` crosses segments; the
//! last matching pattern wins. Callers walk the tree top-down and skip the contents of an
//! ignored directory, so, as with git, nothing inside it can be re-included.

/// The file read from the root of the directory being deployed.
pub const FILE_NAME: &str = ".slugignore";

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    /// Path segments, `**` among them; a single segment when not anchored.
    segments: Vec<String>,
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
        SlugIgnore {
            patterns: text.lines().filter_map(parse_line).collect(),
        }
    }

    /// Whether the entry at `path` (relative to the root, `/`-separated) is left out. Only
    /// the entry itself is judged: an ignored parent directory is the caller's to skip.
    pub fn is_ignored(&self, path: &str, is_dir: bool) -> bool {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let Some(name) = segments.last() else {
            return false;
        };
        let mut ignored = false;
        for pattern in &self.patterns {
            if pattern.directory_only && !is_dir {
                continue;
            }
            let matched = if pattern.anchored {
                match_segments(&pattern.segments, &segments)
            } else {
                pattern
                    .segments
                    .first()
                    .is_some_and(|glob| match_segment(glob, name))
            };
            if matched {
                ignored = !pattern.negated;
            }
        }
        ignored
    }
}

fn parse_line(line: &str) -> Option<Pattern> {
    let line = line.trim_end();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (negated, line) = match line.strip_prefix('!') {
        Some(rest) => (true, rest),
        // `\#` and `\!` start patterns with a literal `#` or `!`.
        None => (false, line),
    };
    let line = line
        .strip_prefix("\\#")
        .map(|rest| format!("#{rest}"))
        .or_else(|| line.strip_prefix("\\!").map(|rest| format!("!{rest}")))
        .unwrap_or_else(|| line.to_string());
    let trimmed = line.trim_end_matches('/');
    let directory_only = trimmed.len() < line.len();
    let anchored = trimmed.contains('/');
    let segments: Vec<String> = trimmed
        .split('/')
        .filter(|segment| !segment.is_empty())
        .map(str::to_string)
        .collect();
    if segments.is_empty() {
        return None;
    }
    Some(Pattern {
        segments,
        negated,
        directory_only,
        anchored,
    })
}

/// Whole-path matching: `**` stands for any number of segments, but a trailing `**` for at
/// least one (`dir/**` is what is inside `dir`, not `dir` itself).
fn match_segments(pattern: &[String], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => {
            let least = usize::from(rest.is_empty());
            (least..=path.len()).any(|skip| match_segments(rest, &path[skip..]))
        }
        Some((first, rest)) => path
            .split_first()
            .is_some_and(|(name, more)| match_segment(first, name) && match_segments(rest, more)),
    }
}

/// One segment against one glob: `*` is any run of characters, `?` exactly one, `\` makes
/// the next character literal.
fn match_segment(glob: &str, name: &str) -> bool {
    let glob: Vec<char> = glob.chars().collect();
    let name: Vec<char> = name.chars().collect();
    // Classic wildcard matching with a single backtrack point: the last `*` seen.
    let (mut g, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match glob.get(g) {
            Some('*') => {
                star = Some((g, n));
                g += 1;
            }
            Some('?') => {
                g += 1;
                n += 1;
            }
            Some('\\') if glob.get(g + 1) == Some(&name[n]) => {
                g += 2;
                n += 1;
            }
            Some(&c) if c != '\\' && c == name[n] => {
                g += 1;
                n += 1;
            }
            _ => match star {
                Some((star_g, star_n)) => {
                    g = star_g + 1;
                    n = star_n + 1;
                    star = Some((star_g, star_n + 1));
                }
                None => return false,
            },
        }
    }
    glob[g..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_match_globs() {
        let check = |glob: &str, name: &str, expected: bool| {
            assert_eq!(match_segment(glob, name), expected, "{glob} vs {name}");
        };
        check("*.log", "debug.log", true);
        check("*.log", ".log", true);
        check("*.log", "debug.log.1", false);
        check("a?c", "abc", true);
        check("a?c", "ac", false);
        check("*", ".hidden", true);
        check("a*b*c", "axxbyyc", true);
        check("a*b*c", "axxbyy", false);
        check("**", "anything", true);
        check("exact", "exact", true);
        check("exact", "exactly", false);
        check(r"\*", "*", true);
        check(r"\*", "x", false);
        check("", "", true);
    }

    #[test]
    fn patterns_follow_gitignore_rules() {
        let rules = SlugIgnore::parse(
            "# comment\n\
             \n\
             *.log\n\
             !keep.log\n\
             tmp/\n\
             /root-only.txt\n\
             docs/*.md\n\
             assets/**/raw\n\
             spec/**\n\
             \\#literal\n",
        );
        let check = |path: &str, is_dir: bool, expected: bool| {
            assert_eq!(
                rules.is_ignored(path, is_dir),
                expected,
                "{path} dir={is_dir}"
            );
        };
        // A name at any depth.
        check("debug.log", false, true);
        check("a/b/debug.log", false, true);
        // Re-included by a later `!`.
        check("keep.log", false, false);
        check("deep/keep.log", false, false);
        // Directories only.
        check("tmp", true, true);
        check("src/tmp", true, true);
        check("tmp", false, false);
        // Anchored at the root.
        check("root-only.txt", false, true);
        check("sub/root-only.txt", false, false);
        check("docs/readme.md", false, true);
        check("docs/api/readme.md", false, false);
        check("other/docs/readme.md", false, false);
        // `**` crosses any number of segments, including none.
        check("assets/raw", true, true);
        check("assets/a/b/raw", false, true);
        check("assets/a/b/cooked", false, false);
        // A trailing `**` is what is inside, not the directory itself.
        check("spec", true, false);
        check("spec/a_spec.rb", false, true);
        check("spec/deep/x", false, true);
        // Comments and escapes.
        check("# comment", false, false);
        check("#literal", false, true);
        check("app.py", false, false);
        check("", true, false);
    }

    #[test]
    fn the_last_matching_pattern_wins() {
        let rules = SlugIgnore::parse("!important.txt\n*.txt\n");
        assert!(rules.is_ignored("important.txt", false));
        let rules = SlugIgnore::parse("*.txt\n!important.txt\n");
        assert!(!rules.is_ignored("important.txt", false));
        assert!(rules.is_ignored("other.txt", false));
    }

    #[test]
    fn leading_slashes_anchor_and_blank_patterns_vanish() {
        let rules = SlugIgnore::parse("/\n!\n   \n/build\n");
        assert!(rules.is_ignored("build", true));
        assert!(!rules.is_ignored("src/build", true));
        assert_eq!(SlugIgnore::parse("/\n!\n  \n# x\n"), SlugIgnore::default());
    }
}
