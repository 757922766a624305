//! The rbac differential suite: native `envoy.filters.http.rbac` and our rbac get the same rules
//! in one Envoy, and every request in the table must get the same answer from both: status,
//! body, `content-type`, response code details (`rbac_access_denied_matched_policy[...]`, from
//! the access log), and when it reaches the upstream, the same path and headers. Each case also
//! states the status native answers, so a fixture that stops testing what its name says fails
//! too. The counters of both sides must agree at the end. A case with `wasm` set is a documented
//! difference: it must answer that status and be named in the README.
//!
//! One Envoy runs every variant as a listener pair `native-<variant>` / `wasm-<variant>`; the
//! requests go out concurrently. Clients bind 127.0.0.x (all of 127/8 is loopback on Linux) or
//! `::1` to vary the peer address. A failure lists every diverging case with both sides.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use envoy_harness::config::{filter_wasm, native_filter, wasm_filter, BootstrapBuilder};
use envoy_harness::servers::free_port_below_ephemeral;
use envoy_harness::{EchoUpstream, Envoy, Request, Response};
use serde_json::{json, Value};
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, TcpStream};
use std::os::fd::FromRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Upstream request headers that differ between the listeners of a pair by design.
const IGNORED_UPSTREAM_HEADERS: &[&str] =
    &["x-request-id", "x-envoy-external-address", "x-rbac-case"];

/// The README whose "Differences from native" lists every case of the table with `wasm` set.
const README: &str = include_str!("../../../filters/rbac/README.md");

/// Requests in flight at once.
const PARALLEL_REQUESTS: usize = 8;

// ---------------------------------------------------------------------------------------------
// Variants: one listener pair each.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// ALLOW over every permission and principal kind; both connection managers use the peer
    /// (`use_remote_address: true`).
    Allow,
    /// DENY, with ALLOW shadow rules.
    Deny,
    /// `remote_ip` from `x-forwarded-for`: native's connection manager trusts one hop, ours
    /// keeps the peer and the filter's `xff_num_trusted_hops: 1` does the same.
    Xff,
    /// LOG, with DENY shadow rules: nothing is refused.
    Log,
    /// The same on an IPv6 listener (`::1`).
    Ipv6,
    /// Both connection managers left at their defaults (`use_remote_address: false`).
    DefaultHcm,
}

const VARIANTS: [Variant; 6] = [
    Variant::Allow,
    Variant::Deny,
    Variant::Xff,
    Variant::Log,
    Variant::Ipv6,
    Variant::DefaultHcm,
];

/// A listener's own port and its partner's (the other side of the pair).
#[derive(Debug, Clone, Copy)]
struct Ports {
    own: u16,
    partner: u16,
}

fn cidr(prefix: &str, len: u32) -> Value {
    json!({"address_prefix": prefix, "prefix_len": len})
}

fn path_prefix(prefix: &str) -> Value {
    json!({"url_path": {"path": {"prefix": prefix}}})
}

fn policy(permissions: Value, principals: Value) -> Value {
    json!({"permissions": permissions, "principals": principals})
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Allow => "allow",
            Variant::Deny => "deny",
            Variant::Xff => "xff",
            Variant::Log => "log",
            Variant::Ipv6 => "ipv6",
            Variant::DefaultHcm => "default_hcm",
        }
    }

    /// The filter config, identical for both sides but for the listener's own port.
    fn config(self, ports: Ports) -> Value {
        let any = json!([{"any": true}]);
        let prefix = format!("{}_", self.name());
        match self {
            Variant::Allow => json!({
                "rules_stat_prefix": prefix,
                "rules": {"action": "ALLOW", "policies": {
                    "a-public": policy(json!([{"and_rules": {"rules": [
                        {"header": {"name": ":method", "string_match": {"exact": "GET"}}},
                        path_prefix("/public")]}}]), any.clone()),
                    "b-port": policy(json!([{"and_rules": {"rules": [
                        path_prefix("/port"), {"destination_port": ports.own}]}}]), any.clone()),
                    "c-partner-port": policy(json!([{"and_rules": {"rules": [
                        path_prefix("/partner-port"),
                        {"or_rules": {"rules": [{"destination_port": ports.partner},
                                                {"destination_port_range": {"start": 1, "end": 1024}}]}}]}}]),
                        any.clone()),
                    "d-range": policy(json!([{"and_rules": {"rules": [
                        path_prefix("/range"),
                        {"destination_port_range": {"start": ports.own, "end": u32::from(ports.own) + 1}},
                        {"destination_ip": cidr("127.0.0.0", 8)}]}}]), any.clone()),
                    "e-direct": policy(json!([path_prefix("/direct")]),
                        json!([{"direct_remote_ip": cidr("127.0.0.2", 32)}])),
                    "f-remote": policy(json!([path_prefix("/remote")]),
                        json!([{"remote_ip": cidr("127.0.0.3", 32)}])),
                    "g-joined": policy(json!([{"header": {"name": "x-role", "string_match": {"exact": "a,b"}}}]),
                        any.clone()),
                    "h-inverted": policy(json!([path_prefix("/inverted")]),
                        json!([{"header": {"name": "x-debug", "string_match": {"exact": "1"}, "invert_match": true}}])),
                    "i-absent": policy(json!([path_prefix("/absent")]),
                        json!([{"header": {"name": "x-probe", "present_match": false}}])),
                    "j-ids": policy(json!([path_prefix("/ids")]), json!([
                        {"and_ids": {"ids": [
                            {"header": {"name": "x-user", "present_match": true}},
                            {"not_id": {"header": {"name": "x-user", "string_match": {"exact": "root"}}}}]}},
                        {"or_ids": {"ids": [
                            {"remote_ip": cidr("10.0.0.0", 8)},
                            {"header": {"name": "x-admin", "string_match": {"prefix": "yes", "ignore_case": true}}}]}}])),
                    "k-not": policy(json!([{"and_rules": {"rules": [
                        path_prefix("/not"),
                        {"not_rule": {"header": {"name": ":method", "exact_match": "GET"}}}]}}]), any.clone()),
                    "l-exact": policy(json!([{"url_path": {"path": {"exact": "/exact"}}}]), any.clone()),
                    "m-regex": policy(json!([{"url_path": {"path": {"safe_regex": {"regex": "/items/[0-9]+"}}}}]),
                        json!([{"url_path": {"path": {"suffix": "7"}}}])),
                    "o-not-present": policy(json!([path_prefix("/not-present")]),
                        json!([{"header": {"name": "x-probe", "present_match": true, "invert_match": true}}])),
                    "n-binary": policy(json!([{"header": {"name": "x-bin", "string_match": {"suffix": "tail"}}}]),
                        any.clone())
                }}
            }),
            Variant::Deny => json!({
                "rules_stat_prefix": prefix,
                "shadow_rules_stat_prefix": prefix,
                "rules": {"action": "DENY", "policies": {
                    "blocked-peer": policy(any.clone(), json!([{"direct_remote_ip": cidr("127.0.0.4", 32)}])),
                    "admin": policy(json!([path_prefix("/admin")]),
                        json!([{"not_id": {"header": {"name": "x-role", "string_match": {"exact": "admin"}}}}])),
                    "no-delete": policy(json!([{"header": {"name": ":method", "string_match": {"exact": "DELETE"}}}]),
                        any.clone())
                }},
                "shadow_rules": {"action": "ALLOW", "policies": {
                    "canary": policy(any.clone(), json!([{"header": {"name": "x-canary", "present_match": true}}]))
                }}
            }),
            Variant::Xff => json!({
                "rules_stat_prefix": prefix,
                "rules": {"action": "ALLOW", "policies": {
                    "clients": policy(any.clone(), json!([{"remote_ip": cidr("203.0.113.0", 24)}])),
                    "v6-clients": policy(any.clone(), json!([{"remote_ip": cidr("2001:db8::", 32)}])),
                    "lb": policy(json!([path_prefix("/health")]),
                        json!([{"direct_remote_ip": cidr("127.0.0.5", 32)}])),
                    "not-office": policy(json!([path_prefix("/outside")]),
                        json!([{"not_id": {"remote_ip": cidr("198.51.100.0", 24)}}]))
                }}
            }),
            Variant::Log => json!({
                "rules_stat_prefix": prefix,
                "shadow_rules_stat_prefix": prefix,
                "rules": {"action": "LOG", "policies": {
                    "audit": policy(json!([path_prefix("/audit")]), any.clone())
                }},
                "shadow_rules": {"action": "DENY", "policies": {
                    "would-block": policy(json!([path_prefix("/blocked")]), any.clone())
                }}
            }),
            Variant::DefaultHcm => json!({
                "rules_stat_prefix": prefix,
                "rules": {"action": "ALLOW", "policies": {
                    "direct": policy(json!([path_prefix("/direct")]), json!([{"direct_remote_ip": cidr("203.0.113.0", 24)}])),
                    "remote": policy(json!([path_prefix("/remote")]), json!([{"remote_ip": cidr("203.0.113.0", 24)}]))
                }}
            }),
            Variant::Ipv6 => json!({
                "rules_stat_prefix": prefix,
                "rules": {"action": "ALLOW", "policies": {
                    "loopback": policy(json!([path_prefix("/v6")]), json!([{"direct_remote_ip": cidr("::1", 128)}])),
                    "v4-range": policy(json!([path_prefix("/v4")]), json!([{"remote_ip": cidr("0.0.0.0", 0)}])),
                    "local": policy(json!([{"and_rules": {"rules": [
                        path_prefix("/local"), {"destination_ip": cidr("::1", 128)}]}}]), any.clone())
                }}
            }),
        }
    }

    /// The connection manager settings of each side.
    fn connection_manager(self, native: bool) -> Value {
        match (self, native) {
            (Variant::Xff, true) => json!({"use_remote_address": true, "xff_num_trusted_hops": 1}),
            (Variant::DefaultHcm, _) => json!({}),
            _ => json!({"use_remote_address": true}),
        }
    }

    fn wasm_config(self, ports: Ports) -> Value {
        let mut config = self.config(ports);
        if self == Variant::Xff {
            config["xff_num_trusted_hops"] = json!(1);
        }
        config
    }
}

// ---------------------------------------------------------------------------------------------
// The table.

/// Where a request comes from.
#[derive(Debug, Clone, Copy)]
enum Peer {
    V4(u8),
    V6,
}

struct Case {
    variant: Variant,
    name: &'static str,
    from: Peer,
    request: Request,
    /// The status native answers.
    native: u16,
    /// A documented difference: the status we answer instead (README, "Differences from
    /// native"); `None` when we answer as native does.
    wasm: Option<u16>,
}

fn get(path: &str) -> Request {
    Request::get(path)
}

fn method(method: &str, path: &str) -> Request {
    let mut request = Request::get(path);
    request.method = method.into();
    request
}

fn cases() -> Vec<Case> {
    use Variant::*;
    let local = Peer::V4(1);
    let mut cases = Vec::new();
    let mut case = |variant, name, from, request, native| {
        cases.push(Case {
            variant,
            name,
            from,
            request,
            native,
            wasm: None,
        })
    };
    // ALLOW: every permission kind.
    case(
        Allow,
        "GET /public matches and_rules(header, url_path)",
        local,
        get("/public/x?y=1"),
        200,
    );
    case(
        Allow,
        "POST /public does not",
        local,
        method("POST", "/public/x"),
        403,
    );
    case(Allow, "no policy matches", local, get("/nothing"), 403);
    case(
        Allow,
        "destination_port is the listener's",
        local,
        get("/port"),
        200,
    );
    case(
        Allow,
        "the partner's port and a low range never match",
        local,
        get("/partner-port"),
        403,
    );
    case(
        Allow,
        "destination_port_range and destination_ip",
        local,
        get("/range"),
        200,
    );
    case(
        Allow,
        "url_path exact ignores the query",
        local,
        get("/exact?a=b"),
        200,
    );
    case(
        Allow,
        "url_path exact is not a prefix",
        local,
        get("/exact/more"),
        403,
    );
    case(
        Allow,
        "url_path regex is anchored",
        local,
        get("/items/17"),
        200,
    );
    case(
        Allow,
        "url_path regex with a trailing segment",
        local,
        get("/items/17/x"),
        403,
    );
    case(
        Allow,
        "url_path principal suffix",
        local,
        get("/items/18"),
        403,
    );
    case(
        Allow,
        "not_rule: POST /not",
        local,
        method("POST", "/not"),
        200,
    );
    case(Allow, "not_rule: GET /not", local, get("/not"), 403);
    // Principals.
    case(
        Allow,
        "direct_remote_ip from 127.0.0.2",
        Peer::V4(2),
        get("/direct"),
        200,
    );
    case(
        Allow,
        "direct_remote_ip from 127.0.0.1",
        local,
        get("/direct"),
        403,
    );
    case(
        Allow,
        "direct_remote_ip ignores XFF",
        local,
        get("/direct").header("x-forwarded-for", "127.0.0.2"),
        403,
    );
    case(
        Allow,
        "remote_ip from 127.0.0.3",
        Peer::V4(3),
        get("/remote"),
        200,
    );
    case(
        Allow,
        "remote_ip is the peer without trusted hops",
        local,
        get("/remote").header("x-forwarded-for", "127.0.0.3"),
        403,
    );
    case(
        Allow,
        "and_ids: a user who is not root",
        local,
        get("/ids").header("x-user", "ann"),
        200,
    );
    case(
        Allow,
        "and_ids: root",
        local,
        get("/ids").header("x-user", "root"),
        403,
    );
    case(
        Allow,
        "or_ids: an admin, case-insensitive prefix",
        local,
        get("/ids").header("x-admin", "YES please"),
        200,
    );
    case(Allow, "and_ids/or_ids: nobody", local, get("/ids"), 403);
    // Header matching details.
    case(
        Allow,
        "each value of a repeated header is matched alone",
        local,
        get("/h").header("x-role", "a").header("x-role", "b"),
        403,
    );
    case(
        Allow,
        "any value of a repeated header may match",
        local,
        get("/h").header("x-role", "x").header("x-role", "a,b"),
        200,
    );
    case(
        Allow,
        "one value a,b",
        local,
        get("/h").header("x-role", "a,b"),
        200,
    );
    case(
        Allow,
        "a, b with a space",
        local,
        get("/h").header("x-role", "a, b"),
        403,
    );
    case(Allow, "only a", local, get("/h").header("x-role", "a"), 403);
    case(
        Allow,
        "invert_match with the header absent",
        local,
        get("/inverted"),
        403,
    );
    case(
        Allow,
        "invert_match with another value",
        local,
        get("/inverted").header("x-debug", "0"),
        200,
    );
    case(
        Allow,
        "invert_match with the value",
        local,
        get("/inverted").header("x-debug", "1"),
        403,
    );
    case(
        Allow,
        "invert_match with 1 then 0",
        local,
        get("/inverted")
            .header("x-debug", "1")
            .header("x-debug", "0"),
        403,
    );
    case(
        Allow,
        "invert_match with 0 then 1",
        local,
        get("/inverted")
            .header("x-debug", "0")
            .header("x-debug", "1"),
        403,
    );
    case(
        Allow,
        "invert_match with 0 then 2",
        local,
        get("/inverted")
            .header("x-debug", "0")
            .header("x-debug", "2"),
        200,
    );
    case(
        Allow,
        "present_match false, absent",
        local,
        get("/absent"),
        200,
    );
    case(
        Allow,
        "present_match false, present and empty",
        local,
        get("/absent").header("x-probe", ""),
        403,
    );
    case(
        Allow,
        "inverted present_match, absent",
        local,
        get("/not-present"),
        200,
    );
    case(
        Allow,
        "inverted present_match, present",
        local,
        get("/not-present").header("x-probe", "1"),
        403,
    );
    case(
        Allow,
        "non-UTF-8 bytes before the suffix",
        local,
        get("/b").header("x-bin", b"\xff\xfe\x80tail"),
        200,
    );
    case(
        Allow,
        "non-UTF-8 bytes after it",
        local,
        get("/b").header("x-bin", b"tail\xff"),
        403,
    );
    case(
        Allow,
        "a 60 KB header",
        local,
        get("/b").header("x-bin", [vec![b'a'; 60_000], b"tail".to_vec()].concat()),
        200,
    );
    // DENY and shadow ALLOW.
    case(Deny, "nothing matches: allowed", local, get("/home"), 200);
    case(
        Deny,
        "nothing matches, canary (shadow allowed)",
        local,
        get("/home").header("x-canary", "1"),
        200,
    );
    case(
        Deny,
        "admin without the role",
        local,
        get("/admin/users"),
        403,
    );
    case(
        Deny,
        "admin with the role",
        local,
        get("/admin/users").header("x-role", "admin"),
        200,
    );
    case(
        Deny,
        "admin with the role twice",
        local,
        get("/admin")
            .header("x-role", "admin")
            .header("x-role", "admin"),
        200,
    );
    case(
        Deny,
        "the role after another value",
        local,
        get("/admin")
            .header("x-role", "x")
            .header("x-role", "admin"),
        200,
    );
    case(
        Deny,
        "the role before another value",
        local,
        get("/admin")
            .header("x-role", "admin")
            .header("x-role", "x"),
        200,
    );
    case(
        Deny,
        "two other roles",
        local,
        get("/admin").header("x-role", "x").header("x-role", "y"),
        403,
    );
    case(Deny, "DELETE", local, method("DELETE", "/home"), 403);
    case(Deny, "a blocked peer", Peer::V4(4), get("/home"), 403);
    case(Deny, "another peer", Peer::V4(6), get("/home"), 200);
    // XFF with one trusted hop.
    case(
        Xff,
        "the client from XFF",
        local,
        get("/").header("x-forwarded-for", "203.0.113.7"),
        200,
    );
    case(
        Xff,
        "the client behind one more proxy",
        local,
        get("/").header("x-forwarded-for", "203.0.113.7, 198.51.100.1"),
        403,
    );
    case(
        Xff,
        "the client after a spoofed entry",
        local,
        get("/").header("x-forwarded-for", "198.51.100.1,203.0.113.7"),
        200,
    );
    case(
        Xff,
        "an IPv6 client",
        local,
        get("/").header("x-forwarded-for", "2001:db8::1"),
        200,
    );
    case(
        Xff,
        "an IPv4-mapped client",
        local,
        get("/").header("x-forwarded-for", "::ffff:203.0.113.7"),
        403,
    );
    case(
        Xff,
        "repeated XFF headers",
        local,
        get("/")
            .header("x-forwarded-for", "198.51.100.1")
            .header("x-forwarded-for", "203.0.113.7"),
        200,
    );
    case(
        Xff,
        "repeated XFF headers, client first",
        local,
        get("/")
            .header("x-forwarded-for", "203.0.113.7")
            .header("x-forwarded-for", "198.51.100.1"),
        403,
    );
    case(Xff, "no XFF: the peer", local, get("/"), 403);
    case(
        Xff,
        "XFF ,,,",
        local,
        get("/").header("x-forwarded-for", ",,,"),
        403,
    );
    case(
        Xff,
        "XFF with a trailing comma",
        local,
        get("/").header("x-forwarded-for", "203.0.113.7,"),
        403,
    );
    case(
        Xff,
        "XFF not-an-ip",
        local,
        get("/").header("x-forwarded-for", "not-an-ip"),
        403,
    );
    case(
        Xff,
        "XFF with a port",
        local,
        get("/").header("x-forwarded-for", "203.0.113.7:443"),
        403,
    );
    case(
        Xff,
        "XFF IPv6 in brackets",
        local,
        get("/").header("x-forwarded-for", "[2001:db8::1]"),
        403,
    );
    case(
        Xff,
        "XFF IPv6 in brackets with a port",
        local,
        get("/").header("x-forwarded-for", "[2001:db8::1]:443"),
        403,
    );
    case(
        Xff,
        "XFF with spaces and tabs",
        local,
        get("/").header("x-forwarded-for", "1.1.1.1 ,\t203.0.113.7\t"),
        200,
    );
    case(
        Xff,
        "XFF non-UTF-8",
        local,
        get("/").header("x-forwarded-for", b"\xff203.0.113.7"),
        403,
    );
    case(
        Xff,
        "XFF with 1000 entries",
        local,
        get("/").header(
            "x-forwarded-for",
            (0..1000)
                .map(|i| format!("198.51.{}.{}", i / 250, i % 250))
                .chain(["203.0.113.9".to_string()])
                .collect::<Vec<_>>()
                .join(","),
        ),
        200,
    );
    case(
        Xff,
        "direct_remote_ip is still the peer",
        Peer::V4(5),
        get("/health").header("x-forwarded-for", "192.0.2.1"),
        200,
    );
    case(
        Xff,
        "not_id(remote_ip) from outside",
        local,
        get("/outside").header("x-forwarded-for", "192.0.2.1"),
        200,
    );
    case(
        Xff,
        "not_id(remote_ip) from the office",
        local,
        get("/outside").header("x-forwarded-for", "198.51.100.1"),
        403,
    );
    // LOG never refuses.
    case(Log, "a logged path", local, get("/audit"), 200);
    case(Log, "shadow would block", local, get("/blocked"), 200);
    case(Log, "anything else", local, get("/x"), 200);
    // Default connection manager: the last XFF entry is the client.
    case(
        DefaultHcm,
        "remote_ip from the last XFF entry",
        local,
        get("/remote").header("x-forwarded-for", "203.0.113.7"),
        200,
    );
    case(
        DefaultHcm,
        "remote_ip without XFF",
        local,
        get("/remote"),
        403,
    );
    // IPv6 peers.
    case(Ipv6, "an IPv6 peer", Peer::V6, get("/v6"), 200);
    case(
        Ipv6,
        "an IPv6 peer is not in 0.0.0.0/0",
        Peer::V6,
        get("/v4"),
        403,
    );
    case(Ipv6, "destination_ip ::1", Peer::V6, get("/local"), 200);
    // Without `use_remote_address`, Envoy writes the XFF client into `source.address` too, so a
    // wasm filter cannot see the direct peer.
    cases.push(Case {
        variant: DefaultHcm,
        name: "direct_remote_ip with XFF and use_remote_address: false",
        from: local,
        request: get("/direct").header("x-forwarded-for", "203.0.113.7"),
        native: 403,
        wasm: Some(200),
    });
    cases
}

// ---------------------------------------------------------------------------------------------
// Sending.

/// Connects to `port` from 127.0.0.`host` (or `::1`).
fn connect(from: Peer, port: u16) -> io::Result<TcpStream> {
    let host = match from {
        Peer::V6 => return TcpStream::connect((Ipv6Addr::LOCALHOST, port)),
        Peer::V4(1) => return TcpStream::connect((Ipv4Addr::LOCALHOST, port)),
        Peer::V4(host) => host,
    };
    // std cannot bind before connecting; the socket is owned by the TcpStream at once.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let stream = TcpStream::from_raw_fd(fd);
        let address = |ip: Ipv4Addr, port: u16| libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(ip).to_be(),
            },
            sin_zero: [0; 8],
        };
        let size = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let source = address(Ipv4Addr::new(127, 0, 0, host), 0);
        if libc::bind(fd, (&raw const source).cast(), size) != 0 {
            return Err(io::Error::last_os_error());
        }
        let target = address(Ipv4Addr::LOCALHOST, port);
        if libc::connect(fd, (&raw const target).cast(), size) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(stream)
    }
}

/// `Request::send`, from a chosen source address, with the same authority on both sides of a
/// pair.
fn send(request: &Request, from: Peer, port: u16) -> io::Result<Response> {
    let mut request = request.clone();
    request
        .headers
        .insert(0, ("host".into(), b"rbac.test".to_vec()));
    request.send_on(connect(from, port)?)
}

/// What a client and the upstream saw, in comparable form.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    status: u16,
    content_type: Option<String>,
    /// The local reply body, or for an upstream answer the path and headers it received.
    body: String,
    upstream: Option<Vec<(String, String)>>,
}

fn seen(response: &Response) -> Seen {
    let upstream = (response.status == 200).then(|| {
        response
            .upstream_headers()
            .into_iter()
            .filter(|(name, _)| !IGNORED_UPSTREAM_HEADERS.contains(&name.as_str()))
            .collect()
    });
    let body = if response.status == 200 {
        response.json()["path"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    } else {
        String::from_utf8_lossy(&response.body).into_owned()
    };
    Seen {
        status: response.status,
        content_type: response.header("content-type"),
        body,
        upstream,
    }
}

/// A short rendering for failure messages (a 60 KB header would drown the rest).
fn short(seen: &Seen) -> String {
    let text = format!("{seen:?}");
    if text.len() > 600 {
        format!(
            "{}...",
            &text[..text
                .char_indices()
                .nth(600)
                .map_or(text.len(), |(at, _)| at)]
        )
    } else {
        text
    }
}

fn native(config: &Value) -> Value {
    native_filter("envoy.filters.http.rbac", "rbac.v3.RBAC", config.clone())
}

/// Sets a listener's port, address and connection manager fields in a built bootstrap.
fn patch_listener(bootstrap: &mut Value, name: &str, address: &str, port: u16, hcm: &Value) {
    let listeners = bootstrap["static_resources"]["listeners"]
        .as_array_mut()
        .unwrap();
    let listener = listeners.iter_mut().find(|l| l["name"] == name).unwrap();
    listener["address"]["socket_address"] = json!({"address": address, "port_value": port});
    let manager = &mut listener["filter_chains"][0]["filters"][0]["typed_config"];
    for (key, value) in hcm.as_object().unwrap() {
        manager[key] = value.clone();
    }
}

#[test]
fn native_and_wasm_rbac_agree_on_every_case() {
    let started = Instant::now();
    let upstream = EchoUpstream::start().unwrap();
    let wasm_file = filter_wasm("rbac");
    let mut builder = BootstrapBuilder::new(upstream.port());
    let mut layout = Vec::new();
    for variant in VARIANTS {
        let (native_port, wasm_port) = (free_port_below_ephemeral(), free_port_below_ephemeral());
        let native_ports = Ports {
            own: native_port,
            partner: wasm_port,
        };
        let wasm_ports = Ports {
            own: wasm_port,
            partner: native_port,
        };
        builder = builder
            .listener(
                &format!("native-{}", variant.name()),
                vec![native(&variant.config(native_ports))],
            )
            .listener(
                &format!("wasm-{}", variant.name()),
                vec![wasm_filter(
                    "rbac",
                    &wasm_file,
                    &variant.wasm_config(wasm_ports),
                )],
            );
        layout.push((variant, native_port, wasm_port));
    }
    let mut bootstrap = builder.build();
    // Each side logs `<case> <response code details>`, so the details can be compared too.
    let logs = std::env::temp_dir().join(format!("rbac-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&logs).unwrap();
    let log_file = logs.join("details.log");
    for (variant, native_port, wasm_port) in &layout {
        let address = if *variant == Variant::Ipv6 {
            "::1"
        } else {
            "127.0.0.1"
        };
        for (side, port, is_native) in [("native", native_port, true), ("wasm", wasm_port, false)] {
            let name = format!("{side}-{}", variant.name());
            let mut manager = variant.connection_manager(is_native);
            manager["access_log"] = json!([{
                "name": "envoy.access_loggers.file",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                    "path": log_file.to_string_lossy(),
                    "log_format": {"text_format_source": {
                        "inline_string": "%REQ(X-RBAC-CASE)% %RESPONSE_CODE_DETAILS%\n"}}
                }
            }]);
            patch_listener(&mut bootstrap, &name, address, *port, &manager);
        }
    }
    let envoy = Envoy::start(bootstrap).unwrap();
    let port = |variant: Variant, side: &str| {
        envoy
            .listener_port(&format!("{side}-{}", variant.name()))
            .unwrap_or_else(|| panic!("listener {side}-{}", variant.name()))
    };

    let cases = cases();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Seen, Seen)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL_REQUESTS {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(case) = cases.get(index) else { break };
                let ask = |side: &str| {
                    let request = case
                        .request
                        .clone()
                        .header("x-rbac-case", format!("{side}-{index}"));
                    let response = send(&request, case.from, port(case.variant, side))
                        .unwrap_or_else(|error| panic!("{}: {side}: {error}", case.name));
                    seen(&response)
                };
                let (native, wasm) = (ask("native"), ask("wasm"));
                results.lock().unwrap().push((index, native, wasm));
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(index, _, _)| *index);
    let mut failures = Vec::new();
    for (index, native, wasm) in &results {
        let case = &cases[*index];
        if native.status != case.native {
            failures.push(format!(
                "[{}] {}: native answered {}, the case expects {}\n  native: {}",
                case.variant.name(),
                case.name,
                native.status,
                case.native,
                short(native)
            ));
        }
        if let Some(status) = case.wasm {
            if wasm.status != status || !README.contains(case.name) {
                failures.push(format!(
                    "[{}] {}: a documented difference must answer {status} and be in the README\n  wasm: {}",
                    case.variant.name(), case.name, short(wasm)
                ));
            }
        } else if native != wasm {
            failures.push(format!(
                "[{}] {}: differ\n  native: {}\n  wasm:   {}",
                case.variant.name(),
                case.name,
                short(native),
                short(wasm)
            ));
        }
    }
    // The counters agree: per variant, native `http.native-<v>.rbac.<v>_.<name>` and ours
    // `wasmcustom.rbac.<v>_.<name>`.
    for variant in VARIANTS {
        if cases
            .iter()
            .any(|case| case.variant == variant && case.wasm.is_some())
        {
            continue;
        }
        let shadow = matches!(variant, Variant::Deny | Variant::Log);
        let counters: &[&str] = if shadow {
            &["allowed", "denied", "shadow_allowed", "shadow_denied"]
        } else {
            &["allowed", "denied"]
        };
        for counter in counters {
            let name = format!("{}_.{counter}", variant.name());
            let native = envoy.stat(&format!("http.native-{}.rbac.{name}", variant.name()));
            let wasm = envoy.stat(&format!("wasmcustom.rbac.{name}"));
            if native.is_none() || native != wasm {
                failures.push(format!("counter {name}: native {native:?}, wasm {wasm:?}"));
            }
        }
    }
    // Ours also counts denials per DENY policy; together they are every denial.
    let per_policy: u64 = ["blocked-peer", "admin", "no-delete"]
        .iter()
        .map(|policy| {
            envoy
                .stat(&format!("wasmcustom.rbac.deny_.policy.{policy}.denied"))
                .unwrap_or(0)
        })
        .sum();
    let denied = envoy.stat("wasmcustom.rbac.deny_.denied");
    if denied != Some(per_policy) || per_policy == 0 {
        failures.push(format!(
            "per-policy denials {per_policy} vs deny_.denied {denied:?}"
        ));
    }
    // Envoy writes access logs every 10 s, and at exit: stop it before reading them.
    let envoy_logs = envoy.logs();
    drop(envoy);
    // The response code details agree (`rbac_access_denied_matched_policy[<policy>]`).
    let details = {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let text = std::fs::read_to_string(&log_file).unwrap_or_default();
            let lines: std::collections::HashMap<String, String> = text
                .lines()
                .filter_map(|line| {
                    let (case, details) = line.split_once(' ')?;
                    Some((case.to_string(), details.to_string()))
                })
                .collect();
            if lines.len() >= 2 * cases.len() || Instant::now() > deadline {
                break lines;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let _ = std::fs::remove_dir_all(&logs);
    for (index, case) in cases.iter().enumerate() {
        let (native, wasm) = (
            details.get(&format!("native-{index}")),
            details.get(&format!("wasm-{index}")),
        );
        if case.wasm.is_none() && (native.is_none() || native != wasm) {
            failures.push(format!(
                "[{}] {}: response code details: native {native:?}, wasm {wasm:?}",
                case.variant.name(),
                case.name
            ));
        }
    }
    let sample = results
        .iter()
        .find(|(index, _, _)| cases[*index].native == 403)
        .map(|(_, native, _)| format!("{native:?}"));
    assert!(
        failures.is_empty(),
        "{} of {} cases diverge:\n{}\n(sample native 403: {sample:?})\n--- envoy log ---\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n"),
        envoy_logs
    );
    assert!(results.len() == cases.len());
    eprintln!("{} cases agree in {:?}", cases.len(), started.elapsed());
}
