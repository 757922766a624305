//! rate-limit on the fake host: the per-request logic (buckets, descriptors, shadow mode,
//! headers, counters) and the shared-data store, with other workers' writes injected between a
//! read and the CAS write that follows it (`FakeHost::interleave_write`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use rate_limit::bucket::Bucket;
use rate_limit::config::RateLimitConfig;
use rate_limit::descriptors::identity;
use rate_limit::filter::RateLimitRoot;
use rate_limit::store::{self, Failure, Slot, ATTEMPTS, BUCKET_BYTES, ENTRY_BYTES};
use sdk_ext::config::load;
use sdk_ext::fake::{FakeModule, LocalReply};
use sdk_ext::headers::MapType;
use sdk_ext::shared_data::SharedData;
use sdk_ext::wire::Pairs;
use sdk_ext::{Action, HttpCx, HttpFilter, RootCx, RootFilter};
use serde_json::{json, Value};
use std::borrow::Cow;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

const STATS: &str = "rl.http_local_rate_limit";
const DEFAULT_KEY: &str = "rate_limit/v1/rl/default";
const SECOND: u64 = 1_000_000_000;

fn percent(numerator: u32) -> Value {
    json!({"default_value": {"numerator": numerator, "denominator": "HUNDRED"}, "runtime_key": "k"})
}

/// A config with the filter enabled and enforced for every request, plus `extra`.
fn config(extra: Value) -> Value {
    let mut config = json!({
        "stat_prefix": "rl",
        "filter_enabled": percent(100),
        "filter_enforced": percent(100),
        "enable_x_ratelimit_headers": "DRAFT_VERSION_03",
    });
    for (key, value) in extra.as_object().cloned().unwrap_or_default() {
        config[key] = value;
    }
    config
}

fn bucket(max: u32, per_fill: u32, interval: &str) -> Value {
    json!({"max_tokens": max, "tokens_per_fill": per_fill, "fill_interval": interval})
}

fn descriptor(key: &str, value: &str, bucket: Value) -> Value {
    json!({"entries": [{"key": key, "value": value}], "token_bucket": bucket})
}

fn module(config: &Value) -> FakeModule {
    FakeModule::standalone::<RateLimitRoot>(config.to_string().as_bytes())
        .unwrap_or_else(|error| panic!("config refused: {error}"))
}

fn counter(module: &FakeModule, name: &str) -> i64 {
    module
        .host()
        .metric(&format!("{STATS}.{name}"))
        .unwrap_or_else(|| panic!("{STATS}.{name} is not defined"))
}

/// One request as Envoy runs it: the request headers, then the upstream's 200 or the local
/// reply through the response path (Envoy encodes a local reply through the filter chain).
struct Seen {
    action: Action,
    status: u32,
    reply: Option<LocalReply>,
    /// The request headers as the upstream gets them.
    upstream: Pairs,
    response: Pairs,
}

fn value(pairs: &Pairs, name: &str) -> Option<String> {
    pairs
        .iter()
        .find(|(key, _)| key == name.as_bytes())
        .map(|(_, value)| String::from_utf8_lossy(value).into_owned())
}

impl Seen {
    fn limit(&self) -> Option<String> {
        value(&self.response, "x-ratelimit-limit")
    }
    fn remaining(&self) -> Option<String> {
        value(&self.response, "x-ratelimit-remaining")
    }
    fn reset(&self) -> Option<String> {
        value(&self.response, "x-ratelimit-reset")
    }
    fn retry_after(&self) -> Option<String> {
        self.reply.as_ref()?.header("retry-after")
    }
}

fn send(module: &mut FakeModule, headers: &[(&str, &str)]) -> Seen {
    let stream = module.stream();
    let mut request = vec![
        (":method", "GET"),
        (":path", "/"),
        (":authority", "example.com"),
    ];
    for &(name, value) in headers {
        match request.iter_mut().find(|(key, _)| *key == name) {
            Some(entry) => entry.1 = value,
            None => request.push((name, value)),
        }
    }
    let action = module.request_headers(stream, &request, true);
    let reply = module.host().local_reply(stream);
    assert_eq!(
        action == Action::Pause,
        reply.is_some(),
        "a paused request has a reply"
    );
    let status = reply.as_ref().map_or(200, |reply| reply.status);
    let upstream = module.host().headers(stream, MapType::HttpRequestHeaders);
    module.response_headers(stream, &[(":status", &status.to_string())], true);
    let response = module.host().headers(stream, MapType::HttpResponseHeaders);
    module.end(stream);
    Seen {
        action,
        status,
        reply,
        upstream,
        response,
    }
}

fn statuses(module: &mut FakeModule, headers: &[(&str, &str)], count: usize) -> Vec<u32> {
    (0..count).map(|_| send(module, headers).status).collect()
}

/// The state a bucket is in after `taken` tokens were taken from a full one at `now`.
fn state_after(bucket: &Bucket, taken: u32, now: u64) -> u64 {
    (0..taken).fold(0, |state, _| {
        bucket.take(state, now).new_empty_at.expect("a token left")
    })
}

fn bucket_value(module: &FakeModule, key: &str) -> Vec<u8> {
    module
        .host()
        .shared_data(&module.shared_key(0, key))
        .expect("the key exists")
        .0
}

// --- The request path -----------------------------------------------------------------------

#[test]
fn a_burst_takes_exactly_max_tokens_then_gets_429_with_retry_after_and_the_reply_headers() {
    let mut m = module(&config(json!({
        "token_bucket": bucket(3, 1, "10s"),
        "response_headers_to_add": [{"header": {"key": "x-limited-by", "value": "wasm"}}]
    })));
    let mut rows = Vec::new();
    for _ in 0..5 {
        let seen = send(&mut m, &[]);
        rows.push((
            seen.status,
            seen.limit().unwrap_or_default(),
            seen.remaining().unwrap_or_default(),
            seen.reset().unwrap_or_default(),
        ));
        match &seen.reply {
            Some(reply) => {
                assert_eq!(seen.action, Action::Pause);
                assert_eq!(reply.details, "local_rate_limited");
                let body: Value = serde_json::from_slice(&reply.body).unwrap();
                assert_eq!(body["error"], "local_rate_limited");
                assert_eq!(
                    reply.header("content-type").as_deref(),
                    Some("application/json")
                );
                assert_eq!(reply.header("x-limited-by").as_deref(), Some("wasm"));
                assert_eq!(seen.retry_after().as_deref(), Some("10"));
            }
            None => {
                assert_eq!(seen.action, Action::Continue);
                assert_eq!(value(&seen.response, "x-limited-by"), None);
            }
        }
    }
    // The values native local_ratelimit sends for this bucket.
    let row = |status, remaining: &str, reset: &str| {
        (
            status,
            "3".to_string(),
            remaining.to_string(),
            reset.to_string(),
        )
    };
    assert_eq!(
        rows,
        [
            row(200, "2", "0"),
            row(200, "1", "0"),
            row(200, "0", "10"),
            row(429, "0", "10"),
            row(429, "0", "10"),
        ]
    );
    assert_eq!(counter(&m, "enabled"), 5);
    assert_eq!(counter(&m, "ok"), 3);
    assert_eq!(counter(&m, "rate_limited"), 2);
    assert_eq!(counter(&m, "enforced"), 2);
    assert_eq!(counter(&m, "shared_data_conflict"), 0);
    assert_eq!(counter(&m, "shared_data_error"), 0);
}

#[test]
fn every_counter_is_defined_under_the_stats_prefix() {
    let m = module(&config(json!({})));
    let mut names = m.host().metric_names();
    names.sort();
    let mut expected: Vec<String> = [
        "descriptor_set_full",
        "enabled",
        "enforced",
        "ok",
        "rate_limited",
        "shared_data_conflict",
        "shared_data_error",
    ]
    .iter()
    .map(|name| format!("{STATS}.{name}"))
    .collect();
    expected.sort();
    assert_eq!(names, expected);
}

#[test]
fn status_and_response_headers_to_add_shape_the_reply_and_x_ratelimit_headers_can_be_off() {
    let mut m = module(&config(json!({
        "token_bucket": bucket(1, 1, "3600s"),
        "status": {"code": 503},
        "enable_x_ratelimit_headers": "OFF",
        "response_headers_to_add": [
            {"header": {"key": "x-limited-by", "value": "wasm"}},
            {"header": {"key": "x-limited-by", "value": "again"}}
        ]
    })));
    let allowed = send(&mut m, &[]);
    assert_eq!(allowed.status, 200);
    assert_eq!(allowed.limit(), None, "x-ratelimit headers are off");
    let limited = send(&mut m, &[]);
    assert_eq!(limited.status, 503);
    assert_eq!(limited.retry_after().as_deref(), Some("3600"));
    assert_eq!(limited.limit(), None);
    let reply = limited.reply.unwrap();
    let limited_by: Vec<&[u8]> = reply
        .headers
        .iter()
        .filter(|(name, _)| name == b"x-limited-by")
        .map(|(_, value)| value.as_slice())
        .collect();
    assert_eq!(limited_by, [&b"wasm"[..], b"again"]);
}

#[test]
fn buckets_refill_after_the_clock_advances_continuously_and_up_to_max_tokens() {
    // A token every half second, at most 4.
    let mut m = module(&config(json!({"token_bucket": bucket(4, 2, "1s")})));
    assert_eq!(statuses(&mut m, &[], 5), [200, 200, 200, 200, 429]);
    m.advance(Duration::from_millis(499));
    let early = send(&mut m, &[]);
    assert_eq!((early.status, early.reset().as_deref()), (429, Some("1")));
    m.advance(Duration::from_millis(1));
    assert_eq!(
        statuses(&mut m, &[], 2),
        [200, 429],
        "one token after 0.5 s"
    );
    // 1.75 s: three whole tokens and a half-filled fourth that is not yet usable.
    m.advance(Duration::from_millis(1750));
    assert_eq!(statuses(&mut m, &[], 4), [200, 200, 200, 429]);
    m.advance(Duration::from_millis(250));
    assert_eq!(
        statuses(&mut m, &[], 2),
        [200, 429],
        "the half token completed"
    );
    // A long idle refills to max_tokens and no further.
    m.advance(Duration::from_secs(24 * 3600));
    assert_eq!(statuses(&mut m, &[], 6), [200, 200, 200, 200, 429, 429]);
}

#[test]
fn shadow_mode_lets_limited_requests_through_with_the_configured_request_headers() {
    let mut m = module(&config(json!({
        "token_bucket": bucket(1, 1, "60s"),
        "filter_enforced": percent(0),
        "request_headers_to_add_when_not_enforced": [{"header": {"key": "x-rate-limited", "value": "shadow"}}]
    })));
    let first = send(&mut m, &[]);
    assert_eq!(first.status, 200);
    assert_eq!(value(&first.upstream, "x-rate-limited"), None);
    for _ in 0..2 {
        let over = send(&mut m, &[]);
        assert_eq!((over.action, over.status), (Action::Continue, 200));
        assert_eq!(
            value(&over.upstream, "x-rate-limited").as_deref(),
            Some("shadow")
        );
        assert_eq!(
            over.remaining().as_deref(),
            Some("0"),
            "headers as if enforced"
        );
        assert_eq!(over.reset().as_deref(), Some("60"));
    }
    assert_eq!(counter(&m, "rate_limited"), 2);
    assert_eq!(counter(&m, "enforced"), 0);
    assert_eq!(counter(&m, "ok"), 1);
}

#[test]
fn without_filter_enabled_nothing_is_checked_as_in_native() {
    let mut m = module(&json!({"stat_prefix": "rl", "token_bucket": bucket(1, 1, "60s")}));
    assert_eq!(statuses(&mut m, &[], 3), [200, 200, 200]);
    assert_eq!(counter(&m, "enabled"), 0);
    assert_eq!(send(&mut m, &[]).limit(), None);
    assert_eq!(
        bucket_value(&m, DEFAULT_KEY),
        [0; BUCKET_BYTES],
        "no token taken"
    );
}

fn user_header_limits(extra: Value) -> Value {
    let mut base = json!({
        "token_bucket": bucket(100, 1, "60s"),
        "rate_limits": [{"actions": [{"request_headers": {"header_name": "x-user", "descriptor_key": "user"}}]}],
        "descriptors": [
            descriptor("user", "alice", bucket(2, 1, "60s")),
            descriptor("user", "", bucket(1, 1, "60s"))
        ]
    });
    for (key, value) in extra.as_object().cloned().unwrap_or_default() {
        base[key] = value;
    }
    config(base)
}

#[test]
fn a_request_header_selects_a_static_bucket_or_one_per_wildcard_value() {
    let mut m = module(&user_header_limits(json!({})));
    let alice = send(&mut m, &[("x-user", "alice")]);
    assert_eq!((alice.status, alice.limit().as_deref()), (200, Some("2")));
    assert_eq!(statuses(&mut m, &[("x-user", "alice")], 2), [200, 429]);
    for user in ["bob", "carol"] {
        let first = send(&mut m, &[("x-user", user)]);
        assert_eq!((first.status, first.limit().as_deref()), (200, Some("1")));
        assert_eq!(statuses(&mut m, &[("x-user", user)], 1), [429]);
    }
    // Without the header the request has no descriptor and uses the default bucket only.
    let anonymous = send(&mut m, &[]);
    assert_eq!(
        (
            anonymous.status,
            anonymous.limit(),
            anonymous.remaining().as_deref()
        ),
        (200, Some("100".to_string()), Some("95")),
        "the default bucket was also taken from by the 5 allowed user requests"
    );
}

#[test]
fn always_consume_default_token_bucket_false_spares_the_default_bucket() {
    let mut m = module(&user_header_limits(
        json!({"always_consume_default_token_bucket": false}),
    ));
    assert_eq!(statuses(&mut m, &[("x-user", "alice")], 3), [200, 200, 429]);
    assert_eq!(send(&mut m, &[]).remaining().as_deref(), Some("99"));
}

/// A user bucket of 1 a minute, "everyone" of 100 a second, and a default bucket of 3.
fn user_and_everyone() -> Value {
    config(json!({
        "token_bucket": bucket(3, 1, "60s"),
        "rate_limits": [{"actions": [{"request_headers": {"header_name": "x-user", "descriptor_key": "user"}}]},
                        {"actions": [{"generic_key": {"descriptor_value": "everyone"}}]}],
        "descriptors": [
            descriptor("generic_key", "everyone", bucket(100, 1, "1s")),
            descriptor("user", "", bucket(1, 1, "60s"))
        ]
    }))
}

#[test]
fn the_slowest_bucket_is_taken_first_and_its_values_are_shown() {
    let mut m = module(&user_and_everyone());
    let alice = send(&mut m, &[("x-user", "alice")]);
    assert_eq!(alice.status, 200);
    // The user bucket (1 per minute) fills more slowly than "everyone" (1 per second).
    assert_eq!(
        (alice.limit(), alice.remaining(), alice.reset()),
        (Some("1".into()), Some("0".into()), Some("60".into()))
    );
    let again = send(&mut m, &[("x-user", "alice")]);
    assert_eq!((again.status, again.limit().as_deref()), (429, Some("1")));
    // Alice's second request stopped at her own bucket: "everyone" kept its token.
    let anonymous = send(&mut m, &[]);
    assert_eq!(
        (anonymous.limit(), anonymous.remaining()),
        (Some("100".into()), Some("98".into()))
    );
}

#[test]
fn the_remote_address_selects_a_bucket_per_client_ip() {
    let mut m = module(&config(json!({
        "rate_limits": [
            {"match": {"prefix": "/api"}, "actions": [{"remote_address": {}}]},
            {"actions": [
                {"header_value_match": {"descriptor_value": "writes", "headers": [{"name": ":method", "string_match": {"exact": "POST"}}]}},
                {"generic_key": {"descriptor_value": "all"}}
            ]}
        ],
        "descriptors": [
            descriptor("remote_address", "", bucket(1, 1, "60s")),
            {"entries": [{"key": "header_match", "value": "writes"}, {"key": "generic_key", "value": "all"}],
             "token_bucket": bucket(2, 1, "60s")}
        ]
    })));
    let mut get_api = |address: &str| {
        m.host()
            .set_property(&["source", "address"], address.as_bytes());
        send(&mut m, &[(":path", "/api/x")]).status
    };
    assert_eq!(get_api("10.0.0.1:1000"), 200);
    assert_eq!(get_api("10.0.0.1:2000"), 429, "same IP, other port");
    assert_eq!(get_api("[2001:db8::1]:2000"), 200);
    assert_eq!(get_api("10.0.0.2:1000"), 200);
    // Outside /api no descriptor applies and there is no default bucket.
    assert_eq!(statuses(&mut m, &[(":path", "/other")], 3), [200, 200, 200]);
    assert_eq!(
        statuses(&mut m, &[(":method", "POST"), (":path", "/w")], 3),
        [200, 200, 429]
    );
}

#[test]
fn keys_are_created_full_at_configure_under_the_filter_s_namespace() {
    let m = module(&user_header_limits(json!({"max_dynamic_descriptors": 20})));
    let keys: Vec<String> = m.host().shared_keys();
    let expected: Vec<String> = [
        "rate_limit/v1/rl/default",
        "rate_limit/v1/rl/descriptor/user=/2x10/0",
        "rate_limit/v1/rl/descriptor/user=/2x10/1",
        "rate_limit/v1/rl/descriptor/user=/overflow",
        "rate_limit/v1/rl/descriptor/user=alice",
    ]
    .iter()
    .map(|key| format!("/0/{key}"))
    .collect();
    assert_eq!(keys, expected);
    assert_eq!(bucket_value(&m, DEFAULT_KEY), [0; BUCKET_BYTES]);
    assert_eq!(
        bucket_value(&m, "rate_limit/v1/rl/descriptor/user=/2x10/1"),
        vec![0; 10 * ENTRY_BYTES]
    );
}

/// A wildcard descriptor with one set of two entries.
fn two_entry_table() -> (Value, String) {
    let config = config(json!({
        "max_dynamic_descriptors": 2,
        "rate_limits": [{"actions": [{"request_headers": {"header_name": "x-key", "descriptor_key": "key"}}]}],
        "descriptors": [descriptor("key", "", bucket(2, 1, "10s"))]
    }));
    let loaded = load::<RateLimitConfig>(config.to_string().as_bytes()).unwrap();
    let wildcard = &loaded.wildcards[0];
    assert_eq!((wildcard.sets, wildcard.ways), (1, 2));
    (config, store::set_key(&wildcard.table_key, 0))
}

fn identity_of(value: &str) -> u128 {
    identity(&[("key", Cow::Borrowed(value.as_bytes()))])
}

fn holders(m: &FakeModule, key: &str) -> Vec<u128> {
    bucket_value(m, key)
        .chunks_exact(ENTRY_BYTES)
        .map(|entry| u128::from_le_bytes(entry[..16].try_into().unwrap()))
        .collect()
}

#[test]
fn a_full_set_sends_new_values_to_the_overflow_bucket_and_frees_entries_once_full() {
    let (config, table) = two_entry_table();
    let mut m = module(&config);
    assert_eq!(statuses(&mut m, &[("x-key", "a")], 3), [200, 200, 429]);
    assert_eq!(send(&mut m, &[("x-key", "b")]).status, 200);
    assert_eq!(holders(&m, &table), [identity_of("a"), identity_of("b")]);
    // Both entries hold partly used buckets: "c" and "d" share the overflow bucket of 2.
    assert_eq!(statuses(&mut m, &[("x-key", "c")], 2), [200, 200]);
    assert_eq!(statuses(&mut m, &[("x-key", "d")], 1), [429]);
    assert_eq!(counter(&m, "descriptor_set_full"), 3);
    // "b" took one token of 2: after 10 s its bucket is full again and its entry free for "c".
    m.advance(Duration::from_secs(10));
    assert_eq!(statuses(&mut m, &[("x-key", "c")], 3), [200, 200, 429]);
    assert_eq!(holders(&m, &table), [identity_of("a"), identity_of("c")]);
    assert_eq!(counter(&m, "descriptor_set_full"), 3);
}

// --- Races and failures through the filter --------------------------------------------------

#[test]
fn a_cas_conflict_is_retried_against_the_other_worker_s_state_and_counted() {
    let mut m = module(&config(json!({"token_bucket": bucket(2, 1, "3600s")})));
    let b = Bucket::new(2, 1, Duration::from_secs(3600)).unwrap();
    // Another worker takes a token between this request's read and its write.
    let other = state_after(&b, 1, m.host().now_nanos());
    m.host()
        .interleave_write(&m.shared_key(0, DEFAULT_KEY), &other.to_le_bytes());
    let seen = send(&mut m, &[]);
    assert_eq!(seen.status, 200);
    assert_eq!(
        seen.remaining().as_deref(),
        Some("0"),
        "the retry saw the other worker's token"
    );
    assert_eq!(counter(&m, "shared_data_conflict"), 1);
    assert_eq!(send(&mut m, &[]).status, 429);
    assert_eq!(counter(&m, "shared_data_conflict"), 1);
    assert_eq!(counter(&m, "ok"), 1);
}

#[test]
fn endless_contention_limits_instead_of_over_admitting() {
    let mut m = module(&user_and_everyone());
    // Another worker writes "everyone" (the first bucket an anonymous request takes from)
    // before every one of this request's writes.
    let key = m.shared_key(0, "rate_limit/v1/rl/descriptor/generic_key=everyone");
    for _ in 0..ATTEMPTS {
        m.host().interleave_write(&key, &[0; BUCKET_BYTES]);
    }
    let seen = send(&mut m, &[]);
    assert_eq!(seen.status, 429);
    // Limited by "everyone" although it had tokens; retry after one of its tokens.
    assert_eq!(
        (seen.limit(), seen.remaining(), seen.retry_after()),
        (Some("100".into()), Some("0".into()), Some("1".into()))
    );
    assert_eq!(counter(&m, "shared_data_conflict"), i64::from(ATTEMPTS));
    assert_eq!(
        bucket_value(&m, DEFAULT_KEY),
        [0; BUCKET_BYTES],
        "never reached"
    );
    // One interleaved write fewer than the attempts: the last attempt lands.
    for _ in 0..ATTEMPTS - 1 {
        m.host().interleave_write(&key, &[0; BUCKET_BYTES]);
    }
    assert_eq!(send(&mut m, &[]).status, 200);
    assert_eq!(
        counter(&m, "shared_data_conflict"),
        i64::from(2 * ATTEMPTS - 1)
    );
}

#[test]
fn two_workers_inserting_one_identity_end_with_one_entry() {
    let (config, table) = two_entry_table();
    let mut m = module(&config);
    let b = Bucket::new(2, 1, Duration::from_secs(10)).unwrap();
    // The other worker gives "a" the first entry, taking one token, just before this write.
    let other = state_after(&b, 1, m.host().now_nanos());
    let mut value = identity_of("a").to_le_bytes().to_vec();
    value.extend(other.to_le_bytes());
    value.extend([0; ENTRY_BYTES]);
    m.host().interleave_write(&m.shared_key(0, &table), &value);
    let seen = send(&mut m, &[("x-key", "a")]);
    assert_eq!((seen.status, seen.remaining().as_deref()), (200, Some("0")));
    assert_eq!(counter(&m, "shared_data_conflict"), 1);
    assert_eq!(holders(&m, &table), [identity_of("a"), 0]);
    assert_eq!(send(&mut m, &[("x-key", "a")]).status, 429);
}

#[test]
fn a_failing_shared_data_write_lets_requests_through_and_is_counted() {
    let mut m = module(&user_and_everyone());
    m.host().fail("set_shared_data");
    for round in 1..=5 {
        let seen = send(&mut m, &[("x-user", "alice")]);
        assert_eq!(seen.status, 200);
        assert_eq!(seen.limit(), None, "no bucket was taken from");
        // One failure per bucket: user, everyone and the default.
        assert_eq!(counter(&m, "shared_data_error"), 3 * round);
    }
    assert_eq!(counter(&m, "ok"), 5);
    assert_eq!(counter(&m, "shared_data_conflict"), 0);
}

#[test]
fn a_failing_shared_data_read_lets_requests_through_and_is_counted() {
    let mut m = module(&config(json!({"token_bucket": bucket(1, 1, "60s")})));
    assert_eq!(send(&mut m, &[]).status, 200);
    m.host().fail("get_shared_data");
    assert_eq!(statuses(&mut m, &[], 3), [200, 200, 200]);
    assert_eq!(counter(&m, "shared_data_error"), 3);
    assert_eq!(counter(&m, "ok"), 4);
    assert_eq!(counter(&m, "rate_limited"), 0);
}

#[test]
fn a_bad_config_is_refused_with_the_field_path() {
    let refused = |config: Value| {
        FakeModule::standalone::<RateLimitRoot>(config.to_string().as_bytes())
            .err()
            .expect("config should be refused")
    };
    let error = refused(
        json!({"stat_prefix": "rl", "token_bucket": {"max_tokens": 5, "fill_interval": "5"}}),
    );
    assert_eq!(error.path, "token_bucket.fill_interval");
    let error = refused(config(json!({
        "descriptors": [descriptor("user", "", bucket(0, 1, "1s"))]
    })));
    assert!(
        error.path.starts_with("descriptors[0].token_bucket"),
        "{error}"
    );
    let error = refused(config(
        json!({"rate_limits": [{"actions": [{"destination_cluster": {}}]}]}),
    ));
    assert_eq!(error.path, "rate_limits[0].actions[0]", "{error}");
}

#[test]
fn wildcard_tables_are_bounded_in_all_and_cheap_to_create_at_the_bound() {
    let wildcards = |count: usize, max_dynamic: u32| {
        let descriptors: Vec<Value> = (0..count)
            .map(|index| descriptor(&format!("key{index}"), "", bucket(5, 1, "1s")))
            .collect();
        let mut config = config(json!({"descriptors": descriptors}));
        config["max_dynamic_descriptors"] = json!(max_dynamic);
        config
    };
    // 16 wildcard descriptors of 2^20 each took 722 MB and 19 s to configure: refused whole.
    let error =
        FakeModule::standalone::<RateLimitRoot>(wildcards(16, 1 << 20).to_string().as_bytes())
            .err()
            .expect("refused");
    assert_eq!(error.path, "max_dynamic_descriptors", "{error}");
    assert!(error.reason.contains("between 1 and 262144"), "{error}");
    for (count, max_dynamic) in [(2, 1 << 18), (16, 1 << 15)] {
        let config = wildcards(count, max_dynamic).to_string();
        let error = FakeModule::standalone::<RateLimitRoot>(config.as_bytes())
            .err()
            .expect("refused");
        assert_eq!(error.path, "max_dynamic_descriptors", "{error}");
        assert!(error.reason.contains("at most 262144 in all"), "{error}");
    }
    // At the bound the tables come to 6 MiB of shared data.
    let started = std::time::Instant::now();
    let at_bound = module(&wildcards(16, 1 << 14));
    let elapsed = started.elapsed();
    let bytes: usize = at_bound
        .host()
        .shared_keys()
        .iter()
        .filter_map(|key| at_bound.host().shared_data(key))
        .map(|(value, _)| value.len())
        .sum();
    assert_eq!(
        bytes,
        (1 << 18) * 24 + 16 * 8,
        "the tables and the overflow buckets"
    );
    assert!(elapsed < std::time::Duration::from_secs(5), "{elapsed:?}");
}

// --- The store on the fake host's shared data ------------------------------------------------

type Job = Box<dyn FnOnce(&SharedData<'_>)>;

thread_local! {
    static JOB: RefCell<Option<Job>> = RefCell::new(None);
}

/// A filter that runs the queued job with its shared data: the store called as the rate-limit
/// filter calls it, with the fake host's CAS.
struct Probe;
struct ProbeHttp;

impl RootFilter for Probe {
    const NAME: &'static str = "probe";
    type Http = ProbeHttp;
    fn configure(_: &mut RootCx<'_>, _: &[u8]) -> Result<Self, sdk_ext::config::ConfigError> {
        Ok(Probe)
    }
    fn create_http(_: &Rc<Self>) -> ProbeHttp {
        ProbeHttp
    }
}

impl HttpFilter for ProbeHttp {
    fn on_request_headers(&mut self, cx: &mut HttpCx<'_>, _: bool) -> Action {
        if let Some(job) = JOB.with(|job| job.borrow_mut().take()) {
            job(&cx.shared_data());
        }
        Action::Continue
    }
}

fn probe() -> FakeModule {
    FakeModule::standalone::<Probe>(b"").unwrap()
}

/// Runs `job` with the probe's shared data, in a request.
fn on_shared<T: 'static>(
    module: &mut FakeModule,
    job: impl FnOnce(&SharedData<'_>) -> T + 'static,
) -> T {
    let out = Rc::new(RefCell::new(None));
    let sink = out.clone();
    JOB.with(|slot| {
        *slot.borrow_mut() = Some(Box::new(move |shared: &SharedData<'_>| {
            *sink.borrow_mut() = Some(job(shared));
        }))
    });
    let stream = module.stream();
    module.request_headers(stream, &[(":path", "/")], true);
    module.end(stream);
    let result = out.borrow_mut().take();
    result.expect("the probe ran the job")
}

const NOW: u64 = 1_767_225_600 * SECOND;

fn hourly(max: u64) -> Bucket {
    Bucket::new(max, 1, Duration::from_secs(3600)).unwrap()
}

fn take(
    m: &mut FakeModule,
    key: &'static str,
    b: Bucket,
) -> (Result<rate_limit::bucket::Outcome, Failure>, u32) {
    on_shared(m, move |shared| {
        let mut conflicts = 0;
        (store::take(shared, key, &b, NOW, &mut conflicts), conflicts)
    })
}

fn take_in_set(
    m: &mut FakeModule,
    key: &'static str,
    b: Bucket,
    identity: u128,
) -> (Result<Slot, Failure>, u32) {
    on_shared(m, move |shared| {
        let mut conflicts = 0;
        (
            store::take_in_set(shared, key, 2, &b, identity, NOW, &mut conflicts),
            conflicts,
        )
    })
}

#[test]
fn store_a_lost_race_is_retried_against_the_winner_s_state() {
    let mut m = probe();
    assert!(on_shared(&mut m, |shared| store::ensure(shared, "k", BUCKET_BYTES)).unwrap());
    let other = state_after(&hourly(2), 1, NOW);
    m.host()
        .interleave_write(&m.shared_key(0, "k"), &other.to_le_bytes());
    let (outcome, conflicts) = take(&mut m, "k", hourly(2));
    let outcome = outcome.unwrap();
    assert_eq!(conflicts, 1);
    assert!(outcome.allowed);
    assert_eq!(
        outcome.remaining, 0,
        "the retry saw the other worker's token"
    );
    let (outcome, conflicts) = take(&mut m, "k", hourly(2));
    assert!(!outcome.unwrap().allowed);
    assert_eq!(conflicts, 0);
}

#[test]
fn store_endless_contention_limits_instead_of_over_admitting() {
    let mut m = probe();
    on_shared(&mut m, |shared| store::ensure(shared, "k", BUCKET_BYTES)).unwrap();
    let key = m.shared_key(0, "k");
    for _ in 0..ATTEMPTS + 1 {
        m.host().interleave_write(&key, &[0; BUCKET_BYTES]);
    }
    assert_eq!(
        take(&mut m, "k", hourly(100)),
        (Err(Failure::Contention), ATTEMPTS)
    );
    assert_eq!(m.host().shared_data(&key).unwrap().0, [0; BUCKET_BYTES]);
    // The retries are bounded: the one write left over still waits for the next request.
    let (outcome, conflicts) = take(&mut m, "k", hourly(100));
    assert_eq!((outcome.map(|o| o.remaining), conflicts), (Ok(99), 1));
}

#[test]
fn store_host_failures_are_reported_not_retried() {
    for hostcall in ["get_shared_data", "set_shared_data"] {
        let mut m = probe();
        on_shared(&mut m, |shared| store::ensure(shared, "s", 2 * ENTRY_BYTES)).unwrap();
        m.host().fail(hostcall);
        assert_eq!(
            take(&mut m, "k", hourly(1)),
            (Err(Failure::Host(sdk_ext::Status::InternalFailure)), 0),
            "{hostcall}"
        );
        assert_eq!(
            take_in_set(&mut m, "s", hourly(1), 3),
            (Err(Failure::Host(sdk_ext::Status::InternalFailure)), 0),
            "{hostcall}"
        );
    }
}

#[test]
fn store_a_missing_key_is_created_full_and_a_foreign_value_reads_as_full() {
    let mut m = probe();
    let key = m.shared_key(0, "k");
    assert_eq!(m.host().shared_data(&key), None);
    let (outcome, _) = take(&mut m, "k", hourly(3));
    let outcome = outcome.unwrap();
    assert_eq!((outcome.allowed, outcome.remaining), (true, 2));
    assert_eq!(m.host().shared_data(&key).unwrap().0.len(), BUCKET_BYTES);
    m.host().write_shared(&key, b"garbage");
    let (outcome, _) = take(&mut m, "k", hourly(3));
    assert_eq!(outcome.unwrap().remaining, 2);
    assert_eq!(m.host().shared_data(&key).unwrap().0.len(), BUCKET_BYTES);
    // A missing set is created with the identity in its first entry.
    let (slot, _) = take_in_set(&mut m, "s", hourly(3), 7);
    assert!(matches!(slot, Ok(Slot::Taken(o)) if o.allowed && o.remaining == 2));
    let value = m.host().shared_data(&m.shared_key(0, "s")).unwrap().0;
    assert_eq!(value.len(), 2 * ENTRY_BYTES);
    assert_eq!(value[..16], 7u128.to_le_bytes());
}

#[test]
fn store_two_workers_inserting_one_identity_end_with_one_entry() {
    let mut m = probe();
    on_shared(&mut m, |shared| {
        store::ensure(shared, "set", 2 * ENTRY_BYTES)
    })
    .unwrap();
    // The other worker inserts the same identity, taking a token, just before this write.
    let mut value = 11u128.to_le_bytes().to_vec();
    value.extend(state_after(&hourly(2), 1, NOW).to_le_bytes());
    value.extend([0; ENTRY_BYTES]);
    m.host().interleave_write(&m.shared_key(0, "set"), &value);
    let (slot, conflicts) = take_in_set(&mut m, "set", hourly(2), 11);
    assert_eq!(conflicts, 1);
    assert!(matches!(slot, Ok(Slot::Taken(o)) if o.allowed && o.remaining == 0));
    let value = m.host().shared_data(&m.shared_key(0, "set")).unwrap().0;
    let holders: Vec<u128> = value
        .chunks_exact(ENTRY_BYTES)
        .map(|entry| u128::from_le_bytes(entry[..16].try_into().unwrap()))
        .collect();
    assert_eq!(holders, [11, 0]);
}
