//! Header, trailer and metadata maps.
//!
//! As Envoy: names are lower-cased; `get` returns the first value and a missing name is
//! `NotFound`; a map not available in this callback is `BadArgument` (`NotFound` during
//! `on_log`), except that `get_header_map_pairs` then answers Ok with no pairs; callout response
//! maps are read-only; `get_header_map_size` is the byte size of names and values. A map is
//! capped at `Limits::stream_data_bytes`; an edit past it is `InternalFailure`.

use super::{hostcall, status, Status};
use crate::limits::Cap;
use crate::memory;
use crate::state::{Access, HeaderMap, HostState};
use sdk_ext::wire::{decode_pairs, encode_pairs};
use wasmtime::{Caller, Linker};

const MAX_MAP_TYPE: u32 = 7;

/// The map `map_type` if the running callback may use it with `needed` access.
fn map_with(
    state: &mut HostState,
    map_type: u32,
    needed: Access,
) -> Result<&mut HeaderMap, Status> {
    if map_type > MAX_MAP_TYPE {
        return Err(Status::BadArgument);
    }
    if map_type >= 4 {
        if needed == Access::ReadWrite {
            return Err(Status::BadArgument);
        }
        let view = &mut state.callout_view;
        let map = if map_type.is_multiple_of(2) {
            &mut view.headers
        } else {
            &mut view.trailers
        };
        return map.as_mut().ok_or(Status::BadArgument);
    }
    let stream = state.active_stream().ok_or(Status::BadArgument)?;
    let in_log = stream.in_log;
    match stream.map_slot(map_type, needed) {
        Some(map) => Ok(map),
        None if in_log && needed == Access::ReadOnly => Err(Status::NotFound),
        None => Err(Status::BadArgument),
    }
}

pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_header_map_value",
        |mut caller: Caller<'_, HostState>,
         map_type: u32,
         key_ptr: u32,
         key_len: u32,
         value_ptr_ptr: u32,
         value_size_ptr: u32|
         -> wasmtime::Result<u32> {
            hostcall(&mut caller, "proxy_get_header_map_value", |caller| {
                let value = (|| {
                    let key = memory::read(caller, key_ptr, key_len)?;
                    let map = map_with(caller.data_mut(), map_type, Access::ReadOnly)?;
                    map.get(&key).map(<[u8]>::to_vec).ok_or(Status::NotFound)
                })();
                memory::return_result(caller, value, value_ptr_ptr, value_size_ptr)
            })
        },
    )?;
    // Adding and replacing differ only in what they do to the map.
    type Edit = fn(&mut HeaderMap, &[u8], &[u8]);
    let edits: [(&str, Edit); 2] = [
        ("proxy_add_header_map_value", HeaderMap::add),
        ("proxy_replace_header_map_value", HeaderMap::replace),
    ];
    for (name, edit) in edits {
        linker.func_wrap(
            "env",
            name,
            move |mut caller: Caller<'_, HostState>,
                  map_type: u32,
                  key_ptr: u32,
                  key_len: u32,
                  value_ptr: u32,
                  value_len: u32|
                  -> wasmtime::Result<u32> {
                hostcall(&mut caller, name, |caller| {
                    Ok(status((|| {
                        let key = memory::read(caller, key_ptr, key_len)?;
                        let value = memory::read(caller, value_ptr, value_len)?;
                        let cap = caller.data().limits().stream_data_bytes;
                        let map = map_with(caller.data_mut(), map_type, Access::ReadWrite)?;
                        if map.byte_size() + key.len() + value.len() > cap {
                            return Err(caller.data_mut().cap_hit(Cap::StreamDataBytes));
                        }
                        edit(map, &key, &value);
                        Ok(())
                    })()))
                })
            },
        )?;
    }
    linker.func_wrap(
        "env",
        "proxy_remove_header_map_value",
        |mut caller: Caller<'_, HostState>,
         map_type: u32,
         key_ptr: u32,
         key_len: u32|
         -> wasmtime::Result<u32> {
            hostcall(&mut caller, "proxy_remove_header_map_value", |caller| {
                Ok(status((|| {
                    let key = memory::read(caller, key_ptr, key_len)?;
                    map_with(caller.data_mut(), map_type, Access::ReadWrite)?.remove(&key);
                    Ok(())
                })()))
            })
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_header_map_pairs",
        |mut caller: Caller<'_, HostState>,
         map_type: u32,
         ptr_ptr: u32,
         size_ptr: u32|
         -> wasmtime::Result<u32> {
            hostcall(&mut caller, "proxy_get_header_map_pairs", |caller| {
                if map_type > MAX_MAP_TYPE {
                    return Ok(Status::BadArgument as u32);
                }
                // Envoy answers Ok with no pairs when the map is not available.
                let encoded = match map_with(caller.data_mut(), map_type, Access::ReadOnly) {
                    Ok(map) if !map.is_empty() => encode_pairs(map.entries()),
                    _ => Vec::new(),
                };
                Ok(memory::return_bytes(caller, &encoded, ptr_ptr, size_ptr)? as u32)
            })
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_header_map_pairs",
        |mut caller: Caller<'_, HostState>,
         map_type: u32,
         ptr: u32,
         len: u32|
         -> wasmtime::Result<u32> {
            hostcall(&mut caller, "proxy_set_header_map_pairs", |caller| {
                Ok(status((|| {
                    let encoded = memory::read(caller, ptr, len)?;
                    // Envoy reads malformed pairs as an empty list rather than failing.
                    let pairs = decode_pairs(&encoded).unwrap_or_default();
                    let bytes: usize = pairs
                        .iter()
                        .map(|(key, value)| key.len() + value.len())
                        .sum();
                    if bytes > caller.data().limits().stream_data_bytes {
                        return Err(caller.data_mut().cap_hit(Cap::StreamDataBytes));
                    }
                    let map = map_with(caller.data_mut(), map_type, Access::ReadWrite)?;
                    map.clear();
                    for (key, value) in pairs {
                        map.add(&key, &value);
                    }
                    Ok(())
                })()))
            })
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_header_map_size",
        |mut caller: Caller<'_, HostState>,
         map_type: u32,
         size_ptr: u32|
         -> wasmtime::Result<u32> {
            hostcall(&mut caller, "proxy_get_header_map_size", |caller| {
                Ok(status((|| {
                    let size = map_with(caller.data_mut(), map_type, Access::ReadWrite)?.byte_size()
                        as u32;
                    memory::write_u32(caller, size_ptr, size)
                })()))
            })
        },
    )?;
    Ok(())
}
