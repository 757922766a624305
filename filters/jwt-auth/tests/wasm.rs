//! jwt-auth's built .wasm driven through test-host, with the host clock controlling time.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod tokens;

use jsonwebtoken::Algorithm;
use serde_json::{json, Value};
use std::time::Duration;
use test_host::{filter_wasm, Action, Error, HttpResponse, HttpStream, Plugin, TestHost};
use tokens::*;

const ISSUER: &str = "https://issuer.example";

fn provider() -> Value {
    json!({
        "issuer": ISSUER,
        "audiences": ["api"],
        "local_jwks": {"inline_string": jwks().to_string()},
    })
}

fn config_with(provider: Value) -> Value {
    json!({
        "providers": {"main": provider},
        "rules": [
            {"match": {"prefix": "/public"}},
            {"match": {"prefix": "/"}, "requires": {"provider_name": "main"}}
        ]
    })
}

fn start(config: Value) -> (TestHost, Plugin) {
    let host = TestHost::new();
    let plugin = host
        .plugin(filter_wasm("jwt_auth"))
        .config(config)
        .start()
        .unwrap_or_else(|e| panic!("plugin should start: {e}"));
    (host, plugin)
}

fn now(host: &TestHost) -> u64 {
    seconds(host.now())
}

fn request(plugin: &Plugin, path: &str, headers: &[(&str, &str)]) -> (HttpStream, Action) {
    let mut all = vec![
        (":method", "GET"),
        (":path", path),
        (":authority", "api.example.com"),
        (":scheme", "https"),
    ];
    all.extend_from_slice(headers);
    let mut stream = plugin.http_stream().unwrap();
    let action = stream.send_request_headers(&all, true).unwrap();
    (stream, action)
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// The status and body the client got from the filter, or 200 when the request went upstream.
/// What the client received, not the local reply the filter asked for: a reply sent from the
/// root for a waiting stream must reach the client too.
fn outcome(stream: &HttpStream) -> (u32, String) {
    let client = stream.client_response();
    match client.status() {
        Some(status) => {
            assert!(client.complete, "a partial reply reached the client");
            assert!(
                stream.local_response().is_some(),
                "only the filter answers here"
            );
            (
                u32::from(status),
                String::from_utf8_lossy(&client.body).into_owned(),
            )
        }
        None => {
            assert!(
                stream.local_response().is_none(),
                "a local reply that never reached the client"
            );
            assert!(
                stream.upstream_request().complete,
                "neither answered nor forwarded"
            );
            (200, String::new())
        }
    }
}

fn check(plugin: &Plugin, path: &str, headers: &[(&str, &str)]) -> (u32, String) {
    let (stream, _) = request(plugin, path, headers);
    outcome(&stream)
}

#[test]
fn every_algorithm_verifies() {
    let (host, plugin) = start(config_with(provider()));
    let claims = claims(now(&host));
    for alg in ALL {
        let token = token(alg, &claims);
        let (stream, action) = request(&plugin, "/api", &[("authorization", &bearer(&token))]);
        assert_eq!(
            action,
            Action::Continue,
            "{alg:?}: {:?}",
            stream.local_response()
        );
        let upstream = stream.upstream_request();
        assert_eq!(
            upstream.header("authorization"),
            None,
            "{alg:?}: the token is removed unless forward is set"
        );
    }
    assert_eq!(host.counter("jwt_auth.allowed"), Some(ALL.len() as u64));
}

#[test]
fn rejections_match_envoys_statuses_and_messages() {
    let (host, plugin) = start(config_with(provider()));
    let now = now(&host);
    let good = token(Algorithm::RS256, &claims(now));
    let mut tampered: Vec<&str> = good.split('.').collect();
    let other_payload = token(
        Algorithm::RS256,
        &json!({"iss": ISSUER, "aud": "api", "sub": "mallory", "exp": now + 600}),
    );
    tampered[1] = other_payload.split('.').nth(1).unwrap();
    let tampered = tampered.join(".");
    let none_header = base64_url(&json!({"alg": "none"}).to_string());
    let cases: Vec<(String, u32, &str)> = vec![
        (
            token(
                Algorithm::RS256,
                &json!({"iss": ISSUER, "aud": "api", "exp": now - 61}),
            ),
            401,
            "Jwt is expired",
        ),
        (
            token(
                Algorithm::RS256,
                &json!({"iss": ISSUER, "aud": "api", "nbf": now + 61}),
            ),
            401,
            "Jwt not yet valid",
        ),
        (
            token(
                Algorithm::RS256,
                &json!({"iss": "https://evil.example", "aud": "api"}),
            ),
            401,
            "Jwt issuer is not configured",
        ),
        (
            token(Algorithm::RS256, &json!({"iss": ISSUER, "aud": "other"})),
            403,
            "Audiences in Jwt are not allowed",
        ),
        (
            token(Algorithm::RS256, &json!({"iss": ISSUER})),
            403,
            "Audiences in Jwt are not allowed",
        ),
        (tampered, 401, "Jwt verification fails"),
        (
            format!("{none_header}.{}.", base64_url("{}")),
            401,
            "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections",
        ),
        (
            format!(
                "{none_header}.{}.c2ln",
                base64_url(&json!({"iss": ISSUER, "aud": "api"}).to_string())
            ),
            401,
            "Jwt header [alg] is not supported",
        ),
        (
            "not-a-token".into(),
            401,
            "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections",
        ),
        (
            "e30.e30.c2ln".into(),
            401,
            "Jwt header [alg] field is required and must be a string",
        ),
        (
            format!(
                "{}.!!.c2ln",
                base64_url(&json!({"alg": "RS256"}).to_string())
            ),
            401,
            "Jwt payload is an invalid Base64url encoded",
        ),
        (
            format!(
                "{}.{}.c2ln",
                base64_url("{\"alg\":\"RS256\""),
                base64_url("{}")
            ),
            401,
            "Jwt header is an invalid JSON",
        ),
        (
            format!(
                "{}.{}.c2ln",
                base64_url(&json!({"alg": "RS256"}).to_string()),
                "x".repeat(9000)
            ),
            401,
            "Jwt is too large",
        ),
    ];
    for (token, status, message) in &cases {
        let (got_status, body) = check(&plugin, "/api", &[("authorization", &bearer(token))]);
        assert_eq!(
            (got_status, body.as_str()),
            (*status, *message),
            "token {}",
            &token[..token.len().min(60)]
        );
    }
    // A token signed as HS256 with the RSA key's kid: no key of that kid and alg.
    let mut header = jsonwebtoken::Header::new(Algorithm::HS256);
    header.kid = Some("rsa".into());
    let mismatch =
        jsonwebtoken::encode(&header, &claims(now), &encoding_key(Algorithm::HS256)).unwrap();
    let (status, body) = check(&plugin, "/api", &[("authorization", &bearer(&mismatch))]);
    assert_eq!(
        (status, body.as_str()),
        (401, "Jwt verification fails"),
        "the RSA key is tried and refuses an HS256 token"
    );
    assert_eq!(
        host.counter("jwt_auth.denied"),
        Some(cases.len() as u64 + 1)
    );
    assert_eq!(host.counter("jwt_auth.denied.expired"), Some(1));
    assert_eq!(host.counter("jwt_auth.denied.audience"), Some(2));
}

fn base64_url(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

#[test]
fn replies_carry_the_bearer_challenge() {
    let (_host, plugin) = start(config_with(provider()));
    let (stream, action) = request(&plugin, "/api/items?x=1", &[]);
    assert_eq!(action, Action::Pause);
    let reply = stream.local_response().unwrap();
    assert_eq!(
        (reply.status, reply.body.as_slice()),
        (401, &b"Jwt is missing"[..])
    );
    assert_eq!(reply.details, "jwt_authn_access_denied{Jwt_is_missing}");
    assert_eq!(
        reply.headers.get_str("www-authenticate").as_deref(),
        Some("Bearer realm=\"https://api.example.com/api/items?x=1\"")
    );
    let (stream, _) = request(&plugin, "/api", &[("authorization", "Bearer a.b.c")]);
    assert_eq!(
        stream
            .local_response()
            .unwrap()
            .headers
            .get_str("www-authenticate")
            .as_deref(),
        Some("Bearer realm=\"https://api.example.com/api\", error=\"invalid_token\"")
    );
    let client = stream.client_response();
    assert_eq!(client.status(), Some(401));
    assert_eq!(client.header("content-type").as_deref(), Some("text/plain"));
}

#[test]
fn time_checks_use_the_host_clock_and_the_skew() {
    let (host, plugin) = start(config_with(json!({
        "issuer": ISSUER, "audiences": ["api"], "clock_skew_seconds": 10,
        "local_jwks": {"inline_string": jwks().to_string()}
    })));
    let now = now(&host);
    let token = token(
        Algorithm::ES256,
        &json!({"iss": ISSUER, "aud": "api", "exp": now + 30}),
    );
    let auth = bearer(&token);
    assert_eq!(check(&plugin, "/api", &[("authorization", &auth)]).0, 200);
    host.advance_clock(Duration::from_secs(40));
    assert_eq!(
        check(&plugin, "/api", &[("authorization", &auth)]).0,
        200,
        "within the 10 s skew"
    );
    host.advance_clock(Duration::from_secs(1));
    assert_eq!(
        check(&plugin, "/api", &[("authorization", &auth)]),
        (401, "Jwt is expired".into())
    );
}

#[test]
fn max_lifetime_and_require_expiration() {
    let (host, plugin) = start(config_with(json!({
        "issuer": ISSUER, "audiences": ["api"], "max_lifetime": "3600s",
        "local_jwks": {"inline_string": jwks().to_string()}
    })));
    let now = now(&host);
    let short = token(
        Algorithm::RS256,
        &json!({"iss": ISSUER, "aud": "api", "exp": now + 3599}),
    );
    let long = token(
        Algorithm::RS256,
        &json!({"iss": ISSUER, "aud": "api", "exp": now + 3600}),
    );
    let forever = token(Algorithm::RS256, &json!({"iss": ISSUER, "aud": "api"}));
    assert_eq!(
        check(&plugin, "/api", &[("authorization", &bearer(&short))]).0,
        200
    );
    assert_eq!(
        check(&plugin, "/api", &[("authorization", &bearer(&long))]),
        (401, "Jwt verification fails".into())
    );
    assert_eq!(
        check(&plugin, "/api", &[("authorization", &bearer(&forever))]),
        (401, "Jwt verification fails".into())
    );
}

#[test]
fn every_token_source() {
    let (host, plugin) = start(json!({
        "providers": {
            "default": {"issuer": ISSUER, "audiences": ["api"], "local_jwks": {"inline_string": jwks().to_string()}},
            "custom": {
                "issuer": ISSUER, "audiences": ["api"], "local_jwks": {"inline_string": jwks().to_string()},
                "from_headers": [{"name": "X-Api-Token", "value_prefix": "Token "}],
                "from_params": ["jwt"],
                "from_cookies": ["session"]
            }
        },
        "rules": [
            {"match": {"prefix": "/default"}, "requires": {"provider_name": "default"}},
            {"match": {"prefix": "/custom"}, "requires": {"provider_name": "custom"}}
        ]
    }));
    let token = token(Algorithm::RS256, &claims(now(&host)));
    assert_eq!(
        check(&plugin, "/default", &[("authorization", &bearer(&token))]).0,
        200
    );
    assert_eq!(
        check(&plugin, &format!("/default?access_token={token}"), &[]).0,
        200
    );
    assert_eq!(
        check(
            &plugin,
            "/default",
            &[("authorization", &format!("bearer {token}"))]
        )
        .0,
        401,
        "the prefix is case-sensitive"
    );
    assert_eq!(
        check(
            &plugin,
            "/custom",
            &[("x-api-token", &format!("Token {token}"))]
        )
        .0,
        200
    );
    assert_eq!(
        check(&plugin, &format!("/custom?a=1&jwt={token}"), &[]).0,
        200
    );
    assert_eq!(
        check(
            &plugin,
            "/custom",
            &[("cookie", &format!("theme=dark; session={token}"))]
        )
        .0,
        200
    );
    assert_eq!(
        check(&plugin, "/custom", &[("authorization", &bearer(&token))]),
        (401, "Jwt is missing".into()),
        "custom locations replace the defaults"
    );
    // A removed parameter leaves the rest of the query.
    let (stream, _) = request(&plugin, &format!("/custom?a=1&jwt={token}&b=2"), &[]);
    assert_eq!(
        stream.upstream_request().header(":path").as_deref(),
        Some("/custom?a=1&b=2")
    );
}

#[test]
fn claims_become_headers_and_forward_keeps_the_token() {
    let (host, plugin) = start(config_with(json!({
        "issuer": ISSUER, "audiences": ["api"], "forward": true,
        "forward_payload_header": "x-jwt-payload",
        "claim_to_headers": [
            {"header_name": "x-sub", "claim_name": "sub"},
            {"header_name": "x-tenant", "claim_name": "org.tenant"},
            {"header_name": "x-admin", "claim_name": "admin"},
            {"header_name": "x-missing", "claim_name": "nope"}
        ],
        "local_jwks": {"inline_string": jwks().to_string()}
    })));
    let claims = json!({"iss": ISSUER, "aud": "api", "sub": "alice", "org": {"tenant": "acme"}, "admin": true});
    let token = token(Algorithm::ES384, &claims);
    let (stream, _) = request(
        &plugin,
        "/api",
        &[
            ("authorization", &bearer(&token)),
            ("x-sub", "spoofed"),
            ("x-jwt-payload", "spoofed"),
        ],
    );
    let upstream = stream.upstream_request().headers.unwrap();
    assert_eq!(
        upstream.get_all("x-sub"),
        [b"alice"],
        "a client-sent claim header is dropped first"
    );
    assert_eq!(upstream.get_str("x-tenant").as_deref(), Some("acme"));
    assert_eq!(upstream.get_str("x-admin").as_deref(), Some("true"));
    assert_eq!(upstream.get("x-missing"), None);
    assert_eq!(
        upstream.get_all("x-jwt-payload"),
        [token.split('.').nth(1).unwrap().as_bytes()]
    );
    assert_eq!(
        upstream.get_str("authorization"),
        Some(bearer(&token)),
        "forward keeps the token"
    );
    let _ = host;
}

#[test]
fn rules_and_requirements() {
    let jwks = jwks().to_string();
    let (host, plugin) = start(json!({
        "providers": {
            "a": {"issuer": "https://a.example", "local_jwks": {"inline_string": jwks}, "from_headers": [{"name": "x-a"}]},
            "b": {"issuer": "https://b.example", "local_jwks": {"inline_string": jwks}, "from_headers": [{"name": "x-b"}]}
        },
        "rules": [
            {"match": {"path": "/any"}, "requires": {"requires_any": {"requirements": [{"provider_name": "a"}, {"provider_name": "b"}]}}},
            {"match": {"path": "/all"}, "requires": {"requires_all": {"requirements": [{"provider_name": "a"}, {"provider_name": "b"}]}}},
            {"match": {"path": "/optional"}, "requires": {"allow_missing": {}}},
            {"match": {"path": "/lenient"}, "requires": {"allow_missing_or_failed": {}}},
            {"match": {"prefix": "/", "headers": [{"name": "x-internal", "present_match": true}]}}
        ]
    }));
    let now = now(&host);
    let a = token(
        Algorithm::RS256,
        &json!({"iss": "https://a.example", "exp": now + 60}),
    );
    let b = token(
        Algorithm::ES256,
        &json!({"iss": "https://b.example", "exp": now + 60}),
    );
    let expired = token(
        Algorithm::RS256,
        &json!({"iss": "https://a.example", "exp": now - 100}),
    );
    assert_eq!(check(&plugin, "/any", &[("x-b", &b)]).0, 200);
    assert_eq!(check(&plugin, "/any", &[]), (401, "Jwt is missing".into()));
    assert_eq!(
        check(&plugin, "/any", &[("x-a", &expired)]),
        (401, "Jwt is expired".into())
    );
    assert_eq!(
        check(&plugin, "/all", &[("x-a", &a)]),
        (401, "Jwt is missing".into())
    );
    assert_eq!(check(&plugin, "/all", &[("x-a", &a), ("x-b", &b)]).0, 200);
    assert_eq!(check(&plugin, "/optional", &[]).0, 200);
    assert_eq!(
        check(&plugin, "/optional", &[("x-a", &expired)]),
        (401, "Jwt is expired".into())
    );
    assert_eq!(check(&plugin, "/lenient", &[("x-a", &expired)]).0, 200);
    assert_eq!(
        check(&plugin, "/elsewhere", &[("x-internal", "1")]).0,
        200,
        "a rule without requires lets requests through"
    );
    assert_eq!(
        check(&plugin, "/elsewhere", &[]).0,
        200,
        "no rule matches: untouched"
    );
}

#[test]
fn cors_preflights_can_bypass() {
    let mut config = config_with(provider());
    config["bypass_cors_preflight"] = json!(true);
    let (host, plugin) = start(config);
    let mut stream = plugin.http_stream().unwrap();
    let preflight = [
        (":method", "OPTIONS"),
        (":path", "/api"),
        (":authority", "a"),
        ("origin", "https://app"),
        ("access-control-request-method", "POST"),
    ];
    assert_eq!(
        stream.send_request_headers(&preflight, true).unwrap(),
        Action::Continue
    );
    assert_eq!(host.counter("jwt_auth.cors_preflight_bypassed"), Some(1));
}

#[test]
fn repeated_tokens_hit_the_cache_until_they_expire() {
    let (host, plugin) = start(config_with(provider()));
    let now = now(&host);
    let repeated = token(
        Algorithm::RS256,
        &json!({"iss": ISSUER, "aud": "api", "exp": now + 100}),
    );
    for _ in 0..5 {
        assert_eq!(
            check(&plugin, "/api", &[("authorization", &bearer(&repeated))]).0,
            200
        );
    }
    assert_eq!(host.counter("jwt_auth.jwt_cache_miss"), Some(1));
    assert_eq!(host.counter("jwt_auth.jwt_cache_hit"), Some(4));
    host.advance_clock(Duration::from_secs(161));
    assert_eq!(
        check(&plugin, "/api", &[("authorization", &bearer(&repeated))]),
        (401, "Jwt is expired".into())
    );
    // A cached token still has its claims checked for each rule's audiences.
    let (host, plugin) = start(json!({
        "providers": {"main": provider()},
        "rules": [
            {"match": {"prefix": "/strict"}, "requires": {"provider_and_audiences": {"provider_name": "main", "audiences": ["admin"]}}},
            {"match": {"prefix": "/"}, "requires": {"provider_name": "main"}}
        ]
    }));
    let token = token(Algorithm::RS256, &claims(seconds(host.now())));
    assert_eq!(
        check(&plugin, "/api", &[("authorization", &bearer(&token))]).0,
        200
    );
    assert_eq!(
        check(&plugin, "/strict", &[("authorization", &bearer(&token))]).0,
        403
    );
}

fn remote_config(cache_duration: &str) -> Value {
    config_with(json!({
        "issuer": ISSUER, "audiences": ["api"],
        "remote_jwks": {"http_uri": {"uri": "https://keys.example/jwks.json", "cluster": "jwks", "timeout": "2s"}, "cache_duration": cache_duration}
    }))
}

fn jwks_reply(keys: &Value) -> HttpResponse {
    HttpResponse::new(200)
        .header("content-type", "application/json")
        .body(keys.to_string())
}

#[test]
fn remote_jwks_requests_wait_for_the_fetch_and_resume() {
    let (host, plugin) = start(remote_config("600s"));
    let token = token(Algorithm::RS256, &claims(now(&host)));
    let auth = bearer(&token);
    let (first, action) = request(&plugin, "/api", &[("authorization", &auth)]);
    assert_eq!(action, Action::Pause);
    let (second, _) = request(&plugin, "/api", &[("authorization", &auth)]);
    plugin.advance(Duration::from_millis(1)).unwrap();
    let calls = plugin.http_calls();
    assert_eq!(calls.len(), 1, "one fetch for all waiting requests");
    assert_eq!(calls[0].cluster, "jwks");
    assert_eq!(
        calls[0].headers.get_str(":path").as_deref(),
        Some("/jwks.json")
    );
    assert_eq!(
        calls[0].headers.get_str(":authority").as_deref(),
        Some("keys.example")
    );
    plugin
        .respond_http_call(calls[0].token, jwks_reply(&jwks()))
        .unwrap();
    for stream in [&first, &second] {
        let upstream = stream.upstream_request();
        assert!(upstream.complete, "resumed after the keys arrived");
        assert_eq!(upstream.header("authorization"), None);
    }
    assert_eq!(host.counter("jwt_auth.jwks_fetch_success"), Some(1));
    assert_eq!(
        check(&plugin, "/api", &[("authorization", &auth)]).0,
        200,
        "later requests use the cached keys"
    );
    assert!(plugin.http_calls().is_empty());
}

#[test]
fn remote_jwks_failures_answer_401_and_are_retried() {
    let (host, plugin) = start(remote_config("600s"));
    let auth = bearer(&token(Algorithm::RS256, &claims(now(&host))));
    let (waiting, _) = request(&plugin, "/api", &[("authorization", &auth)]);
    plugin.advance(Duration::from_millis(1)).unwrap();
    let call = plugin.http_calls()[0].token;
    plugin
        .respond_http_call(call, HttpResponse::new(503).body("down"))
        .unwrap();
    assert_eq!(
        outcome(&waiting),
        (401, "Jwks remote fetch is failed".into())
    );
    assert_eq!(host.counter("jwt_auth.jwks_fetch_failed"), Some(1));
    assert!(plugin
        .log_messages(test_host::LogLevel::Warn)
        .iter()
        .any(|line| line.contains("https://keys.example/jwks.json failed: status 503")));
    assert_eq!(
        check(&plugin, "/api", &[("authorization", &auth)]),
        (401, "Jwks remote fetch is failed".into()),
        "fails fast right after a failure"
    );
    // A second later a request waits for a new fetch, which may succeed; a reset also fails.
    host.advance_clock(Duration::from_secs(1));
    let (waiting, action) = request(&plugin, "/api", &[("authorization", &auth)]);
    assert_eq!(action, Action::Pause);
    plugin.advance(Duration::from_millis(10)).unwrap();
    let call = plugin.http_calls()[0].token;
    plugin.fail_http_call(call).unwrap();
    assert_eq!(outcome(&waiting).0, 401);
    host.advance_clock(Duration::from_secs(1));
    let (waiting, _) = request(&plugin, "/api", &[("authorization", &auth)]);
    plugin.advance(Duration::from_millis(10)).unwrap();
    plugin
        .respond_http_call(
            plugin.http_calls()[0].token,
            HttpResponse::new(200).body("{\"keys\": 5}"),
        )
        .unwrap();
    assert_eq!(
        outcome(&waiting),
        (401, "Jwks remote fetch is failed".into()),
        "an invalid key set is a failed fetch"
    );
    assert_eq!(host.counter("jwt_auth.jwks_fetch_failed"), Some(3));
}

#[test]
fn remote_jwks_timeouts_fail_the_waiting_requests() {
    let (host, plugin) = start(remote_config("600s"));
    let auth = bearer(&token(Algorithm::RS256, &claims(now(&host))));
    let (waiting, _) = request(&plugin, "/api", &[("authorization", &auth)]);
    plugin.advance(Duration::from_millis(1)).unwrap();
    assert_eq!(plugin.http_calls()[0].timeout, Some(Duration::from_secs(2)));
    plugin.advance(Duration::from_secs(2)).unwrap();
    assert_eq!(
        outcome(&waiting),
        (401, "Jwks remote fetch is failed".into())
    );
}

#[test]
fn remote_jwks_are_refreshed_before_they_expire() {
    let (host, plugin) = start(remote_config("100s"));
    plugin.advance(Duration::from_millis(1)).unwrap();
    let only_rsa = json!({"keys": [jwk(Algorithm::RS256)]});
    plugin
        .respond_http_call(plugin.http_calls()[0].token, jwks_reply(&only_rsa))
        .unwrap();
    let es = bearer(&token(
        Algorithm::ES256,
        &json!({"iss": ISSUER, "aud": "api", "exp": now(&host) + 1000}),
    ));
    assert_eq!(
        check(&plugin, "/api", &[("authorization", &es)]).0,
        401,
        "no EC key yet"
    );
    plugin.advance(Duration::from_secs(89)).unwrap();
    assert!(plugin.http_calls().is_empty());
    plugin.advance(Duration::from_secs(2)).unwrap();
    let refresh = plugin.http_calls();
    assert_eq!(refresh.len(), 1, "refreshed at 90% of cache_duration");
    assert_eq!(
        check(&plugin, "/api", &[("authorization", &es)]).0,
        401,
        "old keys serve meanwhile"
    );
    plugin
        .respond_http_call(refresh[0].token, jwks_reply(&jwks()))
        .unwrap();
    assert_eq!(check(&plugin, "/api", &[("authorization", &es)]).0, 200);
}

#[test]
fn workers_share_fetched_keys() {
    let host = TestHost::new();
    let start = || {
        host.plugin(filter_wasm("jwt_auth"))
            .config(remote_config("600s"))
            .start()
            .unwrap()
    };
    let first = start();
    let second = start();
    first.advance(Duration::from_millis(1)).unwrap();
    second.tick().unwrap();
    assert_eq!(
        first.http_calls().len() + second.http_calls().len(),
        1,
        "the fetch lock lets one worker fetch"
    );
    first
        .respond_http_call(first.http_calls()[0].token, jwks_reply(&jwks()))
        .unwrap();
    second.tick().unwrap();
    let auth = bearer(&token(Algorithm::RS256, &claims(seconds(host.now()))));
    assert_eq!(check(&second, "/api", &[("authorization", &auth)]).0, 200);
    assert!(
        second.http_calls().is_empty(),
        "the second worker took the keys from shared data"
    );
    assert_eq!(host.counter("jwt_auth.jwks_fetch_success"), Some(1));
}

/// What the client received: the status and body of the response that left the filter.
fn client_outcome(stream: &HttpStream) -> (u16, String) {
    let response = stream.client_response();
    (
        response.status().unwrap_or_default(),
        String::from_utf8_lossy(&response.body).into_owned(),
    )
}

fn fetch_failed() -> (u16, String) {
    (401, "Jwks remote fetch is failed".into())
}

/// Two workers of one Envoy: plugins on one host, so they share data and the clock.
fn two_workers(config: Value) -> (TestHost, Plugin, Plugin) {
    let host = TestHost::new();
    let start = || {
        host.plugin(filter_wasm("jwt_auth"))
            .config(config.clone())
            .start()
            .unwrap()
    };
    let first = start();
    let second = start();
    (host, first, second)
}

#[test]
fn a_failed_fetch_is_shared_with_the_waiting_workers() {
    let (host, first, second) = two_workers(remote_config("600s"));
    first.advance(Duration::from_millis(1)).unwrap();
    second.tick().unwrap();
    assert!(
        second.http_calls().is_empty(),
        "the first worker holds the lock"
    );
    let auth = bearer(&token(Algorithm::RS256, &claims(now(&host))));
    let (waiting, action) = request(&second, "/api", &[("authorization", &auth)]);
    assert_eq!(action, Action::Pause);
    first
        .respond_http_call(first.http_calls()[0].token, HttpResponse::new(503))
        .unwrap();
    second.advance(Duration::from_millis(10)).unwrap();
    assert_eq!(client_outcome(&waiting), fetch_failed());
    assert!(waiting.upstream_request().headers.is_none());
    assert!(
        second.http_calls().is_empty(),
        "no second fetch right after the failure"
    );
    let (late, action) = request(&second, "/api", &[("authorization", &auth)]);
    assert_eq!(action, Action::Pause);
    assert_eq!(
        client_outcome(&late),
        fetch_failed(),
        "the failure answers new requests on every worker at once"
    );
    // After the back-off one worker fetches again, and both take its keys.
    host.advance_clock(Duration::from_secs(1));
    let (waiting, _) = request(&second, "/api", &[("authorization", &auth)]);
    second.advance(Duration::from_millis(10)).unwrap();
    first.tick().unwrap();
    let calls = [first.http_calls(), second.http_calls()];
    assert_eq!(calls[0].len() + calls[1].len(), 1, "{calls:?}");
    second
        .respond_http_call(calls[1][0].token, jwks_reply(&jwks()))
        .unwrap();
    assert_eq!(client_outcome(&waiting).0, 0, "not answered locally");
    assert!(waiting.upstream_request().complete);
    first.tick().unwrap();
    assert_eq!(check(&first, "/api", &[("authorization", &auth)]).0, 200);
    assert!(first.http_calls().is_empty());
}

#[test]
fn every_waiting_request_is_answered_by_its_own_deadline() {
    let (host, plugin) = start(remote_config("600s"));
    let auth = bearer(&token(Algorithm::RS256, &claims(now(&host))));
    // The host's clock moves without firing the callout's timeout: a host that never answers.
    let (first, action) = request(&plugin, "/api", &[("authorization", &auth)]);
    assert_eq!(action, Action::Pause);
    host.advance_clock(Duration::from_millis(1));
    plugin.tick().unwrap();
    assert_eq!(plugin.http_calls().len(), 1);
    host.advance_clock(Duration::from_millis(1000));
    let (second, _) = request(&plugin, "/api", &[("authorization", &auth)]);
    // 2 s timeout + 100 ms margin after the first began to wait.
    host.advance_clock(Duration::from_millis(1098));
    plugin.tick().unwrap();
    assert_eq!(client_outcome(&first), (0, String::new()), "still waiting");
    host.advance_clock(Duration::from_millis(1));
    plugin.tick().unwrap();
    assert_eq!(client_outcome(&first), fetch_failed());
    assert_eq!(client_outcome(&second), (0, String::new()));
    assert_eq!(plugin.http_calls().len(), 1, "the fetch is still under way");
    // The stuck fetch is given up at its lock deadline, which answers the second request.
    host.advance_clock(Duration::from_millis(1));
    plugin.tick().unwrap();
    assert_eq!(client_outcome(&second), fetch_failed());
    assert_eq!(host.counter("jwt_auth.jwks_fetch_failed"), Some(1));
    let late = plugin.http_calls();
    assert_eq!(late.len(), 1);
    plugin
        .respond_http_call(late[0].token, jwks_reply(&jwks()))
        .unwrap();
    assert_eq!(
        host.counter("jwt_auth.jwks_fetch_success"),
        Some(0),
        "an answer to an abandoned fetch is ignored"
    );
}

#[test]
fn a_worker_does_not_wait_past_the_lock_holders_deadline() {
    let (host, holder, waiter) = two_workers(remote_config("600s"));
    holder.advance(Duration::from_millis(1)).unwrap();
    assert_eq!(holder.http_calls().len(), 1);
    // The holder never runs again (its VM died); only the waiting worker's clock runs.
    let auth = bearer(&token(Algorithm::RS256, &claims(now(&host))));
    let (waiting, action) = request(&waiter, "/api", &[("authorization", &auth)]);
    assert_eq!(action, Action::Pause);
    waiter.advance(Duration::from_millis(2090)).unwrap();
    assert_eq!(client_outcome(&waiting), (0, String::new()));
    waiter.advance(Duration::from_millis(20)).unwrap();
    assert_eq!(
        client_outcome(&waiting),
        fetch_failed(),
        "answered at the holder's deadline (2.1 s), not after a fetch of its own"
    );
    assert!(waiter.http_calls().is_empty());
    assert!(waiter
        .log_messages(test_host::LogLevel::Warn)
        .iter()
        .any(|line| line.contains("another worker started did not finish in time")));
    // After the back-off the waiting worker takes the lock and fetches itself.
    waiter.advance(Duration::from_secs(1)).unwrap();
    let (waiting, _) = request(&waiter, "/api", &[("authorization", &auth)]);
    waiter.advance(Duration::from_millis(10)).unwrap();
    let calls = waiter.http_calls();
    assert_eq!(calls.len(), 1);
    waiter
        .respond_http_call(calls[0].token, jwks_reply(&jwks()))
        .unwrap();
    assert!(waiting.upstream_request().complete);
    // The holder's late answer does not take back the lock its successor holds.
    holder
        .respond_http_call(holder.http_calls()[0].token, HttpResponse::new(503))
        .unwrap();
    assert_eq!(check(&waiter, "/api", &[("authorization", &auth)]).0, 200);
}

fn rsa_and_ec_tokens(host: &TestHost) -> (String, String) {
    let claims = json!({"iss": ISSUER, "aud": "api", "exp": now(host) + 1000});
    (
        bearer(&token(Algorithm::RS256, &claims)),
        bearer(&token(Algorithm::ES256, &claims)),
    )
}

#[test]
fn a_key_removed_from_the_jwks_stops_cached_tokens_at_the_refresh() {
    let (host, plugin) = start(remote_config("100s"));
    plugin.advance(Duration::from_millis(1)).unwrap();
    plugin
        .respond_http_call(plugin.http_calls()[0].token, jwks_reply(&jwks()))
        .unwrap();
    let (rsa, ec) = rsa_and_ec_tokens(&host);
    for _ in 0..3 {
        assert_eq!(check(&plugin, "/api", &[("authorization", &rsa)]).0, 200);
    }
    assert_eq!(host.counter("jwt_auth.jwt_cache_hit"), Some(2));
    // A refresh with the same key set keeps the cache.
    plugin.advance(Duration::from_secs(91)).unwrap();
    plugin
        .respond_http_call(plugin.http_calls()[0].token, jwks_reply(&jwks()))
        .unwrap();
    assert_eq!(check(&plugin, "/api", &[("authorization", &rsa)]).0, 200);
    assert_eq!(host.counter("jwt_auth.jwt_cache_hit"), Some(3));
    // An emergency rotation: the RSA key is gone at the next refresh.
    plugin.advance(Duration::from_secs(91)).unwrap();
    let only_ec = json!({"keys": [jwk(Algorithm::ES256)]});
    plugin
        .respond_http_call(plugin.http_calls()[0].token, jwks_reply(&only_ec))
        .unwrap();
    assert_eq!(
        check(&plugin, "/api", &[("authorization", &rsa)]),
        (
            401,
            "Jwks doesn't have key to match kid or alg from Jwt".into()
        )
    );
    assert_eq!(check(&plugin, "/api", &[("authorization", &ec)]).0, 200);
}

#[test]
fn cached_tokens_fail_with_the_keys_when_they_expire_unrefreshed() {
    let (host, plugin) = start(remote_config("100s"));
    plugin.advance(Duration::from_millis(1)).unwrap();
    plugin
        .respond_http_call(plugin.http_calls()[0].token, jwks_reply(&jwks()))
        .unwrap();
    let (rsa, _) = rsa_and_ec_tokens(&host);
    assert_eq!(check(&plugin, "/api", &[("authorization", &rsa)]).0, 200);
    plugin.advance(Duration::from_secs(91)).unwrap();
    plugin
        .respond_http_call(plugin.http_calls()[0].token, HttpResponse::new(503))
        .unwrap();
    assert_eq!(
        check(&plugin, "/api", &[("authorization", &rsa)]).0,
        200,
        "the old keys serve until they expire"
    );
    host.advance_clock(Duration::from_secs(9));
    let (stream, action) = request(&plugin, "/api", &[("authorization", &rsa)]);
    assert_eq!(
        action,
        Action::Pause,
        "the cached token waits for keys like any other"
    );
    plugin.advance(Duration::from_millis(10)).unwrap();
    plugin
        .respond_http_call(plugin.http_calls()[0].token, HttpResponse::new(503))
        .unwrap();
    assert_eq!(client_outcome(&stream), fetch_failed());
}

#[test]
fn a_worker_adopting_a_changed_key_set_drops_its_cached_tokens() {
    let (host, fetcher, adopter) = two_workers(remote_config("100s"));
    fetcher.advance(Duration::from_millis(1)).unwrap();
    fetcher
        .respond_http_call(fetcher.http_calls()[0].token, jwks_reply(&jwks()))
        .unwrap();
    adopter.tick().unwrap();
    let (rsa, ec) = rsa_and_ec_tokens(&host);
    for _ in 0..2 {
        assert_eq!(check(&adopter, "/api", &[("authorization", &rsa)]).0, 200);
    }
    assert!(adopter.http_calls().is_empty());
    fetcher.advance(Duration::from_secs(91)).unwrap();
    let only_ec = json!({"keys": [jwk(Algorithm::ES256)]});
    fetcher
        .respond_http_call(fetcher.http_calls()[0].token, jwks_reply(&only_ec))
        .unwrap();
    adopter.tick().unwrap();
    assert!(adopter.http_calls().is_empty(), "adopted, not fetched");
    let (stream, _) = request(&adopter, "/api", &[("authorization", &rsa)]);
    assert_eq!(
        client_outcome(&stream),
        (
            401,
            "Jwks doesn't have key to match kid or alg from Jwt".into()
        )
    );
    assert_eq!(check(&adopter, "/api", &[("authorization", &ec)]).0, 200);
}

#[test]
fn a_client_that_leaves_while_waiting_is_never_resumed() {
    let (host, plugin) = start(remote_config("600s"));
    let auth = bearer(&token(Algorithm::RS256, &claims(now(&host))));
    let (gone, _) = request(&plugin, "/api", &[("authorization", &auth)]);
    let (staying, _) = request(&plugin, "/api", &[("authorization", &auth)]);
    plugin.advance(Duration::from_millis(1)).unwrap();
    gone.end().unwrap();
    // Deadlines pass for both, the stream that ended included.
    plugin.advance(Duration::from_secs(3)).unwrap();
    assert_eq!(client_outcome(&staying), fetch_failed());
    let (later, _) = request(&plugin, "/api", &[("authorization", &auth)]);
    plugin.advance(Duration::from_millis(10)).unwrap();
    later.end().unwrap();
    plugin
        .respond_http_call(plugin.http_calls()[0].token, jwks_reply(&jwks()))
        .unwrap();
    assert!(plugin.failure().is_none());
    assert!(
        plugin
            .log_messages(test_host::LogLevel::Warn)
            .iter()
            .all(|line| !line.contains("resume")),
        "{:?}",
        plugin.logs()
    );
    assert_eq!(check(&plugin, "/api", &[("authorization", &auth)]).0, 200);
}

#[test]
fn invalid_configs_name_the_field() {
    let cases = [
        (
            json!({"providers": {"p": {"local_jwks": {"inline_string": "{}"}}}}),
            "providers.p.local_jwks.inline_string: Jwks does not have [keys] field",
        ),
        (
            json!({"providers": {"p": {"issuer": "x"}}}),
            "providers.p: needs local_jwks or remote_jwks",
        ),
        (
            json!({"providers": {"p": {"remote_jwks": {"http_uri": {"uri": "ftp://x", "cluster": "c", "timeout": "1s"}}}}}),
            "providers.p.remote_jwks.http_uri.uri",
        ),
        (
            json!({"providers": {"p": {"remote_jwks": {"http_uri": {"uri": "https://x/", "cluster": "c", "timeout": "soon"}}}}}),
            "providers.p.remote_jwks.http_uri.timeout",
        ),
        (
            json!({"rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "ghost"}}]}),
            "rules[0].requires.provider_name: no provider named \"ghost\"",
        ),
        (
            json!({"providers": {"p": {"local_jwks": {"inline_string": jwks().to_string()}, "payload_in_metadata": "x"}}}),
            "providers.p.payload_in_metadata: not supported: `payload_in_metadata`",
        ),
        (
            json!({"rules": [{"match": {}}]}),
            "rules[0].match: needs one of prefix",
        ),
    ];
    for (config, expected) in cases {
        match TestHost::new()
            .plugin(filter_wasm("jwt_auth"))
            .config(config.clone())
            .start()
        {
            Err(Error::Rejected { logs, .. }) => assert!(
                logs.iter()
                    .any(|line| line
                        .contains(&format!("jwt_auth: invalid configuration at {expected}"))),
                "{config}: {logs:?}"
            ),
            Err(other) => panic!("{config}: {other}"),
            Ok(_) => panic!("{config} should be rejected"),
        }
    }
}

#[test]
fn hostile_tokens_never_trap() {
    let (_host, plugin) = start(config_with(provider()));
    let mut seed: u64 = 0x1234_5678_9abc_def1;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let base = token(Algorithm::RS256, &json!({"iss": ISSUER, "aud": "api"}));
    for round in 0..200 {
        let mut bytes = base.clone().into_bytes();
        for _ in 0..(1 + next() % 6) {
            let at = (next() as usize) % bytes.len();
            bytes[at] = b"A.-_=%\x00\xffz9"[(next() % 10) as usize];
        }
        let token = String::from_utf8_lossy(&bytes).into_owned();
        let mut stream = plugin.http_stream().unwrap();
        let headers = [
            (":method", "GET"),
            (":path", "/api"),
            (":authority", "a"),
            ("authorization", &bearer(&token)),
        ];
        stream
            .send_request_headers(&headers, true)
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
    }
    assert!(plugin.failure().is_none());
}
