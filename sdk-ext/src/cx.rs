//! The context objects a filter acts through: [`HttpCx`] for one request, [`RootCx`] for the
//! filter's per-VM side, both dereferencing to [`Cx`] for what they share.
//!
//! A context knows which filter of the module it serves (its position in the chain), so the
//! dispatcher can route callout answers, ticks and wake-ups back to that filter, and keep each
//! filter's shared-data keys apart.

use crate::callout::HttpCall;
use crate::grpc::GrpcCall;
use crate::headers::Headers;
use crate::host::{BufferType, Host, MapType, Status, StreamType};
use crate::shared_data::SharedData;
use crate::wire::encode_pairs;
use std::cell::{Cell, RefCell};
use std::ops::Deref;
use std::time::Duration;

/// A module built without the `http-callouts` (`grpc-callouts`) feature exports no callback for
/// those answers, and Envoy would drop them: the request would wait for its timeout. So the call
/// fails at once instead; a filter that calls out enables the feature in its Cargo.toml.
fn check_callouts(enabled: bool, feature: &str) -> Result<(), Status> {
    if enabled {
        return Ok(());
    }
    log::error!(
        "this module was built without sdk-ext's `{feature}` feature: it cannot make this call"
    );
    Err(Status::InternalFailure)
}

/// What a callback asked of the dispatcher, applied when it returns.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    /// Callouts dispatched: (token, stream that owns it or `None` for the root).
    pub calls: Vec<(u32, Option<u32>)>,
    /// gRPC calls dispatched, likewise (their tokens are counted apart from HTTP callouts').
    pub grpc_calls: Vec<(u32, Option<u32>)>,
    /// Streams the root asked to wake.
    pub wakes: Vec<u32>,
    /// The tick period the filter asked for.
    pub tick: Option<Duration>,
    /// Streams that got a local reply.
    pub replied: Vec<u32>,
    /// Shared queues registered: their notifications go to this filter's root.
    pub queues: Vec<u32>,
    /// Body replacements (direction, start, size, new bytes' length), so that the next filter
    /// of the chain is told the body's new size.
    pub body_edits: Vec<(StreamType, usize, usize, usize)>,
}

/// What every context offers: time, properties, shared data, metrics and callouts.
pub struct Cx<'a> {
    pub(crate) host: &'a dyn Host,
    pub(crate) position: usize,
    pub(crate) namespace: &'a str,
    pub(crate) effects: &'a RefCell<Effects>,
    /// The stream whose callbacks run, `None` in the root.
    pub(crate) stream: Option<u32>,
    /// Host time, read once per host callback for every filter it runs.
    pub(crate) clock: &'a Cell<Option<u64>>,
}

impl<'a> Cx<'a> {
    /// Host time in nanoseconds since the Unix epoch (`proxy_get_current_time_nanoseconds`),
    /// read once per host callback: every filter of a chain sees the same instant, for one
    /// hostcall.
    pub fn now_nanos(&self) -> Result<u64, Status> {
        if let Some(now) = self.clock.get() {
            return Ok(now);
        }
        let now = self.host.now_nanos()?;
        self.clock.set(Some(now));
        Ok(now)
    }

    /// A property by its path segments, e.g. `&["source", "address"]` (`proxy_get_property`);
    /// `None` when the host has no value for it.
    pub fn property(&self, path: &[&str]) -> Result<Option<Vec<u8>>, Status> {
        self.host.property(&crate::properties::encode_path(path))
    }

    /// This filter's shared data: keys are kept apart from every other filter instance's, and
    /// shared with the same instance on the other workers.
    pub fn shared_data(&self) -> SharedData<'_> {
        SharedData {
            host: self.host,
            namespace: self.namespace,
        }
    }

    /// Sends `call`; the answer reaches this filter's `on_http_call_response` (the stream's when
    /// dispatched from a stream, the root's otherwise) with the returned token. An unknown
    /// cluster or a malformed request is `BadArgument`; without sdk-ext's `http-callouts`
    /// feature, every call is `InternalFailure`.
    pub fn http_call(&self, call: &HttpCall<'_>) -> Result<u32, Status> {
        check_callouts(cfg!(feature = "http-callouts"), "http-callouts")?;
        let headers = encode_pairs(&call.headers);
        let millis = u32::try_from(call.timeout.as_millis()).unwrap_or(u32::MAX);
        let token = self
            .host
            .dispatch_http_call(call.cluster, &headers, call.body, millis)?;
        self.effects.borrow_mut().calls.push((token, self.stream));
        Ok(token)
    }

    /// Sends the unary gRPC `call`; the answer (a message or a status) reaches this filter's
    /// `on_grpc_call_response` (the stream's when sent from a stream, the root's otherwise) with
    /// the returned token. An unknown cluster is `BadArgument`; without sdk-ext's
    /// `grpc-callouts` feature, every call is `InternalFailure`.
    pub fn grpc_call(&self, call: &GrpcCall<'_>) -> Result<u32, Status> {
        check_callouts(cfg!(feature = "grpc-callouts"), "grpc-callouts")?;
        let metadata = encode_pairs(&call.metadata);
        let millis = u32::try_from(call.timeout.as_millis()).unwrap_or(u32::MAX);
        let token = self.host.grpc_call(
            call.cluster,
            call.service,
            call.method,
            &metadata,
            call.message,
            millis,
        )?;
        self.effects
            .borrow_mut()
            .grpc_calls
            .push((token, self.stream));
        Ok(token)
    }

    /// This filter instance's shared queue `name` in the VM group `vm_id` (`""` for the group
    /// without a vm_id), as the instance on another worker registered it; `None` when no worker
    /// has registered it yet. Names are kept apart per filter instance, as shared-data keys are.
    pub fn resolve_queue(&self, vm_id: &str, name: &str) -> Result<Option<u32>, Status> {
        let name = format!("{}{name}", self.namespace);
        self.host.resolve_shared_queue(vm_id, &name)
    }

    /// Appends `value` to shared queue `queue_id`; its owner's `on_queue_ready` runs later, on
    /// its own worker.
    pub fn enqueue(&self, queue_id: u32, value: &[u8]) -> Result<(), Status> {
        self.host.enqueue_shared_queue(queue_id, value)
    }

    /// Takes the oldest item of shared queue `queue_id`; `None` when it is empty.
    pub fn dequeue(&self, queue_id: u32) -> Result<Option<Vec<u8>>, Status> {
        self.host.dequeue_shared_queue(queue_id)
    }

    /// Asks for the root's `on_tick` every `period`; zero stops it. Each filter of a chain has
    /// its own period: the module ticks at the shortest and calls each filter when it is due.
    pub fn set_tick_period(&self, period: Duration) {
        self.effects.borrow_mut().tick = Some(period);
    }

    /// This filter's position in the module (0 in a standalone module).
    pub fn position(&self) -> usize {
        self.position
    }

    pub(crate) fn host(&self) -> &'a dyn Host {
        self.host
    }
}

/// The context of one request: its headers, bodies and local replies, plus [`Cx`].
pub struct HttpCx<'a> {
    pub(crate) cx: Cx<'a>,
    pub(crate) context_id: u32,
}

impl<'a> Deref for HttpCx<'a> {
    type Target = Cx<'a>;
    fn deref(&self) -> &Cx<'a> {
        &self.cx
    }
}

impl<'a> HttpCx<'a> {
    /// The stream's context id.
    pub fn context_id(&self) -> u32 {
        self.context_id
    }

    /// The request headers.
    pub fn request_headers(&self) -> Headers<'a> {
        Headers::new(self.cx.host, MapType::HttpRequestHeaders)
    }

    /// The request trailers.
    pub fn request_trailers(&self) -> Headers<'a> {
        Headers::new(self.cx.host, MapType::HttpRequestTrailers)
    }

    /// The response headers.
    pub fn response_headers(&self) -> Headers<'a> {
        Headers::new(self.cx.host, MapType::HttpResponseHeaders)
    }

    /// The response trailers.
    pub fn response_trailers(&self) -> Headers<'a> {
        Headers::new(self.cx.host, MapType::HttpResponseTrailers)
    }

    /// Up to `max_size` bytes of the buffered request body from `start`.
    pub fn request_body(&self, start: usize, max_size: usize) -> Result<Vec<u8>, Status> {
        self.cx
            .host
            .buffer(BufferType::HttpRequestBody, start, max_size)
    }

    /// Replaces `size` bytes of the buffered request body at `start` with `data`, as Envoy
    /// does: at `start` 0 the first `size` bytes go and `data` is prepended; at or past the end
    /// `data` is appended; anywhere else is `BadArgument`.
    pub fn set_request_body(&self, start: usize, size: usize, data: &[u8]) -> Result<(), Status> {
        self.cx
            .host
            .set_buffer(BufferType::HttpRequestBody, start, size, data)?;
        self.record_body_edit(StreamType::Request, start, size, data.len());
        Ok(())
    }

    fn record_body_edit(&self, direction: StreamType, start: usize, size: usize, len: usize) {
        self.cx
            .effects
            .borrow_mut()
            .body_edits
            .push((direction, start, size, len));
    }

    /// Up to `max_size` bytes of the buffered response body from `start`.
    pub fn response_body(&self, start: usize, max_size: usize) -> Result<Vec<u8>, Status> {
        self.cx
            .host
            .buffer(BufferType::HttpResponseBody, start, max_size)
    }

    /// Replaces `size` bytes of the buffered response body at `start` with `data`, as
    /// [`set_request_body`](Self::set_request_body) does.
    pub fn set_response_body(&self, start: usize, size: usize, data: &[u8]) -> Result<(), Status> {
        self.cx
            .host
            .set_buffer(BufferType::HttpResponseBody, start, size, data)?;
        self.record_body_edit(StreamType::Response, start, size, data.len());
        Ok(())
    }

    /// Sends a local reply that ends the stream (`proxy_send_local_response`); no later filter
    /// sees the request. `details` becomes Envoy's response code details (`snake_case`).
    /// Return [`Action::Pause`](crate::Action::Pause) after it.
    pub fn send_reply(
        &self,
        status: u32,
        details: &str,
        body: &[u8],
        headers: &[(&str, &[u8])],
    ) -> Result<(), Status> {
        let headers = encode_pairs(headers);
        self.cx
            .host
            .send_local_response(status, details, body, &headers)?;
        self.cx.effects.borrow_mut().replied.push(self.context_id);
        Ok(())
    }

    /// Sends a local reply with body `{"error": <code>, "message": <message>}` and
    /// `content-type: application/json`, plus `headers`.
    pub fn send_json_error(
        &self,
        status: u32,
        code: &str,
        message: &str,
        headers: &[(&str, &[u8])],
    ) -> Result<(), Status> {
        let body = crate::reply::json_error_body(code, message);
        let mut all: Vec<(&str, &[u8])> = Vec::with_capacity(headers.len() + 1);
        all.push(("content-type", b"application/json"));
        all.extend_from_slice(headers);
        self.send_reply(status, code, body.as_bytes(), &all)
    }
}

/// The context of a filter's per-VM side: waking paused streams, plus [`Cx`].
pub struct RootCx<'a> {
    pub(crate) cx: Cx<'a>,
}

impl<'a> Deref for RootCx<'a> {
    type Target = Cx<'a>;
    fn deref(&self) -> &Cx<'a> {
        &self.cx
    }
}

impl RootCx<'_> {
    /// Registers this filter instance's shared queue `name` (kept apart from other instances'
    /// queues) and returns its id: `on_queue_ready` of this filter's root runs when an item is
    /// enqueued. Registering again returns the same id.
    pub fn register_queue(&self, name: &str) -> Result<u32, Status> {
        let name = format!("{}{name}", self.cx.namespace);
        let queue_id = self.cx.host.register_shared_queue(&name)?;
        self.cx.effects.borrow_mut().queues.push(queue_id);
        Ok(queue_id)
    }

    /// Wakes stream `context_id`, which this filter paused: once the running callback returns,
    /// the filter's `on_wake` runs on that stream, and a `Continue` from it resumes the chain at
    /// the next filter. A stream that ended meanwhile is skipped.
    pub fn wake(&self, context_id: u32) {
        self.cx.effects.borrow_mut().wakes.push(context_id);
    }
}
