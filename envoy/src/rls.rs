//! A scripted rate limit service (`envoy.service.ratelimit.v3.RateLimitService`, gRPC over HTTP/2
//! on loopback) for differential tests of rate limit service clients: its answer is chosen by the
//! value of the request's `script` descriptor entry, so a test reaches every reply the API allows
//! (headers to add, a body, an unknown code, gRPC errors, no answer at all). It records each
//! request it gets, so a test can compare what two clients sent.

use envoy_types::pb::envoy::config::core::v3::HeaderValue;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::{
    rate_limit::Unit, Code, DescriptorStatus, RateLimit,
};
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_server::{
    RateLimitService, RateLimitServiceServer,
};
use envoy_types::pb::envoy::service::ratelimit::v3::{RateLimitRequest, RateLimitResponse};
use envoy_types::pb::google::protobuf::Duration as ProtoDuration;
use std::io;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::oneshot;

/// What the service received: the domain, each descriptor's entries, and `hits_addend`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RlsRequest {
    /// `domain`.
    pub domain: String,
    /// Each descriptor's `(key, value)` entries.
    pub descriptors: Vec<Vec<(String, String)>>,
    /// `hits_addend` (0 when unset).
    pub hits_addend: u32,
}

impl RlsRequest {
    /// The value of the first entry called `key`, in any descriptor.
    pub fn entry(&self, key: &str) -> Option<&str> {
        self.descriptors
            .iter()
            .flatten()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
    }
}

/// The running service; it stops when dropped.
pub struct ScriptedRls {
    port: u16,
    received: Arc<Mutex<Vec<RlsRequest>>>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ScriptedRls {
    /// Starts the service on a free loopback port. Scripts (the `script` entry's value):
    /// - `ok`: OK; `ok-headers`: OK with `x-rls-request` for the upstream and `x-rls-response`
    ///   for the client;
    /// - `statuses`: OK with two descriptor statuses (100/s with 7 left, 10/min named `tenant`
    ///   with 3 left, resetting in 30 s);
    /// - `over`: OVER_LIMIT with a status (10/min named `tenant`, 0 left, reset in 42 s);
    /// - `over-headers-body`: OVER_LIMIT with `x-rls-response`, a `retry-after` and a raw body;
    /// - `unknown`: the code UNKNOWN; `error`: INTERNAL; `unavailable`: UNAVAILABLE;
    /// - `hang`: answers OK after 5 s; anything else, or no `script` entry: OK.
    pub fn start() -> io::Result<ScriptedRls> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let service = Script {
            received: received.clone(),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (shutdown, signal) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                let incoming = tonic::transport::server::TcpIncoming::from(listener);
                // One service, served without a router (tonic's `router` feature pulls axum).
                let _ = tonic::transport::Server::builder()
                    .serve_with_incoming_shutdown(
                        RateLimitServiceServer::new(service),
                        incoming,
                        async {
                            let _ = signal.await;
                        },
                    )
                    .await;
            })
        });
        Ok(ScriptedRls {
            port,
            received,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every request received so far, in order.
    pub fn received(&self) -> Vec<RlsRequest> {
        self.received
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

impl Drop for ScriptedRls {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        // A hanging call keeps the server from draining: don't wait for it.
        drop(self.thread.take());
    }
}

struct Script {
    received: Arc<Mutex<Vec<RlsRequest>>>,
}

fn header(key: &str, value: &str) -> HeaderValue {
    HeaderValue {
        key: key.into(),
        value: value.into(),
        ..Default::default()
    }
}

fn status(
    code: Code,
    limit: u32,
    unit: Unit,
    name: &str,
    remaining: u32,
    reset: i64,
) -> DescriptorStatus {
    DescriptorStatus {
        code: code as i32,
        current_limit: Some(RateLimit {
            name: name.into(),
            requests_per_unit: limit,
            unit: unit as i32,
        }),
        limit_remaining: remaining,
        duration_until_reset: Some(ProtoDuration {
            seconds: reset,
            nanos: 0,
        }),
        ..Default::default()
    }
}

#[tonic::async_trait]
impl RateLimitService for Script {
    async fn should_rate_limit(
        &self,
        request: tonic::Request<RateLimitRequest>,
    ) -> Result<tonic::Response<RateLimitResponse>, tonic::Status> {
        let request = request.into_inner();
        let seen = RlsRequest {
            domain: request.domain.clone(),
            descriptors: request
                .descriptors
                .iter()
                .map(|descriptor| {
                    descriptor
                        .entries
                        .iter()
                        .map(|entry| (entry.key.clone(), entry.value.clone()))
                        .collect()
                })
                .collect(),
            hits_addend: request.hits_addend,
        };
        let script = seen.entry("script").unwrap_or("ok").to_string();
        self.received
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(seen);
        let ok = RateLimitResponse {
            overall_code: Code::Ok as i32,
            ..Default::default()
        };
        let response = match script.as_str() {
            "ok-headers" => RateLimitResponse {
                request_headers_to_add: vec![header("x-rls-request", "from-rls")],
                response_headers_to_add: vec![header("x-rls-response", "from-rls")],
                ..ok
            },
            "statuses" => RateLimitResponse {
                statuses: vec![
                    status(Code::Ok, 100, Unit::Second, "", 7, 1),
                    status(Code::Ok, 10, Unit::Minute, "tenant", 3, 30),
                ],
                ..ok
            },
            "over" => RateLimitResponse {
                overall_code: Code::OverLimit as i32,
                statuses: vec![status(Code::OverLimit, 10, Unit::Minute, "tenant", 0, 42)],
                ..Default::default()
            },
            "over-headers-body" => RateLimitResponse {
                overall_code: Code::OverLimit as i32,
                response_headers_to_add: vec![
                    header("x-rls-response", "from-rls"),
                    header("retry-after", "42"),
                ],
                raw_body: b"{\"error\": \"slow down\"}".to_vec(),
                ..Default::default()
            },
            "unknown" => RateLimitResponse {
                overall_code: Code::Unknown as i32,
                ..Default::default()
            },
            "error" => return Err(tonic::Status::internal("scripted error")),
            "unavailable" => return Err(tonic::Status::unavailable("scripted outage")),
            "hang" => {
                tokio::time::sleep(Duration::from_secs(5)).await;
                ok
            }
            _ => ok,
        };
        Ok(tonic::Response::new(response))
    }
}

/// What [`decisions_per_second`] measured.
#[derive(Debug, Clone, Copy)]
pub struct Throughput {
    /// Answered calls per second.
    pub per_second: f64,
    /// Calls that failed (a benchmark expects none).
    pub errors: u64,
}

/// Drives the rate limit service on `port` with `in_flight` concurrent `ShouldRateLimit` calls
/// for `duration`, each for one user of a thousand in `domain`, from a one-thread client runtime
/// on four HTTP/2 connections.
pub fn decisions_per_second(
    port: u16,
    domain: &str,
    duration: Duration,
    in_flight: usize,
) -> io::Result<Throughput> {
    use envoy_types::pb::envoy::extensions::common::ratelimit::v3::{
        rate_limit_descriptor::Entry, RateLimitDescriptor,
    };
    use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_client::RateLimitServiceClient;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let domain = domain.to_string();
    runtime.block_on(async move {
        let mut channels = Vec::new();
        for _ in 0..4 {
            let channel =
                tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
                    .map_err(io::Error::other)?
                    .connect()
                    .await
                    .map_err(io::Error::other)?;
            channels.push(channel);
        }
        let started = std::time::Instant::now();
        let deadline = tokio::time::Instant::now() + duration;
        let mut tasks = tokio::task::JoinSet::new();
        for task in 0..in_flight.max(1) {
            let mut client = RateLimitServiceClient::new(channels[task % channels.len()].clone());
            let domain = domain.clone();
            tasks.spawn(async move {
                let (mut answered, mut errors, mut call) = (0u64, 0u64, task);
                while tokio::time::Instant::now() < deadline {
                    call += in_flight;
                    let request = RateLimitRequest {
                        domain: domain.clone(),
                        descriptors: vec![RateLimitDescriptor {
                            entries: vec![Entry {
                                key: "user".into(),
                                value: format!("user-{}", call % 1000),
                            }],
                            ..Default::default()
                        }],
                        hits_addend: 1,
                    };
                    match client.should_rate_limit(request).await {
                        Ok(_) => answered += 1,
                        Err(_) => errors += 1,
                    }
                }
                (answered, errors)
            });
        }
        let (mut answered, mut errors) = (0, 0);
        while let Some(result) = tasks.join_next().await {
            let (a, e) = result.map_err(io::Error::other)?;
            answered += a;
            errors += e;
        }
        Ok(Throughput {
            per_second: answered as f64 / started.elapsed().as_secs_f64(),
            errors,
        })
    })
}
