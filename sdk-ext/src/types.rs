//! The proxy-wasm ABI's enums and statuses, as values a filter can match on.

/// What a filter callback tells the host: go on to the next filter, or stop here for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Continue iteration.
    Continue = 0,
    /// Stop iteration (headers) or stop and buffer (bodies) until resumed or replied.
    Pause = 1,
}

/// A failed hostcall's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The key, header, property or context does not exist.
    NotFound,
    /// An argument is invalid (an unknown cluster, a finished stream, ...).
    BadArgument,
    /// The host could not serialize a value.
    SerializationFailure,
    /// The host could not parse a value.
    ParseFailure,
    /// The buffer or queue is empty.
    Empty,
    /// Shared data changed since the read that returned the CAS token.
    CasMismatch,
    /// Any other failure, including an unknown status code.
    InternalFailure,
}

/// A header or trailer map of the current stream or of a callout's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapType {
    /// Request headers.
    HttpRequestHeaders = 0,
    /// Request trailers.
    HttpRequestTrailers = 1,
    /// Response headers.
    HttpResponseHeaders = 2,
    /// Response trailers.
    HttpResponseTrailers = 3,
    /// gRPC initial metadata of a gRPC callout's answer.
    GrpcReceiveInitialMetadata = 4,
    /// gRPC trailing metadata of a gRPC callout's answer.
    GrpcReceiveTrailingMetadata = 5,
    /// Headers of an HTTP callout's answer.
    HttpCallResponseHeaders = 6,
    /// Trailers of an HTTP callout's answer.
    HttpCallResponseTrailers = 7,
}

/// A buffer the host holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BufferType {
    /// The request body received so far.
    HttpRequestBody = 0,
    /// The response body received so far.
    HttpResponseBody = 1,
    /// Downstream data of a network filter.
    DownstreamData = 2,
    /// Upstream data of a network filter.
    UpstreamData = 3,
    /// The body of an HTTP callout's answer.
    HttpCallResponseBody = 4,
    /// A gRPC callout's message.
    GrpcReceiveBuffer = 5,
    /// The VM configuration.
    VmConfiguration = 6,
    /// The plugin configuration.
    PluginConfiguration = 7,
}

/// The kind of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    /// Only goes up.
    Counter = 0,
    /// Goes up and down.
    Gauge = 1,
    /// A distribution of recorded values.
    Histogram = 2,
}

/// One direction of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamType {
    /// The request (decoding).
    Request = 0,
    /// The response (encoding).
    Response = 1,
}
