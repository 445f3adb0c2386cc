//! Which host a request names, and which app that host belongs to: `<app>.<base-domain>`, or a
//! custom domain, exact or by a one-label wildcard (`*.example.com`). Case-insensitive; the
//! port is ignored.
//!
//! A request must name its host once and without contradiction (RFC 9110 section 7.2, RFC 9112
//! section 3.2, RFC 9113 section 8.3.1): a proxy that routes by one name while the dyno (or a
//! cache in front) reads another lets a client reach an app under a host it does not own.

use hyper::header::{self, HeaderMap};
use hyper::{Uri, Version};

use crate::table::RouteTable;

/// Why a request's host cannot be trusted. The router answers `400 Bad Request`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadHost {
    /// More than one `Host` field line.
    Several,
    /// An HTTP/1.1 request without `Host`.
    Missing,
    /// A `Host` value that is not `host[:port]`.
    Invalid,
    /// `Host` names another host than the request target (absolute form) or `:authority`.
    Mismatch,
}

impl BadHost {
    /// What was wrong, for the router line's `cause`.
    pub fn as_str(self) -> &'static str {
        match self {
            BadHost::Several => "more than one Host header",
            BadHost::Missing => "no Host header",
            BadHost::Invalid => "invalid Host header",
            BadHost::Mismatch => "Host header differs from the request target",
        }
    }
}

impl std::fmt::Display for BadHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for BadHost {}

/// The host a request is for, as the client wrote it (`Host`, else the target's authority
/// without userinfo), to be [normalized](normalize_host) for routing; `None` when it names
/// none (HTTP/1.0 without `Host`, an empty `Host` with an origin-form target). Refused: more
/// than one `Host`, none in HTTP/1.1, a value that is not `host[:port]`, and a `Host` that
/// differs from the absolute-form target's or HTTP/2's `:authority` (the host compared without
/// case, a missing port equal to the scheme's default).
///
/// Pure and allocation-free: it runs for every request.
pub fn request_host<'a>(
    version: Version,
    uri: &'a Uri,
    headers: &'a HeaderMap,
) -> Result<Option<&'a str>, BadHost> {
    let mut fields = headers.get_all(header::HOST).iter();
    let field = fields.next();
    if fields.next().is_some() {
        return Err(BadHost::Several);
    }
    // The target's authority: hyper's parser lets through some that are no `host[:port]`.
    let target = match uri.authority() {
        Some(authority) => {
            let authority = without_userinfo(authority.as_str());
            Some((authority, split_host(authority).ok_or(BadHost::Invalid)?))
        }
        None => None,
    };
    let Some(field) = field else {
        if version == Version::HTTP_11 {
            return Err(BadHost::Missing);
        }
        return Ok(target
            .map(|(authority, _)| authority)
            .filter(|a| !a.is_empty()));
    };
    let value = field.to_str().map_err(|_| BadHost::Invalid)?;
    let value = value.trim_matches([' ', '\t']);
    let (host, port) = split_host(value).ok_or(BadHost::Invalid)?;
    if let Some((_, (target_host, target_port))) = target {
        let default = match uri.scheme_str() {
            Some(scheme) if scheme.eq_ignore_ascii_case("http") => Some(80),
            Some(scheme) if scheme.eq_ignore_ascii_case("https") => Some(443),
            _ => None,
        };
        let same_port = port.or(default) == target_port.or(default);
        if !host.eq_ignore_ascii_case(target_host) || !same_port {
            return Err(BadHost::Mismatch);
        }
    }
    Ok(Some(value).filter(|v| !v.is_empty()))
}

/// `host[:port]` of an authority, without `userinfo@`.
fn without_userinfo(authority: &str) -> &str {
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, host_port)| host_port)
}

/// Splits `host[:port]` (RFC 3986: a registered name or IPv4 address, or an IP literal in
/// brackets; the port digits, possibly none). `None` when it is not that. The port is `None`
/// when absent or empty.
fn split_host(value: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if value.starts_with('[') {
        let end = value.find(']')?;
        let (literal, rest) = value.split_at(end + 1);
        let literal_ok = literal[1..end]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
            && end > 1;
        if !literal_ok {
            return None;
        }
        match rest.strip_prefix(':') {
            Some(port) => (literal, port),
            None if rest.is_empty() => (literal, ""),
            None => return None,
        }
    } else {
        let (host, port) = value.rsplit_once(':').unwrap_or((value, ""));
        let name_ok = host.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'-' | b'.'
                        | b'_'
                        | b'~'
                        | b'%'
                        | b'!'
                        | b'$'
                        | b'&'
                        | b'\''
                        | b'('
                        | b')'
                        | b'*'
                        | b'+'
                        | b','
                        | b';'
                        | b'='
                )
        });
        if !name_ok {
            return None;
        }
        (host, port)
    };
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let port = if port.is_empty() {
        None
    } else {
        // Digits only, so a failure is a number over 65535.
        Some(port.parse::<u16>().ok()?)
    };
    Some((host, port))
}

/// `Host` (or `:authority`) as the router compares it: lowercase, without port or trailing
/// dot. `None` for an empty host.
pub fn normalize_host(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let host = if raw.starts_with('[') {
        // An IPv6 literal, `[::1]:8080`: keep the brackets, drop the port.
        match raw.find(']') {
            Some(end) => &raw[..=end],
            None => raw,
        }
    } else {
        match raw.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            _ => raw,
        }
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() {
        return None;
    }
    Some(host.to_ascii_lowercase())
}

/// The app `host` (normalized) belongs to, if any: `<app>.<base_domain>` for an app in the
/// table, else a custom domain, exactly, else as `*.<parent>`. `base_domain` is lowercase.
pub fn app_for_host<'a>(table: &'a RouteTable, base_domain: &str, host: &str) -> Option<&'a str> {
    if let Some(label) = host
        .strip_suffix(base_domain)
        .and_then(|rest| rest.strip_suffix('.'))
    {
        if !label.is_empty() && !label.contains('.') {
            if let Some((name, _)) = table.apps.get_key_value(label) {
                return Some(name);
            }
        }
    }
    let app = table.domains.get(host).or_else(|| {
        let (_, parent) = host.split_once('.')?;
        if parent.is_empty() {
            return None;
        }
        table.domains.get(&format!("*.{parent}"))
    })?;
    table
        .apps
        .get_key_value(app.as_str())
        .map(|(name, _)| name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::AppRoutes;
    use uuid::Uuid;

    fn table() -> RouteTable {
        let app = AppRoutes {
            app_id: Uuid::nil(),
            maintenance: false,
            web_quantity: 1,
            crashed: false,
            booting: false,
            backends: Vec::new(),
            session_affinity: false,
        };
        let mut table = RouteTable::default();
        for name in ["myapp", "blog", "shop"] {
            table.apps.insert(name.to_owned(), app.clone());
        }
        for (domain, app) in [
            ("www.example.com", "myapp"),
            ("*.example.com", "shop"),
            ("blog.example.org", "blog"),
            ("gone.example.org", "deleted-app"),
            ("*.deep.example.net", "blog"),
        ] {
            table.domains.insert(domain.to_owned(), app.to_owned());
        }
        table
    }

    fn check(raw_host: &str, expected: Option<&str>) {
        let table = table();
        let got = normalize_host(raw_host)
            .and_then(|host| app_for_host(&table, "wharf.localhost", &host).map(str::to_owned));
        assert_eq!(got.as_deref(), expected, "host {raw_host:?}");
    }

    #[test]
    fn base_domain() {
        check("myapp.wharf.localhost", Some("myapp"));
        check("MyApp.Wharf.LocalHost", Some("myapp"));
        check("myapp.wharf.localhost:8080", Some("myapp"));
        check("myapp.wharf.localhost.", Some("myapp"));
        check("myapp.wharf.localhost.:443", Some("myapp"));
        check("nope.wharf.localhost", None);
        check("wharf.localhost", None);
        check(".wharf.localhost", None);
        check("www.myapp.wharf.localhost", None);
        check("myappwharf.localhost", None);
        check("myapp.wharf.localhost.evil.com", None);
        check("", None);
        check(":80", None);
        check("[::1]:8080", None);
    }

    #[test]
    fn custom_domains() {
        check("www.example.com", Some("myapp"));
        check("WWW.EXAMPLE.COM:80", Some("myapp"));
        check("blog.example.org", Some("blog"));
        check("example.org", None);
        // A domain whose app is not in the table routes nowhere.
        check("gone.example.org", None);
    }

    #[test]
    fn wildcards_match_one_label() {
        check("api.example.com", Some("shop"));
        check("a-b.example.com", Some("shop"));
        // The exact domain wins over the wildcard.
        check("www.example.com", Some("myapp"));
        check("example.com", None);
        check("a.b.example.com", None);
        check("x.deep.example.net", Some("blog"));
        check("deep.example.net", None);
        check("com", None);
    }

    #[test]
    fn normalizes() {
        assert_eq!(normalize_host(" A.B:1 ").as_deref(), Some("a.b"));
        assert_eq!(normalize_host("[::1]:80").as_deref(), Some("[::1]"));
        assert_eq!(normalize_host("a.b:x").as_deref(), Some("a.b:x"));
        assert_eq!(normalize_host("."), None);
    }

    /// `request_host` for a request with `target` (origin or absolute form, or HTTP/2's
    /// `scheme://authority/path`) and these `Host` field values.
    fn host_of(version: Version, target: &str, hosts: &[&[u8]]) -> Result<Option<String>, BadHost> {
        let uri: Uri = target.parse().expect("a valid target");
        let mut headers = HeaderMap::new();
        for host in hosts {
            headers.append(
                header::HOST,
                hyper::header::HeaderValue::from_bytes(host).expect("a valid field value"),
            );
        }
        request_host(version, &uri, &headers).map(|h| h.map(str::to_owned))
    }

    fn check_host(target: &str, hosts: &[&str], expected: Result<Option<&str>, BadHost>) {
        let hosts: Vec<&[u8]> = hosts.iter().map(|h| h.as_bytes()).collect();
        let got = host_of(Version::HTTP_11, target, &hosts);
        assert_eq!(
            got.as_ref().map(Option::as_deref).map_err(|bad| *bad),
            expected,
            "{target} with Host {hosts:?}"
        );
    }

    #[test]
    fn one_host_field() {
        check_host("/", &["myapp.wharf.test"], Ok(Some("myapp.wharf.test")));
        check_host(
            "/x?y",
            &["MyApp.example:8080"],
            Ok(Some("MyApp.example:8080")),
        );
        check_host("/", &["[::1]:80"], Ok(Some("[::1]:80")));
        check_host("/", &["127.0.0.1"], Ok(Some("127.0.0.1")));
        // An empty Host names no host (a 404, as for a host no app has).
        check_host("/", &[""], Ok(None));
        check_host("*", &["a.example"], Ok(Some("a.example")));
    }

    #[test]
    fn several_host_fields_are_refused() {
        check_host("/", &["a.example", "b.example"], Err(BadHost::Several));
        // Even the same name twice: which one a later hop reads is not ours to guess.
        check_host("/", &["a.example", "a.example"], Err(BadHost::Several));
        check_host("/", &["a.example", ""], Err(BadHost::Several));
        check_host(
            "http://a.example/",
            &["a.example", "a.example"],
            Err(BadHost::Several),
        );
    }

    #[test]
    fn a_host_must_be_a_host() {
        for bad in [
            "a.example/evil",
            "a.example@b.example",
            "a b",
            "a.example:80x",
            "a.example:99999",
            "a.example?x",
            "a.example#x",
            "[::1",
            "[::1]x",
            "[]",
            "[::g]",
            "a\\b",
        ] {
            check_host("/", &[bad], Err(BadHost::Invalid));
        }
        let obs_text = host_of(Version::HTTP_11, "/", &[b"caf\xe9.example".as_slice()]);
        assert_eq!(obs_text, Err(BadHost::Invalid));
        // An empty port is allowed by RFC 3986.
        check_host("/", &["a.example:"], Ok(Some("a.example:")));
    }

    #[test]
    fn an_absolute_target_and_its_host_agree() {
        check_host("http://a.example/", &["a.example"], Ok(Some("a.example")));
        check_host(
            "http://A.Example/p?q",
            &["a.EXAMPLE"],
            Ok(Some("a.EXAMPLE")),
        );
        check_host(
            "http://a.example:8080/",
            &["a.example:8080"],
            Ok(Some("a.example:8080")),
        );
        // A missing port is the scheme's default.
        check_host(
            "http://a.example:80/",
            &["a.example"],
            Ok(Some("a.example")),
        );
        check_host(
            "http://a.example/",
            &["a.example:80"],
            Ok(Some("a.example:80")),
        );
        check_host(
            "https://a.example/",
            &["a.example:443"],
            Ok(Some("a.example:443")),
        );
        // Userinfo is not part of the host (RFC 9112 section 3.2).
        check_host(
            "http://user@a.example/",
            &["a.example"],
            Ok(Some("a.example")),
        );
        check_host(
            "http://[::1]:8080/",
            &["[::1]:8080"],
            Ok(Some("[::1]:8080")),
        );
    }

    #[test]
    fn an_absolute_target_and_another_host_are_refused() {
        let mismatch = Err(BadHost::Mismatch);
        check_host("http://a.example/", &["b.example"], mismatch);
        check_host("http://a.example/", &["a.example.evil"], mismatch);
        check_host("http://a.example/", &["a.example:8080"], mismatch);
        check_host("http://a.example:8080/", &["a.example"], mismatch);
        check_host("https://a.example/", &["a.example:80"], mismatch);
        check_host("http://a.example/", &[""], mismatch);
        check_host("http://a.example./", &["a.example"], mismatch);
        check_host("http://b.example@a.example/", &["b.example"], mismatch);
    }

    #[test]
    fn http_1_1_needs_a_host_and_others_may_use_the_target() {
        assert_eq!(host_of(Version::HTTP_11, "/", &[]), Err(BadHost::Missing));
        assert_eq!(
            host_of(Version::HTTP_11, "http://a.example/", &[]),
            Err(BadHost::Missing)
        );
        assert_eq!(host_of(Version::HTTP_10, "/", &[]), Ok(None));
        assert_eq!(
            host_of(Version::HTTP_10, "http://u:p@a.example:81/", &[]),
            Ok(Some("a.example:81".to_owned()))
        );
        // HTTP/2 names the host in `:authority`; a `host` field beside it must agree.
        assert_eq!(
            host_of(Version::HTTP_2, "https://a.example/", &[]),
            Ok(Some("a.example".to_owned()))
        );
        assert_eq!(
            host_of(
                Version::HTTP_2,
                "https://a.example/",
                &[b"a.example".as_slice()]
            ),
            Ok(Some("a.example".to_owned()))
        );
        assert_eq!(
            host_of(
                Version::HTTP_2,
                "https://a.example/",
                &[b"b.example".as_slice()]
            ),
            Err(BadHost::Mismatch)
        );
        assert_eq!(
            host_of(
                Version::HTTP_2,
                "https://a.example/",
                &[b"a.example".as_slice(), b"a.example".as_slice()]
            ),
            Err(BadHost::Several)
        );
    }

    proptest::proptest! {
        #[test]
        fn request_host_never_panics(
            target in proptest::option::of("[a-zA-Z0-9.:@\\[\\]-]{1,20}"),
            hosts in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..24), 0..3),
            version in proptest::sample::select(vec![Version::HTTP_10, Version::HTTP_11, Version::HTTP_2]),
        ) {
            let uri: Uri = match target {
                Some(authority) => match format!("http://{authority}/").parse() {
                    Ok(uri) => uri,
                    Err(_) => return Ok(()),
                },
                None => Uri::from_static("/"),
            };
            let mut headers = HeaderMap::new();
            for host in &hosts {
                if let Ok(value) = hyper::header::HeaderValue::from_bytes(host) {
                    headers.append(header::HOST, value);
                }
            }
            if let Ok(Some(host)) = request_host(version, &uri, &headers) {
                // What is routed on is one of the names the request gave, and it was checked.
                proptest::prop_assert!(headers.len() <= 1);
                proptest::prop_assert!(split_host(host).is_some());
            }
        }

        #[test]
        fn an_app_is_found_whatever_the_case_and_port(
            name in "[a-z][a-z0-9-]{0,29}",
            upper in proptest::collection::vec(proptest::bool::ANY, 64),
            port in proptest::option::of(1u16..),
        ) {
            let mut routes = table();
            routes.apps.insert(name.clone(), routes.apps["myapp"].clone());
            let host: String = format!("{name}.wharf.localhost")
                .chars()
                .zip(upper.iter().cycle())
                .map(|(c, &up)| if up { c.to_ascii_uppercase() } else { c })
                .collect();
            let raw = match port {
                Some(port) => format!("{host}:{port}"),
                None => host,
            };
            let normalized = normalize_host(&raw).expect("a host");
            proptest::prop_assert_eq!(app_for_host(&routes, "wharf.localhost", &normalized), Some(name.as_str()));
        }

        #[test]
        fn never_panics(raw in "\\PC{0,40}") {
            if let Some(host) = normalize_host(&raw) {
                let _ = app_for_host(&table(), "wharf.localhost", &host);
            }
        }
    }
}
