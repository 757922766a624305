//! Buffers (`proxy_get_buffer_bytes`): the plugin and VM configuration, bodies, callout replies.

use crate::abi;
use crate::host::{get_bytes, Status};
pub use proxy_wasm::types::BufferType;

/// Reads up to `max_size` bytes of a buffer from `start`. An absent buffer reads as empty.
pub fn get(buffer: BufferType, start: usize, max_size: usize) -> Result<Vec<u8>, Status> {
    get_bytes(|data, size| unsafe {
        abi::proxy_get_buffer_bytes(buffer as u32, start, max_size, data, size)
    })
    .map(Option::unwrap_or_default)
}
