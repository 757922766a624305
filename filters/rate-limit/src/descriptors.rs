//! Request descriptors: built from the request by `rate_limits` actions, as Envoy's router does,
//! then matched against the configured `descriptors`.

use crate::config::Config;
use sdk_ext::matcher::{HeaderMatcher, RequestView, RouteMatch};
use sdk_ext::properties::address_without_port;
use std::borrow::Cow;
use std::hash::{Hash, Hasher};

/// One `rate_limits` entry: an optional route match and the actions that build its descriptor.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Requests the entry applies to; `None` is all.
    pub route: Option<RouteMatch>,
    /// Each action yields one entry (or skips, or cancels the descriptor).
    pub actions: Vec<Action>,
}

/// A validated `RateLimit.Action`.
#[derive(Debug, Clone)]
pub enum Action {
    /// `(key, first value of header name)`.
    RequestHeader {
        /// Lower-case header name.
        name: String,
        /// Entry key.
        key: String,
        /// When the header is absent: skip the entry (true) or cancel the descriptor (false).
        skip_if_absent: bool,
    },
    /// `("remote_address", client IP without port)`.
    RemoteAddress,
    /// `(key, value)`.
    GenericKey {
        /// Entry key.
        key: String,
        /// Entry value.
        value: String,
    },
    /// `(key, value)` when the headers' match equals `expect_match`; else no descriptor.
    HeaderValueMatch {
        /// Entry key.
        key: String,
        /// Entry value.
        value: String,
        /// Whether the headers must match or must not.
        expect_match: bool,
        /// All must match.
        headers: Vec<HeaderMatcher>,
    },
}

/// What descriptor building reads from the request: sdk-ext's route-match view plus the client
/// address.
pub trait Request: RequestView {
    /// The downstream address (`source.address`, `ip:port`).
    fn remote_address(&self) -> Option<Vec<u8>>;
}

/// One entry of a request descriptor; values borrow the config when they are fixed.
pub type Entry<'a> = (&'a str, Cow<'a, [u8]>);

impl Policy {
    /// The descriptor this entry yields for the request, or `None` (route not matched, or an
    /// action cancelled it). Entries are appended to `entries`, which is cleared first.
    pub fn populate<'a>(&'a self, request: &impl Request, entries: &mut Vec<Entry<'a>>) -> bool {
        entries.clear();
        if self
            .route
            .as_ref()
            .is_some_and(|route| !route.matches(request))
        {
            return false;
        }
        for action in &self.actions {
            match action {
                Action::RequestHeader {
                    name,
                    key,
                    skip_if_absent,
                } => match request.header(name) {
                    Some(value) => entries.push((key, Cow::Owned(value))),
                    None if *skip_if_absent => {}
                    None => return false,
                },
                Action::RemoteAddress => match request.remote_address() {
                    Some(address) => {
                        let ip = address_without_port(&address).to_vec();
                        entries.push(("remote_address", Cow::Owned(ip)));
                    }
                    None => return false,
                },
                Action::GenericKey { key, value } => {
                    entries.push((key, Cow::Borrowed(value.as_bytes())))
                }
                Action::HeaderValueMatch {
                    key,
                    value,
                    expect_match,
                    headers,
                } => {
                    let matched = headers
                        .iter()
                        .all(|matcher| matcher.matches(request.header(matcher.name()).as_deref()));
                    if matched != *expect_match {
                        return false;
                    }
                    entries.push((key, Cow::Borrowed(value.as_bytes())));
                }
            }
        }
        true
    }
}

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
    use std::collections::HashMap;

    #[derive(Default)]
    struct FakeRequest {
        headers: HashMap<&'static str, &'static str>,
        address: Option<&'static str>,
    }

    impl RequestView for FakeRequest {
        fn path(&self) -> Option<Vec<u8>> {
            self.header(":path")
        }
        fn header(&self, name: &str) -> Option<Vec<u8>> {
            self.headers.get(name).map(|v| v.as_bytes().to_vec())
        }
    }

    impl Request for FakeRequest {
        fn remote_address(&self) -> Option<Vec<u8>> {
            self.address.map(|a| a.as_bytes().to_vec())
        }
    }

    fn request(headers: &[(&'static str, &'static str)]) -> FakeRequest {
        let mut map: HashMap<_, _> = headers.iter().copied().collect();
        map.entry(":path").or_insert("/");
        FakeRequest {
            headers: map,
            address: Some("10.0.0.7:5555"),
        }
    }

    fn config(rate_limits: serde_json::Value) -> Config {
        let bucket = json!({"max_tokens": 1, "fill_interval": "1s"});
        load::<RateLimitConfig>(
            json!({
                "stat_prefix": "t",
                "rate_limits": rate_limits,
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

    fn describe(config: &Config, request: &FakeRequest) -> Vec<Option<Vec<(String, String)>>> {
        let mut entries = Vec::new();
        config
            .policies
            .iter()
            .map(|policy| {
                policy.populate(request, &mut entries).then(|| {
                    entries
                        .iter()
                        .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v).into_owned()))
                        .collect()
                })
            })
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
        Some(
            list.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn actions_build_descriptors_as_envoy() {
        let config = config(json!([
            {"actions": [{"request_headers": {"header_name": "x-user", "descriptor_key": "user"}}]},
            {"actions": [{"request_headers": {"header_name": "x-user", "descriptor_key": "user", "skip_if_absent": true}},
                         {"generic_key": {"descriptor_value": "g"}}]},
            {"actions": [{"remote_address": {}}]},
            {"actions": [{"header_value_match": {"descriptor_value": "posts", "headers": [{"name": ":method", "exact_match": "POST"}]}}]},
            {"actions": [{"header_value_match": {"descriptor_key": "k", "descriptor_value": "not-posts", "expect_match": false,
                          "headers": [{"name": ":method", "exact_match": "POST"}]}}]},
            {"match": {"prefix": "/admin"}, "actions": [{"generic_key": {"descriptor_key": "area", "descriptor_value": "admin"}}]}
        ]));
        let alice = request(&[("x-user", "alice"), (":method", "GET")]);
        assert_eq!(
            describe(&config, &alice),
            [
                pairs(&[("user", "alice")]),
                pairs(&[("user", "alice"), ("generic_key", "g")]),
                pairs(&[("remote_address", "10.0.0.7")]),
                None,
                pairs(&[("k", "not-posts")]),
                None,
            ]
        );
        let anonymous_post = request(&[(":method", "POST"), (":path", "/admin/x")]);
        assert_eq!(
            describe(&config, &anonymous_post),
            [
                None,
                pairs(&[("generic_key", "g")]),
                pairs(&[("remote_address", "10.0.0.7")]),
                pairs(&[("header_match", "posts")]),
                None,
                pairs(&[("area", "admin")]),
            ]
        );
        let no_address = FakeRequest {
            address: None,
            ..request(&[])
        };
        assert_eq!(describe(&config, &no_address)[2], None);
    }

    #[test]
    fn descriptors_select_static_first_then_wildcards() {
        let config = config(json!([]));
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
