//! chain.wasm against the standalone modules played one after the other, in test-host: the
//! request goes through standalone module 1, what it forwards upstream goes into module 2, and so
//! on; the response goes back in reverse. Both must give the client and the upstream the same
//! messages, and the same local replies.
// A test fails loudly, helpers included (clippy.toml exempts only the test functions).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../../jwt-auth/tests/tokens/mod.rs"]
mod tokens;

use jsonwebtoken::Algorithm;
use serde_json::{json, Value};
use std::path::Path;
use test_host::scenario::{workspace_scenarios, Exchange, Observed, Outcome, Scenario};
use test_host::{
    filter_wasm, Action, Error, HttpCall, HttpResponse, HttpStream, LocalResponse, Plugin, TestHost,
};
use tokens::{jwk, seconds, token};

/// The chain's filters, in the order the tests configure them.
const FILTERS: [&str; 3] = ["header-rewrite", "jwt-auth", "rate-limit"];

/// The standalone module of a filter the chain names `name`.
fn module(name: &str) -> String {
    name.replace('-', "_")
}

/// One way to run a list of configured filters: chain.wasm, or one standalone plugin each.
struct Pipeline {
    host: TestHost,
    plugins: Vec<Plugin>,
}

/// Answers the callouts of a plugin (a JWKS fetch): `None` leaves a call pending.
type Responder<'a> = &'a dyn Fn(&HttpCall) -> Option<HttpResponse>;

/// What one request came to.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    /// The request at the upstream: method, path, headers, body; `None` if it never got there.
    upstream: Option<Message>,
    /// The response at the client.
    client: Message,
    /// The local reply, if a filter sent one.
    reply: Option<Reply>,
    /// The request trailers at the upstream.
    upstream_trailers: Vec<(String, String)>,
    /// A filter held the request on the way (for a callout or a tick).
    paused: bool,
    /// Something of the request (headers, body, trailers) left a filter that was still
    /// holding it, before its callouts were answered.
    leaked: bool,
}

/// A message as status/method/path, headers in order, and body.
#[derive(Debug, Clone, PartialEq)]
struct Message {
    status: Option<u16>,
    method: Option<String>,
    path: Option<String>,
    headers: Vec<(String, String)>,
    body: String,
}

impl Message {
    fn of(observed: &Observed) -> Message {
        Message {
            status: observed.status,
            method: observed.method.clone(),
            path: observed.path.clone(),
            headers: observed.headers.clone(),
            body: String::from_utf8_lossy(&observed.body).into_owned(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// A local reply: status, details, body, headers.
type Reply = (u32, String, String, Vec<(String, String)>);

fn reply_of(reply: &LocalResponse) -> Reply {
    (
        reply.status,
        reply.details.clone(),
        String::from_utf8_lossy(&reply.body).into_owned(),
        pairs(reply.headers.entries()),
    )
}

fn pairs(entries: &[(Vec<u8>, Vec<u8>)]) -> Vec<(String, String)> {
    entries
        .iter()
        .map(|(name, value)| {
            (
                String::from_utf8_lossy(name).into_owned(),
                String::from_utf8_lossy(value).into_owned(),
            )
        })
        .collect()
}

/// Headers, body and trailers of one direction as they travel from one plugin to the next.
#[derive(Clone)]
struct Leg {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    trailers: Vec<(String, String)>,
}

impl Leg {
    fn of(message: &test_host::Message) -> Leg {
        Leg {
            headers: message
                .headers
                .as_ref()
                .map(|map| pairs(map.entries()))
                .unwrap_or_default(),
            body: message.body.clone(),
            trailers: message
                .trailers
                .as_ref()
                .map(|map| pairs(map.entries()))
                .unwrap_or_default(),
        }
    }
}

impl Pipeline {
    /// chain.wasm configured with `filters`.
    fn chain(filters: &[(&str, Value)]) -> Result<Pipeline, Error> {
        let host = TestHost::new();
        let entries: Vec<Value> = filters
            .iter()
            .map(|(name, config)| json!({"name": name, "config": config}))
            .collect();
        let plugin = host
            .plugin(filter_wasm("chain"))
            .name("chain")
            .root_id("chain")
            .config(json!({ "filters": entries }))
            .start()?;
        Ok(Pipeline {
            host,
            plugins: vec![plugin],
        })
    }

    /// Each filter's standalone module, one plugin each, on one host (so their metrics sit side
    /// by side as the chain's do).
    fn sequence(filters: &[(&str, Value)]) -> Result<Pipeline, Error> {
        let host = TestHost::new();
        let mut plugins = Vec::new();
        for (name, config) in filters {
            plugins.push(
                host.plugin(filter_wasm(&module(name)))
                    .name(&module(name))
                    .root_id(&module(name))
                    .config(config.clone())
                    .start()?,
            );
        }
        Ok(Pipeline { host, plugins })
    }

    /// Answers every pending callout `respond` has an answer for; true if it answered any.
    fn settle(plugin: &Plugin, respond: Responder<'_>) -> bool {
        let mut answered = false;
        loop {
            let due: Vec<(u32, HttpResponse)> = plugin
                .http_calls()
                .iter()
                .filter_map(|call| respond(call).map(|answer| (call.token, answer)))
                .collect();
            if due.is_empty() {
                return answered;
            }
            for (token, answer) in due {
                plugin.respond_http_call(token, answer).unwrap();
                answered = true;
            }
        }
    }

    /// Feeds one direction's headers, body and trailers into a stream.
    fn feed(stream: &mut HttpStream, leg: &Leg, request: bool) -> Vec<Action> {
        let has_body = !leg.body.is_empty();
        let has_trailers = !leg.trailers.is_empty();
        let mut actions = Vec::new();
        let end_at_headers = !has_body && !has_trailers;
        actions.push(
            if request {
                stream.send_request_headers(&leg.headers, end_at_headers)
            } else {
                stream.send_response_headers(&leg.headers, end_at_headers)
            }
            .unwrap(),
        );
        if stream.local_response().is_some() {
            return actions;
        }
        if has_body {
            actions.push(
                if request {
                    stream.send_request_body(&leg.body, !has_trailers)
                } else {
                    stream.send_response_body(&leg.body, !has_trailers)
                }
                .unwrap(),
            );
        }
        if has_trailers && stream.local_response().is_none() {
            actions.push(
                if request {
                    stream.send_request_trailers(&leg.trailers)
                } else {
                    stream.send_response_trailers(&leg.trailers)
                }
                .unwrap(),
            );
        }
        actions
    }

    /// Plays one request and the upstream's answer through every plugin in turn.
    fn play(&self, request: &Leg, upstream: &Leg, respond: Responder<'_>) -> Seen {
        let mut streams: Vec<HttpStream> = Vec::new();
        let mut leg = request.clone();
        let mut paused = false;
        let mut leaked = false;
        let mut reply = None;
        for plugin in &self.plugins {
            let mut stream = plugin.http_stream().unwrap();
            let actions = Self::feed(&mut stream, &leg, true);
            if actions.iter().any(|action| *action != Action::Continue) {
                paused = true;
                let early = stream.upstream_request();
                leaked |= stream.local_response().is_none()
                    && (early.headers.is_some()
                        || !early.body.is_empty()
                        || early.trailers.is_some());
            }
            // A waiting filter gets its callouts answered and its ticks (jwt-auth starts a key
            // set fetch on its next tick), a bounded number of times.
            for _ in 0..20 {
                if stream.upstream_request().complete || stream.local_response().is_some() {
                    break;
                }
                if !Self::settle(plugin, respond) {
                    plugin.tick().unwrap();
                }
            }
            let forwarded = stream.upstream_request();
            streams.push(stream);
            if let Some(local) = streams.last().and_then(HttpStream::local_response) {
                reply = Some(reply_of(&local));
                break;
            }
            assert!(
                forwarded.complete,
                "the request neither reached the upstream nor was answered: {:?}",
                plugin.logs()
            );
            leg = Leg::of(&forwarded);
        }
        let at_upstream = reply.is_none().then(|| Message::of(&observed(&leg)));
        let upstream_trailers = if reply.is_none() {
            leg.trailers.clone()
        } else {
            Vec::new()
        };
        // The upstream's answer, or the local reply as the replying plugin sent it to the client.
        let mut back = match streams.last() {
            Some(last) if reply.is_some() => Leg::of(&last.client_response()),
            _ => upstream.clone(),
        };
        let skip = usize::from(reply.is_some());
        let count = streams.len() - skip;
        for stream in streams.iter_mut().take(count).rev() {
            Self::feed(stream, &back, false);
            back = Leg::of(&stream.client_response());
        }
        for stream in streams {
            stream.end().unwrap();
        }
        Seen {
            upstream: at_upstream,
            client: Message::of(&observed(&back)),
            reply,
            upstream_trailers,
            paused,
            leaked,
        }
    }

    /// Plays a scenario exchange (its request and upstream answer).
    fn exchange(&self, exchange: &Exchange, respond: Responder<'_>) -> Seen {
        let request = &exchange.request;
        let mut headers = vec![
            (":method".to_string(), request.method.clone()),
            (":path".to_string(), request.path.clone()),
            (":authority".to_string(), "example.com".to_string()),
            (":scheme".to_string(), "http".to_string()),
        ];
        headers.extend(request.headers.iter().cloned());
        let answer = &exchange.upstream_response;
        let mut response = vec![(":status".to_string(), answer.status.to_string())];
        response.extend(answer.headers.iter().cloned());
        self.play(
            &Leg {
                headers,
                body: request.body.clone().into_bytes(),
                trailers: Vec::new(),
            },
            &Leg {
                headers: response,
                body: answer.body.clone().into_bytes(),
                trailers: Vec::new(),
            },
            respond,
        )
    }

    fn counter(&self, name: &str) -> Option<u64> {
        self.host.counter(name)
    }
}

fn observed(leg: &Leg) -> Observed {
    let headers = test_host::HeaderMap::from_pairs(&leg.headers);
    Observed::from_message(Some(&headers), &leg.body)
}

/// Never answers a callout.
fn no_callouts(_: &HttpCall) -> Option<HttpResponse> {
    None
}

/// The chain and the standalone modules, with the same filters and configs.
fn both(filters: &[(&str, Value)]) -> (Pipeline, Pipeline) {
    (
        Pipeline::chain(filters).unwrap_or_else(|e| panic!("the chain should start: {e}")),
        Pipeline::sequence(filters).unwrap_or_else(|e| panic!("the modules should start: {e}")),
    )
}

/// Plays `exchange` on both and asserts they agree; returns the chain's result.
fn same(
    chain: &Pipeline,
    sequence: &Pipeline,
    exchange: &Exchange,
    respond: Responder<'_>,
) -> Seen {
    let ours = chain.exchange(exchange, respond);
    let theirs = sequence.exchange(exchange, respond);
    assert_eq!(
        ours, theirs,
        "{}: the chain (left) and the standalone modules in sequence (right) differ",
        exchange.name
    );
    ours
}

fn exchange(value: Value) -> Exchange {
    serde_json::from_value(value).unwrap()
}

const ISSUER: &str = "https://issuer.example";

fn bearer() -> String {
    let now = seconds(std::time::SystemTime::now());
    let claims = json!({"iss": ISSUER, "aud": "api", "sub": "alice", "exp": now + 600});
    format!("Bearer {}", token(Algorithm::ES256, &claims))
}

/// jwt-auth that lets everything through: the scenarios of the other filters run with it
/// in the chain.
fn open_jwt_auth() -> Value {
    json!({
        "providers": {"main": {"issuer": ISSUER, "local_jwks": {"inline_string": json!({"keys": [jwk(Algorithm::ES256)]}).to_string()}}},
        "rules": [{"match": {"prefix": "/"}}]
    })
}

/// Every scenario file of the chain's filters, with that filter configured from the file and
/// the others from their own files (jwt-auth, which has none, lets every request through): the
/// chain meets each file's expectations and matches the modules in sequence, request by
/// request.
#[test]
fn every_scenario_gives_the_same_result_in_the_chain_and_in_sequence() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let scenarios: Vec<Scenario> = workspace_scenarios(&root)
        .iter()
        .map(|file| Scenario::load(file).unwrap())
        .filter(|scenario| FILTERS.iter().any(|name| module(name) == scenario.filter))
        .collect();
    let configs: Vec<(&str, Value)> = FILTERS
        .iter()
        .map(|name| {
            let config = scenarios
                .iter()
                .find(|scenario| scenario.filter == module(name))
                .map(|scenario| scenario.config.clone())
                .unwrap_or_else(open_jwt_auth);
            (*name, config)
        })
        .collect();
    assert!(
        scenarios.len() >= 2,
        "expected the scenarios of header-rewrite and rate-limit"
    );
    let mut failures = Vec::new();
    for scenario in &scenarios {
        // A fresh pair per file: each file's requests count from a full bucket.
        let (chain, sequence) = both(&configs);
        for exchange in &scenario.requests {
            let seen = same(&chain, &sequence, exchange, &no_callouts);
            let outcome = Outcome {
                upstream: seen.upstream.as_ref().map(|message| {
                    let headers = test_host::HeaderMap::from_pairs(&message.headers);
                    Observed::from_message(Some(&headers), message.body.as_bytes())
                }),
                response: {
                    let headers = test_host::HeaderMap::from_pairs(&seen.client.headers);
                    Observed::from_message(Some(&headers), seen.client.body.as_bytes())
                },
                logs: Vec::new(),
            };
            let mut expect = exchange.expect.clone();
            // The log lines are the single filter's; the chain prefixes them differently.
            expect.logs.clear();
            for failure in expect.check(&outcome) {
                failures.push(format!("{}: {}: {failure}", scenario.name, exchange.name));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// header-rewrite copies `x-token` into `authorization` and marks the request; jwt-auth
/// requires a token under `/api`; rate-limit gives each `x-user` 3 tokens and reports them.
/// On the response, header-rewrite copies and removes what rate-limit added.
fn story_configs(jwt_provider: Value) -> Vec<(&'static str, Value)> {
    vec![
        (
            "header-rewrite",
            json!({"mutations": {
                "request_mutations": [
                    {"append": {"header": {"key": "authorization", "value": "%REQ(x-token)%"}, "append_action": "ADD_IF_ABSENT"}},
                    {"append": {"header": {"key": "x-user", "value": "alice"}, "append_action": "ADD_IF_ABSENT"}},
                    {"append": {"header": {"key": "x-rewritten", "value": "yes"}}}
                ],
                "response_mutations": [
                    {"append": {"header": {"key": "x-seen-remaining", "value": "%RESP(x-ratelimit-remaining)%"}}},
                    {"append": {"header": {"key": "x-seen-rewritten", "value": "%REQ(x-rewritten)%"}}},
                    {"remove": "x-ratelimit-reset"}
                ]
            }}),
        ),
        (
            "jwt-auth",
            json!({
                "providers": {"main": jwt_provider},
                "rules": [
                    {"match": {"prefix": "/public"}},
                    {"match": {"prefix": "/api"}, "requires": {"provider_name": "main"}}
                ]
            }),
        ),
        (
            "rate-limit",
            json!({
                "stat_prefix": "story",
                "filter_enabled": {"default_value": {"numerator": 100, "denominator": "HUNDRED"}},
                "filter_enforced": {"default_value": {"numerator": 100, "denominator": "HUNDRED"}},
                "enable_x_ratelimit_headers": "DRAFT_VERSION_03",
                "token_bucket": {"max_tokens": 1000, "tokens_per_fill": 1, "fill_interval": "3600s"},
                "rate_limits": [{"actions": [{"request_headers": {"header_name": "x-user", "descriptor_key": "user"}}]}],
                "descriptors": [{"entries": [{"key": "user", "value": ""}],
                                 "token_bucket": {"max_tokens": 3, "tokens_per_fill": 1, "fill_interval": "3600s"}}]
            }),
        ),
    ]
}

fn local_provider() -> Value {
    json!({
        "issuer": ISSUER,
        "audiences": ["api"],
        "local_jwks": {"inline_string": json!({"keys": [jwk(Algorithm::ES256)]}).to_string()}
    })
}

fn get(name: &str, path: &str, headers: Value) -> Exchange {
    exchange(json!({
        "name": name,
        "request": {"path": path, "headers": headers},
        "upstream_response": {"status": 200, "headers": [["content-type", "text/plain"]], "body": "hello"}
    }))
}

const RATE_LIMITED: &str = "story.http_local_rate_limit.rate_limited";
const RATE_LIMIT_OK: &str = "story.http_local_rate_limit.ok";

#[test]
fn a_refusal_in_the_middle_stops_the_chain_after_the_filters_before_it_ran() {
    let (chain, sequence) = both(&story_configs(local_provider()));
    let token = bearer();
    // No token: jwt-auth answers 401; header-rewrite ran before it, rate-limit never saw it.
    let refused = same(
        &chain,
        &sequence,
        &get("no token", "/api/items", json!([])),
        &no_callouts,
    );
    let (status, _, body, _) = refused.reply.clone().expect("jwt-auth refuses");
    assert_eq!((status, body.as_str()), (401, "Jwt is missing"));
    assert_eq!(refused.upstream, None);
    assert_eq!(refused.client.status, Some(401));
    assert_eq!(
        refused.client.header("x-seen-rewritten"),
        Some("yes"),
        "header-rewrite's request mutations ran before the refusal: {refused:?}"
    );
    assert_eq!(refused.client.header("x-ratelimit-limit"), None);
    // A bad token, through header-rewrite's copy: refused the same way.
    let bad = same(
        &chain,
        &sequence,
        &get(
            "bad token",
            "/api/items",
            json!([["x-token", "Bearer a.b.c"]]),
        ),
        &no_callouts,
    );
    assert_eq!(bad.reply.as_ref().map(|reply| reply.0), Some(401));
    for pipeline in [&chain, &sequence] {
        assert_eq!(pipeline.counter(RATE_LIMIT_OK).unwrap_or(0), 0);
        assert_eq!(
            pipeline
                .counter("story.http_local_rate_limit.enabled")
                .unwrap_or(0),
            0,
            "rate-limit counted a request jwt-auth refused"
        );
    }
    // The token travels in x-token; header-rewrite makes it the authorization jwt-auth reads.
    // The first admitted request finds alice's bucket full: the refused ones took nothing.
    let admitted = same(
        &chain,
        &sequence,
        &get("good token", "/api/items", json!([["x-token", &token]])),
        &no_callouts,
    );
    assert_eq!(admitted.reply, None);
    let upstream = admitted.upstream.clone().expect("reaches the upstream");
    assert_eq!(upstream.header("x-rewritten"), Some("yes"));
    assert_eq!(upstream.header("x-user"), Some("alice"));
    assert_eq!(
        upstream.header("authorization"),
        None,
        "jwt-auth removes the token"
    );
    assert_eq!(admitted.client.header("x-ratelimit-remaining"), Some("2"));
    for pipeline in [&chain, &sequence] {
        assert_eq!(
            pipeline.counter("story.http_local_rate_limit.enabled"),
            Some(1)
        );
    }
}

#[test]
fn response_hooks_run_in_reverse_order() {
    let (chain, sequence) = both(&story_configs(local_provider()));
    let seen = same(
        &chain,
        &sequence,
        &get("public", "/public/a", json!([["x-user", "bob"]])),
        &no_callouts,
    );
    // rate-limit (last on the request) adds its headers first; header-rewrite (first on the
    // request) sees them on the response: it copies one and removes another.
    assert_eq!(seen.client.header("x-ratelimit-remaining"), Some("2"));
    assert_eq!(seen.client.header("x-seen-remaining"), Some("2"));
    assert_eq!(seen.client.header("x-ratelimit-limit"), Some("3"));
    assert_eq!(seen.client.header("x-ratelimit-reset"), None);
    assert_eq!(seen.client.body, "hello");
}

#[test]
fn over_the_limit_the_chain_answers_429_like_the_modules() {
    let (chain, sequence) = both(&story_configs(local_provider()));
    let token = bearer();
    let request = get("alice", "/api/items", json!([["x-token", &token]]));
    let statuses: Vec<Option<u16>> = (0..5)
        .map(|_| {
            same(&chain, &sequence, &request, &no_callouts)
                .client
                .status
        })
        .collect();
    assert_eq!(
        statuses,
        [Some(200), Some(200), Some(200), Some(429), Some(429)]
    );
    for pipeline in [&chain, &sequence] {
        assert_eq!(pipeline.counter(RATE_LIMITED), Some(2));
        assert_eq!(pipeline.counter("jwt_auth.allowed"), Some(5));
    }
}

/// jwt-auth fetches its keys from `jwks`: the request waits, the answer resumes it at
/// rate-limit, which counts it.
#[test]
fn a_remote_key_set_fetch_pauses_the_chain_and_resumes_it_at_the_next_filter() {
    let (chain, sequence) = both(&story_configs(remote_provider()));
    let keys = json!({"keys": [jwk(Algorithm::ES256)]}).to_string();
    let serve_keys = |call: &HttpCall| {
        (call.cluster == "jwks").then(|| {
            HttpResponse::new(200)
                .header("content-type", "application/json")
                .body(keys.clone())
        })
    };
    let token = bearer();
    let request = get("good token", "/api/items", json!([["x-token", &token]]));
    // The first request waits for the keys; the answer lets it through rate-limit.
    let first = same(&chain, &sequence, &request, &serve_keys);
    assert!(first.paused, "the request should wait for the key set");
    assert_eq!(first.reply, None);
    assert_eq!(first.client.status, Some(200));
    assert_eq!(
        first
            .upstream
            .as_ref()
            .and_then(|up| up.header("x-rewritten")),
        Some("yes")
    );
    assert_eq!(first.client.header("x-ratelimit-remaining"), Some("2"));
    assert_eq!(first.client.header("x-seen-remaining"), Some("2"));
    for pipeline in [&chain, &sequence] {
        assert_eq!(pipeline.counter("jwt_auth.jwks_fetch_success"), Some(1));
        assert_eq!(
            pipeline.counter("story.http_local_rate_limit.enabled"),
            Some(1)
        );
    }
    // The keys are cached: no pause, and rate-limit takes the next token.
    let second = same(&chain, &sequence, &request, &serve_keys);
    assert!(!second.paused);
    assert_eq!(second.client.header("x-ratelimit-remaining"), Some("1"));
}

/// A request waiting for keys that never come: the fetch fails, jwt-auth refuses, rate-limit
/// never counts it.
#[test]
fn a_failed_key_set_fetch_refuses_in_the_middle_of_the_chain() {
    let (chain, sequence) = both(&story_configs(remote_provider()));
    let unavailable = |_: &HttpCall| Some(HttpResponse::new(503));
    let token = bearer();
    let seen = same(
        &chain,
        &sequence,
        &get(
            "good token, no keys",
            "/api/items",
            json!([["x-token", &token]]),
        ),
        &unavailable,
    );
    assert!(seen.paused);
    assert_eq!(seen.upstream, None);
    assert_eq!(
        seen.reply.as_ref().map(|reply| (reply.0, reply.2.as_str())),
        Some((401, "Jwks remote fetch is failed"))
    );
    assert_eq!(seen.client.header("x-seen-rewritten"), Some("yes"));
    for pipeline in [&chain, &sequence] {
        assert_eq!(
            pipeline
                .counter("story.http_local_rate_limit.enabled")
                .unwrap_or(0),
            0
        );
    }
}

fn start_chain(filters: Value) -> Result<Plugin, Error> {
    TestHost::new()
        .plugin(filter_wasm("chain"))
        .config(json!({ "filters": filters }))
        .start()
}

fn refusal(result: Result<Plugin, Error>) -> String {
    match result {
        Err(Error::Rejected { logs, .. }) => logs.join(" | "),
        Err(other) => panic!("expected a refused configuration, got {other}"),
        Ok(_) => panic!("the configuration should be refused"),
    }
}

#[test]
fn a_config_error_names_the_filters_position() {
    let logs = refusal(start_chain(json!([
        {"name": "header-rewrite", "config": {}},
        {"name": "rate-limit", "config": {
            "stat_prefix": "x",
            "token_bucket": {"max_tokens": 0, "tokens_per_fill": 1, "fill_interval": "1s"}
        }}
    ])));
    assert!(
        logs.contains("filters[1].config.token_bucket.max_tokens"),
        "{logs}"
    );
    let logs = refusal(start_chain(json!([
        {"name": "jwt-auth", "config": {"providers": {}, "rules": [], "bogus": 1}}
    ])));
    assert!(logs.contains("filters[0].config"), "{logs}");
    assert!(logs.contains("bogus"), "{logs}");
}

#[test]
fn an_unknown_filter_is_refused_with_the_known_names() {
    let logs = refusal(start_chain(json!([
        {"name": "header-rewrite", "config": {}},
        {"name": "rate-limiter", "config": {}}
    ])));
    assert!(logs.contains("filters[1].name"), "{logs}");
    assert!(logs.contains("\"rate-limiter\""), "{logs}");
    for known in FILTERS {
        assert!(logs.contains(known), "{known} missing from: {logs}");
    }
}

fn remote_provider() -> Value {
    json!({
        "issuer": ISSUER,
        "audiences": ["api"],
        "remote_jwks": {
            "http_uri": {"uri": "http://keys.example/jwks.json", "cluster": "jwks", "timeout": "2s"},
            "cache_duration": "600s"
        }
    })
}

/// A POST with a body and trailers, sent whole while jwt-auth waits for its keys.
fn post(token: &str) -> (Leg, Leg) {
    let request = Leg {
        headers: [
            (":method", "POST"),
            (":path", "/api/orders"),
            (":authority", "example.com"),
            (":scheme", "http"),
            ("x-token", token),
        ]
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect(),
        body: b"{\"qty\": 1}".to_vec(),
        trailers: vec![("x-checksum".into(), "abc".into())],
    };
    let response = Leg {
        headers: vec![(":status".into(), "201".into())],
        body: b"created".to_vec(),
        trailers: Vec::new(),
    };
    (request, response)
}

/// The body and trailers of a request waiting for keys stay in the chain until jwt-auth has
/// verified the token; then the rest of the chain and the upstream get them whole.
#[test]
fn a_request_body_waits_with_its_headers_for_the_key_set() {
    let (chain, sequence) = both(&story_configs(remote_provider()));
    let keys = json!({"keys": [jwk(Algorithm::ES256)]}).to_string();
    let serve_keys = |call: &HttpCall| {
        (call.cluster == "jwks").then(|| HttpResponse::new(200).body(keys.clone()))
    };
    let (request, response) = post(&bearer());
    let ours = chain.play(&request, &response, &serve_keys);
    let theirs = sequence.play(&request, &response, &serve_keys);
    assert_eq!(ours, theirs);
    assert!(ours.paused && !ours.leaked, "{ours:?}");
    let upstream = ours.upstream.as_ref().expect("reaches the upstream");
    assert_eq!(upstream.body, "{\"qty\": 1}");
    assert_eq!(upstream.header("x-rewritten"), Some("yes"));
    assert_eq!(
        ours.upstream_trailers,
        [("x-checksum".to_string(), "abc".to_string())]
    );
    assert_eq!(ours.client.status, Some(201));
    assert_eq!(ours.client.header("x-ratelimit-remaining"), Some("2"));

    // The fetch fails: nothing of the request ever reaches the upstream.
    let (chain, sequence) = both(&story_configs(remote_provider()));
    let unavailable = |_: &HttpCall| Some(HttpResponse::new(503));
    let ours = chain.play(&request, &response, &unavailable);
    let theirs = sequence.play(&request, &response, &unavailable);
    assert_eq!(ours, theirs);
    assert!(ours.paused && !ours.leaked, "{ours:?}");
    assert_eq!(ours.upstream, None);
    assert_eq!(ours.reply.as_ref().map(|reply| reply.0), Some(401));
}
