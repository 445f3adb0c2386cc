//! The router against real upstreams on 127.0.0.1: forwarding, headers, host matching,
//! keep-alive, streaming both ways, upgrades, HTTP/2 from clients, retries and waking.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use common::*;
use http_body_util::BodyExt;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Notify};

/// An upstream that answers with the request line and headers it got, one per line, sorted.
async fn echo_headers() -> Upstream {
    Upstream::start(|req| async move {
        let mut lines: Vec<String> = req
            .headers()
            .iter()
            .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap()))
            .collect();
        lines.sort();
        let text = format!(
            "{} {} {:?}\n{}\n",
            req.method(),
            req.uri(),
            req.version(),
            lines.join("\n")
        );
        Response::builder()
            .header("connection", "keep-alive")
            .header("keep-alive", "timeout=5")
            .header("x-dyno", "says hi")
            .body(full(text))
            .unwrap()
    })
    .await
}

fn header<'a>(body: &'a str, name: &str) -> Option<&'a str> {
    body.lines().find_map(|l| {
        l.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(": "))
    })
}

#[tokio::test]
async fn forwards_with_rewritten_headers_and_logs_a_line() {
    let upstream = echo_headers().await;
    let router = Harness::start(table([app("myapp", &[upstream.addr])])).await;
    let mut client = Client::connect(router.addr).await;
    let request = Request::builder()
        .uri("/hello?x=1")
        .header("host", "MyApp.wharf.test:8080")
        .header("connection", "keep-alive, x-private")
        .header("x-private", "hop-by-hop")
        .header("keep-alive", "timeout=1")
        .header("x-forwarded-for", "198.51.100.7")
        .header("x-request-id", "client-chosen-request-id-1")
        .body(empty())
        .unwrap();
    let reply = read(client.send(request).await.unwrap()).await.unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    let body = &reply.body;
    assert!(body.starts_with("GET /hello?x=1 HTTP/1.1\n"), "{body}");
    assert_eq!(header(body, "host"), Some("MyApp.wharf.test:8080"));
    assert_eq!(
        header(body, "x-forwarded-for"),
        Some("198.51.100.7, 127.0.0.1")
    );
    assert_eq!(header(body, "x-forwarded-proto"), Some("http"));
    let port = router.addr.port().to_string();
    assert_eq!(header(body, "x-forwarded-port"), Some(port.as_str()));
    assert_eq!(
        header(body, "x-request-id"),
        Some("client-chosen-request-id-1")
    );
    assert_eq!(header(body, "via"), Some("1.1 wharf"));
    let start: u64 = header(body, "x-request-start").unwrap().parse().unwrap();
    assert!(start > 1_700_000_000_000, "{start}");
    for hop in ["x-private", "keep-alive"] {
        assert_eq!(header(body, hop), None, "{hop} reached the dyno: {body}");
    }
    // The response: the dyno's headers, without its hop-by-hop ones.
    assert_eq!(reply.headers["x-dyno"], "says hi");
    assert_eq!(reply.headers["via"], "1.1 wharf");
    assert!(!reply.headers.contains_key("keep-alive"));

    let line = router.one_line().await;
    let logs = router.logs.lock().unwrap().clone();
    assert_eq!(logs[0].0, app_id("myapp"));
    assert_eq!(
        steady(&line),
        format!(
            "at=info method=GET path=\"/hello?x=1\" host=myapp.wharf.test request_id=* fwd=\"198.51.100.7, 127.0.0.1\" dyno=web.1 connect=*ms service=*ms status=200 bytes={} protocol=http",
            body.len()
        )
    );
    assert!(
        line.contains("request_id=client-chosen-request-id-1 "),
        "{line}"
    );
    router.stop().await;
    upstream.stop().await;
}

#[tokio::test]
async fn client_connections_are_spread_over_the_router_threads() {
    let upstream = echo_headers().await;
    let router = Harness::with(
        table([app("myapp", &[upstream.addr])]),
        |config| config.threads = 2,
        None,
    )
    .await;
    // A burst of connections, made before any is served: whichever thread wakes first
    // accepts most of them.
    let streams: Vec<std::net::TcpStream> = (0..8)
        .map(|_| std::net::TcpStream::connect(router.addr).unwrap())
        .collect();
    let mut clients = Vec::new();
    for stream in streams {
        stream.set_nonblocking(true).unwrap();
        let mut client = Client::from_stream(TcpStream::from_std(stream).unwrap()).await;
        let reply = client.get("myapp.wharf.test", "/").await.unwrap();
        assert_eq!(reply.status, 200, "{}", reply.body);
        clients.push(client);
    }
    // Each accepted connection went to the thread serving the fewest, whichever accepted it.
    assert_eq!(router.connections.per_thread(), [4, 4]);
    // Wherever a connection is served, it keeps working and knows its client.
    let port = router.addr.port().to_string();
    for client in &mut clients {
        let reply = client.get("myapp.wharf.test", "/again").await.unwrap();
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(header(&reply.body, "x-forwarded-for"), Some("127.0.0.1"));
        assert_eq!(header(&reply.body, "x-forwarded-port"), Some(port.as_str()));
    }
    drop(clients);
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while router.connections.per_thread() != [0, 0] {
        assert!(
            tokio::time::Instant::now() < deadline,
            "closed connections still counted: {:?}",
            router.connections.per_thread()
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    router.stop().await;
    upstream.stop().await;
}

#[tokio::test]
async fn generates_a_request_id_when_the_clients_is_not_valid() {
    let upstream = echo_headers().await;
    let router = Harness::start(table([app("myapp", &[upstream.addr])])).await;
    let mut client = Client::connect(router.addr).await;
    let request = Request::builder()
        .uri("/")
        .header("host", "myapp.wharf.test")
        .header("x-request-id", "too short")
        .body(empty())
        .unwrap();
    let reply = read(client.send(request).await.unwrap()).await.unwrap();
    let id = header(&reply.body, "x-request-id").unwrap();
    assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 4);
    let line = router.one_line().await;
    assert!(line.contains(&format!("request_id={id} ")), "{line}");
}

#[tokio::test]
async fn routes_by_host_and_custom_domain() {
    let (one, two) = (Upstream::text("one").await, Upstream::text("two").await);
    let mut routes = table([app("one", &[one.addr]), app("two", &[two.addr])]);
    routes
        .domains
        .insert("www.example.com".into(), "one".into());
    routes.domains.insert("*.shop.example".into(), "two".into());
    let router = Harness::start(routes).await;
    let mut client = Client::connect(router.addr).await;
    for (host, expected) in [
        ("one.wharf.test", "one"),
        ("TWO.WHARF.TEST", "two"),
        ("www.example.com:80", "one"),
        ("eu.shop.example", "two"),
    ] {
        let reply = client.get(host, "/").await.unwrap();
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (200, expected),
            "{host}"
        );
    }
    for host in [
        "three.wharf.test",
        "shop.example",
        "a.b.shop.example",
        "example.com",
    ] {
        let reply = client.get(host, "/").await.unwrap();
        assert_eq!(reply.status, 404, "{host}");
        assert!(reply.body.contains("No such app"), "{}", reply.body);
        assert_eq!(reply.headers["content-type"], "text/html; charset=utf-8");
    }
    let lines = router.wait_for_lines(4).await;
    // Unknown hosts belong to no app: no router line.
    assert_eq!(lines.len(), 4, "{lines:?}");
}

#[tokio::test]
async fn keeps_connections_alive_on_both_sides() {
    let upstream = Upstream::text("ok").await;
    let router = Harness::start(table([app("myapp", &[upstream.addr])])).await;
    let mut client = Client::connect(router.addr).await;
    for _ in 0..20 {
        let reply = client.get("myapp.wharf.test", "/").await.unwrap();
        assert_eq!(reply.status, 200);
    }
    // Sequential requests reuse one dyno connection (one more may open while the first goes
    // back to the pool).
    let connections = upstream.connections.load(Ordering::SeqCst);
    assert!(
        connections <= 2,
        "{connections} dyno connections for 20 requests"
    );
}

#[tokio::test]
async fn streams_a_chunked_response_as_it_arrives() {
    let release = Arc::new(Notify::new());
    let gate = release.clone();
    let upstream = Upstream::start(move |_req| {
        let gate = gate.clone();
        async move {
            let (tx, body) = channel_body();
            tokio::spawn(async move {
                tx.send(Bytes::from_static(b"first part;")).await.unwrap();
                gate.notified().await;
                tx.send(Bytes::from_static(b"second part")).await.unwrap();
            });
            Response::new(body)
        }
    })
    .await;
    let router = Harness::start(table([app("myapp", &[upstream.addr])])).await;
    let mut client = Client::connect(router.addr).await;
    let response = client.send(get("myapp.wharf.test", "/")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["transfer-encoding"], "chunked");
    let mut body = response.into_body();
    // The first part arrives while the dyno still holds back the second.
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(first, "first part;");
    release.notify_one();
    let mut rest = Vec::new();
    while let Some(frame) = body.frame().await {
        rest.extend_from_slice(&frame.unwrap().into_data().unwrap());
    }
    assert_eq!(rest, b"second part");
    let line = router.one_line().await;
    assert!(line.contains(" status=200 bytes=22 "), "{line}");
}

#[tokio::test]
async fn streams_a_request_body_as_it_arrives() {
    let (seen_tx, mut seen) = mpsc::channel::<Bytes>(4);
    let upstream = Upstream::start(move |req| {
        let seen_tx = seen_tx.clone();
        async move {
            let mut body = req.into_body();
            let mut total = 0;
            while let Some(frame) = body.frame().await {
                let data = frame.unwrap().into_data().unwrap();
                total += data.len();
                seen_tx.send(data).await.unwrap();
            }
            Response::new(full(format!("got {total} bytes")))
        }
    })
    .await;
    let router = Harness::start(table([app("myapp", &[upstream.addr])])).await;
    let mut client = Client::connect(router.addr).await;
    let (tx, body) = channel_body();
    let request = Request::builder()
        .method("POST")
        .uri("/upload")
        .header("host", "myapp.wharf.test")
        .body(body)
        .unwrap();
    let pending =
        tokio::spawn(async move { read(client.send(request).await.unwrap()).await.unwrap() });
    tx.send(Bytes::from_static(b"chunk one")).await.unwrap();
    // The dyno reads the first chunk before the client has sent the second.
    let mut received = Vec::new();
    while received.len() < 9 {
        received.extend_from_slice(&seen.recv().await.unwrap());
    }
    assert_eq!(received, b"chunk one");
    tx.send(Bytes::from_static(b", chunk two")).await.unwrap();
    drop(tx);
    let reply = pending.await.unwrap();
    assert_eq!((reply.status, reply.body.as_str()), (200, "got 20 bytes"));
}

#[tokio::test]
async fn bridges_a_websocket_upgrade() {
    let upstream = Upstream::start(|mut req| async move {
        assert_eq!(req.headers()["upgrade"], "websocket");
        assert_eq!(req.headers()["connection"], "upgrade");
        assert_eq!(
            req.headers()["sec-websocket-key"],
            "dGhlIHNhbXBsZSBub25jZQ=="
        );
        let upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            let mut io = TokioIo::new(upgrade.await.unwrap());
            let mut buf = [0u8; 1024];
            loop {
                let n = io.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                let mut reply = b"echo: ".to_vec();
                reply.extend_from_slice(&buf[..n]);
                io.write_all(&reply).await.unwrap();
            }
        });
        Response::builder()
            .status(101)
            .header("connection", "Upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
            .body(empty())
            .unwrap()
    })
    .await;
    let router = Harness::start(table([app("myapp", &[upstream.addr])])).await;
    let mut stream = TcpStream::connect(router.addr).await.unwrap();
    stream
        .write_all(
            b"GET /socket HTTP/1.1\r\nHost: myapp.wharf.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        )
        .await
        .unwrap();
    let head = read_head(&mut stream).await;
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{head}"
    );
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains("upgrade: websocket\r\n"), "{head}");
    assert!(lower.contains("connection: upgrade\r\n"), "{head}");
    assert!(
        lower.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=\r\n"),
        "{head}"
    );
    for message in ["hello", "again"] {
        stream.write_all(message.as_bytes()).await.unwrap();
        let expected = format!("echo: {message}");
        let mut buf = vec![0u8; expected.len()];
        stream.read_exact(&mut buf).await.unwrap();
        assert_eq!(String::from_utf8(buf).unwrap(), expected);
    }
    let line = router.one_line().await;
    assert!(
        line.contains(" path=\"/socket\" ") && line.contains(" status=101 "),
        "{line}"
    );
}

/// Reads a response head (through the blank line) byte by byte.
async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        assert_eq!(
            stream.read(&mut byte).await.unwrap(),
            1,
            "closed after {head:?}"
        );
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

#[tokio::test]
async fn serves_http2_clients_with_prior_knowledge() {
    let upstream = echo_headers().await;
    let router = Harness::start(table([app("myapp", &[upstream.addr])])).await;
    let stream = TcpStream::connect(router.addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    for n in 0..3 {
        let request = Request::builder()
            .uri(format!("http://myapp.wharf.test/h2/{n}"))
            .header("cookie", "a=1")
            .header("cookie", "b=2")
            .body(empty())
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.version(), hyper::Version::HTTP_2);
        let reply = read(response).await.unwrap();
        assert_eq!(reply.status, 200);
        // The dyno gets HTTP/1.1 with a Host header and one Cookie header.
        assert!(
            reply.body.starts_with(&format!("GET /h2/{n} HTTP/1.1\n")),
            "{}",
            reply.body
        );
        assert_eq!(header(&reply.body, "host"), Some("myapp.wharf.test"));
        assert_eq!(header(&reply.body, "cookie"), Some("a=1; b=2"));
    }
    let lines = router.wait_for_lines(3).await;
    assert!(
        lines[0].contains(" path=\"/h2/0\" host=myapp.wharf.test "),
        "{}",
        lines[0]
    );
}

#[tokio::test]
async fn retries_another_dyno_when_one_refuses() {
    let refusing = refusing_addr().await;
    let upstream = Upstream::text("up").await;
    let router = Harness::with(
        table([app("myapp", &[refusing, upstream.addr])]),
        |c| c.balancing = wharf_router::Balancing::Random,
        None,
    )
    .await;
    let mut client = Client::connect(router.addr).await;
    // Random picks reach the refusing dyno soon; the request that does is retried, and it
    // is quarantined.
    let mut sent = 0;
    while !router.balancer.quarantined(refusing) {
        assert!(sent < 64, "the refusing dyno was never picked");
        sent += 1;
        let reply = client.get("myapp.wharf.test", "/").await.unwrap();
        assert_eq!((reply.status, reply.body.as_str()), (200, "up"));
    }
    for _ in 0..10 {
        sent += 1;
        let reply = client.get("myapp.wharf.test", "/").await.unwrap();
        assert_eq!((reply.status, reply.body.as_str()), (200, "up"));
    }
    let lines = router.wait_for_lines(sent).await;
    assert!(
        lines
            .iter()
            .all(|l| l.contains(" dyno=web.2 ") && l.contains(" status=200 ")),
        "{lines:?}"
    );
}

#[tokio::test]
async fn least_outstanding_avoids_a_busy_dyno() {
    let release = Arc::new(Notify::new());
    let gate = release.clone();
    let slow = Upstream::start(move |_req| {
        let gate = gate.clone();
        async move {
            gate.notified().await;
            Response::new(full("slow"))
        }
    })
    .await;
    let fast = Upstream::text("fast").await;
    let router = Harness::start(table([app("myapp", &[slow.addr, fast.addr])])).await;
    // Occupy the slow dyno: a request that picks it stays in flight.
    let pending = loop {
        let addr = router.addr;
        let mut request =
            tokio::spawn(async move { get_once(addr, "myapp.wharf.test", "/").await });
        let finished = tokio::select! {
            reply = &mut request => Some(reply.unwrap()),
            () = wait_until_outstanding(&router, slow.addr) => None,
        };
        match finished {
            Some(reply) => assert_eq!(reply.body, "fast"),
            None => break request,
        }
    };
    // While it is busy, every request goes to the idle one.
    let mut client = Client::connect(router.addr).await;
    for _ in 0..10 {
        assert_eq!(
            client.get("myapp.wharf.test", "/").await.unwrap().body,
            "fast"
        );
    }
    release.notify_one();
    assert_eq!(pending.await.unwrap().body, "slow");
}

/// Resolves once a request is in flight to `addr`.
async fn wait_until_outstanding(router: &Harness, addr: std::net::SocketAddr) {
    wait_for("a request in flight", || {
        router.balancer.outstanding(addr) > 0
    })
    .await;
}

#[tokio::test]
async fn holds_requests_for_a_booting_app_and_wakes_it_once() {
    let (wake_tx, mut wake_rx) = mpsc::channel(8);
    let (name, mut routes) = app("sleepy", &[]);
    routes.booting = true;
    let router = Harness::with(
        table([(name.clone(), routes.clone())]),
        |c| {
            c.wake = Some(wake_tx);
            c.timeouts.boot = std::time::Duration::from_secs(30);
        },
        None,
    )
    .await;
    let addr = router.addr;
    let first = tokio::spawn(async move { get_once(addr, "sleepy.wharf.test", "/").await });
    assert_eq!(wake_rx.recv().await, Some(app_id("sleepy")));
    let second = tokio::spawn(async move { get_once(addr, "sleepy.wharf.test", "/").await });
    // The dyno comes up after both requests arrived.
    let upstream = Upstream::text("awake").await;
    wait_for("both requests held", || router.held.count() == 2).await;
    // A table change that still has no dyno up keeps them held, and wakes nobody again.
    router.set_table(table([(name.clone(), routes.clone())]));
    routes.booting = false;
    routes.backends.push(wharf_router::Backend {
        id: uuid::Uuid::from_u128(1),
        dyno: "web.1".into(),
        addr: upstream.addr,
    });
    router.set_table(table([(name, routes)]));
    for request in [first, second] {
        let reply = request.await.unwrap();
        assert_eq!((reply.status, reply.body.as_str()), (200, "awake"));
    }
    assert!(wake_rx.try_recv().is_err(), "one wake signal for the app");
}

#[tokio::test]
async fn shutdown_stops_accepting_and_lets_requests_in_flight_finish() {
    let started = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let (at_dyno, gate) = (started.clone(), release.clone());
    let upstream = Upstream::start(move |_req| {
        let (at_dyno, gate) = (at_dyno.clone(), gate.clone());
        async move {
            at_dyno.notify_one();
            gate.notified().await;
            Response::new(full("finished"))
        }
    })
    .await;
    let router = Harness::start(table([app("myapp", &[upstream.addr])])).await;
    let addr = router.addr;
    let in_flight = tokio::spawn(async move { get_once(addr, "myapp.wharf.test", "/").await });
    started.notified().await;
    router.shutdown.cancel();
    // The listener closes: new connections are refused.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while TcpStream::connect(addr).await.is_ok() {
        assert!(tokio::time::Instant::now() < deadline, "still accepting");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    release.notify_one();
    let reply = in_flight.await.unwrap();
    assert_eq!((reply.status, reply.body.as_str()), (200, "finished"));
    router.stop().await;
}

#[tokio::test]
async fn answers_in_http_1_1_whatever_the_dyno_speaks() {
    // A dyno that answers in HTTP/1.0 and closes, as Python's `http.server` does.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dyno = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                read_head(&mut stream).await;
                stream
                    .write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nold")
                    .await
                    .unwrap();
            });
        }
    });
    let router = Harness::start(table([app("myapp", &[dyno])])).await;
    let mut client = TcpStream::connect(router.addr).await.unwrap();
    for _ in 0..2 {
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: myapp.wharf.test\r\n\r\n")
            .await
            .unwrap();
        let head = read_head(&mut client).await;
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        let mut body = [0u8; 3];
        client.read_exact(&mut body).await.unwrap();
        assert_eq!(&body, b"old", "the client connection stays open");
    }
}

#[tokio::test]
async fn a_connection_the_dyno_closed_while_pooled_is_not_used() {
    // A dyno that keeps no connection alive after its answer (without saying so), as a server
    // whose keep-alive timeout ran out would.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dyno = listener.local_addr().unwrap();
    let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let closed = Arc::new(Notify::new());
    let (counted, notify) = (connections.clone(), closed.clone());
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            counted.fetch_add(1, Ordering::SeqCst);
            read_head(&mut stream).await;
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .await
                .unwrap();
            drop(stream);
            notify.notify_one();
        }
    });
    let router = Harness::start(table([app("myapp", &[dyno])])).await;
    let mut client = Client::connect(router.addr).await;
    for _ in 0..3 {
        // POST: a request that must not be sent twice, so only a fresh connection will do.
        let request = Request::builder()
            .method("POST")
            .uri("/")
            .header("host", app_host("myapp"))
            .body(empty())
            .unwrap();
        let reply = read(client.send(request).await.unwrap()).await.unwrap();
        assert_eq!((reply.status, reply.body.as_str()), (200, "ok"));
        closed.notified().await;
    }
    assert_eq!(connections.load(Ordering::SeqCst), 3);
    let lines = router.wait_for_lines(3).await;
    assert!(lines.iter().all(|l| l.contains("status=200")), "{lines:?}");
}

#[tokio::test]
async fn a_dyno_may_answer_before_it_has_the_whole_body() {
    // A dyno that refuses a large upload from its head alone, and reads no more of it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dyno = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        read_head(&mut stream).await;
        stream
            .write_all(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\n\r\ntoo much")
            .await
            .unwrap();
        // Holds the connection open, reading nothing.
        std::future::pending::<()>().await;
    });
    let router = Harness::start(table([app("myapp", &[dyno])])).await;
    let mut client = TcpStream::connect(router.addr).await.unwrap();
    let mut request =
        b"POST /upload HTTP/1.1\r\nHost: myapp.wharf.test\r\nContent-Length: 1000000\r\n\r\n"
            .to_vec();
    request.extend_from_slice(&[b'x'; 10_000]);
    client.write_all(&request).await.unwrap();
    let head = read_head(&mut client).await;
    assert!(head.starts_with("HTTP/1.1 413 "), "{head}");
    let line = router.one_line().await;
    assert!(
        line.contains("at=info") && line.contains("status=413"),
        "{line}"
    );
}
