//! cors's built module (target/filters/cors.wasm) driven through test-host, as Envoy runs it:
//! every config field, preflights answered and forwarded, actual requests, odd origins, bad
//! configs refused with their field path. What the client and the upstream get is asserted.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::{json, Value};
use test_host::{filter_wasm, Action, Error, HttpStream, Plugin, TestHost};

const A: &str = "https://a.example";
const EVIL: &str = "https://evil.example";

/// One policy per path prefix, each exercising some fields.
fn config() -> Value {
    json!({"policies": [
        {"match": {"prefix": "/full"},
         "allow_origin_string_match": [{"exact": A}, {"suffix": ".corp.example", "ignore_case": true}],
         "allow_methods": "GET, POST", "allow_headers": "x-a, x-b", "expose_headers": "x-e",
         "max_age": "600", "allow_credentials": true, "allow_private_network_access": true},
        {"match": {"prefix": "/strict"},
         "allow_origin_string_match": [{"safe_regex": {"regex": "https://[a-z]+\\.a\\.example"}}],
         "allow_methods": "PUT", "forward_not_matching_preflights": false},
        {"match": {"prefix": "/star"},
         "allow_origin_string_match": [{"exact": "*"}],
         "allow_methods": "*", "allow_headers": "*", "allow_credentials": true},
        {"match": {"prefix": "/plain"},
         "allow_origin_string_match": [{"prefix": "https://a."}], "allow_credentials": false}
    ]})
}

fn start(host: &TestHost, config: Value) -> Plugin {
    host.plugin(filter_wasm("cors"))
        .config(config)
        .start()
        .unwrap_or_else(|error| panic!("the plugin should start: {error}"))
}

/// What one exchange looked like from both ends.
struct Seen {
    /// The request reached the upstream.
    upstream: bool,
    status: u16,
    /// The access-control-* and vary headers the client got, in order.
    cors: Vec<(String, String)>,
    stream: HttpStream,
}

/// Sends `method path` with `headers`; a request that passes is answered by the upstream with
/// 200 and `upstream_headers`.
fn exchange(
    plugin: &Plugin,
    method: &str,
    path: &str,
    headers: &[(&str, &[u8])],
    upstream_headers: &[(&str, &str)],
) -> Seen {
    let mut stream = plugin.http_stream().unwrap();
    let mut request: Vec<(&str, &[u8])> = vec![
        (":method", method.as_bytes()),
        (":path", path.as_bytes()),
        (":authority", b"api.example"),
    ];
    request.extend_from_slice(headers);
    let action = stream.send_request_headers(&request, true).unwrap();
    let upstream = stream.upstream_request().headers.is_some();
    assert_eq!(upstream, action == Action::Continue);
    if upstream {
        let mut response = vec![(":status", "200")];
        response.extend_from_slice(upstream_headers);
        stream.send_response_headers(&response, true).unwrap();
    } else {
        assert!(
            stream.local_response().is_some(),
            "a stopped request has a reply"
        );
    }
    assert!(plugin.failure().is_none(), "{:?}", plugin.failure());
    let response = stream.client_response();
    let cors = response
        .headers
        .as_ref()
        .map(|headers| {
            headers
                .entries()
                .iter()
                .filter(|(name, _)| name.starts_with(b"access-control-") || name == b"vary")
                .map(|(name, value)| {
                    (
                        String::from_utf8_lossy(name).into_owned(),
                        String::from_utf8_lossy(value).into_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Seen {
        upstream,
        status: response.status().unwrap_or(0),
        cors,
        stream,
    }
}

fn preflight(plugin: &Plugin, path: &str, origin: &str, extra: &[(&str, &str)]) -> Seen {
    let mut headers: Vec<(&str, &[u8])> = vec![
        ("origin", origin.as_bytes()),
        ("access-control-request-method", b"DELETE"),
    ];
    headers.extend(extra.iter().map(|(name, value)| (*name, value.as_bytes())));
    exchange(plugin, "OPTIONS", path, &headers, &[])
}

fn list(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

#[test]
fn preflights_are_answered_or_forwarded_as_native_does() {
    let host = TestHost::new();
    let plugin = start(&host, config());
    let pna = ("access-control-request-private-network", "true");
    let full_answer = list(&[
        ("access-control-allow-origin", A),
        ("access-control-allow-credentials", "true"),
        ("access-control-allow-methods", "GET, POST"),
        ("access-control-allow-headers", "x-a, x-b"),
        ("access-control-max-age", "600"),
        ("access-control-allow-private-network", "true"),
        ("access-control-expose-headers", "x-e"),
        ("vary", "origin"),
    ]);
    type Case = (&'static str, Seen, bool, Vec<(String, String)>);
    let cases: Vec<Case> = vec![
        (
            "full, allowed",
            preflight(&plugin, "/full/x", A, &[pna]),
            false,
            full_answer,
        ),
        (
            "full, allowed by an ignore-case suffix",
            preflight(&plugin, "/full", "https://X.Corp.Example", &[]),
            false,
            list(&[
                ("access-control-allow-origin", "https://X.Corp.Example"),
                ("access-control-allow-credentials", "true"),
                ("access-control-allow-methods", "GET, POST"),
                ("access-control-allow-headers", "x-a, x-b"),
                ("access-control-max-age", "600"),
                ("access-control-expose-headers", "x-e"),
                ("vary", "origin"),
            ]),
        ),
        (
            "full, refused origin: forwarded, upstream's answer untouched but for vary",
            preflight(&plugin, "/full", EVIL, &[pna]),
            true,
            list(&[("vary", "origin")]),
        ),
        (
            "strict, regex origin",
            preflight(&plugin, "/strict", "https://app.a.example", &[]),
            false,
            list(&[
                ("access-control-allow-origin", "https://app.a.example"),
                ("access-control-allow-methods", "PUT"),
                ("vary", "origin"),
            ]),
        ),
        (
            "strict, refused origin: answered without the origin",
            preflight(&plugin, "/strict", "https://app.a.example.evil", &[]),
            false,
            list(&[("access-control-allow-methods", "PUT"), ("vary", "origin")]),
        ),
        (
            "star echoes method and headers, and the origin (never *)",
            preflight(
                &plugin,
                "/star",
                "null",
                &[
                    ("access-control-request-headers", "x-1"),
                    ("access-control-request-headers", "x-2"),
                ],
            ),
            false,
            list(&[
                ("access-control-allow-origin", "null"),
                ("access-control-allow-credentials", "true"),
                ("access-control-allow-methods", "DELETE"),
                ("access-control-allow-headers", "x-1,x-2"),
                ("vary", "origin"),
            ]),
        ),
        (
            "no policy covers the path",
            preflight(&plugin, "/none", A, &[]),
            true,
            vec![],
        ),
    ];
    for (name, seen, upstream, cors) in cases {
        assert_eq!(seen.status, 200, "{name}");
        assert_eq!(seen.upstream, upstream, "{name}");
        assert_eq!(seen.cors, cors, "{name}");
        if let Some(reply) = seen.stream.local_response() {
            assert_eq!(reply.details, "cors_response", "{name}");
            assert!(reply.body.is_empty(), "{name}");
        }
    }
    assert_eq!(host.counter("cors.preflight_answered"), Some(5));
    assert_eq!(host.counter("cors.preflight_forwarded"), Some(1));
    assert_eq!(host.counter("cors.origin_valid"), Some(4));
    assert_eq!(host.counter("cors.origin_invalid"), Some(2));
}

#[test]
fn actual_requests_get_the_origin_echoed_and_the_upstreams_values_replaced() {
    let host = TestHost::new();
    let plugin = start(&host, config());
    let upstream = [
        ("access-control-allow-origin", "*"),
        ("access-control-expose-headers", "x-up"),
        ("vary", "accept-encoding"),
    ];
    let seen = exchange(
        &plugin,
        "POST",
        "/full",
        &[("origin", A.as_bytes())],
        &upstream,
    );
    assert!(seen.upstream);
    assert_eq!(
        seen.cors,
        list(&[
            // Envoy joins inline headers, so vary stays one header.
            ("vary", "accept-encoding,origin"),
            // A replaced header moves to the end, as in Envoy.
            ("access-control-allow-origin", A),
            ("access-control-allow-credentials", "true"),
            ("access-control-expose-headers", "x-e"),
        ])
    );
    // The upstream sees the request as the client sent it.
    assert_eq!(
        seen.stream.upstream_request().header("origin").as_deref(),
        Some(A)
    );

    // Without credentials the upstream's own credentials header is left alone (as native).
    let seen = exchange(
        &plugin,
        "GET",
        "/plain",
        &[("origin", b"https://a.b")],
        &[("access-control-allow-credentials", "true")],
    );
    assert_eq!(
        seen.cors,
        list(&[
            ("access-control-allow-credentials", "true"),
            ("access-control-allow-origin", "https://a.b"),
            ("vary", "origin"),
        ])
    );

    // A refused origin and a request without one: only vary.
    for headers in [&[("origin", EVIL.as_bytes())][..], &[]] {
        let seen = exchange(&plugin, "GET", "/full", headers, &upstream);
        assert_eq!(
            seen.cors,
            list(&[
                ("access-control-allow-origin", "*"),
                ("access-control-expose-headers", "x-up"),
                ("vary", "accept-encoding,origin"),
            ])
        );
    }
    // OPTIONS without access-control-request-method is an actual request.
    let seen = exchange(
        &plugin,
        "OPTIONS",
        "/strict",
        &[("origin", b"https://x.a.example")],
        &[],
    );
    assert!(seen.upstream);
    assert_eq!(
        seen.cors,
        list(&[
            ("access-control-allow-origin", "https://x.a.example"),
            ("vary", "origin")
        ])
    );
    assert_eq!(host.counter("cors.preflight_answered"), Some(0));
}

#[test]
fn odd_origins_never_trap_and_are_judged_as_one_value() {
    let host = TestHost::new();
    let plugin = start(&host, config());
    // Two origin headers: test-host joins them as Envoy does, so neither alone is allowed.
    let seen = exchange(
        &plugin,
        "GET",
        "/full",
        &[("origin", A.as_bytes()), ("origin", EVIL.as_bytes())],
        &[],
    );
    assert_eq!(seen.cors, list(&[("vary", "origin")]));
    // Under an allow-all policy a joined origin is echoed as it came.
    let seen = exchange(
        &plugin,
        "GET",
        "/star",
        &[("origin", A.as_bytes()), ("origin", EVIL.as_bytes())],
        &[],
    );
    assert_eq!(seen.cors[0].1, format!("{A},{EVIL}"));

    let huge = format!("https://{}.a.example", "x".repeat(50_000));
    let odd_origins: Vec<Vec<u8>> = vec![
        b"https://\xff.a.example".to_vec(),
        b"https://a.\xc3\xa9".to_vec(),
        b" ".to_vec(),
        b"*".to_vec(),
        b"https://a.example\x7f".to_vec(),
        huge.clone().into_bytes(),
    ];
    for path in ["/full", "/strict", "/star", "/plain"] {
        for origin in &odd_origins {
            for method in ["OPTIONS", "GET"] {
                let seen = exchange(
                    &plugin,
                    method,
                    path,
                    &[
                        ("origin", origin),
                        ("access-control-request-method", b"\xff"),
                        ("access-control-request-headers", origin),
                    ],
                    &[],
                );
                assert_eq!(seen.status, 200);
            }
        }
    }
    // Non-UTF-8 origins: refused by matchers, allowed (and echoed byte for byte) by allow-all.
    let odd = b"https://a.\xff";
    let seen = exchange(&plugin, "GET", "/plain", &[("origin", odd)], &[]);
    assert_eq!(seen.cors, list(&[("vary", "origin")]));
    let seen = exchange(&plugin, "GET", "/star", &[("origin", odd)], &[]);
    let headers = seen.stream.client_response().headers.unwrap();
    assert_eq!(headers.get("access-control-allow-origin"), Some(&odd[..]));
    // A huge origin is echoed whole.
    let seen = exchange(&plugin, "GET", "/star", &[("origin", huge.as_bytes())], &[]);
    assert_eq!(seen.cors[0].1, huge);
}

#[test]
fn stat_prefix_names_the_metrics() {
    let host = TestHost::new();
    let mut config = config();
    config["stat_prefix"] = json!("edge.cors");
    let plugin = start(&host, config);
    exchange(&plugin, "GET", "/full", &[("origin", A.as_bytes())], &[]);
    exchange(&plugin, "GET", "/full", &[("origin", EVIL.as_bytes())], &[]);
    assert_eq!(host.counter("edge.cors.origin_valid"), Some(1));
    assert_eq!(host.counter("edge.cors.origin_invalid"), Some(1));
    assert_eq!(host.counter("cors.origin_valid"), None);
}

#[test]
fn the_module_refuses_a_bad_config_and_logs_its_field_path() {
    for (config, path) in [
        (json!({"policies": []}), "policies"),
        (
            json!({"policies": [{"match": {"prefix": "/", "path": "/x"}}]}),
            "policies[0].match",
        ),
        (
            json!({"policies": [{}, {"allow_origin_string_match": [{"safe_regex": {"regex": "(("}}]}]}),
            "policies[1].allow_origin_string_match[0].safe_regex.regex",
        ),
        (
            json!({"policies": [{"allow_origin_string_match": [{"contains": ""}]}]}),
            "policies[0].allow_origin_string_match[0].contains",
        ),
        (
            json!({"policies": [{"max_age": "-1"}]}),
            "policies[0].max_age",
        ),
        (
            json!({"policies": [{"expose_headers": "a\r\nb"}]}),
            "policies[0].expose_headers",
        ),
        (
            json!({"policies": [{"filter_enabled": {"default_value": {"numerator": 1}}}]}),
            "policies[0].filter_enabled",
        ),
        (
            json!({"policies": [{"allow_origin": "*"}]}),
            "policies[0].allow_origin",
        ),
        (json!("not an object"), ""),
    ] {
        let error = TestHost::new()
            .plugin(filter_wasm("cors"))
            .config(config.clone())
            .start()
            .err()
            .unwrap_or_else(|| panic!("{config} should be refused"));
        match error {
            Error::Rejected { logs, .. } => {
                let at = if path.is_empty() { "<root>" } else { path };
                assert!(
                    logs.iter()
                        .any(|line| line.contains(&format!("invalid configuration at {at}:"))),
                    "{config}: {logs:?}"
                );
            }
            other => panic!("{config}: expected a rejection, got {other}"),
        }
    }
}
