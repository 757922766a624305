//! The hostcalls, one module per ABI area, following proxy-wasm-cpp-host and Envoy: failures are
//! statuses, a bad guest pointer is `InvalidMemoryAccess`, and only `proxy_log` may be called
//! while `_initialize`/`_start` runs.

mod buffers;
mod callouts;
mod foreign;
mod headers;
mod logging;
mod metrics;
mod properties;
pub(crate) mod queues;
mod shared_data;
mod stream;
mod time;

use crate::engine::AbiVersion;
use crate::state::HostState;
use wasmtime::{Caller, Linker};

/// A proxy-wasm status code (`WasmResult`) as the host returns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Status {
    /// `0`: success.
    Ok = 0,
    /// `1`: the key, value, context or function does not exist.
    NotFound = 1,
    /// `2`: an argument is invalid, or the data is not available in this callback.
    BadArgument = 2,
    /// `3`: data could not be serialized or deserialized.
    SerializationFailure = 3,
    /// `4`: data could not be parsed.
    ParseFailure = 4,
    /// `6`: a guest pointer or length is outside its memory.
    InvalidMemoryAccess = 6,
    /// `7`: a queue is empty.
    Empty = 7,
    /// `8`: a shared-data CAS did not match.
    CasMismatch = 8,
    /// `10`: the host failed.
    InternalFailure = 10,
    /// `11`: a callout's connection broke.
    BrokenConnection = 11,
    /// `12`: not implemented by this host.
    Unimplemented = 12,
}

impl Status {
    /// The status for an ABI number, if this host uses it.
    pub fn from_abi(value: u32) -> Option<Status> {
        Some(match value {
            0 => Status::Ok,
            1 => Status::NotFound,
            2 => Status::BadArgument,
            3 => Status::SerializationFailure,
            4 => Status::ParseFailure,
            6 => Status::InvalidMemoryAccess,
            7 => Status::Empty,
            8 => Status::CasMismatch,
            10 => Status::InternalFailure,
            11 => Status::BrokenConnection,
            12 => Status::Unimplemented,
            _ => return None,
        })
    }
}

/// How often an injected hostcall failure applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Times {
    /// The next call only.
    Once,
    /// The next `n` calls.
    Next(u32),
    /// Every call until `Plugin::clear_hostcall_failures`.
    Always,
}

/// A hostcall the test made fail: its name, the status the module gets, and how many more calls
/// it applies to (`None`: all).
#[derive(Debug, Clone)]
pub(crate) struct Fault {
    pub name: &'static str,
    pub status: Status,
    pub remaining: Option<u32>,
}

/// One hostcall a plugin made, as the trace keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostcallRecord {
    /// The context it acted for (the effective context, if one was set).
    pub context_id: u32,
    /// The hostcall, e.g. `proxy_get_shared_data`.
    pub name: &'static str,
    /// The status the module got.
    pub status: Status,
    /// Whether the status was injected by the test rather than computed.
    pub injected: bool,
}

/// The `proxy_*` hostcall called `name`, for the names tests give.
pub(crate) fn known_name(name: &str) -> Option<&'static str> {
    names(AbiVersion::V0_2_1)
        .into_iter()
        .find(|known| *known == name && known.starts_with("proxy_"))
}

/// Runs hostcall `name`: `enter`, then `body` unless a failure is injected, then `exit`.
pub(crate) fn hostcall(
    caller: &mut Caller<'_, HostState>,
    name: &'static str,
    body: impl FnOnce(&mut Caller<'_, HostState>) -> wasmtime::Result<u32>,
) -> wasmtime::Result<u32> {
    if let Some(injected) = enter(caller, name)? {
        return Ok(injected);
    }
    let result = body(caller);
    exit(caller, name, result)
}

/// What every hostcall does first: traps, as Envoy does, when it is not logging and the module is
/// starting; returns an injected failure's status, if one applies, which the hostcall returns
/// without doing anything.
fn enter(caller: &mut Caller<'_, HostState>, name: &'static str) -> wasmtime::Result<Option<u32>> {
    if name != "proxy_log" {
        allowed(caller, name)?;
    }
    let state = caller.data_mut();
    if state.faults.is_empty() {
        return Ok(None);
    }
    let Some(at) = state.faults.iter().position(|fault| fault.name == name) else {
        return Ok(None);
    };
    let fault = &mut state.faults[at];
    let status = fault.status;
    match &mut fault.remaining {
        Some(1) => {
            state.faults.remove(at);
        }
        Some(remaining) => *remaining -= 1,
        None => {}
    }
    record(state, name, status, true);
    Ok(Some(status as u32))
}

/// What every hostcall does last: records it in the trace and hands its result on.
fn exit(
    caller: &mut Caller<'_, HostState>,
    name: &'static str,
    result: wasmtime::Result<u32>,
) -> wasmtime::Result<u32> {
    if let Ok(code) = result {
        let status = Status::from_abi(code).unwrap_or(Status::InternalFailure);
        record(caller.data_mut(), name, status, false);
    }
    result
}

fn record(state: &mut HostState, name: &'static str, status: Status, injected: bool) {
    let cap = state.limits().trace_entries;
    if cap == 0 {
        return;
    }
    if state.trace.len() >= cap {
        state.trace.pop_front();
    }
    let context_id = state.context();
    state.trace.push_back(HostcallRecord {
        context_id,
        name,
        status,
        injected,
    });
}

/// Flattens a hostcall body's result into the status code the guest receives.
pub(crate) fn status(result: Result<(), Status>) -> u32 {
    match result {
        Ok(()) => Status::Ok as u32,
        Err(status) => status as u32,
    }
}

/// Traps, as Envoy does, when a hostcall other than logging runs during `_initialize`/`_start`.
pub(crate) fn allowed(caller: &Caller<'_, HostState>, name: &str) -> wasmtime::Result<()> {
    if caller.data().restricted {
        wasmtime::bail!("restricted_callback: {name} may not be called while the module starts (_initialize/_start)");
    }
    Ok(())
}

/// Every hostcall name this host provides for `abi`, for reports of unsupported imports.
pub(crate) fn names(abi: AbiVersion) -> Vec<&'static str> {
    let mut names = vec![
        "proxy_log",
        "proxy_get_status",
        "proxy_set_property",
        "proxy_get_property",
        "proxy_send_local_response",
        "proxy_get_shared_data",
        "proxy_set_shared_data",
        "proxy_register_shared_queue",
        "proxy_resolve_shared_queue",
        "proxy_dequeue_shared_queue",
        "proxy_enqueue_shared_queue",
        "proxy_get_header_map_value",
        "proxy_add_header_map_value",
        "proxy_replace_header_map_value",
        "proxy_remove_header_map_value",
        "proxy_get_header_map_pairs",
        "proxy_set_header_map_pairs",
        "proxy_get_header_map_size",
        "proxy_get_buffer_status",
        "proxy_get_buffer_bytes",
        "proxy_set_buffer_bytes",
        "proxy_http_call",
        "proxy_grpc_call",
        "proxy_grpc_stream",
        "proxy_grpc_close",
        "proxy_grpc_cancel",
        "proxy_grpc_send",
        "proxy_set_tick_period_milliseconds",
        "proxy_get_current_time_nanoseconds",
        "proxy_define_metric",
        "proxy_increment_metric",
        "proxy_record_metric",
        "proxy_get_metric",
        "proxy_set_effective_context",
        "proxy_done",
        "proxy_call_foreign_function",
        "proxy_continue_stream",
        "proxy_close_stream",
        "pthread_equal",
        "emscripten_notify_memory_growth",
    ];
    if abi == AbiVersion::V0_2_1 {
        names.push("proxy_get_log_level");
    }
    names
}

/// Adds every hostcall of `abi` to `linker`. As in Envoy, 0.1.0-only imports
/// (`proxy_continue_request`, ...) are absent, and `proxy_get_log_level` exists only for 0.2.1.
pub(crate) fn add_to_linker(
    linker: &mut Linker<HostState>,
    abi: AbiVersion,
) -> wasmtime::Result<()> {
    logging::add_to_linker(linker, abi)?;
    buffers::add_to_linker(linker)?;
    headers::add_to_linker(linker)?;
    properties::add_to_linker(linker)?;
    shared_data::add_to_linker(linker)?;
    queues::add_to_linker(linker)?;
    time::add_to_linker(linker)?;
    stream::add_to_linker(linker)?;
    callouts::add_to_linker(linker)?;
    metrics::add_to_linker(linker)?;
    foreign::add_to_linker(linker)?;
    Ok(())
}
