//! global-rate-limit's per-request logic on sdk-ext's fake host: natively, in microseconds, no wasm.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use global_rate_limit::filter::GlobalRateLimitRoot;
use sdk_ext::fake::{FakeGrpcCall, FakeModule};
use sdk_ext::grpc::{GRPC_DEADLINE_EXCEEDED, GRPC_UNAVAILABLE};
use sdk_ext::host::StreamType;
use sdk_ext::protobuf::{Reader, Writer};
use sdk_ext::types::MapType;
use sdk_ext::Action;
use serde_json::{json, Value};
use std::time::Duration;

fn start(config: Value) -> FakeModule {
    let module = FakeModule::standalone::<GlobalRateLimitRoot>(config.to_string().as_bytes())
        .unwrap_or_else(|error| panic!("{config} should be accepted: {error}"));
    module
        .host()
        .set_property(&["source", "address"], b"10.0.0.7:5555");
    module
}

fn config(extra: Value) -> Value {
    let mut config = json!({
        "domain": "edge",
        "rate_limit_service": {
            "grpc_service": {"envoy_grpc": {"cluster_name": "rls"}},
            "transport_api_version": "V3"
        },
        "rate_limits": [
            {"actions": [{"remote_address": {}}]},
            {"actions": [{"request_headers": {"header_name": "x-user", "descriptor_key": "user"}},
                         {"generic_key": {"descriptor_value": "api"}}]},
            {"match": {"prefix": "/admin"}, "actions": [{"generic_key": {"descriptor_key": "area", "descriptor_value": "admin"}}]}
        ]
    });
    for (key, value) in extra.as_object().unwrap() {
        config[key] = value.clone();
    }
    config
}

const GET: &[(&str, &str)] = &[
    (":method", "GET"),
    (":path", "/items"),
    (":authority", "app"),
];

/// Sends request headers, expects a hold, and returns the one pending call.
fn held(module: &mut FakeModule, stream: u32, headers: &[(&str, &str)]) -> FakeGrpcCall {
    assert_eq!(module.request_headers(stream, headers, true), Action::Pause);
    assert_eq!(module.host().local_reply(stream), None);
    let calls: Vec<_> = module
        .host()
        .pending_grpc_calls()
        .into_iter()
        .filter(|call| call.context_id == stream)
        .collect();
    assert_eq!(calls.len(), 1, "{calls:?}");
    calls[0].clone()
}

fn with(headers: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut all = GET.to_vec();
    all.extend_from_slice(headers);
    all
}

/// The descriptors of a serialized RateLimitRequest, and its domain; fails on any other field.
fn decode_request(message: &[u8]) -> (String, Vec<Vec<(String, String)>>) {
    let mut domain = String::new();
    let mut descriptors = Vec::new();
    for field in Reader::new(message) {
        let field = field.unwrap();
        let bytes = field.bytes().unwrap();
        match field.number {
            1 => domain = String::from_utf8(bytes.to_vec()).unwrap(),
            2 => {
                let mut entries = Vec::new();
                for entry in Reader::new(bytes) {
                    let entry = entry.unwrap();
                    assert_eq!(entry.number, 1);
                    let (mut key, mut value) = (String::new(), String::new());
                    for part in Reader::new(entry.bytes().unwrap()) {
                        let part = part.unwrap();
                        let text = String::from_utf8(part.bytes().unwrap().to_vec()).unwrap();
                        match part.number {
                            1 => key = text,
                            2 => value = text,
                            other => panic!("entry field {other}"),
                        }
                    }
                    entries.push((key, value));
                }
                descriptors.push(entries);
            }
            other => panic!("request field {other} (hits_addend is left out, as native)"),
        }
    }
    (domain, descriptors)
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A RateLimitResponse.
#[derive(Default)]
struct Answer<'a> {
    code: u64,
    /// (requests_per_unit, unit, name, remaining, reset seconds).
    statuses: &'a [(u64, u64, &'a str, u64, u64)],
    response_headers: &'a [(&'a str, &'a str)],
    request_headers: &'a [(&'a str, &'a str)],
    body: &'a [u8],
}

const OK: u64 = 1;
const OVER_LIMIT: u64 = 2;

impl Answer<'_> {
    fn encode(&self) -> Vec<u8> {
        let mut out = Writer::new();
        if self.code != 0 {
            out.varint(1, self.code);
        }
        for &(limit, unit, name, remaining, reset) in self.statuses {
            out.message(2, |status| {
                status.varint(1, self.code);
                status.message(2, |current| {
                    current.varint(1, limit);
                    current.varint(2, unit);
                    if !name.is_empty() {
                        current.bytes(3, name.as_bytes());
                    }
                });
                status.varint(3, remaining);
                status.message(4, |duration| duration.varint(1, reset));
            });
        }
        for (field, headers) in [(3, self.response_headers), (4, self.request_headers)] {
            for (key, value) in headers {
                out.message(field, |header| {
                    header.bytes(1, key.as_bytes());
                    header.bytes(2, value.as_bytes());
                });
            }
        }
        if !self.body.is_empty() {
            out.bytes(5, self.body);
        }
        out.into_bytes()
    }
}

fn metric(module: &FakeModule, name: &str) -> Option<i64> {
    module.host().metric(&format!("ratelimit.{name}"))
}

#[test]
fn the_call_carries_the_domain_and_one_descriptor_per_populated_entry() {
    let mut module = start(config(json!({"timeout": "0.25s"})));
    let stream = module.stream();
    let call = held(&mut module, stream, &with(&[("x-user", "alice")]));
    assert_eq!(call.cluster, "rls");
    assert_eq!(call.service, "envoy.service.ratelimit.v3.RateLimitService");
    assert_eq!(call.method, "ShouldRateLimit");
    assert_eq!(call.timeout, Duration::from_millis(250));
    let (domain, descriptors) = decode_request(&call.message);
    assert_eq!(domain, "edge");
    assert_eq!(
        descriptors,
        [
            pairs(&[("remote_address", "10.0.0.7")]),
            pairs(&[("user", "alice"), ("generic_key", "api")]),
        ]
    );
    // The exact bytes, as protobuf serializes them.
    let mut expected = b"\x0a\x04edge".to_vec();
    expected.extend_from_slice(b"\x12\x1c\x0a\x1a\x0a\x0eremote_address\x12\x0810.0.0.7");
    expected.extend_from_slice(b"\x12\x23\x0a\x0d\x0a\x04user\x12\x05alice");
    expected.extend_from_slice(b"\x0a\x12\x0a\x0bgeneric_key\x12\x03api");
    assert_eq!(call.message, expected);

    // Another request: no x-user (that entry yields nothing), under /admin.
    let other = module.stream();
    let call = held(
        &mut module,
        other,
        &[(":method", "GET"), (":path", "/admin/x")],
    );
    assert_eq!(
        decode_request(&call.message).1,
        [
            pairs(&[("remote_address", "10.0.0.7")]),
            pairs(&[("area", "admin")]),
        ]
    );
}

#[test]
fn without_a_descriptor_there_is_no_call() {
    let mut module = start(config(json!({
        "rate_limits": [{"actions": [{"request_headers": {"header_name": "x-user", "descriptor_key": "user"}}]}]
    })));
    let stream = module.stream();
    assert_eq!(module.request_headers(stream, GET, true), Action::Continue);
    assert!(module.host().pending_grpc_calls().is_empty());
    for name in ["ok", "over_limit", "error"] {
        assert_eq!(metric(&module, name), Some(0), "{name}");
    }
}

#[test]
fn ok_resumes_with_the_service_request_and_response_headers() {
    let mut module = start(config(json!({})));
    let stream = module.stream();
    let call = held(&mut module, stream, &with(&[("x-rl", "client")]));
    let answer = Answer {
        code: OK,
        statuses: &[(10, 2, "per-ip", 7, 30)],
        response_headers: &[("X-Served-By", "rls"), ("bad header", "x")],
        request_headers: &[("x-rl", "service"), ("x-tenant", "t1"), (":path", "/evil")],
        ..Answer::default()
    };
    module.respond_grpc(call.token, &answer.encode());
    assert_eq!(module.host().continued(stream), [StreamType::Request]);
    assert_eq!(module.host().local_reply(stream), None);
    // Added, not replaced, as native's copyFrom; pseudo-headers never written.
    let rl: Vec<_> = module
        .host()
        .headers(stream, MapType::HttpRequestHeaders)
        .into_iter()
        .filter(|(name, _)| name == b"x-rl")
        .map(|(_, value)| value)
        .collect();
    assert_eq!(rl, [b"client".to_vec(), b"service".to_vec()]);
    assert_eq!(
        module.host().request_header(stream, "x-tenant").as_deref(),
        Some("t1")
    );
    assert_eq!(
        module.host().request_header(stream, ":path").as_deref(),
        Some("/items")
    );
    assert_eq!(
        module.response_headers(stream, &[(":status", "200")], true),
        Action::Continue
    );
    assert_eq!(
        module
            .host()
            .response_header(stream, "x-served-by")
            .as_deref(),
        Some("rls")
    );
    // x-ratelimit headers are off by default; x-envoy-ratelimited is for over-limit only.
    for absent in ["x-ratelimit-limit", "x-envoy-ratelimited", "bad header"] {
        assert_eq!(module.host().response_header(stream, absent), None);
    }
    assert_eq!(metric(&module, "ok"), Some(1));
    assert_eq!(metric(&module, "over_limit"), Some(0));
}

#[test]
fn an_unknown_overall_code_counts_as_ok() {
    let mut module = start(config(json!({})));
    let stream = module.stream();
    let call = held(&mut module, stream, GET);
    module.respond_grpc(call.token, &[]);
    assert_eq!(module.host().continued(stream), [StreamType::Request]);
    assert_eq!(metric(&module, "ok"), Some(1));
}

#[test]
fn over_limit_replies_429_with_the_service_body_and_headers() {
    let mut module = start(config(json!({})));
    let stream = module.stream();
    let call = held(&mut module, stream, GET);
    let answer = Answer {
        code: OVER_LIMIT,
        statuses: &[(10, 2, "per-ip", 0, 30)],
        response_headers: &[("retry-after", "30"), ("content-type", "application/json")],
        request_headers: &[("x-never", "added")],
        body: b"{\"error\":\"slow down\"}",
    };
    module.respond_grpc(call.token, &answer.encode());
    let reply = module.host().local_reply(stream).expect("a reply");
    assert_eq!(reply.status, 429);
    assert_eq!(reply.details, "request_rate_limited");
    assert_eq!(reply.body, b"{\"error\":\"slow down\"}");
    assert_eq!(reply.header("x-envoy-ratelimited").as_deref(), Some("true"));
    assert_eq!(reply.header("retry-after").as_deref(), Some("30"));
    assert_eq!(
        reply.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(reply.header("x-ratelimit-limit"), None);
    assert!(module.host().continued(stream).is_empty());
    assert_eq!(module.host().request_header(stream, "x-never"), None);
    assert_eq!(metric(&module, "over_limit"), Some(1));
    assert_eq!(metric(&module, "ok"), Some(0));
}

#[test]
fn rate_limited_status_is_used_and_below_400_means_429() {
    for (status, expected) in [(503, 503), (418, 418), (200, 429), (399, 429)] {
        let mut module = start(config(json!({"rate_limited_status": {"code": status}})));
        let stream = module.stream();
        let call = held(&mut module, stream, GET);
        let answer = Answer {
            code: OVER_LIMIT,
            ..Answer::default()
        };
        module.respond_grpc(call.token, &answer.encode());
        let reply = module.host().local_reply(stream).expect("a reply");
        assert_eq!(reply.status, expected, "{status}");
        assert!(reply.body.is_empty());
    }
}

#[test]
fn disable_x_envoy_ratelimited_header_leaves_it_off() {
    let mut module = start(config(json!({"disable_x_envoy_ratelimited_header": true})));
    let stream = module.stream();
    let call = held(&mut module, stream, GET);
    let answer = Answer {
        code: OVER_LIMIT,
        ..Answer::default()
    };
    module.respond_grpc(call.token, &answer.encode());
    let reply = module.host().local_reply(stream).expect("a reply");
    assert_eq!(reply.status, 429);
    assert!(reply.headers.is_empty(), "{:?}", reply.headers);
}

#[test]
fn x_ratelimit_headers_go_to_the_reply_and_to_the_upstream_response() {
    let statuses = &[(1, 2, "first", 2, 3), (4, 3, "second", 5, 6)];
    let expected = [
        (
            "x-ratelimit-limit",
            "1, 1;w=60;name=\"first\", 4;w=3600;name=\"second\"",
        ),
        ("x-ratelimit-remaining", "2"),
        ("x-ratelimit-reset", "3"),
    ];
    let mut module = start(config(
        json!({"enable_x_ratelimit_headers": "DRAFT_VERSION_03"}),
    ));
    let stream = module.stream();
    let call = held(&mut module, stream, GET);
    let answer = Answer {
        code: OK,
        statuses,
        ..Answer::default()
    };
    module.respond_grpc(call.token, &answer.encode());
    module.response_headers(stream, &[(":status", "200")], true);
    for (name, value) in expected {
        assert_eq!(
            module.host().response_header(stream, name).as_deref(),
            Some(value)
        );
    }

    let stream = module.stream();
    let call = held(&mut module, stream, GET);
    let answer = Answer {
        code: OVER_LIMIT,
        statuses,
        ..Answer::default()
    };
    module.respond_grpc(call.token, &answer.encode());
    let reply = module.host().local_reply(stream).expect("a reply");
    for (name, value) in expected {
        assert_eq!(reply.header(name).as_deref(), Some(value));
    }
    assert_eq!(reply.header("x-envoy-ratelimited").as_deref(), Some("true"));
}

/// How a call can fail.
#[derive(Debug, Clone, Copy)]
enum Failure {
    Status(u32),
    Garbage,
    NotSent,
}

const FAILURES: [Failure; 5] = [
    Failure::Status(GRPC_DEADLINE_EXCEEDED),
    Failure::Status(GRPC_UNAVAILABLE),
    Failure::Status(13),
    Failure::Garbage,
    Failure::NotSent,
];

/// Sends a request whose check fails as `failure`; returns the stream and the action of the
/// request headers.
fn failing(module: &mut FakeModule, failure: Failure) -> (u32, Action) {
    let stream = module.stream();
    if let Failure::NotSent = failure {
        module.host().fail("grpc_call");
        let action = module.request_headers(stream, GET, true);
        assert!(module.host().pending_grpc_calls().is_empty());
        return (stream, action);
    }
    let call = held(module, stream, GET);
    match failure {
        Failure::Status(status) => module.close_grpc(call.token, status, "failed"),
        // A group wire type: not a message.
        _ => module.respond_grpc(call.token, b"\x08\x02\x13\x00"),
    }
    (stream, Action::Pause)
}

#[test]
fn an_error_is_let_through_by_default() {
    for failure in FAILURES {
        let mut module = start(config(json!({})));
        let (stream, action) = failing(&mut module, failure);
        assert_eq!(module.host().local_reply(stream), None, "{failure:?}");
        match failure {
            Failure::NotSent => assert_eq!(action, Action::Continue),
            _ => assert_eq!(module.host().continued(stream), [StreamType::Request]),
        }
        assert_eq!(metric(&module, "error"), Some(1), "{failure:?}");
        assert_eq!(metric(&module, "failure_mode_allowed"), Some(1));
        assert_eq!(metric(&module, "ok"), Some(0));
    }
}

#[test]
fn failure_mode_deny_refuses_an_error_with_status_on_error() {
    for (extra, status) in [
        (json!({"failure_mode_deny": true}), 500),
        (
            json!({"failure_mode_deny": true, "status_on_error": {"code": 503}}),
            503,
        ),
    ] {
        for failure in FAILURES {
            let mut module = start(config(extra.clone()));
            let (stream, action) = failing(&mut module, failure);
            assert_eq!(action, Action::Pause);
            let reply = module.host().local_reply(stream).expect("a reply");
            assert_eq!(reply.status, status, "{failure:?}");
            assert_eq!(reply.details, "rate_limiter_error");
            assert!(reply.body.is_empty());
            assert!(reply.headers.is_empty(), "{:?}", reply.headers);
            assert!(module.host().continued(stream).is_empty());
            assert_eq!(metric(&module, "error"), Some(1));
            assert_eq!(metric(&module, "failure_mode_allowed"), Some(0));
        }
    }
}

#[test]
fn request_type_selects_internal_or_external_requests() {
    for (request_type, internal_checked, external_checked) in [
        ("both", true, true),
        ("internal", true, false),
        ("external", false, true),
    ] {
        let mut module = start(config(json!({"request_type": request_type})));
        for (headers, checked) in [
            (with(&[("x-envoy-internal", "true")]), internal_checked),
            (with(&[("x-envoy-internal", "false")]), external_checked),
            (GET.to_vec(), external_checked),
        ] {
            let stream = module.stream();
            let expected = if checked {
                Action::Pause
            } else {
                Action::Continue
            };
            assert_eq!(
                module.request_headers(stream, &headers, true),
                expected,
                "{request_type} {headers:?}"
            );
        }
    }
}

#[test]
fn an_answer_for_another_call_or_a_gone_stream_is_ignored() {
    let mut module = start(config(json!({})));
    let (a, b) = (module.stream(), module.stream());
    let call_a = held(&mut module, a, GET);
    let call_b = held(&mut module, b, GET);
    let over = Answer {
        code: OVER_LIMIT,
        ..Answer::default()
    };
    module.respond_grpc(call_b.token, &over.encode());
    assert_eq!(module.host().local_reply(b).unwrap().status, 429);
    assert_eq!(module.host().local_reply(a), None);
    assert!(module.host().continued(a).is_empty());
    // A token nobody sent, then a's own.
    module.respond_grpc(call_b.token + 100, &over.encode());
    assert_eq!(module.host().local_reply(a), None);
    module.respond_grpc(call_a.token, &[0x08, 0x01]);
    assert_eq!(module.host().continued(a), [StreamType::Request]);

    // A stream that ends while its call is out: the late answer changes nothing.
    let gone = module.stream();
    let call = held(&mut module, gone, GET);
    module.reset(gone);
    module.respond_grpc(call.token, &over.encode());
    assert_eq!(module.host().local_reply(gone), None);
    assert_eq!(metric(&module, "over_limit"), Some(1));
}

#[test]
fn random_replies_never_panic() {
    let mut module = start(config(
        json!({"enable_x_ratelimit_headers": "DRAFT_VERSION_03"}),
    ));
    let seed = Answer {
        code: OVER_LIMIT,
        statuses: &[(10, 2, "per-ip", 0, 30), (5, 7, "", 1, 9)],
        response_headers: &[("retry-after", "30")],
        request_headers: &[("x-a", "b")],
        body: b"slow",
    }
    .encode();
    let mut state = 0x853c_49e6_748f_ea9bu64;
    for round in 0..300u64 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let mut bytes = seed.clone();
        for flip in 0..(1 + state % 4) {
            let at = (state >> (8 * flip)) as usize % bytes.len();
            bytes[at] ^= (state >> 32) as u8 | 1;
        }
        bytes.truncate(bytes.len() - (round as usize % 7));
        let stream = module.stream();
        let call = held(&mut module, stream, GET);
        module.respond_grpc(call.token, &bytes);
        // Decided one way or another: a reply or a resumed request.
        let replied = module.host().local_reply(stream).is_some();
        let resumed = !module.host().continued(stream).is_empty();
        assert!(replied ^ resumed, "{bytes:?}");
    }
    let total: i64 = ["ok", "over_limit", "error"]
        .iter()
        .map(|name| metric(&module, name).unwrap())
        .sum();
    assert_eq!(total, 300);
}

#[test]
fn metadata_and_stat_prefix() {
    let mut config = config(json!({"stat_prefix": "edge"}));
    config["rate_limit_service"]["grpc_service"]["initial_metadata"] =
        json!([{"key": "X-Tenant", "value": "t1"}]);
    config["rate_limit_service"]["grpc_service"]["timeout"] = json!("5s");
    let mut module = start(config);
    let stream = module.stream();
    let call = held(&mut module, stream, GET);
    assert_eq!(call.metadata, [(b"x-tenant".to_vec(), b"t1".to_vec())]);
    // The filter's timeout (native default 20ms), not grpc_service.timeout.
    assert_eq!(call.timeout, Duration::from_millis(20));
    module.respond_grpc(call.token, &[0x08, 0x01]);
    assert_eq!(module.host().metric("ratelimit.edge.ok"), Some(1));
}

#[test]
fn a_bad_config_is_refused_at_its_field_path() {
    let service = |extra: Value| {
        let mut config = config(json!({}));
        for (key, value) in extra.as_object().unwrap() {
            config["rate_limit_service"][key] = value.clone();
        }
        config
    };
    let without = |field: &str| {
        let mut config = config(json!({}));
        config.as_object_mut().unwrap().remove(field);
        config
    };
    for (config, path, reason) in [
        (without("domain"), "domain", "must not be empty"),
        (config(json!({"domain": ""})), "domain", "must not be empty"),
        (
            without("rate_limit_service"),
            "rate_limit_service",
            "required",
        ),
        (
            service(json!({"transport_api_version": "V2"})),
            "rate_limit_service.transport_api_version",
            "must be V3",
        ),
        (
            service(json!({"transport_api_version": "V9"})),
            "rate_limit_service.transport_api_version",
            "V3",
        ),
        (
            config(json!({"rate_limit_service": {"transport_api_version": "V3"}})),
            "rate_limit_service.grpc_service",
            "required",
        ),
        (
            service(json!({"grpc_service": {}})),
            "rate_limit_service.grpc_service.envoy_grpc",
            "required",
        ),
        (
            service(json!({"grpc_service": {"envoy_grpc": {"cluster_name": ""}}})),
            "rate_limit_service.grpc_service.envoy_grpc.cluster_name",
            "must not be empty",
        ),
        (
            service(json!({"grpc_service": {"google_grpc": {}}})),
            "rate_limit_service.grpc_service.google_grpc",
            "not supported",
        ),
        (
            service(
                json!({"grpc_service": {"envoy_grpc": {"cluster_name": "c", "authority": "a"}}}),
            ),
            "rate_limit_service.grpc_service.envoy_grpc.authority",
            "not supported",
        ),
        (
            service(json!({"grpc_service": {"envoy_grpc": {"cluster_name": "c"},
                            "initial_metadata": [{"key": "bad key", "value": "v"}]}})),
            "rate_limit_service.grpc_service.initial_metadata[0].key",
            "",
        ),
        (
            service(json!({"grpc_service": {"envoy_grpc": {"cluster_name": "c"},
                            "initial_metadata": [{"key": "k", "value": "a\nb"}]}})),
            "rate_limit_service.grpc_service.initial_metadata[0].value",
            "",
        ),
        (
            config(json!({"timeout": "0s"})),
            "timeout",
            "between 1ms and 49 days",
        ),
        (
            config(json!({"timeout": "0.0005s"})),
            "timeout",
            "between 1ms and 49 days",
        ),
        (config(json!({"timeout": "20ms"})), "timeout", "duration"),
        (
            config(json!({"request_type": "all"})),
            "request_type",
            "not one of",
        ),
        (
            config(json!({"rate_limited_status": {"code": 99}})),
            "rate_limited_status.code",
            "not an HTTP status",
        ),
        (
            config(json!({"status_on_error": {"code": 600}})),
            "status_on_error.code",
            "not an HTTP status",
        ),
        (
            config(json!({"enable_x_ratelimit_headers": "DRAFT_VERSION_04"})),
            "enable_x_ratelimit_headers",
            "",
        ),
        (
            config(json!({"rate_limits": []})),
            "rate_limits",
            "at least one",
        ),
        (
            config(json!({"rate_limits": [{"actions": []}]})),
            "rate_limits[0].actions",
            "at least one",
        ),
        (
            config(
                json!({"rate_limits": [{"actions": [{"generic_key": {"descriptor_value": ""}}]}]}),
            ),
            "rate_limits[0].actions[0].generic_key.descriptor_value",
            "must not be empty",
        ),
        (
            config(json!({"rate_limits": [{"stage": 1, "actions": [{"remote_address": {}}]}]})),
            "rate_limits[0].stage",
            "not supported",
        ),
        (config(json!({"stage": 0})), "stage", "not supported"),
        (
            config(json!({"rate_limited_as_resource_exhausted": true})),
            "rate_limited_as_resource_exhausted",
            "not supported",
        ),
        (
            config(json!({"response_headers_to_add": []})),
            "response_headers_to_add",
            "not supported",
        ),
        (config(json!({"extra": 1})), "extra", "unknown field"),
    ] {
        let error = FakeModule::standalone::<GlobalRateLimitRoot>(config.to_string().as_bytes())
            .err()
            .unwrap_or_else(|| panic!("{config} should be refused"));
        assert_eq!(error.path, path, "{config}: {error}");
        assert!(error.reason.contains(reason), "{config}: {error}");
    }
    // The transport version by number, and the documented defaults, are accepted.
    start(service(json!({"transport_api_version": 2})));
    start(config(
        json!({"request_type": "", "stat_prefix": "", "timeout": "1s"}),
    ));
}
