//! header-rewrite in real Envoy (V8): headers seen upstream and by the client, parity with the
//! native header_mutation filter, and config errors that Envoy refuses.

use envoy_harness::config::{filter_wasm, native_filter, wasm_filter, BootstrapBuilder};
use envoy_harness::{run_expecting_exit, validate, EchoUpstream, Envoy, Request, Response};
use serde_json::{json, Value};
use std::time::Duration;

fn header_rewrite(config: &Value) -> Value {
    wasm_filter("header_rewrite", &filter_wasm("header_rewrite"), config)
}

fn append(key: &str, value: &str, action: &str) -> Value {
    json!({"append": {"header": {"key": key, "value": value}, "append_action": action}})
}

#[test]
fn request_and_response_headers_are_rewritten() {
    let upstream = EchoUpstream::start().unwrap();
    let config = json!({"mutations": {
        "request_mutations": [
            append("x-added", "hello %REQ(x-user)%", "APPEND_IF_EXISTS_OR_ADD"),
            append("x-user", "mallory", "ADD_IF_ABSENT"),
            {"remove": "x-drop"}
        ],
        "response_mutations": [
            append("x-powered-by", "wasm", "OVERWRITE_IF_EXISTS_OR_ADD"),
            append("x-from-request", "%REQ(x-user)%", "APPEND_IF_EXISTS_OR_ADD"),
            {"remove": "x-secret"}
        ]
    }});
    let envoy = Envoy::start(
        BootstrapBuilder::new(upstream.port())
            .listener("main", vec![header_rewrite(&config)])
            .build(),
    )
    .unwrap();
    let response = Request::get("/items?id=7")
        .header("x-user", "alice")
        .header("x-drop", "gone")
        .header("x-echo-header-x-secret", "leaked")
        .header("x-echo-header-x-powered-by", "upstream")
        .send(envoy.port())
        .unwrap();
    assert_eq!(response.status, 200, "{}", envoy.logs());
    assert_eq!(response.json()["path"], "/items?id=7");
    assert_eq!(response.upstream_header_all("x-added"), ["hello alice"]);
    assert_eq!(response.upstream_header_all("x-user"), ["alice"]);
    assert!(response.upstream_header("x-drop").is_none());
    assert_eq!(response.header_all("x-powered-by"), ["wasm"]);
    assert_eq!(response.header_all("x-from-request"), ["alice"]);
    assert!(response.header("x-secret").is_none());
}

#[test]
fn pseudo_headers_can_be_set_unlike_native() {
    // Native header_mutation refuses `:`-prefixed keys; this filter lets a route be rewritten.
    let upstream = EchoUpstream::start().unwrap();
    let config = json!({"mutations": {"request_mutations": [
        append(":path", "/v2%REQ(:path)%", "OVERWRITE_IF_EXISTS_OR_ADD")]}});
    let envoy = Envoy::start(
        BootstrapBuilder::new(upstream.port())
            .listener("main", vec![header_rewrite(&config)])
            .build(),
    )
    .unwrap();
    let response = Request::get("/items").send(envoy.port()).unwrap();
    assert_eq!(response.status, 200, "{}", envoy.logs());
    assert_eq!(response.json()["path"], "/v2/items");
}

#[test]
fn non_utf8_header_bytes_pass_through_without_harm() {
    let upstream = EchoUpstream::start().unwrap();
    let config = json!({"mutations": {"request_mutations": [append("x-copy", "[%REQ(x-bin)%]", "APPEND_IF_EXISTS_OR_ADD")]}});
    let envoy = Envoy::start(
        BootstrapBuilder::new(upstream.port())
            .listener("main", vec![header_rewrite(&config)])
            .build(),
    )
    .unwrap();
    for _ in 0..3 {
        let response = Request::get("/")
            .header("x-bin", [0xff, 0xfe, b'a', 0x80])
            .send(envoy.port())
            .unwrap();
        assert_eq!(response.status, 200, "{}", envoy.logs());
        let original = response.upstream_header("x-bin").unwrap();
        assert_eq!(
            response.upstream_header("x-copy"),
            Some(format!("[{original}]"))
        );
    }
    assert!(!envoy.logs().contains("wasm trap"), "{}", envoy.logs());
}

/// Headers that differ per request or per listener, so they are left out of comparisons.
const VOLATILE: &[&str] = &[
    "host",
    "x-request-id",
    "date",
    "content-length",
    "x-envoy-upstream-service-time",
];

fn stable(headers: Vec<(String, String)>) -> Vec<(String, String)> {
    headers
        .into_iter()
        .filter(|(name, _)| !VOLATILE.contains(&name.as_str()))
        .collect()
}

fn response_headers(response: &Response) -> Vec<(String, String)> {
    response
        .headers
        .iter()
        .map(|(name, value)| (name.clone(), String::from_utf8_lossy(value).into_owned()))
        .collect()
}

#[test]
fn same_results_as_native_header_mutation() {
    let mutations = json!({
        "request_mutations": [
            append("x-literal", "plain", "APPEND_IF_EXISTS_OR_ADD"),
            append("x-existing", "appended", "APPEND_IF_EXISTS_OR_ADD"),
            append("x-existing", "ignored", "ADD_IF_ABSENT"),
            append("x-absent", "added", "ADD_IF_ABSENT"),
            append("x-multi", "one", "OVERWRITE_IF_EXISTS_OR_ADD"),
            append("x-nowhere", "never", "OVERWRITE_IF_EXISTS"),
            append("x-existing", "%REQ(x-existing)%!", "OVERWRITE_IF_EXISTS"),
            append("x-user-copy", "user=%REQ(x-user)%", "APPEND_IF_EXISTS_OR_ADD"),
            append("x-missing-copy", "%REQ(x-missing)%", "APPEND_IF_EXISTS_OR_ADD"),
            {"append": {"header": {"key": "x-kept-empty", "value": "%REQ(x-missing)%"}, "keep_empty_value": true}},
            append("x-alternative", "%REQ(x-missing?x-user)%", "APPEND_IF_EXISTS_OR_ADD"),
            append("x-truncated", "%REQ(x-user):2%", "APPEND_IF_EXISTS_OR_ADD"),
            append("x-percent", "100%%", "APPEND_IF_EXISTS_OR_ADD"),
            append("x-protocol", "%PROTOCOL%", "APPEND_IF_EXISTS_OR_ADD"),
            append("x-client", "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%", "APPEND_IF_EXISTS_OR_ADD"),
            append("x-step", "one", "APPEND_IF_EXISTS_OR_ADD"),
            append("x-step-copy", "%REQ(x-step)%-two", "APPEND_IF_EXISTS_OR_ADD"),
            append("x-resp-in-request", "[%RESP(server)%]", "APPEND_IF_EXISTS_OR_ADD"),
            {"remove": "x-drop"}
        ],
        "response_mutations": [
            append("x-upstream-server", "%RESP(server)%", "APPEND_IF_EXISTS_OR_ADD"),
            append("x-request-user", "%REQ(x-user)%", "APPEND_IF_EXISTS_OR_ADD"),
            append("x-overwritten", "new", "OVERWRITE_IF_EXISTS_OR_ADD"),
            append("x-added", "%RESP(x-overwritten)%", "ADD_IF_ABSENT"),
            {"remove": "x-secret"}
        ]
    });
    let config = json!({"mutations": mutations});
    let upstream = EchoUpstream::start().unwrap();
    let native = native_filter(
        "native_header_mutation",
        "header_mutation.v3.HeaderMutation",
        config.clone(),
    );
    let envoy = Envoy::start(
        BootstrapBuilder::new(upstream.port())
            .listener("native", vec![native])
            .listener("wasm", vec![header_rewrite(&config)])
            .build(),
    )
    .unwrap();
    let request = Request::get("/p?q=1")
        .header("x-user", "alice")
        .header("x-existing", "first")
        .header("x-multi", "a")
        .header("x-multi", "b")
        .header("x-drop", "secret")
        .header("x-echo-header-x-secret", "s")
        .header("x-echo-header-x-overwritten", "old")
        .header("x-echo-header-x-overwritten", "older");
    let native = request
        .send(envoy.listener_port("native").unwrap())
        .unwrap();
    let wasm = request.send(envoy.listener_port("wasm").unwrap()).unwrap();
    assert_eq!(native.status, 200, "{}", envoy.logs());
    assert_eq!(wasm.status, 200, "{}", envoy.logs());
    assert_eq!(wasm.json()["path"], native.json()["path"]);
    assert_eq!(
        stable(wasm.upstream_headers()),
        stable(native.upstream_headers())
    );
    assert_eq!(
        stable(response_headers(&wasm)),
        stable(response_headers(&native))
    );
    // The comparison is only worth something if the mutations did something.
    assert_eq!(wasm.upstream_header_all("x-user-copy"), ["user=alice"]);
    assert_eq!(wasm.header_all("x-overwritten"), ["new"]);
}

fn refused_config_log(config: Value) -> String {
    let upstream = EchoUpstream::start().unwrap();
    let bootstrap = BootstrapBuilder::new(upstream.port())
        .listener("main", vec![header_rewrite(&config)])
        .build();
    let exited = run_expecting_exit(&bootstrap, Duration::from_secs(60)).unwrap();
    let status = exited
        .status
        .expect("Envoy should exit when the filter refuses its config");
    assert!(!status.success(), "Envoy should fail: {}", exited.logs);
    exited.logs
}

#[test]
fn envoy_refuses_an_unknown_field_and_logs_its_path() {
    let logs = refused_config_log(json!({"mutations": {"request_mutations": [
        {"append": {"header": {"key": "x", "value": "v"}, "apend_action": "ADD_IF_ABSENT"}}]}}));
    assert!(
        logs.contains("header_rewrite: invalid configuration at mutations.request_mutations[0].append.apend_action: unknown field `apend_action`"),
        "{logs}"
    );
    assert!(
        logs.contains("Unable to create Wasm HTTP filter")
            || logs.contains("Unable to create Wasm plugin")
            || logs.contains("failed to load"),
        "{logs}"
    );
}

#[test]
fn envoy_refuses_a_bad_append_action_and_logs_its_path() {
    let logs = refused_config_log(json!({"mutations": {"response_mutations": [
        {"append": {"header": {"key": "x", "value": "v"}, "append_action": "OVERWRITE"}}]}}));
    assert!(logs.contains("header_rewrite: invalid configuration at mutations.response_mutations[0].append.append_action: invalid value: string \"OVERWRITE\""), "{logs}");
}

#[test]
fn envoy_refuses_an_empty_key_and_logs_its_path() {
    let logs = refused_config_log(json!({"mutations": {"request_mutations": [
        {"remove": "x-fine"},
        {"append": {"header": {"key": "", "value": "v"}}}]}}));
    assert!(logs.contains("header_rewrite: invalid configuration at mutations.request_mutations[1].append.header.key: must not be empty"), "{logs}");
}

#[test]
fn validate_mode_rejects_a_bad_config_too() {
    let upstream = EchoUpstream::start().unwrap();
    let bad = json!({"mutations": {"request_mutations": [{"remove": ":path"}]}});
    let exited = validate(
        BootstrapBuilder::new(upstream.port())
            .listener("main", vec![header_rewrite(&bad)])
            .build(),
    )
    .unwrap();
    assert_eq!(
        exited.status.and_then(|s| s.code()),
        Some(1),
        "{}",
        exited.logs
    );
    assert!(
        exited
            .logs
            .contains("invalid configuration at mutations.request_mutations[0].remove"),
        "{}",
        exited.logs
    );
}
