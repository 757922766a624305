//! proxy-wasm-probe: a module that speaks the raw proxy-wasm ABI and does what its configuration
//! script says, logging the outcome of every hostcall as one JSON line. The same script runs in
//! test-host and in real Envoy, so the two hosts can be compared call by call.
//!
//! The script is the plugin configuration (or the VM configuration, read at `proxy_on_vm_start`):
//!
//! ```json
//! {"proxy_on_request_headers": [{"op": "get_header", "map": 0, "key": "x-a"},
//!                               {"op": "define_metric", "type": 0, "name": "hits", "save": "hits"},
//!                               {"op": "increment_metric", "id": "$hits", "offset": 1}],
//!  "returns": {"proxy_on_request_headers": 1}}
//! ```
//!
//! Each step logs `{"cb", "ctx", "op", "status", ...}` at info level. A string argument `"$name"`
//! refers to a number saved by an earlier step with `"save": "name"`.
#![cfg(target_arch = "wasm32")]

mod abi;

use serde_json::{json, Map, Value};
use std::cell::RefCell;

thread_local! {
    static SCRIPT: RefCell<Value> = const { RefCell::new(Value::Null) };
    static SAVED: RefCell<Map<String, Value>> = RefCell::new(Map::new());
}

#[no_mangle]
pub extern "C" fn proxy_abi_version_0_2_1() {}

#[no_mangle]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    let mut buffer = Vec::<u8>::with_capacity(size.max(1));
    let pointer = buffer.as_mut_ptr();
    std::mem::forget(buffer);
    pointer
}

fn log_line(line: &Value) {
    let text = line.to_string();
    unsafe { abi::proxy_log(2, text.as_ptr(), text.len()) };
}

fn bytes_json(bytes: &[u8]) -> Value {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    match std::str::from_utf8(bytes) {
        Ok(text) => json!({"value": text, "hex": hex}),
        Err(_) => json!({"hex": hex}),
    }
}

/// Runs the script of `callback` and returns its configured return value.
fn run(callback: &str, context_id: u32, default_return: u32) -> u32 {
    let steps = SCRIPT.with(|script| script.borrow().get(callback).cloned());
    if let Some(Value::Array(steps)) = steps {
        for step in steps {
            let mut outcome = step_outcome(&step, context_id);
            outcome.insert("cb".into(), json!(callback));
            outcome.insert("ctx".into(), json!(context_id));
            outcome.insert("op".into(), step.get("op").cloned().unwrap_or(Value::Null));
            if let (Some(name), Some(saved)) = (
                step.get("save").and_then(Value::as_str),
                outcome.get("result"),
            ) {
                let saved = saved.clone();
                SAVED.with(|all| all.borrow_mut().insert(name.to_string(), saved));
            }
            log_line(&Value::Object(outcome));
        }
    }
    SCRIPT.with(|script| {
        script.borrow()["returns"][callback]
            .as_u64()
            .map_or(default_return, |value| value as u32)
    })
}

fn resolve(value: &Value) -> Value {
    if let Some(name) = value.as_str().and_then(|text| text.strip_prefix('$')) {
        return SAVED.with(|saved| saved.borrow().get(name).cloned().unwrap_or(Value::Null));
    }
    value.clone()
}

fn arg_u64(step: &Value, name: &str) -> u64 {
    let value = resolve(&step[name]);
    value
        .as_u64()
        .or_else(|| value.as_i64().map(|v| v as u64))
        .unwrap_or(0)
}

fn arg_i64(step: &Value, name: &str) -> i64 {
    resolve(&step[name]).as_i64().unwrap_or(0)
}

fn arg_bytes(step: &Value, name: &str) -> Vec<u8> {
    match resolve(&step[name]) {
        Value::String(text) => text.into_bytes(),
        Value::Object(object) => object
            .get("hex")
            .and_then(Value::as_str)
            .map(|hex| {
                (0..hex.len() / 2)
                    .filter_map(|i| u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).ok())
                    .collect()
            })
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

fn arg_pairs(step: &Value, name: &str) -> Vec<u8> {
    let pairs: Vec<(Vec<u8>, Vec<u8>)> = step[name]
        .as_array()
        .map(|pairs| {
            pairs
                .iter()
                .map(|pair| {
                    let part = |i: usize| pair[i].as_str().unwrap_or_default().as_bytes().to_vec();
                    (part(0), part(1))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut out = (pairs.len() as u32).to_le_bytes().to_vec();
    for (key, value) in &pairs {
        out.extend_from_slice(&(key.len() as u32).to_le_bytes());
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    }
    for (key, value) in &pairs {
        out.extend_from_slice(key);
        out.push(0);
        out.extend_from_slice(value);
        out.push(0);
    }
    out
}

fn decode_pairs(bytes: &[u8]) -> Value {
    let read = |at: usize| {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let Some(count) = read(0) else {
        return json!([]);
    };
    let mut at = 4 + count * 8;
    let mut pairs = Vec::new();
    for index in 0..count {
        let (Some(key_len), Some(value_len)) = (read(4 + index * 8), read(8 + index * 8)) else {
            return json!({"malformed": true});
        };
        let key = bytes.get(at..at + key_len).unwrap_or_default();
        at += key_len + 1;
        let value = bytes.get(at..at + value_len).unwrap_or_default();
        at += value_len + 1;
        pairs.push(json!([
            String::from_utf8_lossy(key),
            String::from_utf8_lossy(value)
        ]));
    }
    Value::Array(pairs)
}

/// Recursion `depth` levels deep on wasm's own stack: nothing in linear memory, and an
/// operation the compiler cannot turn into a loop.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    if depth == 0 {
        return 1;
    }
    recurse(depth - 1).rotate_left(1) ^ depth
}

/// A buffer the host returned through the allocator.
unsafe fn take(data: *mut u8, size: usize) -> Vec<u8> {
    if data.is_null() || size == 0 {
        return Vec::new();
    }
    unsafe { Vec::from_raw_parts(data, size, size) }
}

fn with_status(status: u32) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("status".into(), json!(status));
    map
}

fn with_bytes(status: u32, bytes: Vec<u8>) -> Map<String, Value> {
    let mut map = with_status(status);
    if status == 0 {
        if let Value::Object(fields) = bytes_json(&bytes) {
            map.extend(fields);
        }
    }
    map
}

fn with_result(status: u32, result: Value) -> Map<String, Value> {
    let mut map = with_status(status);
    if status == 0 {
        map.insert("result".into(), result);
    }
    map
}

#[allow(clippy::too_many_lines)]
fn step_outcome(step: &Value, context_id: u32) -> Map<String, Value> {
    let op = step["op"].as_str().unwrap_or_default();
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    unsafe {
        match op {
            "log" => {
                let message = arg_bytes(step, "message");
                with_status(abi::proxy_log(
                    arg_u64(step, "level") as u32,
                    message.as_ptr(),
                    message.len(),
                ))
            }
            "get_log_level" => {
                let mut level = 0u32;
                let status = abi::proxy_get_log_level(&mut level);
                with_result(status, json!(level))
            }
            "get_current_time" => {
                let mut nanos = 0u64;
                let status = abi::proxy_get_current_time_nanoseconds(&mut nanos);
                with_result(status, json!(nanos))
            }
            "set_tick_period" => with_status(abi::proxy_set_tick_period_milliseconds(arg_u64(
                step, "ms",
            )
                as u32)),
            "get_buffer" => {
                let status = abi::proxy_get_buffer_bytes(
                    arg_u64(step, "type") as u32,
                    arg_u64(step, "start") as usize,
                    arg_u64(step, "max") as usize,
                    &mut data,
                    &mut size,
                );
                with_bytes(status, take(data, size))
            }
            "set_buffer" => {
                let bytes = arg_bytes(step, "data");
                with_status(abi::proxy_set_buffer_bytes(
                    arg_u64(step, "type") as u32,
                    arg_u64(step, "start") as usize,
                    arg_u64(step, "size") as usize,
                    bytes.as_ptr(),
                    bytes.len(),
                ))
            }
            "get_header" => {
                let key = arg_bytes(step, "key");
                let status = abi::proxy_get_header_map_value(
                    arg_u64(step, "map") as u32,
                    key.as_ptr(),
                    key.len(),
                    &mut data,
                    &mut size,
                );
                with_bytes(status, take(data, size))
            }
            "add_header" | "replace_header" => {
                let key = arg_bytes(step, "key");
                let value = arg_bytes(step, "value");
                let call = if op == "add_header" {
                    abi::proxy_add_header_map_value
                } else {
                    abi::proxy_replace_header_map_value
                };
                with_status(call(
                    arg_u64(step, "map") as u32,
                    key.as_ptr(),
                    key.len(),
                    value.as_ptr(),
                    value.len(),
                ))
            }
            "remove_header" => {
                let key = arg_bytes(step, "key");
                with_status(abi::proxy_remove_header_map_value(
                    arg_u64(step, "map") as u32,
                    key.as_ptr(),
                    key.len(),
                ))
            }
            "get_pairs" => {
                let status = abi::proxy_get_header_map_pairs(
                    arg_u64(step, "map") as u32,
                    &mut data,
                    &mut size,
                );
                let bytes = take(data, size);
                with_result(status, decode_pairs(&bytes))
            }
            "set_pairs" => {
                let pairs = arg_pairs(step, "pairs");
                with_status(abi::proxy_set_header_map_pairs(
                    arg_u64(step, "map") as u32,
                    pairs.as_ptr(),
                    pairs.len(),
                ))
            }
            "get_header_map_size" => {
                let mut total = 0u32;
                let status =
                    abi::proxy_get_header_map_size(arg_u64(step, "map") as u32, &mut total);
                with_result(status, json!(total))
            }
            "get_property" => {
                let path = property_path(step);
                let status =
                    abi::proxy_get_property(path.as_ptr(), path.len(), &mut data, &mut size);
                with_bytes(status, take(data, size))
            }
            "set_property" => {
                let path = property_path(step);
                let value = arg_bytes(step, "value");
                with_status(abi::proxy_set_property(
                    path.as_ptr(),
                    path.len(),
                    value.as_ptr(),
                    value.len(),
                ))
            }
            "get_shared" => {
                let key = arg_bytes(step, "key");
                let mut cas = 0u32;
                let status = abi::proxy_get_shared_data(
                    key.as_ptr(),
                    key.len(),
                    &mut data,
                    &mut size,
                    &mut cas,
                );
                let mut outcome = with_bytes(status, take(data, size));
                if status == 0 {
                    outcome.insert("cas".into(), json!(cas));
                    outcome.insert("result".into(), json!(cas));
                }
                outcome
            }
            "set_shared" => {
                let key = arg_bytes(step, "key");
                let value = arg_bytes(step, "value");
                let (value_ptr, value_len) = if step["value"].is_null() {
                    (std::ptr::null(), 0)
                } else {
                    (value.as_ptr(), value.len())
                };
                with_status(abi::proxy_set_shared_data(
                    key.as_ptr(),
                    key.len(),
                    value_ptr,
                    value_len,
                    arg_u64(step, "cas") as u32,
                ))
            }
            "register_queue" => {
                let name = arg_bytes(step, "name");
                let mut id = 0u32;
                let status = abi::proxy_register_shared_queue(name.as_ptr(), name.len(), &mut id);
                with_result(status, json!(id))
            }
            "resolve_queue" => {
                let vm_id = arg_bytes(step, "vm_id");
                let name = arg_bytes(step, "name");
                let mut id = 0u32;
                let status = abi::proxy_resolve_shared_queue(
                    vm_id.as_ptr(),
                    vm_id.len(),
                    name.as_ptr(),
                    name.len(),
                    &mut id,
                );
                with_result(status, json!(id))
            }
            "enqueue" => {
                let value = arg_bytes(step, "value");
                with_status(abi::proxy_enqueue_shared_queue(
                    arg_u64(step, "queue") as u32,
                    value.as_ptr(),
                    value.len(),
                ))
            }
            "dequeue" => {
                let status = abi::proxy_dequeue_shared_queue(
                    arg_u64(step, "queue") as u32,
                    &mut data,
                    &mut size,
                );
                with_bytes(status, take(data, size))
            }
            "continue_stream" => {
                with_status(abi::proxy_continue_stream(arg_u64(step, "stream") as u32))
            }
            "close_stream" => with_status(abi::proxy_close_stream(arg_u64(step, "stream") as u32)),
            "send_local_response" => {
                let details = arg_bytes(step, "details");
                let body = arg_bytes(step, "body");
                let headers = arg_pairs(step, "headers");
                let grpc_status = if step["grpc_status"].is_null() {
                    -1
                } else {
                    arg_i64(step, "grpc_status") as i32
                };
                with_status(abi::proxy_send_local_response(
                    arg_u64(step, "status_code") as u32,
                    details.as_ptr(),
                    details.len(),
                    body.as_ptr(),
                    body.len(),
                    headers.as_ptr(),
                    headers.len(),
                    grpc_status,
                ))
            }
            "http_call" => {
                let cluster = arg_bytes(step, "cluster");
                let headers = arg_pairs(step, "headers");
                let body = arg_bytes(step, "body");
                let trailers = arg_pairs(step, "trailers");
                let mut token = 0u32;
                let status = abi::proxy_http_call(
                    cluster.as_ptr(),
                    cluster.len(),
                    headers.as_ptr(),
                    headers.len(),
                    body.as_ptr(),
                    body.len(),
                    trailers.as_ptr(),
                    trailers.len(),
                    arg_u64(step, "timeout") as u32,
                    &mut token,
                );
                with_result(status, json!(token))
            }
            "grpc_call" | "grpc_stream" => {
                let service = arg_bytes(step, "service");
                let service_name = arg_bytes(step, "service_name");
                let method = arg_bytes(step, "method");
                let metadata = arg_pairs(step, "metadata");
                let message = arg_bytes(step, "message");
                let mut token = 0u32;
                let status = if op == "grpc_call" {
                    abi::proxy_grpc_call(
                        service.as_ptr(),
                        service.len(),
                        service_name.as_ptr(),
                        service_name.len(),
                        method.as_ptr(),
                        method.len(),
                        metadata.as_ptr(),
                        metadata.len(),
                        message.as_ptr(),
                        message.len(),
                        arg_u64(step, "timeout") as u32,
                        &mut token,
                    )
                } else {
                    abi::proxy_grpc_stream(
                        service.as_ptr(),
                        service.len(),
                        service_name.as_ptr(),
                        service_name.len(),
                        method.as_ptr(),
                        method.len(),
                        metadata.as_ptr(),
                        metadata.len(),
                        &mut token,
                    )
                };
                with_result(status, json!(token))
            }
            "grpc_send" => {
                let message = arg_bytes(step, "message");
                with_status(abi::proxy_grpc_send(
                    arg_u64(step, "token") as u32,
                    message.as_ptr(),
                    message.len(),
                    arg_u64(step, "end_stream") as u32,
                ))
            }
            "grpc_cancel" => with_status(abi::proxy_grpc_cancel(arg_u64(step, "token") as u32)),
            "grpc_close" => with_status(abi::proxy_grpc_close(arg_u64(step, "token") as u32)),
            "get_status" => {
                let mut code = 0u32;
                let status = abi::proxy_get_status(&mut code, &mut data, &mut size);
                let mut outcome = with_bytes(status, take(data, size));
                outcome.insert("result".into(), json!(code));
                outcome
            }
            "set_effective_context" => {
                let id = if step["id"].is_null() {
                    context_id
                } else {
                    arg_u64(step, "id") as u32
                };
                with_status(abi::proxy_set_effective_context(id))
            }
            "done" => with_status(abi::proxy_done()),
            "call_foreign" => {
                let name = arg_bytes(step, "name");
                let args = arg_bytes(step, "args");
                let status = abi::proxy_call_foreign_function(
                    name.as_ptr(),
                    name.len(),
                    args.as_ptr(),
                    args.len(),
                    &mut data,
                    &mut size,
                );
                with_bytes(status, take(data, size))
            }
            "define_metric" => {
                let name = arg_bytes(step, "name");
                let mut id = 0u32;
                let status = abi::proxy_define_metric(
                    arg_u64(step, "type") as u32,
                    name.as_ptr(),
                    name.len(),
                    &mut id,
                );
                with_result(status, json!(id))
            }
            "increment_metric" => with_status(abi::proxy_increment_metric(
                arg_u64(step, "id") as u32,
                arg_i64(step, "offset"),
            )),
            "record_metric" => with_status(abi::proxy_record_metric(
                arg_u64(step, "id") as u32,
                arg_u64(step, "value"),
            )),
            "get_metric" => {
                let mut value = 0u64;
                let status = abi::proxy_get_metric(arg_u64(step, "id") as u32, &mut value);
                with_result(status, json!(value))
            }
            // Hostile steps, for limit tests.
            "oob_log" => with_status(abi::proxy_log(2, 0xFFFF_FFF0usize as *const u8, 64)),
            "oob_return" => {
                let key = b":path";
                with_status(abi::proxy_get_header_map_value(
                    0,
                    key.as_ptr(),
                    key.len(),
                    0xFFFF_FFF0usize as *mut *mut u8,
                    0xFFFF_FFF8usize as *mut usize,
                ))
            }
            "trap" => core::arch::wasm32::unreachable(),
            "panic" => panic!(
                "probe asked to panic: {}",
                step["message"].as_str().unwrap_or_default()
            ),
            "sleep" => {
                std::thread::sleep(std::time::Duration::from_millis(arg_u64(step, "ms")));
                Map::new()
            }
            "recurse" => with_result(0, json!(recurse(arg_u64(step, "depth")))),
            "loop" => loop {
                std::hint::black_box(());
            },
            "grow" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 16 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            _ => {
                let mut outcome = Map::new();
                outcome.insert("error".into(), json!(format!("unknown op {op:?}")));
                outcome
            }
        }
    }
}

fn property_path(step: &Value) -> Vec<u8> {
    let segments: Vec<String> = step["path"]
        .as_array()
        .map(|parts| {
            parts
                .iter()
                .map(|part| part.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default();
    segments.join("\0").into_bytes()
}

fn load_script(buffer_type: u32, size: usize) {
    if size == 0 {
        return;
    }
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut returned: usize = 0;
    let status =
        unsafe { abi::proxy_get_buffer_bytes(buffer_type, 0, size, &mut data, &mut returned) };
    let bytes = unsafe { take(data, returned) };
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(script) if status == 0 => SCRIPT.with(|current| *current.borrow_mut() = script),
        _ => {
            log_line(&json!({"error": "the configuration is not a JSON script", "status": status}))
        }
    }
}

#[no_mangle]
pub extern "C" fn proxy_on_context_create(context_id: u32, parent_context_id: u32) {
    let callback = if parent_context_id == 0 {
        "proxy_on_context_create_root"
    } else {
        "proxy_on_context_create"
    };
    run(callback, context_id, 0);
}

#[no_mangle]
pub extern "C" fn proxy_on_vm_start(root_context_id: u32, vm_configuration_size: usize) -> u32 {
    load_script(6, vm_configuration_size);
    run("proxy_on_vm_start", root_context_id, 1)
}

#[no_mangle]
pub extern "C" fn proxy_on_configure(
    root_context_id: u32,
    plugin_configuration_size: usize,
) -> u32 {
    load_script(7, plugin_configuration_size);
    run("proxy_on_configure", root_context_id, 1)
}

#[no_mangle]
pub extern "C" fn proxy_on_tick(root_context_id: u32) {
    run("proxy_on_tick", root_context_id, 0);
}

#[no_mangle]
pub extern "C" fn proxy_on_queue_ready(root_context_id: u32, queue_id: u32) {
    SAVED.with(|saved| {
        saved
            .borrow_mut()
            .insert("queue_ready".into(), json!(queue_id))
    });
    run("proxy_on_queue_ready", root_context_id, 0);
}

#[no_mangle]
pub extern "C" fn proxy_on_request_headers(
    context_id: u32,
    headers: u32,
    end_of_stream: u32,
) -> u32 {
    log_line(
        &json!({"cb": "proxy_on_request_headers", "ctx": context_id, "args": [headers, end_of_stream]}),
    );
    run("proxy_on_request_headers", context_id, 0)
}

#[no_mangle]
pub extern "C" fn proxy_on_request_body(
    context_id: u32,
    body_size: u32,
    end_of_stream: u32,
) -> u32 {
    log_line(
        &json!({"cb": "proxy_on_request_body", "ctx": context_id, "args": [body_size, end_of_stream]}),
    );
    run("proxy_on_request_body", context_id, 0)
}

#[no_mangle]
pub extern "C" fn proxy_on_request_trailers(context_id: u32, trailers: u32) -> u32 {
    log_line(&json!({"cb": "proxy_on_request_trailers", "ctx": context_id, "args": [trailers]}));
    run("proxy_on_request_trailers", context_id, 0)
}

#[no_mangle]
pub extern "C" fn proxy_on_response_headers(
    context_id: u32,
    headers: u32,
    end_of_stream: u32,
) -> u32 {
    log_line(
        &json!({"cb": "proxy_on_response_headers", "ctx": context_id, "args": [headers, end_of_stream]}),
    );
    run("proxy_on_response_headers", context_id, 0)
}

#[no_mangle]
pub extern "C" fn proxy_on_response_body(
    context_id: u32,
    body_size: u32,
    end_of_stream: u32,
) -> u32 {
    log_line(
        &json!({"cb": "proxy_on_response_body", "ctx": context_id, "args": [body_size, end_of_stream]}),
    );
    run("proxy_on_response_body", context_id, 0)
}

#[no_mangle]
pub extern "C" fn proxy_on_response_trailers(context_id: u32, trailers: u32) -> u32 {
    log_line(&json!({"cb": "proxy_on_response_trailers", "ctx": context_id, "args": [trailers]}));
    run("proxy_on_response_trailers", context_id, 0)
}

#[no_mangle]
pub extern "C" fn proxy_on_http_call_response(
    context_id: u32,
    token: u32,
    headers: u32,
    body_size: u32,
    trailers: u32,
) {
    log_line(
        &json!({"cb": "proxy_on_http_call_response", "ctx": context_id, "args": [token, headers, body_size, trailers]}),
    );
    run("proxy_on_http_call_response", context_id, 0);
}

#[no_mangle]
pub extern "C" fn proxy_on_grpc_receive_initial_metadata(
    context_id: u32,
    token: u32,
    headers: u32,
) {
    log_line(
        &json!({"cb": "proxy_on_grpc_receive_initial_metadata", "ctx": context_id, "args": [token, headers]}),
    );
    run("proxy_on_grpc_receive_initial_metadata", context_id, 0);
}

#[no_mangle]
pub extern "C" fn proxy_on_grpc_receive(context_id: u32, token: u32, response_size: u32) {
    log_line(
        &json!({"cb": "proxy_on_grpc_receive", "ctx": context_id, "args": [token, response_size]}),
    );
    run("proxy_on_grpc_receive", context_id, 0);
}

#[no_mangle]
pub extern "C" fn proxy_on_grpc_receive_trailing_metadata(
    context_id: u32,
    token: u32,
    trailers: u32,
) {
    log_line(
        &json!({"cb": "proxy_on_grpc_receive_trailing_metadata", "ctx": context_id, "args": [token, trailers]}),
    );
    run("proxy_on_grpc_receive_trailing_metadata", context_id, 0);
}

#[no_mangle]
pub extern "C" fn proxy_on_grpc_close(context_id: u32, token: u32, status_code: u32) {
    log_line(
        &json!({"cb": "proxy_on_grpc_close", "ctx": context_id, "args": [token, status_code]}),
    );
    run("proxy_on_grpc_close", context_id, 0);
}

#[no_mangle]
pub extern "C" fn proxy_on_foreign_function(
    root_context_id: u32,
    function_id: u32,
    data_size: u32,
) {
    log_line(
        &json!({"cb": "proxy_on_foreign_function", "ctx": root_context_id, "args": [function_id, data_size]}),
    );
    run("proxy_on_foreign_function", root_context_id, 0);
}

#[no_mangle]
pub extern "C" fn proxy_on_done(context_id: u32) -> u32 {
    log_line(&json!({"cb": "proxy_on_done", "ctx": context_id}));
    run("proxy_on_done", context_id, 1)
}

#[no_mangle]
pub extern "C" fn proxy_on_log(context_id: u32) {
    log_line(&json!({"cb": "proxy_on_log", "ctx": context_id}));
    run("proxy_on_log", context_id, 0);
}

#[no_mangle]
pub extern "C" fn proxy_on_delete(context_id: u32) {
    log_line(&json!({"cb": "proxy_on_delete", "ctx": context_id}));
    run("proxy_on_delete", context_id, 0);
}
