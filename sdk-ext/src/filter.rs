//! The filter trait every filter crate implements, and the wiring into proxy-wasm's contexts.
//!
//! A filter is a [`RootFilter`] (configuration, parsed once per VM) that creates one
//! [`HttpFilter`] per request. [`export_filter!`](crate::export_filter) registers it as the
//! module's root context, so a filter's `lib.rs` is one line; a chain module can hold several.

use crate::config::ConfigError;
use crate::{buffers, logging, reply};
use log::LevelFilter;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType};
use std::rc::Rc;

pub use proxy_wasm::types::Action;

/// Per-VM side of a filter: built once from the plugin configuration.
pub trait RootFilter: Sized + 'static {
    /// Name used as the prefix of every log line, e.g. `header_rewrite`.
    const NAME: &'static str;
    /// The per-request filter this root creates.
    type Http: HttpFilter;
    /// Parses and validates the plugin configuration bytes.
    fn configure(config: &[u8]) -> Result<Self, ConfigError>;
    /// Creates the filter for one request.
    fn create_http(root: &Rc<Self>, context_id: u32) -> Self::Http;
    /// The timer set with [`clock::set_tick_period`](crate::clock::set_tick_period) fired.
    fn on_tick(_root: &Rc<Self>) {}
    /// A callout the root context dispatched was answered (`num_headers` is 0 when it failed).
    fn on_http_call_response(
        _root: &Rc<Self>,
        _token: u32,
        _num_headers: usize,
        _body_size: usize,
        _num_trailers: usize,
    ) {
    }
}

/// Per-request side of a filter. Every callback defaults to `Continue`.
pub trait HttpFilter: 'static {
    /// Request headers arrived; `end_of_stream` when the request has no body.
    fn on_request_headers(&mut self, _end_of_stream: bool) -> Action {
        Action::Continue
    }
    /// A request body chunk of `body_size` buffered bytes arrived.
    fn on_request_body(&mut self, _body_size: usize, _end_of_stream: bool) -> Action {
        Action::Continue
    }
    /// Request trailers arrived.
    fn on_request_trailers(&mut self) -> Action {
        Action::Continue
    }
    /// Response headers arrived.
    fn on_response_headers(&mut self, _end_of_stream: bool) -> Action {
        Action::Continue
    }
    /// A response body chunk arrived.
    fn on_response_body(&mut self, _body_size: usize, _end_of_stream: bool) -> Action {
        Action::Continue
    }
    /// Response trailers arrived.
    fn on_response_trailers(&mut self) -> Action {
        Action::Continue
    }
    /// The stream is done; access-log time.
    fn on_log(&mut self) {}
    /// A callout this request dispatched was answered (`num_headers` is 0 when it failed or timed
    /// out). Envoy delivers it to the root context; proxy-wasm's dispatcher routes it here by
    /// token. Hostcalls already act for this stream: resume it with
    /// [`stream::resume_request`](crate::stream::resume_request) or send a local reply.
    fn on_http_call_response(
        &mut self,
        _token: u32,
        _num_headers: usize,
        _body_size: usize,
        _num_trailers: usize,
    ) {
    }
}

/// Registers `F` as the module's root context. Called from `export_filter!` at VM start.
pub fn install<F: RootFilter>() {
    logging::init(LevelFilter::Info);
    proxy_wasm::set_root_context(|_| Box::new(RootAdapter::<F> { filter: None }));
}

/// Exports a [`RootFilter`] as the module's filter: `sdk_ext::export_filter!(MyRoot);`.
#[macro_export]
macro_rules! export_filter {
    ($root:ty) => {
        $crate::proxy_wasm::main! {{
            $crate::filter::install::<$root>();
        }}
    };
}

struct RootAdapter<F: RootFilter> {
    filter: Option<Rc<F>>,
}

impl<F: RootFilter> Context for RootAdapter<F> {
    fn on_http_call_response(
        &mut self,
        token: u32,
        num_headers: usize,
        body_size: usize,
        num_trailers: usize,
    ) {
        if let Some(root) = &self.filter {
            F::on_http_call_response(root, token, num_headers, body_size, num_trailers);
        }
    }
}

impl<F: RootFilter> RootContext for RootAdapter<F> {
    fn on_configure(&mut self, plugin_configuration_size: usize) -> bool {
        if let Some(level) = logging::host_level() {
            log::set_max_level(level);
        }
        let bytes = match buffers::get(
            BufferType::PluginConfiguration,
            0,
            plugin_configuration_size,
        ) {
            Ok(bytes) => bytes,
            Err(status) => {
                log::error!(
                    "{}: cannot read the plugin configuration: {status:?}",
                    F::NAME
                );
                return false;
            }
        };
        match F::configure(&bytes) {
            Ok(filter) => {
                self.filter = Some(Rc::new(filter));
                true
            }
            Err(error) => {
                log::error!("{}: {error}", F::NAME);
                false
            }
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn on_tick(&mut self) {
        if let Some(root) = &self.filter {
            F::on_tick(root);
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(match &self.filter {
            Some(root) => Box::new(HttpAdapter(F::create_http(root, context_id))),
            None => Box::new(NotConfigured(F::NAME)),
        })
    }
}

struct HttpAdapter<H: HttpFilter>(H);

impl<H: HttpFilter> Context for HttpAdapter<H> {
    fn on_http_call_response(
        &mut self,
        token: u32,
        num_headers: usize,
        body_size: usize,
        num_trailers: usize,
    ) {
        self.0
            .on_http_call_response(token, num_headers, body_size, num_trailers)
    }
}

impl<H: HttpFilter> HttpContext for HttpAdapter<H> {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.0.on_request_headers(end_of_stream)
    }
    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.0.on_request_body(body_size, end_of_stream)
    }
    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        self.0.on_request_trailers()
    }
    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.0.on_response_headers(end_of_stream)
    }
    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.0.on_response_body(body_size, end_of_stream)
    }
    fn on_http_response_trailers(&mut self, _num_trailers: usize) -> Action {
        self.0.on_response_trailers()
    }
    fn on_log(&mut self) {
        self.0.on_log()
    }
}

/// Stands in when a host creates streams although configuration failed: fail closed with a 500
/// rather than let requests through a filter that is not running.
struct NotConfigured(&'static str);

impl Context for NotConfigured {}

impl HttpContext for NotConfigured {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        log::error!(
            "{}: request rejected: the filter has no valid configuration",
            self.0
        );
        let _ = reply::send_json_error(
            500,
            "filter_not_configured",
            "the filter has no valid configuration",
            &[],
        );
        Action::Pause
    }
}
