//! Status handling and the buffers the host hands back, shared by every hostcall wrapper.

use crate::abi::RawStatus;
pub use proxy_wasm::types::Status;

/// Maps a raw status to `Ok(())` or the matching [`Status`]; unknown codes become `InternalFailure`.
pub fn check(raw: RawStatus) -> Result<(), Status> {
    match raw {
        0 => Ok(()),
        1 => Err(Status::NotFound),
        2 => Err(Status::BadArgument),
        3 => Err(Status::SerializationFailure),
        4 => Err(Status::ParseFailure),
        7 => Err(Status::Empty),
        8 => Err(Status::CasMismatch),
        _ => Err(Status::InternalFailure),
    }
}

/// Takes ownership of a buffer the host allocated through `proxy_on_memory_allocate`.
///
/// # Safety
/// `data` must be null or a pointer returned by the module's allocator for exactly `size` bytes.
pub(crate) unsafe fn take_host_buffer(data: *mut u8, size: usize) -> Vec<u8> {
    if data.is_null() || size == 0 {
        return Vec::new();
    }
    // SAFETY: the proxy-wasm allocator hands out `Vec::with_capacity(size)` and forgets it.
    unsafe { Vec::from_raw_parts(data, size, size) }
}

/// Calls a hostcall that returns one buffer, and maps NotFound to `None`.
pub(crate) fn get_bytes(
    call: impl FnOnce(*mut *mut u8, *mut usize) -> RawStatus,
) -> Result<Option<Vec<u8>>, Status> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    match check(call(&mut data, &mut size)) {
        // SAFETY: on Ok the host has written a buffer it allocated in this module, or null.
        Ok(()) => Ok(Some(unsafe { take_host_buffer(data, size) })),
        Err(Status::NotFound) => Ok(None),
        Err(status) => Err(status),
    }
}
