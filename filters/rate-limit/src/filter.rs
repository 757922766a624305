//! Per-request logic: check the request against the shared buckets, count it, and reply 429 (or
//! let it through in shadow mode); add the `x-ratelimit-*` headers to the response.

use crate::config::{Config, RateLimitConfig, REPLY_CODE};
use crate::descriptors::Request;
use crate::limiter::{self, Quota};
use crate::store::{self, HostStore};
use sdk_ext::config::{load, ConfigError};
use sdk_ext::headers::{REQUEST_HEADERS, RESPONSE_HEADERS};
use sdk_ext::matcher::{HostRequest, RequestView};
use sdk_ext::metrics::Counter;
use sdk_ext::proto::Sampling;
use sdk_ext::{clock, properties, reply, Action, HttpFilter, RootFilter};
use std::cell::Cell;
use std::rc::Rc;

/// The filter's counters: native's four, then this filter's own.
struct Stats {
    enabled: Option<Counter>,
    enforced: Option<Counter>,
    rate_limited: Option<Counter>,
    ok: Option<Counter>,
    shared_data_conflict: Option<Counter>,
    shared_data_error: Option<Counter>,
    descriptor_set_full: Option<Counter>,
}

impl Stats {
    fn define(prefix: &str) -> Stats {
        let counter = |name: &str| {
            let full = format!("{prefix}.{name}");
            Counter::define(&full)
                .map_err(|status| log::warn!("rate_limit: cannot define {full}: {status:?}"))
                .ok()
        };
        Stats {
            enabled: counter("enabled"),
            enforced: counter("enforced"),
            rate_limited: counter("rate_limited"),
            ok: counter("ok"),
            shared_data_conflict: counter("shared_data_conflict"),
            shared_data_error: counter("shared_data_error"),
            descriptor_set_full: counter("descriptor_set_full"),
        }
    }
}

fn add(counter: Option<Counter>, amount: u32) {
    if let Some(counter) = counter {
        counter.add(u64::from(amount));
    }
}

/// The per-VM root: the validated configuration, the counters, and the sampling state.
pub struct RateLimitRoot {
    config: Config,
    stats: Stats,
    /// xorshift64 state for `filter_enabled`/`filter_enforced` fractions.
    random: Cell<u64>,
    /// Whether a shared-data failure was already logged (later ones are only counted).
    error_logged: Cell<bool>,
}

impl RootFilter for RateLimitRoot {
    const NAME: &'static str = "rate_limit";
    type Http = RateLimit;

    fn configure(config: &[u8]) -> Result<Self, ConfigError> {
        let config = load::<RateLimitConfig>(config)?;
        for warning in &config.warnings {
            log::warn!("rate_limit: {warning}");
        }
        // Keys exist before any token is taken: proxy-wasm cannot create a key only if absent.
        for (key, size) in config.shared_keys() {
            if let Err(status) = store::ensure(&HostStore, &key, size) {
                log::warn!(
                    "rate_limit: cannot create shared data {key}: {status:?}; retried per request"
                );
            }
        }
        let seed = clock::now_nanos().unwrap_or(0x9e37_79b9_7f4a_7c15) | 1;
        Ok(RateLimitRoot {
            stats: Stats::define(&config.stats_prefix),
            config,
            random: Cell::new(seed),
            error_logged: Cell::new(false),
        })
    }

    fn create_http(root: &Rc<Self>, _context_id: u32) -> RateLimit {
        RateLimit {
            root: root.clone(),
            quota: None,
        }
    }
}

impl RateLimitRoot {
    fn sample(&self, sampling: Sampling) -> bool {
        if !sampling.is_random() {
            return sampling.sample(0);
        }
        let mut x = self.random.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.random.set(x);
        sampling.sample(x)
    }

    fn shared_data_failed(&self, what: &str) {
        if !self.error_logged.replace(true) {
            log::error!(
                "rate_limit: {what}; requests pass unlimited while it lasts (counted in {}.shared_data_error)",
                self.config.stats_prefix
            );
        }
    }
}

/// The request as Envoy exposes it to the filter.
struct EnvoyRequest;

impl RequestView for EnvoyRequest {
    fn path(&self) -> Option<Vec<u8>> {
        HostRequest.path()
    }
    fn header(&self, name: &str) -> Option<Vec<u8>> {
        HostRequest.header(name)
    }
}

impl Request for EnvoyRequest {
    fn remote_address(&self) -> Option<Vec<u8>> {
        properties::get(&["source", "address"]).ok().flatten()
    }
}

/// The per-request filter.
pub struct RateLimit {
    root: Rc<RateLimitRoot>,
    /// The values for the `x-ratelimit-*` response headers.
    quota: Option<Quota>,
}

/// Writes `value` in decimal into `buffer` and returns the digits.
fn decimal(mut value: u64, buffer: &mut [u8; 20]) -> &[u8] {
    let mut start = buffer.len();
    loop {
        start -= 1;
        buffer[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            return &buffer[start..];
        }
    }
}

impl HttpFilter for RateLimit {
    fn on_request_headers(&mut self, _end_of_stream: bool) -> Action {
        let root = &*self.root;
        let config = &root.config;
        if !root.sample(config.enabled) {
            return Action::Continue;
        }
        add(root.stats.enabled, 1);
        let now = match clock::now_nanos() {
            Ok(now) => now,
            Err(status) => {
                add(root.stats.shared_data_error, 1);
                root.shared_data_failed(&format!("cannot read the clock: {status:?}"));
                add(root.stats.ok, 1);
                return Action::Continue;
            }
        };
        let verdict = limiter::check(config, &EnvoyRequest, &HostStore, now);
        add(root.stats.shared_data_conflict, verdict.conflicts);
        add(root.stats.descriptor_set_full, verdict.overflows);
        if verdict.errors > 0 {
            add(root.stats.shared_data_error, verdict.errors);
            root.shared_data_failed("shared data failed");
        }
        self.quota = verdict.quota;
        if verdict.allowed {
            add(root.stats.ok, 1);
            return Action::Continue;
        }
        add(root.stats.rate_limited, 1);
        if !root.sample(config.enforced) {
            for addition in &config.request_headers_when_not_enforced {
                let _ = REQUEST_HEADERS.apply(addition.action, &addition.name, &addition.value);
            }
            return Action::Continue;
        }
        add(root.stats.enforced, 1);
        let mut digits = [0u8; 20];
        let retry_after = decimal(
            self.quota.map_or(1, |quota| quota.reset.max(1)),
            &mut digits,
        );
        let mut headers: Vec<(&str, &[u8])> = Vec::with_capacity(config.reply_headers.len() + 1);
        headers.extend(
            config
                .reply_headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_slice())),
        );
        headers.push(("retry-after", retry_after));
        match reply::send(config.status, REPLY_CODE, &config.reply_body, &headers) {
            Ok(()) => Action::Pause,
            Err(status) => {
                log::error!(
                    "rate_limit: cannot send the local reply ({status:?}); request let through"
                );
                Action::Continue
            }
        }
    }

    fn on_response_headers(&mut self, _end_of_stream: bool) -> Action {
        if let (true, Some(quota)) = (self.root.config.x_ratelimit_headers, self.quota) {
            let mut digits = [0u8; 20];
            for (name, value) in [
                ("x-ratelimit-limit", quota.limit),
                ("x-ratelimit-remaining", quota.remaining),
                ("x-ratelimit-reset", quota.reset),
            ] {
                let _ = RESPONSE_HEADERS.add(name, decimal(value, &mut digits));
            }
        }
        Action::Continue
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn decimals() {
        let mut buffer = [0u8; 20];
        assert_eq!(super::decimal(0, &mut buffer), b"0");
        assert_eq!(super::decimal(429, &mut buffer), b"429");
        assert_eq!(
            super::decimal(u64::MAX, &mut buffer),
            u64::MAX.to_string().as_bytes()
        );
    }
}
