//! Host state: plain structs that the hostcalls mutate and the tests inspect.

use crate::host::Shared;
use crate::hostcalls::Status;
use crate::limits::{Cap, Limits};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use wasmtime::StoreLimits;

/// A proxy-wasm log level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// `0`
    Trace,
    /// `1`
    Debug,
    /// `2`
    Info,
    /// `3`
    Warn,
    /// `4`
    Error,
    /// `5`
    Critical,
}

impl LogLevel {
    /// The level for an ABI number, if it is one.
    pub fn from_abi(level: u32) -> Option<LogLevel> {
        Some(match level {
            0 => LogLevel::Trace,
            1 => LogLevel::Debug,
            2 => LogLevel::Info,
            3 => LogLevel::Warn,
            4 => LogLevel::Error,
            5 => LogLevel::Critical,
            _ => return None,
        })
    }

    /// The ABI number of this level.
    pub fn to_abi(self) -> u32 {
        self as u32
    }
}

/// One log line: a `proxy_log` call, or one write to stdout (info) or stderr (error), as Envoy
/// logs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Its level.
    pub level: LogLevel,
    /// Its message, lossily decoded as UTF-8.
    pub message: String,
}

/// Logs shared between the store and the WASI output pipes.
pub(crate) type SharedLogs = Arc<Mutex<Logs>>;

/// A plugin's log lines, capped in message bytes.
#[derive(Debug, Default)]
pub(crate) struct Logs {
    pub entries: Vec<LogEntry>,
    bytes: usize,
    cap: usize,
    capped: bool,
}

impl Logs {
    pub fn new(limits: &Limits) -> Logs {
        Logs {
            cap: limits.log_bytes,
            ..Logs::default()
        }
    }

    /// Appends a line if it fits the cap; the first line that does not is replaced by one line
    /// that names the cap. Returns whether the line was kept.
    pub fn push(&mut self, entry: LogEntry) -> bool {
        let bytes = self.bytes.saturating_add(entry.message.len());
        if bytes > self.cap {
            self.refuse();
            return false;
        }
        self.bytes = bytes;
        self.entries.push(entry);
        true
    }

    /// The cap, in message bytes.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Notes that a line was refused: the first time, with a line that names the cap.
    pub fn refuse(&mut self) {
        if !self.capped {
            self.capped = true;
            self.notice(Cap::LogBytes.message_for(self.cap));
        }
    }

    /// Appends a host error line outside the cap (the host writes only a few).
    pub fn notice(&mut self, message: String) {
        self.entries.push(LogEntry {
            level: LogLevel::Error,
            message,
        });
    }
}

/// Which header map a [`HeaderMap`] is. Envoy keeps some well-known headers "inline": adding a
/// second value to one of those joins it to the first with a comma instead of adding an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MapKind {
    /// Request headers: `host` is `:authority`, and the request inline headers apply.
    RequestHeaders,
    /// Response headers, with the response inline headers.
    ResponseHeaders,
    /// Response trailers (`grpc-status`, `grpc-message` are inline).
    ResponseTrailers,
    /// Any other map: no inline headers.
    #[default]
    Plain,
}

/// Envoy 1.40's inline request headers (as its start-up banner lists them).
const REQUEST_INLINE: &[&str] = &[
    ":authority",
    ":method",
    ":path",
    ":protocol",
    ":scheme",
    "accept",
    "accept-encoding",
    "access-control-request-headers",
    "access-control-request-method",
    "access-control-request-private-network",
    "authentication",
    "authorization",
    "cache-control",
    "cdn-loop",
    "connection",
    "content-encoding",
    "content-length",
    "content-type",
    "expect",
    "grpc-accept-encoding",
    "grpc-timeout",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "keep-alive",
    "origin",
    "pragma",
    "proxy-connection",
    "proxy-status",
    "referer",
    "te",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "via",
    "x-client-trace-id",
    "x-envoy-attempt-count",
    "x-envoy-decorator-operation",
    "x-envoy-downstream-service-cluster",
    "x-envoy-downstream-service-node",
    "x-envoy-expected-rq-timeout-ms",
    "x-envoy-external-address",
    "x-envoy-force-trace",
    "x-envoy-hedge-on-per-try-timeout",
    "x-envoy-internal",
    "x-envoy-ip-tags",
    "x-envoy-is-timeout-retry",
    "x-envoy-max-retries",
    "x-envoy-original-host",
    "x-envoy-original-path",
    "x-envoy-original-url",
    "x-envoy-retriable-header-names",
    "x-envoy-retriable-status-codes",
    "x-envoy-retry-grpc-on",
    "x-envoy-retry-on",
    "x-envoy-upstream-alt-stat-name",
    "x-envoy-upstream-rq-per-try-timeout-ms",
    "x-envoy-upstream-rq-timeout-alt-response",
    "x-envoy-upstream-rq-timeout-ms",
    "x-envoy-upstream-stream-duration-ms",
    "x-forwarded-client-cert",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-proto",
    "x-request-id",
];

/// Envoy 1.40's inline response headers.
const RESPONSE_INLINE: &[&str] = &[
    ":status",
    "access-control-allow-credentials",
    "access-control-allow-headers",
    "access-control-allow-methods",
    "access-control-allow-origin",
    "access-control-allow-private-network",
    "access-control-expose-headers",
    "access-control-max-age",
    "age",
    "cache-control",
    "connection",
    "content-encoding",
    "content-length",
    "content-type",
    "date",
    "etag",
    "expires",
    "grpc-message",
    "grpc-status",
    "keep-alive",
    "last-modified",
    "location",
    "proxy-connection",
    "proxy-status",
    "server",
    "transfer-encoding",
    "upgrade",
    "vary",
    "via",
    "x-envoy-attempt-count",
    "x-envoy-decorator-operation",
    "x-envoy-degraded",
    "x-envoy-immediate-health-check-fail",
    "x-envoy-ratelimited",
    "x-envoy-upstream-canary",
    "x-envoy-upstream-healthchecked-cluster",
    "x-envoy-upstream-service-time",
    "x-request-id",
];

/// Envoy 1.40's inline response trailers.
const RESPONSE_TRAILER_INLINE: &[&str] = &["grpc-message", "grpc-status"];

impl MapKind {
    fn is_inline(self, name: &[u8]) -> bool {
        let list = match self {
            MapKind::RequestHeaders => REQUEST_INLINE,
            MapKind::ResponseHeaders => RESPONSE_INLINE,
            MapKind::ResponseTrailers => RESPONSE_TRAILER_INLINE,
            MapKind::Plain => return false,
        };
        list.iter().any(|inline| inline.as_bytes() == name)
    }

    /// `host` is stored as `:authority` in request headers.
    fn canonical(self, name: &[u8]) -> Vec<u8> {
        let lower = name.to_ascii_lowercase();
        if self == MapKind::RequestHeaders && lower == b"host" {
            b":authority".to_vec()
        } else {
            lower
        }
    }
}

/// A header or trailer map as Envoy keeps it: ordered entries, lower-case names, pseudo-headers
/// first, duplicates allowed except for inline headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderMap {
    kind: MapKind,
    entries: Vec<(Vec<u8>, Vec<u8>)>,
}

impl HeaderMap {
    /// A plain map (no inline headers) from `(name, value)` pairs.
    pub fn from_pairs<N: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(N, V)]) -> HeaderMap {
        Self::with_kind(MapKind::Plain, pairs)
    }

    /// A map of `kind` from `(name, value)` pairs, added one by one as Envoy's codec would.
    pub fn with_kind<N: AsRef<[u8]>, V: AsRef<[u8]>>(kind: MapKind, pairs: &[(N, V)]) -> HeaderMap {
        let mut map = HeaderMap {
            kind,
            entries: Vec::with_capacity(pairs.len()),
        };
        for (name, value) in pairs {
            map.add(name.as_ref(), value.as_ref());
        }
        map
    }

    /// Every entry in order.
    pub fn entries(&self) -> &[(Vec<u8>, Vec<u8>)] {
        &self.entries
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Sum of name and value lengths (Envoy's `byteSize`, what `proxy_get_header_map_size` returns).
    pub fn byte_size(&self) -> usize {
        self.entries
            .iter()
            .map(|(name, value)| name.len() + value.len())
            .sum()
    }

    /// The first value of `name` (case-insensitive).
    pub fn get(&self, name: impl AsRef<[u8]>) -> Option<&[u8]> {
        let name = self.kind.canonical(name.as_ref());
        self.entries
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.as_slice())
    }

    /// The first value of `name` as a string, lossily decoded.
    pub fn get_str(&self, name: impl AsRef<[u8]>) -> Option<String> {
        self.get(name)
            .map(|value| String::from_utf8_lossy(value).into_owned())
    }

    /// Every value of `name`, in order.
    pub fn get_all(&self, name: impl AsRef<[u8]>) -> Vec<&[u8]> {
        let name = self.kind.canonical(name.as_ref());
        self.entries
            .iter()
            .filter(|(key, _)| *key == name)
            .map(|(_, value)| value.as_slice())
            .collect()
    }

    /// Adds a value as Envoy's `addCopy` does: an inline header that exists gets the value joined
    /// with `,`; a pseudo-header goes after the existing pseudo-headers; others are appended.
    pub fn add(&mut self, name: &[u8], value: &[u8]) {
        let name = self.kind.canonical(name);
        if self.kind.is_inline(&name) {
            if let Some((_, existing)) = self.entries.iter_mut().find(|(key, _)| *key == name) {
                existing.push(b',');
                existing.extend_from_slice(value);
                return;
            }
        }
        self.insert(name, value.to_vec());
    }

    fn insert(&mut self, name: Vec<u8>, value: Vec<u8>) {
        if name.starts_with(b":") {
            let at = self
                .entries
                .iter()
                .position(|(key, _)| !key.starts_with(b":"))
                .unwrap_or(self.entries.len());
            self.entries.insert(at, (name, value));
        } else {
            self.entries.push((name, value));
        }
    }

    /// Replaces every value of `name` with one entry at the end, as Envoy's `setCopy` does.
    pub fn replace(&mut self, name: &[u8], value: &[u8]) {
        let name = self.kind.canonical(name);
        self.entries.retain(|(key, _)| *key != name);
        self.insert(name, value.to_vec());
    }

    /// Removes every entry of `name`.
    pub fn remove(&mut self, name: &[u8]) {
        let name = self.kind.canonical(name);
        self.entries.retain(|(key, _)| *key != name);
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Every value of each distinct name joined with `,` (how `request.headers` properties read).
    pub fn joined(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut joined: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for (name, value) in &self.entries {
            match joined.iter_mut().find(|(key, _)| key == name) {
                Some((_, existing)) => {
                    existing.push(b',');
                    existing.extend_from_slice(value);
                }
                None => joined.push((name.clone(), value.clone())),
            }
        }
        joined
    }
}

/// A local reply sent with `proxy_send_local_response`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalResponse {
    /// HTTP status.
    pub status: u32,
    /// Envoy's response code details (whitespace replaced by `_`, as Envoy does).
    pub details: String,
    /// Reply body.
    pub body: Vec<u8>,
    /// Headers the filter added to the reply.
    pub headers: HeaderMap,
    /// gRPC status, when one in 0..=16 was given.
    pub grpc_status: Option<u32>,
}

/// Whether a filter may use a header map in the current callback. Envoy hands a filter a map only
/// during its own callback (and while that callback keeps the stream stopped), and read-only
/// copies during `on_log`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(crate) enum Access {
    #[default]
    None,
    ReadOnly,
    ReadWrite,
}

/// An effect Envoy applies only after the running callback returns.
#[derive(Debug, Clone)]
pub(crate) enum Deferred {
    Continue {
        context_id: u32,
        stream_type: u32,
    },
    Close {
        context_id: u32,
        stream_type: u32,
    },
    LocalResponse {
        context_id: u32,
        response: LocalResponse,
    },
}

/// What `proxy_get_status` reports (the root context's last callout status).
#[derive(Debug, Clone, Default)]
pub(crate) struct CallStatus {
    pub code: u32,
    pub message: Vec<u8>,
}

/// A response made visible to `proxy_on_http_call_response` or a gRPC callback.
#[derive(Debug, Clone, Default)]
pub(crate) struct CalloutView {
    pub headers: Option<HeaderMap>,
    pub trailers: Option<HeaderMap>,
    pub body: Option<Vec<u8>>,
}

/// The state of one VM's store.
pub(crate) struct HostState {
    pub wasi: crate::wasi::Wasi,
    pub limits: StoreLimits,
    pub shared: Arc<Shared>,
    /// This VM's key in the shared inbox table (for queue notifications).
    pub vm_key: u64,
    pub vm_id: String,
    pub plugin_name: String,
    pub root_id: String,
    pub root_context_id: u32,
    pub logs: SharedLogs,
    pub log_level: LogLevel,
    pub stdout: crate::wasi::LogPipe,
    pub stderr: crate::wasi::LogPipe,
    pub vm_configuration: Vec<u8>,
    pub plugin_configuration: Vec<u8>,
    /// Envoy exposes the plugin configuration only while it starts and configures the root.
    pub plugin_configuration_visible: bool,
    /// `_initialize`/`_start` is running: only logging is allowed.
    pub restricted: bool,
    /// The context the running callback was called for.
    pub current_context: u32,
    /// Set by `proxy_set_effective_context`, reset for every callback.
    pub effective_context: Option<u32>,
    pub streams: HashMap<u32, crate::stream::StreamState>,
    /// Properties visible to every context, keyed by NUL-joined path.
    pub properties: BTreeMap<Vec<u8>, Vec<u8>>,
    pub tick_period_ms: u32,
    /// Host monotonic time of the next `proxy_on_tick`.
    pub next_tick: Option<std::time::Duration>,
    pub next_http_token: u32,
    pub next_grpc_call_token: u32,
    pub next_grpc_stream_token: u32,
    pub http_calls: BTreeMap<u32, crate::callouts::HttpCall>,
    pub grpc_calls: BTreeMap<u32, crate::callouts::GrpcCall>,
    pub callout_view: CalloutView,
    pub grpc_receive_buffer: Vec<u8>,
    pub call_status: CallStatus,
    /// Metric ids of this VM: id → (type, name).
    pub metric_ids: HashMap<u32, (crate::host::MetricType, String)>,
    /// Last metric id handed out, per type.
    pub next_metric_id: [u32; 3],
    pub deferred: Vec<Deferred>,
    /// Injected hostcall failures, in the order the test added them.
    pub faults: Vec<crate::hostcalls::Fault>,
    /// The hostcalls made, oldest first, up to `Limits::trace_entries`.
    pub trace: std::collections::VecDeque<crate::hostcalls::HostcallRecord>,
    /// Caps already reported in the log, one bit per [`Cap`].
    pub caps_reported: u32,
    /// The plugin is shutting down and its root's `proxy_on_done` returned false.
    pub shutdown_pending: bool,
    /// The root context asked to finish with `proxy_done`.
    pub done_called: bool,
}

impl HostState {
    /// The context hostcalls act for: the effective context if one is set, else the current one.
    pub fn context(&self) -> u32 {
        self.effective_context.unwrap_or(self.current_context)
    }

    /// The stream whose context hostcalls act for, if it is a stream.
    pub fn active_stream(&mut self) -> Option<&mut crate::stream::StreamState> {
        let context = self.context();
        self.streams.get_mut(&context)
    }

    /// Appends a log line if it passes the host log level; `Err` when the log cap drops it.
    pub fn log(&self, level: LogLevel, message: String) -> Result<(), Status> {
        if level < self.log_level {
            return Ok(());
        }
        let kept = crate::host::lock(&self.logs).push(LogEntry { level, message });
        kept.then_some(()).ok_or(Status::InternalFailure)
    }

    /// The host's limits.
    pub fn limits(&self) -> &Limits {
        &self.shared.limits
    }

    /// Reports a cap the module hit, once per cap per plugin, and returns the status the
    /// hostcall gives.
    pub fn cap_hit(&mut self, cap: Cap) -> Status {
        let bit = 1 << cap as u32;
        if self.caps_reported & bit == 0 {
            self.caps_reported |= bit;
            let message = cap.message(self.limits());
            crate::host::lock(&self.logs).notice(message);
        }
        Status::InternalFailure
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_map_follows_envoy_ordering_and_case() {
        let mut map = HeaderMap::from_pairs(&[("A", "1"), (":path", "/"), ("b", "2"), ("a", "3")]);
        assert_eq!(map.entries()[0].0, b":path");
        assert_eq!(map.get("a"), Some(&b"1"[..]));
        assert_eq!(map.get_all("A"), vec![&b"1"[..], &b"3"[..]]);
        map.replace(b"a", b"x");
        assert_eq!(map.get_all("a"), vec![&b"x"[..]]);
        assert_eq!(
            map.entries().last().unwrap(),
            &(b"a".to_vec(), b"x".to_vec())
        );
        map.add(b":method", b"GET");
        assert_eq!(map.entries()[1].0, b":method");
        map.remove(b"B");
        assert_eq!(map.get("b"), None);
        assert_eq!(map.byte_size(), ":path/:methodGETax".len());
    }

    #[test]
    fn inline_request_headers_join_and_host_is_authority() {
        let mut map = HeaderMap::with_kind(
            MapKind::RequestHeaders,
            &[
                (":authority", "a.example"),
                ("user-agent", "one"),
                ("x-custom", "1"),
            ],
        );
        map.add(b"user-agent", b"two");
        map.add(b"x-custom", b"2");
        assert_eq!(map.get_all("user-agent"), vec![&b"one,two"[..]]);
        assert_eq!(map.get_all("x-custom"), vec![&b"1"[..], &b"2"[..]]);
        assert_eq!(map.get("host"), Some(&b"a.example"[..]));
        map.replace(b"Host", b"b.example");
        assert_eq!(map.get(":authority"), Some(&b"b.example"[..]));
        assert_eq!(map.joined()[2], (b"x-custom".to_vec(), b"1,2".to_vec()));
    }
}
