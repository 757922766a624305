//! The filter contract. A filter is a [`RootFilter`] (its configuration and per-VM state, built
//! once) that creates one [`HttpFilter`] per request. Every hook gets a context object, and
//! everything a filter does goes through it, so the same code runs on Envoy, in a chain of
//! filters, and on the fake host in unit tests.
//!
//! Filter crates export nothing: a module crate lists its filters with
//! [`export_standalone!`](crate::export_standalone) or [`export_chain!`](crate::export_chain).

use crate::callout::CallResponse;
use crate::config::ConfigError;
use crate::cx::{HttpCx, RootCx};
use crate::grpc::GrpcResponse;
use std::rc::Rc;

pub use crate::types::Action;

/// Per-VM side of a filter: built once from the plugin configuration.
pub trait RootFilter: Sized + 'static {
    /// The filter's name in logs and in a chain's config: `jwt_auth` (a chain also accepts
    /// `jwt-auth`).
    const NAME: &'static str;
    /// The per-request filter this root creates.
    type Http: HttpFilter;
    /// Parses and validates the configuration bytes; a failure makes Envoy refuse the config.
    fn configure(cx: &mut RootCx<'_>, config: &[u8]) -> Result<Self, ConfigError>;
    /// Creates the filter for one request.
    fn create_http(root: &Rc<Self>) -> Self::Http;
    /// The period set with [`Cx::set_tick_period`](crate::Cx::set_tick_period) passed.
    fn on_tick(_root: &Rc<Self>, _cx: &mut RootCx<'_>) {}
    /// A callout the root dispatched was answered (`num_headers` is 0 when it failed).
    fn on_http_call_response(_root: &Rc<Self>, _cx: &mut RootCx<'_>, _response: &CallResponse<'_>) {
    }
    /// A gRPC call the root sent was answered with a message or closed with a status.
    fn on_grpc_call_response(_root: &Rc<Self>, _cx: &mut RootCx<'_>, _response: &GrpcResponse<'_>) {
    }
    /// Shared queue `queue_id`, which this filter registered
    /// ([`RootCx::register_queue`]), has items.
    fn on_queue_ready(_root: &Rc<Self>, _cx: &mut RootCx<'_>, _queue_id: u32) {}
}

/// Per-request side of a filter. Every hook defaults to `Continue`.
///
/// Chain semantics, as Envoy runs a filter chain: request hooks run in chain order and response
/// hooks in reverse; a `Pause` stops the later filters until this filter resumes (a `Continue`
/// from `on_wake` or `on_http_call_response`); a local reply ends the request for every later
/// filter. While a filter holds the request headers, the body and trailers are buffered and
/// reach the filters only once it continues.
pub trait HttpFilter: 'static {
    /// Request headers arrived; `end_of_stream` when the request has no body.
    fn on_request_headers(&mut self, _cx: &mut HttpCx<'_>, _end_of_stream: bool) -> Action {
        Action::Continue
    }
    /// The buffered request body is `body_size` bytes; `Pause` buffers more before going on.
    fn on_request_body(
        &mut self,
        _cx: &mut HttpCx<'_>,
        _body_size: usize,
        _end_of_stream: bool,
    ) -> Action {
        Action::Continue
    }
    /// Request trailers arrived.
    fn on_request_trailers(&mut self, _cx: &mut HttpCx<'_>) -> Action {
        Action::Continue
    }
    /// Response headers arrived.
    fn on_response_headers(&mut self, _cx: &mut HttpCx<'_>, _end_of_stream: bool) -> Action {
        Action::Continue
    }
    /// The buffered response body is `body_size` bytes.
    fn on_response_body(
        &mut self,
        _cx: &mut HttpCx<'_>,
        _body_size: usize,
        _end_of_stream: bool,
    ) -> Action {
        Action::Continue
    }
    /// Response trailers arrived.
    fn on_response_trailers(&mut self, _cx: &mut HttpCx<'_>) -> Action {
        Action::Continue
    }
    /// The stream is done; access-log time. Runs in wasm only when sdk-ext's `on-log` feature
    /// is on (the module then exports `proxy_on_log`, which Envoy calls for every stream).
    fn on_log(&mut self, _cx: &mut HttpCx<'_>) {}
    /// A callout this stream dispatched was answered (`num_headers` is 0 when it failed or timed
    /// out). When this filter paused the stream, `Continue` resumes it at the next filter.
    fn on_http_call_response(
        &mut self,
        _cx: &mut HttpCx<'_>,
        _response: &CallResponse<'_>,
    ) -> Action {
        Action::Continue
    }
    /// A gRPC call this stream sent ([`Cx::grpc_call`](crate::Cx::grpc_call)) was answered
    /// with a message, or closed with a status (a timeout, an unreachable cluster, the
    /// service's error). When this filter paused the stream, `Continue` resumes it at the next
    /// filter.
    fn on_grpc_call_response(
        &mut self,
        _cx: &mut HttpCx<'_>,
        _response: &GrpcResponse<'_>,
    ) -> Action {
        Action::Continue
    }
    /// The root woke this stream ([`RootCx::wake`]) while this filter held it: decide now.
    /// `Continue` resumes the stream at the next filter; `Pause` keeps holding it.
    fn on_wake(&mut self, _cx: &mut HttpCx<'_>) -> Action {
        Action::Continue
    }
}

/// A configured filter of any type, as the dispatcher holds it.
pub(crate) trait AnyRoot {
    fn create_http(&self) -> Box<dyn HttpFilter>;
    fn on_tick(&self, cx: &mut RootCx<'_>);
    fn on_http_call_response(&self, cx: &mut RootCx<'_>, response: &CallResponse<'_>);
    fn on_grpc_call_response(&self, cx: &mut RootCx<'_>, response: &GrpcResponse<'_>);
    fn on_queue_ready(&self, cx: &mut RootCx<'_>, queue_id: u32);
}

struct Root<F: RootFilter>(Rc<F>);

impl<F: RootFilter> AnyRoot for Root<F> {
    fn create_http(&self) -> Box<dyn HttpFilter> {
        Box::new(F::create_http(&self.0))
    }
    fn on_tick(&self, cx: &mut RootCx<'_>) {
        F::on_tick(&self.0, cx)
    }
    fn on_http_call_response(&self, cx: &mut RootCx<'_>, response: &CallResponse<'_>) {
        F::on_http_call_response(&self.0, cx, response)
    }
    fn on_grpc_call_response(&self, cx: &mut RootCx<'_>, response: &GrpcResponse<'_>) {
        F::on_grpc_call_response(&self.0, cx, response)
    }
    fn on_queue_ready(&self, cx: &mut RootCx<'_>, queue_id: u32) {
        F::on_queue_ready(&self.0, cx, queue_id)
    }
}

/// A filter type a module can instantiate by name: `Factory::of::<JwtAuthRoot>()`.
#[derive(Clone, Copy)]
pub struct Factory {
    /// [`RootFilter::NAME`].
    pub name: &'static str,
    #[allow(clippy::type_complexity)]
    configure: fn(&mut RootCx<'_>, &[u8]) -> Result<Box<dyn AnyRoot>, ConfigError>,
}

impl Factory {
    /// The factory of filter `F`.
    pub const fn of<F: RootFilter>() -> Factory {
        Factory {
            name: F::NAME,
            configure: |cx, config| {
                F::configure(cx, config)
                    .map(|root| Box::new(Root(Rc::new(root))) as Box<dyn AnyRoot>)
            },
        }
    }

    /// Whether a chain entry's `name` means this filter: `jwt_auth` or `jwt-auth`.
    pub fn is_named(&self, name: &str) -> bool {
        name.len() == self.name.len()
            && name
                .bytes()
                .zip(self.name.bytes())
                .all(|(given, own)| given == own || (given == b'-' && own == b'_'))
    }

    /// The name as a chain config writes it: `jwt-auth`.
    pub fn chain_name(&self) -> String {
        self.name.replace('_', "-")
    }

    pub(crate) fn configure(
        &self,
        cx: &mut RootCx<'_>,
        config: &[u8],
    ) -> Result<Box<dyn AnyRoot>, ConfigError> {
        (self.configure)(cx, config)
    }
}
