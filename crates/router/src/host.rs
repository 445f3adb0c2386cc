//! Which app a request's host names: `<app>.<base-domain>`, or a custom domain, exact or by a
//! one-label wildcard (`*.example.com`). Case-insensitive; the port is ignored.

use crate::table::RouteTable;

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

    proptest::proptest! {
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
