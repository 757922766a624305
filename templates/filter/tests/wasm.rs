//! {{name}}'s built module (`make build` writes target/filters/{{crate}}.wasm) driven through
//! test-host, as Envoy would run it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use serde_json::json;
use test_host::{filter_wasm, Action, Error, Plugin, TestHost};

fn start(host: &TestHost) -> Plugin {
    host.plugin(filter_wasm("{{crate}}"))
        .config(json!({
            "required_header": "x-api-key",
            "response_header": {"key": "x-checked-by", "value": "{{name}}"}
        }))
        .start()
        .unwrap_or_else(|error| panic!("the plugin should start: {error}"))
}

#[test]
fn the_module_refuses_a_request_without_the_header_and_marks_the_others() {
    let host = TestHost::new();
    let plugin = start(&host);

    let mut refused = plugin.http_stream().unwrap();
    let action = refused
        .send_request_headers(&[(":path", "/")], true)
        .unwrap();
    assert_eq!(action, Action::Pause);
    let reply = refused.local_response().expect("a local reply");
    assert_eq!(reply.status, 403);
    assert!(String::from_utf8_lossy(&reply.body).contains("missing_header"));

    let mut allowed = plugin.http_stream().unwrap();
    let request = [(":path", "/"), ("x-api-key", "k")];
    assert_eq!(
        allowed.send_request_headers(&request, true).unwrap(),
        Action::Continue
    );
    let response = [(":status", "200")];
    assert_eq!(
        allowed.send_response_headers(&response, true).unwrap(),
        Action::Continue
    );
    assert_eq!(
        allowed
            .response_headers()
            .get_str("x-checked-by")
            .as_deref(),
        Some("{{name}}")
    );
    assert_eq!(host.counter("{{crate}}.allowed"), Some(1));
    assert_eq!(host.counter("{{crate}}.denied"), Some(1));
    assert!(plugin.failure().is_none());
}

#[test]
fn the_module_refuses_a_bad_config_and_logs_its_field_path() {
    let error = TestHost::new()
        .plugin(filter_wasm("{{crate}}"))
        .config(json!({"required_header": "x api"}))
        .start()
        .err()
        .expect("the config should be refused");
    match error {
        Error::Rejected { logs, .. } => assert!(
            logs.iter()
                .any(|line| line.contains("invalid configuration at required_header")),
            "{logs:?}"
        ),
        other => panic!("expected a rejection, got {other}"),
    }
}
