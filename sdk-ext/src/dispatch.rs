//! The dispatcher: the proxy-wasm callbacks, routed to the filters of a module with Envoy's
//! filter-chain semantics. The wasm exports ([`crate::export`]) and the fake host's driver call
//! the same code, so chain behaviour is unit tested natively.
//!
//! A module holds one filter (standalone: the plugin configuration is the filter's) or a chain
//! (`{"filters": [{"name": "jwt-auth", "config": {...}}, ...]}`). Each root context is a plugin
//! with its own configured filters; each stream runs one per-request filter per position.

use crate::callout::CallResponse;
use crate::config::{parse, ConfigError, FromJson};
use crate::cx::{Cx, Effects, HttpCx, RootCx};
use crate::filter::{Action, AnyRoot, Factory, HttpFilter};
use crate::grpc::{GrpcResponse, GRPC_OK};
use crate::host::{BufferType, Host, StreamType};
use crate::text::Quoted;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;
use std::time::Duration;

/// Which filters a module holds.
#[derive(Clone, Copy)]
pub enum Module {
    /// One filter; the plugin configuration is its own.
    Standalone(Factory),
    /// Any of these filters, in the order the configuration lists them.
    Chain(&'static [Factory]),
}

/// One configured filter of a plugin.
struct Slot {
    root: Box<dyn AnyRoot>,
    namespace: String,
    tick: Duration,
    next_tick: u64,
}

/// A root context: the filters its configuration set up (none before `on_configure` succeeds).
#[derive(Default)]
struct Plugin {
    slots: Vec<Slot>,
    configured: bool,
    tick_millis: u32,
}

/// Where a callback left one direction of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Headers(bool),
    Body(usize, bool),
    Trailers,
}

#[derive(Debug, Default)]
struct Direction {
    /// The filter holding this direction, and the callback it paused in.
    held: Option<(usize, Phase)>,
    /// Body seen while the headers were held: its buffered size and end of stream.
    held_body: Option<(usize, bool)>,
    /// Trailers arrived while held.
    held_trailers: bool,
}

struct Stream {
    plugin: u32,
    filters: Vec<Box<dyn HttpFilter>>,
    request: Direction,
    response: Direction,
    replied: bool,
    /// Body replacements of the hook that just ran (see [`Effects::body_edits`]).
    body_edits: Vec<(StreamType, usize, usize, usize)>,
}

/// Who dispatched a callout.
#[derive(Debug, Clone, Copy)]
struct CallOwner {
    plugin: u32,
    position: usize,
    stream: Option<u32>,
}

/// Hashes the host's context ids and callout tokens: small integers the host picks, not input an
/// attacker chooses, so one multiplication spreads them. std's SipHash cost about 0.5 µs per
/// request in V8 across the lookups of one stream.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(byte)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u32(&mut self, id: u32) {
        self.0 = u64::from(id).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type IdMap<T> = HashMap<u32, T, BuildHasherDefault<IdHasher>>;

/// A map by id for the few plugins and queues of a VM: a list sorted by id. A hash table costs
/// about 2 KB of wasm code per value type, and over a handful of ids a binary search is as quick.
struct FewIds<T>(Vec<(u32, T)>);

impl<T> Default for FewIds<T> {
    fn default() -> Self {
        FewIds(Vec::new())
    }
}

impl<T> FewIds<T> {
    fn find(&self, id: u32) -> Result<usize, usize> {
        self.0.binary_search_by_key(&id, |(key, _)| *key)
    }

    fn get(&self, id: &u32) -> Option<&T> {
        let index = self.find(*id).ok()?;
        self.0.get(index).map(|(_, value)| value)
    }

    fn get_mut(&mut self, id: &u32) -> Option<&mut T> {
        let index = self.find(*id).ok()?;
        self.0.get_mut(index).map(|(_, value)| value)
    }

    fn insert(&mut self, id: u32, value: T) {
        match self.find(id) {
            Ok(index) => {
                if let Some(entry) = self.0.get_mut(index) {
                    entry.1 = value;
                }
            }
            Err(index) => self.0.insert(index, (id, value)),
        }
    }

    fn remove(&mut self, id: &u32) -> Option<T> {
        let index = self.find(*id).ok()?;
        Some(self.0.remove(index).1)
    }

    fn retain(&mut self, mut keep: impl FnMut(&u32, &mut T) -> bool) {
        self.0.retain_mut(|(id, value)| keep(id, value));
    }
}

impl<T: Default> FewIds<T> {
    fn get_or_default(&mut self, id: u32) -> Option<&mut T> {
        if self.find(id).is_err() {
            self.insert(id, T::default());
        }
        self.get_mut(&id)
    }
}

/// The module's state across callbacks.
pub struct Dispatcher {
    host: Rc<dyn Host>,
    module: Module,
    plugins: FewIds<Plugin>,
    streams: IdMap<Stream>,
    calls: IdMap<CallOwner>,
    /// gRPC calls by token: Envoy counts their tokens apart from HTTP callouts'.
    grpc_calls: IdMap<CallOwner>,
    /// Shared queues by id: the plugin and filter position that registered each.
    queues: FewIds<(u32, usize)>,
    config_error: Option<ConfigError>,
    /// The chain config reader, `None` in a standalone module.
    chain_entries: Option<ChainEntries>,
    /// Host time as read in the running callback (see [`Cx::now_nanos`]).
    clock: Cell<Option<u64>>,
}

/// The chain's configuration.
#[derive(FromJson)]
#[serde(deny_unknown_fields)]
struct ChainConfig {
    filters: Vec<ChainEntry>,
}

#[derive(FromJson)]
#[serde(deny_unknown_fields)]
struct ChainEntry {
    name: String,
    #[serde(default)]
    config: Option<crate::config::json::Json>,
}

fn step_position(direction: StreamType, filters: usize, step: usize) -> usize {
    match direction {
        StreamType::Request => step,
        StreamType::Response => filters - 1 - step,
    }
}

fn position_step(direction: StreamType, filters: usize, position: usize) -> usize {
    step_position(direction, filters, position)
}

/// The prefix of the shared-data keys of filter `position` of the plugin with root id
/// `root_id`: the same on every worker, different for every other filter instance.
pub fn shared_namespace(root_id: &str, position: usize) -> String {
    format!("{root_id}/{position}/")
}

/// A tick period as the host takes it: whole milliseconds, at least 1.
fn millis(period: Duration) -> u32 {
    u32::try_from(period.as_millis()).unwrap_or(u32::MAX).max(1)
}

/// The size of a `size`-byte body after Envoy's `proxy_set_buffer_bytes(start, removed, data)`
/// with `added` bytes of data: at 0 it drops up to `removed` bytes and prepends, at or past the
/// end it appends (anything else was refused and changed nothing).
fn body_size_after(size: usize, start: usize, removed: usize, added: usize) -> usize {
    if start == 0 {
        size - removed.min(size) + added
    } else if start >= size {
        size + added
    } else {
        size
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// A filter of the module, its configuration bytes, and the field path they came from.
type ChainEntryBytes<'a> = (Factory, std::borrow::Cow<'a, [u8]>, String);

/// Reads a chain configuration into its filters' entries. Only [`Dispatcher::new`] names it, so
/// a standalone module (built by [`Dispatcher::standalone`]) links none of the chain's config
/// code (its config types and the JSON writer).
type ChainEntries =
    for<'a> fn(&'static [Factory], &'a [u8]) -> Result<Vec<ChainEntryBytes<'a>>, ConfigError>;

fn chain_entries<'a>(
    factories: &'static [Factory],
    bytes: &'a [u8],
) -> Result<Vec<ChainEntryBytes<'a>>, ConfigError> {
    let chain: ChainConfig = parse(bytes)?;
    if chain.filters.is_empty() {
        return Err(ConfigError::new(
            "filters",
            "a chain needs at least one filter",
        ));
    }
    let mut entries = Vec::with_capacity(chain.filters.len());
    for (index, entry) in chain.filters.into_iter().enumerate() {
        let Some(factory) = factories.iter().find(|f| f.is_named(&entry.name)) else {
            let known: Vec<String> = factories.iter().map(Factory::chain_name).collect();
            return Err(ConfigError::new(
                format!("filters[{index}].name"),
                format!(
                    "unknown filter {}; this module has: {}",
                    Quoted(&entry.name),
                    known.join(", ")
                ),
            ));
        };
        let config = entry
            .config
            .unwrap_or(crate::config::json::Json::Obj(Vec::new()));
        let config = serde_json::to_vec(&config).map_err(|error| {
            ConfigError::new(format!("filters[{index}].config"), error.to_string())
        })?;
        entries.push((*factory, config.into(), format!("filters[{index}].config")));
    }
    Ok(entries)
}

/// How far a direction got.
enum Outcome {
    Continued,
    Held,
    Replied,
}

impl Dispatcher {
    /// A dispatcher for `module` on `host`.
    pub fn new(host: Rc<dyn Host>, module: Module) -> Dispatcher {
        Dispatcher::with_chain(host, module, Some(chain_entries))
    }

    /// A dispatcher for the one filter of `factory` on `host`; unlike [`Dispatcher::new`], it
    /// links no chain config code.
    pub fn standalone(host: Rc<dyn Host>, factory: Factory) -> Dispatcher {
        Dispatcher::with_chain(host, Module::Standalone(factory), None)
    }

    fn with_chain(
        host: Rc<dyn Host>,
        module: Module,
        chain_entries: Option<ChainEntries>,
    ) -> Dispatcher {
        Dispatcher {
            host,
            module,
            chain_entries,
            plugins: FewIds::default(),
            streams: IdMap::default(),
            calls: IdMap::default(),
            grpc_calls: IdMap::default(),
            queues: FewIds::default(),
            config_error: None,
            clock: Cell::new(None),
        }
    }

    /// Why the last `on_configure` refused its configuration, if it did.
    pub fn config_error(&self) -> Option<&ConfigError> {
        self.config_error.as_ref()
    }

    /// The host the dispatcher acts on.
    pub fn host(&self) -> &Rc<dyn Host> {
        &self.host
    }

    /// `proxy_on_context_create`: a root context (plugin) when `root_context_id` is 0, else a
    /// stream of that plugin.
    pub fn on_context_create(&mut self, context_id: u32, root_context_id: u32) {
        self.clock.set(None);
        if root_context_id == 0 {
            self.plugins.insert(context_id, Plugin::default());
            return;
        }
        let filters = match self.plugins.get(&root_context_id) {
            Some(plugin) if plugin.configured => plugin
                .slots
                .iter()
                .map(|slot| slot.root.create_http())
                .collect(),
            _ => Vec::new(),
        };
        self.streams.insert(
            context_id,
            Stream {
                plugin: root_context_id,
                filters,
                request: Direction::default(),
                response: Direction::default(),
                replied: false,
                body_edits: Vec::new(),
            },
        );
    }

    /// `proxy_on_configure`: reads and applies the plugin configuration; false refuses it.
    pub fn on_configure(&mut self, root_context_id: u32, configuration_size: usize) -> bool {
        self.clock.set(None);
        if let Ok(level) = self.host.log_level() {
            log::set_max_level(crate::logging::level_filter(level));
        }
        let name = match self.module {
            Module::Standalone(factory) => factory.name,
            Module::Chain(_) => "chain",
        };
        let bytes = match self
            .host
            .buffer(BufferType::PluginConfiguration, 0, configuration_size)
        {
            Ok(bytes) => bytes,
            Err(status) => {
                log::error!("{name}: cannot read the plugin configuration: {status:?}");
                return false;
            }
        };
        let root_id = self
            .host
            .property(b"plugin_root_id")
            .ok()
            .flatten()
            .map(|id| String::from_utf8_lossy(&id).into_owned())
            .unwrap_or_default();
        let mut effects = Vec::new();
        let slots = match self.configure(&root_id, &bytes, &mut effects) {
            Ok(slots) => slots,
            Err(error) => {
                log::error!("{name}: {error}");
                self.config_error = Some(error);
                return false;
            }
        };
        self.config_error = None;
        if let Some(plugin) = self.plugins.get_or_default(root_context_id) {
            plugin.slots = slots;
            plugin.configured = true;
        }
        for (position, effect) in effects.into_iter().enumerate() {
            self.apply_root_effects(root_context_id, position, effect);
        }
        true
    }

    fn configure(
        &self,
        root_id: &str,
        bytes: &[u8],
        effects: &mut Vec<Effects>,
    ) -> Result<Vec<Slot>, ConfigError> {
        let entries: Vec<ChainEntryBytes<'_>> = match self.module {
            Module::Standalone(factory) => vec![(factory, bytes.into(), String::new())],
            Module::Chain(factories) => match self.chain_entries {
                Some(read) => read(factories, bytes)?,
                None => return Err(ConfigError::new("", "this module is not a chain")),
            },
        };
        let mut slots = Vec::with_capacity(entries.len());
        for (position, (factory, config, at)) in entries.into_iter().enumerate() {
            let namespace = shared_namespace(root_id, position);
            let cell = RefCell::new(Effects::default());
            let root = {
                let mut cx = RootCx {
                    cx: Cx {
                        host: &*self.host,
                        position,
                        namespace: &namespace,
                        effects: &cell,
                        stream: None,
                        clock: &self.clock,
                    },
                };
                factory
                    .configure(&mut cx, &config)
                    .map_err(|error| error.within(&at))?
            };
            effects.push(cell.into_inner());
            slots.push(Slot {
                root,
                namespace,
                tick: Duration::ZERO,
                next_tick: 0,
            });
        }
        Ok(slots)
    }

    /// `proxy_on_tick`: calls each filter of the plugin whose tick period is due. The host
    /// ticks at the shortest period, so a filter asking for that one gets every tick, as it
    /// would alone; a filter with a longer period gets the first tick at or past its due time.
    pub fn on_tick(&mut self, root_context_id: u32) {
        let read = self.host.now_nanos();
        self.clock.set(read.ok());
        let now = read.unwrap_or(0);
        let due: Vec<usize> = match self.plugins.get(&root_context_id) {
            Some(plugin) => plugin
                .slots
                .iter()
                .enumerate()
                .filter(|(_, slot)| {
                    !slot.tick.is_zero()
                        && (millis(slot.tick) == plugin.tick_millis || now >= slot.next_tick)
                })
                .map(|(position, _)| position)
                .collect(),
            None => return,
        };
        for position in due {
            if let Some(slot) = self
                .plugins
                .get_mut(&root_context_id)
                .and_then(|plugin| plugin.slots.get_mut(position))
            {
                slot.next_tick = now.saturating_add(nanos(slot.tick));
            }
            let effects = self.with_root(root_context_id, position, |root, cx| root.on_tick(cx));
            if let Some(effects) = effects {
                self.apply_root_effects(root_context_id, position, effects);
            }
        }
    }

    /// Runs `call` on the root of filter `position` of plugin `plugin`.
    fn with_root(
        &self,
        plugin: u32,
        position: usize,
        call: impl FnOnce(&dyn AnyRoot, &mut RootCx<'_>),
    ) -> Option<Effects> {
        let slot = self.plugins.get(&plugin)?.slots.get(position)?;
        let cell = RefCell::new(Effects::default());
        let mut cx = RootCx {
            cx: Cx {
                host: &*self.host,
                position,
                namespace: &slot.namespace,
                effects: &cell,
                stream: None,
                clock: &self.clock,
            },
        };
        call(&*slot.root, &mut cx);
        Some(cell.into_inner())
    }

    /// Applies what a root callback asked for: callouts, its tick period, streams to wake.
    fn apply_root_effects(&mut self, plugin: u32, position: usize, effects: Effects) {
        self.register_calls(plugin, position, &effects.calls, &effects.grpc_calls);
        for queue_id in effects.queues {
            self.queues.insert(queue_id, (plugin, position));
        }
        if let Some(period) = effects.tick {
            self.set_tick(plugin, position, period);
        }
        for context_id in effects.wakes {
            self.wake(plugin, position, context_id);
        }
    }

    fn register_calls(
        &mut self,
        plugin: u32,
        position: usize,
        calls: &[(u32, Option<u32>)],
        grpc_calls: &[(u32, Option<u32>)],
    ) {
        // Without a callout feature no such call is made, and its map's code stays out.
        let owner = |stream| CallOwner {
            plugin,
            position,
            stream,
        };
        if cfg!(feature = "http-callouts") {
            for &(token, stream) in calls {
                self.calls.insert(token, owner(stream));
            }
        }
        if cfg!(feature = "grpc-callouts") {
            for &(token, stream) in grpc_calls {
                self.grpc_calls.insert(token, owner(stream));
            }
        }
    }

    fn set_tick(&mut self, plugin_id: u32, position: usize, period: Duration) {
        let now = self.host.now_nanos().unwrap_or(0);
        let Some(plugin) = self.plugins.get_mut(&plugin_id) else {
            return;
        };
        if let Some(slot) = plugin.slots.get_mut(position) {
            slot.tick = period;
            slot.next_tick = now.saturating_add(nanos(period));
        }
        let shortest = plugin
            .slots
            .iter()
            .filter(|slot| !slot.tick.is_zero())
            .map(|slot| millis(slot.tick))
            .min()
            .unwrap_or(0);
        if shortest != plugin.tick_millis {
            plugin.tick_millis = shortest;
            if let Err(status) = self.host.set_tick_period(shortest) {
                log::warn!("cannot set the tick period: {status:?}");
            }
        }
    }

    /// Runs the `on_wake` of the filter at `position` on stream `context_id`, if that filter
    /// holds the stream, and resumes the stream when it continues.
    fn wake(&mut self, plugin: u32, position: usize, context_id: u32) {
        let Some(stream) = self.streams.get(&context_id) else {
            return;
        };
        let direction = if stream.plugin != plugin {
            return;
        } else if stream.request.held.is_some_and(|(at, _)| at == position) {
            StreamType::Request
        } else if stream.response.held.is_some_and(|(at, _)| at == position) {
            StreamType::Response
        } else {
            return;
        };
        if self.host.set_effective_context(context_id).is_err() {
            return;
        }
        let action = self.call_filter(context_id, position, |filter, cx| filter.on_wake(cx));
        if action == Some(Action::Continue) {
            self.resume(context_id, direction);
        }
    }

    /// Runs one hook of the filter at `position` of a stream, then applies its effects.
    /// `None` when the stream or the filter is gone.
    fn call_filter<T>(
        &mut self,
        context_id: u32,
        position: usize,
        call: impl FnOnce(&mut dyn HttpFilter, &mut HttpCx<'_>) -> T,
    ) -> Option<T> {
        let stream = self.streams.get_mut(&context_id)?;
        let plugin_id = stream.plugin;
        let namespace = self
            .plugins
            .get(&plugin_id)?
            .slots
            .get(position)?
            .namespace
            .as_str();
        let filter = stream.filters.get_mut(position)?;
        let cell = RefCell::new(Effects::default());
        let result = {
            let mut cx = HttpCx {
                cx: Cx {
                    host: &*self.host,
                    position,
                    namespace,
                    effects: &cell,
                    stream: Some(context_id),
                    clock: &self.clock,
                },
                context_id,
            };
            call(&mut **filter, &mut cx)
        };
        let mut effects = cell.into_inner();
        if !effects.replied.is_empty() {
            stream.replied = true;
        }
        stream.body_edits.append(&mut effects.body_edits);
        self.register_calls(plugin_id, position, &effects.calls, &effects.grpc_calls);
        if let Some(period) = effects.tick {
            self.set_tick(plugin_id, position, period);
        }
        Some(result)
    }

    /// Runs `phase` through the stream's filters in `direction`'s order, from `step`.
    fn run(
        &mut self,
        context_id: u32,
        direction: StreamType,
        from: usize,
        phase: Phase,
    ) -> Outcome {
        let count = match self.streams.get(&context_id) {
            Some(stream) => stream.filters.len(),
            None => return Outcome::Replied,
        };
        let mut phase = phase;
        if from == 0 {
            // A callback from the host: its body size already holds every earlier replacement.
            if let Some(stream) = self.streams.get_mut(&context_id) {
                stream.body_edits.clear();
            }
        }
        for step in from..count {
            let position = step_position(direction, count, step);
            // Each filter sees the body as the filters before it left it (a filter that resumes
            // the stream may have replaced it in its callout answer, too).
            if let Some(stream) = self.streams.get_mut(&context_id) {
                if let Phase::Body(size, end) = phase {
                    let size = stream
                        .body_edits
                        .iter()
                        .filter(|(edited, ..)| *edited == direction)
                        .fold(size, |size, &(_, start, removed, added)| {
                            body_size_after(size, start, removed, added)
                        });
                    phase = Phase::Body(size, end);
                }
                stream.body_edits.clear();
            }
            let replied_before = self
                .streams
                .get(&context_id)
                .is_some_and(|stream| stream.replied);
            let action = self.call_filter(context_id, position, |filter, cx| match phase {
                Phase::Headers(end) => match direction {
                    StreamType::Request => filter.on_request_headers(cx, end),
                    StreamType::Response => filter.on_response_headers(cx, end),
                },
                Phase::Body(size, end) => match direction {
                    StreamType::Request => filter.on_request_body(cx, size, end),
                    StreamType::Response => filter.on_response_body(cx, size, end),
                },
                Phase::Trailers => match direction {
                    StreamType::Request => filter.on_request_trailers(cx),
                    StreamType::Response => filter.on_response_trailers(cx),
                },
            });
            let Some(stream) = self.streams.get_mut(&context_id) else {
                return Outcome::Replied;
            };
            // A reply ends the request; the response hooks still run over the reply itself.
            if stream.replied && (direction == StreamType::Request || !replied_before) {
                return Outcome::Replied;
            }
            if action == Some(Action::Pause) {
                let held = match direction {
                    StreamType::Request => &mut stream.request,
                    StreamType::Response => &mut stream.response,
                };
                held.held = Some((position, phase));
                return Outcome::Held;
            }
        }
        Outcome::Continued
    }

    fn direction(&mut self, context_id: u32, direction: StreamType) -> Option<&mut Direction> {
        let stream = self.streams.get_mut(&context_id)?;
        Some(match direction {
            StreamType::Request => &mut stream.request,
            StreamType::Response => &mut stream.response,
        })
    }

    /// A header callback: the whole direction runs from its first filter.
    fn headers(&mut self, context_id: u32, direction: StreamType, end: bool) -> Action {
        if self.not_configured(context_id, direction) {
            return Action::Pause;
        }
        match self.run(context_id, direction, 0, Phase::Headers(end)) {
            Outcome::Continued => Action::Continue,
            Outcome::Held | Outcome::Replied => Action::Pause,
        }
    }

    /// A body callback. While a filter holds the headers the body is only buffered; a filter
    /// that paused to buffer the body sees the grown buffer, with every filter before it.
    fn body(&mut self, context_id: u32, direction: StreamType, size: usize, end: bool) -> Action {
        let Some(state) = self.direction(context_id, direction) else {
            return Action::Continue;
        };
        match state.held {
            Some((_, Phase::Headers(_) | Phase::Trailers)) => {
                state.held_body = Some((size, end));
                return Action::Pause;
            }
            Some((_, Phase::Body(..))) => state.held = None,
            None => {}
        }
        match self.run(context_id, direction, 0, Phase::Body(size, end)) {
            Outcome::Continued => Action::Continue,
            Outcome::Held | Outcome::Replied => Action::Pause,
        }
    }

    /// A trailers callback; held back while a filter holds the direction. A filter buffering
    /// the body gets the body once more, ended, before anyone sees the trailers.
    fn trailers(&mut self, context_id: u32, direction: StreamType) -> Action {
        let Some(state) = self.direction(context_id, direction) else {
            return Action::Continue;
        };
        match state.held {
            Some((_, Phase::Body(size, _))) => {
                state.held = None;
                match self.run(context_id, direction, 0, Phase::Body(size, true)) {
                    Outcome::Continued => {}
                    Outcome::Held => {
                        if let Some(state) = self.direction(context_id, direction) {
                            state.held_trailers = true;
                        }
                        return Action::Pause;
                    }
                    Outcome::Replied => return Action::Pause,
                }
            }
            Some(_) => {
                state.held_trailers = true;
                return Action::Pause;
            }
            None => {}
        }
        match self.run(context_id, direction, 0, Phase::Trailers) {
            Outcome::Continued => Action::Continue,
            Outcome::Held | Outcome::Replied => Action::Pause,
        }
    }

    /// Continues a held direction at the filter after the one that held it, replays what was
    /// held back (body, trailers), and tells the host to continue once every filter has.
    fn resume(&mut self, context_id: u32, direction: StreamType) {
        let Some(state) = self.direction(context_id, direction) else {
            return;
        };
        let Some((position, phase)) = state.held.take() else {
            return;
        };
        let count = self
            .streams
            .get(&context_id)
            .map_or(0, |stream| stream.filters.len());
        let next = position_step(direction, count, position) + 1;
        if !matches!(
            self.run(context_id, direction, next, phase),
            Outcome::Continued
        ) {
            return;
        }
        if matches!(phase, Phase::Headers(_)) {
            let body = self
                .direction(context_id, direction)
                .and_then(|state| state.held_body.take());
            if let Some((size, end)) = body {
                if !matches!(
                    self.run(context_id, direction, 0, Phase::Body(size, end)),
                    Outcome::Continued
                ) {
                    return;
                }
            }
        }
        let trailers = self
            .direction(context_id, direction)
            .is_some_and(|state| std::mem::take(&mut state.held_trailers));
        if trailers
            && !matches!(
                self.run(context_id, direction, 0, Phase::Trailers),
                Outcome::Continued
            )
        {
            return;
        }
        if let Err(status) = self.host.continue_stream(direction) {
            log::warn!("cannot resume stream {context_id}: {status:?}");
        }
    }

    /// A stream of a plugin without a valid configuration fails closed with a 500.
    fn not_configured(&mut self, context_id: u32, direction: StreamType) -> bool {
        let Some(stream) = self.streams.get_mut(&context_id) else {
            return false;
        };
        let configured = self
            .plugins
            .get(&stream.plugin)
            .is_some_and(|plugin| plugin.configured);
        if configured || direction == StreamType::Response || stream.replied {
            return false;
        }
        stream.replied = true;
        log::error!("request rejected: the filter has no valid configuration");
        let body = crate::reply::json_error_body(
            "filter_not_configured",
            "the filter has no valid configuration",
        );
        let headers = crate::wire::encode_pairs(&[("content-type", "application/json")]);
        let _ =
            self.host
                .send_local_response(500, "filter_not_configured", body.as_bytes(), &headers);
        true
    }

    /// `proxy_on_request_headers`.
    pub fn on_request_headers(&mut self, context_id: u32, end_of_stream: bool) -> Action {
        self.clock.set(None);
        self.headers(context_id, StreamType::Request, end_of_stream)
    }

    /// `proxy_on_request_body`.
    pub fn on_request_body(&mut self, context_id: u32, size: usize, end_of_stream: bool) -> Action {
        self.clock.set(None);
        self.body(context_id, StreamType::Request, size, end_of_stream)
    }

    /// `proxy_on_request_trailers`.
    pub fn on_request_trailers(&mut self, context_id: u32) -> Action {
        self.clock.set(None);
        self.trailers(context_id, StreamType::Request)
    }

    /// `proxy_on_response_headers`.
    pub fn on_response_headers(&mut self, context_id: u32, end_of_stream: bool) -> Action {
        self.clock.set(None);
        self.headers(context_id, StreamType::Response, end_of_stream)
    }

    /// `proxy_on_response_body`.
    pub fn on_response_body(
        &mut self,
        context_id: u32,
        size: usize,
        end_of_stream: bool,
    ) -> Action {
        self.clock.set(None);
        self.body(context_id, StreamType::Response, size, end_of_stream)
    }

    /// `proxy_on_response_trailers`.
    pub fn on_response_trailers(&mut self, context_id: u32) -> Action {
        self.clock.set(None);
        self.trailers(context_id, StreamType::Response)
    }

    /// `proxy_on_log`: every filter's `on_log`, in chain order.
    pub fn on_log(&mut self, context_id: u32) {
        self.clock.set(None);
        let count = self
            .streams
            .get(&context_id)
            .map_or(0, |stream| stream.filters.len());
        for position in 0..count {
            self.call_filter(context_id, position, |filter, cx| filter.on_log(cx));
        }
    }

    /// `proxy_on_done`: the context may be deleted at once.
    pub fn on_done(&mut self, _context_id: u32) -> bool {
        true
    }

    /// `proxy_on_delete`: forgets the stream or plugin (its filters are dropped), and the
    /// callouts it made: the host cancels them, so no answer will come.
    pub fn on_delete(&mut self, context_id: u32) {
        self.clock.set(None);
        let (http, grpc) = (
            cfg!(feature = "http-callouts"),
            cfg!(feature = "grpc-callouts"),
        );
        if self.streams.remove(&context_id).is_some() {
            let by_stream = |_: &u32, owner: &mut CallOwner| owner.stream != Some(context_id);
            if http && !self.calls.is_empty() {
                self.calls.retain(by_stream);
            }
            if grpc && !self.grpc_calls.is_empty() {
                self.grpc_calls.retain(by_stream);
            }
        } else if self.plugins.remove(&context_id).is_some() {
            let by_plugin = |_: &u32, owner: &mut CallOwner| owner.plugin != context_id;
            if http {
                self.calls.retain(by_plugin);
            }
            if grpc {
                self.grpc_calls.retain(by_plugin);
            }
            self.queues.retain(|_, (plugin, _)| *plugin != context_id);
        }
    }

    /// `proxy_on_queue_ready`: the filter that registered the queue gets `on_queue_ready`; a
    /// queue nobody here registered is ignored.
    pub fn on_queue_ready(&mut self, _root_context_id: u32, queue_id: u32) {
        self.clock.set(None);
        let Some(&(plugin, position)) = self.queues.get(&queue_id) else {
            return;
        };
        let effects = self.with_root(plugin, position, |root, cx| {
            root.on_queue_ready(cx, queue_id)
        });
        if let Some(effects) = effects {
            self.apply_root_effects(plugin, position, effects);
        }
    }

    /// `proxy_on_http_call_response`: the answer goes to the filter that dispatched the call;
    /// an answer for a stream that ended, or an unknown token, is dropped.
    pub fn on_http_call_response(
        &mut self,
        token: u32,
        num_headers: usize,
        body_size: usize,
        num_trailers: usize,
    ) {
        self.clock.set(None);
        let Some(owner) = self.calls.remove(&token) else {
            return;
        };
        let host = Rc::clone(&self.host);
        let response = CallResponse {
            host: &*host,
            token,
            num_headers,
            body_size,
            num_trailers,
        };
        self.answer(
            owner,
            |root, cx| root.on_http_call_response(cx, &response),
            |filter, cx| filter.on_http_call_response(cx, &response),
        );
    }

    /// `proxy_on_grpc_receive`: a unary gRPC call's message, for the filter that sent it.
    pub fn on_grpc_receive(&mut self, token: u32, message_size: usize) {
        self.grpc_answer(token, GRPC_OK, message_size);
    }

    /// `proxy_on_grpc_close`: a gRPC call ended with `status` (for a unary call, its failure:
    /// a timeout, an unreachable cluster, the service's error).
    pub fn on_grpc_close(&mut self, token: u32, status: u32) {
        self.grpc_answer(token, status, 0);
    }

    fn grpc_answer(&mut self, token: u32, status: u32, message_size: usize) {
        self.clock.set(None);
        // A unary call gets one answer: the message, or the close.
        let Some(owner) = self.grpc_calls.remove(&token) else {
            return;
        };
        let host = Rc::clone(&self.host);
        let response = GrpcResponse {
            host: &*host,
            token,
            status,
            message_size,
        };
        self.answer(
            owner,
            |root, cx| root.on_grpc_call_response(cx, &response),
            |filter, cx| filter.on_grpc_call_response(cx, &response),
        );
    }

    /// Hands a callout's answer to the filter that sent it: the root's hook, or the stream's
    /// (dropped when the stream ended); a `Continue` from a filter holding its stream resumes the
    /// stream at the next filter.
    fn answer(
        &mut self,
        owner: CallOwner,
        root_hook: impl FnOnce(&dyn AnyRoot, &mut RootCx<'_>),
        stream_hook: impl FnOnce(&mut dyn HttpFilter, &mut HttpCx<'_>) -> Action,
    ) {
        match owner.stream {
            None => {
                let effects = self.with_root(owner.plugin, owner.position, root_hook);
                if let Some(effects) = effects {
                    self.apply_root_effects(owner.plugin, owner.position, effects);
                }
            }
            Some(context_id) => {
                if !self.streams.contains_key(&context_id)
                    || self.host.set_effective_context(context_id).is_err()
                {
                    return;
                }
                let action = self.call_filter(context_id, owner.position, stream_hook);
                if action != Some(Action::Continue) {
                    return;
                }
                let Some(stream) = self.streams.get(&context_id) else {
                    return;
                };
                for direction in [StreamType::Request, StreamType::Response] {
                    let held = match direction {
                        StreamType::Request => stream.request.held,
                        StreamType::Response => stream.response.held,
                    };
                    if held.is_some_and(|(at, _)| at == owner.position) {
                        self.resume(context_id, direction);
                        return;
                    }
                }
            }
        }
    }
}
