//! `proxy_log`, `proxy_get_log_level`.

use super::{status, Status};
use crate::memory;
use crate::state::{HostState, LogEntry, LogLevel};
use wasmtime::{Caller, Linker};

pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_log",
        |mut caller: Caller<'_, HostState>, level: u32, ptr: u32, len: u32| -> u32 {
            let result = (|| {
                let level = LogLevel::from_abi(level).ok_or(Status::BadArgument)?;
                let message = memory::read(&mut caller, ptr, len)?;
                let state = caller.data_mut();
                if level >= state.log_level {
                    state.logs.push(LogEntry {
                        level,
                        message: String::from_utf8_lossy(&message).into_owned(),
                    });
                }
                Ok(())
            })();
            status(result)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_log_level",
        |mut caller: Caller<'_, HostState>, level_ptr: u32| -> u32 {
            let level = caller.data().log_level.to_abi();
            status(memory::write_u32(&mut caller, level_ptr, level))
        },
    )?;
    Ok(())
}
