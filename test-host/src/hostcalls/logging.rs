//! `proxy_log`, `proxy_get_log_level`.

use super::{allowed, status, Status};
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
        |mut caller: Caller<'_, HostState>, level: u32, ptr: u32, len: u32| -> u32 {
            status((|| {
                let level = LogLevel::from_abi(level).ok_or(Status::BadArgument)?;
                let message = memory::read(&mut caller, ptr, len)?;
                caller
                    .data()
                    .log(level, String::from_utf8_lossy(&message).into_owned());
                Ok(())
            })())
        },
    )?;
    if abi == AbiVersion::V0_2_1 {
        linker.func_wrap(
            "env",
            "proxy_get_log_level",
            |mut caller: Caller<'_, HostState>, level_ptr: u32| -> wasmtime::Result<u32> {
                allowed(&caller, "proxy_get_log_level")?;
                let level = caller.data().log_level.to_abi();
                Ok(status(memory::write_u32(&mut caller, level_ptr, level)))
            },
        )?;
    }
    Ok(())
}
