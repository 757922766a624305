//! Shared data (`proxy_get_shared_data`, `proxy_set_shared_data`): one key-value store for every
//! VM with the same VM id, as Envoy's workers share it, with compare-and-swap.

use crate::host::{Host, Status};

/// A filter instance's view of shared data: its keys live under its own namespace, so two
/// filters (or two instances of one filter) in a module never see each other's keys.
#[derive(Clone, Copy)]
pub struct SharedData<'a> {
    pub(crate) host: &'a dyn Host,
    pub(crate) namespace: &'a str,
}

/// What [`SharedData::update`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Updated<T> {
    /// What `update` returned for the write that landed; `None` when it chose not to write.
    pub result: Option<T>,
    /// How many writes lost a race to another worker's write and were retried.
    pub conflicts: u32,
}

impl SharedData<'_> {
    fn key(&self, key: &str) -> String {
        let mut full = String::with_capacity(self.namespace.len() + key.len());
        full.push_str(self.namespace);
        full.push_str(key);
        full
    }

    /// Reads `key`: its value and the CAS token for a conditional [`set`](Self::set); `None`
    /// when it was never set.
    pub fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, Status> {
        self.host.shared_data(&self.key(key))
    }

    /// Writes `key`. With `cas` 0 the write is unconditional; otherwise it fails with
    /// `CasMismatch` if another write happened since the read that returned `cas`.
    pub fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), Status> {
        self.host.set_shared_data(&self.key(key), value, cas)
    }

    /// Read-modify-write with CAS: exactly `attempts.max(1)` tries, each retried only on a CAS
    /// conflict. `update` gets the current value and returns the new one, or `None` to leave
    /// the key as it is. When every try conflicts the error is `CasMismatch` (that many
    /// conflicts). Other failures return at once.
    pub fn update<T>(
        &self,
        key: &str,
        attempts: u32,
        mut update: impl FnMut(Option<&[u8]>) -> Option<(Vec<u8>, T)>,
    ) -> Result<Updated<T>, Status> {
        let key = self.key(key);
        let mut conflicts = 0;
        for _ in 0..attempts.max(1) {
            let current = self.host.shared_data(&key)?;
            let Some((value, result)) = update(current.as_ref().map(|(value, _)| value.as_slice()))
            else {
                return Ok(Updated {
                    result: None,
                    conflicts,
                });
            };
            // A missing key is written with CAS 0; Envoy accepts any CAS for a missing key anyway.
            let cas = current.map_or(0, |(_, cas)| cas);
            match self.host.set_shared_data(&key, &value, cas) {
                Ok(()) => {
                    return Ok(Updated {
                        result: Some(result),
                        conflicts,
                    })
                }
                Err(Status::CasMismatch) => conflicts += 1,
                Err(status) => return Err(status),
            }
        }
        Err(Status::CasMismatch)
    }
}
