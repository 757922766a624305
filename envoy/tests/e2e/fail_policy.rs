//! What Envoy does with a filter whose VM traps, under each `failure_policy` of the wasm
//! PluginConfig: the probe module marks every request it sees until its first tick traps the VM.
//! FAIL_CLOSED answers 503 from then on; FAIL_OPEN lets requests through without the filter;
//! FAIL_RELOAD builds a new VM after its backoff, and the filter runs again.

use envoy_harness::config::{wasm_filter, BootstrapBuilder};
use envoy_harness::{EchoUpstream, Envoy, Request, Response};
use serde_json::{json, Value};
use std::thread;
use std::time::{Duration, Instant};

/// The probe's first tick comes this long after it is configured, and traps.
const TRAP_AFTER_MS: u64 = 2500;

/// The probe: every request gets `x-probe: seen`; the first tick traps.
fn probe(policy: &str) -> Value {
    let script = json!({
        "proxy_on_configure": [{"op": "set_tick_period", "ms": TRAP_AFTER_MS}],
        "proxy_on_request_headers": [{"op": "add_header", "map": 0, "key": "x-probe", "value": "seen"}],
        "proxy_on_tick": [{"op": "trap"}]
    });
    let mut filter = wasm_filter(
        &format!("probe-{policy}"),
        &test_host::test_module("proxy_wasm_probe"),
        &script,
    );
    let config = &mut filter["typed_config"]["config"];
    config["failure_policy"] = json!(policy);
    if policy == "FAIL_RELOAD" {
        config["reload_config"] =
            json!({"backoff": {"base_interval": "0.2s", "max_interval": "0.2s"}});
    }
    filter
}

fn send(envoy: &Envoy, listener: &str) -> Response {
    Request::get("/")
        .send(envoy.listener_port(listener).unwrap())
        .unwrap()
}

fn marked(response: &Response) -> bool {
    response.upstream_header("x-probe").as_deref() == Some("seen")
}

#[test]
fn a_trapping_vm_fails_closed_open_or_reloads_as_configured() {
    let upstream = EchoUpstream::start().unwrap();
    let policies = ["FAIL_CLOSED", "FAIL_OPEN", "FAIL_RELOAD"];
    let mut bootstrap = BootstrapBuilder::new(upstream.port());
    for policy in policies {
        bootstrap = bootstrap.listener(policy, vec![probe(policy)]);
    }
    let started = Instant::now();
    let envoy = Envoy::start(bootstrap.build()).unwrap();
    // Before the trap the filter runs everywhere.
    if started.elapsed() < Duration::from_millis(TRAP_AFTER_MS - 1000) {
        for policy in policies {
            let response = send(&envoy, policy);
            assert_eq!(response.status, 200, "{policy}: {}", envoy.logs());
            assert!(marked(&response), "{policy}");
        }
    }
    let created_before = envoy.stat("wasm.envoy.wasm.runtime.v8.created");
    // Wait for the traps: every policy's VM logged its failure.
    let deadline = Instant::now() + Duration::from_secs(15);
    while envoy.logs().matches("unreachable").count() < policies.len() {
        assert!(Instant::now() < deadline, "no trap: {}", envoy.logs());
        thread::sleep(Duration::from_millis(100));
    }
    let closed = send(&envoy, "FAIL_CLOSED");
    assert_eq!(closed.status, 503, "{}", envoy.logs());
    assert!(
        closed.upstream_headers().is_empty(),
        "nothing reached the upstream"
    );
    let open = send(&envoy, "FAIL_OPEN");
    assert_eq!(open.status, 200);
    assert!(!marked(&open), "FAIL_OPEN skips the failed filter");
    // FAIL_RELOAD: after the backoff a new VM runs the filter again (until its own tick traps).
    let deadline = Instant::now() + Duration::from_secs(10);
    let reloaded = loop {
        let response = send(&envoy, "FAIL_RELOAD");
        if response.status == 200 && marked(&response) {
            break response;
        }
        assert!(
            Instant::now() < deadline,
            "no reload: {} {}",
            response.status,
            envoy.logs()
        );
        thread::sleep(Duration::from_millis(100));
    };
    assert!(marked(&reloaded));
    assert!(
        envoy.stat("wasm.envoy.wasm.runtime.v8.created") > created_before,
        "FAIL_RELOAD made a new VM"
    );
    // The other two stay as they were.
    assert_eq!(send(&envoy, "FAIL_CLOSED").status, 503);
    assert!(!marked(&send(&envoy, "FAIL_OPEN")));
}
