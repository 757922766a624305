//! Host state: plain structs that the hostcalls mutate and the tests inspect.

use std::collections::{BTreeMap, HashMap};
use wasmtime::StoreLimits;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

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

/// One `proxy_log` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Its level.
    pub level: LogLevel,
    /// Its message, lossily decoded as UTF-8.
    pub message: String,
}

/// A header or trailer map as Envoy keeps it: ordered entries, lower-case names, pseudo-headers
/// first, duplicates allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderMap {
    entries: Vec<(Vec<u8>, Vec<u8>)>,
}

impl HeaderMap {
    /// A map from `(name, value)` pairs; names are lower-cased.
    pub fn from_pairs<N: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(N, V)]) -> HeaderMap {
        let mut map = HeaderMap::default();
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

    /// The first value of `name` (case-insensitive).
    pub fn get(&self, name: impl AsRef<[u8]>) -> Option<&[u8]> {
        let name = name.as_ref().to_ascii_lowercase();
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
        let name = name.as_ref().to_ascii_lowercase();
        self.entries
            .iter()
            .filter(|(key, _)| *key == name)
            .map(|(_, value)| value.as_slice())
            .collect()
    }

    /// Adds an entry. A pseudo-header goes after the existing pseudo-headers, as in Envoy.
    pub fn add(&mut self, name: &[u8], value: &[u8]) {
        let name = name.to_ascii_lowercase();
        let entry = (name, value.to_vec());
        if entry.0.starts_with(b":") {
            let at = self
                .entries
                .iter()
                .position(|(key, _)| !key.starts_with(b":"))
                .unwrap_or(self.entries.len());
            self.entries.insert(at, entry);
        } else {
            self.entries.push(entry);
        }
    }

    /// Sets `name` to one entry: the first existing entry keeps its place, the others go.
    pub fn replace(&mut self, name: &[u8], value: &[u8]) {
        let name = name.to_ascii_lowercase();
        match self.entries.iter().position(|(key, _)| *key == name) {
            Some(first) => {
                self.entries[first].1 = value.to_vec();
                let mut index = 0;
                self.entries.retain(|(key, _)| {
                    let keep = index <= first || *key != name;
                    index += 1;
                    keep
                });
            }
            None => self.add(&name, value),
        }
    }

    /// Removes every entry of `name`.
    pub fn remove(&mut self, name: &[u8]) {
        let name = name.to_ascii_lowercase();
        self.entries.retain(|(key, _)| *key != name);
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

/// A local reply sent with `proxy_send_local_response`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalResponse {
    /// HTTP status.
    pub status: u32,
    /// Envoy's response code details.
    pub details: String,
    /// Reply body.
    pub body: Vec<u8>,
    /// Headers the filter added to the reply.
    pub headers: HeaderMap,
    /// gRPC status, or -1 when none.
    pub grpc_status: i32,
}

/// Whether a filter may use a header map in the current callback. Envoy hands a filter its
/// request headers only during `on_request_headers` (and while that callback keeps the stream
/// paused), and read-only copies during `on_log`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(crate) enum Access {
    #[default]
    None,
    ReadOnly,
    ReadWrite,
}

/// Everything the host holds for one HTTP stream.
#[derive(Debug, Default)]
pub(crate) struct StreamState {
    /// Access to request headers, request trailers, response headers, response trailers.
    pub access: [Access; 4],
    pub request_headers: Option<HeaderMap>,
    pub request_trailers: Option<HeaderMap>,
    pub response_headers: Option<HeaderMap>,
    pub response_trailers: Option<HeaderMap>,
    pub local_response: Option<LocalResponse>,
    pub properties: BTreeMap<Vec<u8>, Vec<u8>>,
}

/// The state of one VM's store.
pub(crate) struct HostState {
    pub wasi: WasiP1Ctx,
    pub limits: StoreLimits,
    pub stdout: MemoryOutputPipe,
    pub stderr: MemoryOutputPipe,
    pub logs: Vec<LogEntry>,
    pub log_level: LogLevel,
    pub vm_configuration: Vec<u8>,
    pub plugin_configuration: Vec<u8>,
    /// The context the running callback belongs to.
    pub active_context: u32,
    pub streams: HashMap<u32, StreamState>,
    /// Properties visible to every context, keyed by NUL-joined path.
    pub properties: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl HostState {
    /// The state of the stream whose callback is running, if it is a stream.
    pub fn active_stream(&mut self) -> Option<&mut StreamState> {
        self.streams.get_mut(&self.active_context)
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
        assert_eq!(map.entries()[1], (b"a".to_vec(), b"x".to_vec()));
        map.add(b":method", b"GET");
        assert_eq!(map.entries()[1].0, b":method");
        map.remove(b"B");
        assert_eq!(map.get("b"), None);
        map.replace(b"new", b"v");
        assert_eq!(map.entries().last().unwrap().0, b"new");
    }
}
