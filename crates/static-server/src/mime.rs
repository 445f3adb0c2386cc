//! Content types by file extension: a small table of what web sites serve.

use std::path::Path;

/// Served when the extension is unknown: browsers then download rather than guess.
const DEFAULT_TYPE: &str = "application/octet-stream";

/// Extension (lowercase) → content type. Text types carry `charset=utf-8`.
const TYPES: &[(&str, &str)] = &[
    ("html", "text/html; charset=utf-8"),
    ("htm", "text/html; charset=utf-8"),
    ("css", "text/css; charset=utf-8"),
    ("js", "text/javascript; charset=utf-8"),
    ("mjs", "text/javascript; charset=utf-8"),
    ("json", "application/json"),
    ("map", "application/json"),
    ("webmanifest", "application/manifest+json"),
    ("xml", "application/xml"),
    ("rss", "application/rss+xml"),
    ("atom", "application/atom+xml"),
    ("txt", "text/plain; charset=utf-8"),
    ("md", "text/markdown; charset=utf-8"),
    ("csv", "text/csv; charset=utf-8"),
    ("svg", "image/svg+xml"),
    ("png", "image/png"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("gif", "image/gif"),
    ("webp", "image/webp"),
    ("avif", "image/avif"),
    ("ico", "image/x-icon"),
    ("bmp", "image/bmp"),
    ("woff", "font/woff"),
    ("woff2", "font/woff2"),
    ("ttf", "font/ttf"),
    ("otf", "font/otf"),
    ("eot", "application/vnd.ms-fontobject"),
    ("wasm", "application/wasm"),
    ("pdf", "application/pdf"),
    ("zip", "application/zip"),
    ("gz", "application/gzip"),
    ("tar", "application/x-tar"),
    ("mp4", "video/mp4"),
    ("webm", "video/webm"),
    ("mp3", "audio/mpeg"),
    ("ogg", "audio/ogg"),
    ("wav", "audio/wav"),
];

/// The `Content-Type` for a file, from its extension.
pub fn content_type(path: &Path) -> &'static str {
    let Some(extension) = path.extension().and_then(|e| e.to_str()) else {
        return DEFAULT_TYPE;
    };
    TYPES
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(extension))
        .map_or(DEFAULT_TYPE, |(_, content_type)| content_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(file: &str, expected: &str) {
        assert_eq!(content_type(Path::new(file)), expected, "{file}");
    }

    #[test]
    fn known_extensions_in_any_case() {
        check("index.html", "text/html; charset=utf-8");
        check("INDEX.HTML", "text/html; charset=utf-8");
        check("app.min.js", "text/javascript; charset=utf-8");
        check("logo.svg", "image/svg+xml");
        check("font.woff2", "font/woff2");
    }

    #[test]
    fn unknown_or_missing_extensions_are_octet_streams() {
        check("Makefile", DEFAULT_TYPE);
        check("data.bin", DEFAULT_TYPE);
        check(".hidden", DEFAULT_TYPE);
    }
}
