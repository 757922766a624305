//! A plugin: one VM instance of a module, started with a configuration as Envoy starts it.

use crate::engine::{self, AbiVersion, EPOCH_TICK, MAX_MEMORY_BYTES};
use crate::error::{Error, Result};
use crate::state::{HostState, LogEntry, LogLevel};
use crate::stream::HttpStream;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;
use wasmtime::{Instance, Store, StoreLimitsBuilder, Trap, WasmParams, WasmResults};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::WasiCtxBuilder;

/// How much of the module's stdout and stderr is kept.
const CAPTURE_BYTES: usize = 1 << 20;

/// The entry point of a test: a proxy that can run plugins. Cheap to create; tests that share
/// nothing should each make their own.
#[derive(Clone, Default)]
pub struct TestHost {
    _private: (),
}

impl TestHost {
    /// A new host.
    pub fn new() -> TestHost {
        TestHost::default()
    }

    /// Starts describing a plugin that runs the module at `wasm_path`.
    pub fn plugin(&self, wasm_path: impl AsRef<Path>) -> PluginBuilder {
        PluginBuilder {
            source: Source::Path(wasm_path.as_ref().to_path_buf()),
            plugin_configuration: Vec::new(),
            vm_configuration: Vec::new(),
            log_level: LogLevel::Info,
            call_timeout: Duration::from_secs(2),
            properties: BTreeMap::new(),
        }
    }

    /// Starts describing a plugin that runs the module given as bytes (or WAT text).
    pub fn plugin_from_bytes(&self, wasm: impl Into<Vec<u8>>) -> PluginBuilder {
        let mut builder = self.plugin("");
        builder.source = Source::Bytes(wasm.into());
        builder
    }
}

enum Source {
    Path(PathBuf),
    Bytes(Vec<u8>),
}

/// Describes a plugin before it starts: its configuration, log level and limits.
pub struct PluginBuilder {
    source: Source,
    plugin_configuration: Vec<u8>,
    vm_configuration: Vec<u8>,
    log_level: LogLevel,
    call_timeout: Duration,
    properties: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl PluginBuilder {
    /// The plugin configuration as JSON (Envoy's `configuration` StringValue).
    pub fn config(mut self, json: serde_json::Value) -> Self {
        self.plugin_configuration = json.to_string().into_bytes();
        self
    }

    /// The plugin configuration as raw bytes.
    pub fn config_bytes(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.plugin_configuration = bytes.into();
        self
    }

    /// The VM configuration bytes (Envoy's `vm_config.configuration`).
    pub fn vm_config_bytes(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.vm_configuration = bytes.into();
        self
    }

    /// The host log level; lower-level `proxy_log` calls are dropped. Default `Info`, as Envoy.
    pub fn log_level(mut self, level: LogLevel) -> Self {
        self.log_level = level;
        self
    }

    /// How long one callback may run before it is interrupted with a trap. Default 2 s.
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// A plugin-wide property, e.g. `&["plugin_name"]`.
    pub fn property(mut self, path: &[&str], value: impl Into<Vec<u8>>) -> Self {
        self.properties
            .insert(path.join("\0").into_bytes(), value.into());
        self
    }

    /// Loads the module and runs the start sequence: `_initialize`, `proxy_on_context_create`
    /// for the root context, `proxy_on_vm_start`, `proxy_on_configure`.
    pub fn start(self) -> Result<Plugin> {
        let wasm = match &self.source {
            Source::Path(path) => std::fs::read(path).map_err(|e| {
                Error::Load(format!(
                    "{}: {e} (build the filters with `make build`)",
                    path.display()
                ))
            })?,
            Source::Bytes(bytes) => bytes.clone(),
        };
        let compiled = engine::compile(&wasm)?;
        let stdout = MemoryOutputPipe::new(CAPTURE_BYTES);
        let stderr = MemoryOutputPipe::new(CAPTURE_BYTES);
        let wasi = WasiCtxBuilder::new()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .build_p1();
        let state = HostState {
            wasi,
            limits: StoreLimitsBuilder::new()
                .memory_size(MAX_MEMORY_BYTES)
                .instances(1)
                .build(),
            stdout,
            stderr,
            logs: Vec::new(),
            log_level: self.log_level,
            vm_configuration: self.vm_configuration,
            plugin_configuration: self.plugin_configuration,
            active_context: 0,
            streams: HashMap::new(),
            properties: self.properties,
        };
        let mut store = Store::new(engine::engine(), state);
        store.limiter(|state| &mut state.limits);
        let deadline_ticks = (self.call_timeout.as_nanos() / EPOCH_TICK.as_nanos()).max(1) as u64;
        store.set_epoch_deadline(deadline_ticks);
        let instance = compiled
            .pre
            .instantiate(&mut store)
            .map_err(|e| Error::Load(format!("instantiation failed: {e:#}")))?;
        let mut vm = Vm {
            store,
            instance,
            abi: compiled.abi,
            deadline_ticks,
            root_context_id: 1,
            next_context_id: 2,
            failed: None,
        };
        vm.start()?;
        Ok(Plugin {
            vm: Rc::new(RefCell::new(vm)),
        })
    }
}

/// A running plugin (one VM with its root context). Clones share the VM.
#[derive(Clone)]
pub struct Plugin {
    pub(crate) vm: Rc<RefCell<Vm>>,
}

impl Plugin {
    /// Creates a new HTTP stream (`proxy_on_context_create` with this plugin's root as parent).
    pub fn http_stream(&self) -> Result<HttpStream> {
        HttpStream::create(self.vm.clone())
    }

    /// Everything the module logged so far, at or above the host log level.
    pub fn logs(&self) -> Vec<LogEntry> {
        self.vm.borrow().store.data().logs.clone()
    }

    /// Log messages at `level` or above.
    pub fn log_messages(&self, level: LogLevel) -> Vec<String> {
        self.logs()
            .into_iter()
            .filter(|entry| entry.level >= level)
            .map(|entry| entry.message)
            .collect()
    }

    /// What the module wrote to stdout.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.vm.borrow().store.data().stdout.contents()).into_owned()
    }

    /// What the module wrote to stderr.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.vm.borrow().store.data().stderr.contents()).into_owned()
    }

    /// The ABI version the module exports.
    pub fn abi_version(&self) -> AbiVersion {
        self.vm.borrow().abi
    }

    /// Why the VM failed, if it did (a trap fails the VM for good, as in Envoy).
    pub fn failure(&self) -> Option<String> {
        self.vm.borrow().failed.clone()
    }
}

/// One VM: the store, the instance, and the context ids handed out so far.
pub(crate) struct Vm {
    pub store: Store<HostState>,
    instance: Instance,
    abi: AbiVersion,
    deadline_ticks: u64,
    pub root_context_id: u32,
    next_context_id: u32,
    failed: Option<String>,
}

impl Vm {
    fn start(&mut self) -> Result<()> {
        // A reactor (cdylib) exports `_initialize`; a command exports `_start`. Envoy runs either.
        for start in ["_initialize", "_start"] {
            if self.call::<(), ()>(0, start, ())?.is_some() {
                break;
            }
        }
        let root = self.root_context_id;
        self.call::<(u32, u32), ()>(root, "proxy_on_context_create", (root, 0))?;
        let vm_configuration_size = self.store.data().vm_configuration.len() as u32;
        if self.call::<(u32, u32), u32>(root, "proxy_on_vm_start", (root, vm_configuration_size))?
            == Some(0)
        {
            return Err(self.rejected("proxy_on_vm_start"));
        }
        let plugin_configuration_size = self.store.data().plugin_configuration.len() as u32;
        if self.call::<(u32, u32), u32>(
            root,
            "proxy_on_configure",
            (root, plugin_configuration_size),
        )? == Some(0)
        {
            return Err(self.rejected("proxy_on_configure"));
        }
        Ok(())
    }

    fn rejected(&self, callback: &'static str) -> Error {
        let logs = self
            .store
            .data()
            .logs
            .iter()
            .filter(|entry| entry.level >= LogLevel::Warn)
            .map(|entry| entry.message.clone())
            .collect();
        Error::Rejected { callback, logs }
    }

    /// Allocates the next context id.
    pub fn next_context_id(&mut self) -> u32 {
        let id = self.next_context_id;
        self.next_context_id += 1;
        id
    }

    /// Calls export `name` on behalf of `context_id`. `Ok(None)` when the module does not export
    /// it (Envoy then uses the callback's default). A trap fails the VM.
    pub fn call<P: WasmParams, R: WasmResults>(
        &mut self,
        context_id: u32,
        name: &str,
        params: P,
    ) -> Result<Option<R>> {
        if let Some(reason) = &self.failed {
            return Err(Error::VmFailed(reason.clone()));
        }
        let Some(func) = self.instance.get_func(&mut self.store, name) else {
            return Ok(None);
        };
        let func = func
            .typed::<P, R>(&self.store)
            .map_err(|e| Error::Load(format!("export {name} has the wrong signature: {e}")))?;
        self.store.data_mut().active_context = context_id;
        self.store.set_epoch_deadline(self.deadline_ticks);
        match func.call(&mut self.store, params) {
            Ok(result) => Ok(Some(result)),
            Err(error) => {
                let message = match error.downcast_ref::<Trap>() {
                    Some(Trap::Interrupt) => format!(
                        "deadline exceeded: the callback ran longer than {} ms",
                        self.deadline_ticks * EPOCH_TICK.as_millis() as u64
                    ),
                    _ => format!("{error:?}"),
                };
                let stderr =
                    String::from_utf8_lossy(&self.store.data().stderr.contents()).into_owned();
                self.failed = Some(format!("trap in {name}: {}", first_line(&message)));
                Err(Error::Trap {
                    callback: name.to_string(),
                    message,
                    stderr,
                })
            }
        }
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}
