//! chain.wasm against the same filters as separate wasm modules, in Envoy with two workers:
//! header-rewrite, jwt-auth and rate-limit (the same statuses, client headers and upstream
//! headers request for request, and the same 429 counts over a burst; and while jwt-auth waits
//! for a key set, nothing of a request reaches the upstream); ext-authz, rate-limit and
//! json-redact (a callout pause, a limit on a header the pause added, bodies rewritten both
//! ways); and the edge chain against the four native twins.

use crate::tokens::{jwk, seconds, token};
use envoy_harness::authz::AuthzServer;
use envoy_harness::config::{
    default_routes, filter_wasm, native_filter, wasm_filter, BootstrapBuilder,
};
use envoy_harness::echo::{CannedReply, ReceivedRequest};
use envoy_harness::{
    http1, EchoUpstream, Envoy, EnvoyOptions, HangingServer, RecordingUpstream, Request, Response,
};
use jsonwebtoken::Algorithm;
use serde_json::{json, Value};
use std::io::Write;
use std::net::TcpStream;
use std::sync::{Once, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

const WORKERS: u32 = 2;
const ISSUER: &str = "https://issuer.example";
/// The per-user bucket.
const USER_TOKENS: usize = 5;
/// How long jwt-auth waits for the key set that never comes.
const FETCH_TIMEOUT: Duration = Duration::from_secs(1);
/// A request answered later than this was held for a fetch; a refusal without one takes ~2 ms.
const HELD: Duration = Duration::from_millis(100);

struct Fixture {
    envoy: Envoy,
    recorder: RecordingUpstream,
    _upstream: EchoUpstream,
    _hanging: HangingServer,
}

/// header-rewrite copies `x-token` into `authorization`, defaults `x-user` and marks the
/// request; on the response it copies one of rate-limit's headers and removes another.
fn header_rewrite() -> Value {
    json!({"mutations": {
        "request_mutations": [
            {"append": {"header": {"key": "authorization", "value": "%REQ(x-token)%"}, "append_action": "ADD_IF_ABSENT"}},
            {"append": {"header": {"key": "x-user", "value": "anonymous"}, "append_action": "ADD_IF_ABSENT"}},
            {"append": {"header": {"key": "x-rewritten", "value": "yes"}}}
        ],
        "response_mutations": [
            {"append": {"header": {"key": "x-seen-remaining", "value": "%RESP(x-ratelimit-remaining)%"}}},
            {"append": {"header": {"key": "x-seen-rewritten", "value": "%REQ(x-rewritten)%"}}},
            {"remove": "x-ratelimit-reset"}
        ]
    }})
}

/// `/api` needs a token of the local key set, `/hang` one of the key set that never comes.
fn jwt_auth(stat_prefix: &str) -> Value {
    json!({
        "stat_prefix": stat_prefix,
        "providers": {
            "main": {
                "issuer": ISSUER,
                "audiences": ["api"],
                "local_jwks": {"inline_string": json!({"keys": [jwk(Algorithm::ES256)]}).to_string()}
            },
            "hanging": {
                "issuer": ISSUER,
                "audiences": ["api"],
                "remote_jwks": {
                    "http_uri": {"uri": "http://hanging.example/jwks.json", "cluster": "hanging", "timeout": "1s"},
                    "cache_duration": "600s"
                }
            }
        },
        "rules": [
            {"match": {"prefix": "/public"}},
            {"match": {"prefix": "/hang/open"}},
            {"match": {"prefix": "/hang"}, "requires": {"provider_name": "hanging"}},
            {"match": {"prefix": "/api"}, "requires": {"provider_name": "main"}}
        ]
    })
}

/// Each `x-user` gets `USER_TOKENS`; the buckets live in each listener's own module.
fn rate_limit(stat_prefix: &str) -> Value {
    json!({
        "stat_prefix": stat_prefix,
        "filter_enabled": {"default_value": {"numerator": 100, "denominator": "HUNDRED"}},
        "filter_enforced": {"default_value": {"numerator": 100, "denominator": "HUNDRED"}},
        "enable_x_ratelimit_headers": "DRAFT_VERSION_03",
        "token_bucket": {"max_tokens": 10000, "tokens_per_fill": 1, "fill_interval": "3600s"},
        "rate_limits": [{"actions": [{"request_headers": {"header_name": "x-user", "descriptor_key": "user"}}]}],
        "descriptors": [{"entries": [{"key": "user", "value": ""}],
                         "token_bucket": {"max_tokens": USER_TOKENS, "tokens_per_fill": 1, "fill_interval": "3600s"}}]
    })
}

/// `/hang` goes to the recording upstream, the rest to the echo.
fn routes() -> Value {
    json!([
        {"match": {"prefix": "/hang"}, "route": {"cluster": "recorder"}},
        {"match": {"prefix": "/"}, "route": {"cluster": "upstream"}}
    ])
}

/// One Envoy, two workers: `chain` runs chain.wasm, `sequence` the three standalone modules,
/// `jwt` jwt_auth.wasm alone (each module in its own VM).
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Result<Fixture, String>> = OnceLock::new();
    static STARTER: Once = Once::new();
    envoy_harness::process_fixture(&FIXTURE, &STARTER, start_fixture)
}

fn start_fixture() -> Fixture {
    let upstream = EchoUpstream::start().unwrap();
    let recorder = RecordingUpstream::start().unwrap();
    let hanging = HangingServer::start().unwrap();
    let chain = json!({"filters": [
        {"name": "header-rewrite", "config": header_rewrite()},
        {"name": "jwt-auth", "config": jwt_auth("chain")},
        {"name": "rate-limit", "config": rate_limit("chain")}
    ]});
    let mut bootstrap = BootstrapBuilder::new(upstream.port())
        .listener_with_routes(
            "chain",
            vec![wasm_filter("chain", &filter_wasm("chain"), &chain)],
            routes(),
        )
        .listener_with_routes(
            "sequence",
            vec![
                wasm_filter(
                    "header_rewrite",
                    &filter_wasm("header_rewrite"),
                    &header_rewrite(),
                ),
                wasm_filter("jwt_auth", &filter_wasm("jwt_auth"), &jwt_auth("sequence")),
                wasm_filter(
                    "rate_limit",
                    &filter_wasm("rate_limit"),
                    &rate_limit("sequence"),
                ),
            ],
            routes(),
        )
        .listener_with_routes(
            "jwt",
            vec![wasm_filter(
                "jwt_auth_alone",
                &filter_wasm("jwt_auth"),
                &jwt_auth("alone"),
            )],
            routes(),
        )
        .cluster("recorder", recorder.port())
        .cluster("hanging", hanging.port())
        .build();
    // Envoy's HTTP/1 codecs drop trailers unless asked to keep them, downstream and upstream.
    for listener in bootstrap["static_resources"]["listeners"]
        .as_array_mut()
        .unwrap()
    {
        listener["filter_chains"][0]["filters"][0]["typed_config"]["http_protocol_options"] =
            json!({"enable_trailers": true});
    }
    for cluster in bootstrap["static_resources"]["clusters"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .filter(|cluster| cluster["name"] == "recorder")
    {
        cluster["typed_extension_protocol_options"] = json!({
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http_protocol_options": {"enable_trailers": true}}
            }
        });
    }
    let options = EnvoyOptions {
        concurrency: WORKERS,
        ..EnvoyOptions::default()
    };
    Fixture {
        envoy: Envoy::start_with(bootstrap, &options).unwrap(),
        recorder,
        _upstream: upstream,
        _hanging: hanging,
    }
}

fn good_token() -> String {
    let now = seconds(SystemTime::now());
    let claims = json!({"iss": ISSUER, "aud": "api", "sub": "alice", "exp": now + 600});
    format!("Bearer {}", token(Algorithm::ES256, &claims))
}

fn port(listener: &str) -> u16 {
    fixture().envoy.listener_port(listener).unwrap()
}

fn send(listener: &str, request: &Request) -> Response {
    let envoy = &fixture().envoy;
    request
        .send(port(listener))
        .unwrap_or_else(|error| panic!("{listener} {}: {error}\n{}", request.path, envoy.logs()))
}

/// Headers whose values differ from one request to the next, whatever the filters do.
const VOLATILE: [&str; 3] = ["date", "x-request-id", "x-envoy-upstream-service-time"];

fn stable(headers: Vec<(String, String)>) -> Vec<(String, String)> {
    headers
        .into_iter()
        .filter(|(name, _)| !VOLATILE.contains(&name.as_str()))
        .collect()
}

/// What a request came to, as the client and the upstream saw it.
#[derive(Debug, PartialEq)]
struct Seen {
    status: u16,
    client_headers: Vec<(String, String)>,
    /// The request's headers and body as the echo upstream received them (none when a filter
    /// answered).
    upstream_headers: Vec<(String, String)>,
    upstream_body: Option<String>,
    /// The body of a filter's local reply.
    reply_body: Option<String>,
}

fn seen(response: &Response) -> Seen {
    let client_headers = stable(
        response
            .headers
            .iter()
            .map(|(name, value)| (name.clone(), String::from_utf8_lossy(value).into_owned()))
            .collect(),
    );
    let echo = response.json();
    let reached = echo.get("headers").is_some();
    Seen {
        status: response.status,
        client_headers,
        upstream_headers: stable(response.upstream_headers()),
        upstream_body: reached.then(|| echo["body"].as_str().unwrap_or_default().to_string()),
        reply_body: (!reached).then(|| String::from_utf8_lossy(&response.body).into_owned()),
    }
}

fn get(path: &str, headers: &[(&str, &str)]) -> Request {
    let mut request = Request::get(path).header("host", "api.example.com");
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request
}

/// The same request on both listeners; they must agree. Returns the chain's.
fn same(what: &str, request: &Request) -> Seen {
    let ours = seen(&send("chain", request));
    let theirs = seen(&send("sequence", request));
    assert_eq!(
        ours,
        theirs,
        "{what}: chain (left) and the three modules (right) differ\n{}",
        fixture().envoy.logs()
    );
    ours
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

#[test]
fn the_chain_answers_like_the_three_modules_in_sequence() {
    let token = good_token();
    let no_token = same("no token", &get("/api/items", &[("x-user", "nina")]));
    assert_eq!(no_token.status, 401);
    assert_eq!(no_token.reply_body.as_deref(), Some("Jwt is missing"));
    assert_eq!(
        header(&no_token.client_headers, "x-seen-rewritten"),
        Some("yes")
    );
    assert_eq!(header(&no_token.client_headers, "x-ratelimit-limit"), None);

    let bad = same(
        "bad token",
        &get(
            "/api/items",
            &[("x-token", "Bearer a.b.c"), ("x-user", "nina")],
        ),
    );
    assert_eq!(bad.status, 401);
    assert_eq!(bad.upstream_body, None);

    // nina's bucket is full: the two refusals took nothing from it.
    let good = same(
        "good token",
        &get("/api/items", &[("x-token", &token), ("x-user", "nina")]),
    );
    assert_eq!(good.status, 200);
    assert_eq!(
        header(&good.client_headers, "x-ratelimit-remaining"),
        Some("4")
    );
    assert_eq!(header(&good.upstream_headers, "authorization"), None);

    // header-rewrite's effects: the token it copied, the user it set, the marker; on the way
    // back it sees what rate-limit added and removes the reset.
    let rewritten = same(
        "header-rewrite effects",
        &get("/api/items", &[("x-token", &token)]),
    );
    assert_eq!(rewritten.status, 200);
    assert_eq!(
        header(&rewritten.upstream_headers, "x-user"),
        Some("anonymous")
    );
    assert_eq!(
        header(&rewritten.upstream_headers, "x-rewritten"),
        Some("yes")
    );
    assert_eq!(
        header(&rewritten.client_headers, "x-seen-remaining"),
        Some("4")
    );
    assert_eq!(
        header(&rewritten.client_headers, "x-ratelimit-limit"),
        Some("5")
    );
    assert_eq!(header(&rewritten.client_headers, "x-ratelimit-reset"), None);

    let public = same("public, no token", &get("/public/a", &[("x-user", "pat")]));
    assert_eq!(public.status, 200);

    let mut post = get("/api/orders", &[("x-token", &token), ("x-user", "olga")]);
    post.method = "POST".into();
    post.body = b"{\"qty\": 1}".to_vec();
    let posted = same("POST with a body", &post);
    assert_eq!(posted.upstream_body.as_deref(), Some("{\"qty\": 1}"));

    // Over the limit: the sixth of quinn's requests is refused by rate-limit.
    let quinn = get("/api/items", &[("x-token", &token), ("x-user", "quinn")]);
    let statuses: Vec<u16> = (0..=USER_TOKENS)
        .map(|index| same(&format!("quinn #{index}"), &quinn).status)
        .collect();
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429]);
}

/// Sends `total` requests from `threads` threads at once, each on its own connection, so the
/// kernel spreads them over both workers.
fn burst(listener: &str, request: &Request, total: usize, threads: usize) -> Vec<u16> {
    let port = port(listener);
    thread::scope(|scope| {
        let senders: Vec<_> = (0..threads)
            .map(|thread| {
                scope.spawn(move || {
                    (thread..total)
                        .step_by(threads)
                        .map(|_| request.send(port).expect("Envoy answers").status)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        senders
            .into_iter()
            .flat_map(|sender| sender.join().expect("sender thread"))
            .collect()
    })
}

#[test]
fn a_burst_over_two_workers_admits_the_bucket_in_both() {
    let fixture = fixture();
    let request = get(
        "/api/burst",
        &[("x-token", &good_token()), ("x-user", "burst")],
    );
    for (listener, prefix) in [("chain", "chain"), ("sequence", "sequence")] {
        let statuses = burst(listener, &request, 60, 8);
        let admitted = statuses.iter().filter(|status| **status == 200).count();
        let limited = statuses.iter().filter(|status| **status == 429).count();
        assert_eq!(
            (admitted, limited),
            (USER_TOKENS, 60 - USER_TOKENS),
            "{listener}\n{}",
            fixture.envoy.logs()
        );
        assert!(
            fixture
                .envoy
                .stat(&format!(
                    "wasmcustom.{prefix}.http_local_rate_limit.rate_limited"
                ))
                .unwrap_or(0)
                >= (60 - USER_TOKENS) as u64,
            "{listener}'s rate-limit counts its own refusals"
        );
    }
    let busy = (0..WORKERS)
        .filter(|worker| {
            fixture
                .envoy
                .stat(&format!(
                    "listener.127.0.0.1_0.worker_{worker}.downstream_cx_total"
                ))
                .unwrap_or(0)
                > 0
        })
        .count();
    assert_eq!(
        busy, WORKERS as usize,
        "the bursts should reach both workers"
    );
}

/// A raw HTTP/1.1 request with a chunked body and trailers; the response as the client got it.
fn send_chunked(listener: &str, path: &str, authorization: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port(listener))).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nhost: api.example.com\r\nauthorization: {authorization}\r\n\
         x-user: hang\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n\
         5\r\nhello\r\n6\r\n world\r\n0\r\nx-checksum: abc\r\n\r\n"
    )
    .unwrap();
    let mut reader = http1::reader(&stream);
    let head = http1::read_response_head(&mut reader).unwrap();
    let body = http1::read_body(&mut reader, &head, true).unwrap();
    (head.status, String::from_utf8_lossy(&body).into_owned())
}

/// While jwt-auth waits for a key set that never comes, a POST's body (sent whole, or chunked
/// with trailers) stays in Envoy; the fetch times out and the client gets 401. The upstream
/// receives nothing at all.
#[test]
fn a_body_sent_while_the_key_set_is_fetched_never_reaches_the_upstream() {
    let fixture = fixture();
    let authorization = good_token();
    let mut post = get("/hang/orders", &[("authorization", &authorization)]);
    post.method = "POST".into();
    post.body = b"{\"qty\": 1}".to_vec();
    for listener in ["jwt", "chain"] {
        // The recorder sees what gets through: a chunked POST on a path without a requirement
        // arrives whole, trailers included.
        fixture.recorder.take();
        assert_eq!(
            send_chunked(listener, "/hang/open", &authorization),
            (200, "reached".to_string())
        );
        let reached = fixture.recorder.take();
        assert!(
            reached.starts_with("POST /hang/open HTTP/1.1")
                && reached.contains("hello")
                && reached.contains("x-checksum: abc"),
            "{listener}: {reached}"
        );
        // After a failed fetch jwt-auth refuses at once for a second, so a try can miss the
        // wait; the next one, a second later, starts a fetch and waits on it.
        let mut waited_for_the_fetch = false;
        for _ in 0..3 {
            // Both at once, so both wait on the same fetch.
            let (response, (chunked, chunked_waited), waited) = thread::scope(|scope| {
                let chunked = scope.spawn(|| {
                    let started = Instant::now();
                    (
                        send_chunked(listener, "/hang/orders", &authorization),
                        started.elapsed(),
                    )
                });
                let started = Instant::now();
                let response = send(listener, &post);
                (response, chunked.join().unwrap(), started.elapsed())
            });
            // Anything let through would have reached the recorder by now.
            thread::sleep(Duration::from_millis(300));
            assert_eq!(
                fixture.recorder.take(),
                "",
                "{listener}: the upstream received part of a request whose token was never verified"
            );
            assert_eq!(
                (
                    response.status,
                    String::from_utf8_lossy(&response.body).as_ref()
                ),
                (401, "Jwks remote fetch is failed"),
                "{listener}\n{}",
                fixture.envoy.logs()
            );
            assert_eq!(
                chunked,
                (401, "Jwks remote fetch is failed".to_string()),
                "{listener}"
            );
            // Held, not refused at once: a fetch was under way (started by this request, an
            // earlier one, or the other worker) and both requests waited for its end.
            if waited.min(chunked_waited) >= HELD {
                waited_for_the_fetch = true;
                break;
            }
            thread::sleep(FETCH_TIMEOUT + Duration::from_millis(100));
        }
        assert!(
            waited_for_the_fetch,
            "{listener}: no try waited for a fetch"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The edge chain: cors → jwt-auth → rbac → rate-limit in one module, against the four native
// twins chained in the same order, in one Envoy. Every config is written once, in the native
// field names, and given to both.

const APP_ORIGIN: &str = "https://app.example";
/// The tokens of the edge listeners' buckets: each listener has its own.
const EDGE_TOKENS: usize = 3;

/// The route's CorsPolicy: one allowed origin, with credentials.
fn cors_policy() -> Value {
    json!({
        "allow_origin_string_match": [{"exact": APP_ORIGIN}],
        "allow_methods": "GET,POST",
        "allow_headers": "authorization,content-type",
        "expose_headers": "x-request-id",
        "max_age": "600",
        "allow_credentials": true
    })
}

/// Every request needs a token; its `sub` becomes `x-user`.
fn edge_jwt() -> Value {
    json!({
        "providers": {"main": {
            "issuer": ISSUER,
            "audiences": ["api"],
            "local_jwks": {"inline_string": json!({"keys": [jwk(Algorithm::ES256)]}).to_string()},
            "claim_to_headers": [{"header_name": "x-user", "claim_name": "sub"}]
        }},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "main"}}]
    })
}

/// Only alice is allowed, whatever she asks for.
fn edge_rbac() -> Value {
    json!({"rules": {"action": "ALLOW", "policies": {"alice-only": {
        "permissions": [{"any": true}],
        "principals": [{"header": {"name": "x-user", "string_match": {"exact": "alice"}}}]
    }}}})
}

/// `EDGE_TOKENS` requests, then 429s.
fn edge_rate_limit() -> Value {
    let always = json!({"default_value": {"numerator": 100, "denominator": "HUNDRED"}});
    json!({
        "stat_prefix": "edge",
        "token_bucket": {"max_tokens": EDGE_TOKENS, "tokens_per_fill": 1, "fill_interval": "3600s"},
        "filter_enabled": always,
        "filter_enforced": always
    })
}

/// The wasm cors filter's policy entry: the same policy, for every path.
fn cors_policy_matching_all() -> Value {
    let mut policy = cors_policy();
    policy["match"] = json!({"prefix": "/"});
    policy
}

/// The native CorsPolicy, for the route's `typed_per_filter_config`.
fn native_cors_policy() -> Value {
    let mut policy = cors_policy();
    policy["@type"] = json!("type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy");
    policy
}

struct EdgeFixture {
    envoy: Envoy,
    _upstream: EchoUpstream,
}

fn edge_fixture() -> &'static EdgeFixture {
    static FIXTURE: OnceLock<Result<EdgeFixture, String>> = OnceLock::new();
    static STARTER: Once = Once::new();
    envoy_harness::process_fixture(&FIXTURE, &STARTER, start_edge_fixture)
}

fn start_edge_fixture() -> EdgeFixture {
    let upstream = EchoUpstream::start().unwrap();
    let chain = json!({"filters": [
        {"name": "cors", "config": {"policies": [cors_policy_matching_all()]}},
        {"name": "jwt-auth", "config": edge_jwt()},
        {"name": "rbac", "config": edge_rbac()},
        {"name": "rate-limit", "config": edge_rate_limit()}
    ]});
    // Native cors applies the route's CorsPolicy, and needs a route to a cluster.
    let native_routes = json!([{
        "match": {"prefix": "/"},
        "route": {"cluster": "upstream"},
        "typed_per_filter_config": {"envoy.filters.http.cors": native_cors_policy()}
    }]);
    let bootstrap = BootstrapBuilder::new(upstream.port())
        .listener_with_routes(
            "edge-chain",
            vec![wasm_filter("edge_chain", &filter_wasm("chain"), &chain)],
            default_routes(),
        )
        .listener_with_routes(
            "edge-native",
            vec![
                native_filter("envoy.filters.http.cors", "cors.v3.Cors", json!({})),
                native_filter(
                    "envoy.filters.http.jwt_authn",
                    "jwt_authn.v3.JwtAuthentication",
                    edge_jwt(),
                ),
                native_filter("envoy.filters.http.rbac", "rbac.v3.RBAC", edge_rbac()),
                native_filter(
                    "envoy.filters.http.local_ratelimit",
                    "local_ratelimit.v3.LocalRateLimit",
                    edge_rate_limit(),
                ),
            ],
            native_routes,
        )
        .build();
    EdgeFixture {
        envoy: Envoy::start(bootstrap).unwrap(),
        _upstream: upstream,
    }
}

/// What the client sees of an edge request: the status, the access-control-* and vary
/// headers, the body of a local reply, and whether the upstream got the request.
#[derive(Debug, PartialEq)]
struct EdgeSeen {
    status: u16,
    cors_headers: Vec<(String, String)>,
    reply_body: Option<String>,
    reached_upstream: bool,
}

fn edge_send(listener: &str, request: &Request) -> EdgeSeen {
    let envoy = &edge_fixture().envoy;
    let port = envoy.listener_port(listener).unwrap();
    let response = request
        .send(port)
        .unwrap_or_else(|error| panic!("{listener} {}: {error}\n{}", request.path, envoy.logs()));
    let mut cors_headers: Vec<(String, String)> = response
        .headers
        .iter()
        .filter(|(name, _)| name.starts_with("access-control-") || name == "vary")
        .map(|(name, value)| (name.clone(), String::from_utf8_lossy(value).into_owned()))
        .collect();
    cors_headers.sort();
    let reached_upstream = response.json().get("headers").is_some();
    EdgeSeen {
        status: response.status,
        cors_headers,
        reply_body: (!reached_upstream)
            .then(|| String::from_utf8_lossy(&response.body).into_owned()),
        reached_upstream,
    }
}

#[test]
fn the_edge_chain_answers_like_the_four_native_twins_in_order() {
    let now = seconds(SystemTime::now());
    let bearer = |sub: &str| {
        let claims = json!({"iss": ISSUER, "aud": "api", "sub": sub, "exp": now + 600});
        format!("Bearer {}", token(Algorithm::ES256, &claims))
    };
    let (alice, bob) = (bearer("alice"), bearer("bob"));
    let request = |method: &str, headers: &[(&str, &str)]| {
        let mut request = get("/orders", headers);
        request.method = method.into();
        request
    };
    let preflight = [
        ("origin", APP_ORIGIN),
        ("access-control-request-method", "POST"),
    ];
    let alice_from_app = [("origin", APP_ORIGIN), ("authorization", alice.as_str())];
    // (what, request, the status both must give). Sequential: the bucket counts requests.
    let mut cases: Vec<(&str, Request, u16)> = vec![
        (
            "preflight from the app, answered by cors",
            request("OPTIONS", &preflight),
            200,
        ),
        (
            "preflight from elsewhere goes on, and jwt refuses it",
            request(
                "OPTIONS",
                &[
                    ("origin", "https://evil.example"),
                    ("access-control-request-method", "POST"),
                ],
            ),
            401,
        ),
        (
            "no token, from the app",
            request("GET", &[("origin", APP_ORIGIN)]),
            401,
        ),
        (
            "a bad token",
            request(
                "GET",
                &[("origin", APP_ORIGIN), ("authorization", "Bearer a.b.c")],
            ),
            401,
        ),
        (
            "bob is refused by rbac",
            request(
                "GET",
                &[("origin", APP_ORIGIN), ("authorization", bob.as_str())],
            ),
            403,
        ),
        (
            "a forged x-user does not make bob alice",
            request(
                "GET",
                &[("authorization", bob.as_str()), ("x-user", "alice")],
            ),
            403,
        ),
    ];
    for _ in 0..EDGE_TOKENS {
        cases.push((
            "alice, within the limit",
            request("GET", &alice_from_app),
            200,
        ));
    }
    cases.push((
        "alice over the limit",
        request("POST", &alice_from_app),
        429,
    ));
    cases.push((
        "a preflight is never limited",
        request("OPTIONS", &preflight),
        200,
    ));
    let mut differences = Vec::new();
    for (what, request, status) in &cases {
        let mut ours = edge_send("edge-chain", request);
        let mut theirs = edge_send("edge-native", request);
        // Two differences on purpose, each in its filter's README: cors adds `vary: origin` to
        // every response its policy covers (native leaves caches to mix origins), and
        // rate-limit's 429 carries a JSON body where native's is plain text.
        let vary = ("vary".to_string(), "origin".to_string());
        if !ours.cors_headers.contains(&vary) {
            differences.push(format!("{what}: the chain's response has no vary: origin"));
        }
        ours.cors_headers.retain(|header| *header != vary);
        if theirs.status == 429 {
            assert_eq!(theirs.reply_body.as_deref(), Some("local_rate_limited"));
            let error = ours
                .reply_body
                .as_deref()
                .map(|body| serde_json::from_str::<Value>(body).unwrap());
            assert_eq!(
                error.map(|body| body["error"].clone()),
                Some(json!("local_rate_limited"))
            );
            (ours.reply_body, theirs.reply_body) = (None, None);
        }
        if ours != theirs || theirs.status != *status {
            differences.push(format!(
                "{what}: expected {status}\n  chain:  {ours:?}\n  native: {theirs:?}"
            ));
        }
    }
    assert!(
        differences.is_empty(),
        "{}\n{}",
        differences.join("\n"),
        edge_fixture().envoy.logs()
    );
}

// ---------------------------------------------------------------------------------------------
// ext-authz, rate-limit and json-redact: a callout pause, a limit keyed on a header the
// authorization service adds, and buffered bodies rewritten both ways, as chain.wasm and as the
// three standalone modules.

/// The authorization service: `/deny…` is refused with its own body and headers, `/slow…`
/// answers after ext-authz's timeout, anything else is allowed as the `x-user` it names.
fn authorize(request: &ReceivedRequest) -> (CannedReply, Duration) {
    let user = request
        .headers
        .iter()
        .find(|(name, _)| name == "x-user")
        .map(|(_, value)| value.clone())
        .unwrap_or_else(|| b"anonymous".to_vec());
    let path = request.path.trim_start_matches("/check");
    if path.starts_with("/deny") {
        let reply = CannedReply {
            status: 403,
            headers: vec![
                ("x-authz-reason".into(), b"policy".to_vec()),
                ("x-authz-secret".into(), b"not for clients".to_vec()),
            ],
            body: b"denied by policy".to_vec(),
        };
        return (reply, Duration::ZERO);
    }
    let delay = if path.starts_with("/slow") {
        Duration::from_millis(1500)
    } else {
        Duration::ZERO
    };
    let reply = CannedReply {
        status: 200,
        headers: vec![("x-authz-user".into(), user)],
        body: Vec::new(),
    };
    (reply, delay)
}

fn authz_ext_authz() -> Value {
    json!({
        "http_service": {
            "server_uri": {"uri": "http://authz", "cluster": "authz", "timeout": "0.5s"},
            "path_prefix": "/check",
            "authorization_request": {"allowed_headers": {"patterns": [{"exact": "x-user"}]}},
            "authorization_response": {
                "allowed_upstream_headers": {"patterns": [{"exact": "x-authz-user"}]},
                "allowed_client_headers": {"patterns": [{"exact": "x-authz-reason"}]}
            }
        }
    })
}

/// Three requests per user, as ext-authz names it in `x-authz-user`.
fn authz_rate_limit(stat_prefix: &str) -> Value {
    json!({
        "stat_prefix": stat_prefix,
        "filter_enabled": {"default_value": {"numerator": 100, "denominator": "HUNDRED"}},
        "filter_enforced": {"default_value": {"numerator": 100, "denominator": "HUNDRED"}},
        "token_bucket": {"max_tokens": 10000, "tokens_per_fill": 1, "fill_interval": "3600s"},
        "rate_limits": [{"actions": [{"request_headers": {"header_name": "x-authz-user", "descriptor_key": "user"}}]}],
        "descriptors": [{"entries": [{"key": "user", "value": ""}],
                         "token_bucket": {"max_tokens": 3, "tokens_per_fill": 1, "fill_interval": "3600s"}}]
    })
}

/// SSNs masked both ways; on the way back the echo's `method` too, to see the response rewritten.
fn authz_json_redact() -> Value {
    json!({"rules": [{"match": {"prefix": "/"}, "direction": "both",
                      "redact": ["/ssn", "/cards/*/number", "/method"], "mask": "***"}]})
}

struct AuthzFixture {
    envoy: Envoy,
    authz: AuthzServer,
    _upstream: EchoUpstream,
}

fn authz_fixture() -> &'static AuthzFixture {
    static FIXTURE: OnceLock<Result<AuthzFixture, String>> = OnceLock::new();
    static STARTER: Once = Once::new();
    envoy_harness::process_fixture(&FIXTURE, &STARTER, || {
        let upstream = EchoUpstream::start().unwrap();
        let authz = AuthzServer::start(authorize).unwrap();
        let chain = json!({"filters": [
            {"name": "ext-authz", "config": authz_ext_authz()},
            {"name": "rate-limit", "config": authz_rate_limit("chain")},
            {"name": "json-redact", "config": authz_json_redact()}
        ]});
        let bootstrap = BootstrapBuilder::new(upstream.port())
            .listener(
                "chain",
                vec![wasm_filter("chain", &filter_wasm("chain"), &chain)],
            )
            .listener(
                "sequence",
                vec![
                    wasm_filter("ext_authz", &filter_wasm("ext_authz"), &authz_ext_authz()),
                    wasm_filter(
                        "rate_limit",
                        &filter_wasm("rate_limit"),
                        &authz_rate_limit("sequence"),
                    ),
                    wasm_filter(
                        "json_redact",
                        &filter_wasm("json_redact"),
                        &authz_json_redact(),
                    ),
                ],
            )
            .cluster("authz", authz.port())
            .build();
        let options = EnvoyOptions {
            concurrency: WORKERS,
            ..EnvoyOptions::default()
        };
        AuthzFixture {
            envoy: Envoy::start_with(bootstrap, &options).unwrap(),
            authz,
            _upstream: upstream,
        }
    })
}

/// The same request on both listeners, which must agree; the chain's answer and how long it
/// took.
fn authz_same(what: &str, request: &Request) -> (Seen, Response) {
    let fixture = authz_fixture();
    let send = |listener: &str| {
        request
            .send(fixture.envoy.listener_port(listener).unwrap())
            .unwrap_or_else(|error| panic!("{what} on {listener}: {error}"))
    };
    let response = send("chain");
    let ours = seen(&response);
    let theirs = seen(&send("sequence"));
    assert_eq!(
        ours,
        theirs,
        "{what}: chain (left) and the three modules (right) differ\n{}",
        fixture.envoy.logs()
    );
    (ours, response)
}

fn post_json(path: &str, user: &str, body: &str) -> Request {
    let mut request = get(
        path,
        &[("x-user", user), ("content-type", "application/json")],
    );
    request.method = "POST".into();
    request.body = body.as_bytes().to_vec();
    request
}

#[test]
fn ext_authz_then_rate_limit_then_json_redact_answer_like_the_three_modules() {
    // Allowed: the service's user reaches rate-limit (its bucket) and the upstream; the body
    // waited in Envoy during the check and is redacted on the way up; the echo's reply is
    // redacted on the way back.
    let body = r#"{"name": "Ann", "ssn": "123-45-6789", "cards": [{"number": "4111"}, {"number": "5500"}]}"#;
    let (allowed, response) = authz_same("allowed", &post_json("/orders", "ann", body));
    assert_eq!(allowed.status, 200, "{allowed:?}");
    assert_eq!(
        header(&allowed.upstream_headers, "x-authz-user"),
        Some("ann")
    );
    assert_eq!(
        allowed.upstream_body.as_deref(),
        Some(r#"{"name": "Ann", "ssn": "***", "cards": [{"number": "***"}, {"number": "***"}]}"#)
    );
    assert_eq!(
        response.json()["method"],
        "***",
        "the response was redacted too"
    );
    assert_eq!(header(&allowed.client_headers, "content-length"), None);

    // Refused by the service: its status, body and allowed header, before rate-limit counts
    // anything or json-redact buffers anything.
    for _ in 0..2 {
        let (denied, _) = authz_same("denied", &post_json("/deny/orders", "bob", body));
        assert_eq!(denied.status, 403);
        assert_eq!(denied.reply_body.as_deref(), Some("denied by policy"));
        assert_eq!(
            header(&denied.client_headers, "x-authz-reason"),
            Some("policy")
        );
        assert_eq!(header(&denied.client_headers, "x-authz-secret"), None);
    }
    // The service too slow: ext-authz's status_on_error, at its timeout, not the service's.
    let started = Instant::now();
    let (slow, _) = authz_same("slow", &get("/slow/items", &[("x-user", "bob")]));
    assert_eq!(slow.status, 403);
    assert!(
        started.elapsed() < Duration::from_millis(2 * 1500),
        "{:?}",
        started.elapsed()
    );
    // bob's bucket was never touched: three allowed, then the fourth is limited.
    let statuses: Vec<u16> = (0..4)
        .map(|index| {
            authz_same(
                &format!("bob #{index}"),
                &get("/items", &[("x-user", "bob")]),
            )
            .0
            .status
        })
        .collect();
    assert_eq!(statuses, [200, 200, 200, 429]);
    // Each listener asked the service for each of its checks, with the user it named.
    let checks = authz_fixture().authz.received();
    let denied_checks = checks
        .iter()
        .filter(|check| check.path.starts_with("/check/deny"))
        .count();
    assert_eq!(denied_checks, 4, "two denials on each listener");
}
