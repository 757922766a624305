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
use sdk_ext::host::Status;

/// Bytes of a bucket value.
pub const BUCKET_BYTES: usize = 8;
/// Bytes of one wildcard table entry.
pub const ENTRY_BYTES: usize = 24;
/// CAS attempts before a request gives up. Each failed attempt means another worker wrote the
/// key (which happens only when it took a token), so running out means heavy contention on a
/// bucket that is being drained; the request is then limited rather than risk over-admitting.
pub const ATTEMPTS: u32 = 64;

/// The shared key-value store with CAS, as proxy-wasm offers it.
pub trait Store {
    /// The value of `key` and its CAS token, or `None` when the key was never set.
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, Status>;
    /// Writes `key` if its CAS token is still `cas` (0: unconditionally), else `CasMismatch`.
    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), Status>;
}

/// The host's shared data (`proxy_get_shared_data`, `proxy_set_shared_data`).
pub struct HostStore;

impl Store for HostStore {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, Status> {
        sdk_ext::shared_data::get(key).map(|entry| entry.map(|entry| (entry.value, entry.cas)))
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), Status> {
        sdk_ext::shared_data::set(key, value, cas)
    }
}

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
pub fn ensure(store: &impl Store, key: &str, size: usize) -> Result<bool, Status> {
    if store.get(key)?.is_some() {
        return Ok(false);
    }
    store.set(key, &vec![0; size], 0)?;
    Ok(true)
}

fn read_u64(bytes: &[u8]) -> u64 {
    let mut buffer = [0u8; 8];
    buffer.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(buffer)
}

fn read_u128(bytes: &[u8]) -> u128 {
    let mut buffer = [0u8; 16];
    buffer.copy_from_slice(&bytes[..16]);
    u128::from_le_bytes(buffer)
}

/// Reads `key`, creating it (as `size` zero bytes) if it is missing; `None` when it was just
/// created and must be read again for its CAS token.
fn read(store: &impl Store, key: &str, size: usize) -> Result<Option<(Vec<u8>, u32)>, Failure> {
    match store.get(key).map_err(Failure::Host)? {
        Some(found) => Ok(Some(found)),
        None => {
            store.set(key, &vec![0; size], 0).map_err(Failure::Host)?;
            Ok(None)
        }
    }
}

/// Takes one token at `now` from the bucket stored at `key`. Counts lost CAS races in
/// `conflicts`.
pub fn take(
    store: &impl Store,
    key: &str,
    bucket: &Bucket,
    now: u64,
    conflicts: &mut u32,
) -> Result<Outcome, Failure> {
    for _ in 0..ATTEMPTS {
        let Some((value, cas)) = read(store, key, BUCKET_BYTES)? else {
            continue;
        };
        // A value of another size is not ours to read (another format): a fresh bucket.
        let empty_at = if value.len() == BUCKET_BYTES {
            read_u64(&value)
        } else {
            0
        };
        let outcome = bucket.take(empty_at, now);
        let Some(next) = outcome.new_empty_at else {
            return Ok(outcome);
        };
        match store.set(key, &next.to_le_bytes(), cas) {
            Ok(()) => return Ok(outcome),
            Err(Status::CasMismatch) => *conflicts += 1,
            Err(status) => return Err(Failure::Host(status)),
        }
    }
    Err(Failure::Contention)
}

/// Takes one token at `now` from the bucket of `identity` in the set stored at `key` (`ways`
/// entries), giving the identity a free entry if it has none.
pub fn take_in_set(
    store: &impl Store,
    key: &str,
    ways: u32,
    bucket: &Bucket,
    identity: u128,
    now: u64,
    conflicts: &mut u32,
) -> Result<Slot, Failure> {
    let size = ways as usize * ENTRY_BYTES;
    for _ in 0..ATTEMPTS {
        let Some((mut value, cas)) = read(store, key, size)? else {
            continue;
        };
        if value.len() != size {
            value = vec![0; size];
        }
        let mut own = None;
        let mut free = None;
        for (index, entry) in value.chunks_exact(ENTRY_BYTES).enumerate() {
            let holder = read_u128(entry);
            let empty_at = read_u64(&entry[16..]);
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
            (None, None) => return Ok(Slot::SetFull),
        };
        let Some(next) = outcome.new_empty_at else {
            return Ok(Slot::Taken(outcome));
        };
        let entry = &mut value[index * ENTRY_BYTES..(index + 1) * ENTRY_BYTES];
        entry[..16].copy_from_slice(&identity.to_le_bytes());
        entry[16..].copy_from_slice(&next.to_le_bytes());
        match store.set(key, &value, cas) {
            Ok(()) => return Ok(Slot::Taken(outcome)),
            Err(Status::CasMismatch) => *conflicts += 1,
            Err(status) => return Err(Failure::Host(status)),
        }
    }
    Err(Failure::Contention)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};
    use std::collections::HashMap;
    use std::time::Duration;

    const NOW: u64 = 1_700_000_000_000_000_000;

    /// An in-memory store with Envoy's CAS rules, and a hook that runs between a read and the
    /// write that follows it (to play another worker) or fails calls.
    #[derive(Default)]
    pub(crate) struct MemoryStore {
        pub entries: RefCell<HashMap<String, (Vec<u8>, u32)>>,
        last_cas: Cell<u32>,
        /// Called before each `set` with the store itself: another worker's turn.
        #[allow(clippy::type_complexity)]
        pub interleave: RefCell<Option<Box<dyn FnMut(&MemoryStore)>>>,
        /// Status every call fails with.
        pub fail: Cell<Option<Status>>,
        pub sets: Cell<u32>,
    }

    impl MemoryStore {
        pub fn write(&self, key: &str, value: &[u8]) {
            let cas = self.last_cas.get() + 1;
            self.last_cas.set(cas);
            self.entries
                .borrow_mut()
                .insert(key.to_string(), (value.to_vec(), cas));
        }
    }

    impl Store for MemoryStore {
        fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, Status> {
            if let Some(status) = self.fail.get() {
                return Err(status);
            }
            Ok(self.entries.borrow().get(key).cloned())
        }

        fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), Status> {
            if let Some(status) = self.fail.get() {
                return Err(status);
            }
            self.sets.set(self.sets.get() + 1);
            let hook = self.interleave.borrow_mut().take();
            if let Some(mut hook) = hook {
                hook(self);
                *self.interleave.borrow_mut() = Some(hook);
            }
            let stored = self.entries.borrow().get(key).map(|(_, cas)| *cas);
            if matches!(stored, Some(stored) if cas != 0 && cas != stored) {
                return Err(Status::CasMismatch);
            }
            self.write(key, value);
            Ok(())
        }
    }

    fn bucket(max: u64) -> Bucket {
        Bucket::new(max, 1, Duration::from_secs(3600)).unwrap()
    }

    #[test]
    fn a_lost_race_is_retried_against_the_winner_s_state() {
        let store = MemoryStore::default();
        let b = bucket(2);
        ensure(&store, "k", BUCKET_BYTES).unwrap();
        // Before our first write lands, another worker takes a token.
        let other_turns = Cell::new(1);
        *store.interleave.borrow_mut() = Some(Box::new(move |store: &MemoryStore| {
            if other_turns.get() > 0 {
                other_turns.set(0);
                let mut ignored = 0;
                take(store, "k", &bucket(2), NOW, &mut ignored).unwrap();
            }
        }));
        let mut conflicts = 0;
        let outcome = take(&store, "k", &b, NOW, &mut conflicts).unwrap();
        assert_eq!(conflicts, 1);
        assert!(outcome.allowed);
        assert_eq!(
            outcome.remaining, 0,
            "the retry saw the other worker's token"
        );
        *store.interleave.borrow_mut() = None;
        assert!(!take(&store, "k", &b, NOW, &mut conflicts).unwrap().allowed);
    }

    #[test]
    fn endless_contention_limits_instead_of_over_admitting() {
        let store = MemoryStore::default();
        ensure(&store, "k", BUCKET_BYTES).unwrap();
        // Another worker writes before every one of our writes.
        *store.interleave.borrow_mut() = Some(Box::new(|store: &MemoryStore| {
            let value = store.entries.borrow()["k"].0.clone();
            store.write("k", &value);
        }));
        let mut conflicts = 0;
        assert_eq!(
            take(&store, "k", &bucket(100), NOW, &mut conflicts),
            Err(Failure::Contention)
        );
        assert_eq!(conflicts, ATTEMPTS);
    }

    #[test]
    fn host_failures_are_reported_not_retried() {
        let store = MemoryStore::default();
        store.fail.set(Some(Status::InternalFailure));
        let mut conflicts = 0;
        assert_eq!(
            take(&store, "k", &bucket(1), NOW, &mut conflicts),
            Err(Failure::Host(Status::InternalFailure))
        );
        assert_eq!(
            take_in_set(&store, "s", 2, &bucket(1), 3, NOW, &mut conflicts),
            Err(Failure::Host(Status::InternalFailure))
        );
    }

    #[test]
    fn a_missing_key_is_created_full_and_a_foreign_value_reads_as_full() {
        let store = MemoryStore::default();
        let mut conflicts = 0;
        let outcome = take(&store, "k", &bucket(3), NOW, &mut conflicts).unwrap();
        assert_eq!((outcome.allowed, outcome.remaining), (true, 2));
        store.write("k", b"garbage");
        let outcome = take(&store, "k", &bucket(3), NOW, &mut conflicts).unwrap();
        assert_eq!(outcome.remaining, 2);
        assert_eq!(store.entries.borrow()["k"].0.len(), BUCKET_BYTES);
    }

    fn slot(store: &MemoryStore, identity: u128, now: u64) -> Slot {
        let mut conflicts = 0;
        take_in_set(store, "set", 2, &bucket(2), identity, now, &mut conflicts).unwrap()
    }

    #[test]
    fn a_set_holds_each_identity_once_and_reuses_only_full_buckets() {
        let store = MemoryStore::default();
        ensure(&store, "set", 2 * ENTRY_BYTES).unwrap();
        let allowed = |s: Slot| matches!(s, Slot::Taken(o) if o.allowed);
        assert!(allowed(slot(&store, 11, NOW)));
        assert!(allowed(slot(&store, 11, NOW)));
        assert!(
            !allowed(slot(&store, 11, NOW)),
            "11 has its own bucket of 2"
        );
        assert!(allowed(slot(&store, 21, NOW)));
        // Both entries hold partly used buckets: a third identity must wait or share.
        assert_eq!(slot(&store, 31, NOW), Slot::SetFull);
        // 21 took one token of 2: after one token's time its bucket is full again, and free.
        let later = NOW + 3600 * 1_000_000_000;
        assert!(allowed(slot(&store, 31, later)));
        assert_eq!(slot(&store, 41, later), Slot::SetFull, "11 is not full yet");
        let value = store.entries.borrow()["set"].0.clone();
        let holders: Vec<u128> = value.chunks_exact(ENTRY_BYTES).map(read_u128).collect();
        assert_eq!(holders, [11, 31]);
    }

    #[test]
    fn two_workers_inserting_one_identity_end_with_one_entry() {
        let store = MemoryStore::default();
        ensure(&store, "set", 2 * ENTRY_BYTES).unwrap();
        // The other worker inserts the same identity just before our write.
        let once = Cell::new(true);
        *store.interleave.borrow_mut() = Some(Box::new(move |store: &MemoryStore| {
            if once.replace(false) {
                slot(store, 11, NOW);
            }
        }));
        let mut conflicts = 0;
        let outcome = take_in_set(&store, "set", 2, &bucket(2), 11, NOW, &mut conflicts).unwrap();
        assert_eq!(conflicts, 1);
        assert!(matches!(outcome, Slot::Taken(o) if o.allowed && o.remaining == 0));
        let value = store.entries.borrow()["set"].0.clone();
        let holders: Vec<u128> = value.chunks_exact(ENTRY_BYTES).map(read_u128).collect();
        assert_eq!(holders, [11, 0]);
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
