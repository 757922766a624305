//! One HTTP request through the filter, driven as Envoy's filter chain drives it.

use crate::error::{Error, Result};
use crate::plugin::Vm;
use crate::state::{Access, HeaderMap, LocalResponse, StreamState};
use std::cell::RefCell;
use std::rc::Rc;

/// What a filter callback returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `0`: continue to the next filter.
    Continue,
    /// `1`: StopIteration; the stream waits for `proxy_continue_stream`.
    Pause,
    /// `2`: ContinueAndEndStream.
    ContinueAndEndStream,
    /// `3`: StopAllIterationAndBuffer.
    StopAllIterationAndBuffer,
    /// `4`: StopAllIterationAndWatermark.
    StopAllIterationAndWatermark,
    /// Any other value, which Envoy treats as an error.
    Unknown(u32),
}

impl Action {
    fn from_abi(value: u32) -> Action {
        match value {
            0 => Action::Continue,
            1 => Action::Pause,
            2 => Action::ContinueAndEndStream,
            3 => Action::StopAllIterationAndBuffer,
            4 => Action::StopAllIterationAndWatermark,
            other => Action::Unknown(other),
        }
    }
}

/// Index of a map in `StreamState::access`, equal to its proxy-wasm map type.
#[derive(Clone, Copy)]
enum MapIndex {
    RequestHeaders = 0,
    RequestTrailers = 1,
    ResponseHeaders = 2,
    ResponseTrailers = 3,
}

/// Properties every stream starts with, as Envoy would report them for a loopback request.
const DEFAULT_PROPERTIES: &[(&[&str], &[u8])] = &[
    (&["source", "address"], b"127.0.0.1:50000"),
    (&["destination", "address"], b"127.0.0.1:10000"),
    (&["request", "protocol"], b"HTTP/1.1"),
];

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
            let context_id = vm.next_context_id();
            let mut state = StreamState::default();
            for (path, value) in DEFAULT_PROPERTIES {
                state
                    .properties
                    .insert(path.join("\0").into_bytes(), value.to_vec());
            }
            vm.store.data_mut().streams.insert(context_id, state);
            let root = vm.root_context_id;
            vm.call::<(u32, u32), ()>(context_id, "proxy_on_context_create", (context_id, root))?;
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

    fn with_state<T>(&self, f: impl FnOnce(&mut StreamState) -> T) -> T {
        let mut vm = self.vm.borrow_mut();
        let state = vm
            .store
            .data_mut()
            .streams
            .get_mut(&self.context_id)
            .expect("a live stream has state");
        f(state)
    }

    /// Sets a property of this stream, e.g. `&["source", "address"]`.
    pub fn set_property(&mut self, path: &[&str], value: impl Into<Vec<u8>>) {
        let value = value.into();
        self.with_state(|state| state.properties.insert(path.join("\0").into_bytes(), value));
    }

    /// Runs a header or trailer callback with its map open for reading and writing; the map
    /// stays open only if the filter pauses the stream, as in Envoy.
    fn filter_callback(
        &mut self,
        name: &str,
        map: MapIndex,
        args: (u32, u32, u32),
        arity: usize,
    ) -> Result<Action> {
        if self.ended {
            return Err(Error::Usage(format!("{name} after the stream ended")));
        }
        self.with_state(|state| state.access[map as usize] = Access::ReadWrite);
        let context_id = self.context_id;
        let result = {
            let mut vm = self.vm.borrow_mut();
            if arity == 3 {
                vm.call::<(u32, u32, u32), u32>(context_id, name, args)
            } else {
                vm.call::<(u32, u32), u32>(context_id, name, (args.0, args.1))
            }
        };
        let action = result?.map_or(Action::Continue, Action::from_abi);
        if action == Action::Continue {
            self.with_state(|state| state.access[map as usize] = Access::None);
        }
        Ok(action)
    }

    /// Sends the request headers (`proxy_on_request_headers`).
    pub fn send_request_headers<N: AsRef<[u8]>, V: AsRef<[u8]>>(
        &mut self,
        headers: &[(N, V)],
        end_of_stream: bool,
    ) -> Result<Action> {
        let map = HeaderMap::from_pairs(headers);
        let count = map.len() as u32;
        self.with_state(|state| state.request_headers = Some(map));
        self.filter_callback(
            "proxy_on_request_headers",
            MapIndex::RequestHeaders,
            (self.context_id, count, end_of_stream as u32),
            3,
        )
    }

    /// Sends the request trailers (`proxy_on_request_trailers`).
    pub fn send_request_trailers<N: AsRef<[u8]>, V: AsRef<[u8]>>(
        &mut self,
        trailers: &[(N, V)],
    ) -> Result<Action> {
        let map = HeaderMap::from_pairs(trailers);
        let count = map.len() as u32;
        self.with_state(|state| state.request_trailers = Some(map));
        self.filter_callback(
            "proxy_on_request_trailers",
            MapIndex::RequestTrailers,
            (self.context_id, count, 0),
            2,
        )
    }

    /// Sends the response headers (`proxy_on_response_headers`).
    pub fn send_response_headers<N: AsRef<[u8]>, V: AsRef<[u8]>>(
        &mut self,
        headers: &[(N, V)],
        end_of_stream: bool,
    ) -> Result<Action> {
        let map = HeaderMap::from_pairs(headers);
        let count = map.len() as u32;
        self.with_state(|state| state.response_headers = Some(map));
        self.filter_callback(
            "proxy_on_response_headers",
            MapIndex::ResponseHeaders,
            (self.context_id, count, end_of_stream as u32),
            3,
        )
    }

    /// Sends the response trailers (`proxy_on_response_trailers`).
    pub fn send_response_trailers<N: AsRef<[u8]>, V: AsRef<[u8]>>(
        &mut self,
        trailers: &[(N, V)],
    ) -> Result<Action> {
        let map = HeaderMap::from_pairs(trailers);
        let count = map.len() as u32;
        self.with_state(|state| state.response_trailers = Some(map));
        self.filter_callback(
            "proxy_on_response_trailers",
            MapIndex::ResponseTrailers,
            (self.context_id, count, 0),
            2,
        )
    }

    /// The request headers as the filter left them: what the upstream would receive.
    pub fn request_headers(&self) -> HeaderMap {
        self.with_state(|state| state.request_headers.clone().unwrap_or_default())
    }

    /// The request trailers as the filter left them.
    pub fn request_trailers(&self) -> HeaderMap {
        self.with_state(|state| state.request_trailers.clone().unwrap_or_default())
    }

    /// The response headers as the filter left them: what the client would receive.
    pub fn response_headers(&self) -> HeaderMap {
        self.with_state(|state| state.response_headers.clone().unwrap_or_default())
    }

    /// The response trailers as the filter left them.
    pub fn response_trailers(&self) -> HeaderMap {
        self.with_state(|state| state.response_trailers.clone().unwrap_or_default())
    }

    /// The local reply the filter sent, if any.
    pub fn local_response(&self) -> Option<LocalResponse> {
        self.with_state(|state| state.local_response.clone())
    }

    /// Ends the stream as Envoy does: `proxy_on_done`, `proxy_on_log`, `proxy_on_delete`.
    pub fn end(mut self) -> Result<()> {
        self.finish()
    }

    fn finish(&mut self) -> Result<()> {
        if self.ended {
            return Ok(());
        }
        self.ended = true;
        let context_id = self.context_id;
        let mut vm = self.vm.borrow_mut();
        let result = (|| {
            vm.call::<u32, u32>(context_id, "proxy_on_done", context_id)?;
            // The access log sees read-only request headers, response headers and trailers.
            if let Some(state) = vm.store.data_mut().streams.get_mut(&context_id) {
                state.access = [
                    Access::ReadOnly,
                    Access::None,
                    Access::ReadOnly,
                    Access::ReadOnly,
                ];
            }
            vm.call::<u32, ()>(context_id, "proxy_on_log", context_id)?;
            vm.call::<u32, ()>(context_id, "proxy_on_delete", context_id)?;
            Ok(())
        })();
        vm.store.data_mut().streams.remove(&context_id);
        result
    }
}

impl Drop for HttpStream {
    fn drop(&mut self) {
        // Errors here are already recorded as the VM's failure.
        let _ = self.finish();
    }
}
