//! A `log` backend on `proxy_log` that never panics: a failed log call is dropped.

use crate::host::{Host, WasmHost};
use log::{Level, LevelFilter, Log, Metadata, Record};
use std::fmt::Write;

struct ProxyLogger;

static LOGGER: ProxyLogger = ProxyLogger;

/// Installs the logger once per VM, at `max_level`. Later calls only change the level.
pub fn init(max_level: LevelFilter) {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(max_level);
}

/// Maps a `log` level to the proxy-wasm level number.
fn proxy_level(level: Level) -> u32 {
    match level {
        Level::Trace => 0,
        Level::Debug => 1,
        Level::Info => 2,
        Level::Warn => 3,
        Level::Error => 4,
    }
}

/// Maps the host's log level number (`proxy_get_log_level`) to a `log` filter.
pub fn level_filter(level: u32) -> LevelFilter {
    match level {
        0 => LevelFilter::Trace,
        1 => LevelFilter::Debug,
        2 => LevelFilter::Info,
        3 => LevelFilter::Warn,
        4 | 5 => LevelFilter::Error,
        _ => LevelFilter::Off,
    }
}

impl Log for ProxyLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let message = match record.args().as_str() {
            Some(text) => std::borrow::Cow::Borrowed(text),
            None => {
                let mut text = String::new();
                let _ = write!(text, "{}", record.args());
                std::borrow::Cow::Owned(text)
            }
        };
        WasmHost.log(proxy_level(record.level()), &message);
    }

    fn flush(&self) {}
}
