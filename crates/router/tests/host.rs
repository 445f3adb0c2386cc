//! Requests that name their host more than once, not at all, or two different ways get `400`
//! from the router and never reach a dyno; one name, given once (or twice in agreement, as an
//! absolute-form target and its `Host`), is routed. Requests are raw bytes on a TCP socket, so
//! what is tested is what hyper lets through to the router.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::*;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A dyno that counts the requests it got and answers with its request line and `Host`.
async fn counting_upstream() -> (Upstream, Arc<AtomicUsize>) {
    let requests = Arc::new(AtomicUsize::new(0));
    let seen = requests.clone();
    let upstream = Upstream::start(move |req| {
        seen.fetch_add(1, Ordering::SeqCst);
        async move {
            let hosts: Vec<&str> = req
                .headers()
                .get_all("host")
                .iter()
                .map(|v| v.to_str().unwrap())
                .collect();
            let text = format!("{} {}\nhost={}\n", req.method(), req.uri(), hosts.join(","));
            Response::new(full(text))
        }
    })
    .await;
    (upstream, requests)
}

/// Sends `request` as it is and reads the whole answer (the request asks to close).
async fn raw(router: &Harness, request: &str) -> String {
    let mut stream = TcpStream::connect(router.addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut answer))
        .await
        .expect("the router answers and closes in time")
        .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

fn status_line(answer: &str) -> &str {
    answer.lines().next().unwrap_or("")
}

/// The router line of a refused request, with what varies blanked.
fn refused_line(cause: &str, path: &str, host: &str) -> String {
    format!(
        "at=error code=H26 desc=\"Request Error\" cause=\"{cause}\" method=GET path=\"{path}\" host={host} request_id=* fwd=\"127.0.0.1\" dyno= connect= service= status=400 bytes= protocol=http"
    )
}

#[tokio::test]
async fn two_host_headers_are_refused_before_any_dyno() {
    let (upstream, requests) = counting_upstream().await;
    let router = Harness::start(table([
        app("myapp", &[upstream.addr]),
        app("other", &[upstream.addr]),
    ]))
    .await;
    for hosts in [
        ["myapp.wharf.test", "other.wharf.test"],
        ["myapp.wharf.test", "myapp.wharf.test"],
    ] {
        let answer = raw(
            &router,
            &format!(
                "GET /two HTTP/1.1\r\nHost: {}\r\nHost: {}\r\nConnection: close\r\n\r\n",
                hosts[0], hosts[1]
            ),
        )
        .await;
        assert_eq!(status_line(&answer), "HTTP/1.1 400 Bad Request", "{answer}");
        assert!(answer.contains("<title>Bad request</title>"), "{answer}");
    }
    let lines = router.wait_for_lines(2).await;
    let expected = refused_line("more than one Host header", "/two", "myapp.wharf.test");
    assert_eq!(steady(&lines[0]), expected);
    assert_eq!(steady(&lines[1]), expected);
    // The line is the first Host's app's.
    let apps: Vec<_> = router
        .logs
        .lock()
        .unwrap()
        .iter()
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(apps, [app_id("myapp"), app_id("myapp")]);
    assert_eq!(requests.load(Ordering::SeqCst), 0);
    assert_eq!(upstream.connections.load(Ordering::SeqCst), 0);
    router.stop().await;
    upstream.stop().await;
}

#[tokio::test]
async fn an_absolute_target_must_agree_with_its_host() {
    let (upstream, requests) = counting_upstream().await;
    let router = Harness::start(table([
        app("myapp", &[upstream.addr]),
        app("other", &[upstream.addr]),
    ]))
    .await;

    // Another app's host in `Host`: refused, and the line goes to the target's app.
    let answer = raw(
        &router,
        "GET http://myapp.wharf.test/abs HTTP/1.1\r\nHost: other.wharf.test\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status_line(&answer), "HTTP/1.1 400 Bad Request", "{answer}");
    let line = router.one_line().await;
    assert_eq!(
        steady(&line),
        refused_line(
            "Host header differs from the request target",
            "/abs",
            "myapp.wharf.test"
        )
    );
    assert_eq!(router.logs.lock().unwrap()[0].0, app_id("myapp"));

    // Another port, and no Host at all, are refused too.
    for request in [
        "GET http://myapp.wharf.test:8080/ HTTP/1.1\r\nHost: myapp.wharf.test\r\nConnection: close\r\n\r\n",
        "GET http://myapp.wharf.test/ HTTP/1.1\r\nConnection: close\r\n\r\n",
    ] {
        let answer = raw(&router, request).await;
        assert_eq!(status_line(&answer), "HTTP/1.1 400 Bad Request", "{request}: {answer}");
    }
    assert_eq!(requests.load(Ordering::SeqCst), 0);

    // In agreement (case and a default port aside), it is routed, in origin form.
    for (target, host) in [
        ("http://myapp.wharf.test/abs?q=1", "myapp.wharf.test"),
        ("http://MyApp.Wharf.Test:80/abs?q=1", "myapp.wharf.test"),
    ] {
        let answer = raw(
            &router,
            &format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert_eq!(status_line(&answer), "HTTP/1.1 200 OK", "{answer}");
        assert!(
            answer.ends_with("\r\n\r\nGET /abs?q=1\nhost=myapp.wharf.test\n"),
            "{answer}"
        );
    }
    assert_eq!(requests.load(Ordering::SeqCst), 2);
    router.stop().await;
    upstream.stop().await;
}

#[tokio::test]
async fn http_1_1_without_a_host_or_with_a_bad_one_is_refused() {
    let (upstream, requests) = counting_upstream().await;
    let router = Harness::start(table([app("myapp", &[upstream.addr])])).await;
    for request in [
        "GET / HTTP/1.1\r\nConnection: close\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: myapp.wharf.test/x\r\nConnection: close\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: evil@myapp.wharf.test\r\nConnection: close\r\n\r\n",
    ] {
        let answer = raw(&router, request).await;
        assert_eq!(
            status_line(&answer),
            "HTTP/1.1 400 Bad Request",
            "{request}: {answer}"
        );
    }
    // HTTP/1.0 needs no Host: without one it names no app (hyper answers in HTTP/1.0).
    let answer = raw(&router, "GET / HTTP/1.0\r\n\r\n").await;
    assert_eq!(status_line(&answer), "HTTP/1.0 404 Not Found", "{answer}");
    // One Host, with the spaces a field value may have around it, is routed.
    let answer = raw(
        &router,
        "GET /ok HTTP/1.1\r\nHost:  myapp.wharf.test \t\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status_line(&answer), "HTTP/1.1 200 OK", "{answer}");
    assert_eq!(requests.load(Ordering::SeqCst), 1);
    router.stop().await;
    upstream.stop().await;
}

#[tokio::test]
async fn http2_authority_must_agree_with_host() {
    let (upstream, requests) = counting_upstream().await;
    let router = Harness::start(table([
        app("myapp", &[upstream.addr]),
        app("other", &[upstream.addr]),
    ]))
    .await;
    let stream = TcpStream::connect(router.addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut send = |host: Option<&str>| {
        let mut request = Request::builder().uri("http://myapp.wharf.test/h2");
        if let Some(host) = host {
            request = request.header("host", host);
        }
        sender.send_request(request.body(empty()).unwrap())
    };
    let refused = read(send(Some("other.wharf.test")).await.unwrap())
        .await
        .unwrap();
    assert_eq!(refused.status, 400, "{}", refused.body);
    let agreeing = read(send(Some("myapp.wharf.test")).await.unwrap())
        .await
        .unwrap();
    assert_eq!(agreeing.status, 200, "{}", agreeing.body);
    let authority_only = read(send(None).await.unwrap()).await.unwrap();
    assert_eq!(authority_only.status, 200, "{}", authority_only.body);
    assert_eq!(authority_only.body, "GET /h2\nhost=myapp.wharf.test\n");
    assert_eq!(requests.load(Ordering::SeqCst), 2);
    let line = router.one_line().await;
    assert!(
        line.starts_with("at=error code=H26 desc=\"Request Error\" cause=\"Host header differs from the request target\" method=GET path=\"/h2\" host=myapp.wharf.test "),
        "{line}"
    );
    router.stop().await;
    upstream.stop().await;
}
