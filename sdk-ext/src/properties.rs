//! Stream properties (`proxy_get_property`): `source.address`, `request.protocol`, ...

use crate::abi;
use crate::host::{get_bytes, Status};

/// Reads a property by its path segments, e.g. `&["source", "address"]`. `None` when the host
/// has no value for it.
pub fn get(path: &[&str]) -> Result<Option<Vec<u8>>, Status> {
    let encoded = encode_path(path);
    get_bytes(|data, size| unsafe {
        abi::proxy_get_property(encoded.as_ptr(), encoded.len(), data, size)
    })
}

/// Encodes a property path as the ABI wants it: segments joined by NUL bytes.
pub fn encode_path(path: &[&str]) -> Vec<u8> {
    path.join("\0").into_bytes()
}

#[cfg(test)]
mod tests {
    #[test]
    fn path_segments_are_nul_joined() {
        assert_eq!(
            super::encode_path(&["source", "address"]),
            b"source\0address"
        );
        assert_eq!(super::encode_path(&["plugin_name"]), b"plugin_name");
    }
}
