//! Per-request logic, through the context object each hook is handed: the same code runs as its
//! own module, inside a chain, and on the fake host in unit tests.

use crate::config::{load, Config};
use crate::engine::{Decision, Request};
use sdk_ext::config::ConfigError;
use sdk_ext::net::{parse_socket_address, trusted_client_address};
use sdk_ext::stats::Counter;
use sdk_ext::{Action, Cx, HttpCx, HttpFilter, RootCx, RootFilter, Status};
use std::rc::Rc;

/// Native's local reply body.
pub const DENIED_BODY: &[u8] = b"RBAC: access denied";

/// The counters, named as native's: `rbac.[<rules_stat_prefix>.]allowed`, `denied`, and
/// `rbac.[<shadow_rules_stat_prefix>.]shadow_allowed`, `shadow_denied`; plus
/// `rbac.[<rules_stat_prefix>.]policy.<name>.denied` for each policy of a DENY engine.
#[derive(Debug)]
pub struct Stats {
    /// Requests the enforced rules let through.
    pub allowed: Counter,
    /// Requests the enforced rules refused.
    pub denied: Counter,
    /// Requests the shadow rules would let through.
    pub shadow_allowed: Counter,
    /// Requests the shadow rules would refuse.
    pub shadow_denied: Counter,
    /// Per policy of the enforced rules (DENY engines only): requests it refused.
    pub policy_denied: Vec<Counter>,
}

impl Stats {
    /// Defines every counter the configuration uses.
    pub fn define(cx: &Cx<'_>, config: &Config) -> Stats {
        let rules = &stat_prefix(&config.rules_stat_prefix);
        let shadow = &stat_prefix(&config.shadow_rules_stat_prefix);
        let counter = |name: String| Counter::define(cx, &name);
        let policy_denied = match &config.rules {
            Some(engine) if engine.action == crate::engine::Action::Deny => engine
                .policies
                .iter()
                .map(|policy| counter(format!("{rules}policy.{}.denied", policy.name)))
                .collect(),
            _ => Vec::new(),
        };
        Stats {
            allowed: counter(format!("{rules}allowed")),
            denied: counter(format!("{rules}denied")),
            shadow_allowed: counter(format!("{shadow}shadow_allowed")),
            shadow_denied: counter(format!("{shadow}shadow_denied")),
            policy_denied,
        }
    }
}

/// `rbac.` plus the configured prefix joined as Envoy joins stat names (a `.` unless it ends
/// with one).
fn stat_prefix(prefix: &str) -> String {
    match prefix {
        "" => "rbac.".to_string(),
        _ if prefix.ends_with('.') => format!("rbac.{prefix}"),
        _ => format!("rbac.{prefix}."),
    }
}

/// The per-VM root: the validated configuration and the metrics.
pub struct RbacRoot {
    config: Config,
    stats: Stats,
}

impl RootFilter for RbacRoot {
    const NAME: &'static str = "rbac";
    type Http = Rbac;

    fn configure(cx: &mut RootCx<'_>, config: &[u8]) -> Result<Self, ConfigError> {
        let config = load(config)?;
        if config.rules.is_none() && config.shadow_rules.is_none() {
            log::warn!("rbac: neither rules nor shadow_rules is set: every request passes");
        }
        let stats = Stats::define(cx, &config);
        Ok(RbacRoot { config, stats })
    }

    fn create_http(root: &Rc<Self>) -> Rbac {
        Rbac { root: root.clone() }
    }
}

/// The per-request filter.
pub struct Rbac {
    root: Rc<RbacRoot>,
}

/// Reads what the policies need, and nothing else: one hostcall per source.
fn read_request(cx: &HttpCx<'_>, config: &Config) -> Result<Request, Status> {
    let needs = config.needs;
    let mut request = Request::default();
    if needs.headers || needs.xff {
        request.headers = cx.request_headers().snapshot()?;
    }
    if needs.source {
        let peer = cx
            .property(&["source", "address"])?
            .as_deref()
            .and_then(parse_socket_address)
            .map(|(ip, _)| ip);
        request.peer = peer;
        request.client = peer;
        if needs.xff {
            // Envoy merges repeated XFF headers into one comma-joined value.
            let xff = request
                .headers
                .get_all("x-forwarded-for")
                .collect::<Vec<_>>()
                .join(&b","[..]);
            if let Some(client) = trusted_client_address(&xff, config.xff_num_trusted_hops) {
                request.client = Some(client);
            }
        }
    }
    if needs.destination {
        request.destination = cx
            .property(&["destination", "address"])?
            .as_deref()
            .and_then(parse_socket_address);
    }
    Ok(request)
}

/// Native's response code details: `rbac_access_denied_matched_policy[<policy or none>]`.
fn details(decision: &Decision<'_>) -> String {
    let policy = decision.policy.map_or("none", |(_, name)| name);
    let policy: String = policy
        .chars()
        .map(|c| if c.is_whitespace() { '_' } else { c })
        .collect();
    format!("rbac_access_denied_matched_policy[{policy}]")
}

impl Rbac {
    fn deny(&self, cx: &HttpCx<'_>, details: &str) -> Action {
        if let Err(status) = cx.send_reply(
            403,
            details,
            DENIED_BODY,
            &[("content-type", b"text/plain")],
        ) {
            log::warn!("rbac: cannot send the 403: {status:?}");
        }
        Action::Pause
    }
}

impl HttpFilter for Rbac {
    fn on_request_headers(&mut self, cx: &mut HttpCx<'_>, _end_of_stream: bool) -> Action {
        let root = &self.root;
        let config = &root.config;
        let stats = &root.stats;
        let request = match read_request(cx, config) {
            Ok(request) => request,
            Err(status) => {
                // Fail closed: a policy evaluated on missing data could let anything through.
                log::warn!("rbac: cannot read the request ({status:?})");
                if config.rules.is_none() {
                    return Action::Continue;
                }
                stats.denied.increment(cx);
                return self.deny(cx, "rbac_access_denied_matched_policy[none]");
            }
        };
        if let Some(shadow) = &config.shadow_rules {
            let decision = shadow.decide(&request);
            let counter = if decision.allowed {
                stats.shadow_allowed
            } else {
                stats.shadow_denied
            };
            counter.increment(cx);
            log::debug!(
                "rbac: shadow {}, matched policy {}",
                if decision.allowed {
                    "allowed"
                } else {
                    "denied"
                },
                decision.policy.map_or("none", |(_, name)| name)
            );
        }
        let Some(engine) = &config.rules else {
            return Action::Continue;
        };
        let decision = engine.decide(&request);
        if decision.allowed {
            stats.allowed.increment(cx);
            if let Some((_, name)) = decision.policy {
                log::debug!("rbac: enforced allowed, matched policy {name}");
            }
            return Action::Continue;
        }
        stats.denied.increment(cx);
        if let Some(counter) = decision
            .policy
            .and_then(|(index, _)| stats.policy_denied.get(index))
        {
            counter.increment(cx);
        }
        let details = details(&decision);
        log::debug!("rbac: enforced denied: {details}");
        self.deny(cx, &details)
    }
}
