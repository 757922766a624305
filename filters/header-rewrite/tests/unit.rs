//! header-rewrite's per-request logic on the fake host: what the upstream (the request maps) and
//! the client (the response maps) end up with.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use header_rewrite::filter::HeaderRewriteRoot;
use sdk_ext::config::ConfigError;
use sdk_ext::dispatch::Module;
use sdk_ext::fake::FakeModule;
use sdk_ext::filter::Factory;
use sdk_ext::headers::{Headers, MapType};
use sdk_ext::{Action, HttpCx, HttpFilter, RootCx, RootFilter};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::rc::Rc;

const REQ: MapType = MapType::HttpRequestHeaders;
const REQ_TRAILERS: MapType = MapType::HttpRequestTrailers;
const RESP: MapType = MapType::HttpResponseHeaders;
const RESP_TRAILERS: MapType = MapType::HttpResponseTrailers;

fn start(config: Value) -> FakeModule {
    FakeModule::standalone::<HeaderRewriteRoot>(config.to_string().as_bytes())
        .unwrap_or_else(|error| panic!("{config} should be accepted: {error}"))
}

fn refused(config: &[u8]) -> ConfigError {
    match FakeModule::standalone::<HeaderRewriteRoot>(config) {
        Ok(_) => panic!("{} should be refused", String::from_utf8_lossy(config)),
        Err(error) => error,
    }
}

fn append(key: &str, value: &str, action: &str) -> Value {
    json!({"append": {"header": {"key": key, "value": value}, "append_action": action}})
}

/// Every value of `name` in map `map` of stream `stream`, in order.
fn values(module: &FakeModule, stream: u32, map: MapType, name: &str) -> Vec<Vec<u8>> {
    module
        .host()
        .headers(stream, map)
        .into_iter()
        .filter(|(key, _)| key == name.as_bytes())
        .map(|(_, value)| value)
        .collect()
}

/// Every value of `name`, as text.
fn texts(module: &FakeModule, stream: u32, map: MapType, name: &str) -> Vec<String> {
    values(module, stream, map, name)
        .into_iter()
        .map(|value| String::from_utf8(value).unwrap())
        .collect()
}

/// Every entry of a map, as text.
fn entries(module: &FakeModule, stream: u32, map: MapType) -> Vec<(String, String)> {
    module
        .host()
        .headers(stream, map)
        .into_iter()
        .map(|(name, value)| {
            (
                String::from_utf8(name).unwrap(),
                String::from_utf8(value).unwrap(),
            )
        })
        .collect()
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

const REQUEST: &[(&str, &str)] = &[
    (":method", "GET"),
    (":path", "/api/items"),
    (":authority", "example.com"),
    ("x-user", "alice"),
    ("x-existing", "old"),
];

#[test]
fn append_actions_on_present_and_absent_request_headers() {
    let mut module = start(json!({"mutations": {"request_mutations": [
        append("x-append", "new", "APPEND_IF_EXISTS_OR_ADD"),
        append("x-append-absent", "new", "APPEND_IF_EXISTS_OR_ADD"),
        append("x-add", "new", "ADD_IF_ABSENT"),
        append("x-add-absent", "new", "ADD_IF_ABSENT"),
        append("x-overwrite", "new", "OVERWRITE_IF_EXISTS_OR_ADD"),
        append("x-overwrite-absent", "new", "OVERWRITE_IF_EXISTS_OR_ADD"),
        append("x-only-if", "new", "OVERWRITE_IF_EXISTS"),
        append("x-only-if-absent", "new", "OVERWRITE_IF_EXISTS"),
        {"append": {"header": {"key": "X-Default", "value": "new"}}},
        {"append": {"header": {"key": "x-legacy", "value": "new"}, "append": false}}
    ]}}));
    let stream = module.stream();
    let action = module.request_headers(
        stream,
        &[
            (":path", "/"),
            ("x-append", "old"),
            ("x-add", "old"),
            ("x-overwrite", "old1"),
            ("x-overwrite", "old2"),
            ("x-only-if", "old1"),
            ("x-only-if", "old2"),
            ("x-default", "old"),
            ("x-legacy", "old"),
        ],
        true,
    );
    assert_eq!(action, Action::Continue);
    let upstream = |name| texts(&module, stream, REQ, name);
    assert_eq!(upstream("x-append"), ["old", "new"]);
    assert_eq!(upstream("x-append-absent"), ["new"]);
    assert_eq!(upstream("x-add"), ["old"]);
    assert_eq!(upstream("x-add-absent"), ["new"]);
    assert_eq!(upstream("x-overwrite"), ["new"]);
    assert_eq!(upstream("x-overwrite-absent"), ["new"]);
    assert_eq!(upstream("x-only-if"), ["new"]);
    assert!(upstream("x-only-if-absent").is_empty());
    // No action is APPEND_IF_EXISTS_OR_ADD; the name is sent lower-case.
    assert_eq!(upstream("x-default"), ["old", "new"]);
    assert!(upstream("X-Default").is_empty());
    // The deprecated `append: false` overwrites.
    assert_eq!(upstream("x-legacy"), ["new"]);
    assert_eq!(upstream(":path"), ["/"]);
}

#[test]
fn remove_drops_every_entry_and_nothing_else() {
    let mut module = start(json!({"mutations": {"request_mutations": [
        {"remove": "X-Internal"},
        {"remove": "x-absent"}
    ]}}));
    let stream = module.stream();
    module.request_headers(
        stream,
        &[
            (":path", "/"),
            ("x-internal", "1"),
            ("x-keep", "k"),
            ("x-internal", "2"),
        ],
        true,
    );
    assert_eq!(
        entries(&module, stream, REQ),
        owned(&[(":path", "/"), ("x-keep", "k")])
    );
}

#[test]
fn empty_values_are_dropped_unless_kept() {
    let mut module = start(json!({"mutations": {"request_mutations": [
        {"append": {"header": {"key": "x-empty-literal", "value": ""}}},
        {"append": {"header": {"key": "x-empty-rendered", "value": "%REQ(x-nothing)%"}}},
        {"append": {"header": {"key": "x-kept-literal", "value": ""}, "keep_empty_value": true}},
        {"append": {"header": {"key": "x-kept-rendered", "value": "%REQ(x-nothing)%"}, "keep_empty_value": true}},
        // A dropped empty value leaves an existing header alone, even with an overwrite action.
        {"append": {"header": {"key": "x-existing", "value": "%REQ(x-nothing)%"}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}},
        {"append": {"header": {"key": "x-cleared", "value": ""}, "append_action": "OVERWRITE_IF_EXISTS", "keep_empty_value": true}}
    ]}}));
    let stream = module.stream();
    module.request_headers(
        stream,
        &[(":path", "/"), ("x-existing", "old"), ("x-cleared", "old")],
        true,
    );
    let upstream = |name| texts(&module, stream, REQ, name);
    assert!(upstream("x-empty-literal").is_empty());
    assert!(upstream("x-empty-rendered").is_empty());
    assert_eq!(upstream("x-kept-literal"), [""]);
    assert_eq!(upstream("x-kept-rendered"), [""]);
    assert_eq!(upstream("x-existing"), ["old"]);
    assert_eq!(upstream("x-cleared"), [""]);
}

#[test]
fn later_mutations_see_earlier_ones() {
    let mut module = start(json!({"mutations": {"request_mutations": [
        append("x-step", "one", "APPEND_IF_EXISTS_OR_ADD"),
        append("x-copy", "%REQ(x-step)%-two", "APPEND_IF_EXISTS_OR_ADD"),
        {"remove": "x-step"},
        append("x-gone", "%REQ(x-step)%", "APPEND_IF_EXISTS_OR_ADD")
    ]}}));
    let stream = module.stream();
    module.request_headers(stream, REQUEST, true);
    assert_eq!(texts(&module, stream, REQ, "x-copy"), ["one-two"]);
    assert!(texts(&module, stream, REQ, "x-step").is_empty());
    assert!(texts(&module, stream, REQ, "x-gone").is_empty());
}

#[test]
fn each_list_mutates_only_its_own_map() {
    let mut module = start(json!({"mutations": {
        "request_mutations": [append("x-from", "request", "APPEND_IF_EXISTS_OR_ADD"), {"remove": "x-drop"}],
        "response_mutations": [append("x-from", "response", "APPEND_IF_EXISTS_OR_ADD"), {"remove": "x-drop"}],
        "request_trailers_mutations": [append("x-from", "request-trailers", "APPEND_IF_EXISTS_OR_ADD"), {"remove": "x-drop"}],
        "response_trailers_mutations": [append("x-from", "response-trailers", "APPEND_IF_EXISTS_OR_ADD"), {"remove": "x-drop"}]
    }}));
    let stream = module.stream();
    assert_eq!(
        module.request_headers(stream, &[(":path", "/"), ("x-drop", "1")], false),
        Action::Continue
    );
    assert_eq!(
        module.request_body(stream, b"body", false),
        Action::Continue
    );
    assert_eq!(
        module.request_trailers(stream, &[("x-sum", "abc"), ("x-drop", "1")]),
        Action::Continue
    );
    assert_eq!(
        module.response_headers(stream, &[(":status", "200"), ("x-drop", "1")], false),
        Action::Continue
    );
    assert_eq!(
        module.response_trailers(stream, &[("grpc-status", "0"), ("x-drop", "1")]),
        Action::Continue
    );
    assert_eq!(
        entries(&module, stream, REQ),
        owned(&[(":path", "/"), ("x-from", "request")])
    );
    assert_eq!(
        entries(&module, stream, REQ_TRAILERS),
        owned(&[("x-sum", "abc"), ("x-from", "request-trailers")])
    );
    assert_eq!(
        entries(&module, stream, RESP),
        owned(&[(":status", "200"), ("x-from", "response")])
    );
    assert_eq!(
        entries(&module, stream, RESP_TRAILERS),
        owned(&[("grpc-status", "0"), ("x-from", "response-trailers")])
    );
    module.end(stream);
}

#[test]
fn response_mutations_reach_the_client() {
    let mut module = start(json!({"mutations": {"response_mutations": [
        append("x-served-by", "wasm", "OVERWRITE_IF_EXISTS_OR_ADD"),
        append("x-cache", "miss", "ADD_IF_ABSENT"),
        append("x-hops", "wasm", "APPEND_IF_EXISTS_OR_ADD"),
        append("x-debug", "on", "OVERWRITE_IF_EXISTS"),
        {"remove": "server"}
    ]}}));
    let stream = module.stream();
    module.request_headers(stream, REQUEST, true);
    assert!(texts(&module, stream, REQ, "x-served-by").is_empty());
    module.response_headers(
        stream,
        &[
            (":status", "200"),
            ("server", "upstream"),
            ("x-served-by", "other"),
            ("x-cache", "hit"),
            ("x-hops", "edge"),
        ],
        true,
    );
    assert_eq!(
        entries(&module, stream, RESP),
        owned(&[
            (":status", "200"),
            ("x-served-by", "wasm"),
            ("x-cache", "hit"),
            ("x-hops", "edge"),
            ("x-hops", "wasm"),
        ])
    );
}

#[test]
fn pseudo_headers_can_be_set() {
    let mut module = start(json!({"mutations": {"request_mutations": [
        append(":path", "/rewritten%REQ(:path)%", "OVERWRITE_IF_EXISTS_OR_ADD"),
        append(":authority", "internal.svc", "OVERWRITE_IF_EXISTS_OR_ADD")
    ]}}));
    let stream = module.stream();
    module.request_headers(stream, REQUEST, true);
    assert_eq!(
        texts(&module, stream, REQ, ":path"),
        ["/rewritten/api/items"]
    );
    assert_eq!(texts(&module, stream, REQ, ":authority"), ["internal.svc"]);
}

#[test]
fn pseudo_header_values_rendered_from_the_request_are_checked_and_counted() {
    let mut module = start(json!({"mutations": {
        "request_mutations": [
            append(":method", "%REQ(x-method)%", "OVERWRITE_IF_EXISTS_OR_ADD"),
            append(":path", "%REQ(x-path)%", "OVERWRITE_IF_EXISTS_OR_ADD"),
            append(":authority", "%REQ(x-host)%", "OVERWRITE_IF_EXISTS_OR_ADD")
        ],
        "response_mutations": [
            append(":status", "%REQ(x-status)%", "OVERWRITE_IF_EXISTS_OR_ADD")
        ]
    }}));
    let counted =
        |module: &FakeModule| module.host().metric("header_rewrite.invalid_pseudo_header");
    assert_eq!(counted(&module), Some(0));
    let hostile = module.stream();
    let request = [
        (":method", "GET"),
        (":path", "/api/items"),
        (":authority", "example.com"),
        ("x-method", "GET /evil"),
        ("x-path", "evil"),
        ("x-host", "attacker@example.com"),
        ("x-status", "999"),
    ];
    module.request_headers(hostile, &request, true);
    module.response_headers(hostile, &[(":status", "200")], true);
    assert_eq!(texts(&module, hostile, REQ, ":method"), ["GET"]);
    assert_eq!(texts(&module, hostile, REQ, ":path"), ["/api/items"]);
    assert_eq!(texts(&module, hostile, REQ, ":authority"), ["example.com"]);
    assert_eq!(texts(&module, hostile, RESP, ":status"), ["200"]);
    assert_eq!(counted(&module), Some(4));
    for status in ["0", "20", "2000", "600"] {
        let stream = module.stream();
        let request = [(":path", "/"), ("x-status", status)];
        module.request_headers(stream, &request, true);
        module.response_headers(stream, &[(":status", "200")], true);
        assert_eq!(texts(&module, stream, RESP, ":status"), ["200"], "{status}");
    }
    assert_eq!(counted(&module), Some(8));
    // Valid values still go through.
    let fine = module.stream();
    let request = [
        (":method", "GET"),
        (":path", "/"),
        ("x-method", "PURGE"),
        ("x-path", "/ok?a=1"),
        ("x-host", "internal.svc:8080"),
        ("x-status", "418"),
    ];
    module.request_headers(fine, &request, true);
    module.response_headers(fine, &[(":status", "200")], true);
    assert_eq!(texts(&module, fine, REQ, ":method"), ["PURGE"]);
    assert_eq!(texts(&module, fine, REQ, ":path"), ["/ok?a=1"]);
    assert_eq!(
        texts(&module, fine, REQ, ":authority"),
        ["internal.svc:8080"]
    );
    assert_eq!(texts(&module, fine, RESP, ":status"), ["418"]);
    assert_eq!(counted(&module), Some(8));
}

#[test]
fn request_templates_read_headers_and_properties() {
    let mut module = start(json!({"mutations": {"request_mutations": [
        append("x-greeting", "hello %REQ(X-User)% from %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%", "APPEND_IF_EXISTS_OR_ADD"),
        append("x-remote", "%DOWNSTREAM_REMOTE_ADDRESS%", "APPEND_IF_EXISTS_OR_ADD"),
        append("x-local", "%DOWNSTREAM_LOCAL_ADDRESS%|%DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT%", "APPEND_IF_EXISTS_OR_ADD"),
        append("x-fallback", "%REQ(x-missing?:path)%", "APPEND_IF_EXISTS_OR_ADD"),
        append("x-short", "%REQ(x-user):3%|%PROTOCOL:4%", "APPEND_IF_EXISTS_OR_ADD"),
        append("x-resp-at-request", "[%RESP(server)%]", "APPEND_IF_EXISTS_OR_ADD"),
        append("x-literal", "100%%", "APPEND_IF_EXISTS_OR_ADD"),
        append("x-proto", "%PROTOCOL%", "APPEND_IF_EXISTS_OR_ADD")
    ]}}));
    module
        .host()
        .set_property(&["source", "address"], b"10.1.2.3:4444");
    module
        .host()
        .set_property(&["destination", "address"], b"[::1]:10000");
    module
        .host()
        .set_property(&["request", "protocol"], b"HTTP/2");
    let stream = module.stream();
    module.request_headers(stream, REQUEST, true);
    let upstream = |name| texts(&module, stream, REQ, name);
    assert_eq!(upstream("x-greeting"), ["hello alice from 10.1.2.3"]);
    assert_eq!(upstream("x-remote"), ["10.1.2.3:4444"]);
    assert_eq!(upstream("x-local"), ["[::1]:10000|::1"]);
    assert_eq!(upstream("x-fallback"), ["/api/items"]);
    assert_eq!(upstream("x-short"), ["ali|HTTP"]);
    assert_eq!(upstream("x-resp-at-request"), ["[]"]);
    assert_eq!(upstream("x-literal"), ["100%"]);
    assert_eq!(upstream("x-proto"), ["HTTP/2"]);
}

#[test]
fn missing_properties_render_empty() {
    let mut module = start(json!({"mutations": {"request_mutations": [
        append("x-client", "<%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%>", "APPEND_IF_EXISTS_OR_ADD"),
        append("x-proto", "%PROTOCOL%", "APPEND_IF_EXISTS_OR_ADD")
    ]}}));
    let stream = module.stream();
    module.request_headers(stream, REQUEST, true);
    assert_eq!(texts(&module, stream, REQ, "x-client"), ["<>"]);
    assert!(texts(&module, stream, REQ, "x-proto").is_empty());
}

#[test]
fn response_templates_read_response_headers_captured_request_headers_and_properties() {
    let mut module = start(json!({"mutations": {
        "request_mutations": [append("x-user", "%REQ(x-user)%-checked", "OVERWRITE_IF_EXISTS_OR_ADD")],
        "response_mutations": [
            append("x-echo-path", "%REQ(:path)%", "APPEND_IF_EXISTS_OR_ADD"),
            append("x-echo-user", "%REQ(x-user)%", "APPEND_IF_EXISTS_OR_ADD"),
            append("x-echo-alt", "%REQ(x-missing?x-existing)%", "APPEND_IF_EXISTS_OR_ADD"),
            append("x-echo-absent", "%REQ(x-never)%", "APPEND_IF_EXISTS_OR_ADD"),
            append("x-echo-server", "%RESP(server)%!", "APPEND_IF_EXISTS_OR_ADD"),
            append("x-echo-client", "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%", "APPEND_IF_EXISTS_OR_ADD")
        ],
        "response_trailers_mutations": [
            append("x-trailer-server", "%RESP(server)%/%REQ(:authority)%", "APPEND_IF_EXISTS_OR_ADD")
        ]
    }}));
    module
        .host()
        .set_property(&["source", "address"], b"[2001:db8::7]:443");
    let stream = module.stream();
    module.request_headers(stream, REQUEST, false);
    assert_eq!(texts(&module, stream, REQ, "x-user"), ["alice-checked"]);
    module.response_headers(stream, &[(":status", "200"), ("server", "echo")], false);
    module.response_trailers(stream, &[("grpc-status", "0")]);
    let client = |name| texts(&module, stream, RESP, name);
    assert_eq!(client("x-echo-path"), ["/api/items"]);
    // Captured after this filter's own request mutations.
    assert_eq!(client("x-echo-user"), ["alice-checked"]);
    assert_eq!(client("x-echo-alt"), ["old"]);
    assert!(client("x-echo-absent").is_empty());
    assert_eq!(client("x-echo-server"), ["echo!"]);
    assert_eq!(client("x-echo-client"), ["2001:db8::7"]);
    assert_eq!(
        texts(&module, stream, RESP_TRAILERS, "x-trailer-server"),
        ["echo/example.com"]
    );
}

#[test]
fn captured_request_headers_belong_to_their_stream() {
    let mut module = start(json!({"mutations": {"response_mutations": [
        append("x-request-user", "%REQ(x-user)%", "APPEND_IF_EXISTS_OR_ADD")
    ]}}));
    let first = module.stream();
    let second = module.stream();
    module.request_headers(first, &[(":path", "/"), ("x-user", "alice")], true);
    module.request_headers(second, &[(":path", "/"), ("x-user", "bob")], true);
    module.response_headers(second, &[(":status", "200")], true);
    module.response_headers(first, &[(":status", "200")], true);
    assert_eq!(texts(&module, first, RESP, "x-request-user"), ["alice"]);
    assert_eq!(texts(&module, second, RESP, "x-request-user"), ["bob"]);
}

/// A test filter that sets request or response headers to raw bytes: it gives header-rewrite
/// non-UTF-8 values, and changes request headers after header-rewrite has seen them.
/// Config: `{"request": [["name", [bytes]]], "response": [...]}`.
struct RawSet {
    request: Vec<(String, Vec<u8>)>,
    response: Vec<(String, Vec<u8>)>,
}

struct RawSetHttp(Rc<RawSet>);

impl RootFilter for RawSet {
    const NAME: &'static str = "raw_set";
    type Http = RawSetHttp;

    fn configure(_cx: &mut RootCx<'_>, config: &[u8]) -> Result<Self, ConfigError> {
        let mut lists: HashMap<String, Vec<(String, Vec<u8>)>> = serde_json::from_slice(config)
            .map_err(|error| ConfigError::new("", error.to_string()))?;
        Ok(RawSet {
            request: lists.remove("request").unwrap_or_default(),
            response: lists.remove("response").unwrap_or_default(),
        })
    }

    fn create_http(root: &Rc<Self>) -> RawSetHttp {
        RawSetHttp(root.clone())
    }
}

fn set_all(headers: Headers<'_>, values: &[(String, Vec<u8>)]) {
    for (name, value) in values {
        headers.set(name, value).unwrap();
    }
}

impl HttpFilter for RawSetHttp {
    fn on_request_headers(&mut self, cx: &mut HttpCx<'_>, _end_of_stream: bool) -> Action {
        set_all(cx.request_headers(), &self.0.request);
        Action::Continue
    }

    fn on_response_headers(&mut self, cx: &mut HttpCx<'_>, _end_of_stream: bool) -> Action {
        set_all(cx.response_headers(), &self.0.response);
        Action::Continue
    }
}

static CHAIN: &[Factory] = &[Factory::of::<RawSet>(), Factory::of::<HeaderRewriteRoot>()];

/// A chain of `before` (raw headers set ahead of header-rewrite on both paths: request hooks
/// run in chain order, response hooks in reverse), header-rewrite with `config`, and `after`.
fn chain(before: Value, config: Value, after: Value) -> FakeModule {
    let module = FakeModule::new(
        Module::Chain(CHAIN),
        json!({"filters": [
            {"name": "raw-set", "config": before},
            {"name": "header-rewrite", "config": config},
            {"name": "raw-set", "config": after}
        ]})
        .to_string()
        .as_bytes(),
    );
    assert!(module.configured());
    module
}

#[test]
fn response_templates_read_request_headers_as_this_filter_saw_them() {
    let mut module = chain(
        json!({}),
        json!({"mutations": {"response_mutations": [
            append("x-request-user", "%REQ(x-user)%", "APPEND_IF_EXISTS_OR_ADD")
        ]}}),
        // A later filter changes x-user after header-rewrite captured it.
        json!({"request": [["x-user", b"mallory"]]}),
    );
    let stream = module.stream();
    module.request_headers(stream, REQUEST, true);
    assert_eq!(texts(&module, stream, REQ, "x-user"), ["mallory"]);
    module.response_headers(stream, &[(":status", "200")], true);
    assert_eq!(texts(&module, stream, RESP, "x-request-user"), ["alice"]);
}

#[test]
fn non_utf8_values_are_copied_byte_for_byte() {
    let raw: &[u8] = &[0xff, 0xfe, b'a', 0x80];
    let mut module = chain(
        json!({"request": [["x-bin", raw]]}),
        json!({"mutations": {
            "request_mutations": [
                append("x-copy", "<%REQ(x-bin)%>", "APPEND_IF_EXISTS_OR_ADD"),
                append("x-cut", "%REQ(x-bin):2%", "APPEND_IF_EXISTS_OR_ADD"),
                append("x-bin", "tail", "APPEND_IF_EXISTS_OR_ADD"),
                append("x-client", "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%", "APPEND_IF_EXISTS_OR_ADD")
            ],
            "response_mutations": [
                append("x-resp-copy", "%RESP(x-resp-bin)%", "APPEND_IF_EXISTS_OR_ADD"),
                append("x-req-copy", "%REQ(x-bin)%", "APPEND_IF_EXISTS_OR_ADD")
            ]
        }}),
        json!({"response": [["x-resp-bin", [0xc3, 0x28]]]}),
    );
    module
        .host()
        .set_property(&["source", "address"], &[0xfa, b':', b'1']);
    let stream = module.stream();
    module.request_headers(stream, &[(":path", "/")], true);
    assert_eq!(
        values(&module, stream, REQ, "x-copy"),
        [[b"<".as_slice(), raw, b">"].concat()]
    );
    assert_eq!(values(&module, stream, REQ, "x-cut"), [vec![0xff, 0xfe]]);
    assert_eq!(
        values(&module, stream, REQ, "x-bin"),
        [raw.to_vec(), b"tail".to_vec()]
    );
    assert_eq!(values(&module, stream, REQ, "x-client"), [vec![0xfa]]);
    module.response_headers(stream, &[(":status", "200")], true);
    assert_eq!(
        values(&module, stream, RESP, "x-resp-copy"),
        [vec![0xc3, 0x28]]
    );
    // Captured: the first value, as it was when the request headers were done.
    assert_eq!(values(&module, stream, RESP, "x-req-copy"), [raw.to_vec()]);
}

#[test]
fn an_empty_config_changes_nothing() {
    for config in [&b""[..], b"{}", b"{\"mutations\": {}}"] {
        let mut module = FakeModule::standalone::<HeaderRewriteRoot>(config).unwrap();
        let stream = module.stream();
        assert_eq!(
            module.request_headers(stream, REQUEST, false),
            Action::Continue
        );
        assert_eq!(
            module.request_trailers(stream, &[("x-t", "1")]),
            Action::Continue
        );
        assert_eq!(
            module.response_headers(stream, &[(":status", "204")], false),
            Action::Continue
        );
        assert_eq!(
            module.response_trailers(stream, &[("x-t", "2")]),
            Action::Continue
        );
        assert_eq!(entries(&module, stream, REQ), owned(REQUEST));
        assert_eq!(
            entries(&module, stream, REQ_TRAILERS),
            owned(&[("x-t", "1")])
        );
        assert_eq!(entries(&module, stream, RESP), owned(&[(":status", "204")]));
        assert_eq!(
            entries(&module, stream, RESP_TRAILERS),
            owned(&[("x-t", "2")])
        );
        assert!(module.host().local_reply(stream).is_none());
    }
}

#[test]
fn refused_configs_name_the_field() {
    let cases = [
        (
            json!({"mutations": {"request_mutations": [{"append": {"header": {"key": "x"}, "apend_action": "ADD_IF_ABSENT"}}]}}),
            "mutations.request_mutations[0].append.apend_action",
            "unknown field `apend_action`",
        ),
        (
            json!({"mutations": {"response_mutations": [{"append": {"header": {"key": "x", "value": "v"}, "append_action": "SOMETIMES"}}]}}),
            "mutations.response_mutations[0].append.append_action",
            "invalid value",
        ),
        (
            json!({"mutations": {"request_mutations": [{"remove": "a"}, {"append": {"header": {"key": "", "value": "v"}}}]}}),
            "mutations.request_mutations[1].append.header.key",
            "must not be empty",
        ),
        (
            json!({"mutations": {"response_trailers_mutations": [{"remove": ":authority"}]}}),
            "mutations.response_trailers_mutations[0].remove",
            "cannot be removed",
        ),
        (
            json!({"mutations": {"request_trailers_mutations": [{"append": {"header": {"key": "x", "value": "a %START_TIME%"}}}]}}),
            "mutations.request_trailers_mutations[0].append.header.value",
            "unsupported command %START_TIME% (in \"a %START_TIME%\" at byte 2)",
        ),
        (
            json!({"mutations": {"query_parameter_mutations": []}}),
            "mutations.query_parameter_mutations",
            "not supported",
        ),
    ];
    for (config, path, reason) in cases {
        let error = refused(config.to_string().as_bytes());
        assert_eq!(error.path, path, "{config}: {error}");
        assert!(error.reason.contains(reason), "{config}: {error}");
    }
    assert!(refused(&[0xff, b'{', 0x00])
        .reason
        .contains("must be a JSON object"));
    assert!(refused(b"{\"mutations\": {}, \xff}")
        .reason
        .contains("key must be a string"));
}
