//! The filter: per-request checks, and the root context that fetches remote key sets, shares
//! them with the other workers through shared data, and resumes requests that waited for them.

use crate::config::{Config, JwtAuthConfig, KeySource, Remote, Requirement};
use crate::extract::{self, RequestInfo};
use crate::jwks::KeySet;
use crate::jwt::JwtError;
use crate::verify::{Evaluation, Good, KeyState, Outcome, TokenCache};
use sdk_ext::callout::{CallResponse, HttpCall};
use sdk_ext::config::{load, ConfigError};
use sdk_ext::stats::Counter;
use sdk_ext::{Action, Cx, HttpCx, HttpFilter, RootCx, RootFilter};
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

sdk_ext::stats! {
    /// The filter's counters (`<stat_prefix>.<name>`), besides one `denied.<reason>` per reason.
    struct Stats {
        allowed: Counter,
        denied: Counter,
        jwks_fetch_success: Counter,
        jwks_fetch_failed: Counter,
        jwt_cache_hit: Counter,
        jwt_cache_miss: Counter,
        cors_preflight_bypassed: Counter,
    }
}

/// The filter's metrics.
struct Metrics {
    stats: Stats,
    denied_by: Vec<(&'static str, Counter)>,
}

impl Metrics {
    fn define(cx: &Cx<'_>, prefix: &str) -> Metrics {
        Metrics {
            stats: Stats::define(cx, prefix),
            denied_by: JwtError::REASONS
                .iter()
                .map(|reason| {
                    (
                        *reason,
                        Counter::define(cx, &format!("{prefix}.denied.{reason}")),
                    )
                })
                .collect(),
        }
    }

    fn deny(&self, cx: &Cx<'_>, error: JwtError) {
        self.stats.denied.increment(cx);
        if let Some((_, counter)) = self
            .denied_by
            .iter()
            .find(|(reason, _)| *reason == error.reason())
        {
            counter.increment(cx);
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

/// A request waiting for a key set (its rule and headers wait in its [`JwtAuth`]).
struct Pending {
    context_id: u32,
    provider: usize,
    /// Host time (ns) by which it is answered, keys or not.
    deadline: u64,
}

/// What a check of a request came to.
enum Verdict {
    /// Let it through.
    Pass,
    /// Refused with a local reply.
    Refused,
    /// Waiting for a key set until this host time (ns).
    Wait(u64),
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

fn now_nanos(cx: &Cx<'_>) -> u64 {
    cx.now_nanos().unwrap_or_default()
}

impl RootFilter for JwtAuthRoot {
    const NAME: &'static str = "jwt_auth";
    type Http = JwtAuth;

    fn configure(cx: &mut RootCx<'_>, bytes: &[u8]) -> Result<Self, ConfigError> {
        // No CryptoProvider is installed: KeySet::verify calls jwt_crypto::new_verifier itself,
        // and installing PROVIDER would link its signing half (rust_crypto's RSA, P-256, P-384).
        let config = load::<JwtAuthConfig>(bytes)?;
        let metrics = Metrics::define(cx, &config.stat_prefix);
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
            root.set_tick(cx, Duration::from_millis(1));
        }
        Ok(root)
    }

    fn create_http(root: &Rc<Self>) -> JwtAuth {
        JwtAuth {
            root: root.clone(),
            context_id: None,
            waiting: None,
        }
    }

    fn on_tick(root: &Rc<Self>, cx: &mut RootCx<'_>) {
        root.tick_remote(cx);
    }

    fn on_http_call_response(root: &Rc<Self>, cx: &mut RootCx<'_>, response: &CallResponse<'_>) {
        root.fetch_done(cx, response);
    }
}

impl JwtAuthRoot {
    fn set_tick(&self, cx: &Cx<'_>, period: Duration) {
        if self.tick.get() != period {
            self.tick.set(period);
            cx.set_tick_period(period);
        }
    }

    /// Provider `index`'s name, for logs and keys (empty for an index the config rules out).
    fn provider_name(&self, index: usize) -> &str {
        self.config
            .providers
            .get(index)
            .map_or("", |provider| provider.name.as_str())
    }

    /// Runs `update` on this worker's state of remote provider `index`.
    fn remote_state<T>(
        &self,
        index: usize,
        update: impl FnOnce(&mut RemoteState) -> T,
    ) -> Option<T> {
        self.remote.borrow_mut().get_mut(index).map(update)
    }

    fn key_state(&self, provider: usize, now: u64) -> KeyState {
        match self.config.providers.get(provider).map(|p| &p.keys) {
            None => KeyState::Failed,
            Some(KeySource::Local(keys)) => KeyState::Ready(keys.clone()),
            Some(KeySource::Remote(remote)) => {
                let states = self.remote.borrow();
                let Some(state) = states.get(provider) else {
                    return KeyState::Failed;
                };
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

    /// Checks the request described by `info` against rule `rule`, on stream `cx`; with
    /// `give_up`, keys still loading count as a failed fetch, so the request is answered now.
    fn decide(&self, cx: &HttpCx<'_>, rule: usize, info: &RequestInfo, give_up: bool) -> Verdict {
        let now = now_nanos(cx);
        self.expire_cached_verifications(now);
        let outcome = {
            let keys = |provider: usize| match self.key_state(provider, now) {
                KeyState::Loading if give_up => KeyState::Failed,
                state => state,
            };
            let mut cache = self.cache.borrow_mut();
            let mut evaluation = Evaluation {
                config: &self.config,
                info,
                now: now / 1_000_000_000,
                keys: &keys,
                cache: &mut cache,
                cache_use: Default::default(),
            };
            let outcome = self
                .config
                .rules
                .get(rule)
                .map(|rule| evaluation.run(&rule.requirement));
            let stats = &self.metrics.stats;
            stats.jwt_cache_hit.add(cx, evaluation.cache_use.hits);
            stats.jwt_cache_miss.add(cx, evaluation.cache_use.misses);
            outcome
        };
        match outcome {
            None => Verdict::Pass,
            Some(Outcome::Done(result, good)) => {
                if self.finish(cx, info, result, &good) {
                    Verdict::Pass
                } else {
                    Verdict::Refused
                }
            }
            Some(Outcome::NeedKeys(provider)) => {
                if let Some(state) = self.remote.borrow_mut().get_mut(provider) {
                    state.wanted = true;
                }
                let timeout = match self.config.providers.get(provider).map(|p| &p.keys) {
                    Some(KeySource::Remote(remote)) => remote.timeout,
                    _ => Duration::ZERO,
                };
                let deadline = now.saturating_add(nanos(timeout + WAIT_MARGIN));
                self.pending.borrow_mut().push(Pending {
                    context_id: cx.context_id(),
                    provider,
                    deadline,
                });
                // The next tick starts the fetch or adopts another worker's.
                self.set_tick(cx, Duration::from_millis(1));
                Verdict::Wait(deadline)
            }
        }
    }

    /// Applies a decision: the good tokens' headers and the pass, or the refusal.
    fn finish(
        &self,
        cx: &HttpCx<'_>,
        info: &RequestInfo,
        result: Result<(), JwtError>,
        good: &[Good],
    ) -> bool {
        let mut path = None;
        for token in good {
            self.apply(cx, info, token, &mut path);
        }
        if let Some(path) = path.filter(|path| *path != info.path) {
            if let Err(status) = cx.request_headers().set(":path", &path) {
                log::warn!("jwt_auth: could not remove the token from the path: {status:?}");
            }
        }
        match result {
            Ok(()) => {
                self.metrics.stats.allowed.increment(cx);
                true
            }
            Err(error) => {
                self.metrics.deny(cx, error);
                log::debug!("jwt_auth: request refused: {}", error.message());
                let details = format!(
                    "jwt_authn_access_denied{{{}}}",
                    error.message().replace(' ', "_")
                );
                let sent = if self.config.strip_failure_response {
                    cx.send_reply(error.http_status(), &details, b"", &[])
                } else {
                    let mut challenge = format!("Bearer realm=\"{}\"", info.realm());
                    if error != JwtError::Missing {
                        challenge.push_str(", error=\"invalid_token\"");
                    }
                    cx.send_reply(
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
    fn apply(&self, cx: &HttpCx<'_>, info: &RequestInfo, good: &Good, path: &mut Option<Vec<u8>>) {
        let Some(provider) = self.config.providers.get(good.provider) else {
            return;
        };
        let headers = cx.request_headers();
        let mut result = Ok(());
        if !provider.forward_payload_header.is_empty() {
            let mut payload = good.jwt.payload_b64.clone();
            if provider.pad_forward_payload_header {
                while !payload.len().is_multiple_of(4) {
                    payload.push('=');
                }
            }
            result = result.and(headers.add(&provider.forward_payload_header, payload.as_bytes()));
        }
        for (header, claim) in &provider.claim_to_headers {
            if let Some(value) = good
                .jwt
                .claim(claim)
                .and_then(crate::jwt::claim_header_value)
                .filter(|v| !v.is_empty())
            {
                result = result.and(headers.add(header, value.as_bytes()));
            }
        }
        if !provider.forward {
            if let Some(header) = extract::remove(&good.token, &info.path, path) {
                result = result.and(headers.remove(header));
            }
        }
        if let Err(status) = result {
            log::warn!("jwt_auth: could not update the request headers: {status:?}");
        }
    }

    /// The periodic work: adopt key sets and failures other workers shared, start due fetches,
    /// give up on stuck ones, drop cached verifications of expired keys, and answer waiting
    /// requests whose keys arrived, failed, or took past their deadline.
    fn tick_remote(&self, cx: &RootCx<'_>) {
        let now = now_nanos(cx);
        self.expire_cached_verifications(now);
        for (index, provider) in self.config.providers.iter().enumerate() {
            let KeySource::Remote(remote) = &provider.keys else {
                continue;
            };
            let Some((due, in_flight)) = self.remote_state(index, |state| {
                let refresh_at = state
                    .fetched_at
                    .saturating_add(nanos(remote.cache_duration) / 10 * 9);
                (
                    state.keys.is_none() || state.wanted || now >= refresh_at,
                    state.in_flight,
                )
            }) else {
                continue;
            };
            if let Some(fetch) = in_flight {
                // The host answers by the timeout; this covers a host that never does.
                if now >= fetch.lock_until {
                    log::warn!(
                        "jwt_auth: provider {}: no answer from {} in time",
                        provider.name,
                        remote.uri
                    );
                    self.fetch_failed(cx, index, now);
                }
                continue;
            }
            if !due
                || self.adopt_shared(cx, index, remote, now)
                || self.learn_failure(cx, index, now)
            {
                continue;
            }
            let backing_off = self
                .remote_state(index, |state| state.last_failure)
                .flatten()
                .is_some_and(|failed| now.saturating_sub(failed) < FAILED_REFETCH);
            if !backing_off {
                self.start_fetch(cx, index, remote, now);
            }
        }
        self.release_overdue(cx, now);
        let busy = !self.pending.borrow().is_empty()
            || self
                .remote
                .borrow()
                .iter()
                .any(|state| state.wanted || state.in_flight.is_some());
        self.set_tick(cx, if busy { BUSY_TICK } else { IDLE_TICK });
    }

    /// Drops the cache's record of tokens verified by remote keys that expired unrefreshed, so
    /// those tokens wait for (or fail with) the next fetch as uncached ones do.
    fn expire_cached_verifications(&self, now: u64) {
        for (index, provider) in self.config.providers.iter().enumerate() {
            let KeySource::Remote(remote) = &provider.keys else {
                continue;
            };
            let expired = self.remote_state(index, |state| {
                let expired = state.cache_valid
                    && now
                        >= state
                            .fetched_at
                            .saturating_add(nanos(remote.cache_duration));
                if expired {
                    state.cache_valid = false;
                }
                expired
            });
            if expired == Some(true) {
                self.cache.borrow_mut().forget_provider(index);
            }
        }
    }

    fn shared_key(&self, kind: &str, index: usize) -> String {
        format!(
            "{}.{kind}.{}",
            self.config.stat_prefix,
            self.provider_name(index)
        )
    }

    /// Takes a key set another worker stored, if it is newer and still fresh.
    fn adopt_shared(&self, cx: &RootCx<'_>, index: usize, remote: &Remote, now: u64) -> bool {
        let Ok(Some((value, _))) = cx.shared_data().get(&self.shared_key("jwks", index)) else {
            return false;
        };
        let Some((stamp, document)) = value
            .iter()
            .position(|&b| b == b'\n')
            .and_then(|split| Some((value.get(..split)?, value.get(split + 1..)?)))
        else {
            return false;
        };
        let fetched_at: u64 = std::str::from_utf8(stamp)
            .ok()
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        let refresh_at = fetched_at.saturating_add(nanos(remote.cache_duration) / 10 * 9);
        let known = self.remote_state(index, |state| state.fetched_at);
        if known.is_none_or(|known| fetched_at <= known) || now >= refresh_at {
            return false;
        }
        match KeySet::parse(document) {
            Ok(keys) => {
                self.keys_arrived(cx, index, Rc::new(keys), fetched_at, document);
                true
            }
            Err(_) => false,
        }
    }

    /// Reads the shared fetch record: a failure on another worker that this one has not seen,
    /// or a lock held past its holder's deadline (the holder is gone: that is a failure too, and
    /// is recorded for every worker), fails this worker's waiting requests. True when it did.
    fn learn_failure(&self, cx: &RootCx<'_>, index: usize, now: u64) -> bool {
        let key = self.shared_key("jwks_fetch", index);
        let Ok(entry) = cx.shared_data().get(&key) else {
            return false;
        };
        let mut record = FetchRecord::parse(entry.as_ref().map(|(value, _)| value.as_slice()));
        if record.held_until != 0 && record.held_until < now {
            record = FetchRecord {
                held_until: 0,
                failed_at: now,
            };
            // On a CAS conflict another worker moved first; the deadline has passed all the same.
            let cas = entry.map_or(0, |(_, cas)| cas);
            let _ = cx.shared_data().set(&key, &record.encode(), cas);
            log::warn!(
                "jwt_auth: provider {}: the fetch of {} another worker started did not finish in time",
                self.provider_name(index),
                self.uri(index)
            );
        }
        let Some((known, fetched_at)) = self.remote_state(index, |state| {
            (state.last_failure.unwrap_or(0), state.fetched_at)
        }) else {
            return false;
        };
        if record.failed_at <= known.max(fetched_at) {
            return false;
        }
        self.remote_state(index, |state| {
            state.last_failure = Some(record.failed_at);
            state.wanted = false;
        });
        self.resume(cx, index);
        true
    }

    /// Starts a fetch unless another worker holds the fetch lock (then its result is awaited,
    /// no longer than the deadline it wrote in the lock).
    fn start_fetch(&self, cx: &RootCx<'_>, index: usize, remote: &Remote, now: u64) {
        let lock_until = now.saturating_add(nanos(remote.timeout + WAIT_MARGIN));
        let key = self.shared_key("jwks_fetch", index);
        let acquired = cx.shared_data().update(&key, 4, |current| {
            let record = FetchRecord::parse(current);
            (record.held_until == 0).then(|| {
                let held = FetchRecord {
                    held_until: lock_until,
                    ..record
                };
                (held.encode(), ())
            })
        });
        match acquired.map(|updated| updated.result) {
            Ok(Some(())) => {}
            Ok(None) => return,
            Err(status) => {
                log::debug!("jwt_auth: fetch lock unavailable ({status:?}); fetching anyway")
            }
        }
        let call =
            HttpCall::get(&remote.cluster, &remote.authority, &remote.path).timeout(remote.timeout);
        match cx.http_call(&call) {
            Ok(token) => {
                self.remote_state(index, |state| {
                    state.in_flight = Some(Fetch { token, lock_until })
                });
            }
            Err(status) => {
                log::warn!(
                    "jwt_auth: provider {}: cannot call cluster {:?} for {}: {status:?}",
                    self.provider_name(index),
                    remote.cluster,
                    remote.uri
                );
                self.remote_state(index, |state| {
                    state.in_flight = Some(Fetch {
                        token: 0,
                        lock_until,
                    })
                });
                self.fetch_failed(cx, index, now);
            }
        }
    }

    fn fetch_done(&self, cx: &RootCx<'_>, response: &CallResponse<'_>) {
        let now = now_nanos(cx);
        let token = response.token;
        let Some(index) = self
            .remote
            .borrow()
            .iter()
            .position(|state| state.in_flight.is_some_and(|fetch| fetch.token == token))
        else {
            return;
        };
        let Some(provider) = self.config.providers.get(index) else {
            return;
        };
        let status = response.status();
        let body = response.body(MAX_JWKS_BYTES).unwrap_or_default();
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
                self.metrics.stats.jwks_fetch_success.increment(cx);
                let mut document = now.to_string().into_bytes();
                document.push(b'\n');
                document.extend_from_slice(&body);
                let _ = cx
                    .shared_data()
                    .set(&self.shared_key("jwks", index), &document, 0);
                self.release_lock(cx, index, None);
                self.keys_arrived(cx, index, Rc::new(keys), now, &body);
            }
            Err(reason) => {
                log::warn!(
                    "jwt_auth: provider {}: fetching {} failed: {reason}",
                    provider.name,
                    self.uri(index)
                );
                self.fetch_failed(cx, index, now);
            }
        }
    }

    /// Ends this worker's fetch of provider `index`: frees the shared lock if this worker still
    /// holds it, and records a failure (at `failed_at`) for every worker.
    fn release_lock(&self, cx: &RootCx<'_>, index: usize, failed_at: Option<u64>) {
        let Some(fetch) = self
            .remote_state(index, |state| state.in_flight.take())
            .flatten()
        else {
            return;
        };
        let key = self.shared_key("jwks_fetch", index);
        let _ = cx.shared_data().update(&key, 4, |current| {
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
        match self.config.providers.get(index).map(|p| &p.keys) {
            Some(KeySource::Remote(remote)) => &remote.uri,
            _ => "",
        }
    }

    /// New keys (fetched here or by another worker): a changed key set voids the cache's record
    /// of what the old one verified, so a token whose key was removed is refused from now on.
    fn keys_arrived(
        &self,
        cx: &RootCx<'_>,
        index: usize,
        keys: Rc<KeySet>,
        fetched_at: u64,
        document: &[u8],
    ) {
        let changed = self.remote_state(index, |state| {
            let changed = state.document != document;
            if changed {
                state.document = document.to_vec();
            }
            state.keys = Some(keys);
            state.fetched_at = fetched_at;
            state.cache_valid = true;
            state.last_failure = None;
            state.wanted = false;
            changed
        });
        if changed == Some(true) {
            self.cache.borrow_mut().forget_provider(index);
        }
        self.resume(cx, index);
    }

    fn fetch_failed(&self, cx: &RootCx<'_>, index: usize, now: u64) {
        self.metrics.stats.jwks_fetch_failed.increment(cx);
        self.release_lock(cx, index, Some(now));
        self.remote_state(index, |state| {
            state.last_failure = Some(now);
            state.wanted = false;
        });
        self.resume(cx, index);
    }

    /// Finishes the requests that waited for provider `index`: each is checked again now that
    /// its keys arrived (or failed) and then continued or answered.
    fn resume(&self, cx: &RootCx<'_>, index: usize) {
        self.release(cx, |request| request.provider == index);
    }

    /// Answers the requests whose deadline passed while their keys were still loading.
    fn release_overdue(&self, cx: &RootCx<'_>, now: u64) {
        self.release(cx, |request| request.deadline <= now);
    }

    /// Takes the waiting requests that `which` selects off the list and wakes each: its
    /// [`JwtAuth::on_wake`] checks it again on its own stream.
    fn release(&self, cx: &RootCx<'_>, which: impl Fn(&Pending) -> bool) {
        let mut pending = self.pending.borrow_mut();
        pending.retain(|request| {
            let ready = which(request);
            if ready {
                cx.wake(request.context_id);
            }
            !ready
        });
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
    /// Set once the request headers arrived.
    context_id: Option<u32>,
    /// The rule, the request and the deadline while the request waits for a key set.
    waiting: Option<(usize, RequestInfo, u64)>,
}

impl Drop for JwtAuth {
    fn drop(&mut self) {
        // A stream deleted while it waited (the client went away) is never woken.
        if let Some(context_id) = self.context_id {
            self.root.stream_ended(context_id);
        }
    }
}

impl JwtAuth {
    fn check(&mut self, cx: &HttpCx<'_>, rule: usize, info: RequestInfo, give_up: bool) -> Action {
        match self.root.decide(cx, rule, &info, give_up) {
            Verdict::Pass => Action::Continue,
            Verdict::Refused => Action::Pause,
            Verdict::Wait(deadline) => {
                self.waiting = Some((rule, info, deadline));
                Action::Pause
            }
        }
    }
}

impl HttpFilter for JwtAuth {
    fn on_request_headers(&mut self, cx: &mut HttpCx<'_>, _end_of_stream: bool) -> Action {
        self.context_id = Some(cx.context_id());
        let root = Rc::clone(&self.root);
        let config = &root.config;
        let headers = cx.request_headers();
        let mut info = RequestInfo::read(&headers);
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
                if let Err(status) = headers.remove(header) {
                    log::warn!("jwt_auth: cannot remove the client's {header}: {status:?}");
                }
            }
        }
        if !removed.is_empty() {
            // Rules match on the headers as they are now.
            info = RequestInfo::read(&headers);
        }
        let is_set = |name: &str| {
            info.headers
                .get(name)
                .is_some_and(|value| !value.is_empty())
        };
        let stats = &root.metrics.stats;
        if config.bypass_cors_preflight
            && info.headers.get(":method") == Some(b"OPTIONS")
            && is_set("origin")
            && is_set("access-control-request-method")
        {
            stats.cors_preflight_bypassed.increment(cx);
            stats.allowed.increment(cx);
            return Action::Continue;
        }
        let Some(rule) = config
            .rules
            .iter()
            .position(|rule| rule.route.matches(&info.headers))
        else {
            stats.allowed.increment(cx);
            return Action::Continue;
        };
        if config
            .rules
            .get(rule)
            .is_none_or(|rule| matches!(rule.requirement, Requirement::AllowAll))
        {
            stats.allowed.increment(cx);
            return Action::Continue;
        }
        self.check(cx, rule, info, false)
    }

    fn on_wake(&mut self, cx: &mut HttpCx<'_>) -> Action {
        let Some((rule, info, deadline)) = self.waiting.take() else {
            return Action::Continue;
        };
        // Woken because its keys arrived or failed, or because its deadline passed: then keys
        // still loading count as failed.
        let give_up = now_nanos(cx) >= deadline;
        self.check(cx, rule, info, give_up)
    }
}
