//! Every scenario file of every filter, played in test-host (envoy/tests/scenarios.rs plays the
//! same files in Envoy).

use std::path::Path;
use test_host::filter_wasm;
use test_host::scenario::{run, workspace_scenarios, Scenario};

#[test]
fn every_filter_scenario_passes_in_test_host() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let files = workspace_scenarios(&root);
    assert!(!files.is_empty(), "no scenario files found");
    let mut failures = Vec::new();
    for file in &files {
        let scenario = Scenario::load(file).unwrap();
        let reports = run(&scenario, &filter_wasm(&scenario.filter), None)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert_eq!(reports.len(), scenario.requests.len());
        for report in reports
            .into_iter()
            .filter(|report| !report.failures.is_empty())
        {
            failures.push(format!(
                "{}: {}: {}",
                file.display(),
                report.name,
                report.failures.join("; ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

mod fuzz;

/// Where failing generated cases are saved, and replayed from by every run.
fn regressions_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions")
}

/// Each filter module on its first scenario's configuration, jwt-auth on a local and a remote
/// key set, and chain.wasm holding every filter.
fn fuzz_targets() -> Vec<(String, serde_json::Value, Vec<fuzz::Known>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut targets: Vec<(String, serde_json::Value, Vec<fuzz::Known>)> = Vec::new();
    for file in workspace_scenarios(&root) {
        let scenario = Scenario::load(&file).unwrap();
        if !targets
            .iter()
            .any(|(module, ..)| *module == scenario.filter)
        {
            let known = scenario
                .requests
                .iter()
                .map(|exchange| fuzz::Known {
                    method: exchange.request.method.clone(),
                    path: exchange.request.path.clone(),
                    headers: exchange.request.headers.clone(),
                    body: exchange.request.body.clone(),
                })
                .collect();
            targets.push((scenario.filter.clone(), scenario.config.clone(), known));
        }
    }
    let (jwks, tokens) = fuzz::interop();
    let jwt_known: Vec<fuzz::Known> = tokens
        .iter()
        .map(|token| fuzz::Known {
            method: "GET".into(),
            path: "/api/items".into(),
            headers: vec![("authorization".into(), format!("Bearer {token}"))],
            body: String::new(),
        })
        .collect();
    let jwt_auth = serde_json::json!({
        "providers": {
            "local": {
                "issuer": "https://issuer.example",
                "local_jwks": {"inline_string": jwks.to_string()},
                "forward_payload_header": "x-jwt-payload",
                "claim_to_headers": [{"header_name": "x-user", "claim_name": "sub"}],
                "from_cookies": ["token"],
                "jwt_cache_config": {"jwt_cache_size": 8}
            },
            "remote": {
                "issuer": "https://remote.example",
                "remote_jwks": {
                    "http_uri": {"uri": "http://keys.example/jwks", "cluster": "jwks", "timeout": "1s"},
                    "cache_duration": "300s"
                }
            }
        },
        "rules": [
            {"match": {"prefix": "/api"}, "requires": {"requires_any": {"requirements": [
                {"provider_name": "local"}, {"provider_name": "remote"}
            ]}}},
            {"match": {"prefix": "/admin"}, "requires": {"provider_name": "remote"}}
        ]
    });
    let chain: Vec<serde_json::Value> = targets
        .iter()
        .map(|(module, config, _)| serde_json::json!({"name": module, "config": config}))
        .chain([serde_json::json!({"name": "jwt_auth", "config": jwt_auth})])
        .collect();
    let chain_known: Vec<fuzz::Known> = targets
        .iter()
        .flat_map(|(_, _, known)| known.iter().cloned())
        .chain(jwt_known.iter().cloned())
        .collect();
    targets.push(("jwt_auth".into(), jwt_auth, jwt_known));
    targets.push((
        "chain".into(),
        serde_json::json!({ "filters": chain }),
        chain_known,
    ));
    targets
}

/// Generated lifecycles on every filter never trap. `FUZZ_SEED` picks the seed (random in
/// `make fuzz`), `FUZZ_CASES` the lifecycles per module, `FUZZ_MODULES` the modules; a failing
/// case is saved under tests/fuzz-regressions/ and replayed first by every later run.
#[test]
fn generated_lifecycles_never_trap_any_filter() {
    let seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .map(|seed| seed.parse().expect("FUZZ_SEED is a u64"))
        .unwrap_or(0x5eed_f00d);
    let cases: usize = std::env::var("FUZZ_CASES")
        .ok()
        .map(|cases| cases.parse().expect("FUZZ_CASES is a count"))
        .unwrap_or(150);
    let mut failures = Vec::new();
    // Saved regressions first, each on a fresh plugin.
    let mut saved: Vec<_> = std::fs::read_dir(regressions_dir())
        .map(|entries| entries.flatten().map(|entry| entry.path()).collect())
        .unwrap_or_default();
    saved.retain(|path| path.extension().is_some_and(|ext| ext == "json"));
    saved.sort();
    for path in &saved {
        let case: fuzz::Case =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let plugin = fuzz::start(&filter_wasm(&case.module), &case.config);
        if let Err(error) = fuzz::play(&plugin, &case.ops) {
            failures.push(format!("{}: {error}", path.display()));
        }
    }
    // `FUZZ_MODULES=jwt_auth,chain` plays only those modules.
    let only = std::env::var("FUZZ_MODULES").ok();
    let mut played = Vec::new();
    for (index, (module, config, known)) in fuzz_targets().into_iter().enumerate() {
        if only
            .as_deref()
            .is_some_and(|only| !only.split(',').any(|name| name == module))
        {
            continue;
        }
        let wasm = filter_wasm(&module);
        let mut rng = fuzz::Rng::new(seed ^ (index as u64).wrapping_mul(0x9e37_79b9));
        let mut plugin = fuzz::start(&wasm, &config);
        let (mut replied, mut upstream, mut callouts) = (0, 0, 0);
        for case in 0..cases {
            let ops = fuzz::lifecycle(&mut rng, &known);
            let played = fuzz::play(&plugin, &ops);
            if let Ok(seen) = played {
                replied += usize::from(seen.local_reply);
                upstream += usize::from(seen.upstream);
                callouts += seen.callouts;
            }
            if let Err(error) = played {
                let file = regressions_dir().join(format!("{module}-{seed}-{case}.json"));
                let saved = fuzz::Case {
                    module: module.clone(),
                    config: config.clone(),
                    ops,
                };
                std::fs::create_dir_all(regressions_dir()).unwrap();
                std::fs::write(&file, serde_json::to_string_pretty(&saved).unwrap()).unwrap();
                failures.push(format!(
                    "{module}, FUZZ_SEED={seed}, case {case}: {error}\n  saved as {}",
                    file.display()
                ));
                // A trap fails the VM for good, as in Envoy: go on with a new one.
                plugin = fuzz::start(&wasm, &config);
            }
        }
        played.push(format!(
            "{module}: {cases} ({replied} answered by the filter, {upstream} reached the upstream, \
             {callouts} callouts settled)"
        ));
        // The generator reaches both outcomes (header-rewrite never answers itself, and in the
        // chain some filter always refuses: basic-auth and jwt-auth want different credentials
        // in one header); a filter that makes callouts gets them answered.
        if cases >= 100 {
            assert!(upstream > 0 || module == "chain", "{}", played.join("\n"));
            assert!(
                replied > 0 || module == "header_rewrite",
                "{}",
                played.join("\n")
            );
            if module == "jwt_auth" || module == "chain" {
                assert!(callouts > 0, "{}", played.join("\n"));
            }
        }
    }
    eprintln!(
        "generated lifecycles (FUZZ_SEED={seed}):\n{}",
        played.join("\n")
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
