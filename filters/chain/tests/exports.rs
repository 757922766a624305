//! The callbacks each module exports. Envoy calls an exported callback whenever its event comes,
//! and one that no filter of the module needs is dead code in it.
#![allow(clippy::unwrap_used)]

use test_host::{filter_wasm, TestHost};

/// The modules whose filters make HTTP callouts (sdk-ext's `http-callouts` feature) and gRPC
/// calls (`grpc-callouts`), with the callbacks that bring those answers. The chain holds all
/// filters.
const HTTP_CALLERS: &[&str] = &["jwt_auth", "ext_authz", "chain"];
const HTTP_ANSWERS: &[&str] = &["proxy_on_http_call_response"];
const GRPC_CALLERS: &[&str] = &["global_rate_limit", "chain"];
const GRPC_ANSWERS: &[&str] = &["proxy_on_grpc_receive", "proxy_on_grpc_close"];

/// Every filter of the workspace (its standalone module), and the chain.
fn modules() -> Vec<String> {
    let filters = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut names: Vec<String> = std::fs::read_dir(&filters)
        .unwrap()
        .map(|entry| {
            entry
                .unwrap()
                .file_name()
                .to_string_lossy()
                .replace('-', "_")
        })
        .filter(|name| name != "chain")
        .collect();
    names.sort();
    names.push("chain".to_string());
    names
}

#[test]
fn only_modules_whose_filters_call_out_export_the_answer_callbacks() {
    let host = TestHost::new();
    let modules = modules();
    assert!(modules.len() >= 10, "{modules:?}");
    for name in &modules {
        let module = host.module(filter_wasm(name)).unwrap();
        let answers = HTTP_ANSWERS.iter().chain(GRPC_ANSWERS).copied();
        let exported: Vec<&str> = answers
            .filter(|callback| module.exports_function(callback))
            .collect();
        let mut expected = Vec::new();
        if HTTP_CALLERS.contains(&name.as_str()) {
            expected.extend_from_slice(HTTP_ANSWERS);
        }
        if GRPC_CALLERS.contains(&name.as_str()) {
            expected.extend_from_slice(GRPC_ANSWERS);
        }
        assert_eq!(exported, expected, "{name}.wasm");
        // Every module exports what each stream needs.
        assert!(
            module.exports_function("proxy_on_request_headers"),
            "{name}.wasm"
        );
    }
}
