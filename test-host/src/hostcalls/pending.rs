//! Hostcalls that link but are not implemented yet: they return `Unimplemented`, which is what
//! proxy-wasm-cpp-host returns for a feature its host does not support.

use super::Status;
use crate::state::HostState;
use wasmtime::{FuncType, Linker, Val, ValType};

/// (name, i32 parameter count) of each pending hostcall taking only i32 parameters.
const PENDING: &[(&str, usize)] = &[
    ("proxy_set_buffer_bytes", 5),
    ("proxy_set_property", 4),
    ("proxy_close_stream", 1),
    ("proxy_continue_stream", 1),
    ("proxy_get_status", 3),
    ("proxy_get_shared_data", 5),
    ("proxy_set_shared_data", 5),
    ("proxy_set_tick_period_milliseconds", 1),
    ("proxy_get_current_time_nanoseconds", 1),
    ("proxy_grpc_cancel", 1),
    ("proxy_grpc_close", 1),
    ("proxy_grpc_stream", 9),
    ("proxy_grpc_call", 12),
    ("proxy_grpc_send", 4),
    ("proxy_http_call", 10),
    ("proxy_dequeue_shared_queue", 3),
    ("proxy_enqueue_shared_queue", 3),
    ("proxy_resolve_shared_queue", 5),
    ("proxy_register_shared_queue", 3),
    ("proxy_call_foreign_function", 6),
    ("proxy_set_effective_context", 1),
    ("proxy_done", 0),
];

pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    let engine = linker.engine().clone();
    for &(name, arity) in PENDING {
        let ty = FuncType::new(&engine, vec![ValType::I32; arity], [ValType::I32]);
        linker.func_new("env", name, ty, |_caller, _params, results| {
            results[0] = Val::I32(Status::Unimplemented as i32);
            Ok(())
        })?;
    }
    Ok(())
}
