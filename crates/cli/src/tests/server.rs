//! A tiny HTTP/1.1 server on 127.0.0.1:0 that records requests and answers each with a
//! canned response chosen by method and path.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const FINISH_DEADLINE: Duration = Duration::from_secs(5);

/// One expected request (`"GET /apps/x"`) and the answer to it.
pub struct Canned {
    route: String,
    status: u16,
    content_type: &'static str,
    headers: Vec<(String, String)>,
    body: String,
    /// Send the body with chunked transfer encoding, in these pieces, as a live stream is.
    chunks: Option<Vec<String>>,
}

impl Canned {
    pub fn header(mut self, name: &str, value: &str) -> Canned {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn chunked(mut self, pieces: &[&str]) -> Canned {
        self.chunks = Some(pieces.iter().map(|piece| piece.to_string()).collect());
        self
    }
}

pub fn json(route: &str, status: u16, body: &str) -> Canned {
    Canned {
        route: route.to_string(),
        status,
        content_type: "application/json",
        headers: Vec::new(),
        body: body.to_string(),
        chunks: None,
    }
}

pub fn text(route: &str, status: u16, body: &str) -> Canned {
    Canned {
        route: route.to_string(),
        status,
        content_type: "text/plain",
        headers: Vec::new(),
        body: body.to_string(),
        chunks: None,
    }
}

/// A `text/event-stream` answer; use [`Canned::chunked`] to send it in pieces.
pub fn event_stream(route: &str, status: u16, body: &str) -> Canned {
    Canned {
        route: route.to_string(),
        status,
        content_type: "text/event-stream",
        headers: Vec::new(),
        body: body.to_string(),
        chunks: None,
    }
}

#[derive(Debug, Clone)]
pub struct Recorded {
    /// `"GET /apps/x"`, without the query.
    pub route: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// The body as sent, for binary uploads.
    pub bytes: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("a JSON request body")
    }
}

pub struct Server {
    pub url: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Serves until every canned response has been used once.
    pub fn start(responses: Vec<Canned>) -> Server {
        Server::start_with(|_| responses)
    }

    /// Like [`Server::start`], for responses that hold the server's own URL.
    pub fn start_with(responses: impl FnOnce(&str) -> Vec<Canned>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        let responses = responses(&url);
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&requests);
        let thread = std::thread::spawn(move || serve(listener, responses, &recorded));
        Server {
            url,
            requests,
            thread: Some(thread),
        }
    }

    /// The requests so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().expect("requests lock").clone()
    }

    /// Waits until every canned response was served; panics if one is not within a few
    /// seconds.
    pub fn finish(mut self) -> Vec<Recorded> {
        let deadline = Instant::now() + FINISH_DEADLINE;
        if let Some(thread) = self.thread.take() {
            while !thread.is_finished() {
                assert!(
                    Instant::now() < deadline,
                    "canned responses left unused; requests were {:?}",
                    self.requests()
                );
                std::thread::sleep(Duration::from_millis(10));
            }
            thread.join().expect("the canned server thread");
        }
        self.requests()
    }
}

fn serve(listener: TcpListener, mut responses: Vec<Canned>, requests: &Mutex<Vec<Recorded>>) {
    listener.set_nonblocking(false).expect("blocking listener");
    while !responses.is_empty() {
        let (stream, _) = listener.accept().expect("accept");
        let Some(request) = read_request(&stream) else {
            continue;
        };
        let answer = match responses
            .iter()
            .position(|canned| canned.route == request.route)
        {
            Some(index) => responses.remove(index),
            None => json(
                &request.route,
                500,
                &format!(
                    r#"{{"id":"unexpected","message":"no canned response for {}"}}"#,
                    request.route
                ),
            ),
        };
        requests.lock().expect("requests lock").push(request);
        write_response(stream, &answer);
    }
}

fn read_request(stream: &TcpStream) -> Option<Recorded> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    let mut parts = request_line.split_whitespace();
    let method = parts.next()?;
    let target = parts.next()?;
    let path = target.split('?').next().unwrap_or(target);
    let route = format!("{method} {path}");
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let length: usize = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Recorded {
        route,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        bytes: body,
    })
}

fn write_response(mut stream: TcpStream, canned: &Canned) {
    let framing = match &canned.chunks {
        Some(_) => "Transfer-Encoding: chunked".to_string(),
        None => format!("Content-Length: {}", canned.body.len()),
    };
    let mut head = format!(
        "HTTP/1.1 {} Canned\r\nContent-Type: {}\r\n{framing}\r\nConnection: close\r\n",
        canned.status, canned.content_type,
    );
    for (name, value) in &canned.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut pieces = vec![head.into_bytes()];
    match &canned.chunks {
        Some(chunks) => {
            pieces.extend(
                chunks
                    .iter()
                    .map(|chunk| format!("{:x}\r\n{chunk}\r\n", chunk.len()).into_bytes()),
            );
            pieces.push(b"0\r\n\r\n".to_vec());
        }
        None => pieces.push(canned.body.clone().into_bytes()),
    }
    // Each piece goes out on its own, as a live stream's would. The client may have given up
    // already; the test will say so.
    for piece in pieces {
        if stream
            .write_all(&piece)
            .and_then(|()| stream.flush())
            .is_err()
        {
            return;
        }
    }
}
