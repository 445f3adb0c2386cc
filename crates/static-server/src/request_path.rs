//! The request path, decoded and checked before it comes near the file system.

use std::path::{Path, PathBuf};

use percent_encoding::percent_decode_str;

/// A decoded request path that cannot leave the document root: it starts with `/`, and no
/// segment is `.`, `..`, or holds a NUL or a backslash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SitePath(String);

/// Why a request path was refused (answered with 400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadPath;

impl SitePath {
    /// Decodes the path of a request URI (`/caf%C3%A9/`).
    pub fn parse(raw: &str) -> Result<SitePath, BadPath> {
        if !raw.starts_with('/') {
            return Err(BadPath);
        }
        let decoded = percent_decode_str(raw).decode_utf8().map_err(|_| BadPath)?;
        let refused = decoded.contains(['\0', '\\'])
            || decoded
                .split('/')
                .any(|segment| segment == ".." || segment == ".");
        if refused {
            return Err(BadPath);
        }
        Ok(SitePath(decoded.into_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the path names a directory (`/docs/`).
    pub fn is_directory(&self) -> bool {
        self.0.ends_with('/')
    }

    /// Whether any segment is hidden (`/.git/config`, `/.env`): the app directory holds the
    /// platform's and the build's dot files, which are not part of the site. `/.well-known/`
    /// is the exception the web relies on.
    pub fn is_hidden(&self) -> bool {
        self.segments()
            .any(|segment| segment.starts_with('.') && segment != ".well-known")
    }

    /// The file this path names under `root` (empty segments from `//` are skipped).
    pub fn under(&self, root: &Path) -> PathBuf {
        let mut path = root.to_path_buf();
        path.extend(self.segments());
        path
    }

    fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/').filter(|segment| !segment.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: &str, expected: Result<&str, BadPath>) {
        assert_eq!(
            SitePath::parse(raw).as_ref().map(SitePath::as_str).ok(),
            expected.ok(),
            "{raw}"
        );
    }

    #[test]
    fn paths_are_percent_decoded() {
        check("/", Ok("/"));
        check("/about", Ok("/about"));
        check("/caf%C3%A9/menu%20card.html", Ok("/café/menu card.html"));
        check("/a//b", Ok("/a//b"));
        check("/..foo/bar..", Ok("/..foo/bar.."));
    }

    #[test]
    fn escapes_from_the_root_are_refused() {
        check("/../etc/passwd", Err(BadPath));
        check("/a/%2e%2e/%2e%2e/etc/passwd", Err(BadPath));
        check("/a/..", Err(BadPath));
        check("/./a", Err(BadPath));
        check("/a%5C..%5Cb", Err(BadPath));
        check("/a%00b", Err(BadPath));
        check("/%FF", Err(BadPath));
        check("relative", Err(BadPath));
        check("*", Err(BadPath));
    }

    #[test]
    fn hidden_segments_are_recognised() {
        let hidden = |raw: &str| SitePath::parse(raw).unwrap().is_hidden();
        assert!(hidden("/.env"));
        assert!(hidden("/.git/config"));
        assert!(hidden("/.heroku/python/bin/python"));
        assert!(!hidden("/.well-known/security.txt"));
        assert!(!hidden("/index.html"));
    }

    #[test]
    fn paths_map_under_the_root() {
        let path = SitePath::parse("/docs//guide/").unwrap();
        assert!(path.is_directory());
        assert_eq!(path.under(Path::new("/srv")), Path::new("/srv/docs/guide"));
        assert_eq!(
            SitePath::parse("/").unwrap().under(Path::new("/srv")),
            Path::new("/srv")
        );
    }
}
