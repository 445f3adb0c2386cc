//! The static server in process on 127.0.0.1:0 against sites in temp dirs, spoken to with a raw
//! HTTP/1.1 client (so that paths such as `/../` reach the server exactly as written).
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A site being served; a test that does not stop it leaves the server to end with the runtime.
struct Site {
    /// Kept so a temp site's files live as long as the server.
    _dir: Option<tempfile::TempDir>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<anyhow::Result<()>>,
}

/// One parsed response.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn write_files(root: &Path, files: &[(&str, &str)]) {
    for (name, contents) in files {
        let path = root.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }
}

async fn start(files: &[(&str, &str)]) -> Site {
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), files);
    start_in(dir).await
}

async fn start_in(dir: tempfile::TempDir) -> Site {
    let app_dir = dir.path().to_path_buf();
    start_at(app_dir, Some(dir)).await
}

async fn start_at(app_dir: PathBuf, dir: Option<tempfile::TempDir>) -> Site {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        wharf_static_server::serve(&app_dir, listener, async {
            let _ = stopped.await;
        })
        .await
    });
    Site {
        _dir: dir,
        addr,
        stop: Some(stop),
        server,
    }
}

impl Site {
    async fn get(&self, path: &str) -> Reply {
        self.request("GET", path, &[]).await
    }

    async fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut stream = TcpStream::connect(self.addr).await.unwrap();
        let mut request =
            format!("{method} {path} HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
            .await
            .expect("the server answers within 10 s")
            .unwrap();
        parse(&raw)
    }

    async fn stop(mut self) -> anyhow::Result<()> {
        self.stop.take().unwrap().send(()).unwrap();
        self.server.await.unwrap()
    }
}

fn parse(raw: &[u8]) -> Reply {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = std::str::from_utf8(&raw[..split]).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .map(|line| {
            let (name, value) = line.split_once(':').unwrap();
            (name.to_owned(), value.trim().to_owned())
        })
        .collect();
    Reply {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

const INDEX: &str = "<h1>Home</h1>\n";

#[tokio::test]
async fn serves_files_with_type_length_and_validators() {
    let site = start(&[("index.html", INDEX), ("css/site.css", "body{}")]).await;

    let home = site.get("/").await;
    assert_eq!(home.status, 200);
    assert_eq!(home.text(), INDEX);
    assert_eq!(
        home.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(home.header("content-length"), Some("14"));
    assert!(home.header("etag").unwrap().starts_with('"'));
    assert!(home.header("last-modified").unwrap().ends_with("GMT"));
    assert_eq!(home.header("accept-ranges"), Some("bytes"));

    let css = site.get("/css/site.css").await;
    assert_eq!((css.status, css.text().as_str()), (200, "body{}"));
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
    assert_eq!(site.get("/index.html").await.text(), INDEX);
    site.stop().await.unwrap();
}

#[tokio::test]
async fn unchanged_files_answer_304() {
    let site = start(&[("index.html", INDEX)]).await;
    let first = site.get("/").await;
    let etag = first.header("etag").unwrap();
    let modified = first.header("last-modified").unwrap();

    let by_tag = site.request("GET", "/", &[("If-None-Match", etag)]).await;
    assert_eq!(by_tag.status, 304);
    assert!(by_tag.body.is_empty());
    assert_eq!(by_tag.header("etag"), Some(etag));

    let by_date = site
        .request("GET", "/", &[("If-Modified-Since", modified)])
        .await;
    assert_eq!(by_date.status, 304);

    let stale = site
        .request("GET", "/", &[("If-None-Match", "\"old\"")])
        .await;
    assert_eq!((stale.status, stale.text().as_str()), (200, INDEX));
}

#[tokio::test]
async fn head_sends_the_headers_of_get_without_a_body() {
    let site = start(&[("index.html", INDEX)]).await;
    let head = site.request("HEAD", "/", &[]).await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(head.header("content-length"), Some("14"));
    assert_eq!(
        head.header("content-type"),
        Some("text/html; charset=utf-8")
    );
}

#[tokio::test]
async fn byte_ranges() {
    let site = start(&[("digits.txt", "0123456789")]).await;

    let part = site
        .request("GET", "/digits.txt", &[("Range", "bytes=2-5")])
        .await;
    assert_eq!(part.status, 206);
    assert_eq!(part.text(), "2345");
    assert_eq!(part.header("content-range"), Some("bytes 2-5/10"));
    assert_eq!(part.header("content-length"), Some("4"));

    let tail = site
        .request("GET", "/digits.txt", &[("Range", "bytes=-3")])
        .await;
    assert_eq!((tail.status, tail.text().as_str()), (206, "789"));

    let past = site
        .request("GET", "/digits.txt", &[("Range", "bytes=10-")])
        .await;
    assert_eq!(past.status, 416);
    assert_eq!(past.header("content-range"), Some("bytes */10"));

    let several = site
        .request("GET", "/digits.txt", &[("Range", "bytes=0-1,4-5")])
        .await;
    assert_eq!(
        (several.status, several.text().as_str()),
        (200, "0123456789")
    );
}

#[tokio::test]
async fn large_files_are_streamed_whole() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.path().join("big.bin"), &data).unwrap();
    let site = start_in(dir).await;
    let reply = site.get("/big.bin").await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(reply.header("content-length"), Some("5000000"));
    assert!(reply.body == data, "the body is the file, byte for byte");

    let middle = site
        .request("GET", "/big.bin", &[("Range", "bytes=3000000-3000009")])
        .await;
    assert_eq!(middle.body, &data[3_000_000..3_000_010]);
}

#[tokio::test]
async fn directories_serve_their_index_after_a_slash() {
    let site = start(&[
        ("index.html", INDEX),
        ("docs/index.html", "docs"),
        ("empty/x.txt", "x"),
    ])
    .await;
    let bare = site.get("/docs?page=2").await;
    assert_eq!(bare.status, 301);
    assert_eq!(bare.header("location"), Some("/docs/?page=2"));
    assert_eq!(site.get("/docs/").await.text(), "docs");
    assert_eq!(site.get("/empty/").await.status, 404);
}

#[tokio::test]
async fn nothing_outside_the_root_is_served() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "secret").unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[
            ("public_html/index.html", INDEX),
            ("public_html/a/b.txt", "b"),
            ("private.txt", "private"),
            (".env", "KEY=1"),
        ],
    );
    let public = dir.path().join("public_html");
    std::os::unix::fs::symlink(outside.path().join("secret.txt"), public.join("leak.txt")).unwrap();
    std::os::unix::fs::symlink(outside.path(), public.join("leakdir")).unwrap();
    std::os::unix::fs::symlink(public.join("a/b.txt"), public.join("inside.txt")).unwrap();
    std::fs::write(public.join(".htpasswd"), "admin:x").unwrap();
    let site = start_in(dir).await;

    for path in [
        "/../private.txt",
        "/a/../../private.txt",
        "/%2e%2e/private.txt",
        "/a/%2E%2E/%2e%2e/.env",
        "/a%5c..%5c..%5cprivate.txt",
        "/a/./b.txt",
    ] {
        assert_eq!(site.get(path).await.status, 400, "{path}");
    }
    for path in [
        "/leak.txt",
        "/leakdir/secret.txt",
        "/.htpasswd",
        "/private.txt",
    ] {
        let reply = site.get(path).await;
        assert_eq!(reply.status, 404, "{path}");
        assert!(!reply.text().contains("secret") && !reply.text().contains("admin"));
    }
    assert_eq!(site.get("/inside.txt").await.text(), "b");
}

#[tokio::test]
async fn clean_urls_serve_html_without_the_extension() {
    let site = start(&[
        ("static.json", r#"{"clean_urls": true}"#),
        ("about.html", "about"),
        ("blog/post.html", "post"),
    ])
    .await;
    assert_eq!(site.get("/about").await.text(), "about");
    assert_eq!(site.get("/blog/post").await.text(), "post");
    assert_eq!(site.get("/about.html").await.text(), "about");
    assert_eq!(site.get("/missing").await.status, 404);

    let plain = start(&[("about.html", "about")]).await;
    assert_eq!(plain.get("/about").await.status, 404);
}

#[tokio::test]
async fn routes_serve_a_single_page_app() {
    let site = start(&[
        (
            "static.json",
            r#"{"root": "dist", "routes": {"/**": "index.html"}}"#,
        ),
        ("dist/index.html", "app shell"),
        ("dist/app.js", "js"),
    ])
    .await;
    assert_eq!(site.get("/settings/profile").await.text(), "app shell");
    let deep = site.get("/settings/profile").await;
    assert_eq!(deep.status, 200);
    assert_eq!(site.get("/app.js").await.text(), "js");
    assert_eq!(
        site.get("/static.json").await.text(),
        "app shell",
        "outside the root"
    );
}

#[tokio::test]
async fn redirects_and_https_only() {
    let site = start(&[
        (
            "static.json",
            r#"{"https_only": true, "redirects": {"/old": {"url": "/new"}, "/docs/*": {"url": "https://docs.example.com/", "status": 302}}}"#,
        ),
        ("new.html", "new"),
    ])
    .await;
    let old = site.get("/old").await;
    assert_eq!((old.status, old.header("location")), (301, Some("/new")));
    let docs = site.get("/docs/intro").await;
    assert_eq!(
        (docs.status, docs.header("location")),
        (302, Some("https://docs.example.com/"))
    );

    let plain = site
        .request("GET", "/new.html?x=1", &[("X-Forwarded-Proto", "http")])
        .await;
    assert_eq!(plain.status, 301);
    assert_eq!(
        plain.header("location"),
        Some("https://site.test/new.html?x=1")
    );
    let secure = site
        .request("GET", "/new.html", &[("X-Forwarded-Proto", "https")])
        .await;
    assert_eq!((secure.status, secure.text().as_str()), (200, "new"));
}

#[tokio::test]
async fn configured_headers_apply_to_matching_paths() {
    let site = start(&[
        (
            "static.json",
            r#"{"headers": {"/**": {"X-Frame-Options": "DENY"}, "/assets/**": {"Cache-Control": "public, max-age=31536000, immutable"}}}"#,
        ),
        ("index.html", INDEX),
        ("assets/app.js", "js"),
    ])
    .await;
    let asset = site.get("/assets/app.js").await;
    assert_eq!(
        asset.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(asset.header("x-frame-options"), Some("DENY"));
    let home = site.get("/").await;
    assert_eq!(home.header("cache-control"), None);
    assert_eq!(home.header("x-frame-options"), Some("DENY"));
}

#[tokio::test]
async fn missing_files_get_the_error_page_with_404() {
    let site = start(&[
        ("static.json", r#"{"error_page": "errors/404.html"}"#),
        ("errors/404.html", "lost?"),
    ])
    .await;
    let reply = site.get("/nowhere").await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.text(), "lost?");
    assert_eq!(
        reply.header("content-type"),
        Some("text/html; charset=utf-8")
    );

    let bare = start(&[("index.html", INDEX)]).await;
    let reply = bare.get("/nowhere").await;
    assert_eq!((reply.status, reply.text().as_str()), (404, "Not Found\n"));
}

#[tokio::test]
async fn only_get_and_head_are_answered() {
    let site = start(&[("index.html", INDEX)]).await;
    let reply = site.request("POST", "/", &[("Content-Length", "0")]).await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("allow"), Some("GET, HEAD"));
}

#[tokio::test]
async fn keep_alive_serves_several_requests_on_one_connection() {
    let site = start(&[("a.txt", "aaa"), ("b.txt", "bb")]).await;
    let mut stream = TcpStream::connect(site.addr).await.unwrap();
    stream
        .write_all(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /b.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 2, "{text}");
    assert!(
        text.contains("\r\n\r\naaa") && text.ends_with("\r\n\r\nbb"),
        "{text}"
    );
}

#[tokio::test]
async fn shutdown_stops_accepting_and_returns() {
    let site = start(&[("index.html", INDEX)]).await;
    let addr = site.addr;
    assert_eq!(site.get("/").await.status, 200);
    tokio::time::timeout(Duration::from_secs(15), site.stop())
        .await
        .expect("serve returns after shutdown")
        .unwrap();
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn an_invalid_static_json_fails_before_serving() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("static.json"), "{\"routes\": [}").unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let error = wharf_static_server::serve(dir.path(), listener, std::future::pending())
        .await
        .unwrap_err();
    assert!(
        format!("{error:#}").contains("static.json is not valid"),
        "{error:#}"
    );
}

#[tokio::test]
async fn serves_the_static_site_fixture_as_a_dyno_would() {
    // The fixture the buildpack tests and the platform's end-to-end tests push.
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../buildpacks/test/fixtures/static-site");
    let site = start_at(fixture, None).await;
    let home = site.get("/").await;
    assert_eq!(home.status, 200);
    assert!(home.text().contains("Hello from static-site on Wharf"));
    assert_eq!(home.header("x-served-by"), Some("wharf-static-server"));
    assert!(site
        .get("/about")
        .await
        .text()
        .contains("About static-site"));
    let missing = site.get("/missing").await;
    assert_eq!(missing.status, 404);
    assert!(missing.text().contains("page not found"));
    site.stop().await.unwrap();
}
