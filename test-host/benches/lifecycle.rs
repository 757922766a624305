//! test-host speed: full request lifecycles per second through the header-rewrite filter, and
//! the time to start a plugin from an already compiled module. `make bench` runs it.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::json;
use std::hint::black_box;
use test_host::{filter_wasm, TestHost};

fn config() -> serde_json::Value {
    json!({"mutations": {
        "request_mutations": [
            {"append": {"header": {"key": "x-client", "value": "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"}}},
            {"remove": "x-internal-token"}
        ],
        "response_mutations": [{"append": {"header": {"key": "x-powered-by", "value": "proxy-wasm"}}}]
    }})
}

const REQUEST: &[(&str, &str)] = &[
    (":method", "GET"),
    (":path", "/items"),
    (":authority", "example.com"),
    ("x-internal-token", "s"),
];
const RESPONSE: &[(&str, &str)] = &[(":status", "200"), ("content-type", "text/plain")];

fn lifecycles(c: &mut Criterion) {
    let plugin = TestHost::new()
        .plugin(filter_wasm("header_rewrite"))
        .config(config())
        .start()
        .expect("start");
    let mut group = c.benchmark_group("lifecycle");
    group.throughput(Throughput::Elements(1));
    group.bench_function("header_rewrite request+response", |b| {
        b.iter(|| {
            let mut stream = plugin.http_stream().unwrap();
            black_box(stream.send_request_headers(REQUEST, true).unwrap());
            black_box(stream.send_response_headers(RESPONSE, true).unwrap());
            stream.end().unwrap();
        })
    });
    group.finish();
}

fn instantiate(c: &mut Criterion) {
    let host = TestHost::new();
    let module = host.module(filter_wasm("header_rewrite")).expect("compile");
    let config = config();
    c.bench_function("start plugin from a compiled module", |b| {
        b.iter(|| black_box(module.plugin().config(config.clone()).start().unwrap()))
    });
    c.bench_function("start plugin by path (cache hit)", |b| {
        b.iter(|| {
            black_box(
                host.plugin(filter_wasm("header_rewrite"))
                    .config(config.clone())
                    .start()
                    .unwrap(),
            )
        })
    });
}

criterion_group!(benches, lifecycles, instantiate);
criterion_main!(benches);
