//! Every Heroku error the router can be made to give, provoked against real upstreams on
//! 127.0.0.1 with short timeouts: the status and page the client gets, and the router line.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::BodyExt;
use hyper::{Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

const HOST: &str = "myapp.wharf.test";

/// The router line for `code` with the fields that vary blanked.
fn expected_line(code: &str, desc: &str, dyno: &str, rest: &str) -> String {
    format!(
        "at=error code={code} desc=\"{desc}\" method=GET path=\"/\" host={HOST} request_id=* fwd=\"127.0.0.1\" dyno={dyno} {rest} protocol=http"
    )
}

async fn check_refused(routes: wharf_router::AppRoutes, status: u16, page: &str, line: &str) {
    let router = Harness::start(table([("myapp".to_owned(), routes)])).await;
    let reply = get_once(router.addr, HOST, "/").await;
    assert_eq!(reply.status, status, "{}", reply.body);
    assert!(reply.body.contains(page), "{}", reply.body);
    assert_eq!(reply.headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(steady(&router.one_line().await), line);
    router.stop().await;
}

#[tokio::test]
async fn h10_app_crashed() {
    let (_, mut routes) = app("myapp", &[]);
    routes.crashed = true;
    let line = expected_line(
        "H10",
        "App crashed",
        "",
        "connect= service= status=503 bytes=",
    );
    check_refused(routes, 503, "Application error", &line).await;
}

#[tokio::test]
async fn h14_no_web_dynos() {
    let (_, mut routes) = app("myapp", &[]);
    routes.web_quantity = 0;
    let line = expected_line(
        "H14",
        "No web processes running",
        "",
        "connect= service= status=503 bytes=",
    );
    check_refused(routes, 503, "Application error", &line).await;
}

#[tokio::test]
async fn h80_maintenance_mode() {
    let upstream = Upstream::text("should not be reached").await;
    let (_, mut routes) = app("myapp", &[upstream.addr]);
    routes.maintenance = true;
    let line = format!(
        "at=info code=H80 desc=\"Maintenance mode\" method=GET path=\"/\" host={HOST} request_id=* fwd=\"127.0.0.1\" dyno= connect= service= status=503 bytes= protocol=http"
    );
    check_refused(routes, 503, "Offline for maintenance", &line).await;
}

#[tokio::test]
async fn h20_app_boot_timeout() {
    let (_, mut routes) = app("myapp", &[]);
    routes.booting = true;
    let line = expected_line(
        "H20",
        "App boot timeout",
        "",
        "connect= service= status=503 bytes=",
    );
    check_refused(routes, 503, "Application error", &line).await;
}

#[tokio::test]
async fn h21_every_dyno_refuses() {
    let (a, b) = (refusing_addr().await, refusing_addr().await);
    let (_, routes) = app("myapp", &[a, b]);
    let router = Harness::start(table([("myapp".to_owned(), routes)])).await;
    let reply = get_once(router.addr, HOST, "/").await;
    assert_eq!(reply.status, 503);
    let line = steady(&router.one_line().await);
    // Both were tried; the line names the last.
    assert!(
        line == expected_line(
            "H21",
            "Backend connection refused",
            "web.1",
            "connect=*ms service= status=503 bytes="
        ) || line
            == expected_line(
                "H21",
                "Backend connection refused",
                "web.2",
                "connect=*ms service= status=503 bytes="
            ),
        "{line}"
    );
}

#[tokio::test]
async fn h19_backend_connection_timeout() {
    // A listener that never accepts, its backlog full: new connections hang in SYN.
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut held = Vec::new();
    for _ in 0..16 {
        match tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(addr)).await {
            Ok(stream) => held.push(stream.unwrap()),
            Err(_) => break,
        }
    }
    let (_, routes) = app("myapp", &[addr]);
    let router = Harness::start(table([("myapp".to_owned(), routes)])).await;
    let reply = get_once(router.addr, HOST, "/").await;
    assert_eq!(reply.status, 503);
    assert_eq!(
        steady(&router.one_line().await),
        expected_line(
            "H19",
            "Backend connection timeout",
            "web.1",
            "connect=*ms service= status=503 bytes="
        )
    );
    drop(listener);
}

#[tokio::test]
async fn h12_request_timeout() {
    let upstream = Upstream::start(|_req| async {
        std::future::pending::<()>().await;
        Response::new(empty())
    })
    .await;
    let router = Harness::start(table([app("myapp", &[upstream.addr])])).await;
    let reply = get_once(router.addr, HOST, "/").await;
    assert_eq!(reply.status, 503);
    assert!(reply.body.contains("Application error"));
    assert_eq!(
        steady(&router.one_line().await),
        expected_line(
            "H12",
            "Request timeout",
            "web.1",
            "connect=*ms service=*ms status=503 bytes=0"
        )
    );
}

/// A dyno that reads a request's head, then closes the connection without answering.
async fn closing_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                drop(stream);
            });
        }
    });
    addr
}

#[tokio::test]
async fn h13_connection_closed_without_response() {
    let addr = closing_upstream().await;
    let router = Harness::start(table([app("myapp", &[addr])])).await;
    let reply = get_once(router.addr, HOST, "/").await;
    assert_eq!(reply.status, 503);
    assert_eq!(
        steady(&router.one_line().await),
        expected_line(
            "H13",
            "Connection closed without response",
            "web.1",
            "connect=*ms service=*ms status=503 bytes=0"
        )
    );
}

#[tokio::test]
async fn h18_server_request_interrupted() {
    let addr = closing_upstream().await;
    let router = Harness::start(table([app("myapp", &[addr])])).await;
    let mut client = Client::connect(router.addr).await;
    let (tx, body) = channel_body();
    let request = Request::builder()
        .method("POST")
        .uri("/")
        .header("host", HOST)
        .header("content-length", "100000")
        .body(body)
        .unwrap();
    tx.send(Bytes::from_static(b"the first part of a long body"))
        .await
        .unwrap();
    // The client is still sending (tx stays open) when the dyno hangs up.
    let reply = read(client.send(request).await.unwrap()).await.unwrap();
    assert_eq!(reply.status, 503);
    let line = steady(&router.one_line().await);
    assert_eq!(
        line,
        format!(
            "sock=backend at=error code=H18 desc=\"Server Request Interrupted\" method=POST path=\"/\" host={HOST} request_id=* fwd=\"127.0.0.1\" dyno=web.1 connect=*ms service=*ms status=503 bytes=0 protocol=http"
        )
    );
    drop(tx);
}

#[tokio::test]
async fn h15_idle_connection() {
    let upstream = Upstream::start(|_req| async {
        let (tx, body) = channel_body();
        tokio::spawn(async move {
            tx.send(Bytes::from_static(b"a start, then nothing"))
                .await
                .unwrap();
            // Holds the body open, sending nothing more.
            std::future::pending::<()>().await;
            drop(tx);
        });
        Response::new(body)
    })
    .await;
    let router = Harness::start(table([app("myapp", &[upstream.addr])])).await;
    let mut client = Client::connect(router.addr).await;
    let response = client.send(get(HOST, "/")).await.unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap();
    assert_eq!(first.into_data().unwrap(), "a start, then nothing");
    // The router cuts the response off: the client sees the body end in an error.
    let rest = body.frame().await;
    assert!(matches!(rest, Some(Err(_)) | None), "{rest:?}");
    assert_eq!(
        steady(&router.one_line().await),
        expected_line(
            "H15",
            "Idle connection",
            "web.1",
            "connect=*ms service=*ms status=503 bytes=21"
        )
    );
}

#[tokio::test]
async fn h27_client_request_interrupted() {
    let upstream = Upstream::start(|_req| async {
        std::future::pending::<()>().await;
        Response::new(empty())
    })
    .await;
    let router = Harness::with(
        table([app("myapp", &[upstream.addr])]),
        |c| c.timeouts.request = Duration::from_secs(60),
        None,
    )
    .await;
    let mut stream = TcpStream::connect(router.addr).await.unwrap();
    stream
        .write_all(format!("GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    // Hang up once the request is at the dyno.
    wait_for("the request at the dyno", || {
        router.balancer.outstanding(upstream.addr) > 0
    })
    .await;
    drop(stream);
    let line = steady(&router.one_line().await);
    assert_eq!(
        line,
        format!(
            "at=info code=H27 desc=\"Client Request Interrupted\" method=GET path=\"/\" host={HOST} request_id=* fwd=\"127.0.0.1\" dyno=web.1 connect=*ms service=*ms status=499 bytes=0 protocol=http"
        )
    );
}

#[tokio::test]
async fn h28_client_connection_idle() {
    let upstream = Upstream::start(|req| async move {
        let body = req.into_body().collect().await;
        Response::new(full(format!("read {:?}", body.map(|b| b.to_bytes().len()))))
    })
    .await;
    let router = Harness::with(
        table([app("myapp", &[upstream.addr])]),
        |c| {
            c.timeouts.client_idle = Duration::from_millis(300);
            c.timeouts.request = Duration::from_secs(60);
        },
        None,
    )
    .await;
    let mut stream = TcpStream::connect(router.addr).await.unwrap();
    // Promises ten bytes of body and sends none.
    stream
        .write_all(
            format!("POST / HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 10\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    while !response.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed after {response:?}");
        response.extend_from_slice(&buf[..n]);
    }
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 499"), "{response}");
    assert_eq!(
        steady(&router.one_line().await),
        format!(
            "sock=client at=warning code=H28 desc=\"Client Connection Idle\" method=POST path=\"/\" host={HOST} request_id=* fwd=\"127.0.0.1\" dyno=web.1 connect=*ms service=*ms status=499 bytes=0 protocol=http"
        )
    );
}
