//! global-rate-limit's built module (`make build` writes target/filters/global_rate_limit.wasm)
//! driven through test-host, as Envoy would run it. The service's replies are encoded with
//! envoy-types' generated protos (prost), not with the filter's own codec.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use envoy_types::pb::envoy::config::core::v3::HeaderValue;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::{
    rate_limit::Unit, Code, DescriptorStatus, RateLimit,
};
use envoy_types::pb::envoy::service::ratelimit::v3::{RateLimitRequest, RateLimitResponse};
use envoy_types::pb::google::protobuf::Duration as ProtoDuration;
use prost::Message;
use serde_json::{json, Value};
use std::time::Duration;
use test_host::{filter_wasm, Action, HttpStream, Plugin, TestHost};

const GRPC_UNAVAILABLE: u32 = 14;

fn config(extra: Value) -> Value {
    let mut config = json!({
        "domain": "edge",
        "timeout": "0.5s",
        "rate_limit_service": {
            "grpc_service": {"envoy_grpc": {"cluster_name": "rls"}},
            "transport_api_version": "V3"
        },
        "rate_limits": [
            {"actions": [{"request_headers": {"header_name": "x-user", "descriptor_key": "user"}}]},
            {"actions": [{"generic_key": {"descriptor_value": "all"}}, {"remote_address": {}}]}
        ]
    });
    for (key, value) in extra.as_object().unwrap() {
        config[key] = value.clone();
    }
    config
}

fn start(host: &TestHost, config: Value) -> Plugin {
    host.plugin(filter_wasm("global_rate_limit"))
        .config(config)
        .start()
        .unwrap_or_else(|error| panic!("the plugin should start: {error}"))
}

const REQUEST: &[(&str, &str)] = &[
    (":method", "GET"),
    (":path", "/items"),
    (":authority", "app.example"),
    ("x-user", "alice"),
];

/// A stream whose request headers are held for a check; returns it and the call's token.
fn checked(plugin: &Plugin) -> (HttpStream, u32) {
    let mut stream = plugin.http_stream().unwrap();
    stream.set_property(&["source", "address"], "10.1.2.3:5555");
    assert_eq!(
        stream.send_request_headers(REQUEST, true).unwrap(),
        Action::Pause
    );
    let calls = plugin.grpc_calls();
    let call = calls.last().expect("a ShouldRateLimit call");
    (stream, call.token)
}

fn header(key: &str, value: &str) -> HeaderValue {
    HeaderValue {
        key: key.into(),
        value: value.into(),
        ..Default::default()
    }
}

fn status(
    code: Code,
    limit: u32,
    unit: Unit,
    name: &str,
    remaining: u32,
    reset: i64,
) -> DescriptorStatus {
    DescriptorStatus {
        code: code as i32,
        current_limit: Some(RateLimit {
            name: name.into(),
            requests_per_unit: limit,
            unit: unit as i32,
        }),
        limit_remaining: remaining,
        duration_until_reset: Some(ProtoDuration {
            seconds: reset,
            nanos: 0,
        }),
        ..Default::default()
    }
}

#[test]
fn the_call_carries_the_domain_and_every_descriptor() {
    let host = TestHost::new();
    let plugin = start(&host, config(json!({})));
    let (_stream, token) = checked(&plugin);
    let call = plugin
        .grpc_calls()
        .into_iter()
        .find(|call| call.token == token)
        .unwrap();
    assert_eq!(call.service, b"rls");
    assert_eq!(
        call.service_name,
        "envoy.service.ratelimit.v3.RateLimitService"
    );
    assert_eq!(call.method, "ShouldRateLimit");
    assert_eq!(call.timeout, Some(Duration::from_millis(500)));
    let request = RateLimitRequest::decode(call.messages[0].as_slice()).unwrap();
    assert_eq!(request.domain, "edge");
    let descriptors: Vec<Vec<(String, String)>> = request
        .descriptors
        .iter()
        .map(|d| {
            d.entries
                .iter()
                .map(|e| (e.key.clone(), e.value.clone()))
                .collect()
        })
        .collect();
    assert_eq!(
        descriptors,
        [
            vec![("user".to_string(), "alice".to_string())],
            vec![
                ("generic_key".to_string(), "all".to_string()),
                ("remote_address".to_string(), "10.1.2.3".to_string())
            ]
        ]
    );
}

#[test]
fn ok_lets_the_request_on_with_the_services_headers() {
    let host = TestHost::new();
    let plugin = start(
        &host,
        config(json!({"enable_x_ratelimit_headers": "DRAFT_VERSION_03"})),
    );
    let (mut stream, token) = checked(&plugin);
    let reply = RateLimitResponse {
        overall_code: Code::Ok as i32,
        statuses: vec![
            status(Code::Ok, 100, Unit::Second, "", 7, 1),
            status(Code::Ok, 10, Unit::Minute, "tenant", 3, 30),
        ],
        request_headers_to_add: vec![header("x-rls-request", "yes")],
        response_headers_to_add: vec![header("x-rls-response", "yes")],
        ..Default::default()
    };
    plugin
        .respond_grpc_call(token, &reply.encode_to_vec())
        .unwrap();
    let upstream = stream
        .upstream_request()
        .headers
        .expect("the request went on");
    assert_eq!(upstream.get_str("x-rls-request").as_deref(), Some("yes"));
    assert_eq!(stream.local_response(), None);
    stream
        .send_response_headers(&[(":status", "200")], true)
        .unwrap();
    let response = stream.response_headers();
    assert_eq!(response.get_str("x-rls-response").as_deref(), Some("yes"));
    assert_eq!(
        response.get_str("x-ratelimit-remaining").as_deref(),
        Some("3")
    );
    assert_eq!(
        response.get_str("x-ratelimit-limit").as_deref(),
        Some("10, 100;w=1, 10;w=60;name=\"tenant\"")
    );
    assert_eq!(response.get_str("x-ratelimit-reset").as_deref(), Some("30"));
    assert_eq!(host.counter("ratelimit.ok"), Some(1));
    stream.end().unwrap();
    assert!(plugin.failure().is_none());
}

#[test]
fn over_limit_gets_the_rate_limited_reply() {
    let host = TestHost::new();
    let plugin = start(
        &host,
        config(json!({"enable_x_ratelimit_headers": "DRAFT_VERSION_03"})),
    );
    let (stream, token) = checked(&plugin);
    let reply = RateLimitResponse {
        overall_code: Code::OverLimit as i32,
        statuses: vec![status(Code::OverLimit, 10, Unit::Minute, "", 0, 42)],
        response_headers_to_add: vec![header("x-rls-response", "over")],
        raw_body: b"slow down".to_vec(),
        ..Default::default()
    };
    plugin
        .respond_grpc_call(token, &reply.encode_to_vec())
        .unwrap();
    let local = stream.local_response().expect("a 429");
    assert_eq!(local.status, 429);
    assert_eq!(local.body, b"slow down");
    let headers = &local.headers;
    assert_eq!(
        headers.get_str("x-envoy-ratelimited").as_deref(),
        Some("true")
    );
    assert_eq!(headers.get_str("x-rls-response").as_deref(), Some("over"));
    assert_eq!(
        headers.get_str("x-ratelimit-remaining").as_deref(),
        Some("0")
    );
    assert_eq!(headers.get_str("x-ratelimit-reset").as_deref(), Some("42"));
    assert!(stream.upstream_request().headers.is_none());
    assert_eq!(host.counter("ratelimit.over_limit"), Some(1));
}

#[test]
fn a_failed_check_denies_or_lets_through_by_failure_mode_deny() {
    for deny in [true, false] {
        let host = TestHost::new();
        let plugin = start(
            &host,
            config(json!({"failure_mode_deny": deny, "status_on_error": {"code": 503}})),
        );
        // The service is unavailable.
        let (unavailable, token) = checked(&plugin);
        plugin
            .close_grpc(token, GRPC_UNAVAILABLE, "no healthy upstream")
            .unwrap();
        // The timeout passes: test-host closes the call with DEADLINE_EXCEEDED, as Envoy does.
        let (timed_out, _) = checked(&plugin);
        plugin.advance(Duration::from_millis(499)).unwrap();
        assert!(
            timed_out.local_response().is_none() && timed_out.upstream_request().headers.is_none()
        );
        plugin.advance(Duration::from_millis(2)).unwrap();
        // An answer that is no RateLimitResponse.
        let (garbage, token) = checked(&plugin);
        plugin
            .respond_grpc_call(token, &[0xff, 0xff, 0xff])
            .unwrap();
        for stream in [&unavailable, &timed_out, &garbage] {
            if deny {
                let reply = stream.local_response().expect("status_on_error");
                assert_eq!(reply.status, 503);
                assert!(stream.upstream_request().headers.is_none());
            } else {
                assert_eq!(stream.local_response(), None);
                assert!(stream.upstream_request().headers.is_some());
            }
        }
        assert_eq!(host.counter("ratelimit.error"), Some(3));
        assert_eq!(
            host.counter("ratelimit.failure_mode_allowed"),
            Some(if deny { 0 } else { 3 })
        );
        assert!(plugin.failure().is_none());
    }
}

#[test]
fn an_unknown_cluster_is_an_error_not_a_hang() {
    let host = TestHost::new();
    host.set_clusters(["other"]);
    let plugin = start(&host, config(json!({"failure_mode_deny": true})));
    let mut stream = plugin.http_stream().unwrap();
    stream.send_request_headers(REQUEST, true).unwrap();
    assert_eq!(stream.local_response().expect("a reply").status, 500);
    assert!(plugin.grpc_calls().is_empty());
    assert_eq!(host.counter("ratelimit.error"), Some(1));
}

#[test]
fn a_request_no_rate_limit_describes_goes_on_without_a_call() {
    let host = TestHost::new();
    let plugin = start(
        &host,
        config(json!({"rate_limits": [
            {"actions": [{"request_headers": {"header_name": "x-tenant", "descriptor_key": "tenant"}}]}
        ]})),
    );
    let mut stream = plugin.http_stream().unwrap();
    assert_eq!(
        stream.send_request_headers(REQUEST, true).unwrap(),
        Action::Continue
    );
    assert!(plugin.grpc_calls().is_empty());
}

#[test]
fn a_stream_that_ends_mid_check_is_forgotten_and_its_late_answer_ignored() {
    let host = TestHost::new();
    let plugin = start(&host, config(json!({})));
    let (stream, token) = checked(&plugin);
    stream.end().unwrap();
    let ok = RateLimitResponse {
        overall_code: Code::Ok as i32,
        ..Default::default()
    };
    // Envoy cancels a stream's calls when it ends; a late answer finds no call.
    assert!(plugin
        .respond_grpc_call(token, &ok.encode_to_vec())
        .is_err());
    let (next, token) = checked(&plugin);
    plugin
        .respond_grpc_call(token, &ok.encode_to_vec())
        .unwrap();
    assert!(next.upstream_request().headers.is_some());
    assert!(plugin.failure().is_none());
}

#[test]
fn hostile_replies_never_trap_the_module() {
    let host = TestHost::new();
    let plugin = start(
        &host,
        config(json!({"enable_x_ratelimit_headers": "DRAFT_VERSION_03"})),
    );
    let valid = RateLimitResponse {
        overall_code: Code::OverLimit as i32,
        statuses: vec![status(
            Code::OverLimit,
            u32::MAX,
            Unit::Year,
            "n\"a\r\nme",
            0,
            i64::MAX,
        )],
        response_headers_to_add: vec![
            header("bad name", "v"),
            header("x-ok", "a\r\nb"),
            header("", ""),
        ],
        request_headers_to_add: vec![header(":path", "/admin")],
        raw_body: vec![0; 70_000],
        ..Default::default()
    }
    .encode_to_vec();
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..300 {
        let (stream, token) = checked(&plugin);
        // Valid bytes cut short, bit-flipped, or random.
        let mut message = valid.clone();
        match round % 3 {
            0 => message.truncate((next() as usize) % valid.len()),
            1 => {
                for _ in 0..4 {
                    let at = (next() as usize) % message.len();
                    message[at] ^= 1 << (next() % 8);
                }
            }
            _ => message = (0..next() % 64).map(|_| next() as u8).collect(),
        }
        plugin.respond_grpc_call(token, &message).unwrap();
        assert!(
            plugin.failure().is_none(),
            "round {round}: the module trapped"
        );
        assert!(
            stream.local_response().is_some() || stream.upstream_request().headers.is_some(),
            "round {round}: the request was left waiting"
        );
        stream.end().unwrap();
    }
    // The intact reply: refused, and the hostile parts left out.
    let (stream, token) = checked(&plugin);
    plugin.respond_grpc_call(token, &valid).unwrap();
    let local = stream.local_response().expect("a 429");
    assert_eq!(local.status, 429);
    assert_eq!(local.headers.get_str("bad name"), None);
    assert!(plugin.failure().is_none());
}
