//! sdk-ext's per-request callouts in real Envoy (sdk-ext/callout-probe): Envoy delivers the
//! answer to the root context, and proxy-wasm's dispatcher must hand it to the stream that asked,
//! which then resumes or replies.

use envoy_harness::config::{wasm_filter, BootstrapBuilder};
use envoy_harness::{CannedReply, EchoUpstream, Envoy, Request};
use serde_json::json;

fn start(upstream: &EchoUpstream, authz_port: u16) -> Envoy {
    let probe = wasm_filter(
        "callout_probe",
        &test_host::test_module("sdk_ext_callout_probe"),
        &json!({"cluster": "authz", "timeout_ms": 2000}),
    );
    let bootstrap = BootstrapBuilder::new(upstream.port())
        .listener("main", vec![probe])
        .cluster("authz", authz_port);
    Envoy::start(bootstrap.build()).unwrap()
}

fn reply(status: u16, body: &str) -> CannedReply {
    CannedReply {
        status,
        headers: vec![],
        body: body.as_bytes().to_vec(),
    }
}

#[test]
fn the_answer_resumes_or_refuses_the_request_that_asked() {
    let upstream = EchoUpstream::start().unwrap();
    let authz = EchoUpstream::start().unwrap();
    let envoy = start(&upstream, authz.port());

    authz.reply_next(reply(200, "ok:alice"));
    let allowed = Request::get("/orders?id=7").send(envoy.port()).unwrap();
    assert_eq!(allowed.status, 200, "{}", envoy.logs());
    assert_eq!(
        allowed.upstream_header("x-callout-body").as_deref(),
        Some("ok:alice")
    );
    assert_eq!(
        authz.received().last().map(|r| r.path.clone()).as_deref(),
        Some("/orders?id=7")
    );

    authz.reply_next(reply(401, "no"));
    let refused = Request::get("/orders").send(envoy.port()).unwrap();
    assert_eq!(refused.status, 403);
    assert_eq!(refused.json()["error"], "denied");
}

#[test]
fn an_unreachable_service_gets_503() {
    let upstream = EchoUpstream::start().unwrap();
    // A port that was free a moment ago: nothing listens, so Envoy answers the call with 503.
    let closed = EchoUpstream::start().unwrap();
    let closed_port = closed.port();
    drop(closed);
    let envoy = start(&upstream, closed_port);
    let response = Request::get("/orders").send(envoy.port()).unwrap();
    assert_eq!(response.status, 503, "{}", envoy.logs());
    assert_eq!(response.json()["error"], "callout_failed");
}
