//! Reading and writing guest memory from hostcalls, and handing buffers to the guest through its
//! own allocator (`malloc`, else `proxy_on_memory_allocate`), as proxy-wasm-cpp-host does. A bad
//! guest pointer is reported as `InvalidMemoryAccess`, never a trap or a host panic.

use crate::hostcalls::Status;
use crate::state::HostState;
use wasmtime::{Caller, Extern, Memory};

fn memory(caller: &mut Caller<'_, HostState>) -> Result<Memory, Status> {
    match caller.get_export("memory") {
        Some(Extern::Memory(memory)) => Ok(memory),
        _ => Err(Status::InvalidMemoryAccess),
    }
}

/// Copies `len` bytes at `ptr` out of guest memory.
pub(crate) fn read(
    caller: &mut Caller<'_, HostState>,
    ptr: u32,
    len: u32,
) -> Result<Vec<u8>, Status> {
    if len == 0 {
        return Ok(Vec::new());
    }
    let memory = memory(caller)?;
    let start = ptr as usize;
    let end = start
        .checked_add(len as usize)
        .ok_or(Status::InvalidMemoryAccess)?;
    memory
        .data(&caller)
        .get(start..end)
        .map(<[u8]>::to_vec)
        .ok_or(Status::InvalidMemoryAccess)
}

/// Gathers the buffers of the `count` iovecs (pointer, length) at `iovs`, as `fd_write` reads
/// them: every iovec and buffer must lie in memory, but only the first `keep` bytes are copied,
/// so that iovecs repeating one large buffer cannot grow the host. Returns those bytes and the
/// total length.
pub(crate) fn gather(
    caller: &mut Caller<'_, HostState>,
    iovs: u32,
    count: u32,
    keep: usize,
) -> Result<(Vec<u8>, u64), Status> {
    if count == 0 {
        return Ok((Vec::new(), 0));
    }
    let memory = memory(caller)?;
    let data = memory.data(&caller);
    let mut kept = Vec::new();
    let mut total = 0u64;
    for index in 0..u64::from(count) {
        let at = u64::from(iovs) + index * 8;
        let iovec = usize::try_from(at)
            .ok()
            .and_then(|at| data.get(at..at.checked_add(8)?))
            .ok_or(Status::InvalidMemoryAccess)?;
        let word = |i: usize| {
            let mut bytes = [0u8; 4];
            bytes.copy_from_slice(&iovec[i..i + 4]);
            u32::from_le_bytes(bytes) as usize
        };
        let (ptr, len) = (word(0), word(4));
        if len == 0 {
            continue;
        }
        let buffer = ptr
            .checked_add(len)
            .and_then(|end| data.get(ptr..end))
            .ok_or(Status::InvalidMemoryAccess)?;
        let room = keep.saturating_sub(kept.len());
        kept.extend_from_slice(&buffer[..buffer.len().min(room)]);
        total += len as u64;
    }
    Ok((kept, total))
}

/// Copies a string argument out of guest memory (lossily decoded).
pub(crate) fn read_string(
    caller: &mut Caller<'_, HostState>,
    ptr: u32,
    len: u32,
) -> Result<String, Status> {
    read(caller, ptr, len).map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

/// Writes bytes at `ptr` in guest memory.
pub(crate) fn write(
    caller: &mut Caller<'_, HostState>,
    ptr: u32,
    bytes: &[u8],
) -> Result<(), Status> {
    let memory = memory(caller)?;
    memory
        .write(&mut *caller, ptr as usize, bytes)
        .map_err(|_| Status::InvalidMemoryAccess)
}

/// Writes a little-endian u32 at `ptr`.
pub(crate) fn write_u32(
    caller: &mut Caller<'_, HostState>,
    ptr: u32,
    value: u32,
) -> Result<(), Status> {
    write(caller, ptr, &value.to_le_bytes())
}

/// Writes a little-endian u64 at `ptr`.
pub(crate) fn write_u64(
    caller: &mut Caller<'_, HostState>,
    ptr: u32,
    value: u64,
) -> Result<(), Status> {
    write(caller, ptr, &value.to_le_bytes())
}

/// Allocates `bytes.len()` bytes with the guest's allocator, copies `bytes` there and writes the
/// pointer and size to `ptr_ptr` and `size_ptr`. An empty buffer is returned as null and 0
/// without allocating. A trap inside the allocator is returned as `Err` (the hostcall traps with
/// it); memory faults become `InvalidMemoryAccess`.
pub(crate) fn return_bytes(
    caller: &mut Caller<'_, HostState>,
    bytes: &[u8],
    ptr_ptr: u32,
    size_ptr: u32,
) -> wasmtime::Result<Status> {
    let address = if bytes.is_empty() {
        0
    } else {
        let allocate = match caller
            .get_export("malloc")
            .or_else(|| caller.get_export("proxy_on_memory_allocate"))
        {
            Some(Extern::Func(func)) => match func.typed::<u32, u32>(&*caller) {
                Ok(typed) => typed,
                Err(_) => return Ok(Status::InvalidMemoryAccess),
            },
            _ => return Ok(Status::InvalidMemoryAccess),
        };
        let address = allocate.call(&mut *caller, bytes.len() as u32)?;
        if address == 0 {
            return Ok(Status::InvalidMemoryAccess);
        }
        if let Err(status) = write(caller, address, bytes) {
            return Ok(status);
        }
        address
    };
    let result = write_u32(caller, ptr_ptr, address)
        .and_then(|()| write_u32(caller, size_ptr, bytes.len() as u32));
    Ok(match result {
        Ok(()) => Status::Ok,
        Err(status) => status,
    })
}

/// Like [`return_bytes`], for a hostcall body that produced either bytes or a status.
pub(crate) fn return_result(
    caller: &mut Caller<'_, HostState>,
    result: Result<Vec<u8>, Status>,
    ptr_ptr: u32,
    size_ptr: u32,
) -> wasmtime::Result<u32> {
    match result {
        Ok(bytes) => Ok(return_bytes(caller, &bytes, ptr_ptr, size_ptr)? as u32),
        Err(status) => Ok(status as u32),
    }
}
