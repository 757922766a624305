//! Metrics, declared once per filter with [`stats!`](macro@crate::stats), as Envoy declares a filter's
//! `ALL_X_STATS`:
//!
//! ```
//! sdk_ext::stats! {
//!     /// The filter's counters.
//!     pub struct Stats {
//!         allowed: Counter,
//!         denied: Counter,
//!         waiting: Gauge,
//!     }
//! }
//! ```
//!
//! `Stats::define(&cx, "my_filter")` defines `my_filter.allowed`, ... One rule for a metric the
//! host refuses to define: it is logged once and counts nothing; a metric never fails a
//! configuration or a request.

use crate::cx::Cx;
use crate::host::{MetricType, Status};

/// Sentinel id of a metric the host refused to define.
const UNDEFINED: u32 = u32::MAX;

fn define(cx: &Cx<'_>, kind: MetricType, name: &str) -> u32 {
    match cx.host().define_metric(kind, name) {
        Ok(id) if id != UNDEFINED => id,
        Ok(_) | Err(_) => {
            log::warn!("cannot define the metric {name}; it counts nothing");
            UNDEFINED
        }
    }
}

/// A counter (`proxy_define_metric` type 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter(u32);

impl Counter {
    /// Defines the counter `name`.
    pub fn define(cx: &Cx<'_>, name: &str) -> Counter {
        Counter(define(cx, MetricType::Counter, name))
    }

    /// Adds one.
    pub fn increment(self, cx: &Cx<'_>) {
        self.add(cx, 1);
    }

    /// Adds `amount` (Envoy rejects 0, so 0 makes no hostcall).
    pub fn add(self, cx: &Cx<'_>, amount: u64) {
        if amount > 0 && self.0 != UNDEFINED {
            let _ = cx
                .host()
                .increment_metric(self.0, amount.min(i64::MAX as u64) as i64);
        }
    }

    /// The current value.
    pub fn value(self, cx: &Cx<'_>) -> Result<u64, Status> {
        if self.0 == UNDEFINED {
            return Err(Status::NotFound);
        }
        cx.host().metric(self.0)
    }
}

/// A gauge (`proxy_define_metric` type 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gauge(u32);

impl Gauge {
    /// Defines the gauge `name`.
    pub fn define(cx: &Cx<'_>, name: &str) -> Gauge {
        Gauge(define(cx, MetricType::Gauge, name))
    }

    /// Sets the value.
    pub fn set(self, cx: &Cx<'_>, value: u64) {
        if self.0 != UNDEFINED {
            let _ = cx.host().record_metric(self.0, value);
        }
    }

    /// Moves the value by `delta`.
    pub fn add(self, cx: &Cx<'_>, delta: i64) {
        if delta != 0 && self.0 != UNDEFINED {
            let _ = cx.host().increment_metric(self.0, delta);
        }
    }
}

/// A histogram (`proxy_define_metric` type 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Histogram(u32);

impl Histogram {
    /// Defines the histogram `name`.
    pub fn define(cx: &Cx<'_>, name: &str) -> Histogram {
        Histogram(define(cx, MetricType::Histogram, name))
    }

    /// Records one value.
    pub fn record(self, cx: &Cx<'_>, value: u64) {
        if self.0 != UNDEFINED {
            let _ = cx.host().record_metric(self.0, value);
        }
    }
}

/// Declares a filter's metrics once: a struct with one field per metric and a
/// `define(cx, prefix)` that names each `<prefix>.<field>`. See the [module docs](self).
#[macro_export]
macro_rules! stats {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $( $(#[$field_meta:meta])* $field:ident : $kind:ident ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy)]
        $vis struct $name {
            $( $(#[$field_meta])* pub $field: $crate::stats::$kind, )*
        }

        impl $name {
            /// Defines every metric as `<prefix>.<field name>`.
            $vis fn define(cx: &$crate::Cx<'_>, prefix: &str) -> $name {
                $name {
                    $( $field: $crate::stats::$kind::define(
                        cx,
                        &::std::format!("{}.{}", prefix, ::std::stringify!($field)),
                    ), )*
                }
            }
        }
    };
}
