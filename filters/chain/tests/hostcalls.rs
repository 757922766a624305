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
