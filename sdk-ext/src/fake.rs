//! The fake host (feature `fake-host`): every hostcall served from memory, so a filter's
//! per-request logic runs natively, in microseconds, through the same dispatcher as on Envoy.
//!
//! ```
//! # use sdk_ext::fake::FakeModule;
//! # use sdk_ext::{Action, Cx, HttpCx, HttpFilter, RootCx, RootFilter};
//! # use sdk_ext::config::ConfigError;
//! # use std::rc::Rc;
//! struct Deny;
//! impl RootFilter for Deny {
//!     const NAME: &'static str = "deny";
//!     type Http = DenyHttp;
//!     fn configure(_: &mut RootCx<'_>, _: &[u8]) -> Result<Self, ConfigError> { Ok(Deny) }
//!     fn create_http(_: &Rc<Self>) -> DenyHttp { DenyHttp }
//! }
//! struct DenyHttp;
//! impl HttpFilter for DenyHttp {
//!     fn on_request_headers(&mut self, cx: &mut HttpCx<'_>, _: bool) -> Action {
//!         let _ = cx.send_json_error(403, "denied", "no", &[]);
//!         Action::Pause
//!     }
//! }
//! let mut module = FakeModule::standalone::<Deny>(b"{}").unwrap();
//! let stream = module.stream();
//! assert_eq!(module.request_headers(stream, &[(":path", "/")], true), Action::Pause);
//! assert_eq!(module.host().local_reply(stream).unwrap().status, 403);
//! ```

use crate::dispatch::{shared_namespace, Dispatcher, Module};
use crate::filter::{Action, Factory, RootFilter};
use crate::host::{BufferType, Host, MapType, MetricType, Status, StreamType};
use crate::wire::{decode_pairs, encode_pairs, Pairs};
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::time::Duration;

/// A local reply a filter sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    /// HTTP status.
    pub status: u32,
    /// Envoy's response code details.
    pub details: String,
    /// Body.
    pub body: Vec<u8>,
    /// Headers.
    pub headers: Pairs,
}

impl LocalReply {
    /// The first value of header `name`, as text.
    pub fn header(&self, name: &str) -> Option<String> {
        header(&self.headers, name)
    }
}

/// A callout a filter dispatched and nobody answered yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeCall {
    /// Its token.
    pub token: u32,
    /// The context that dispatched it.
    pub context_id: u32,
    /// Target cluster.
    pub cluster: String,
    /// Request headers (`:method`, `:path`, `:authority` first).
    pub headers: Pairs,
    /// Request body.
    pub body: Vec<u8>,
    /// Timeout.
    pub timeout: Duration,
}

/// A gRPC call a filter sent and nobody answered yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeGrpcCall {
    /// Its token.
    pub token: u32,
    /// The context that sent it.
    pub context_id: u32,
    /// Target cluster.
    pub cluster: String,
    /// gRPC service, e.g. `envoy.service.ratelimit.v3.RateLimitService`.
    pub service: String,
    /// Method, e.g. `ShouldRateLimit`.
    pub method: String,
    /// Initial metadata.
    pub metadata: Pairs,
    /// The serialized request message.
    pub message: Vec<u8>,
    /// Timeout.
    pub timeout: Duration,
}

impl FakeCall {
    /// The first value of header `name`, as text.
    pub fn header(&self, name: &str) -> Option<String> {
        header(&self.headers, name)
    }
}

fn header(pairs: &Pairs, name: &str) -> Option<String> {
    pairs
        .iter()
        .find(|(key, _)| key == name.as_bytes())
        .map(|(_, value)| String::from_utf8_lossy(value).into_owned())
}

#[derive(Debug, Default)]
struct StreamState {
    maps: [Pairs; 4],
    request_body: Vec<u8>,
    response_body: Vec<u8>,
    reply: Option<LocalReply>,
    continued: Vec<StreamType>,
}

#[derive(Debug)]
struct Metric {
    kind: MetricType,
    name: String,
    value: i64,
}

/// A shared queue: its name, the worker whose root registered it first (Envoy notifies that
/// one), and its items.
#[derive(Debug)]
struct Queue {
    name: String,
    owner: usize,
    items: VecDeque<Vec<u8>>,
}

/// What every worker of one fake Envoy shares: the clock, shared data and shared queues.
#[derive(Debug, Default)]
struct Common {
    now: u64,
    shared: HashMap<String, (Vec<u8>, u32)>,
    interleaved: Vec<(String, Vec<u8>)>,
    /// Queue `id` is at index `id - 1`.
    queues: Vec<Queue>,
    /// `on_queue_ready` notifications waiting, per worker.
    queue_ready: HashMap<usize, Vec<u32>>,
    workers: usize,
}

#[derive(Debug, Default)]
struct State {
    current: u32,
    streams: HashMap<u32, StreamState>,
    metrics: Vec<Metric>,
    properties: HashMap<Vec<u8>, Vec<u8>>,
    calls: Vec<FakeCall>,
    call_response: Option<(Pairs, Vec<u8>)>,
    next_token: u32,
    grpc_calls: Vec<FakeGrpcCall>,
    /// The message of the gRPC answer being delivered, and the status `proxy_get_status` reads.
    grpc_message: Vec<u8>,
    call_status: (u32, Vec<u8>),
    next_grpc_token: u32,
    tick_millis: u32,
    plugin_config: Vec<u8>,
    failing: Vec<&'static str>,
    calls_made: HashMap<&'static str, usize>,
    /// This worker's number among the workers sharing [`Common`].
    worker: usize,
}

/// The in-memory host of one worker. Observe it after driving a [`FakeModule`].
#[derive(Debug, Default)]
pub struct FakeHost {
    state: RefCell<State>,
    common: Rc<RefCell<Common>>,
}

fn map_index(map: MapType) -> Option<usize> {
    match map {
        MapType::HttpRequestHeaders => Some(0),
        MapType::HttpRequestTrailers => Some(1),
        MapType::HttpResponseHeaders => Some(2),
        MapType::HttpResponseTrailers => Some(3),
        _ => None,
    }
}

impl FakeHost {
    fn fails(&self, hostcall: &'static str) -> bool {
        self.state.borrow().failing.contains(&hostcall)
    }

    /// Makes every later call of `hostcall` fail with `InternalFailure`, until
    /// [`recover`](Self::recover). Names are the proxy-wasm ones without `proxy_`:
    /// `get_header_map_value`, `get_header_map_pairs`, `add_header_map_value`,
    /// `replace_header_map_value`, `remove_header_map_value`, `get_buffer_bytes`,
    /// `set_buffer_bytes`, `get_property`, `send_local_response`, `http_call`, `grpc_call`, `get_status`,
    /// `get_shared_data`, `set_shared_data`, `define_metric`, `increment_metric`, `record_metric`,
    /// `get_current_time_nanoseconds`, `register_shared_queue`, `resolve_shared_queue`,
    /// `enqueue_shared_queue`, `dequeue_shared_queue`.
    pub fn fail(&self, hostcall: &'static str) {
        self.state.borrow_mut().failing.push(hostcall);
    }

    /// Ends a failure started with [`fail`](Self::fail).
    pub fn recover(&self, hostcall: &'static str) {
        self.state
            .borrow_mut()
            .failing
            .retain(|name| *name != hostcall);
    }

    /// How many times the filters made `hostcall` (the names [`fail`](Self::fail) takes), for
    /// tests of what a request costs in hostcalls.
    pub fn hostcalls(&self, hostcall: &str) -> usize {
        self.state
            .borrow()
            .calls_made
            .get(hostcall)
            .copied()
            .unwrap_or(0)
    }

    /// Every hostcall counted so far, by name, sorted.
    pub fn hostcall_counts(&self) -> Vec<(&'static str, usize)> {
        let mut counts: Vec<_> = self
            .state
            .borrow()
            .calls_made
            .iter()
            .map(|(name, count)| (*name, *count))
            .collect();
        counts.sort();
        counts
    }

    fn check(&self, hostcall: &'static str) -> Result<(), Status> {
        *self
            .state
            .borrow_mut()
            .calls_made
            .entry(hostcall)
            .or_default() += 1;
        if self.fails(hostcall) {
            Err(Status::InternalFailure)
        } else {
            Ok(())
        }
    }

    /// Host time, in nanoseconds since the epoch.
    pub fn now_nanos(&self) -> u64 {
        self.common.borrow().now
    }

    /// Sets a property the filters can read, e.g. `(&["source", "address"], b"10.0.0.1:5")`.
    pub fn set_property(&self, path: &[&str], value: &[u8]) {
        self.state
            .borrow_mut()
            .properties
            .insert(crate::properties::encode_path(path), value.to_vec());
    }

    /// Stream `context_id`'s header map `map`.
    pub fn headers(&self, context_id: u32, map: MapType) -> Pairs {
        let state = self.state.borrow();
        map_index(map)
            .and_then(|index| Some(state.streams.get(&context_id)?.maps.get(index)?.clone()))
            .unwrap_or_default()
    }

    /// The first value of request header `name` of stream `context_id`, as text.
    pub fn request_header(&self, context_id: u32, name: &str) -> Option<String> {
        header(&self.headers(context_id, MapType::HttpRequestHeaders), name)
    }

    /// The first value of response header `name` of stream `context_id`, as text.
    pub fn response_header(&self, context_id: u32, name: &str) -> Option<String> {
        header(
            &self.headers(context_id, MapType::HttpResponseHeaders),
            name,
        )
    }

    /// The local reply stream `context_id` got, if any.
    pub fn local_reply(&self, context_id: u32) -> Option<LocalReply> {
        self.state.borrow().streams.get(&context_id)?.reply.clone()
    }

    /// How often the module resumed each direction of stream `context_id`.
    pub fn continued(&self, context_id: u32) -> Vec<StreamType> {
        self.state
            .borrow()
            .streams
            .get(&context_id)
            .map(|stream| stream.continued.clone())
            .unwrap_or_default()
    }

    /// Callouts waiting for an answer, oldest first.
    pub fn pending_calls(&self) -> Vec<FakeCall> {
        self.state.borrow().calls.clone()
    }

    /// gRPC calls sent and not answered yet, oldest first.
    pub fn pending_grpc_calls(&self) -> Vec<FakeGrpcCall> {
        self.state.borrow().grpc_calls.clone()
    }

    /// The value of metric `name`, if defined.
    pub fn metric(&self, name: &str) -> Option<i64> {
        let state = self.state.borrow();
        state
            .metrics
            .iter()
            .find(|metric| metric.name == name)
            .map(|metric| metric.value)
    }

    /// Names of every defined metric, in definition order.
    pub fn metric_names(&self) -> Vec<String> {
        let state = self.state.borrow();
        state.metrics.iter().map(|m| m.name.clone()).collect()
    }

    /// Shared data under its full key (see [`FakeModule::shared_key`]).
    pub fn shared_data(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.common.borrow().shared.get(key).cloned()
    }

    /// Every shared-data key, sorted.
    pub fn shared_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.common.borrow().shared.keys().cloned().collect();
        keys.sort();
        keys
    }

    /// Another worker's write of `value` to `key` (a full key) that lands just before the
    /// module's next CAS write of that key, so that write loses the race.
    pub fn interleave_write(&self, key: &str, value: &[u8]) {
        self.common
            .borrow_mut()
            .interleaved
            .push((key.to_string(), value.to_vec()));
    }

    /// Another worker's write of `value` to `key` (a full key), now.
    pub fn write_shared(&self, key: &str, value: &[u8]) {
        let mut common = self.common.borrow_mut();
        let cas = common.shared.get(key).map_or(0, |(_, cas)| *cas) + 1;
        common.shared.insert(key.to_string(), (value.to_vec(), cas));
    }

    /// The tick period the module asked for, in milliseconds (0: none).
    pub fn tick_millis(&self) -> u32 {
        self.state.borrow().tick_millis
    }

    fn with_stream<T>(&self, call: impl FnOnce(&mut StreamState) -> T) -> Result<T, Status> {
        let mut state = self.state.borrow_mut();
        let current = state.current;
        state
            .streams
            .get_mut(&current)
            .map(call)
            .ok_or(Status::BadArgument)
    }
}

impl Host for FakeHost {
    fn log(&self, _level: u32, _message: &str) {}

    fn log_level(&self) -> Result<u32, Status> {
        Ok(1)
    }

    fn now_nanos(&self) -> Result<u64, Status> {
        self.check("get_current_time_nanoseconds")?;
        Ok(self.common.borrow().now)
    }

    fn set_tick_period(&self, millis: u32) -> Result<(), Status> {
        self.state.borrow_mut().tick_millis = millis;
        Ok(())
    }

    fn header(&self, map: MapType, name: &str) -> Result<Option<Vec<u8>>, Status> {
        self.check("get_header_map_value")?;
        if map == MapType::HttpCallResponseHeaders {
            let state = self.state.borrow();
            let (headers, _) = state.call_response.as_ref().ok_or(Status::NotFound)?;
            return Ok(header(headers, name).map(String::into_bytes));
        }
        let index = map_index(map).ok_or(Status::BadArgument)?;
        self.with_stream(|stream| {
            stream.maps.get(index).and_then(|pairs| {
                pairs
                    .iter()
                    .find(|(key, _)| key == name.as_bytes())
                    .map(|(_, value)| value.clone())
            })
        })
    }

    fn header_pairs(&self, map: MapType) -> Result<Vec<u8>, Status> {
        self.check("get_header_map_pairs")?;
        if map == MapType::HttpCallResponseHeaders {
            let state = self.state.borrow();
            let (headers, _) = state.call_response.as_ref().ok_or(Status::NotFound)?;
            return Ok(encode_pairs(headers));
        }
        let index = map_index(map).ok_or(Status::BadArgument)?;
        self.with_stream(|stream| encode_pairs(stream.maps.get(index).map_or(&[][..], |m| m)))
    }

    fn replace_header(&self, map: MapType, name: &str, value: &[u8]) -> Result<(), Status> {
        self.check("replace_header_map_value")?;
        let index = map_index(map).ok_or(Status::BadArgument)?;
        self.with_stream(|stream| {
            if let Some(pairs) = stream.maps.get_mut(index) {
                match pairs.iter().position(|(key, _)| key == name.as_bytes()) {
                    Some(first) => {
                        if let Some(entry) = pairs.get_mut(first) {
                            entry.1 = value.to_vec();
                        }
                        let mut index = 0;
                        pairs.retain(|(key, _)| {
                            index += 1;
                            index - 1 == first || key != name.as_bytes()
                        });
                    }
                    None => pairs.push((name.as_bytes().to_vec(), value.to_vec())),
                }
            }
        })
    }

    fn add_header(&self, map: MapType, name: &str, value: &[u8]) -> Result<(), Status> {
        self.check("add_header_map_value")?;
        let index = map_index(map).ok_or(Status::BadArgument)?;
        self.with_stream(|stream| {
            if let Some(pairs) = stream.maps.get_mut(index) {
                pairs.push((name.as_bytes().to_vec(), value.to_vec()));
            }
        })
    }

    fn remove_header(&self, map: MapType, name: &str) -> Result<(), Status> {
        self.check("remove_header_map_value")?;
        let index = map_index(map).ok_or(Status::BadArgument)?;
        self.with_stream(|stream| {
            if let Some(pairs) = stream.maps.get_mut(index) {
                pairs.retain(|(key, _)| key != name.as_bytes());
            }
        })
    }

    fn buffer(&self, buffer: BufferType, start: usize, max_size: usize) -> Result<Vec<u8>, Status> {
        self.check("get_buffer_bytes")?;
        let slice = |bytes: &[u8]| {
            bytes
                .get(start.min(bytes.len())..start.saturating_add(max_size).min(bytes.len()))
                .unwrap_or_default()
                .to_vec()
        };
        match buffer {
            BufferType::PluginConfiguration => Ok(slice(&self.state.borrow().plugin_config)),
            BufferType::HttpCallResponseBody => {
                let state = self.state.borrow();
                let (_, body) = state.call_response.as_ref().ok_or(Status::NotFound)?;
                Ok(slice(body))
            }
            BufferType::GrpcReceiveBuffer => Ok(slice(&self.state.borrow().grpc_message)),
            BufferType::HttpRequestBody => self.with_stream(|stream| slice(&stream.request_body)),
            BufferType::HttpResponseBody => self.with_stream(|stream| slice(&stream.response_body)),
            _ => Err(Status::NotFound),
        }
    }

    fn set_buffer(
        &self,
        buffer: BufferType,
        start: usize,
        size: usize,
        data: &[u8],
    ) -> Result<(), Status> {
        self.check("set_buffer_bytes")?;
        self.with_stream(|stream| {
            let body = match buffer {
                BufferType::HttpRequestBody => &mut stream.request_body,
                BufferType::HttpResponseBody => &mut stream.response_body,
                _ => return Err(Status::BadArgument),
            };
            // Envoy's Buffer::copyFrom: replace a prefix, or append; nothing in between.
            if start == 0 {
                body.splice(..size.min(body.len()), data.iter().copied());
            } else if start >= body.len() {
                body.extend_from_slice(data);
            } else {
                return Err(Status::BadArgument);
            }
            Ok(())
        })?
    }

    fn property(&self, path: &[u8]) -> Result<Option<Vec<u8>>, Status> {
        self.check("get_property")?;
        Ok(self.state.borrow().properties.get(path).cloned())
    }

    fn send_local_response(
        &self,
        status: u32,
        details: &str,
        body: &[u8],
        headers: &[u8],
    ) -> Result<(), Status> {
        self.check("send_local_response")?;
        let headers = decode_pairs(headers).ok_or(Status::BadArgument)?;
        self.with_stream(|stream| {
            stream.reply = Some(LocalReply {
                status,
                details: details.to_string(),
                body: body.to_vec(),
                headers,
            });
        })
    }

    fn dispatch_http_call(
        &self,
        cluster: &str,
        headers: &[u8],
        body: &[u8],
        timeout_millis: u32,
    ) -> Result<u32, Status> {
        self.check("http_call")?;
        let headers = decode_pairs(headers).ok_or(Status::BadArgument)?;
        let mut state = self.state.borrow_mut();
        state.next_token += 1;
        let token = state.next_token;
        let context_id = state.current;
        state.calls.push(FakeCall {
            token,
            context_id,
            cluster: cluster.to_string(),
            headers,
            body: body.to_vec(),
            timeout: Duration::from_millis(u64::from(timeout_millis)),
        });
        Ok(token)
    }

    fn grpc_call(
        &self,
        cluster: &str,
        service: &str,
        method: &str,
        metadata: &[u8],
        message: &[u8],
        timeout_millis: u32,
    ) -> Result<u32, Status> {
        self.check("grpc_call")?;
        let metadata = decode_pairs(metadata).ok_or(Status::BadArgument)?;
        let mut state = self.state.borrow_mut();
        // Envoy's unary call tokens are odd: 1, 3, 5, ...
        state.next_grpc_token += 2;
        let token = state.next_grpc_token - 1;
        let context_id = state.current;
        state.grpc_calls.push(FakeGrpcCall {
            token,
            context_id,
            cluster: cluster.to_string(),
            service: service.to_string(),
            method: method.to_string(),
            metadata,
            message: message.to_vec(),
            timeout: Duration::from_millis(u64::from(timeout_millis)),
        });
        Ok(token)
    }

    fn call_status(&self) -> Result<(u32, Vec<u8>), Status> {
        self.check("get_status")?;
        Ok(self.state.borrow().call_status.clone())
    }

    fn continue_stream(&self, stream: StreamType) -> Result<(), Status> {
        self.with_stream(|state| state.continued.push(stream))
    }

    fn set_effective_context(&self, context_id: u32) -> Result<(), Status> {
        let mut state = self.state.borrow_mut();
        if !state.streams.contains_key(&context_id) {
            return Err(Status::BadArgument);
        }
        state.current = context_id;
        Ok(())
    }

    fn shared_data(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, Status> {
        self.check("get_shared_data")?;
        Ok(self.common.borrow().shared.get(key).cloned())
    }

    fn set_shared_data(&self, key: &str, value: &[u8], cas: u32) -> Result<(), Status> {
        self.check("set_shared_data")?;
        let slipped = {
            let mut common = self.common.borrow_mut();
            let at = common.interleaved.iter().position(|(k, _)| k == key);
            at.map(|at| common.interleaved.remove(at))
        };
        if let Some((key, value)) = slipped {
            self.write_shared(&key, &value);
        }
        let mut common = self.common.borrow_mut();
        let current = common.shared.get(key).map(|(_, cas)| *cas);
        if let Some(current) = current {
            if cas != 0 && cas != current {
                return Err(Status::CasMismatch);
            }
        }
        let next = current.unwrap_or(0) + 1;
        common
            .shared
            .insert(key.to_string(), (value.to_vec(), next));
        Ok(())
    }

    fn define_metric(&self, kind: MetricType, name: &str) -> Result<u32, Status> {
        self.check("define_metric")?;
        let mut state = self.state.borrow_mut();
        if let Some(id) = state.metrics.iter().position(|m| m.name == name) {
            return u32::try_from(id).map_err(|_| Status::InternalFailure);
        }
        state.metrics.push(Metric {
            kind,
            name: name.to_string(),
            value: 0,
        });
        u32::try_from(state.metrics.len() - 1).map_err(|_| Status::InternalFailure)
    }

    fn increment_metric(&self, id: u32, delta: i64) -> Result<(), Status> {
        self.check("increment_metric")?;
        let mut state = self.state.borrow_mut();
        let metric = state.metrics.get_mut(id as usize).ok_or(Status::NotFound)?;
        if metric.kind == MetricType::Histogram {
            return Err(Status::BadArgument);
        }
        metric.value = metric.value.saturating_add(delta);
        Ok(())
    }

    fn record_metric(&self, id: u32, value: u64) -> Result<(), Status> {
        self.check("record_metric")?;
        let mut state = self.state.borrow_mut();
        let metric = state.metrics.get_mut(id as usize).ok_or(Status::NotFound)?;
        metric.value = i64::try_from(value).unwrap_or(i64::MAX);
        Ok(())
    }

    fn register_shared_queue(&self, name: &str) -> Result<u32, Status> {
        self.check("register_shared_queue")?;
        let worker = self.state.borrow().worker;
        let mut common = self.common.borrow_mut();
        if let Some(index) = common.queues.iter().position(|queue| queue.name == name) {
            return Ok(index as u32 + 1);
        }
        common.queues.push(Queue {
            name: name.to_string(),
            owner: worker,
            items: VecDeque::new(),
        });
        Ok(common.queues.len() as u32)
    }

    fn resolve_shared_queue(&self, vm_id: &str, name: &str) -> Result<Option<u32>, Status> {
        self.check("resolve_shared_queue")?;
        // The fake Envoy runs one VM group, without a vm_id.
        if !vm_id.is_empty() {
            return Ok(None);
        }
        let common = self.common.borrow();
        Ok(common
            .queues
            .iter()
            .position(|queue| queue.name == name)
            .map(|index| index as u32 + 1))
    }

    fn enqueue_shared_queue(&self, queue_id: u32, value: &[u8]) -> Result<(), Status> {
        self.check("enqueue_shared_queue")?;
        let mut common = self.common.borrow_mut();
        let index = (queue_id as usize).checked_sub(1).ok_or(Status::NotFound)?;
        let queue = common.queues.get_mut(index).ok_or(Status::NotFound)?;
        queue.items.push_back(value.to_vec());
        let owner = queue.owner;
        common.queue_ready.entry(owner).or_default().push(queue_id);
        Ok(())
    }

    fn dequeue_shared_queue(&self, queue_id: u32) -> Result<Option<Vec<u8>>, Status> {
        self.check("dequeue_shared_queue")?;
        let mut common = self.common.borrow_mut();
        let index = (queue_id as usize).checked_sub(1).ok_or(Status::NotFound)?;
        let queue = common.queues.get_mut(index).ok_or(Status::NotFound)?;
        Ok(queue.items.pop_front())
    }

    fn metric(&self, id: u32) -> Result<u64, Status> {
        let state = self.state.borrow();
        let metric = state.metrics.get(id as usize).ok_or(Status::NotFound)?;
        Ok(u64::try_from(metric.value).unwrap_or(0))
    }
}

/// A module (one filter or a chain) on a [`FakeHost`], driven callback by callback as Envoy
/// drives it.
pub struct FakeModule {
    host: Rc<FakeHost>,
    dispatcher: Dispatcher,
    module: Module,
    config: Vec<u8>,
    root_context_id: u32,
    next_context_id: u32,
    configured: bool,
}

/// Epoch the fake clock starts at: 2026-01-01T00:00:00Z.
const START_NANOS: u64 = 1_767_225_600 * 1_000_000_000;

impl FakeModule {
    /// A module of `module` with the plugin configuration `config`, configured. Check
    /// [`configured`](Self::configured).
    pub fn new(module: Module, config: &[u8]) -> FakeModule {
        let common = Rc::new(RefCell::new(Common {
            now: START_NANOS,
            ..Common::default()
        }));
        FakeModule::on(common, module, config)
    }

    fn on(common: Rc<RefCell<Common>>, module: Module, config: &[u8]) -> FakeModule {
        let host = Rc::new(FakeHost {
            common,
            ..FakeHost::default()
        });
        {
            let mut state = host.state.borrow_mut();
            state.plugin_config = config.to_vec();
            state.current = 1;
            let mut common = host.common.borrow_mut();
            state.worker = common.workers;
            common.workers += 1;
        }
        let mut dispatcher = Dispatcher::new(host.clone(), module);
        dispatcher.on_context_create(1, 0);
        let configured = dispatcher.on_configure(1, config.len());
        FakeModule {
            host,
            dispatcher,
            module,
            config: config.to_vec(),
            root_context_id: 1,
            next_context_id: 2,
            configured,
        }
    }

    /// Another worker (VM) of the same Envoy, configured the same way: it has its own filters
    /// and streams, and shares the clock and shared data with this one.
    pub fn worker(&self) -> FakeModule {
        FakeModule::on(Rc::clone(&self.host.common), self.module, &self.config)
    }

    /// One filter `F` configured with `config`; the configuration error if it refuses it.
    pub fn standalone<F: RootFilter>(
        config: &[u8],
    ) -> Result<FakeModule, crate::config::ConfigError> {
        let module = FakeModule::new(Module::Standalone(Factory::of::<F>()), config);
        match module.config_error() {
            Some(error) => Err(error.clone()),
            None => Ok(module),
        }
    }

    /// Why `on_configure` refused the configuration (the error it logged), if it did.
    pub fn config_error(&self) -> Option<&crate::config::ConfigError> {
        self.dispatcher.config_error()
    }

    /// Whether `on_configure` accepted the configuration.
    pub fn configured(&self) -> bool {
        self.configured
    }

    /// The host, to observe or to set up.
    pub fn host(&self) -> &FakeHost {
        &self.host
    }

    /// The full shared-data key of `key` for the filter at `position`.
    pub fn shared_key(&self, position: usize, key: &str) -> String {
        let root_id = self
            .host
            .property(b"plugin_root_id")
            .ok()
            .flatten()
            .map(|id| String::from_utf8_lossy(&id).into_owned())
            .unwrap_or_default();
        format!("{}{key}", shared_namespace(&root_id, position))
    }

    /// Starts a stream; returns its context id.
    pub fn stream(&mut self) -> u32 {
        let context_id = self.next_context_id;
        self.next_context_id += 1;
        self.host
            .state
            .borrow_mut()
            .streams
            .insert(context_id, StreamState::default());
        self.dispatcher
            .on_context_create(context_id, self.root_context_id);
        context_id
    }

    fn enter(&self, context_id: u32) {
        self.host.state.borrow_mut().current = context_id;
    }

    fn set_map<N: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        context_id: u32,
        map: usize,
        pairs: &[(N, V)],
    ) {
        if let Some(stream) = self.host.state.borrow_mut().streams.get_mut(&context_id) {
            if let Some(slot) = stream.maps.get_mut(map) {
                *slot = pairs
                    .iter()
                    .map(|(name, value)| (name.as_ref().to_vec(), value.as_ref().to_vec()))
                    .collect();
            }
        }
    }

    /// Request headers arrive.
    pub fn request_headers<N: AsRef<[u8]>, V: AsRef<[u8]>>(
        &mut self,
        context_id: u32,
        headers: &[(N, V)],
        end: bool,
    ) -> Action {
        self.set_map(context_id, 0, headers);
        self.enter(context_id);
        self.dispatcher.on_request_headers(context_id, end)
    }

    /// A request body chunk arrives (appended to the buffered body).
    pub fn request_body(&mut self, context_id: u32, chunk: &[u8], end: bool) -> Action {
        let size = self.append_body(context_id, chunk, StreamType::Request);
        self.enter(context_id);
        self.dispatcher.on_request_body(context_id, size, end)
    }

    /// Request trailers arrive.
    pub fn request_trailers<N: AsRef<[u8]>, V: AsRef<[u8]>>(
        &mut self,
        context_id: u32,
        trailers: &[(N, V)],
    ) -> Action {
        self.set_map(context_id, 1, trailers);
        self.enter(context_id);
        self.dispatcher.on_request_trailers(context_id)
    }

    /// Response headers arrive.
    pub fn response_headers<N: AsRef<[u8]>, V: AsRef<[u8]>>(
        &mut self,
        context_id: u32,
        headers: &[(N, V)],
        end: bool,
    ) -> Action {
        self.set_map(context_id, 2, headers);
        self.enter(context_id);
        self.dispatcher.on_response_headers(context_id, end)
    }

    /// A response body chunk arrives.
    pub fn response_body(&mut self, context_id: u32, chunk: &[u8], end: bool) -> Action {
        let size = self.append_body(context_id, chunk, StreamType::Response);
        self.enter(context_id);
        self.dispatcher.on_response_body(context_id, size, end)
    }

    /// Response trailers arrive.
    pub fn response_trailers<N: AsRef<[u8]>, V: AsRef<[u8]>>(
        &mut self,
        context_id: u32,
        trailers: &[(N, V)],
    ) -> Action {
        self.set_map(context_id, 3, trailers);
        self.enter(context_id);
        self.dispatcher.on_response_trailers(context_id)
    }

    fn append_body(&self, context_id: u32, chunk: &[u8], direction: StreamType) -> usize {
        let mut state = self.host.state.borrow_mut();
        let Some(stream) = state.streams.get_mut(&context_id) else {
            return 0;
        };
        let body = match direction {
            StreamType::Request => &mut stream.request_body,
            StreamType::Response => &mut stream.response_body,
        };
        body.extend_from_slice(chunk);
        body.len()
    }

    /// The stream ends: `on_log` when sdk-ext's `on-log` feature is on (only then does a module
    /// export `proxy_on_log`), `on_done`, `on_delete`.
    pub fn end(&mut self, context_id: u32) {
        self.finish(context_id, cfg!(feature = "on-log"));
    }

    /// The stream ends as in a module built with the `on-log` feature: `on_log`, `on_done`,
    /// `on_delete`.
    pub fn end_with_log(&mut self, context_id: u32) {
        self.finish(context_id, true);
    }

    fn finish(&mut self, context_id: u32, log: bool) {
        self.enter(context_id);
        if log {
            self.dispatcher.on_log(context_id);
        }
        self.dispatcher.on_done(context_id);
        self.dispatcher.on_delete(context_id);
        self.host.state.borrow_mut().streams.remove(&context_id);
    }

    /// The client goes away mid-request: `on_done`, `on_delete` (no log).
    pub fn reset(&mut self, context_id: u32) {
        self.dispatcher.on_done(context_id);
        self.dispatcher.on_delete(context_id);
        self.host.state.borrow_mut().streams.remove(&context_id);
    }

    /// Delivers this worker's pending `proxy_on_queue_ready` notifications (one per item
    /// enqueued to a queue this worker registered first); returns how many.
    pub fn deliver_queue_ready(&mut self) -> usize {
        let worker = self.host.state.borrow().worker;
        let pending = self
            .host
            .common
            .borrow_mut()
            .queue_ready
            .remove(&worker)
            .unwrap_or_default();
        for &queue_id in &pending {
            self.enter(self.root_context_id);
            self.dispatcher
                .on_queue_ready(self.root_context_id, queue_id);
        }
        pending.len()
    }

    /// Moves the clock.
    pub fn advance(&mut self, by: Duration) {
        let mut common = self.host.common.borrow_mut();
        common.now = common
            .now
            .saturating_add(u64::try_from(by.as_nanos()).unwrap_or(u64::MAX));
    }

    /// The host's timer fires once (`proxy_on_tick`).
    pub fn tick(&mut self) {
        self.enter(self.root_context_id);
        self.dispatcher.on_tick(self.root_context_id);
    }

    /// Advances the clock by the tick period the module asked for, then ticks; `count` times.
    pub fn run_ticks(&mut self, count: usize) {
        for _ in 0..count {
            let period = u64::from(self.host.tick_millis().max(1));
            self.advance(Duration::from_millis(period));
            self.tick();
        }
    }

    /// Answers callout `token` with `status`, `headers` and `body`.
    pub fn respond(&mut self, token: u32, status: u16, headers: &[(&str, &str)], body: &[u8]) {
        let mut pairs: Pairs = vec![(b":status".to_vec(), status.to_string().into_bytes())];
        pairs.extend(
            headers
                .iter()
                .map(|(name, value)| (name.as_bytes().to_vec(), value.as_bytes().to_vec())),
        );
        let count = pairs.len();
        self.deliver(token, Some((pairs, body.to_vec())), count, body.len());
    }

    /// Callout `token` fails (reset, timeout): an answer with no headers.
    pub fn fail_call(&mut self, token: u32) {
        self.deliver(token, None, 0, 0);
    }

    /// Answers gRPC call `token` with the serialized `message` (`proxy_on_grpc_receive`).
    pub fn respond_grpc(&mut self, token: u32, message: &[u8]) {
        self.deliver_grpc(token, message, (0, Vec::new()));
        self.dispatcher.on_grpc_receive(token, message.len());
        self.end_grpc_delivery();
    }

    /// Closes gRPC call `token` with `status` and `message` (`proxy_on_grpc_close`), as Envoy
    /// does for a timeout (4), an unreachable cluster (14) or the service's error.
    pub fn close_grpc(&mut self, token: u32, status: u32, message: &str) {
        self.deliver_grpc(token, b"", (status, message.as_bytes().to_vec()));
        self.dispatcher.on_grpc_close(token, status);
        self.end_grpc_delivery();
    }

    fn deliver_grpc(&mut self, token: u32, message: &[u8], status: (u32, Vec<u8>)) {
        let mut state = self.host.state.borrow_mut();
        state.grpc_calls.retain(|call| call.token != token);
        state.grpc_message = message.to_vec();
        state.call_status = status;
        state.current = self.root_context_id;
    }

    fn end_grpc_delivery(&mut self) {
        let mut state = self.host.state.borrow_mut();
        state.grpc_message.clear();
        state.call_status = (0, Vec::new());
    }

    fn deliver(
        &mut self,
        token: u32,
        response: Option<(Pairs, Vec<u8>)>,
        headers: usize,
        body: usize,
    ) {
        {
            let mut state = self.host.state.borrow_mut();
            state.calls.retain(|call| call.token != token);
            state.call_response = response;
            state.current = self.root_context_id;
        }
        self.dispatcher
            .on_http_call_response(token, headers, body, 0);
        self.host.state.borrow_mut().call_response = None;
    }
}
