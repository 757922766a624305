//! The filter in test-host (wasmtime): one request per iteration, with a token never seen before
//! (a full check: parse, claims, signature) or the same token every time (a cache hit), per
//! algorithm. `cargo bench -p jwt-auth` (part of `make bench`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../tests/tokens/mod.rs"]
mod tokens;

use criterion::{criterion_group, criterion_main, Criterion};
use jsonwebtoken::Algorithm;
use serde_json::json;
use test_host::{filter_wasm, Action, Plugin, TestHost};

fn plugin(host: &TestHost) -> Plugin {
    let config = json!({
        "providers": {"main": {
            "issuer": "https://issuer.example", "audiences": ["api"],
            "local_jwks": {"inline_string": tokens::jwks().to_string()}
        }},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "main"}}]
    });
    host.plugin(filter_wasm("jwt_auth"))
        .config(config)
        .start()
        .expect("start")
}

fn request(plugin: &Plugin, authorization: &str) {
    let mut stream = plugin.http_stream().unwrap();
    let headers = [
        (":method", "GET"),
        (":path", "/api"),
        (":authority", "a"),
        ("authorization", authorization),
    ];
    let action = stream.send_request_headers(&headers, true).unwrap();
    assert_eq!(action, Action::Continue, "{:?}", stream.local_response());
    stream.end().unwrap();
}

fn verify(c: &mut Criterion) {
    let host = TestHost::new();
    let plugin = plugin(&host);
    let now = tokens::seconds(host.now());
    let mut group = c.benchmark_group("jwt_auth request");
    for alg in [
        Algorithm::RS256,
        Algorithm::PS256,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
        Algorithm::HS256,
    ] {
        let unique: Vec<String> = (0..4000)
            .map(|n| format!("Bearer {}", tokens::token(alg, &json!({"iss": "https://issuer.example", "aud": "api", "exp": now + 3600, "jti": n.to_string()}))))
            .collect();
        let mut next = 0;
        group.bench_function(format!("{alg:?} new token"), |b| {
            b.iter(|| {
                next = (next + 1) % unique.len();
                request(&plugin, &unique[next]);
            })
        });
        group.bench_function(format!("{alg:?} repeated token"), |b| {
            b.iter(|| request(&plugin, &unique[0]))
        });
    }
    group.finish();
}

criterion_group!(benches, verify);
criterion_main!(benches);
