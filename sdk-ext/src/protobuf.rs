//! A small protobuf wire codec for gRPC callouts: a [`Writer`] that appends fields, and a
//! [`Reader`] that walks a message's fields. It knows no schema: a filter writes and reads its
//! messages field by field (see filters/global-rate-limit/src/rls.rs).
//!
//! ```
//! use sdk_ext::protobuf::{Reader, Value, Writer};
//! let mut out = Writer::new();
//! out.bytes(1, b"domain");
//! out.message(2, |entry| entry.bytes(1, b"key"));
//! let fields: Vec<_> = Reader::new(out.as_bytes()).collect::<Result<_, _>>().unwrap();
//! assert_eq!(fields[0].value, Value::Bytes(b"domain"));
//! ```
//!
//! Reading never panics: truncated input, an overlong varint, a length past the end, field
//! number 0 or a group (wire types 3 and 4, deprecated and unused by proto3) is a
//! [`DecodeError`].

/// Wire type of varint fields (`int32`, `uint32`, `int64`, `bool`, enums).
const VARINT: u64 = 0;
/// Wire type of 8-byte fields (`fixed64`, `double`).
const FIXED64: u64 = 1;
/// Wire type of length-delimited fields (strings, bytes, messages, packed repeated).
const LEN: u64 = 2;
/// Wire type of 4-byte fields (`fixed32`, `float`).
const FIXED32: u64 = 5;
/// The largest field number protobuf allows.
const MAX_FIELD: u64 = (1 << 29) - 1;

/// The input is not a well-formed protobuf message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError;

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("malformed protobuf message")
    }
}

impl std::error::Error for DecodeError {}

/// The varint encoding of `value` in a buffer, and how many of its bytes are used.
fn varint_bytes(mut value: u64) -> ([u8; 10], usize) {
    let mut out = [0u8; 10];
    let mut used = 0;
    for slot in out.iter_mut() {
        used += 1;
        if value < 0x80 {
            *slot = value as u8;
            break;
        }
        *slot = (value as u8) | 0x80;
        value >>= 7;
    }
    (out, used)
}

/// Appends `value` as a varint.
pub fn put_varint(out: &mut Vec<u8>, value: u64) {
    let (bytes, used) = varint_bytes(value);
    out.extend_from_slice(bytes.get(..used).unwrap_or_default());
}

/// Reads a varint at the start of `bytes`: its value and length; `None` when truncated or
/// longer than 10 bytes or over 64 bits.
pub fn read_varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (index, &byte) in bytes.iter().enumerate().take(10) {
        let bits = u64::from(byte & 0x7f);
        // The tenth byte holds bit 63 only.
        if index == 9 && bits > 1 {
            return None;
        }
        value |= bits << (7 * index);
        if byte < 0x80 {
            return Some((value, index + 1));
        }
    }
    None
}

/// A message being serialized: fields are appended in the order written.
#[derive(Debug, Default, Clone)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty message.
    pub fn new() -> Writer {
        Writer::default()
    }

    /// An empty message with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Writer {
        Writer {
            buf: Vec::with_capacity(capacity),
        }
    }

    fn tag(&mut self, field: u32, wire_type: u64) {
        put_varint(&mut self.buf, (u64::from(field) << 3) | wire_type);
    }

    /// Appends varint field `field` (write zero too: proto3 omits it, so callers skip it).
    pub fn varint(&mut self, field: u32, value: u64) {
        self.tag(field, VARINT);
        put_varint(&mut self.buf, value);
    }

    /// Appends length-delimited field `field` (a string, bytes).
    pub fn bytes(&mut self, field: u32, value: &[u8]) {
        self.tag(field, LEN);
        put_varint(&mut self.buf, value.len() as u64);
        self.buf.extend_from_slice(value);
    }

    /// Appends embedded message `field`, whose fields `build` writes.
    pub fn message(&mut self, field: u32, build: impl FnOnce(&mut Writer)) {
        self.tag(field, LEN);
        let start = self.buf.len();
        build(self);
        let size = self.buf.len().saturating_sub(start);
        // The length goes before the body (no allocation: it is at most ten bytes).
        let (prefix, used) = varint_bytes(size as u64);
        let prefix = prefix.get(..used).unwrap_or_default();
        if start <= self.buf.len() {
            self.buf
                .splice(start..start, prefix.iter().copied())
                .for_each(drop);
        }
    }

    /// Appends already-serialized fields (e.g. constant parts encoded once at config time).
    pub fn raw(&mut self, fields: &[u8]) {
        self.buf.extend_from_slice(fields);
    }

    /// The serialized message.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The serialized message, owned.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

/// A field's value, as its wire type carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1.
    Fixed64(u64),
    /// Wire type 2: a string, bytes, an embedded message or a packed list.
    Bytes(&'a [u8]),
    /// Wire type 5.
    Fixed32(u32),
}

/// One field of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    /// The field number.
    pub number: u32,
    /// The value.
    pub value: Value<'a>,
}

impl<'a> Field<'a> {
    /// The varint value, if the field is a varint.
    pub fn varint(&self) -> Option<u64> {
        match self.value {
            Value::Varint(value) => Some(value),
            _ => None,
        }
    }

    /// The length-delimited value, if the field is one.
    pub fn bytes(&self) -> Option<&'a [u8]> {
        match self.value {
            Value::Bytes(bytes) => Some(bytes),
            _ => None,
        }
    }
}

/// The fields of a serialized message, in order; an error ends the iteration. Unknown fields
/// are the caller's to skip: every field is yielded whatever its number.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Reads `message`.
    pub fn new(message: &'a [u8]) -> Reader<'a> {
        Reader { rest: message }
    }

    fn field(&mut self) -> Option<Field<'a>> {
        let (tag, used) = read_varint(self.rest)?;
        let rest = self.rest.get(used..)?;
        let number = tag >> 3;
        if number == 0 || number > MAX_FIELD {
            return None;
        }
        let (value, rest) = match tag & 7 {
            VARINT => {
                let (value, used) = read_varint(rest)?;
                (Value::Varint(value), rest.get(used..)?)
            }
            FIXED64 => {
                let (bytes, rest) = rest.split_first_chunk::<8>()?;
                (Value::Fixed64(u64::from_le_bytes(*bytes)), rest)
            }
            LEN => {
                let (size, used) = read_varint(rest)?;
                let rest = rest.get(used..)?;
                let size = usize::try_from(size).ok()?;
                let value = rest.get(..size)?;
                (Value::Bytes(value), rest.get(size..)?)
            }
            FIXED32 => {
                let (bytes, rest) = rest.split_first_chunk::<4>()?;
                (Value::Fixed32(u32::from_le_bytes(*bytes)), rest)
            }
            // Groups (3, 4) and the undefined 6, 7.
            _ => return None,
        };
        self.rest = rest;
        Some(Field {
            number: number as u32,
            value,
        })
    }
}

impl<'a> Iterator for Reader<'a> {
    type Item = Result<Field<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        match self.field() {
            Some(field) => Some(Ok(field)),
            None => {
                self.rest = &[];
                Some(Err(DecodeError))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(bytes: &[u8]) -> Result<Vec<Field<'_>>, DecodeError> {
        Reader::new(bytes).collect()
    }

    #[test]
    fn varints_round_trip_at_every_width() {
        let mut values = vec![0, 1, 127, 128, 300, 16_383, 16_384, u64::from(u32::MAX)];
        values.extend((0..64).map(|shift| 1u64 << shift));
        values.push(u64::MAX);
        for value in values {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            assert_eq!(read_varint(&out), Some((value, out.len())), "{value}");
            // Truncated anywhere: none.
            for cut in 0..out.len() {
                assert_eq!(read_varint(&out[..cut]), None, "{value} cut at {cut}");
            }
        }
        let mut out = Vec::new();
        put_varint(&mut out, 300);
        assert_eq!(out, [0xac, 0x02]);
    }

    #[test]
    fn overlong_and_overflowing_varints_are_refused() {
        // Eleven bytes.
        let mut long = vec![0x80; 10];
        long.push(0);
        assert_eq!(read_varint(&long), None);
        // Ten bytes whose last carries more than bit 63.
        let mut over = vec![0xff; 9];
        over.push(0x02);
        assert_eq!(read_varint(&over), None);
        // Ten bytes, the largest value: fine.
        let mut max = vec![0xff; 9];
        max.push(0x01);
        assert_eq!(read_varint(&max), Some((u64::MAX, 10)));
        // Non-minimal but within ten bytes is accepted, as protobuf parsers do.
        assert_eq!(read_varint(&[0x81, 0x80, 0x00]), Some((1, 3)));
        assert_eq!(
            fields(&[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]),
            Err(DecodeError)
        );
    }

    fn sample() -> Vec<u8> {
        let mut out = Writer::new();
        out.bytes(1, b"domain");
        out.message(2, |descriptor| {
            descriptor.message(1, |entry| {
                entry.bytes(1, b"key");
                entry.bytes(2, &[b'v'; 200]);
            });
        });
        out.varint(3, 1);
        out.varint(536_870_911, u64::MAX);
        out.into_bytes()
    }

    #[test]
    fn messages_round_trip_with_nested_lengths() {
        let bytes = sample();
        let top = fields(&bytes).unwrap();
        assert_eq!(top.len(), 4);
        assert_eq!(top[0].bytes(), Some(&b"domain"[..]));
        let descriptor = fields(top[1].bytes().unwrap()).unwrap();
        let entry = fields(descriptor[0].bytes().unwrap()).unwrap();
        assert_eq!(
            entry[0],
            Field {
                number: 1,
                value: Value::Bytes(b"key")
            }
        );
        assert_eq!(entry[1].bytes().map(<[u8]>::len), Some(200));
        assert_eq!(top[2].varint(), Some(1));
        assert_eq!(top[2].bytes(), None);
        assert_eq!(
            (top[3].number, top[3].varint()),
            (536_870_911, Some(u64::MAX))
        );
        // Lengths over 127 take two bytes: the descriptor is 211 bytes (its entry 208).
        assert_eq!(&bytes[..8], b"\x0a\x06domain");
        assert_eq!(&bytes[8..11], &[0x12, 0xd3, 0x01]);
        let mut raw = Writer::with_capacity(4);
        raw.raw(&bytes[..8]);
        assert_eq!(raw.as_bytes(), b"\x0a\x06domain");
        let mut empty = Writer::new();
        empty.message(4, |_| {});
        assert_eq!(empty.as_bytes(), [0x22, 0x00]);
    }

    #[test]
    fn truncation_at_every_byte_is_an_error_never_a_panic() {
        let bytes = sample();
        // Top-level fields end at 8 (domain), 222 (the descriptor), 224, and the end.
        let boundaries = [0, 8, 222, 224, bytes.len()];
        assert_eq!(bytes.len(), 239);
        for cut in 0..=bytes.len() {
            let whole = fields(&bytes[..cut]).is_ok();
            assert_eq!(whole, boundaries.contains(&cut), "cut at {cut}");
        }
    }

    #[test]
    fn unknown_wire_types_are_read_past_and_groups_refused() {
        // fixed64 field 9, fixed32 field 10, then a known varint field 1.
        let mut bytes = vec![0x49];
        bytes.extend_from_slice(&7u64.to_le_bytes());
        bytes.push(0x55);
        bytes.extend_from_slice(&8u32.to_le_bytes());
        bytes.extend_from_slice(&[0x08, 0x05]);
        let read = fields(&bytes).unwrap();
        assert_eq!(read[0].value, Value::Fixed64(7));
        assert_eq!(read[1].value, Value::Fixed32(8));
        assert_eq!((read[2].number, read[2].varint()), (1, Some(5)));
        // Start group, end group, wire types 6 and 7, field 0.
        for bad in [
            &[0x0b, 0x0c][..],
            &[0x0c],
            &[0x0e, 0],
            &[0x0f, 0],
            &[0x00, 0x01],
        ] {
            assert_eq!(fields(bad), Err(DecodeError), "{bad:?}");
        }
        // After an error, nothing more.
        let mut reader = Reader::new(&[0x0b, 0x08, 0x01]);
        assert_eq!(reader.next(), Some(Err(DecodeError)));
        assert_eq!(reader.next(), None);
        // A length past the end, or beyond usize.
        assert_eq!(fields(&[0x0a, 0x05, b'a']), Err(DecodeError));
        assert_eq!(
            fields(&[0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
            Err(DecodeError)
        );
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 40) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|i| (state.rotate_left(i as u32 * 7) & 0xff) as u8)
                .collect();
            for field in Reader::new(&bytes) {
                let Ok(field) = field else { break };
                if let Some(inner) = field.bytes() {
                    let _ = Reader::new(inner).count();
                }
            }
        }
    }
}
