//! Session affinity through a real router and real upstreams: a client's cookie keeps it on
//! its dyno, a forged or foreign cookie is ignored and replaced, a dyno that is gone or
//! refusing is no error (the request is balanced and pinned anew), and an app without the
//! feature gets no cookie and is balanced whatever cookie comes.
// A test that cannot go on fails by panicking.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use common::*;
use hyper::header::{COOKIE, SET_COOKIE};
use hyper::Request;
use uuid::Uuid;
use wharf_router::affinity::{COOKIE as AFFINITY, TOKEN_LEN};
use wharf_router::{AffinityKey, AppRoutes, RouteTable};

const KEY: &[u8] = b"the router's affinity key in these tests";

/// An upstream that answers with its name and the `Cookie` header it got.
async fn dyno(name: &'static str) -> Upstream {
    Upstream::start(move |req: Request<hyper::body::Incoming>| async move {
        let cookies: Vec<&str> = req
            .headers()
            .get_all(COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        hyper::Response::new(full(format!("{name}|{}", cookies.join("&"))))
    })
    .await
}

fn routes(name: &str, backends: &[SocketAddr], affinity: bool) -> (String, AppRoutes) {
    let (name, mut routes) = app(name, backends);
    routes.session_affinity = affinity;
    (name, routes)
}

async fn router(table: RouteTable) -> Harness {
    Harness::with(
        table,
        |config| config.affinity_key = AffinityKey::new(KEY),
        None,
    )
    .await
}

/// A GET with these `Cookie` headers, on a new connection: (dyno, cookies it got, Set-Cookie).
async fn request(harness: &Harness, app: &str, cookies: &[&str]) -> (String, String, Vec<String>) {
    let mut req = get(&app_host(app), "/");
    for cookie in cookies {
        req.headers_mut().append(COOKIE, cookie.parse().unwrap());
    }
    let reply = read(Client::connect(harness.addr).await.send(req).await.unwrap())
        .await
        .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    let set: Vec<String> = reply
        .headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let (dyno, got) = reply.body.split_once('|').unwrap();
    (dyno.to_owned(), got.to_owned(), set)
}

/// The `name=value` part of a Set-Cookie of the affinity cookie.
fn affinity_pair(set_cookies: &[String]) -> String {
    let [set] = set_cookies else {
        panic!("one Set-Cookie wanted: {set_cookies:?}");
    };
    let pair = set.split(';').next().unwrap();
    assert!(pair.starts_with(&format!("{AFFINITY}=")), "{set}");
    pair.to_owned()
}

/// How many of `n` requests with these cookies each dyno served.
async fn spread(
    harness: &Harness,
    app: &str,
    cookies: &[&str],
    n: usize,
) -> BTreeMap<String, usize> {
    let mut served = BTreeMap::new();
    for _ in 0..n {
        let (dyno, _, _) = request(harness, app, cookies).await;
        *served.entry(dyno).or_default() += 1;
    }
    served
}

#[tokio::test]
async fn a_client_with_its_cookie_stays_on_its_dyno() {
    let one = dyno("one").await;
    let two = dyno("two").await;
    let harness = router(table([routes("chat", &[one.addr, two.addr], true)])).await;

    let (first, got, set) = request(&harness, "chat", &[]).await;
    assert_eq!(got, "", "no cookie came, none is made up for the dyno");
    let [set_cookie] = set.as_slice() else {
        panic!("{set:?}")
    };
    let pair = affinity_pair(&set);
    assert_eq!(pair.len(), AFFINITY.len() + 1 + TOKEN_LEN);
    assert_eq!(
        set_cookie.strip_prefix(pair.as_str()),
        Some("; Path=/; HttpOnly"),
        "plain HTTP: neither Secure nor SameSite=None"
    );

    let other = "theme=dark";
    for _ in 0..20 {
        let (dyno, got, set) = request(&harness, "chat", &[other, &pair]).await;
        assert_eq!(dyno, first);
        // Forwarded as the client sent it, and not set again.
        assert_eq!(got, format!("{other}&{pair}"));
        assert!(set.is_empty(), "{set:?}");
    }
    // Without the cookie, requests spread over both dynos.
    let served = spread(&harness, "chat", &[], 40).await;
    assert_eq!(served.len(), 2, "{served:?}");
    harness.stop().await;
    one.stop().await;
    two.stop().await;
}

#[tokio::test]
async fn without_the_feature_no_cookie_is_set_and_none_is_followed() {
    let one = dyno("one").await;
    let two = dyno("two").await;
    let harness = router(table([routes("plain", &[one.addr, two.addr], false)])).await;
    let (_, _, set) = request(&harness, "plain", &[]).await;
    assert!(set.is_empty(), "{set:?}");
    let token = AffinityKey::new(KEY).token(app_id("plain"), Uuid::from_u128(1));
    let pair = format!("{AFFINITY}={token}");
    let served = spread(&harness, "plain", &[&pair], 40).await;
    assert_eq!(served.len(), 2, "a valid cookie pins nothing: {served:?}");

    // Turned on while the router runs: the next request gets its cookie.
    harness.set_table(table([routes("plain", &[one.addr, two.addr], true)]));
    let (_, _, set) = request(&harness, "plain", &[]).await;
    affinity_pair(&set);
    harness.stop().await;
    one.stop().await;
    two.stop().await;
}

#[tokio::test]
async fn a_forged_or_foreign_cookie_is_ignored_and_replaced() {
    let one = dyno("one").await;
    let two = dyno("two").await;
    let three = dyno("three").await;
    let harness = router(table([
        routes("chat", &[one.addr, two.addr], true),
        routes("other", &[three.addr], true),
    ]))
    .await;
    let dyno_one = Uuid::from_u128(1);
    let forged = [
        // Signed with another key.
        AffinityKey::new(b"a guess").token(app_id("chat"), dyno_one),
        // Valid, for another app whose dyno has the same id.
        AffinityKey::new(KEY).token(app_id("other"), dyno_one),
        // Made up.
        "A".repeat(TOKEN_LEN),
        "not base64 at all, but exactly the length!!".to_owned(),
        String::new(),
    ];
    for token in &forged {
        let pair = format!("{AFFINITY}={token}");
        let mut served = BTreeMap::<String, usize>::new();
        for _ in 0..40 {
            let (dyno, _, set) = request(&harness, "chat", &[&pair]).await;
            let new_pair = affinity_pair(&set);
            assert_ne!(new_pair, pair, "replaced");
            *served.entry(dyno).or_default() += 1;
        }
        assert_eq!(served.len(), 2, "{token:?} pins nothing: {served:?}");
    }
    // The other app's own cookie pins within it, and names nothing of `chat`'s.
    let (_, _, set) = request(&harness, "other", &[]).await;
    let theirs = affinity_pair(&set);
    let (dyno, _, set) = request(&harness, "other", &[&theirs]).await;
    assert_eq!((dyno.as_str(), set.len()), ("three", 0));
    harness.stop().await;
    one.stop().await;
    two.stop().await;
    three.stop().await;
}

#[tokio::test]
async fn hostile_cookie_headers_are_read_within_bounds() {
    let one = dyno("one").await;
    let two = dyno("two").await;
    let harness = router(table([routes("chat", &[one.addr, two.addr], true)])).await;
    let (pinned, _, set) = request(&harness, "chat", &[]).await;
    let pair = affinity_pair(&set);

    // Many headers, many cookies, a huge value: served, and the valid cookie (after the
    // junk of the wrong length) still pins.
    let junk = format!("{AFFINITY}=x; ").repeat(200);
    let huge = format!("{AFFINITY}={}", "B".repeat(16 * 1024));
    let mut cookies: Vec<&str> = vec![junk.as_str(); 20];
    cookies.push(&huge);
    cookies.push(&pair);
    for _ in 0..5 {
        let (dyno, _, set) = request(&harness, "chat", &cookies).await;
        assert_eq!(dyno, pinned);
        assert!(set.is_empty(), "{set:?}");
    }
    // Past the bound of cookies checked, it is ignored: balanced and set anew.
    let wrong = format!(
        "{AFFINITY}={}",
        AffinityKey::new(b"x").token(app_id("chat"), Uuid::from_u128(1))
    );
    let mut cookies = vec![wrong.as_str(); wharf_router::affinity::MAX_CHECKED_COOKIES];
    cookies.push(&pair);
    let (_, _, set) = request(&harness, "chat", &cookies).await;
    affinity_pair(&set);
    harness.stop().await;
    one.stop().await;
    two.stop().await;
}

#[tokio::test]
async fn a_gone_or_refusing_dyno_is_no_error_and_the_client_is_pinned_anew() {
    let one = dyno("one").await;
    let two = dyno("two").await;
    let both = [one.addr, two.addr];
    let harness = router(table([routes("chat", &both, true)])).await;
    let token = |n: u128| {
        let token = AffinityKey::new(KEY).token(app_id("chat"), Uuid::from_u128(n));
        format!("{AFFINITY}={token}")
    };
    // `common::app` numbers dynos from 1 in the order given.
    let (dyno, _, set) = request(&harness, "chat", &[&token(1)]).await;
    assert_eq!((dyno.as_str(), set.len()), ("one", 0));

    // web.1 leaves the table (stopped, restarting, or replaced by a deploy): web.2 serves,
    // and the client is pinned to it from now on.
    let (name, mut only_two) = routes("chat", &[two.addr], true);
    only_two.backends[0].id = Uuid::from_u128(2);
    harness.set_table(table([(name, only_two)]));
    let (dyno, _, set) = request(&harness, "chat", &[&token(1)]).await;
    assert_eq!(dyno, "two");
    assert_eq!(affinity_pair(&set), token(2));

    // web.1 is routed again but refuses connections: retried on web.2, pinned there.
    let refusing = refusing_addr().await;
    harness.set_table(table([routes("chat", &[refusing, two.addr], true)]));
    let (dyno, _, set) = request(&harness, "chat", &[&token(1)]).await;
    assert_eq!(dyno, "two");
    assert_eq!(affinity_pair(&set), token(2));

    let lines = harness.wait_for_lines(3).await;
    assert!(
        lines.iter().all(|line| !line.contains("at=error")),
        "no error for a stale cookie: {lines:#?}"
    );
    harness.stop().await;
    one.stop().await;
    two.stop().await;
}
