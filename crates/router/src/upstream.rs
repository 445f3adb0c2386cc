//! HTTP/1.1 to dynos, spoken by the router itself: one request at a time on a connection, in
//! the request's own task (no connection task and no channels between the two), with the
//! response body read from the socket as the client takes it.
//!
//! What the router does with what a dyno sends (RFC 9112): interim `1xx` responses are
//! skipped, except `101`, which hands the connection over as it is; the body is framed by the
//! request's method and the status (`HEAD`, `204`, `304`: none), by `Transfer-Encoding:
//! chunked` (decoded; trailers are dropped), by `Content-Length`, or by the end of the
//! connection. A connection is used again only after a whole response framed by length or
//! chunks, with the whole request sent, no `Connection: close`, and nothing more on the wire.

use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, StatusCode, Uri, Version};
use tokio::io::{AsyncRead, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::body::ForwardBody;
use crate::headers::{connection_has, write_request_headers, RequestRewrite};

/// The most header fields a dyno's response may have (as hyper).
const MAX_HEADERS: usize = 100;

/// The largest response head the router reads; a longer one fails the request (H13).
const MAX_RESPONSE_HEAD: usize = 256 * 1024;

/// Room made in the read buffer before each read from a dyno.
const READ_CHUNK: usize = 16 * 1024;

/// The longest chunk-size or trailer line of a chunked body.
const MAX_CHUNK_LINE: usize = 4096;

/// An open connection to a dyno.
pub struct DynoConnection {
    stream: TcpStream,
    /// Bytes read from the dyno and not used yet.
    read: BytesMut,
}

/// A request's head as a dyno gets it.
pub struct RequestHead {
    bytes: Vec<u8>,
    /// The body goes in chunks (its length is not known up front).
    chunked: bool,
    /// A `HEAD` request: the response has no body whatever its headers say.
    head_method: bool,
}

impl RequestHead {
    /// Writes the request line and the header fields rewritten for the dyno (see
    /// [`write_request_headers`]), framing a body of unknown length in chunks. Returns the
    /// `X-Forwarded-For` sent too.
    pub fn encode(
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body_empty: bool,
        rewrite: &RequestRewrite<'_>,
    ) -> (RequestHead, String) {
        let mut bytes = Vec::with_capacity(512 + 64 * headers.len());
        bytes.extend_from_slice(method.as_str().as_bytes());
        bytes.push(b' ');
        let target = uri.path_and_query().map_or("/", |p| p.as_str());
        bytes.extend_from_slice(target.as_bytes());
        bytes.extend_from_slice(b" HTTP/1.1\r\n");
        let written = write_request_headers(&mut bytes, headers, rewrite);
        let chunked = !body_empty && !written.content_length;
        if chunked {
            bytes.extend_from_slice(b"transfer-encoding: chunked\r\n");
        } else if body_empty
            && !written.content_length
            && matches!(*method, Method::POST | Method::PUT | Method::PATCH)
        {
            bytes.extend_from_slice(b"content-length: 0\r\n");
        }
        bytes.extend_from_slice(b"\r\n");
        let head = RequestHead {
            bytes,
            chunked,
            head_method: method == Method::HEAD,
        };
        (head, written.fwd)
    }
}

/// Why a request to a dyno got no response head.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("write to the dyno: {0}")]
    Write(io::Error),
    #[error("read from the dyno: {0}")]
    Read(io::Error),
    #[error("the dyno closed the connection before a whole response head")]
    Closed,
    #[error("the dyno's response is not HTTP/1.x: {0}")]
    Malformed(&'static str),
    #[error("the client's request body failed: {0}")]
    Body(crate::body::BoxError),
}

impl SendError {
    /// The connection broke under the request (rather than the dyno answering nonsense or the
    /// client failing): a request that may be repeated can go again on another connection.
    pub fn connection_lost(&self) -> bool {
        matches!(
            self,
            SendError::Write(_) | SendError::Read(_) | SendError::Closed
        )
    }
}

/// How a response's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(u64),
    Chunked,
    /// Until the dyno closes the connection.
    Close,
}

/// A dyno's response head.
pub struct ResponseHead {
    pub status: StatusCode,
    pub headers: HeaderMap,
    framing: Framing,
    /// The dyno keeps the connection open after this response.
    keep_alive: bool,
    /// The whole request went out before the response came (set by [`DynoConnection::send`]).
    request_sent: bool,
}

impl DynoConnection {
    pub fn new(stream: TcpStream) -> DynoConnection {
        DynoConnection {
            stream,
            read: BytesMut::new(),
        }
    }

    /// Is this idle connection still open, with nothing unexpected from the dyno? Costs no
    /// system call unless the socket became readable since it was last read.
    pub fn is_open(&self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.stream.try_read(&mut byte), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Sends the request and reads the response head, skipping interim responses. The body
    /// streams to the dyno while the response is awaited: a dyno that answers before taking
    /// the whole body gets no more of it.
    pub async fn send(
        &mut self,
        head: &RequestHead,
        body: &mut ForwardBody,
    ) -> Result<ResponseHead, SendError> {
        let DynoConnection { stream, read } = self;
        if body.is_empty() {
            stream
                .write_all(&head.bytes)
                .await
                .map_err(SendError::Write)?;
            let mut response = read_head(stream, read, head.head_method).await?;
            response.request_sent = true;
            return Ok(response);
        }
        let (mut reader, mut writer) = stream.split();
        let send_body = async {
            writer
                .write_all(&head.bytes)
                .await
                .map_err(SendError::Write)?;
            while let Some(frame) = poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await {
                let Ok(data) = frame.map_err(SendError::Body)?.into_data() else {
                    // Trailers are not sent on.
                    continue;
                };
                if data.is_empty() {
                    continue;
                }
                if head.chunked {
                    // Size line, data and CRLF in one vectored write.
                    let mut chunk = Bytes::from(format!("{:x}\r\n", data.len()))
                        .chain(data)
                        .chain(&b"\r\n"[..]);
                    writer
                        .write_all_buf(&mut chunk)
                        .await
                        .map_err(SendError::Write)?;
                } else {
                    writer.write_all(&data).await.map_err(SendError::Write)?;
                }
            }
            if head.chunked {
                writer
                    .write_all(b"0\r\n\r\n")
                    .await
                    .map_err(SendError::Write)?;
            }
            Ok::<(), SendError>(())
        };
        let receive = read_head(&mut reader, read, head.head_method);
        tokio::pin!(send_body, receive);
        tokio::select! {
            biased;
            sent = &mut send_body => {
                if let Err(error) = sent {
                    // A dyno that answered and closed (a 413, say) has its answer read.
                    if let Poll::Ready(Ok(response)) =
                        poll_fn(|cx| Poll::Ready(receive.as_mut().poll(cx))).await
                    {
                        return Ok(response);
                    }
                    return Err(error);
                }
                let mut response = receive.await?;
                response.request_sent = true;
                Ok(response)
            }
            // The dyno answered before the body was all sent.
            response = &mut receive => response,
        }
    }

    /// The socket and what was read past the response head, for a `101 Switching Protocols`.
    pub fn into_parts(self) -> (TcpStream, BytesMut) {
        (self.stream, self.read)
    }

    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        self.read.reserve(READ_CHUNK);
        tokio_util::io::poll_read_buf(Pin::new(&mut self.stream), cx, &mut self.read)
    }
}

/// Reads until a whole final response head is in `read`, and takes it out.
async fn read_head<R: AsyncRead + Unpin>(
    io: &mut R,
    read: &mut BytesMut,
    head_method: bool,
) -> Result<ResponseHead, SendError> {
    loop {
        if !read.is_empty() {
            if let Some(head) = parse_head(read, head_method)? {
                if head.status.is_informational() && head.status != StatusCode::SWITCHING_PROTOCOLS
                {
                    continue;
                }
                return Ok(head);
            }
            if read.len() >= MAX_RESPONSE_HEAD {
                return Err(SendError::Malformed("response head too large"));
            }
        }
        read.reserve(READ_CHUNK);
        let n = tokio::io::AsyncReadExt::read_buf(io, read)
            .await
            .map_err(SendError::Read)?;
        if n == 0 {
            return Err(SendError::Closed);
        }
    }
}

/// Takes a response head off the front of `read`, or `None` when it is not all there yet.
fn parse_head(read: &mut BytesMut, head_method: bool) -> Result<Option<ResponseHead>, SendError> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut fields);
    let length = match response.parse(read) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(SendError::Malformed("too many header fields"))
        }
        Err(_) => return Err(SendError::Malformed("invalid response head")),
    };
    let status = response
        .code
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or(SendError::Malformed("invalid status"))?;
    let version = match response.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    // Where each field sits in the head, so that the values can share its buffer.
    let start = read.as_ptr() as usize;
    let mut spans = Vec::with_capacity(response.headers.len());
    for field in response.headers.iter() {
        let name = HeaderName::from_bytes(field.name.as_bytes())
            .map_err(|_| SendError::Malformed("invalid header name"))?;
        let at = field.value.as_ptr() as usize - start;
        spans.push((name, at, at + field.value.len()));
    }
    let bytes = read.split_to(length).freeze();
    let mut headers = HeaderMap::with_capacity(spans.len());
    for (name, from, to) in spans {
        let value = HeaderValue::from_maybe_shared(bytes.slice(from..to))
            .map_err(|_| SendError::Malformed("invalid header value"))?;
        headers.append(name, value);
    }

    let close = connection_has(&headers, "close");
    let mut keep_alive = match version {
        Version::HTTP_10 => connection_has(&headers, "keep-alive") && !close,
        _ => !close,
    };
    let framing = if head_method
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        Framing::Empty
    } else if headers.contains_key(header::TRANSFER_ENCODING) {
        // With a length too, the message is suspect: read it by its chunks, pass on no
        // length, and close.
        if headers.remove(header::CONTENT_LENGTH).is_some() {
            keep_alive = false;
        }
        if chunked_last(&headers) {
            Framing::Chunked
        } else {
            Framing::Close
        }
    } else if headers.contains_key(header::CONTENT_LENGTH) {
        Framing::Length(
            content_length(&headers).ok_or(SendError::Malformed("invalid Content-Length"))?,
        )
    } else {
        Framing::Close
    };
    if framing == Framing::Close {
        keep_alive = false;
    }
    Ok(Some(ResponseHead {
        status,
        headers,
        framing,
        keep_alive,
        request_sent: false,
    }))
}

/// Is `chunked` the last transfer coding?
fn chunked_last(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .next_back()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("chunked"))
}

/// The one length all `Content-Length` values agree on (`5, 5` is allowed).
fn content_length(headers: &HeaderMap) -> Option<u64> {
    let mut length = None;
    for value in headers.get_all(header::CONTENT_LENGTH) {
        for part in value.to_str().ok()?.split(',') {
            let part = part.trim();
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let n: u64 = part.parse().ok()?;
            if length.is_some_and(|l| l != n) {
                return None;
            }
            length = Some(n);
        }
    }
    length
}

/// A dyno's response body, read from its connection as the client takes it.
pub struct ResponseBody {
    conn: Option<DynoConnection>,
    state: BodyState,
    /// The connection may carry another request once this body ends.
    keep_alive: bool,
}

enum BodyState {
    Length(u64),
    Chunked(Chunked),
    Close,
    Done,
}

impl ResponseBody {
    /// The body of `head`, read from `conn`.
    pub fn new(conn: DynoConnection, head: &ResponseHead) -> ResponseBody {
        let state = match head.framing {
            Framing::Empty | Framing::Length(0) => BodyState::Done,
            Framing::Length(n) => BodyState::Length(n),
            Framing::Chunked => BodyState::Chunked(Chunked::Size),
            Framing::Close => BodyState::Close,
        };
        ResponseBody {
            conn: Some(conn),
            state,
            keep_alive: head.keep_alive && head.request_sent,
        }
    }

    /// The connection, when the whole body was read and it may carry another request.
    pub fn into_reusable(mut self) -> Option<DynoConnection> {
        let conn = self.conn.take()?;
        (matches!(self.state, BodyState::Done) && self.keep_alive && conn.read.is_empty())
            .then_some(conn)
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        let Some(conn) = this.conn.as_mut() else {
            return Poll::Ready(None);
        };
        loop {
            let data = match &mut this.state {
                BodyState::Done => return Poll::Ready(None),
                BodyState::Length(remaining) => {
                    let data = take_up_to(&mut conn.read, remaining);
                    if *remaining == 0 {
                        this.state = BodyState::Done;
                    }
                    data
                }
                BodyState::Close => (!conn.read.is_empty()).then(|| conn.read.split().freeze()),
                BodyState::Chunked(chunked) => match chunked.step(&mut conn.read)? {
                    ChunkStep::Data(data) => Some(data),
                    ChunkStep::NeedMore => None,
                    ChunkStep::Again => continue,
                    ChunkStep::End => {
                        this.state = BodyState::Done;
                        return Poll::Ready(None);
                    }
                },
            };
            if let Some(data) = data {
                return Poll::Ready(Some(Ok(Frame::data(data))));
            }
            let n = ready!(conn.poll_fill(cx))?;
            if n == 0 {
                if matches!(this.state, BodyState::Close) {
                    this.state = BodyState::Done;
                    return Poll::Ready(None);
                }
                return Poll::Ready(Some(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the dyno closed the connection before the end of the body",
                ))));
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, BodyState::Done)
    }

    fn size_hint(&self) -> SizeHint {
        match self.state {
            BodyState::Done => SizeHint::with_exact(0),
            BodyState::Length(n) => SizeHint::with_exact(n),
            _ => SizeHint::default(),
        }
    }
}

/// Where a chunked body's decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunked {
    /// Before a chunk-size line.
    Size,
    /// Inside a chunk, with this much of it left.
    Data(u64),
    /// After a chunk's data, before its CRLF.
    DataEnd,
    /// After the last chunk: trailer lines until an empty one.
    Trailers,
}

#[derive(Debug, PartialEq, Eq)]
enum ChunkStep {
    Data(Bytes),
    /// Nothing to take until more is read.
    NeedMore,
    /// Moved on without data: step again.
    Again,
    End,
}

fn invalid(what: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

impl Chunked {
    fn step(&mut self, read: &mut BytesMut) -> io::Result<ChunkStep> {
        match *self {
            Chunked::Size => {
                let Some(line) = take_line(read)? else {
                    return Ok(ChunkStep::NeedMore);
                };
                let digits = line
                    .iter()
                    .position(|b| !b.is_ascii_hexdigit())
                    .unwrap_or(line.len());
                let rest = &line[digits..];
                if digits == 0
                    || digits > 16
                    || !(rest.is_empty() || matches!(rest[0], b';' | b' ' | b'\t'))
                {
                    return Err(invalid("invalid chunk size"));
                }
                let text =
                    std::str::from_utf8(&line[..digits]).map_err(|_| invalid("chunk size"))?;
                let size = u64::from_str_radix(text, 16).map_err(|_| invalid("chunk size"))?;
                *self = if size == 0 {
                    Chunked::Trailers
                } else {
                    Chunked::Data(size)
                };
                Ok(ChunkStep::Again)
            }
            Chunked::Data(mut remaining) => {
                let Some(data) = take_up_to(read, &mut remaining) else {
                    return Ok(ChunkStep::NeedMore);
                };
                *self = if remaining == 0 {
                    Chunked::DataEnd
                } else {
                    Chunked::Data(remaining)
                };
                Ok(ChunkStep::Data(data))
            }
            Chunked::DataEnd => {
                if read.len() < 2 {
                    if read.first().is_some_and(|b| *b != b'\r') {
                        return Err(invalid("chunk without CRLF"));
                    }
                    return Ok(ChunkStep::NeedMore);
                }
                if &read[..2] != b"\r\n" {
                    return Err(invalid("chunk without CRLF"));
                }
                read.advance(2);
                *self = Chunked::Size;
                Ok(ChunkStep::Again)
            }
            Chunked::Trailers => match take_line(read)? {
                None => Ok(ChunkStep::NeedMore),
                Some(line) if line.is_empty() => Ok(ChunkStep::End),
                Some(_) => Ok(ChunkStep::Again),
            },
        }
    }
}

/// Takes what `read` holds of the `remaining` bytes of a body (none when it is empty).
fn take_up_to(read: &mut BytesMut, remaining: &mut u64) -> Option<Bytes> {
    if read.is_empty() || *remaining == 0 {
        return None;
    }
    let n = read
        .len()
        .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
    *remaining -= n as u64;
    Some(read.split_to(n).freeze())
}

/// Takes a line ending in CRLF (or LF) off the front of `read`, without its end.
fn take_line(read: &mut BytesMut) -> io::Result<Option<BytesMut>> {
    let window = &read[..read.len().min(MAX_CHUNK_LINE)];
    match window.iter().position(|b| *b == b'\n') {
        Some(end) => {
            let mut line = read.split_to(end + 1);
            line.truncate(end);
            if line.last() == Some(&b'\r') {
                line.truncate(end - 1);
            }
            Ok(Some(line))
        }
        None if read.len() >= MAX_CHUNK_LINE => Err(invalid("chunk line too long")),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str, head_method: bool) -> Result<Option<ResponseHead>, SendError> {
        let mut read = BytesMut::from(text.as_bytes());
        parse_head(&mut read, head_method)
    }

    fn framing(text: &str) -> (Framing, bool) {
        let parsed = head(text, false).unwrap().unwrap();
        (parsed.framing, parsed.keep_alive)
    }

    #[test]
    fn frames_responses_as_rfc_9112_says() {
        let cases = [
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
                (Framing::Length(5), true),
            ),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 5, 5\r\n\r\n",
                (Framing::Length(5), true),
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                (Framing::Chunked, true),
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                (Framing::Chunked, true),
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
                (Framing::Chunked, false),
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
                (Framing::Close, false),
            ),
            ("HTTP/1.1 200 OK\r\n\r\n", (Framing::Close, false)),
            ("HTTP/1.1 204 No Content\r\n\r\n", (Framing::Empty, true)),
            (
                "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
                (Framing::Empty, true),
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n",
                (Framing::Length(5), false),
            ),
            (
                "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n",
                (Framing::Length(5), false),
            ),
            (
                "HTTP/1.0 200 OK\r\nContent-Length: 5\r\nConnection: Keep-Alive\r\n\r\n",
                (Framing::Length(5), true),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(framing(text), expected, "{text:?}");
        }
        let both = head(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
            false,
        )
        .unwrap()
        .unwrap();
        assert!(!both.headers.contains_key(header::CONTENT_LENGTH));
        let to_head = head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true)
            .unwrap()
            .unwrap();
        assert_eq!(to_head.framing, Framing::Empty, "a HEAD request's response");
    }

    #[test]
    fn refuses_conflicting_lengths_and_broken_heads() {
        for text in [
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n",
            "NOT HTTP\r\n\r\n",
        ] {
            assert!(
                matches!(head(text, false), Err(SendError::Malformed(_))),
                "{text:?}"
            );
        }
        assert!(head("HTTP/1.1 200 OK\r\nContent-Le", false)
            .unwrap()
            .is_none());
    }

    #[test]
    fn a_head_leaves_what_follows_it_in_the_buffer() {
        let mut read =
            BytesMut::from(&b"HTTP/1.1 200 OK\r\nX-A: 1\r\nContent-Length: 2\r\n\r\nhi"[..]);
        let parsed = parse_head(&mut read, false).unwrap().unwrap();
        assert_eq!(parsed.status, StatusCode::OK);
        assert_eq!(parsed.headers["x-a"], "1");
        assert_eq!(&read[..], b"hi");
    }

    /// Decodes `wire` fed in pieces of `split` bytes; `None` for an error.
    fn decode(wire: &[u8], split: usize) -> Option<(Vec<u8>, usize)> {
        let mut decoder = Chunked::Size;
        let mut read = BytesMut::new();
        let mut body = Vec::new();
        let mut fed = 0;
        loop {
            match decoder.step(&mut read).ok()? {
                ChunkStep::Data(data) => body.extend_from_slice(&data),
                ChunkStep::Again => {}
                ChunkStep::End => return Some((body, read.len())),
                ChunkStep::NeedMore => {
                    if fed == wire.len() {
                        return None;
                    }
                    let to = (fed + split).min(wire.len());
                    read.extend_from_slice(&wire[fed..to]);
                    fed = to;
                }
            }
        }
    }

    #[test]
    fn decodes_chunks_however_they_arrive() {
        let wire = b"5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\nNEXT";
        for split in 1..wire.len() {
            let (body, left) = decode(wire, split).expect("a valid body");
            assert_eq!(body, b"hello0123456789", "split {split}");
            // What follows the body stays unread (and keeps the connection out of the pool).
            assert!(left <= 4, "split {split}");
        }
    }

    #[test]
    fn refuses_broken_chunks() {
        for wire in [
            &b"x\r\nhello\r\n0\r\n\r\n"[..],
            b"5\r\nhelloXX0\r\n\r\n",
            b"11111111111111111\r\n",
            b"\r\n",
        ] {
            assert_eq!(decode(wire, wire.len()), None, "{wire:?}");
        }
    }

    #[test]
    fn encodes_a_request_head_with_its_framing() {
        let request = |method: Method, body_empty: bool, length: Option<&str>, hop: bool| {
            let mut headers = HeaderMap::new();
            headers.insert(header::HOST, HeaderValue::from_static("app.example"));
            if let Some(length) = length {
                headers.insert(
                    header::CONTENT_LENGTH,
                    HeaderValue::from_str(length).unwrap(),
                );
            }
            if hop {
                headers.insert(
                    header::CONNECTION,
                    HeaderValue::from_static("content-length"),
                );
            }
            let forwarded =
                crate::headers::Forwarded::new(std::net::IpAddr::from([127, 0, 0, 1]), "http", 80);
            let rewrite = RequestRewrite {
                forwarded: &forwarded,
                request_start_ms: 1,
                request_id: "id",
                upgrade: false,
            };
            let uri = Uri::from_static("http://app.example/path?q=1");
            let (head, _) = RequestHead::encode(&method, &uri, &headers, body_empty, &rewrite);
            assert_eq!(head.chunked, !body_empty && (length.is_none() || hop));
            String::from_utf8(head.bytes).unwrap()
        };
        let ours = "x-forwarded-for: 127.0.0.1\r\nx-forwarded-proto: http\r\nx-forwarded-port: 80\r\nx-request-start: 1\r\nx-request-id: id\r\nvia: 1.1 wharf\r\n";
        assert_eq!(
            request(Method::GET, true, None, false),
            format!("GET /path?q=1 HTTP/1.1\r\nhost: app.example\r\n{ours}\r\n")
        );
        assert_eq!(
            request(Method::POST, true, None, false),
            format!(
                "POST /path?q=1 HTTP/1.1\r\nhost: app.example\r\n{ours}content-length: 0\r\n\r\n"
            )
        );
        assert_eq!(
            request(Method::POST, false, Some("3"), false),
            format!(
                "POST /path?q=1 HTTP/1.1\r\nhost: app.example\r\ncontent-length: 3\r\n{ours}\r\n"
            )
        );
        let chunked = format!(
            "POST /path?q=1 HTTP/1.1\r\nhost: app.example\r\n{ours}transfer-encoding: chunked\r\n\r\n"
        );
        assert_eq!(request(Method::POST, false, None, false), chunked);
        // A length the client names as hop-by-hop is not sent, so the body goes in chunks.
        assert_eq!(request(Method::POST, false, Some("5"), true), chunked);
    }
}
