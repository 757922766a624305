//! basic-auth's built module (`target/filters/basic_auth.wasm`) driven through test-host, as
//! Envoy would run it: every config field, every refusal, malformed credentials, bad configs,
//! and how long bcrypt takes in wasm.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod fixtures;

use base64::Engine;
use fixtures::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use test_host::{filter_wasm, Error, HttpStream, Plugin, TestHost};

fn start(host: &TestHost, config: Value) -> Plugin {
    host.plugin(filter_wasm("basic_auth"))
        .config(config)
        .start()
        .unwrap_or_else(|error| panic!("the plugin should start: {error}"))
}

/// Sends request headers for `path` with `extra`, and returns the stream.
fn request(plugin: &Plugin, path: &str, extra: &[(&str, &[u8])]) -> HttpStream {
    let mut stream = plugin.http_stream().unwrap();
    let mut headers: Vec<(&str, &[u8])> = vec![
        (":method", b"GET"),
        (":path", path.as_bytes()),
        (":authority", b"api.example"),
        ("x-forwarded-proto", b"https"),
    ];
    headers.extend_from_slice(extra);
    stream.send_request_headers(&headers, true).unwrap();
    stream
}

/// The status of the local reply, or 200 when the request went upstream.
fn status(stream: &HttpStream) -> u32 {
    stream.local_response().map_or(200, |reply| reply.status)
}

#[test]
fn the_module_admits_valid_credentials_and_forwards_the_user_name() {
    let host = TestHost::new();
    let plugin = start(
        &host,
        json!({"users": {"inline_string": htpasswd()}, "forward_username_header": "x-username"}),
    );
    let credential = basic("user1", "test1");
    let stream = request(
        &plugin,
        "/api",
        &[
            ("authorization", credential.as_bytes()),
            ("x-username", b"admin"),
            ("x-username", b"x"),
        ],
    );
    assert!(stream.local_response().is_none());
    let upstream = stream.upstream_request().headers.unwrap();
    assert_eq!(upstream.get_all("x-username"), [b"user1"]);
    assert_eq!(upstream.get_str("authorization"), Some(credential));
    let bob = basic("bob", BOB_PASSWORD);
    let stream = request(&plugin, "/api", &[("authorization", bob.as_bytes())]);
    assert_eq!(
        stream
            .upstream_request()
            .headers
            .unwrap()
            .get_str("x-username")
            .as_deref(),
        Some("bob")
    );
    assert_eq!(host.counter("basic_auth.allowed"), Some(2));
    assert_eq!(host.counter("basic_auth.bcrypt_verified"), Some(1));
    assert!(plugin.failure().is_none());
}

#[test]
fn the_module_refuses_as_native_with_a_reason_metric() {
    let host = TestHost::new();
    let plugin = start(&host, json!({"users": {"inline_string": htpasswd()}}));
    let huge = format!("Basic {}", "A".repeat(60_000));
    let cases: [(Option<&[u8]>, &str, &str); 11] = [
        (None, MISSING, "no_credential_for_basic_auth"),
        (Some(b""), SCHEME, "invalid_scheme_for_basic_auth"),
        (
            Some(b"basic dXNlcjE6dGVzdDE="),
            SCHEME,
            "invalid_scheme_for_basic_auth",
        ),
        (
            Some(b"Digest dXNlcjE6dGVzdDE="),
            SCHEME,
            "invalid_scheme_for_basic_auth",
        ),
        (
            Some(b"Basic dXNlcjE6dGVzdDE=!"),
            FORMAT,
            "invalid_format_for_basic_auth",
        ),
        (
            Some(b"Basic dXNlcjF0ZXN0MQ=="),
            FORMAT,
            "invalid_format_for_basic_auth",
        ),
        (
            Some(huge.as_bytes()),
            FORMAT,
            "invalid_format_for_basic_auth",
        ),
        (
            Some(b"Basic \xc3\x28\xff"),
            FORMAT,
            "invalid_format_for_basic_auth",
        ),
        (
            Some(b"Basic dXNlcjE6dGVzdDI="),
            CREDENTIALS,
            "invalid_credential_for_basic_auth",
        ),
        (
            Some(b"Basic OnRlc3Qx"),
            CREDENTIALS,
            "invalid_credential_for_basic_auth",
        ),
        (
            Some(b"Basic YWxpY2U6U2VjcmV0"),
            CREDENTIALS,
            "invalid_credential_for_basic_auth",
        ),
    ];
    for (value, body, details) in cases {
        let headers: Vec<(&str, &[u8])> = value.map(|v| ("authorization", v)).into_iter().collect();
        let stream = request(&plugin, "/api/x?q=\"1\"", &headers);
        let reply = stream
            .local_response()
            .unwrap_or_else(|| panic!("{value:?} should be refused"));
        assert_eq!(reply.status, 401);
        assert_eq!(String::from_utf8_lossy(&reply.body), body);
        assert_eq!(reply.details, details);
        assert_eq!(
            reply.headers.get_str("www-authenticate").as_deref(),
            Some("Basic realm=\"https://api.example/api/x?q=\\\"1\\\"\"")
        );
        assert!(stream.upstream_request().headers.is_none());
    }
    assert_eq!(host.counter("basic_auth.denied"), Some(11));
    assert_eq!(host.counter("basic_auth.denied.missing"), Some(1));
    assert_eq!(host.counter("basic_auth.denied.malformed"), Some(7));
    assert_eq!(host.counter("basic_auth.denied.wrong_credentials"), Some(3));
    assert_eq!(host.counter("basic_auth.allowed"), Some(0));
    assert!(plugin.failure().is_none());
}

#[test]
fn rules_and_authentication_header_scope_the_module() {
    let host = TestHost::new();
    // inline_bytes: the users as proto3 JSON bytes.
    let users = base64::engine::general_purpose::STANDARD.encode(htpasswd());
    let plugin = start(
        &host,
        json!({
            "users": {"inline_bytes": users},
            "authentication_header": "x-auth",
            "forward_username_header": "x-username",
            "stat_prefix": "edge",
            "rules": [
                {"match": {"path_separated_prefix": "/api/health"}, "disabled": true},
                {"match": {"prefix": "/api"}}
            ]
        }),
    );
    let credential = basic("user2", "test2");
    assert_eq!(
        status(&request(
            &plugin,
            "/api/items",
            &[("authorization", credential.as_bytes())]
        )),
        401
    );
    let admitted = request(&plugin, "/api/items", &[("x-auth", credential.as_bytes())]);
    assert_eq!(status(&admitted), 200);
    assert_eq!(
        admitted
            .upstream_request()
            .headers
            .unwrap()
            .get_str("x-username")
            .as_deref(),
        Some("user2")
    );
    for path in ["/api/health", "/api/health/deep", "/static/app.js"] {
        let skipped = request(&plugin, path, &[("x-username", b"admin")]);
        assert_eq!(status(&skipped), 200, "{path}");
        assert_eq!(
            skipped
                .upstream_request()
                .headers
                .unwrap()
                .get("x-username"),
            None,
            "{path}"
        );
    }
    assert_eq!(status(&request(&plugin, "/api/healthz", &[])), 401);
    assert_eq!(host.counter("basic_auth.edge.skipped"), Some(3));
    assert_eq!(host.counter("basic_auth.edge.denied"), Some(2));
    assert_eq!(host.counter("basic_auth.edge.allowed"), Some(1));
}

#[test]
fn the_module_refuses_bad_configs_and_logs_the_field_path() {
    for (config, logged) in [
        (
            json!({"users": {"filename": "/etc/htpasswd"}}),
            "invalid configuration at users.filename: not supported",
        ),
        (
            json!({"users": {"inline_string": format!("{USER1}\n{USER1}")}}),
            "invalid configuration at users.inline_string: line 2: duplicate user \"user1\"",
        ),
        (
            json!({"users": {"inline_string": "x:{SHA}abc"}}),
            "invalid configuration at users.inline_string: line 1: user \"x\": the {SHA} hash",
        ),
        (
            json!({"users": {"inline_string": USER1}, "forward_username_header": "a b"}),
            "invalid configuration at forward_username_header",
        ),
        (
            json!({"users": {"inline_string": USER1}, "rules": [{"match": {"prefix": "/", "path": "/"}}]}),
            "invalid configuration at rules[0].match",
        ),
        (
            json!({"users": {"inline_string": USER1}, "users_file": "x"}),
            "invalid configuration at users_file: unknown field",
        ),
    ] {
        let error = TestHost::new()
            .plugin(filter_wasm("basic_auth"))
            .config(config.clone())
            .start()
            .err()
            .unwrap_or_else(|| panic!("{config} should be refused"));
        match error {
            Error::Rejected { logs, .. } => assert!(
                logs.iter().any(|line| line.contains(logged)),
                "{config}: {logs:?}"
            ),
            other => panic!("expected a rejection, got {other}"),
        }
    }
}

/// Measures bcrypt in the module (wasmtime, optimized build): one full check per cost, then the
/// cached path. Prints the numbers the README quotes; asserts only that the cache is far cheaper.
#[test]
fn bcrypt_costs_what_the_readme_says_and_the_cache_removes_it() {
    let host = TestHost::new();
    let users = format!("{ALICE}\n{BOB}\n{CAROL}\n{DAVE}\n{USER1}");
    let plugin = start(&host, json!({"users": {"inline_string": users}}));
    let time = |name: &str, password: &str| {
        let credential = basic(name, password);
        let started = Instant::now();
        let stream = request(&plugin, "/", &[("authorization", credential.as_bytes())]);
        let elapsed = started.elapsed();
        assert_eq!(status(&stream), 200, "{name}");
        elapsed
    };
    let sha = time("user1", "test1");
    let mut first = Vec::new();
    for (name, password, cost) in [
        ("alice", "secret", 4),
        ("bob", BOB_PASSWORD, 5),
        ("carol", "carol-pw", 10),
        ("dave", "dave-pw", 12),
    ] {
        let miss = time(name, password);
        let hit = (0..5).map(|_| time(name, password)).min().unwrap();
        eprintln!("bcrypt cost {cost}: first check {miss:?}, cached {hit:?}");
        first.push((cost, miss, hit));
    }
    eprintln!("{{SHA}} user: {sha:?}");
    assert_eq!(host.counter("basic_auth.bcrypt_verified"), Some(4));
    assert_eq!(host.counter("basic_auth.bcrypt_cache_hits"), Some(20));
    let (_, miss_12, hit_12) = first[3];
    let (_, miss_10, _) = first[2];
    assert!(
        miss_12 > miss_10 * 2,
        "cost 12 should take about 4x cost 10: {first:?}"
    );
    assert!(
        hit_12 * 20 < miss_12,
        "the cache should spare the bcrypt: {first:?}"
    );
    assert!(hit_12 < Duration::from_millis(5), "{first:?}");
}
