//! basic-auth's per-request logic on sdk-ext's fake host: natively, in microseconds, no wasm.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod fixtures;

use basic_auth::filter::BasicAuthRoot;
use fixtures::*;
use sdk_ext::fake::{FakeModule, LocalReply};
use sdk_ext::types::MapType;
use sdk_ext::Action;
use serde_json::{json, Value};

fn start(config: Value) -> FakeModule {
    FakeModule::standalone::<BasicAuthRoot>(config.to_string().as_bytes())
        .unwrap_or_else(|error| panic!("{config} should be accepted: {error}"))
}

fn config() -> Value {
    json!({"users": {"inline_string": htpasswd()}, "forward_username_header": "x-username"})
}

/// What one request got: `Ok(upstream request headers)` or `Err(local reply)`.
fn send(
    module: &mut FakeModule,
    headers: &[(&str, &[u8])],
) -> Result<Vec<(String, String)>, LocalReply> {
    let stream = module.stream();
    let mut all: Vec<(&str, &[u8])> = vec![
        (":method", b"GET"),
        (":path", b"/api/items?x=1"),
        (":authority", b"api.example"),
        ("x-forwarded-proto", b"https"),
    ];
    all.extend_from_slice(headers);
    let action = module.request_headers(stream, &all, true);
    match module.host().local_reply(stream) {
        Some(reply) => {
            assert_eq!(action, Action::Pause);
            Err(reply)
        }
        None => {
            assert_eq!(action, Action::Continue);
            Ok(module
                .host()
                .headers(stream, MapType::HttpRequestHeaders)
                .into_iter()
                .map(|(k, v)| {
                    (
                        String::from_utf8_lossy(&k).into_owned(),
                        String::from_utf8_lossy(&v).into_owned(),
                    )
                })
                .collect())
        }
    }
}

fn values<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

fn assert_denied(reply: &LocalReply, body: &str, details: &str) {
    assert_eq!(reply.status, 401);
    assert_eq!(String::from_utf8_lossy(&reply.body), body);
    assert_eq!(reply.details, details);
    assert_eq!(
        reply.header("www-authenticate").as_deref(),
        Some("Basic realm=\"https://api.example/api/items?x=1\"")
    );
    // Envoy adds `content-type: text/plain` to a local reply with a body, as for native.
    assert_eq!(reply.header("content-type"), None);
}

fn metric(module: &FakeModule, name: &str) -> i64 {
    module
        .host()
        .metric(&format!("basic_auth.{name}"))
        .unwrap_or_else(|| panic!("no metric {name}"))
}

#[test]
fn a_valid_sha_credential_passes_with_the_user_name_forwarded() {
    let mut module = start(config());
    let credential = basic("user1", "test1");
    let upstream = send(
        &mut module,
        &[
            ("authorization", credential.as_bytes()),
            ("x-username", b"admin"),
            ("x-username", b"root"),
        ],
    )
    .unwrap();
    // The client's user names are replaced by the verified one; the credential stays, as native.
    assert_eq!(values(&upstream, "x-username"), ["user1"]);
    assert_eq!(values(&upstream, "authorization"), [credential.as_str()]);
    assert_eq!(metric(&module, "allowed"), 1);
    assert_eq!(metric(&module, "denied"), 0);
    let user2 = basic("user2", "test2");
    assert!(send(&mut module, &[("authorization", user2.as_bytes())]).is_ok());
    assert_eq!(metric(&module, "allowed"), 2);
}

/// A refused request: name, headers, native's body and response code details.
type RefusalCase = (
    &'static str,
    Vec<(&'static str, Vec<u8>)>,
    &'static str,
    &'static str,
);

#[test]
fn every_refusal_has_natives_body_details_and_reason() {
    let mut module = start(config());
    let long = format!("Basic {}", "QUFB".repeat(15_000));
    let cases: Vec<RefusalCase> = vec![
        ("no header", vec![], MISSING, "no_credential_for_basic_auth"),
        (
            "empty header",
            vec![("authorization", vec![])],
            SCHEME,
            "invalid_scheme_for_basic_auth",
        ),
        (
            "lower-case scheme",
            vec![(
                "authorization",
                basic("user1", "test1").replace("Basic", "basic").into(),
            )],
            SCHEME,
            "invalid_scheme_for_basic_auth",
        ),
        (
            "bearer",
            vec![("authorization", b"Bearer dXNlcjE6dGVzdDE=".to_vec())],
            SCHEME,
            "invalid_scheme_for_basic_auth",
        ),
        (
            "scheme alone",
            vec![("authorization", b"Basic".to_vec())],
            SCHEME,
            "invalid_scheme_for_basic_auth",
        ),
        (
            "tab after the scheme",
            vec![("authorization", b"Basic\tdXNlcjE6dGVzdDE=".to_vec())],
            SCHEME,
            "invalid_scheme_for_basic_auth",
        ),
        (
            "two spaces",
            vec![("authorization", b"Basic  dXNlcjE6dGVzdDE=".to_vec())],
            FORMAT,
            "invalid_format_for_basic_auth",
        ),
        (
            "not base64",
            vec![("authorization", b"Basic user1:test1".to_vec())],
            FORMAT,
            "invalid_format_for_basic_auth",
        ),
        (
            "non-canonical tail",
            vec![("authorization", b"Basic dXNlcjE6dGVzdDF=".to_vec())],
            FORMAT,
            "invalid_format_for_basic_auth",
        ),
        (
            "three pads",
            vec![("authorization", b"Basic dXNlcjE6dGVzdDE===".to_vec())],
            FORMAT,
            "invalid_format_for_basic_auth",
        ),
        (
            "no colon",
            vec![("authorization", basic_bytes(b"user1test1").into())],
            FORMAT,
            "invalid_format_for_basic_auth",
        ),
        (
            "empty token",
            vec![("authorization", b"Basic =".to_vec())],
            FORMAT,
            "invalid_format_for_basic_auth",
        ),
        (
            "two merged credentials",
            vec![(
                "authorization",
                format!("{},{}", basic("user1", "test1"), basic("user2", "test2")).into(),
            )],
            FORMAT,
            "invalid_format_for_basic_auth",
        ),
        (
            "huge",
            vec![("authorization", long.into())],
            FORMAT,
            "invalid_format_for_basic_auth",
        ),
        (
            "non-UTF-8 value",
            vec![("authorization", b"Basic \xff\xfe".to_vec())],
            FORMAT,
            "invalid_format_for_basic_auth",
        ),
        (
            "wrong password",
            vec![("authorization", basic("user1", "test2").into())],
            CREDENTIALS,
            "invalid_credential_for_basic_auth",
        ),
        (
            "another user's password",
            vec![("authorization", basic("user2", "test1").into())],
            CREDENTIALS,
            "invalid_credential_for_basic_auth",
        ),
        (
            "unknown user",
            vec![("authorization", basic("mallory", "test1").into())],
            CREDENTIALS,
            "invalid_credential_for_basic_auth",
        ),
        (
            "empty user",
            vec![("authorization", basic("", "test1").into())],
            CREDENTIALS,
            "invalid_credential_for_basic_auth",
        ),
        (
            "empty password",
            vec![("authorization", basic("user1", "").into())],
            CREDENTIALS,
            "invalid_credential_for_basic_auth",
        ),
        (
            "user name case",
            vec![("authorization", basic("User1", "test1").into())],
            CREDENTIALS,
            "invalid_credential_for_basic_auth",
        ),
        (
            "trailing space in password",
            vec![("authorization", basic("user1", "test1 ").into())],
            CREDENTIALS,
            "invalid_credential_for_basic_auth",
        ),
        (
            "non-UTF-8 user",
            vec![("authorization", basic_bytes(b"user1\xff:test1").into())],
            CREDENTIALS,
            "invalid_credential_for_basic_auth",
        ),
        (
            "NUL in the password",
            vec![("authorization", basic_bytes(b"user1:test1\0").into())],
            CREDENTIALS,
            "invalid_credential_for_basic_auth",
        ),
        (
            "only the other header",
            vec![("x-auth", basic("user1", "test1").into())],
            MISSING,
            "no_credential_for_basic_auth",
        ),
    ];
    for (name, headers, body, details) in &cases {
        let headers: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (*k, v.as_slice())).collect();
        let reply = send(&mut module, &headers).expect_err(name);
        assert_denied(&reply, body, details);
    }
    let count = |body: &str| cases.iter().filter(|case| case.2 == body).count() as i64;
    assert_eq!(metric(&module, "denied"), cases.len() as i64);
    assert_eq!(metric(&module, "denied.missing"), count(MISSING));
    assert_eq!(
        metric(&module, "denied.malformed"),
        count(SCHEME) + count(FORMAT)
    );
    assert_eq!(
        metric(&module, "denied.wrong_credentials"),
        count(CREDENTIALS)
    );
    assert_eq!(metric(&module, "allowed"), 0);
}

#[test]
fn padding_is_optional_as_in_native() {
    let mut module = start(config());
    for token in ["dXNlcjE6dGVzdDE=", "dXNlcjE6dGVzdDE", "dXNlcjE6dGVzdDE=="] {
        let value = format!("Basic {token}");
        assert!(
            send(&mut module, &[("authorization", value.as_bytes())]).is_ok(),
            "{token}"
        );
    }
}

#[test]
fn the_realm_is_the_original_uri_cut_and_escaped_as_native() {
    let mut module = start(config());
    let realm = |module: &mut FakeModule, headers: &[(&str, &[u8])]| {
        let stream = module.stream();
        module.request_headers(stream, headers, true);
        module
            .host()
            .local_reply(stream)
            .unwrap()
            .header("www-authenticate")
            .unwrap()
    };
    let long = format!("/{}\"tail", "a".repeat(254));
    assert_eq!(
        realm(
            &mut module,
            &[
                (":path", long.as_bytes()),
                (":authority", b"h"),
                ("x-forwarded-proto", b"http")
            ]
        ),
        format!("Basic realm=\"http://h/{}\\\"\"", "a".repeat(254))
    );
    assert_eq!(
        realm(
            &mut module,
            &[
                (":path", b"/x\\y?q=\"1\""),
                (":authority", b"h:8080"),
                ("x-forwarded-proto", b"https")
            ]
        ),
        "Basic realm=\"https://h:8080/x\\\\y?q=\\\"1\\\"\""
    );
    assert_eq!(
        realm(
            &mut module,
            &[
                (":path", b"/rewritten"),
                ("x-envoy-original-path", b"/original"),
                (":authority", b"h")
            ]
        ),
        "Basic realm=\"://h/original\""
    );
    assert_eq!(
        realm(&mut module, &[(":authority", b"h")]),
        "Basic realm=\"\""
    );
}

#[test]
fn authentication_header_replaces_authorization_and_its_first_value_decides() {
    let mut module = start(json!({
        "users": {"inline_string": htpasswd()},
        "authentication_header": "X-Auth"
    }));
    let good = basic("user1", "test1");
    let bad = basic("user1", "nope");
    assert!(send(&mut module, &[("x-auth", good.as_bytes())]).is_ok());
    assert!(send(
        &mut module,
        &[("x-auth", good.as_bytes()), ("x-auth", bad.as_bytes())]
    )
    .is_ok());
    let reply = send(
        &mut module,
        &[("x-auth", bad.as_bytes()), ("x-auth", good.as_bytes())],
    )
    .unwrap_err();
    assert_denied(&reply, CREDENTIALS, "invalid_credential_for_basic_auth");
    let reply = send(&mut module, &[("authorization", good.as_bytes())]).unwrap_err();
    assert_denied(&reply, MISSING, "no_credential_for_basic_auth");
}

/// A request to `path` with `extra` headers: its stream and the local reply's status, if any.
fn request(module: &mut FakeModule, path: &str, extra: &[(&str, &[u8])]) -> (u32, Option<u32>) {
    let stream = module.stream();
    let mut headers: Vec<(&str, &[u8])> = vec![(":path", path.as_bytes()), (":authority", b"h")];
    headers.extend_from_slice(extra);
    module.request_headers(stream, &headers, true);
    (
        stream,
        module.host().local_reply(stream).map(|reply| reply.status),
    )
}

#[test]
fn rules_choose_the_requests_that_need_credentials() {
    let mut module = start(json!({
        "users": {"inline_string": htpasswd()},
        "forward_username_header": "x-username",
        "rules": [
            {"match": {"prefix": "/api/public"}, "disabled": true},
            {"match": {"prefix": "/api"}},
            {"match": {"prefix": "/admin", "headers": [{"name": "x-env", "string_match": {"exact": "prod"}}]}}
        ]
    }));
    assert_eq!(request(&mut module, "/api/items", &[]).1, Some(401));
    assert_eq!(
        request(&mut module, "/api/public/x", &[("x-username", b"admin")]).1,
        None
    );
    assert_eq!(request(&mut module, "/other", &[]).1, None);
    assert_eq!(
        request(&mut module, "/admin", &[("x-env", b"prod")]).1,
        Some(401)
    );
    assert_eq!(request(&mut module, "/admin", &[("x-env", b"dev")]).1, None);
    // A request that needs no credentials loses any user name the client claims.
    let (stream, status) = request(
        &mut module,
        "/other",
        &[("x-username", b"admin"), ("x-username", b"root")],
    );
    assert_eq!(status, None);
    assert_eq!(module.host().request_header(stream, "x-username"), None);
    let credential = basic("user1", "test1");
    let (stream, status) = request(
        &mut module,
        "/api/x",
        &[("authorization", credential.as_bytes())],
    );
    assert_eq!(status, None);
    assert_eq!(
        module
            .host()
            .request_header(stream, "x-username")
            .as_deref(),
        Some("user1")
    );
    assert_eq!(metric(&module, "skipped"), 4);
    assert_eq!(metric(&module, "denied"), 2);
    assert_eq!(metric(&module, "allowed"), 1);
}

#[test]
fn bcrypt_users_are_verified_once_then_served_from_the_cache() {
    let mut module = start(config());
    let good = basic("alice", "secret");
    let upstream = send(&mut module, &[("authorization", good.as_bytes())]).unwrap();
    assert_eq!(values(&upstream, "x-username"), ["alice"]);
    assert_eq!(
        (
            metric(&module, "bcrypt_verified"),
            metric(&module, "bcrypt_cache_hits")
        ),
        (1, 0)
    );
    for _ in 0..3 {
        assert!(send(&mut module, &[("authorization", good.as_bytes())]).is_ok());
    }
    assert_eq!(
        (
            metric(&module, "bcrypt_verified"),
            metric(&module, "bcrypt_cache_hits")
        ),
        (1, 3)
    );
    // A wrong password is never cached: each one pays a full bcrypt.
    let bad = basic("alice", "Secret");
    for _ in 0..2 {
        let reply = send(&mut module, &[("authorization", bad.as_bytes())]).unwrap_err();
        assert_denied(&reply, CREDENTIALS, "invalid_credential_for_basic_auth");
    }
    assert_eq!(
        (
            metric(&module, "bcrypt_verified"),
            metric(&module, "bcrypt_cache_hits")
        ),
        (3, 3)
    );
    // Another user's cache entry is its own; a password with `:`, space and UTF-8 works.
    let bob = basic("bob", BOB_PASSWORD);
    assert!(send(&mut module, &[("authorization", bob.as_bytes())]).is_ok());
    assert!(send(&mut module, &[("authorization", good.as_bytes())]).is_ok());
    assert!(send(&mut module, &[("authorization", bob.as_bytes())]).is_ok());
    assert_eq!(
        (
            metric(&module, "bcrypt_verified"),
            metric(&module, "bcrypt_cache_hits")
        ),
        (4, 5)
    );
    // Unknown users and {SHA} users never run bcrypt.
    let unknown = basic("mallory", "secret");
    assert!(send(&mut module, &[("authorization", unknown.as_bytes())]).is_err());
    let user1 = basic("user1", "test1");
    assert!(send(&mut module, &[("authorization", user1.as_bytes())]).is_ok());
    assert_eq!(metric(&module, "bcrypt_verified"), 4);
}

#[test]
fn bcrypt_passwords_longer_than_72_bytes_share_an_entry_as_bcrypt_does() {
    // crypt("p" * 100, "$2b$04$Uv5YXn1yOEhT30JcUSbBZO") by libxcrypt.
    let users = "p:$2b$04$Uv5YXn1yOEhT30JcUSbBZOJR6XIqEdFw02FetBydRx/vn8y8n8QVy";
    let mut module = start(json!({"users": {"inline_string": users}}));
    let long = basic("p", &"p".repeat(100));
    let other_tail = basic("p", &format!("{}{}", "p".repeat(72), "q".repeat(28)));
    assert!(send(&mut module, &[("authorization", long.as_bytes())]).is_ok());
    assert!(send(&mut module, &[("authorization", other_tail.as_bytes())]).is_ok());
    assert!(send(&mut module, &[("authorization", long.as_bytes())]).is_ok());
    // The cache keeps the last verified password: the first one was verified again.
    assert_eq!(
        (
            metric(&module, "bcrypt_verified"),
            metric(&module, "bcrypt_cache_hits")
        ),
        (3, 0)
    );
    let short = basic("p", &"p".repeat(71));
    assert!(send(&mut module, &[("authorization", short.as_bytes())]).is_err());
}

#[test]
fn a_module_with_no_users_refuses_everyone() {
    let mut module = start(json!({"users": {"inline_string": "# nobody yet\n"}}));
    let reply = send(
        &mut module,
        &[("authorization", basic("user1", "test1").as_bytes())],
    )
    .unwrap_err();
    assert_denied(&reply, CREDENTIALS, "invalid_credential_for_basic_auth");
}

#[test]
fn inline_bytes_and_stat_prefix_work() {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(htpasswd());
    let mut module = start(json!({"users": {"inline_bytes": encoded}, "stat_prefix": "edge"}));
    assert!(send(
        &mut module,
        &[("authorization", basic("user2", "test2").as_bytes())]
    )
    .is_ok());
    assert_eq!(module.host().metric("basic_auth.edge.allowed"), Some(1));
    assert_eq!(module.host().metric("basic_auth.allowed"), None);
}

#[test]
fn hostcall_failures_refuse_rather_than_pass() {
    let mut module = start(json!({
        "users": {"inline_string": htpasswd()},
        "forward_username_header": "x-username",
        "rules": [{"match": {"prefix": "/api"}}]
    }));
    let credential = basic("user1", "test1");
    for (hostcall, path, headers) in [
        ("get_header_map_pairs", "/other", vec![]),
        (
            "replace_header_map_value",
            "/api",
            vec![("authorization", credential.as_bytes())],
        ),
        (
            "remove_header_map_value",
            "/other",
            vec![("x-username", &b"admin"[..])],
        ),
    ] {
        module.host().fail(hostcall);
        let stream = module.stream();
        let mut all: Vec<(&str, &[u8])> = vec![(":path", path.as_bytes())];
        all.extend(headers);
        assert_eq!(
            module.request_headers(stream, &all, true),
            Action::Pause,
            "{hostcall}"
        );
        assert_eq!(
            module.host().local_reply(stream).unwrap().status,
            500,
            "{hostcall}"
        );
        module.host().recover(hostcall);
    }
}

#[test]
fn a_bad_config_is_refused_at_its_field_path() {
    let users = json!({"inline_string": USER1});
    for (config, path, reason) in [
        (json!({}), "users", "required"),
        (json!({"users": {}}), "users", "needs inline_string"),
        (
            json!({"users": {"inline_string": ""}}),
            "users.inline_string",
            "must not be empty",
        ),
        (
            json!({"users": {"filename": "/etc/htpasswd"}}),
            "users.filename",
            "not supported",
        ),
        (
            json!({"users": {"environment_variable": "USERS"}}),
            "users.environment_variable",
            "not supported",
        ),
        (
            json!({"users": {"inline_string": USER1, "inline_bytes": "eA=="}}),
            "users",
            "not both",
        ),
        (
            json!({"users": {"inline_bytes": "!!"}}),
            "users.inline_bytes",
            "not base64",
        ),
        (
            json!({"users": {"inline_bytes": "/w=="}}),
            "users.inline_bytes",
            "not UTF-8",
        ),
        (
            json!({"users": {"inline_string": format!("{USER1}\n{USER1}")}}),
            "users.inline_string",
            "line 2: duplicate user \"user1\" (first on line 1)",
        ),
        (
            json!({"users": {"inline_string": format!("{USER1}\nbroken")}}),
            "users.inline_string",
            "line 2: expected `name:hash`",
        ),
        (
            json!({"users": {"inline_string": "a:{SHA}tESsBmE/yNY3lb6a0L6vVQEZNqw=\r\n"}}),
            "users.inline_string",
            "line 1: ends with CR",
        ),
        (
            json!({"users": {"inline_string": "a:$apr1$abc$def"}}),
            "users.inline_string",
            "line 1: user \"a\": unsupported hash",
        ),
        (
            json!({"users": {"inline_string": "a:$2y$14$ncvPDu0.Gr0O7zBf1b.rxODLl/85QlyYFUR2UyBw8gSFSyfFGAjNa"}}),
            "users.inline_string",
            "cost 14",
        ),
        (
            json!({"users": users, "forward_username_header": "x user"}),
            "forward_username_header",
            "not a valid header name",
        ),
        (
            json!({"users": users, "forward_username_header": ":path"}),
            "forward_username_header",
            "cannot be set",
        ),
        (
            json!({"users": users, "forward_username_header": "host"}),
            "forward_username_header",
            "cannot be set",
        ),
        (
            json!({"users": users, "authentication_header": ":authority"}),
            "authentication_header",
            "pseudo-headers are not allowed",
        ),
        (
            json!({"users": users, "authentication_header": "a\nb"}),
            "authentication_header",
            "not a valid header name",
        ),
        (
            json!({"users": users, "rules": [{"match": {}}]}),
            "rules[0].match",
            "needs one of prefix",
        ),
        (
            json!({"users": users, "rules": [{"match": {"prefix": "/"}}, {"match": {"safe_regex": {"regex": "("}}}]}),
            "rules[1].match.safe_regex.regex",
            "invalid regex",
        ),
        (
            json!({"users": users, "rules": [{"match": {"prefix": "/"}, "enabled": true}]}),
            "rules[0].enabled",
            "unknown field",
        ),
        (
            json!({"users": users, "stat_prefix": ""}),
            "stat_prefix",
            "must not be empty",
        ),
        (
            json!({"users": users, "realm": "x"}),
            "realm",
            "unknown field",
        ),
    ] {
        let error = FakeModule::standalone::<BasicAuthRoot>(config.to_string().as_bytes())
            .err()
            .unwrap_or_else(|| panic!("{config} should be refused"));
        assert_eq!(error.path, path, "{config}: {error}");
        assert!(error.reason.contains(reason), "{config}: {error}");
    }
}

#[test]
fn the_istio_example_and_the_scenario_configs_are_valid() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    for (file, pointer) in [
        ("istio/basic-auth/deploy.json", "/plugin_config"),
        ("filters/basic-auth/scenarios/basics.json", "/config"),
    ] {
        let text = std::fs::read_to_string(format!("{root}/{file}")).unwrap();
        let json: Value = serde_json::from_str(&text).unwrap();
        let config = json.pointer(pointer).unwrap().clone();
        let mut module = start(config);
        let alice = basic("alice", "secret");
        let (_, status) = request(&mut module, "/x", &[("authorization", alice.as_bytes())]);
        assert_eq!(status, None, "{file}");
        assert_eq!(request(&mut module, "/x", &[]).1, Some(401), "{file}");
        assert_eq!(request(&mut module, "/health", &[]).1, None, "{file}");
    }
}
