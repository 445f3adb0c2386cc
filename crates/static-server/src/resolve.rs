//! Which file (or redirect) answers a request path: the `static.json` rules applied to what is
//! on disk, in nginx's order for Heroku's static buildpack. Never a file outside the root.
//!
//! Blocking file system calls: run it on a blocking thread, with the rest of the request's
//! file work (one hop per request rather than one per call).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use hyper::StatusCode;

use crate::config::StaticConfig;
use crate::request_path::SitePath;

/// The answer to a request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Send this file (a canonical path inside the root) with this status: 200, or 404 for
    /// the error page.
    File { path: PathBuf, status: StatusCode },
    /// A redirect rule of `static.json` matched.
    Redirect { url: String, status: StatusCode },
    /// A directory with an index was asked for without its trailing slash: redirect so that
    /// relative links in the index resolve.
    AddSlash,
    /// Nothing to serve and no error page.
    NotFound,
}

/// Resolves `path` in order: redirect rules; the file itself (a directory's `index.html`);
/// `<path>.html` with `clean_urls`; the first matching route; the error page.
pub fn resolve(config: &StaticConfig, path: &SitePath) -> Resolution {
    if let Some(redirect) = config.redirect(path.as_str()) {
        return Resolution::Redirect {
            url: redirect.url.clone(),
            status: redirect.status,
        };
    }
    let root = config.root();
    if !path.is_hidden() {
        let candidate = path.under(root);
        match inspect(root, &candidate) {
            Some(Entry::File(file)) => return found(file),
            Some(Entry::Directory(directory)) => {
                if let Some(Entry::File(index)) = inspect(root, &directory.join("index.html")) {
                    return if path.is_directory() {
                        found(index)
                    } else {
                        Resolution::AddSlash
                    };
                }
            }
            None => {}
        }
        if config.clean_urls() && !path.is_directory() {
            let mut html = OsString::from(candidate);
            html.push(".html");
            if let Some(Entry::File(file)) = inspect(root, Path::new(&html)) {
                return found(file);
            }
        }
    }
    if let Some(target) = config.route(path.as_str()) {
        if let Some(Entry::File(file)) = inspect(root, &site_file(root, target)) {
            return found(file);
        }
    }
    if let Some(page) = config.error_page() {
        if let Some(Entry::File(file)) = inspect(root, &site_file(root, page)) {
            return Resolution::File {
                path: file,
                status: StatusCode::NOT_FOUND,
            };
        }
    }
    Resolution::NotFound
}

fn found(path: PathBuf) -> Resolution {
    Resolution::File {
        path,
        status: StatusCode::OK,
    }
}

/// A file named in `static.json` (`/index.html`, validated to hold no `..`) under the root.
fn site_file(root: &Path, file: &str) -> PathBuf {
    root.join(file.trim_start_matches('/'))
}

enum Entry {
    File(PathBuf),
    Directory(PathBuf),
}

/// What `candidate` is once symlinks are resolved, or `None` when it does not exist or
/// resolves outside `root` (a symlink that points out of the site is as good as missing).
fn inspect(root: &Path, candidate: &Path) -> Option<Entry> {
    let real = std::fs::canonicalize(candidate).ok()?;
    if !real.starts_with(root) {
        return None;
    }
    let metadata = std::fs::metadata(&real).ok()?;
    if metadata.is_file() {
        Some(Entry::File(real))
    } else if metadata.is_dir() {
        Some(Entry::Directory(real))
    } else {
        None
    }
}
