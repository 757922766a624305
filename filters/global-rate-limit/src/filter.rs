//! Per-request logic, through the context object each hook is handed: the same code runs as its
//! own module, inside a chain, and on the fake host in unit tests.
//!
//! A request whose `rate_limits` yield descriptors is held while `ShouldRateLimit` goes to the
//! rate limit service; its answer lets the request on (OK), refuses it (OVER_LIMIT), or counts
//! as an error (a gRPC status, a timeout, an unreadable reply), which `failure_mode_deny`
//! decides.

use crate::config::{Config, GlobalRateLimitConfig, RequestType};
use crate::rls;
use sdk_ext::config::{load, ConfigError};
use sdk_ext::grpc::{GrpcCall, GrpcResponse};
use sdk_ext::protobuf::Writer;
use sdk_ext::ratelimit::StreamRequest;
use sdk_ext::text::Quoted;
use sdk_ext::{Action, HttpCx, HttpFilter, RootCx, RootFilter};
use std::rc::Rc;

sdk_ext::stats! {
    /// The filter's counters, `ratelimit[.<stat_prefix>].<field>`, as native names them.
    pub struct Stats {
        ok: Counter,
        over_limit: Counter,
        error: Counter,
        failure_mode_allowed: Counter,
    }
}

/// Native's response code details of an over-limit reply.
const RATE_LIMITED: &str = "request_rate_limited";
/// Native's response code details of an error reply.
const RATE_LIMITER_ERROR: &str = "rate_limiter_error";

/// The per-VM root: the validated configuration and the metrics.
pub struct GlobalRateLimitRoot {
    config: Config,
    stats: Stats,
}

impl RootFilter for GlobalRateLimitRoot {
    const NAME: &'static str = "global_rate_limit";
    type Http = GlobalRateLimit;

    fn configure(cx: &mut RootCx<'_>, config: &[u8]) -> Result<Self, ConfigError> {
        let config = load::<GlobalRateLimitConfig>(config)?;
        let stats = Stats::define(cx, &config.stat_prefix);
        Ok(GlobalRateLimitRoot { config, stats })
    }

    fn create_http(root: &Rc<Self>) -> GlobalRateLimit {
        GlobalRateLimit {
            root: root.clone(),
            state: State::Idle,
            response_headers: Vec::new(),
        }
    }
}

/// Where a request is in its check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not checked yet.
    Idle,
    /// `ShouldRateLimit` call `token` is out.
    Calling { token: u32 },
    /// Decided.
    Done,
}

/// The per-request filter.
pub struct GlobalRateLimit {
    root: Rc<GlobalRateLimitRoot>,
    state: State,
    /// Headers for the upstream response: the service's and the `x-ratelimit-*` ones.
    response_headers: Vec<(String, Vec<u8>)>,
}

impl HttpFilter for GlobalRateLimit {
    fn on_request_headers(&mut self, cx: &mut HttpCx<'_>, _end_of_stream: bool) -> Action {
        if self.state != State::Idle {
            return Action::Continue;
        }
        self.state = State::Done;
        let config = &self.root.config;
        if config.request_type != RequestType::Both {
            let internal = cx
                .request_headers()
                .get("x-envoy-internal")
                .ok()
                .flatten()
                .is_some_and(|value| value == b"true");
            if internal != (config.request_type == RequestType::Internal) {
                return Action::Continue;
            }
        }
        let message = {
            let request = StreamRequest::new(cx);
            let mut message = Writer::with_capacity(config.domain_field.len() + 64);
            message.raw(&config.domain_field);
            let mut entries = Vec::new();
            let mut descriptors = 0usize;
            for policy in &config.policies {
                if policy.populate(&request, &mut entries) {
                    rls::push_descriptor(&mut message, &entries);
                    descriptors += 1;
                }
            }
            if descriptors == 0 {
                return Action::Continue;
            }
            message.into_bytes()
        };
        let mut call = GrpcCall::new(&config.cluster, rls::SERVICE, rls::METHOD, &message)
            .timeout(config.timeout);
        for (name, value) in &config.metadata {
            call = call.metadata(name, value);
        }
        match cx.grpc_call(&call) {
            Ok(token) => {
                self.state = State::Calling { token };
                Action::Pause
            }
            Err(status) => {
                log::warn!(
                    "global_rate_limit: cannot call the rate limit service on {}: {status:?}",
                    config.cluster
                );
                self.fail(cx)
            }
        }
    }

    fn on_response_headers(&mut self, cx: &mut HttpCx<'_>, _end_of_stream: bool) -> Action {
        let headers = cx.response_headers();
        for (name, value) in std::mem::take(&mut self.response_headers) {
            if let Err(status) = headers.add(&name, &value) {
                log::warn!("global_rate_limit: cannot add {name} to the response: {status:?}");
            }
        }
        Action::Continue
    }

    fn on_grpc_call_response(
        &mut self,
        cx: &mut HttpCx<'_>,
        response: &GrpcResponse<'_>,
    ) -> Action {
        match self.state {
            State::Calling { token } if token == response.token => {}
            State::Calling { .. } => return Action::Pause,
            State::Idle | State::Done => return Action::Continue,
        }
        self.state = State::Done;
        if !response.is_ok() {
            log::info!(
                "global_rate_limit: the rate limit service call failed with gRPC status {} ({})",
                response.status,
                response.status_message().unwrap_or_default()
            );
            return self.fail(cx);
        }
        let answer = match response.message().map(|bytes| rls::decode_response(&bytes)) {
            Ok(Ok(answer)) => answer,
            Ok(Err(error)) => {
                log::warn!("global_rate_limit: the rate limit service's reply: {error}");
                return self.fail(cx);
            }
            Err(status) => {
                log::warn!("global_rate_limit: cannot read the service's reply: {status:?}");
                return self.fail(cx);
            }
        };
        let root = &*self.root;
        let mut headers = valid_headers(&answer.response_headers_to_add);
        if root.config.x_ratelimit_headers {
            if let Some(limits) = rls::x_ratelimit_headers(&answer.statuses) {
                headers.extend(limits.map(|(name, value)| (name.to_string(), value.into_bytes())));
            }
        }
        if !answer.over_limit {
            root.stats.ok.increment(cx);
            let request = cx.request_headers();
            // Native adds (it does not replace) the service's request headers.
            for (name, value) in valid_headers(&answer.request_headers_to_add) {
                if let Err(status) = request.add(&name, &value) {
                    log::warn!("global_rate_limit: cannot add {name} to the request: {status:?}");
                }
            }
            self.response_headers = headers;
            return Action::Continue;
        }
        root.stats.over_limit.increment(cx);
        if root.config.x_envoy_ratelimited {
            headers.push(("x-envoy-ratelimited".to_string(), b"true".to_vec()));
        }
        let reply: Vec<(&str, &[u8])> = headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_slice()))
            .collect();
        match cx.send_reply(
            root.config.rate_limited_status,
            RATE_LIMITED,
            &answer.raw_body,
            &reply,
        ) {
            Ok(()) => Action::Pause,
            Err(status) => {
                log::error!(
                    "global_rate_limit: cannot send the over-limit reply ({status:?}); request let through"
                );
                Action::Continue
            }
        }
    }
}

impl GlobalRateLimit {
    /// The check failed: refuse with `status_on_error` and an empty body under
    /// `failure_mode_deny`, else let the request through, as native does.
    fn fail(&mut self, cx: &HttpCx<'_>) -> Action {
        self.state = State::Done;
        let root = &*self.root;
        root.stats.error.increment(cx);
        if !root.config.failure_mode_deny {
            root.stats.failure_mode_allowed.increment(cx);
            return Action::Continue;
        }
        match cx.send_reply(root.config.status_on_error, RATE_LIMITER_ERROR, b"", &[]) {
            Ok(()) => Action::Pause,
            Err(status) => {
                log::error!(
                    "global_rate_limit: cannot send the error reply ({status:?}); request let through"
                );
                Action::Continue
            }
        }
    }
}

/// The service's headers a filter may write: lower-cased names (as native's `LowerCaseString`),
/// no pseudo-headers, no CR, LF or NUL in values; the others are dropped with a log line.
fn valid_headers(headers: &[(String, String)]) -> Vec<(String, Vec<u8>)> {
    headers
        .iter()
        .filter_map(|(key, value)| {
            let checked = sdk_ext::validate::header_name(key, sdk_ext::validate::Pseudo::Never)
                .and_then(|name| sdk_ext::validate::header_value(value.as_bytes()).map(|()| name));
            match checked {
                Ok(name) => Some((name, value.as_bytes().to_vec())),
                Err(reason) => {
                    log::warn!(
                        "global_rate_limit: the service's header {} is dropped: {reason}",
                        Quoted(key)
                    );
                    None
                }
            }
        })
        .collect()
}
