//! The soak: every filter chained in chain.wasm in one Envoy with two workers, under a steady mix
//! of valid and invalid traffic for `SOAK_SECONDS` (30 in `make test`, 300 in `make soak`), while
//! the key server flaps between serving its keys, failing and hanging. It passes when no wasm VM
//! failed or was recreated, Envoy's memory grew less than 5% after warm-up, and no response was a
//! 5xx.

use crate::tokens::{jwk, seconds, token};
use envoy_harness::authz::AuthzServer;
use envoy_harness::config::{filter_wasm, wasm_filter, BootstrapBuilder};
use envoy_harness::echo::{CannedReply, ReceivedRequest};
use envoy_harness::{EchoUpstream, Envoy, EnvoyOptions, Request};
use jsonwebtoken::Algorithm;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

/// Client threads; each sends one request at a time on a new connection.
const CLIENTS: usize = 2;
/// The pause after each request: a steady load that leaves the e2e tests running beside the soak
/// (in `make test`) their share of two cores.
const PAUSE: Duration = Duration::from_millis(5);
/// The least load that still makes a soak of it, in requests per second.
const MIN_RATE: f64 = 50.0;
/// How often the key server changes its mind.
const FLAP: Duration = Duration::from_millis(1500);

/// Kinds of request in the mix.
const KINDS: u64 = 14;

/// The authorization service: `/deny…` is refused, the rest allowed.
fn authorize(request: &ReceivedRequest) -> (CannedReply, Duration) {
    let status = if request.path.starts_with("/check/deny") {
        403
    } else {
        200
    };
    let reply = CannedReply {
        status,
        headers: Vec::new(),
        body: Vec::new(),
    };
    (reply, Duration::ZERO)
}

fn chain_config(jwks_cluster: &str) -> Value {
    let always = json!({"default_value": {"numerator": 100, "denominator": "HUNDRED"}});
    json!({"filters": [
        {"name": "ext-authz", "config": {"http_service": {
            "server_uri": {"uri": "http://authz", "cluster": "authz", "timeout": "0.5s"},
            "path_prefix": "/check"
        }}},
        {"name": "cors", "config": {"policies": [{
            "match": {"prefix": "/"},
            "allow_origin_string_match": [{"exact": "https://app.example"}],
            "allow_methods": "GET, POST",
            "allow_headers": "authorization, content-type",
            "max_age": "60"
        }]}},
        {"name": "jwt-auth", "config": {
            "providers": {
                "local": {
                    "issuer": "https://issuer.example",
                    "audiences": ["api"],
                    "local_jwks": {"inline_string": json!({"keys": [jwk(Algorithm::ES256)]}).to_string()},
                    "claim_to_headers": [{"header_name": "x-user", "claim_name": "sub"}],
                    "jwt_cache_config": {"jwt_cache_size": 64}
                },
                "remote": {
                    "issuer": "https://remote.example",
                    "audiences": ["api"],
                    "from_headers": [{"name": "x-remote-token", "value_prefix": "Bearer "}],
                    "remote_jwks": {
                        "http_uri": {"uri": "http://keys.example/jwks.json", "cluster": jwks_cluster, "timeout": "0.5s"},
                        "cache_duration": "1s"
                    }
                }
            },
            "rules": [
                {"match": {"prefix": "/api"}, "requires": {"provider_name": "local"}},
                {"match": {"prefix": "/remote"}, "requires": {"provider_name": "remote"}}
            ]
        }},
        {"name": "rbac", "config": {"rules": {"action": "DENY", "policies": {
            "no-admin": {
                "permissions": [{"url_path": {"path": {"prefix": "/admin"}}}],
                "principals": [{"any": true}]
            }
        }}}},
        {"name": "basic-auth", "config": {
            "users": {"inline_string": "user1:{SHA}tESsBmE/yNY3lb6a0L6vVQEZNqw=\n"},
            "rules": [{"match": {"prefix": "/basic"}}, {"match": {"prefix": "/"}, "disabled": true}]
        }},
        {"name": "rate-limit", "config": {
            "stat_prefix": "soak",
            "filter_enabled": always,
            "filter_enforced": always,
            "token_bucket": {"max_tokens": 1000000, "tokens_per_fill": 1000000, "fill_interval": "1s"},
            "rate_limits": [{"actions": [{"request_headers": {"header_name": "x-tenant", "descriptor_key": "tenant"}}]}],
            "descriptors": [{"entries": [{"key": "tenant", "value": ""}],
                             "token_bucket": {"max_tokens": 5, "tokens_per_fill": 5, "fill_interval": "5s"}}],
            "max_dynamic_descriptors": 1000
        }},
        {"name": "header-rewrite", "config": {"mutations": {
            "request_mutations": [
                {"append": {"header": {"key": "x-client", "value": "%REQ(user-agent)%"}}},
                {"append": {"header": {"key": ":path", "value": "%REQ(x-new-path)%"}, "append_action": "OVERWRITE_IF_EXISTS"}}
            ],
            "response_mutations": [{"append": {"header": {"key": "x-chain", "value": "soak"}}}]
        }}},
        {"name": "json-redact", "config": {
            "rules": [{"match": {"prefix": "/"}, "direction": "both", "redact": ["/ssn", "/cards/*/number"]}],
            "max_body_bytes": 65536
        }}
    ]})
}

/// Request `n` of the mix: valid and invalid tokens, a refused path, a preflight, good and bad
/// passwords, a busy tenant over its limit, a hostile rewrite, odd bytes, repeats and a big header.
fn request(n: u64, local_token: &str, remote_token: &str) -> Request {
    match n % KINDS {
        0 => Request::get("/api/items").header("authorization", format!("Bearer {local_token}")),
        1 => Request::get("/api/items").header("authorization", "Bearer not.a.token"),
        2 => Request::get("/remote/x").header("x-remote-token", format!("Bearer {remote_token}")),
        3 => Request::get("/admin/panel"),
        4 => Request {
            method: "OPTIONS".into(),
            ..Request::get("/public")
        }
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST"),
        5 => Request::get("/basic").header("authorization", "Basic dXNlcjE6dGVzdDE="),
        6 => Request::get("/basic").header("authorization", "Basic dXNlcjE6d3Jvbmc="),
        7 => Request::get("/public").header("x-tenant", "busy"),
        8 => Request::get("/public").header("x-new-path", "GET /evil"),
        9 => Request::get("/public/%2e%2e/%ff").header("x-junk", [0xff, 0xfe, b'a']),
        10 => Request::get("/api/items")
            .header("authorization", "Bearer ")
            .header("authorization", "Bearer x.y.z"),
        11 => Request::get("/public").header("x-big", vec![b'a'; 8 * 1024]),
        12 => Request {
            method: "POST".into(),
            body: br#"{"ssn": "123-45-6789", "cards": [{"number": "4111"}], "n": 1}"#.to_vec(),
            ..Request::get("/public/orders")
        }
        .header("content-type", "application/json"),
        _ => Request::get("/deny/this"),
    }
}

#[test]
fn the_whole_chain_holds_up_under_mixed_traffic_and_a_flapping_key_server() {
    let seconds_to_run: u64 = std::env::var("SOAK_SECONDS")
        .ok()
        .map(|s| s.parse().expect("SOAK_SECONDS is a number of seconds"))
        .unwrap_or(30);
    let upstream = EchoUpstream::start().unwrap();
    let keys = EchoUpstream::start().unwrap();
    let authz = AuthzServer::start(authorize).unwrap();
    let config = chain_config("keys");
    let bootstrap = BootstrapBuilder::new(upstream.port())
        .listener(
            "chain",
            vec![wasm_filter("chain", &filter_wasm("chain"), &config)],
        )
        .cluster("keys", keys.port())
        .cluster("authz", authz.port())
        .build();
    let envoy = Envoy::start_with(
        bootstrap,
        &EnvoyOptions {
            concurrency: 2,
            ..EnvoyOptions::default()
        },
    )
    .unwrap();
    let port = envoy.port();
    let now = seconds(SystemTime::now());
    let local_token = token(
        Algorithm::ES256,
        &json!({"iss": "https://issuer.example", "aud": "api", "sub": "alice", "exp": now + 3600}),
    );
    let remote_token = token(
        Algorithm::ES256,
        &json!({"iss": "https://remote.example", "aud": "api", "sub": "bob", "exp": now + 3600}),
    );
    let jwks = json!({"keys": [jwk(Algorithm::ES256)]}).to_string();

    // The key server: keys, then 503, then keys, then nothing useful (a 200 that is no JWKS).
    let stop = Arc::new(AtomicBool::new(false));
    let flapper = {
        let stop = stop.clone();
        let keys = &keys;
        let jwks = jwks.clone();
        move || {
            let mut round = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let reply = match round % 3 {
                    0 => CannedReply {
                        status: 200,
                        headers: vec![("content-type".into(), b"application/json".to_vec())],
                        body: jwks.clone().into_bytes(),
                    },
                    1 => CannedReply {
                        status: 503,
                        headers: Vec::new(),
                        body: b"down".to_vec(),
                    },
                    _ => CannedReply {
                        status: 200,
                        headers: Vec::new(),
                        body: b"{\"keys\": [".to_vec(),
                    },
                };
                keys.reply_always(reply);
                round += 1;
                thread::sleep(FLAP);
            }
        }
    };

    // Statuses by request kind (`n % KINDS`) and in all.
    let by_kind: Mutex<BTreeMap<(u64, u16), u64>> = Mutex::new(BTreeMap::new());
    let errors: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds_to_run);
    let warm_up = Duration::from_secs((seconds_to_run / 5).clamp(3, 30));
    let created_stat = "wasm.envoy.wasm.runtime.v8.created";
    let mut rss_after_warm_up = 0;
    let mut created_after_warm_up = None;
    thread::scope(|scope| {
        scope.spawn(flapper);
        for client in 0..CLIENTS as u64 {
            let (by_kind, errors) = (&by_kind, &errors);
            let (local_token, remote_token) = (&local_token, &remote_token);
            scope.spawn(move || {
                let mut n = client;
                while Instant::now() < deadline {
                    match request(n, local_token, remote_token).send(port) {
                        Ok(response) => {
                            *by_kind
                                .lock()
                                .unwrap()
                                .entry((n % KINDS, response.status))
                                .or_default() += 1;
                            if response.status >= 500 {
                                errors.lock().unwrap().push(format!(
                                    "request {} got {}: {}",
                                    n % KINDS,
                                    response.status,
                                    String::from_utf8_lossy(&response.body)
                                ));
                            }
                        }
                        Err(error) => errors
                            .lock()
                            .unwrap()
                            .push(format!("request {}: {error}", n % KINDS)),
                    }
                    n += CLIENTS as u64;
                    thread::sleep(PAUSE);
                }
            });
        }
        thread::sleep(warm_up);
        rss_after_warm_up = envoy.rss_bytes().unwrap();
        created_after_warm_up = envoy.stat(created_stat);
        while Instant::now() < deadline {
            thread::sleep(Duration::from_millis(200));
        }
        stop.store(true, Ordering::Relaxed);
    });
    let rss_at_end = envoy.rss_bytes().unwrap();
    let by_kind = by_kind.into_inner().unwrap();
    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    for ((_, status), count) in &by_kind {
        *statuses.entry(*status).or_default() += count;
    }
    let total: u64 = statuses.values().sum();
    let growth = rss_at_end as f64 / rss_after_warm_up as f64 - 1.0;
    let logs = envoy.logs();
    let summary = format!(
        "soak {seconds_to_run} s: {total} requests, statuses {statuses:?}, RSS {:.1} MiB after \
         {warm_up:?} of warm-up, {:.1} MiB at the end ({:+.2}%), VMs created {:?} then {:?}",
        rss_after_warm_up as f64 / (1 << 20) as f64,
        rss_at_end as f64 / (1 << 20) as f64,
        growth * 100.0,
        created_after_warm_up,
        envoy.stat(created_stat),
    );
    println!("{summary}");
    let errors = errors.into_inner().unwrap();
    assert!(errors.is_empty(), "{summary}\n{}", errors.join("\n"));
    // Every kind of answer the mix asks for came back, and the remote-key requests were let in
    // while the key server served keys and refused while it did not.
    for status in [200, 401, 403, 429] {
        assert!(statuses.contains_key(&status), "no {status}: {summary}");
    }
    for status in [200, 401] {
        assert!(
            by_kind.contains_key(&(2, status)),
            "remote-key requests never got {status}: {by_kind:?}"
        );
    }
    assert!(
        total as f64 >= seconds_to_run as f64 * MIN_RATE,
        "too few requests: {summary}"
    );
    assert!(created_after_warm_up.is_some(), "{summary}");
    assert_eq!(
        envoy.stat(created_stat),
        created_after_warm_up,
        "a VM was recreated: {summary}"
    );
    assert!(!logs.contains("panicked"), "{logs}");
    assert!(
        !logs.contains("RuntimeError"),
        "a wasm callback trapped: {logs}"
    );
    assert!(growth < 0.05, "{summary}");
    // The chain still does its work after the soak: ext-authz refuses, json-redact masks.
    assert_eq!(
        request(13, &local_token, &remote_token)
            .send(port)
            .unwrap()
            .status,
        403
    );
    let redacted = request(12, &local_token, &remote_token).send(port).unwrap();
    assert_eq!(redacted.status, 200, "{summary}");
    let upstream_body = redacted.json()["body"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        upstream_body.contains(r#""ssn": "***""#) && !upstream_body.contains("4111"),
        "{upstream_body}"
    );
}
