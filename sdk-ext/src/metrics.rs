//! Typed metrics: define once at configure time, then update with one hostcall each.

use crate::abi;
use crate::host::{check, Status};

fn define(kind: u32, name: &str) -> Result<u32, Status> {
    let mut id: u32 = 0;
    check(unsafe { abi::proxy_define_metric(kind, name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

/// A counter (`proxy_define_metric` type 0). Envoy shows it in stats under the given name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter(u32);

impl Counter {
    /// Defines the counter `name`.
    pub fn define(name: &str) -> Result<Counter, Status> {
        define(0, name).map(Counter)
    }

    /// Adds one. A failure is ignored: a metric must never fail a request.
    pub fn increment(self) {
        self.add(1);
    }

    /// Adds `amount` (Envoy rejects 0).
    pub fn add(self, amount: u64) {
        if amount > 0 {
            let _ =
                unsafe { abi::proxy_increment_metric(self.0, amount.min(i64::MAX as u64) as i64) };
        }
    }

    /// The current value.
    pub fn value(self) -> Result<u64, Status> {
        let mut value: u64 = 0;
        check(unsafe { abi::proxy_get_metric(self.0, &mut value) })?;
        Ok(value)
    }
}

/// A gauge (`proxy_define_metric` type 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gauge(u32);

impl Gauge {
    /// Defines the gauge `name`.
    pub fn define(name: &str) -> Result<Gauge, Status> {
        define(1, name).map(Gauge)
    }

    /// Sets the value.
    pub fn set(self, value: u64) {
        let _ = unsafe { abi::proxy_record_metric(self.0, value) };
    }

    /// Moves the value by `delta`.
    pub fn add(self, delta: i64) {
        let _ = unsafe { abi::proxy_increment_metric(self.0, delta) };
    }
}

/// A histogram (`proxy_define_metric` type 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Histogram(u32);

impl Histogram {
    /// Defines the histogram `name`.
    pub fn define(name: &str) -> Result<Histogram, Status> {
        define(2, name).map(Histogram)
    }

    /// Records one value.
    pub fn record(self, value: u64) {
        let _ = unsafe { abi::proxy_record_metric(self.0, value) };
    }
}
