//! The gRPC service (`envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit`) and the
//! server that runs it on its own thread.

use crate::limits::{variable_name, Limits, Lookup, RateLimit, Unit};
use crate::storage::{MemoryStorage, RedisStorage};
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::{self, DescriptorStatus};
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_server::{
    RateLimitService, RateLimitServiceServer,
};
use envoy_types::pb::envoy::service::ratelimit::v3::{RateLimitRequest, RateLimitResponse};
use envoy_types::pb::google::protobuf::Duration as PbDuration;
use limitador::errors::LimitadorError;
use limitador::limit::{Context, Namespace};
use limitador::AsyncRateLimiter;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use tonic::{Request, Response, Status};

/// Where the counters live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Storage {
    /// In this process: lost on restart, not shared.
    Memory,
    /// In the Redis at this URL (`redis://host:port`): shared by every instance using it.
    Redis(String),
}

impl fmt::Display for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Storage::Memory => f.write_str("memory"),
            Storage::Redis(url) => f.write_str(url),
        }
    }
}

/// Why a server did not start.
#[derive(Debug)]
pub enum StartError {
    /// Redis is unreachable (or its URL is bad).
    Redis(String),
    /// The limits could not be given to limitador.
    Limits(String),
    /// The listener, runtime or thread could not be set up.
    Io(std::io::Error),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Redis(e) => f.write_str(e),
            StartError::Limits(e) => write!(f, "limits: {e}"),
            StartError::Io(e) => write!(f, "cannot start the server: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

impl From<std::io::Error> for StartError {
    fn from(e: std::io::Error) -> Self {
        StartError::Io(e)
    }
}

/// After a stop, how long open requests may finish before their connections are dropped.
const STOP_GRACE: Duration = Duration::from_millis(500);

/// A running rate limit service: a gRPC server on its own thread with a current-thread tokio
/// runtime (one core). Stopping it (or dropping it) closes its listener and connections.
pub struct Server {
    addr: SocketAddr,
    stop: Option<tokio::sync::watch::Sender<bool>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Serves `limits` on `listener` with counters in `storage`. Fails if Redis is unreachable.
    pub fn start(
        listener: std::net::TcpListener,
        limits: Limits,
        storage: Storage,
    ) -> Result<Server, StartError> {
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let (ready, started) = std::sync::mpsc::channel();
        // Everything tokio happens on the server's thread, so that `start`, `stop` and drop
        // work from any thread, async contexts included.
        let thread = std::thread::Builder::new()
            .name(format!("rate-limit-service-{}", addr.port()))
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready.send(Err(StartError::Io(e)));
                        return;
                    }
                };
                let setup = runtime.block_on(async {
                    let service = Service::new(limits, &storage).await?;
                    let listener = tokio::net::TcpListener::from_std(listener)?;
                    Ok::<_, StartError>((service, listener))
                });
                let (service, listener) = match setup {
                    Ok(setup) => setup,
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                let _ = ready.send(Ok(()));
                let mut graceful = stopped.clone();
                // One service, served without a router (tonic's `router` feature pulls axum).
                let serve = tonic::transport::Server::builder().serve_with_incoming_shutdown(
                    RateLimitServiceServer::new(service),
                    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
                    async move {
                        let _ = graceful.wait_for(|s| *s).await;
                    },
                );
                runtime.block_on(async {
                    tokio::select! {
                        result = serve => if let Err(e) = result {
                            log::error!("grpc server: {e}");
                        },
                        // Graceful shutdown waits for clients to close their connections; bound it.
                        _ = async {
                            let _ = stopped.wait_for(|s| *s).await;
                            tokio::time::sleep(STOP_GRACE).await;
                        } => {}
                    }
                });
                // Dropping the runtime drops every connection task and the Redis connection.
                drop(runtime);
            })?;
        match started.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(StartError::Io(std::io::Error::other(
                    "the server thread ended during start",
                )));
            }
        }
        Ok(Server {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving and waits until the listener and every connection are closed.
    pub fn stop(mut self) {
        self.shutdown();
    }

    /// Blocks until the server ends (it only ends when stopped or on a fatal error).
    pub fn wait(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct Service {
    limits: Limits,
    limiter: AsyncRateLimiter,
    /// Unknown domains already logged, so each is logged once.
    warned_domains: Mutex<HashSet<String>>,
    /// The cause of the last Redis failure (see `RedisStorage::storage_error`).
    redis_error: Option<Arc<Mutex<String>>>,
}

impl Service {
    async fn new(limits: Limits, storage: &Storage) -> Result<Service, StartError> {
        let limitador_limits = limits.limitador_limits().map_err(StartError::Limits)?;
        let (limiter, redis_error) = match storage {
            Storage::Memory => {
                let memory = MemoryStorage::new(&limitador_limits)
                    .map_err(|e| StartError::Limits(e.to_string()))?;
                (AsyncRateLimiter::new_with_storage(Box::new(memory)), None)
            }
            Storage::Redis(url) => {
                let redis = RedisStorage::connect(url)
                    .await
                    .map_err(StartError::Redis)?;
                let error = redis.last_error();
                (
                    AsyncRateLimiter::new_with_storage(Box::new(redis)),
                    Some(error),
                )
            }
        };
        for limit in limitador_limits {
            limiter.add_limit(limit);
        }
        Ok(Service {
            limits,
            limiter,
            warned_domains: Mutex::new(HashSet::new()),
            redis_error,
        })
    }

    fn storage_unavailable(&self, e: &LimitadorError) -> Status {
        let cause = self
            .redis_error
            .as_ref()
            .and_then(|c| c.lock().ok().map(|c| c.clone()))
            .unwrap_or_else(|| e.to_string());
        Status::unavailable(format!("counter storage unavailable: {cause}"))
    }

    async fn descriptor_status(
        &self,
        domain: &str,
        entries: &[(&str, &str)],
        hits: u64,
    ) -> Result<DescriptorStatus, Status> {
        let ok = DescriptorStatus {
            code: rate_limit_response::Code::Ok as i32,
            ..Default::default()
        };
        let node = match self.limits.lookup(domain, entries) {
            Lookup::Found(node) => node,
            Lookup::NoLimit => return Ok(ok),
            Lookup::UnknownDomain => {
                if let Ok(mut warned) = self.warned_domains.lock() {
                    if warned.insert(domain.to_owned()) {
                        log::warn!("unknown domain \"{domain}\": its requests are not limited");
                    }
                }
                return Ok(ok);
            }
        };
        let Some(RateLimit::Limited {
            requests_per_unit,
            unit,
            name,
        }) = &node.rate_limit
        else {
            return Ok(ok);
        };
        let vars: HashMap<String, String> = node
            .variables
            .iter()
            .filter_map(|&p| {
                entries
                    .get(p)
                    .map(|(_, v)| (variable_name(p), (*v).to_owned()))
            })
            .collect();
        let ctx = Context::from(vars);
        let namespace = Namespace::from(node.namespace.as_str());
        let result = self
            .limiter
            .check_rate_limited_and_update(&namespace, &ctx, hits)
            .await
            .map_err(|e| match e {
                LimitadorError::StorageError(_) => self.storage_unavailable(&e),
                LimitadorError::InterpreterError(_) => {
                    log::error!("limitador: {e}");
                    Status::internal(format!("limitador: {e}"))
                }
            })?;
        let counter = result.counters.first();
        let over = result.limited;
        if over && node.shadow_mode {
            log::info!(
                "shadow mode: {domain} {entries:?} is over its limit of {requests_per_unit} per {unit:?}; allowed"
            );
        }
        Ok(DescriptorStatus {
            code: if over && !node.shadow_mode {
                rate_limit_response::Code::OverLimit
            } else {
                rate_limit_response::Code::Ok
            } as i32,
            current_limit: Some(rate_limit_response::RateLimit {
                name: name.clone().unwrap_or_default(),
                requests_per_unit: *requests_per_unit,
                unit: proto_unit(*unit) as i32,
            }),
            limit_remaining: if over {
                0
            } else {
                counter
                    .and_then(|c| c.remaining())
                    .map_or(0, |r| u32::try_from(r).unwrap_or(u32::MAX))
            },
            duration_until_reset: counter.and_then(|c| c.expires_in()).map(|d| PbDuration {
                seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                nanos: d.subsec_nanos() as i32,
            }),
            ..Default::default()
        })
    }
}

fn proto_unit(unit: Unit) -> rate_limit_response::rate_limit::Unit {
    use rate_limit_response::rate_limit::Unit as U;
    match unit {
        Unit::Second => U::Second,
        Unit::Minute => U::Minute,
        Unit::Hour => U::Hour,
        Unit::Day => U::Day,
        Unit::Week => U::Week,
        Unit::Month => U::Month,
        Unit::Year => U::Year,
    }
}

#[tonic::async_trait]
impl RateLimitService for Service {
    async fn should_rate_limit(
        &self,
        request: Request<RateLimitRequest>,
    ) -> Result<Response<RateLimitResponse>, Status> {
        let request = request.into_inner();
        if request.domain.is_empty() {
            return Err(Status::invalid_argument(
                "rate limit domain must not be empty",
            ));
        }
        if request.descriptors.is_empty() {
            return Err(Status::invalid_argument(
                "rate limit descriptor list must not be empty",
            ));
        }
        // Validate everything before counting anything.
        let mut descriptors = Vec::with_capacity(request.descriptors.len());
        for (i, descriptor) in request.descriptors.iter().enumerate() {
            if descriptor.entries.is_empty() {
                return Err(Status::invalid_argument(format!(
                    "descriptor {i} has no entries"
                )));
            }
            let mut entries = Vec::with_capacity(descriptor.entries.len());
            for (j, entry) in descriptor.entries.iter().enumerate() {
                if entry.key.is_empty() {
                    return Err(Status::invalid_argument(format!(
                        "descriptor {i} entry {j} has an empty key"
                    )));
                }
                entries.push((entry.key.as_str(), entry.value.as_str()));
            }
            // A descriptor's own hits_addend overrides the request's; 0 means 1.
            let hits = descriptor
                .hits_addend
                .as_ref()
                .map_or(u64::from(request.hits_addend), |h| h.value)
                .max(1);
            descriptors.push((entries, hits));
        }
        let mut statuses = Vec::with_capacity(descriptors.len());
        for (entries, hits) in &descriptors {
            statuses.push(
                self.descriptor_status(&request.domain, entries, *hits)
                    .await?,
            );
        }
        let over = statuses
            .iter()
            .any(|s| s.code == rate_limit_response::Code::OverLimit as i32);
        Ok(Response::new(RateLimitResponse {
            overall_code: if over {
                rate_limit_response::Code::OverLimit
            } else {
                rate_limit_response::Code::Ok
            } as i32,
            statuses,
            ..Default::default()
        }))
    }
}
