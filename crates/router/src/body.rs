//! Streaming bodies, never buffered whole: the client's request body on its way to a dyno
//! (watching for a client that goes away or goes quiet, H27 and H28), and the response body on
//! its way back (counting bytes, watching for a dyno that goes quiet, H15, and writing the
//! router line when it ends).

use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

use crate::error::{ClientError, DynoError};
use crate::record::RequestRecord;
use crate::upstream::{DynoConnection, ResponseBody};

pub type BoxError = Box<dyn StdError + Send + Sync>;

/// Why a body stopped early, as the router reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Stopped(pub &'static str);

/// A deadline that runs only while a body waits for its source: a slow reader on the other
/// side never makes the source look idle.
struct IdleTimer {
    limit: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
    waiting: bool,
}

impl IdleTimer {
    fn new(limit: Duration) -> IdleTimer {
        IdleTimer {
            limit,
            sleep: None,
            waiting: false,
        }
    }

    /// The source had nothing: start the clock if it is not running, and say whether it ran
    /// out.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.waiting {
            self.waiting = true;
            let deadline = Instant::now() + self.limit;
            match &mut self.sleep {
                Some(sleep) => sleep.as_mut().reset(deadline),
                None => self.sleep = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
        }
        match &mut self.sleep {
            Some(sleep) => sleep.as_mut().poll(cx).is_ready(),
            None => false,
        }
    }

    /// The source produced something.
    fn progressed(&mut self) {
        self.waiting = false;
    }
}

/// How the client's side of a forwarded request body went, shared with the proxy so it can
/// tell why sending to the dyno failed.
#[derive(Debug)]
pub struct ClientBodyState(AtomicU8);

const BODY_SENDING: u8 = 0;
const BODY_ENDED: u8 = 1;
const BODY_CLIENT_GONE: u8 = 2;
const BODY_CLIENT_IDLE: u8 = 3;

impl Default for ClientBodyState {
    fn default() -> ClientBodyState {
        ClientBodyState(AtomicU8::new(BODY_SENDING))
    }
}

impl ClientBodyState {
    fn set(&self, state: u8) {
        self.0.store(state, Ordering::Release);
    }

    /// Was the whole body handed over?
    pub fn ended(&self) -> bool {
        self.0.load(Ordering::Acquire) == BODY_ENDED
    }

    /// Did the client fail while the body was being sent?
    pub fn client_error(&self) -> Option<ClientError> {
        match self.0.load(Ordering::Acquire) {
            BODY_CLIENT_GONE => Some(ClientError::Interrupted),
            BODY_CLIENT_IDLE => Some(ClientError::Idle),
            _ => None,
        }
    }
}

/// The client's request body, as sent to a dyno.
pub struct ForwardBody {
    inner: Option<Incoming>,
    idle: IdleTimer,
    state: Arc<ClientBodyState>,
}

impl ForwardBody {
    /// `idle` is how long the client may send nothing while the dyno waits for more (H28).
    pub fn new(inner: Incoming, idle: Duration) -> ForwardBody {
        let state = Arc::new(ClientBodyState::default());
        let inner = if inner.is_end_stream() {
            state.set(BODY_ENDED);
            None
        } else {
            Some(inner)
        };
        ForwardBody {
            inner,
            idle: IdleTimer::new(idle),
            state,
        }
    }

    pub fn state(&self) -> Arc<ClientBodyState> {
        self.state.clone()
    }

    /// Nothing to send.
    pub fn is_empty(&self) -> bool {
        self.inner.is_none()
    }
}

impl Body for ForwardBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let Some(inner) = &mut this.inner else {
            return Poll::Ready(None);
        };
        match Pin::new(&mut *inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.idle.progressed();
                if inner.is_end_stream() {
                    this.state.set(BODY_ENDED);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => {
                this.state.set(BODY_CLIENT_GONE);
                this.inner = None;
                Poll::Ready(Some(Err(error.into())))
            }
            Poll::Ready(None) => {
                this.state.set(BODY_ENDED);
                this.inner = None;
                Poll::Ready(None)
            }
            Poll::Pending => {
                if this.idle.poll_expired(cx) {
                    this.state.set(BODY_CLIENT_IDLE);
                    this.inner = None;
                    return Poll::Ready(Some(Err(Stopped("client connection idle").into())));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

/// A response body the router sends a client: its own page, or a dyno's response.
pub enum ProxyBody {
    Page(Option<Bytes>),
    Dyno(Box<DynoBody>),
}

impl ProxyBody {
    pub fn page(text: &'static str) -> ProxyBody {
        ProxyBody::Page(Some(Bytes::from_static(text.as_bytes())))
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            ProxyBody::Page(text) => Poll::Ready(text.take().map(|t| Ok(Frame::data(t)))),
            ProxyBody::Dyno(body) => Pin::new(body.as_mut()).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Page(text) => text.is_none(),
            ProxyBody::Dyno(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Page(text) => {
                SizeHint::with_exact(text.as_ref().map_or(0, |t| t.len() as u64))
            }
            ProxyBody::Dyno(body) => body.size_hint(),
        }
    }
}

/// A dyno's response body on its way to the client. Writes the router line when it ends, when
/// the dyno goes quiet for too long (H15, and the client's connection is cut), or when it is
/// dropped early (the client went away).
pub struct DynoBody {
    inner: Option<ResponseBody>,
    idle: IdleTimer,
    bytes: u64,
    record: Option<RequestRecord>,
    /// Called once when the response ends, with its connection if it may carry another
    /// request.
    on_end: Option<OnEnd>,
}

/// What a response does when it ends: given its connection when that may be used again.
pub type OnEnd = Box<dyn FnOnce(Option<DynoConnection>) + Send>;

impl DynoBody {
    pub fn new(
        inner: ResponseBody,
        idle: Duration,
        record: RequestRecord,
        on_end: OnEnd,
    ) -> DynoBody {
        let mut body = DynoBody {
            inner: Some(inner),
            idle: IdleTimer::new(idle),
            bytes: 0,
            record: Some(record),
            on_end: Some(on_end),
        };
        if body.inner.as_ref().is_some_and(Body::is_end_stream) {
            body.finish(true, None);
        }
        body
    }

    fn finish(&mut self, clean: bool, error: Option<DynoError>) {
        let reusable = self
            .inner
            .take()
            .filter(|_| clean)
            .and_then(ResponseBody::into_reusable);
        if let Some(on_end) = self.on_end.take() {
            on_end(reusable);
        }
        if let Some(record) = self.record.take() {
            match error {
                Some(error) => record.fail(error.into(), Some(self.bytes)),
                None => record.served(self.bytes),
            }
        }
    }
}

impl Body for DynoBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let Some(inner) = &mut this.inner else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(&mut *inner).poll_frame(cx);
        if polled.is_pending() {
            if this.idle.poll_expired(cx) {
                this.finish(false, Some(DynoError::IdleConnection));
                return Poll::Ready(Some(Err(Stopped("idle connection").into())));
            }
            return Poll::Pending;
        }
        this.idle.progressed();
        match ready!(polled) {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    this.bytes += data.len() as u64;
                }
                if inner.is_end_stream() {
                    this.finish(true, None);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(error)) => {
                // The dyno broke off its response: the client's connection is cut too.
                this.finish(false, None);
                Poll::Ready(Some(Err(error.into())))
            }
            None => {
                this.finish(true, None);
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

impl Drop for DynoBody {
    fn drop(&mut self) {
        // The client went away (or was answered) before the end: the line says how much it got.
        self.finish(false, None);
    }
}
