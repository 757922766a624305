//! Shared data: `proxy_get_shared_data`, `proxy_set_shared_data`.
//!
//! One store per host, partitioned by VM id, shared by every plugin. CAS values come from one
//! counter for all keys (starting at 1); a CAS of 0 writes unconditionally, and a write to a
//! missing key succeeds whatever its CAS, as in proxy-wasm-cpp-host. A write that would take the
//! store past `Limits::shared_data_bytes` is `InternalFailure`.

use super::{hostcall, status, Status};
use crate::host::lock;
use crate::limits::Cap;
use crate::memory;
use crate::state::HostState;
use wasmtime::{Caller, Linker};

pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_shared_data",
        |mut caller: Caller<'_, HostState>,
         key_ptr: u32,
         key_len: u32,
         value_ptr_ptr: u32,
         value_size_ptr: u32,
         cas_ptr: u32|
         -> wasmtime::Result<u32> {
            hostcall(&mut caller, "proxy_get_shared_data", |caller| {
                let found = memory::read(caller, key_ptr, key_len).and_then(|key| {
                    let state = caller.data();
                    lock(&state.shared.shared_data)
                        .entries
                        .get(&(state.vm_id.clone(), key))
                        .cloned()
                        .ok_or(Status::NotFound)
                });
                let (value, cas) = match found {
                    Ok(entry) => entry,
                    Err(status) => return Ok(status as u32),
                };
                if let Err(status) = memory::write_u32(caller, cas_ptr, cas) {
                    return Ok(status as u32);
                }
                Ok(memory::return_bytes(caller, &value, value_ptr_ptr, value_size_ptr)? as u32)
            })
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_shared_data",
        |mut caller: Caller<'_, HostState>,
         key_ptr: u32,
         key_len: u32,
         value_ptr: u32,
         value_len: u32,
         cas: u32|
         -> wasmtime::Result<u32> {
            hostcall(&mut caller, "proxy_set_shared_data", |caller| {
                Ok(status((|| {
                    if value_len as usize > caller.data().limits().shared_data_bytes {
                        return Err(caller.data_mut().cap_hit(Cap::SharedDataBytes));
                    }
                    let key = memory::read(caller, key_ptr, key_len)?;
                    let value = memory::read(caller, value_ptr, value_len)?;
                    let state = caller.data_mut();
                    let cap = state.limits().shared_data_bytes;
                    let stored = {
                        let mut data = lock(&state.shared.shared_data);
                        let entry_key = (state.vm_id.clone(), key);
                        if let Some((_, stored_cas)) = data.entries.get(&entry_key) {
                            if cas != 0 && cas != *stored_cas {
                                return Err(Status::CasMismatch);
                            }
                        }
                        data.set(entry_key, value, cap)
                    };
                    match stored {
                        Some(_) => Ok(()),
                        None => Err(state.cap_hit(Cap::SharedDataBytes)),
                    }
                })()))
            })
        },
    )?;
    Ok(())
}
