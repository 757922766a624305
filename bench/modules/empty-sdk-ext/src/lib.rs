//! A module with one sdk-ext filter that does nothing. `make bench` measures it in Envoy against
//! `bench-empty-proxy-wasm` (the same on the proxy-wasm crate), so the price of sdk-ext's
//! dispatcher and context objects shows per request.

use sdk_ext::config::ConfigError;
use sdk_ext::{HttpFilter, RootCx, RootFilter};
use std::rc::Rc;

/// The root: no configuration, no state.
pub struct EmptyRoot;

impl RootFilter for EmptyRoot {
    const NAME: &'static str = "empty";
    type Http = Empty;

    fn configure(_cx: &mut RootCx<'_>, _config: &[u8]) -> Result<Self, ConfigError> {
        Ok(EmptyRoot)
    }

    fn create_http(_root: &Rc<Self>) -> Empty {
        Empty
    }
}

/// The per-request filter: every hook keeps its default (`Continue`).
pub struct Empty;

impl HttpFilter for Empty {}

sdk_ext::export_standalone!(EmptyRoot);
