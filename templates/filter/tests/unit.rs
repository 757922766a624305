//! {{name}}'s per-request logic on sdk-ext's fake host: natively, in microseconds, no wasm.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use {{crate}}::filter::{{Type}}Root;
use sdk_ext::fake::FakeModule;
use sdk_ext::Action;
use serde_json::{json, Value};

fn start(config: Value) -> FakeModule {
    FakeModule::standalone::<{{Type}}Root>(config.to_string().as_bytes())
        .unwrap_or_else(|error| panic!("{config} should be accepted: {error}"))
}

fn config() -> Value {
    json!({
        "required_header": "X-Api-Key",
        "response_header": {"key": "x-checked-by", "value": "{{name}}"}
    })
}

#[test]
fn a_request_with_the_header_passes_and_its_response_gets_the_header() {
    let mut module = start(config());
    let stream = module.stream();
    let request = [(":path", "/items"), ("x-api-key", "k")];
    assert_eq!(
        module.request_headers(stream, &request, true),
        Action::Continue
    );
    assert_eq!(module.host().local_reply(stream), None);
    let response = [(":status", "200")];
    assert_eq!(
        module.response_headers(stream, &response, true),
        Action::Continue
    );
    assert_eq!(
        module
            .host()
            .response_header(stream, "x-checked-by")
            .as_deref(),
        Some("{{name}}")
    );
    assert_eq!(module.host().metric("{{crate}}.allowed"), Some(1));
    assert_eq!(module.host().metric("{{crate}}.denied"), Some(0));
}

#[test]
fn a_request_without_the_header_gets_a_json_403() {
    let mut module = start(config());
    let stream = module.stream();
    assert_eq!(
        module.request_headers(stream, &[(":path", "/items")], true),
        Action::Pause
    );
    let reply = module.host().local_reply(stream).expect("a local reply");
    assert_eq!(reply.status, 403);
    assert_eq!(reply.details, "missing_header");
    assert_eq!(
        reply.header("content-type").as_deref(),
        Some("application/json")
    );
    let body: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(body["error"], "missing_header");
    assert_eq!(body["message"], "the request has no x-api-key header");
    assert_eq!(module.host().metric("{{crate}}.denied"), Some(1));
}

#[test]
fn a_bad_config_is_refused_at_its_field_path() {
    for (config, path) in [
        (json!({}), ""),
        (json!({"required_header": "x api"}), "required_header"),
        (
            json!({"required_header": "x", "response_header": {"key": ":path"}}),
            "response_header.key",
        ),
        (
            json!({"required_header": "x", "response_header": {"key": "x-a", "value": "a\nb"}}),
            "response_header.value",
        ),
        (
            json!({"required_header": "x", "stat_prefix": ""}),
            "stat_prefix",
        ),
        (json!({"required_header": "x", "extra": 1}), "extra"),
    ] {
        let error = FakeModule::standalone::<{{Type}}Root>(config.to_string().as_bytes())
            .err()
            .unwrap_or_else(|| panic!("{config} should be refused"));
        assert_eq!(error.path, path, "{config}: {error}");
    }
}
