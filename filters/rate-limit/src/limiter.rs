//! The decision for one request, as native local_ratelimit makes it: the buckets its descriptors
//! select are taken from slowest-filling first, and the first that is empty limits the request;
//! then the default bucket, when no descriptor matched or `always_consume_default_token_bucket`.
//! Tokens already taken from earlier buckets stay taken, as in native.

use crate::bucket::{Bucket, Outcome};
use crate::config::Config;
use crate::descriptors::{select, Entry, Request, Target};
use crate::store::{self, Failure, Slot, Store};

/// The `x-ratelimit-*` values of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// `x-ratelimit-limit`: the bucket's `max_tokens`.
    pub limit: u64,
    /// `x-ratelimit-remaining`: whole tokens left.
    pub remaining: u64,
    /// `x-ratelimit-reset` (and `retry-after` when limited): seconds to the next token.
    pub reset: u64,
}

/// What happened to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Verdict {
    /// Whether every bucket had a token.
    pub allowed: bool,
    /// The limiting bucket's values, or those of the first bucket taken from; `None` when no
    /// bucket applied.
    pub quota: Option<Quota>,
    /// CAS races lost (and retried).
    pub conflicts: u32,
    /// Shared-data failures, each of which let the request through that bucket (fail open).
    pub errors: u32,
    /// Wildcard descriptors that found their set full and used the overflow bucket.
    pub overflows: u32,
}

/// A bucket a request takes from.
struct Selected<'a> {
    bucket: &'a Bucket,
    /// `None` for the default bucket.
    target: Option<Target>,
}

fn quota(bucket: &Bucket, outcome: &Outcome) -> Quota {
    Quota {
        limit: bucket.max_tokens,
        remaining: outcome.remaining,
        reset: outcome.reset_seconds,
    }
}

impl Verdict {
    /// Takes a token from one bucket: `Ok` with its values when taken (`Ok(None)` when a host
    /// failure let the request through without one), `Err` with its values when limited.
    fn take(
        &mut self,
        config: &Config,
        store: &impl Store,
        selected: &Selected<'_>,
        now: u64,
    ) -> Result<Option<Quota>, Quota> {
        let bucket = selected.bucket;
        let conflicts = &mut self.conflicts;
        let result = match selected.target {
            None => match &config.default_limit {
                Some(default) => store::take(store, &default.key, bucket, now, conflicts),
                None => return Ok(None),
            },
            Some(Target::Static(index)) => match config.descriptors.get(index) {
                Some(descriptor) => {
                    store::take(store, &descriptor.limit.key, bucket, now, conflicts)
                }
                None => return Ok(None),
            },
            Some(Target::Dynamic { index, identity }) => {
                let Some(wildcard) = config.wildcards.get(index) else {
                    return Ok(None);
                };
                let key =
                    store::set_key(&wildcard.table_key, store::set_of(identity, wildcard.sets));
                match store::take_in_set(
                    store,
                    &key,
                    wildcard.ways,
                    bucket,
                    identity,
                    now,
                    conflicts,
                ) {
                    Ok(Slot::Taken(outcome)) => Ok(outcome),
                    Ok(Slot::SetFull) => {
                        self.overflows += 1;
                        store::take(store, &wildcard.overflow.key, bucket, now, conflicts)
                    }
                    Err(failure) => Err(failure),
                }
            }
        };
        match result {
            Ok(outcome) if outcome.allowed => Ok(Some(quota(bucket, &outcome))),
            Ok(outcome) => Err(quota(bucket, &outcome)),
            // Limited: a token may still be there, but taking it could over-admit.
            Err(Failure::Contention) => Err(Quota {
                limit: bucket.max_tokens,
                remaining: 0,
                reset: bucket.cost().div_ceil(1_000_000_000),
            }),
            // Fail open: a broken store must not take the service down with it.
            Err(Failure::Host(_)) => {
                self.errors += 1;
                Ok(None)
            }
        }
    }
}

/// Decides one request at `now` (nanoseconds since the epoch).
pub fn check(config: &Config, request: &impl Request, store: &impl Store, now: u64) -> Verdict {
    let mut verdict = Verdict::default();
    let mut selected: Vec<Selected<'_>> = Vec::new();
    // Native builds descriptors only when some are configured; they would match nothing else.
    if !(config.descriptors.is_empty() && config.wildcards.is_empty()) {
        let mut entries: Vec<Entry<'_>> = Vec::new();
        for policy in &config.policies {
            if !policy.populate(request, &mut entries) {
                continue;
            }
            let Some(target) = select(config, &entries) else {
                continue;
            };
            let bucket = match target {
                Target::Static(index) => config.descriptors.get(index).map(|d| &d.limit.bucket),
                Target::Dynamic { index, .. } => config.wildcards.get(index).map(|w| &w.bucket),
            };
            if let Some(bucket) = bucket {
                selected.push(Selected {
                    bucket,
                    target: Some(target),
                });
            }
        }
        // Stable, so equal rates keep their `rate_limits` order.
        selected.sort_by(|a, b| {
            if a.bucket.fills_slower_than(b.bucket) {
                std::cmp::Ordering::Less
            } else if b.bucket.fills_slower_than(a.bucket) {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        });
    }
    let matched = !selected.is_empty();
    if !matched || config.always_consume_default {
        if let Some(default) = &config.default_limit {
            selected.push(Selected {
                bucket: &default.bucket,
                target: None,
            });
        }
    }
    // The values shown for an allowed request are the first bucket's: the slowest descriptor, or
    // the default bucket when no descriptor matched.
    let mut shown = None;
    for (position, one) in selected.iter().enumerate() {
        match verdict.take(config, store, one, now) {
            Ok(quota) if position == 0 => shown = quota,
            Ok(_) => {}
            Err(quota) => {
                verdict.quota = Some(quota);
                return verdict;
            }
        }
    }
    verdict.allowed = true;
    verdict.quota = shown;
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RateLimitConfig;
    use crate::store::tests::MemoryStore;
    use sdk_ext::config::load;
    use sdk_ext::host::Status;
    use sdk_ext::matcher::RequestView;
    use serde_json::json;

    const NOW: u64 = 1_700_000_000_000_000_000;

    struct User(Option<&'static str>);

    impl RequestView for User {
        fn path(&self) -> Option<Vec<u8>> {
            Some(b"/".to_vec())
        }
        fn header(&self, name: &str) -> Option<Vec<u8>> {
            (name == "x-user").then_some(self.0?.as_bytes().to_vec())
        }
    }

    impl Request for User {
        fn remote_address(&self) -> Option<Vec<u8>> {
            None
        }
    }

    fn config() -> Config {
        let bucket = |max: u32, interval: &str| json!({"max_tokens": max, "tokens_per_fill": 1, "fill_interval": interval});
        load::<RateLimitConfig>(
            json!({
                "stat_prefix": "t",
                "token_bucket": bucket(3, "60s"),
                "rate_limits": [{"actions": [{"request_headers": {"header_name": "x-user", "descriptor_key": "user"}}]},
                                {"actions": [{"generic_key": {"descriptor_value": "everyone"}}]}],
                "descriptors": [
                    {"entries": [{"key": "generic_key", "value": "everyone"}], "token_bucket": bucket(100, "1s")},
                    {"entries": [{"key": "user", "value": ""}], "token_bucket": bucket(1, "60s")}
                ]
            })
            .to_string()
            .as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn the_slowest_bucket_is_taken_first_and_its_values_are_shown() {
        let config = config();
        let store = MemoryStore::default();
        let verdict = check(&config, &User(Some("alice")), &store, NOW);
        assert!(verdict.allowed);
        // The user bucket (1 per minute) fills more slowly than "everyone" (1 per second).
        assert_eq!(
            verdict.quota,
            Some(Quota {
                limit: 1,
                remaining: 0,
                reset: 60
            })
        );
        let verdict = check(&config, &User(Some("alice")), &store, NOW);
        assert!(!verdict.allowed);
        assert_eq!(verdict.quota.map(|q| q.limit), Some(1));
        // Alice's second request stopped at her own bucket: "everyone" and the default kept
        // their tokens.
        let verdict = check(&config, &User(None), &store, NOW);
        assert_eq!(
            verdict.quota.map(|q| (q.limit, q.remaining)),
            Some((100, 98))
        );
    }

    #[test]
    fn shared_data_failures_fail_open_and_are_counted() {
        let config = config();
        let store = MemoryStore::default();
        store.fail.set(Some(Status::InternalFailure));
        for _ in 0..10 {
            let verdict = check(&config, &User(Some("alice")), &store, NOW);
            assert!(verdict.allowed);
            assert_eq!(verdict.errors, 3, "user, everyone and default buckets");
            assert_eq!(verdict.quota, None);
        }
    }

    #[test]
    fn contention_limits() {
        let config = config();
        let store = MemoryStore::default();
        for (key, size) in config.shared_keys() {
            crate::store::ensure(&store, &key, size).unwrap();
        }
        *store.interleave.borrow_mut() = Some(Box::new(|store: &MemoryStore| {
            let entries = store.entries.borrow().clone();
            for (key, (value, _)) in entries {
                store.write(&key, &value);
            }
        }));
        let verdict = check(&config, &User(None), &store, NOW);
        assert!(!verdict.allowed);
        assert_eq!(verdict.conflicts, crate::store::ATTEMPTS);
        // Limited by the first bucket it tried, "everyone", although it had tokens.
        assert_eq!(
            verdict.quota.map(|q| (q.limit, q.remaining)),
            Some((100, 0))
        );
    }
}
