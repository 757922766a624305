//! rate-limit's built .wasm driven through test-host: bucket math on the host clock, descriptor
//! selection, shadow mode, headers, and many VMs (also on many threads) sharing one bucket.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::{json, Value};
use std::sync::{Arc, Barrier};
use std::time::Duration;
use test_host::{filter_wasm, Action, Error, HttpStream, Plugin, TestHost};

const VM_ID: &str = "rate_limit";
const STATS: &str = "rl.http_local_rate_limit";

fn enabled() -> Value {
    json!({"default_value": {"numerator": 100, "denominator": "HUNDRED"}, "runtime_key": "enabled"})
}

/// A config with the filter enabled and enforced for every request, plus `extra`.
fn config(extra: Value) -> Value {
    let mut config = json!({
        "stat_prefix": "rl",
        "filter_enabled": enabled(),
        "filter_enforced": enabled(),
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

fn start_on(host: &TestHost, config: Value) -> Plugin {
    host.plugin(filter_wasm("rate_limit"))
        .vm_id(VM_ID)
        .config(config)
        .start()
        .unwrap_or_else(|e| panic!("plugin should start: {e}"))
}

/// Status and response headers of one request, answered 200 by the upstream when let through.
struct Seen {
    status: u16,
    limit: Option<String>,
    remaining: Option<String>,
    reset: Option<String>,
    retry_after: Option<String>,
    stream: HttpStream,
}

fn send(plugin: &Plugin, headers: &[(&str, &str)]) -> Seen {
    let mut stream = plugin.http_stream().unwrap();
    let mut request = vec![
        (":method", "GET"),
        (":path", "/"),
        (":authority", "example.com"),
    ];
    request.extend_from_slice(headers);
    let action = stream.send_request_headers(&request, true).unwrap();
    if action == Action::Continue {
        stream
            .send_response_headers(&[(":status", "200")], true)
            .unwrap();
    } else {
        assert!(
            stream.local_response().is_some(),
            "a paused request has a reply"
        );
    }
    let response = stream.client_response();
    assert!(plugin.failure().is_none(), "{:?}", plugin.failure());
    Seen {
        status: response.status().unwrap_or(0),
        limit: response.header("x-ratelimit-limit"),
        remaining: response.header("x-ratelimit-remaining"),
        reset: response.header("x-ratelimit-reset"),
        retry_after: response.header("retry-after"),
        stream,
    }
}

fn statuses(plugin: &Plugin, headers: &[(&str, &str)], count: usize) -> Vec<u16> {
    (0..count).map(|_| send(plugin, headers).status).collect()
}

fn counter(host: &TestHost, name: &str) -> u64 {
    host.counter(&format!("{STATS}.{name}")).unwrap_or(0)
}

#[test]
fn a_burst_takes_exactly_max_tokens_then_gets_429_with_headers() {
    let host = TestHost::new();
    let plugin = start_on(&host, config(json!({"token_bucket": bucket(3, 1, "10s")})));
    let mut seen = Vec::new();
    for _ in 0..5 {
        let response = send(&plugin, &[]);
        seen.push((
            response.status,
            response.limit.clone().unwrap_or_default(),
            response.remaining.clone().unwrap_or_default(),
            response.reset.clone().unwrap_or_default(),
        ));
        if response.status == 429 {
            let reply = response.stream.local_response().unwrap();
            assert_eq!(reply.details, "local_rate_limited");
            let body: Value = serde_json::from_slice(&reply.body).unwrap();
            assert_eq!(body["error"], "local_rate_limited");
            assert_eq!(
                reply.headers.get_str("content-type").as_deref(),
                Some("application/json")
            );
            assert_eq!(response.retry_after.as_deref(), Some("10"));
            assert_eq!(
                response
                    .stream
                    .client_response()
                    .header("x-envoy-ratelimited"),
                None
            );
        } else {
            assert_eq!(response.retry_after, None);
        }
    }
    // The same values native local_ratelimit sends for this bucket.
    let row = |status, remaining: &str, reset: &str| {
        (
            status,
            "3".to_string(),
            remaining.to_string(),
            reset.to_string(),
        )
    };
    assert_eq!(
        seen,
        [
            row(200, "2", "0"),
            row(200, "1", "0"),
            row(200, "0", "10"),
            row(429, "0", "10"),
            row(429, "0", "10"),
        ]
    );
    assert_eq!(counter(&host, "enabled"), 5);
    assert_eq!(counter(&host, "ok"), 3);
    assert_eq!(counter(&host, "rate_limited"), 2);
    assert_eq!(counter(&host, "enforced"), 2);
}

#[test]
fn refill_is_continuous_partial_and_capped_at_max_tokens() {
    let host = TestHost::new();
    // A token every half second, at most 4.
    let plugin = start_on(&host, config(json!({"token_bucket": bucket(4, 2, "1s")})));
    assert_eq!(statuses(&plugin, &[], 5), [200, 200, 200, 200, 429]);
    host.advance_clock(Duration::from_millis(499));
    let early = send(&plugin, &[]);
    assert_eq!((early.status, early.reset.as_deref()), (429, Some("1")));
    host.advance_clock(Duration::from_millis(1));
    assert_eq!(
        statuses(&plugin, &[], 2),
        [200, 429],
        "one token after 0.5 s"
    );
    // 1.75 s: three whole tokens and a half-filled fourth that is not yet usable.
    host.advance_clock(Duration::from_millis(1750));
    assert_eq!(statuses(&plugin, &[], 4), [200, 200, 200, 429]);
    host.advance_clock(Duration::from_millis(250));
    assert_eq!(
        statuses(&plugin, &[], 2),
        [200, 429],
        "the half token completed"
    );
    // A long idle refills to max_tokens and no further.
    host.advance_clock(Duration::from_secs(24 * 3600));
    assert_eq!(statuses(&plugin, &[], 6), [200, 200, 200, 200, 429, 429]);
}

#[test]
fn buckets_live_in_shared_data_created_at_configure() {
    let host = TestHost::new();
    let plugin = start_on(&host, config(json!({"token_bucket": bucket(2, 1, "1s")})));
    let key = b"/0/rate_limit/v1/rl/default";
    let (value, _) = host.shared_data(VM_ID, key).expect("created at configure");
    assert_eq!(value, [0u8; 8], "zeros are a full bucket");
    send(&plugin, &[]);
    let (value, _) = host.shared_data(VM_ID, key).unwrap();
    assert_ne!(value, [0u8; 8]);
    assert_eq!(value.len(), 8);
}

fn descriptor(key: &str, value: &str, bucket: Value) -> Value {
    json!({"entries": [{"key": key, "value": value}], "token_bucket": bucket})
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
fn descriptors_select_a_static_bucket_or_one_per_wildcard_value() {
    let host = TestHost::new();
    let plugin = start_on(&host, user_header_limits(json!({})));
    let alice = send(&plugin, &[("x-user", "alice")]);
    assert_eq!((alice.status, alice.limit.as_deref()), (200, Some("2")));
    assert_eq!(statuses(&plugin, &[("x-user", "alice")], 2), [200, 429]);
    for user in ["bob", "carol"] {
        let first = send(&plugin, &[("x-user", user)]);
        assert_eq!((first.status, first.limit.as_deref()), (200, Some("1")));
        assert_eq!(statuses(&plugin, &[("x-user", user)], 1), [429]);
    }
    // Without the header the request has no descriptor and uses the default bucket only.
    let anonymous = send(&plugin, &[]);
    assert_eq!(
        (
            anonymous.status,
            anonymous.limit.as_deref(),
            anonymous.remaining.as_deref()
        ),
        (200, Some("100"), Some("95")),
        "the default bucket was also taken from by the 5 allowed user requests"
    );
}

#[test]
fn always_consume_default_token_bucket_false_spares_the_default_bucket() {
    let host = TestHost::new();
    let plugin = start_on(
        &host,
        user_header_limits(json!({"always_consume_default_token_bucket": false})),
    );
    assert_eq!(
        statuses(&plugin, &[("x-user", "alice")], 3),
        [200, 200, 429]
    );
    let anonymous = send(&plugin, &[]);
    assert_eq!(anonymous.remaining.as_deref(), Some("99"));
}

#[test]
fn a_request_limited_by_the_default_bucket_still_spends_its_descriptor_token() {
    // As native: descriptors first (slowest fill first), then the default bucket.
    let host = TestHost::new();
    let plugin = start_on(
        &host,
        config(json!({
            "token_bucket": bucket(1, 1, "10s"),
            "rate_limits": [{"actions": [{"request_headers": {"header_name": "x-user", "descriptor_key": "user"}}]}],
            "descriptors": [descriptor("user", "alice", bucket(2, 1, "20s"))]
        })),
    );
    assert_eq!(send(&plugin, &[]).status, 200);
    let by_default = send(&plugin, &[("x-user", "alice")]);
    assert_eq!(
        (by_default.status, by_default.limit.as_deref()),
        (429, Some("1"))
    );
    let by_default = send(&plugin, &[("x-user", "alice")]);
    assert_eq!(
        (by_default.status, by_default.limit.as_deref()),
        (429, Some("1"))
    );
    let by_alice = send(&plugin, &[("x-user", "alice")]);
    assert_eq!(
        (
            by_alice.status,
            by_alice.limit.as_deref(),
            by_alice.reset.as_deref()
        ),
        (429, Some("2"), Some("20"))
    );
}

#[test]
fn matches_and_actions_scope_descriptors() {
    let host = TestHost::new();
    let plugin = start_on(
        &host,
        config(json!({
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
        })),
    );
    let get_api = |plugin: &Plugin, address: &str| {
        let mut stream = plugin.http_stream().unwrap();
        stream.set_property(&["source", "address"], address);
        stream
            .send_request_headers(&[(":method", "GET"), (":path", "/api/x")], true)
            .unwrap()
    };
    assert_eq!(get_api(&plugin, "10.0.0.1:1000"), Action::Continue);
    assert_eq!(
        get_api(&plugin, "10.0.0.1:2000"),
        Action::Pause,
        "same IP, other port"
    );
    assert_eq!(get_api(&plugin, "[2001:db8::1]:2000"), Action::Continue);
    // Outside /api no descriptor applies and there is no default bucket.
    assert_eq!(
        statuses(&plugin, &[(":path", "/other")], 3),
        [200, 200, 200]
    );
    let post = |plugin: &Plugin| {
        let mut stream = plugin.http_stream().unwrap();
        stream
            .send_request_headers(&[(":method", "POST"), (":path", "/w")], true)
            .unwrap()
    };
    assert_eq!(
        [post(&plugin), post(&plugin), post(&plugin)],
        [Action::Continue, Action::Continue, Action::Pause]
    );
}

#[test]
fn shadow_mode_counts_but_lets_requests_through() {
    let host = TestHost::new();
    let mut shadow = config(json!({
        "token_bucket": bucket(1, 1, "60s"),
        "request_headers_to_add_when_not_enforced": [{"header": {"key": "x-rate-limited", "value": "shadow"}}]
    }));
    shadow.as_object_mut().unwrap().remove("filter_enforced");
    let plugin = start_on(&host, shadow);
    let first = send(&plugin, &[]);
    assert_eq!(first.status, 200);
    assert_eq!(
        first.stream.upstream_request().header("x-rate-limited"),
        None
    );
    let over = send(&plugin, &[]);
    assert_eq!(over.status, 200);
    assert_eq!(
        over.stream
            .upstream_request()
            .header("x-rate-limited")
            .as_deref(),
        Some("shadow")
    );
    assert_eq!(
        over.remaining.as_deref(),
        Some("0"),
        "headers as if enforced"
    );
    assert_eq!(counter(&host, "rate_limited"), 1);
    assert_eq!(counter(&host, "enforced"), 0);
    assert_eq!(counter(&host, "ok"), 1);
}

#[test]
fn without_filter_enabled_nothing_is_checked_as_in_native() {
    let host = TestHost::new();
    let plugin = host
        .plugin(filter_wasm("rate_limit"))
        .vm_id(VM_ID)
        .config(json!({"stat_prefix": "rl", "token_bucket": bucket(1, 1, "60s")}))
        .start()
        .unwrap();
    assert!(plugin
        .log_messages(test_host::LogLevel::Warn)
        .iter()
        .any(|line| line.contains("filter_enabled is unset")));
    assert_eq!(statuses(&plugin, &[], 3), [200, 200, 200]);
    assert_eq!(counter(&host, "enabled"), 0);
    assert!(send(&plugin, &[]).limit.is_none());
}

#[test]
fn filter_enabled_samples_a_share_of_requests() {
    let host = TestHost::new();
    let mut half = config(json!({"token_bucket": bucket(1000, 1, "60s")}));
    half["filter_enabled"] = json!({"default_value": {"numerator": 50, "denominator": "HUNDRED"}});
    let plugin = start_on(&host, half);
    statuses(&plugin, &[], 400);
    let checked = counter(&host, "enabled");
    assert!((120..=280).contains(&checked), "{checked} of 400");
    assert_eq!(counter(&host, "ok"), checked);
}

#[test]
fn status_and_response_headers_to_add_shape_the_reply() {
    let host = TestHost::new();
    let plugin = start_on(
        &host,
        config(json!({
            "token_bucket": bucket(1, 1, "3600s"),
            "status": {"code": 503},
            "enable_x_ratelimit_headers": "OFF",
            "response_headers_to_add": [
                {"header": {"key": "x-limited-by", "value": "wasm"}},
                {"header": {"key": "x-limited-by", "value": "again"}}
            ]
        })),
    );
    let allowed = send(&plugin, &[]);
    assert_eq!(allowed.status, 200);
    assert_eq!(
        allowed.stream.client_response().header("x-limited-by"),
        None
    );
    assert_eq!(allowed.limit, None, "x-ratelimit headers are off");
    let limited = send(&plugin, &[]);
    assert_eq!(limited.status, 503);
    assert_eq!(limited.retry_after.as_deref(), Some("3600"));
    let reply = limited.stream.local_response().unwrap();
    assert_eq!(
        reply.headers.get_all("x-limited-by"),
        [&b"wasm"[..], b"again"]
    );
}

#[test]
fn vms_interleaving_on_one_key_admit_exactly_the_bucket() {
    let host = TestHost::new();
    let config = config(json!({"token_bucket": bucket(10, 1, "3600s")}));
    let plugins: Vec<Plugin> = (0..4).map(|_| start_on(&host, config.clone())).collect();
    let mut admitted = 0;
    for round in 0..25 {
        for plugin in &plugins {
            let mut stream = plugin.http_stream().unwrap();
            let action = stream
                .send_request_headers(&[(":path", "/"), (":method", "GET")], true)
                .unwrap();
            if action == Action::Continue {
                admitted += 1;
            }
            assert!(admitted <= 10, "over-admitted in round {round}");
        }
    }
    assert_eq!(admitted, 10);
    // One token's time later, exactly one more, whichever VM asks.
    host.advance_clock(Duration::from_secs(3600));
    let more: usize = plugins
        .iter()
        .map(|plugin| {
            statuses(plugin, &[], 3)
                .iter()
                .filter(|&&s| s == 200)
                .count()
        })
        .sum();
    assert_eq!(more, 1);
    assert_eq!(counter(&host, "ok"), 11);
}

#[test]
fn vms_on_threads_admit_exactly_the_bucket_retrying_cas_conflicts() {
    // Four workers on four threads drain one bucket at once. CAS conflicts happen (they are
    // counted) and are retried; the total admitted is the bucket, never more.
    let host = TestHost::new();
    let config = config(json!({"token_bucket": bucket(1000, 1, "3600s")}));
    let mut conflicts = 0;
    for round in 0..20 {
        let barrier = Arc::new(Barrier::new(4));
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let host = host.clone();
                let config = config.clone();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    let plugin = start_on(&host, config);
                    barrier.wait();
                    let mut admitted = 0;
                    for _ in 0..300 {
                        let mut stream = plugin.http_stream().unwrap();
                        let action = stream
                            .send_request_headers(&[(":path", "/"), (":method", "GET")], true)
                            .unwrap();
                        admitted += usize::from(action == Action::Continue);
                        stream.end().unwrap();
                    }
                    admitted
                })
            })
            .collect();
        let admitted: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
        assert_eq!(
            admitted, 1000,
            "round {round}: 1200 requests, a bucket of 1000"
        );
        conflicts = counter(&host, "shared_data_conflict");
        if conflicts > 0 {
            break;
        }
        // Refill for the next round.
        host.advance_clock(Duration::from_secs(3600 * 1000));
    }
    assert!(conflicts > 0, "no CAS conflict in 20 rounds of 4 threads");
}

#[test]
fn sprayed_keys_stay_in_a_fixed_table_and_overflow_to_a_shared_bucket() {
    let host = TestHost::new();
    let plugin = start_on(
        &host,
        config(json!({
            "max_dynamic_descriptors": 16,
            "rate_limits": [{"actions": [{"request_headers": {"header_name": "x-key", "descriptor_key": "key"}}]}],
            "descriptors": [descriptor("key", "", bucket(3, 1, "10s"))]
        })),
    );
    let table = b"/0/rate_limit/v1/rl/descriptor/key=/1x16/0";
    let overflow = b"/0/rate_limit/v1/rl/descriptor/key=/overflow";
    assert_eq!(host.shared_data(VM_ID, table).unwrap().0.len(), 16 * 24);
    let spray = |range: std::ops::Range<u32>| -> Vec<u16> {
        range
            .map(|i| send(&plugin, &[("x-key", &format!("attacker-{i}"))]).status)
            .collect()
    };
    // 16 keys get their own bucket; the next ones share the overflow bucket of 3.
    let statuses = spray(0..40);
    assert!(statuses[..16].iter().all(|&s| s == 200));
    assert_eq!(&statuses[16..20], [200, 200, 200, 429]);
    assert!(statuses[20..].iter().all(|&s| s == 429));
    assert_eq!(counter(&host, "descriptor_set_full"), 24);
    assert_eq!(host.shared_data(VM_ID, table).unwrap().0.len(), 16 * 24);
    assert!(host.shared_data(VM_ID, overflow).is_some());
    // A key that has a bucket keeps it: no eviction while its bucket is in use.
    assert_eq!(send(&plugin, &[("x-key", "attacker-0")]).status, 200);
    assert_eq!(send(&plugin, &[("x-key", "attacker-0")]).status, 200);
    assert_eq!(send(&plugin, &[("x-key", "attacker-0")]).status, 429);
    // Once the buckets have refilled, their entries are free for new keys.
    host.advance_clock(Duration::from_secs(30));
    assert_eq!(send(&plugin, &[("x-key", "newcomer")]).status, 200);
    assert_eq!(counter(&host, "descriptor_set_full"), 24);
}

#[test]
fn a_bad_config_is_rejected_naming_the_field() {
    let host = TestHost::new();
    let error = host
        .plugin(filter_wasm("rate_limit"))
        .config(
            json!({"stat_prefix": "rl", "token_bucket": {"max_tokens": 5, "fill_interval": "5"}}),
        )
        .start()
        .err()
        .expect("configure should fail");
    match error {
        Error::Rejected { callback, logs } => {
            assert_eq!(callback, "proxy_on_configure");
            assert!(
                logs.iter().any(|line| line.starts_with(
                    "rate_limit: invalid configuration at token_bucket.fill_interval: "
                )),
                "{logs:?}"
            );
        }
        other => panic!("unexpected {other}"),
    }
}
