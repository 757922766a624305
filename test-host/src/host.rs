//! The host: what all plugins of one test share, as Envoy's workers share it. Shared data, shared
//! queues, metrics and the clock live here; each plugin (VM) has its own store.

use crate::limits::Limits;
use crate::plugin::PluginBuilder;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A proxy-wasm metric type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    /// `0`: only grows.
    Counter,
    /// `1`: set, or moved up and down.
    Gauge,
    /// `2`: recorded values.
    Histogram,
}

impl MetricType {
    /// The type for an ABI number.
    pub fn from_abi(value: u32) -> Option<MetricType> {
        match value {
            0 => Some(MetricType::Counter),
            1 => Some(MetricType::Gauge),
            2 => Some(MetricType::Histogram),
            _ => None,
        }
    }
}

/// A metric's current value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricValue {
    /// A counter.
    Counter(u64),
    /// A gauge.
    Gauge(u64),
    /// Every value recorded into a histogram, in order.
    Histogram(Vec<u64>),
}

#[derive(Debug, Default)]
pub(crate) struct SharedData {
    /// (vm_id, key) → (value, cas).
    pub entries: HashMap<(String, Vec<u8>), (Vec<u8>, u32)>,
    pub last_cas: u32,
    /// Bytes of VM ids, keys and values held.
    pub bytes: usize,
}

impl SharedData {
    /// Stores `value` under `key` with a fresh CAS, unless that takes the store past `cap` bytes.
    pub fn set(&mut self, key: (String, Vec<u8>), value: Vec<u8>, cap: usize) -> Option<u32> {
        let bytes = match self.entries.get(&key) {
            Some((old, _)) => self.bytes - old.len() + value.len(),
            None => self.bytes + key.0.len() + key.1.len() + value.len(),
        };
        if bytes > cap {
            return None;
        }
        self.bytes = bytes;
        let cas = self.next_cas();
        self.entries.insert(key, (value, cas));
        Some(cas)
    }

    /// One counter for every key, starting at 1 and skipping 0, as proxy-wasm-cpp-host does.
    pub fn next_cas(&mut self) -> u32 {
        self.last_cas = self.last_cas.wrapping_add(1);
        if self.last_cas == 0 {
            self.last_cas = 1;
        }
        self.last_cas
    }
}

#[derive(Debug, Default)]
pub(crate) struct Queue {
    pub vm_id: String,
    pub name: String,
    pub items: VecDeque<Vec<u8>>,
    /// The last registrant: (vm key, root context id). It is the one notified.
    pub owner: Option<(u64, u32)>,
}

#[derive(Debug, Default)]
pub(crate) struct Queues {
    pub by_token: BTreeMap<u32, Queue>,
    pub last_token: u32,
    /// Bytes of queue names and waiting items.
    pub bytes: usize,
}

#[derive(Debug)]
pub(crate) struct Clock {
    now: SystemTime,
    monotonic: Duration,
}

/// Host-wide state behind every plugin of a [`TestHost`].
#[derive(Debug)]
pub(crate) struct Shared {
    pub clock: Mutex<Clock>,
    pub shared_data: Mutex<SharedData>,
    pub queues: Mutex<Queues>,
    pub metrics: Mutex<BTreeMap<String, MetricValue>>,
    /// Pending `proxy_on_queue_ready` notifications per VM: vm key → (root context, queue).
    pub inboxes: Mutex<HashMap<u64, Vec<(u32, u32)>>>,
    /// Clusters that `proxy_http_call` may name; `None` accepts any.
    pub clusters: Mutex<Option<HashSet<String>>>,
    /// Values held by all histograms.
    pub histogram_values: AtomicUsize,
    pub limits: Limits,
    next_vm_key: AtomicU64,
}

/// Nanoseconds in `duration`, saturating at `u64::MAX` (about 584 years).
pub(crate) fn saturating_nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// Locks a mutex, recovering the data if a panicking test poisoned it.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    pub fn now(&self) -> SystemTime {
        lock(&self.clock).now
    }

    pub fn now_nanos(&self) -> u64 {
        self.now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, saturating_nanos)
    }

    pub fn monotonic(&self) -> Duration {
        lock(&self.clock).monotonic
    }

    pub fn next_vm_key(&self) -> u64 {
        self.next_vm_key.fetch_add(1, Ordering::SeqCst)
    }

    pub fn notify(&self, vm_key: u64, root_context_id: u32, queue: u32) {
        lock(&self.inboxes)
            .entry(vm_key)
            .or_default()
            .push((root_context_id, queue));
    }
}

/// The latest wall time the clock saturates at: as many nanoseconds after the epoch as a u64
/// holds, which is what `proxy_get_current_time_nanoseconds` can report.
fn far_future() -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(u64::MAX)
}

/// The entry point of a test: a proxy that runs plugins. Plugins of one host share data, queues,
/// metrics and the clock; make one host per test so tests stay independent.
#[derive(Clone, Debug)]
pub struct TestHost {
    pub(crate) shared: Arc<Shared>,
}

impl Default for TestHost {
    fn default() -> Self {
        Self::new()
    }
}

impl TestHost {
    /// A new host with the default [`Limits`]. Its clock starts at the current wall time and
    /// moves only when told to.
    pub fn new() -> TestHost {
        Self::with_limits(Limits::default())
    }

    /// A new host whose plugins are held to `limits`.
    pub fn with_limits(limits: Limits) -> TestHost {
        TestHost {
            shared: Arc::new(Shared {
                clock: Mutex::new(Clock {
                    now: SystemTime::now(),
                    monotonic: Duration::from_secs(1),
                }),
                shared_data: Mutex::default(),
                queues: Mutex::default(),
                metrics: Mutex::default(),
                inboxes: Mutex::default(),
                clusters: Mutex::new(None),
                histogram_values: AtomicUsize::new(0),
                limits,
                next_vm_key: AtomicU64::new(1),
            }),
        }
    }

    /// Starts describing a plugin that runs the module at `wasm_path`.
    pub fn plugin(&self, wasm_path: impl AsRef<Path>) -> PluginBuilder {
        PluginBuilder::new(
            self.clone(),
            crate::plugin::Source::Path(wasm_path.as_ref().to_path_buf()),
        )
    }

    /// Compiles the module at `wasm_path` (or takes it from the cache) for starting many plugins.
    pub fn module(&self, wasm_path: impl AsRef<Path>) -> crate::Result<crate::plugin::Module> {
        let path = wasm_path.as_ref();
        let wasm = std::fs::read(path)
            .map_err(|e| crate::Error::Load(format!("{}: {e}", path.display())))?;
        Ok(crate::plugin::Module::new(
            self.clone(),
            crate::engine::compile(&wasm)?,
        ))
    }

    /// Starts describing a plugin that runs the module given as bytes (binary or WAT text).
    pub fn plugin_from_bytes(&self, wasm: impl Into<Vec<u8>>) -> PluginBuilder {
        PluginBuilder::new(self.clone(), crate::plugin::Source::Bytes(wasm.into()))
    }

    /// The host clock (wall time seen by `proxy_get_current_time_nanoseconds` and WASI).
    pub fn now(&self) -> SystemTime {
        self.shared.now()
    }

    /// Sets the wall clock.
    pub fn set_time(&self, now: SystemTime) {
        lock(&self.shared.clock).now = now;
    }

    /// The caps this host holds its plugins to.
    pub fn limits(&self) -> &Limits {
        &self.shared.limits
    }

    /// Moves the wall and monotonic clocks forward. Use `Plugin::advance` to also fire ticks.
    /// Both saturate rather than overflow.
    pub fn advance_clock(&self, by: Duration) {
        let mut clock = lock(&self.shared.clock);
        clock.monotonic = clock.monotonic.saturating_add(by);
        clock.now = clock.now.checked_add(by).unwrap_or_else(far_future);
    }

    /// Restricts `proxy_http_call` to these clusters, as Envoy does (others are `BadArgument`).
    pub fn set_clusters<S: Into<String>>(&self, clusters: impl IntoIterator<Item = S>) {
        *lock(&self.shared.clusters) = Some(clusters.into_iter().map(Into::into).collect());
    }

    /// A metric's value by the name the module defined.
    pub fn metric(&self, name: &str) -> Option<MetricValue> {
        lock(&self.shared.metrics).get(name).cloned()
    }

    /// A counter's value, or `None` if there is no counter of that name.
    pub fn counter(&self, name: &str) -> Option<u64> {
        match self.metric(name) {
            Some(MetricValue::Counter(value)) => Some(value),
            _ => None,
        }
    }

    /// A gauge's value, or `None` if there is no gauge of that name.
    pub fn gauge(&self, name: &str) -> Option<u64> {
        match self.metric(name) {
            Some(MetricValue::Gauge(value)) => Some(value),
            _ => None,
        }
    }

    /// Every metric, by name.
    pub fn metrics(&self) -> BTreeMap<String, MetricValue> {
        lock(&self.shared.metrics).clone()
    }

    /// A shared-data value and its CAS, for `vm_id` ("" for the default VM id).
    pub fn shared_data(&self, vm_id: &str, key: &[u8]) -> Option<(Vec<u8>, u32)> {
        lock(&self.shared.shared_data)
            .entries
            .get(&(vm_id.to_string(), key.to_vec()))
            .cloned()
    }

    /// Sets a shared-data value from the test, with a fresh CAS (the test is not held to
    /// `Limits::shared_data_bytes`, but its bytes count toward it).
    pub fn set_shared_data(&self, vm_id: &str, key: &[u8], value: &[u8]) -> u32 {
        lock(&self.shared.shared_data)
            .set(
                (vm_id.to_string(), key.to_vec()),
                value.to_vec(),
                usize::MAX,
            )
            .unwrap_or_default()
    }

    /// The items waiting in a shared queue, oldest first.
    pub fn queue_items(&self, vm_id: &str, name: &str) -> Option<Vec<Vec<u8>>> {
        lock(&self.shared.queues)
            .by_token
            .values()
            .find(|queue| queue.vm_id == vm_id && queue.name == name)
            .map(|queue| queue.items.iter().cloned().collect())
    }
}
