//! rbac's per-request logic on sdk-ext's fake host: natively, in microseconds, no wasm.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use rbac::filter::RbacRoot;
use sdk_ext::fake::FakeModule;
use sdk_ext::Action;
use serde_json::{json, Value};

fn start(config: Value) -> FakeModule {
    FakeModule::standalone::<RbacRoot>(config.to_string().as_bytes())
        .unwrap_or_else(|error| panic!("{config} should be accepted: {error}"))
}

/// A request from `peer` (`source.address`) with these headers; `Some(details)` when refused.
fn send(module: &mut FakeModule, peer: &str, headers: &[(&str, &[u8])]) -> Option<String> {
    module
        .host()
        .set_property(&["source", "address"], peer.as_bytes());
    let stream = module.stream();
    let action = module.request_headers(stream, headers, true);
    let reply = module.host().local_reply(stream);
    match (action, reply) {
        (Action::Continue, None) => None,
        (Action::Pause, Some(reply)) => {
            assert_eq!(reply.status, 403);
            assert_eq!(reply.body, b"RBAC: access denied");
            assert_eq!(reply.header("content-type").as_deref(), Some("text/plain"));
            Some(reply.details)
        }
        other => panic!("unexpected {other:?}"),
    }
}

fn get(path: &str) -> Vec<(&str, &[u8])> {
    vec![(":method", b"GET"), (":path", path.as_bytes())]
}

fn with<'a>(
    mut headers: Vec<(&'a str, &'a [u8])>,
    extra: &[(&'a str, &'a [u8])],
) -> Vec<(&'a str, &'a [u8])> {
    headers.extend_from_slice(extra);
    headers
}

const PEER: &str = "10.0.0.5:41000";

fn allow(policies: Value) -> Value {
    json!({"rules": {"action": "ALLOW", "policies": policies}})
}

fn metric(module: &FakeModule, name: &str) -> i64 {
    module
        .host()
        .metric(name)
        .unwrap_or_else(|| panic!("{name} is not defined: {:?}", module.host().metric_names()))
}

#[test]
fn allow_lets_matching_requests_through_and_refuses_the_rest_as_native() {
    let mut module = start(allow(json!({
        "readers": {
            "permissions": [{"and_rules": {"rules": [
                {"header": {"name": ":method", "string_match": {"exact": "GET"}}},
                {"url_path": {"path": {"prefix": "/public/"}}}
            ]}}],
            "principals": [{"any": true}]
        }
    })));
    assert_eq!(send(&mut module, PEER, &get("/public/a?x=1")), None);
    assert_eq!(
        send(&mut module, PEER, &get("/private")).as_deref(),
        Some("rbac_access_denied_matched_policy[none]")
    );
    let post = [(":method", &b"POST"[..]), (":path", b"/public/a")];
    assert!(send(&mut module, PEER, &post).is_some());
    assert_eq!(metric(&module, "rbac.allowed"), 1);
    assert_eq!(metric(&module, "rbac.denied"), 2);
    assert_eq!(metric(&module, "rbac.shadow_allowed"), 0);
}

#[test]
fn deny_refuses_what_a_policy_matches_and_names_it() {
    let mut module = start(json!({"rules": {"action": "DENY", "policies": {
        "b-admin": {"permissions": [{"url_path": {"path": {"prefix": "/admin"}}}],
                    "principals": [{"any": true}]},
        "a-blocked net": {"permissions": [{"any": true}],
                    "principals": [{"direct_remote_ip": {"address_prefix": "192.0.2.0", "prefix_len": 24}}]}
    }}}));
    assert_eq!(send(&mut module, PEER, &get("/home")), None);
    assert_eq!(
        send(&mut module, PEER, &get("/admin/x")).as_deref(),
        Some("rbac_access_denied_matched_policy[b-admin]")
    );
    // Both policies match: the first by name decides, its whitespace made `_` as native does.
    assert_eq!(
        send(&mut module, "192.0.2.9:1", &get("/admin")).as_deref(),
        Some("rbac_access_denied_matched_policy[a-blocked_net]")
    );
    assert_eq!(metric(&module, "rbac.denied"), 2);
    assert_eq!(metric(&module, "rbac.allowed"), 1);
    assert_eq!(metric(&module, "rbac.policy.b-admin.denied"), 1);
    assert_eq!(metric(&module, "rbac.policy.a-blocked net.denied"), 1);
}

#[test]
fn log_never_refuses_and_counts_allowed() {
    let mut module = start(json!({"rules": {"action": "LOG", "policies": {
        "all": {"permissions": [{"any": true}], "principals": [{"any": true}]}}}}));
    assert_eq!(send(&mut module, PEER, &get("/")), None);
    assert_eq!(metric(&module, "rbac.allowed"), 1);
    assert_eq!(metric(&module, "rbac.denied"), 0);
}

#[test]
fn shadow_rules_only_count_and_no_rules_let_everything_through_uncounted() {
    let mut module = start(json!({
        "shadow_rules": {"action": "DENY", "policies": {"no-admin": {
            "permissions": [{"url_path": {"path": {"prefix": "/admin"}}}],
            "principals": [{"any": true}]}}},
        "shadow_rules_stat_prefix": "canary_"
    }));
    assert_eq!(send(&mut module, PEER, &get("/admin")), None);
    assert_eq!(send(&mut module, PEER, &get("/x")), None);
    assert_eq!(send(&mut module, PEER, &get("/y")), None);
    assert_eq!(metric(&module, "rbac.canary_.shadow_denied"), 1);
    assert_eq!(metric(&module, "rbac.canary_.shadow_allowed"), 2);
    assert_eq!(
        metric(&module, "rbac.allowed"),
        0,
        "no enforced engine, no count"
    );

    let mut both = start(json!({
        "rules": {"action": "ALLOW", "policies": {"get": {
            "permissions": [{"header": {"name": ":method", "exact_match": "GET"}}],
            "principals": [{"any": true}]}}},
        "shadow_rules": {"action": "ALLOW", "policies": {"none": {
            "permissions": [{"not_rule": {"any": true}}], "principals": [{"any": true}]}}},
        "rules_stat_prefix": "enforced."
    }));
    assert_eq!(send(&mut both, PEER, &get("/")), None);
    assert_eq!(metric(&both, "rbac.enforced.allowed"), 1);
    assert_eq!(metric(&both, "rbac.shadow_denied"), 1);
}

#[test]
fn remote_ip_follows_xff_with_trusted_hops_and_falls_back_to_the_peer() {
    // One trusted hop: Envoy (use_remote_address) appended the peer, so the client is second
    // from the right.
    let mut module = start(json!({
        "xff_num_trusted_hops": 1,
        "rules": {"action": "ALLOW", "policies": {
            "clients": {"permissions": [{"any": true}],
                        "principals": [{"remote_ip": {"address_prefix": "203.0.113.0", "prefix_len": 24}}]},
            "v6": {"permissions": [{"any": true}],
                   "principals": [{"remote_ip": {"address_prefix": "2001:db8::", "prefix_len": 32}}]}
        }}
    }));
    let xff = |value: &'static [u8]| with(get("/"), &[("x-forwarded-for", value)]);
    let allowed = |module: &mut FakeModule, peer: &str, headers: &[(&str, &[u8])]| {
        send(module, peer, headers).is_none()
    };
    assert!(allowed(&mut module, PEER, &xff(b"203.0.113.7, 10.0.0.5")));
    assert!(allowed(
        &mut module,
        PEER,
        &xff(b"198.51.100.1,203.0.113.7,10.0.0.5")
    ));
    assert!(!allowed(
        &mut module,
        PEER,
        &xff(b"203.0.113.7,198.51.100.1,10.0.0.5")
    ));
    assert!(allowed(&mut module, PEER, &xff(b"2001:db8::1,10.0.0.5")));
    // Repeated headers are one list, as Envoy merges them.
    let repeated = with(
        get("/"),
        &[
            ("x-forwarded-for", b"203.0.113.7"),
            ("x-forwarded-for", b"10.0.0.5"),
        ],
    );
    assert!(allowed(&mut module, PEER, &repeated));
    // Too short or malformed: the peer decides.
    for bad in [
        &b"10.0.0.5"[..],
        b",,,",
        b"not-an-ip,10.0.0.5",
        b"[2001:db8::1]:80,10.0.0.5",
        b"203.0.113.7:80,10.0.0.5",
        b"\xff\xfe,10.0.0.5",
        b"",
    ] {
        assert!(
            !allowed(&mut module, PEER, &xff(bad)),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
        assert!(
            allowed(&mut module, "203.0.113.200:1", &xff(bad)),
            "{:?} falls back to the peer",
            String::from_utf8_lossy(bad)
        );
    }
    assert!(allowed(&mut module, "203.0.113.200:1", &get("/")));
    assert!(allowed(&mut module, "[2001:db8::9]:443", &get("/")));
    assert!(
        allowed(&mut module, "[::ffff:203.0.113.1]:5", &get("/")),
        "a mapped peer is IPv4"
    );
    let long: Vec<u8> = (0..1000)
        .map(|i| format!("198.51.{}.{}", i / 256, i % 256))
        .collect::<Vec<_>>()
        .join(",")
        .into_bytes();
    let mut long_ok = long.clone();
    long_ok.extend_from_slice(b",203.0.113.1,10.0.0.5");
    assert!(!allowed(
        &mut module,
        PEER,
        &xff(Box::leak(long.into_boxed_slice()))
    ));
    assert!(allowed(
        &mut module,
        PEER,
        &xff(Box::leak(long_ok.into_boxed_slice()))
    ));
}

#[test]
fn without_trusted_hops_remote_ip_is_the_peer_and_xff_is_ignored() {
    let mut module = start(allow(json!({"p": {"permissions": [{"any": true}],
        "principals": [{"remote_ip": {"address_prefix": "203.0.113.0", "prefix_len": 24}}]}})));
    let spoofed = with(get("/"), &[("x-forwarded-for", b"203.0.113.7")]);
    assert!(send(&mut module, PEER, &spoofed).is_some());
    assert!(send(&mut module, "203.0.113.1:9", &get("/")).is_none());
}

#[test]
fn direct_remote_ip_is_the_peer_even_with_trusted_hops() {
    let mut module = start(
        json!({"xff_num_trusted_hops": 1, "rules": {"action": "ALLOW",
        "policies": {"p": {"permissions": [{"any": true}],
            "principals": [{"direct_remote_ip": {"address_prefix": "10.0.0.0", "prefix_len": 8}}]}}}}),
    );
    let xff = with(get("/"), &[("x-forwarded-for", b"203.0.113.7,10.0.0.5")]);
    assert!(send(&mut module, PEER, &xff).is_none());
    assert!(send(&mut module, "203.0.113.7:1", &xff).is_some());
    // No IP at all (a pipe): an IP principal does not match, its negation does.
    assert!(send(&mut module, "/tmp/envoy.sock", &get("/")).is_some());
    let mut negated = start(allow(json!({"p": {"permissions": [{"any": true}],
        "principals": [{"not_id": {"direct_remote_ip": {"address_prefix": "10.0.0.0", "prefix_len": 8}}}]}})));
    assert!(send(&mut negated, "/tmp/envoy.sock", &get("/")).is_none());
    assert!(send(&mut negated, "garbage", &get("/")).is_none());
    assert!(send(&mut negated, PEER, &get("/")).is_some());
}

#[test]
fn headers_match_as_native_repeated_absent_inverted_and_binary() {
    let mut module = start(allow(json!({
        "each-value": {"permissions": [{"header": {"name": "x-role", "string_match": {"exact": "a,b"}}}],
                   "principals": [{"any": true}]},
        "not-debug": {"permissions": [{"header": {"name": "x-debug", "string_match": {"exact": "1"}, "invert_match": true}}],
                      "principals": [{"header": {"name": "x-team", "present_match": true}}]},
        "absent": {"permissions": [{"header": {"name": "x-probe", "present_match": false}}],
                   "principals": [{"header": {"name": "x-kind", "string_match": {"exact": "probe"}}}]},
        "binary": {"permissions": [{"header": {"name": "x-bin", "string_match": {"suffix": "tail"}}}],
                   "principals": [{"any": true}]}
    })));
    let ok = |module: &mut FakeModule, extra: &[(&str, &[u8])]| {
        send(module, PEER, &with(get("/"), extra)).is_none()
    };
    // Each value of a repeated header is matched alone (native), not the joined list.
    assert!(!ok(&mut module, &[("x-role", b"a"), ("x-role", b"b")]));
    assert!(ok(&mut module, &[("x-role", b"x"), ("x-role", b"a,b")]));
    assert!(ok(&mut module, &[("x-role", b"a,b"), ("x-role", b"x")]));
    assert!(ok(&mut module, &[("x-role", b"a,b")]));
    assert!(!ok(&mut module, &[("x-role", b"a")]));
    assert!(!ok(&mut module, &[("x-role", b"a, b")]));
    // invert_match does not make an absent header match (native).
    assert!(!ok(&mut module, &[("x-team", b"t")]));
    assert!(ok(&mut module, &[("x-team", b"t"), ("x-debug", b"0")]));
    assert!(!ok(&mut module, &[("x-team", b"t"), ("x-debug", b"1")]));
    // invert_match applies after "any value matches": one "1" among the values is enough.
    assert!(!ok(
        &mut module,
        &[("x-team", b"t"), ("x-debug", b"0"), ("x-debug", b"1")]
    ));
    assert!(!ok(
        &mut module,
        &[("x-team", b"t"), ("x-debug", b"1"), ("x-debug", b"0")]
    ));
    assert!(ok(
        &mut module,
        &[("x-team", b"t"), ("x-debug", b"0"), ("x-debug", b"2")]
    ));
    assert!(ok(&mut module, &[("x-kind", b"probe")]));
    assert!(!ok(&mut module, &[("x-kind", b"probe"), ("x-probe", b"")]));
    assert!(ok(&mut module, &[("x-bin", b"\xff\xfe\x80tail")]));
    assert!(!ok(&mut module, &[("x-bin", b"tail\xff")]));
    let huge = vec![b'a'; 256 * 1024];
    let mut huge_tail = huge.clone();
    huge_tail.extend_from_slice(b"tail");
    assert!(!ok(&mut module, &[("x-bin", &huge)]));
    assert!(ok(&mut module, &[("x-bin", &huge_tail)]));
}

#[test]
fn url_path_ignores_query_and_fragment() {
    let mut module = start(allow(json!({"p": {
        "permissions": [{"url_path": {"path": {"exact": "/api/items"}}}],
        "principals": [{"url_path": {"path": {"safe_regex": {"regex": "/api/.*"}}}}]}})));
    assert!(send(&mut module, PEER, &get("/api/items")).is_none());
    assert!(send(&mut module, PEER, &get("/api/items?x=/y")).is_none());
    assert!(send(&mut module, PEER, &get("/api/items#frag")).is_none());
    assert!(send(&mut module, PEER, &get("/api/items/")).is_some());
    assert!(
        send(&mut module, PEER, &[(":method", &b"GET"[..])]).is_some(),
        "no :path"
    );
}

#[test]
fn destination_port_range_and_ip_read_the_local_address() {
    let mut module = start(allow(json!({
        "port": {"permissions": [{"destination_port": 8443}], "principals": [{"any": true}]},
        "range": {"permissions": [{"and_rules": {"rules": [
            {"destination_port_range": {"start": 9000, "end": 9100}},
            {"destination_ip": {"address_prefix": "127.0.0.0", "prefix_len": 8}}]}}],
            "principals": [{"any": true}]}
    })));
    let at = |module: &mut FakeModule, local: &str| {
        module
            .host()
            .set_property(&["destination", "address"], local.as_bytes());
        send(module, PEER, &get("/")).is_none()
    };
    assert!(at(&mut module, "10.1.1.1:8443"));
    assert!(at(&mut module, "[::1]:8443"));
    assert!(!at(&mut module, "10.1.1.1:8444"));
    assert!(at(&mut module, "127.0.0.1:9000"));
    assert!(at(&mut module, "127.0.0.1:9099"));
    assert!(!at(&mut module, "127.0.0.1:9100"));
    assert!(!at(&mut module, "10.0.0.1:9000"));
    assert!(!at(&mut module, "/tmp/sock"));
}

#[test]
fn or_and_not_nest() {
    let mut module = start(allow(json!({"p": {
        "permissions": [{"or_rules": {"rules": [
            {"url_path": {"path": {"prefix": "/a"}}},
            {"not_rule": {"or_rules": {"rules": [
                {"url_path": {"path": {"prefix": "/b"}}},
                {"url_path": {"path": {"prefix": "/c"}}}]}}}]}}],
        "principals": [{"and_ids": {"ids": [
            {"header": {"name": "x-user", "present_match": true}},
            {"not_id": {"header": {"name": "x-user", "string_match": {"exact": "root"}}}}]}},
            {"or_ids": {"ids": [{"header": {"name": "x-admin", "present_match": true}}]}}]}})));
    let user: &[(&str, &[u8])] = &[("x-user", b"ann")];
    assert!(send(&mut module, PEER, &with(get("/a"), user)).is_none());
    assert!(send(&mut module, PEER, &with(get("/d"), user)).is_none());
    assert!(send(&mut module, PEER, &with(get("/b"), user)).is_some());
    assert!(send(&mut module, PEER, &with(get("/c"), user)).is_some());
    assert!(send(&mut module, PEER, &with(get("/a"), &[("x-user", b"root")])).is_some());
    assert!(send(&mut module, PEER, &with(get("/a"), &[("x-admin", b"")])).is_none());
    assert!(send(&mut module, PEER, &get("/a")).is_some());
}

#[test]
fn allow_with_no_policies_refuses_everything_and_deny_with_none_refuses_nothing() {
    let mut module = start(json!({"rules": {}}));
    assert!(send(&mut module, PEER, &get("/")).is_some());
    let mut module = start(json!({"rules": {"action": 1}}));
    assert!(send(&mut module, PEER, &get("/")).is_none());
    let mut module = start(json!({}));
    assert!(send(&mut module, PEER, &get("/")).is_none());
}

#[test]
fn a_host_failure_fails_closed() {
    let mut module = start(allow(json!({"p": {"permissions": [{"any": true}],
        "principals": [{"header": {"name": "x-user", "present_match": true}}]}})));
    module.host().fail("get_header_map_pairs");
    let details = send(&mut module, PEER, &with(get("/"), &[("x-user", b"ann")]));
    assert_eq!(
        details.as_deref(),
        Some("rbac_access_denied_matched_policy[none]")
    );
    module.host().recover("get_header_map_pairs");
    assert!(send(&mut module, PEER, &with(get("/"), &[("x-user", b"ann")])).is_none());

    let mut by_ip = start(allow(json!({"p": {"permissions": [{"any": true}],
        "principals": [{"remote_ip": {"address_prefix": "10.0.0.0", "prefix_len": 8}}]}})));
    by_ip.host().fail("get_property");
    assert!(send(&mut by_ip, PEER, &get("/")).is_some());
    // Only what the policies need is read: a path-only policy survives a property failure.
    let mut by_path = start(allow(
        json!({"p": {"permissions": [{"url_path": {"path": {"prefix": "/"}}}],
        "principals": [{"any": true}]}}),
    ));
    by_path.host().fail("get_property");
    assert!(send(&mut by_path, PEER, &get("/")).is_none());
}

/// Configurations each reader must refuse: (config, field path, part of the reason).
fn bad_configs() -> Vec<(Value, &'static str, &'static str)> {
    let policy = |permission: Value, principal: Value| json!({"rules": {"policies": {"p": {"permissions": [permission], "principals": [principal]}}}});
    let any = json!({"any": true});
    vec![
        (json!({"rule": {}}), "rule", "unknown field"),
        (
            json!({"rules": {"action": "BLOCK"}}),
            "rules.action",
            "ALLOW, DENY or LOG",
        ),
        (
            json!({"rules": {"action": 3}}),
            "rules.action",
            "ALLOW, DENY or LOG",
        ),
        (json!({"matcher": {}}), "matcher", "not supported"),
        (
            json!({"rules": {"policies": {"p": {"principals": [{"any": true}]}}}}),
            "rules.policies.p.permissions",
            "at least one",
        ),
        (
            json!({"rules": {"policies": {"p": {"permissions": [{"any": true}]}}}}),
            "rules.policies.p.principals",
            "at least one",
        ),
        (
            json!({"rules": {"policies": {"p": {"permissions": [{"any": true}], "principals": [{"any": true}],
            "condition": {}}}}}),
            "rules.policies.p.condition",
            "not supported",
        ),
        (
            policy(json!({"any": false}), any.clone()),
            "rules.policies.p.permissions[0].any",
            "must be true",
        ),
        (
            policy(json!({"metadata": {}}), any.clone()),
            "rules.policies.p.permissions[0].metadata",
            "not supported",
        ),
        (
            policy(json!({"anything": {}}), any.clone()),
            "rules.policies.p.permissions[0].anything",
            "unknown field",
        ),
        (
            policy(json!({}), any.clone()),
            "rules.policies.p.permissions[0]",
            "needs one of any, header",
        ),
        (
            policy(any.clone(), json!({"authenticated": {}})),
            "rules.policies.p.principals[0].authenticated",
            "not supported",
        ),
        (
            policy(
                any.clone(),
                json!({"or_ids": {"ids": [{"not_id": {"authenticated": {}}}]}}),
            ),
            "rules.policies.p.principals[0].or_ids.ids[0].not_id.authenticated",
            "not supported",
        ),
        (
            policy(any.clone(), json!({"or_ids": {"ids": []}})),
            "rules.policies.p.principals[0].or_ids.ids",
            "at least one",
        ),
        (
            policy(
                json!({"and_rules": {"rules": [{"header": {"name": "x y", "present_match": true}}]}}),
                any.clone(),
            ),
            "rules.policies.p.permissions[0].and_rules.rules[0].header.name",
            "valid header name",
        ),
        (
            policy(json!({"header": {"name": "x"}}), any.clone()),
            "rules.policies.p.permissions[0].header",
            "needs one of",
        ),
        (
            policy(
                json!({"url_path": {"path": {"safe_regex": {"regex": "("}}}}),
                any.clone(),
            ),
            "rules.policies.p.permissions[0].url_path.path.safe_regex.regex",
            "invalid regex",
        ),
        (
            policy(json!({"destination_port": 70000}), any.clone()),
            "rules.policies.p.permissions[0].destination_port",
            "above 65535",
        ),
        (
            policy(
                json!({"destination_port_range": {"start": 10, "end": 10}}),
                any.clone(),
            ),
            "rules.policies.p.permissions[0].destination_port_range.end",
            "above start",
        ),
        (
            policy(
                json!({"destination_port_range": {"start": -1, "end": 10}}),
                any.clone(),
            ),
            "rules.policies.p.permissions[0].destination_port_range.start",
            "between",
        ),
        (
            policy(
                any.clone(),
                json!({"remote_ip": {"address_prefix": "10.0.0.0/8"}}),
            ),
            "rules.policies.p.principals[0].remote_ip.address_prefix",
            "not an IPv4 or IPv6",
        ),
        (
            policy(
                any.clone(),
                json!({"direct_remote_ip": {"address_prefix": "10.0.0.0", "prefix_len": 40}}),
            ),
            "rules.policies.p.principals[0].direct_remote_ip.prefix_len",
            "longer than",
        ),
        (
            json!({"shadow_rules": {"policies": {"s": {"permissions": [{"any": true}], "principals": [{"source_ip": {}}]}}}}),
            "shadow_rules.policies.s.principals[0].source_ip",
            "not supported",
        ),
        (
            json!({"rules_stat_prefix": "a b"}),
            "rules_stat_prefix",
            "may hold only",
        ),
        (
            json!({"xff_num_trusted_hops": -1}),
            "xff_num_trusted_hops",
            "invalid value",
        ),
        (
            json!({"rules": {"policies": {"p": {"permissions": [{"any": true}], "principals": [{"any": true}]}}},
            "rules_stat_prefix": 7}),
            "rules_stat_prefix",
            "invalid type",
        ),
        (
            json!({"rules": {"policies": []}}),
            "rules.policies",
            "invalid type",
        ),
        (
            json!({"rules": {"policies": {"p": {"permissions": {"any": true}, "principals": [{"any": true}]}}}}),
            "rules.policies.p.permissions",
            "invalid type",
        ),
        (
            policy(
                json!({"header": {"string_match": {"exact": "x"}}}),
                any.clone(),
            ),
            "rules.policies.p.permissions[0].header",
            "missing field `name`",
        ),
        (
            policy(
                json!({"url_path": {"path": {"exact": "/", "ignore_case": "yes"}}}),
                any.clone(),
            ),
            "rules.policies.p.permissions[0].url_path.path.ignore_case",
            "invalid type",
        ),
        (
            policy(json!({"destination_ip": {"prefix_len": 8}}), any.clone()),
            "rules.policies.p.permissions[0].destination_ip",
            "missing field `address_prefix`",
        ),
        (
            policy(json!({"destination_port": 1.5}), any.clone()),
            "rules.policies.p.permissions[0].destination_port",
            "invalid",
        ),
        (
            policy(json!({"any": true, "destination_port": 80}), any.clone()),
            "rules.policies.p.permissions[0]",
            "not any and destination_port",
        ),
    ]
}

/// Configurations the filter accepts.
fn good_configs() -> Vec<Value> {
    vec![
        json!({}),
        json!({"rules": null, "shadow_rules": {}}),
        json!({"rules": {"action": "LOG"}, "rules_stat_prefix": "a.", "xff_num_trusted_hops": 3}),
        json!({"rules": {"action": 1, "policies": {"p": {
            "permissions": [{"and_rules": {"rules": [{"not_rule": {"url_path": {"path": {"safe_regex": {"regex": "/a.*"}}}}}]}},
                            {"or_rules": {"rules": [{"destination_port": 80}, {"destination_port_range": {"start": 1, "end": 2}}]}},
                            {"destination_ip": {"address_prefix": "::", "prefix_len": 0}},
                            {"header": {"name": "x", "safe_regex_match": {"regex": "a+"}, "invert_match": true,
                                        "treat_missing_header_as_empty": true}}],
            "principals": [{"and_ids": {"ids": [{"not_id": {"remote_ip": {"address_prefix": "10.0.0.0", "prefix_len": 8}}}]}},
                           {"or_ids": {"ids": [{"direct_remote_ip": {"address_prefix": "2001:db8::"}}]}},
                           {"url_path": {"path": {"suffix": "x", "ignore_case": true}}},
                           {"header": {"name": ":authority", "present_match": false}}]}}}}),
    ]
}

#[test]
fn a_bad_config_is_refused_at_its_field_path() {
    // serde would take a list for the top-level object; the filter does not.
    let error = FakeModule::standalone::<RbacRoot>(b"[]")
        .err()
        .expect("refused");
    assert!(error.reason.contains("must be a JSON object"), "{error}");
    for (config, path, reason) in bad_configs() {
        let error = FakeModule::standalone::<RbacRoot>(config.to_string().as_bytes())
            .err()
            .unwrap_or_else(|| panic!("{config} should be refused"));
        assert_eq!(error.path, path, "{config}: {error}");
        assert!(error.reason.contains(reason), "{config}: {error}");
    }
}

#[test]
fn good_configs_load() {
    for config in good_configs() {
        let loaded = rbac::config::load(config.to_string().as_bytes());
        assert!(loaded.is_ok(), "{config}: {:?}", loaded.err());
    }
}

/// The Istio example (istio/rbac/deploy.json) loads, and it behaves.
#[test]
fn the_istio_example_config_loads_and_decides() {
    let deploy: Value =
        serde_json::from_str(include_str!("../../../istio/rbac/deploy.json")).unwrap();
    let config = deploy["plugin_config"].to_string();
    assert!(sdk_ext::config::load::<rbac::config::RbacConfig>(config.as_bytes()).is_ok());
    let mut module = start(deploy["plugin_config"].clone());
    assert!(send(&mut module, "10.1.2.3:5", &get("/anything")).is_none());
    assert!(send(&mut module, "10.1.2.3:5", &get("/admin/x")).is_some());
    assert!(send(&mut module, "192.0.2.1:5", &get("/status/200")).is_none());
    assert!(send(
        &mut module,
        "192.0.2.1:5",
        &with(get("/admin"), &[("x-role", b"operator")])
    )
    .is_none());
    assert!(send(&mut module, "192.0.2.1:5", &get("/anything")).is_some());
}
