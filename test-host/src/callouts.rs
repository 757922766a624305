//! HTTP and gRPC callouts: what the module asked for, and the replies a test gives back.

use crate::state::HeaderMap;
use std::time::Duration;

/// A pending `proxy_http_call`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCall {
    /// The token the module got back. HTTP call tokens are 4, 8, 12, ... per VM, as in Envoy.
    pub token: u32,
    /// The context that made the call (a stream, or the root).
    pub context_id: u32,
    /// The upstream cluster.
    pub cluster: String,
    /// Request headers (`:method`, `:path`, `:authority` included).
    pub headers: HeaderMap,
    /// Request body.
    pub body: Vec<u8>,
    /// Request trailers.
    pub trailers: HeaderMap,
    /// The call's timeout; `None` for 0, which Envoy treats as no timeout.
    pub timeout: Option<Duration>,
    /// Host monotonic time when the call was made.
    pub(crate) started: Duration,
}

/// A pending gRPC call (`proxy_grpc_call`) or stream (`proxy_grpc_stream`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcCall {
    /// Token: calls are 5, 9, ...; streams 6, 10, ... per VM, as in Envoy.
    pub token: u32,
    /// The context that opened it.
    pub context_id: u32,
    /// The `service` argument (a serialized GrpcService, or a cluster name).
    pub service: Vec<u8>,
    /// The gRPC service name.
    pub service_name: String,
    /// The method name.
    pub method: String,
    /// Initial metadata.
    pub initial_metadata: HeaderMap,
    /// Messages sent: the request of a call, or each `proxy_grpc_send` of a stream.
    pub messages: Vec<Vec<u8>>,
    /// Whether this is a stream.
    pub is_stream: bool,
    /// The module half-closed the stream (`proxy_grpc_close`, or `end_stream` on send).
    pub local_closed: bool,
    /// The call's timeout, for calls.
    pub timeout: Option<Duration>,
    /// Host monotonic time when the call was made.
    pub(crate) started: Duration,
}

/// A reply to an HTTP callout, as a test supplies it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HttpResponse {
    /// HTTP status (sent as the `:status` header).
    pub status: u16,
    /// Other headers.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Body.
    pub body: Vec<u8>,
    /// Trailers.
    pub trailers: Vec<(String, Vec<u8>)>,
}

impl HttpResponse {
    /// A response with `status` and nothing else.
    pub fn new(status: u16) -> HttpResponse {
        HttpResponse {
            status,
            ..HttpResponse::default()
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> HttpResponse {
        self.headers
            .push((name.to_string(), value.as_ref().to_vec()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> HttpResponse {
        self.body = body.into();
        self
    }

    /// Adds a trailer.
    pub fn trailer(mut self, name: &str, value: impl AsRef<[u8]>) -> HttpResponse {
        self.trailers
            .push((name.to_string(), value.as_ref().to_vec()));
        self
    }

    /// The headers map the module reads: `:status` first, then the rest.
    pub(crate) fn header_map(&self) -> HeaderMap {
        let mut pairs: Vec<(Vec<u8>, Vec<u8>)> =
            vec![(b":status".to_vec(), self.status.to_string().into_bytes())];
        pairs.extend(
            self.headers
                .iter()
                .map(|(name, value)| (name.as_bytes().to_vec(), value.clone())),
        );
        if !self.body.is_empty()
            && !pairs
                .iter()
                .any(|(name, _)| name.eq_ignore_ascii_case(b"content-length"))
        {
            pairs.push((
                b"content-length".to_vec(),
                self.body.len().to_string().into_bytes(),
            ));
        }
        HeaderMap::with_kind(crate::state::MapKind::ResponseHeaders, &pairs)
    }

    /// The reply Envoy's async client produces when the call times out.
    pub fn gateway_timeout() -> HttpResponse {
        HttpResponse::new(504)
            .header("content-type", "text/plain")
            .body("upstream request timeout")
    }
}
