//! `static.json`: the subset of Heroku's static buildpack configuration that Wharf serves.
//!
//! Parsing is pure; [`load_config`] adds the file system: it reads the file, picks the default
//! root and resolves it to a canonical directory. Rules keep the order they are written in:
//! the first matching route and redirect win.

use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use hyper::header::{HeaderName, HeaderValue};
use hyper::StatusCode;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use crate::glob::Glob;

/// The file name Heroku's static buildpack reads, in the app's root directory.
pub const CONFIG_FILE: &str = "static.json";

/// The document root used when `static.json` names none and this directory exists.
const DEFAULT_ROOT: &str = "public_html";

/// A validated `static.json`, with the document root resolved to a canonical path.
#[derive(Debug, Clone)]
pub struct StaticConfig {
    root: PathBuf,
    clean_urls: bool,
    routes: Vec<(Glob, String)>,
    redirects: Vec<(Glob, Redirect)>,
    headers: Vec<(Glob, Vec<(HeaderName, HeaderValue)>)>,
    error_page: Option<String>,
    https_only: bool,
}

/// Where a redirect rule sends the client, and with which status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    pub url: String,
    pub status: StatusCode,
}

/// Reads `static.json` from `app_dir` (all defaults when there is none) and resolves the
/// document root: `root` from the file, else `public_html` when that directory exists, else the
/// app directory itself.
pub fn load_config(app_dir: &Path) -> anyhow::Result<StaticConfig> {
    let file = app_dir.join(CONFIG_FILE);
    let text = match std::fs::read_to_string(&file) {
        Ok(text) => Some(text),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(error) => {
            return Err(error).with_context(|| format!("read {}", file.display()));
        }
    };
    let raw = match text {
        Some(text) => parse(&text)?,
        None => RawConfig::default(),
    };
    raw.resolve(app_dir)
}

/// Parses the text of a `static.json`; the rules are validated when the root is resolved
/// against the app directory.
fn parse(text: &str) -> anyhow::Result<RawConfig> {
    serde_json::from_str(text).map_err(|error| {
        anyhow::anyhow!("{CONFIG_FILE} is not valid: {error}; fix the file or remove it")
    })
}

impl StaticConfig {
    /// The canonical document root files are served from.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether `/about` may be served from `about.html`.
    pub fn clean_urls(&self) -> bool {
        self.clean_urls
    }

    /// Whether a request that came in over plain HTTP (per `X-Forwarded-Proto`) is redirected
    /// to HTTPS.
    pub fn https_only(&self) -> bool {
        self.https_only
    }

    /// The file (relative to the root, starting with `/`) that the first matching route
    /// serves for `path`.
    pub fn route(&self, path: &str) -> Option<&str> {
        self.routes
            .iter()
            .find(|(glob, _)| glob.matches(path))
            .map(|(_, target)| target.as_str())
    }

    /// The first redirect rule that matches `path`.
    pub fn redirect(&self, path: &str) -> Option<&Redirect> {
        self.redirects
            .iter()
            .find(|(glob, _)| glob.matches(path))
            .map(|(_, redirect)| redirect)
    }

    /// The extra headers for `path`: those of every matching rule, in file order (a later
    /// rule's value for the same header wins).
    pub fn headers_for<'a>(
        &'a self,
        path: &'a str,
    ) -> impl Iterator<Item = (&'a HeaderName, &'a HeaderValue)> + 'a {
        self.headers
            .iter()
            .filter(move |(glob, _)| glob.matches(path))
            .flat_map(|(_, headers)| headers.iter().map(|(name, value)| (name, value)))
    }

    /// The page served with 404 (relative to the root, starting with `/`).
    pub fn error_page(&self) -> Option<&str> {
        self.error_page.as_deref()
    }
}

/// `static.json` as written, before the root is resolved.
#[derive(Debug, Default, Deserialize)]
struct RawConfig {
    root: Option<String>,
    #[serde(default)]
    clean_urls: bool,
    #[serde(default)]
    routes: OrderedMap<String>,
    #[serde(default)]
    redirects: OrderedMap<RawRedirect>,
    #[serde(default)]
    headers: OrderedMap<OrderedMap<String>>,
    error_page: Option<String>,
    #[serde(default)]
    https_only: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRedirect {
    url: String,
    status: Option<u16>,
}

impl RawConfig {
    /// Validates the rules and resolves the root against the app directory.
    fn resolve(self, app_dir: &Path) -> anyhow::Result<StaticConfig> {
        let root_name = match self.root {
            Some(root) => root,
            None if app_dir.join(DEFAULT_ROOT).is_dir() => DEFAULT_ROOT.to_owned(),
            None => ".".to_owned(),
        };
        if Path::new(&root_name).is_absolute()
            || Path::new(&root_name)
                .components()
                .any(|c| c == std::path::Component::ParentDir)
        {
            bail!("{CONFIG_FILE}: root \"{root_name}\" must be a directory inside the app, without ..");
        }
        let root = app_dir.join(&root_name);
        let root = std::fs::canonicalize(&root).with_context(|| {
            format!("{CONFIG_FILE}: root \"{root_name}\" does not exist in the app; create it or change root")
        })?;
        if !root.is_dir() {
            bail!("{CONFIG_FILE}: root \"{root_name}\" is not a directory; change root");
        }
        let (clean_urls, https_only) = (self.clean_urls, self.https_only);
        let routes = self
            .routes
            .0
            .into_iter()
            .map(|(pattern, target)| {
                Ok((
                    glob("routes", &pattern)?,
                    site_path("routes", &pattern, &target)?,
                ))
            })
            .collect::<anyhow::Result<_>>()?;
        let redirects = self
            .redirects
            .0
            .into_iter()
            .map(|(pattern, raw)| Ok((glob("redirects", &pattern)?, redirect(&pattern, raw)?)))
            .collect::<anyhow::Result<_>>()?;
        let headers = self
            .headers
            .0
            .into_iter()
            .map(|(pattern, headers)| {
                Ok((glob("headers", &pattern)?, header_list(&pattern, headers)?))
            })
            .collect::<anyhow::Result<_>>()?;
        let error_page = self
            .error_page
            .map(|page| site_path("error_page", "error_page", &page))
            .transpose()?;
        Ok(StaticConfig {
            root,
            clean_urls,
            routes,
            redirects,
            headers,
            error_page,
            https_only,
        })
    }
}

fn glob(section: &str, pattern: &str) -> anyhow::Result<Glob> {
    Glob::parse(pattern).map_err(|error| anyhow::anyhow!("{CONFIG_FILE}: {section}: {error}"))
}

/// A file of the site named in `static.json` (`index.html` or `/index.html`), as a path from
/// the root starting with `/`.
fn site_path(section: &str, key: &str, file: &str) -> anyhow::Result<String> {
    let trimmed = file.trim_start_matches('/');
    if trimmed.is_empty() || trimmed.split('/').any(|segment| segment == "..") {
        bail!("{CONFIG_FILE}: {section}: \"{key}\": \"{file}\" must name a file inside the root, without ..");
    }
    Ok(format!("/{trimmed}"))
}

fn redirect(pattern: &str, raw: RawRedirect) -> anyhow::Result<Redirect> {
    let status = raw.status.unwrap_or(301);
    let status = StatusCode::from_u16(status)
        .ok()
        .filter(StatusCode::is_redirection)
        .filter(|status| *status != StatusCode::NOT_MODIFIED)
        .ok_or_else(|| {
            anyhow::anyhow!("{CONFIG_FILE}: redirects: \"{pattern}\": status {status} is not a redirect; use 301, 302, 303, 307 or 308")
        })?;
    if raw.url.is_empty() || HeaderValue::from_str(&raw.url).is_err() {
        bail!(
            "{CONFIG_FILE}: redirects: \"{pattern}\": url \"{}\" is not a valid URL",
            raw.url
        );
    }
    Ok(Redirect {
        url: raw.url,
        status,
    })
}

fn header_list(
    pattern: &str,
    headers: OrderedMap<String>,
) -> anyhow::Result<Vec<(HeaderName, HeaderValue)>> {
    headers
        .0
        .into_iter()
        .map(|(name, value)| {
            let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                anyhow::anyhow!("{CONFIG_FILE}: headers: \"{pattern}\": \"{name}\" is not a valid header name")
            })?;
            let value = HeaderValue::from_str(&value).map_err(|_| {
                anyhow::anyhow!("{CONFIG_FILE}: headers: \"{pattern}\": the value of \"{name}\" is not a valid header value")
            })?;
            Ok((header, value))
        })
        .collect()
}

/// A JSON object kept in file order: rules are tried in the order they are written, which
/// `serde_json`'s own map (sorted by key) would lose.
#[derive(Debug)]
struct OrderedMap<V>(Vec<(String, V)>);

impl<V> Default for OrderedMap<V> {
    fn default() -> Self {
        OrderedMap(Vec::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for OrderedMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OrderedVisitor<V>(PhantomData<V>);

        impl<'de, V: Deserialize<'de>> Visitor<'de> for OrderedVisitor<V> {
            type Value = OrderedMap<V>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(OrderedMap(entries))
            }
        }

        deserializer.deserialize_map(OrderedVisitor(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    fn site(static_json: Option<&str>) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        if let Some(text) = static_json {
            fs::write(dir.path().join(CONFIG_FILE), text).unwrap();
        }
        dir
    }

    fn load_error(static_json: &str) -> String {
        let dir = site(Some(static_json));
        format!("{:#}", load_config(dir.path()).unwrap_err())
    }

    #[test]
    fn without_static_json_the_app_dir_is_the_root() {
        let dir = site(None);
        let config = load_config(dir.path()).unwrap();
        assert_eq!(config.root(), fs::canonicalize(dir.path()).unwrap());
        assert!(!config.clean_urls());
        assert_eq!(config.route("/x"), None);
        assert_eq!(config.error_page(), None);
    }

    #[test]
    fn public_html_is_the_default_root_when_it_exists() {
        let dir = site(Some("{}"));
        fs::create_dir(dir.path().join("public_html")).unwrap();
        let config = load_config(dir.path()).unwrap();
        assert_eq!(
            config.root(),
            fs::canonicalize(dir.path().join("public_html")).unwrap()
        );
    }

    #[test]
    fn every_key_is_read() {
        let dir = site(Some(
            r#"{
              "root": "dist",
              "clean_urls": true,
              "https_only": true,
              "routes": {"/api/*": "api.html", "/**": "index.html"},
              "redirects": {"/old": {"url": "/new"}, "/gone": {"url": "https://example.com/", "status": 302}},
              "headers": {"/**": {"X-Frame-Options": "DENY", "Cache-Control": "no-cache"},
                          "/assets/**": {"Cache-Control": "max-age=31536000"}},
              "error_page": "404.html",
              "proxies": {}
            }"#,
        ));
        fs::create_dir(dir.path().join("dist")).unwrap();
        let config = load_config(dir.path()).unwrap();
        assert_eq!(
            config.root(),
            fs::canonicalize(dir.path().join("dist")).unwrap()
        );
        assert!(config.clean_urls());
        assert!(config.https_only());
        assert_eq!(config.route("/api/users"), Some("/api.html"));
        assert_eq!(config.route("/app/settings"), Some("/index.html"));
        assert_eq!(
            config.redirect("/old"),
            Some(&Redirect {
                url: "/new".into(),
                status: StatusCode::MOVED_PERMANENTLY
            })
        );
        assert_eq!(config.redirect("/gone").unwrap().status, StatusCode::FOUND);
        assert_eq!(config.redirect("/new"), None);
        let headers: Vec<_> = config
            .headers_for("/assets/app.js")
            .map(|(name, value)| format!("{name}: {}", value.to_str().unwrap()))
            .collect();
        assert_eq!(
            headers,
            [
                "x-frame-options: DENY",
                "cache-control: no-cache",
                "cache-control: max-age=31536000"
            ]
        );
        assert_eq!(config.error_page(), Some("/404.html"));
    }

    #[test]
    fn mistakes_are_explained() {
        let cases = [
            ("{", "static.json is not valid"),
            (r#"{"clean_urls": "yes"}"#, "expected a boolean"),
            (r#"{"root": "missing"}"#, "root \"missing\" does not exist"),
            (
                r#"{"root": "../elsewhere"}"#,
                "must be a directory inside the app",
            ),
            (
                r#"{"routes": {"app/*": "index.html"}}"#,
                "must start with /",
            ),
            (
                r#"{"routes": {"/**": "../secret"}}"#,
                "must name a file inside the root",
            ),
            (
                r#"{"redirects": {"/a": {"url": "/b", "status": 200}}}"#,
                "is not a redirect",
            ),
            (
                r#"{"redirects": {"/a": {"to": "/b"}}}"#,
                "unknown field `to`",
            ),
            (
                r#"{"headers": {"/**": {"bad header": "x"}}}"#,
                "not a valid header name",
            ),
            (r#"{"error_page": ""}"#, "must name a file inside the root"),
        ];
        for (text, expected) in cases {
            let error = load_error(text);
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
