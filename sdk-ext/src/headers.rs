//! Bytes-safe header and trailer maps: `proxy_{get,add,replace,remove}_header_map_value` and
//! `proxy_get_header_map_pairs`, with every failure returned as a [`Status`].

use crate::host::{Host, Status};
use crate::proto::{AppendAction, HeaderEdit};
use crate::text::Quoted;
pub use crate::types::MapType;
use crate::validate;
use crate::wire::{decode_pairs, Pairs};

fn check_pseudo(name: &str, value: &[u8]) -> Result<(), Status> {
    if !name.starts_with(':') {
        return Ok(());
    }
    validate::pseudo_header_value(name, value).map_err(|reason| {
        log::warn!(
            "refused to write {name}: {reason}: {}",
            Quoted(&String::from_utf8_lossy(value.get(..64).unwrap_or(value)))
        );
        Status::BadArgument
    })
}

/// One of the stream's header or trailer maps (or a callout answer's), from a context:
/// `cx.request_headers().get("x-user")`.
#[derive(Clone, Copy)]
pub struct Headers<'a> {
    host: &'a dyn Host,
    map: MapType,
}

impl<'a> Headers<'a> {
    pub(crate) fn new(host: &'a dyn Host, map: MapType) -> Headers<'a> {
        Headers { host, map }
    }

    /// The first value of `name` (`proxy_get_header_map_value`), or `None` when absent.
    pub fn get(&self, name: &str) -> Result<Option<Vec<u8>>, Status> {
        self.host.header(self.map, name)
    }

    /// Whether `name` is present at least once.
    pub fn contains(&self, name: &str) -> Result<bool, Status> {
        self.get(name).map(|value| value.is_some())
    }

    /// Replaces every value of `name` with `value` (`proxy_replace_header_map_value`). A
    /// pseudo-header value invalid for its name is refused with `BadArgument`, before the host
    /// sees it ([`validate::pseudo_header_value`]).
    pub fn set(&self, name: &str, value: &[u8]) -> Result<(), Status> {
        check_pseudo(name, value)?;
        self.host.replace_header(self.map, name, value)
    }

    /// Adds one more entry for `name`, keeping existing ones (`proxy_add_header_map_value`).
    /// Pseudo-header values are checked as [`set`](Self::set) checks them.
    pub fn add(&self, name: &str, value: &[u8]) -> Result<(), Status> {
        check_pseudo(name, value)?;
        self.host.add_header(self.map, name, value)
    }

    /// Removes every entry for `name` (`proxy_remove_header_map_value`).
    pub fn remove(&self, name: &str) -> Result<(), Status> {
        self.host.remove_header(self.map, name)
    }

    /// Adds or replaces `name` as `action` says, as Envoy applies a `HeaderValueOption`:
    /// `proxy_add_header_map_value` or `proxy_replace_header_map_value`, after
    /// `proxy_get_header_map_value` when the action depends on the header being present.
    pub fn apply(&self, action: AppendAction, name: &str, value: &[u8]) -> Result<(), Status> {
        let present = action.needs_presence() && self.contains(name)?;
        match action.edit(present) {
            Some(HeaderEdit::Add) => self.add(name, value),
            Some(HeaderEdit::Replace) => self.set(name, value),
            None => Ok(()),
        }
    }

    /// Every entry in order (`proxy_get_header_map_pairs`), names and values as raw bytes.
    pub fn pairs(&self) -> Result<Pairs, Status> {
        decode_pairs(&self.host.header_pairs(self.map)?).ok_or(Status::SerializationFailure)
    }

    /// The whole map, read with one hostcall, for local lookups.
    pub fn snapshot(&self) -> Result<Snapshot, Status> {
        Snapshot::from_wire(self.host.header_pairs(self.map)?).ok_or(Status::SerializationFailure)
    }
}

/// All entries of a header map read with one hostcall (`proxy_get_header_map_pairs`), for a
/// filter that looks at several headers: each lookup after that is a scan of local memory, not
/// a hostcall. Lookups see the map as it was when read.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    raw: Vec<u8>,
    /// (name start, name len, value start, value len) of each entry.
    entries: Vec<(u32, u32, u32, u32)>,
}

impl Snapshot {
    /// Indexes a buffer in the header-pairs wire format.
    pub fn from_wire(raw: Vec<u8>) -> Option<Snapshot> {
        let mut entries = Vec::new();
        if !raw.is_empty() {
            let read_u32 = |at: usize| -> Option<usize> {
                Some(u32::from_le_bytes(raw.get(at..at.checked_add(4)?)?.try_into().ok()?) as usize)
            };
            let count = read_u32(0)?;
            let mut at = count.checked_mul(8)?.checked_add(4)?;
            if at > raw.len() {
                return None;
            }
            entries.reserve(count);
            for index in 0..count {
                let (name_len, value_len) = (read_u32(4 + index * 8)?, read_u32(8 + index * 8)?);
                let value_at = at.checked_add(name_len)?.checked_add(1)?;
                let end = value_at.checked_add(value_len)?.checked_add(1)?;
                if end > raw.len() {
                    return None;
                }
                entries.push((
                    at as u32,
                    name_len as u32,
                    value_at as u32,
                    value_len as u32,
                ));
                at = end;
            }
        }
        Some(Snapshot { raw, entries })
    }

    /// The first value of `name` (lower-case), as Envoy's `get` returns it.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.entries
            .iter()
            .find_map(|&(name_at, name_len, value_at, value_len)| {
                (self.slice(name_at, name_len) == name.as_bytes())
                    .then(|| self.slice(value_at, value_len))
            })
    }

    /// Every value of `name` (lower-case), in map order: a repeated header has one entry per
    /// value, where `proxy_get_header_map_value` shows only the first.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.iter()
            .filter(move |(key, _)| *key == name.as_bytes())
            .map(|(_, value)| value)
    }

    /// Whether `name` (lower-case) is present at least once.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Every (name, value) entry, in map order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.entries
            .iter()
            .map(|&(name_at, name_len, value_at, value_len)| {
                (
                    self.slice(name_at, name_len),
                    self.slice(value_at, value_len),
                )
            })
    }

    /// `len` bytes at `at`; `from_wire` checked every entry's range, so this never comes up
    /// short.
    fn slice(&self, at: u32, len: u32) -> &[u8] {
        let start = at as usize;
        self.raw
            .get(start..start.saturating_add(len as usize))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod snapshot_tests {
    use super::Snapshot;
    use crate::wire::encode_pairs;

    #[test]
    fn snapshots_index_the_wire_format() {
        let snapshot = Snapshot::from_wire(encode_pairs(&[
            (":path", "/a"),
            ("x", "1"),
            ("x", "2"),
            ("e", ""),
        ]))
        .unwrap();
        assert_eq!(snapshot.get(":path"), Some(&b"/a"[..]));
        assert_eq!(snapshot.get("x"), Some(&b"1"[..]));
        assert_eq!(snapshot.get("e"), Some(&b""[..]));
        assert_eq!(snapshot.get("y"), None);
        assert_eq!(
            snapshot.get_all("x").collect::<Vec<_>>(),
            [&b"1"[..], &b"2"[..]]
        );
        assert_eq!(snapshot.get_all("y").count(), 0);
        assert!(snapshot.contains("e") && !snapshot.contains("y"));
        assert_eq!(snapshot.iter().count(), 4);
        let good = encode_pairs(&[("a", "b")]);
        for cut in 1..good.len() {
            assert!(
                Snapshot::from_wire(good[..cut].to_vec()).is_none(),
                "cut at {cut}"
            );
        }
        assert!(Snapshot::from_wire(Vec::new()).unwrap().get("a").is_none());
    }
}
