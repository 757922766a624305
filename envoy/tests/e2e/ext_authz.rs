//! ext-authz against native ext_authz (http_service mode) in ONE Envoy: each configuration
//! variant is a listener pair `native-<variant>` / `wasm-<variant>` checking against the same
//! loopback authorization servers (one that answers by path, one that never answers, a closed
//! port). Every case must give the same status, body and client headers on both sides, the
//! upstream must receive the same request, and the authorization server the same check request.
//! A failure lists every diverging case. One pair more asserts the one known divergence (README:
//! with `with_request_body` our denied request's headers have reached the upstream).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use envoy_harness::authz::AuthzServer;
use envoy_harness::config::{filter_wasm, native_filter, wasm_filter, BootstrapBuilder};
use envoy_harness::differential::{run_pairs, shortened, Seen};
use envoy_harness::{CannedReply, EchoUpstream, Envoy, ReceivedRequest, Request};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::net::TcpListener;
use std::time::{Duration, Instant};

/// Upstream and check-request headers that differ between the two sides by design.
const IGNORED: &[&str] = &["x-request-id"];
/// Response headers compared.
const COMPARED: &[&str] = &[
    "content-type",
    "www-authenticate",
    "location",
    "x-deny-reason",
    "x-authz-only",
    "set-cookie",
    "x-envoy-auth-failure-mode-allowed",
    "x-to-client",
    "x-user",
];
/// Timeout of the check request in the variants whose service hangs.
const SHORT_TIMEOUT: &str = "0.3s";

/// The service's answer, chosen by the check request's path.
fn script(request: &ReceivedRequest) -> (CannedReply, Duration) {
    let header = |name: &str, value: &str| (name.to_string(), value.as_bytes().to_vec());
    let path = request.path.as_str();
    let reply = |status: u16, headers: Vec<(String, Vec<u8>)>, body: &str| CannedReply {
        status,
        headers,
        body: body.as_bytes().to_vec(),
    };
    let answer = if path.contains("/deny-cookies") {
        reply(
            403,
            vec![
                header("set-cookie", "a=1"),
                header("set-cookie", "b=2"),
                header("x-deny-reason", "one"),
                header("x-deny-reason", "two"),
            ],
            "{\"denied\": true}",
        )
    } else if path.contains("/allow-multi") {
        reply(
            200,
            vec![
                header("x-user", "alice"),
                header("x-user", "bob"),
                header("x-append", "one"),
                header("x-append", "two"),
            ],
            "",
        )
    } else if path.contains("/allow-remove") {
        reply(
            200,
            vec![
                header(
                    "x-envoy-auth-headers-to-remove",
                    "x-private, Authorization,host,:path",
                ),
                header("x-envoy-auth-headers-to-remove", "x-other"),
                header("x-to-client", "hello"),
                header("x-to-client", "again"),
                header("x-user", "alice"),
            ],
            "",
        )
    } else if path.contains("/deny") {
        reply(
            403,
            vec![
                header("content-type", "text/plain"),
                header("x-deny-reason", "policy"),
                header("x-authz-only", "secret"),
                header("www-authenticate", "Bearer realm=\"api\""),
                header("set-cookie", "a=1"),
            ],
            "denied by policy",
        )
    } else if path.contains("/unauthorized") {
        reply(
            401,
            vec![header("www-authenticate", "Basic realm=\"x\"")],
            "",
        )
    } else if path.contains("/redirect") {
        reply(302, vec![header("location", "https://login.example/")], "")
    } else if path.contains("/no-content") {
        reply(204, vec![], "")
    } else if path.contains("/created") {
        reply(201, vec![header("x-user", "alice")], "")
    } else if path.contains("/broken") {
        reply(500, vec![header("x-deny-reason", "boom")], "oops")
    } else if path.contains("/unavailable") {
        reply(503, vec![], "later")
    } else {
        reply(
            200,
            vec![
                header("x-user", "alice"),
                header("x-override", "from-authz"),
                header("x-append", "from-authz"),
                header("x-not-allowed", "nope"),
                header("content-type", "text/plain"),
            ],
            "ok body is ignored",
        )
    };
    (answer, Duration::ZERO)
}

fn service(cluster: &str, timeout: &str, extra: Value) -> Value {
    let mut service = json!({
        "server_uri": {"uri": "http://authz.example", "cluster": cluster, "timeout": timeout}
    });
    if let (Some(service), Some(extra)) = (service.as_object_mut(), extra.as_object()) {
        service.extend(extra.clone());
    }
    service
}

/// The configuration variants, given identically to both sides.
fn variants() -> Vec<(&'static str, Value)> {
    vec![
        (
            "main",
            json!({"http_service": service("authz", "1s", json!({
                "path_prefix": "/check",
                "authorization_request": {
                    "allowed_headers": {"patterns": [{"exact": "x-forward-me"}, {"prefix": "x-auth-"}]},
                    "headers_to_add": [{"key": "x-added", "value": "by-envoy"}]
                },
                "authorization_response": {
                    "allowed_upstream_headers": {"patterns": [{"exact": "x-user"}, {"exact": "x-override"}]},
                    "allowed_upstream_headers_to_append": {"patterns": [{"exact": "x-append"}]},
                    "allowed_client_headers": {"patterns": [{"exact": "x-deny-reason"}, {"exact": "content-type"}]},
                    "allowed_client_headers_on_success": {"patterns": [{"exact": "x-to-client"}, {"exact": "x-user"}]}
                }
            }))}),
        ),
        (
            "defaults",
            json!({"http_service": service("authz", "1s", json!({}))}),
        ),
        (
            "client",
            json!({"http_service": service("authz", "1s", json!({
                "authorization_response": {
                    "allowed_client_headers": {"patterns": [{"exact": "x-deny-reason"}]}
                }
            })), "stat_prefix": "client"}),
        ),
        (
            "hang",
            json!({"http_service": service("authz-hang", SHORT_TIMEOUT, json!({}))}),
        ),
        (
            "hang-allow",
            json!({"http_service": service("authz-hang", SHORT_TIMEOUT, json!({})),
                   "failure_mode_allow": true, "failure_mode_allow_header_add": true}),
        ),
        (
            "down",
            json!({"http_service": service("authz-down", "1s", json!({})),
                   "status_on_error": {"code": 503}}),
        ),
        (
            "body",
            json!({"http_service": service("authz", "1s", json!({
                "authorization_request": {"allowed_headers": {"patterns": [{"exact": "x-envoy-auth-partial-body"}, {"exact": "content-type"}]}}
            })), "with_request_body": {"max_request_bytes": 16}}),
        ),
        (
            "body-plain",
            json!({"http_service": service("authz", "1s", json!({})),
                   "with_request_body": {"max_request_bytes": 16}}),
        ),
        (
            "partial",
            json!({"http_service": service("authz", "1s", json!({
                "authorization_request": {"allowed_headers": {"patterns": [{"exact": "x-envoy-auth-partial-body"}]}}
            })), "with_request_body": {"max_request_bytes": 8, "allow_partial_message": true}}),
        ),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    variant: &'static str,
    name: &'static str,
    request: Request,
}

fn get(path: &str) -> Request {
    Request::get(path).header("host", "app.example")
}

fn post(path: &str, body: &str) -> Request {
    let mut request = get(path).header("content-type", "text/plain");
    request.method = "POST".into();
    request.body = body.as_bytes().to_vec();
    request
}

fn cases() -> Vec<Case> {
    let c = |variant, name, request| Case {
        variant,
        name,
        request,
    };
    vec![
        c(
            "main",
            "allow",
            get("/allow/a?q=1")
                .header("authorization", "Bearer t")
                .header("x-forward-me", "1")
                .header("x-auth-tenant", "t1")
                .header("x-private", "no")
                .header("x-override", "client")
                .header("x-append", "client"),
        ),
        c(
            "main",
            "allow, repeated headers",
            get("/allow/b")
                .header("x-auth-r", "1")
                .header("x-auth-r", "2")
                .header("x-forward-me", "a")
                .header("x-forward-me", "b"),
        ),
        c(
            "main",
            "deny with body and headers",
            get("/deny/a").header("x-forward-me", "1"),
        ),
        c(
            "main",
            "allow, repeated service headers",
            get("/allow-multi").header("x-append", "client"),
        ),
        c(
            "main",
            "deny, repeated service headers",
            get("/deny-cookies/m"),
        ),
        c(
            "main",
            "allow: headers to remove, headers to the client",
            get("/allow-remove")
                .header("authorization", "Bearer t")
                .header("x-private", "p")
                .header("x-other", "o")
                .header("x-echo-header-x-to-client", "from-upstream"),
        ),
        c(
            "main",
            "non-UTF-8 and odd values",
            get("/allow/raw")
                .header("x-forward-me", b"\xff\xfe ok")
                .header("x-auth-e", ""),
        ),
        c("main", "HEAD", {
            let mut r = get("/deny/head");
            r.method = "HEAD".into();
            r
        }),
        c("client", "deny: content-type not listed", get("/deny/c")),
        c("client", "deny: repeated", get("/deny-cookies/c")),
        c("main", "unauthorized", get("/unauthorized")),
        c("main", "redirect", get("/redirect")),
        c("main", "201 is not 200", get("/created")),
        c("main", "204", get("/no-content")),
        c("main", "500 is an error", get("/broken")),
        c("main", "503 is an error", get("/unavailable")),
        c("main", "post", post("/allow/post", "hello")),
        c(
            "main",
            "client partial-body header",
            get("/allow/p").header("x-envoy-auth-partial-body", "true"),
        ),
        c(
            "defaults",
            "allow",
            get("/allow/d")
                .header("authorization", "Basic x")
                .header("x-forward-me", "1")
                .header("cookie", "c=1"),
        ),
        c("defaults", "deny: all headers but host", get("/deny/d")),
        c("defaults", "unauthorized", get("/unauthorized/d")),
        c("defaults", "deny: repeated", get("/deny-cookies/d")),
        c("hang", "timeout", get("/hang")),
        c(
            "hang-allow",
            "timeout, failure mode allow",
            get("/hang-allow"),
        ),
        c("down", "connection refused", get("/down")),
        c("body", "small body", post("/allow/body", "0123456789")),
        c("body", "no body", get("/allow/nobody")),
        c("body", "non-UTF-8 body", {
            let mut r = post("/allow/raw-body", "");
            r.body = b"a\xffb\xe2\x82c".to_vec();
            r
        }),
        c("body", "deny with body", post("/deny/body", "abc")),
        c(
            "body",
            "body over the limit",
            post("/allow/big", "0123456789abcdefXYZ"),
        ),
        c(
            "body-plain",
            "partial-body flag not allowed",
            post("/allow/plain-body", "xyz").header("x-envoy-auth-partial-body", "spoof"),
        ),
        c(
            "partial",
            "body over the limit, partial",
            post("/allow/part", "0123456789abcdef"),
        ),
        c(
            "partial",
            "body at the limit",
            post("/allow/exact", "01234567"),
        ),
    ]
}

/// A check request, reduced to what must match.
fn check_view(request: &ReceivedRequest) -> String {
    let mut headers: Vec<String> = request
        .headers
        .iter()
        .filter(|(name, _)| !IGNORED.contains(&name.as_str()))
        .map(|(name, value)| format!("{name}: {}", String::from_utf8_lossy(value)))
        .collect();
    headers.sort();
    format!(
        "{} {} [{}] body {:?}",
        request.method,
        request.path,
        headers.join(", "),
        String::from_utf8_lossy(&request.body)
    )
}

#[test]
fn ext_authz_matches_native_ext_authz() {
    let upstream = EchoUpstream::start().unwrap();
    let authz = AuthzServer::start(script).unwrap();
    let hanging = envoy_harness::HangingServer::start().unwrap();
    let down_port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let wasm = filter_wasm("ext_authz");
    let mut builder = BootstrapBuilder::new(upstream.port())
        .cluster("authz", authz.port())
        .cluster("authz-hang", hanging.port())
        .cluster("authz-down", down_port);
    for (variant, config) in variants() {
        builder = builder
            .listener(
                &format!("native-{variant}"),
                vec![native_filter(
                    "envoy.filters.http.ext_authz",
                    "ext_authz.v3.ExtAuthz",
                    config.clone(),
                )],
            )
            .listener(
                &format!("wasm-{variant}"),
                vec![wasm_filter(&format!("ext_authz_{variant}"), &wasm, &config)],
            );
    }
    // The one known divergence, shown rather than hidden: with with_request_body a denied
    // request's headers have reached the upstream (proxy-wasm cannot read a body while holding
    // the headers), native's have not. A recording upstream sees the raw bytes.
    let recording = envoy_harness::RecordingUpstream::start().unwrap();
    builder = builder.cluster("recording", recording.port());
    let to_recording = json!([{"match": {"prefix": "/"}, "route": {"cluster": "recording"}}]);
    let body_config = json!({"http_service": service("authz", "1s", json!({})),
                             "with_request_body": {"max_request_bytes": 64}});
    builder = builder
        .listener_with_routes(
            "native-recorded",
            vec![native_filter(
                "envoy.filters.http.ext_authz",
                "ext_authz.v3.ExtAuthz",
                body_config.clone(),
            )],
            to_recording.clone(),
        )
        .listener_with_routes(
            "wasm-recorded",
            vec![wasm_filter("ext_authz_recorded", &wasm, &body_config)],
            to_recording,
        );
    let envoy = Envoy::start(builder.build()).unwrap();

    let cases = cases();
    let requests: Vec<(&str, &Case)> = cases.iter().map(|case| (case.variant, case)).collect();
    let started = Instant::now();
    let results = run_pairs(&envoy, &requests, 8, |port, case| {
        let began = Instant::now();
        let response = case.request.send(port).map_err(|e| e.to_string());
        // Seen compares the first value of each header: add every value of repeated ones.
        let repeated: Vec<String> = response
            .as_ref()
            .map(|response| {
                COMPARED
                    .iter()
                    .map(|name| response.header_all(name))
                    .filter(|values| values.len() > 1)
                    .map(|values| values.join(" | "))
                    .collect()
            })
            .unwrap_or_default();
        let mut seen = Seen::of(response, COMPARED, IGNORED);
        for values in repeated {
            seen.body.push_str(&format!(" [all: {values}]"));
        }
        // No request may hang: each completes well within its check timeout and a margin.
        let took = began.elapsed();
        if took > Duration::from_secs(3) {
            seen.body.push_str(&format!(" (took {took:?})"));
        }
        seen
    });
    let elapsed = started.elapsed();

    let received = authz.received();
    let checks = |path: &str| -> Vec<String> {
        received
            .iter()
            .filter(|request| {
                request.path.ends_with(path) || request.path.contains(&format!("{path}?"))
            })
            .map(check_view)
            .collect()
    };
    let show = |text: &str| shortened(text, 300);
    let mut report = String::new();
    let mut diverging = 0;
    for (case, (native, wasm)) in cases.iter().zip(&results) {
        let native_checks = checks(&case.request.path);
        // The native side's request went out (and was answered) before the wasm side's.
        let (native_check, wasm_check) = match native_checks.as_slice() {
            [native, wasm] => (native.clone(), wasm.clone()),
            [] => (String::new(), String::new()),
            other => (other.join(" | "), String::from("(count differs)")),
        };
        let same = native == wasm && native_check == wasm_check;
        if !same {
            diverging += 1;
        }
        let _ = writeln!(
            report,
            "{} {}/{}\n  native: {}\n    check: {}\n  wasm:   {}\n    check: {}",
            if same { "same" } else { "DIFF" },
            case.variant,
            case.name,
            native.describe(&show),
            native_check,
            wasm.describe(&show),
            wasm_check,
        );
    }
    let denied_post = post("/deny/recorded", "secret-body");
    let mut upstream_saw = Vec::new();
    for side in ["native", "wasm"] {
        let port = envoy.listener_port(&format!("{side}-recorded")).unwrap();
        let response = denied_post.send(port).unwrap();
        assert_eq!(response.status, 403, "{side}");
        std::thread::sleep(Duration::from_millis(300));
        upstream_saw.push(recording.take());
    }
    assert_eq!(upstream_saw[0], "", "native sent nothing upstream");
    assert!(
        upstream_saw[1].starts_with("POST /deny/recorded")
            && !upstream_saw[1].contains("secret-body"),
        "ours sends the headers only (README: deliberate differences): {:?}",
        upstream_saw[1]
    );

    // Counters: native's per listener, ours per module across listeners; compare the totals.
    let stat = |name: &str| envoy.stat(name).unwrap_or(0);
    for counter in ["ok", "denied", "error", "failure_mode_allowed"] {
        let native: u64 = variants()
            .iter()
            .map(|(variant, config)| {
                let extra = config["stat_prefix"]
                    .as_str()
                    .map(|p| format!("{p}."))
                    .unwrap_or_default();
                stat(&format!("http.native-{variant}.ext_authz.{extra}{counter}"))
            })
            .sum::<u64>()
            + stat(&format!("http.native-recorded.ext_authz.{counter}"));
        let wasm = stat(&format!("wasmcustom.ext_authz.{counter}"))
            + stat(&format!("wasmcustom.ext_authz.client.{counter}"));
        if native != wasm {
            diverging += 1;
            let _ = writeln!(
                report,
                "DIFF counter {counter}: native {native}, wasm {wasm}"
            );
        }
        let _ = writeln!(report, "counter {counter}: native {native}, wasm {wasm}");
    }
    eprintln!("{report}\n{} cases in {elapsed:?}", cases.len());
    assert!(
        elapsed < Duration::from_secs(10),
        "the run took {elapsed:?}: a request hung"
    );
    assert_eq!(diverging, 0, "{diverging} diverging cases:\n{report}");
}
