//! sdk-ext's per-request callouts on the real module (sdk-ext/callout-probe): the answer reaches
//! the stream that asked, by token, and the stream resumes or replies from that callback.

use serde_json::json;
use std::time::Duration;
use test_host::{test_module, Action, HttpResponse, Plugin, TestHost};

fn start(host: &TestHost) -> Plugin {
    start_with(host, false)
}

/// The probe asking `authz` over HTTP, or over gRPC, with a 250 ms timeout.
fn start_with(host: &TestHost, grpc: bool) -> Plugin {
    host.plugin(test_module("sdk_ext_callout_probe"))
        .config(json!({"cluster": "authz", "timeout_ms": 250, "grpc": grpc}))
        .start()
        .expect("the callout probe starts")
}

fn get(path: &str) -> [(&'static str, String); 3] {
    [
        (":method", "GET".into()),
        (":path", path.into()),
        (":authority", "example".into()),
    ]
}

#[test]
fn a_200_resumes_the_request_that_asked_with_the_answer() {
    let host = TestHost::new();
    let plugin = start(&host);
    let mut stream = plugin.http_stream().unwrap();
    assert_eq!(
        stream.send_request_headers(&get("/orders"), true).unwrap(),
        Action::Pause
    );
    let calls = stream.http_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].cluster, "authz");
    assert_eq!(
        calls[0].headers.get_str(":path").as_deref(),
        Some("/orders")
    );
    assert_eq!(calls[0].timeout, Some(Duration::from_millis(250)));
    assert!(stream.upstream_request().headers.is_none(), "paused");

    plugin
        .respond_http_call(calls[0].token, HttpResponse::new(200).body("ok:alice"))
        .unwrap();
    let upstream = stream.upstream_request();
    assert_eq!(upstream.header("x-callout-status").as_deref(), Some("200"));
    assert_eq!(
        upstream.header("x-callout-body").as_deref(),
        Some("ok:alice")
    );
    assert!(stream.local_response().is_none());
}

#[test]
fn answers_reach_their_own_streams_in_any_order() {
    let host = TestHost::new();
    let plugin = start(&host);
    let mut first = plugin.http_stream().unwrap();
    let mut second = plugin.http_stream().unwrap();
    first.send_request_headers(&get("/first"), true).unwrap();
    second.send_request_headers(&get("/second"), true).unwrap();
    let first_call = first.http_calls()[0].token;
    let second_call = second.http_calls()[0].token;
    assert_ne!(first_call, second_call);

    plugin
        .respond_http_call(second_call, HttpResponse::new(200).body("for second"))
        .unwrap();
    assert!(
        first.upstream_request().headers.is_none(),
        "first still waits"
    );
    plugin
        .respond_http_call(first_call, HttpResponse::new(200).body("for first"))
        .unwrap();
    assert_eq!(
        first.upstream_request().header("x-callout-body").as_deref(),
        Some("for first")
    );
    assert_eq!(
        second
            .upstream_request()
            .header("x-callout-body")
            .as_deref(),
        Some("for second")
    );
}

#[test]
fn a_refusal_a_failure_and_a_timeout_each_get_their_reply() {
    let host = TestHost::new();
    let plugin = start(&host);

    let mut refused = plugin.http_stream().unwrap();
    refused.send_request_headers(&get("/a"), true).unwrap();
    plugin
        .respond_http_call(refused.http_calls()[0].token, HttpResponse::new(401))
        .unwrap();
    assert_eq!(refused.local_response().map(|r| r.status), Some(403));

    let mut failed = plugin.http_stream().unwrap();
    failed.send_request_headers(&get("/b"), true).unwrap();
    plugin.fail_http_call(failed.http_calls()[0].token).unwrap();
    assert_eq!(failed.local_response().map(|r| r.status), Some(503));

    let mut timed_out = plugin.http_stream().unwrap();
    timed_out.send_request_headers(&get("/c"), true).unwrap();
    plugin.advance(Duration::from_millis(200)).unwrap();
    assert!(timed_out.local_response().is_none(), "not yet timed out");
    plugin.advance(Duration::from_millis(100)).unwrap();
    assert_eq!(timed_out.local_response().map(|r| r.status), Some(503));
    assert!(timed_out.http_calls().is_empty());
}

#[test]
fn an_empty_cluster_is_refused_with_its_field_path() {
    let host = TestHost::new();
    let error = host
        .plugin(test_module("sdk_ext_callout_probe"))
        .config(json!({"cluster": ""}))
        .start()
        .err()
        .expect("refused");
    assert!(
        format!("{error}").contains("invalid configuration at cluster: must not be empty"),
        "{error}"
    );
}

fn start_grpc(host: &TestHost) -> Plugin {
    start_with(host, true)
}

#[test]
fn a_grpc_message_resumes_the_request_that_asked() {
    let host = TestHost::new();
    let plugin = start_grpc(&host);
    let mut stream = plugin.http_stream().unwrap();
    assert_eq!(
        stream.send_request_headers(&get("/orders"), true).unwrap(),
        Action::Pause
    );
    let calls = plugin.grpc_calls();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.service, b"authz", "the cluster name as the service");
    assert_eq!(
        (call.service_name.as_str(), call.method.as_str()),
        ("probe.Check", "Check")
    );
    assert_eq!(call.messages, [b"/orders".to_vec()]);
    assert_eq!(
        call.initial_metadata.get_str("x-probe").as_deref(),
        Some("1")
    );
    assert_eq!(call.timeout, Some(Duration::from_millis(250)));
    assert!(!call.is_stream);
    assert!(stream.upstream_request().headers.is_none(), "paused");

    plugin.respond_grpc_call(call.token, b"alice").unwrap();
    let upstream = stream.upstream_request();
    assert_eq!(upstream.header("x-callout-body").as_deref(), Some("alice"));
    assert!(stream.local_response().is_none());
    assert!(plugin.grpc_calls().is_empty());
}

#[test]
fn a_grpc_call_closed_with_a_status_or_timed_out_gets_a_503() {
    let host = TestHost::new();
    let plugin = start_grpc(&host);
    let mut closed = plugin.http_stream().unwrap();
    closed.send_request_headers(&get("/a"), true).unwrap();
    let token = plugin.grpc_calls()[0].token;
    plugin.close_grpc(token, 14, "no healthy upstream").unwrap();
    let reply = closed.local_response().expect("a local reply");
    assert_eq!(reply.status, 503);
    assert!(
        String::from_utf8_lossy(&reply.body).contains("grpc status 14: no healthy upstream"),
        "{:?}",
        String::from_utf8_lossy(&reply.body)
    );

    let mut timed_out = plugin.http_stream().unwrap();
    timed_out.send_request_headers(&get("/b"), true).unwrap();
    plugin.advance(Duration::from_millis(200)).unwrap();
    assert!(timed_out.local_response().is_none(), "not yet timed out");
    plugin.advance(Duration::from_millis(100)).unwrap();
    let reply = timed_out.local_response().expect("a local reply");
    assert_eq!(reply.status, 503);
    assert!(String::from_utf8_lossy(&reply.body).contains("grpc status 4"));
    assert!(plugin.grpc_calls().is_empty());
}

#[test]
fn grpc_answers_reach_their_own_streams_and_late_ones_are_dropped() {
    let host = TestHost::new();
    let plugin = start_grpc(&host);
    let mut first = plugin.http_stream().unwrap();
    let mut second = plugin.http_stream().unwrap();
    first.send_request_headers(&get("/first"), true).unwrap();
    second.send_request_headers(&get("/second"), true).unwrap();
    let calls = plugin.grpc_calls();
    let token_of = |path: &[u8]| {
        calls
            .iter()
            .find(|call| call.messages == [path.to_vec()])
            .map(|call| call.token)
            .unwrap()
    };
    let (first_call, second_call) = (token_of(b"/first"), token_of(b"/second"));
    plugin
        .respond_grpc_call(second_call, b"for second")
        .unwrap();
    assert!(
        first.upstream_request().headers.is_none(),
        "first still waits"
    );
    plugin.respond_grpc_call(first_call, b"for first").unwrap();
    assert_eq!(
        first.upstream_request().header("x-callout-body").as_deref(),
        Some("for first")
    );
    assert_eq!(
        second
            .upstream_request()
            .header("x-callout-body")
            .as_deref(),
        Some("for second")
    );
    // A stream that ends before its answer cancels the call, as Envoy does.
    let mut gone = plugin.http_stream().unwrap();
    gone.send_request_headers(&get("/gone"), true).unwrap();
    let token = plugin.grpc_calls()[0].token;
    gone.end().unwrap();
    assert!(plugin.grpc_calls().is_empty(), "cancelled with its stream");
    assert!(
        plugin.respond_grpc_call(token, b"late").is_err(),
        "no such call any more"
    );
}
