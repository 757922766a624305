//! Buffers: `proxy_get_buffer_bytes`, `proxy_set_buffer_bytes`, `proxy_get_buffer_status`.
//!
//! As Envoy: bodies read as empty outside their callbacks; the HTTP call response body exists
//! only during `proxy_on_http_call_response`; the plugin configuration only while the root
//! context starts and configures; writes support replacing a prefix (start 0) or appending
//! (start at or past the end), nothing in between.

use super::{hostcall, status, Status};
use crate::limits::Cap;
use crate::memory;
use crate::state::HostState;
use wasmtime::{Caller, Linker};

const REQUEST_BODY: u32 = 0;
const RESPONSE_BODY: u32 = 1;
const HTTP_CALL_RESPONSE_BODY: u32 = 4;
const GRPC_RECEIVE_BUFFER: u32 = 5;
const VM_CONFIGURATION: u32 = 6;
const PLUGIN_CONFIGURATION: u32 = 7;
const MAX_BUFFER_TYPE: u32 = 8;

/// The readable contents of a buffer.
fn read_buffer(state: &mut HostState, buffer_type: u32) -> Result<Vec<u8>, Status> {
    if buffer_type > MAX_BUFFER_TYPE {
        return Err(Status::BadArgument);
    }
    Ok(match buffer_type {
        REQUEST_BODY | RESPONSE_BODY => state
            .active_stream()
            .map(|stream| stream.body(buffer_type == RESPONSE_BODY).clone())
            .unwrap_or_default(),
        HTTP_CALL_RESPONSE_BODY => state.callout_view.body.clone().ok_or(Status::NotFound)?,
        GRPC_RECEIVE_BUFFER => state.grpc_receive_buffer.clone(),
        VM_CONFIGURATION => state.vm_configuration.clone(),
        PLUGIN_CONFIGURATION if state.plugin_configuration_visible => {
            state.plugin_configuration.clone()
        }
        PLUGIN_CONFIGURATION => return Err(Status::NotFound),
        _ => Vec::new(),
    })
}

/// The buffer a write goes to, if it is writable here.
fn writable_buffer(state: &mut HostState, buffer_type: u32) -> Result<&mut Vec<u8>, Status> {
    match buffer_type {
        REQUEST_BODY | RESPONSE_BODY => state
            .active_stream()
            .map(|stream| stream.body_mut(buffer_type == RESPONSE_BODY))
            .ok_or(Status::BadArgument),
        GRPC_RECEIVE_BUFFER => Ok(&mut state.grpc_receive_buffer),
        _ => Err(Status::BadArgument),
    }
}

/// Envoy's `Buffer::copyFrom`: start 0 drains `size` bytes and prepends, start at or past the end
/// appends, anything else is refused.
pub(crate) fn splice(
    buffer: &mut Vec<u8>,
    start: usize,
    size: usize,
    data: &[u8],
) -> Result<(), Status> {
    if start == 0 {
        buffer.drain(..size.min(buffer.len()));
        buffer.splice(0..0, data.iter().copied());
        Ok(())
    } else if start >= buffer.len() {
        buffer.extend_from_slice(data);
        Ok(())
    } else {
        Err(Status::BadArgument)
    }
}

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
            hostcall(&mut caller, "proxy_get_buffer_bytes", |caller| {
                let window = read_buffer(caller.data_mut(), buffer_type).map(|buffer| {
                    let start = (start as usize).min(buffer.len());
                    let end = start.saturating_add(max_size as usize).min(buffer.len());
                    buffer[start..end].to_vec()
                });
                memory::return_result(caller, window, ptr_ptr, size_ptr)
            })
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_buffer_bytes",
        |mut caller: Caller<'_, HostState>,
         buffer_type: u32,
         start: u32,
         size: u32,
         data_ptr: u32,
         data_len: u32|
         -> wasmtime::Result<u32> {
            hostcall(&mut caller, "proxy_set_buffer_bytes", |caller| {
                Ok(status((|| {
                    let data = memory::read(caller, data_ptr, data_len)?;
                    if buffer_type > MAX_BUFFER_TYPE {
                        return Err(Status::BadArgument);
                    }
                    let cap = caller.data().limits().stream_data_bytes;
                    let buffer = writable_buffer(caller.data_mut(), buffer_type)?;
                    let kept = if start == 0 {
                        buffer.len() - (size as usize).min(buffer.len())
                    } else {
                        buffer.len()
                    };
                    if kept + data.len() > cap {
                        return Err(caller.data_mut().cap_hit(Cap::StreamDataBytes));
                    }
                    splice(buffer, start as usize, size as usize, &data)
                })()))
            })
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_buffer_status",
        |mut caller: Caller<'_, HostState>,
         buffer_type: u32,
         length_ptr: u32,
         flags_ptr: u32|
         -> wasmtime::Result<u32> {
            hostcall(&mut caller, "proxy_get_buffer_status", |caller| {
                Ok(status((|| {
                    let length = read_buffer(caller.data_mut(), buffer_type)?.len() as u32;
                    memory::write_u32(caller, length_ptr, length)?;
                    // Envoy never sets the end-of-stream flag here.
                    memory::write_u32(caller, flags_ptr, 0)
                })()))
            })
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splice_follows_envoy_copy_from() {
        let mut buffer = b"hello world".to_vec();
        splice(&mut buffer, 0, 5, b"HOWDY").unwrap();
        assert_eq!(buffer, b"HOWDY world");
        splice(&mut buffer, 0, 0, b">").unwrap();
        assert_eq!(buffer, b">HOWDY world");
        splice(&mut buffer, 99, 0, b"!").unwrap();
        assert_eq!(buffer, b">HOWDY world!");
        assert_eq!(splice(&mut buffer, 3, 1, b"x"), Err(Status::BadArgument));
        splice(&mut buffer, 0, 1000, b"new").unwrap();
        assert_eq!(buffer, b"new");
    }
}
