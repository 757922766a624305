//! Per-request logic: check the request against the shared buckets, count it, and reply 429 (or
//! let it through in shadow mode); add the `x-ratelimit-*` headers to the response.

use crate::config::{RateLimitConfig, REPLY_CODE};
use crate::limiter::{self, Quota};
use crate::runtime::Config;
use crate::store;
use sdk_ext::config::{load, ConfigError};
use sdk_ext::proto::Sampling;
use sdk_ext::ratelimit::StreamRequest;
use sdk_ext::{Action, Cx, HttpCx, HttpFilter, RootCx, RootFilter};
use std::cell::Cell;
use std::rc::Rc;

sdk_ext::stats! {
    /// The filter's counters, `<stat_prefix>.http_local_rate_limit.<name>`: native's four, then
    /// this filter's own.
    struct Stats {
        enabled: Counter,
        enforced: Counter,
        rate_limited: Counter,
        ok: Counter,
        shared_data_conflict: Counter,
        shared_data_error: Counter,
        descriptor_set_full: Counter,
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

    fn configure(cx: &mut RootCx<'_>, config: &[u8]) -> Result<Self, ConfigError> {
        let config = load::<RateLimitConfig>(config)?;
        for warning in &config.warnings {
            log::warn!("rate_limit: {warning}");
        }
        // Keys exist before any token is taken: proxy-wasm cannot create a key only if absent.
        let shared = cx.shared_data();
        for (key, size) in config.shared_keys() {
            if let Err(status) = store::ensure(&shared, &key, size) {
                log::warn!(
                    "rate_limit: cannot create shared data {key}: {status:?}; retried per request"
                );
            }
        }
        let seed = cx.now_nanos().unwrap_or(0x9e37_79b9_7f4a_7c15) | 1;
        Ok(RateLimitRoot {
            stats: Stats::define(cx, &config.stats_prefix),
            config,
            random: Cell::new(seed),
            error_logged: Cell::new(false),
        })
    }

    fn create_http(root: &Rc<Self>) -> RateLimit {
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

/// The per-request filter.
pub struct RateLimit {
    root: Rc<RateLimitRoot>,
    /// The values for the `x-ratelimit-*` response headers.
    quota: Option<Quota>,
}

/// Writes `value` in decimal into `buffer` and returns the digits.
fn decimal(mut value: u64, buffer: &mut [u8; 20]) -> &[u8] {
    let mut start = buffer.len();
    for (at, digit) in buffer.iter_mut().enumerate().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
        start = at;
        if value == 0 {
            break;
        }
    }
    buffer.get(start..).unwrap_or_default()
}

impl RateLimit {
    /// Counts a request let through after the clock failed.
    fn clock_failed(&self, cx: &Cx<'_>, status: sdk_ext::Status) -> Action {
        let root = &*self.root;
        root.stats.shared_data_error.increment(cx);
        root.shared_data_failed(&format!("cannot read the clock: {status:?}"));
        root.stats.ok.increment(cx);
        Action::Continue
    }
}

impl HttpFilter for RateLimit {
    fn on_request_headers(&mut self, cx: &mut HttpCx<'_>, _end_of_stream: bool) -> Action {
        let root = &*self.root;
        let config = &root.config;
        if !root.sample(config.enabled) {
            return Action::Continue;
        }
        root.stats.enabled.increment(cx);
        let now = match cx.now_nanos() {
            Ok(now) => now,
            Err(status) => return self.clock_failed(cx, status),
        };
        let verdict = limiter::check(config, &StreamRequest::new(cx), &cx.shared_data(), now);
        root.stats
            .shared_data_conflict
            .add(cx, u64::from(verdict.conflicts));
        root.stats
            .descriptor_set_full
            .add(cx, u64::from(verdict.overflows));
        if verdict.errors > 0 {
            root.stats
                .shared_data_error
                .add(cx, u64::from(verdict.errors));
            root.shared_data_failed("shared data failed");
        }
        self.quota = verdict.quota;
        if verdict.allowed {
            root.stats.ok.increment(cx);
            return Action::Continue;
        }
        root.stats.rate_limited.increment(cx);
        if !root.sample(config.enforced) {
            let headers = cx.request_headers();
            for addition in &config.request_headers_when_not_enforced {
                let _ = headers.apply(addition.action, &addition.name, &addition.value);
            }
            return Action::Continue;
        }
        root.stats.enforced.increment(cx);
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
        match cx.send_reply(config.status, REPLY_CODE, &config.reply_body, &headers) {
            Ok(()) => Action::Pause,
            Err(status) => {
                log::error!(
                    "rate_limit: cannot send the local reply ({status:?}); request let through"
                );
                Action::Continue
            }
        }
    }

    fn on_response_headers(&mut self, cx: &mut HttpCx<'_>, _end_of_stream: bool) -> Action {
        if let (true, Some(quota)) = (self.root.config.x_ratelimit_headers, self.quota) {
            let headers = cx.response_headers();
            let mut digits = [0u8; 20];
            for (name, value) in [
                ("x-ratelimit-limit", quota.limit),
                ("x-ratelimit-remaining", quota.remaining),
                ("x-ratelimit-reset", quota.reset),
            ] {
                let _ = headers.add(name, decimal(value, &mut digits));
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
