//! Helpers for driving the probe module: a script in, the logged outcome of each step out.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::path::PathBuf;
use test_host::{Plugin, PluginBuilder, TestHost};

/// The probe module as `make build` leaves it.
pub fn probe_wasm() -> PathBuf {
    test_host::test_module("proxy_wasm_probe")
}

/// A probe plugin with `script` as its configuration.
pub fn probe(host: &TestHost, script: Value) -> PluginBuilder {
    host.plugin(probe_wasm()).config(script)
}

/// Starts a probe on a fresh host.
pub fn start(script: Value) -> (TestHost, Plugin) {
    let host = TestHost::new();
    let plugin = probe(&host, script)
        .start()
        .unwrap_or_else(|e| panic!("probe should start: {e}"));
    (host, plugin)
}

/// Every JSON line the probe logged, in order.
pub fn lines(plugin: &Plugin) -> Vec<Value> {
    plugin
        .logs()
        .iter()
        .filter_map(|entry| serde_json::from_str::<Value>(&entry.message).ok())
        .collect()
}

/// The outcome of every script step (lines with an `op`).
pub fn steps(plugin: &Plugin) -> Vec<Value> {
    lines(plugin)
        .into_iter()
        .filter(|line| line.get("op").is_some())
        .collect()
}

/// Step outcomes of one callback.
pub fn steps_in(plugin: &Plugin, callback: &str) -> Vec<Value> {
    steps(plugin)
        .into_iter()
        .filter(|line| line["cb"] == callback)
        .collect()
}

/// The callbacks the host made, in order, with their context ids and arguments.
pub fn callbacks(plugin: &Plugin) -> Vec<Value> {
    lines(plugin)
        .into_iter()
        .filter(|line| line.get("op").is_none() && line.get("cb").is_some())
        .map(|line| {
            json!([
                line["cb"],
                line["ctx"],
                line.get("args").cloned().unwrap_or(Value::Null)
            ])
        })
        .collect()
}

/// Statuses of the steps of one callback, in order.
pub fn statuses(plugin: &Plugin, callback: &str) -> Vec<u64> {
    steps_in(plugin, callback)
        .iter()
        .map(|step| step["status"].as_u64().unwrap_or(999))
        .collect()
}

/// A request with the usual pseudo-headers.
pub const GET: &[(&str, &str)] = &[
    (":method", "GET"),
    (":path", "/p?q=1"),
    (":authority", "example.com"),
    (":scheme", "http"),
];
