//! Header and trailer maps: get/add/replace/remove a value, get/set all pairs.
//!
//! As in Envoy: names are lower-cased, `get` returns the first value, a missing name is
//! `NotFound`, and a map that does not exist in this callback is `BadArgument`.

use super::{status, Status};
use crate::memory;
use crate::state::{Access, HeaderMap, HostState};
use sdk_ext::wire::{decode_pairs, encode_pairs};
use wasmtime::{Caller, Linker};

/// The map `map_type` of the running stream, if the callback may use it with `needed` access.
fn map_with(
    state: &mut HostState,
    map_type: u32,
    needed: Access,
) -> Result<&mut HeaderMap, Status> {
    let stream = state.active_stream().ok_or(Status::BadArgument)?;
    let index = map_type as usize;
    if index >= stream.access.len() || stream.access[index] < needed {
        return Err(Status::BadArgument);
    }
    let map = match map_type {
        0 => &mut stream.request_headers,
        1 => &mut stream.request_trailers,
        2 => &mut stream.response_headers,
        _ => &mut stream.response_trailers,
    };
    map.as_mut().ok_or(Status::BadArgument)
}

fn map_mut(state: &mut HostState, map_type: u32) -> Result<&mut HeaderMap, Status> {
    map_with(state, map_type, Access::ReadWrite)
}

fn map_ref(state: &mut HostState, map_type: u32) -> Result<&HeaderMap, Status> {
    map_with(state, map_type, Access::ReadOnly).map(|map| &*map)
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
            let value = (|| {
                let key = memory::read(&mut caller, key_ptr, key_len)?;
                let map = map_ref(caller.data_mut(), map_type)?;
                map.get(&key).map(<[u8]>::to_vec).ok_or(Status::NotFound)
            })();
            match value {
                Ok(value) => {
                    Ok(
                        memory::return_bytes(&mut caller, &value, value_ptr_ptr, value_size_ptr)?
                            as u32,
                    )
                }
                Err(status) => Ok(status as u32),
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_add_header_map_value",
        |mut caller: Caller<'_, HostState>,
         map_type: u32,
         key_ptr: u32,
         key_len: u32,
         value_ptr: u32,
         value_len: u32|
         -> u32 {
            status((|| {
                let key = memory::read(&mut caller, key_ptr, key_len)?;
                let value = memory::read(&mut caller, value_ptr, value_len)?;
                map_mut(caller.data_mut(), map_type)?.add(&key, &value);
                Ok(())
            })())
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_replace_header_map_value",
        |mut caller: Caller<'_, HostState>,
         map_type: u32,
         key_ptr: u32,
         key_len: u32,
         value_ptr: u32,
         value_len: u32|
         -> u32 {
            status((|| {
                let key = memory::read(&mut caller, key_ptr, key_len)?;
                let value = memory::read(&mut caller, value_ptr, value_len)?;
                map_mut(caller.data_mut(), map_type)?.replace(&key, &value);
                Ok(())
            })())
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_remove_header_map_value",
        |mut caller: Caller<'_, HostState>, map_type: u32, key_ptr: u32, key_len: u32| -> u32 {
            status((|| {
                let key = memory::read(&mut caller, key_ptr, key_len)?;
                map_mut(caller.data_mut(), map_type)?.remove(&key);
                Ok(())
            })())
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
            // Envoy answers Ok with no pairs when the map is not available.
            let encoded = match map_ref(caller.data_mut(), map_type) {
                Ok(map) => encode_pairs(map.entries()),
                Err(_) => encode_pairs::<&[u8], &[u8]>(&[]),
            };
            Ok(memory::return_bytes(&mut caller, &encoded, ptr_ptr, size_ptr)? as u32)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_header_map_pairs",
        |mut caller: Caller<'_, HostState>, map_type: u32, ptr: u32, len: u32| -> u32 {
            status((|| {
                let encoded = memory::read(&mut caller, ptr, len)?;
                let pairs = decode_pairs(&encoded).ok_or(Status::SerializationFailure)?;
                let map = map_mut(caller.data_mut(), map_type)?;
                map.clear();
                for (key, value) in pairs {
                    map.add(&key, &value);
                }
                Ok(())
            })())
        },
    )?;
    Ok(())
}
