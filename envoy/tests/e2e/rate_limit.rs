//! rate-limit in real Envoy (V8) with four workers: concurrent bursts admit exactly the bucket,
//! and native local_ratelimit with the same config, in the same Envoy, admits the same requests
//! with the same headers.

use envoy_harness::config::{filter_wasm, native_filter, wasm_filter, BootstrapBuilder};
use envoy_harness::{run_expecting_exit, EchoUpstream, Envoy, EnvoyOptions, Request, Response};
use serde_json::{json, Value};
use std::time::Duration;

const WORKERS: u32 = 4;

fn percent(numerator: u32) -> Value {
    json!({"default_value": {"numerator": numerator, "denominator": "HUNDRED"}, "runtime_key": "rl"})
}

/// A local_ratelimit config that both filters accept, enabled and enforced for every request.
fn limit_config(stat_prefix: &str, extra: Value) -> Value {
    let mut config = json!({
        "stat_prefix": stat_prefix,
        "filter_enabled": percent(100),
        "filter_enforced": percent(100),
        "enable_x_ratelimit_headers": "DRAFT_VERSION_03",
        "response_headers_to_add": [{"header": {"key": "x-rate-limited", "value": "yes"}}],
    });
    for (key, value) in extra.as_object().cloned().unwrap_or_default() {
        config[key] = value;
    }
    config
}

fn bucket(max: u32, interval: &str) -> Value {
    json!({"max_tokens": max, "tokens_per_fill": 1, "fill_interval": interval})
}

fn wasm(config: &Value) -> Value {
    wasm_filter("rate_limit", &filter_wasm("rate_limit"), config)
}

fn native(config: &Value) -> Value {
    native_filter(
        "envoy.filters.http.local_ratelimit",
        "local_ratelimit.v3.LocalRateLimit",
        config.clone(),
    )
}

fn start(builder: BootstrapBuilder) -> Envoy {
    Envoy::start_with(
        builder.build(),
        &EnvoyOptions {
            concurrency: WORKERS,
            ..EnvoyOptions::default()
        },
    )
    .unwrap()
}

/// Native local_ratelimit on listener `native` and ours on `wasm`, with the same `extra` settings
/// (each with its own stat prefix).
fn side_by_side(upstream: &EchoUpstream, extra: Value) -> Envoy {
    start(
        BootstrapBuilder::new(upstream.port())
            .listener(
                "native",
                vec![native(&limit_config("native", extra.clone()))],
            )
            .listener("wasm", vec![wasm(&limit_config("wasm", extra))]),
    )
}

/// Sends `total` requests from `threads` threads at once (each on its own connection, so the
/// kernel spreads them over the workers) and returns every response.
fn burst(port: u16, request: &Request, total: usize, threads: usize) -> Vec<Response> {
    std::thread::scope(|scope| {
        let senders: Vec<_> = (0..threads)
            .map(|thread| {
                scope.spawn(move || {
                    (thread..total)
                        .step_by(threads)
                        .map(|_| request.send(port).expect("Envoy answers"))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        senders
            .into_iter()
            .flat_map(|sender| sender.join().expect("sender thread"))
            .collect()
    })
}

fn count(responses: &[Response], status: u16) -> usize {
    responses.iter().filter(|r| r.status == status).count()
}

/// How many workers accepted connections. Listener stats are named by the configured address,
/// and the harness binds port 0, so this counts every listener of the Envoy.
fn busy_workers(envoy: &Envoy) -> usize {
    (0..WORKERS)
        .filter(|worker| {
            envoy
                .stat(&format!(
                    "listener.127.0.0.1_0.worker_{worker}.downstream_cx_total"
                ))
                .unwrap_or(0)
                > 0
        })
        .count()
}

#[test]
fn a_concurrent_burst_on_four_workers_admits_exactly_max_tokens() {
    let upstream = EchoUpstream::start().unwrap();
    let config = limit_config("burst", json!({"token_bucket": bucket(25, "3600s")}));
    let envoy = start(BootstrapBuilder::new(upstream.port()).listener("main", vec![wasm(&config)]));
    let responses = burst(envoy.port(), &Request::get("/burst"), 400, 16);
    assert_eq!(responses.len(), 400);
    assert_eq!(count(&responses, 200), 25, "{}", envoy.logs());
    assert_eq!(count(&responses, 429), 375);
    assert!(
        busy_workers(&envoy) >= 2,
        "the burst should reach several workers"
    );
    let stat = |name: &str| {
        envoy
            .stat(&format!("wasmcustom.burst.http_local_rate_limit.{name}"))
            .unwrap_or(0)
    };
    assert_eq!(stat("ok"), 25);
    assert_eq!(stat("rate_limited"), 375);
    assert_eq!(stat("enforced"), 375);
    assert_eq!(stat("shared_data_error"), 0);
    assert!(!envoy.logs().contains("wasm log"), "{}", envoy.logs());
}

/// The headers both filters set, from a response.
fn limit_headers(
    response: &Response,
) -> (
    u16,
    Option<String>,
    Option<String>,
    Option<u64>,
    Option<String>,
) {
    (
        response.status,
        response.header("x-ratelimit-limit"),
        response.header("x-ratelimit-remaining"),
        response
            .header("x-ratelimit-reset")
            .and_then(|r| r.parse().ok()),
        response.header("x-rate-limited"),
    )
}

/// Compares native and wasm responses position by position; `x-ratelimit-reset` may differ by
/// one second (the two read the clock at slightly different moments).
fn assert_same_headers(native: &[Response], wasm: &[Response], what: &str) {
    assert_eq!(native.len(), wasm.len());
    for (index, (native, wasm)) in native.iter().zip(wasm).enumerate() {
        let (n, w) = (limit_headers(native), limit_headers(wasm));
        assert_eq!(
            (n.0, &n.1, &n.2, &n.4),
            (w.0, &w.1, &w.2, &w.4),
            "{what} #{index}"
        );
        match (n.3, w.3) {
            (Some(n), Some(w)) => assert!(n.abs_diff(w) <= 1, "{what} #{index}: reset {n} vs {w}"),
            (n, w) => assert_eq!(n, w, "{what} #{index}"),
        }
        if wasm.status == 429 {
            assert_eq!(
                wasm.header("retry-after")
                    .and_then(|r| r.parse::<u64>().ok()),
                w.3,
                "retry-after is the reset"
            );
            assert_eq!(native.header("retry-after"), None);
            assert_eq!(native.header("x-envoy-ratelimited"), None);
            assert_eq!(wasm.header("x-envoy-ratelimited"), None);
        }
    }
}

#[test]
fn same_admissions_and_headers_as_native_local_ratelimit_under_the_same_burst() {
    let upstream = EchoUpstream::start().unwrap();
    let extra = json!({"token_bucket": bucket(30, "3600s")});
    let envoy = side_by_side(&upstream, extra);
    let native_port = envoy.listener_port("native").unwrap();
    let wasm_port = envoy.listener_port("wasm").unwrap();
    let request = Request::get("/differential");
    // A few requests one at a time: the headers must match request for request.
    let sequential = |port| {
        (0..5)
            .map(|_| request.send(port).unwrap())
            .collect::<Vec<_>>()
    };
    assert_same_headers(
        &sequential(native_port),
        &sequential(wasm_port),
        "sequential",
    );
    // Then the same concurrent burst against both at once.
    let (native_burst, wasm_burst) = std::thread::scope(|scope| {
        let native = scope.spawn(|| burst(native_port, &request, 300, 12));
        let wasm = scope.spawn(|| burst(wasm_port, &request, 300, 12));
        (native.join().unwrap(), wasm.join().unwrap())
    });
    assert_eq!(
        count(&native_burst, 200),
        25,
        "native admits the rest of its bucket"
    );
    assert_eq!(count(&wasm_burst, 200), count(&native_burst, 200));
    assert_eq!(count(&wasm_burst, 429), count(&native_burst, 429));
    // Limited responses after the burst carry the same headers.
    let after = |port| {
        (0..2)
            .map(|_| request.send(port).unwrap())
            .collect::<Vec<_>>()
    };
    assert_same_headers(&after(native_port), &after(wasm_port), "after the burst");
    assert_eq!(
        envoy.stat("native.http_local_rate_limit.ok"),
        envoy.stat("wasmcustom.wasm.http_local_rate_limit.ok")
    );
    assert_eq!(
        envoy.stat("native.http_local_rate_limit.rate_limited"),
        envoy.stat("wasmcustom.wasm.http_local_rate_limit.rate_limited")
    );
}

#[test]
fn descriptors_select_the_same_buckets_as_native() {
    let upstream = EchoUpstream::start().unwrap();
    let extra = json!({
        "token_bucket": bucket(6, "3600s"),
        "rate_limits": [
            {"actions": [{"request_headers": {"header_name": "x-user", "descriptor_key": "user"}}]},
            {"actions": [{"header_value_match": {"descriptor_value": "writes",
                "headers": [{"name": ":method", "string_match": {"exact": "POST"}}]}}]}
        ],
        "descriptors": [
            {"entries": [{"key": "user", "value": "alice"}], "token_bucket": bucket(2, "3600s")},
            {"entries": [{"key": "user", "value": ""}], "token_bucket": bucket(1, "1800s")},
            {"entries": [{"key": "header_match", "value": "writes"}], "token_bucket": bucket(3, "3600s")}
        ]
    });
    let envoy = side_by_side(&upstream, extra);
    let get = |user: Option<&str>| {
        let request = Request::get("/d");
        match user {
            Some(user) => request.header("x-user", user),
            None => request,
        }
    };
    let post_as = |user: &str| {
        let mut request = get(Some(user));
        request.method = "POST".into();
        request
    };
    let script = vec![
        get(Some("alice")),
        get(Some("alice")),
        get(Some("alice")),
        get(Some("bob")),
        get(Some("bob")),
        get(Some("carol")),
        post_as("dave"),
        post_as("erin"),
        get(None),
        get(None),
        get(None),
    ];
    let run = |port| {
        script
            .iter()
            .map(|request| request.send(port).unwrap())
            .collect::<Vec<_>>()
    };
    let native_responses = run(envoy.listener_port("native").unwrap());
    let wasm_responses = run(envoy.listener_port("wasm").unwrap());
    assert_same_headers(&native_responses, &wasm_responses, "descriptors");
    // The comparison means something only if several buckets limited.
    let statuses: Vec<u16> = wasm_responses.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [200, 200, 429, 200, 429, 200, 200, 200, 429, 429, 429],
        "{}",
        envoy.logs()
    );
}

#[test]
fn shadow_mode_counts_like_native_and_lets_everything_through() {
    let upstream = EchoUpstream::start().unwrap();
    let extra = json!({
        "token_bucket": bucket(2, "3600s"),
        "filter_enforced": percent(0),
        "request_headers_to_add_when_not_enforced": [{"header": {"key": "x-shadow-limited", "value": "true"}}]
    });
    let envoy = side_by_side(&upstream, extra);
    for listener in ["native", "wasm"] {
        let port = envoy.listener_port(listener).unwrap();
        let responses: Vec<Response> = (0..4)
            .map(|_| Request::get("/s").send(port).unwrap())
            .collect();
        assert!(responses.iter().all(|r| r.status == 200), "{listener}");
        let marked: Vec<bool> = responses
            .iter()
            .map(|r| r.upstream_header("x-shadow-limited").is_some())
            .collect();
        assert_eq!(marked, [false, false, true, true], "{listener}");
    }
    for stat in ["ok", "rate_limited", "enforced"] {
        assert_eq!(
            envoy
                .stat(&format!("wasmcustom.wasm.http_local_rate_limit.{stat}"))
                .unwrap_or(0),
            envoy
                .stat(&format!("native.http_local_rate_limit.{stat}"))
                .unwrap_or(0),
            "{stat}"
        );
    }
}

#[test]
fn envoy_refuses_a_bad_config_and_logs_the_field_path() {
    let upstream = EchoUpstream::start().unwrap();
    let config = limit_config("bad", json!({"token_bucket": bucket(5, "0.01s")}));
    let bootstrap = BootstrapBuilder::new(upstream.port())
        .listener("main", vec![wasm(&config)])
        .build();
    let exited = run_expecting_exit(&bootstrap, Duration::from_secs(60)).unwrap();
    assert!(
        exited.status.is_some_and(|status| !status.success()),
        "{}",
        exited.logs
    );
    assert!(
        exited.logs.contains(
            "rate_limit: invalid configuration at token_bucket.fill_interval: must be at least 50ms"
        ),
        "{}",
        exited.logs
    );
}
