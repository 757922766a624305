//! The compiled policies and their evaluation against one request, as native RBAC's engine:
//! policies are tried in name order and the first match decides.

use sdk_ext::headers::Snapshot;
use sdk_ext::matcher::{HeaderMatcher, RequestView, StringMatcher};
use sdk_ext::net::CidrRange;
use std::net::IpAddr;

/// `RBAC.Action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Action {
    /// Only requests a policy matches pass.
    #[default]
    Allow,
    /// Requests a policy matches are refused.
    Deny,
    /// Nothing is refused; a match is only logged.
    Log,
}

/// One engine: `rules` or `shadow_rules`.
#[derive(Debug)]
pub struct Engine {
    /// What a match means.
    pub action: Action,
    /// In name order.
    pub policies: Vec<Policy>,
}

/// A named policy: any permission and any principal.
#[derive(Debug)]
pub struct Policy {
    /// The map key of the policy.
    pub name: String,
    /// Matches when any of these does.
    pub permissions: Vec<Permission>,
    /// And any of these does.
    pub principals: Vec<Principal>,
}

/// A compiled permission.
#[derive(Debug)]
pub enum Permission {
    /// Always.
    Any,
    /// A request header.
    Header(HeaderMatcher),
    /// The path without query and fragment.
    UrlPath(StringMatcher),
    /// All.
    And(Vec<Permission>),
    /// Any.
    Or(Vec<Permission>),
    /// Negation.
    Not(Box<Permission>),
    /// The local port.
    DestinationPort(u16),
    /// The local port in `[start, end)`.
    DestinationPortRange(u32, u32),
    /// The local address.
    DestinationIp(CidrRange),
}

/// A compiled principal.
#[derive(Debug)]
pub enum Principal {
    /// Always.
    Any,
    /// A request header.
    Header(HeaderMatcher),
    /// The path without query and fragment.
    UrlPath(StringMatcher),
    /// All.
    And(Vec<Principal>),
    /// Any.
    Or(Vec<Principal>),
    /// Negation.
    Not(Box<Principal>),
    /// The peer.
    DirectRemoteIp(CidrRange),
    /// The client (peer, or from `x-forwarded-for`).
    RemoteIp(CidrRange),
}

/// What the policies read from one request.
#[derive(Debug, Default)]
pub struct Request {
    /// The request headers (empty when no policy reads them).
    pub headers: Snapshot,
    /// The peer (`source.address`).
    pub peer: Option<IpAddr>,
    /// The client: the peer, or the trusted `x-forwarded-for` entry.
    pub client: Option<IpAddr>,
    /// The local address and port (`destination.address`).
    pub destination: Option<(IpAddr, Option<u16>)>,
}

impl Request {
    fn path_matches(&self, matcher: &StringMatcher) -> bool {
        let Some(path) = self.headers.get(":path") else {
            return false;
        };
        let end = path
            .iter()
            .position(|&b| b == b'?' || b == b'#')
            .unwrap_or(path.len());
        matcher.matches(path.split_at(end).0)
    }

    fn port(&self) -> Option<u16> {
        self.destination.and_then(|(_, port)| port)
    }
}

impl Permission {
    /// Whether the request matches.
    pub fn matches(&self, request: &Request) -> bool {
        match self {
            Permission::Any => true,
            Permission::Header(header) => request.headers.header_matches(header),
            Permission::UrlPath(matcher) => request.path_matches(matcher),
            Permission::And(rules) => rules.iter().all(|rule| rule.matches(request)),
            Permission::Or(rules) => rules.iter().any(|rule| rule.matches(request)),
            Permission::Not(rule) => !rule.matches(request),
            Permission::DestinationPort(port) => request.port() == Some(*port),
            Permission::DestinationPortRange(start, end) => request
                .port()
                .is_some_and(|port| (*start..*end).contains(&u32::from(port))),
            Permission::DestinationIp(range) => request
                .destination
                .is_some_and(|(ip, _)| range.contains(ip)),
        }
    }
}

impl Principal {
    /// Whether the request matches.
    pub fn matches(&self, request: &Request) -> bool {
        match self {
            Principal::Any => true,
            Principal::Header(header) => request.headers.header_matches(header),
            Principal::UrlPath(matcher) => request.path_matches(matcher),
            Principal::And(ids) => ids.iter().all(|id| id.matches(request)),
            Principal::Or(ids) => ids.iter().any(|id| id.matches(request)),
            Principal::Not(id) => !id.matches(request),
            Principal::DirectRemoteIp(range) => request.peer.is_some_and(|ip| range.contains(ip)),
            Principal::RemoteIp(range) => request.client.is_some_and(|ip| range.contains(ip)),
        }
    }
}

/// An engine's answer for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision<'a> {
    /// Whether the request may pass.
    pub allowed: bool,
    /// The first policy (in name order) that matched, if any: its index and name.
    pub policy: Option<(usize, &'a str)>,
}

impl Engine {
    /// Evaluates the policies against the request, as native `handleAction`.
    pub fn decide(&self, request: &Request) -> Decision<'_> {
        let policy = self
            .policies
            .iter()
            .enumerate()
            .find(|(_, policy)| {
                policy.permissions.iter().any(|p| p.matches(request))
                    && policy.principals.iter().any(|p| p.matches(request))
            })
            .map(|(index, policy)| (index, policy.name.as_str()));
        let allowed = match self.action {
            Action::Allow => policy.is_some(),
            Action::Deny => policy.is_none(),
            Action::Log => true,
        };
        Decision { allowed, policy }
    }
}
