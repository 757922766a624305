//! A plugin: one VM instance of a module with one root context, started as Envoy starts it.

use crate::callouts::{GrpcCall, HttpCall, HttpResponse};
use crate::engine::{self, AbiVersion, EPOCH_TICK, MAX_MEMORY_BYTES};
use crate::error::{Error, Result};
use crate::host::{lock, TestHost};
use crate::hostcalls::{Fault, HostcallRecord, Status, Times};
use crate::state::{
    CallStatus, CalloutView, HeaderMap, HostState, LogEntry, LogLevel, Logs, MapKind, SharedLogs,
};
use crate::stream::HttpStream;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime::{Instance, Store, StoreLimitsBuilder, Trap, WasmParams, WasmResults};

/// gRPC's status for a call whose timeout passed (Envoy's async client closes it so).
const GRPC_DEADLINE_EXCEEDED: u32 = 4;

pub(crate) enum Source {
    Path(PathBuf),
    Bytes(Vec<u8>),
    Compiled(Arc<engine::Compiled>),
}

/// A module compiled once, from which many plugins start without reading or hashing it again.
#[derive(Clone)]
pub struct Module {
    host: TestHost,
    compiled: Arc<engine::Compiled>,
}

impl Module {
    pub(crate) fn new(host: TestHost, compiled: Arc<engine::Compiled>) -> Module {
        Module { host, compiled }
    }

    /// Starts describing a plugin that runs this module.
    pub fn plugin(&self) -> PluginBuilder {
        PluginBuilder::new(self.host.clone(), Source::Compiled(self.compiled.clone()))
    }

    /// The ABI version the module exports.
    pub fn abi_version(&self) -> AbiVersion {
        self.compiled.abi
    }

    /// Whether the module exports a function `name` (a callback Envoy calls only if it is there).
    pub fn exports_function(&self, name: &str) -> bool {
        matches!(
            self.compiled.pre.module().get_export(name),
            Some(wasmtime::ExternType::Func(_))
        )
    }
}

/// Describes a plugin before it starts: its configuration, identity, log level and limits.
pub struct PluginBuilder {
    host: TestHost,
    source: Source,
    plugin_configuration: Vec<u8>,
    vm_configuration: Vec<u8>,
    log_level: LogLevel,
    call_timeout: Duration,
    properties: BTreeMap<Vec<u8>, Vec<u8>>,
    vm_id: String,
    plugin_name: String,
    root_id: String,
    environment: Vec<(String, String)>,
    faults: Vec<Fault>,
    fault_error: Option<Error>,
}

/// An injected failure of hostcall `name`; `Error::Usage` for a name this host does not provide,
/// `None` when it never applies.
fn fault(name: &str, status: Status, times: Times) -> Result<Option<Fault>> {
    let name = crate::hostcalls::known_name(name)
        .ok_or_else(|| Error::Usage(format!("{name} is not a hostcall of this host")))?;
    let remaining = match times {
        Times::Once => Some(1),
        Times::Next(0) => return Ok(None),
        Times::Next(n) => Some(n),
        Times::Always => None,
    };
    Ok(Some(Fault {
        name,
        status,
        remaining,
    }))
}

impl PluginBuilder {
    pub(crate) fn new(host: TestHost, source: Source) -> PluginBuilder {
        PluginBuilder {
            host,
            source,
            plugin_configuration: Vec::new(),
            vm_configuration: Vec::new(),
            log_level: LogLevel::Info,
            call_timeout: Duration::from_secs(2),
            properties: BTreeMap::new(),
            vm_id: String::new(),
            plugin_name: String::new(),
            root_id: String::new(),
            environment: Vec::new(),
            faults: Vec::new(),
            fault_error: None,
        }
    }

    /// Makes hostcall `name` fail with `status` from the start (see [`Plugin::fail_hostcall`]),
    /// e.g. a metric that cannot be defined while the plugin configures. A name this host does
    /// not provide makes `start` fail with `Error::Usage`.
    pub fn fail_hostcall(mut self, name: &str, status: Status, times: Times) -> Self {
        match fault(name, status, times) {
            Ok(fault) => self.faults.extend(fault),
            Err(error) => self.fault_error = Some(error),
        }
        self
    }

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

    /// The VM id (`vm_config.vm_id`). Plugins with the same VM id share data and queues.
    pub fn vm_id(mut self, vm_id: &str) -> Self {
        self.vm_id = vm_id.to_string();
        self
    }

    /// The plugin name (`config.name`), reported as the `plugin_name` property.
    pub fn name(mut self, name: &str) -> Self {
        self.plugin_name = name.to_string();
        self
    }

    /// The root id (`config.root_id`).
    pub fn root_id(mut self, root_id: &str) -> Self {
        self.root_id = root_id.to_string();
        self
    }

    /// An environment variable the module sees through WASI.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.environment.push((key.to_string(), value.to_string()));
        self
    }

    /// The host log level; lower-level lines are dropped. Default `Info`, as Envoy.
    pub fn log_level(mut self, level: LogLevel) -> Self {
        self.log_level = level;
        self
    }

    /// How long one callback may run before it is interrupted with a trap. Default 2 s; a
    /// duration too long to count (`Duration::MAX`) saturates.
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// A property every context of the plugin sees, e.g. `&["xds", "cluster_name"]`.
    pub fn property(mut self, path: &[&str], value: impl Into<Vec<u8>>) -> Self {
        self.properties
            .insert(path.join("\0").into_bytes(), value.into());
        self
    }

    /// Loads the module and runs Envoy's start sequence: `_initialize` (or `_start`), then
    /// `proxy_on_context_create` for the root, `proxy_on_vm_start`, `proxy_on_configure`.
    pub fn start(self) -> Result<Plugin> {
        if let Some(error) = self.fault_error {
            return Err(error);
        }
        let compiled = match &self.source {
            Source::Path(path) => engine::compile(
                &std::fs::read(path)
                    .map_err(|e| Error::Load(format!("{}: {e}", path.display())))?,
            )?,
            Source::Bytes(bytes) => engine::compile(bytes)?,
            Source::Compiled(compiled) => compiled.clone(),
        };
        let shared = self.host.shared.clone();
        let logs: SharedLogs = Arc::new(Mutex::new(Logs::new(&shared.limits)));
        let vm_key = shared.next_vm_key();
        let (wasi, stdout, stderr) = crate::wasi::context(
            shared.limits.output_capture_bytes,
            &logs,
            self.log_level,
            &self.environment,
            vm_key,
        );
        let state = HostState {
            wasi,
            limits: StoreLimitsBuilder::new()
                .memory_size(MAX_MEMORY_BYTES)
                .instances(1)
                .build(),
            shared,
            vm_key,
            vm_id: self.vm_id,
            plugin_name: self.plugin_name,
            root_id: self.root_id,
            root_context_id: 1,
            logs,
            log_level: self.log_level,
            stdout,
            stderr,
            vm_configuration: self.vm_configuration,
            plugin_configuration: self.plugin_configuration,
            plugin_configuration_visible: false,
            restricted: false,
            current_context: 0,
            effective_context: None,
            streams: HashMap::new(),
            properties: self.properties,
            tick_period_ms: 0,
            next_tick: None,
            next_http_token: 0,
            next_grpc_call_token: 0,
            next_grpc_stream_token: 0,
            http_calls: BTreeMap::new(),
            grpc_calls: BTreeMap::new(),
            callout_view: CalloutView::default(),
            grpc_receive_buffer: Vec::new(),
            call_status: CallStatus::default(),
            metric_ids: HashMap::new(),
            next_metric_id: [0; 3],
            deferred: Vec::new(),
            faults: self.faults,
            trace: VecDeque::new(),
            caps_reported: 0,
            shutdown_pending: false,
            done_called: false,
        };
        let mut store = Store::new(engine::engine(), state);
        store.limiter(|state| &mut state.limits);
        // Saturates (`Duration::MAX` is no deadline in practice) well below u64::MAX: wasmtime
        // adds the deadline to the current epoch.
        let deadline_ticks = u64::try_from(self.call_timeout.as_nanos() / EPOCH_TICK.as_nanos())
            .unwrap_or(u64::MAX)
            .clamp(1, u64::MAX / 2);
        store.set_epoch_deadline(deadline_ticks);
        // A start function is a guest call too.
        let pre = &compiled.pre;
        let instance = crate::stack::with_room(|| pre.instantiate(&mut store))
            .map_err(Error::Load)?
            .map_err(|e| Error::Load(format!("instantiation failed: {e:#}")))?;
        let mut vm = Vm {
            store,
            instance,
            functions: HashMap::new(),
            abi: compiled.abi,
            deadline_ticks,
            root_context_id: 1,
            next_context_id: 2,
            failed: None,
        };
        vm.start()?;
        Ok(Plugin {
            host: self.host,
            vm: Rc::new(RefCell::new(vm)),
        })
    }
}

/// A running plugin (one VM with its root context). Clones share the VM.
#[derive(Clone)]
pub struct Plugin {
    host: TestHost,
    pub(crate) vm: Rc<RefCell<Vm>>,
}

impl Plugin {
    /// Creates a new HTTP stream. Its `proxy_on_context_create` runs with the first request
    /// headers, as in Envoy.
    pub fn http_stream(&self) -> Result<HttpStream> {
        HttpStream::create(self.vm.clone())
    }

    /// The host this plugin runs in.
    pub fn host(&self) -> &TestHost {
        &self.host
    }

    /// The root context id (1).
    pub fn root_context_id(&self) -> u32 {
        self.vm.borrow().root_context_id
    }

    /// Everything logged so far at or above the host log level: `proxy_log` calls, and stdout
    /// (info) and stderr (error) writes, as Envoy logs them.
    pub fn logs(&self) -> Vec<LogEntry> {
        lock(&self.vm.borrow().store.data().logs).entries.clone()
    }

    /// Makes hostcall `name` (e.g. `"proxy_get_shared_data"`) return `status` to the module, doing
    /// nothing else, for the next call, the next `n` calls, or every call. Failures for different
    /// hostcalls apply independently; for one hostcall, the earliest added applies first.
    /// `Error::Usage` for a name this host does not provide.
    pub fn fail_hostcall(&self, name: &str, status: Status, times: Times) -> Result<()> {
        if let Some(fault) = fault(name, status, times)? {
            self.vm.borrow_mut().store.data_mut().faults.push(fault);
        }
        Ok(())
    }

    /// Removes every injected hostcall failure that has not run out.
    pub fn clear_hostcall_failures(&self) {
        self.vm.borrow_mut().store.data_mut().faults.clear();
    }

    /// Every hostcall the plugin's contexts made, oldest first, with the status each returned
    /// (the newest `Limits::trace_entries`).
    pub fn hostcalls(&self) -> Vec<HostcallRecord> {
        self.vm
            .borrow()
            .store
            .data()
            .trace
            .iter()
            .copied()
            .collect()
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
        String::from_utf8_lossy(self.vm.borrow().store.data().stdout.contents()).into_owned()
    }

    /// What the module wrote to stderr (a Rust filter's panic message lands here).
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(self.vm.borrow().store.data().stderr.contents()).into_owned()
    }

    /// The ABI version the module exports.
    pub fn abi_version(&self) -> AbiVersion {
        self.vm.borrow().abi
    }

    /// Why the VM failed, if it did (a trap fails the VM for good, as in Envoy).
    pub fn failure(&self) -> Option<String> {
        self.vm.borrow().failure()
    }

    /// The tick period the module set (`proxy_set_tick_period_milliseconds`); zero when none.
    pub fn tick_period(&self) -> Duration {
        Duration::from_millis(self.vm.borrow().store.data().tick_period_ms as u64)
    }

    /// Calls `proxy_on_tick` once, as the timer would.
    pub fn tick(&self) -> Result<()> {
        let mut vm = self.vm.borrow_mut();
        let root = vm.root_context_id;
        vm.call::<u32, ()>(root, "proxy_on_tick", root)?;
        vm.run_deferred()
    }

    /// Moves the host clock forward by `by`, firing `proxy_on_tick` for every period that
    /// elapses, failing HTTP callouts whose timeout passes with Envoy's 504, and closing gRPC
    /// calls whose timeout passes with `DEADLINE_EXCEEDED` (4), as Envoy does.
    pub fn advance(&self, by: Duration) -> Result<()> {
        let target = self.host.shared.monotonic().saturating_add(by);
        loop {
            let (next_tick, next_timeout) = {
                let vm = self.vm.borrow();
                let state = vm.store.data();
                let http = state.http_calls.values().filter_map(|call| {
                    call.timeout
                        .map(|timeout| (call.started.saturating_add(timeout), call.token, false))
                });
                let grpc = state
                    .grpc_calls
                    .values()
                    .filter(|call| !call.is_stream)
                    .filter_map(|call| {
                        call.timeout
                            .map(|timeout| (call.started.saturating_add(timeout), call.token, true))
                    });
                let timeout = http.chain(grpc).min();
                (state.next_tick, timeout)
            };
            let next_event = [next_tick, next_timeout.map(|(at, _, _)| at)]
                .into_iter()
                .flatten()
                .min();
            match next_event {
                Some(at) if at <= target => {
                    let now = self.host.shared.monotonic();
                    self.host.advance_clock(at.saturating_sub(now));
                    if let Some((_, token, grpc)) =
                        next_timeout.filter(|(deadline, _, _)| *deadline == at)
                    {
                        if grpc {
                            self.close_grpc(token, GRPC_DEADLINE_EXCEEDED, "")?;
                        } else {
                            self.respond_http_call(token, HttpResponse::gateway_timeout())?;
                        }
                    } else {
                        {
                            let mut vm = self.vm.borrow_mut();
                            let state = vm.store.data_mut();
                            let period = Duration::from_millis(state.tick_period_ms as u64);
                            state.next_tick = (!period.is_zero())
                                .then(|| at.checked_add(period))
                                .flatten();
                        }
                        self.tick()?;
                    }
                }
                _ => {
                    let now = self.host.shared.monotonic();
                    self.host.advance_clock(target.saturating_sub(now));
                    return Ok(());
                }
            }
        }
    }

    /// Delivers pending `proxy_on_queue_ready` notifications for queues this VM owns; returns how
    /// many were delivered.
    pub fn deliver_queue_ready(&self) -> Result<usize> {
        let vm_key = self.vm.borrow().store.data().vm_key;
        let pending = lock(&self.host.shared.inboxes)
            .remove(&vm_key)
            .unwrap_or_default();
        {
            let mut queues = lock(&self.host.shared.queues);
            let delivered = pending.len() * crate::hostcalls::queues::NOTIFICATION_BYTES;
            queues.bytes = queues.bytes.saturating_sub(delivered);
        }
        let mut vm = self.vm.borrow_mut();
        for &(root, queue) in &pending {
            vm.call::<(u32, u32), ()>(root, "proxy_on_queue_ready", (root, queue))?;
            vm.run_deferred()?;
        }
        Ok(pending.len())
    }

    /// HTTP callouts waiting for an answer, oldest first.
    pub fn http_calls(&self) -> Vec<HttpCall> {
        self.vm
            .borrow()
            .store
            .data()
            .http_calls
            .values()
            .cloned()
            .collect()
    }

    /// Answers an HTTP callout: `proxy_on_http_call_response(root, token, headers, body, trailers)`
    /// with the response readable only during that callback.
    pub fn respond_http_call(&self, token: u32, response: HttpResponse) -> Result<()> {
        let mut vm = self.vm.borrow_mut();
        vm.take_http_call(token)?;
        let headers = response.header_map();
        let trailers = (!response.trailers.is_empty())
            .then(|| HeaderMap::with_kind(MapKind::Plain, &response.trailers));
        let args = (
            headers.len() as u32,
            response.body.len() as u32,
            trailers.as_ref().map_or(0, |t| t.len() as u32),
        );
        vm.store.data_mut().callout_view = CalloutView {
            headers: Some(headers),
            trailers: Some(trailers.unwrap_or_default()),
            body: Some(response.body),
        };
        vm.deliver_http_call_response(token, args)
    }

    /// Fails an HTTP callout as a reset connection: the callback gets no headers, body or
    /// trailers, and `proxy_get_status` reports BrokenConnection with "reset".
    pub fn fail_http_call(&self, token: u32) -> Result<()> {
        let mut vm = self.vm.borrow_mut();
        vm.take_http_call(token)?;
        vm.store.data_mut().call_status = CallStatus {
            code: crate::hostcalls::Status::BrokenConnection as u32,
            message: b"reset".to_vec(),
        };
        vm.deliver_http_call_response(token, (0, 0, 0))
    }

    /// gRPC calls and streams that are still open.
    pub fn grpc_calls(&self) -> Vec<GrpcCall> {
        self.vm
            .borrow()
            .store
            .data()
            .grpc_calls
            .values()
            .cloned()
            .collect()
    }

    /// Answers a unary gRPC call with `message`: `proxy_on_grpc_receive`.
    pub fn respond_grpc_call(&self, token: u32, message: &[u8]) -> Result<()> {
        let mut vm = self.vm.borrow_mut();
        vm.take_grpc(token, false)?;
        vm.grpc_callback(
            token,
            "proxy_on_grpc_receive",
            message.len() as u32,
            |state| state.grpc_receive_buffer = message.to_vec(),
        )
    }

    /// Closes a gRPC call or stream with a status: `proxy_on_grpc_close`, with the status and
    /// message readable through `proxy_get_status` during the callback.
    pub fn close_grpc(&self, token: u32, status: u32, message: &str) -> Result<()> {
        let mut vm = self.vm.borrow_mut();
        vm.take_grpc(token, true)?;
        vm.grpc_callback(token, "proxy_on_grpc_close", status, |state| {
            state.call_status = CallStatus {
                code: status,
                message: message.as_bytes().to_vec(),
            };
        })
    }

    /// Sends initial metadata on a gRPC stream: `proxy_on_grpc_receive_initial_metadata`.
    pub fn grpc_stream_initial_metadata<N: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        token: u32,
        metadata: &[(N, V)],
    ) -> Result<()> {
        self.grpc_stream_metadata(
            token,
            "proxy_on_grpc_receive_initial_metadata",
            HeaderMap::from_pairs(metadata),
            |view| &mut view.headers,
        )
    }

    /// Sends a message on a gRPC stream: `proxy_on_grpc_receive`.
    pub fn grpc_stream_message(&self, token: u32, message: &[u8]) -> Result<()> {
        let mut vm = self.vm.borrow_mut();
        vm.grpc_stream_exists(token)?;
        vm.grpc_callback(
            token,
            "proxy_on_grpc_receive",
            message.len() as u32,
            |state| state.grpc_receive_buffer = message.to_vec(),
        )
    }

    /// Sends trailing metadata on a gRPC stream: `proxy_on_grpc_receive_trailing_metadata`.
    pub fn grpc_stream_trailing_metadata<N: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        token: u32,
        metadata: &[(N, V)],
    ) -> Result<()> {
        self.grpc_stream_metadata(
            token,
            "proxy_on_grpc_receive_trailing_metadata",
            HeaderMap::from_pairs(metadata),
            |view| &mut view.trailers,
        )
    }

    /// Shows `metadata` to a gRPC stream's `callback` as the callout map that `slot` picks.
    fn grpc_stream_metadata(
        &self,
        token: u32,
        callback: &str,
        metadata: HeaderMap,
        slot: fn(&mut CalloutView) -> &mut Option<HeaderMap>,
    ) -> Result<()> {
        let count = metadata.len() as u32;
        let mut vm = self.vm.borrow_mut();
        vm.grpc_stream_exists(token)?;
        vm.grpc_callback(token, callback, count, |state| {
            *slot(&mut state.callout_view) = Some(metadata)
        })
    }

    /// Shuts the plugin down as Envoy does on reconfiguration: `proxy_on_done` on the root, then
    /// `proxy_on_delete` if it returned true. Returns whether the root finished at once.
    pub fn shutdown(&self) -> Result<bool> {
        let mut vm = self.vm.borrow_mut();
        let root = vm.root_context_id;
        let done = vm
            .call::<u32, u32>(root, "proxy_on_done", root)?
            .unwrap_or(1)
            != 0;
        if done {
            vm.call::<u32, ()>(root, "proxy_on_delete", root)?;
        } else {
            vm.store.data_mut().shutdown_pending = true;
        }
        Ok(done)
    }

    /// Whether the root context called `proxy_done` after a deferred shutdown.
    pub fn done_called(&self) -> bool {
        self.vm.borrow().store.data().done_called
    }
}

/// One VM: the store, the instance, and the context ids handed out so far.
pub(crate) struct Vm {
    pub store: Store<HostState>,
    instance: Instance,
    functions: HashMap<String, Option<wasmtime::Func>>,
    pub abi: AbiVersion,
    deadline_ticks: u64,
    pub root_context_id: u32,
    next_context_id: u32,
    failed: Option<String>,
}

impl Vm {
    fn start(&mut self) -> Result<()> {
        // Only logging is allowed while the module initialises, as in Envoy.
        self.store.data_mut().restricted = true;
        if self.call::<(), ()>(0, "_initialize", ())?.is_some() {
            if self.function("main").is_some() {
                self.call::<(u32, u32), u32>(0, "main", (0, 0))?;
            }
        } else {
            self.call::<(), ()>(0, "_start", ())?;
        }
        self.store.data_mut().restricted = false;
        let root = self.root_context_id;
        self.store.data_mut().plugin_configuration_visible = true;
        self.call::<(u32, u32), ()>(root, "proxy_on_context_create", (root, 0))?;
        self.store.data_mut().plugin_configuration_visible = false;
        let vm_configuration_size = self.store.data().vm_configuration.len() as u32;
        if self.call::<(u32, u32), u32>(root, "proxy_on_vm_start", (root, vm_configuration_size))?
            == Some(0)
        {
            return Err(self.rejected("proxy_on_vm_start"));
        }
        self.store.data_mut().plugin_configuration_visible = true;
        let plugin_configuration_size = self.store.data().plugin_configuration.len() as u32;
        let configured = self.call::<(u32, u32), u32>(
            root,
            "proxy_on_configure",
            (root, plugin_configuration_size),
        );
        self.store.data_mut().plugin_configuration_visible = false;
        if configured? == Some(0) {
            return Err(self.rejected("proxy_on_configure"));
        }
        self.run_deferred()
    }

    fn rejected(&self, callback: &'static str) -> Error {
        let logs = lock(&self.store.data().logs)
            .entries
            .iter()
            .filter(|entry| entry.level >= LogLevel::Warn)
            .map(|entry| entry.message.clone())
            .collect();
        Error::Rejected { callback, logs }
    }

    /// Allocates the next context id (the root is 1, streams follow).
    pub fn next_context_id(&mut self) -> u32 {
        let id = self.next_context_id;
        self.next_context_id += 1;
        id
    }

    pub fn failure(&self) -> Option<String> {
        self.failed.clone()
    }

    pub fn check_alive(&self) -> Result<()> {
        match &self.failed {
            Some(reason) => Err(Error::VmFailed(reason.clone())),
            None => Ok(()),
        }
    }

    fn function(&mut self, name: &str) -> Option<wasmtime::Func> {
        if let Some(func) = self.functions.get(name) {
            return *func;
        }
        let func = self.instance.get_func(&mut self.store, name);
        self.functions.insert(name.to_string(), func);
        func
    }

    /// Calls export `name` for `context_id`. `Ok(None)` when the module does not export it
    /// (Envoy then uses the callback's default). A trap fails the VM for good.
    pub fn call<P: WasmParams + Send, R: WasmResults + Send>(
        &mut self,
        context_id: u32,
        name: &str,
        params: P,
    ) -> Result<Option<R>> {
        self.check_alive()?;
        let Some(func) = self.function(name) else {
            return Ok(None);
        };
        let func = func
            .typed::<P, R>(&self.store)
            .map_err(|e| Error::Load(format!("export {name} has the wrong signature: {e}")))?;
        let state = self.store.data_mut();
        state.current_context = context_id;
        state.effective_context = None;
        self.store.set_epoch_deadline(self.deadline_ticks);
        let store = &mut self.store;
        let outcome = crate::stack::with_room(|| func.call(store, params));
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(reason) => return Err(Error::Usage(reason)),
        };
        match outcome {
            Ok(result) => Ok(Some(result)),
            Err(error) => {
                let message = match error.downcast_ref::<Trap>() {
                    Some(Trap::Interrupt) => format!(
                        "deadline exceeded: the callback ran longer than {} ms",
                        self.deadline_ticks
                            .saturating_mul(EPOCH_TICK.as_millis() as u64)
                    ),
                    _ => format!("{error:?}"),
                };
                let stderr =
                    String::from_utf8_lossy(self.store.data().stderr.contents()).into_owned();
                let first_line = message.lines().next().unwrap_or_default().to_string();
                self.failed = Some(format!("trap in {name}: {first_line}"));
                self.store.data_mut().deferred.clear();
                Err(Error::Trap {
                    callback: name.to_string(),
                    message,
                    stderr,
                })
            }
        }
    }

    fn take_http_call(&mut self, token: u32) -> Result<HttpCall> {
        self.store
            .data_mut()
            .http_calls
            .remove(&token)
            .ok_or_else(|| Error::Usage(format!("no pending HTTP call with token {token}")))
    }

    fn deliver_http_call_response(
        &mut self,
        token: u32,
        (headers, body, trailers): (u32, u32, u32),
    ) -> Result<()> {
        let root = self.root_context_id;
        let result = self.call::<(u32, u32, u32, u32, u32), ()>(
            root,
            "proxy_on_http_call_response",
            (root, token, headers, body, trailers),
        );
        let state = self.store.data_mut();
        state.callout_view = CalloutView::default();
        state.call_status.message.clear();
        result?;
        self.run_deferred()
    }

    fn take_grpc(&mut self, token: u32, any_kind: bool) -> Result<GrpcCall> {
        let calls = &mut self.store.data_mut().grpc_calls;
        match calls.get(&token) {
            Some(call) if any_kind || !call.is_stream => {
                Ok(calls.remove(&token).expect("checked above"))
            }
            Some(_) => Err(Error::Usage(format!(
                "gRPC token {token} is a stream; use the grpc_stream_* methods"
            ))),
            None => Err(Error::Usage(format!(
                "no open gRPC call with token {token}"
            ))),
        }
    }

    fn grpc_stream_exists(&self, token: u32) -> Result<()> {
        match self.store.data().grpc_calls.get(&token) {
            Some(call) if call.is_stream => Ok(()),
            _ => Err(Error::Usage(format!(
                "no open gRPC stream with token {token}"
            ))),
        }
    }

    fn grpc_callback(
        &mut self,
        token: u32,
        callback: &str,
        argument: u32,
        prepare: impl FnOnce(&mut HostState),
    ) -> Result<()> {
        prepare(self.store.data_mut());
        let root = self.root_context_id;
        let result = self.call::<(u32, u32, u32), ()>(root, callback, (root, token, argument));
        let state = self.store.data_mut();
        state.callout_view = CalloutView::default();
        state.grpc_receive_buffer.clear();
        result?;
        self.run_deferred()
    }
}
