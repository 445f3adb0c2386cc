//! Fuzzes the router's handling of a client's request head, as `proxy::handle` does it: the
//! head is parsed from the input with `httparse` (as hyper does) into `http` parts, its host is
//! decided by `wharf_router::host::request_host` (and normalized for routing), a missing `Host`
//! is filled from the target, and the head is written for a dyno by
//! `wharf_router::headers::write_request_headers`. The input's first byte picks how the client
//! connected (`http` or `https`, IPv4 or IPv6); the rest is the head.
//!
//! Invariants of the host: two `Host` fields are refused, as is an HTTP/1.1 request without
//! one; an accepted `Host` names the same host as an absolute-form target; and the dyno gets
//! exactly one `Host`, naming the host the request was routed by.
//!
//! Invariants of the written head: it is well-formed (`name: value` lines, each name a token,
//! no CR, LF or NUL inside a value, and it parses back as the same fields); the hop-by-hop
//! fields are gone (`Connection`, `Keep-Alive`, `Proxy-Connection`, `TE`, `Trailer`,
//! `Transfer-Encoding`, `Upgrade`, and those a `Connection` field names), except `Upgrade` and
//! one `Connection: upgrade` for an upgrade; every other field of the client's goes out
//! unchanged and in order, except the forwarding fields, which the router writes once each
//! with its own values.
#![no_main]

use std::net::IpAddr;

use http::header::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use wharf_router::headers::{self, Forwarded, RequestRewrite};
use wharf_router::host::{normalize_host, request_host, BadHost};

/// The most header fields hyper reads in a request head.
const MAX_HEADERS: usize = 100;
const REQUEST_START_MS: u64 = 1_767_225_600_123;

/// The fields the router writes itself, whatever the client sent.
const ROUTER_FIELDS: &[&str] = &[
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-port",
    "x-request-start",
    "x-request-id",
    "via",
];
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fuzz_target!(|data: &[u8]| {
    let Some((&how, head)) = data.split_first() else {
        return;
    };
    let Some(mut request) = parse_head(head) else {
        return;
    };
    let routed = check_host(&mut request);
    let (client, proto, port) = match how % 4 {
        0 => (IpAddr::from([203, 0, 113, 7]), "http", 80),
        1 => (IpAddr::from([203, 0, 113, 7]), "https", 443),
        2 => (
            IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]),
            "http",
            8080,
        ),
        _ => (
            IpAddr::from([0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0201]),
            "https",
            8443,
        ),
    };
    let forwarded = Forwarded::new(client, proto, port);
    let lines = check_rewrite(
        &request,
        &forwarded,
        &client.to_canonical().to_string(),
        proto,
        port,
    );
    if let Some(routed) = routed {
        let sent: Vec<&[u8]> = lines
            .iter()
            .filter(|(name, _)| name == "host")
            .map(|(_, value)| &value[..])
            .collect();
        assert_eq!(sent.len(), 1, "the dyno gets {} Host fields", sent.len());
        let sent = std::str::from_utf8(sent[0]).expect("an accepted Host is text");
        assert_eq!(
            normalize_host(sent).as_deref(),
            Some(&routed[..]),
            "routed by {routed:?}, the dyno gets Host: {sent}"
        );
    }
});

/// Decides the request's host as the router does, asserting the rules, and fills in a missing
/// `Host` as the router does. Returns the host the request is routed by, if it is routed.
fn check_host(request: &mut http::request::Parts) -> Option<String> {
    let fields = request.headers.get_all("host").iter().count();
    let decided = request_host(request.version, &request.uri, &request.headers);
    if fields > 1 {
        assert_eq!(decided, Err(BadHost::Several));
    }
    if fields == 0 && request.version == http::Version::HTTP_11 {
        assert!(decided.is_err(), "HTTP/1.1 without Host: {decided:?}");
    }
    let raw = decided.ok()??.to_owned();
    let routed = normalize_host(&raw)?;
    if let (Some(field), Some(authority)) = (request.headers.get("host"), request.uri.authority()) {
        let target = authority.as_str().rsplit('@').next().unwrap_or_default();
        let field = field.to_str().expect("an accepted Host is text");
        assert_eq!(
            normalize_host(field).map(|h| without_port(&h)),
            normalize_host(target).map(|h| without_port(&h)),
            "Host {field:?} accepted for the target {:?}",
            request.uri
        );
    }
    if !request.headers.contains_key("host") {
        let value = HeaderValue::from_str(&raw).ok()?;
        request.headers.insert("host", value);
    }
    Some(routed)
}

/// A normalized host without the port `normalize_host` keeps when it is not all digits.
fn without_port(host: &str) -> String {
    if host.starts_with('[') {
        return host.to_owned();
    }
    host.rsplit_once(':')
        .map_or(host, |(name, _)| name)
        .to_owned()
}

/// A request head as the router gets it from hyper.
fn parse_head(head: &[u8]) -> Option<http::request::Parts> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut fields);
    if !parsed.parse(head).ok()?.is_complete() {
        return None;
    }
    let mut builder = http::Request::builder()
        .method(http::Method::from_bytes(parsed.method?.as_bytes()).ok()?)
        .uri(http::Uri::try_from(parsed.path?).ok()?)
        .version(match parsed.version? {
            0 => http::Version::HTTP_10,
            _ => http::Version::HTTP_11,
        });
    for field in parsed.headers.iter() {
        builder = builder.header(
            HeaderName::from_bytes(field.name.as_bytes()).ok()?,
            HeaderValue::from_bytes(field.value).ok()?,
        );
    }
    Some(builder.body(()).ok()?.into_parts().0)
}

fn check_rewrite(
    request: &http::request::Parts,
    forwarded: &Forwarded,
    client: &str,
    proto: &str,
    port: u16,
) -> Vec<(String, Vec<u8>)> {
    let map = &request.headers;
    let request_id = headers::request_id(map);
    let upgrade = request.version == http::Version::HTTP_11 && headers::wants_upgrade(map);
    let mut out = Vec::new();
    let written = headers::write_request_headers(
        &mut out,
        map,
        &RequestRewrite {
            forwarded,
            request_start_ms: REQUEST_START_MS,
            request_id: &request_id,
            upgrade,
        },
    );
    let lines = well_formed(&out);

    let named = named_by_connection(map);
    let kept = |name: &HeaderName| {
        let name = name.as_str();
        // `Host`, the field the request is routed by, stays even when `Connection` names it.
        let hop = HOP_BY_HOP.contains(&name) || (named.iter().any(|n| n == name) && name != "host");
        let upgrade_kept = upgrade && name == "upgrade";
        (!hop || upgrade_kept) && !ROUTER_FIELDS.contains(&name)
    };
    let expected: Vec<(String, Vec<u8>)> = map
        .iter()
        .filter(|(name, _)| kept(name))
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect();
    let passed: Vec<(String, Vec<u8>)> = lines
        .iter()
        .filter(|(name, _)| !ROUTER_FIELDS.contains(&name.as_str()) && name != "connection")
        .cloned()
        .collect();
    assert_eq!(
        passed, expected,
        "the client's fields, as the dyno gets them"
    );

    let values = |wanted: &str| -> Vec<&[u8]> {
        lines
            .iter()
            .filter(|(name, _)| name == wanted)
            .map(|(_, value)| &value[..])
            .collect()
    };
    let connection = values("connection");
    if upgrade {
        assert_eq!(connection, [b"upgrade"], "an upgrade's Connection");
    } else {
        assert!(connection.is_empty(), "Connection sent: {connection:?}");
    }
    for name in HOP_BY_HOP
        .iter()
        .filter(|n| !["connection", "upgrade"].contains(n))
    {
        assert!(values(name).is_empty(), "hop-by-hop {name} sent");
    }
    assert_eq!(values("x-forwarded-proto"), [proto.as_bytes()]);
    assert_eq!(values("x-forwarded-port"), [port.to_string().as_bytes()]);
    assert_eq!(
        values("x-request-start"),
        [REQUEST_START_MS.to_string().as_bytes()]
    );
    assert_eq!(values("x-request-id"), [request_id.as_bytes()]);
    let fwd = values("x-forwarded-for");
    assert_eq!(fwd, [written.fwd.as_bytes()]);
    assert!(written.fwd.ends_with(client), "{:?}", written.fwd);
    let via = values("via");
    assert_eq!(via.len(), 1);
    assert!(via[0].ends_with(headers::VIA.as_bytes()));
    assert_eq!(written.content_length, !values("content-length").is_empty());
    lines
}

/// The fields a `Connection` field names, as header names (a field that is not visible ASCII
/// names none).
fn named_by_connection(map: &HeaderMap) -> Vec<String> {
    map.get_all("connection")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
        .map(|name| name.as_str().to_owned())
        .collect()
}

/// The fields of a written head, asserting that each is one `name: value` line with a
/// lowercase token for a name and no CR, LF or NUL in its value, and that `httparse` reads the
/// same fields.
fn well_formed(out: &[u8]) -> Vec<(String, Vec<u8>)> {
    assert!(out.ends_with(b"\r\n"), "{:?}", String::from_utf8_lossy(out));
    let mut lines = Vec::new();
    for line in out[..out.len() - 1].split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").expect("every line ends in CRLF");
        let colon = line.iter().position(|&b| b == b':').expect("a colon");
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        let value = value.strip_prefix(b" ").expect("a space after the colon");
        let name = std::str::from_utf8(name).expect("an ASCII name");
        assert!(
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && !b"\"(),/:;<=>?@[\\]{}".contains(&b))
                && name == name.to_ascii_lowercase(),
            "bad name {name:?}"
        );
        assert!(
            !value.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0),
            "bad value {value:?}"
        );
        lines.push((name.to_owned(), value.to_vec()));
    }
    let mut fields = vec![httparse::EMPTY_HEADER; lines.len() + 1];
    let mut head = out.to_vec();
    head.extend_from_slice(b"\r\n");
    let status = httparse::parse_headers(&head, &mut fields).expect("the head parses");
    let httparse::Status::Complete((length, parsed)) = status else {
        panic!("the head is incomplete");
    };
    assert_eq!(length, head.len());
    let parsed: Vec<(String, Vec<u8>)> = parsed
        .iter()
        .map(|f| (f.name.to_owned(), f.value.to_vec()))
        .collect();
    assert_eq!(parsed, lines, "httparse reads other fields");
    lines
}
