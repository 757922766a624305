//! Each filter's generated EnvoyFilter, rendered as Envoy gets it once istio-agent has fetched the
//! module (the module as a local file), is accepted by real Envoy and acts on a request.

use envoy_harness::config::{filter_wasm, BootstrapBuilder};
use envoy_harness::process::workspace_root;
use envoy_harness::{validate, EchoUpstream, Envoy, Request};
use istio_manifests::deploy::load_deploy;
use istio_manifests::render::{local_http_filter, read_yaml_doc};
use serde_json::Value;

/// The HTTP filter of `istio/<filter>/envoyfilter.yaml`, running this checkout's module.
fn rendered_filter(filter: &str) -> Value {
    let dir = workspace_root().join("istio").join(filter);
    let deploy = load_deploy(&dir).unwrap();
    let envoy_filter = read_yaml_doc(&dir.join("envoyfilter.yaml")).unwrap();
    local_http_filter(&envoy_filter, &filter_wasm(&deploy.module)).unwrap()
}

/// Starts Envoy with the rendered filter after `envoy --mode validate` accepted the same config.
fn start(builder: BootstrapBuilder, filter: &str) -> Envoy {
    let bootstrap = builder
        .listener("main", vec![rendered_filter(filter)])
        .build();
    let exited = validate(bootstrap.clone()).unwrap();
    assert!(
        exited.status.is_some_and(|s| s.success()),
        "{filter}: envoy --mode validate refused the rendered EnvoyFilter: {}",
        exited.logs
    );
    Envoy::start(bootstrap).unwrap()
}

#[test]
fn header_rewrite_manifest_rewrites_headers() {
    let upstream = EchoUpstream::start().unwrap();
    let envoy = start(BootstrapBuilder::new(upstream.port()), "header-rewrite");
    let response = Request::get("/items")
        .header("x-internal-token", "secret")
        .header("x-echo-header-x-upstream-secret", "leak")
        .send(envoy.port())
        .unwrap();
    assert_eq!(response.status, 200, "{}", envoy.logs());
    assert!(response.upstream_header("x-internal-token").is_none());
    assert_eq!(response.upstream_header_all("x-original-path"), ["/items"]);
    assert_eq!(response.upstream_header_all("x-client-ip"), ["127.0.0.1"]);
    assert_eq!(
        response.header_all("x-powered-by"),
        ["proxy-wasm header-rewrite"]
    );
    assert!(response.header("x-upstream-secret").is_none());
}

#[test]
fn jwt_auth_manifest_guards_api_and_reaches_its_mesh_cluster() {
    let upstream = EchoUpstream::start().unwrap();
    // The cluster Istio builds from istio/jwt-auth/upstreams.yaml's ServiceEntry; here a
    // loopback server stands in for keys.example.com.
    let jwks = EchoUpstream::start().unwrap();
    let builder = BootstrapBuilder::new(upstream.port())
        .cluster("outbound|443||keys.example.com", jwks.port());
    let envoy = start(builder, "jwt-auth");
    let missing = Request::get("/api/items").send(envoy.port()).unwrap();
    assert_eq!(missing.status, 401, "{}", envoy.logs());
    let bad = Request::get("/api/items")
        .header("authorization", "Bearer not.a.token")
        .send(envoy.port())
        .unwrap();
    assert_eq!(bad.status, 401, "{}", envoy.logs());
    let public = Request::get("/public").send(envoy.port()).unwrap();
    assert_eq!(public.status, 200, "{}", envoy.logs());
    let reached: Vec<String> = upstream.received().into_iter().map(|r| r.path).collect();
    assert_eq!(reached, ["/public"]);
}

#[test]
fn rate_limit_manifest_limits_logins() {
    let upstream = EchoUpstream::start().unwrap();
    let envoy = start(BootstrapBuilder::new(upstream.port()), "rate-limit");
    let login = || {
        let mut request = Request::get("/login");
        request.method = "POST".into();
        request.send(envoy.port()).unwrap()
    };
    // The example allows 5 logins a minute per client address.
    for attempt in 1..=5 {
        let response = login();
        assert_eq!(response.status, 200, "attempt {attempt}: {}", envoy.logs());
    }
    let limited = login();
    assert_eq!(limited.status, 429, "{}", envoy.logs());
    assert_eq!(limited.header_all("x-rate-limited-by"), ["edge"]);
    let other = Request::get("/other").send(envoy.port()).unwrap();
    assert_eq!(other.status, 200, "{}", envoy.logs());
}

#[test]
fn chain_manifest_runs_its_three_filters() {
    let upstream = EchoUpstream::start().unwrap();
    let jwks = EchoUpstream::start().unwrap();
    let builder = BootstrapBuilder::new(upstream.port())
        .cluster("outbound|443||keys.example.com", jwks.port());
    let envoy = start(builder, "chain");
    let missing = Request::get("/api/items").send(envoy.port()).unwrap();
    assert_eq!(missing.status, 401, "{}", envoy.logs());
    // A client's x-user is removed before rate-limit could key on it; header-rewrite acts both ways.
    let public = Request::get("/public")
        .header("x-user", "mallory")
        .send(envoy.port())
        .unwrap();
    assert_eq!(public.status, 200, "{}", envoy.logs());
    assert!(public.upstream_header("x-user").is_none());
    assert_eq!(public.upstream_header_all("x-client-ip"), ["127.0.0.1"]);
    assert_eq!(public.header_all("x-powered-by"), ["proxy-wasm chain"]);
    // Only the request jwt-auth let through reached rate-limit.
    assert_eq!(
        envoy.stat("wasmcustom.chain.http_local_rate_limit.ok"),
        Some(1),
        "{}",
        envoy.logs()
    );
    let reached: Vec<String> = upstream.received().into_iter().map(|r| r.path).collect();
    assert_eq!(reached, ["/public"]);
}
