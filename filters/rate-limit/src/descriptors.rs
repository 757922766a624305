//! Request descriptors, built from the request by `rate_limits` actions
//! ([`sdk_ext::ratelimit`]), matched against the configured `descriptors` as native
//! local_ratelimit does.

use crate::runtime::Config;
use sdk_ext::ratelimit::Entry;
use std::hash::{Hash, Hasher};

/// A bucket a request descriptor selected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `config.descriptors[index]`.
    Static(usize),
    /// `config.wildcards[index]`, the bucket of the descriptor whose values hash to `identity`.
    Dynamic {
        /// Index in `config.wildcards`.
        index: usize,
        /// The request descriptor's identity in the table.
        identity: u128,
    },
}

/// The bucket for a request descriptor: a static descriptor equal to it, else the first wildcard
/// descriptor that matches it (as native: exact matches first).
pub fn select(config: &Config, entries: &[Entry<'_>]) -> Option<Target> {
    let same_key = |pattern: &str, entry: &Entry<'_>| pattern == entry.0;
    if let Some(index) = config.descriptors.iter().position(|descriptor| {
        descriptor.entries.len() == entries.len()
            && descriptor
                .entries
                .iter()
                .zip(entries)
                .all(|((key, value), entry)| same_key(key, entry) && value.as_bytes() == &*entry.1)
    }) {
        return Some(Target::Static(index));
    }
    let index = config.wildcards.iter().position(|wildcard| {
        wildcard.entries.len() == entries.len()
            && wildcard
                .entries
                .iter()
                .zip(entries)
                .all(|((key, value), entry)| {
                    same_key(key, entry)
                        && value
                            .as_ref()
                            .is_none_or(|value| value.as_bytes() == &*entry.1)
                })
    })?;
    Some(Target::Dynamic {
        index,
        identity: identity(entries),
    })
}

/// A 128-bit identity for a request descriptor's values (the keys are the descriptor's own): two
/// SipHash-2-4 passes with different keys. Bit 0 is set so that zero can mean "free slot".
pub fn identity(entries: &[Entry<'_>]) -> u128 {
    let half = |seed: u64| {
        // Deprecated only in favour of DefaultHasher, whose output may change between Rust
        // releases; this one is fixed, so shared data stays readable across module upgrades.
        #[allow(deprecated)]
        let mut hasher = std::hash::SipHasher::new_with_keys(0x7261_7465_6c69_6d69, seed);
        for (_, value) in entries {
            value.len().hash(&mut hasher);
            hasher.write(value);
        }
        hasher.finish()
    };
    (u128::from(half(1)) << 64 | u128::from(half(2))) | 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RateLimitConfig;
    use sdk_ext::config::load;
    use serde_json::json;
    use std::borrow::Cow;

    fn config() -> Config {
        let bucket = json!({"max_tokens": 1, "fill_interval": "1s"});
        load::<RateLimitConfig>(
            json!({
                "stat_prefix": "t",
                "descriptors": [
                    {"entries": [{"key": "user", "value": "alice"}], "token_bucket": bucket},
                    {"entries": [{"key": "user", "value": ""}], "token_bucket": bucket},
                    {"entries": [{"key": "remote_address", "value": ""}], "token_bucket": bucket},
                    {"entries": [{"key": "generic_key", "value": "g"}, {"key": "user", "value": ""}], "token_bucket": bucket}
                ]
            })
            .to_string()
            .as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn descriptors_select_static_first_then_wildcards() {
        let config = config();
        let entries = |list: &[(&'static str, &'static str)]| -> Vec<Entry<'static>> {
            list.iter()
                .map(|(k, v)| (*k, Cow::Borrowed(v.as_bytes())))
                .collect()
        };
        assert_eq!(
            select(&config, &entries(&[("user", "alice")])),
            Some(Target::Static(0))
        );
        let bob = select(&config, &entries(&[("user", "bob")]));
        let carol = select(&config, &entries(&[("user", "carol")]));
        assert!(matches!(bob, Some(Target::Dynamic { index: 0, .. })));
        assert_ne!(bob, carol, "each value has its own bucket");
        assert_eq!(bob, select(&config, &entries(&[("user", "bob")])));
        assert!(matches!(
            select(&config, &entries(&[("generic_key", "g"), ("user", "bob")])),
            Some(Target::Dynamic { index: 2, .. })
        ));
        assert_eq!(
            select(&config, &entries(&[("generic_key", "h"), ("user", "bob")])),
            None
        );
        assert_eq!(
            select(&config, &entries(&[("user", "bob"), ("x", "y")])),
            None
        );
        assert_eq!(select(&config, &entries(&[("group", "bob")])), None);
        assert_eq!(select(&config, &entries(&[])), None);
    }

    #[test]
    fn identities_separate_values_and_never_collide_with_a_free_slot() {
        let a: Vec<Entry<'_>> = vec![("k", Cow::Borrowed(b"ab")), ("k", Cow::Borrowed(b"c"))];
        let b: Vec<Entry<'_>> = vec![("k", Cow::Borrowed(b"a")), ("k", Cow::Borrowed(b"bc"))];
        assert_ne!(identity(&a), identity(&b));
        assert_eq!(identity(&a) & 1, 1);
        assert_eq!(identity(&a), identity(&a.clone()));
    }
}
