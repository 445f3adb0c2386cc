//! Custom domains and SNI endpoints: the hostname rules, Heroku-style endpoint names, and the
//! records the store keeps.
//!
//! Invariants:
//! - A [`Hostname`] is lowercase RFC 1123 labels with at most a leading `*.` wildcard; it is
//!   never an IP address, and never the base domain or a name under it (those are Wharf's own
//!   app hosts, `<app>.<base-domain>`).

use std::fmt;
use std::net::IpAddr;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::Invalid;

const HOSTNAME_MAX: usize = 253;
const LABEL_MAX: usize = 63;

/// A custom domain's hostname, validated against the server's base domain.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hostname(String);

impl Hostname {
    /// Accepts `www.example.com` or `*.example.com` (any case; kept lowercase). `base_domain`
    /// is the domain Wharf serves apps under: it and everything beneath it are refused.
    pub fn parse(raw: &str, base_domain: &str) -> Result<Hostname, Invalid> {
        let name = raw.trim().to_ascii_lowercase();
        let invalid = |why: &str| Err(Invalid::new(format!("Hostname {raw:?} is invalid: {why}")));
        if name.is_empty() {
            return Err(Invalid::new(
                "Hostname is missing: give a domain name such as www.example.com",
            ));
        }
        if name.parse::<IpAddr>().is_ok() {
            return invalid(
                "IP addresses can't be added; add a domain name and point its DNS at the app",
            );
        }
        if name.len() > HOSTNAME_MAX {
            return invalid(&format!(
                "a hostname is at most {HOSTNAME_MAX} characters long"
            ));
        }
        let (wildcard, rest) = match name.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, name.as_str()),
        };
        let labels: Vec<&str> = rest.split('.').collect();
        for label in &labels {
            if let Some(why) = label_problem(label) {
                return invalid(&why);
            }
        }
        if labels.len() < 2 {
            return invalid("a custom domain has at least two labels, such as example.com");
        }
        if labels
            .last()
            .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
        {
            return invalid(
                "IP addresses can't be added, and a top-level domain is never all digits",
            );
        }
        let base = base_domain.trim_end_matches('.').to_ascii_lowercase();
        if rest == base || rest.ends_with(&format!(".{base}")) {
            return invalid(&format!(
                "names under {base} are Wharf's own app hosts; every app has <app>.{base} already"
            ));
        }
        if wildcard
            && base
                .split_once('.')
                .is_some_and(|(_, parent)| parent == rest)
        {
            return invalid(&format!(
                "*.{rest} would cover {base}, the domain Wharf serves apps under"
            ));
        }
        Ok(Hostname(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is a `*.example.com` wildcard.
    pub fn is_wildcard(&self) -> bool {
        self.0.starts_with("*.")
    }
}

impl fmt::Display for Hostname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What is wrong with one label, if anything.
fn label_problem(label: &str) -> Option<String> {
    if label.is_empty() {
        return Some("it has an empty label (two dots in a row, or a dot at an end)".into());
    }
    if label.contains('*') {
        return Some(
            "a wildcard is allowed only as the whole first label, as in *.example.com".into(),
        );
    }
    if label.len() > LABEL_MAX {
        return Some(format!(
            "the label {label:?} is longer than {LABEL_MAX} characters"
        ));
    }
    if !label.is_ascii() {
        return Some(format!(
            "the label {label:?} is not ASCII: give an international name in its xn-- form"
        ));
    }
    if !label
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Some(format!(
            "the label {label:?} may contain only letters, digits and dashes"
        ));
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Some(format!("the label {label:?} starts or ends with a dash"));
    }
    None
}

/// Whether `hostname` (a [`Hostname`]'s text) is covered by a certificate name (`www.example.com`
/// or `*.example.com`): exact match, or a wildcard standing for exactly one label.
pub fn certificate_covers(certificate_name: &str, hostname: &str) -> bool {
    let certificate_name = certificate_name.to_ascii_lowercase();
    let hostname = hostname.to_ascii_lowercase();
    if certificate_name == hostname {
        return true;
    }
    match (
        certificate_name.strip_prefix("*."),
        hostname.split_once('.'),
    ) {
        (Some(suffix), Some((first, rest))) => first != "*" && rest == suffix,
        _ => false,
    }
}

/// The SNI endpoint a domain uses, by id and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SniEndpointRef {
    pub id: Uuid,
    pub name: String,
}

/// A custom domain as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    pub id: Uuid,
    pub app_id: Uuid,
    /// A [`Hostname`]'s text (kept as text: the base domain may change after it was added).
    pub hostname: String,
    pub sni_endpoint: Option<SniEndpointRef>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A certificate and its key that the router serves by SNI for the app's domains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SniEndpoint {
    pub id: Uuid,
    pub app_id: Uuid,
    pub name: String,
    /// PEM: the leaf certificate first, then its intermediates.
    pub certificate_chain: String,
    /// PEM. Never leaves the server in an API response.
    pub private_key: String,
    /// Hostnames of the app's domains that use this endpoint, sorted.
    pub domains: Vec<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

const ENDPOINT_PLACES: &[&str] = &[
    "akita",
    "aomori",
    "chiba",
    "fukui",
    "fukuoka",
    "gifu",
    "hakodate",
    "hiroshima",
    "kagoshima",
    "kanazawa",
    "kobe",
    "kochi",
    "kumamoto",
    "kyoto",
    "matsue",
    "matsuyama",
    "mito",
    "miyazaki",
    "nagano",
    "nagasaki",
    "nagoya",
    "naha",
    "nara",
    "niigata",
    "oita",
    "okayama",
    "osaka",
    "otaru",
    "saga",
    "sapporo",
    "sendai",
    "shizuoka",
    "takamatsu",
    "tokushima",
    "tokyo",
    "tottori",
    "toyama",
    "utsunomiya",
    "wakayama",
    "yamagata",
    "yokohama",
];

/// A Heroku-style SNI endpoint name (`tokyo-04821`) from two random numbers the caller draws.
pub fn generate_sni_endpoint_name(place: u32, number: u32) -> String {
    let place = ENDPOINT_PLACES[place as usize % ENDPOINT_PLACES.len()];
    format!("{place}-{:05}", number % 100_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BASE: &str = "wharf.example.net";

    fn check(raw: &str, expected: Result<&str, &str>) {
        match (Hostname::parse(raw, BASE), expected) {
            (Ok(hostname), Ok(want)) => assert_eq!(hostname.as_str(), want, "{raw:?}"),
            (Err(error), Err(fragment)) => {
                assert!(error.0.contains(fragment), "{raw:?}: {error}")
            }
            (got, want) => panic!("{raw:?}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn hostname_rules() {
        check("www.example.com", Ok("www.example.com"));
        check("WWW.Example.COM", Ok("www.example.com"));
        check("example.com", Ok("example.com"));
        check("*.example.com", Ok("*.example.com"));
        check("a-b.c1.example.io", Ok("a-b.c1.example.io"));
        check("", Err("missing"));
        check("localhost", Err("at least two labels"));
        check("*.com", Err("at least two labels"));
        check("www..example.com", Err("empty label"));
        check("www.example.com.", Err("empty label"));
        check("*.*.example.com", Err("wildcard"));
        check("www.*.example.com", Err("wildcard"));
        check("ww*.example.com", Err("wildcard"));
        check("my_app.example.com", Err("letters, digits and dashes"));
        check("café.example.com", Err("xn-- form"));
        check("xn--caf-dma.example.com", Ok("xn--caf-dma.example.com"));
        check("-www.example.com", Err("dash"));
        check("www-.example.com", Err("dash"));
        check(&format!("{}.com", "a".repeat(64)), Err("longer than 63"));
        check(&format!("{}.com", "a.".repeat(130)), Err("at most 253"));
        check("10.0.0.1", Err("IP addresses"));
        check("::1", Err("IP addresses"));
        check("example.123", Err("IP addresses"));
        check("wharf.example.net", Err("Wharf's own app hosts"));
        check("myapp.wharf.example.net", Err("Wharf's own app hosts"));
        check("*.wharf.example.net", Err("Wharf's own app hosts"));
        check("*.example.net", Err("would cover"));
        check("www.example.net", Ok("www.example.net"));
    }

    #[test]
    fn certificate_names_cover_hostnames() {
        assert!(certificate_covers("www.example.com", "www.example.com"));
        assert!(certificate_covers("*.example.com", "www.example.com"));
        assert!(certificate_covers("*.example.com", "*.example.com"));
        assert!(!certificate_covers("*.example.com", "example.com"));
        assert!(!certificate_covers("*.example.com", "a.b.example.com"));
        assert!(!certificate_covers("www.example.com", "api.example.com"));
        assert!(certificate_covers("WWW.example.com", "www.example.com"));
    }

    proptest! {
        #[test]
        fn parsed_hostnames_parse_again(raw in "(\\*\\.)?[a-z0-9-]{1,8}(\\.[a-zA-Z0-9-]{1,8}){1,3}") {
            if let Ok(hostname) = Hostname::parse(&raw, BASE) {
                prop_assert_eq!(Hostname::parse(hostname.as_str(), BASE), Ok(hostname.clone()));
            }
        }

        #[test]
        fn generated_endpoint_names_look_like_herokus(place in any::<u32>(), number in any::<u32>()) {
            let name = generate_sni_endpoint_name(place, number);
            let (word, digits) = name.split_once('-').unwrap();
            prop_assert!(word.bytes().all(|b| b.is_ascii_lowercase()));
            prop_assert_eq!(digits.len(), 5);
        }
    }
}
