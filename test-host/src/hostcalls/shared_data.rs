//! Shared data: `proxy_get_shared_data`, `proxy_set_shared_data`.
//!
//! One store per host, partitioned by VM id, shared by every plugin. CAS values come from one
//! counter for all keys (starting at 1); a CAS of 0 writes unconditionally, and a write to a
//! missing key succeeds whatever its CAS, as in proxy-wasm-cpp-host.

use super::{allowed, status, Status};
use crate::host::lock;
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
            allowed(&caller, "proxy_get_shared_data")?;
            let found = memory::read(&mut caller, key_ptr, key_len).and_then(|key| {
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
            if let Err(status) = memory::write_u32(&mut caller, cas_ptr, cas) {
                return Ok(status as u32);
            }
            Ok(memory::return_bytes(&mut caller, &value, value_ptr_ptr, value_size_ptr)? as u32)
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
            allowed(&caller, "proxy_set_shared_data")?;
            Ok(status((|| {
                let key = memory::read(&mut caller, key_ptr, key_len)?;
                let value = memory::read(&mut caller, value_ptr, value_len)?;
                let state = caller.data();
                let mut data = lock(&state.shared.shared_data);
                let entry_key = (state.vm_id.clone(), key);
                if let Some((_, stored_cas)) = data.entries.get(&entry_key) {
                    if cas != 0 && cas != *stored_cas {
                        return Err(Status::CasMismatch);
                    }
                }
                let new_cas = data.next_cas();
                data.entries.insert(entry_key, (value, new_cas));
                Ok(())
            })()))
        },
    )?;
    Ok(())
}
