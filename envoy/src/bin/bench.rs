//! `make bench`: each filter against the empty wasm floor and its native Envoy twin, in one Envoy
//! per suite, under the same wrk load. Prints markdown and writes target/bench/results.md.

use envoy_harness::bench::{measure, noop_module, report, Load, Variant};
use envoy_harness::config::{filter_wasm, native_filter, wasm_filter};
use serde_json::{json, Value};
use std::path::Path;
use std::process::ExitCode;

fn header_rewrite_suite(noop: &Path) -> (String, Vec<Variant>, String) {
    let mutations = json!({"mutations": {
        "request_mutations": [
            {"append": {"header": {"key": "x-client", "value": "%REQ(x-user)%"}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}},
            {"append": {"header": {"key": "x-static", "value": "1"}}},
            {"remove": "x-internal-token"}
        ],
        "response_mutations": [{"append": {"header": {"key": "x-powered-by", "value": "proxy-wasm"}}}]
    }});
    let wasm =
        |config: &Value| wasm_filter("header_rewrite", &filter_wasm("header_rewrite"), config);
    let variants = vec![
        Variant::new("no filter", vec![]),
        Variant::new(
            "wasm no-op module",
            vec![wasm_filter("noop", noop, &json!({}))],
        ),
        Variant::new("header_rewrite, empty config", vec![wasm(&json!({}))]),
        Variant::new("header_rewrite, 4 mutations", vec![wasm(&mutations)]),
        Variant::new(
            "native header_mutation, 4 mutations",
            vec![native_filter(
                "hm",
                "header_mutation.v3.HeaderMutation",
                mutations.clone(),
            )],
        ),
    ];
    let variants = variants
        .into_iter()
        .map(|v| v.header("x-user", "alice").header("x-internal-token", "s"))
        .collect();
    (
        "header-rewrite vs native header_mutation".into(),
        variants,
        "no filter".into(),
    )
}

fn main() -> ExitCode {
    let root = envoy_harness::process::workspace_root();
    let out_dir = root.join("target").join("bench");
    if let Err(error) = std::fs::create_dir_all(&out_dir) {
        eprintln!("bench: {error}");
        return ExitCode::FAILURE;
    }
    let noop = out_dir.join("noop.wasm");
    if let Err(error) = std::fs::write(&noop, noop_module()) {
        eprintln!("bench: {error}");
        return ExitCode::FAILURE;
    }
    let wanted: Vec<String> = std::env::args().skip(1).collect();
    let suites = [header_rewrite_suite(&noop)];
    let load = Load::default();
    let mut results =
        String::from("## Envoy benchmarks (one worker, wrk -t1 -c16, direct_response route)\n\n");
    for (title, variants, baseline) in suites {
        if !wanted.is_empty() && !wanted.iter().any(|name| title.starts_with(name.as_str())) {
            continue;
        }
        eprintln!("bench: {title} ({} variants)...", variants.len());
        match measure(&variants, &load) {
            Ok(measurements) => {
                let table = report(&title, &measurements, &baseline);
                println!("{table}");
                results.push_str(&table);
                results.push('\n');
            }
            Err(error) => {
                eprintln!("bench: {title}: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    let path = out_dir.join("results.md");
    if let Err(error) = std::fs::write(&path, results) {
        eprintln!("bench: {}: {error}", path.display());
        return ExitCode::FAILURE;
    }
    eprintln!("bench: written to {}", path.display());
    ExitCode::SUCCESS
}
