//! jwt-auth's per-request logic on sdk-ext's fake host: the remote key-set fetch, the fetch
//! lock shared by workers, and the wake-up of waiting requests, natively and in microseconds.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod tokens;

use jsonwebtoken::Algorithm;
use jwt_auth::filter::JwtAuthRoot;
use sdk_ext::fake::FakeModule;
use sdk_ext::host::StreamType;
use sdk_ext::Action;
use serde_json::{json, Value};
use std::time::Duration;
use tokens::*;

const ISSUER: &str = "https://issuer.example";

fn remote_config() -> Value {
    json!({
        "providers": {"main": {
            "issuer": ISSUER, "audiences": ["api"],
            "forward_payload_header": "x-jwt-payload",
            "remote_jwks": {
                "http_uri": {"uri": "https://keys.example/jwks.json", "cluster": "jwks", "timeout": "2s"},
                "cache_duration": "600s"
            }
        }},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "main"}}]
    })
}

fn module() -> FakeModule {
    FakeModule::standalone::<JwtAuthRoot>(remote_config().to_string().as_bytes())
        .unwrap_or_else(|error| panic!("refused: {error}"))
}

fn now_seconds(module: &FakeModule) -> u64 {
    module.host().now_nanos() / 1_000_000_000
}

fn bearer(module: &FakeModule) -> String {
    format!(
        "Bearer {}",
        token(Algorithm::RS256, &claims(now_seconds(module)))
    )
}

/// Starts a request with a token; returns its stream and what the filter answered.
fn request(module: &mut FakeModule, auth: &str) -> (u32, Action) {
    let stream = module.stream();
    let action = module.request_headers(
        stream,
        &[
            (":method", "GET"),
            (":path", "/api"),
            (":authority", "api.example.com"),
            (":scheme", "https"),
            ("authorization", auth),
        ],
        true,
    );
    (stream, action)
}

fn jwks_body() -> Vec<u8> {
    jwks().to_string().into_bytes()
}

fn refusal(module: &FakeModule, stream: u32) -> Option<(u32, String)> {
    module.host().local_reply(stream).map(|reply| {
        (
            reply.status,
            String::from_utf8_lossy(&reply.body).into_owned(),
        )
    })
}

#[test]
fn waiting_requests_resume_once_the_fetched_keys_arrive() {
    let mut module = module();
    let auth = bearer(&module);
    let (first, action) = request(&mut module, &auth);
    assert_eq!(action, Action::Pause);
    let (second, _) = request(&mut module, &auth);
    module.run_ticks(1);
    let calls = module.host().pending_calls();
    assert_eq!(calls.len(), 1, "one fetch for every waiting request");
    assert_eq!(calls[0].cluster, "jwks");
    assert_eq!(calls[0].header(":path").as_deref(), Some("/jwks.json"));
    assert_eq!(
        calls[0].header(":authority").as_deref(),
        Some("keys.example")
    );
    assert_eq!(calls[0].timeout, Duration::from_secs(2));
    assert!(module.host().continued(first).is_empty());
    module.respond(
        calls[0].token,
        200,
        &[("content-type", "application/json")],
        &jwks_body(),
    );
    for stream in [first, second] {
        assert_eq!(module.host().continued(stream), [StreamType::Request]);
        assert_eq!(refusal(&module, stream), None);
        assert!(module
            .host()
            .request_header(stream, "x-jwt-payload")
            .is_some());
        assert_eq!(module.host().request_header(stream, "authorization"), None);
    }
    assert_eq!(module.host().metric("jwt_auth.jwks_fetch_success"), Some(1));
    assert_eq!(module.host().metric("jwt_auth.allowed"), Some(2));
    let (third, action) = request(&mut module, &auth);
    assert_eq!(
        action,
        Action::Continue,
        "later requests use the fetched keys at once"
    );
    assert!(module.host().pending_calls().is_empty());
    // The second waiting request and the third reuse the first one's verification.
    assert_eq!(module.host().metric("jwt_auth.jwt_cache_hit"), Some(2));
    module.end(third);
}

#[test]
fn a_failed_fetch_answers_every_waiting_request_with_401_then_backs_off() {
    let mut module = module();
    let auth = bearer(&module);
    let (first, _) = request(&mut module, &auth);
    let (second, _) = request(&mut module, &auth);
    module.run_ticks(1);
    let token = module.host().pending_calls()[0].token;
    module.respond(token, 503, &[], b"down");
    for stream in [first, second] {
        assert_eq!(
            refusal(&module, stream),
            Some((401, "Jwks remote fetch is failed".to_string()))
        );
        assert!(module.host().continued(stream).is_empty());
    }
    assert_eq!(module.host().metric("jwt_auth.jwks_fetch_failed"), Some(1));
    assert_eq!(
        module.host().metric("jwt_auth.denied.jwks_fetch_failed"),
        Some(2)
    );
    // Within the back-off a new request fails at once instead of waiting on a new fetch.
    let (third, action) = request(&mut module, &auth);
    assert_eq!(action, Action::Pause);
    assert_eq!(refusal(&module, third).map(|r| r.0), Some(401));
    // The idle tick is 1 s, the back-off too: tick by hand inside it.
    for _ in 0..5 {
        module.advance(Duration::from_millis(100));
        module.tick();
    }
    assert!(
        module.host().pending_calls().is_empty(),
        "no fetch during the back-off"
    );
    module.advance(Duration::from_millis(500));
    let (fourth, _) = request(&mut module, &auth);
    module.run_ticks(1);
    let calls = module.host().pending_calls();
    assert_eq!(calls.len(), 1, "fetched again after the back-off");
    module.respond(calls[0].token, 200, &[], &jwks_body());
    assert_eq!(module.host().continued(fourth), [StreamType::Request]);
}

#[test]
fn a_fetch_that_never_answers_fails_each_request_at_its_own_deadline() {
    let mut module = module();
    let auth = bearer(&module);
    let (first, _) = request(&mut module, &auth);
    module.run_ticks(1);
    module.advance(Duration::from_millis(1000));
    let (second, _) = request(&mut module, &auth);
    // 2 s timeout + 100 ms margin after the first began to wait.
    module.advance(Duration::from_millis(1098));
    module.tick();
    assert_eq!(refusal(&module, first), None, "still waiting");
    module.advance(Duration::from_millis(1));
    module.tick();
    assert_eq!(refusal(&module, first).map(|r| r.0), Some(401));
    assert_eq!(refusal(&module, second), None, "its own deadline is later");
    assert!(module.host().continued(second).is_empty());
}

#[test]
fn workers_share_one_fetch_through_the_lock_and_adopt_its_keys() {
    let mut first = module();
    let mut second = first.worker();
    let auth = bearer(&first);
    let (on_first, _) = request(&mut first, &auth);
    let (on_second, _) = request(&mut second, &auth);
    first.run_ticks(1);
    second.tick();
    let calls = (first.host().pending_calls(), second.host().pending_calls());
    assert_eq!(
        calls.0.len(),
        1,
        "the first worker took the lock and fetched"
    );
    assert!(
        calls.1.is_empty(),
        "the second saw the lock and waits: {:?}",
        calls.1
    );
    first.respond(calls.0[0].token, 200, &[], &jwks_body());
    assert_eq!(first.host().continued(on_first), [StreamType::Request]);
    assert!(second.host().continued(on_second).is_empty());
    second.run_ticks(1);
    assert_eq!(
        second.host().continued(on_second),
        [StreamType::Request],
        "the second adopted the shared key set"
    );
    assert!(
        second.host().pending_calls().is_empty(),
        "without a fetch of its own"
    );
    assert_eq!(second.host().metric("jwt_auth.jwks_fetch_success"), Some(0));
}

#[test]
fn a_failure_on_one_worker_fails_the_requests_waiting_on_the_other() {
    let mut first = module();
    let mut second = first.worker();
    let auth = bearer(&first);
    let (_, _) = request(&mut first, &auth);
    let (on_second, _) = request(&mut second, &auth);
    first.run_ticks(1);
    second.tick();
    let token = first.host().pending_calls()[0].token;
    first.fail_call(token);
    second.run_ticks(1);
    assert_eq!(refusal(&second, on_second).map(|r| r.0), Some(401));
}

#[test]
fn a_request_body_waits_with_its_headers_and_a_client_that_leaves_is_forgotten() {
    let mut module = module();
    let auth = bearer(&module);
    let post = module.stream();
    let headers = [
        (":method", "POST"),
        (":path", "/api"),
        (":authority", "api.example.com"),
        ("authorization", auth.as_str()),
    ];
    assert_eq!(module.request_headers(post, &headers, false), Action::Pause);
    // The body waits with the headers: nothing reaches a later filter before the token is verified.
    assert_eq!(module.request_body(post, b"{\"x\":1}", true), Action::Pause);
    let (gone, _) = request(&mut module, &auth);
    module.reset(gone);
    module.run_ticks(1);
    let token = module.host().pending_calls()[0].token;
    module.respond(token, 200, &[], &jwks_body());
    assert_eq!(module.host().continued(post), [StreamType::Request]);
    assert_eq!(
        module.host().metric("jwt_auth.allowed"),
        Some(1),
        "the gone one never counted"
    );
}

#[test]
fn a_forged_token_is_refused_after_the_keys_arrive() {
    let mut module = module();
    let now = now_seconds(&module);
    let mut forged = token(Algorithm::RS256, &claims(now));
    forged.push('A');
    let (stream, _) = request(&mut module, &format!("Bearer {forged}"));
    module.run_ticks(1);
    let token = module.host().pending_calls()[0].token;
    module.respond(token, 200, &[], &jwks_body());
    assert_eq!(refusal(&module, stream).map(|r| r.0), Some(401));
    assert!(module.host().continued(stream).is_empty());
}

#[test]
fn bad_configs_are_refused_with_the_field_path() {
    let mut config = remote_config();
    config["providers"]["main"]["remote_jwks"]["http_uri"]["timeout"] = json!("soon");
    let error = FakeModule::standalone::<JwtAuthRoot>(config.to_string().as_bytes())
        .err()
        .expect("refused");
    assert!(
        error
            .path
            .starts_with("providers.main.remote_jwks.http_uri.timeout"),
        "{error}"
    );
}
