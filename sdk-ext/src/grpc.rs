//! gRPC callouts: a unary call built with [`GrpcCall`], sent with
//! [`Cx::grpc_call`](crate::Cx::grpc_call); its answer, a message or a status, reaches the filter
//! that sent it as a [`GrpcResponse`]. Messages are bytes: the filter encodes and decodes them.

use crate::host::{BufferType, Host, Status};
use std::time::Duration;

/// gRPC's `OK`.
pub const GRPC_OK: u32 = 0;
/// gRPC's `DEADLINE_EXCEEDED`: Envoy closes a call whose timeout passed with it.
pub const GRPC_DEADLINE_EXCEEDED: u32 = 4;
/// gRPC's `UNAVAILABLE`: Envoy closes a call to a cluster with no healthy host with it.
pub const GRPC_UNAVAILABLE: u32 = 14;

/// A unary gRPC call: `service`/`method` on the Envoy cluster `cluster`.
#[derive(Debug, Clone)]
pub struct GrpcCall<'a> {
    pub(crate) cluster: &'a str,
    pub(crate) service: &'a str,
    pub(crate) method: &'a str,
    pub(crate) metadata: Vec<(&'a str, &'a [u8])>,
    pub(crate) message: &'a [u8],
    pub(crate) timeout: Duration,
}

impl<'a> GrpcCall<'a> {
    /// A call of `service`'s `method` (e.g. `envoy.service.ratelimit.v3.RateLimitService`,
    /// `ShouldRateLimit`) with the serialized request `message`, on `cluster`, with a 5 s
    /// timeout.
    pub fn new(cluster: &'a str, service: &'a str, method: &'a str, message: &'a [u8]) -> Self {
        GrpcCall {
            cluster,
            service,
            method,
            metadata: Vec::new(),
            message,
            timeout: Duration::from_secs(5),
        }
    }

    /// Adds initial metadata (a request header of the call).
    pub fn metadata(mut self, name: &'a str, value: &'a [u8]) -> Self {
        self.metadata.push((name, value));
        self
    }

    /// Sets the timeout: when it passes, Envoy closes the call with `DEADLINE_EXCEEDED`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// The answer to a gRPC call, valid during the hook it is handed to.
pub struct GrpcResponse<'a> {
    pub(crate) host: &'a dyn Host,
    /// The token [`Cx::grpc_call`](crate::Cx::grpc_call) returned.
    pub token: u32,
    /// [`GRPC_OK`] with a message; otherwise the status the call closed with.
    pub status: u32,
    /// Size of the message (0 for a status).
    pub message_size: usize,
}

impl GrpcResponse<'_> {
    /// Whether the call succeeded with a message.
    pub fn is_ok(&self) -> bool {
        self.status == GRPC_OK
    }

    /// The serialized response message (empty when the call closed with a status).
    pub fn message(&self) -> Result<Vec<u8>, Status> {
        if self.message_size == 0 {
            return Ok(Vec::new());
        }
        self.host
            .buffer(BufferType::GrpcReceiveBuffer, 0, self.message_size)
    }

    /// The status message the call closed with (e.g. Envoy's reason for `UNAVAILABLE`); `None`
    /// for a message, or when the host has none.
    pub fn status_message(&self) -> Option<String> {
        if self.is_ok() {
            return None;
        }
        let (_, message) = self.host.call_status().ok()?;
        Some(String::from_utf8_lossy(&message).into_owned()).filter(|text| !text.is_empty())
    }
}
