//! `rate-limit-service --grpc 127.0.0.1:PORT --config limits.yaml [--redis redis://HOST:PORT]`

use rate_limit_service::{load_limits, Server, Storage};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str =
    "usage: rate-limit-service --grpc ADDR:PORT --config LIMITS.yaml [--redis redis://HOST:PORT]

Envoy's rate limit service (envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit).
  --grpc ADDR:PORT    where to serve gRPC (plaintext HTTP/2)
  --config FILE       the limits, in the format of Envoy's reference rate limit service
  --redis URL         keep the counters in this Redis (default: in memory)";

struct Args {
    grpc: String,
    config: PathBuf,
    redis: Option<String>,
}

/// `Ok(None)`: `--help`.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let (mut grpc, mut config, mut redis) = (None, None, None);
    while let Some(arg) = args.next() {
        let slot = match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--grpc" => &mut grpc,
            "--config" => &mut config,
            "--redis" => &mut redis,
            other => return Err(format!("unknown argument {other:?}")),
        };
        let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
        if slot.replace(value).is_some() {
            return Err(format!("{arg} given twice"));
        }
    }
    Ok(Some(Args {
        grpc: grpc.ok_or("--grpc is required")?,
        config: config.ok_or("--config is required")?.into(),
        redis,
    }))
}

/// A tiny stderr logger: no subscriber crates for one line per event.
struct StderrLog;

impl log::Log for StderrLog {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        // The service's own info lines; only warnings and errors of the crates under it.
        metadata.level() <= log::Level::Warn
            || (metadata.level() <= log::Level::Info
                && metadata.target().starts_with("rate_limit_service"))
    }
    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            eprintln!(
                "rate-limit-service: {}: {}",
                record.level().as_str().to_ascii_lowercase(),
                record.args()
            );
        }
    }
    fn flush(&self) {}
}

fn main() -> ExitCode {
    static LOGGER: StderrLog = StderrLog;
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
    let fail = |code: u8, msg: String| {
        eprintln!("rate-limit-service: {msg}");
        ExitCode::from(code)
    };
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => return fail(2, format!("{e} (see --help)")),
    };
    let limits = match load_limits(&args.config) {
        Ok(limits) => limits,
        Err(e) => return fail(2, e.to_string()),
    };
    let listener = match TcpListener::bind(&args.grpc) {
        Ok(l) => l,
        Err(e) => return fail(2, format!("--grpc {}: {e}", args.grpc)),
    };
    // The signal handlers go in before the server announces itself: a SIGTERM that follows
    // "listening" must stop it cleanly, not kill it with the default action.
    let signals = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .and_then(|runtime| {
            let (term, interrupt) = runtime.block_on(async {
                use tokio::signal::unix::{signal, SignalKind};
                Ok::<_, std::io::Error>((
                    signal(SignalKind::terminate())?,
                    signal(SignalKind::interrupt())?,
                ))
            })?;
            Ok((runtime, term, interrupt))
        });
    let storage = args.redis.map_or(Storage::Memory, Storage::Redis);
    let domains = limits.domains().collect::<Vec<_>>().join(", ");
    let label = storage.to_string();
    let server = match Server::start(listener, limits, storage) {
        Ok(server) => server,
        // Redis unreachable (or an I/O failure): not a usage error.
        Err(e) => return fail(1, e.to_string()),
    };
    eprintln!(
        "rate-limit-service: listening on {} (domains: {domains}, storage: {label})",
        server.addr()
    );
    // Serve until SIGTERM or ctrl-c, then stop cleanly.
    match signals {
        Ok((runtime, mut term, mut interrupt)) => {
            runtime.block_on(async {
                tokio::select! {
                    _ = term.recv() => {},
                    _ = interrupt.recv() => {},
                }
            });
        }
        Err(e) => {
            log::warn!("cannot wait for signals ({e}); serving until killed");
            server.wait();
            return ExitCode::FAILURE;
        }
    }
    server.stop();
    ExitCode::SUCCESS
}
