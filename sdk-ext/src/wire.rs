//! The proxy-wasm wire formats shared by guest and host: header map pairs.

/// Header or trailer entries as raw `(name, value)` bytes, in order.
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// Decodes the proxy-wasm header map wire format: a u32 count, then a (name length, value length)
/// u32 pair per entry, then each name and value followed by a NUL byte. All integers are
/// little-endian. Returns `None` on any truncation or inconsistency instead of panicking.
pub fn decode_pairs(bytes: &[u8]) -> Option<Pairs> {
    let snapshot = crate::headers::Snapshot::from_wire(bytes.to_vec())?;
    Some(
        snapshot
            .iter()
            .map(|(name, value)| (name.to_vec(), value.to_vec()))
            .collect(),
    )
}

/// Encodes header pairs in the proxy-wasm header map wire format (see [`decode_pairs`]).
pub fn encode_pairs<N: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(N, V)]) -> Vec<u8> {
    let data_len: usize = pairs
        .iter()
        .map(|(name, value)| name.as_ref().len() + value.as_ref().len() + 2)
        .sum();
    let mut out = Vec::with_capacity(4 + pairs.len() * 8 + data_len);
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (name, value) in pairs {
        out.extend_from_slice(&(name.as_ref().len() as u32).to_le_bytes());
        out.extend_from_slice(&(value.as_ref().len() as u32).to_le_bytes());
    }
    for (name, value) in pairs {
        out.extend_from_slice(name.as_ref());
        out.push(0);
        out.extend_from_slice(value.as_ref());
        out.push(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_round_trip_with_non_utf8_values() {
        let pairs = vec![
            (b":path".to_vec(), b"/a".to_vec()),
            (b"x-bin".to_vec(), vec![0xff, 0x00, 0x80]),
            (b"empty".to_vec(), Vec::new()),
        ];
        assert_eq!(decode_pairs(&encode_pairs(&pairs)), Some(pairs));
    }

    #[test]
    fn empty_buffer_is_an_empty_map() {
        assert_eq!(decode_pairs(&[]), Some(Vec::new()));
        assert_eq!(
            decode_pairs(&encode_pairs::<&[u8], &[u8]>(&[])),
            Some(Vec::new())
        );
    }

    #[test]
    fn truncated_or_lying_buffers_are_rejected_not_panicked_on() {
        let good = encode_pairs(&[("a", "b"), ("cc", "dd")]);
        for cut in 1..good.len() {
            assert_eq!(decode_pairs(&good[..cut]), None, "cut at {cut}");
        }
        let mut huge_count = good.clone();
        huge_count[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode_pairs(&huge_count), None);
        let mut huge_len = good;
        huge_len[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode_pairs(&huge_len), None);
    }
}
