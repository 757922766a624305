//! global-rate-limit in real Envoy, against real rate limit services on loopback:
//! - three Envoys at two workers each share one rate-limit-service and one Redis, and a burst
//!   spread over them admits exactly the limit;
//! - the service restarts mid-run and the count goes on (the counters live in Redis);
//! - Redis dies: `failure_mode_deny` true and false do what native `envoy.filters.http.ratelimit`
//!   does, and nothing hangs;
//! - a differential against native ratelimit in one Envoy, on a scripted service (every reply the
//!   API allows) and on rate-limit-service: the client, the upstream and the service see the same.

use envoy_harness::config::{filter_wasm, native_filter, wasm_filter, BootstrapBuilder};
use envoy_harness::differential::{run_pairs, shortened, Seen};
use envoy_harness::rls::ScriptedRls;
use envoy_harness::servers::free_port_below_ephemeral;
use envoy_harness::{EchoUpstream, Envoy, EnvoyOptions, Request};
use rate_limit_service::testing::RedisServer;
use rate_limit_service::{Limits, Server, Storage};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::TcpListener;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The filter config both sides take: native's fields, on the service cluster `cluster`.
fn filter_config(domain: &str, cluster: &str, extra: Value) -> Value {
    let mut config = json!({
        "domain": domain,
        "timeout": "2s",
        "rate_limit_service": {
            "grpc_service": {"envoy_grpc": {"cluster_name": cluster}},
            "transport_api_version": "V3"
        }
    });
    for (key, value) in extra.as_object().cloned().unwrap_or_default() {
        config[key] = value;
    }
    config
}

/// Our filter with `rate_limits` in its config (a wasm filter sees no route).
fn wasm(config: &Value, rate_limits: &Value) -> Value {
    let mut config = config.clone();
    config["rate_limits"] = rate_limits.clone();
    wasm_filter(
        "global_rate_limit",
        &filter_wasm("global_rate_limit"),
        &config,
    )
}

/// Native ratelimit, whose `rate_limits` go on the route.
fn native(config: &Value) -> Value {
    native_filter(
        "envoy.filters.http.ratelimit",
        "ratelimit.v3.RateLimit",
        config.clone(),
    )
}

fn routes_with(rate_limits: &Value) -> Value {
    json!([{"match": {"prefix": "/"}, "route": {"cluster": "upstream", "rate_limits": rate_limits}}])
}

fn generic_key(value: &str) -> Value {
    json!([{"actions": [{"generic_key": {"descriptor_value": value}}]}])
}

fn start_service(limits: &str, storage: Storage) -> Server {
    let limits = Limits::parse(limits).unwrap();
    Server::start(TcpListener::bind("127.0.0.1:0").unwrap(), limits, storage).unwrap()
}

fn start_envoy(builder: BootstrapBuilder, workers: u32) -> Envoy {
    Envoy::start_with(
        builder.build(),
        &EnvoyOptions {
            concurrency: workers,
            ..EnvoyOptions::default()
        },
    )
    .unwrap()
}

/// Statuses of `requests` GETs of `path`, `threads` at a time, each on a new connection, spread
/// round-robin over `ports`.
fn burst(ports: &[u16], path: &str, requests: usize, threads: usize) -> BTreeMap<u16, usize> {
    let statuses = Mutex::new(BTreeMap::new());
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if index >= requests {
                    break;
                }
                let port = ports[index % ports.len()];
                let status = Request::get(path).send(port).map_or(0, |r| r.status);
                *statuses.lock().unwrap().entry(status).or_insert(0) += 1;
            });
        }
    });
    statuses.into_inner().unwrap()
}

#[test]
fn three_proxies_sharing_one_service_and_redis_admit_exactly_the_limit() {
    const LIMIT: usize = 30;
    let redis = RedisServer::start().unwrap();
    let service = start_service(
        &format!(
            "domain: burst\ndescriptors:\n  - key: generic_key\n    value: shared\n    \
             rate_limit: {{unit: hour, requests_per_unit: {LIMIT}}}\n"
        ),
        Storage::Redis(redis.url()),
    );
    let upstream = EchoUpstream::start().unwrap();
    // Deny on error: a failed check shows as a 500, never as an extra admission.
    let config = filter_config(
        "burst",
        "rls",
        json!({"failure_mode_deny": true, "enable_x_ratelimit_headers": "DRAFT_VERSION_03"}),
    );
    let envoys: Vec<Envoy> = (0..3)
        .map(|_| {
            start_envoy(
                BootstrapBuilder::new(upstream.port())
                    .grpc_cluster("rls", service.port())
                    .listener("wasm", vec![wasm(&config, &generic_key("shared"))]),
                2,
            )
        })
        .collect();
    let ports: Vec<u16> = envoys.iter().map(Envoy::port).collect();

    let statuses = burst(&ports, "/burst", LIMIT * 3, 12);

    assert_eq!(
        statuses,
        BTreeMap::from([(200, LIMIT), (429, LIMIT * 2)]),
        "statuses of {} requests over three proxies",
        LIMIT * 3
    );
    assert_eq!(
        upstream.received().len(),
        LIMIT,
        "requests the upstream got"
    );
    let stat = |name: &str| -> u64 {
        envoys
            .iter()
            .map(|envoy| {
                envoy
                    .stat(&format!("wasmcustom.ratelimit.{name}"))
                    .unwrap_or(0)
            })
            .sum()
    };
    assert_eq!(
        (stat("ok"), stat("over_limit"), stat("error")),
        (LIMIT as u64, 2 * LIMIT as u64, 0)
    );
    // Each proxy took part: the burst was really spread.
    for envoy in &envoys {
        assert!(
            envoy.stat("wasmcustom.ratelimit.ok").unwrap_or(0)
                + envoy.stat("wasmcustom.ratelimit.over_limit").unwrap_or(0)
                > 0
        );
    }
    // One more, on any proxy, is refused with the service's numbers.
    let refused = Request::get("/burst").send(ports[1]).unwrap();
    assert_eq!(refused.status, 429);
    assert_eq!(
        refused.header("x-envoy-ratelimited").as_deref(),
        Some("true")
    );
    assert_eq!(
        refused.header("x-ratelimit-remaining").as_deref(),
        Some("0")
    );
    assert_eq!(
        refused.header("x-ratelimit-limit").as_deref(),
        Some(format!("{LIMIT}, {LIMIT};w=3600").as_str())
    );
}

#[test]
fn a_restarted_service_continues_the_count_from_redis() {
    let redis = RedisServer::start().unwrap();
    let limits = "domain: restart\ndescriptors:\n  - key: generic_key\n    value: r\n    \
                  rate_limit: {unit: hour, requests_per_unit: 10}\n";
    // Bound again after the restart: a port no outgoing connection can take meanwhile.
    let port = free_port_below_ephemeral();
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let service = Server::start(
        listener,
        Limits::parse(limits).unwrap(),
        Storage::Redis(redis.url()),
    )
    .unwrap();
    let upstream = EchoUpstream::start().unwrap();
    let config = filter_config("restart", "rls", json!({"failure_mode_deny": true}));
    let envoy = start_envoy(
        BootstrapBuilder::new(upstream.port())
            .grpc_cluster("rls", port)
            .listener("wasm", vec![wasm(&config, &generic_key("r"))]),
        2,
    );
    let send = || Request::get("/r").send(envoy.port()).unwrap().status;
    let first: Vec<u16> = (0..6).map(|_| send()).collect();
    assert_eq!(first, [200; 6]);

    service.stop();
    // While it is down, the check fails and failure_mode_deny refuses, at once.
    let started = Instant::now();
    assert_eq!(send(), 500);
    assert!(started.elapsed() < Duration::from_secs(3));

    let _restarted = Server::start(
        TcpListener::bind(("127.0.0.1", port)).unwrap(),
        Limits::parse(limits).unwrap(),
        Storage::Redis(redis.url()),
    )
    .unwrap();
    let second: Vec<u16> = (0..6).map(|_| send()).collect();
    assert_eq!(
        second,
        [200, 200, 200, 200, 429, 429],
        "the count goes on from 6"
    );
    assert_eq!(upstream.received().len(), 10);
}

/// A GET with the same `host` on both sides of a pair.
fn get(path: &str) -> Request {
    Request::get(path).header("host", "app.example")
}

/// Headers the differential compares.
const COMPARED: &[&str] = &[
    "x-envoy-ratelimited",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "x-rls-response",
    "retry-after",
    "content-type",
];

/// Compares each pair; a failure lists every diverging case.
fn assert_same(cases: &[(&str, &str)], results: &[(Seen, Seen)]) {
    let show = |text: &str| shortened(text, 60);
    let mut report = String::new();
    for ((variant, name), (native, wasm)) in cases.iter().zip(results) {
        if native != wasm {
            let _ = write!(
                report,
                "\n{variant} / {name}:\n  native {}\n  wasm   {}",
                native.describe(&show),
                wasm.describe(&show)
            );
        }
    }
    assert!(report.is_empty(), "native and wasm differ:{report}");
}

#[test]
fn redis_going_down_fails_as_native_does_in_both_failure_modes() {
    let mut redis = RedisServer::start().unwrap();
    let service = start_service(
        "domain: outage\ndescriptors:\n  - key: generic_key\n    rate_limit: {unit: hour, requests_per_unit: 1000}\n",
        Storage::Redis(redis.url()),
    );
    let upstream = EchoUpstream::start().unwrap();
    let mut builder = BootstrapBuilder::new(upstream.port()).grpc_cluster("rls", service.port());
    for (variant, deny) in [("deny", true), ("allow", false)] {
        let config = filter_config("outage", "rls", json!({"failure_mode_deny": deny}));
        // Each listener counts under its own descriptor value.
        builder = builder
            .listener_with_routes(
                &format!("native-{variant}"),
                vec![native(&config)],
                routes_with(&generic_key(&format!("native-{variant}"))),
            )
            .listener(
                &format!("wasm-{variant}"),
                vec![wasm(&config, &generic_key(&format!("wasm-{variant}")))],
            );
    }
    let envoy = start_envoy(builder, 2);
    let cases = [("deny", "redis up"), ("allow", "redis up")];
    let send = |port: u16, _: &()| {
        Seen::of(
            Request::get("/o")
                .header("host", "app.example")
                .send(port)
                .map_err(|e| e.to_string()),
            COMPARED,
            &["x-request-id"],
        )
    };
    let up = run_pairs(&envoy, &[("deny", &()), ("allow", &())], 1, send);
    assert_same(&cases, &up);
    assert!(up.iter().all(|(native, _)| native.status == 200));

    redis.kill();
    let started = Instant::now();
    let down = run_pairs(
        &envoy,
        &[("deny", &()), ("allow", &()), ("deny", &()), ("allow", &())],
        2,
        send,
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "the checks took {:?}",
        started.elapsed()
    );
    let cases = [
        ("deny", "redis down"),
        ("allow", "redis down"),
        ("deny", "redis down, again"),
        ("allow", "redis down, again"),
    ];
    assert_same(&cases, &down);
    let statuses: Vec<u16> = down.iter().map(|(native, _)| native.status).collect();
    assert_eq!(statuses, [500, 200, 500, 200]);
    // Both count alike: native in the upstream cluster's scope, ours under the filter's name.
    for (native, wasm) in [
        ("cluster.upstream.ratelimit.ok", "wasmcustom.ratelimit.ok"),
        (
            "cluster.upstream.ratelimit.error",
            "wasmcustom.ratelimit.error",
        ),
        (
            "cluster.upstream.ratelimit.failure_mode_allowed",
            "wasmcustom.ratelimit.failure_mode_allowed",
        ),
    ] {
        assert_eq!(envoy.stat(native), envoy.stat(wasm), "{native} vs {wasm}");
    }
    assert_eq!(envoy.stat("wasmcustom.ratelimit.ok"), Some(2));
    assert_eq!(envoy.stat("wasmcustom.ratelimit.error"), Some(4));
    assert_eq!(
        envoy.stat("wasmcustom.ratelimit.failure_mode_allowed"),
        Some(2)
    );
}

/// Listener pairs of the differential: (variant, cluster, extra config).
fn variants() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        (
            "main",
            "scripted",
            json!({"enable_x_ratelimit_headers": "DRAFT_VERSION_03"}),
        ),
        ("plain", "scripted", json!({})),
        (
            "quiet",
            "scripted",
            json!({"disable_x_envoy_ratelimited_header": true, "rate_limited_status": {"code": 302}}),
        ),
        (
            "custom",
            "scripted",
            json!({"rate_limited_status": {"code": 503}, "failure_mode_deny": true,
                   "status_on_error": {"code": 504}}),
        ),
        ("deny", "scripted", json!({"failure_mode_deny": true})),
        (
            "short",
            "scripted",
            json!({"timeout": "0.2s", "failure_mode_deny": true}),
        ),
        ("short-allow", "scripted", json!({"timeout": "0.2s"})),
        ("down", "closed", json!({"failure_mode_deny": true})),
        ("down-allow", "closed", json!({})),
        ("internal", "scripted", json!({"request_type": "internal"})),
        ("external", "scripted", json!({"request_type": "external"})),
    ]
}

/// The route's rate limits in the differential: the script and case headers make one
/// descriptor (none without `x-script`), a generic key a second.
fn differential_rate_limits() -> Value {
    json!([
        {"actions": [
            {"request_headers": {"header_name": "x-script", "descriptor_key": "script"}},
            {"request_headers": {"header_name": "x-case", "descriptor_key": "case"}}
        ]},
        {"actions": [{"generic_key": {"descriptor_value": "second", "descriptor_key": "kind"}}]}
    ])
}

#[test]
fn native_and_wasm_agree_on_every_reply_of_the_service() {
    let scripted = ScriptedRls::start().unwrap();
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let upstream = EchoUpstream::start().unwrap();
    let rate_limits = differential_rate_limits();
    let mut builder = BootstrapBuilder::new(upstream.port())
        .grpc_cluster("scripted", scripted.port())
        .grpc_cluster("closed", closed_port);
    for (variant, cluster, extra) in variants() {
        let config = filter_config("diff", cluster, extra);
        builder = builder
            .listener_with_routes(
                &format!("native-{variant}"),
                vec![native(&config)],
                routes_with(&rate_limits),
            )
            .listener(
                &format!("wasm-{variant}"),
                vec![wasm(&config, &rate_limits)],
            );
    }
    let envoy = start_envoy(builder, 2);

    let scripts = [
        "ok",
        "ok-headers",
        "statuses",
        "over",
        "over-headers-body",
        "unknown",
        "error",
        "unavailable",
    ];
    let mut cases: Vec<(&str, String, Request)> = Vec::new();
    for (variant, _, _) in variants() {
        let slow = variant.starts_with("short");
        for script in scripts.iter().chain(slow.then_some(&"hang")) {
            let case = cases.len().to_string();
            let request = get("/d").header("x-script", script).header("x-case", &case);
            cases.push((variant, script.to_string(), request.clone()));
            if variant == "internal" || variant == "external" {
                let internal = request.header("x-envoy-internal", "true");
                cases.push((variant, format!("{script}, internal"), internal));
            }
        }
        cases.push((variant, "no descriptor".into(), get("/d")));
        // proto3 strings must be UTF-8, and a header value need not be (obs-text).
        cases.push((
            variant,
            "non-UTF-8 descriptor value".into(),
            get("/d")
                .header("x-script", "ok")
                .header("x-case", b"caf\xe9-".as_slice()),
        ));
        cases.push((
            variant,
            "repeated script header".into(),
            get("/d")
                .header("x-script", "over")
                .header("x-script", "ok")
                .header("x-case", "r"),
        ));
    }
    let requests: Vec<(&str, &Request)> = cases.iter().map(|(v, _, r)| (*v, r)).collect();
    let results = run_pairs(&envoy, &requests, 4, |port, request| {
        Seen::of(
            request.send(port).map_err(|e| e.to_string()),
            COMPARED,
            &["x-request-id"],
        )
    });
    let labels: Vec<(&str, &str)> = cases.iter().map(|(v, n, _)| (*v, n.as_str())).collect();
    assert_same(&labels, &results);

    // The service got the same check from both sides.
    let mut by_case: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for request in scripted.received() {
        let case = request.entry("case").unwrap_or("-").to_string();
        by_case.entry(case).or_default().push(request);
    }
    for (case, requests) in &by_case {
        if case == "-" {
            continue;
        }
        assert_eq!(requests.len() % 2, 0, "case {case}: {requests:?}");
        assert!(
            requests.windows(2).all(|pair| pair[0] == pair[1]),
            "case {case}: the two sides sent {requests:?}"
        );
    }

    // What each reply does, so that agreeing on a wrong answer fails too.
    let status_of = |variant: &str, name: &str| {
        let index = labels.iter().position(|l| *l == (variant, name)).unwrap();
        &results[index].1
    };
    assert_eq!(status_of("main", "ok").status, 200);
    assert_eq!(status_of("main", "over").status, 429);
    assert_eq!(
        status_of("main", "over").header("x-envoy-ratelimited"),
        Some("true")
    );
    assert_eq!(status_of("quiet", "over").status, 429);
    assert_eq!(
        status_of("quiet", "over").header("x-envoy-ratelimited"),
        None
    );
    assert_eq!(status_of("custom", "over").status, 503);
    assert_eq!(status_of("custom", "error").status, 504);
    assert_eq!(status_of("plain", "error").status, 200);
    assert_eq!(status_of("deny", "unavailable").status, 500);
    assert_eq!(status_of("short", "hang").status, 500);
    assert_eq!(status_of("short-allow", "hang").status, 200);
    assert_eq!(status_of("down", "ok").status, 500);
    assert_eq!(status_of("down-allow", "ok").status, 200);
    // Both send the value's bytes as they are; the service cannot decode the check, and the
    // failure mode decides.
    assert_eq!(status_of("plain", "non-UTF-8 descriptor value").status, 200);
    assert_eq!(status_of("deny", "non-UTF-8 descriptor value").status, 500);
    let over_body = status_of("main", "over-headers-body");
    assert_eq!(over_body.header("x-rls-response"), Some("from-rls"));
    assert!(over_body.body.contains("slow down"), "{over_body:?}");
    let ok_headers = status_of("main", "ok-headers");
    assert_eq!(ok_headers.header("x-rls-response"), Some("from-rls"));
    let upstream_saw = ok_headers.upstream.as_ref().unwrap();
    assert!(upstream_saw
        .headers
        .iter()
        .any(|(name, value)| name == "x-rls-request" && value == "from-rls"));
    assert_eq!(
        status_of("main", "statuses").header("x-ratelimit-remaining"),
        Some("3")
    );
}

#[test]
fn native_and_wasm_count_alike_on_rate_limit_service() {
    // Each side has its own domain, so that their counts do not mix.
    let tree = "descriptors:\n  - key: user\n    rate_limit: {unit: hour, requests_per_unit: 3}\n  \
                - key: user\n    value: vip\n    rate_limit: {unit: hour, requests_per_unit: 5, name: vip}\n";
    let service = start_service(
        &format!("domain: count-native\n{tree}---\ndomain: count-wasm\n{tree}"),
        Storage::Memory,
    );
    let upstream = EchoUpstream::start().unwrap();
    let rate_limits = json!([{"actions": [{"request_headers": {"header_name": "x-user", "descriptor_key": "user"}}]}]);
    let extra = json!({"enable_x_ratelimit_headers": "DRAFT_VERSION_03"});
    let builder = BootstrapBuilder::new(upstream.port())
        .grpc_cluster("rls", service.port())
        .listener_with_routes(
            "native-count",
            vec![native(&filter_config("count-native", "rls", extra.clone()))],
            routes_with(&rate_limits),
        )
        .listener(
            "wasm-count",
            vec![wasm(
                &filter_config("count-wasm", "rls", extra),
                &rate_limits,
            )],
        );
    let envoy = start_envoy(builder, 2);
    let mut cases = Vec::new();
    for round in 0..6 {
        for user in ["alice", "bob", "vip"] {
            cases.push((format!("{user} #{round}"), get("/c").header("x-user", user)));
        }
    }
    cases.push(("anonymous".into(), get("/c")));
    let requests: Vec<(&str, &Request)> = cases.iter().map(|(_, r)| ("count", r)).collect();
    // One at a time: the count order is the request order.
    let compared: Vec<&'static str> = COMPARED
        .iter()
        .copied()
        .filter(|name| *name != "x-ratelimit-reset")
        .collect();
    let results = run_pairs(&envoy, &requests, 1, |port, request| {
        Seen::of(
            request.send(port).map_err(|e| e.to_string()),
            &compared,
            &["x-request-id"],
        )
    });
    let labels: Vec<(&str, &str)> = cases.iter().map(|(n, _)| ("count", n.as_str())).collect();
    assert_same(&labels, &results);
    let admitted = |user: &str| {
        cases
            .iter()
            .zip(&results)
            .filter(|((name, _), (_, wasm))| name.starts_with(user) && wasm.status == 200)
            .count()
    };
    assert_eq!(
        (admitted("alice"), admitted("bob"), admitted("vip")),
        (3, 3, 5)
    );
}
