//! WASI preview 1 as Envoy gives it to a filter: stdout and stderr become log lines (info and
//! error, one per write, a trailing newline dropped), the clocks are the host's controllable
//! clock, and there is no filesystem.

use crate::host::Shared;
use crate::state::{LogEntry, LogLevel, SharedLogs};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtxBuilder};
use wasmtime_wasi_io::bytes::Bytes;
use wasmtime_wasi_io::poll::Pollable;
use wasmtime_wasi_io::streams::{OutputStream, StreamResult};

/// Most bytes of stdout and stderr kept for `Plugin::stdout`/`stderr`.
const CAPTURE_BYTES: usize = 1 << 20;

/// A stdout or stderr that logs each write and keeps the raw bytes.
#[derive(Clone)]
pub(crate) struct LogPipe {
    level: LogLevel,
    min_level: LogLevel,
    logs: SharedLogs,
    captured: Arc<Mutex<Vec<u8>>>,
}

impl LogPipe {
    fn new(level: LogLevel, min_level: LogLevel, logs: SharedLogs) -> LogPipe {
        LogPipe {
            level,
            min_level,
            logs,
            captured: Arc::default(),
        }
    }

    fn write_bytes(&self, bytes: &[u8]) {
        if let Ok(mut captured) = self.captured.lock() {
            let room = CAPTURE_BYTES.saturating_sub(captured.len());
            captured.extend_from_slice(&bytes[..bytes.len().min(room)]);
        }
        let line = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        if line.is_empty() || self.level < self.min_level {
            return;
        }
        if let Ok(mut logs) = self.logs.lock() {
            logs.push(LogEntry {
                level: self.level,
                message: String::from_utf8_lossy(line).into_owned(),
            });
        }
    }

    /// Everything written so far (up to 1 MiB).
    pub(crate) fn contents(&self) -> Vec<u8> {
        self.captured
            .lock()
            .map(|bytes| bytes.clone())
            .unwrap_or_default()
    }
}

impl IsTerminal for LogPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi_io::async_trait]
impl Pollable for LogPipe {
    async fn ready(&mut self) {}
}

impl OutputStream for LogPipe {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.write_bytes(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for LogPipe {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.write_bytes(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

struct WallClock(Arc<Shared>);

impl HostWallClock for WallClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }

    fn now(&self) -> Duration {
        Duration::from_nanos(self.0.now_nanos())
    }
}

struct MonotonicClock(Arc<Shared>);

impl HostMonotonicClock for MonotonicClock {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        self.0.monotonic().as_nanos() as u64
    }
}

/// The WASI context of one VM, and its stdout and stderr.
pub(crate) fn context(
    shared: &Arc<Shared>,
    logs: &SharedLogs,
    min_level: LogLevel,
    environment: &[(String, String)],
) -> (WasiP1Ctx, LogPipe, LogPipe) {
    let stdout = LogPipe::new(LogLevel::Info, min_level, logs.clone());
    let stderr = LogPipe::new(LogLevel::Error, min_level, logs.clone());
    let ctx = WasiCtxBuilder::new()
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .envs(environment)
        .wall_clock(WallClock(shared.clone()))
        .monotonic_clock(MonotonicClock(shared.clone()))
        .build_p1();
    (ctx, stdout, stderr)
}
