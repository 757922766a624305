//! ext-authz's built module (`make build` writes
//! target/filters/ext_authz.wasm) driven through test-host, as Envoy would run it: check
//! requests answered, failed, timed out, and answered after their stream ended.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::{json, Value};
use std::time::Duration;
use test_host::{filter_wasm, Action, Error, HttpResponse, Plugin, TestHost};

fn start(host: &TestHost, config: Value) -> Plugin {
    host.plugin(filter_wasm("ext_authz"))
        .config(config)
        .start()
        .unwrap_or_else(|error| panic!("the plugin should start: {error}"))
}

fn config(extra: Value) -> Value {
    let mut config = json!({
        "http_service": {
            "server_uri": {"uri": "http://authz", "cluster": "authz", "timeout": "0.5s"},
            "path_prefix": "/check",
            "authorization_request": {
                "allowed_headers": {"patterns": [{"prefix": "x-auth-"}]},
                "headers_to_add": [{"key": "x-added", "value": "yes"}]
            },
            "authorization_response": {
                "allowed_upstream_headers": {"patterns": [{"exact": "x-user"}]},
                "allowed_upstream_headers_to_append": {"patterns": [{"exact": "x-append"}]},
                "allowed_client_headers": {"patterns": [{"exact": "x-reason"}]}
            }
        }
    });
    for (key, value) in extra.as_object().unwrap() {
        config[key] = value.clone();
    }
    config
}

const REQUEST: &[(&str, &str)] = &[
    (":method", "GET"),
    (":path", "/items"),
    (":authority", "app.example"),
    ("authorization", "Bearer t"),
    ("x-auth-tenant", "t1"),
    ("x-private", "p"),
    ("x-append", "client"),
];

#[test]
fn an_allowed_request_goes_on_with_the_service_headers() {
    let host = TestHost::new();
    let plugin = start(&host, config(json!({})));
    let mut stream = plugin.http_stream().unwrap();
    assert_eq!(
        stream.send_request_headers(REQUEST, true).unwrap(),
        Action::Pause
    );
    let calls = stream.http_calls();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.cluster, "authz");
    assert_eq!(call.timeout, Some(Duration::from_millis(500)));
    let header = |name: &str| call.headers.get_str(name);
    assert_eq!(header(":path").as_deref(), Some("/check/items"));
    assert_eq!(header(":method").as_deref(), Some("GET"));
    assert_eq!(header(":authority").as_deref(), Some("app.example"));
    assert_eq!(header("authorization").as_deref(), Some("Bearer t"));
    assert_eq!(header("x-auth-tenant").as_deref(), Some("t1"));
    assert_eq!(header("x-added").as_deref(), Some("yes"));
    assert_eq!(header("content-length").as_deref(), Some("0"));
    assert_eq!(header("x-private"), None);
    assert!(stream.upstream_request().headers.is_none());

    plugin
        .respond_http_call(
            call.token,
            HttpResponse::new(200)
                .header("x-user", "alice")
                .header("x-append", "authz")
                .header("x-other", "no"),
        )
        .unwrap();
    let upstream = stream.upstream_request();
    let headers = upstream.headers.expect("the request went on");
    assert_eq!(headers.get_str("x-user").as_deref(), Some("alice"));
    assert_eq!(headers.get_all("x-append"), [&b"client"[..], &b"authz"[..]]);
    assert_eq!(headers.get_str("x-other"), None);
    assert_eq!(stream.local_response(), None);
    assert_eq!(host.counter("ext_authz.ok"), Some(1));
    stream.end().unwrap();
    assert!(plugin.failure().is_none());
}

#[test]
fn a_denied_request_gets_the_service_reply() {
    let host = TestHost::new();
    let plugin = start(&host, config(json!({})));
    let mut stream = plugin.http_stream().unwrap();
    stream.send_request_headers(REQUEST, true).unwrap();
    let token = stream.http_calls()[0].token;
    plugin
        .respond_http_call(
            token,
            HttpResponse::new(403)
                .header("x-reason", "policy")
                .header("www-authenticate", "Bearer")
                .header("x-secret", "s")
                .body("go away"),
        )
        .unwrap();
    let reply = stream.local_response().expect("a reply");
    assert_eq!(reply.status, 403);
    assert_eq!(reply.body, b"go away");
    assert_eq!(reply.details, "ext_authz_denied");
    assert_eq!(reply.headers.get_str("x-reason").as_deref(), Some("policy"));
    assert_eq!(
        reply.headers.get_str("www-authenticate").as_deref(),
        Some("Bearer")
    );
    assert_eq!(reply.headers.get_str("x-secret"), None);
    assert_eq!(reply.headers.get_str("content-length"), None);
    assert!(stream.upstream_request().headers.is_none());
    assert_eq!(host.counter("ext_authz.denied"), Some(1));
}

#[test]
fn a_timed_out_or_failed_check_applies_status_on_error_or_failure_mode_allow() {
    for allow in [false, true] {
        let host = TestHost::new();
        let plugin = start(
            &host,
            config(json!({
                "failure_mode_allow": allow,
                "failure_mode_allow_header_add": true,
                "status_on_error": {"code": 503}
            })),
        );
        // Timeout: test-host answers with Envoy's 504 once the call's timeout passes.
        let mut timed_out = plugin.http_stream().unwrap();
        timed_out.send_request_headers(REQUEST, true).unwrap();
        plugin.advance(Duration::from_millis(499)).unwrap();
        assert_eq!(timed_out.http_calls().len(), 1, "not yet timed out");
        plugin.advance(Duration::from_millis(2)).unwrap();
        assert!(timed_out.http_calls().is_empty());
        // Reset: no headers at all.
        let mut reset = plugin.http_stream().unwrap();
        reset.send_request_headers(REQUEST, true).unwrap();
        plugin.fail_http_call(reset.http_calls()[0].token).unwrap();
        for stream in [&timed_out, &reset] {
            if allow {
                let upstream = stream.upstream_request().headers.expect("let through");
                assert_eq!(
                    upstream
                        .get_str("x-envoy-auth-failure-mode-allowed")
                        .as_deref(),
                    Some("true")
                );
                assert_eq!(stream.local_response(), None);
            } else {
                let reply = stream.local_response().expect("a reply");
                assert_eq!((reply.status, reply.body.len()), (503, 0));
                assert_eq!(reply.details, "ext_authz_error");
                assert!(stream.upstream_request().headers.is_none());
            }
        }
        assert_eq!(host.counter("ext_authz.error"), Some(2));
        assert_eq!(
            host.counter("ext_authz.failure_mode_allowed"),
            Some(if allow { 2 } else { 0 })
        );
        assert!(plugin.failure().is_none());
    }
}

#[test]
fn an_unknown_cluster_is_an_error_not_a_hang() {
    let host = TestHost::new();
    host.set_clusters(["other"]);
    let plugin = start(&host, config(json!({})));
    let mut stream = plugin.http_stream().unwrap();
    assert_eq!(
        stream.send_request_headers(REQUEST, true).unwrap(),
        Action::Pause
    );
    assert_eq!(stream.local_response().expect("a reply").status, 403);
    assert!(stream.http_calls().is_empty());
}

#[test]
fn a_stream_that_ends_mid_check_is_forgotten_and_its_late_answer_ignored() {
    let host = TestHost::new();
    let plugin = start(&host, config(json!({})));
    let mut answered = plugin.http_stream().unwrap();
    answered.send_request_headers(REQUEST, true).unwrap();
    let answered_token = answered.http_calls()[0].token;
    answered.end().unwrap();
    let mut failed = plugin.http_stream().unwrap();
    failed.send_request_headers(REQUEST, true).unwrap();
    let failed_token = failed.http_calls()[0].token;
    failed.end().unwrap();
    let mut timed_out = plugin.http_stream().unwrap();
    timed_out.send_request_headers(REQUEST, true).unwrap();
    timed_out.end().unwrap();

    // Envoy cancels a stream's callouts when it ends, and so does test-host: no late answer can
    // be delivered (the fake host's tests cover one arriving anyway), and no timeout fires.
    assert!(plugin.http_calls().is_empty());
    assert!(plugin
        .respond_http_call(answered_token, HttpResponse::new(403).body("late"))
        .is_err());
    assert!(plugin.fail_http_call(failed_token).is_err());
    plugin.advance(Duration::from_secs(1)).unwrap();
    assert!(plugin.failure().is_none(), "{:?}", plugin.failure());
    for counter in ["ok", "denied", "error"] {
        assert_eq!(host.counter(&format!("ext_authz.{counter}")), Some(0));
    }
    // And the next request is checked as usual.
    let mut next = plugin.http_stream().unwrap();
    next.send_request_headers(REQUEST, true).unwrap();
    plugin
        .respond_http_call(next.http_calls()[0].token, HttpResponse::new(200))
        .unwrap();
    assert!(next.upstream_request().headers.is_some());
    assert_eq!(host.counter("ext_authz.ok"), Some(1));
}

#[test]
fn with_request_body_the_buffered_body_is_sent_and_released_on_allow() {
    let host = TestHost::new();
    let plugin = start(
        &host,
        config(
            json!({"with_request_body": {"max_request_bytes": 10, "allow_partial_message": true}}),
        ),
    );
    let post = [(":method", "POST"), (":path", "/up"), (":authority", "a")];
    let mut stream = plugin.http_stream().unwrap();
    assert_eq!(
        stream.send_request_headers(&post, false).unwrap(),
        Action::Continue
    );
    assert_ne!(
        stream.send_request_body("hello ", false).unwrap(),
        Action::Continue
    );
    assert!(stream.http_calls().is_empty());
    assert_ne!(
        stream.send_request_body("world!", false).unwrap(),
        Action::Continue
    );
    let call = stream.http_calls()[0].clone();
    assert_eq!(call.body, b"hello worl");
    assert_eq!(
        call.headers.get_str("content-length").as_deref(),
        Some("10")
    );
    assert!(stream.upstream_request().body.is_empty(), "the body waits");
    plugin
        .respond_http_call(call.token, HttpResponse::new(200))
        .unwrap();
    stream.send_request_body("", true).unwrap();
    assert_eq!(stream.upstream_request().body, b"hello world!");

    // Without allow_partial_message a body over the limit is refused.
    let plugin = start(
        &host,
        config(json!({"with_request_body": {"max_request_bytes": 4}})),
    );
    let mut stream = plugin.http_stream().unwrap();
    stream.send_request_headers(&post, false).unwrap();
    stream.send_request_body("12345", false).unwrap();
    let reply = stream.local_response().expect("a 413");
    assert_eq!(
        (reply.status, &reply.body[..]),
        (413, &b"Payload Too Large"[..])
    );
    assert!(stream.http_calls().is_empty());
}

#[test]
fn bad_configs_are_refused_with_their_field_path() {
    for (config, path) in [
        (json!({}), "http_service"),
        (json!({"grpc_service": {}}), "grpc_service"),
        (
            json!({"http_service": {"server_uri": {"uri": "u", "cluster": "c", "timeout": "0s"}}}),
            "http_service.server_uri.timeout",
        ),
        (
            config(json!({"status_on_error": {"code": 1000}})),
            "status_on_error.code",
        ),
        (
            config(json!({"with_request_body": {"max_request_bytes": 0}})),
            "with_request_body.max_request_bytes",
        ),
    ] {
        let error = TestHost::new()
            .plugin(filter_wasm("ext_authz"))
            .config(config.clone())
            .start()
            .err()
            .unwrap_or_else(|| panic!("{config} should be refused"));
        match error {
            Error::Rejected { logs, .. } => assert!(
                logs.iter()
                    .any(|line| line.contains(&format!("invalid configuration at {path}:"))),
                "{config}: {logs:?}"
            ),
            other => panic!("expected a rejection, got {other}"),
        }
    }
}
