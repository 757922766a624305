//! The filter: per-request checks, and the root context that fetches remote key sets, shares
//! them with the other workers through shared data, and resumes requests that waited for them.

use crate::config::{Config, JwtAuthConfig, KeySource, Remote, Requirement};
use crate::extract::{self, RequestInfo};
use crate::jwks::KeySet;
use crate::jwt::JwtError;
use crate::verify::{Evaluation, Good, KeyState, Outcome, TokenCache};
use sdk_ext::callout::{self, HttpCall};
use sdk_ext::config::{load, ConfigError};
use sdk_ext::headers::REQUEST_HEADERS;
use sdk_ext::matcher::RequestView;
use sdk_ext::metrics::Counter;
use sdk_ext::{clock, reply, shared_data, stream, Action, HttpFilter, RootFilter};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

/// Tick period while requests wait or a fetch is wanted or under way: how late a waiting
/// request can learn of another worker's result or pass its deadline.
const BUSY_TICK: Duration = Duration::from_millis(10);
/// Tick period otherwise (refresh checks).
const IDLE_TICK: Duration = Duration::from_secs(1);
/// After a failed fetch (on any worker), requests fail at once for this long instead of each
/// waiting on a new fetch, and no worker fetches again before it ends.
const FAILED_REFETCH: u64 = 1_000_000_000;
/// A waiting request is answered by `http_uri.timeout` plus this from when it began to wait, and
/// a fetch lock is held that long past its timeout: room for the host's own timer to fire first.
const WAIT_MARGIN: Duration = Duration::from_millis(100);
/// Largest JWKS document read.
const MAX_JWKS_BYTES: usize = 1 << 20;

/// The filter's counters, defined once.
struct Metrics {
    allowed: Counter,
    denied: Counter,
    denied_by: Vec<(&'static str, Counter)>,
    jwks_fetch_success: Counter,
    jwks_fetch_failed: Counter,
    cache_hit: Counter,
    cache_miss: Counter,
    cors_preflight_bypassed: Counter,
}

impl Metrics {
    fn define(prefix: &str) -> Result<Metrics, ConfigError> {
        let counter = |name: &str| {
            Counter::define(&format!("{prefix}.{name}")).map_err(|status| {
                ConfigError::new(
                    "",
                    format!("cannot define metric {prefix}.{name}: {status:?}"),
                )
            })
        };
        Ok(Metrics {
            allowed: counter("allowed")?,
            denied: counter("denied")?,
            denied_by: JwtError::REASONS
                .iter()
                .map(|reason| Ok((*reason, counter(&format!("denied.{reason}"))?)))
                .collect::<Result<_, ConfigError>>()?,
            jwks_fetch_success: counter("jwks_fetch_success")?,
            jwks_fetch_failed: counter("jwks_fetch_failed")?,
            cache_hit: counter("jwt_cache_hit")?,
            cache_miss: counter("jwt_cache_miss")?,
            cors_preflight_bypassed: counter("cors_preflight_bypassed")?,
        })
    }

    fn deny(&self, error: JwtError) {
        self.denied.increment();
        if let Some((_, counter)) = self
            .denied_by
            .iter()
            .find(|(reason, _)| *reason == error.reason())
        {
            counter.increment();
        }
    }
}

/// The state of a remote key set on this worker.
#[derive(Default)]
struct RemoteState {
    keys: Option<Rc<KeySet>>,
    /// The JWKS document the keys came from, to tell a changed key set from a refresh.
    document: Vec<u8>,
    /// Host time (ns) the keys were fetched.
    fetched_at: u64,
    /// The token cache still counts this provider's verifications (false once the keys expired).
    cache_valid: bool,
    /// Host time (ns) of the last failed fetch this worker knows of, its own or another's.
    last_failure: Option<u64>,
    /// This worker's fetch.
    in_flight: Option<Fetch>,
    /// Requests wait for this provider.
    wanted: bool,
}

/// A fetch this worker started.
#[derive(Clone, Copy)]
struct Fetch {
    token: u32,
    /// The deadline written in the shared fetch lock.
    lock_until: u64,
}

/// The shared fetch record of a provider: until when a worker holds the fetch lock (0 when
/// free), and when a fetch last failed on any worker. Stored as `"<held_until> <failed_at>"`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct FetchRecord {
    held_until: u64,
    failed_at: u64,
}

impl FetchRecord {
    fn parse(bytes: Option<&[u8]>) -> FetchRecord {
        let text = bytes
            .and_then(|bytes| std::str::from_utf8(bytes).ok())
            .unwrap_or_default();
        let mut numbers = text
            .split(' ')
            .map(|number| number.parse::<u64>().unwrap_or_default());
        FetchRecord {
            held_until: numbers.next().unwrap_or_default(),
            failed_at: numbers.next().unwrap_or_default(),
        }
    }

    fn encode(self) -> Vec<u8> {
        format!("{} {}", self.held_until, self.failed_at).into_bytes()
    }
}

/// A request waiting for a key set.
struct Pending {
    context_id: u32,
    rule: usize,
    info: RequestInfo,
    provider: usize,
    /// Host time (ns) by which it is answered, keys or not.
    deadline: u64,
}

/// The per-VM root: configuration, key sets, the token cache and waiting requests.
pub struct JwtAuthRoot {
    config: Config,
    metrics: Metrics,
    cache: RefCell<TokenCache>,
    remote: RefCell<Vec<RemoteState>>,
    pending: RefCell<Vec<Pending>>,
    tick: Cell<Duration>,
}

fn now_nanos() -> u64 {
    clock::now_nanos().unwrap_or_default()
}

impl RootFilter for JwtAuthRoot {
    const NAME: &'static str = "jwt_auth";
    type Http = JwtAuth;

    fn configure(bytes: &[u8]) -> Result<Self, ConfigError> {
        // No CryptoProvider is installed: KeySet::verify calls crate::crypto::new_verifier itself,
        // and installing PROVIDER would link its signing half (rust_crypto's RSA, P-256, P-384).
        let config = load::<JwtAuthConfig>(bytes)?;
        let metrics = Metrics::define(&config.stat_prefix)?;
        let capacity = config
            .providers
            .iter()
            .map(|provider| provider.cache_size)
            .sum();
        let remote = config
            .providers
            .iter()
            .map(|_| RemoteState::default())
            .collect();
        let root = JwtAuthRoot {
            cache: RefCell::new(TokenCache::new(capacity)),
            remote: RefCell::new(remote),
            pending: RefCell::new(Vec::new()),
            tick: Cell::new(Duration::ZERO),
            metrics,
            config,
        };
        // Fetch remote key sets right away rather than on the first request.
        if root
            .config
            .providers
            .iter()
            .any(|provider| matches!(provider.keys, KeySource::Remote(_)))
        {
            for state in root.remote.borrow_mut().iter_mut() {
                state.wanted = true;
            }
            root.set_tick(Duration::from_millis(1));
        }
        Ok(root)
    }

    fn create_http(root: &Rc<Self>, context_id: u32) -> JwtAuth {
        JwtAuth {
            root: root.clone(),
            context_id,
        }
    }

    fn on_tick(root: &Rc<Self>) {
        root.tick_remote();
    }

    fn on_http_call_response(
        root: &Rc<Self>,
        token: u32,
        _num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        root.fetch_done(token, body_size);
    }
}

impl JwtAuthRoot {
    fn set_tick(&self, period: Duration) {
        if self.tick.get() != period {
            self.tick.set(period);
            if let Err(status) = clock::set_tick_period(period) {
                log::warn!("jwt_auth: cannot set the tick period: {status:?}");
            }
        }
    }

    fn key_state(&self, provider: usize, now: u64) -> KeyState {
        match &self.config.providers[provider].keys {
            KeySource::Local(keys) => KeyState::Ready(keys.clone()),
            KeySource::Remote(remote) => {
                let state = &self.remote.borrow()[provider];
                let fresh = now
                    < state
                        .fetched_at
                        .saturating_add(nanos(remote.cache_duration));
                match (&state.keys, state.last_failure) {
                    (Some(keys), _) if fresh => KeyState::Ready(keys.clone()),
                    (_, Some(failed))
                        if now.saturating_sub(failed) < FAILED_REFETCH
                            && state.in_flight.is_none() =>
                    {
                        KeyState::Failed
                    }
                    _ => KeyState::Loading,
                }
            }
        }
    }

    /// Evaluates rule `rule` for the request described by `info`, on the running (or effective)
    /// stream: `Some(true)` to continue, `Some(false)` when replied, `None` when it must wait.
    fn evaluate(&self, context_id: u32, rule: usize, info: RequestInfo) -> Option<bool> {
        self.decide(context_id, rule, info, false)
    }

    /// [`Self::evaluate`]; with `give_up`, keys still loading count as a failed fetch, so the
    /// request is answered now.
    fn decide(
        &self,
        context_id: u32,
        rule: usize,
        info: RequestInfo,
        give_up: bool,
    ) -> Option<bool> {
        let now = now_nanos();
        self.expire_cached_verifications(now);
        let outcome = {
            let keys = |provider: usize| match self.key_state(provider, now) {
                KeyState::Loading if give_up => KeyState::Failed,
                state => state,
            };
            let mut cache = self.cache.borrow_mut();
            let mut evaluation = Evaluation {
                config: &self.config,
                info: &info,
                now: now / 1_000_000_000,
                keys: &keys,
                cache: &mut cache,
                cache_use: Default::default(),
            };
            let outcome = evaluation.run(&self.config.rules[rule].requirement);
            self.metrics.cache_hit.add(evaluation.cache_use.hits);
            self.metrics.cache_miss.add(evaluation.cache_use.misses);
            outcome
        };
        match outcome {
            Outcome::Done(result, good) => Some(self.finish(&info, result, &good)),
            Outcome::NeedKeys(provider) => {
                self.remote.borrow_mut()[provider].wanted = true;
                let timeout = match &self.config.providers[provider].keys {
                    KeySource::Remote(remote) => remote.timeout,
                    KeySource::Local(_) => Duration::ZERO,
                };
                self.pending.borrow_mut().push(Pending {
                    context_id,
                    rule,
                    info,
                    provider,
                    deadline: now.saturating_add(nanos(timeout + WAIT_MARGIN)),
                });
                self.set_tick(Duration::from_millis(1));
                None
            }
        }
    }

    /// Applies a decision: the good tokens' headers and the pass, or the refusal.
    fn finish(&self, info: &RequestInfo, result: Result<(), JwtError>, good: &[Good]) -> bool {
        let mut path = None;
        for token in good {
            self.apply(info, token, &mut path);
        }
        if let Some(path) = path.filter(|path| *path != info.path) {
            if let Err(status) = REQUEST_HEADERS.set(":path", &path) {
                log::warn!("jwt_auth: could not remove the token from the path: {status:?}");
            }
        }
        match result {
            Ok(()) => {
                self.metrics.allowed.increment();
                true
            }
            Err(error) => {
                self.metrics.deny(error);
                log::debug!("jwt_auth: request refused: {}", error.message());
                let details = format!(
                    "jwt_authn_access_denied{{{}}}",
                    error.message().replace(' ', "_")
                );
                let sent = if self.config.strip_failure_response {
                    reply::send(error.http_status(), &details, b"", &[])
                } else {
                    let mut challenge = format!("Bearer realm=\"{}\"", info.realm());
                    if error != JwtError::Missing {
                        challenge.push_str(", error=\"invalid_token\"");
                    }
                    reply::send(
                        error.http_status(),
                        &details,
                        error.message().as_bytes(),
                        &[("www-authenticate", challenge.as_bytes())],
                    )
                };
                if let Err(status) = sent {
                    log::error!(
                        "jwt_auth: cannot send the {} reply: {status:?}",
                        error.http_status()
                    );
                }
                false
            }
        }
    }

    /// What a good token does to the request: payload and claim headers, and its removal
    /// (a removed query parameter goes into `path`, which starts as the request's `:path`).
    fn apply(&self, info: &RequestInfo, good: &Good, path: &mut Option<Vec<u8>>) {
        let provider = &self.config.providers[good.provider];
        let mut result = Ok(());
        if !provider.forward_payload_header.is_empty() {
            let mut payload = good.jwt.payload_b64.clone();
            if provider.pad_forward_payload_header {
                while !payload.len().is_multiple_of(4) {
                    payload.push('=');
                }
            }
            result = result
                .and(REQUEST_HEADERS.add(&provider.forward_payload_header, payload.as_bytes()));
        }
        for (header, claim) in &provider.claim_to_headers {
            if let Some(value) = good
                .jwt
                .claim(claim)
                .and_then(crate::jwt::claim_header_value)
                .filter(|v| !v.is_empty())
            {
                result = result.and(REQUEST_HEADERS.add(header, value.as_bytes()));
            }
        }
        if !provider.forward {
            result = result.and(extract::remove(&good.token, &info.path, path));
        }
        if let Err(status) = result {
            log::warn!("jwt_auth: could not update the request headers: {status:?}");
        }
    }

    /// The periodic work: adopt key sets and failures other workers shared, start due fetches,
    /// give up on stuck ones, drop cached verifications of expired keys, and answer waiting
    /// requests whose keys arrived, failed, or took past their deadline.
    fn tick_remote(&self) {
        let now = now_nanos();
        self.expire_cached_verifications(now);
        for (index, provider) in self.config.providers.iter().enumerate() {
            let KeySource::Remote(remote) = &provider.keys else {
                continue;
            };
            let (due, in_flight) = {
                let state = &self.remote.borrow()[index];
                let refresh_at = state
                    .fetched_at
                    .saturating_add(nanos(remote.cache_duration) / 10 * 9);
                (
                    state.keys.is_none() || state.wanted || now >= refresh_at,
                    state.in_flight,
                )
            };
            if let Some(fetch) = in_flight {
                // The host answers by the timeout; this covers a host that never does.
                if now >= fetch.lock_until {
                    log::warn!(
                        "jwt_auth: provider {}: no answer from {} in time",
                        provider.name,
                        remote.uri
                    );
                    self.fetch_failed(index, now);
                }
                continue;
            }
            if !due || self.adopt_shared(index, remote, now) || self.learn_failure(index, now) {
                continue;
            }
            let backing_off = self.remote.borrow()[index]
                .last_failure
                .is_some_and(|failed| now.saturating_sub(failed) < FAILED_REFETCH);
            if !backing_off {
                self.start_fetch(index, remote, now);
            }
        }
        self.release_overdue(now);
        let busy = !self.pending.borrow().is_empty()
            || self
                .remote
                .borrow()
                .iter()
                .any(|state| state.wanted || state.in_flight.is_some());
        self.set_tick(if busy { BUSY_TICK } else { IDLE_TICK });
    }

    /// Drops the cache's record of tokens verified by remote keys that expired unrefreshed, so
    /// those tokens wait for (or fail with) the next fetch as uncached ones do.
    fn expire_cached_verifications(&self, now: u64) {
        for (index, provider) in self.config.providers.iter().enumerate() {
            let KeySource::Remote(remote) = &provider.keys else {
                continue;
            };
            let mut states = self.remote.borrow_mut();
            let state = &mut states[index];
            if state.cache_valid
                && now
                    >= state
                        .fetched_at
                        .saturating_add(nanos(remote.cache_duration))
            {
                state.cache_valid = false;
                self.cache.borrow_mut().forget_provider(index);
            }
        }
    }

    fn shared_key(&self, kind: &str, index: usize) -> String {
        format!(
            "{}.{kind}.{}",
            self.config.stat_prefix, self.config.providers[index].name
        )
    }

    /// Takes a key set another worker stored, if it is newer and still fresh.
    fn adopt_shared(&self, index: usize, remote: &Remote, now: u64) -> bool {
        let Ok(Some(entry)) = shared_data::get(&self.shared_key("jwks", index)) else {
            return false;
        };
        let Some(split) = entry.value.iter().position(|&b| b == b'\n') else {
            return false;
        };
        let fetched_at: u64 = std::str::from_utf8(&entry.value[..split])
            .ok()
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        let refresh_at = fetched_at.saturating_add(nanos(remote.cache_duration) / 10 * 9);
        if fetched_at <= self.remote.borrow()[index].fetched_at || now >= refresh_at {
            return false;
        }
        let document = &entry.value[split + 1..];
        match KeySet::parse(document) {
            Ok(keys) => {
                self.keys_arrived(index, Rc::new(keys), fetched_at, document);
                true
            }
            Err(_) => false,
        }
    }

    /// Reads the shared fetch record: a failure on another worker that this one has not seen,
    /// or a lock held past its holder's deadline (the holder is gone: that is a failure too, and
    /// is recorded for every worker), fails this worker's waiting requests. True when it did.
    fn learn_failure(&self, index: usize, now: u64) -> bool {
        let key = self.shared_key("jwks_fetch", index);
        let Ok(entry) = shared_data::get(&key) else {
            return false;
        };
        let mut record = FetchRecord::parse(entry.as_ref().map(|entry| entry.value.as_slice()));
        if record.held_until != 0 && record.held_until < now {
            record = FetchRecord {
                held_until: 0,
                failed_at: now,
            };
            // On a CAS conflict another worker moved first; the deadline has passed all the same.
            let _ = shared_data::set(&key, &record.encode(), entry.map_or(0, |entry| entry.cas));
            log::warn!(
                "jwt_auth: provider {}: the fetch of {} another worker started did not finish in time",
                self.config.providers[index].name,
                self.uri(index)
            );
        }
        let (known, fetched_at) = {
            let state = &self.remote.borrow()[index];
            (state.last_failure.unwrap_or(0), state.fetched_at)
        };
        if record.failed_at <= known.max(fetched_at) {
            return false;
        }
        {
            let mut remote = self.remote.borrow_mut();
            let state = &mut remote[index];
            state.last_failure = Some(record.failed_at);
            state.wanted = false;
        }
        self.resume(index);
        true
    }

    /// Starts a fetch unless another worker holds the fetch lock (then its result is awaited,
    /// no longer than the deadline it wrote in the lock).
    fn start_fetch(&self, index: usize, remote: &Remote, now: u64) {
        let lock_until = now.saturating_add(nanos(remote.timeout + WAIT_MARGIN));
        let acquired = shared_data::update(&self.shared_key("jwks_fetch", index), 4, |current| {
            let record = FetchRecord::parse(current);
            (record.held_until == 0).then(|| {
                let held = FetchRecord {
                    held_until: lock_until,
                    ..record
                };
                (held.encode(), ())
            })
        });
        match acquired {
            Ok(Some(())) => {}
            Ok(None) => return,
            Err(status) => {
                log::debug!("jwt_auth: fetch lock unavailable ({status:?}); fetching anyway")
            }
        }
        let call = HttpCall::get(&remote.cluster, &remote.authority, &remote.path)
            .timeout(remote.timeout)
            .dispatch();
        match call {
            Ok(token) => {
                self.remote.borrow_mut()[index].in_flight = Some(Fetch { token, lock_until })
            }
            Err(status) => {
                log::warn!(
                    "jwt_auth: provider {}: cannot call cluster {:?} for {}: {status:?}",
                    self.config.providers[index].name,
                    remote.cluster,
                    remote.uri
                );
                self.remote.borrow_mut()[index].in_flight = Some(Fetch {
                    token: 0,
                    lock_until,
                });
                self.fetch_failed(index, now);
            }
        }
    }

    fn fetch_done(&self, token: u32, body_size: usize) {
        let now = now_nanos();
        let Some(index) = self
            .remote
            .borrow()
            .iter()
            .position(|state| state.in_flight.is_some_and(|fetch| fetch.token == token))
        else {
            return;
        };
        let provider = &self.config.providers[index];
        let status = callout::response_status();
        let body = callout::response_body(body_size, MAX_JWKS_BYTES).unwrap_or_default();
        let parsed = match status {
            Some(200) if !body.is_empty() => KeySet::parse(&body).map_err(str::to_string),
            Some(status) => Err(format!("status {status}")),
            None => Err("the connection failed".to_string()),
        };
        match parsed {
            Ok(keys) => {
                log::info!(
                    "jwt_auth: provider {}: fetched {} key(s) from {}",
                    provider.name,
                    keys.keys.len(),
                    self.uri(index)
                );
                self.metrics.jwks_fetch_success.increment();
                let mut document = now.to_string().into_bytes();
                document.push(b'\n');
                document.extend_from_slice(&body);
                let _ = shared_data::set(&self.shared_key("jwks", index), &document, 0);
                self.release_lock(index, None);
                self.keys_arrived(index, Rc::new(keys), now, &body);
            }
            Err(reason) => {
                log::warn!(
                    "jwt_auth: provider {}: fetching {} failed: {reason}",
                    provider.name,
                    self.uri(index)
                );
                self.fetch_failed(index, now);
            }
        }
    }

    /// Ends this worker's fetch of provider `index`: frees the shared lock if this worker still
    /// holds it, and records a failure (at `failed_at`) for every worker.
    fn release_lock(&self, index: usize, failed_at: Option<u64>) {
        let Some(fetch) = self.remote.borrow_mut()[index].in_flight.take() else {
            return;
        };
        let _ = shared_data::update(&self.shared_key("jwks_fetch", index), 4, |current| {
            let mut record = FetchRecord::parse(current);
            let before = record;
            if record.held_until == fetch.lock_until {
                record.held_until = 0;
            }
            if let Some(failed_at) = failed_at {
                record.failed_at = record.failed_at.max(failed_at);
            }
            (record != before).then(|| (record.encode(), ()))
        });
    }

    fn uri(&self, index: usize) -> &str {
        match &self.config.providers[index].keys {
            KeySource::Remote(remote) => &remote.uri,
            KeySource::Local(_) => "",
        }
    }

    /// New keys (fetched here or by another worker): a changed key set voids the cache's record
    /// of what the old one verified, so a token whose key was removed is refused from now on.
    fn keys_arrived(&self, index: usize, keys: Rc<KeySet>, fetched_at: u64, document: &[u8]) {
        {
            let mut remote = self.remote.borrow_mut();
            let state = &mut remote[index];
            if state.document != document {
                self.cache.borrow_mut().forget_provider(index);
                state.document = document.to_vec();
            }
            state.keys = Some(keys);
            state.fetched_at = fetched_at;
            state.cache_valid = true;
            state.last_failure = None;
            state.wanted = false;
        }
        self.resume(index);
    }

    fn fetch_failed(&self, index: usize, now: u64) {
        self.metrics.jwks_fetch_failed.increment();
        self.release_lock(index, Some(now));
        {
            let mut remote = self.remote.borrow_mut();
            let state = &mut remote[index];
            state.last_failure = Some(now);
            state.wanted = false;
        }
        self.resume(index);
    }

    /// Finishes the requests that waited for provider `index`: each is checked again now that
    /// its keys arrived (or failed) and then continued or answered.
    fn resume(&self, index: usize) {
        self.release(|request| request.provider == index, false);
    }

    /// Answers the requests whose deadline passed while their keys were still loading.
    fn release_overdue(&self, now: u64) {
        self.release(|request| request.deadline <= now, true);
    }

    /// Takes the waiting requests that `which` selects off the list and checks each again on
    /// its own stream (with `give_up`, keys still loading count as failed).
    fn release(&self, which: impl Fn(&Pending) -> bool, give_up: bool) {
        let waiting: Vec<Pending> = {
            let mut pending = self.pending.borrow_mut();
            if !pending.iter().any(&which) {
                return;
            }
            let (ready, rest): (Vec<Pending>, Vec<Pending>) = pending.drain(..).partition(&which);
            *pending = rest;
            ready
        };
        for request in waiting {
            // The stream may have ended while it waited.
            if stream::set_effective_context(request.context_id).is_err() {
                continue;
            }
            if self.decide(request.context_id, request.rule, request.info, give_up) == Some(true) {
                if let Err(status) = stream::resume_request(request.context_id) {
                    log::warn!("jwt_auth: cannot resume a request: {status:?}");
                }
            }
        }
    }

    /// Forgets the requests of a stream that ended while it waited.
    fn stream_ended(&self, context_id: u32) {
        if let Ok(mut pending) = self.pending.try_borrow_mut() {
            pending.retain(|request| request.context_id != context_id);
        }
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// The per-request filter.
pub struct JwtAuth {
    root: Rc<JwtAuthRoot>,
    context_id: u32,
}

impl Drop for JwtAuth {
    fn drop(&mut self) {
        // A stream deleted while it waited (the client went away) is never resumed.
        self.root.stream_ended(self.context_id);
    }
}

/// The request for rule matching, from the snapshot.
struct SnapshotRequest<'a>(&'a RequestInfo);

impl RequestView for SnapshotRequest<'_> {
    fn path(&self) -> Option<Vec<u8>> {
        Some(self.0.path.clone())
    }

    fn header(&self, name: &str) -> Option<Vec<u8>> {
        self.0.headers.get(name).map(<[u8]>::to_vec)
    }
}

impl HttpFilter for JwtAuth {
    fn on_request_headers(&mut self, _end_of_stream: bool) -> Action {
        let root = &self.root;
        let config = &root.config;
        let mut info = RequestInfo::read();
        // Headers this filter produces never come from the client: like native, they go first,
        // before the CORS bypass and the rule match, on every route. The snapshot says which
        // are there, so an absent one costs no hostcall.
        let mut removed: Vec<&str> = Vec::new();
        for provider in &config.providers {
            let outputs = std::iter::once(&provider.forward_payload_header)
                .chain(provider.claim_to_headers.iter().map(|(header, _)| header));
            for header in outputs {
                if header.is_empty()
                    || !info.headers.contains(header)
                    || removed.contains(&&**header)
                {
                    continue;
                }
                removed.push(header);
                if let Err(status) = REQUEST_HEADERS.remove(header) {
                    log::warn!("jwt_auth: cannot remove the client's {header}: {status:?}");
                }
            }
        }
        if !removed.is_empty() {
            // Rules match on the headers as they are now.
            info = RequestInfo::read();
        }
        let is_set = |name: &str| {
            info.headers
                .get(name)
                .is_some_and(|value| !value.is_empty())
        };
        if config.bypass_cors_preflight
            && info.headers.get(":method") == Some(b"OPTIONS")
            && is_set("origin")
            && is_set("access-control-request-method")
        {
            root.metrics.cors_preflight_bypassed.increment();
            root.metrics.allowed.increment();
            return Action::Continue;
        }
        let request = SnapshotRequest(&info);
        let Some(rule) = config
            .rules
            .iter()
            .position(|rule| rule.route.matches(&request))
        else {
            root.metrics.allowed.increment();
            return Action::Continue;
        };
        if matches!(config.rules[rule].requirement, Requirement::AllowAll) {
            root.metrics.allowed.increment();
            return Action::Continue;
        }
        match root.evaluate(self.context_id, rule, info) {
            Some(true) => Action::Continue,
            Some(false) | None => Action::Pause,
        }
    }
}
