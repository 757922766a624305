//! Stream properties (read with [`Cx::property`](crate::Cx::property)): path encoding and values.

/// Encodes a property path as the ABI wants it: segments joined by NUL bytes.
pub fn encode_path(path: &[&str]) -> Vec<u8> {
    path.join("\0").into_bytes()
}

/// The IP of a `source.address` or `destination.address` value (read with `proxy_get_property`):
/// `1.2.3.4:80` → `1.2.3.4`, `[::1]:80` → `::1`; anything else is returned as is.
pub fn address_without_port(address: &[u8]) -> &[u8] {
    if let Some(rest) = address.strip_prefix(b"[") {
        return match rest.iter().position(|&b| b == b']') {
            Some(end) => rest.split_at(end).0,
            None => address,
        };
    }
    match address.iter().rposition(|&b| b == b':') {
        Some(colon) if !address.split_at(colon).0.contains(&b':') => address.split_at(colon).0,
        _ => address,
    }
}

#[cfg(test)]
mod tests {
    use super::address_without_port;

    #[test]
    fn ports_are_stripped_from_addresses() {
        assert_eq!(address_without_port(b"1.2.3.4:80"), b"1.2.3.4");
        assert_eq!(address_without_port(b"[::1]:10000"), b"::1");
        assert_eq!(address_without_port(b"[::1]"), b"::1");
        assert_eq!(address_without_port(b"1.2.3.4"), b"1.2.3.4");
        assert_eq!(address_without_port(b"::1"), b"::1");
        assert_eq!(address_without_port(b"[::1"), b"[::1");
        assert_eq!(address_without_port(b""), b"");
    }

    #[test]
    fn path_segments_are_nul_joined() {
        assert_eq!(
            super::encode_path(&["source", "address"]),
            b"source\0address"
        );
        assert_eq!(super::encode_path(&["plugin_name"]), b"plugin_name");
    }
}
