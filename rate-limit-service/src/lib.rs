//! Envoy's rate limit service (`envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit`)
//! on tonic, with the limits file format of Envoy's reference service and counting by
//! Kuadrant's limitador, in memory or in Redis (exact across instances sharing it).
//!
//! ```no_run
//! use rate_limit_service::{load_limits, Server, Storage};
//! let limits = load_limits("limits.yaml".as_ref()).unwrap();
//! let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
//! let server = Server::start(listener, limits, Storage::Memory).unwrap();
//! println!("port {}", server.port());
//! server.stop();
//! ```

mod limits;
mod server;
mod storage;
pub mod testing;

pub use limits::{load_limits, Limits, LimitsError};
pub use server::{Server, StartError, Storage};
