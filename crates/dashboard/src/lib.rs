//! The dashboard's browser files (`assets/`: HTML, CSS and ES modules, no build step),
//! embedded in the binary at compile time and served from memory: each with its content type,
//! an ETag from its SHA-256, and a gzip copy made once on first use.
//!
//! Invariants: nothing is read from disk at run time; only the paths in the embedded table
//! exist (a request names a table entry, never a file); every answer carries the security
//! headers of [`SECURITY_HEADERS`] (the API adds them).

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

mod table {
    include!(concat!(env!("OUT_DIR"), "/assets.rs"));
}

/// The page every dashboard URL loads (`/`); its routes live in the URL's fragment.
pub const INDEX: &str = "index.html";

/// The Content-Security-Policy of the dashboard's pages: only the dashboard's own files run,
/// no inline script or style, no framing, and requests only to this origin.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'self'";

/// One embedded file, ready to serve.
#[derive(Debug)]
pub struct Asset {
    pub content_type: &'static str,
    /// `"<first 32 hex digits of the SHA-256>"`, quoted as an ETag is.
    pub etag: String,
    pub bytes: &'static [u8],
    /// The gzip copy, when it is smaller.
    pub gzip: Option<Vec<u8>>,
}

/// The embedded file at `path` (relative to `assets/`, as in `/assets/<path>`).
pub fn asset(path: &str) -> Option<&'static Asset> {
    assets().get(path)
}

/// Every embedded file by path.
pub fn assets() -> &'static HashMap<&'static str, Asset> {
    static ASSETS: OnceLock<HashMap<&'static str, Asset>> = OnceLock::new();
    ASSETS.get_or_init(|| {
        table::FILES
            .iter()
            .map(|(path, bytes)| (*path, prepare(path, bytes)))
            .collect()
    })
}

fn prepare(path: &str, bytes: &'static [u8]) -> Asset {
    let digest = Sha256::digest(bytes);
    let etag = format!(
        "\"{}\"",
        digest[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder
        .write_all(bytes)
        .expect("compressing into memory cannot fail");
    let gzip = encoder
        .finish()
        .expect("compressing into memory cannot fail");
    Asset {
        content_type: content_type(path),
        etag,
        bytes,
        gzip: (gzip.len() < bytes.len()).then_some(gzip),
    }
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, extension)| extension) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a browser downloads to show the dashboard, compressed as served.
    fn shipped_bytes() -> usize {
        assets()
            .values()
            .map(|asset| asset.gzip.as_ref().map_or(asset.bytes.len(), Vec::len))
            .sum()
    }

    #[test]
    fn the_index_page_is_embedded_and_everything_shipped_is_small() {
        let index = asset(INDEX).expect("assets/index.html exists");
        assert_eq!(index.content_type, "text/html; charset=utf-8");
        let shipped = shipped_bytes();
        assert!(shipped > 0);
        // The goal: the dashboard's own scripts and styles under 200 KB compressed in total.
        assert!(shipped < 200 * 1024, "{shipped} bytes compressed");
    }

    #[test]
    fn pages_load_no_inline_script_or_style() {
        for (path, asset) in assets() {
            if !path.ends_with(".html") {
                continue;
            }
            let text = std::str::from_utf8(asset.bytes).expect("HTML is UTF-8");
            for tag in text.split('<').skip(1) {
                let tag = tag.split('>').next().unwrap_or_default();
                if tag.starts_with('!') {
                    continue;
                }
                if tag.starts_with("script") {
                    assert!(tag.contains("src="), "{path}: inline <{tag}>");
                }
                assert!(!tag.starts_with("style"), "{path}: inline <{tag}>");
                assert!(!tag.contains(" style="), "{path}: inline style in <{tag}>");
                let handler = tag.split_whitespace().any(|attribute| {
                    attribute.split('=').next().is_some_and(|name| {
                        name.len() > 2
                            && name.starts_with("on")
                            && name.bytes().all(|b| b.is_ascii_alphabetic())
                    })
                });
                assert!(!handler, "{path}: event handler in <{tag}>");
            }
        }
    }

    #[test]
    fn only_embedded_paths_exist() {
        assert!(asset("../Cargo.toml").is_none());
        assert!(asset("").is_none());
        assert!(asset("nope.js").is_none());
    }

    #[test]
    fn etags_follow_the_content() {
        let a = prepare("a.js", b"let a = 1;");
        let b = prepare("b.js", b"let a = 2;");
        assert_ne!(a.etag, b.etag);
        assert_eq!(a.etag, prepare("c.js", b"let a = 1;").etag);
        assert_eq!(a.content_type, "text/javascript; charset=utf-8");
    }
}
