//! The hostcalls, one module per ABI area. Each follows proxy-wasm-cpp-host and Envoy: statuses
//! are returned, not trapped on, and a bad guest pointer is `InvalidMemoryAccess`.

mod buffers;
mod headers;
mod http;
mod logging;
mod pending;
mod properties;

use crate::state::HostState;
use wasmtime::Linker;

/// A proxy-wasm status code as the host returns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Status {
    /// Success.
    Ok = 0,
    /// The key or value does not exist.
    NotFound = 1,
    /// An argument is invalid, or the data is not available in this callback.
    BadArgument = 2,
    /// Data could not be serialized or deserialized.
    SerializationFailure = 3,
    /// A guest pointer or length is outside its memory.
    InvalidMemoryAccess = 6,
    /// A queue is empty.
    Empty = 7,
    /// A shared-data CAS did not match.
    CasMismatch = 8,
    /// The host failed.
    InternalFailure = 10,
    /// The hostcall is not implemented.
    Unimplemented = 12,
}

/// Flattens a hostcall body's `Result<(), Status>` into the status code the guest receives.
pub(crate) fn status(result: Result<(), Status>) -> u32 {
    match result {
        Ok(()) => Status::Ok as u32,
        Err(status) => status as u32,
    }
}

/// Adds every hostcall this host implements to `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    logging::add_to_linker(linker)?;
    buffers::add_to_linker(linker)?;
    headers::add_to_linker(linker)?;
    properties::add_to_linker(linker)?;
    http::add_to_linker(linker)?;
    pending::add_to_linker(linker)?;
    Ok(())
}
