//! One shared wasmtime `Engine` per process, and a cache of compiled modules keyed by content.

use crate::error::{Error, Result};
use crate::hostcalls;
use crate::state::HostState;
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, InstancePre, Linker, Module,
    PoolingAllocationConfig,
};

/// Largest linear memory a module may grow to.
pub const MAX_MEMORY_BYTES: usize = 256 << 20;

/// How often the epoch advances; call deadlines are counted in these ticks.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(5);

/// The proxy-wasm ABI version a module exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbiVersion {
    /// `proxy_abi_version_0_2_0`
    V0_2_0,
    /// `proxy_abi_version_0_2_1`
    V0_2_1,
}

/// A compiled module with everything needed to instantiate it quickly.
pub(crate) struct Compiled {
    pub pre: InstancePre<HostState>,
    pub abi: AbiVersion,
}

/// The process-wide engine: epoch interruption for call deadlines, pooling allocation for fast
/// instantiation (falling back to on-demand allocation where the pool cannot be reserved).
pub(crate) fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut pool = PoolingAllocationConfig::new();
        pool.total_core_instances(512)
            .total_memories(512)
            .total_tables(512)
            .max_memory_size(MAX_MEMORY_BYTES);
        let engine = Engine::new(
            base_config().allocation_strategy(InstanceAllocationStrategy::Pooling(pool)),
        )
        .or_else(|_| Engine::new(&base_config()))
        .unwrap_or_else(|error| panic!("wasmtime engine cannot be created: {error}"));
        let ticker = engine.weak();
        std::thread::Builder::new()
            .name("test-host-epoch".into())
            .spawn(move || {
                while let Some(engine) = ticker.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .expect("spawn the epoch ticker");
        engine
    })
}

fn base_config() -> Config {
    let mut config = Config::new();
    config.epoch_interruption(true);
    config
}

fn linker() -> Result<Linker<HostState>> {
    let mut linker = Linker::new(engine());
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |state: &mut HostState| &mut state.wasi)
        .map_err(|e| Error::Load(format!("WASI: {e}")))?;
    hostcalls::add_to_linker(&mut linker).map_err(|e| Error::Load(format!("hostcalls: {e}")))?;
    Ok(linker)
}

/// Compiles `wasm` once per process; later calls with the same bytes reuse the result.
pub(crate) fn compile(wasm: &[u8]) -> Result<Arc<Compiled>> {
    type Cache = Mutex<HashMap<u64, Vec<(Vec<u8>, Arc<Compiled>)>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let mut hasher = DefaultHasher::new();
    wasm.hash(&mut hasher);
    let key = hasher.finish();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(hit) = lock(cache)
        .get(&key)
        .and_then(|bucket| bucket.iter().find(|(bytes, _)| bytes == wasm))
    {
        return Ok(hit.1.clone());
    }
    let compiled = Arc::new(compile_uncached(wasm)?);
    lock(cache)
        .entry(key)
        .or_default()
        .push((wasm.to_vec(), compiled.clone()));
    Ok(compiled)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn compile_uncached(wasm: &[u8]) -> Result<Compiled> {
    let module = Module::new(engine(), wasm).map_err(|e| Error::Load(format!("{e:#}")))?;
    let abi = abi_version(&module)?;
    let pre = linker()?
        .instantiate_pre(&module)
        .map_err(|e| Error::Load(format!("{e:#}")))?;
    Ok(Compiled { pre, abi })
}

fn abi_version(module: &Module) -> Result<AbiVersion> {
    let exports: Vec<&str> = module.exports().map(|export| export.name()).collect();
    if exports.contains(&"proxy_abi_version_0_2_1") {
        Ok(AbiVersion::V0_2_1)
    } else if exports.contains(&"proxy_abi_version_0_2_0") {
        Ok(AbiVersion::V0_2_0)
    } else if let Some(other) = exports
        .iter()
        .find(|name| name.starts_with("proxy_abi_version_"))
    {
        Err(Error::Load(format!("unsupported proxy-wasm ABI: the module exports {other}; this host supports 0.2.0 and 0.2.1")))
    } else {
        Err(Error::Load(
            "not a proxy-wasm module: it exports no proxy_abi_version_* function".into(),
        ))
    }
}
