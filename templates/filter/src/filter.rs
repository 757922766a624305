//! Per-request logic, through the context object each hook is handed: the same code runs as its
//! own module, inside a chain, and on the fake host in unit tests.

use crate::config::{Config, {{Type}}Config};
use sdk_ext::config::{load, ConfigError};
use sdk_ext::{Action, HttpCx, HttpFilter, RootCx, RootFilter};
use std::rc::Rc;

sdk_ext::stats! {
    /// The filter's counters, `<stat_prefix>.<field>`.
    pub struct Stats {
        allowed: Counter,
        denied: Counter,
    }
}

/// The per-VM root: the validated configuration and the metrics.
pub struct {{Type}}Root {
    config: Config,
    stats: Stats,
}

impl RootFilter for {{Type}}Root {
    const NAME: &'static str = "{{crate}}";
    type Http = {{Type}};

    fn configure(cx: &mut RootCx<'_>, config: &[u8]) -> Result<Self, ConfigError> {
        let config = load::<{{Type}}Config>(config)?;
        let stats = Stats::define(cx, &config.stat_prefix);
        Ok({{Type}}Root { config, stats })
    }

    fn create_http(root: &Rc<Self>) -> {{Type}} {
        {{Type}} { root: root.clone() }
    }
}

/// The per-request filter.
pub struct {{Type}} {
    root: Rc<{{Type}}Root>,
}

impl HttpFilter for {{Type}} {
    fn on_request_headers(&mut self, cx: &mut HttpCx<'_>, _end_of_stream: bool) -> Action {
        let root = &self.root;
        let required = &root.config.required_header;
        // A header map the host cannot read counts as missing: refuse rather than let through.
        if cx.request_headers().contains(required).unwrap_or(false) {
            root.stats.allowed.increment(cx);
            return Action::Continue;
        }
        root.stats.denied.increment(cx);
        let message = format!("the request has no {required} header");
        if let Err(status) = cx.send_json_error(403, "missing_header", &message, &[]) {
            log::warn!("{{crate}}: cannot send the 403: {status:?}");
        }
        Action::Pause
    }

    fn on_response_headers(&mut self, cx: &mut HttpCx<'_>, _end_of_stream: bool) -> Action {
        if let Some((name, value)) = &self.root.config.response_header {
            if let Err(status) = cx.response_headers().set(name, value) {
                log::warn!("{{crate}}: cannot set {name}: {status:?}");
            }
        }
        Action::Continue
    }
}
