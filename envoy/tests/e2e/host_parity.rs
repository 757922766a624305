//! test-host against real Envoy: the probe module runs the same script in both, and every
//! hostcall outcome (status and value) must match. The request the probe sees in Envoy is fed to
//! test-host unchanged, so the two runs start from the same state.

use envoy_harness::config::{wasm_filter, BootstrapBuilder};
use envoy_harness::{EchoUpstream, Envoy, Request, Response};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use test_host::{HttpResponse, TestHost};

fn probe_wasm() -> PathBuf {
    test_host::test_module("proxy_wasm_probe")
}

/// Probe log lines from Envoy's log: `... wasm log probe probe: {json}`.
fn envoy_lines(logs: &str) -> Vec<Value> {
    logs.lines()
        .filter_map(|line| {
            let at = line.find("wasm log")?;
            let json_at = line[at..].find(": {")? + at + 2;
            serde_json::from_str(&line[json_at..]).ok()
        })
        .collect()
}

/// Waits until Envoy has logged `count` probe lines of callback `callback`.
fn wait_for_lines(envoy: &Envoy, callback: &str, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let lines = envoy_lines(&envoy.logs());
        if lines.iter().filter(|line| line["cb"] == callback).count() >= count
            || Instant::now() > deadline
        {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn step_lines(lines: &[Value], callback: &str) -> Vec<Value> {
    lines
        .iter()
        .filter(|line| line["cb"] == callback && line.get("op").is_some())
        .cloned()
        .collect()
}

/// What must agree between the hosts for one step.
fn comparable(step: &Value) -> Value {
    json!([
        step["op"],
        step["status"],
        step.get("value"),
        step.get("hex"),
        step.get("result"),
        step.get("cas")
    ])
}

fn start_envoy(script: &Value) -> (EchoUpstream, Envoy) {
    let upstream = EchoUpstream::start().unwrap();
    let filter = wasm_filter("probe", &probe_wasm(), script);
    let envoy = Envoy::start(
        BootstrapBuilder::new(upstream.port())
            .listener("main", vec![filter])
            .build(),
    )
    .unwrap();
    (upstream, envoy)
}

fn pairs_of(step: &Value) -> Vec<(String, String)> {
    step["result"]
        .as_array()
        .unwrap_or_else(|| panic!("get_pairs result expected: {step}"))
        .iter()
        .map(|pair| {
            (
                pair[0].as_str().unwrap().to_string(),
                pair[1].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn assert_same_steps(envoy: &[Value], host: &[Value], skip_first: usize) {
    assert_eq!(
        envoy.len(),
        host.len(),
        "step counts differ\nenvoy: {envoy:#?}\nhost: {host:#?}"
    );
    for (index, (in_envoy, in_host)) in envoy.iter().zip(host).enumerate().skip(skip_first) {
        assert_eq!(
            comparable(in_host),
            comparable(in_envoy),
            "step {index} differs\nenvoy: {in_envoy}\nhost:  {in_host}"
        );
    }
}

#[test]
fn request_header_hostcalls_match_envoy() {
    let script = json!({"proxy_on_request_headers": [
        {"op": "get_pairs", "map": 0},
        {"op": "get_header", "map": 0, "key": "X-Dup"},
        {"op": "get_header", "map": 0, "key": "x-missing"},
        {"op": "add_header", "map": 0, "key": "User-Agent", "value": "two"},
        {"op": "add_header", "map": 0, "key": "x-dup", "value": "third"},
        {"op": "replace_header", "map": 0, "key": "x-replaced", "value": "new"},
        {"op": "remove_header", "map": 0, "key": "x-removed"},
        {"op": "remove_header", "map": 0, "key": "x-never-there"},
        {"op": "get_header", "map": 0, "key": "host"},
        {"op": "get_header_map_size", "map": 0},
        {"op": "get_header", "map": 8, "key": "x"},
        {"op": "get_header", "map": 2, "key": ":status"},
        {"op": "get_pairs", "map": 0}
    ]});
    let (_upstream, envoy) = start_envoy(&script);
    let response = Request::get("/p?q=1")
        .header("x-dup", "first")
        .header("user-agent", "one")
        .header("x-dup", "second")
        .header("x-replaced", "a")
        .header("x-removed", "b")
        .header("x-replaced", "c")
        .header("x-tail", "t")
        .send(envoy.port())
        .unwrap();
    assert_eq!(response.status, 200, "{}", envoy.logs());
    let in_envoy = step_lines(
        &wait_for_lines(&envoy, "proxy_on_request_headers", 14),
        "proxy_on_request_headers",
    );
    let seen = pairs_of(&in_envoy[0]);
    let host = TestHost::new();
    let plugin = host
        .plugin(probe_wasm())
        .config(script)
        .name("probe")
        .vm_id("probe")
        .start()
        .unwrap();
    let mut stream = plugin.http_stream().unwrap();
    stream.send_request_headers(&seen, true).unwrap();
    let in_host: Vec<Value> = plugin
        .logs()
        .iter()
        .filter_map(|entry| serde_json::from_str::<Value>(&entry.message).ok())
        .filter(|line| line["cb"] == "proxy_on_request_headers" && line.get("op").is_some())
        .collect();
    assert_same_steps(&in_envoy, &in_host, 1);
}

fn host_steps(plugin: &test_host::Plugin, callback: &str) -> Vec<Value> {
    plugin
        .logs()
        .iter()
        .filter_map(|entry| serde_json::from_str::<Value>(&entry.message).ok())
        .filter(|line| line["cb"] == callback && line.get("op").is_some())
        .collect()
}

#[test]
fn state_hostcalls_match_envoy() {
    // Shared data, metrics, properties and argument checks, all in one request callback.
    let script = json!({"proxy_on_request_headers": [
        {"op": "get_pairs", "map": 0},
        {"op": "get_shared", "key": "k"},
        {"op": "set_shared", "key": "k", "value": "v1", "cas": 77},
        {"op": "get_shared", "key": "k", "save": "cas1"},
        {"op": "set_shared", "key": "k", "value": "v2", "cas": 999},
        {"op": "set_shared", "key": "k", "value": "v2", "cas": "$cas1"},
        {"op": "set_shared", "key": "k", "value": "v3", "cas": 0},
        {"op": "get_shared", "key": "k"},
        {"op": "define_metric", "type": 0, "name": "parity_requests", "save": "c"},
        {"op": "define_metric", "type": 1, "name": "parity_active", "save": "g"},
        {"op": "define_metric", "type": 2, "name": "parity_latency", "save": "h"},
        {"op": "define_metric", "type": 3, "name": "parity_bad"},
        {"op": "increment_metric", "id": "$c", "offset": 0},
        {"op": "increment_metric", "id": "$c", "offset": 2},
        {"op": "increment_metric", "id": "$g", "offset": -1},
        {"op": "record_metric", "id": "$h", "value": 42},
        {"op": "get_metric", "id": "$c"},
        {"op": "get_metric", "id": "$h"},
        {"op": "get_metric", "id": 404},
        {"op": "get_property", "path": ["request", "path"]},
        {"op": "get_property", "path": ["request", "url_path"]},
        {"op": "get_property", "path": ["request", "method"]},
        {"op": "get_property", "path": ["plugin_name"]},
        {"op": "get_property", "path": ["plugin_vm_id"]},
        {"op": "set_property", "path": ["parity_state"], "value": "kept"},
        {"op": "get_property", "path": ["parity_state"]},
        {"op": "get_property", "path": ["no", "such"]},
        {"op": "get_property", "path": []},
        {"op": "http_call", "cluster": "no_such_cluster", "headers": [[":method", "GET"], [":path", "/"], [":authority", "a"]], "timeout": 100},
        {"op": "http_call", "cluster": "upstream", "headers": [[":method", "GET"], [":authority", "a"]], "timeout": 100},
        {"op": "call_foreign", "name": "no_such_function", "args": ""},
        {"op": "set_effective_context", "id": 77},
        {"op": "log", "level": 9, "message": "x"},
        {"op": "get_log_level"},
        {"op": "oob_log"}
    ]});
    let (upstream, envoy) = start_envoy(&script);
    let response = Request::get("/state?x=1").send(envoy.port()).unwrap();
    assert_eq!(response.status, 200, "{}", envoy.logs());
    let in_envoy = step_lines(
        &wait_for_lines(&envoy, "proxy_on_request_headers", 36),
        "proxy_on_request_headers",
    );
    let host = TestHost::new();
    host.set_clusters(["upstream"]);
    let plugin = host
        .plugin(probe_wasm())
        .config(script)
        .name("probe")
        .vm_id("probe")
        .start()
        .unwrap();
    let mut stream = plugin.http_stream().unwrap();
    stream
        .send_request_headers(&pairs_of(&in_envoy[0]), true)
        .unwrap();
    assert_same_steps(
        &in_envoy,
        &host_steps(&plugin, "proxy_on_request_headers"),
        1,
    );
    drop(upstream);
}

#[test]
fn later_phases_match_envoy() {
    let script = json!({
        "proxy_on_request_headers": [{"op": "get_pairs", "map": 0}],
        "proxy_on_response_headers": [
            {"op": "get_pairs", "map": 2},
            {"op": "get_header", "map": 0, "key": ":path"},
            {"op": "get_pairs", "map": 0},
            {"op": "add_header", "map": 0, "key": "x", "value": "1"},
            {"op": "get_property", "path": ["request", "path"]},
            {"op": "get_property", "path": ["response", "code"]},
            {"op": "get_buffer", "type": 0, "start": 0, "max": 10},
            {"op": "get_buffer", "type": 4, "start": 0, "max": 10},
            {"op": "get_buffer", "type": 7, "start": 0, "max": 10}
        ],
        "proxy_on_log": [
            {"op": "get_header", "map": 0, "key": ":path"},
            {"op": "get_header", "map": 1, "key": "x"},
            {"op": "replace_header", "map": 2, "key": "x", "value": "1"},
            {"op": "get_header", "map": 2, "key": ":status"}
        ]
    });
    let (_upstream, envoy) = start_envoy(&script);
    let response = Request::get("/later").send(envoy.port()).unwrap();
    assert_eq!(response.status, 200);
    let lines = wait_for_lines(&envoy, "proxy_on_delete", 1);
    let request_seen = pairs_of(&step_lines(&lines, "proxy_on_request_headers")[0]);
    let response_envoy = step_lines(&lines, "proxy_on_response_headers");
    let response_seen = pairs_of(&response_envoy[0]);
    let host = TestHost::new();
    let plugin = host
        .plugin(probe_wasm())
        .config(script)
        .name("probe")
        .vm_id("probe")
        .start()
        .unwrap();
    let mut stream = plugin.http_stream().unwrap();
    stream.send_request_headers(&request_seen, true).unwrap();
    stream.send_response_headers(&response_seen, false).unwrap();
    // Replay the body callbacks exactly as Envoy made them (chunk sizes and end-of-stream flags).
    let mut body = response.body.as_slice();
    for chunk in lines
        .iter()
        .filter(|l| l["cb"] == "proxy_on_response_body" && l.get("op").is_none())
    {
        let (size, end) = (
            chunk["args"][0].as_u64().unwrap() as usize,
            chunk["args"][1] == 1,
        );
        stream.send_response_body(&body[..size], end).unwrap();
        body = &body[size..];
    }
    stream.end().unwrap();
    assert_same_steps(
        &response_envoy,
        &host_steps(&plugin, "proxy_on_response_headers"),
        1,
    );
    assert_same_steps(
        &step_lines(&lines, "proxy_on_log"),
        &host_steps(&plugin, "proxy_on_log"),
        0,
    );
    // The callbacks and their context ids come in the same order.
    let order = |lines: &[Value]| -> Vec<String> {
        lines
            .iter()
            .filter(|l| l.get("op").is_none())
            .map(|l| format!("{}:{}", l["cb"].as_str().unwrap_or_default(), l["ctx"]))
            .collect()
    };
    let host_lines: Vec<Value> = plugin
        .logs()
        .iter()
        .filter_map(|e| serde_json::from_str(&e.message).ok())
        .collect();
    assert_eq!(order(&host_lines), order(&lines));
}

fn client_view(response: &Response) -> Vec<(String, String)> {
    response
        .headers
        .iter()
        .filter(|(name, _)| !["date", "server", "connection"].contains(&name.as_str()))
        .map(|(name, value)| (name.clone(), String::from_utf8_lossy(value).into_owned()))
        .collect()
}

#[test]
fn local_replies_match_envoy() {
    let script = json!({
        "proxy_on_request_headers": [
            {"op": "get_pairs", "map": 0},
            {"op": "send_local_response", "status_code": 403, "details": "access denied", "body": "{\"error\":\"no\"}",
             "headers": [["content-type", "application/json"], ["x-reason", "policy"], ["x-reason", "second"]]},
            {"op": "send_local_response", "status_code": 500, "details": "again", "body": ""}
        ],
        "proxy_on_response_headers": [{"op": "get_pairs", "map": 2}]
    });
    let (_upstream, envoy) = start_envoy(&script);
    let response = Request::get("/denied").send(envoy.port()).unwrap();
    let lines = wait_for_lines(&envoy, "proxy_on_delete", 1);
    let host = TestHost::new();
    let plugin = host
        .plugin(probe_wasm())
        .config(script)
        .name("probe")
        .vm_id("probe")
        .start()
        .unwrap();
    let mut stream = plugin.http_stream().unwrap();
    stream
        .send_request_headers(
            &pairs_of(&step_lines(&lines, "proxy_on_request_headers")[0]),
            true,
        )
        .unwrap();
    let client = stream.client_response();
    stream.end().unwrap();
    assert_same_steps(
        &step_lines(&lines, "proxy_on_request_headers"),
        &host_steps(&plugin, "proxy_on_request_headers"),
        1,
    );
    assert_same_steps(
        &step_lines(&lines, "proxy_on_response_headers"),
        &host_steps(&plugin, "proxy_on_response_headers"),
        0,
    );
    assert_eq!(response.status, 403);
    assert_eq!(client.status(), Some(response.status));
    let host_headers: Vec<(String, String)> = client
        .headers
        .unwrap()
        .entries()
        .iter()
        .filter(|(name, _)| !name.starts_with(b":"))
        .map(|(name, value)| {
            (
                String::from_utf8_lossy(name).into_owned(),
                String::from_utf8_lossy(value).into_owned(),
            )
        })
        .collect();
    assert_eq!(host_headers, client_view(&response));
    assert_eq!(client.body, response.body);
}

#[test]
fn http_callouts_match_envoy() {
    let script = json!({
        "proxy_on_request_headers": [
            {"op": "http_call", "cluster": "upstream", "headers": [[":method", "GET"], [":path", "/callout"]], "timeout": 5000},
            {"op": "http_call", "cluster": "upstream", "headers": [[":method", "POST"], [":path", "/callout"], ["host", "upstream"]], "body": "b", "timeout": 5000}
        ],
        "returns": {"proxy_on_request_headers": 1},
        "proxy_on_http_call_response": [
            {"op": "get_header", "map": 6, "key": ":status"},
            {"op": "get_header", "map": 6, "key": "content-type"},
            {"op": "add_header", "map": 6, "key": "x", "value": "y"},
            {"op": "get_status"},
            {"op": "set_effective_context", "id": 2},
            {"op": "continue_stream", "stream": 0}
        ]
    });
    let (_upstream, envoy) = start_envoy(&script);
    let response = Request::get("/paused").send(envoy.port()).unwrap();
    assert_eq!(
        response.status,
        200,
        "the stream resumes after the callout: {}",
        envoy.logs()
    );
    // One call goes out (the other lacks :authority), logged as the call plus six steps.
    let lines = wait_for_lines(&envoy, "proxy_on_http_call_response", 7);
    let mut envoy_callbacks: Vec<Value> = lines
        .iter()
        .filter(|l| l["cb"] == "proxy_on_http_call_response" && l.get("op").is_none())
        .map(|l| json!([l["ctx"], l["args"][0]]))
        .collect();
    let host = TestHost::new();
    let plugin = host
        .plugin(probe_wasm())
        .config(script)
        .name("probe")
        .vm_id("probe")
        .start()
        .unwrap();
    let mut stream = plugin.http_stream().unwrap();
    stream
        .send_request_headers(
            &[
                (":method", "GET"),
                (":path", "/paused"),
                (":authority", "x"),
            ],
            true,
        )
        .unwrap();
    assert_same_steps(
        &step_lines(&lines, "proxy_on_request_headers"),
        &host_steps(&plugin, "proxy_on_request_headers"),
        0,
    );
    for call in plugin.http_calls() {
        plugin
            .respond_http_call(
                call.token,
                HttpResponse::new(200)
                    .header("content-type", "application/json")
                    .body("{}"),
            )
            .unwrap();
    }
    let mut host_callbacks: Vec<Value> = plugin
        .logs()
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(&e.message).ok())
        .filter(|l| l["cb"] == "proxy_on_http_call_response" && l.get("op").is_none())
        .map(|l| json!([l["ctx"], l["args"][0]]))
        .collect();
    // Responses arrive in whatever order the upstream answers.
    envoy_callbacks.sort_by_key(|c| c.to_string());
    host_callbacks.sort_by_key(|c| c.to_string());
    assert_eq!(
        host_callbacks, envoy_callbacks,
        "same root context and tokens"
    );
    assert_same_steps(
        &step_lines(&lines, "proxy_on_http_call_response"),
        &host_steps(&plugin, "proxy_on_http_call_response"),
        0,
    );
    assert!(stream.upstream_request().complete);
}
