//! sdk-ext: the thin, panic-free layer every filter in this workspace stands on.
//!
//! A filter implements [`RootFilter`] and [`HttpFilter`]; every hook gets a context object
//! ([`HttpCx`], [`RootCx`]) and does everything through it. On Envoy the context sits on the
//! proxy-wasm hostcalls ([`host::WasmHost`]); in unit tests on the fake host ([`fake`], feature
//! `fake-host`). Every hostcall failure comes back as a [`Status`] value, never a
//! trap. Modules are exported in one place ([`export_standalone!`], [`export_chain!`]), so any set
//! of filters links into one module.

// `#[derive(FromJson)]` names `::sdk_ext`, also inside this crate.
extern crate self as sdk_ext;

mod abi;
pub mod body;
pub mod callout;
pub mod config;
mod cx;
pub mod dispatch;
pub mod export;
#[cfg(feature = "fake-host")]
pub mod fake;
pub mod filter;
pub mod grpc;
pub mod headers;
pub mod host;
pub mod logging;
pub mod matcher;
pub mod net;
pub mod properties;
pub mod proto;
/// A small protobuf wire codec (varints, length-delimited fields) for gRPC callout messages.
pub mod protobuf;
pub mod ratelimit;
pub mod reply;
pub mod request;
pub mod shared_data;
pub mod stats;
pub mod text;
pub mod types;
pub mod validate;
pub mod wire;

pub use cx::{Cx, HttpCx, RootCx};
pub use filter::{Action, HttpFilter, RootFilter};
pub use types::Status;
