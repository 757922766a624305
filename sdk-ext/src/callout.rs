//! HTTP callouts: build a request with [`HttpCall`], send it with
//! [`Cx::http_call`](crate::Cx::http_call), and read the answer from the [`CallResponse`] handed
//! to the filter that sent it. Nothing here goes through a panicking wrapper.

use crate::headers::Headers;
use crate::host::{BufferType, Host, MapType, Status};
use std::time::Duration;

/// An HTTP request to a cluster.
#[derive(Debug, Clone)]
pub struct HttpCall<'a> {
    pub(crate) cluster: &'a str,
    pub(crate) headers: Vec<(&'a str, &'a [u8])>,
    pub(crate) body: &'a [u8],
    pub(crate) timeout: Duration,
}

impl<'a> HttpCall<'a> {
    /// A GET of `path` on `cluster`, with `:authority` set to `authority` and a 5 s timeout.
    pub fn get(cluster: &'a str, authority: &'a str, path: &'a str) -> HttpCall<'a> {
        HttpCall::new(cluster, "GET", authority, path)
    }

    /// A request with `method` for `path` on `cluster`, with `:authority` set to `authority`.
    pub fn new(cluster: &'a str, method: &'a str, authority: &'a str, path: &'a str) -> Self {
        HttpCall {
            cluster,
            headers: vec![
                (":method", method.as_bytes()),
                (":path", path.as_bytes()),
                (":authority", authority.as_bytes()),
            ],
            body: b"",
            timeout: Duration::from_secs(5),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &'a str, value: &'a [u8]) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: &'a [u8]) -> Self {
        self.body = body;
        self
    }

    /// Sets the timeout (Envoy answers 504 when it passes).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// The answer to a callout, valid during the `on_http_call_response` it is handed to.
pub struct CallResponse<'a> {
    pub(crate) host: &'a dyn Host,
    /// The token [`Cx::http_call`](crate::Cx::http_call) returned.
    pub token: u32,
    /// Number of response headers: 0 when the call failed (reset, no healthy upstream, ...).
    pub num_headers: usize,
    /// Size of the response body.
    pub body_size: usize,
    /// Number of response trailers.
    pub num_trailers: usize,
}

impl CallResponse<'_> {
    /// The response headers.
    pub fn headers(&self) -> Headers<'_> {
        Headers::new(self.host, MapType::HttpCallResponseHeaders)
    }

    /// The `:status`; `None` for a failed call (no headers).
    pub fn status(&self) -> Option<u16> {
        let status = self.headers().get(":status").ok().flatten()?;
        std::str::from_utf8(&status).ok()?.parse().ok()
    }

    /// Up to `max_size` bytes of the body.
    pub fn body(&self, max_size: usize) -> Result<Vec<u8>, Status> {
        self.host.buffer(
            BufferType::HttpCallResponseBody,
            0,
            self.body_size.min(max_size),
        )
    }
}
