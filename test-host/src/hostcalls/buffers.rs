//! `proxy_get_buffer_bytes` for the VM and plugin configuration buffers.

use super::Status;
use crate::memory;
use crate::state::HostState;
use wasmtime::{Caller, Linker};

const VM_CONFIGURATION: u32 = 6;
const PLUGIN_CONFIGURATION: u32 = 7;

pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_buffer_bytes",
        |mut caller: Caller<'_, HostState>,
         buffer_type: u32,
         start: u32,
         max_size: u32,
         ptr_ptr: u32,
         size_ptr: u32|
         -> wasmtime::Result<u32> {
            let state = caller.data();
            let buffer = match buffer_type {
                VM_CONFIGURATION => &state.vm_configuration,
                PLUGIN_CONFIGURATION => &state.plugin_configuration,
                _ => return Ok(Status::Unimplemented as u32),
            };
            let Some(window) = slice_window(buffer, start, max_size) else {
                return Ok(Status::BadArgument as u32);
            };
            let window = window.to_vec();
            Ok(memory::return_bytes(&mut caller, &window, ptr_ptr, size_ptr)? as u32)
        },
    )?;
    Ok(())
}

/// `buffer[start..start + max_size]`, clipped to the end; `None` when `start` is past the end.
pub(crate) fn slice_window(buffer: &[u8], start: u32, max_size: u32) -> Option<&[u8]> {
    let start = start as usize;
    if start > buffer.len() {
        return None;
    }
    let end = start.saturating_add(max_size as usize).min(buffer.len());
    Some(&buffer[start..end])
}
