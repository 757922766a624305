//! Token bucket arithmetic, pure and host-free.
//!
//! The model is native local_ratelimit's (Envoy's `AtomicTokenBucketImpl`, after folly's
//! `TokenBucket`): tokens refill continuously at `tokens_per_fill / fill_interval`, up to
//! `max_tokens`, and a request takes one whole token. The whole state is one instant, `empty_at`:
//! the time at which the bucket was (or will be) empty. At `now` the bucket holds
//! `min(max_tokens, (now - empty_at) / cost)` tokens, where `cost` is the time one token takes to
//! refill. Taking a token moves `empty_at` forward by `cost`. One `u64` of state needs no timer
//! and no refill step, and a read-modify-write of it is one CAS in shared data.
//!
//! Times are nanoseconds since the Unix epoch from the host clock. `empty_at = 0` is a full
//! bucket, so a fresh shared-data value of zeros needs no initialisation.

use std::time::Duration;

/// A bucket takes at most this long to fill from empty, so every sum here fits in a `u64`.
pub const MAX_FULL_SPAN: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// One second in nanoseconds.
const SECOND: u64 = 1_000_000_000;

/// A state this far ahead of the clock means the clock stepped back, not that another worker read
/// it a moment later: the state is moved back to `now` so the bucket refills from there instead of
/// staying empty for the length of the step.
const CLOCK_STEP: u64 = SECOND;

/// A bucket's settings, as `type.v3.TokenBucket`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    /// Capacity in tokens (≥ 1).
    pub max_tokens: u64,
    /// Tokens added per `fill_interval` (≥ 1).
    pub tokens_per_fill: u64,
    /// The fill interval in nanoseconds (≥ 1).
    pub fill_interval_nanos: u64,
    /// Nanoseconds per token: `fill_interval / tokens_per_fill`, rounded up so that the bucket
    /// never refills faster than configured.
    cost: u64,
    /// Nanoseconds from empty to full: `max_tokens * cost`.
    full_span: u64,
}

/// What taking a token found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Whether a token was taken.
    pub allowed: bool,
    /// The state to write back (`None` when nothing changes): the token taken, or a state moved
    /// back after a clock step.
    pub new_empty_at: Option<u64>,
    /// Whole tokens left after this request (`x-ratelimit-remaining`).
    pub remaining: u64,
    /// Seconds until the next whole token, 0 when one is left (`x-ratelimit-reset`).
    pub reset_seconds: u64,
}

impl Bucket {
    /// A bucket, or why the settings are unusable.
    pub fn new(
        max_tokens: u64,
        tokens_per_fill: u64,
        fill_interval: Duration,
    ) -> Result<Bucket, String> {
        if max_tokens == 0 {
            return Err("max_tokens must be at least 1".into());
        }
        if tokens_per_fill == 0 {
            return Err("tokens_per_fill must be at least 1".into());
        }
        let fill_interval_nanos = u64::try_from(fill_interval.as_nanos())
            .ok()
            .filter(|&nanos| nanos > 0 && nanos <= MAX_FULL_SPAN.as_nanos() as u64)
            .ok_or("fill_interval must be more than 0 and at most 10 years")?;
        let cost = fill_interval_nanos.div_ceil(tokens_per_fill);
        let full_span = max_tokens
            .checked_mul(cost)
            .filter(|&span| span <= MAX_FULL_SPAN.as_nanos() as u64)
            .ok_or_else(|| {
                format!(
                    "the bucket would take more than 10 years to fill ({max_tokens} tokens, \
                     {tokens_per_fill} per fill_interval)"
                )
            })?;
        Ok(Bucket {
            max_tokens,
            tokens_per_fill,
            fill_interval_nanos,
            cost,
            full_span,
        })
    }

    /// Nanoseconds one token takes to refill.
    pub fn cost(&self) -> u64 {
        self.cost
    }

    /// Whether this bucket refills more slowly than `other` (Envoy consumes the slowest first).
    pub fn fills_slower_than(&self, other: &Bucket) -> bool {
        // tokens_per_fill / fill_interval compared without division.
        u128::from(self.tokens_per_fill) * u128::from(other.fill_interval_nanos)
            < u128::from(other.tokens_per_fill) * u128::from(self.fill_interval_nanos)
    }

    /// The instant from which tokens count: `empty_at`, but no earlier than a full bucket and no
    /// later than `now` (a state from a clock that has since gone back counts as empty now,
    /// which may under-admit for one token's time but never over-admits).
    fn base(&self, empty_at: u64, now: u64) -> u64 {
        empty_at.max(now.saturating_sub(self.full_span)).min(now)
    }

    /// Whether the bucket is full at `now`: its state then says nothing a fresh bucket would not.
    pub fn is_full(&self, empty_at: u64, now: u64) -> bool {
        now - self.base(empty_at, now) >= self.full_span
    }

    /// Whole tokens in the bucket at `now`.
    pub fn tokens(&self, empty_at: u64, now: u64) -> u64 {
        (now - self.base(empty_at, now)) / self.cost
    }

    /// Tries to take one token at `now` from a bucket in state `empty_at`.
    pub fn take(&self, empty_at: u64, now: u64) -> Outcome {
        let base = self.base(empty_at, now);
        let filled = now - base;
        if filled < self.cost {
            return Outcome {
                allowed: false,
                new_empty_at: (empty_at > now.saturating_add(CLOCK_STEP)).then_some(now),
                remaining: 0,
                reset_seconds: (self.cost - filled).div_ceil(SECOND),
            };
        }
        let new_empty_at = base + self.cost;
        let left = filled - self.cost;
        let remaining = left / self.cost;
        let reset_seconds = if remaining > 0 {
            0
        } else {
            (self.cost - left).div_ceil(SECOND)
        };
        Outcome {
            allowed: true,
            new_empty_at: Some(new_empty_at),
            remaining,
            reset_seconds,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000 * SECOND;

    fn bucket(max: u64, per_fill: u64, interval: Duration) -> Bucket {
        Bucket::new(max, per_fill, interval).unwrap()
    }

    /// Takes `count` tokens at `now`, returning how many were allowed and the final state.
    fn burst(bucket: &Bucket, mut state: u64, now: u64, count: u32) -> (u32, u64) {
        let mut allowed = 0;
        for _ in 0..count {
            let outcome = bucket.take(state, now);
            if let Some(next) = outcome.new_empty_at {
                state = next;
                allowed += 1;
            }
        }
        (allowed, state)
    }

    #[test]
    fn a_fresh_bucket_is_full_and_a_burst_takes_exactly_max_tokens() {
        let b = bucket(5, 1, Duration::from_secs(10));
        assert!(b.is_full(0, T0));
        assert_eq!(b.tokens(0, T0), 5);
        let (allowed, state) = burst(&b, 0, T0, 20);
        assert_eq!(allowed, 5);
        assert_eq!(b.tokens(state, T0), 0);
        assert!(!b.is_full(state, T0));
    }

    #[test]
    fn remaining_and_reset_follow_native() {
        // Native with max 3, 1 per 10s: remaining 2, 1, 0 with reset 0, 0, 10, then 429s with 10.
        let b = bucket(3, 1, Duration::from_secs(10));
        let mut state = 0;
        let mut seen = Vec::new();
        for _ in 0..4 {
            let outcome = b.take(state, T0);
            state = outcome.new_empty_at.unwrap_or(state);
            seen.push((outcome.allowed, outcome.remaining, outcome.reset_seconds));
        }
        assert_eq!(
            seen,
            [(true, 2, 0), (true, 1, 0), (true, 0, 10), (false, 0, 10)]
        );
        // 2.5 s later a quarter token has refilled: the next one is 7.5 s away, shown as 8.
        let outcome = b.take(state, T0 + 2_500_000_000);
        assert_eq!((outcome.allowed, outcome.reset_seconds), (false, 8));
    }

    #[test]
    fn fast_buckets_report_a_one_second_reset() {
        // 3 tokens a second: the next token is a third of a second away, which rounds up to 1.
        let b = bucket(2, 3, Duration::from_secs(1));
        let (_, state) = burst(&b, 0, T0, 2);
        assert_eq!(b.take(state, T0).reset_seconds, 1);
    }

    #[test]
    fn partial_refill_adds_whole_tokens_only_when_they_are_complete() {
        let b = bucket(10, 2, Duration::from_secs(1)); // a token every 0.5 s
        let (_, empty) = burst(&b, 0, T0, 10);
        assert_eq!(b.tokens(empty, T0 + 499_999_999), 0);
        assert_eq!(b.tokens(empty, T0 + 500_000_000), 1);
        assert_eq!(b.tokens(empty, T0 + 1_750_000_000), 3);
        // Taking one at 1.75 s leaves 2 and keeps the quarter token already refilled.
        let outcome = b.take(empty, T0 + 1_750_000_000);
        assert_eq!(outcome.remaining, 2);
        let state = outcome.new_empty_at.unwrap();
        assert_eq!(b.tokens(state, T0 + 2_000_000_000), 3);
    }

    #[test]
    fn a_long_idle_refills_to_max_and_no_further() {
        let b = bucket(4, 1, Duration::from_secs(1));
        let (_, empty) = burst(&b, 0, T0, 4);
        let later = T0 + 3600 * SECOND;
        assert!(b.is_full(empty, later));
        assert_eq!(b.tokens(empty, later), 4);
        assert_eq!(burst(&b, empty, later, 10).0, 4);
    }

    #[test]
    fn a_clock_that_goes_back_never_adds_tokens() {
        let b = bucket(2, 1, Duration::from_secs(1));
        let (_, empty) = burst(&b, 0, T0, 2);
        // Another worker that read the clock a moment earlier sees an empty bucket, and leaves it.
        let outcome = b.take(empty, T0 - 1000);
        assert_eq!((outcome.allowed, outcome.new_empty_at), (false, None));
        // After a step back of an hour the state moves back to the new clock...
        let earlier = T0 - 3600 * SECOND;
        let outcome = b.take(empty, earlier);
        assert_eq!(
            (outcome.allowed, outcome.new_empty_at),
            (false, Some(earlier))
        );
        // ...and refills from there, one token a second, not after an hour.
        assert!(!b.take(earlier, earlier + 999_999_999).allowed);
        assert!(b.take(earlier, earlier + SECOND).allowed);
    }

    #[test]
    fn uneven_rates_round_the_cost_up() {
        let b = bucket(3, 3, Duration::from_secs(1));
        assert_eq!(b.cost(), 333_333_334);
        let (allowed, _) = burst(&b, 0, T0, 10);
        assert_eq!(allowed, 3, "rounding never shrinks the capacity");
    }

    #[test]
    fn fill_rates_order_buckets() {
        let slow = bucket(10, 1, Duration::from_secs(60));
        let fast = bucket(1, 10, Duration::from_secs(1));
        assert!(slow.fills_slower_than(&fast));
        assert!(!fast.fills_slower_than(&slow));
        assert!(!slow.fills_slower_than(&slow));
    }

    #[test]
    fn unusable_settings_are_explained() {
        assert!(Bucket::new(0, 1, Duration::from_secs(1)).is_err());
        assert!(Bucket::new(1, 0, Duration::from_secs(1)).is_err());
        assert!(Bucket::new(1, 1, Duration::ZERO).is_err());
        let err = Bucket::new(u64::from(u32::MAX), 1, Duration::from_secs(3600)).unwrap_err();
        assert!(err.contains("10 years"), "{err}");
    }
}
