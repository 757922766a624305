//! json-redact's built module (`make build` writes
//! target/filters/json_redact.wasm) driven through test-host, as Envoy would run it: what the
//! upstream and the client receive, body by body.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::{json, Map, Value};
use std::time::{Duration, Instant};
use test_host::{filter_wasm, Action, Error, HttpStream, LogLevel, Plugin, TestHost};

fn start(host: &TestHost, config: Value) -> Plugin {
    host.plugin(filter_wasm("json_redact"))
        .config(config)
        .start()
        .unwrap_or_else(|error| panic!("the plugin should start: {error}"))
}

fn config() -> Value {
    json!({
        "rules": [
            {"match": {"prefix": "/users"}, "direction": "both",
             "redact": ["/user/ssn", "/cards/*/number"], "mask": "[redacted]"},
            {"match": {"prefix": "/drop", "headers": [{"name": "x-drop", "present_match": true}]},
             "direction": "request", "action": "remove", "redact": ["/secret", "/list/0"],
             "content_types": ["application/*"]}
        ],
        "max_body_bytes": 4096,
        "stat_prefix": "redact"
    })
}

const DOC: &str = r#"{"user": {"name": "Ann", "ssn": "123-45-6789"}, "cards": [{"number": "4111 1111", "exp": "12/30"}, {"number": 5500}], "n": 1.10}"#;
const REDACTED: &str = r#"{"user": {"name": "Ann", "ssn": "[redacted]"}, "cards": [{"number": "[redacted]", "exp": "12/30"}, {"number": "[redacted]"}], "n": 1.10}"#;

fn post(plugin: &Plugin, path: &str, extra: &[(&str, &str)]) -> HttpStream {
    let mut stream = plugin.http_stream().unwrap();
    let mut headers = vec![(":method", "POST"), (":path", path), (":authority", "api")];
    headers.extend_from_slice(extra);
    assert_eq!(
        stream.send_request_headers(&headers, false).unwrap(),
        Action::Continue
    );
    stream
}

fn get(plugin: &Plugin, path: &str) -> HttpStream {
    let mut stream = plugin.http_stream().unwrap();
    let headers = [(":method", "GET"), (":path", path), (":authority", "api")];
    stream.send_request_headers(&headers, true).unwrap();
    stream
}

/// Sends `body` in chunks of `size` bytes (the last one ends the stream); the actions.
fn send_in_chunks(
    stream: &mut HttpStream,
    body: &[u8],
    size: usize,
    response: bool,
) -> Vec<Action> {
    let chunks: Vec<&[u8]> = body.chunks(size.max(1)).collect();
    let last = chunks.len().saturating_sub(1);
    let mut actions = Vec::new();
    for (at, chunk) in chunks.iter().enumerate() {
        let action = if response {
            stream.send_response_body(chunk, at == last)
        } else {
            stream.send_request_body(chunk, at == last)
        };
        actions.push(action.unwrap());
    }
    actions
}

fn json_response(length: Option<usize>) -> Vec<(&'static str, String)> {
    let mut headers = vec![
        (":status", "200".to_string()),
        ("content-type", "application/json".into()),
    ];
    if let Some(length) = length {
        headers.push(("content-length", length.to_string()));
    }
    headers
}

/// Request headers besides the pseudo-headers.
type Headers<'a> = &'a [(&'a str, &'a str)];

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_request_body_in_many_chunks_reaches_the_upstream_redacted_without_content_length() {
    let host = TestHost::new();
    let plugin = start(&host, config());
    let length = DOC.len().to_string();
    let mut stream = post(
        &plugin,
        "/users/7",
        &[
            ("content-type", "application/json"),
            ("content-length", &length),
        ],
    );
    let actions = send_in_chunks(&mut stream, DOC.as_bytes(), 7, false);
    assert!(
        actions[..actions.len() - 1]
            .iter()
            .all(|a| *a == Action::Pause),
        "{actions:?}"
    );
    assert_eq!(actions.last(), Some(&Action::Continue));
    let upstream = stream.upstream_request();
    assert!(upstream.complete);
    assert_eq!(text(&upstream.body), REDACTED);
    assert_eq!(upstream.header("content-length"), None);
    assert_eq!(host.counter("redact.redacted"), Some(1));
    assert!(plugin.failure().is_none());
}

#[test]
fn a_response_body_reaches_the_client_redacted_in_one_or_many_chunks() {
    let host = TestHost::new();
    let plugin = start(&host, config());
    for chunk in [1, 10, DOC.len()] {
        let mut stream = get(&plugin, "/users");
        stream
            .send_response_headers(&json_response(Some(DOC.len())), false)
            .unwrap();
        send_in_chunks(&mut stream, DOC.as_bytes(), chunk, true);
        let client = stream.client_response();
        assert!(client.complete);
        assert_eq!(text(&client.body), REDACTED, "chunks of {chunk}");
        assert_eq!(client.header("content-length"), None);
        assert_eq!(client.status(), Some(200));
    }
    assert_eq!(host.counter("redact.redacted"), Some(3));
}

#[test]
fn remove_keeps_the_rest_byte_for_byte_and_rules_match_on_headers() {
    let host = TestHost::new();
    let plugin = start(&host, config());
    let body = "{\n  \"secret\": \"s\",\n  \"list\": [1, 2],\n  \"keep\": \"\\u00e9\"\n}";
    let mut stream = post(
        &plugin,
        "/drop",
        &[
            ("x-drop", "1"),
            ("content-type", "application/vnd.api+json"),
        ],
    );
    stream.send_request_body(body, true).unwrap();
    assert_eq!(
        text(&stream.upstream_request().body),
        "{\n  \"list\": [ 2],\n  \"keep\": \"\\u00e9\"\n}"
    );
    // Without the header the rule does not match: the body passes as it came.
    let mut stream = post(
        &plugin,
        "/drop",
        &[
            ("content-type", "application/json"),
            ("content-length", "17"),
        ],
    );
    assert_eq!(
        stream
            .send_request_body(r#"{"secret": "s"}  "#, false)
            .unwrap(),
        Action::Continue
    );
    assert_eq!(
        text(&stream.upstream_request().body),
        r#"{"secret": "s"}  "#
    );
    assert_eq!(
        stream
            .upstream_request()
            .header("content-length")
            .as_deref(),
        Some("17")
    );
}

#[test]
fn trailers_end_a_buffered_body() {
    let host = TestHost::new();
    let plugin = start(&host, config());
    let mut stream = post(&plugin, "/users", &[("content-type", "application/json")]);
    assert_eq!(
        stream
            .send_request_body(r#"{"user": {"ssn": 1}}"#, false)
            .unwrap(),
        Action::Pause
    );
    stream
        .send_request_trailers(&[("x-checksum", "abc")])
        .unwrap();
    let upstream = stream.upstream_request();
    assert_eq!(text(&upstream.body), r#"{"user": {"ssn": "[redacted]"}}"#);
    assert!(upstream.complete);
    assert!(upstream.trailers.is_some());
}

#[test]
fn non_json_invalid_json_and_encoded_bodies_pass_untouched_and_counted() {
    let host = TestHost::new();
    let plugin = start(&host, config());
    let cases: [(Headers, &[u8]); 4] = [
        (
            &[("content-type", "text/plain")],
            br#"{"user": {"ssn": 1}}"#,
        ),
        (
            &[("content-type", "application/json")],
            b"{\"user\": {\"ssn\": 1}",
        ),
        (
            &[("content-type", "application/json")],
            b"{\"user\": {\"ssn\": \"\xff\"}}",
        ),
        (
            &[
                ("content-type", "application/json"),
                ("content-encoding", "gzip"),
            ],
            b"\x1f\x8b\x08\x00\xff",
        ),
    ];
    for (headers, body) in cases {
        let mut stream = post(&plugin, "/users", headers);
        send_in_chunks(&mut stream, body, 3, false);
        let upstream = stream.upstream_request();
        assert_eq!(upstream.body, body, "{headers:?}");
        assert!(upstream.complete);
    }
    assert_eq!(host.counter("redact.passed_non_json"), Some(1));
    assert_eq!(host.counter("redact.invalid_json"), Some(2));
    assert_eq!(host.counter("redact.encoded_passthrough"), Some(1));
    assert_eq!(host.counter("redact.redacted"), Some(0));
}

#[test]
fn empty_bodies_head_204_and_304_complete_untouched() {
    let host = TestHost::new();
    let plugin = start(&host, config());
    // An empty body ended in a body callback.
    let mut stream = post(
        &plugin,
        "/users",
        &[
            ("content-type", "application/json"),
            ("content-length", "0"),
        ],
    );
    assert_eq!(
        stream.send_request_body("", true).unwrap(),
        Action::Continue
    );
    assert!(stream.upstream_request().complete);
    assert!(stream.upstream_request().body.is_empty());
    stream
        .send_response_headers(&json_response(None), false)
        .unwrap();
    assert_eq!(
        stream.send_response_body("", true).unwrap(),
        Action::Continue
    );
    assert!(stream.client_response().complete);
    // HEAD: headers only, content-length kept.
    let mut stream = plugin.http_stream().unwrap();
    stream
        .send_request_headers(&[(":method", "HEAD"), (":path", "/users")], true)
        .unwrap();
    assert_eq!(
        stream
            .send_response_headers(&json_response(Some(120)), true)
            .unwrap(),
        Action::Continue
    );
    let client = stream.client_response();
    assert!(client.complete);
    assert_eq!(client.header("content-length").as_deref(), Some("120"));
    for status in ["204", "304"] {
        let mut stream = get(&plugin, "/users");
        let headers = [
            (":status", status),
            ("content-type", "application/json"),
            ("etag", "x"),
        ];
        assert_eq!(
            stream.send_response_headers(&headers, true).unwrap(),
            Action::Continue
        );
        assert!(stream.client_response().complete);
        // Even a stray body after such headers (a broken upstream) is not held.
        let mut stream = get(&plugin, "/users");
        let headers = [
            (":status", status),
            ("content-type", "application/json"),
            ("content-length", "2"),
        ];
        stream.send_response_headers(&headers, false).unwrap();
        assert_eq!(
            stream.send_response_body("{}", true).unwrap(),
            Action::Continue
        );
        assert_eq!(
            stream.client_response().header("content-length").as_deref(),
            Some("2")
        );
    }
    let total: u64 = [
        "redacted",
        "unchanged",
        "invalid_json",
        "passed_non_json",
        "errors",
    ]
    .iter()
    .map(|name| host.counter(&format!("redact.{name}")).unwrap())
    .sum();
    assert_eq!(total, 0);
    assert!(plugin.failure().is_none());
}

#[test]
fn an_over_limit_request_gets_a_json_413_and_never_reaches_the_upstream() {
    let host = TestHost::new();
    let plugin = start(&host, config());
    let mut stream = plugin.http_stream().unwrap();
    let headers = [
        (":method", "POST"),
        (":path", "/users"),
        ("content-type", "application/json"),
        ("content-length", "4097"),
    ];
    assert_eq!(
        stream.send_request_headers(&headers, false).unwrap(),
        Action::Pause
    );
    let reply = stream.local_response().expect("a 413 at the headers");
    assert_eq!(reply.status, 413);
    assert_eq!(
        reply.headers.get_str("content-type").as_deref(),
        Some("application/json")
    );
    let body: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(body["error"], "request_body_too_large");
    assert_eq!(body["message"], "the request body is over 4096 bytes");
    assert!(stream.upstream_request().headers.is_none());

    // Chunked, no length: found while buffering; exactly the limit still passes.
    let exact = format!("{{\"pad\": \"{}\"}}", "x".repeat(4096 - 11));
    let mut stream = post(&plugin, "/users", &[("content-type", "application/json")]);
    send_in_chunks(&mut stream, exact.as_bytes(), 1000, false);
    assert_eq!(stream.upstream_request().body.len(), 4096);
    let mut stream = post(&plugin, "/users", &[("content-type", "application/json")]);
    let over = format!("{exact} ");
    let actions = send_in_chunks(&mut stream, over.as_bytes(), 1000, false);
    assert_eq!(actions.last(), Some(&Action::Pause));
    assert_eq!(stream.local_response().unwrap().status, 413);
    assert!(stream.upstream_request().body.is_empty());
    assert_eq!(host.counter("redact.request_too_large"), Some(2));
    assert!(plugin.failure().is_none());
}

#[test]
fn an_over_limit_response_passes_unmodified_with_a_log_line() {
    let host = TestHost::new();
    let plugin = start(&host, config());
    let big = format!(
        "{{\"user\": {{\"ssn\": 1}}, \"pad\": \"{}\"}}",
        "x".repeat(5000)
    );
    for declared in [Some(big.len()), None] {
        let mut stream = get(&plugin, "/users");
        stream
            .send_response_headers(&json_response(declared), false)
            .unwrap();
        send_in_chunks(&mut stream, big.as_bytes(), 1500, true);
        let client = stream.client_response();
        assert!(client.complete);
        assert_eq!(text(&client.body), big);
    }
    assert_eq!(host.counter("redact.response_too_large"), Some(2));
    let warnings = plugin.log_messages(LogLevel::Warn);
    assert!(
        warnings
            .iter()
            .any(|line| line.contains("over 4096; passed unredacted")),
        "{warnings:?}"
    );
}

#[test]
fn an_over_limit_response_can_be_rejected_instead() {
    let host = TestHost::new();
    let mut config = config();
    config["response_over_limit"] = json!("reject");
    let plugin = start(&host, config);
    let big = format!(
        "{{\"user\": {{\"ssn\": \"123-45\"}}, \"pad\": \"{}\"}}",
        "x".repeat(5000)
    );
    // Declared in advance: a 502 with the JSON error.
    let mut stream = get(&plugin, "/users");
    stream
        .send_response_headers(&json_response(Some(big.len())), false)
        .unwrap();
    send_in_chunks(&mut stream, big.as_bytes(), 1500, true);
    let client = stream.client_response();
    assert_eq!(client.status(), Some(502));
    assert_eq!(client.header("content-length"), None);
    let body: Value = serde_json::from_slice(&client.body).unwrap();
    assert_eq!(body["error"], "response_body_too_large");
    // Found while buffering: the headers are gone already, the body never leaves.
    let mut stream = get(&plugin, "/users");
    stream
        .send_response_headers(&json_response(None), false)
        .unwrap();
    send_in_chunks(&mut stream, big.as_bytes(), 1500, true);
    let client = stream.client_response();
    assert!(client.complete);
    assert!(!text(&client.body).contains("123-45"));
    let body: Value = serde_json::from_slice(&client.body).unwrap();
    assert_eq!(body["error"], "response_body_too_large");
}

#[test]
fn default_content_types_direction_and_mask() {
    let host = TestHost::new();
    let plugin = start(&host, json!({"rules": [{"redact": ["/k"]}]}));
    // Default direction: responses only.
    let mut stream = post(&plugin, "/", &[("content-type", "application/json")]);
    stream.send_request_body(r#"{"k": 1}"#, true).unwrap();
    assert_eq!(text(&stream.upstream_request().body), r#"{"k": 1}"#);
    stream
        .send_response_headers(&json_response(Some(8)), false)
        .unwrap();
    stream.send_response_body(r#"{"k": 1}"#, true).unwrap();
    assert_eq!(text(&stream.client_response().body), r#"{"k": "***"}"#);
    // application/json only by default.
    let mut stream = get(&plugin, "/");
    stream
        .send_response_headers(
            &[
                (":status", "200"),
                ("content-type", "application/problem+json"),
            ],
            false,
        )
        .unwrap();
    stream.send_response_body(r#"{"k": 1}"#, true).unwrap();
    assert_eq!(text(&stream.client_response().body), r#"{"k": 1}"#);
    assert_eq!(host.counter("json_redact.redacted"), Some(1));
    assert_eq!(host.counter("json_redact.passed_non_json"), Some(1));
}

#[test]
fn the_module_refuses_a_bad_config_and_logs_its_field_path() {
    for (config, path) in [
        (
            json!({"rules": [{"redact": ["/a"]}, {"redact": ["/b", "c"]}]}),
            "rules[1].redact[1]",
        ),
        (
            json!({"rules": [{"redact": ["/a"], "match": {"prefix": "/", "path": "/"}}]}),
            "rules[0].match",
        ),
        (
            json!({"rules": [{"redact": ["/a"]}], "max_body_bytes": 0}),
            "max_body_bytes",
        ),
        (
            json!({"rules": [{"redact": ["/a~"]}]}),
            "rules[0].redact[0]",
        ),
    ] {
        let error = TestHost::new()
            .plugin(filter_wasm("json_redact"))
            .config(config.clone())
            .start()
            .err()
            .expect("the config should be refused");
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

// ---- property test on the real module: random documents, chunked at random ----

const KEYS: &[&str] = &["a", "b", "ssn", "x/y", "*", ""];

fn random_value(rng: &mut fastrand::Rng, depth: usize) -> Value {
    match rng.usize(0..if depth >= 3 { 4 } else { 7 }) {
        0 => Value::Null,
        1 => json!(rng.i64(..)),
        2 => Value::String(["ssn", "\u{e9}\"\\", "}]"][rng.usize(0..3)].into()),
        3 => json!(rng.bool()),
        4 | 5 => Value::Object(
            (0..rng.usize(0..4))
                .map(|_| {
                    (
                        KEYS[rng.usize(0..KEYS.len())].to_string(),
                        random_value(rng, depth + 1),
                    )
                })
                .collect::<Map<_, _>>(),
        ),
        _ => Value::Array(
            (0..rng.usize(0..4))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
    }
}

/// Every value `pointer` (unescaped segments, `*` any) reaches in `value`.
fn reached<'v>(value: &'v Value, pointer: &[&str]) -> Vec<&'v Value> {
    let Some((first, rest)) = pointer.split_first() else {
        return vec![value];
    };
    let name = first.replace("~1", "/").replace("~0", "~");
    let children: Vec<&Value> = match value {
        Value::Object(map) => map
            .iter()
            .filter(|(key, _)| *first == "*" || name == **key)
            .map(|(_, child)| child)
            .collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .filter(|(at, _)| *first == "*" || *first == at.to_string())
            .map(|(_, child)| child)
            .collect(),
        _ => Vec::new(),
    };
    children
        .into_iter()
        .flat_map(|child| reached(child, rest))
        .collect()
}

#[test]
fn random_documents_in_random_chunks_come_out_valid_and_redacted() {
    let pointers = ["/ssn", "/*/ssn", "/a/*", "/x~1y/*/b"];
    let host = TestHost::new();
    let remove = start(
        &host,
        json!({"rules": [{"direction": "both", "action": "remove", "redact": pointers}],
               "max_body_bytes": 1 << 20}),
    );
    let mask = start(
        &host,
        json!({"rules": [{"direction": "both", "redact": pointers}], "stat_prefix": "masked"}),
    );
    let mut rng = fastrand::Rng::with_seed(14);
    let started = Instant::now();
    let mut cases = 0;
    while started.elapsed() < Duration::from_secs(2) {
        cases += 1;
        let doc = random_value(&mut rng, 0);
        let body = serde_json::to_string(&doc).unwrap();
        let mut stream = post(&remove, "/", &[("content-type", "application/json")]);
        send_in_chunks(&mut stream, body.as_bytes(), rng.usize(1..16), false);
        let upstream = stream.upstream_request();
        assert!(upstream.complete, "{body}");
        let out: Value = serde_json::from_slice(&upstream.body)
            .unwrap_or_else(|e| panic!("{body} became invalid: {} ({e})", text(&upstream.body)));
        for pointer in pointers {
            let segments: Vec<&str> = pointer[1..].split('/').collect();
            assert!(
                reached(&out, &segments).is_empty(),
                "{pointer} still in {out} (from {body})"
            );
        }
        if body == text(&upstream.body) {
            assert!(pointers
                .iter()
                .all(|p| reached(&doc, &p[1..].split('/').collect::<Vec<_>>()).is_empty()));
        }
        stream.end().unwrap();
        // Masked: whatever a pointer still reaches is the mask.
        let mut stream = post(&mask, "/", &[("content-type", "application/json")]);
        send_in_chunks(&mut stream, body.as_bytes(), rng.usize(1..16), false);
        let out: Value = serde_json::from_slice(&stream.upstream_request().body).unwrap();
        for pointer in pointers {
            let segments: Vec<&str> = pointer[1..].split('/').collect();
            let values = reached(&out, &segments);
            assert!(
                values.iter().all(|v| **v == "***"),
                "{pointer} in {out} (from {body})"
            );
            let before = reached(&doc, &segments).len();
            assert!(values.len() <= before, "{pointer}: {out} from {body}");
        }
        stream.end().unwrap();
    }
    assert!(cases > 100, "{cases} cases");
    assert!(remove.failure().is_none() && mask.failure().is_none());
}

#[test]
fn a_body_of_a_few_mb_in_64k_chunks_is_redacted_in_one_pass() {
    let host = TestHost::new();
    let plugin = start(
        &host,
        json!({"rules": [{"direction": "request", "redact": ["/cards/*/number"]}],
               "max_body_bytes": 8 << 20}),
    );
    let cards: Vec<Value> = (0..40_000)
        .map(|i| json!({"number": format!("4111-{i:08}"), "pad": "x".repeat(50)}))
        .collect();
    let body = serde_json::to_string(&json!({"cards": cards})).unwrap();
    assert!(body.len() > 3_000_000);
    let mut stream = post(&plugin, "/", &[("content-type", "application/json")]);
    let started = Instant::now();
    let actions = send_in_chunks(&mut stream, body.as_bytes(), 64 * 1024, false);
    let elapsed = started.elapsed();
    assert_eq!(actions.last(), Some(&Action::Continue));
    let upstream = stream.upstream_request();
    let out: Value = serde_json::from_slice(&upstream.body).unwrap();
    let numbers = out["cards"].as_array().unwrap();
    assert_eq!(numbers.len(), 40_000);
    assert!(numbers.iter().all(|card| card["number"] == "***"));
    assert_eq!(
        upstream.body.len(),
        body.len() - 40_000 * ("4111-00000000".len() - 3)
    );
    println!(
        "{} bytes in {} chunks: {elapsed:?}",
        body.len(),
        actions.len()
    );
    // Generous: a quadratic walk or copy would take far longer.
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}
