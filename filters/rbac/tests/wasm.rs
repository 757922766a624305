//! rbac's built module (`make build` writes
//! target/filters/rbac.wasm) driven through test-host, as Envoy would run it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::{json, Value};
use test_host::{filter_wasm, Action, Error, HttpStream, Plugin, TestHost};

fn start(host: &TestHost, config: Value) -> Plugin {
    host.plugin(filter_wasm("rbac"))
        .config(config.clone())
        .start()
        .unwrap_or_else(|error| panic!("{config} should start: {error}"))
}

/// What happened to one request.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// It reached the upstream with exactly the headers it was sent with.
    Forwarded,
    /// It got native's 403; the details name the policy.
    Refused(String),
}

fn send(plugin: &Plugin, peer: Option<&str>, headers: &[(&str, &[u8])]) -> Outcome {
    let mut stream: HttpStream = plugin.http_stream().unwrap();
    if let Some(peer) = peer {
        stream.set_property(&["source", "address"], peer.as_bytes());
    }
    let action = stream.send_request_headers(headers, true).unwrap();
    let outcome = match stream.local_response() {
        None => {
            assert_eq!(action, Action::Continue);
            let upstream = stream.upstream_request();
            let forwarded = upstream.headers.expect("the upstream got the headers");
            let sent: Vec<(Vec<u8>, Vec<u8>)> = headers
                .iter()
                .map(|(name, value)| (name.as_bytes().to_vec(), value.to_vec()))
                .collect();
            assert_eq!(
                forwarded.entries(),
                sent.as_slice(),
                "headers are untouched"
            );
            Outcome::Forwarded
        }
        Some(reply) => {
            assert_eq!(action, Action::Pause);
            assert!(
                stream.upstream_request().headers.is_none(),
                "never reached upstream"
            );
            assert_eq!(reply.status, 403);
            assert_eq!(reply.body, b"RBAC: access denied");
            let client = stream.client_response();
            assert_eq!(client.status(), Some(403));
            assert_eq!(client.header("content-type").as_deref(), Some("text/plain"));
            assert_eq!(client.header("content-length").as_deref(), Some("19"));
            assert_eq!(client.body, b"RBAC: access denied");
            Outcome::Refused(reply.details)
        }
    };
    stream.end().unwrap();
    assert!(plugin.failure().is_none(), "{:?}", plugin.failure());
    outcome
}

fn get(path: &str) -> Vec<(&str, &[u8])> {
    vec![
        (":method", &b"GET"[..]),
        (":path", path.as_bytes()),
        (":authority", b"example.com"),
    ]
}

fn plus<'a>(
    mut headers: Vec<(&'a str, &'a [u8])>,
    extra: &[(&'a str, &'a [u8])],
) -> Vec<(&'a str, &'a [u8])> {
    headers.extend_from_slice(extra);
    headers
}

const NONE: &str = "rbac_access_denied_matched_policy[none]";

#[test]
fn allow_and_deny_engines_with_every_permission_kind() {
    let host = TestHost::new();
    let plugin = start(
        &host,
        json!({
            "rules_stat_prefix": "front_",
            "rules": {"action": "ALLOW", "policies": {
                "api": {"permissions": [{"and_rules": {"rules": [
                            {"url_path": {"path": {"prefix": "/api/", "ignore_case": true}}},
                            {"header": {"name": ":method", "string_match": {"safe_regex": {"regex": "GET|HEAD"}}}},
                            {"not_rule": {"header": {"name": "x-debug", "present_match": true}}}]}}],
                        "principals": [{"any": true}]},
                "port": {"permissions": [{"or_rules": {"rules": [
                            {"destination_port": 10000},
                            {"destination_port_range": {"start": 20000, "end": 20010}}]}}],
                         "principals": [{"header": {"name": "x-token", "string_match": {"exact": "t"}}}]},
                "local": {"permissions": [{"destination_ip": {"address_prefix": "::1", "prefix_len": 128}}],
                          "principals": [{"any": true}]}
            }}
        }),
    );
    assert_eq!(
        send(&plugin, None, &get("/API/items?x=1")),
        Outcome::Forwarded
    );
    assert_eq!(
        send(&plugin, None, &get("/other")),
        Outcome::Refused(NONE.into())
    );
    assert_eq!(
        send(&plugin, None, &plus(get("/api/x"), &[("x-debug", b"1")])),
        Outcome::Refused(NONE.into())
    );
    // test-host's destination.address is 127.0.0.1:10000.
    assert_eq!(
        send(&plugin, None, &plus(get("/other"), &[("x-token", b"t")])),
        Outcome::Forwarded
    );
    assert_eq!(host.counter("rbac.front_.allowed"), Some(2));
    assert_eq!(host.counter("rbac.front_.denied"), Some(2));

    let host = TestHost::new();
    let plugin = start(
        &host,
        json!({"rules": {"action": "DENY", "policies": {
            "admin": {"permissions": [{"url_path": {"path": {"prefix": "/admin"}}}],
                      "principals": [{"not_id": {"header": {"name": "x-role", "string_match": {"exact": "admin"}}}}]}
        }}}),
    );
    assert_eq!(
        send(&plugin, None, &get("/admin/users")),
        Outcome::Refused("rbac_access_denied_matched_policy[admin]".into())
    );
    assert_eq!(
        send(
            &plugin,
            None,
            &plus(get("/admin/users"), &[("x-role", b"admin")])
        ),
        Outcome::Forwarded
    );
    // A repeated header matches when any one value does, as native: "x" then "admin" is admin.
    assert_eq!(
        send(
            &plugin,
            None,
            &plus(get("/admin"), &[("x-role", b"x"), ("x-role", b"admin")])
        ),
        Outcome::Forwarded
    );
    assert_eq!(
        send(
            &plugin,
            None,
            &plus(get("/admin"), &[("x-role", b"x"), ("x-role", b"y")])
        ),
        Outcome::Refused("rbac_access_denied_matched_policy[admin]".into())
    );
    assert_eq!(send(&plugin, None, &get("/public")), Outcome::Forwarded);
    assert_eq!(host.counter("rbac.policy.admin.denied"), Some(2));
    assert_eq!(host.counter("rbac.denied"), Some(2));
    assert_eq!(host.counter("rbac.allowed"), Some(3));
}

#[test]
fn remote_ip_from_trusted_xff_and_direct_remote_ip_from_the_peer() {
    let host = TestHost::new();
    let plugin = start(
        &host,
        json!({
            "xff_num_trusted_hops": 2,
            "rules": {"action": "ALLOW", "policies": {
                "office": {"permissions": [{"any": true}],
                           "principals": [{"remote_ip": {"address_prefix": "198.51.100.0", "prefix_len": 24}}]},
                "v6": {"permissions": [{"any": true}],
                       "principals": [{"remote_ip": {"address_prefix": "2001:db8::", "prefix_len": 48}}]},
                "lb": {"permissions": [{"url_path": {"path": {"exact": "/health"}}}],
                       "principals": [{"direct_remote_ip": {"address_prefix": "10.9.0.0", "prefix_len": 16}}]}
            }}
        }),
    );
    let peer = Some("10.9.0.1:5000");
    let xff = |value: &'static [u8]| plus(get("/"), &[("x-forwarded-for", value)]);
    assert_eq!(
        send(&plugin, peer, &xff(b"198.51.100.4, 10.1.1.1, 10.9.0.1")),
        Outcome::Forwarded
    );
    assert_eq!(
        send(&plugin, peer, &xff(b"2001:db8:0:1::5,10.1.1.1,10.9.0.1")),
        Outcome::Forwarded
    );
    assert_eq!(
        send(
            &plugin,
            peer,
            &xff(b"198.51.100.4,10.1.1.1,10.2.2.2,10.9.0.1")
        ),
        Outcome::Refused(NONE.into()),
        "the client is the third from the right"
    );
    for garbage in [
        &b",,,"[..],
        b"not-an-ip",
        b"198.51.100.4",
        b"198.51.100.4,10.9.0.1",
        b"[2001:db8::1],10.1.1.1,10.9.0.1",
        b"[2001:db8::1]:443,10.1.1.1,10.9.0.1",
        b"198.51.100.4:80,10.1.1.1,10.9.0.1",
        b"\xc3\x28,10.1.1.1,10.9.0.1",
    ] {
        assert_eq!(
            send(&plugin, peer, &xff(garbage)),
            Outcome::Refused(NONE.into()),
            "{:?}",
            String::from_utf8_lossy(garbage)
        );
        assert_eq!(
            send(&plugin, Some("198.51.100.77:1"), &xff(garbage)),
            Outcome::Forwarded,
            "{:?} falls back to the peer",
            String::from_utf8_lossy(garbage)
        );
    }
    let many: &'static [u8] = Box::leak(
        (0..1000)
            .map(|i| format!("203.0.{}.{}", i % 250, i % 200))
            .chain(["198.51.100.1".into(), "10.1.1.1".into(), "10.9.0.1".into()])
            .collect::<Vec<_>>()
            .join(", ")
            .into_bytes()
            .into_boxed_slice(),
    );
    assert_eq!(send(&plugin, peer, &xff(many)), Outcome::Forwarded);
    assert_eq!(
        send(&plugin, Some("[2001:db8::2]:443"), &get("/")),
        Outcome::Forwarded
    );
    assert_eq!(
        send(&plugin, Some("[::ffff:198.51.100.9]:443"), &get("/")),
        Outcome::Forwarded
    );
    assert_eq!(send(&plugin, peer, &get("/health")), Outcome::Forwarded);
    assert_eq!(
        send(
            &plugin,
            Some("10.8.0.1:5000"),
            &xff(b"10.9.0.1,10.9.0.1,10.9.0.1")
        ),
        Outcome::Refused(NONE.into()),
        "direct_remote_ip ignores XFF"
    );
}

#[test]
fn shadow_rules_count_without_refusing() {
    let host = TestHost::new();
    let plugin = start(
        &host,
        json!({
            "shadow_rules_stat_prefix": "next_",
            "shadow_rules": {"action": "ALLOW", "policies": {"get-only": {
                "permissions": [{"header": {"name": ":method", "exact_match": "GET"}}],
                "principals": [{"any": true}]}}}
        }),
    );
    let post = [(":method", &b"POST"[..]), (":path", b"/")];
    assert_eq!(send(&plugin, None, &get("/")), Outcome::Forwarded);
    assert_eq!(send(&plugin, None, &post), Outcome::Forwarded);
    assert_eq!(send(&plugin, None, &post), Outcome::Forwarded);
    assert_eq!(host.counter("rbac.next_.shadow_allowed"), Some(1));
    assert_eq!(host.counter("rbac.next_.shadow_denied"), Some(2));
    assert_eq!(host.counter("rbac.allowed"), Some(0));
}

#[test]
fn malformed_and_huge_header_values_never_trap() {
    let host = TestHost::new();
    let plugin = start(
        &host,
        json!({"rules": {"action": "ALLOW", "policies": {"p": {
            "permissions": [{"header": {"name": "x-v", "string_match": {"contains": "ok"}}}],
            "principals": [{"not_id": {"header": {"name": "x-v", "string_match": {"prefix": "\u{fffd}"}}}},
                           {"header": {"name": "x-v", "string_match": {"suffix": "ok", "ignore_case": true}}}]}}}}),
    );
    let huge = [vec![b'\xff'; 60_000], b"ok".to_vec()].concat();
    let huge: &'static [u8] = Box::leak(huge.into_boxed_slice());
    // Invalid UTF-8 around a match: the valid part still matches.
    assert_eq!(
        send(&plugin, None, &plus(get("/"), &[("x-v", huge)])),
        Outcome::Forwarded
    );
    assert_eq!(
        send(&plugin, None, &plus(get("/"), &[("x-v", b"\x80\x81 OK")])),
        Outcome::Refused(NONE.into())
    );
    assert_eq!(
        send(&plugin, None, &plus(get("/"), &[("x-v", b"\x80\x81 ok")])),
        Outcome::Forwarded
    );
    assert_eq!(
        send(&plugin, None, &plus(get("/"), &[("x-v", b"it is ok")])),
        Outcome::Forwarded
    );
    assert_eq!(
        send(&plugin, None, &plus(get("/"), &[("x-v", b"")])),
        Outcome::Refused(NONE.into())
    );
    assert_eq!(
        send(&plugin, Some("garbage"), &plus(get("/"), &[("x-v", b"ok")])),
        Outcome::Forwarded
    );
}

#[test]
fn bad_configs_are_refused_with_their_field_path() {
    for (config, path) in [
        (json!({"rules": {"action": "AUDIT"}}), "rules.action"),
        (
            json!({"rules": {"policies": {"p": {"permissions": [{"any": true}],
                "principals": [{"authenticated": {"principal_name": {"exact": "x"}}}]}}}}),
            "rules.policies.p.principals[0].authenticated",
        ),
        (
            json!({"rules": {"policies": {"p": {"permissions": [{"any": true}],
                "principals": [{"remote_ip": {"address_prefix": "10.0.0.300", "prefix_len": 8}}]}}}}),
            "rules.policies.p.principals[0].remote_ip.address_prefix",
        ),
        (
            json!({"shadow_rules": {"policies": {"p": {"permissions": [{"not_rule": {"requested_server_name": {}}}],
                "principals": [{"any": true}]}}}}),
            "shadow_rules.policies.p.permissions[0].not_rule.requested_server_name",
        ),
        (
            json!({"rules": {"policies": {"p": {}}}}),
            "rules.policies.p.permissions",
        ),
        (json!({"xff_num_trusted_hops": "1"}), "xff_num_trusted_hops"),
    ] {
        let error = TestHost::new()
            .plugin(filter_wasm("rbac"))
            .config(config.clone())
            .start()
            .err()
            .unwrap_or_else(|| panic!("{config} should be refused"));
        match error {
            Error::Rejected { logs, .. } => assert!(
                logs.iter()
                    .any(|line| line.contains(&format!("invalid configuration at {path}:"))),
                "{config}: {logs:?}"
            ),
            other => panic!("{config}: expected a rejection, got {other}"),
        }
    }
}
