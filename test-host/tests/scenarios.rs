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
