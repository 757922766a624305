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
//! assert_eq!(stream.upstream_request().header("x-hello").as_deref(), Some("world"));
//! # Ok(()) }
//! ```

mod callouts;
mod engine;
mod error;
pub mod freshness;
mod host;
mod hostcalls;
mod limits;
mod memory;
mod plugin;
pub mod scenario;
mod stack;
mod state;
mod stream;
mod wasi;

pub use callouts::{GrpcCall, HttpCall, HttpResponse};
pub use engine::AbiVersion;
pub use error::{Error, Result};
pub use host::{MetricType, MetricValue, TestHost};
pub use hostcalls::{HostcallRecord, Status, Times};
pub use limits::Limits;
pub use plugin::{Module, Plugin, PluginBuilder};
pub use state::{HeaderMap, LocalResponse, LogEntry, LogLevel, MapKind};
pub use stream::{Action, HttpStream, Message};

/// Where `make build` puts the optimized filter modules: `$FILTER_WASM_DIR/<name>.wasm`, by
/// default `<workspace>/target/filters/<name>.wasm`.
///
/// Panics, naming the newest source and the `make` command to run, when the module of a filter
/// of this workspace is missing or older than its sources: a test must not pass on the previous
/// build of an edited filter.
#[track_caller]
pub fn filter_wasm(name: &str) -> std::path::PathBuf {
    let path = filter_wasm_dir().join(format!("{name}.wasm"));
    if let Err(message) = freshness::check_module(&workspace_root(), &path, name) {
        panic!("{message}");
    }
    path
}

/// `$FILTER_WASM_DIR`, by default `<workspace>/target/filters`.
pub fn filter_wasm_dir() -> std::path::PathBuf {
    std::env::var_os("FILTER_WASM_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target").join("filters"))
}

/// The workspace this crate is part of.
fn workspace_root() -> std::path::PathBuf {
    let manifest_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// Where `make build` puts the modules that exist only for tests: `$TEST_MODULE_DIR/<name>.wasm`,
/// by default `<workspace>/target/test-modules/<name>.wasm`.
pub fn test_module(name: &str) -> std::path::PathBuf {
    let dir = std::env::var_os("TEST_MODULE_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("target")
                .join("test-modules")
        });
    dir.join(format!("{name}.wasm"))
}

/// Reports what a module needs that this host lacks, without running it: its ABI version, or
/// the imports it cannot satisfy.
pub fn inspect(wasm: &[u8]) -> Result<(AbiVersion, Vec<String>)> {
    let module =
        wasmtime::Module::new(engine::engine(), wasm).map_err(|e| Error::Load(format!("{e:#}")))?;
    let abi = engine::abi_version(&module)?;
    Ok((abi, engine::unsupported_imports(&module, abi)))
}
