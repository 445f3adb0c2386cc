//! Session affinity (Heroku's `http-session-affinity` feature): the router names the dyno that
//! served a client in a signed `heroku-session-affinity` cookie and sends the client's later
//! requests to that dyno while it is routed to.
//!
//! The cookie's value is opaque to clients: the dyno's id (never its address) and a MAC over
//! the app's id and the dyno's id, keyed with the router's [`AffinityKey`]. A client can
//! therefore name no dyno it was not sent to, no dyno of another app and no address at all; a
//! value that does not verify is ignored (the request is balanced as usual) and replaced.
//!
//! Reading the cookie is bounded whatever the client sends: `Cookie` headers are scanned once,
//! only values of the token's exact length are checked, and at most
//! [`MAX_CHECKED_COOKIES`] of them.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use hyper::header::{self, HeaderMap, HeaderValue};
use sha2::Sha256;
use uuid::Uuid;

use crate::table::Backend;

/// The app feature that turns session affinity on (off by default, as on Heroku).
pub const FEATURE: &str = "http-session-affinity";

/// The cookie's name, Heroku's.
pub const COOKIE: &str = "heroku-session-affinity";

/// Bytes of the MAC kept in a token: 128 bits, beyond guessing.
const MAC_LEN: usize = 16;
/// Bytes of a token before encoding: the dyno's id, then the MAC.
const RAW_LEN: usize = 16 + MAC_LEN;
/// Characters of an encoded token (base64url, no padding).
pub const TOKEN_LEN: usize = (RAW_LEN * 4).div_ceil(3);

/// At most this many `heroku-session-affinity` values of the right length are verified per
/// request (a browser sends one; more is a client trying its luck).
pub const MAX_CHECKED_COOKIES: usize = 4;

/// Separates what is signed from anything else signed with the same key.
const DOMAIN: &[u8] = b"wharf session affinity v1\0";

/// The secret that signs affinity cookies. Kept by the server across restarts, so that
/// clients stay with their dynos when the router restarts.
#[derive(Clone)]
pub struct AffinityKey {
    /// HMAC-SHA256 with the key already absorbed: cloned per token, not rekeyed.
    mac: Hmac<Sha256>,
}

impl AffinityKey {
    /// A key from secret bytes (32 random bytes, say).
    pub fn new(secret: &[u8]) -> AffinityKey {
        AffinityKey {
            mac: Hmac::new_from_slice(secret).expect("HMAC takes a key of any length"),
        }
    }

    /// A fresh random key (cookies it signs are valid for this router's life only).
    pub fn random() -> AffinityKey {
        AffinityKey::new(&AffinityKey::new_secret())
    }

    /// 32 random bytes, a secret for [`AffinityKey::new`] (for a server to keep).
    pub fn new_secret() -> [u8; 32] {
        rand::random()
    }

    fn mac(&self, app_id: Uuid, dyno_id: Uuid) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        mac.update(DOMAIN);
        mac.update(app_id.as_bytes());
        mac.update(dyno_id.as_bytes());
        mac
    }

    /// The cookie value naming `dyno_id` of `app_id`.
    pub fn token(&self, app_id: Uuid, dyno_id: Uuid) -> String {
        let tag = self.mac(app_id, dyno_id).finalize().into_bytes();
        let mut raw = [0u8; RAW_LEN];
        raw[..16].copy_from_slice(dyno_id.as_bytes());
        raw[16..].copy_from_slice(&tag[..MAC_LEN]);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// The dyno a cookie value names, if this key signed it for `app_id`.
    pub fn verify(&self, app_id: Uuid, value: &[u8]) -> Option<Uuid> {
        if value.len() != TOKEN_LEN {
            return None;
        }
        let mut raw = [0u8; RAW_LEN];
        let decoded = URL_SAFE_NO_PAD.decode_slice(value, &mut raw).ok()?;
        if decoded != RAW_LEN {
            return None;
        }
        let dyno_id = Uuid::from_slice(&raw[..16]).ok()?;
        // Constant time: a client learns nothing from how long a wrong MAC took.
        self.mac(app_id, dyno_id)
            .verify_truncated_left(&raw[16..])
            .ok()?;
        Some(dyno_id)
    }
}

impl fmt::Debug for AffinityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AffinityKey(..)")
    }
}

/// The values of every `heroku-session-affinity` cookie the request carries, in order, over
/// all its `Cookie` headers (HTTP/1.1 clients may send several).
pub fn cookie_values(headers: &HeaderMap) -> impl Iterator<Item = &[u8]> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .flat_map(|value| value.as_bytes().split(|&b| b == b';'))
        .filter_map(|pair| {
            let pair = pair.trim_ascii();
            let value = pair.strip_prefix(COOKIE.as_bytes())?.strip_prefix(b"=")?;
            // RFC 6265 allows a value in double quotes.
            let value = value
                .strip_prefix(b"\"")
                .and_then(|v| v.strip_suffix(b"\""))
                .unwrap_or(value);
            Some(value)
        })
}

/// What the request's cookies say about its dyno: the id of the dyno a valid cookie names
/// (whether or not it is still up), else `None`.
pub fn pinned_dyno(key: &AffinityKey, app_id: Uuid, headers: &HeaderMap) -> Option<Uuid> {
    cookie_values(headers)
        .filter(|value| value.len() == TOKEN_LEN)
        .take(MAX_CHECKED_COOKIES)
        .find_map(|value| key.verify(app_id, value))
}

/// Where the dyno a cookie names is among `backends`, if it is routed to.
pub fn position(backends: &[Backend], dyno_id: Uuid) -> Option<usize> {
    if dyno_id.is_nil() {
        return None;
    }
    backends.iter().position(|backend| backend.id == dyno_id)
}

/// The `Set-Cookie` header that pins a client to `dyno_id`: a session cookie for the whole
/// host, out of scripts' reach; over HTTPS also `Secure` and `SameSite=None`, so a page on
/// another site (an embedded widget, a socket.io client) keeps its dyno too, as on Heroku.
pub fn set_cookie(key: &AffinityKey, app_id: Uuid, dyno_id: Uuid, https: bool) -> HeaderValue {
    let attributes = if https {
        "; Path=/; HttpOnly; Secure; SameSite=None"
    } else {
        "; Path=/; HttpOnly"
    };
    let cookie = format!("{COOKIE}={}{attributes}", key.token(app_id, dyno_id));
    HeaderValue::try_from(cookie).expect("base64url and fixed attributes are a valid header")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (Uuid, Uuid, Uuid) {
        (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3))
    }

    #[test]
    fn a_token_verifies_for_its_app_and_key_only() {
        let (app, other_app, dyno) = ids();
        let key = AffinityKey::new(b"one key");
        let token = key.token(app, dyno);
        assert_eq!(token.len(), TOKEN_LEN);
        assert_eq!(key.verify(app, token.as_bytes()), Some(dyno));
        assert_eq!(key.verify(other_app, token.as_bytes()), None);
        assert_eq!(
            AffinityKey::new(b"another key").verify(app, token.as_bytes()),
            None
        );
        // The token names the dyno, not where it listens, and says nothing readable.
        assert!(!token.contains("web"));
    }

    #[test]
    fn a_changed_token_does_not_verify() {
        let (app, _, dyno) = ids();
        let key = AffinityKey::new(b"k");
        let token = key.token(app, dyno).into_bytes();
        for i in 0..token.len() {
            let mut forged = token.clone();
            forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
            assert_eq!(key.verify(app, &forged), None, "byte {i} changed");
        }
        let check = |value: &[u8]| assert_eq!(key.verify(app, value), None, "{value:?}");
        check(b"");
        check(&token[..TOKEN_LEN - 1]);
        check(&[token.as_slice(), b"A"].concat());
        check(&[b'='; TOKEN_LEN]);
        check(&[0xff; TOKEN_LEN]);
        // Another dyno's id with this dyno's MAC.
        let mut swapped = key.token(app, Uuid::from_u128(9)).into_bytes();
        swapped[22..].copy_from_slice(&token[22..]);
        check(&swapped);
    }

    fn headers(cookies: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for cookie in cookies {
            headers.append(header::COOKIE, HeaderValue::from_str(cookie).unwrap());
        }
        headers
    }

    #[test]
    fn cookie_values_over_every_cookie_header() {
        let check = |cookies: &[&str], expected: &[&str]| {
            let headers = headers(cookies);
            let values: Vec<&[u8]> = cookie_values(&headers).collect();
            let expected: Vec<&[u8]> = expected.iter().map(|e| e.as_bytes()).collect();
            assert_eq!(values, expected, "{cookies:?}");
        };
        check(&[], &[]);
        check(&["a=1; b=2"], &[]);
        check(&["heroku-session-affinity=x"], &["x"]);
        check(&["a=1;heroku-session-affinity=x ; b=2"], &["x"]);
        check(&["a=1", "heroku-session-affinity=\"y\""], &["y"]);
        check(
            &["heroku-session-affinity=x", "heroku-session-affinity=y"],
            &["x", "y"],
        );
        check(
            &["heroku-session-affinity2=x; xheroku-session-affinity=y"],
            &[],
        );
        check(&["heroku-session-affinity"], &[]);
        check(&["heroku-session-affinity="], &[""]);
    }

    #[test]
    fn the_first_valid_cookie_pins() {
        let (app, other_app, dyno) = ids();
        let key = AffinityKey::new(b"k");
        let good = format!("{COOKIE}={}", key.token(app, dyno));
        let other = format!("{COOKIE}={}", key.token(other_app, Uuid::from_u128(7)));
        let check = |cookies: &[&str], expected: Option<Uuid>| {
            assert_eq!(
                pinned_dyno(&key, app, &headers(cookies)),
                expected,
                "{cookies:?}"
            );
        };
        check(&[&good], Some(dyno));
        check(&[&other], None);
        check(&[&other, "x=1", &good], Some(dyno));
        check(&[&format!("{COOKIE}=garbage; {good}")], Some(dyno));
        // Past the bound, even a valid cookie is not looked at.
        let many = vec![other.as_str(); MAX_CHECKED_COOKIES];
        check(&[many.as_slice(), &[good.as_str()]].concat(), None);
        // Wrong lengths do not count against the bound.
        let short = format!("{COOKIE}=abc");
        let shorts = vec![short.as_str(); 100];
        check(&[shorts.as_slice(), &[good.as_str()]].concat(), Some(dyno));
    }

    #[test]
    fn set_cookie_attributes() {
        let (app, _, dyno) = ids();
        let key = AffinityKey::new(b"k");
        let token = key.token(app, dyno);
        let check = |https: bool, expected: String| {
            assert_eq!(set_cookie(&key, app, dyno, https), expected.as_str());
        };
        check(false, format!("{COOKIE}={token}; Path=/; HttpOnly"));
        check(
            true,
            format!("{COOKIE}={token}; Path=/; HttpOnly; Secure; SameSite=None"),
        );
    }

    proptest::proptest! {
        #[test]
        fn no_arbitrary_header_panics_or_verifies(cookie in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let key = AffinityKey::new(b"k");
            let mut headers = HeaderMap::new();
            if let Ok(value) = HeaderValue::from_bytes(&cookie) {
                headers.append(header::COOKIE, value);
            }
            proptest::prop_assert_eq!(pinned_dyno(&key, Uuid::from_u128(1), &headers), None);
        }
    }
}
