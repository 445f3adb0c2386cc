//! The HTTP client for Wharf's Platform API: the v3 headers, authentication, and turning
//! error bodies and connection failures into errors a user can act on.

use std::fmt;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use reqwest::header::{
    HeaderMap, HeaderValue, ACCEPT, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, RANGE,
};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use wharf_api_types::{ErrorBody, ACCEPT_V3};

const USER_AGENT: &str = concat!("wharf-cli/", env!("CARGO_PKG_VERSION"));
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Long enough for a slow release or app deletion, short enough not to hang a script forever.
/// Uploads and build output streams have none: they last as long as the data or the build.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Upload bodies go out in pieces of this size, so that progress can be shown.
const UPLOAD_CHUNK: usize = 256 * 1024;
/// Pages of one list read at most (of up to 1000 items each), against a server that never
/// stops sending `Next-Range`.
const MAX_PAGES: usize = 100;
const NEXT_RANGE: &str = "next-range";
const LAST_EVENT_ID: &str = "last-event-id";

/// How requests prove who is calling.
pub enum Auth {
    /// An API key, for everything but login.
    Bearer(String),
    /// E-mail and API key, for `POST /oauth/authorizations`.
    Basic { user: String, password: String },
}

/// An error answer with a Heroku-style `{"id", "message"}` body.
#[derive(Debug)]
pub struct ApiError {
    pub id: String,
    pub message: String,
}

impl fmt::Display for ApiError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{} ({})", self.message, self.id)
    }
}

impl std::error::Error for ApiError {}

/// Nothing listens at the API URL.
#[derive(Debug)]
struct Unreachable {
    url: Url,
    reason: String,
}

impl fmt::Display for Unreachable {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "The Wharf server at {} is not reachable ({}).\n\
             Start it with `wharf server`, or set WHARF_API_URL to point at another server.",
            self.url.as_str().trim_end_matches('/'),
            self.reason
        )
    }
}

impl std::error::Error for Unreachable {}

/// How the server answered a request for an event stream.
pub enum EventStreamOpening {
    Open(reqwest::Response),
    /// An error status, and the error its body describes.
    Refused(StatusCode, anyhow::Error),
}

/// A response body and, for a partial list, the `Range` that asks for the rest.
struct Page {
    body: Value,
    next_range: Option<String>,
}

pub struct Client {
    http: reqwest::Client,
    base: Url,
    auth: Auth,
}

impl Client {
    pub fn new(base: Url, auth: Auth) -> Result<Self> {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static(ACCEPT_V3));
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .default_headers(headers)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .context("build the HTTP client")?;
        Ok(Self { http, base, auth })
    }

    /// The URL of an API path given as segments, each percent-encoded on its own (an app
    /// name or e-mail address can never add a path segment).
    fn url(&self, path: &[&str]) -> Result<Url> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| anyhow!("the API URL {} cannot have a path", self.base))?
            .pop_if_empty()
            .extend(path);
        Ok(url)
    }

    /// A GET; a list answered in pages (`206` with `Next-Range`) is read to the end.
    pub async fn get(&self, path: &[&str]) -> Result<Value> {
        let mut page = self.send(Method::GET, path, None, None).await?;
        let Value::Array(mut items) = page.body else {
            return Ok(page.body);
        };
        let mut pages = 1;
        while let Some(range) = page.next_range.take() {
            if pages == MAX_PAGES {
                bail!("GET /{}: more than {MAX_PAGES} pages", path.join("/"));
            }
            page = self.send(Method::GET, path, Some(&range), None).await?;
            match page.body {
                Value::Array(more) => items.extend(more),
                _ => bail!("GET /{}: a later page is not a list", path.join("/")),
            }
            pages += 1;
        }
        Ok(Value::Array(items))
    }

    /// A GET with a Heroku `Range` header such as `version ..; max=10, order=desc`; only the
    /// first page is read.
    pub async fn get_range(&self, path: &[&str], range: &str) -> Result<Value> {
        let page = self.send(Method::GET, path, Some(range), None).await?;
        Ok(page.body)
    }

    pub async fn post(&self, path: &[&str], body: &impl Serialize) -> Result<Value> {
        let body = serde_json::to_value(body).context("encode the request body")?;
        let page = self.send(Method::POST, path, None, Some(body)).await?;
        Ok(page.body)
    }

    /// A POST that may take up to `timeout` rather than [`REQUEST_TIMEOUT`]: work the server
    /// finishes before it answers, such as capturing or restoring a backup.
    pub async fn post_waiting(
        &self,
        path: &[&str],
        body: &impl Serialize,
        timeout: Duration,
    ) -> Result<Value> {
        let body = serde_json::to_value(body).context("encode the request body")?;
        let page = self
            .send_within(Method::POST, path, None, Some(body), timeout)
            .await?;
        Ok(page.body)
    }

    /// An authenticated GET whose body the caller reads as it comes (a backup's bytes): no
    /// timeout but connecting, so the caller bounds each read. An error status becomes the
    /// error its body describes.
    pub async fn download(&self, path: &[&str]) -> Result<reqwest::Response> {
        let url = self.url(path)?;
        let what = format!("GET {}", url.path());
        let request = match &self.auth {
            Auth::Bearer(key) => self.http.get(url).bearer_auth(key),
            Auth::Basic { user, password } => self.http.get(url).basic_auth(user, Some(password)),
        };
        let response = request
            .send()
            .await
            .map_err(|error| self.transport_error(error, &what))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        Err(error_from_body(status, &text))
    }

    pub async fn patch(&self, path: &[&str], body: &impl Serialize) -> Result<Value> {
        let body = serde_json::to_value(body).context("encode the request body")?;
        let page = self.send(Method::PATCH, path, None, Some(body)).await?;
        Ok(page.body)
    }

    pub async fn put(&self, path: &[&str], body: &impl Serialize) -> Result<Value> {
        let body = serde_json::to_value(body).context("encode the request body")?;
        let page = self.send(Method::PUT, path, None, Some(body)).await?;
        Ok(page.body)
    }

    /// `PUT`s `bytes` to a source blob's `put_url`, calling `progress` with the bytes sent so
    /// far. The URL holds a secret, so it carries no API key and appears in no error.
    pub async fn upload(
        &self,
        url: &str,
        bytes: Vec<u8>,
        mut progress: impl FnMut(u64) + Send + 'static,
    ) -> Result<()> {
        let url = self.absolute(url)?;
        let total = bytes.len();
        let chunks = (0..total).step_by(UPLOAD_CHUNK).map(move |start| {
            let end = total.min(start + UPLOAD_CHUNK);
            progress(end as u64);
            Ok::<_, std::io::Error>(bytes[start..end].to_vec())
        });
        let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
        let response = self
            .http
            .put(url)
            .header(CONTENT_TYPE, "application/octet-stream")
            // A length up front lets the server refuse an oversized upload at once, and keeps
            // the body from being sent chunked.
            .header(CONTENT_LENGTH, total)
            .body(body)
            .send()
            .await
            .map_err(|error| self.transport_error(error, "upload the source"))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        Err(error_from_body(status, &text).context("upload the source"))
    }

    /// A plain-text stream such as a build's `output_stream_url`, whose secret is its
    /// credential: no API key, no timeout but connecting, and the URL in no error.
    pub async fn open_stream(&self, url: &str, what: &str) -> Result<reqwest::Response> {
        let url = self.absolute(url)?;
        let response = self
            .http
            .get(url)
            .header(ACCEPT, "text/plain")
            .send()
            .await
            .map_err(|error| self.transport_error(error, what))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        Err(error_from_body(status, &text).context(what.to_string()))
    }

    /// A `text/event-stream` such as a log session's `logplex_url`, whose secret is its
    /// credential: no API key, no timeout but connecting, and the URL in no error. A
    /// reconnect names the last event it saw in `Last-Event-ID`.
    pub async fn open_event_stream(
        &self,
        url: &str,
        last_event_id: Option<&str>,
    ) -> Result<EventStreamOpening> {
        const WHAT: &str = "open the log stream";
        let url = self.absolute(url)?;
        let mut request = self
            .http
            .get(url)
            .header(ACCEPT, "text/event-stream")
            .header(CACHE_CONTROL, "no-cache");
        if let Some(id) = last_event_id {
            request = request.header(LAST_EVENT_ID, id);
        }
        let response = request
            .send()
            .await
            .map_err(|error| self.transport_error(error, WHAT))?;
        let status = response.status();
        if status.is_success() {
            return Ok(EventStreamOpening::Open(response));
        }
        let text = response.text().await.unwrap_or_default();
        Ok(EventStreamOpening::Refused(
            status,
            error_from_body(status, &text).context(WHAT),
        ))
    }

    /// A URL the server handed out, resolved against the API URL should it be relative.
    fn absolute(&self, url: &str) -> Result<Url> {
        self.base
            .join(url)
            .map_err(|error| anyhow!("the server gave an invalid URL: {error}"))
    }

    pub async fn delete(&self, path: &[&str]) -> Result<Value> {
        let page = self.send(Method::DELETE, path, None, None).await?;
        Ok(page.body)
    }

    async fn send(
        &self,
        method: Method,
        path: &[&str],
        range: Option<&str>,
        body: Option<Value>,
    ) -> Result<Page> {
        self.send_within(method, path, range, body, REQUEST_TIMEOUT)
            .await
    }

    async fn send_within(
        &self,
        method: Method,
        path: &[&str],
        range: Option<&str>,
        body: Option<Value>,
        timeout: Duration,
    ) -> Result<Page> {
        let url = self.url(path)?;
        self.send_url(method, url, range, body, timeout).await
    }

    /// A GET with query parameters (`range=24h`); one page.
    pub async fn get_query(&self, path: &[&str], query: &[(&str, &str)]) -> Result<Value> {
        let mut url = self.url(path)?;
        url.query_pairs_mut().extend_pairs(query);
        let page = self
            .send_url(Method::GET, url, None, None, REQUEST_TIMEOUT)
            .await?;
        Ok(page.body)
    }

    async fn send_url(
        &self,
        method: Method,
        url: Url,
        range: Option<&str>,
        body: Option<Value>,
        timeout: Duration,
    ) -> Result<Page> {
        let what = format!("{method} {}", url.path());
        let mut request = self.http.request(method, url).timeout(timeout);
        request = match &self.auth {
            Auth::Bearer(key) => request.bearer_auth(key),
            Auth::Basic { user, password } => request.basic_auth(user, Some(password)),
        };
        if let Some(range) = range {
            request = request.header(RANGE, range);
        }
        if let Some(body) = &body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|error| match error.is_timeout() {
                true => anyhow!(
                    "{what}: the Wharf server at {} did not answer within {} seconds",
                    self.base,
                    timeout.as_secs()
                ),
                false => self.transport_error(error, &what),
            })?;
        let status = response.status();
        // Only a partial answer has more to fetch; a `Next-Range` on anything else is ignored
        // so that a confused server cannot make the client loop.
        let next_range = response
            .headers()
            .get(NEXT_RANGE)
            .and_then(|value| value.to_str().ok())
            .filter(|_| status == StatusCode::PARTIAL_CONTENT)
            .map(str::to_string);
        let text = response
            .text()
            .await
            .with_context(|| format!("{what}: read the response"))?;
        if status.is_client_error() || status.is_server_error() {
            return Err(error_from_body(status, &text));
        }
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .with_context(|| format!("{what}: the response is not JSON"))?
        };
        Ok(Page { body, next_range })
    }

    fn transport_error(&self, error: reqwest::Error, what: &str) -> anyhow::Error {
        if error.is_connect() {
            let reason = innermost_cause(&error);
            return Unreachable {
                url: self.base.clone(),
                reason,
            }
            .into();
        }
        if error.is_timeout() {
            return anyhow!(
                "{what}: the Wharf server at {} did not answer within {} seconds",
                self.base,
                REQUEST_TIMEOUT.as_secs()
            );
        }
        // Some URLs hold secrets (upload and output URLs); `what` says enough.
        anyhow::Error::new(error.without_url()).context(what.to_string())
    }
}

/// A JSON error body becomes an [`ApiError`]; anything else shows the status and the text.
fn error_from_body(status: StatusCode, text: &str) -> anyhow::Error {
    match serde_json::from_str::<ErrorBody>(text) {
        Ok(body) => ApiError {
            id: body.id,
            message: body.message,
        }
        .into(),
        Err(_) if text.trim().is_empty() => anyhow!("the server answered HTTP {status}"),
        Err(_) => anyhow!("the server answered HTTP {status}: {}", text.trim()),
    }
}

fn innermost_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

/// A response body as the type the API documents for it.
pub fn decode<T: DeserializeOwned>(value: Value, what: &str) -> Result<T> {
    serde_json::from_value(value).with_context(|| format!("decode {what} from the server"))
}
