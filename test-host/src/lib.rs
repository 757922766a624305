//! test-host: an in-process proxy-wasm host on wasmtime for testing real filter `.wasm` files.
//!
//! ```no_run
//! use test_host::{Action, TestHost};
//! # fn main() -> test_host::Result<()> {
//! let plugin = TestHost::new()
//!     .plugin("target/filters/header_rewrite.wasm")
//!     .config(serde_json::json!({"mutations": {"request_mutations": [
//!         {"append": {"header": {"key": "x-hello", "value": "world"}}}]}}))
//!     .start()?;
//! let mut stream = plugin.http_stream()?;
//! assert_eq!(stream.send_request_headers(&[(":path", "/")], true)?, Action::Continue);
//! assert_eq!(stream.request_headers().get_str("x-hello").as_deref(), Some("world"));
//! # Ok(()) }
//! ```

mod engine;
mod error;
mod hostcalls;
mod memory;
mod plugin;
mod state;
mod stream;

pub use engine::AbiVersion;
pub use error::{Error, Result};
pub use hostcalls::Status;
pub use plugin::{Plugin, PluginBuilder, TestHost};
pub use state::{HeaderMap, LocalResponse, LogEntry, LogLevel};
pub use stream::{Action, HttpStream};

/// Where `make build` puts the optimized filter modules: `<workspace>/target/filters/<name>.wasm`.
pub fn filter_wasm(name: &str) -> std::path::PathBuf {
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = std::env::var_os("FILTER_WASM_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| workspace.join("target").join("filters"));
    dir.join(format!("{name}.wasm"))
}
