//! ext-authz's per-request logic on sdk-ext's fake host: natively, in microseconds, no wasm.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use ext_authz::filter::ExtAuthzRoot;
use sdk_ext::fake::{FakeCall, FakeModule};
use sdk_ext::host::StreamType;
use sdk_ext::types::MapType;
use sdk_ext::Action;
use serde_json::{json, Value};
use std::time::Duration;

fn start(config: Value) -> FakeModule {
    FakeModule::standalone::<ExtAuthzRoot>(config.to_string().as_bytes())
        .unwrap_or_else(|error| panic!("{config} should be accepted: {error}"))
}

fn full_config() -> Value {
    json!({
        "http_service": {
            "server_uri": {"uri": "http://authz", "cluster": "authz", "timeout": "0.25s"},
            "path_prefix": "/check",
            "authorization_request": {
                "allowed_headers": {"patterns": [{"exact": "x-forward-me"}, {"prefix": "x-auth-"}]},
                "headers_to_add": [{"key": "x-added", "value": "by-envoy"}, {"key": "x-auth-fixed", "value": "fixed"}]
            },
            "authorization_response": {
                "allowed_upstream_headers": {"patterns": [{"exact": "x-user"}, {"exact": "x-override"}]},
                "allowed_upstream_headers_to_append": {"patterns": [{"exact": "x-append"}]},
                "allowed_client_headers": {"patterns": [{"exact": "x-deny-reason"}]}
            }
        }
    })
}

fn minimal(extra: Value) -> Value {
    let mut config = json!({
        "http_service": {"server_uri": {"uri": "http://authz", "cluster": "authz", "timeout": "1s"}}
    });
    for (key, value) in extra.as_object().unwrap() {
        config[key] = value.clone();
    }
    config
}

/// Sends request headers, expects a hold, and returns the one pending check request.
fn held(module: &mut FakeModule, stream: u32, headers: &[(&str, &[u8])]) -> FakeCall {
    assert_eq!(module.request_headers(stream, headers, true), Action::Pause);
    assert_eq!(module.host().local_reply(stream), None);
    let calls = module.host().pending_calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    calls[0].clone()
}

fn all(call: &FakeCall, name: &str) -> Vec<Vec<u8>> {
    call.headers
        .iter()
        .filter(|(key, _)| key == name.as_bytes())
        .map(|(_, value)| value.clone())
        .collect()
}

const GET: &[(&str, &[u8])] = &[
    (":method", b"GET"),
    (":path", b"/items?x=1"),
    (":authority", b"app.example"),
    (":scheme", b"http"),
];

#[test]
fn the_check_request_carries_the_allowed_headers_as_native_builds_it() {
    let mut module = start(full_config());
    let stream = module.stream();
    let mut request = GET.to_vec();
    request.extend_from_slice(&[
        ("authorization", b"Bearer t"),
        ("x-forward-me", b"a"),
        ("x-forward-me", b"b"),
        ("x-auth-tenant", b"\xff\x01raw \xe2\x82\xac \xe2\x82c\xc3"),
        ("x-private", b"secret"),
        ("x-added", b"client"),
        ("x-envoy-auth-partial-body", b"true"),
        ("content-length", b"99"),
    ]);
    let call = held(&mut module, stream, &request);
    assert_eq!(call.cluster, "authz");
    assert_eq!(call.timeout, Duration::from_millis(250));
    assert_eq!(call.header(":method").as_deref(), Some("GET"));
    assert_eq!(call.header(":path").as_deref(), Some("/check/items?x=1"));
    assert_eq!(call.header(":authority").as_deref(), Some("app.example"));
    assert_eq!(all(&call, "content-length"), [b"0".to_vec()]);
    // Pseudo-headers are coerced to UTF-8 the same way.
    let mut odd = GET.to_vec();
    odd[1] = (":path", b"/caf\xe9");
    let other = module.stream();
    assert_eq!(module.request_headers(other, &odd, true), Action::Pause);
    let odd_call = module
        .host()
        .pending_calls()
        .into_iter()
        .find(|pending| pending.context_id == other)
        .unwrap();
    assert_eq!(odd_call.header(":path").as_deref(), Some("/check/caf!"));
    assert_eq!(call.header("authorization").as_deref(), Some("Bearer t"));
    // Repeated headers are joined, raw bytes kept, headers_to_add replace the client's.
    assert_eq!(all(&call, "x-forward-me"), [b"a,b".to_vec()]);
    // Invalid UTF-8 is coerced byte for byte to `!`, as native's protobuf string does.
    assert_eq!(
        all(&call, "x-auth-tenant"),
        [b"!\x01raw \xe2\x82\xac !!c!".to_vec()]
    );
    assert_eq!(all(&call, "x-added"), [b"by-envoy".to_vec()]);
    assert_eq!(all(&call, "x-auth-fixed"), [b"fixed".to_vec()]);
    for absent in [
        "x-private",
        ":scheme",
        "x-envoy-auth-partial-body",
        "cookie",
    ] {
        assert!(all(&call, absent).is_empty(), "{absent} was sent");
    }
    assert!(call.body.is_empty());
}

#[test]
fn an_allowed_request_resumes_with_the_allowed_upstream_headers() {
    let mut module = start(full_config());
    let stream = module.stream();
    let mut request = GET.to_vec();
    request.extend_from_slice(&[
        ("x-override", b"client"),
        ("x-append", b"client"),
        ("x-user", b"mallory"),
    ]);
    let call = held(&mut module, stream, &request);
    module.respond(
        call.token,
        200,
        &[
            ("x-user", "alice"),
            ("x-override", "authz"),
            ("x-append", "authz"),
            ("x-not-allowed", "nope"),
        ],
        b"ignored",
    );
    assert_eq!(module.host().continued(stream), [StreamType::Request]);
    assert_eq!(module.host().local_reply(stream), None);
    let header = |name| module.host().request_header(stream, name);
    assert_eq!(header("x-user").as_deref(), Some("alice"));
    assert_eq!(header("x-override").as_deref(), Some("authz"));
    let appended: Vec<_> = module
        .host()
        .headers(stream, MapType::HttpRequestHeaders)
        .into_iter()
        .filter(|(name, _)| name == b"x-append")
        .map(|(_, value)| value)
        .collect();
    assert_eq!(appended, [b"client".to_vec(), b"authz".to_vec()]);
    assert_eq!(header("x-not-allowed"), None);
    let users = module
        .host()
        .headers(stream, MapType::HttpRequestHeaders)
        .into_iter()
        .filter(|(name, _)| name == b"x-user")
        .count();
    assert_eq!(users, 1);
    assert_eq!(module.host().metric("ext_authz.ok"), Some(1));
    assert_eq!(module.host().metric("ext_authz.denied"), Some(0));
    // The response passes untouched.
    assert_eq!(
        module.response_headers(stream, &[(":status", "200")], true),
        Action::Continue
    );
}

#[test]
fn an_appended_header_the_request_lacks_is_added() {
    let mut module = start(full_config());
    let stream = module.stream();
    let call = held(&mut module, stream, GET);
    module.respond(call.token, 200, &[("x-append", "authz")], b"");
    assert_eq!(
        module.host().request_header(stream, "x-append").as_deref(),
        Some("authz")
    );
}

#[test]
fn a_denial_sends_the_service_status_body_and_allowed_client_headers() {
    let mut module = start(full_config());
    let stream = module.stream();
    let call = held(&mut module, stream, GET);
    module.respond(
        call.token,
        401,
        &[
            ("x-deny-reason", "policy"),
            ("www-authenticate", "Bearer"),
            ("location", "/login"),
            ("x-authz-only", "secret"),
            ("content-length", "6"),
            ("content-type", "text/plain"),
        ],
        b"denied",
    );
    let reply = module.host().local_reply(stream).expect("a reply");
    assert_eq!(reply.status, 401);
    assert_eq!(reply.body, b"denied");
    assert_eq!(reply.details, "ext_authz_denied");
    assert_eq!(reply.header("x-deny-reason").as_deref(), Some("policy"));
    assert_eq!(reply.header("www-authenticate").as_deref(), Some("Bearer"));
    assert_eq!(reply.header("location").as_deref(), Some("/login"));
    for absent in ["x-authz-only", "content-type", "content-length", ":status"] {
        assert_eq!(reply.header(absent), None, "{absent}");
    }
    assert!(module.host().continued(stream).is_empty());
    assert_eq!(module.host().metric("ext_authz.denied"), Some(1));
}

#[test]
fn by_default_a_denial_passes_every_service_header_but_host() {
    for status in [403, 302, 201, 204, 404, 499] {
        let mut module = start(minimal(json!({})));
        let stream = module.stream();
        let call = held(&mut module, stream, GET);
        module.respond(
            call.token,
            status,
            &[
                ("host", "authz"),
                ("x-a", "1"),
                ("content-type", "text/plain"),
            ],
            b"no",
        );
        let reply = module.host().local_reply(stream).expect("a reply");
        assert_eq!(reply.status, u32::from(status));
        assert_eq!(reply.header("x-a").as_deref(), Some("1"));
        assert_eq!(reply.header("content-type").as_deref(), Some("text/plain"));
        assert_eq!(reply.header("host"), None);
        assert_eq!(module.host().metric("ext_authz.denied"), Some(1));
        assert_eq!(module.host().metric("ext_authz.ok"), Some(0));
    }
}

/// How a check can fail.
#[derive(Debug, Clone, Copy)]
enum Failure {
    Status(u16),
    Reset,
}

fn failing(module: &mut FakeModule, failure: Failure) -> u32 {
    let stream = module.stream();
    let call = held(module, stream, GET);
    match failure {
        Failure::Status(status) => module.respond(call.token, status, &[("x-a", "1")], b"oops"),
        Failure::Reset => module.fail_call(call.token),
    }
    stream
}

const FAILURES: [Failure; 5] = [
    Failure::Status(500),
    Failure::Status(503),
    Failure::Status(504),
    Failure::Status(599),
    Failure::Reset,
];

#[test]
fn a_failed_check_is_refused_with_status_on_error_and_an_empty_body() {
    for (config, status) in [
        (minimal(json!({})), 403),
        (minimal(json!({"status_on_error": {"code": 503}})), 503),
    ] {
        for failure in FAILURES {
            let mut module = start(config.clone());
            let stream = failing(&mut module, failure);
            let reply = module.host().local_reply(stream).expect("a reply");
            assert_eq!(
                (reply.status, &reply.body[..]),
                (status, &b""[..]),
                "{failure:?}"
            );
            assert_eq!(reply.details, "ext_authz_error");
            assert!(reply.headers.is_empty(), "{failure:?}: {:?}", reply.headers);
            assert_eq!(module.host().metric("ext_authz.error"), Some(1));
            assert_eq!(
                module.host().metric("ext_authz.failure_mode_allowed"),
                Some(0)
            );
        }
    }
}

#[test]
fn failure_mode_allow_lets_a_failed_check_through_and_can_mark_it() {
    for header_add in [false, true] {
        for failure in FAILURES {
            let mut module = start(minimal(json!({
                "failure_mode_allow": true, "failure_mode_allow_header_add": header_add
            })));
            let stream = failing(&mut module, failure);
            assert_eq!(module.host().local_reply(stream), None);
            assert_eq!(module.host().continued(stream), [StreamType::Request]);
            assert_eq!(
                module
                    .host()
                    .request_header(stream, "x-envoy-auth-failure-mode-allowed")
                    .as_deref(),
                header_add.then_some("true"),
            );
            assert_eq!(module.host().metric("ext_authz.error"), Some(1));
            assert_eq!(
                module.host().metric("ext_authz.failure_mode_allowed"),
                Some(1)
            );
        }
    }
}

#[test]
fn a_check_that_cannot_be_sent_is_a_failure_not_a_hang() {
    let mut module = start(minimal(json!({})));
    module.host().fail("http_call");
    let stream = module.stream();
    assert_eq!(module.request_headers(stream, GET, true), Action::Pause);
    assert_eq!(module.host().local_reply(stream).unwrap().status, 403);
    assert!(module.host().pending_calls().is_empty());

    let mut module = start(minimal(json!({"failure_mode_allow": true})));
    module.host().fail("http_call");
    let stream = module.stream();
    assert_eq!(module.request_headers(stream, GET, true), Action::Continue);
    assert_eq!(
        module.host().metric("ext_authz.failure_mode_allowed"),
        Some(1)
    );
}

#[test]
fn a_client_that_leaves_mid_check_is_forgotten_and_the_late_answer_ignored() {
    let mut module = start(minimal(json!({})));
    let gone = module.stream();
    let first = held(&mut module, gone, GET);
    module.reset(gone);
    let ended = module.stream();
    let second = module.host().pending_calls().len();
    assert_eq!(second, 1);
    assert_eq!(module.request_headers(ended, GET, true), Action::Pause);
    let calls = module.host().pending_calls();
    let second = calls
        .iter()
        .find(|call| call.token != first.token)
        .unwrap()
        .clone();
    module.end(ended);
    // Late answers for both: nothing is replied, resumed or counted, nothing traps.
    module.respond(first.token, 403, &[], b"late");
    module.fail_call(second.token);
    for stream in [gone, ended] {
        assert_eq!(module.host().local_reply(stream), None);
        assert!(module.host().continued(stream).is_empty());
    }
    for metric in ["ok", "denied", "error"] {
        assert_eq!(
            module.host().metric(&format!("ext_authz.{metric}")),
            Some(0)
        );
    }
    // The module still works for the next request.
    let stream = module.stream();
    let call = held(&mut module, stream, GET);
    module.respond(call.token, 200, &[], b"");
    assert_eq!(module.host().continued(stream), [StreamType::Request]);
}

#[test]
fn concurrent_checks_each_get_their_own_answer() {
    let mut module = start(minimal(json!({})));
    let (a, b) = (module.stream(), module.stream());
    let call_a = held(&mut module, a, GET);
    assert_eq!(module.request_headers(b, GET, true), Action::Pause);
    let call_b = module
        .host()
        .pending_calls()
        .into_iter()
        .find(|call| call.token != call_a.token)
        .unwrap();
    module.respond(call_b.token, 403, &[], b"b");
    module.respond(call_a.token, 200, &[], b"");
    assert_eq!(module.host().local_reply(b).unwrap().body, b"b");
    assert_eq!(module.host().local_reply(a), None);
    assert_eq!(module.host().continued(a), [StreamType::Request]);
}

fn body_config(max: u32, partial: bool) -> Value {
    minimal(json!({
        "with_request_body": {"max_request_bytes": max, "allow_partial_message": partial}
    }))
}

const POST: &[(&str, &[u8])] = &[
    (":method", b"POST"),
    (":path", b"/upload"),
    (":authority", b"app.example"),
    ("x-envoy-auth-partial-body", b"spoofed"),
];

#[test]
fn with_request_body_the_body_is_buffered_and_sent() {
    let mut module = start(body_config(16, false));
    let stream = module.stream();
    // The headers go on (a proxy-wasm filter holding them would see no body); the body waits.
    assert_eq!(
        module.request_headers(stream, POST, false),
        Action::Continue
    );
    assert_eq!(module.request_body(stream, b"01234", false), Action::Pause);
    assert_eq!(module.request_body(stream, b"56789", false), Action::Pause);
    assert!(module.host().pending_calls().is_empty());
    assert_eq!(module.request_body(stream, b"", true), Action::Pause);
    let call = module.host().pending_calls()[0].clone();
    assert_eq!(call.body, b"0123456789");
    assert_eq!(call.header("content-length").as_deref(), Some("10"));
    assert_eq!(all(&call, "x-envoy-auth-partial-body"), [b"false".to_vec()]);
    module.respond(call.token, 200, &[], b"");
    assert_eq!(module.host().continued(stream), [StreamType::Request]);
}

#[test]
fn with_request_body_a_request_without_body_is_checked_at_its_headers() {
    let mut module = start(body_config(16, false));
    let stream = module.stream();
    let call = held(&mut module, stream, POST);
    assert!(call.body.is_empty());
    // As native: no partial-body flag without a buffered body, and the client's is dropped.
    assert!(all(&call, "x-envoy-auth-partial-body").is_empty());
}

#[test]
fn with_request_body_a_body_over_the_limit_is_refused_with_413() {
    let mut module = start(body_config(8, false));
    let stream = module.stream();
    assert_eq!(
        module.request_headers(stream, POST, false),
        Action::Continue
    );
    assert_eq!(
        module.request_body(stream, b"01234567", false),
        Action::Pause
    );
    assert_eq!(module.request_body(stream, b"8", false), Action::Pause);
    let reply = module.host().local_reply(stream).expect("a 413");
    assert_eq!(
        (reply.status, &reply.body[..]),
        (413, &b"Payload Too Large"[..])
    );
    assert!(module.host().pending_calls().is_empty());
}

#[test]
fn with_a_partial_message_the_first_bytes_are_sent_once_the_limit_is_reached() {
    let mut module = start(body_config(8, true));
    let stream = module.stream();
    assert_eq!(
        module.request_headers(stream, POST, false),
        Action::Continue
    );
    assert_eq!(module.request_body(stream, b"0123", false), Action::Pause);
    assert!(module.host().pending_calls().is_empty());
    assert_eq!(
        module.request_body(stream, b"456789ab", false),
        Action::Pause
    );
    let call = module.host().pending_calls()[0].clone();
    assert_eq!(call.body, b"01234567");
    assert_eq!(all(&call, "x-envoy-auth-partial-body"), [b"true".to_vec()]);
    // More body while the check is out is held; the deny then ends the request.
    assert_eq!(module.request_body(stream, b"cd", true), Action::Pause);
    assert_eq!(module.host().pending_calls().len(), 1);
    module.respond(call.token, 403, &[], b"no");
    assert_eq!(module.host().local_reply(stream).unwrap().status, 403);

    // A body exactly at the limit is whole, not partial.
    let stream = module.stream();
    assert_eq!(
        module.request_headers(stream, POST, false),
        Action::Continue
    );
    assert_eq!(
        module.request_body(stream, b"01234567", true),
        Action::Pause
    );
    let call = module.host().pending_calls()[0].clone();
    assert_eq!(all(&call, "x-envoy-auth-partial-body"), [b"false".to_vec()]);
    module.respond(call.token, 200, &[], b"");
    assert_eq!(module.host().continued(stream), [StreamType::Request]);
}

#[test]
fn a_bad_config_is_refused_at_its_field_path() {
    let service = |server_uri: Value| json!({"http_service": {"server_uri": server_uri}});
    let uri = json!({"uri": "http://a", "cluster": "c", "timeout": "1s"});
    let with = |field: &str, value: Value| {
        let mut config = service(uri.clone());
        config["http_service"][field] = value;
        config
    };
    for (config, path, reason) in [
        (json!({}), "http_service", "required"),
        (json!({"grpc_service": {}}), "grpc_service", "not supported"),
        (
            service(json!({"uri": "http://a", "cluster": "c", "timeout": "0s"})),
            "http_service.server_uri.timeout",
            "between 1ms and 49 days",
        ),
        (
            service(json!({"uri": "http://a", "cluster": "c", "timeout": "1"})),
            "http_service.server_uri.timeout",
            "duration",
        ),
        (
            service(json!({"uri": "http://a", "cluster": "c"})),
            "http_service.server_uri",
            "timeout",
        ),
        (
            service(json!({"uri": "", "cluster": "c", "timeout": "1s"})),
            "http_service.server_uri.uri",
            "empty",
        ),
        (
            service(json!({"uri": "http://a", "cluster": "", "timeout": "1s"})),
            "http_service.server_uri.cluster",
            "empty",
        ),
        (with("path_prefix", json!("nope")), "http_service.path_prefix", "/"),
        (with("retry_policy", json!({})), "http_service.retry_policy", "not supported"),
        (
            with("authorization_request", json!({"allowed_headers": {"patterns": [{}]}})),
            "http_service.authorization_request.allowed_headers.patterns[0]",
            "needs one of",
        ),
        (
            with("authorization_request", json!({"headers_to_add": [{"key": "bad key"}]})),
            "http_service.authorization_request.headers_to_add[0].key",
            "",
        ),
        (
            with("authorization_request", json!({"headers_to_add": [{"key": "x", "value": "a\r\nb"}]})),
            "http_service.authorization_request.headers_to_add[0].value",
            "",
        ),
        (
            with("authorization_response", json!({"allowed_client_headers": {"patterns": [{"safe_regex": {"regex": "("}}]}})),
            "http_service.authorization_response.allowed_client_headers.patterns[0].safe_regex.regex",
            "regex",
        ),
        (
            with("authorization_response", json!({"dynamic_metadata_from_headers": {"patterns": []}})),
            "http_service.authorization_response.dynamic_metadata_from_headers",
            "not supported",
        ),
        (
            minimal(json!({"status_on_error": {"code": 99}})),
            "status_on_error.code",
            "not an HTTP status",
        ),
        (
            minimal(json!({"with_request_body": {"max_request_bytes": 0}})),
            "with_request_body.max_request_bytes",
            "at least 1",
        ),
        (
            minimal(json!({"with_request_body": {"max_request_bytes": 1, "pack_as_bytes": true}})),
            "with_request_body.pack_as_bytes",
            "not supported",
        ),
        (minimal(json!({"allowed_headers": {}})), "allowed_headers", "not supported"),
        (minimal(json!({"extra": 1})), "extra", "unknown field"),
    ] {
        let error = FakeModule::standalone::<ExtAuthzRoot>(config.to_string().as_bytes())
            .err()
            .unwrap_or_else(|| panic!("{config} should be refused"));
        assert_eq!(error.path, path, "{config}: {error}");
        assert!(error.reason.contains(reason), "{config}: {error}");
    }
    // Accepted: the documented no-op and an extra metrics prefix.
    let mut module = start(minimal(
        json!({"clear_route_cache": true, "stat_prefix": "edge"}),
    ));
    let stream = module.stream();
    let call = held(&mut module, stream, GET);
    module.respond(call.token, 200, &[], b"");
    assert_eq!(module.host().metric("ext_authz.edge.ok"), Some(1));
}

/// A filter after ext-authz in a chain: it marks every request it sees, and every body chunk.
struct MarkRoot;
struct Mark;

impl sdk_ext::RootFilter for MarkRoot {
    const NAME: &'static str = "mark";
    type Http = Mark;
    fn configure(
        _cx: &mut sdk_ext::RootCx<'_>,
        _config: &[u8],
    ) -> Result<Self, sdk_ext::config::ConfigError> {
        Ok(MarkRoot)
    }
    fn create_http(_root: &std::rc::Rc<Self>) -> Mark {
        Mark
    }
}

impl sdk_ext::HttpFilter for Mark {
    fn on_request_headers(&mut self, cx: &mut sdk_ext::HttpCx<'_>, _end: bool) -> Action {
        // It sees what ext-authz wrote: the service's x-user.
        let user = cx
            .request_headers()
            .get("x-user")
            .unwrap()
            .unwrap_or_default();
        cx.request_headers().set("x-seen-user", &user).unwrap();
        Action::Continue
    }
}

static CHAIN: &[sdk_ext::filter::Factory] = &[
    sdk_ext::filter::Factory::of::<ExtAuthzRoot>(),
    sdk_ext::filter::Factory::of::<MarkRoot>(),
];

#[test]
fn in_a_chain_an_allowed_request_resumes_at_the_next_filter_and_a_denied_one_never_gets_there() {
    let config = json!({"filters": [
        {"name": "ext-authz", "config": full_config()},
        {"name": "mark", "config": {}}
    ]});
    let mut module = FakeModule::new(
        sdk_ext::dispatch::Module::Chain(CHAIN),
        config.to_string().as_bytes(),
    );
    assert!(module.configured(), "{:?}", module.config_error());
    let allowed = module.stream();
    let call = held(&mut module, allowed, GET);
    assert_eq!(module.host().request_header(allowed, "x-seen-user"), None);
    module.respond(call.token, 200, &[("x-user", "alice")], b"");
    assert_eq!(
        module
            .host()
            .request_header(allowed, "x-seen-user")
            .as_deref(),
        Some("alice")
    );
    assert_eq!(module.host().continued(allowed), [StreamType::Request]);

    let denied = module.stream();
    let call = held(&mut module, denied, GET);
    module.respond(call.token, 403, &[], b"no");
    assert_eq!(module.host().local_reply(denied).unwrap().status, 403);
    assert_eq!(module.host().request_header(denied, "x-seen-user"), None);
    assert!(module.host().continued(denied).is_empty());
}

#[test]
fn unreadable_maps_fail_closed_and_a_body_with_trailers_is_checked_once() {
    // Request headers the host cannot hand over: refused as an error, no check sent.
    let mut module = start(minimal(json!({})));
    module.host().fail("get_header_map_pairs");
    let stream = module.stream();
    assert_eq!(module.request_headers(stream, GET, true), Action::Pause);
    assert_eq!(module.host().local_reply(stream).unwrap().status, 403);
    assert!(module.host().pending_calls().is_empty());
    assert_eq!(module.host().metric("ext_authz.error"), Some(1));

    // The service's answer cannot be read: an error too, never an allow.
    let mut module = start(minimal(json!({})));
    let stream = module.stream();
    let call = held(&mut module, stream, GET);
    module.host().fail("get_header_map_pairs");
    module.respond(call.token, 200, &[], b"");
    assert_eq!(module.host().local_reply(stream).unwrap().status, 403);
    assert!(module.host().continued(stream).is_empty());

    // A body ended by trailers: one check, with the whole body.
    let mut module = start(body_config(64, false));
    let stream = module.stream();
    assert_eq!(
        module.request_headers(stream, POST, false),
        Action::Continue
    );
    assert_eq!(module.request_body(stream, b"abc", false), Action::Pause);
    assert_eq!(
        module.request_trailers(stream, &[("x-t", "1")]),
        Action::Pause
    );
    let calls = module.host().pending_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].body, b"abc");
    module.respond(calls[0].token, 200, &[], b"");
    assert_eq!(module.host().continued(stream), [StreamType::Request]);
}

#[test]
fn on_allow_the_service_can_remove_request_headers_and_add_response_headers() {
    let mut config = full_config();
    config["http_service"]["authorization_response"]["allowed_client_headers_on_success"] =
        json!({"patterns": [{"prefix": "x-to-client"}]});
    let mut module = start(config);
    let stream = module.stream();
    let mut request = GET.to_vec();
    request.extend_from_slice(&[
        ("authorization", b"Bearer t"),
        ("x-private", b"p"),
        ("x-other", b"o"),
        ("x-kept", b"k"),
    ]);
    let call = held(&mut module, stream, &request);
    module.respond(
        call.token,
        200,
        &[
            (
                "x-envoy-auth-headers-to-remove",
                " X-Private ,authorization,host,:path,,",
            ),
            ("x-envoy-auth-headers-to-remove", "x-other"),
            ("x-to-client", "a"),
            ("x-to-client", "b"),
            ("x-not-for-client", "c"),
        ],
        b"",
    );
    let header = |name| module.host().request_header(stream, name);
    for removed in ["x-private", "authorization", "x-other"] {
        assert_eq!(header(removed), None, "{removed}");
    }
    assert_eq!(header("x-kept").as_deref(), Some("k"));
    assert_eq!(header(":path").as_deref(), Some("/items?x=1"));
    assert_eq!(header(":authority").as_deref(), Some("app.example"));
    module.response_headers(
        stream,
        &[(":status", "200"), ("x-to-client", "upstream")],
        true,
    );
    let added: Vec<_> = module
        .host()
        .headers(stream, MapType::HttpResponseHeaders)
        .into_iter()
        .filter(|(name, _)| name.starts_with(b"x-"))
        .collect();
    assert_eq!(
        added,
        [
            (b"x-to-client".to_vec(), b"upstream".to_vec()),
            (b"x-to-client".to_vec(), b"a".to_vec()),
            (b"x-to-client".to_vec(), b"b".to_vec()),
        ]
    );
}
