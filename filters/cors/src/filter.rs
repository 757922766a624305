//! Per-request logic, as Envoy's `cors_filter.cc`: a preflight from an allowed origin is answered
//! with a local 200, and responses to allowed origins get `access-control-allow-origin` and
//! friends. The same code runs as its own module, inside a chain, and on the fake host.

use crate::config::{Allowed, Config, CorsConfig, Policy};
use sdk_ext::config::{load, ConfigError};
use sdk_ext::headers::{Headers, Snapshot};
use sdk_ext::{Action, HttpCx, HttpFilter, RootCx, RootFilter, Status};
use std::borrow::Cow;
use std::rc::Rc;

sdk_ext::stats! {
    /// The filter's counters, `<stat_prefix>.<field>`.
    pub struct Stats {
        /// Requests with an `origin` a policy allows (native `origin_valid`).
        origin_valid: Counter,
        /// Requests with an `origin` a policy refuses (native `origin_invalid`).
        origin_invalid: Counter,
        /// Preflights answered with a local 200.
        preflight_answered: Counter,
        /// Preflights from refused origins sent on to the upstream.
        preflight_forwarded: Counter,
    }
}

/// The response code details of a preflight answer, as native's.
pub const PREFLIGHT_DETAILS: &str = "cors_response";

/// The per-VM root: the validated configuration and the metrics.
pub struct CorsRoot {
    config: Config,
    stats: Stats,
}

impl RootFilter for CorsRoot {
    const NAME: &'static str = "cors";
    type Http = Cors;

    fn configure(cx: &mut RootCx<'_>, config: &[u8]) -> Result<Self, ConfigError> {
        let config = load::<CorsConfig>(config)?;
        let stats = Stats::define(cx, &config.stat_prefix);
        Ok(CorsRoot { config, stats })
    }

    fn create_http(root: &Rc<Self>) -> Cors {
        Cors {
            root: root.clone(),
            state: State::Untouched,
        }
    }
}

/// What the request decided for its response.
#[derive(Debug)]
enum State {
    /// No policy covers the request (or its headers could not be read): hands off.
    Untouched,
    /// A policy covers it, but no allowed origin: only `vary: origin`.
    Covered,
    /// The origin is allowed by policy `policy`: it is echoed on the response.
    Allowed { policy: usize, origin: Vec<u8> },
    /// The preflight was answered locally with every header it needs.
    Answered,
}

/// The per-request filter.
pub struct Cors {
    root: Rc<CorsRoot>,
    state: State,
}

/// A request header as Envoy's inline headers hold it: repeated values joined with `,`, empty
/// ones skipped, so every host gives the filter what Envoy's codecs give native.
fn inline<'a>(headers: &'a Snapshot, name: &'a str) -> Cow<'a, [u8]> {
    let mut values = headers.get_all(name).filter(|value| !value.is_empty());
    let Some(first) = values.next() else {
        return Cow::Borrowed(b"");
    };
    let Some(second) = values.next() else {
        return Cow::Borrowed(first);
    };
    let mut joined = [first, second].join(&b","[..]);
    for value in values {
        joined.push(b',');
        joined.extend_from_slice(value);
    }
    Cow::Owned(joined)
}

impl HttpFilter for Cors {
    fn on_request_headers(&mut self, cx: &mut HttpCx<'_>, _end_of_stream: bool) -> Action {
        let root = Rc::clone(&self.root);
        // CORS is enforced by the browser, not here: a map we cannot read leaves the request
        // as it is, and its response without CORS headers.
        let headers = match cx.request_headers().snapshot() {
            Ok(headers) => headers,
            Err(status) => {
                log::warn!("cors: cannot read the request headers: {status:?}");
                return Action::Continue;
            }
        };
        let Some((index, policy)) = root.config.policy_for(&headers) else {
            return Action::Continue;
        };
        self.state = State::Covered;
        let origin = inline(&headers, "origin");
        if origin.is_empty() {
            return Action::Continue;
        }
        let allowed = policy.allows(&origin);
        if allowed {
            root.stats.origin_valid.increment(cx);
        } else {
            root.stats.origin_invalid.increment(cx);
        }
        let request_method = inline(&headers, "access-control-request-method");
        let preflight = headers.get(":method") == Some(b"OPTIONS") && !request_method.is_empty();
        if allowed {
            self.state = State::Allowed {
                policy: index,
                origin: origin.to_vec(),
            };
        }
        if !preflight {
            return Action::Continue;
        }
        if !allowed && policy.forward_not_matching_preflights {
            root.stats.preflight_forwarded.increment(cx);
            return Action::Continue;
        }
        let request_headers = inline(&headers, "access-control-request-headers");
        let private_network =
            inline(&headers, "access-control-request-private-network").as_ref() == b"true";
        let mut reply: Vec<(&str, &[u8])> = Vec::with_capacity(8);
        if allowed {
            reply.push(("access-control-allow-origin", &origin));
        }
        if policy.allow_credentials {
            reply.push(("access-control-allow-credentials", b"true"));
        }
        match &policy.allow_methods {
            Allowed::Unset => {}
            Allowed::Echo => reply.push(("access-control-allow-methods", &request_method)),
            Allowed::Value(value) => reply.push(("access-control-allow-methods", value)),
        }
        match &policy.allow_headers {
            Allowed::Unset => {}
            Allowed::Echo => reply.push(("access-control-allow-headers", &request_headers)),
            Allowed::Value(value) => reply.push(("access-control-allow-headers", value)),
        }
        if !policy.max_age.is_empty() {
            reply.push(("access-control-max-age", &policy.max_age));
        }
        if policy.allow_private_network_access && private_network {
            reply.push(("access-control-allow-private-network", b"true"));
        }
        // Native's own response hook adds this to its answer when the origin is allowed.
        if allowed && !policy.expose_headers.is_empty() {
            reply.push(("access-control-expose-headers", &policy.expose_headers));
        }
        reply.push(("vary", b"origin"));
        if let Err(status) = cx.send_reply(200, PREFLIGHT_DETAILS, b"", &reply) {
            // The upstream may still answer it; the response hook adds what it can.
            log::warn!("cors: cannot answer the preflight: {status:?}");
            return Action::Continue;
        }
        root.stats.preflight_answered.increment(cx);
        self.state = State::Answered;
        Action::Pause
    }

    fn on_response_headers(&mut self, cx: &mut HttpCx<'_>, _end_of_stream: bool) -> Action {
        let allowed = match &self.state {
            State::Untouched | State::Answered => return Action::Continue,
            State::Covered => None,
            State::Allowed { policy, origin } => self
                .root
                .config
                .policies
                .get(*policy)
                .map(|policy| (policy, origin.as_slice())),
        };
        if let Err(status) = decorate(&cx.response_headers(), allowed) {
            log::warn!("cors: cannot set the response's CORS headers: {status:?}");
        }
        Action::Continue
    }
}

/// Sets what native sets on a response to an allowed origin (replacing the upstream's values),
/// then adds `vary: origin`.
fn decorate(headers: &Headers<'_>, allowed: Option<(&Policy, &[u8])>) -> Result<(), Status> {
    if let Some((policy, origin)) = allowed {
        headers.set("access-control-allow-origin", origin)?;
        if policy.allow_credentials {
            headers.set("access-control-allow-credentials", b"true")?;
        }
        if !policy.expose_headers.is_empty() {
            headers.set("access-control-expose-headers", &policy.expose_headers)?;
        }
    }
    add_vary_origin(headers)
}

/// Adds `origin` to `vary` unless it already lists `origin` or `*`: the response depends on the
/// request's origin, so a cache must not serve it to another origin.
fn add_vary_origin(headers: &Headers<'_>) -> Result<(), Status> {
    let present = headers.get("vary")?;
    let covered = present.as_deref().is_some_and(|vary| {
        vary.split(|&byte| byte == b',').any(|token| {
            let token = token.trim_ascii();
            token == b"*" || token.eq_ignore_ascii_case(b"origin")
        })
    });
    if covered {
        return Ok(());
    }
    headers.add("vary", b"origin")
}
