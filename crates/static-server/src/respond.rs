//! One request to one response: method and scheme checks, resolution, and files sent with
//! their validators, `304`s and byte ranges: small files in one read, larger ones streamed.

use std::convert::Infallible;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::Frame;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use tokio::io::AsyncReadExt;
use tokio_util::io::ReaderStream;

use crate::conditional::{ByteRange, Validators};
use crate::config::StaticConfig;
use crate::mime::content_type;
use crate::request_path::SitePath;
use crate::resolve::{resolve, Resolution};

/// Response bodies: short texts and small files in memory, larger files streamed in chunks.
pub type Body = BoxBody<Bytes, std::io::Error>;

/// Files up to this size are read in one go on the blocking thread that opened them; larger
/// ones are streamed in chunks of this size, so memory per response stays bounded.
const CHUNK_SIZE: usize = 64 * 1024;

/// Answers one request. Never fails: every problem is a response.
pub async fn handle<B>(
    config: Arc<StaticConfig>,
    request: Request<B>,
) -> Result<Response<Body>, Infallible> {
    Ok(respond(config, &request).await)
}

async fn respond<B>(config: Arc<StaticConfig>, request: &Request<B>) -> Response<Body> {
    let head = request.method() == Method::HEAD;
    if !head && request.method() != Method::GET {
        let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed\n");
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    if config.https_only() {
        if let Some(location) = https_location(request) {
            return redirect(StatusCode::MOVED_PERMANENTLY, &location);
        }
    }
    let Ok(path) = SitePath::parse(request.uri().path()) else {
        return text(StatusCode::BAD_REQUEST, "Bad Request\n");
    };
    let headers = request.headers().clone();
    // Resolving, opening and (for small files) reading are blocking calls: one trip to the
    // blocking pool for all of them.
    let site = config.clone();
    let resolved = tokio::task::spawn_blocking(move || {
        let resolution = resolve(&site, &path);
        let response = match &resolution {
            Resolution::File { path: file, status } => {
                Some(send_file(file, *status, &headers, head))
            }
            _ => None,
        };
        (path, resolution, response)
    })
    .await;
    let (path, resolution, response) = match resolved {
        Ok(resolved) => resolved,
        Err(error) => {
            tracing::error!(%error, "resolve request");
            return text(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error\n");
        }
    };
    let mut response = match (resolution, response) {
        (_, Some(response)) => response,
        (Resolution::Redirect { url, status }, _) => return redirect(status, &url),
        (Resolution::AddSlash, _) => {
            let location = match request.uri().query() {
                Some(query) => format!("{}/?{query}", request.uri().path()),
                None => format!("{}/", request.uri().path()),
            };
            return redirect(StatusCode::MOVED_PERMANENTLY, &location);
        }
        (Resolution::NotFound | Resolution::File { .. }, None) => {
            return text(StatusCode::NOT_FOUND, "Not Found\n")
        }
    };
    // A file was sent (the site's, or its error page): the site's headers for this path apply,
    // as nginx's add_header does, to successful answers, 304s and the error page.
    let status = response.status();
    if status.is_success() || status == StatusCode::NOT_MODIFIED || status == StatusCode::NOT_FOUND
    {
        let headers = response.headers_mut();
        for (name, value) in config.headers_for(path.as_str()) {
            headers.insert(name.clone(), value.clone());
        }
    }
    response
}

/// Where a plain-HTTP request (as the router reports it in `X-Forwarded-Proto`) goes instead.
fn https_location<B>(request: &Request<B>) -> Option<String> {
    let proto = request.headers().get("x-forwarded-proto")?.to_str().ok()?;
    if !proto.eq_ignore_ascii_case("http") {
        return None;
    }
    let host = request.headers().get(header::HOST)?.to_str().ok()?;
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |path| path.as_str());
    Some(format!("https://{host}{path}"))
}

/// Sends `file` (or the part a `Range` asks for); blocking. `status` is 200 for a file of the
/// site and 404 for the error page, which gets neither validators nor ranges.
fn send_file(file: &Path, status: StatusCode, headers: &HeaderMap, head: bool) -> Response<Body> {
    let mut opened = match File::open(file) {
        Ok(opened) => opened,
        Err(error) => return file_error(file, &error),
    };
    let metadata = match opened.metadata() {
        Ok(metadata) => metadata,
        Err(error) => return file_error(file, &error),
    };
    let length = metadata.len();
    let mut response = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type(file));
    let mut start = 0;
    let mut count = length;
    if status == StatusCode::OK {
        let validators = Validators::new(length, metadata.modified().unwrap_or(UNIX_EPOCH));
        response = response
            .header(header::ETAG, &validators.etag)
            .header(header::LAST_MODIFIED, &validators.last_modified)
            .header(header::ACCEPT_RANGES, "bytes");
        if validators.not_modified(headers) {
            return finish(response.status(StatusCode::NOT_MODIFIED), empty());
        }
        match validators.range(headers, length) {
            ByteRange::Whole => {}
            ByteRange::Part { start: first, end } => {
                start = first;
                count = end - first + 1;
                response = response.status(StatusCode::PARTIAL_CONTENT).header(
                    header::CONTENT_RANGE,
                    format!("bytes {first}-{end}/{length}"),
                );
            }
            ByteRange::Unsatisfiable => {
                let response = response
                    .status(StatusCode::RANGE_NOT_SATISFIABLE)
                    .header(header::CONTENT_RANGE, format!("bytes */{length}"))
                    .header(header::CONTENT_LENGTH, 0);
                return finish(response, empty());
            }
        }
    }
    let response = response.header(header::CONTENT_LENGTH, count);
    if head || count == 0 {
        return finish(response, empty());
    }
    if start > 0 {
        if let Err(error) = opened.seek(SeekFrom::Start(start)) {
            return file_error(file, &error);
        }
    }
    let body = if count <= CHUNK_SIZE as u64 {
        let mut contents = Vec::with_capacity(count as usize);
        if let Err(error) = (&mut opened).take(count).read_to_end(&mut contents) {
            return file_error(file, &error);
        }
        if contents.len() as u64 != count {
            // The file shrank since its length was read: the promised length cannot be kept.
            tracing::warn!(file = %file.display(), "file changed while being sent");
            return text(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error\n");
        }
        BodyExt::boxed(Full::new(Bytes::from(contents)).map_err(|never| match never {}))
    } else {
        let opened = tokio::fs::File::from_std(opened).take(count);
        let stream =
            ReaderStream::with_capacity(opened, CHUNK_SIZE).map(|chunk| chunk.map(Frame::data));
        BodyExt::boxed(StreamBody::new(stream))
    };
    finish(response, body)
}

fn file_error(file: &Path, error: &std::io::Error) -> Response<Body> {
    match error.kind() {
        // Removed between resolving and opening.
        std::io::ErrorKind::NotFound => text(StatusCode::NOT_FOUND, "Not Found\n"),
        std::io::ErrorKind::PermissionDenied => text(StatusCode::FORBIDDEN, "Forbidden\n"),
        _ => {
            tracing::error!(file = %file.display(), %error, "read file");
            text(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error\n")
        }
    }
}

fn redirect(status: StatusCode, location: &str) -> Response<Body> {
    let Ok(value) = HeaderValue::from_str(location) else {
        return text(StatusCode::BAD_REQUEST, "Bad Request\n");
    };
    let mut response = text(status, &format!("Redirecting to {location}\n"));
    response.headers_mut().insert(header::LOCATION, value);
    response
}

fn text(status: StatusCode, body: &str) -> Response<Body> {
    let response = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8");
    finish(
        response,
        BodyExt::boxed(Full::new(Bytes::from(body.to_owned())).map_err(|never| match never {})),
    )
}

fn empty() -> Body {
    BodyExt::boxed(Empty::new().map_err(|never| match never {}))
}

fn finish(response: hyper::http::response::Builder, body: Body) -> Response<Body> {
    response.body(body).unwrap_or_else(|error| {
        // Every header set above is built from validated values; this is a bug if it happens.
        tracing::error!(%error, "build response");
        let mut response = Response::new(empty());
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        response
    })
}
