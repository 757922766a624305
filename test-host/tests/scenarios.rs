//! Every scenario file of every filter, played in test-host (envoy/tests/e2e/scenarios.rs plays the
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
    // global-rate-limit's scenario shows the requests it does not check; generated lifecycles
    // check every request and deny when the check fails, so that both outcomes are reached.
    if let Some((_, config, _)) = targets
        .iter_mut()
        .find(|(module, ..)| module == "global_rate_limit")
    {
        config["rate_limits"] =
            serde_json::json!([{"actions": [{"generic_key": {"descriptor_value": "all"}}]}]);
        config["failure_mode_deny"] = serde_json::json!(true);
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
            if ["jwt_auth", "chain", "ext_authz", "global_rate_limit"].contains(&module.as_str()) {
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

/// jwt-auth, which has no scenario file: a good token, none, a cut one. (Its remote key set is
/// fetched on a tick, which a scenario does not play; its unit tests cover that path.)
fn jwt_auth_scenario() -> Scenario {
    let (jwks, tokens) = fuzz::interop();
    let issuer = "https://issuer.example";
    let config = serde_json::json!({
        "providers": {
            "local": {"issuer": issuer, "local_jwks": {"inline_string": jwks.to_string()},
                      "jwt_cache_config": {"jwt_cache_size": 8}},
            "remote": {"issuer": issuer, "remote_jwks": {
                "http_uri": {"uri": "http://keys.example/jwks", "cluster": "jwks", "timeout": "1s"},
                "cache_duration": "300s"
            }}
        },
        "rules": [
            {"match": {"prefix": "/api"}, "requires": {"provider_name": "local"}},
            {"match": {"prefix": "/admin"}, "requires": {"provider_name": "remote"}}
        ]
    });
    serde_json::from_value(serde_json::json!({
        "name": "jwt-auth under failing hostcalls",
        "filter": "jwt_auth",
        "config": config,
        "requests": [
            {"name": "a local token",
             "request": {"path": "/api/items", "headers": [["authorization", format!("Bearer {}", tokens[0])]]}},
            {"name": "no token", "request": {"path": "/api/items"}},
            {"name": "a cut token",
             "request": {"path": "/api/items", "headers": [["authorization", format!("Bearer {}", &tokens[0][..40])]]}}
        ]
    }))
    .unwrap()
}

/// Hostcalls Envoy never fails for a well-formed call: with them failing a stream may stay held
/// (it cannot be resumed or answered), but the filter must still not trap.
const NEVER_FAILING: &[&str] = &[
    "proxy_continue_stream",
    "proxy_send_local_response",
    "proxy_set_effective_context",
];

/// Each filter, on its scenario files, with each hostcall it makes failing on every call: it
/// never traps, and every request still completes (an answer from the filter or the upstream's),
/// so no host failure leaves a request hanging.
#[test]
fn every_filter_survives_each_of_its_hostcalls_failing() {
    use test_host::scenario::play;
    use test_host::{Status, TestHost, Times};
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut failures = Vec::new();
    let mut covered = Vec::new();
    let mut scenarios: Vec<Scenario> = workspace_scenarios(&root)
        .iter()
        .map(|file| Scenario::load(file).unwrap())
        .collect();
    scenarios.push(jwt_auth_scenario());
    for scenario in scenarios {
        let started = std::time::Instant::now();
        let wasm = filter_wasm(&scenario.filter);
        let start = || {
            TestHost::new()
                .plugin(&wasm)
                .config(scenario.config.clone())
                .start()
                .unwrap()
        };
        // The hostcalls the filter makes while serving its scenario.
        let plugin = start();
        for exchange in &scenario.requests {
            play(&plugin, exchange).unwrap();
        }
        let mut names: Vec<&'static str> = plugin
            .hostcalls()
            .iter()
            .map(|record| record.name)
            .filter(|name| *name != "proxy_log")
            .collect();
        names.sort_unstable();
        names.dedup();
        for name in &names {
            let plugin = start();
            plugin
                .fail_hostcall(name, Status::InternalFailure, Times::Always)
                .unwrap();
            for exchange in &scenario.requests {
                match play(&plugin, exchange) {
                    Err(error) => failures.push(format!(
                        "{}: {} failing: {}: {error}",
                        scenario.filter, name, exchange.name
                    )),
                    Ok(outcome)
                        if outcome.response.status.is_none() && !NEVER_FAILING.contains(name) =>
                    {
                        failures.push(format!(
                            "{}: {} failing: {}: the request never completed",
                            scenario.filter, name, exchange.name
                        ))
                    }
                    Ok(_) => {}
                }
            }
            if let Some(failure) = plugin.failure() {
                failures.push(format!("{}: {name} failing: {failure}", scenario.filter));
            }
        }
        covered.push(format!(
            "{} ({:.1?}): {}",
            scenario.filter,
            started.elapsed(),
            names.join(" ")
        ));
    }
    eprintln!("hostcalls failed one at a time:\n{}", covered.join("\n"));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
