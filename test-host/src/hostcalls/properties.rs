//! `proxy_get_property`: stream properties first, then plugin-wide ones.

use super::Status;
use crate::memory;
use crate::state::HostState;
use wasmtime::{Caller, Linker};

pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_property",
        |mut caller: Caller<'_, HostState>,
         path_ptr: u32,
         path_len: u32,
         value_ptr_ptr: u32,
         value_size_ptr: u32|
         -> wasmtime::Result<u32> {
            let path = match memory::read(&mut caller, path_ptr, path_len) {
                Ok(path) => path,
                Err(status) => return Ok(status as u32),
            };
            let state = caller.data_mut();
            let value = state
                .active_stream()
                .and_then(|stream| stream.properties.get(&path).cloned())
                .or_else(|| state.properties.get(&path).cloned());
            match value {
                Some(value) => {
                    Ok(
                        memory::return_bytes(&mut caller, &value, value_ptr_ptr, value_size_ptr)?
                            as u32,
                    )
                }
                None => Ok(Status::NotFound as u32),
            }
        },
    )?;
    Ok(())
}
