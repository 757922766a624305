//! json-redact's per-request logic on sdk-ext's fake host: natively, in microseconds, no wasm.
//! The fake host keeps bodies to itself, so a probe filter chained next to json-redact records
//! the body as the next filter (request) or the previous one (response) receives it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use header_rewrite::filter::HeaderRewriteRoot;
use json_redact::filter::JsonRedactRoot;
use json_redact::redact::{Outcome, Pointer, Redaction};
use rate_limit::filter::RateLimitRoot;
use sdk_ext::config::ConfigError;
use sdk_ext::dispatch::Module;
use sdk_ext::fake::FakeModule;
use sdk_ext::filter::Factory;
use sdk_ext::{Action, HttpCx, HttpFilter, RootCx, RootFilter};
use serde_json::{json, Map, Value};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

thread_local! {
    /// Bodies the probes saw complete: ("request" | "response", probe position, body).
    static SEEN: RefCell<Vec<(&'static str, usize, String)>> = const { RefCell::new(Vec::new()) };
}

/// Every body every probe saw.
fn seen_all() -> Vec<(&'static str, usize, String)> {
    SEEN.with(|seen| std::mem::take(&mut *seen.borrow_mut()))
}

/// The bodies as they left json-redact: requests at the probe behind it, responses (which
/// run the chain backwards) at the probe ahead of it, in position 0.
fn seen() -> Vec<(&'static str, String)> {
    seen_all()
        .into_iter()
        .filter(|(kind, position, _)| (*kind == "request") == (*position != 0))
        .map(|(kind, _, body)| (kind, body))
        .collect()
}

/// Records each complete body it is handed.
struct Probe;
struct ProbeHttp;

impl RootFilter for Probe {
    const NAME: &'static str = "probe";
    type Http = ProbeHttp;
    fn configure(_cx: &mut RootCx<'_>, _config: &[u8]) -> Result<Self, ConfigError> {
        Ok(Probe)
    }
    fn create_http(_root: &Rc<Self>) -> ProbeHttp {
        ProbeHttp
    }
}

fn record(kind: &'static str, position: usize, body: Vec<u8>) {
    let text = String::from_utf8_lossy(&body).into_owned();
    SEEN.with(|seen| seen.borrow_mut().push((kind, position, text)));
}

// The whole buffer, not `size`: the chain hands later filters the size from before an earlier
// filter replaced the body.
impl HttpFilter for ProbeHttp {
    fn on_request_body(&mut self, cx: &mut HttpCx<'_>, _size: usize, end: bool) -> Action {
        if end {
            record(
                "request",
                cx.position(),
                cx.request_body(0, usize::MAX).unwrap(),
            );
        }
        Action::Continue
    }
    fn on_response_body(&mut self, cx: &mut HttpCx<'_>, _size: usize, end: bool) -> Action {
        if end {
            record(
                "response",
                cx.position(),
                cx.response_body(0, usize::MAX).unwrap(),
            );
        }
        Action::Continue
    }
}

static WITH_PROBE: &[Factory] = &[
    Factory::of::<Probe>(),
    Factory::of::<JsonRedactRoot>(),
    Factory::of::<RateLimitRoot>(),
    Factory::of::<HeaderRewriteRoot>(),
];

/// probe → json-redact → probe: the first probe sees responses after the rewrite, the last
/// one requests.
fn probed(config: Value) -> FakeModule {
    let module = FakeModule::new(
        Module::Chain(WITH_PROBE),
        json!({"filters": [
            {"name": "probe", "config": {}},
            {"name": "json-redact", "config": config},
            {"name": "probe", "config": {}}
        ]})
        .to_string()
        .as_bytes(),
    );
    assert!(module.configured(), "{:?}", module.config_error());
    seen();
    module
}

fn refused(config: Value) -> ConfigError {
    FakeModule::standalone::<JsonRedactRoot>(config.to_string().as_bytes())
        .err()
        .unwrap_or_else(|| panic!("{config} should be refused"))
}

fn config() -> Value {
    json!({
        "rules": [
            {"match": {"prefix": "/users"}, "direction": "both",
             "redact": ["/user/ssn", "/cards/*/number"]},
            {"match": {"prefix": "/drop"}, "direction": "request", "action": "remove",
             "redact": ["/secret"]}
        ],
        "max_body_bytes": 64
    })
}

const POST_JSON: &[(&str, &str)] = &[
    (":method", "POST"),
    (":path", "/users/1"),
    ("content-type", "application/json; charset=utf-8"),
    ("content-length", "60"),
];

fn response_json(length: &str) -> [(&'static str, String); 3] {
    [
        (":status", "200".into()),
        ("content-type", "application/json".into()),
        ("content-length", length.into()),
    ]
}

fn metric(module: &FakeModule, name: &str) -> i64 {
    module
        .host()
        .metric(&format!("json_redact.{name}"))
        .unwrap_or_else(|| panic!("{name} is defined"))
}

#[test]
fn a_request_body_in_chunks_is_buffered_redacted_and_reframed() {
    let mut module = probed(config());
    let stream = module.stream();
    assert_eq!(
        module.request_headers(stream, POST_JSON, false),
        Action::Continue
    );
    assert_eq!(module.host().request_header(stream, "content-length"), None);
    assert_eq!(
        module.request_body(stream, br#"{"user": {"ss"#, false),
        Action::Pause
    );
    assert_eq!(
        module.request_body(stream, br#"n": "1-2", "n": 1}, "#, false),
        Action::Pause
    );
    assert_eq!(
        module.request_body(stream, br#""cards": [{"number": 4}]}"#, true),
        Action::Continue
    );
    assert_eq!(
        seen(),
        [(
            "request",
            r#"{"user": {"ssn": "***", "n": 1}, "cards": [{"number": "***"}]}"#.to_string()
        )]
    );
    assert_eq!(metric(&module, "redacted"), 1);
}

#[test]
fn a_response_body_is_redacted_before_the_filters_ahead_of_it_see_it() {
    let mut module = probed(config());
    let stream = module.stream();
    module.request_headers(stream, &[(":method", "GET"), (":path", "/users")], true);
    assert_eq!(
        module.response_headers(stream, &response_json("31"), false),
        Action::Continue
    );
    assert_eq!(
        module.host().response_header(stream, "content-length"),
        None
    );
    assert_eq!(
        module.response_body(stream, br#"{"user": "#, false),
        Action::Pause
    );
    assert_eq!(
        module.response_body(stream, br#"{"ssn": 12, "x": [1]}}"#, true),
        Action::Continue
    );
    assert_eq!(
        seen(),
        [(
            "response",
            r#"{"user": {"ssn": "***", "x": [1]}}"#.to_string()
        )]
    );
}

#[test]
fn remove_drops_the_member_and_keeps_valid_json() {
    let mut module = probed(config());
    let stream = module.stream();
    let headers = [
        (":method", "PUT"),
        (":path", "/drop"),
        ("content-type", "application/json"),
    ];
    module.request_headers(stream, &headers, false);
    module.request_body(stream, br#"{"a": 1, "secret": "s", "b": 2}"#, true);
    assert_eq!(seen(), [("request", r#"{"a": 1, "b": 2}"#.to_string())]);
    // The /drop rule covers requests only: its response passes unbuffered.
    module.response_headers(stream, &response_json("14"), false);
    assert_eq!(
        module
            .host()
            .response_header(stream, "content-length")
            .as_deref(),
        Some("14")
    );
    assert_eq!(
        module.response_body(stream, br#"{"secret": 1}"#, false),
        Action::Continue
    );
}

#[test]
fn what_is_not_json_passes_untouched_and_counted() {
    let mut module = probed(config());
    // A content type the rule does not list: content-length stays, nothing is buffered.
    let stream = module.stream();
    let text = [
        (":method", "POST"),
        (":path", "/users"),
        ("content-type", "text/plain"),
        ("content-length", "9"),
    ];
    module.request_headers(stream, &text, false);
    assert_eq!(
        module
            .host()
            .request_header(stream, "content-length")
            .as_deref(),
        Some("9")
    );
    assert_eq!(
        module.request_body(stream, b"ssn: 1234", true),
        Action::Continue
    );
    // No content type at all.
    let stream = module.stream();
    module.request_headers(stream, &[(":method", "POST"), (":path", "/users")], false);
    assert_eq!(module.request_body(stream, b"{}", true), Action::Continue);
    assert_eq!(metric(&module, "passed_non_json"), 2);

    // A JSON content type with a body that is not JSON (or not UTF-8).
    for body in [
        &b"{\"user\": "[..],
        b"\xff\"\"",
        b"{} {}",
        b"\xef\xbb\xbf{}",
    ] {
        let stream = module.stream();
        module.request_headers(stream, POST_JSON, false);
        assert_eq!(module.request_body(stream, body, true), Action::Continue);
    }
    assert_eq!(metric(&module, "invalid_json"), 4);
    let bodies: Vec<_> = seen().into_iter().map(|(_, body)| body).collect();
    assert_eq!(bodies.len(), 6);
    assert_eq!(bodies[0], "ssn: 1234");
    assert_eq!(bodies[2], "{\"user\": ");
    assert_eq!(metric(&module, "redacted"), 0);
}

#[test]
fn an_encoded_body_passes_untouched_and_counted() {
    let mut module = probed(config());
    let stream = module.stream();
    module.request_headers(stream, &[(":method", "GET"), (":path", "/users")], true);
    let gzip = [
        (":status", "200"),
        ("content-type", "application/json"),
        ("content-encoding", "gzip"),
        ("content-length", "3"),
    ];
    module.response_headers(stream, &gzip, false);
    assert_eq!(
        module
            .host()
            .response_header(stream, "content-length")
            .as_deref(),
        Some("3")
    );
    assert_eq!(
        module.response_body(stream, b"\x1f\x8b\x08", true),
        Action::Continue
    );
    assert_eq!(metric(&module, "encoded_passthrough"), 1);
    // `identity` is no encoding.
    let stream = module.stream();
    module.request_headers(stream, &[(":method", "GET"), (":path", "/users")], true);
    let identity = [
        (":status", "200"),
        ("content-type", "application/json"),
        ("content-encoding", "identity"),
    ];
    module.response_headers(stream, &identity, false);
    module.response_body(stream, br#"{"user": {"ssn": 1}}"#, true);
    assert_eq!(metric(&module, "redacted"), 1);
}

#[test]
fn an_over_limit_request_gets_a_413_by_its_length_or_while_buffering() {
    let mut module = probed(config());
    let stream = module.stream();
    let declared = [
        (":method", "POST"),
        (":path", "/users"),
        ("content-type", "application/json"),
        ("content-length", "65"),
    ];
    assert_eq!(
        module.request_headers(stream, &declared, false),
        Action::Pause
    );
    let reply = module.host().local_reply(stream).expect("a 413");
    assert_eq!(reply.status, 413);
    assert_eq!(
        reply.header("content-type").as_deref(),
        Some("application/json")
    );
    let body: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(body["error"], "request_body_too_large");
    // The 413 passes back through json-redact's response hooks untouched.
    let reply_headers = [
        (":status", "413"),
        ("content-type", "application/json"),
        ("content-length", "70"),
    ];
    assert_eq!(
        module.response_headers(stream, &reply_headers, false),
        Action::Continue
    );
    assert_eq!(
        module
            .host()
            .response_header(stream, "content-length")
            .as_deref(),
        Some("70")
    );
    assert_eq!(
        module.response_body(stream, &reply.body, true),
        Action::Continue
    );
    assert_eq!(metric(&module, "unchanged"), 0);

    // Chunked: no length in advance; the limit is inclusive.
    let stream = module.stream();
    let chunked = [
        (":method", "POST"),
        (":path", "/users"),
        ("content-type", "application/json"),
    ];
    module.request_headers(stream, &chunked, false);
    assert_eq!(
        module.request_body(stream, &[b' '; 64], false),
        Action::Pause
    );
    assert_eq!(module.host().local_reply(stream), None);
    assert_eq!(module.request_body(stream, b" ", false), Action::Pause);
    assert_eq!(module.host().local_reply(stream).unwrap().status, 413);
    assert_eq!(metric(&module, "request_too_large"), 2);
    // No request body ever went on; the one response body is the 413's own.
    let seen = seen();
    assert!(seen.iter().all(|(kind, _)| *kind == "response"), "{seen:?}");
}

#[test]
fn an_over_limit_response_passes_by_default() {
    let mut module = probed(config());
    let stream = module.stream();
    module.request_headers(stream, &[(":method", "GET"), (":path", "/users")], true);
    // Declared: not even buffered, content-length kept.
    module.response_headers(stream, &response_json("100"), false);
    assert_eq!(
        module
            .host()
            .response_header(stream, "content-length")
            .as_deref(),
        Some("100")
    );
    assert_eq!(
        module.response_body(stream, &[b' '; 100], true),
        Action::Continue
    );
    // Found while buffering: let through as it is.
    let stream = module.stream();
    module.request_headers(stream, &[(":method", "GET"), (":path", "/users")], true);
    module.response_headers(
        stream,
        &[(":status", "200"), ("content-type", "application/json")],
        false,
    );
    assert_eq!(
        module.response_body(stream, &[b' '; 50], false),
        Action::Pause
    );
    assert_eq!(
        module.response_body(stream, br#"{"user": {"ssn": 1}}"#, false),
        Action::Continue
    );
    assert_eq!(module.response_body(stream, b"", true), Action::Continue);
    assert_eq!(metric(&module, "response_too_large"), 2);
    assert_eq!(metric(&module, "redacted"), 0);
    assert_eq!(module.host().local_reply(stream), None);
}

#[test]
fn an_over_limit_response_can_be_rejected() {
    let mut config = config();
    config["response_over_limit"] = json!("reject");
    let mut module = probed(config);
    let stream = module.stream();
    module.request_headers(stream, &[(":method", "GET"), (":path", "/users")], true);
    module.response_headers(stream, &response_json("100"), false);
    assert_eq!(
        module.host().response_header(stream, ":status").as_deref(),
        Some("502")
    );
    assert_eq!(
        module.host().response_header(stream, "content-length"),
        None
    );
    module.response_body(stream, &[b'x'; 60], false);
    module.response_body(stream, &[b'x'; 40], true);
    let (_, body) = seen().pop().unwrap();
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"], "response_body_too_large");

    // Found while buffering: what was buffered is dropped, the end becomes the error.
    let stream = module.stream();
    module.request_headers(stream, &[(":method", "GET"), (":path", "/users")], true);
    module.response_headers(
        stream,
        &[(":status", "200"), ("content-type", "application/json")],
        false,
    );
    module.response_body(
        stream,
        br#"{"user": {"ssn": "123-45-6789"}, "pad": ""#,
        false,
    );
    module.response_body(stream, &[b'x'; 40], false);
    module.response_body(stream, b"\"}", true);
    let (_, body) = seen().pop().unwrap();
    assert!(!body.contains("123-45"), "{body}");
    assert!(body.ends_with(r#""response_body_too_large","message":"the response body is over 64 bytes and cannot be redacted"}"#), "{body}");
    assert_eq!(metric(&module, "response_too_large"), 2);
}

#[test]
fn head_204_304_and_empty_bodies_have_nothing_to_do() {
    let mut module = probed(config());
    // HEAD: the response's content-length describes a body that never comes.
    let stream = module.stream();
    module.request_headers(stream, &[(":method", "HEAD"), (":path", "/users")], true);
    assert_eq!(
        module.response_headers(stream, &response_json("31"), true),
        Action::Continue
    );
    assert_eq!(
        module
            .host()
            .response_header(stream, "content-length")
            .as_deref(),
        Some("31")
    );
    for status in ["204", "304"] {
        let stream = module.stream();
        module.request_headers(stream, &[(":method", "GET"), (":path", "/users")], true);
        let headers = [
            (":status", status),
            ("content-type", "application/json"),
            ("content-length", "0"),
        ];
        assert_eq!(
            module.response_headers(stream, &headers, false),
            Action::Continue
        );
        assert_eq!(
            module
                .host()
                .response_header(stream, "content-length")
                .as_deref(),
            Some("0")
        );
        assert_eq!(module.response_body(stream, b"", true), Action::Continue);
    }
    // An empty body that still ends the stream in a body callback.
    let stream = module.stream();
    module.request_headers(stream, POST_JSON, false);
    assert_eq!(module.request_body(stream, b"", true), Action::Continue);
    let counted: i64 = [
        "redacted",
        "unchanged",
        "invalid_json",
        "passed_non_json",
        "errors",
    ]
    .iter()
    .map(|name| metric(&module, name))
    .sum();
    assert_eq!(counted, 0);
}

#[test]
fn rules_pick_by_route_and_direction_and_upgrades_pass() {
    let mut module = probed(config());
    // No rule for this path.
    let stream = module.stream();
    let other = [
        (":method", "POST"),
        (":path", "/other"),
        ("content-type", "application/json"),
        ("content-length", "2"),
    ];
    module.request_headers(stream, &other, false);
    assert_eq!(
        module
            .host()
            .request_header(stream, "content-length")
            .as_deref(),
        Some("2")
    );
    assert_eq!(module.request_body(stream, b"{}", false), Action::Continue);
    // A websocket upgrade is never buffered.
    let stream = module.stream();
    let upgrade = [
        (":method", "GET"),
        (":path", "/users"),
        ("upgrade", "websocket"),
        ("content-type", "application/json"),
    ];
    module.request_headers(stream, &upgrade, false);
    assert_eq!(module.request_body(stream, b"{", false), Action::Continue);
    module.response_headers(
        stream,
        &[(":status", "101"), ("content-type", "application/json")],
        false,
    );
    assert_eq!(module.response_body(stream, b"{", false), Action::Continue);
    // A JSON body with nothing to redact.
    let stream = module.stream();
    module.request_headers(stream, POST_JSON, false);
    module.request_body(stream, br#"{"user": {"name": "a"}}"#, true);
    assert_eq!(metric(&module, "unchanged"), 1);
    assert_eq!(metric(&module, "redacted"), 0);
}

#[test]
fn host_failures_pass_the_body_and_count_errors() {
    let mut module = probed(config());
    let stream = module.stream();
    module.request_headers(stream, POST_JSON, false);
    module.host().fail("set_buffer_bytes");
    assert_eq!(
        module.request_body(stream, br#"{"user": {"ssn": 1}}"#, true),
        Action::Continue
    );
    module.host().recover("set_buffer_bytes");
    assert_eq!(metric(&module, "errors"), 1);
    seen();

    let stream = module.stream();
    module.request_headers(stream, &[(":method", "GET"), (":path", "/users")], true);
    module.host().fail("get_header_map_pairs");
    assert_eq!(
        module.response_headers(stream, &response_json("2"), false),
        Action::Continue
    );
    module.host().recover("get_header_map_pairs");
    assert_eq!(module.response_body(stream, b"{}", true), Action::Continue);
    assert_eq!(metric(&module, "errors"), 2);
}

#[test]
fn it_composes_with_rate_limit_before_and_header_rewrite_after() {
    let module_config = json!({"filters": [
        {"name": "probe", "config": {}},
        {"name": "rate-limit", "config": {
            "stat_prefix": "rl",
            "token_bucket": {"max_tokens": 2, "tokens_per_fill": 1, "fill_interval": "3600s"},
            "filter_enabled": {"default_value": {"numerator": 100, "denominator": "HUNDRED"}},
            "filter_enforced": {"default_value": {"numerator": 100, "denominator": "HUNDRED"}}
        }},
        {"name": "json-redact", "config": config()},
        {"name": "header-rewrite", "config": {"mutations": {
            "request_mutations": [{"append": {"header": {"key": "x-seen", "value": "yes"}}}],
            "response_mutations": [{"append": {"header": {"key": "x-out", "value": "yes"}}}]
        }}},
        {"name": "probe", "config": {}}
    ]});
    let mut module = FakeModule::new(
        Module::Chain(WITH_PROBE),
        module_config.to_string().as_bytes(),
    );
    assert!(module.configured(), "{:?}", module.config_error());
    seen();
    for _ in 0..2 {
        let stream = module.stream();
        assert_eq!(
            module.request_headers(stream, POST_JSON, false),
            Action::Continue
        );
        assert_eq!(
            module.host().request_header(stream, "x-seen").as_deref(),
            Some("yes")
        );
        assert_eq!(
            module.request_body(stream, br#"{"user": {"ssn": 1}"#, false),
            Action::Pause
        );
        assert_eq!(module.request_body(stream, b"}", true), Action::Continue);
        module.response_headers(stream, &response_json("17"), false);
        assert_eq!(
            module.host().response_header(stream, "x-out").as_deref(),
            Some("yes")
        );
        assert_eq!(
            module.response_body(stream, br#"{"cards": [{"number": 1}]}"#, true),
            Action::Continue
        );
        module.end(stream);
    }
    // The probe ahead of json-redact saw the request as the client sent it, the probe behind it
    // the redacted one; responses the other way round.
    let redacted_request = r#"{"user": {"ssn": "***"}}"#;
    let redacted_response = r#"{"cards": [{"number": "***"}]}"#;
    let expected: Vec<_> = (0..2)
        .flat_map(|_| {
            [
                ("request", 0, r#"{"user": {"ssn": 1}}"#),
                ("request", 4, redacted_request),
                ("response", 4, r#"{"cards": [{"number": 1}]}"#),
                ("response", 0, redacted_response),
            ]
        })
        .map(|(kind, position, body)| (kind, position, body.to_string()))
        .collect();
    assert_eq!(seen_all(), expected);
    // The third request is over rate-limit's bucket: its 429 never reaches json-redact.
    let stream = module.stream();
    assert_eq!(
        module.request_headers(stream, POST_JSON, false),
        Action::Pause
    );
    assert_eq!(module.host().local_reply(stream).unwrap().status, 429);
    assert_eq!(module.host().metric("json_redact.redacted"), Some(4));
}

#[test]
fn a_bad_config_is_refused_at_its_field_path() {
    let rule = |extra: Value| {
        let mut rule = json!({"redact": ["/a"]});
        rule.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        json!({"rules": [{"redact": ["/ok"]}, rule]})
    };
    for (config, path, reason) in [
        (json!({}), "", "missing field `rules`"),
        (json!({"rules": []}), "rules", "at least one"),
        (
            rule(json!({"redact": []})),
            "rules[1].redact",
            "at least one",
        ),
        (
            rule(json!({"redact": ["/a", "b"]})),
            "rules[1].redact[1]",
            "must start with /",
        ),
        (
            rule(json!({"redact": [""]})),
            "rules[1].redact[0]",
            "whole document",
        ),
        (
            rule(json!({"redact": ["/a~2"]})),
            "rules[1].redact[0]",
            "~0 is ~",
        ),
        (
            rule(json!({"redact": (0..65).map(|i| format!("/{i}")).collect::<Vec<_>>()})),
            "rules[1].redact",
            "at most 64",
        ),
        (
            rule(json!({"direction": "up"})),
            "rules[1].direction",
            "unknown variant",
        ),
        (
            rule(json!({"action": "hash"})),
            "rules[1].action",
            "unknown variant",
        ),
        (
            rule(json!({"content_types": []})),
            "rules[1].content_types",
            "at least one",
        ),
        (
            rule(json!({"content_types": ["json"]})),
            "rules[1].content_types[0]",
            "media type",
        ),
        (
            rule(json!({"content_types": ["text/plain; charset=x"]})),
            "rules[1].content_types[0]",
            "without parameters",
        ),
        (
            rule(json!({"match": {"prefix": "/", "path": "/a"}})),
            "rules[1].match",
            "one of",
        ),
        (
            rule(json!({"match": {"safe_regex": {"regex": "("}}})),
            "rules[1].match.safe_regex.regex",
            "",
        ),
        (rule(json!({"mask": 1})), "rules[1].mask", "invalid type"),
        (rule(json!({"extra": 1})), "rules[1].extra", "unknown field"),
        (
            json!({"rules": [{"redact": ["/a"]}], "max_body_bytes": 0}),
            "max_body_bytes",
            "above 0",
        ),
        (
            json!({"rules": [{"redact": ["/a"]}], "max_body_bytes": 4294967296u64}),
            "max_body_bytes",
            "at most",
        ),
        (
            json!({"rules": [{"redact": ["/a"]}], "response_over_limit": "drop"}),
            "response_over_limit",
            "unknown variant",
        ),
        (
            json!({"rules": [{"redact": ["/a"]}], "stat_prefix": ""}),
            "stat_prefix",
            "empty",
        ),
    ] {
        let error = refused(config.clone());
        assert_eq!(error.path, path, "{config}: {error}");
        assert!(error.reason.contains(reason), "{config}: {error}");
    }
}

#[test]
fn content_types_ignore_case_and_parameters_and_take_wildcards() {
    let mut module = probed(json!({"rules": [{"direction": "request",
        "content_types": ["application/*", "Text/JSON"], "redact": ["/k"]}]}));
    for (content_type, redacted) in [
        ("application/problem+json", true),
        ("APPLICATION/JSON ; charset=utf-8", true),
        ("text/json", true),
        ("text/plain", false),
        ("application", false),
        ("application/", false),
    ] {
        let stream = module.stream();
        let headers = [
            (":method", "POST"),
            (":path", "/"),
            ("content-type", content_type),
        ];
        module.request_headers(stream, &headers, false);
        module.request_body(stream, br#"{"k": 1}"#, true);
        let (_, body) = seen().pop().unwrap();
        assert_eq!(body.contains("***"), redacted, "{content_type}");
    }
}

// ---- property tests: random documents and pointer sets, against a reference on Value ----

const KEYS: &[&str] = &["a", "b", "ssn", "x/y", "t~", "*", "", "0", "1"];
const SEGMENTS: &[&str] = &[
    "a", "b", "ssn", "x~1y", "t~0", "*", "*", "", "0", "1", "01", "-",
];

fn random_value(rng: &mut fastrand::Rng, depth: usize) -> Value {
    let pick = if depth >= 4 {
        rng.usize(0..5)
    } else {
        rng.usize(0..8)
    };
    match pick {
        0 => Value::Null,
        1 => Value::Bool(rng.bool()),
        2 => json!(rng.i64(-1_000_000..1_000_000)),
        3 => json!(rng.f64() * 1e6 - 5e5),
        4 => Value::String(
            ["", "ssn", "caf\u{e9} \"q\" \\ \n", "\u{1f600}", "a,b}]"][rng.usize(0..5)].to_string(),
        ),
        5 | 6 => {
            let mut map = Map::new();
            for _ in 0..rng.usize(0..5) {
                let key = KEYS[rng.usize(0..KEYS.len())].to_string();
                map.insert(key, random_value(rng, depth + 1));
            }
            Value::Object(map)
        }
        _ => Value::Array(
            (0..rng.usize(0..5))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
    }
}

fn random_pointer(rng: &mut fastrand::Rng) -> String {
    (0..rng.usize(1..4))
        .map(|_| format!("/{}", SEGMENTS[rng.usize(0..SEGMENTS.len())]))
        .collect()
}

fn unescape(segment: &str) -> String {
    segment.replace("~1", "/").replace("~0", "~")
}

/// The reference: what redaction means, on a parsed tree. `None`: removed.
fn reference(
    value: &Value,
    pointers: &[Vec<String>],
    depth: usize,
    mask: Option<&str>,
) -> Option<Value> {
    if pointers.iter().any(|p| p.len() == depth) {
        return mask.map(|mask| Value::String(mask.to_string()));
    }
    let follow = |matches: &dyn Fn(&str) -> bool| -> Vec<Vec<String>> {
        pointers
            .iter()
            .filter(|p| p.get(depth).is_some_and(|s| s == "*" || matches(s)))
            .cloned()
            .collect()
    };
    Some(match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter_map(|(key, child)| {
                    let next = follow(&|s| unescape(s) == *key);
                    let child = if next.is_empty() {
                        Some(child.clone())
                    } else {
                        reference(child, &next, depth + 1, mask)
                    };
                    child.map(|child| (key.clone(), child))
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .filter_map(|(at, child)| {
                    let next = follow(&|s| s == at.to_string());
                    if next.is_empty() {
                        Some(child.clone())
                    } else {
                        reference(child, &next, depth + 1, mask)
                    }
                })
                .collect(),
        ),
        other => other.clone(),
    })
}

#[test]
fn random_documents_and_pointers_redact_exactly_what_the_reference_does() {
    let mut rng = fastrand::Rng::with_seed(0x6a73_6f6e);
    let started = Instant::now();
    let mut cases = 0;
    while cases < 20_000 && started.elapsed() < Duration::from_secs(3) {
        cases += 1;
        let doc = random_value(&mut rng, 0);
        let texts: Vec<String> = (0..rng.usize(1..4))
            .map(|_| random_pointer(&mut rng))
            .collect();
        let pointers: Vec<Pointer> = texts.iter().map(|t| Pointer::parse(t).unwrap()).collect();
        let segments: Vec<Vec<String>> = texts
            .iter()
            .map(|t| t[1..].split('/').map(str::to_string).collect())
            .collect();
        let mask = ["***", "\"quoted\" \\"][rng.usize(0..2)];
        let remove = rng.bool();
        let redaction = if remove {
            Redaction::remove(pointers)
        } else {
            Redaction::mask(pointers, mask)
        };
        let compact = serde_json::to_string(&doc).unwrap();
        // Pretty-printed, and with an escaped member name: the same document.
        let text = match rng.usize(0..3) {
            0 => compact.clone(),
            1 => serde_json::to_string_pretty(&doc).unwrap(),
            _ => compact.replace("\"ssn\":", "\"\\u0073sn\":"),
        };
        // The reference reads the text as the checker does (serde_json's float parsing is not
        // exact without float_roundtrip).
        let parsed: Value = serde_json::from_str(&text).unwrap();
        let mask_or_remove = (!remove).then_some(mask);
        let expected = reference(&parsed, &segments, 0, mask_or_remove).unwrap();
        let got = match redaction.apply(text.as_bytes()) {
            Outcome::Redacted(out, count) => {
                assert!(count > 0);
                let out = String::from_utf8(out).unwrap();
                if text == compact && !compact.contains('.') {
                    // Byte for byte: nothing outside the redacted values moved.
                    assert_eq!(
                        out,
                        serde_json::to_string(&expected).unwrap(),
                        "{text} {texts:?}"
                    );
                }
                serde_json::from_str::<Value>(&out).unwrap_or_else(|e| {
                    panic!("{text} {texts:?} remove={remove}: invalid {out}: {e}")
                })
            }
            Outcome::Unchanged => parsed.clone(),
            Outcome::Invalid => panic!("{text} is valid JSON"),
        };
        assert_eq!(got, expected, "{text} {texts:?} remove={remove}");
    }
    assert!(cases >= 1000, "only {cases} cases in the time budget");
}

#[test]
fn random_bytes_never_trap_and_what_comes_out_is_json() {
    let mut rng = fastrand::Rng::with_seed(7);
    let pointers = ["/a", "/*/b", "/*/*/*"]
        .iter()
        .map(|p| Pointer::parse(p).unwrap())
        .collect();
    let redaction = Redaction::remove(pointers);
    let alphabet = b"{}[]\":,ab01 \\u-e.tnf\xff";
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(500) {
        let body: Vec<u8> = (0..rng.usize(0..40))
            .map(|_| alphabet[rng.usize(0..alphabet.len())])
            .collect();
        if let Outcome::Redacted(out, _) = redaction.apply(&body) {
            serde_json::from_slice::<serde::de::IgnoredAny>(&out).unwrap();
        }
    }
    // Deep nesting: the walk recurses only as deep as a pointer reaches; /*/*/* removes the
    // fourth level whole.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(
        redaction.apply(deep.as_bytes()),
        Outcome::Redacted(b"[[[]]]".to_vec(), 1)
    );
}
