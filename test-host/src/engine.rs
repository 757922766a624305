//! One shared wasmtime `Engine` per process, one linker per ABI version, and a cache of compiled
//! modules keyed by content (in memory, and on disk when `TEST_HOST_CACHE_DIR` is set).

use crate::error::{Error, Result};
use crate::hostcalls;
use crate::state::HostState;
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use wasmtime::{
    Config, Engine, ExternType, InstanceAllocationStrategy, InstancePre, Linker, Module,
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
/// instantiation (on-demand allocation where the pool cannot be reserved).
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
        // The only thread test-host starts: it advances the epoch so that call deadlines fire.
        let _ = std::thread::Builder::new()
            .name("test-host-epoch".into())
            .spawn(move || {
                while let Some(engine) = ticker.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            });
        engine
    })
}

fn base_config() -> Config {
    let mut config = Config::new();
    config.epoch_interruption(true);
    config.max_wasm_stack(crate::stack::MAX_WASM_STACK);
    config
}

fn linker(abi: AbiVersion) -> Result<&'static Linker<HostState>> {
    static LINKERS: OnceLock<std::result::Result<[Linker<HostState>; 2], String>> = OnceLock::new();
    let linkers = LINKERS.get_or_init(|| {
        let build = |abi| -> std::result::Result<Linker<HostState>, String> {
            let mut linker = Linker::new(engine());
            crate::wasi::add_to_linker(&mut linker).map_err(|e| format!("WASI: {e}"))?;
            hostcalls::add_to_linker(&mut linker, abi).map_err(|e| format!("hostcalls: {e}"))?;
            Ok(linker)
        };
        Ok([build(AbiVersion::V0_2_0)?, build(AbiVersion::V0_2_1)?])
    });
    match linkers {
        Ok(linkers) => Ok(&linkers[(abi == AbiVersion::V0_2_1) as usize]),
        Err(reason) => Err(Error::Load(reason.clone())),
    }
}

/// Compiles `wasm` (binary or WAT) once per process; later calls with the same bytes reuse it.
pub(crate) fn compile(wasm: &[u8]) -> Result<Arc<Compiled>> {
    type Cache = Mutex<HashMap<u64, Vec<(Vec<u8>, Arc<Compiled>)>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let key = content_hash(wasm);
    let cache = CACHE.get_or_init(Default::default);
    if let Some(hit) = crate::host::lock(cache)
        .get(&key)
        .and_then(|bucket| bucket.iter().find(|(bytes, _)| bytes == wasm))
    {
        return Ok(hit.1.clone());
    }
    let module = load_module(wasm, key)?;
    let compiled = Arc::new(prepare(&module)?);
    crate::host::lock(cache)
        .entry(key)
        .or_default()
        .push((wasm.to_vec(), compiled.clone()));
    Ok(compiled)
}

fn content_hash(wasm: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    wasm.hash(&mut hasher);
    hasher.finish()
}

/// Compiles a module, through the on-disk cache when `TEST_HOST_CACHE_DIR` names a directory.
fn load_module(wasm: &[u8], key: u64) -> Result<Module> {
    let engine = engine();
    let Some(dir) = std::env::var_os("TEST_HOST_CACHE_DIR").map(PathBuf::from) else {
        return Module::new(engine, wasm).map_err(|e| Error::Load(format!("{e:#}")));
    };
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    wasm.len().hash(&mut hasher);
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let path = dir.join(format!("{:016x}.cwasm", hasher.finish()));
    if path.is_file() {
        // SAFETY: the file is one this function wrote for this engine configuration; a test
        // cache directory is trusted like the test's own build output.
        if let Ok(module) = unsafe { Module::deserialize_file(engine, &path) } {
            return Ok(module);
        }
    }
    let module = Module::new(engine, wasm).map_err(|e| Error::Load(format!("{e:#}")))?;
    if let Ok(serialized) = module.serialize() {
        let _ = std::fs::create_dir_all(&dir);
        let temporary = path.with_extension(format!("tmp{}", std::process::id()));
        if std::fs::write(&temporary, serialized).is_ok() {
            let _ = std::fs::rename(&temporary, &path);
        }
    }
    Ok(module)
}

fn prepare(module: &Module) -> Result<Compiled> {
    let abi = abi_version(module)?;
    let missing = unsupported_imports(module, abi);
    if !missing.is_empty() {
        return Err(Error::Load(format!(
            "the module imports what this host does not provide: {}",
            missing.join(", ")
        )));
    }
    let has_export = |name: &str| module.get_export(name).is_some();
    if !has_export("malloc") && !has_export("proxy_on_memory_allocate") {
        return Err(Error::Load(
            "the module exports neither malloc nor proxy_on_memory_allocate".into(),
        ));
    }
    check_signatures(module)?;
    let pre = linker(abi)?
        .instantiate_pre(module)
        .map_err(|e| Error::Load(format!("{e:#}")))?;
    Ok(Compiled { pre, abi })
}

/// The ABI version from the first `proxy_abi_version_*` function export, as proxy-wasm-cpp-host.
pub(crate) fn abi_version(module: &Module) -> Result<AbiVersion> {
    for export in module.exports() {
        if !matches!(export.ty(), ExternType::Func(_)) {
            continue;
        }
        match export.name() {
            "proxy_abi_version_0_2_1" => return Ok(AbiVersion::V0_2_1),
            "proxy_abi_version_0_2_0" => return Ok(AbiVersion::V0_2_0),
            other if other.starts_with("proxy_abi_version_") => {
                return Err(Error::Load(format!(
                    "unsupported proxy-wasm ABI: the module exports {other}; this host supports 0.2.0 and 0.2.1"
                )))
            }
            _ => {}
        }
    }
    Err(Error::Load("missing or unknown proxy-wasm ABI version: the module exports no proxy_abi_version_* function".into()))
}

/// Imports of `module` this host cannot satisfy for `abi`, as `module.name`.
pub(crate) fn unsupported_imports(module: &Module, abi: AbiVersion) -> Vec<String> {
    let provided = hostcalls::names(abi);
    module
        .imports()
        .filter(|import| {
            let known = match import.module() {
                "env" => provided.contains(&import.name()),
                module if crate::wasi::MODULES.contains(&module) => {
                    crate::wasi::FUNCTIONS.contains(&import.name())
                }
                _ => false,
            };
            // proxy-wasm-cpp-host rejects every global import.
            !known || !matches!(import.ty(), ExternType::Func(_))
        })
        .map(|import| format!("{}.{}", import.module(), import.name()))
        .collect()
}

/// Callback signatures as proxy-wasm-cpp-host expects them: (parameter count, has a result).
const CALLBACKS: &[(&str, usize, bool)] = &[
    ("proxy_on_context_create", 2, false),
    ("proxy_on_vm_start", 2, true),
    ("proxy_on_configure", 2, true),
    ("proxy_on_tick", 1, false),
    ("proxy_on_request_headers", 3, true),
    ("proxy_on_request_body", 3, true),
    ("proxy_on_request_trailers", 2, true),
    ("proxy_on_response_headers", 3, true),
    ("proxy_on_response_body", 3, true),
    ("proxy_on_response_trailers", 2, true),
    ("proxy_on_http_call_response", 5, false),
    ("proxy_on_grpc_receive_initial_metadata", 3, false),
    ("proxy_on_grpc_receive", 3, false),
    ("proxy_on_grpc_receive_trailing_metadata", 3, false),
    ("proxy_on_grpc_close", 3, false),
    ("proxy_on_queue_ready", 2, false),
    ("proxy_on_foreign_function", 3, false),
    ("proxy_on_done", 1, true),
    ("proxy_on_log", 1, false),
    ("proxy_on_delete", 1, false),
    ("proxy_on_memory_allocate", 1, true),
    ("malloc", 1, true),
];

fn check_signatures(module: &Module) -> Result<()> {
    for &(name, params, has_result) in CALLBACKS {
        let Some(ExternType::Func(ty)) = module.get_export(name) else {
            continue;
        };
        let i32_only = ty.params().chain(ty.results()).all(|t| t.is_i32());
        if ty.params().len() != params || ty.results().len() != has_result as usize || !i32_only {
            return Err(Error::Load(format!(
                "bad function signature for {name}: want {params} i32 parameter(s) and {} i32 result, the module exports {ty}",
                if has_result { "one" } else { "no" }
            )));
        }
    }
    Ok(())
}
