//! `proxy_log`, `proxy_get_log_level`.

use super::{hostcall, status, Status};
use crate::engine::AbiVersion;
use crate::memory;
use crate::state::{HostState, LogLevel};
use wasmtime::{Caller, Linker};

pub(super) fn add_to_linker(
    linker: &mut Linker<HostState>,
    abi: AbiVersion,
) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_log",
        |mut caller: Caller<'_, HostState>,
         level: u32,
         ptr: u32,
         len: u32|
         -> wasmtime::Result<u32> {
            hostcall(&mut caller, "proxy_log", |caller| {
                Ok(status((|| {
                    let level = LogLevel::from_abi(level).ok_or(Status::BadArgument)?;
                    let state = caller.data();
                    if level >= state.log_level && len as usize > state.limits().log_bytes {
                        // Refused before it is copied.
                        crate::host::lock(&state.logs).refuse();
                        return Err(Status::InternalFailure);
                    }
                    let message = memory::read(caller, ptr, len)?;
                    caller
                        .data()
                        .log(level, String::from_utf8_lossy(&message).into_owned())
                })()))
            })
        },
    )?;
    if abi == AbiVersion::V0_2_1 {
        linker.func_wrap(
            "env",
            "proxy_get_log_level",
            |mut caller: Caller<'_, HostState>, level_ptr: u32| -> wasmtime::Result<u32> {
                hostcall(&mut caller, "proxy_get_log_level", |caller| {
                    let level = caller.data().log_level.to_abi();
                    Ok(status(memory::write_u32(caller, level_ptr, level)))
                })
            },
        )?;
    }
    Ok(())
}
