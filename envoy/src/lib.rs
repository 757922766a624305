//! envoy-harness: runs real Envoy (V8) with this workspace's filters on loopback, against an echo
//! upstream, for the e2e tests and `make run`.
//!
//! ```no_run
//! use envoy_harness::{config, EchoUpstream, Envoy, Request};
//! let upstream = EchoUpstream::start().unwrap();
//! let filter = config::wasm_filter("header_rewrite", &config::filter_wasm("header_rewrite"), &serde_json::json!({}));
//! let envoy = Envoy::start(config::BootstrapBuilder::new(upstream.port()).listener("main", vec![filter]).build()).unwrap();
//! let response = Request::get("/hello").send(envoy.port()).unwrap();
//! assert_eq!(response.json()["path"], "/hello");
//! ```

pub mod authz;
pub mod bench;
pub mod chart;
pub mod client;
pub mod config;
pub mod differential;
pub mod echo;
pub mod http1;
pub mod process;
pub mod rls;
pub mod scenario;
pub mod servers;

pub use client::{Request, Response};
pub use echo::{CannedReply, EchoUpstream, ReceivedRequest};
pub use process::{
    envoy_binary, run_expecting_exit, validate, Bootstrap, Envoy, EnvoyOptions, Exited,
};
pub use servers::{process_fixture, HangingServer, RecordingUpstream};
