//! jwt-auth's remote key sets in real Envoy with four workers, side by side with native
//! jwt_authn: a JWKS server that never answers, and a key set rotated mid-test. One Envoy serves
//! both tests.

use crate::tokens::*;
use envoy_harness::config::{filter_wasm, native_filter, wasm_filter, BootstrapBuilder};
use envoy_harness::{
    CannedReply, EchoUpstream, Envoy, EnvoyOptions, HangingServer, Request, Response,
};
use jsonwebtoken::Algorithm;
use serde_json::{json, Value};
use std::io::Write;
use std::net::TcpStream;
use std::sync::{Once, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

const HANGING_ISSUER: &str = "https://hanging.example";
const ROTATING_ISSUER: &str = "https://issuer.example";
const FETCH_TIMEOUT: Duration = Duration::from_secs(1);
const CACHE_DURATION: Duration = Duration::from_secs(2);

struct Fixture {
    envoy: Envoy,
    rotating_keys: EchoUpstream,
    _upstream: EchoUpstream,
    _hanging: HangingServer,
}

fn remote_provider(issuer: &str, cluster: &str) -> Value {
    json!({
        "issuer": issuer,
        "audiences": ["api"],
        "remote_jwks": {
            "http_uri": {"uri": format!("http://{cluster}.example/jwks.json"), "cluster": cluster, "timeout": "1s"},
            "cache_duration": "2s"
        }
    })
}

fn jwks_of(algs: &[Algorithm]) -> CannedReply {
    CannedReply {
        status: 200,
        headers: vec![("content-type".into(), b"application/json".to_vec())],
        body: json!({"keys": algs.iter().map(|alg| jwk(*alg)).collect::<Vec<_>>()})
            .to_string()
            .into_bytes(),
    }
}

/// One Envoy, `--concurrency 4`: native jwt_authn on listener `native`, ours on `wasm`, with the
/// same two providers: `/hang` behind the server that never answers, `/rotate` behind one whose
/// key set the test switches.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Result<Fixture, String>> = OnceLock::new();
    static STARTER: Once = Once::new();
    envoy_harness::process_fixture(&FIXTURE, &STARTER, start_fixture)
}

fn start_fixture() -> Fixture {
    let upstream = EchoUpstream::start().unwrap();
    let hanging = HangingServer::start().unwrap();
    let rotating_keys = EchoUpstream::start().unwrap();
    rotating_keys.reply_always(jwks_of(&[Algorithm::RS256]));
    let config = json!({
        "providers": {
            "hanging": remote_provider(HANGING_ISSUER, "hanging"),
            "rotating": remote_provider(ROTATING_ISSUER, "rotating"),
        },
        "rules": [
            {"match": {"prefix": "/hang"}, "requires": {"provider_name": "hanging"}},
            {"match": {"prefix": "/rotate"}, "requires": {"provider_name": "rotating"}}
        ]
    });
    let bootstrap = BootstrapBuilder::new(upstream.port())
        .listener(
            "native",
            vec![native_filter(
                "native_jwt",
                "jwt_authn.v3.JwtAuthentication",
                config.clone(),
            )],
        )
        .listener(
            "wasm",
            vec![wasm_filter("jwt_auth", &filter_wasm("jwt_auth"), &config)],
        )
        .cluster("hanging", hanging.port())
        .cluster("rotating", rotating_keys.port())
        .build();
    let options = EnvoyOptions {
        concurrency: 4,
        ..EnvoyOptions::default()
    };
    Fixture {
        envoy: Envoy::start_with(bootstrap, &options).unwrap(),
        rotating_keys,
        _upstream: upstream,
        _hanging: hanging,
    }
}

fn now() -> u64 {
    seconds(SystemTime::now())
}

fn signed(alg: Algorithm, issuer: &str) -> String {
    let claims = json!({"iss": issuer, "aud": "api", "sub": "alice", "exp": now() + 600});
    format!("Bearer {}", token(alg, &claims))
}

fn send(listener: &str, path: &str, authorization: &str) -> Response {
    let envoy = &fixture().envoy;
    Request::get(path)
        .header("host", "api.example.com")
        .header("authorization", authorization)
        .send(envoy.listener_port(listener).unwrap())
        .unwrap_or_else(|error| panic!("{listener} {path}: {error}\n{}", envoy.logs()))
}

fn body(response: &Response) -> String {
    String::from_utf8_lossy(&response.body).into_owned()
}

#[test]
fn a_hanging_jwks_server_gets_every_request_a_401_within_the_timeout() {
    let fixture = fixture();
    let authorization = signed(Algorithm::RS256, HANGING_ISSUER);
    let bound = FETCH_TIMEOUT + Duration::from_millis(500);
    // Three waves, 0.6 s apart, of 12 concurrent requests to each filter: requests arrive
    // before, during and after fetches fail, on every worker.
    let mut waves = Vec::new();
    for wave in 0..3u64 {
        let requests: Vec<_> = ["native", "wasm"]
            .into_iter()
            .flat_map(|listener| std::iter::repeat_n(listener, 12))
            .map(|listener| {
                let authorization = authorization.clone();
                thread::spawn(move || {
                    thread::sleep(Duration::from_millis(600 * wave));
                    let started = Instant::now();
                    let response = send(listener, "/hang", &authorization);
                    (listener, started.elapsed(), response)
                })
            })
            .collect();
        waves.extend(requests);
    }
    // Clients that leave while their request waits for keys: their streams end before the
    // filter answers them, and Envoy goes on serving.
    let wasm_port = fixture.envoy.listener_port("wasm").unwrap();
    for _ in 0..4 {
        let mut client = TcpStream::connect(("127.0.0.1", wasm_port)).unwrap();
        write!(
            client,
            "GET /hang HTTP/1.1\r\nhost: api.example.com\r\nauthorization: {authorization}\r\n\r\n"
        )
        .unwrap();
        thread::sleep(Duration::from_millis(50));
        drop(client);
    }
    let mut waits: Vec<(&str, Duration)> = Vec::new();
    for request in waves {
        let (listener, waited, response) = request.join().unwrap();
        assert_eq!(
            (response.status, body(&response).as_str()),
            (401, "Jwks remote fetch is failed"),
            "{listener} after {waited:?}\n{}",
            fixture.envoy.logs()
        );
        waits.push((listener, waited));
    }
    for listener in ["native", "wasm"] {
        let mut times: Vec<Duration> = waits
            .iter()
            .filter(|(name, _)| *name == listener)
            .map(|(_, waited)| *waited)
            .collect();
        times.sort();
        let (median, max) = (times[times.len() / 2], times[times.len() - 1]);
        eprintln!(
            "{listener}: {} requests answered 401, median {median:?}, max {max:?}",
            times.len()
        );
        assert!(
            max <= bound,
            "{listener}: a request waited {max:?}, more than {bound:?}\n{}",
            fixture.envoy.logs()
        );
    }
}

#[test]
fn a_key_removed_from_the_remote_jwks_is_refused_by_both_after_the_refresh() {
    let fixture = fixture();
    let old = signed(Algorithm::RS256, ROTATING_ISSUER);
    let new = signed(Algorithm::ES256, ROTATING_ISSUER);
    let statuses = |authorization: &str| {
        let native = send("native", "/rotate", authorization);
        let ours = send("wasm", "/rotate", authorization);
        (native.status, ours.status, body(&native), body(&ours))
    };
    let same = |authorization: &str| {
        let (native, ours, native_body, our_body) = statuses(authorization);
        if native != 200 {
            assert_eq!(our_body, native_body, "{}", fixture.envoy.logs());
        }
        (native, ours)
    };
    // Several requests, so every worker of ours holds the token in its cache.
    for _ in 0..8 {
        assert_eq!(same(&old), (200, 200), "{}", fixture.envoy.logs());
    }
    assert_eq!(same(&new), (401, 401), "the new key is not served yet");
    // The emergency rotation: the old key leaves, the new one arrives.
    fixture
        .rotating_keys
        .reply_always(jwks_of(&[Algorithm::ES256]));
    let rotated = Instant::now();
    // Both refuse within one refresh: the cache duration, plus up to a second for our refresh
    // tick and the fetch.
    let limit = CACHE_DURATION + FETCH_TIMEOUT + Duration::from_millis(500);
    let mut first_refusals: [Option<Duration>; 2] = [None, None];
    while rotated.elapsed() < limit && first_refusals.iter().any(Option::is_none) {
        let (native, ours, _, _) = statuses(&old);
        for (first, status) in first_refusals.iter_mut().zip([native, ours]) {
            if status == 401 && first.is_none() {
                *first = Some(rotated.elapsed());
            }
        }
        thread::sleep(Duration::from_millis(100));
    }
    assert!(
        first_refusals.iter().all(Option::is_some),
        "the removed key still admits a token after {limit:?}: {first_refusals:?}\n{}",
        fixture.envoy.logs()
    );
    eprintln!(
        "first refusal of the removed key's token after the rotation: native {:?}, ours {:?}",
        first_refusals[0].unwrap(),
        first_refusals[1].unwrap()
    );
    // Key sets fetched before the rotation have all expired by now, on every worker of both.
    if let Some(rest) = (CACHE_DURATION + Duration::from_millis(300)).checked_sub(rotated.elapsed())
    {
        thread::sleep(rest);
    }
    for _ in 0..8 {
        assert_eq!(same(&old), (401, 401), "{}", fixture.envoy.logs());
        assert_eq!(same(&new), (200, 200), "{}", fixture.envoy.logs());
    }
    let refused = send("wasm", "/rotate", &old);
    assert_eq!(
        body(&refused),
        "Jwks doesn't have key to match kid or alg from Jwt"
    );
}
