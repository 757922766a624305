//! A module with one proxy-wasm crate filter that does nothing: the empty filter as it was
//! written before sdk-ext had its own dispatcher, and the baseline of `bench-empty-sdk-ext`.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;

struct EmptyRoot;

impl Context for EmptyRoot {}

impl RootContext for EmptyRoot {
    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Empty))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// Every callback keeps the crate's default (`Continue`).
struct Empty;

impl Context for Empty {}

impl HttpContext for Empty {}

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(EmptyRoot) });
}}
