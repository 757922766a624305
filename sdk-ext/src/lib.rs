//! sdk-ext: the thin, panic-free layer every filter in this workspace stands on.
//!
//! Each helper sits directly on one proxy-wasm hostcall and returns failures as
//! [`Status`](proxy_wasm::types::Status) values instead of trapping the VM.

pub mod abi;
pub mod buffers;
pub mod callout;
pub mod clock;
pub mod config;
pub mod filter;
pub mod headers;
pub mod host;
pub mod logging;
pub mod matcher;
pub mod metrics;
pub mod properties;
pub mod proto;
pub mod reply;
pub mod request;
pub mod shared_data;
pub mod stream;
pub mod wire;

pub use filter::{Action, HttpFilter, RootFilter};
pub use proxy_wasm;
