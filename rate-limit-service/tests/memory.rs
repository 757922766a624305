//! The service over real gRPC on loopback, counters in memory.

mod common;

use common::*;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::{rate_limit::Unit, Code};
use rate_limit_service::Storage;
use std::time::Duration;
use tonic::Code as GrpcCode;

const LIMITS: &str = r#"
domain: edge
descriptors:
  - key: user
    rate_limit: {unit: minute, requests_per_unit: 5, name: per-user}
  - key: remote_address
    value: 10.0.0.1
    rate_limit: {unit: second, requests_per_unit: 100, name: vip}
  - key: path
    descriptors:
      - key: method
        value: POST
        rate_limit: {unit: hour, requests_per_unit: 2}
        shadow_mode: true
  - key: internal
    rate_limit: {unlimited: true}
  - key: budget
    rate_limit: {unit: hour, requests_per_unit: 10}
  - key: fast
    rate_limit: {unit: second, requests_per_unit: 2}
"#;

#[tokio::test]
async fn a_burst_admits_exactly_the_limit() {
    let server = start(LIMITS, Storage::Memory);
    let clients = [client(server.port()).await, client(server.port()).await];
    assert_eq!(burst(&clients, 40, "edge", &[("user", "alice")]).await, 5);
    assert_eq!(burst(&clients, 10, "edge", &[("user", "alice")]).await, 0);
}

#[tokio::test]
async fn each_value_has_its_own_counter() {
    let server = start(LIMITS, Storage::Memory);
    let mut c = client(server.port()).await;
    for _ in 0..5 {
        assert!(is_ok(&call(&mut c, "edge", &[("user", "a")]).await));
    }
    assert!(!is_ok(&call(&mut c, "edge", &[("user", "a")]).await));
    assert!(is_ok(&call(&mut c, "edge", &[("user", "b")]).await));
}

#[tokio::test]
async fn status_reports_limit_remaining_and_reset() {
    let server = start(LIMITS, Storage::Memory);
    let mut c = client(server.port()).await;
    let r = call(&mut c, "edge", &[("user", "a")]).await;
    let s = status(&r, 0);
    assert_eq!(s.code, Code::Ok as i32);
    let limit = s.current_limit.as_ref().unwrap();
    assert_eq!(
        (limit.requests_per_unit, limit.unit, limit.name.as_str()),
        (5, Unit::Minute as i32, "per-user")
    );
    assert_eq!(s.limit_remaining, 4);
    let reset = s.duration_until_reset.as_ref().unwrap();
    assert!((58..=60).contains(&reset.seconds), "{reset:?}");
    for remaining in [3, 2, 1, 0] {
        let r = call(&mut c, "edge", &[("user", "a")]).await;
        assert_eq!(status(&r, 0).limit_remaining, remaining);
    }
    let r = call(&mut c, "edge", &[("user", "a")]).await;
    assert_eq!(r.overall_code, Code::OverLimit as i32);
    assert_eq!(status(&r, 0).code, Code::OverLimit as i32);
    assert_eq!(status(&r, 0).limit_remaining, 0);
    assert!(status(&r, 0).duration_until_reset.is_some());
}

#[tokio::test]
async fn value_match_wins_over_other_values() {
    let server = start(LIMITS, Storage::Memory);
    let mut c = client(server.port()).await;
    let r = call(&mut c, "edge", &[("remote_address", "10.0.0.1")]).await;
    assert_eq!(status(&r, 0).current_limit.as_ref().unwrap().name, "vip");
    assert_eq!(status(&r, 0).limit_remaining, 99);
    // Another value has no node: no limit.
    let r = call(&mut c, "edge", &[("remote_address", "10.0.0.2")]).await;
    assert!(is_ok(&r) && status(&r, 0).current_limit.is_none());
}

#[tokio::test]
async fn shadow_mode_counts_but_admits() {
    let server = start(LIMITS, Storage::Memory);
    let mut c = client(server.port()).await;
    let entries = [("path", "/x"), ("method", "POST")];
    let remaining: Vec<u32> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            let r = call(&mut c, "edge", &entries).await;
            assert!(is_ok(&r));
            assert_eq!(status(&r, 0).code, Code::Ok as i32);
            v.push(status(&r, 0).limit_remaining);
        }
        v
    };
    assert_eq!(remaining, [1, 0, 0, 0]);
    // GET has no limit.
    let r = call(&mut c, "edge", &[("path", "/x"), ("method", "GET")]).await;
    assert!(status(&r, 0).current_limit.is_none());
}

#[tokio::test]
async fn unlimited_unknown_domain_and_no_match_are_ok() {
    let server = start(LIMITS, Storage::Memory);
    let mut c = client(server.port()).await;
    for _ in 0..50 {
        let r = call(&mut c, "edge", &[("internal", "x")]).await;
        assert!(is_ok(&r) && status(&r, 0).current_limit.is_none());
    }
    for _ in 0..10 {
        let r = call(&mut c, "nowhere", &[("user", "a")]).await;
        assert!(is_ok(&r) && status(&r, 0).current_limit.is_none());
    }
    let r = call(&mut c, "edge", &[("nokey", "a")]).await;
    assert!(is_ok(&r) && status(&r, 0).current_limit.is_none());
    // Deeper than the tree: no limit either.
    let r = call(&mut c, "edge", &[("user", "a"), ("more", "b")]).await;
    assert!(is_ok(&r) && status(&r, 0).current_limit.is_none());
}

#[tokio::test]
async fn hits_addend() {
    let server = start(LIMITS, Storage::Memory);
    let mut c = client(server.port()).await;
    let d = || descriptor(&[("budget", "k")]);
    let send = |descriptors, hits| {
        let req = request("edge", descriptors, hits);
        let mut c = c.clone();
        async move { c.should_rate_limit(req).await.unwrap().into_inner() }
    };
    let r = send(vec![d()], 4).await;
    assert_eq!(status(&r, 0).limit_remaining, 6);
    // 0 means 1.
    let r = send(vec![d()], 0).await;
    assert_eq!(status(&r, 0).limit_remaining, 5);
    // A descriptor's own hits_addend overrides the request's.
    let r = send(vec![with_hits(d(), 3)], 1).await;
    assert_eq!(status(&r, 0).limit_remaining, 2);
    // Over the remaining: refused and not counted.
    let r = send(vec![d()], 3).await;
    assert!(!is_ok(&r));
    let r = send(vec![d()], 2).await;
    assert!(is_ok(&r));
    assert_eq!(status(&r, 0).limit_remaining, 0);
    c = client(server.port()).await;
    assert!(!is_ok(&call(&mut c, "edge", &[("budget", "k")]).await));
}

#[tokio::test]
async fn descriptors_are_counted_independently() {
    let server = start(LIMITS, Storage::Memory);
    let mut c = client(server.port()).await;
    let req = || {
        request(
            "edge",
            vec![
                descriptor(&[("fast", "f")]),
                descriptor(&[("budget", "b")]),
                descriptor(&[("internal", "i")]),
            ],
            0,
        )
    };
    for _ in 0..2 {
        let r = c.should_rate_limit(req()).await.unwrap().into_inner();
        assert!(is_ok(&r));
    }
    let r = c.should_rate_limit(req()).await.unwrap().into_inner();
    assert_eq!(r.overall_code, Code::OverLimit as i32);
    let codes: Vec<i32> = r.statuses.iter().map(|s| s.code).collect();
    assert_eq!(
        codes,
        [Code::OverLimit as i32, Code::Ok as i32, Code::Ok as i32]
    );
    // "budget" was counted on the refused call too: 3 of 10 used.
    assert_eq!(status(&r, 1).limit_remaining, 7);
}

#[tokio::test]
async fn the_window_resets() {
    let server = start(LIMITS, Storage::Memory);
    let mut c = client(server.port()).await;
    for _ in 0..2 {
        assert!(is_ok(&call(&mut c, "edge", &[("fast", "w")]).await));
    }
    let r = call(&mut c, "edge", &[("fast", "w")]).await;
    assert!(!is_ok(&r));
    let reset = status(&r, 0).duration_until_reset.unwrap();
    assert!(reset.seconds == 0 && reset.nanos > 0, "{reset:?}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(is_ok(&call(&mut c, "edge", &[("fast", "w")]).await));
}

#[tokio::test]
async fn malformed_requests_are_invalid_arguments() {
    let server = start(LIMITS, Storage::Memory);
    let mut c = client(server.port()).await;
    let cases = [
        (
            request("", vec![descriptor(&[("user", "a")])], 0),
            "domain must not be empty",
        ),
        (
            request("edge", vec![], 0),
            "descriptor list must not be empty",
        ),
        (
            request(
                "edge",
                vec![descriptor(&[("user", "a")]), descriptor(&[])],
                0,
            ),
            "descriptor 1 has no entries",
        ),
        (
            request("edge", vec![descriptor(&[("user", "a"), ("", "b")])], 0),
            "descriptor 0 entry 1 has an empty key",
        ),
    ];
    for (req, message) in cases {
        let e = c.should_rate_limit(req).await.unwrap_err();
        assert_eq!(e.code(), GrpcCode::InvalidArgument, "{e:?}");
        assert!(e.message().contains(message), "{e:?}");
    }
    // Nothing was counted by the refused calls.
    let r = call(&mut c, "edge", &[("user", "a")]).await;
    assert_eq!(status(&r, 0).limit_remaining, 4);
}

#[tokio::test]
async fn a_restarted_memory_server_starts_afresh_on_the_same_port() {
    let server = start(LIMITS, Storage::Memory);
    let port = server.port();
    let mut c = client(port).await;
    for _ in 0..5 {
        call(&mut c, "edge", &[("user", "a")]).await;
    }
    assert!(!is_ok(&call(&mut c, "edge", &[("user", "a")]).await));
    server.stop();
    // The old connection is closed.
    assert!(c
        .should_rate_limit(request("edge", vec![descriptor(&[("user", "a")])], 0))
        .await
        .is_err());
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let _server = start_on(listener, LIMITS, Storage::Memory);
    let mut c = client(port).await;
    assert!(is_ok(&call(&mut c, "edge", &[("user", "a")]).await));
}
