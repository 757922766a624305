//! Buckets in proxy-wasm shared data, updated with compare-and-swap so that every worker (VM)
//! takes from the same bucket and none can take a token another already took.
//!
//! Layout (all integers little-endian):
//! - a bucket (`default`, a static descriptor, a wildcard's overflow) is one key holding
//!   `empty_at: u64` (8 bytes; zeros are a full bucket);
//! - a wildcard descriptor's buckets live in a fixed table of `sets` keys, each holding `ways`
//!   entries of `identity: u128, empty_at: u64` (24 bytes; a zero identity is a free entry). A
//!   request descriptor belongs to one set, picked by its identity, so one CAS covers the lookup,
//!   the insertion and the update: two workers can never give one descriptor two buckets.
//!
//! proxy-wasm 0.2 cannot delete a key, so the number of keys and their sizes are fixed by the
//! configuration. An entry is reused only once its bucket has refilled to full, when forgetting it
//! changes nothing. While every entry of a set holds a partly used bucket, new descriptors of that
//! set share the wildcard's overflow bucket: stricter for them, never looser for anyone.

use crate::bucket::{Bucket, Outcome};
use sdk_ext::shared_data::{SharedData, Updated};
use sdk_ext::Status;

/// Bytes of a bucket value.
pub const BUCKET_BYTES: usize = 8;
/// Bytes of one wildcard table entry.
pub const ENTRY_BYTES: usize = 24;
/// CAS attempts before a request gives up. Each failed attempt means another worker wrote the
/// key (which happens only when it took a token), so running out means heavy contention on a
/// bucket that is being drained; the request is then limited rather than risk over-admitting.
pub const ATTEMPTS: u32 = 64;

/// Why a bucket could not be read or updated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Every CAS attempt lost to another worker.
    Contention,
    /// A shared-data hostcall failed.
    Host(Status),
}

/// What taking from a wildcard table found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// The descriptor has (or now has) a bucket in the table.
    Taken(Outcome),
    /// The descriptor's set has no free entry: use the overflow bucket.
    SetFull,
}

/// The key of set `set` of a wildcard table.
pub fn set_key(table_key: &str, set: u32) -> String {
    format!("{table_key}/{set}")
}

/// The set an identity belongs to.
pub fn set_of(identity: u128, sets: u32) -> u32 {
    ((identity >> 64) as u64 % u64::from(sets.max(1))) as u32
}

/// Creates `key` as `size` zero bytes when it does not exist yet; `Ok(true)` when it created it.
///
/// proxy-wasm has no create-if-absent: a write to a missing key succeeds whatever its CAS. Keys
/// are therefore created when the filter is configured, before it takes tokens; only a key created
/// by one worker while another is already taking tokens from it could lose those tokens.
pub fn ensure(shared: &SharedData<'_>, key: &str, size: usize) -> Result<bool, Status> {
    if shared.get(key)?.is_some() {
        return Ok(false);
    }
    shared.set(key, &vec![0; size], 0)?;
    Ok(true)
}

/// The state of the bucket stored as `value`. A missing key, or a value of another size (not
/// ours to read: another format), is a full bucket.
fn empty_at(value: Option<&[u8]>) -> u64 {
    value
        .and_then(|value| <[u8; BUCKET_BYTES]>::try_from(value).ok())
        .map_or(0, u64::from_le_bytes)
}

/// The entries (`identity`, `empty_at`) of the set stored as `value`: `ways` free entries when
/// the key is missing or holds a value of another size.
fn entries(value: Option<&[u8]>, ways: u32) -> Vec<(u128, u64)> {
    let ways = ways as usize;
    let parse = |entry: &[u8]| {
        let (holder, state) = entry.split_first_chunk::<16>()?;
        Some((u128::from_le_bytes(*holder), empty_at(Some(state))))
    };
    match value {
        Some(value) if value.len() == ways * ENTRY_BYTES => value
            .chunks_exact(ENTRY_BYTES)
            .map(|entry| parse(entry).unwrap_or((0, 0)))
            .collect(),
        _ => vec![(0, 0); ways],
    }
}

fn encode(entries: &[(u128, u64)]) -> Vec<u8> {
    entries
        .iter()
        .flat_map(|(holder, empty_at)| {
            holder
                .to_le_bytes()
                .into_iter()
                .chain(empty_at.to_le_bytes())
        })
        .collect()
}

/// Settles a read-modify-write: `seen` is what the last read decided, used when it wrote
/// nothing. Lost CAS races are added to `conflicts`.
fn settle<T: Copy>(
    updated: Result<Updated<T>, Status>,
    seen: Option<T>,
    conflicts: &mut u32,
) -> Result<T, Failure> {
    match updated {
        Ok(Updated {
            result,
            conflicts: lost,
        }) => {
            *conflicts = conflicts.saturating_add(lost);
            // `update` read the key at least once, so `seen` is set.
            result
                .or(seen)
                .ok_or(Failure::Host(Status::InternalFailure))
        }
        // Every attempt lost a race.
        Err(Status::CasMismatch) => {
            *conflicts = conflicts.saturating_add(ATTEMPTS);
            Err(Failure::Contention)
        }
        Err(status) => Err(Failure::Host(status)),
    }
}

/// Takes one token at `now` from the bucket stored at `key`. Counts lost CAS races in
/// `conflicts`.
pub fn take(
    shared: &SharedData<'_>,
    key: &str,
    bucket: &Bucket,
    now: u64,
    conflicts: &mut u32,
) -> Result<Outcome, Failure> {
    let mut seen = None;
    let updated = shared.update(key, ATTEMPTS, |value| {
        let outcome = bucket.take(empty_at(value), now);
        seen = Some(outcome);
        let next = outcome.new_empty_at?;
        Some((next.to_le_bytes().to_vec(), outcome))
    });
    settle(updated, seen, conflicts)
}

/// Takes one token at `now` from the bucket of `identity` in the set stored as `value` (`ways`
/// entries), giving the identity a free entry if it has none: the slot, and the set's new value
/// when it changes.
fn take_from_set(
    value: Option<&[u8]>,
    ways: u32,
    bucket: &Bucket,
    identity: u128,
    now: u64,
) -> (Slot, Option<Vec<u8>>) {
    let mut entries = entries(value, ways);
    let mut own = None;
    let mut free = None;
    for (index, &(holder, empty_at)) in entries.iter().enumerate() {
        if holder == identity {
            own = Some((index, empty_at));
            break;
        }
        if free.is_none() && (holder == 0 || bucket.is_full(empty_at, now)) {
            free = Some(index);
        }
    }
    let (index, outcome) = match (own, free) {
        (Some((index, empty_at)), _) => (index, bucket.take(empty_at, now)),
        // A reused entry starts as a full bucket, exactly as its previous holder's had become.
        (None, Some(index)) => (index, bucket.take(0, now)),
        (None, None) => return (Slot::SetFull, None),
    };
    let value = outcome.new_empty_at.and_then(|next| {
        *entries.get_mut(index)? = (identity, next);
        Some(encode(&entries))
    });
    (Slot::Taken(outcome), value)
}

/// Takes one token at `now` from the bucket of `identity` in the set stored at `key` (`ways`
/// entries), giving the identity a free entry if it has none. One CAS covers the lookup, the
/// insertion and the update, so two workers can never give one identity two entries.
pub fn take_in_set(
    shared: &SharedData<'_>,
    key: &str,
    ways: u32,
    bucket: &Bucket,
    identity: u128,
    now: u64,
    conflicts: &mut u32,
) -> Result<Slot, Failure> {
    let mut seen = None;
    let updated = shared.update(key, ATTEMPTS, |value| {
        let (slot, value) = take_from_set(value, ways, bucket, identity, now);
        seen = Some(slot);
        Some((value?, slot))
    });
    settle(updated, seen, conflicts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const NOW: u64 = 1_700_000_000_000_000_000;

    fn bucket(max: u64) -> Bucket {
        Bucket::new(max, 1, Duration::from_secs(3600)).unwrap()
    }

    #[test]
    fn values_of_another_size_read_as_full() {
        assert_eq!(empty_at(None), 0);
        assert_eq!(empty_at(Some(b"garbage")), 0);
        assert_eq!(empty_at(Some(&7u64.to_le_bytes())), 7);
        assert_eq!(entries(Some(&[1; ENTRY_BYTES]), 2), [(0, 0); 2]);
        let set = encode(&[(11, 5), (0, 0)]);
        assert_eq!(set.len(), 2 * ENTRY_BYTES);
        assert_eq!(entries(Some(&set), 2), [(11, 5), (0, 0)]);
    }

    #[test]
    fn a_set_holds_each_identity_once_and_reuses_only_full_buckets() {
        let b = bucket(2);
        let mut value: Option<Vec<u8>> = None;
        let mut slot = |identity: u128, now: u64| {
            let (slot, next) = take_from_set(value.as_deref(), 2, &b, identity, now);
            if next.is_some() {
                value = next;
            }
            (slot, value.clone())
        };
        let allowed = |s: Slot| matches!(s, Slot::Taken(o) if o.allowed);
        assert!(allowed(slot(11, NOW).0));
        assert!(allowed(slot(11, NOW).0));
        assert!(!allowed(slot(11, NOW).0), "11 has its own bucket of 2");
        assert!(allowed(slot(21, NOW).0));
        // Both entries hold partly used buckets: a third identity must wait or share.
        assert_eq!(slot(31, NOW).0, Slot::SetFull);
        // 21 took one token of 2: after one token's time its bucket is full again, and free.
        let later = NOW + 3600 * 1_000_000_000;
        assert!(allowed(slot(31, later).0));
        let (full, value) = slot(41, later);
        assert_eq!(full, Slot::SetFull, "11 is not full yet");
        let holders: Vec<u128> = entries(value.as_deref(), 2)
            .iter()
            .map(|(holder, _)| *holder)
            .collect();
        assert_eq!(holders, [11, 31]);
    }

    #[test]
    fn sets_spread_identities() {
        let mut counts = [0u32; 4];
        for identity in 0..4000u128 {
            counts[set_of(
                identity.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835),
                4,
            ) as usize] += 1;
        }
        assert!(counts.iter().all(|&count| count > 800), "{counts:?}");
        assert_eq!(set_key("t", 3), "t/3");
    }
}
