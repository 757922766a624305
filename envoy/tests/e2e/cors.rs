//! cors against native Envoy cors in one Envoy: listener `native` runs `envoy.filters.http.cors`
//! with a `CorsPolicy` in each route's `typed_per_filter_config`, listener `wasm` runs
//! cors.wasm with the same policies matched on the same routes. Every request of the table goes
//! to both, concurrently; the status, every `access-control-*` header, every other header but
//! `date` and the upstream time, and whether the request reached the upstream must be the same.
//! `vary` differs by design (cors adds `origin` to it on every response a policy covers) and is
//! asserted as that difference; the other deliberate differences are a second table asserted on
//! both sides. A failure lists every divergence.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use envoy_harness::config::{filter_wasm, native_filter, wasm_filter, BootstrapBuilder};
use envoy_harness::{EchoUpstream, Envoy, Request, Response};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

const A: &str = "https://a.example";
const EVIL: &str = "https://evil.example";
/// Response headers that differ between any two responses, or (`vary`) by design.
const VARYING_HEADERS: &[&str] = &["date", "x-envoy-upstream-service-time", "vary"];
/// Requests in flight at once.
const PARALLEL_REQUESTS: usize = 8;

/// (route match, CorsPolicy or none): one route per entry, a policy for both filters.
fn policies() -> Vec<(Value, Option<Value>)> {
    vec![
        (
            json!({"prefix": "/full"}),
            Some(json!({
                "allow_origin_string_match": [{"exact": A}, {"suffix": ".corp.example", "ignore_case": true}],
                "allow_methods": "GET, POST", "allow_headers": "x-a, x-b", "expose_headers": "x-e",
                "max_age": "600", "allow_credentials": true, "allow_private_network_access": true
            })),
        ),
        (
            json!({"prefix": "/strict"}),
            Some(json!({
                "allow_origin_string_match": [{"safe_regex": {"regex": "https://[a-z]+\\.a\\.example"}}],
                "allow_methods": "PUT", "expose_headers": "x-e",
                "forward_not_matching_preflights": false, "allow_private_network_access": true,
                "allow_credentials": false
            })),
        ),
        (
            json!({"prefix": "/star"}),
            Some(json!({
                "allow_origin_string_match": [{"exact": "*"}],
                "allow_methods": "*", "allow_headers": "*", "allow_credentials": true
            })),
        ),
        (
            json!({"prefix": "/plain"}),
            Some(
                json!({"allow_origin_string_match": [{"prefix": "https://a."}, {"contains": "-dev-"}]}),
            ),
        ),
        (
            json!({"prefix": "/tenant", "headers": [{"name": "x-tenant", "present_match": true}]}),
            Some(
                json!({"allow_origin_string_match": [{"exact": "https://tenant.example"}], "max_age": "5"}),
            ),
        ),
        (
            json!({"prefix": "/tenant"}),
            Some(json!({"allow_origin_string_match": [{"exact": A}], "max_age": "7"})),
        ),
        (
            json!({"prefix": "/other"}),
            Some(json!({"allow_origin_string_match": [{"exact": A}], "allow_credentials": true})),
        ),
        (json!({"prefix": "/"}), None),
    ]
}

fn start_envoy(upstream: &EchoUpstream) -> Envoy {
    let routes: Vec<Value> = policies()
        .into_iter()
        .map(|(route_match, policy)| {
            let mut route = json!({"match": route_match, "route": {"cluster": "upstream"}});
            if let Some(mut policy) = policy {
                policy["@type"] =
                    json!("type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy");
                route["typed_per_filter_config"] = json!({"envoy.filters.http.cors": policy});
            }
            route
        })
        .collect();
    let wasm_policies: Vec<Value> = policies()
        .into_iter()
        .filter_map(|(route_match, policy)| {
            let mut policy = policy?;
            policy["match"] = route_match;
            Some(policy)
        })
        .collect();
    let native = native_filter("envoy.filters.http.cors", "cors.v3.Cors", json!({}));
    let wasm = wasm_filter(
        "cors",
        &filter_wasm("cors"),
        &json!({"policies": wasm_policies}),
    );
    let bootstrap = BootstrapBuilder::new(upstream.port())
        .listener_with_routes("native", vec![native], json!(routes.clone()))
        .listener_with_routes("wasm", vec![wasm], json!(routes));
    Envoy::start(bootstrap.build()).expect("Envoy starts with both filters")
}

/// One request of the table.
struct Case {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    headers: Vec<(&'static str, Vec<u8>)>,
}

fn case(
    name: &'static str,
    method: &'static str,
    path: &'static str,
    headers: &[(&'static str, &[u8])],
) -> Case {
    Case {
        name,
        method,
        path,
        headers: headers
            .iter()
            .map(|(name, value)| (*name, value.to_vec()))
            .collect(),
    }
}

const ACRM: &str = "access-control-request-method";
const ACRH: &str = "access-control-request-headers";
const PNA: &str = "access-control-request-private-network";

/// Ask the echo upstream to answer with these headers too.
const UP_VARY: (&str, &[u8]) = ("x-echo-header-vary", b"accept-encoding");
const UP_ACAO: (&str, &[u8]) = ("x-echo-header-access-control-allow-origin", b"*");
const UP_ACAC: (&str, &[u8]) = ("x-echo-header-access-control-allow-credentials", b"true");

#[rustfmt::skip]
fn cases() -> Vec<Case> {
    let a = A.as_bytes();
    let evil = EVIL.as_bytes();
    let huge = format!("https://{}.a.example", "x".repeat(8_000)).into_bytes();
    vec![
        // Preflights.
        case("preflight, allowed, every field", "OPTIONS", "/full/x", &[("origin", a), (ACRM, b"PUT"), (ACRH, b"x-b"), (PNA, b"true")]),
        case("preflight, ignore-case suffix", "OPTIONS", "/full", &[("origin", b"https://App.CORP.example"), (ACRM, b"GET")]),
        case("preflight, PNA not asked", "OPTIONS", "/full", &[("origin", a), (ACRM, b"GET")]),
        case("preflight, PNA asked as TRUE", "OPTIONS", "/full", &[("origin", a), (ACRM, b"GET"), (PNA, b"TRUE")]),
        case("preflight, refused origin forwarded", "OPTIONS", "/full", &[("origin", evil), (ACRM, b"PUT"), UP_VARY]),
        case("preflight, refused origin answered (no forwarding)", "OPTIONS", "/strict", &[("origin", evil), (ACRM, b"PUT"), (PNA, b"true")]),
        case("preflight, regex origin", "OPTIONS", "/strict", &[("origin", b"https://app.a.example"), (ACRM, b"PUT")]),
        case("preflight, regex must match whole origin", "OPTIONS", "/strict", &[("origin", b"https://app.a.example.evil"), (ACRM, b"PUT")]),
        case("preflight, star echoes method and headers", "OPTIONS", "/star", &[("origin", b"https://any.example"), (ACRM, b"PATCH"), (ACRH, b"x-1, x-2")]),
        case("preflight, star without requested headers", "OPTIONS", "/star", &[("origin", b"https://any.example"), (ACRM, b"PATCH")]),
        case("preflight, star with repeated requested headers", "OPTIONS", "/star", &[("origin", b"https://any.example"), (ACRM, b"PATCH"), (ACRH, b"x-1"), (ACRH, b"x-2")]),
        case("preflight, origin null under star", "OPTIONS", "/star", &[("origin", b"null"), (ACRM, b"GET")]),
        case("preflight, origin * under star", "OPTIONS", "/star", &[("origin", b"*"), (ACRM, b"GET")]),
        case("preflight, origin null refused", "OPTIONS", "/full", &[("origin", b"null"), (ACRM, b"GET")]),
        case("preflight, minimal policy", "OPTIONS", "/plain", &[("origin", b"https://a.b"), (ACRM, b"GET"), (PNA, b"true")]),
        case("preflight, contains matcher", "OPTIONS", "/plain", &[("origin", b"http://x-dev-y"), (ACRM, b"GET")]),
        case("preflight, first route by header", "OPTIONS", "/tenant", &[("origin", b"https://tenant.example"), ("x-tenant", b"t"), (ACRM, b"GET")]),
        case("preflight, second route without header", "OPTIONS", "/tenant", &[("origin", a), (ACRM, b"GET")]),
        case("preflight, header route refuses other origin", "OPTIONS", "/tenant", &[("origin", a), ("x-tenant", b"t"), (ACRM, b"GET")]),
        case("preflight, no policy", "OPTIONS", "/open", &[("origin", a), (ACRM, b"GET")]),
        case("preflight, last policy", "OPTIONS", "/other", &[("origin", a), (ACRM, b"GET")]),
        case("preflight, empty requested method", "OPTIONS", "/full", &[("origin", a), (ACRM, b"")]),
        case("preflight, empty origin", "OPTIONS", "/full", &[("origin", b""), (ACRM, b"GET")]),
        case("preflight, no origin", "OPTIONS", "/full", &[(ACRM, b"GET")]),
        case("preflight, repeated origin", "OPTIONS", "/full", &[("origin", a), ("origin", a), (ACRM, b"GET")]),
        case("preflight, repeated origin under star", "OPTIONS", "/star", &[("origin", a), ("origin", evil), (ACRM, b"GET")]),
        case("preflight, huge origin under star", "OPTIONS", "/star", &[("origin", &huge), (ACRM, b"GET")]),
        case("OPTIONS without requested method is actual", "OPTIONS", "/full", &[("origin", a)]),
        // Actual requests.
        case("GET, allowed", "GET", "/full", &[("origin", a)]),
        case("GET, allowed, upstream headers replaced", "GET", "/full", &[("origin", a), UP_ACAO, UP_VARY]),
        case("GET, refused, upstream headers kept", "GET", "/full", &[("origin", evil), UP_ACAO, UP_ACAC]),
        case("GET, no origin", "GET", "/full", &[UP_VARY]),
        case("POST, credentials off keeps upstream's", "POST", "/plain", &[("origin", b"https://a.b"), UP_ACAC]),
        case("POST, strict allowed, no credentials", "POST", "/strict/y", &[("origin", b"https://b.a.example")]),
        case("GET, star with credentials echoes", "GET", "/star", &[("origin", b"https://any.example")]),
        case("GET, no policy", "GET", "/open", &[("origin", a), UP_ACAO]),
        case("GET, repeated origin refused", "GET", "/full", &[("origin", a), ("origin", evil)]),
        case("GET, repeated origin joined under prefix", "GET", "/plain", &[("origin", b"https://a.x"), ("origin", evil)]),
        case("GET, empty then real origin", "GET", "/full", &[("origin", b""), ("origin", a)]),
        case("GET, origin case differs", "GET", "/full", &[("origin", b"https://A.example")]),
        case("GET, origin with path", "GET", "/full", &[("origin", b"https://a.example/")]),
        case("PUT, with access-control-request-method", "PUT", "/full", &[("origin", a), (ACRM, b"PUT")]),
    ]
}

/// Deliberate differences: (case, what native does, what cors does), both asserted.
fn differences() -> Vec<(Case, &'static str, &'static str)> {
    vec![(
        case(
            "non-UTF-8 origin under a prefix matcher",
            "GET",
            "/plain",
            &[("origin", b"https://a.\xff")],
        ),
        "native matches the raw bytes and echoes them",
        "cors refuses an origin that is not UTF-8 (no browser sends one) unless the policy allows all",
    )]
}

/// What a client saw.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    status: u16,
    /// Every access-control-* header, sorted by name (values in order).
    cors: Vec<(String, String)>,
    /// Every vary value.
    vary: Vec<String>,
    /// Every other header but the ones that differ per response, sorted.
    others: Vec<(String, String)>,
    /// The echo upstream answered.
    upstream: bool,
}

impl Seen {
    fn from(response: &Response) -> Seen {
        let mut cors: Vec<(String, String)> = response
            .headers
            .iter()
            .filter(|(name, _)| name.starts_with("access-control-"))
            .map(|(name, value)| (name.clone(), String::from_utf8_lossy(value).into_owned()))
            .collect();
        cors.sort_by(|left, right| left.0.cmp(&right.0));
        let mut others: Vec<(String, String)> = response
            .headers
            .iter()
            .filter(|(name, _)| {
                !name.starts_with("access-control-") && !VARYING_HEADERS.contains(&name.as_str())
            })
            .map(|(name, value)| (name.clone(), String::from_utf8_lossy(value).into_owned()))
            .collect();
        others.sort();
        Seen {
            others,
            status: response.status,
            cors,
            vary: response.header_all("vary"),
            upstream: response.json()["method"].is_string(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.cors
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

fn send(port: u16, case: &Case) -> Seen {
    let mut request = Request::get(case.path).header("host", "api.example");
    request.method = case.method.to_string();
    for (name, value) in &case.headers {
        request = request.header(name, value);
    }
    let response = request
        .send(port)
        .unwrap_or_else(|error| panic!("{}: {error}", case.name));
    Seen::from(&response)
}

/// Sends every case to both listeners, `PARALLEL_REQUESTS` at a time: (native, wasm) in order.
fn run(envoy: &Envoy, cases: &[&Case]) -> Vec<(Seen, Seen)> {
    let native = envoy.listener_port("native").expect("native listener");
    let wasm = envoy.listener_port("wasm").expect("wasm listener");
    let next = AtomicUsize::new(0);
    let results = Mutex::new(vec![None; cases.len()]);
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL_REQUESTS {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::SeqCst);
                let Some(case) = cases.get(index) else {
                    break;
                };
                let seen = (send(native, case), send(wasm, case));
                results.lock().unwrap()[index] = Some(seen);
            });
        }
    });
    results
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|seen| seen.expect("every case ran"))
        .collect()
}

/// cors adds `origin` to vary on every response a policy covers; native never touches vary.
fn expected_wasm_vary(case: &Case, native: &[String]) -> Vec<String> {
    if case.path.starts_with("/open") {
        return native.to_vec();
    }
    match native {
        [] => vec!["origin".to_string()],
        [first, rest @ ..] => {
            let mut vary = vec![format!("{first},origin")];
            vary.extend_from_slice(rest);
            vary
        }
    }
}

#[test]
fn cors_answers_as_native_cors() {
    let started = Instant::now();
    let upstream = EchoUpstream::start().expect("upstream");
    let envoy = start_envoy(&upstream);
    let cases = cases();
    let differences = differences();
    let all: Vec<&Case> = cases
        .iter()
        .chain(differences.iter().map(|(case, _, _)| case))
        .collect();
    let results = run(&envoy, &all);
    let (case_results, difference_results) = results.split_at(cases.len());

    let mut diverging = String::new();
    let mut answered = 0;
    for (case, (native, wasm)) in cases.iter().zip(case_results) {
        let same = native.status == wasm.status
            && native.cors == wasm.cors
            && native.others == wasm.others
            && native.upstream == wasm.upstream
            && wasm.vary == expected_wasm_vary(case, &native.vary);
        if !same {
            let _ = writeln!(
                diverging,
                "\n  {}:\n    native {native:?}\n    wasm   {wasm:?}",
                case.name
            );
        }
        answered += usize::from(!native.upstream);
    }
    assert!(
        diverging.is_empty(),
        "cors diverges from native cors:{diverging}"
    );
    // Keep the table honest: it answers some preflights locally and echoes some origins.
    assert!(
        answered >= 10,
        "only {answered} preflights answered locally"
    );
    let echoed = case_results
        .iter()
        .filter(|(native, _)| native.header("access-control-allow-origin").is_some())
        .count();
    assert!(echoed >= 15, "only {echoed} responses echo an origin");

    for ((case, native_does, wasm_does), (native, wasm)) in
        differences.iter().zip(difference_results)
    {
        assert!(
            native.header("access-control-allow-origin").is_some(),
            "{}: {native_does}: {native:?}",
            case.name
        );
        assert!(
            wasm.header("access-control-allow-origin").is_none(),
            "{}: {wasm_does}: {wasm:?}",
            case.name
        );
        assert_eq!(
            (native.status, native.upstream),
            (wasm.status, wasm.upstream)
        );
    }

    // Both count the same origins (native: http.<prefix>.cors.*; ours: wasmcustom.cors.*).
    let total = all.len() as u64;
    let stat = |name: &str| envoy.stat(name).unwrap_or(0);
    let native_valid = stat("http.native.cors.origin_valid");
    let native_invalid = stat("http.native.cors.origin_invalid");
    let wasm_valid = stat("wasmcustom.cors.origin_valid");
    let wasm_invalid = stat("wasmcustom.cors.origin_invalid");
    assert!(native_valid > 0 && native_invalid > 0 && native_valid + native_invalid < total);
    // The one difference case is valid for native and invalid for cors.
    assert_eq!(
        (wasm_valid + 1, wasm_invalid),
        (native_valid, native_invalid + 1)
    );
    assert_eq!(stat("wasmcustom.cors.preflight_answered"), answered as u64);
    eprintln!(
        "{} cases + {} differences, both sides, in {:?}",
        cases.len(),
        differences.len(),
        started.elapsed()
    );
}
