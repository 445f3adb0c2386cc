//! Header rewriting, both ways: what the router adds to a request for a dyno (`X-Request-Id`,
//! `X-Forwarded-*`, `X-Request-Start`, `Via`), and the hop-by-hop headers it removes (RFC 9110
//! section 7.6.1), keeping an upgrade's `Connection: upgrade` and `Upgrade`.

use std::borrow::Cow;
use std::net::IpAddr;

use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use uuid::Uuid;

/// What the router says about itself in `Via`.
pub const VIA: &str = "1.1 wharf";

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub static X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
pub static X_REQUEST_START: HeaderName = HeaderName::from_static("x-request-start");

static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// How the client reached the router: the same for every request on a connection, so the
/// header values are made once per connection.
#[derive(Debug, Clone)]
pub struct Forwarded {
    /// The client's address, as text.
    client: String,
    /// `http` or `https`.
    proto: &'static str,
    /// The port the client connected to, as text.
    port: String,
}

impl Forwarded {
    /// A client at `client_ip` that connected with `proto` (`http` or `https`) to `port`.
    pub fn new(client_ip: IpAddr, proto: &'static str, port: u16) -> Forwarded {
        Forwarded {
            client: client_ip.to_canonical().to_string(),
            proto,
            port: port.to_string(),
        }
    }

    /// `http` or `https`.
    pub fn proto(&self) -> &'static str {
        self.proto
    }
}

/// A client's `X-Request-Id` is kept when it is 20 to 200 characters of `[A-Za-z0-9+=/-]`.
pub fn valid_request_id(id: &[u8]) -> bool {
    (20..=200).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'=' | b'/' | b'-'))
}

/// The request's id: the client's when valid, else a new UUID.
pub fn request_id(headers: &HeaderMap) -> String {
    match headers.get(&X_REQUEST_ID) {
        Some(id) if valid_request_id(id.as_bytes()) => {
            // Valid ids are ASCII, so this cannot fail.
            id.to_str()
                .map(str::to_owned)
                .unwrap_or_else(|_| new_request_id())
        }
        _ => new_request_id(),
    }
}

/// A random (v4) UUID from the thread's generator, which is cheaper than asking the OS.
fn new_request_id() -> String {
    uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .hyphenated()
        .encode_lower(&mut Uuid::encode_buffer())
        .to_owned()
}

/// Does the request ask to switch protocols (`Connection: upgrade` with `Upgrade`)? Not to
/// `h2c`: the router speaks HTTP/2 with clients itself, and a dyno switching a connection to
/// HTTP/2 would take that connection's later requests out of the router's hands.
pub fn wants_upgrade(headers: &HeaderMap) -> bool {
    let h2c = headers
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"h2c"));
    headers.contains_key(header::UPGRADE) && !h2c && connection_has(headers, "upgrade")
}

/// Does a `Connection` field name `token`?
pub(crate) fn connection_has(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// The hop-by-hop fields RFC 9110 lists (besides `Upgrade` and those a `Connection` names).
fn always_hop_by_hop(name: &HeaderName) -> bool {
    name == header::CONNECTION
        || name == KEEP_ALIVE
        || name == PROXY_CONNECTION
        || name == header::TE
        || name == header::TRAILER
        || name == header::TRANSFER_ENCODING
}

/// The fields a `Connection` field names, except `Upgrade` with `keep_upgrade`.
fn named_by_connection(headers: &HeaderMap, keep_upgrade: bool) -> Vec<HeaderName> {
    if !headers.contains_key(header::CONNECTION) {
        return Vec::new();
    }
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .filter(|name| !(keep_upgrade && name == header::UPGRADE))
        .collect()
}

/// Removes hop-by-hop headers: those named in `Connection`, and the ones RFC 9110 lists. With
/// `keep_upgrade`, the `Upgrade` header and `Connection: upgrade` stay.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    let mut hop: Vec<HeaderName> = named_by_connection(headers, keep_upgrade);
    hop.extend(
        headers
            .keys()
            .filter(|name| always_hop_by_hop(name))
            .cloned(),
    );
    for name in hop {
        headers.remove(name);
    }
    if keep_upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(header::UPGRADE);
    }
}

/// What the router adds to a request on its way to a dyno.
pub struct RequestRewrite<'a> {
    pub forwarded: &'a Forwarded,
    /// When the router received the request, in milliseconds since the Unix epoch.
    pub request_start_ms: u64,
    pub request_id: &'a str,
    /// The request switches protocols: `Upgrade` and `Connection: upgrade` stay.
    pub upgrade: bool,
}

/// What [`write_request_headers`] wrote.
pub struct Written {
    /// The `X-Forwarded-For` sent.
    pub fwd: String,
    /// A `Content-Length` field went out.
    pub content_length: bool,
}

/// Writes a client's request header fields as a dyno gets them (`name: value` lines): without
/// the hop-by-hop fields and without those the router sets, then the router's own
/// (`X-Forwarded-*` appended to the client's chain, `X-Request-Start`, `X-Request-Id`, `Via`).
/// No header map is changed on the way.
pub fn write_request_headers(
    out: &mut Vec<u8>,
    headers: &HeaderMap,
    rewrite: &RequestRewrite<'_>,
) -> Written {
    let named = named_by_connection(headers, rewrite.upgrade);
    let mut earlier_fwd: Vec<&str> = Vec::new();
    let mut earlier_via: Vec<&str> = Vec::new();
    let mut content_length = false;
    for (name, value) in headers {
        // `Host` is the field the request was routed by: a client naming it in `Connection`
        // (which RFC 9110 §7.6.1 forbids) does not take it away from the dyno.
        let hop_by_hop = always_hop_by_hop(name)
            || (name == header::UPGRADE && !rewrite.upgrade)
            || (named.contains(name) && name != header::HOST);
        if hop_by_hop {
            continue;
        }
        if name == X_FORWARDED_FOR {
            if let Ok(value) = value.to_str() {
                earlier_fwd.extend(Some(value.trim()).filter(|v| !v.is_empty()));
            }
        } else if name == header::VIA {
            earlier_via.extend(value.to_str().ok());
        } else if name != X_FORWARDED_PROTO
            && name != X_FORWARDED_PORT
            && name != X_REQUEST_START
            && name != X_REQUEST_ID
        {
            content_length |= name == header::CONTENT_LENGTH;
            line(out, name.as_str().as_bytes(), value.as_bytes());
        }
    }
    if rewrite.upgrade {
        line(out, b"connection", b"upgrade");
    }
    let forwarded = rewrite.forwarded;
    let fwd = forwarding_chain(&earlier_fwd, forwarded);
    line(out, X_FORWARDED_FOR.as_str().as_bytes(), fwd.as_bytes());
    line(
        out,
        X_FORWARDED_PROTO.as_str().as_bytes(),
        forwarded.proto.as_bytes(),
    );
    line(
        out,
        X_FORWARDED_PORT.as_str().as_bytes(),
        forwarded.port.as_bytes(),
    );
    line(
        out,
        X_REQUEST_START.as_str().as_bytes(),
        itoa::Buffer::new()
            .format(rewrite.request_start_ms)
            .as_bytes(),
    );
    line(
        out,
        X_REQUEST_ID.as_str().as_bytes(),
        rewrite.request_id.as_bytes(),
    );
    line(out, b"via", via_chain(&earlier_via).as_bytes());
    Written {
        fwd,
        content_length,
    }
}

/// `X-Forwarded-For`: the client's chain (its fields' non-empty values), then the client.
fn forwarding_chain(earlier: &[&str], forwarded: &Forwarded) -> String {
    if earlier.is_empty() {
        forwarded.client.clone()
    } else {
        format!("{}, {}", earlier.join(", "), forwarded.client)
    }
}

/// The `X-Forwarded-For` a dyno would get, for the router line of a request that goes to no
/// dyno (as [`write_request_headers`] makes it).
pub fn forwarded_for(headers: &HeaderMap, forwarded: &Forwarded) -> String {
    let earlier: Vec<&str> = headers
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .collect();
    forwarding_chain(&earlier, forwarded)
}

/// One `name: value` line of a message head.
fn line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Rewrites a dyno's response headers for the client. A `101 Switching Protocols` keeps its
/// `Upgrade` and `Connection: upgrade`.
pub fn rewrite_response(headers: &mut HeaderMap, switching_protocols: bool) {
    strip_hop_by_hop(headers, switching_protocols);
    append_via(headers);
}

/// HTTP/2 may split `Cookie` into one field per cookie; HTTP/1.1 wants one field, joined with
/// `; ` (RFC 9113 section 8.2.3).
pub fn join_cookies(headers: &mut HeaderMap) {
    let cookies: Vec<&str> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if cookies.len() > 1 {
        let joined = cookies.join("; ");
        set(headers, &header::COOKIE, &joined);
    }
}

fn append_via(headers: &mut HeaderMap) {
    if !headers.contains_key(header::VIA) {
        headers.insert(header::VIA, HeaderValue::from_static(VIA));
        return;
    }
    let earlier: Vec<&str> = headers
        .get_all(header::VIA)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    match via_chain(&earlier) {
        Cow::Borrowed(via) => {
            headers.insert(header::VIA, HeaderValue::from_static(via));
        }
        Cow::Owned(via) => set(headers, &header::VIA, &via),
    }
}

/// `Via` with the router after the proxies a message already went through.
fn via_chain(earlier: &[&str]) -> Cow<'static, str> {
    if earlier.is_empty() {
        Cow::Borrowed(VIA)
    } else {
        Cow::Owned(format!("{}, {VIA}", earlier.join(", ")))
    }
}

/// Sets a header the router built from valid header values and its own ASCII.
fn set(headers: &mut HeaderMap, name: &HeaderName, value: &str) {
    match HeaderValue::from_str(value) {
        Ok(value) => {
            headers.insert(name.clone(), value);
        }
        Err(_) => {
            // Only reachable with obs-text in an earlier value; drop what cannot be sent.
            headers.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::{expect, Expect};

    fn forwarded() -> Forwarded {
        Forwarded::new(IpAddr::from([203, 0, 113, 7]), "https", 443)
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_str(value).expect("value"),
            );
        }
        map
    }

    fn show(map: &HeaderMap) -> String {
        let mut lines: Vec<String> = map
            .iter()
            .map(|(k, v)| format!("{k}: {}\n", v.to_str().unwrap_or("<bytes>")))
            .collect();
        lines.sort();
        lines.concat()
    }

    fn check_request(pairs: &[(&str, &str)], expected: Expect) {
        let map = headers(pairs);
        let mut out = Vec::new();
        let written = write_request_headers(
            &mut out,
            &map,
            &RequestRewrite {
                forwarded: &forwarded(),
                request_start_ms: 1_767_225_600_123,
                request_id: "req-id-0123456789abcdef",
                upgrade: wants_upgrade(&map),
            },
        );
        let text = String::from_utf8(out).expect("ASCII");
        assert!(text.ends_with("\r\n"), "{text:?}");
        let mut lines: Vec<&str> = text.split_terminator("\r\n").collect();
        lines.sort_unstable();
        expected.assert_eq(&format!("fwd={}\n{}\n", written.fwd, lines.join("\n")));
    }

    #[test]
    fn request_headers() {
        check_request(
            &[
                ("host", "myapp.wharf.localhost"),
                ("connection", "keep-alive, X-Secret"),
                ("keep-alive", "timeout=5"),
                ("x-secret", "hop"),
                ("te", "trailers"),
                ("transfer-encoding", "chunked"),
                ("proxy-connection", "close"),
                ("upgrade", "h2c"),
                ("x-forwarded-proto", "http"),
                ("x-forwarded-port", "1"),
                ("accept", "*/*"),
            ],
            expect![[r#"
                fwd=203.0.113.7
                accept: */*
                host: myapp.wharf.localhost
                via: 1.1 wharf
                x-forwarded-for: 203.0.113.7
                x-forwarded-port: 443
                x-forwarded-proto: https
                x-request-id: req-id-0123456789abcdef
                x-request-start: 1767225600123
            "#]],
        );
    }

    #[test]
    fn the_host_routed_by_stays_when_a_client_names_it_in_connection() {
        // Found by fuzzing: `Connection: host` took the Host away from the dyno.
        check_request(
            &[
                ("host", "myapp.wharf.localhost"),
                ("connection", "keep-alive, host, x-forwarded-for"),
                ("x-forwarded-for", "198.51.100.1"),
            ],
            expect![[r#"
                fwd=203.0.113.7
                host: myapp.wharf.localhost
                via: 1.1 wharf
                x-forwarded-for: 203.0.113.7
                x-forwarded-port: 443
                x-forwarded-proto: https
                x-request-id: req-id-0123456789abcdef
                x-request-start: 1767225600123
            "#]],
        );
    }

    #[test]
    fn appends_to_forwarding_chains() {
        check_request(
            &[
                ("x-forwarded-for", "198.51.100.1"),
                ("x-forwarded-for", "10.0.0.2, 10.0.0.3"),
                ("via", "1.0 fred"),
            ],
            expect![[r#"
                fwd=198.51.100.1, 10.0.0.2, 10.0.0.3, 203.0.113.7
                via: 1.0 fred, 1.1 wharf
                x-forwarded-for: 198.51.100.1, 10.0.0.2, 10.0.0.3, 203.0.113.7
                x-forwarded-port: 443
                x-forwarded-proto: https
                x-request-id: req-id-0123456789abcdef
                x-request-start: 1767225600123
            "#]],
        );
    }

    #[test]
    fn forwarded_for_matches_what_a_dyno_gets() {
        let map = headers(&[
            ("x-forwarded-for", "198.51.100.1"),
            ("x-forwarded-for", " "),
            ("x-forwarded-for", "10.0.0.2, 10.0.0.3"),
        ]);
        let mut out = Vec::new();
        let written = write_request_headers(
            &mut out,
            &map,
            &RequestRewrite {
                forwarded: &forwarded(),
                request_start_ms: 1,
                request_id: "id",
                upgrade: false,
            },
        );
        assert_eq!(forwarded_for(&map, &forwarded()), written.fwd);
        assert_eq!(
            forwarded_for(&HeaderMap::new(), &forwarded()),
            "203.0.113.7"
        );
    }

    #[test]
    fn keeps_an_upgrade() {
        check_request(
            &[
                ("connection", "Upgrade"),
                ("upgrade", "websocket"),
                ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ],
            expect![[r#"
                fwd=203.0.113.7
                connection: upgrade
                sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==
                upgrade: websocket
                via: 1.1 wharf
                x-forwarded-for: 203.0.113.7
                x-forwarded-port: 443
                x-forwarded-proto: https
                x-request-id: req-id-0123456789abcdef
                x-request-start: 1767225600123
            "#]],
        );
    }

    #[test]
    fn response_headers() {
        let mut map = headers(&[
            ("connection", "close"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("content-type", "text/plain"),
        ]);
        rewrite_response(&mut map, false);
        expect![[r#"
            content-type: text/plain
            via: 1.1 wharf
        "#]]
        .assert_eq(&show(&map));
        let mut map = headers(&[("connection", "upgrade"), ("upgrade", "websocket")]);
        rewrite_response(&mut map, true);
        expect![[r#"
            connection: upgrade
            upgrade: websocket
            via: 1.1 wharf
        "#]]
        .assert_eq(&show(&map));
    }

    #[test]
    fn joins_cookies() {
        let mut map = headers(&[("cookie", "a=1"), ("cookie", "b=2"), ("accept", "*/*")]);
        join_cookies(&mut map);
        expect![[r#"
            accept: */*
            cookie: a=1; b=2
        "#]]
        .assert_eq(&show(&map));
    }

    #[test]
    fn request_ids() {
        let check =
            |id: &str, valid: bool| assert_eq!(valid_request_id(id.as_bytes()), valid, "{id:?}");
        check("abcdefghij0123456789", true);
        check("abcdefghij012345678", false);
        check(&"a".repeat(200), true);
        check(&"a".repeat(201), false);
        check("ABC+/=-abc+/=-abc+/=-", true);
        check("abcdefghij 0123456789", false);
        check("abcdefghij_0123456789", false);
        check("abcdefghij.0123456789", false);

        let kept = headers(&[("x-request-id", "client-chosen-id-0123456789")]);
        assert_eq!(request_id(&kept), "client-chosen-id-0123456789");
        let replaced = request_id(&headers(&[("x-request-id", "short")]));
        let parsed = Uuid::parse_str(&replaced).expect("a generated UUID");
        assert_eq!(parsed.get_version_num(), 4);
        assert_ne!(request_id(&HeaderMap::new()), replaced);
    }

    proptest::proptest! {
        #[test]
        fn request_ids_of_the_allowed_characters_are_kept(id in "[A-Za-z0-9+=/-]{20,200}") {
            let map = headers(&[("x-request-id", &id)]);
            proptest::prop_assert_eq!(request_id(&map), id);
        }

        #[test]
        fn other_request_ids_are_replaced(id in "[ -~]{0,220}") {
            let allowed = (20..=200).contains(&id.len())
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"+=/-".contains(&b));
            proptest::prop_assert_eq!(valid_request_id(id.as_bytes()), allowed);
        }
    }
}
