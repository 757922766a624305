//! The service with its counters in a real Redis (`redis-server` from PATH).

mod common;

use common::*;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::Code;
use rate_limit_service::testing::RedisServer;
use rate_limit_service::{Limits, Server, StartError, Storage};
use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};
use tonic::Code as GrpcCode;

const LIMITS: &str = r#"
domain: edge
descriptors:
  - key: user
    rate_limit: {unit: minute, requests_per_unit: 10}
  - key: path
    descriptors:
      - key: method
        rate_limit: {unit: hour, requests_per_unit: 3}
"#;

#[tokio::test]
async fn two_instances_admit_exactly_the_limit_together() {
    let redis = RedisServer::start().unwrap();
    let a = start(LIMITS, Storage::Redis(redis.url()));
    let b = start(LIMITS, Storage::Redis(redis.url()));
    let clients = [
        client(a.port()).await,
        client(b.port()).await,
        client(a.port()).await,
        client(b.port()).await,
    ];
    assert_eq!(burst(&clients, 60, "edge", &[("user", "u")]).await, 10);
    assert_eq!(burst(&clients, 8, "edge", &[("user", "u")]).await, 0);
    // Another value has its own counter, in both instances.
    assert_eq!(burst(&clients, 20, "edge", &[("user", "v")]).await, 10);
}

#[tokio::test]
async fn remaining_and_reset_come_from_redis() {
    let redis = RedisServer::start().unwrap();
    let server = start(LIMITS, Storage::Redis(redis.url()));
    let mut c = client(server.port()).await;
    let entries = [("path", "/p"), ("method", "GET")];
    for remaining in [2, 1, 0] {
        let r = call(&mut c, "edge", &entries).await;
        assert!(is_ok(&r));
        assert_eq!(status(&r, 0).limit_remaining, remaining);
        let reset = status(&r, 0).duration_until_reset.unwrap();
        assert!((3590..=3600).contains(&reset.seconds), "{reset:?}");
    }
    let r = call(&mut c, "edge", &entries).await;
    assert_eq!(status(&r, 0).code, Code::OverLimit as i32);
    // Each (path, method) pair has its own counter.
    assert!(is_ok(
        &call(&mut c, "edge", &[("path", "/p"), ("method", "PUT")]).await
    ));
    assert!(is_ok(
        &call(&mut c, "edge", &[("path", "/q"), ("method", "GET")]).await
    ));
}

#[tokio::test]
async fn a_restarted_service_continues_the_count() {
    let redis = RedisServer::start().unwrap();
    let server = start(LIMITS, Storage::Redis(redis.url()));
    let port = server.port();
    let mut c = client(port).await;
    for _ in 0..7 {
        assert!(is_ok(&call(&mut c, "edge", &[("user", "r")]).await));
    }
    server.stop();
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let _server = start_on(listener, LIMITS, Storage::Redis(redis.url()));
    let mut c = client(port).await;
    let r = call(&mut c, "edge", &[("user", "r")]).await;
    assert_eq!(status(&r, 0).limit_remaining, 2);
    assert_eq!(burst(&[c], 10, "edge", &[("user", "r")]).await, 2);
}

/// Calls until the service answers (not UNAVAILABLE), for at most `within`.
async fn until_available(c: &mut Client, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        let req = request("edge", vec![descriptor(&[("user", "x")])], 0);
        match c.should_rate_limit(req).await {
            Ok(_) => return true,
            Err(e) => assert_eq!(e.code(), GrpcCode::Unavailable, "{e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn redis_down_is_unavailable_quickly_and_recovery_needs_no_restart() {
    let mut redis = RedisServer::start().unwrap();
    let server = start(LIMITS, Storage::Redis(redis.url()));
    let mut c = client(server.port()).await;
    assert!(is_ok(&call(&mut c, "edge", &[("user", "x")]).await));

    redis.kill();
    for _ in 0..3 {
        let started = Instant::now();
        let req = request("edge", vec![descriptor(&[("user", "x")])], 0);
        let e = c.should_rate_limit(req).await.unwrap_err();
        assert_eq!(e.code(), GrpcCode::Unavailable, "{e:?}");
        assert!(e.message().contains("counter storage unavailable"), "{e:?}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
    // Requests without a limit need no Redis.
    let r = call(&mut c, "edge", &[("nolimit", "x")]).await;
    assert!(is_ok(&r));

    redis.restart().unwrap();
    assert!(until_available(&mut c, Duration::from_secs(10)).await);
    // Redis restarted empty: the count starts afresh.
    let r = call(&mut c, "edge", &[("user", "x")]).await;
    assert_eq!(status(&r, 0).limit_remaining, 8);
}

#[tokio::test]
async fn a_hung_redis_times_out() {
    let redis = RedisServer::start().unwrap();
    let server = start(LIMITS, Storage::Redis(redis.url()));
    let mut c = client(server.port()).await;
    assert!(is_ok(&call(&mut c, "edge", &[("user", "h")]).await));
    let pid = redis.pid().unwrap().to_string();
    let signal = |sig: &str| {
        assert!(Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success());
    };
    signal("-STOP");
    let started = Instant::now();
    let req = request("edge", vec![descriptor(&[("user", "h")])], 0);
    let e = c.should_rate_limit(req).await.unwrap_err();
    let elapsed = started.elapsed();
    signal("-CONT");
    assert_eq!(e.code(), GrpcCode::Unavailable, "{e:?}");
    assert!(elapsed < Duration::from_millis(2500), "{elapsed:?}");
    assert!(until_available(&mut c, Duration::from_secs(10)).await);
}

#[test]
fn start_fails_clearly_without_redis() {
    // A port with nothing listening.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{port}");
    let started = Instant::now();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let e = match Server::start(
        listener,
        Limits::parse(LIMITS).unwrap(),
        Storage::Redis(url.clone()),
    ) {
        Err(e) => e,
        Ok(_) => panic!("started without Redis"),
    };
    assert!(matches!(e, StartError::Redis(_)), "{e:?}");
    let message = e.to_string();
    assert!(
        message.contains(&url) && message.contains("unreachable"),
        "{message}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let e = match Server::start(
        listener,
        Limits::parse(LIMITS).unwrap(),
        Storage::Redis("http://x".into()),
    ) {
        Err(e) => e,
        Ok(_) => panic!("started with a bad URL"),
    };
    assert!(e.to_string().contains("bad Redis URL"), "{e}");
}
