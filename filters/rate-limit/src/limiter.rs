//! The decision for one request, as native local_ratelimit makes it: the buckets its descriptors
//! select are taken from slowest-filling first, and the first that is empty limits the request;
//! then the default bucket, when no descriptor matched or `always_consume_default_token_bucket`.
//! Tokens already taken from earlier buckets stay taken, as in native.

use crate::bucket::{Bucket, Outcome};
use crate::descriptors::{select, Target};
use crate::runtime::Config;
use crate::store::{self, Failure, Slot};
use sdk_ext::ratelimit::{Entry, Request};
use sdk_ext::shared_data::SharedData;

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
        shared: &SharedData<'_>,
        selected: &Selected<'_>,
        now: u64,
    ) -> Result<Option<Quota>, Quota> {
        let bucket = selected.bucket;
        let conflicts = &mut self.conflicts;
        let result = match selected.target {
            None => match &config.default_limit {
                Some(default) => store::take(shared, &default.key, bucket, now, conflicts),
                None => return Ok(None),
            },
            Some(Target::Static(index)) => match config.descriptors.get(index) {
                Some(descriptor) => {
                    store::take(shared, &descriptor.limit.key, bucket, now, conflicts)
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
                    shared,
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
                        store::take(shared, &wildcard.overflow.key, bucket, now, conflicts)
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
pub fn check(
    config: &Config,
    request: &impl Request,
    shared: &SharedData<'_>,
    now: u64,
) -> Verdict {
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
                // Kept sorted slowest-filling first, after any equal rate so equal rates keep
                // their `rate_limits` order: a stable insertion sort over a few policies, which
                // costs far less wasm code than a `sort_by` instantiation.
                let at = selected
                    .iter()
                    .rposition(|earlier| !bucket.fills_slower_than(earlier.bucket))
                    .map_or(0, |index| index + 1);
                selected.insert(
                    at,
                    Selected {
                        bucket,
                        target: Some(target),
                    },
                );
            }
        }
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
        match verdict.take(config, shared, one, now) {
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
