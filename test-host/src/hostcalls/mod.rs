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
mod queues;
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
