//! Shared data (`proxy_get_shared_data`, `proxy_set_shared_data`): one key-value store for every
//! VM with the same VM id, as Envoy's workers share it, with compare-and-swap.

use crate::abi;
use crate::host::{check, take_host_buffer, Status};

/// A value and the CAS token to pass back to [`set`] for a conditional write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The stored bytes.
    pub value: Vec<u8>,
    /// The version of this value.
    pub cas: u32,
}

/// Reads `key`; `None` when it was never set.
pub fn get(key: &str) -> Result<Option<Entry>, Status> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    let mut cas: u32 = 0;
    match check(unsafe {
        abi::proxy_get_shared_data(key.as_ptr(), key.len(), &mut data, &mut size, &mut cas)
    }) {
        // SAFETY: on Ok the host wrote a buffer it allocated in this module, or null.
        Ok(()) => Ok(Some(Entry {
            value: unsafe { take_host_buffer(data, size) },
            cas,
        })),
        Err(Status::NotFound) => Ok(None),
        Err(status) => Err(status),
    }
}

/// Writes `key`. With `cas` 0 the write is unconditional; otherwise it fails with
/// `CasMismatch` if another write happened since the read that returned `cas`.
pub fn set(key: &str, value: &[u8], cas: u32) -> Result<(), Status> {
    check(unsafe {
        abi::proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas)
    })
}

/// Read-modify-write with CAS, retried on conflict up to `attempts` times. `update` gets the
/// current value and returns the new one, or `None` to leave the key as it is. Returns what
/// `update` returned last (`Ok(None)` when it chose not to write).
pub fn update<T>(
    key: &str,
    attempts: u32,
    mut update: impl FnMut(Option<&[u8]>) -> Option<(Vec<u8>, T)>,
) -> Result<Option<T>, Status> {
    for _ in 0..attempts.max(1) {
        let current = get(key)?;
        let Some((value, result)) = update(current.as_ref().map(|entry| entry.value.as_slice()))
        else {
            return Ok(None);
        };
        // A missing key is written with CAS 0; Envoy accepts any CAS for a missing key anyway.
        let cas = current.map_or(0, |entry| entry.cas);
        match set(key, &value, cas) {
            Ok(()) => return Ok(Some(result)),
            Err(Status::CasMismatch) => continue,
            Err(status) => return Err(status),
        }
    }
    Err(Status::CasMismatch)
}
