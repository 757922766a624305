//! Bytes-safe header and trailer maps: `proxy_{get,add,replace,remove}_header_map_value` and
//! `proxy_get_header_map_pairs`, with every failure returned as a [`Status`].

use crate::abi;
use crate::host::{check, get_bytes, Status};
use crate::wire::{decode_pairs, Pairs};
pub use proxy_wasm::types::MapType;

/// One of the stream's header or trailer maps, named by its proxy-wasm map type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderMap(pub MapType);

/// The request headers of the current stream.
pub const REQUEST_HEADERS: HeaderMap = HeaderMap(MapType::HttpRequestHeaders);
/// The request trailers of the current stream.
pub const REQUEST_TRAILERS: HeaderMap = HeaderMap(MapType::HttpRequestTrailers);
/// The response headers of the current stream.
pub const RESPONSE_HEADERS: HeaderMap = HeaderMap(MapType::HttpResponseHeaders);
/// The response trailers of the current stream.
pub const RESPONSE_TRAILERS: HeaderMap = HeaderMap(MapType::HttpResponseTrailers);

impl HeaderMap {
    /// The first value of `name` (`proxy_get_header_map_value`), or `None` when absent.
    pub fn get(self, name: &str) -> Result<Option<Vec<u8>>, Status> {
        get_bytes(|data, size| unsafe {
            abi::proxy_get_header_map_value(self.0 as u32, name.as_ptr(), name.len(), data, size)
        })
    }

    /// Whether `name` is present at least once.
    pub fn contains(self, name: &str) -> Result<bool, Status> {
        self.get(name).map(|value| value.is_some())
    }

    /// Replaces every value of `name` with `value` (`proxy_replace_header_map_value`).
    pub fn set(self, name: &str, value: &[u8]) -> Result<(), Status> {
        check(unsafe {
            abi::proxy_replace_header_map_value(
                self.0 as u32,
                name.as_ptr(),
                name.len(),
                value.as_ptr(),
                value.len(),
            )
        })
    }

    /// Adds one more entry for `name`, keeping existing ones (`proxy_add_header_map_value`).
    pub fn add(self, name: &str, value: &[u8]) -> Result<(), Status> {
        check(unsafe {
            abi::proxy_add_header_map_value(
                self.0 as u32,
                name.as_ptr(),
                name.len(),
                value.as_ptr(),
                value.len(),
            )
        })
    }

    /// Removes every entry for `name` (`proxy_remove_header_map_value`).
    pub fn remove(self, name: &str) -> Result<(), Status> {
        check(unsafe {
            abi::proxy_remove_header_map_value(self.0 as u32, name.as_ptr(), name.len())
        })
    }

    /// Every entry in order (`proxy_get_header_map_pairs`), names and values as raw bytes.
    pub fn pairs(self) -> Result<Pairs, Status> {
        let serialized = get_bytes(|data, size| unsafe {
            abi::proxy_get_header_map_pairs(self.0 as u32, data, size)
        })?
        .unwrap_or_default();
        decode_pairs(&serialized).ok_or(Status::SerializationFailure)
    }
}
