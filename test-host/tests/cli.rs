//! The proxy-wasm-test-host command line: `check` and `run`, with clear one-line failures.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn cli(args: &[&str]) -> (Output, Duration) {
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_proxy-wasm-test-host"))
        .args(args)
        .output()
        .expect("run the CLI");
    (output, started.elapsed())
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn scratch(name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("test-host-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

const MODULE_HEAD: &str = r#"(module
    (memory (export "memory") 1)
    (func (export "proxy_abi_version_0_2_1"))
    (func (export "malloc") (param i32) (result i32) (i32.const 1024))"#;

fn assert_clean_failure(output: &Output, elapsed: Duration, expected: &str) {
    let text = stdout(output);
    assert_eq!(
        output.status.code(),
        Some(1),
        "a clean failure, not a panic: {text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(text.lines().count(), 1, "one line: {text}");
    assert!(text.contains(expected), "{text}");
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
}

#[test]
fn check_rejects_an_infinite_loop_in_on_configure() {
    let module = scratch(
        "loop.wat",
        &format!(
            r#"{MODULE_HEAD} (func (export "proxy_on_configure") (param i32 i32) (result i32) (loop $l (br $l)) (i32.const 1)))"#
        ),
    );
    let (output, elapsed) = cli(&["check", module.to_str().unwrap()]);
    assert_clean_failure(&output, elapsed, "deadline exceeded");
}

#[test]
fn check_rejects_a_module_that_grows_memory_without_bound() {
    let module = scratch(
        "grow.wat",
        &format!(
            r#"{MODULE_HEAD} (func (export "proxy_on_configure") (param i32 i32) (result i32)
                 (loop $l (br_if $l (i32.ne (memory.grow (i32.const 64)) (i32.const -1)))) unreachable))"#
        ),
    );
    let (output, elapsed) = cli(&["check", module.to_str().unwrap()]);
    assert_clean_failure(&output, elapsed, "trap in proxy_on_configure");
}

#[test]
fn check_rejects_an_unknown_host_function() {
    let module = scratch(
        "import.wat",
        r#"(module (import "env" "proxy_teleport" (func (param i32) (result i32)))
            (memory (export "memory") 1) (func (export "proxy_abi_version_0_2_1"))
            (func (export "malloc") (param i32) (result i32) (i32.const 1024)))"#,
    );
    let (output, elapsed) = cli(&["check", module.to_str().unwrap()]);
    assert_clean_failure(&output, elapsed, "unsupported imports: env.proxy_teleport");
}

#[test]
fn check_accepts_a_good_filter_and_reports_a_bad_config() {
    let wasm = test_host::filter_wasm("header_rewrite");
    let (output, _) = cli(&["check", wasm.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stdout(&output));
    assert!(stdout(&output).contains("ok: ABI 0.2.1"));
    let config = scratch(
        "bad.json",
        r#"{"mutations": {"request_mutations": [{"remove": ""}]}}"#,
    );
    let (output, elapsed) = cli(&[
        "check",
        wasm.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_clean_failure(
        &output,
        elapsed,
        "invalid configuration at mutations.request_mutations[0].remove: must not be empty",
    );
}

#[test]
fn run_plays_a_scenario_and_reports_each_exchange() {
    let wasm = test_host::filter_wasm("header_rewrite");
    let scenario = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../filters/header-rewrite/scenarios/basics.json");
    let (output, _) = cli(&[
        "run",
        wasm.to_str().unwrap(),
        "--scenario",
        scenario.to_str().unwrap(),
    ]);
    let text = stdout(&output);
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains("PASS a request with a user and a token"),
        "{text}"
    );
    assert!(text.contains("ok: 2 of 2 exchanges passed"), "{text}");
    // A config that breaks the expectations makes the run fail and say why.
    let config = scratch("empty.json", "{}");
    let (output, _) = cli(&[
        "run",
        wasm.to_str().unwrap(),
        "--scenario",
        scenario.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("FAIL a request with a user and a token"),
        "{text}"
    );
    assert!(
        text.contains("upstream header x-greeting: expected \"hello, alice!\", got None"),
        "{text}"
    );
}

#[test]
fn bad_usage_exits_2() {
    let (output, _) = cli(&["frobnicate"]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn the_disk_cache_is_written_reused_and_survives_corruption() {
    let dir = std::env::temp_dir().join(format!("test-host-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let wasm = test_host::filter_wasm("header_rewrite");
    let check = || {
        Command::new(env!("CARGO_BIN_EXE_proxy-wasm-test-host"))
            .args(["check", wasm.to_str().unwrap()])
            .env("TEST_HOST_CACHE_DIR", &dir)
            .output()
            .unwrap()
    };
    assert!(check().status.success());
    let cached: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(cached.len(), 1, "one compiled module: {cached:?}");
    assert!(cached[0].extension().is_some_and(|ext| ext == "cwasm"));
    let written = std::fs::metadata(&cached[0]).unwrap().modified().unwrap();
    assert!(
        check().status.success(),
        "a second run loads the cached module"
    );
    assert_eq!(
        std::fs::metadata(&cached[0]).unwrap().modified().unwrap(),
        written,
        "reused, not rewritten"
    );
    std::fs::write(&cached[0], b"not a compiled module").unwrap();
    assert!(
        check().status.success(),
        "a corrupt cache entry is compiled again"
    );
    assert!(
        std::fs::read(&cached[0]).unwrap().len() > 1000,
        "and replaced"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
