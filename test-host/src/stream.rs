//! One HTTP stream driven through the filter as Envoy's filter chain drives it.
//!
//! Each direction (request: client → upstream, response: upstream → client) goes headers, body
//! chunks, trailers. What the filter lets through is recorded as the message the next hop sees:
//! [`HttpStream::upstream_request`] and [`HttpStream::client_response`]. Envoy's rules:
//! - a header callback that stops (1, 3, 4 or anything but 0 and 2) stops all iteration: later
//!   body chunks and trailers are held by the host and handed to the filter, accumulated, only
//!   after `proxy_continue_stream`;
//! - a body callback returning 1 (StopIterationAndBuffer) makes the next body callback see the
//!   whole body so far; 2 holds the data but shows only new chunks; 3 drops the chunk;
//! - `proxy_continue_stream`, `proxy_close_stream` and `proxy_send_local_response` act after the
//!   callback returns; a local reply forces the callback's result to stop;
//! - a local reply sent before the response started runs through this filter's own response
//!   callbacks; one sent after the response headers arrived goes straight to the client;
//! - the stream ends with `proxy_on_log`, `proxy_on_done`, `proxy_on_delete`, in that order.

use crate::error::{Error, Result};
use crate::plugin::Vm;
use crate::state::{Access, Deferred, HeaderMap, LocalResponse, MapKind};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

/// What a filter callback returned, or that the host held the data without calling it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `0`: continue.
    Continue,
    /// `1`: StopIteration (headers, trailers) or StopIterationAndBuffer (body).
    Pause,
    /// `2`: ContinueAndEndStream (headers; Envoy treats it as Continue) or
    /// StopIterationAndWatermark (body).
    ContinueAndEndStream,
    /// `3`: StopAllIterationAndBuffer (headers) or StopIterationNoBuffer (body).
    StopAllIterationAndBuffer,
    /// `4`: StopAllIterationAndWatermark.
    StopAllIterationAndWatermark,
    /// Any other value.
    Unknown(u32),
    /// The filter was not called: an earlier callback stopped all iteration, so the host holds
    /// this data until the filter continues the stream.
    Held,
}

impl Action {
    pub(crate) fn from_abi(value: u32) -> Action {
        match value {
            0 => Action::Continue,
            1 => Action::Pause,
            2 => Action::ContinueAndEndStream,
            3 => Action::StopAllIterationAndBuffer,
            4 => Action::StopAllIterationAndWatermark,
            other => Action::Unknown(other),
        }
    }

    fn raw(self) -> u32 {
        match self {
            Action::Continue | Action::Held => 0,
            Action::Pause => 1,
            Action::ContinueAndEndStream => 2,
            Action::StopAllIterationAndBuffer => 3,
            Action::StopAllIterationAndWatermark => 4,
            Action::Unknown(value) => value,
        }
    }
}

/// A message as it left the filter toward the next hop.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// Headers, once the filter let them through.
    pub headers: Option<HeaderMap>,
    /// Body bytes the filter let through, in order.
    pub body: Vec<u8>,
    /// Trailers, once the filter let them through.
    pub trailers: Option<HeaderMap>,
    /// Everything up to the end of the stream went through.
    pub complete: bool,
    /// The stream was reset (by `proxy_close_stream`, or a local reply after the response began).
    pub reset: bool,
}

impl Message {
    /// The `:status` of a response, if it has headers with one.
    pub fn status(&self) -> Option<u16> {
        self.headers.as_ref()?.get_str(":status")?.parse().ok()
    }

    /// The first value of a header, as a string.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.as_ref()?.get_str(name)
    }
}

/// Properties every stream starts with, as Envoy reports them for a loopback request.
const DEFAULT_PROPERTIES: &[(&[&str], &[u8])] = &[
    (&["source", "address"], b"127.0.0.1:50000"),
    (&["destination", "address"], b"127.0.0.1:10000"),
    (&["request", "protocol"], b"HTTP/1.1"),
];

/// Direction of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    Request,
    Response,
}

impl Dir {
    fn callback(self, part: &str) -> &'static str {
        match (self, part) {
            (Dir::Request, "headers") => "proxy_on_request_headers",
            (Dir::Request, "body") => "proxy_on_request_body",
            (Dir::Request, _) => "proxy_on_request_trailers",
            (Dir::Response, "headers") => "proxy_on_response_headers",
            (Dir::Response, "body") => "proxy_on_response_body",
            (Dir::Response, _) => "proxy_on_response_trailers",
        }
    }

    fn kinds(self) -> (MapKind, MapKind) {
        match self {
            Dir::Request => (MapKind::RequestHeaders, MapKind::Plain),
            Dir::Response => (MapKind::ResponseHeaders, MapKind::ResponseTrailers),
        }
    }
}

/// One direction of a stream: the maps and body the filter sees, and what the host holds.
#[derive(Debug, Default)]
pub(crate) struct Direction {
    pub headers: Option<HeaderMap>,
    pub trailers: Option<HeaderMap>,
    pub headers_access: Access,
    pub trailers_access: Access,
    /// The body the filter reads and writes in a body callback (the chunk, or all buffered data).
    pub body: Vec<u8>,
    /// Inside a body callback with end of stream: the filter may create trailers.
    pub may_add_trailers: bool,
    headers_received: bool,
    headers_held: bool,
    /// A header callback stopped all iteration: data is held without calling the filter.
    stop_all: bool,
    held_body: Vec<u8>,
    held_body_end: bool,
    held_trailers: Option<HeaderMap>,
    /// The last body callback returned StopIterationAndBuffer.
    buffering: bool,
    /// Body data Envoy keeps for the filter without showing it again (StopIterationAndWatermark).
    watermark_held: Vec<u8>,
    body_stopped: bool,
    trailers_held: bool,
    end_seen: bool,
    /// No more callbacks in this direction (local reply, reset, or VM failure).
    aborted: bool,
    pub forwarded: Message,
}

/// Everything the host holds for one HTTP stream.
#[derive(Debug, Default)]
pub(crate) struct StreamState {
    pub request: Direction,
    pub response: Direction,
    pub properties: BTreeMap<Vec<u8>, Vec<u8>>,
    pub in_log: bool,
    /// A local reply was sent on this stream; Envoy ignores any later one.
    pub local_reply_hold: bool,
    /// A local reply was sent during the running callback, which forces it to stop.
    pub local_reply_in_callback: bool,
    pub local_response: Option<LocalResponse>,
    pub response_code_details: Option<String>,
    pub started_nanos: u64,
    pub connection_id: u32,
    created: bool,
}

impl StreamState {
    fn dir(&mut self, dir: Dir) -> &mut Direction {
        match dir {
            Dir::Request => &mut self.request,
            Dir::Response => &mut self.response,
        }
    }

    /// The map of proxy-wasm type 0..=3 if the callback may use it with `needed` access; an
    /// absent trailer map is created when the filter may add trailers.
    pub(crate) fn map_slot(&mut self, map_type: u32, needed: Access) -> Option<&mut HeaderMap> {
        let direction = if map_type < 2 {
            &mut self.request
        } else {
            &mut self.response
        };
        let (map, access) = if map_type.is_multiple_of(2) {
            (&mut direction.headers, direction.headers_access)
        } else {
            if direction.trailers.is_none()
                && direction.may_add_trailers
                && needed == Access::ReadWrite
            {
                direction.trailers = Some(HeaderMap::with_kind(
                    if map_type == 3 {
                        MapKind::ResponseTrailers
                    } else {
                        MapKind::Plain
                    },
                    &[] as &[(&[u8], &[u8])],
                ));
                direction.trailers_access = Access::ReadWrite;
            }
            (&mut direction.trailers, direction.trailers_access)
        };
        if access < needed {
            return None;
        }
        map.as_mut()
    }

    /// The body buffer the filter sees.
    pub(crate) fn body(&self, response: bool) -> &Vec<u8> {
        if response {
            &self.response.body
        } else {
            &self.request.body
        }
    }

    /// The body buffer the filter writes.
    pub(crate) fn body_mut(&mut self, response: bool) -> &mut Vec<u8> {
        if response {
            &mut self.response.body
        } else {
            &mut self.request.body
        }
    }

    /// Request headers, if the filter may read them now (its own callback, or `on_log`).
    pub(crate) fn readable_request_headers(&self) -> Option<&HeaderMap> {
        (self.request.headers_access >= Access::ReadOnly)
            .then_some(self.request.headers.as_ref())
            .flatten()
    }

    /// Response headers, if the filter may read them now.
    pub(crate) fn readable_response_headers(&self) -> Option<&HeaderMap> {
        (self.response.headers_access >= Access::ReadOnly)
            .then_some(self.response.headers.as_ref())
            .flatten()
    }

    /// The response status once response headers exist.
    pub(crate) fn response_status(&self) -> Option<i64> {
        let headers = self
            .response
            .forwarded
            .headers
            .as_ref()
            .or(self.response.headers.as_ref())?;
        std::str::from_utf8(headers.get(":status")?)
            .ok()?
            .parse()
            .ok()
    }
}

/// One HTTP stream (request and response) on a plugin. Dropping it ends the stream.
pub struct HttpStream {
    vm: Rc<RefCell<Vm>>,
    context_id: u32,
    ended: bool,
}

impl HttpStream {
    pub(crate) fn create(vm: Rc<RefCell<Vm>>) -> Result<HttpStream> {
        let context_id = {
            let mut vm = vm.borrow_mut();
            vm.check_alive()?;
            let context_id = vm.next_context_id();
            let now = vm.store.data().shared.now_nanos();
            let mut state = StreamState {
                started_nanos: now,
                connection_id: context_id,
                ..StreamState::default()
            };
            for (path, value) in DEFAULT_PROPERTIES {
                state
                    .properties
                    .insert(path.join("\0").into_bytes(), value.to_vec());
            }
            vm.store.data_mut().streams.insert(context_id, state);
            context_id
        };
        Ok(HttpStream {
            vm,
            context_id,
            ended: false,
        })
    }

    /// This stream's context id.
    pub fn context_id(&self) -> u32 {
        self.context_id
    }

    fn with_state<T>(&self, f: impl FnOnce(&StreamState) -> T) -> Option<T> {
        let vm = self.vm.borrow();
        vm.store.data().streams.get(&self.context_id).map(f)
    }

    /// Sets a property of this stream, e.g. `&["source", "address"]`.
    pub fn set_property(&mut self, path: &[&str], value: impl Into<Vec<u8>>) {
        let value = value.into();
        let mut vm = self.vm.borrow_mut();
        if let Some(state) = vm.store.data_mut().streams.get_mut(&self.context_id) {
            state.properties.insert(path.join("\0").into_bytes(), value);
        }
    }

    /// Sends the request headers (`proxy_on_request_headers`), creating the context first.
    pub fn send_request_headers<N: AsRef<[u8]>, V: AsRef<[u8]>>(
        &mut self,
        headers: &[(N, V)],
        end_of_stream: bool,
    ) -> Result<Action> {
        self.drive(|vm, id| {
            vm.send_headers(
                id,
                Dir::Request,
                HeaderMap::with_kind(MapKind::RequestHeaders, headers),
                end_of_stream,
            )
        })
    }

    /// Sends a request body chunk (`proxy_on_request_body`).
    pub fn send_request_body(
        &mut self,
        chunk: impl AsRef<[u8]>,
        end_of_stream: bool,
    ) -> Result<Action> {
        self.drive(|vm, id| vm.send_body(id, Dir::Request, chunk.as_ref(), end_of_stream))
    }

    /// Sends the request trailers (`proxy_on_request_trailers`).
    pub fn send_request_trailers<N: AsRef<[u8]>, V: AsRef<[u8]>>(
        &mut self,
        trailers: &[(N, V)],
    ) -> Result<Action> {
        self.drive(|vm, id| vm.send_trailers(id, Dir::Request, HeaderMap::from_pairs(trailers)))
    }

    /// Sends the upstream's response headers (`proxy_on_response_headers`).
    pub fn send_response_headers<N: AsRef<[u8]>, V: AsRef<[u8]>>(
        &mut self,
        headers: &[(N, V)],
        end_of_stream: bool,
    ) -> Result<Action> {
        self.drive(|vm, id| {
            vm.send_headers(
                id,
                Dir::Response,
                HeaderMap::with_kind(MapKind::ResponseHeaders, headers),
                end_of_stream,
            )
        })
    }

    /// Sends a response body chunk (`proxy_on_response_body`).
    pub fn send_response_body(
        &mut self,
        chunk: impl AsRef<[u8]>,
        end_of_stream: bool,
    ) -> Result<Action> {
        self.drive(|vm, id| vm.send_body(id, Dir::Response, chunk.as_ref(), end_of_stream))
    }

    /// Sends the response trailers (`proxy_on_response_trailers`).
    pub fn send_response_trailers<N: AsRef<[u8]>, V: AsRef<[u8]>>(
        &mut self,
        trailers: &[(N, V)],
    ) -> Result<Action> {
        self.drive(|vm, id| {
            vm.send_trailers(
                id,
                Dir::Response,
                HeaderMap::with_kind(MapKind::ResponseTrailers, trailers),
            )
        })
    }

    fn drive(&mut self, step: impl FnOnce(&mut Vm, u32) -> Result<Action>) -> Result<Action> {
        if self.ended {
            return Err(Error::Usage("the stream has ended".into()));
        }
        let mut vm = self.vm.borrow_mut();
        step(&mut vm, self.context_id)
    }

    /// The request as it left the filter: what the upstream receives.
    pub fn upstream_request(&self) -> Message {
        self.with_state(|state| state.request.forwarded.clone())
            .unwrap_or_default()
    }

    /// The response as it left the filter: what the client receives (a local reply included).
    pub fn client_response(&self) -> Message {
        self.with_state(|state| state.response.forwarded.clone())
            .unwrap_or_default()
    }

    /// The request headers as the filter left them (even if it has not let them through yet).
    pub fn request_headers(&self) -> HeaderMap {
        self.with_state(|state| state.request.headers.clone().unwrap_or_default())
            .unwrap_or_default()
    }

    /// The request trailers as the filter left them.
    pub fn request_trailers(&self) -> HeaderMap {
        self.with_state(|state| state.request.trailers.clone().unwrap_or_default())
            .unwrap_or_default()
    }

    /// The response headers as the filter left them.
    pub fn response_headers(&self) -> HeaderMap {
        self.with_state(|state| state.response.headers.clone().unwrap_or_default())
            .unwrap_or_default()
    }

    /// The response trailers as the filter left them.
    pub fn response_trailers(&self) -> HeaderMap {
        self.with_state(|state| state.response.trailers.clone().unwrap_or_default())
            .unwrap_or_default()
    }

    /// The local reply the filter sent, if any.
    pub fn local_response(&self) -> Option<LocalResponse> {
        self.with_state(|state| state.local_response.clone())
            .flatten()
    }

    /// HTTP callouts this stream's callbacks made that are still waiting for an answer.
    pub fn http_calls(&self) -> Vec<crate::callouts::HttpCall> {
        let vm = self.vm.borrow();
        vm.store
            .data()
            .http_calls
            .values()
            .filter(|call| call.context_id == self.context_id)
            .cloned()
            .collect()
    }

    /// The hostcalls made for this stream's context, oldest first, with their statuses.
    pub fn hostcalls(&self) -> Vec<crate::HostcallRecord> {
        let vm = self.vm.borrow();
        vm.store
            .data()
            .trace
            .iter()
            .filter(|record| record.context_id == self.context_id)
            .copied()
            .collect()
    }

    /// Ends the stream as Envoy does: `proxy_on_log`, `proxy_on_done`, `proxy_on_delete`.
    pub fn end(mut self) -> Result<()> {
        self.finish()
    }

    fn finish(&mut self) -> Result<()> {
        if self.ended {
            return Ok(());
        }
        self.ended = true;
        let mut vm = self.vm.borrow_mut();
        let result = vm.end_stream(self.context_id);
        vm.store.data_mut().streams.remove(&self.context_id);
        result
    }
}

impl Drop for HttpStream {
    fn drop(&mut self) {
        // A failure here is already recorded as the VM's failure.
        let _ = self.finish();
    }
}

/// The driver: Envoy's filter-manager behaviour, as methods of the VM.
impl Vm {
    fn stream_state(&mut self, context_id: u32) -> Result<&mut StreamState> {
        self.store
            .data_mut()
            .streams
            .get_mut(&context_id)
            .ok_or_else(|| Error::Usage(format!("no stream with context id {context_id}")))
    }

    fn direction(&mut self, context_id: u32, dir: Dir) -> Result<&mut Direction> {
        Ok(self.stream_state(context_id)?.dir(dir))
    }

    /// Calls `proxy_on_context_create` for the stream the first time it is needed, as Envoy does
    /// at the first request headers (or at the access log, for a stream that never got any).
    fn ensure_created(&mut self, context_id: u32) -> Result<()> {
        if self.stream_state(context_id)?.created {
            return Ok(());
        }
        self.stream_state(context_id)?.created = true;
        let root = self.root_context_id;
        self.call::<(u32, u32), ()>(context_id, "proxy_on_context_create", (context_id, root))?;
        Ok(())
    }

    /// Runs a stream callback. A trap fails the stream with Envoy's 503 before it is reported.
    fn stream_callback(&mut self, context_id: u32, name: &str, args: &[u32]) -> Result<Action> {
        let result = match *args {
            [a, b, c] => self.call::<(u32, u32, u32), u32>(context_id, name, (a, b, c)),
            [a, b] => self.call::<(u32, u32), u32>(context_id, name, (a, b)),
            _ => Err(Error::Usage(format!("bad arguments for {name}"))),
        };
        match result {
            Ok(value) => Ok(value.map_or(Action::Continue, Action::from_abi)),
            Err(error) => {
                if matches!(error, Error::Trap { .. } | Error::VmFailed(_)) {
                    self.fail_stream(context_id);
                }
                Err(error)
            }
        }
    }

    /// Envoy's answer to a VM failure in a stream: one 503 with details `wasm_fail_stream`.
    fn fail_stream(&mut self, context_id: u32) {
        if let Ok(state) = self.stream_state(context_id) {
            let reply = local_reply_headers(503, &HeaderMap::default(), &[]);
            state.response.forwarded = Message {
                headers: Some(reply),
                complete: true,
                ..Message::default()
            };
            state.response_code_details = Some("wasm_fail_stream".into());
            state.request.aborted = true;
            state.response.aborted = true;
        }
    }

    fn check_open(&mut self, context_id: u32, dir: Dir) -> Result<()> {
        self.check_alive()?;
        if self.direction(context_id, dir)?.aborted {
            return Err(Error::Usage(format!(
                "the {} was already ended by a local reply, a reset or a VM failure",
                if dir == Dir::Request {
                    "request"
                } else {
                    "response"
                }
            )));
        }
        Ok(())
    }

    pub(crate) fn send_headers(
        &mut self,
        context_id: u32,
        dir: Dir,
        headers: HeaderMap,
        end_of_stream: bool,
    ) -> Result<Action> {
        self.check_open(context_id, dir)?;
        if dir == Dir::Request {
            self.ensure_created(context_id)?;
        }
        let count = headers.len() as u32;
        {
            let direction = self.direction(context_id, dir)?;
            if direction.headers_received {
                return Err(Error::Usage(
                    "headers were already sent in this direction".into(),
                ));
            }
            direction.headers_received = true;
            direction.end_seen = end_of_stream;
            direction.headers = Some(headers);
            direction.headers_access = Access::ReadWrite;
        }
        let action = self.stream_callback(
            context_id,
            dir.callback("headers"),
            &[context_id, count, end_of_stream as u32],
        )?;
        let forced_stop =
            std::mem::take(&mut self.stream_state(context_id)?.local_reply_in_callback);
        let stopped = forced_stop || !matches!(action.raw(), 0 | 2);
        {
            let direction = self.direction(context_id, dir)?;
            if stopped {
                direction.stop_all = true;
                direction.headers_held = true;
            } else {
                forward_headers(direction);
            }
        }
        self.run_deferred()?;
        Ok(action)
    }

    pub(crate) fn send_body(
        &mut self,
        context_id: u32,
        dir: Dir,
        chunk: &[u8],
        end_of_stream: bool,
    ) -> Result<Action> {
        self.check_open(context_id, dir)?;
        {
            let direction = self.direction(context_id, dir)?;
            if !direction.headers_received {
                return Err(Error::Usage("a body chunk before the headers".into()));
            }
            direction.end_seen |= end_of_stream;
            if direction.stop_all {
                direction.held_body.extend_from_slice(chunk);
                direction.held_body_end |= end_of_stream;
                return Ok(Action::Held);
            }
        }
        let action = self.deliver_body(context_id, dir, chunk, end_of_stream)?;
        self.run_deferred()?;
        Ok(action)
    }

    /// Shows `chunk` (after any buffered data) to the body callback and applies its result.
    fn deliver_body(
        &mut self,
        context_id: u32,
        dir: Dir,
        chunk: &[u8],
        end_of_stream: bool,
    ) -> Result<Action> {
        let size = {
            let direction = self.direction(context_id, dir)?;
            if !direction.buffering {
                direction.body.clear();
            }
            direction.body.extend_from_slice(chunk);
            direction.may_add_trailers = end_of_stream;
            direction.body.len() as u32
        };
        let result = self.stream_callback(
            context_id,
            dir.callback("body"),
            &[context_id, size, end_of_stream as u32],
        );
        self.direction(context_id, dir)?.may_add_trailers = false;
        let action = result?;
        let local_reply =
            std::mem::take(&mut self.stream_state(context_id)?.local_reply_in_callback);
        let direction = self.direction(context_id, dir)?;
        match if local_reply { 3 } else { action.raw() } {
            0 => {
                forward_headers(direction);
                forward_body(direction);
                if end_of_stream {
                    if let Some(trailers) = direction.trailers.clone() {
                        // The filter created trailers in this last body callback.
                        direction.forwarded.trailers = Some(trailers);
                        direction.trailers_access = Access::None;
                    }
                    direction.forwarded.complete = true;
                }
            }
            1 => {
                direction.buffering = true;
                direction.body_stopped = true;
            }
            2 => {
                let shown = std::mem::take(&mut direction.body);
                direction.watermark_held.extend_from_slice(&shown);
                direction.buffering = false;
                direction.body_stopped = true;
            }
            _ => {
                direction.body.clear();
                direction.buffering = false;
                direction.body_stopped = true;
            }
        }
        Ok(action)
    }

    pub(crate) fn send_trailers(
        &mut self,
        context_id: u32,
        dir: Dir,
        trailers: HeaderMap,
    ) -> Result<Action> {
        self.check_open(context_id, dir)?;
        let count = trailers.len() as u32;
        {
            let direction = self.direction(context_id, dir)?;
            if !direction.headers_received {
                return Err(Error::Usage("trailers before the headers".into()));
            }
            direction.end_seen = true;
            if direction.stop_all {
                direction.held_trailers = Some(trailers);
                return Ok(Action::Held);
            }
        }
        let action = self.deliver_trailers(context_id, dir, trailers, count)?;
        self.run_deferred()?;
        Ok(action)
    }

    fn deliver_trailers(
        &mut self,
        context_id: u32,
        dir: Dir,
        trailers: HeaderMap,
        count: u32,
    ) -> Result<Action> {
        {
            let direction = self.direction(context_id, dir)?;
            let kind = dir.kinds().1;
            direction.trailers = Some(HeaderMap::with_kind(kind, trailers.entries()));
            direction.trailers_access = Access::ReadWrite;
        }
        let action =
            self.stream_callback(context_id, dir.callback("trailers"), &[context_id, count])?;
        let local_reply =
            std::mem::take(&mut self.stream_state(context_id)?.local_reply_in_callback);
        let direction = self.direction(context_id, dir)?;
        if action == Action::Continue && !local_reply {
            forward_all(direction);
        } else {
            direction.trailers_held = true;
        }
        Ok(action)
    }

    /// Applies what the filter asked for during the last callback, after it returned.
    pub(crate) fn run_deferred(&mut self) -> Result<()> {
        loop {
            let deferred = std::mem::take(&mut self.store.data_mut().deferred);
            if deferred.is_empty() {
                return Ok(());
            }
            for action in deferred {
                match action {
                    Deferred::Continue {
                        context_id,
                        stream_type,
                    } => {
                        let dir = if stream_type == 1 {
                            Dir::Response
                        } else {
                            Dir::Request
                        };
                        if stream_type <= 1 && self.store.data().streams.contains_key(&context_id) {
                            self.resume(context_id, dir)?;
                        }
                    }
                    Deferred::Close {
                        context_id,
                        stream_type,
                    } => {
                        if stream_type <= 1 {
                            if let Ok(state) = self.stream_state(context_id) {
                                state
                                    .response_code_details
                                    .get_or_insert_with(|| "wasm_close_stream".into());
                                for direction in [&mut state.request, &mut state.response] {
                                    direction.aborted = true;
                                    direction.forwarded.reset = true;
                                }
                            }
                        }
                    }
                    Deferred::LocalResponse {
                        context_id,
                        response,
                    } => self.apply_local_response(context_id, response)?,
                }
            }
        }
    }

    /// `proxy_continue_stream`: lets held data through, showing held body and trailers to the
    /// filter first when a header callback had stopped all iteration.
    fn resume(&mut self, context_id: u32, dir: Dir) -> Result<()> {
        {
            // Envoy drops its request-map pointers on any continue.
            let state = self.stream_state(context_id)?;
            state.request.headers_access = Access::None;
            state.request.trailers_access = Access::None;
        }
        let direction = self.direction(context_id, dir)?;
        if direction.aborted {
            return Ok(());
        }
        if direction.stop_all {
            direction.stop_all = false;
            forward_headers(direction);
            let held_body = std::mem::take(&mut direction.held_body);
            let held_end = direction.held_body_end;
            let held_trailers = direction.held_trailers.take();
            let had_body = !held_body.is_empty() || held_end;
            if had_body {
                let action = self.deliver_body(
                    context_id,
                    dir,
                    &held_body,
                    held_end && held_trailers.is_none(),
                )?;
                if action != Action::Continue {
                    let direction = self.direction(context_id, dir)?;
                    direction.held_trailers = held_trailers;
                    return Ok(());
                }
            } else if self.direction(context_id, dir)?.end_seen && held_trailers.is_none() {
                self.direction(context_id, dir)?.forwarded.complete = true;
            }
            if let Some(trailers) = held_trailers {
                let count = trailers.len() as u32;
                self.deliver_trailers(context_id, dir, trailers, count)?;
            }
            return Ok(());
        }
        if direction.body_stopped || direction.trailers_held || direction.headers_held {
            let trailers_pending =
                direction.trailers.is_some() && direction.forwarded.trailers.is_none();
            if trailers_pending || direction.trailers_held {
                forward_all(direction);
            } else {
                forward_headers(direction);
                forward_body(direction);
                if direction.end_seen {
                    direction.forwarded.complete = true;
                }
            }
        }
        Ok(())
    }

    fn apply_local_response(&mut self, context_id: u32, response: LocalResponse) -> Result<()> {
        let Ok(state) = self.stream_state(context_id) else {
            return Ok(());
        };
        state.local_response = Some(response.clone());
        state.response_code_details = Some(response.details.clone());
        state.request.aborted = true;
        let headers = local_reply_headers(response.status, &response.headers, &response.body);
        if !state.response.headers_received {
            // Before the response began: the reply runs through this filter's response path.
            let body = response.body;
            let end = body.is_empty();
            self.send_headers(context_id, Dir::Response, headers, end)?;
            if !end && !self.direction(context_id, Dir::Response)?.aborted {
                self.send_body(context_id, Dir::Response, &body, true)?;
            }
        } else if self
            .direction(context_id, Dir::Response)?
            .forwarded
            .headers
            .is_none()
        {
            // Response headers arrived but were not sent on: the reply goes straight out.
            let direction = self.direction(context_id, Dir::Response)?;
            direction.forwarded = Message {
                headers: Some(headers),
                body: response.body,
                trailers: None,
                complete: true,
                reset: false,
            };
            direction.aborted = true;
        } else {
            let direction = self.direction(context_id, Dir::Response)?;
            direction.forwarded.reset = true;
            direction.aborted = true;
        }
        Ok(())
    }

    /// The end of a stream: `proxy_on_log` (with read-only maps), `proxy_on_done`,
    /// `proxy_on_delete`. Skipped once the VM has failed.
    pub(crate) fn end_stream(&mut self, context_id: u32) -> Result<()> {
        if self.failure().is_some() {
            return Ok(());
        }
        self.ensure_created(context_id)?;
        {
            let state = self.stream_state(context_id)?;
            state.in_log = true;
            state.request.headers_access = Access::ReadOnly;
            state.request.trailers_access = Access::None;
            state.response.headers_access = Access::ReadOnly;
            state.response.trailers_access = Access::ReadOnly;
        }
        self.call::<u32, ()>(context_id, "proxy_on_log", context_id)?;
        {
            let state = self.stream_state(context_id)?;
            state.in_log = false;
            for direction in [&mut state.request, &mut state.response] {
                direction.headers_access = Access::None;
                direction.trailers_access = Access::None;
            }
        }
        self.call::<u32, u32>(context_id, "proxy_on_done", context_id)?;
        self.call::<u32, ()>(context_id, "proxy_on_delete", context_id)?;
        // Envoy cancels a context's outstanding callouts when it is destroyed: their answers
        // never reach the module.
        let state = self.store.data_mut();
        state
            .http_calls
            .retain(|_, call| call.context_id != context_id);
        state
            .grpc_calls
            .retain(|_, call| call.context_id != context_id);
        Ok(())
    }
}

fn forward_headers(direction: &mut Direction) {
    if direction.forwarded.headers.is_none() {
        if let Some(headers) = &direction.headers {
            direction.forwarded.headers = Some(headers.clone());
            let no_body = direction.end_seen
                && direction.body.is_empty()
                && direction.held_body.is_empty()
                && direction.trailers.is_none();
            if no_body && !direction.stop_all {
                direction.forwarded.complete = true;
            }
        }
    }
    direction.headers_held = false;
    direction.headers_access = Access::None;
}

fn forward_body(direction: &mut Direction) {
    let held = std::mem::take(&mut direction.watermark_held);
    direction.forwarded.body.extend_from_slice(&held);
    let body = std::mem::take(&mut direction.body);
    direction.forwarded.body.extend_from_slice(&body);
    direction.buffering = false;
    direction.body_stopped = false;
}

fn forward_all(direction: &mut Direction) {
    forward_headers(direction);
    forward_body(direction);
    if let Some(trailers) = &direction.trailers {
        direction.forwarded.trailers = Some(trailers.clone());
    }
    direction.trailers_held = false;
    direction.trailers_access = Access::None;
    direction.forwarded.complete = true;
}

/// The headers of a local reply as Envoy builds them: `:status`, the filter's headers (added as
/// `addCopy` would), then `content-length` and, when the filter gave none, a plain-text
/// `content-type` for a non-empty body.
fn local_reply_headers(status: u32, extra: &HeaderMap, body: &[u8]) -> HeaderMap {
    let mut headers =
        HeaderMap::with_kind(MapKind::ResponseHeaders, &[(":status", status.to_string())]);
    for (name, value) in extra.entries() {
        headers.add(name, value);
    }
    if !body.is_empty() {
        headers.replace(b"content-length", body.len().to_string().as_bytes());
        if headers.get("content-type").is_none() {
            headers.add(b"content-type", b"text/plain");
        }
    }
    headers
}
