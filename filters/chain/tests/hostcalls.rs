//! What a request costs in hostcalls through the chain of the benchmark (header-rewrite,
//! jwt-auth with a cached token, rate-limit), on sdk-ext's fake host: in V8 each hostcall costs
//! about as much as a filter's own work, so a new one on this path must be a decision.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../../jwt-auth/tests/tokens/mod.rs"]
mod tokens;

use jsonwebtoken::Algorithm;
use sdk_ext::dispatch::Module;
use sdk_ext::fake::FakeModule;
use sdk_ext::filter::Factory;
use sdk_ext::Action;
use serde_json::json;
use tokens::{jwks, seconds, token};

static FILTERS: &[Factory] = &[
    Factory::of::<header_rewrite::filter::HeaderRewriteRoot>(),
    Factory::of::<jwt_auth::filter::JwtAuthRoot>(),
    Factory::of::<rate_limit::filter::RateLimitRoot>(),
];

/// The benchmark's chain (envoy/src/bin/bench.rs).
fn bench_chain() -> FakeModule {
    let always = json!({"default_value": {"numerator": 100, "denominator": "HUNDRED"}});
    let config = json!({"filters": [
        {"name": "header-rewrite", "config": {"mutations": {
            "request_mutations": [
                {"append": {"header": {"key": "x-client", "value": "%REQ(x-user)%"}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}},
                {"append": {"header": {"key": "x-static", "value": "1"}}},
                {"remove": "x-internal-token"}
            ],
            "response_mutations": [{"append": {"header": {"key": "x-powered-by", "value": "proxy-wasm"}}}]
        }}},
        {"name": "jwt-auth", "config": {
            "providers": {"main": {
                "issuer": "https://issuer.example", "audiences": ["api"],
                "local_jwks": {"inline_string": jwks().to_string()},
                "jwt_cache_config": {"jwt_cache_size": 100}
            }},
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "main"}}]
        }},
        {"name": "rate-limit", "config": {
            "stat_prefix": "bench",
            "token_bucket": {"max_tokens": 1000000, "tokens_per_fill": 1000000, "fill_interval": "1s"},
            "filter_enabled": always,
            "filter_enforced": always
        }}
    ]});
    let module = FakeModule::new(Module::Chain(FILTERS), config.to_string().as_bytes());
    assert!(module.configured(), "{:?}", module.config_error());
    module
}

#[test]
fn a_cached_request_through_the_bench_chain_makes_these_hostcalls() {
    let mut module = bench_chain();
    let now =
        seconds(std::time::UNIX_EPOCH + std::time::Duration::from_nanos(module.host().now_nanos()));
    let claims = json!({"iss": "https://issuer.example", "aud": "api", "exp": now + 3600});
    let authorization = format!("Bearer {}", token(Algorithm::RS256, &claims));
    let request = |module: &mut FakeModule| {
        let stream = module.stream();
        let headers = [
            (":method", "GET"),
            (":path", "/api"),
            (":authority", "a"),
            ("user-agent", "wrk"),
            ("authorization", authorization.as_str()),
            ("x-user", "alice"),
            ("x-internal-token", "s"),
        ];
        assert_eq!(
            module.request_headers(stream, &headers, true),
            Action::Continue
        );
        assert_eq!(
            module.response_headers(stream, &[(":status", "200")], true),
            Action::Continue
        );
        module.end(stream);
    };
    // The first request verifies the signature and fills the cache.
    request(&mut module);
    let before = module.host().hostcall_counts();
    request(&mut module);
    let after = module.host().hostcall_counts();
    let made: Vec<(&str, usize)> = after
        .iter()
        .map(|(name, count)| {
            let earlier = before
                .iter()
                .find(|(other, _)| other == name)
                .map_or(0, |(_, c)| *c);
            (*name, count - earlier)
        })
        .filter(|(_, count)| *count > 0)
        .collect();
    assert_eq!(
        made,
        [
            ("add_header_map_value", 2),
            ("get_current_time_nanoseconds", 1),
            ("get_header_map_pairs", 1),
            ("get_header_map_value", 1),
            ("get_shared_data", 1),
            ("increment_metric", 4),
            ("remove_header_map_value", 2),
            ("replace_header_map_value", 1),
            ("set_shared_data", 1),
        ],
        "hostcalls of one cached request, request and response headers"
    );
}

/// The hostcalls of a repeated request (its second run, so caches are warm) through one
/// standalone filter: request headers, response headers, end of stream.
fn per_request(
    mut module: FakeModule,
    request: &[(&str, &str)],
    response: &[(&str, &str)],
) -> Vec<(&'static str, usize)> {
    assert!(module.configured(), "{:?}", module.config_error());
    let run = |module: &mut FakeModule| {
        let stream = module.stream();
        if module.request_headers(stream, request, true) == Action::Continue {
            module.response_headers(stream, response, true);
        }
        module.end(stream);
    };
    run(&mut module);
    let before = module.host().hostcall_counts();
    run(&mut module);
    module
        .host()
        .hostcall_counts()
        .into_iter()
        .map(|(name, count)| {
            let earlier = before
                .iter()
                .find(|(other, _)| *other == name)
                .map_or(0, |(_, c)| *c);
            (name, count - earlier)
        })
        .filter(|(_, count)| *count > 0)
        .collect()
}

fn standalone<F: sdk_ext::RootFilter>(config: serde_json::Value) -> FakeModule {
    FakeModule::new(
        Module::Standalone(Factory::of::<F>()),
        config.to_string().as_bytes(),
    )
}

/// The workloads of `make bench`'s filters suite (envoy/src/bin/bench.rs), each as its filter
/// alone: what one request costs in hostcalls, the main cost of a simple filter in V8.
#[test]
fn each_filter_of_the_benchmark_makes_these_hostcalls_per_request() {
    let get = |extra: &[(&'static str, &'static str)]| {
        let mut headers = vec![(":method", "GET"), (":path", "/bench"), (":authority", "a")];
        headers.extend_from_slice(extra);
        headers
    };
    let ok = [(":status", "200")];
    let always = json!({"default_value": {"numerator": 100, "denominator": "HUNDRED"}});
    let cors = json!({"policies": [{
        "match": {"prefix": "/"},
        "allow_origin_string_match": [{"exact": "https://app.example"}],
        "allow_methods": "GET,POST",
        "allow_headers": "authorization,content-type",
        "max_age": "600"
    }]});
    let mut preflight = get(&[
        ("origin", "https://app.example"),
        ("access-control-request-method", "POST"),
    ]);
    preflight[0] = (":method", "OPTIONS");
    let cases: Vec<(&str, Vec<(&'static str, usize)>)> = vec![
        (
            "header-rewrite: 4 mutations",
            per_request(
                standalone::<header_rewrite::filter::HeaderRewriteRoot>(json!({"mutations": {
                    "request_mutations": [
                        {"append": {"header": {"key": "x-client", "value": "%REQ(x-user)%"}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}},
                        {"append": {"header": {"key": "x-static", "value": "1"}}},
                        {"remove": "x-internal-token"}
                    ],
                    "response_mutations": [{"append": {"header": {"key": "x-powered-by", "value": "proxy-wasm"}}}]
                }})),
                &get(&[("x-user", "alice"), ("x-internal-token", "s")]),
                &ok,
            ),
        ),
        (
            "rate-limit: under the limit, x-ratelimit headers",
            per_request(
                standalone::<rate_limit::filter::RateLimitRoot>(json!({
                    "stat_prefix": "bench",
                    "token_bucket": {"max_tokens": 4_000_000_000u32, "tokens_per_fill": 4_000_000_000u32, "fill_interval": "1s"},
                    "filter_enabled": always,
                    "filter_enforced": always,
                    "enable_x_ratelimit_headers": "DRAFT_VERSION_03"
                })),
                &get(&[]),
                &ok,
            ),
        ),
        (
            "basic-auth: {SHA} password",
            per_request(
                standalone::<basic_auth::filter::BasicAuthRoot>(
                    json!({"users": {"inline_string": "alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g="}}),
                ),
                &get(&[("authorization", "Basic YWxpY2U6cGFzc3dvcmQ=")]),
                &ok,
            ),
        ),
        (
            "cors: preflight",
            per_request(
                standalone::<cors::filter::CorsRoot>(cors.clone()),
                &preflight,
                &ok,
            ),
        ),
        (
            "cors: actual request",
            per_request(
                standalone::<cors::filter::CorsRoot>(cors),
                &get(&[("origin", "https://app.example")]),
                &ok,
            ),
        ),
        (
            "rbac: header principal",
            per_request(
                standalone::<rbac::filter::RbacRoot>(
                    json!({"rules": {"action": "ALLOW", "policies": {"alice-only": {
                        "permissions": [{"any": true}],
                        "principals": [{"header": {"name": "x-user", "string_match": {"exact": "alice"}}}]
                    }}}}),
                ),
                &get(&[("x-user", "alice")]),
                &ok,
            ),
        ),
    ];
    let expected: Vec<(&str, Vec<(&'static str, usize)>)> = vec![
        (
            "header-rewrite: 4 mutations",
            vec![
                ("add_header_map_value", 2),
                ("get_header_map_value", 1),
                ("remove_header_map_value", 1),
                ("replace_header_map_value", 1),
            ],
        ),
        (
            "rate-limit: under the limit, x-ratelimit headers",
            vec![
                ("add_header_map_value", 3),
                ("get_current_time_nanoseconds", 1),
                ("get_shared_data", 1),
                ("increment_metric", 2),
                ("set_shared_data", 1),
            ],
        ),
        (
            "basic-auth: {SHA} password",
            vec![("get_header_map_pairs", 1), ("increment_metric", 1)],
        ),
        (
            "cors: preflight",
            vec![
                ("get_header_map_pairs", 1),
                ("increment_metric", 2),
                ("send_local_response", 1),
            ],
        ),
        (
            "cors: actual request",
            vec![
                ("add_header_map_value", 1),
                ("get_header_map_pairs", 1),
                ("get_header_map_value", 1),
                ("increment_metric", 1),
                ("replace_header_map_value", 1),
            ],
        ),
        (
            "rbac: header principal",
            vec![("get_header_map_pairs", 1), ("increment_metric", 1)],
        ),
    ];
    for (name, calls) in &cases {
        let total: usize = calls.iter().map(|(_, count)| count).sum();
        println!("{name}: {total} hostcalls {calls:?}");
    }
    assert_eq!(cases, expected, "hostcalls of one request per filter");
}
