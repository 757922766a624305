//! cors's per-request logic on sdk-ext's fake host: natively, in microseconds, no wasm. The
//! expected headers are what native Envoy 1.40 sends (checked side by side in
//! envoy/tests/e2e/cors.rs), plus `vary: origin`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use cors::filter::CorsRoot;
use sdk_ext::fake::FakeModule;
use sdk_ext::headers::MapType;
use sdk_ext::Action;
use serde_json::{json, Value};

const A: &str = "https://a.example";

fn start(config: Value) -> FakeModule {
    FakeModule::standalone::<CorsRoot>(config.to_string().as_bytes())
        .unwrap_or_else(|error| panic!("{config} should be accepted: {error}"))
}

/// The full policy of the main examples, on every path.
fn full_policy() -> Value {
    json!({
        "allow_origin_string_match": [{"exact": A}, {"prefix": "https://p."}],
        "allow_methods": "GET, POST",
        "allow_headers": "x-a",
        "expose_headers": "x-e",
        "max_age": "600",
        "allow_credentials": true,
        "allow_private_network_access": true
    })
}

fn one(policy: Value) -> FakeModule {
    start(json!({"policies": [policy]}))
}

fn text(pairs: &[(Vec<u8>, Vec<u8>)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(name, value)| {
            (
                String::from_utf8_lossy(name).into_owned(),
                String::from_utf8_lossy(value).into_owned(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

/// Sends request `headers` (`:method` and `:path` first); returns the stream and the action.
fn request(module: &mut FakeModule, headers: &[(&str, &[u8])]) -> (u32, Action) {
    let stream = module.stream();
    let action = module.request_headers(stream, headers, true);
    (stream, action)
}

fn preflight(module: &mut FakeModule, path: &str, origin: &str, extra: &[(&str, &str)]) -> u32 {
    let mut headers: Vec<(&str, &[u8])> = vec![
        (":method", b"OPTIONS"),
        (":path", path.as_bytes()),
        ("origin", origin.as_bytes()),
        ("access-control-request-method", b"PUT"),
    ];
    headers.extend(extra.iter().map(|(name, value)| (*name, value.as_bytes())));
    request(module, &headers).0
}

/// The CORS-related response headers after the upstream answers `upstream` to a request that
/// the filter let through.
fn response_after(
    module: &mut FakeModule,
    stream: u32,
    upstream: &[(&str, &str)],
) -> Vec<(String, String)> {
    assert_eq!(module.host().local_reply(stream), None);
    let mut response = vec![(":status", "200")];
    response.extend_from_slice(upstream);
    assert_eq!(
        module.response_headers(stream, &response, true),
        Action::Continue
    );
    text(&module.host().headers(stream, MapType::HttpResponseHeaders))
        .into_iter()
        .filter(|(name, _)| name.starts_with("access-control-") || name == "vary")
        .collect()
}

fn get(module: &mut FakeModule, path: &str, origin: Option<&[u8]>) -> u32 {
    let mut headers: Vec<(&str, &[u8])> = vec![(":method", b"GET"), (":path", path.as_bytes())];
    if let Some(origin) = origin {
        headers.push(("origin", origin));
    }
    let (stream, action) = request(module, &headers);
    assert_eq!(action, Action::Continue);
    stream
}

fn metric(module: &FakeModule, name: &str) -> i64 {
    module.host().metric(&format!("cors.{name}")).unwrap()
}

#[test]
fn a_preflight_from_an_allowed_origin_gets_natives_answer() {
    let mut module = one(full_policy());
    let stream = preflight(
        &mut module,
        "/x",
        A,
        &[
            ("access-control-request-headers", "x-b"),
            ("access-control-request-private-network", "true"),
        ],
    );
    let reply = module.host().local_reply(stream).expect("a local answer");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.details, "cors_response");
    assert!(reply.body.is_empty());
    assert_eq!(
        text(&reply.headers),
        pairs(&[
            ("access-control-allow-origin", A),
            ("access-control-allow-credentials", "true"),
            ("access-control-allow-methods", "GET, POST"),
            ("access-control-allow-headers", "x-a"),
            ("access-control-max-age", "600"),
            ("access-control-allow-private-network", "true"),
            ("access-control-expose-headers", "x-e"),
            ("vary", "origin"),
        ])
    );
    assert_eq!(metric(&module, "origin_valid"), 1);
    assert_eq!(metric(&module, "preflight_answered"), 1);
    assert_eq!(metric(&module, "preflight_forwarded"), 0);
    assert_eq!(metric(&module, "origin_invalid"), 0);
}

#[test]
fn a_minimal_policy_answers_with_the_origin_only() {
    let mut module = one(json!({"allow_origin_string_match": [{"exact": A}]}));
    let stream = preflight(
        &mut module,
        "/",
        A,
        &[("access-control-request-private-network", "true")],
    );
    let reply = module.host().local_reply(stream).unwrap();
    assert_eq!(
        text(&reply.headers),
        pairs(&[("access-control-allow-origin", A), ("vary", "origin")])
    );
}

#[test]
fn wildcards_echo_what_the_preflight_asked_for() {
    let mut module = one(json!({
        "allow_origin_string_match": [{"exact": "*"}],
        "allow_methods": "*",
        "allow_headers": "*",
        "allow_credentials": true
    }));
    let stream = preflight(
        &mut module,
        "/",
        "https://any.example",
        &[
            ("access-control-request-headers", "x-1"),
            ("access-control-request-headers", ""),
            ("access-control-request-headers", "x-2"),
        ],
    );
    let reply = module.host().local_reply(stream).unwrap();
    assert_eq!(
        text(&reply.headers),
        pairs(&[
            // Never a literal `*`: with credentials the browser needs the origin itself.
            ("access-control-allow-origin", "https://any.example"),
            ("access-control-allow-credentials", "true"),
            ("access-control-allow-methods", "PUT"),
            // Repeated values joined with `,` as Envoy's inline headers join them.
            ("access-control-allow-headers", "x-1,x-2"),
            ("vary", "origin"),
        ])
    );
    // Without access-control-request-headers the echo is an empty header, as native sends it.
    let stream = preflight(&mut module, "/", "null", &[]);
    let reply = module.host().local_reply(stream).unwrap();
    assert_eq!(
        reply.header("access-control-allow-origin").as_deref(),
        Some("null")
    );
    assert_eq!(
        reply.header("access-control-allow-headers").as_deref(),
        Some("")
    );
}

#[test]
fn a_preflight_from_a_refused_origin_goes_upstream_by_default() {
    let mut module = one(full_policy());
    let stream = preflight(&mut module, "/x", "https://evil.example", &[]);
    assert_eq!(module.host().local_reply(stream), None);
    assert_eq!(
        response_after(
            &mut module,
            stream,
            &[("access-control-allow-origin", "https://up.example")]
        ),
        pairs(&[
            ("access-control-allow-origin", "https://up.example"),
            ("vary", "origin")
        ]),
        "the upstream's own headers are left alone"
    );
    assert_eq!(metric(&module, "origin_invalid"), 1);
    assert_eq!(metric(&module, "preflight_forwarded"), 1);
    assert_eq!(metric(&module, "preflight_answered"), 0);
}

#[test]
fn without_forwarding_a_refused_preflight_is_answered_without_the_origin() {
    let mut policy = full_policy();
    policy["forward_not_matching_preflights"] = json!(false);
    let mut module = one(policy);
    let stream = preflight(
        &mut module,
        "/x",
        "https://evil.example",
        &[("access-control-request-private-network", "true")],
    );
    let reply = module.host().local_reply(stream).expect("a local answer");
    assert_eq!(reply.status, 200);
    assert_eq!(
        text(&reply.headers),
        pairs(&[
            ("access-control-allow-credentials", "true"),
            ("access-control-allow-methods", "GET, POST"),
            ("access-control-allow-headers", "x-a"),
            ("access-control-max-age", "600"),
            ("access-control-allow-private-network", "true"),
            ("vary", "origin"),
        ])
    );
    assert_eq!(metric(&module, "preflight_answered"), 1);
    assert_eq!(metric(&module, "origin_invalid"), 1);
}

#[test]
fn an_actual_request_from_an_allowed_origin_gets_the_headers_replacing_the_upstreams() {
    let mut module = one(full_policy());
    let stream = get(&mut module, "/x", Some(A.as_bytes()));
    assert_eq!(
        response_after(
            &mut module,
            stream,
            &[
                ("access-control-allow-origin", "*"),
                ("access-control-allow-credentials", "false"),
                ("access-control-expose-headers", "x-up"),
                ("vary", "accept-encoding"),
            ]
        ),
        pairs(&[
            ("access-control-allow-origin", A),
            ("access-control-allow-credentials", "true"),
            ("access-control-expose-headers", "x-e"),
            ("vary", "accept-encoding"),
            ("vary", "origin"),
        ])
    );
    assert_eq!(metric(&module, "origin_valid"), 1);
}

#[test]
fn vary_is_added_once() {
    let mut module = one(full_policy());
    for upstream_vary in ["Origin", "accept-encoding, ORIGIN", "*"] {
        let stream = get(&mut module, "/x", Some(A.as_bytes()));
        let seen = response_after(&mut module, stream, &[("vary", upstream_vary)]);
        let varies: Vec<_> = seen.iter().filter(|(name, _)| name == "vary").collect();
        assert_eq!(varies.len(), 1, "{upstream_vary}: {seen:?}");
        assert_eq!(varies[0].1, upstream_vary);
    }
}

#[test]
fn without_credentials_nothing_says_credentials() {
    let mut module =
        one(json!({"allow_origin_string_match": [{"exact": A}], "allow_credentials": false}));
    let stream = preflight(&mut module, "/", A, &[]);
    let reply = module.host().local_reply(stream).unwrap();
    assert_eq!(reply.header("access-control-allow-credentials"), None);
    let stream = get(&mut module, "/", Some(A.as_bytes()));
    assert_eq!(
        response_after(&mut module, stream, &[]),
        pairs(&[("access-control-allow-origin", A), ("vary", "origin")])
    );
}

#[test]
fn requests_without_an_origin_get_only_vary_and_count_nothing() {
    let mut module = one(full_policy());
    for origin in [None, Some(&b""[..])] {
        let stream = get(&mut module, "/x", origin);
        assert_eq!(
            response_after(&mut module, stream, &[]),
            pairs(&[("vary", "origin")])
        );
    }
    // An OPTIONS with access-control-request-method but no origin is not a preflight.
    let (stream, action) = request(
        &mut module,
        &[
            (":method", b"OPTIONS"),
            (":path", b"/"),
            ("access-control-request-method", b"PUT"),
        ],
    );
    assert_eq!(action, Action::Continue);
    assert_eq!(module.host().local_reply(stream), None);
    assert_eq!(metric(&module, "origin_valid"), 0);
    assert_eq!(metric(&module, "origin_invalid"), 0);
}

#[test]
fn only_an_options_request_with_a_requested_method_is_a_preflight() {
    let mut module = one(full_policy());
    for headers in [
        // OPTIONS without access-control-request-method: an actual request.
        vec![
            (":method", &b"OPTIONS"[..]),
            (":path", b"/"),
            ("origin", A.as_bytes()),
        ],
        // An empty requested method does not count.
        vec![
            (":method", b"OPTIONS"),
            (":path", b"/"),
            ("origin", A.as_bytes()),
            ("access-control-request-method", b""),
        ],
        // Methods are case-sensitive: `options` is not OPTIONS.
        vec![
            (":method", b"options"),
            (":path", b"/"),
            ("origin", A.as_bytes()),
            ("access-control-request-method", b"PUT"),
        ],
        vec![
            (":method", b"POST"),
            (":path", b"/"),
            ("origin", A.as_bytes()),
            ("access-control-request-method", b"PUT"),
        ],
    ] {
        let (stream, action) = request(&mut module, &headers);
        assert_eq!(action, Action::Continue, "{headers:?}");
        assert_eq!(
            response_after(&mut module, stream, &[]),
            pairs(&[
                ("access-control-allow-origin", A),
                ("access-control-allow-credentials", "true"),
                ("access-control-expose-headers", "x-e"),
                ("vary", "origin"),
            ]),
            "{headers:?}"
        );
    }
    assert_eq!(metric(&module, "preflight_answered"), 0);
}

#[test]
fn a_request_no_policy_covers_is_left_alone() {
    let mut module = start(json!({"policies": [
        {"match": {"prefix": "/api"}, "allow_origin_string_match": [{"exact": A}]}
    ]}));
    let stream = preflight(&mut module, "/other", A, &[]);
    assert_eq!(module.host().local_reply(stream), None);
    assert_eq!(response_after(&mut module, stream, &[]), vec![]);
    assert_eq!(metric(&module, "origin_valid"), 0);
}

#[test]
fn the_first_matching_policy_wins() {
    let mut module = start(json!({"policies": [
        {"match": {"prefix": "/api", "headers": [{"name": "x-tenant", "present_match": true}]},
         "allow_origin_string_match": [{"exact": "https://tenant.example"}]},
        {"match": {"prefix": "/api"}, "allow_origin_string_match": [{"exact": A}],
         "max_age": "10"},
        {"allow_origin_string_match": [{"exact": "https://b.example"}], "max_age": "20"}
    ]}));
    let stream = preflight(&mut module, "/api/x", A, &[]);
    let reply = module.host().local_reply(stream).unwrap();
    assert_eq!(
        reply.header("access-control-max-age").as_deref(),
        Some("10")
    );
    // With x-tenant the first policy applies, and it does not allow A: forwarded.
    let stream = preflight(&mut module, "/api/x", A, &[("x-tenant", "t")]);
    assert_eq!(module.host().local_reply(stream), None);
    // B only on the last, catch-all policy.
    let stream = preflight(&mut module, "/api/x", "https://b.example", &[]);
    assert_eq!(module.host().local_reply(stream), None);
    let stream = preflight(&mut module, "/web", "https://b.example", &[]);
    let reply = module.host().local_reply(stream).unwrap();
    assert_eq!(
        reply.header("access-control-max-age").as_deref(),
        Some("20")
    );
}

#[test]
fn origin_matchers_follow_envoys_string_matcher() {
    let mut module = one(json!({"allow_origin_string_match": [
        {"exact": "https://Exact.example"},
        {"suffix": ".corp.example", "ignore_case": true},
        {"contains": "-dev-"},
        {"safe_regex": {"regex": "https://[a-z]+\\.regex\\.example"}}
    ]}));
    for (origin, allowed) in [
        ("https://Exact.example", true),
        ("https://exact.example", false),
        ("https://x.CORP.example", true),
        ("https://corp.example", false),
        ("http://a-dev-b", true),
        ("https://abc.regex.example", true),
        ("https://abc.regex.example.evil", false),
        ("https://ABC.regex.example", false),
        ("null", false),
    ] {
        let stream = get(&mut module, "/", Some(origin.as_bytes()));
        let seen = response_after(&mut module, stream, &[]);
        let echoed = seen
            .iter()
            .find(|(name, _)| name == "access-control-allow-origin");
        assert_eq!(echoed.is_some(), allowed, "{origin}: {seen:?}");
        if let Some((_, value)) = echoed {
            assert_eq!(value, origin);
        }
    }
    assert_eq!(metric(&module, "origin_valid"), 4);
    assert_eq!(metric(&module, "origin_invalid"), 5);
}

#[test]
fn repeated_origins_are_one_joined_origin_as_in_envoy() {
    let mut module =
        one(json!({"allow_origin_string_match": [{"exact": A}, {"prefix": "https://p."}]}));
    let (stream, _) = request(
        &mut module,
        &[
            (":method", b"GET"),
            (":path", b"/"),
            ("origin", A.as_bytes()),
            ("origin", b"https://evil.example"),
        ],
    );
    assert_eq!(
        response_after(&mut module, stream, &[]),
        pairs(&[("vary", "origin")]),
        "the second origin must not be ignored"
    );
    let (stream, _) = request(
        &mut module,
        &[
            (":method", b"GET"),
            (":path", b"/"),
            ("origin", b"https://p.x"),
            ("origin", b"https://b.example"),
        ],
    );
    assert_eq!(
        response_after(&mut module, stream, &[]),
        pairs(&[
            (
                "access-control-allow-origin",
                "https://p.x,https://b.example"
            ),
            ("vary", "origin")
        ])
    );
}

#[test]
fn odd_origins_are_matched_as_bytes_and_echoed_whole() {
    let mut module = start(json!({"policies": [
        {"match": {"prefix": "/any"}, "allow_origin_string_match": [{"safe_regex": {"regex": ".*"}}]},
        {"allow_origin_string_match": [{"prefix": "https://"}]}
    ]}));
    let odd: &[u8] = b"https://\xff\xfe.example";
    // A non-UTF-8 origin is refused by every matcher but an allow-all one.
    let stream = get(&mut module, "/", Some(odd));
    assert_eq!(
        response_after(&mut module, stream, &[]),
        pairs(&[("vary", "origin")])
    );
    let stream = get(&mut module, "/any", Some(odd));
    module.response_headers(stream, &[(":status", "200")], true);
    let headers = module.host().headers(stream, MapType::HttpResponseHeaders);
    let echoed = headers
        .iter()
        .find(|(name, _)| name == b"access-control-allow-origin")
        .map(|(_, value)| value.as_slice());
    assert_eq!(echoed, Some(odd));
    // A huge origin is echoed whole.
    let huge = format!("https://{}.example", "a".repeat(60_000));
    let stream = get(&mut module, "/", Some(huge.as_bytes()));
    let seen = response_after(&mut module, stream, &[]);
    assert_eq!(seen[0], ("access-control-allow-origin".into(), huge));
}

#[test]
fn private_network_access_needs_the_policy_and_exactly_true() {
    let mut module = start(json!({"policies": [
        {"match": {"prefix": "/pna"}, "allow_origin_string_match": [{"exact": A}],
         "allow_private_network_access": true},
        {"allow_origin_string_match": [{"exact": A}]}
    ]}));
    for (path, value, granted) in [
        ("/pna", Some("true"), true),
        ("/pna", Some("TRUE"), false),
        ("/pna", Some("false"), false),
        ("/pna", None, false),
        ("/", Some("true"), false),
    ] {
        let extra: Vec<(&str, &str)> = value
            .map(|value| ("access-control-request-private-network", value))
            .into_iter()
            .collect();
        let stream = preflight(&mut module, path, A, &extra);
        let reply = module.host().local_reply(stream).unwrap();
        assert_eq!(
            reply
                .header("access-control-allow-private-network")
                .is_some(),
            granted,
            "{path} {value:?}"
        );
    }
}

#[test]
fn host_failures_never_trap_and_leave_the_request_going() {
    let mut module = one(full_policy());
    module.host().fail("get_header_map_pairs");
    let stream = preflight(&mut module, "/", A, &[]);
    assert_eq!(module.host().local_reply(stream), None);
    module.host().recover("get_header_map_pairs");
    assert_eq!(response_after(&mut module, stream, &[]), vec![]);

    // The answer cannot be sent: the upstream answers, and the response is still decorated.
    module.host().fail("send_local_response");
    let stream = preflight(&mut module, "/", A, &[]);
    module.host().recover("send_local_response");
    assert_eq!(response_after(&mut module, stream, &[]).len(), 4);

    module.host().fail("replace_header_map_value");
    let stream = get(&mut module, "/", Some(A.as_bytes()));
    assert_eq!(response_after(&mut module, stream, &[]), vec![]);
    module.host().recover("replace_header_map_value");
}

#[test]
fn a_bad_config_is_refused_at_its_field_path() {
    for (config, path, reason) in [
        (json!({}), "", "missing field `policies`"),
        (json!({"policies": []}), "policies", "at least one"),
        (
            json!({"policies": [{}, {"match": {}}]}),
            "policies[1].match",
            "needs one of",
        ),
        (
            json!({"policies": [{"allow_origin_string_match": [{"exact": "a"}, {}]}]}),
            "policies[0].allow_origin_string_match[1]",
            "needs one of",
        ),
        (
            json!({"policies": [{"allow_origin_string_match": [{"prefix": ""}]}]}),
            "policies[0].allow_origin_string_match[0].prefix",
            "must not be empty",
        ),
        (
            json!({"policies": [{"allow_origin_string_match": [{"safe_regex": {"regex": "("}}]}]}),
            "policies[0].allow_origin_string_match[0].safe_regex.regex",
            "invalid regex",
        ),
        (
            json!({"policies": [{"allow_methods": "GET\r\nx-injected: 1"}]}),
            "policies[0].allow_methods",
            "NUL, CR or LF",
        ),
        (
            json!({"policies": [{"allow_headers": "a\nb"}]}),
            "policies[0].allow_headers",
            "NUL, CR or LF",
        ),
        (
            json!({"policies": [{"expose_headers": "a\0"}]}),
            "policies[0].expose_headers",
            "NUL, CR or LF",
        ),
        (
            json!({"policies": [{"max_age": "1h"}]}),
            "policies[0].max_age",
            "whole number of seconds",
        ),
        (
            json!({"policies": [{"max_age": 600}]}),
            "policies[0].max_age",
            "invalid type",
        ),
        (
            json!({"policies": [{"allow_credentials": "yes"}]}),
            "policies[0].allow_credentials",
            "invalid type",
        ),
        (
            json!({"policies": [{"filter_enabled": {}}]}),
            "policies[0].filter_enabled",
            "not supported",
        ),
        (
            json!({"policies": [{"shadow_enabled": {}}]}),
            "policies[0].shadow_enabled",
            "not supported",
        ),
        (
            json!({"policies": [{"allow_origins": ["*"]}]}),
            "policies[0].allow_origins",
            "unknown field",
        ),
        (
            json!({"policies": [{}], "stat_prefix": ""}),
            "stat_prefix",
            "must not be empty",
        ),
        (
            json!({"policies": [{}], "extra": 1}),
            "extra",
            "unknown field",
        ),
    ] {
        let error = FakeModule::standalone::<CorsRoot>(config.to_string().as_bytes())
            .err()
            .unwrap_or_else(|| panic!("{config} should be refused"));
        assert_eq!(error.path, path, "{config}: {error}");
        assert!(error.reason.contains(reason), "{config}: {error}");
    }
}

#[test]
fn stat_prefix_names_the_metrics() {
    let mut module = start(json!({"policies": [full_policy()], "stat_prefix": "edge.cors"}));
    get(&mut module, "/", Some(A.as_bytes()));
    assert_eq!(module.host().metric("edge.cors.origin_valid"), Some(1));
    assert_eq!(module.host().metric("cors.origin_valid"), None);
}

#[test]
fn the_example_configs_load() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let deploy: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("../../istio/cors/deploy.json")).unwrap(),
    )
    .unwrap();
    let scenario: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("scenarios/basics.json")).unwrap())
            .unwrap();
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    let example = readme
        .split("```json\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .unwrap();
    let example: Value = serde_json::from_str(example).unwrap();
    for config in [&deploy["plugin_config"], &scenario["config"], &example] {
        start(config.clone());
    }
}

#[test]
fn a_native_field_we_lack_is_named_as_such() {
    let config = json!({"policies": [{"allow_origin_string_match": [{"custom": {}}]}]});
    let error = FakeModule::standalone::<CorsRoot>(config.to_string().as_bytes())
        .err()
        .unwrap();
    assert_eq!(
        error.path,
        "policies[0].allow_origin_string_match[0].custom"
    );
    assert!(error.reason.starts_with("not supported"), "{error}");
}

/// A filter that refuses every request with a 401, standing in for an auth filter after cors.
struct DenyRoot;
struct Deny;

impl sdk_ext::RootFilter for DenyRoot {
    const NAME: &'static str = "deny";
    type Http = Deny;
    fn configure(
        _cx: &mut sdk_ext::RootCx<'_>,
        _config: &[u8],
    ) -> Result<Self, sdk_ext::config::ConfigError> {
        Ok(DenyRoot)
    }
    fn create_http(_root: &std::rc::Rc<Self>) -> Deny {
        Deny
    }
}

impl sdk_ext::HttpFilter for Deny {
    fn on_request_headers(&mut self, cx: &mut sdk_ext::HttpCx<'_>, _end: bool) -> Action {
        cx.send_json_error(401, "unauthenticated", "no token", &[])
            .unwrap();
        Action::Pause
    }
}

static CHAIN: &[sdk_ext::filter::Factory] = &[
    sdk_ext::filter::Factory::of::<CorsRoot>(),
    sdk_ext::filter::Factory::of::<DenyRoot>(),
];

#[test]
fn in_a_chain_preflights_never_reach_auth_and_its_refusals_carry_cors_headers() {
    let config = json!({"filters": [
        {"name": "cors", "config": {"policies": [full_policy()]}},
        {"name": "deny", "config": {}}
    ]});
    let mut module = FakeModule::new(
        sdk_ext::dispatch::Module::Chain(CHAIN),
        config.to_string().as_bytes(),
    );
    assert!(module.configured(), "{:?}", module.config_error());
    // The preflight is answered by cors; the auth filter never sees it.
    let stream = preflight(&mut module, "/", A, &[]);
    let reply = module.host().local_reply(stream).unwrap();
    assert_eq!(
        (reply.status, reply.details.as_str()),
        (200, "cors_response")
    );
    // The auth filter's 401 passes back through cors, which marks it for the allowed origin
    // (as native cors's encodeHeaders does), so the browser can read the 401.
    let (stream, action) = request(
        &mut module,
        &[
            (":method", b"GET"),
            (":path", b"/"),
            ("origin", A.as_bytes()),
        ],
    );
    assert_eq!(action, Action::Pause);
    let reply = module.host().local_reply(stream).unwrap();
    assert_eq!(reply.status, 401);
    // Envoy encodes the reply through the response hooks; the fake host leaves that to us.
    module.response_headers(stream, &[(":status", "401")], true);
    let response = text(&module.host().headers(stream, MapType::HttpResponseHeaders));
    assert!(
        response.contains(&("access-control-allow-origin".into(), A.into())),
        "{response:?}"
    );
    assert!(
        response.contains(&("vary".into(), "origin".into())),
        "{response:?}"
    );
}
