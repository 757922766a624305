//! header-rewrite's built .wasm driven through test-host.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::{json, Value};
use test_host::{filter_wasm, Action, Error, Plugin, TestHost};

fn start(config: Value) -> Plugin {
    TestHost::new()
        .plugin(filter_wasm("header_rewrite"))
        .config(config)
        .start()
        .unwrap_or_else(|e| panic!("plugin should start: {e}"))
}

fn append(key: &str, value: &str, action: &str) -> Value {
    json!({"append": {"header": {"key": key, "value": value}, "append_action": action}})
}

const REQUEST: &[(&str, &str)] = &[
    (":method", "GET"),
    (":path", "/api/items"),
    (":authority", "example.com"),
    ("x-existing", "old"),
    ("x-existing", "older"),
    ("x-drop", "secret"),
    ("x-user", "alice"),
];

#[test]
fn request_mutations_follow_each_append_action() {
    let plugin = start(json!({"mutations": {"request_mutations": [
        append("x-added", "new", "APPEND_IF_EXISTS_OR_ADD"),
        append("x-existing", "appended", "APPEND_IF_EXISTS_OR_ADD"),
        append("x-user", "mallory", "ADD_IF_ABSENT"),
        append("x-absent", "added", "ADD_IF_ABSENT"),
        append("x-overwritten", "set", "OVERWRITE_IF_EXISTS_OR_ADD"),
        append("x-not-there", "never", "OVERWRITE_IF_EXISTS"),
        {"remove": "x-drop"}
    ]}}));
    let mut stream = plugin.http_stream().unwrap();
    assert_eq!(
        stream.send_request_headers(REQUEST, true).unwrap(),
        Action::Continue
    );
    let upstream = stream.request_headers();
    assert_eq!(upstream.get_all("x-added"), vec![&b"new"[..]]);
    assert_eq!(
        upstream.get_all("x-existing"),
        vec![&b"old"[..], b"older", b"appended"]
    );
    assert_eq!(upstream.get_all("x-user"), vec![&b"alice"[..]]);
    assert_eq!(upstream.get_str("x-absent").as_deref(), Some("added"));
    assert_eq!(upstream.get_str("x-overwritten").as_deref(), Some("set"));
    assert_eq!(upstream.get("x-not-there"), None);
    assert_eq!(upstream.get("x-drop"), None);
    assert!(plugin.failure().is_none());
}

#[test]
fn overwrite_replaces_every_existing_value() {
    let plugin = start(json!({"mutations": {"request_mutations": [
        append("x-existing", "one", "OVERWRITE_IF_EXISTS"),
    ]}}));
    let mut stream = plugin.http_stream().unwrap();
    stream.send_request_headers(REQUEST, true).unwrap();
    assert_eq!(
        stream.request_headers().get_all("x-existing"),
        vec![&b"one"[..]]
    );
}

#[test]
fn response_mutations_apply_to_response_headers_only() {
    let plugin = start(json!({"mutations": {"response_mutations": [
        append("x-served-by", "wasm", "OVERWRITE_IF_EXISTS_OR_ADD"),
        {"remove": "server"}
    ]}}));
    let mut stream = plugin.http_stream().unwrap();
    stream.send_request_headers(REQUEST, true).unwrap();
    assert_eq!(stream.request_headers().get("x-served-by"), None);
    let action = stream
        .send_response_headers(
            &[
                (":status", "200"),
                ("server", "upstream"),
                ("x-served-by", "other"),
            ],
            false,
        )
        .unwrap();
    assert_eq!(action, Action::Continue);
    let client = stream.response_headers();
    assert_eq!(client.get_all("x-served-by"), vec![&b"wasm"[..]]);
    assert_eq!(client.get("server"), None);
    assert_eq!(client.get_str(":status").as_deref(), Some("200"));
}

#[test]
fn values_substitute_request_response_and_connection_data() {
    let plugin = start(json!({"mutations": {
        "request_mutations": [
            append("x-greeting", "hello %REQ(X-User)% from %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%", "APPEND_IF_EXISTS_OR_ADD"),
            append("x-fallback", "%REQ(x-missing?:path)%", "APPEND_IF_EXISTS_OR_ADD"),
            append("x-short", "%REQ(x-user):3%", "APPEND_IF_EXISTS_OR_ADD"),
            append("x-resp-at-request", "[%RESP(server)%]", "APPEND_IF_EXISTS_OR_ADD"),
            append("x-literal", "100%%", "APPEND_IF_EXISTS_OR_ADD"),
            append("x-proto", "%PROTOCOL%", "APPEND_IF_EXISTS_OR_ADD")
        ],
        "response_mutations": [
            append("x-echo-path", "%REQ(:path)%", "APPEND_IF_EXISTS_OR_ADD"),
            append("x-echo-server", "%RESP(server)%!", "APPEND_IF_EXISTS_OR_ADD")
        ]
    }}));
    let mut stream = plugin.http_stream().unwrap();
    stream.set_property(&["source", "address"], "10.1.2.3:4444");
    stream.send_request_headers(REQUEST, true).unwrap();
    let upstream = stream.request_headers();
    assert_eq!(
        upstream.get_str("x-greeting").as_deref(),
        Some("hello alice from 10.1.2.3")
    );
    assert_eq!(
        upstream.get_str("x-fallback").as_deref(),
        Some("/api/items")
    );
    assert_eq!(upstream.get_str("x-short").as_deref(), Some("ali"));
    assert_eq!(upstream.get_str("x-resp-at-request").as_deref(), Some("[]"));
    assert_eq!(upstream.get_str("x-literal").as_deref(), Some("100%"));
    assert_eq!(upstream.get_str("x-proto").as_deref(), Some("HTTP/1.1"));
    stream
        .send_response_headers(&[(":status", "200"), ("server", "echo")], true)
        .unwrap();
    let client = stream.response_headers();
    assert_eq!(client.get_str("x-echo-path").as_deref(), Some("/api/items"));
    assert_eq!(client.get_str("x-echo-server").as_deref(), Some("echo!"));
}

#[test]
fn later_mutations_see_earlier_ones() {
    let plugin = start(json!({"mutations": {"request_mutations": [
        append("x-step", "one", "APPEND_IF_EXISTS_OR_ADD"),
        append("x-copy", "%REQ(x-step)%-two", "APPEND_IF_EXISTS_OR_ADD"),
        {"remove": "x-step"},
        append("x-gone", "%REQ(x-step)%", "APPEND_IF_EXISTS_OR_ADD")
    ]}}));
    let mut stream = plugin.http_stream().unwrap();
    stream.send_request_headers(REQUEST, true).unwrap();
    let upstream = stream.request_headers();
    assert_eq!(upstream.get_str("x-copy").as_deref(), Some("one-two"));
    assert_eq!(upstream.get("x-step"), None);
    assert_eq!(upstream.get("x-gone"), None, "an empty value is not added");
}

#[test]
fn empty_values_are_dropped_unless_kept() {
    let plugin = start(json!({"mutations": {"request_mutations": [
        {"append": {"header": {"key": "x-empty-dropped", "value": ""}}},
        {"append": {"header": {"key": "x-empty-kept", "value": "%REQ(x-nothing)%"}, "keep_empty_value": true}}
    ]}}));
    let mut stream = plugin.http_stream().unwrap();
    stream.send_request_headers(REQUEST, true).unwrap();
    let upstream = stream.request_headers();
    assert_eq!(upstream.get("x-empty-dropped"), None);
    assert_eq!(upstream.get("x-empty-kept"), Some(&b""[..]));
}

#[test]
fn pseudo_headers_can_be_set() {
    let plugin = start(json!({"mutations": {"request_mutations": [
        append(":path", "/rewritten%REQ(:path)%", "OVERWRITE_IF_EXISTS_OR_ADD"),
        append(":authority", "internal.svc", "OVERWRITE_IF_EXISTS_OR_ADD")
    ]}}));
    let mut stream = plugin.http_stream().unwrap();
    stream.send_request_headers(REQUEST, true).unwrap();
    let upstream = stream.request_headers();
    assert_eq!(
        upstream.get_all(":path"),
        vec![&b"/rewritten/api/items"[..]]
    );
    assert_eq!(
        upstream.get_str(":authority").as_deref(),
        Some("internal.svc")
    );
}

#[test]
fn trailers_are_mutated_when_present() {
    let plugin = start(json!({"mutations": {
        "request_trailers_mutations": [append("x-req-trailer", "added", "APPEND_IF_EXISTS_OR_ADD")],
        "response_trailers_mutations": [{"remove": "grpc-message"}]
    }}));
    let mut stream = plugin.http_stream().unwrap();
    stream.send_request_headers(REQUEST, false).unwrap();
    assert_eq!(
        stream
            .send_request_trailers(&[("x-checksum", "abc")])
            .unwrap(),
        Action::Continue
    );
    assert_eq!(
        stream
            .request_trailers()
            .get_str("x-req-trailer")
            .as_deref(),
        Some("added")
    );
    stream
        .send_response_headers(&[(":status", "200")], false)
        .unwrap();
    stream
        .send_response_trailers(&[("grpc-status", "0"), ("grpc-message", "ok")])
        .unwrap();
    assert_eq!(stream.response_trailers().get("grpc-message"), None);
    assert_eq!(
        stream.response_trailers().get_str("grpc-status").as_deref(),
        Some("0")
    );
}

#[test]
fn non_utf8_header_bytes_are_copied_untouched() {
    let plugin = start(json!({"mutations": {"request_mutations": [
        append("x-copy", "<%REQ(x-bin)%>", "APPEND_IF_EXISTS_OR_ADD"),
        append("x-bin", "tail", "APPEND_IF_EXISTS_OR_ADD")
    ]}}));
    let mut stream = plugin.http_stream().unwrap();
    let raw: &[u8] = &[0xff, 0xfe, b'a', 0x80];
    stream
        .send_request_headers(&[(&b":path"[..], &b"/"[..]), (b"x-bin", raw)], true)
        .unwrap();
    let upstream = stream.request_headers();
    assert_eq!(
        upstream.get("x-copy"),
        Some(&[b'<', 0xff, 0xfe, b'a', 0x80, b'>'][..])
    );
    assert_eq!(upstream.get_all("x-bin"), vec![raw, b"tail"]);
    stream.end().unwrap();
    assert!(plugin.failure().is_none());
}

#[test]
fn arbitrary_header_bytes_never_trap_the_vm() {
    let plugin = start(json!({"mutations": {
        "request_mutations": [
            append("x-a", "%REQ(x-fuzz)%%REQ(:path):7%", "APPEND_IF_EXISTS_OR_ADD"),
            append("x-fuzz", "%REQ(x-fuzz?x-other)%", "OVERWRITE_IF_EXISTS"),
            {"remove": "x-other"}
        ],
        "response_mutations": [append("x-b", "%RESP(x-fuzz)%%REQ(x-fuzz)%", "ADD_IF_ABSENT")]
    }}));
    // A small deterministic generator keeps the corpus reproducible without a dependency.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..300 {
        let mut headers: Vec<(Vec<u8>, Vec<u8>)> = vec![(b":path".to_vec(), b"/".to_vec())];
        for _ in 0..(next() % 6) {
            let name = [b"x-fuzz".as_slice(), b"x-other", b":path", b"X-FUZZ"]
                [(next() % 4) as usize]
                .to_vec();
            let value: Vec<u8> = (0..(next() % 300)).map(|_| next() as u8).collect();
            headers.push((name, value));
        }
        let mut stream = plugin.http_stream().unwrap();
        stream
            .send_request_headers(&headers, false)
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        stream
            .send_response_headers(&headers[1..], true)
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        stream
            .end()
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
    }
    assert!(plugin.failure().is_none());
}

#[test]
fn invalid_config_is_rejected_with_the_field_path_logged() {
    let cases = [
        (
            json!({"mutations": {"request_mutations": [{"append": {"header": {"key": "x"}, "apend_action": "ADD_IF_ABSENT"}}]}}),
            "header_rewrite: invalid configuration at mutations.request_mutations[0].append.apend_action: unknown field `apend_action`",
        ),
        (
            json!({"mutations": {"response_mutations": [{"append": {"header": {"key": "x", "value": "v"}, "append_action": "SOMETIMES"}}]}}),
            "header_rewrite: invalid configuration at mutations.response_mutations[0].append.append_action: invalid value",
        ),
        (
            json!({"mutations": {"request_mutations": [{"append": {"header": {"key": "", "value": "v"}}}]}}),
            "header_rewrite: invalid configuration at mutations.request_mutations[0].append.header.key: must not be empty",
        ),
        (
            json!({"mutations": {"request_mutations": [{"remove": ":authority"}]}}),
            "header_rewrite: invalid configuration at mutations.request_mutations[0].remove:",
        ),
    ];
    for (config, expected_log) in cases {
        let error = TestHost::new()
            .plugin(filter_wasm("header_rewrite"))
            .config(config.clone())
            .start()
            .err()
            .unwrap_or_else(|| panic!("{config} should be rejected"));
        match error {
            Error::Rejected { callback, logs } => {
                assert_eq!(callback, "proxy_on_configure");
                assert!(
                    logs.iter().any(|line| line.starts_with(expected_log)),
                    "{config}: {logs:?}"
                );
            }
            other => panic!("{config}: expected a rejection, got {other}"),
        }
    }
}

#[test]
fn non_json_config_is_rejected_not_trapped() {
    let error = TestHost::new()
        .plugin(filter_wasm("header_rewrite"))
        .config_bytes(vec![0xff, b'{', 0x00])
        .start()
        .err()
        .expect("garbage config is rejected");
    assert!(matches!(error, Error::Rejected { .. }), "{error}");
}
