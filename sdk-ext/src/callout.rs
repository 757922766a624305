//! HTTP callouts: dispatch a request to a cluster and read its response in
//! `on_http_call_response`. Dispatch goes through the proxy-wasm crate so that its dispatcher
//! routes the response to the context that made the call; the response is read with sdk-ext's
//! panic-free accessors.

use crate::buffers;
use crate::headers::{HeaderMap, MapType};
use crate::host::Status;
use proxy_wasm::types::BufferType;
use std::time::Duration;

/// The response headers of the callout being answered (only during `on_http_call_response`).
pub const RESPONSE_HEADERS: HeaderMap = HeaderMap(MapType::HttpCallResponseHeaders);

/// An HTTP request to a cluster, built then dispatched.
#[derive(Debug, Clone)]
pub struct HttpCall<'a> {
    cluster: &'a str,
    headers: Vec<(&'a str, &'a str)>,
    body: Option<&'a [u8]>,
    timeout: Duration,
}

impl<'a> HttpCall<'a> {
    /// A GET of `path` on `cluster`, with `:authority` set to `authority`.
    pub fn get(cluster: &'a str, authority: &'a str, path: &'a str) -> HttpCall<'a> {
        HttpCall {
            cluster,
            headers: vec![
                (":method", "GET"),
                (":path", path),
                (":authority", authority),
            ],
            body: None,
            timeout: Duration::from_secs(5),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &'a str, value: &'a str) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Sets the method.
    pub fn method(mut self, method: &'a str) -> Self {
        self.headers[0].1 = method;
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: &'a [u8]) -> Self {
        self.body = Some(body);
        self
    }

    /// Sets the timeout (Envoy answers 504 when it passes).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends the call; the answer arrives in `on_http_call_response` with the returned token.
    /// An unknown cluster or a malformed request is `BadArgument`.
    pub fn dispatch(self) -> Result<u32, Status> {
        proxy_wasm::hostcalls::dispatch_http_call(
            self.cluster,
            self.headers,
            self.body,
            Vec::new(),
            self.timeout,
        )
    }
}

/// The `:status` of the response being answered; `None` for a failed call (no headers).
pub fn response_status() -> Option<u16> {
    let status = RESPONSE_HEADERS.get(":status").ok().flatten()?;
    std::str::from_utf8(&status).ok()?.parse().ok()
}

/// Up to `max_size` bytes of the response body being answered.
pub fn response_body(body_size: usize, max_size: usize) -> Result<Vec<u8>, Status> {
    buffers::get(BufferType::HttpCallResponseBody, 0, body_size.min(max_size))
}
