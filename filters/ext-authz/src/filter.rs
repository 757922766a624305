//! Per-request logic, through the context object each hook is handed: the same code runs as its
//! own module, inside a chain, and on the fake host in unit tests.
//!
//! A request is held while a check request goes to the authorization service; its answer lets
//! the request on (200), refuses it with the service's reply (any other status below 500), or
//! counts as a failure (5xx, timeout, reset), which `failure_mode_allow` decides.

use crate::config::{Config, ExtAuthzConfig};
use sdk_ext::callout::{CallResponse, HttpCall};
use sdk_ext::config::{load, ConfigError};
use sdk_ext::headers::Snapshot;
use sdk_ext::{Action, HttpCx, HttpFilter, RootCx, RootFilter};
use std::rc::Rc;

sdk_ext::stats! {
    /// The filter's counters, `ext_authz[.<stat_prefix>].<field>`, as native names them.
    pub struct Stats {
        ok: Counter,
        denied: Counter,
        error: Counter,
        failure_mode_allowed: Counter,
    }
}

/// Request headers always sent to the service, as native's defaults.
const DEFAULT_ALLOWED: &[&str] = &["authorization"];
/// Set on the check request when the body is sent: `true` when it was cut at the limit.
const PARTIAL_BODY: &str = "x-envoy-auth-partial-body";
/// Set on a request let through by `failure_mode_allow` with `failure_mode_allow_header_add`.
const FAILURE_MODE_ALLOWED: &str = "x-envoy-auth-failure-mode-allowed";
/// A service header listing request headers to remove on allow.
const HEADERS_TO_REMOVE: &str = "x-envoy-auth-headers-to-remove";
/// Most bytes of a service's deny body passed to the client.
const MAX_DENY_BODY: usize = 1 << 20;

/// The per-VM root: the validated configuration and the metrics.
pub struct ExtAuthzRoot {
    config: Config,
    stats: Stats,
}

impl RootFilter for ExtAuthzRoot {
    const NAME: &'static str = "ext_authz";
    type Http = ExtAuthz;

    fn configure(cx: &mut RootCx<'_>, config: &[u8]) -> Result<Self, ConfigError> {
        let config = load::<ExtAuthzConfig>(config)?;
        let stats = Stats::define(cx, &config.stat_prefix);
        Ok(ExtAuthzRoot { config, stats })
    }

    fn create_http(root: &Rc<Self>) -> ExtAuthz {
        ExtAuthz {
            root: root.clone(),
            state: State::Idle,
            response_headers: Vec::new(),
        }
    }
}

/// Where a request is in its check.
#[derive(Debug)]
enum State {
    /// Not checked yet.
    Idle,
    /// Buffering the body to send; the request headers as they were.
    Buffering(Snapshot),
    /// The check request `token` is out; `headers_held` when the request headers can still be
    /// changed (they were not passed on to buffer the body).
    Checking { token: u32, headers_held: bool },
    /// Decided: every later hook lets the request be.
    Done,
}

/// The per-request filter.
pub struct ExtAuthz {
    root: Rc<ExtAuthzRoot>,
    state: State,
    /// Service headers for the client's response (`allowed_client_headers_on_success`).
    response_headers: Vec<(String, Vec<u8>)>,
}

impl HttpFilter for ExtAuthz {
    fn on_request_headers(&mut self, cx: &mut HttpCx<'_>, end_of_stream: bool) -> Action {
        let headers = match cx.request_headers().snapshot() {
            Ok(headers) => headers,
            Err(status) => {
                log::warn!("ext_authz: cannot read the request headers: {status:?}");
                return self.fail(cx, true);
            }
        };
        if self.root.config.with_request_body.is_some() && !end_of_stream {
            // A proxy-wasm filter that holds the headers sees no body until it lets them go
            // (Envoy turns the stop into StopAllIteration): pass the headers on, hold the body.
            self.state = State::Buffering(headers);
            return Action::Continue;
        }
        // Native marks a partial body only when it buffered one: not for a request without.
        self.check(cx, &headers, None, true)
    }

    fn on_request_body(&mut self, cx: &mut HttpCx<'_>, body_size: usize, end: bool) -> Action {
        let Some((max, partial)) = self.root.config.with_request_body else {
            return Action::Continue;
        };
        match &self.state {
            State::Buffering(_) => {}
            // More body while the check is out: keep holding it.
            State::Checking { .. } => return Action::Pause,
            State::Idle | State::Done => return Action::Continue,
        }
        if body_size > max && !partial {
            self.state = State::Done;
            // As Envoy answers a body over the decoder buffer limit.
            let headers: [(&str, &[u8]); 1] = [("content-type", b"text/plain")];
            if let Err(status) = cx.send_reply(
                413,
                "request_payload_too_large",
                b"Payload Too Large",
                &headers,
            ) {
                log::warn!("ext_authz: cannot send the 413: {status:?}");
            }
            return Action::Pause;
        }
        let full = partial && body_size >= max;
        if !end && !full {
            return Action::Pause;
        }
        let State::Buffering(headers) = std::mem::replace(&mut self.state, State::Idle) else {
            return Action::Continue;
        };
        let body = match cx.request_body(0, body_size.min(max)) {
            Ok(body) => body,
            Err(status) => {
                log::warn!("ext_authz: cannot read the request body: {status:?}");
                return self.fail(cx, false);
            }
        };
        self.check(cx, &headers, Some((&body, body_size > max)), false)
    }

    fn on_response_headers(&mut self, cx: &mut HttpCx<'_>, _end_of_stream: bool) -> Action {
        let headers = cx.response_headers();
        for (name, value) in &self.response_headers {
            if let Err(status) = headers.add(name, value) {
                log::warn!("ext_authz: cannot add {name} to the response: {status:?}");
            }
        }
        Action::Continue
    }

    fn on_http_call_response(
        &mut self,
        cx: &mut HttpCx<'_>,
        response: &CallResponse<'_>,
    ) -> Action {
        let headers_held = match self.state {
            State::Checking {
                token,
                headers_held,
            } if token == response.token => headers_held,
            State::Checking { .. } => return Action::Pause,
            _ => return Action::Continue,
        };
        self.state = State::Done;
        let root = &*self.root;
        let status = match response.status() {
            Some(status) if (100..500).contains(&status) => status,
            Some(status) => {
                log::info!("ext_authz: the authorization service answered {status}");
                return self.fail(cx, headers_held);
            }
            None => {
                log::info!("ext_authz: the check request failed (reset or timeout)");
                return self.fail(cx, headers_held);
            }
        };
        let answer = match response.headers().snapshot() {
            Ok(answer) => answer,
            Err(error) => {
                log::warn!("ext_authz: cannot read the service's headers: {error:?}");
                return self.fail(cx, headers_held);
            }
        };
        if status == 200 {
            root.stats.ok.increment(cx);
            if headers_held {
                apply_upstream_headers(cx, &root.config, &answer);
            }
            let on_success = &root.config.client_headers_on_success;
            if !on_success.is_empty() {
                self.response_headers = answer
                    .iter()
                    .filter(|(name, _)| !name.starts_with(b":") && on_success.matches(name))
                    .filter_map(|(name, value)| {
                        Some((String::from_utf8(name.to_vec()).ok()?, value.to_vec()))
                    })
                    .collect();
            }
            return Action::Continue;
        }
        root.stats.denied.increment(cx);
        let body = response.body(MAX_DENY_BODY).unwrap_or_default();
        let headers: Vec<(&str, &[u8])> = answer
            .iter()
            .filter(|(name, _)| {
                !name.starts_with(b":")
                    && *name != b"content-length"
                    && *name != b"transfer-encoding"
                    && root.config.client_headers.matches(name)
            })
            .filter_map(|(name, value)| Some((std::str::from_utf8(name).ok()?, value)))
            .collect();
        if let Err(error) = cx.send_reply(u32::from(status), "ext_authz_denied", &body, &headers) {
            log::warn!("ext_authz: cannot send the denial: {error:?}");
        }
        Action::Pause
    }
}

impl ExtAuthz {
    /// Sends the check request for `headers` (and `body`: bytes, cut short) and holds the
    /// request until the answer.
    fn check(
        &mut self,
        cx: &HttpCx<'_>,
        headers: &Snapshot,
        body: Option<(&[u8], bool)>,
        headers_held: bool,
    ) -> Action {
        let config = &self.root.config;
        let text = |name: &str| {
            let mut value = Vec::new();
            push_sanitized(&mut value, headers.get(name).unwrap_or_default());
            // Only valid UTF-8 is left, so this never replaces anything.
            String::from_utf8_lossy(&value).into_owned()
        };
        let method = text(":method");
        let authority = text(":authority");
        let path = format!("{}{}", config.path_prefix, text(":path"));
        let content = body.map_or(&[][..], |(bytes, _)| bytes);
        let mut extra: Vec<(&str, Vec<u8>)> =
            vec![("content-length", content.len().to_string().into_bytes())];
        for (name, value) in headers.iter() {
            let Ok(name) = std::str::from_utf8(name) else {
                continue;
            };
            if matches!(
                name,
                ":method" | ":path" | ":authority" | "content-length" | PARTIAL_BODY
            ) || !(DEFAULT_ALLOWED.contains(&name)
                || config.allowed_headers.matches(name.as_bytes()))
            {
                continue;
            }
            // Repeated headers travel as one value joined with commas, as native builds them.
            match extra.iter_mut().find(|(known, _)| *known == name) {
                Some((_, joined)) => {
                    joined.push(b',');
                    push_sanitized(joined, value);
                }
                None => {
                    let mut sanitized = Vec::with_capacity(value.len());
                    push_sanitized(&mut sanitized, value);
                    extra.push((name, sanitized));
                }
            }
        }
        // Native flags every buffered body, whatever `allowed_headers` says.
        if let Some((_, partial)) = body {
            let flag: &[u8] = if partial { b"true" } else { b"false" };
            extra.push((PARTIAL_BODY, flag.to_vec()));
        }
        for (name, value) in &config.headers_to_add {
            extra.retain(|(known, _)| known != name);
            extra.push((name, value.clone()));
        }
        let mut call = HttpCall::new(&config.cluster, &method, &authority, &path)
            .timeout(config.timeout)
            .body(content);
        for (name, value) in &extra {
            call = call.header(name, value);
        }
        match cx.http_call(&call) {
            Ok(token) => {
                self.state = State::Checking {
                    token,
                    headers_held,
                };
                Action::Pause
            }
            Err(status) => {
                log::warn!(
                    "ext_authz: cannot send the check request to {}: {status:?}",
                    config.cluster
                );
                self.fail(cx, headers_held)
            }
        }
    }

    /// The check failed: let the request through with `failure_mode_allow`, else refuse it with
    /// `status_on_error` and an empty body, as native does.
    fn fail(&mut self, cx: &HttpCx<'_>, headers_held: bool) -> Action {
        self.state = State::Done;
        let root = &*self.root;
        root.stats.error.increment(cx);
        if root.config.failure_mode_allow {
            root.stats.failure_mode_allowed.increment(cx);
            if root.config.failure_mode_allow_header_add && headers_held {
                if let Err(status) = cx.request_headers().set(FAILURE_MODE_ALLOWED, b"true") {
                    log::warn!("ext_authz: cannot set {FAILURE_MODE_ALLOWED}: {status:?}");
                }
            }
            return Action::Continue;
        }
        if let Err(status) = cx.send_reply(root.config.status_on_error, "ext_authz_error", b"", &[])
        {
            log::warn!("ext_authz: cannot send the error reply: {status:?}");
        }
        Action::Pause
    }
}

/// On allow: the service's headers named by `allowed_upstream_headers` replace the request's,
/// those named by `allowed_upstream_headers_to_append` are added as one more entry (native adds,
/// it does not join values with a comma).
fn apply_upstream_headers(cx: &HttpCx<'_>, config: &Config, answer: &Snapshot) {
    let request = cx.request_headers();
    // The service may name request headers to remove, as native honours on allow; never a
    // pseudo-header or `host`.
    for list in answer.get_all(HEADERS_TO_REMOVE) {
        for name in list.split(|&byte| byte == b',') {
            let name = String::from_utf8_lossy(name.trim_ascii()).to_ascii_lowercase();
            if name.is_empty() || name.starts_with(':') || name == "host" {
                continue;
            }
            if let Err(status) = request.remove(&name) {
                log::warn!("ext_authz: cannot remove {name} from the request: {status:?}");
            }
        }
    }
    for (name, value) in answer.iter() {
        let Ok(text) = std::str::from_utf8(name) else {
            continue;
        };
        if text.starts_with(':') {
            continue;
        }
        let result = if config.upstream_headers.matches(name) {
            request.set(text, value)
        } else if config.upstream_headers_to_append.matches(name) {
            request.add(text, value)
        } else {
            continue;
        };
        if let Err(status) = result {
            log::warn!("ext_authz: cannot set {text} on the request: {status:?}");
        }
    }
}

/// Appends `value` with every byte of an invalid UTF-8 sequence replaced by `!`: native passes
/// request headers through a protobuf string and coerces them so (the length is kept).
fn push_sanitized(out: &mut Vec<u8>, mut value: &[u8]) {
    loop {
        match std::str::from_utf8(value) {
            Ok(valid) => {
                out.extend_from_slice(valid.as_bytes());
                return;
            }
            Err(error) => {
                let (valid, rest) = value.split_at(error.valid_up_to());
                out.extend_from_slice(valid);
                let bad = error.error_len().unwrap_or(rest.len());
                out.extend(std::iter::repeat_n(b'!', bad));
                value = rest.get(bad..).unwrap_or_default();
            }
        }
    }
}
