//! Every scenario file of every filter, played in real Envoy (test-host/tests/scenarios.rs plays
//! the same files in test-host).

use envoy_harness::process::workspace_root;
use test_host::scenario::{workspace_scenarios, Scenario};

#[test]
fn every_filter_scenario_passes_in_envoy() {
    let files = workspace_scenarios(&workspace_root());
    assert!(!files.is_empty(), "no scenario files found");
    let mut failures = Vec::new();
    for file in &files {
        let scenario = Scenario::load(file).unwrap();
        let reports = envoy_harness::scenario::run(&scenario)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
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
