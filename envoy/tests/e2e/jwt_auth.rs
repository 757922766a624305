//! jwt-auth in real Envoy, side by side with native jwt_authn given the same configuration.

use crate::tokens::*;
use base64::Engine;
use envoy_harness::config::{filter_wasm, native_filter, wasm_filter, BootstrapBuilder};
use envoy_harness::{CannedReply, EchoUpstream, Envoy, Request, Response};
use jsonwebtoken::Algorithm;
use serde_json::{json, Value};
use std::time::SystemTime;

const ISSUER: &str = "https://issuer.example";

fn b64(text: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

fn jwt_authn(config: &Value) -> Value {
    native_filter(
        "native_jwt",
        "jwt_authn.v3.JwtAuthentication",
        config.clone(),
    )
}

fn jwt_auth(config: &Value) -> Value {
    wasm_filter("jwt_auth", &filter_wasm("jwt_auth"), config)
}

/// One Envoy with the native filter on listener `native` and ours on `wasm`.
fn side_by_side(
    upstream: &EchoUpstream,
    config: &Value,
    extra_cluster: Option<(&str, u16)>,
) -> Envoy {
    let mut bootstrap = BootstrapBuilder::new(upstream.port())
        .listener("native", vec![jwt_authn(config)])
        .listener("wasm", vec![jwt_auth(config)]);
    if let Some((name, port)) = extra_cluster {
        bootstrap = bootstrap.cluster(name, port);
    }
    Envoy::start(bootstrap.build()).unwrap()
}

fn send(envoy: &Envoy, listener: &str, path: &str, authorization: Option<&str>) -> Response {
    let mut request = Request::get(path).header("host", "api.example.com");
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    request
        .send(envoy.listener_port(listener).unwrap())
        .unwrap()
}

fn config(provider: Value) -> Value {
    json!({
        "providers": {"main": provider},
        "rules": [
            {"match": {"prefix": "/public"}},
            {"match": {"prefix": "/"}, "requires": {"provider_name": "main"}}
        ]
    })
}

fn local_provider() -> Value {
    json!({
        "issuer": ISSUER,
        "audiences": ["api"],
        "local_jwks": {"inline_string": jwks().to_string()},
        "forward_payload_header": "x-jwt-payload",
        "claim_to_headers": [{"header_name": "x-sub", "claim_name": "sub"}, {"header_name": "x-tenant", "claim_name": "org.tenant"}]
    })
}

/// Tokens that must get the same answer from both filters, with a name for failures.
fn vectors(now: u64) -> Vec<(&'static str, Option<String>)> {
    let good = claims(now);
    let mut vectors: Vec<(&'static str, Option<String>)> = vec![("missing", None)];
    for alg in [
        Algorithm::RS256,
        Algorithm::PS384,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
        Algorithm::HS256,
    ] {
        vectors.push(("valid", Some(token(alg, &good))));
    }
    let rsa = |claims: Value| Some(token(Algorithm::RS256, &claims));
    vectors.extend([
        ("nested claim", rsa(json!({"iss": ISSUER, "aud": "api", "sub": "bob", "org": {"tenant": "acme"}, "exp": now + 60}))),
        ("expired", rsa(json!({"iss": ISSUER, "aud": "api", "exp": now - 3600}))),
        ("not yet valid", rsa(json!({"iss": ISSUER, "aud": "api", "nbf": now + 3600}))),
        ("wrong issuer", rsa(json!({"iss": "https://evil.example", "aud": "api"}))),
        ("no issuer", rsa(json!({"aud": "api"}))),
        ("wrong audience", rsa(json!({"iss": ISSUER, "aud": "other"}))),
        ("no audience", rsa(json!({"iss": ISSUER}))),
        ("audience list", rsa(json!({"iss": ISSUER, "aud": ["x", "https://api/"]}))),
        ("no expiry", rsa(json!({"iss": ISSUER, "aud": "api"}))),
    ]);
    let valid = token(Algorithm::RS256, &good);
    let parts: Vec<&str> = valid.split('.').collect();
    let forged_payload = b64(&json!({"iss": ISSUER, "aud": "api", "sub": "admin"}).to_string());
    vectors.extend([
        (
            "tampered payload",
            Some(format!("{}.{forged_payload}.{}", parts[0], parts[2])),
        ),
        (
            "signature of another token",
            Some(format!(
                "{}.{}.{}",
                parts[0],
                parts[1],
                token(Algorithm::RS256, &claims(now + 1))
                    .split('.')
                    .nth(2)
                    .unwrap()
            )),
        ),
        (
            "truncated signature",
            Some(format!("{}.{}.{}", parts[0], parts[1], &parts[2][..20])),
        ),
        ("two parts", Some(format!("{}.{}", parts[0], parts[1]))),
        (
            "alg none",
            Some(format!("{}.{}.", b64("{\"alg\":\"none\"}"), parts[1])),
        ),
        (
            "alg none signed",
            Some(format!(
                "{}.{}.{}",
                b64("{\"alg\":\"none\"}"),
                parts[1],
                parts[2]
            )),
        ),
        (
            "unknown alg",
            Some(format!(
                "{}.{}.{}",
                b64("{\"alg\":\"XX999\"}"),
                parts[1],
                parts[2]
            )),
        ),
        (
            "bad header json",
            Some(format!("{}.{}.{}", b64("{\"alg\""), parts[1], parts[2])),
        ),
        (
            "bad payload base64",
            Some(format!("{}.%%%.{}", parts[0], parts[2])),
        ),
        (
            "unknown kid",
            Some(format!(
                "{}.{}.{}",
                b64("{\"alg\":\"RS256\",\"kid\":\"nope\"}"),
                parts[1],
                parts[2]
            )),
        ),
        ("garbage", Some("garbage".into())),
    ]);
    let mut hs_with_rsa_kid = jsonwebtoken::Header::new(Algorithm::HS256);
    hs_with_rsa_kid.kid = Some("rsa".into());
    vectors.push((
        "HS256 naming the RSA key",
        Some(
            jsonwebtoken::encode(&hs_with_rsa_kid, &good, &encoding_key(Algorithm::HS256)).unwrap(),
        ),
    ));
    vectors
}

fn header(response: &Response, name: &str) -> Option<String> {
    response.header(name)
}

#[test]
fn same_answers_as_native_jwt_authn() {
    let upstream = EchoUpstream::start().unwrap();
    let envoy = side_by_side(&upstream, &config(local_provider()), None);
    let now = seconds(SystemTime::now());
    let mut allowed = 0;
    for (name, token) in vectors(now) {
        let authorization = token.as_ref().map(|t| format!("Bearer {t}"));
        let native = send(&envoy, "native", "/api/x?y=1", authorization.as_deref());
        let ours = send(&envoy, "wasm", "/api/x?y=1", authorization.as_deref());
        assert_eq!(
            ours.status,
            native.status,
            "{name}: status\n{}",
            envoy.logs()
        );
        assert_eq!(
            header(&ours, "www-authenticate"),
            header(&native, "www-authenticate"),
            "{name}: www-authenticate"
        );
        if native.status != 200 {
            assert_eq!(
                String::from_utf8_lossy(&ours.body),
                String::from_utf8_lossy(&native.body),
                "{name}: body"
            );
            assert_eq!(
                header(&ours, "content-type"),
                header(&native, "content-type"),
                "{name}: content-type"
            );
        } else {
            allowed += 1;
            for claim_header in ["x-sub", "x-tenant", "x-jwt-payload", "authorization"] {
                assert_eq!(
                    ours.upstream_header_all(claim_header),
                    native.upstream_header_all(claim_header),
                    "{name}: upstream {claim_header}"
                );
            }
        }
    }
    assert!(
        allowed >= 8,
        "the comparison covers successes too ({allowed})"
    );
    // Hostile placements of tokens and headers: the same verdict and upstream request.
    let good = token(Algorithm::RS256, &claims(now));
    let parts: Vec<&str> = good.split('.').collect();
    let with_payload = |payload: String| format!("{}.{}.{}", parts[0], b64(&payload), parts[2]);
    let forged = with_payload(json!({"iss": ISSUER, "aud": "api", "sub": "admin"}).to_string());
    let repeated_iss = with_payload(format!(r#"{{"iss":"x","iss":"{ISSUER}","aud":"api"}}"#));
    let bearer = |token: &str| format!("Bearer {token}");
    // (what, path, headers)
    type Placement = (&'static str, String, Vec<(&'static str, String)>);
    let hostile: Vec<Placement> = vec![
        (
            "forged token under an encoded parameter name",
            format!("/api?access%5Ftoken={forged}"),
            vec![("authorization", bearer(&good))],
        ),
        (
            "good token under two spellings",
            format!("/api?access%5Ftoken={good}&access_token={good}"),
            vec![],
        ),
        (
            "spoofed claim headers on a public path",
            "/public/x".into(),
            vec![("x-sub", "admin".into()), ("x-jwt-payload", "e30".into())],
        ),
        (
            "spoofed claim header next to a good token",
            "/api".into(),
            vec![
                ("authorization", bearer(&good)),
                ("x-tenant", "evil".into()),
            ],
        ),
        (
            "prefix followed by =",
            "/api".into(),
            vec![("authorization", format!("Bearer ={good}"))],
        ),
        (
            "repeated iss",
            "/api".into(),
            vec![("authorization", bearer(&repeated_iss))],
        ),
        (
            "= after the signature",
            "/api".into(),
            vec![("authorization", bearer(&format!("{good}=")))],
        ),
    ];
    for (name, path, headers) in hostile {
        let send_to = |listener: &str| {
            let mut request = Request::get(&path).header("host", "api.example.com");
            for (header, value) in &headers {
                request = request.header(header, value);
            }
            request
                .send(envoy.listener_port(listener).unwrap())
                .unwrap()
        };
        let (native, ours) = (send_to("native"), send_to("wasm"));
        assert_eq!(ours.status, native.status, "{name}\n{}", envoy.logs());
        if native.status != 200 {
            assert_eq!(ours.body, native.body, "{name}");
            continue;
        }
        assert_eq!(ours.json()["path"], native.json()["path"], "{name}");
        for upstream_header in ["x-sub", "x-tenant", "x-jwt-payload", "authorization"] {
            assert_eq!(
                ours.upstream_header_all(upstream_header),
                native.upstream_header_all(upstream_header),
                "{name}: {upstream_header}"
            );
        }
    }
    let public = send(&envoy, "wasm", "/public/x", None);
    assert_eq!(
        public.status, 200,
        "a rule without requires lets requests through"
    );
}

#[test]
fn a_bad_config_is_refused_with_its_field_path() {
    let upstream = EchoUpstream::start().unwrap();
    let bad =
        config(json!({"issuer": ISSUER, "local_jwks": {"inline_string": "{\"keys\": \"none\"}"}}));
    let bootstrap = BootstrapBuilder::new(upstream.port())
        .listener("main", vec![jwt_auth(&bad)])
        .build();
    let exited =
        envoy_harness::run_expecting_exit(&bootstrap, std::time::Duration::from_secs(60)).unwrap();
    assert!(
        exited.status.is_some_and(|s| !s.success()),
        "{}",
        exited.logs
    );
    assert!(
        exited.logs.contains("jwt_auth: invalid configuration at providers.main.local_jwks.inline_string: [keys] in Jwks is not an array"),
        "{}",
        exited.logs
    );
}

fn remote_provider(timeout: &str) -> Value {
    json!({
        "issuer": ISSUER,
        "audiences": ["api"],
        "remote_jwks": {"http_uri": {"uri": "http://keys.example/.well-known/jwks.json", "cluster": "jwks", "timeout": timeout}, "cache_duration": "300s"},
        "claim_to_headers": [{"header_name": "x-sub", "claim_name": "sub"}]
    })
}

#[test]
fn remote_jwks_from_a_loopback_cluster() {
    let upstream = EchoUpstream::start().unwrap();
    let keys = EchoUpstream::start().unwrap();
    keys.reply_always(CannedReply {
        status: 200,
        headers: vec![("content-type".into(), b"application/json".to_vec())],
        body: jwks().to_string().into_bytes(),
    });
    let envoy = side_by_side(
        &upstream,
        &config(remote_provider("2s")),
        Some(("jwks", keys.port())),
    );
    let now = seconds(SystemTime::now());
    for (name, token) in vectors(now) {
        let authorization = token.as_ref().map(|t| format!("Bearer {t}"));
        let native = send(&envoy, "native", "/api", authorization.as_deref());
        let ours = send(&envoy, "wasm", "/api", authorization.as_deref());
        assert_eq!(ours.status, native.status, "{name}\n{}", envoy.logs());
        assert_eq!(
            ours.upstream_header_all("x-sub"),
            native.upstream_header_all("x-sub"),
            "{name}"
        );
    }
    let fetches = keys.received();
    assert!(
        fetches
            .iter()
            .all(|request| request.path == "/.well-known/jwks.json"),
        "{fetches:?}"
    );
    assert!(
        envoy
            .logs()
            .contains("jwt_auth: provider main: fetched 5 key(s)"),
        "{}",
        envoy.logs()
    );
}

#[test]
fn a_failing_jwks_server_gives_the_same_401() {
    let upstream = EchoUpstream::start().unwrap();
    let keys = EchoUpstream::start().unwrap();
    keys.reply_always(CannedReply {
        status: 500,
        headers: Vec::new(),
        body: b"broken".to_vec(),
    });
    let envoy = side_by_side(
        &upstream,
        &config(remote_provider("1s")),
        Some(("jwks", keys.port())),
    );
    let token = format!(
        "Bearer {}",
        token(Algorithm::RS256, &claims(seconds(SystemTime::now())))
    );
    let native = send(&envoy, "native", "/api", Some(&token));
    let ours = send(&envoy, "wasm", "/api", Some(&token));
    assert_eq!(native.status, 401);
    assert_eq!(ours.status, 401, "{}", envoy.logs());
    assert_eq!(
        String::from_utf8_lossy(&ours.body),
        "Jwks remote fetch is failed"
    );
    assert_eq!(
        String::from_utf8_lossy(&ours.body),
        String::from_utf8_lossy(&native.body)
    );
    assert_eq!(
        header(&ours, "www-authenticate"),
        header(&native, "www-authenticate")
    );
    assert!(envoy.logs().contains("jwt_auth: provider main: fetching http://keys.example/.well-known/jwks.json failed: status 500"), "{}", envoy.logs());
}
