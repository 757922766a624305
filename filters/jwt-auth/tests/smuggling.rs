//! Hostile placements of tokens and headers, through the built .wasm in test-host: what the
//! client gets and what the upstream receives, as native jwt_authn answers them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod tokens;

use base64::Engine;
use jsonwebtoken::Algorithm;
use serde_json::{json, Value};
use test_host::{filter_wasm, Action, HttpStream, Plugin, TestHost};
use tokens::*;

const A: &str = "https://issuer.example";
const B: &str = "https://other.example";

/// Provider `a` looks in `x-jwt`, `authorization: Bearer`, `x-token: Token`, `?access_token=`
/// and cookie `jwt`, and removes what it verified; provider `b` looks in `x-b` only.
fn config() -> Value {
    let keys = jwks().to_string();
    json!({
        "bypass_cors_preflight": true,
        "providers": {
            "a": {
                "issuer": A, "local_jwks": {"inline_string": keys},
                "from_headers": [{"name": "x-jwt"}, {"name": "authorization", "value_prefix": "Bearer "}, {"name": "x-token", "value_prefix": "Token "}],
                "from_params": ["access_token"], "from_cookies": ["jwt"],
                "forward_payload_header": "x-jwt-payload",
                "claim_to_headers": [{"header_name": "x-sub", "claim_name": "sub"}]
            },
            "b": {
                "issuer": B, "local_jwks": {"inline_string": keys}, "forward": true,
                "from_headers": [{"name": "x-b"}],
                "claim_to_headers": [{"header_name": "x-b-sub", "claim_name": "sub"}]
            }
        },
        "rules": [
            {"match": {"prefix": "/public"}},
            {"match": {"path": "/a"}, "requires": {"provider_name": "a"}},
            {"match": {"path": "/missing"}, "requires": {"allow_missing": {}}},
            {"match": {"path": "/failed"}, "requires": {"allow_missing_or_failed": {}}},
            {"match": {"path": "/any-or-missing"}, "requires": {"requires_any": {"requirements": [{"provider_name": "a"}, {"allow_missing": {}}]}}},
            {"match": {"path": "/any"}, "requires": {"requires_any": {"requirements": [{"provider_name": "a"}, {"provider_name": "b"}]}}},
            {"match": {"path": "/by-claim", "headers": [{"name": "x-sub", "present_match": true}]}, "requires": {"provider_name": "a"}}
        ]
    })
}

struct Fixture {
    _host: TestHost,
    plugin: Plugin,
    /// A valid token of `a` (sub alice).
    good: String,
    /// `good` with its payload replaced (sub admin): the signature no longer matches.
    forged: String,
    /// A valid token of `b` (sub bob).
    good_b: String,
}

fn fixture() -> Fixture {
    let host = TestHost::new();
    let plugin = host
        .plugin(filter_wasm("jwt_auth"))
        .config(config())
        .start()
        .unwrap_or_else(|e| panic!("plugin should start: {e}"));
    let now = seconds(host.now());
    let good = token(
        Algorithm::RS256,
        &json!({"iss": A, "sub": "alice", "exp": now + 600}),
    );
    let good_b = token(
        Algorithm::ES256,
        &json!({"iss": B, "sub": "bob", "exp": now + 600}),
    );
    let parts: Vec<&str> = good.split('.').collect();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64(&json!({"iss": A, "sub": "admin", "exp": now + 600}).to_string()),
        parts[2]
    );
    Fixture {
        _host: host,
        plugin,
        good,
        forged,
        good_b,
    }
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

/// What happened to one request: the reply (status, body) or 200 and the upstream request.
struct Seen {
    status: u32,
    body: String,
    stream: HttpStream,
}

impl Seen {
    fn upstream_all(&self, name: &str) -> Vec<String> {
        self.stream
            .upstream_request()
            .headers
            .map(|headers| {
                headers
                    .get_all(name)
                    .into_iter()
                    .map(|value| String::from_utf8_lossy(value).into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn upstream_path(&self) -> Option<String> {
        self.stream.upstream_request().header(":path")
    }

    fn verdict(&self) -> (u32, &str) {
        (self.status, &self.body)
    }
}

fn send(plugin: &Plugin, method: &str, path: &str, headers: &[(&str, &str)]) -> Seen {
    let mut all = vec![
        (":method", method),
        (":path", path),
        (":authority", "api.example.com"),
        (":scheme", "https"),
    ];
    all.extend_from_slice(headers);
    let mut stream = plugin.http_stream().unwrap();
    let action = stream.send_request_headers(&all, true).unwrap();
    let (status, body) = match stream.local_response() {
        Some(reply) => {
            assert_eq!(action, Action::Pause);
            (
                reply.status,
                String::from_utf8_lossy(&reply.body).into_owned(),
            )
        }
        None => {
            assert_eq!(action, Action::Continue);
            assert!(
                stream.upstream_request().complete,
                "neither answered nor forwarded"
            );
            (200, String::new())
        }
    };
    Seen {
        status,
        body,
        stream,
    }
}

fn get(plugin: &Plugin, path: &str, headers: &[(&str, &str)]) -> Seen {
    send(plugin, "GET", path, headers)
}

const BAD_SIGNATURE: (u32, &str) = (401, "Jwt verification fails");
const UNKNOWN_ISSUER: (u32, &str) = (401, "Jwt issuer is not configured");
const OK: (u32, &str) = (200, "");

#[test]
fn every_value_of_a_repeated_token_header_must_verify() {
    let f = fixture();
    let (good, forged) = (&*f.good, &*f.forged);
    for headers in [
        vec![("x-jwt", good), ("x-jwt", forged)],
        vec![("x-jwt", forged), ("x-jwt", good)],
        vec![
            ("authorization", &*format!("Bearer {good}")),
            ("x-jwt", forged),
        ],
    ] {
        let seen = get(&f.plugin, "/a", &headers);
        assert_eq!(seen.verdict(), BAD_SIGNATURE, "{headers:?}");
    }
    // A value_prefix header is read value by value too: the second value's token counts.
    let seen = get(
        &f.plugin,
        "/a",
        &[
            ("x-token", &format!("Token {good}")),
            ("x-token", &format!("Token {forged}")),
        ],
    );
    assert_eq!(seen.verdict(), BAD_SIGNATURE);
    // Envoy joins repeated `authorization` headers into one value with commas before any
    // filter runs (test-host does the same), and that value is not a token.
    let seen = get(
        &f.plugin,
        "/a",
        &[
            ("authorization", &format!("Bearer {good}")),
            ("authorization", &format!("Bearer {good}")),
        ],
    );
    assert_eq!(seen.status, 401);
    assert!(
        seen.body.starts_with("Jwt is not in the form"),
        "{}",
        seen.body
    );
    // Two good values: both are checked, each adds its claims, and every value is removed.
    let seen = get(&f.plugin, "/a", &[("x-jwt", good), ("x-jwt", good)]);
    assert_eq!(seen.verdict(), OK);
    assert_eq!(seen.upstream_all("x-sub"), ["alice", "alice"]);
    assert_eq!(seen.upstream_all("x-jwt"), Vec::<String>::new());
}

#[test]
fn an_encoded_parameter_name_is_a_token_too() {
    let f = fixture();
    let authorization = format!("Bearer {}", f.good);
    let seen = get(
        &f.plugin,
        &format!("/a?access%5Ftoken={}", f.forged),
        &[("authorization", &authorization)],
    );
    assert_eq!(
        seen.verdict(),
        BAD_SIGNATURE,
        "the forged admin token never reaches upstream"
    );
    // A good token under an encoded name verifies, and every spelling of the name is removed.
    let seen = get(
        &f.plugin,
        &format!(
            "/a?x=1&access%5Ftoken={}&access_token=more&%61ccess_token",
            f.good
        ),
        &[],
    );
    assert_eq!(seen.verdict(), OK);
    assert_eq!(seen.upstream_path().as_deref(), Some("/a?x=1"));
    // An invalid escape is kept as it is, so the parameter is present (not missing).
    let seen = get(&f.plugin, "/missing?access_token=%zz", &[]);
    assert_eq!(seen.status, 401);
    assert!(
        seen.body.starts_with("Jwt is not in the form"),
        "{}",
        seen.body
    );
}

#[test]
fn cookies_are_read_from_every_cookie_header_whatever_the_spacing() {
    let f = fixture();
    let (good, forged) = (&*f.good, &*f.forged);
    for cookies in [
        vec!["theme=dark".to_string(), format!("jwt={good}")],
        vec![format!("a=1;  jwt={good}")],
        vec![format!("a=1;jwt={good}")],
        vec![format!("jwt=\"{good}\"")],
    ] {
        let headers: Vec<(&str, &str)> = cookies.iter().map(|c| ("cookie", c.as_str())).collect();
        let seen = get(&f.plugin, "/a", &headers);
        assert_eq!(seen.verdict(), OK, "{cookies:?}");
        assert_eq!(seen.upstream_all("x-sub"), ["alice"]);
        assert_eq!(
            seen.upstream_all("cookie"),
            cookies,
            "cookies stay, as in native"
        );
    }
    // The same name again: the first wins, as in native; a forged token there counts.
    let first_good = [
        ("cookie", format!("jwt={good}")),
        ("cookie", format!("jwt={forged}")),
    ];
    let headers: Vec<(&str, &str)> = first_good.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(get(&f.plugin, "/a", &headers).verdict(), OK);
    let seen = get(
        &f.plugin,
        "/missing",
        &[("cookie", &format!("a=1;  jwt={forged}"))],
    );
    assert_eq!(
        seen.verdict(),
        BAD_SIGNATURE,
        "allow_missing sees the forged cookie"
    );
    // A tab is not skipped before a name (native skips spaces only).
    assert_eq!(
        get(&f.plugin, "/a", &[("cookie", &format!("a=1;\tjwt={good}"))]).verdict(),
        (401, "Jwt is missing")
    );
}

#[test]
fn a_prefix_is_followed_by_the_first_token_character() {
    let f = fixture();
    for value in [
        format!("Bearer ={}", f.good),
        format!("Basic x, Bearer   {}", f.good),
    ] {
        assert_eq!(
            get(&f.plugin, "/a", &[("authorization", &value)]).verdict(),
            OK,
            "{value}"
        );
    }
}

#[test]
fn client_copies_of_claim_and_payload_headers_never_reach_upstream() {
    let f = fixture();
    let spoofed = [
        ("x-sub", "admin"),
        ("x-jwt-payload", "e30"),
        ("x-b-sub", "root"),
        ("x-keep", "1"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| -> Vec<(&'static str, &'static str)> {
        spoofed.iter().chain(extra).copied().collect()
    };
    for path in [
        "/public/x",
        "/no-rule",
        "/missing",
        "/failed",
        "/any-or-missing",
    ] {
        let seen = get(&f.plugin, path, &with(&[]));
        assert_eq!(seen.verdict(), OK, "{path}");
        for header in ["x-sub", "x-jwt-payload", "x-b-sub"] {
            assert_eq!(
                seen.upstream_all(header),
                Vec::<String>::new(),
                "{path}: {header}"
            );
        }
        assert_eq!(
            seen.upstream_all("x-keep"),
            ["1"],
            "{path}: other headers stay"
        );
    }
    // With a good token only the filter's own values arrive.
    let mut headers = with(&[]);
    headers.push(("x-jwt", &f.good));
    let seen = get(&f.plugin, "/a", &headers);
    assert_eq!(seen.verdict(), OK);
    assert_eq!(seen.upstream_all("x-sub"), ["alice"]);
    assert_eq!(seen.upstream_all("x-b-sub"), Vec::<String>::new());
    // A CORS preflight that bypasses the checks is stripped first, as native does.
    let mut preflight = with(&[]);
    preflight.extend([
        ("origin", "https://app"),
        ("access-control-request-method", "POST"),
    ]);
    let seen = send(&f.plugin, "OPTIONS", "/a", &preflight);
    assert_eq!(seen.verdict(), OK);
    assert_eq!(seen.upstream_all("x-sub"), Vec::<String>::new());
    // Rules see the request without the spoofed header: it cannot pick a rule.
    let seen = get(&f.plugin, "/by-claim", &[("x-sub", "admin")]);
    assert_eq!(seen.verdict(), OK, "no rule matches once x-sub is gone");
}

#[test]
fn duplicate_keys_deep_nesting_and_padding_refuse_the_token() {
    let f = fixture();
    let parts: Vec<&str> = f.good.split('.').collect();
    let with_payload = |payload: &str| format!("{}.{}.{}", parts[0], b64(payload), parts[2]);
    let nested = |depth: usize| {
        format!(
            r#"{{"iss":"{A}","d":{}1{}}}"#,
            "[".repeat(depth - 1),
            "]".repeat(depth - 1)
        )
    };
    let cases = [
        (
            format!(
                "{}.{}.{}",
                b64(r#"{"alg":"RS256","alg":"RS256","kid":"rsa"}"#),
                parts[1],
                parts[2]
            ),
            "Jwt header is an invalid JSON",
        ),
        (
            with_payload(&format!(r#"{{"iss":"x","iss":"{A}"}}"#)),
            "Jwt payload is an invalid JSON",
        ),
        (with_payload(&nested(101)), "Jwt payload is an invalid JSON"),
        (with_payload(&nested(100)), "Jwt verification fails"),
        (
            format!("{}=", f.good),
            "Jwt signature is an invalid Base64url encoded",
        ),
        (
            format!("{}==", f.good),
            "Jwt signature is an invalid Base64url encoded",
        ),
        (
            format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
            "Jwt header is an invalid Base64url encoded",
        ),
    ];
    for (token, message) in cases {
        let seen = get(&f.plugin, "/a", &[("x-jwt", &token)]);
        assert_eq!(seen.verdict(), (401, message), "{token}");
        assert_eq!(seen.upstream_all("x-sub"), Vec::<String>::new());
    }
}

#[test]
fn a_token_is_checked_only_by_a_provider_that_looks_where_it_was_found() {
    let f = fixture();
    // b's token where only a looks, and a's where only b looks.
    for (path, header, token) in [
        ("/missing", "x-jwt", &f.good_b),
        ("/missing", "x-b", &f.good),
        ("/any-or-missing", "x-jwt", &f.good_b),
        ("/any", "x-jwt", &f.good_b),
    ] {
        let seen = get(&f.plugin, path, &[(header, token)]);
        assert_eq!(seen.verdict(), UNKNOWN_ISSUER, "{path} {header}");
    }
    let seen = get(&f.plugin, "/failed", &[("x-jwt", &f.good_b)]);
    assert_eq!(seen.verdict(), OK);
    assert_eq!(
        seen.upstream_all("x-b-sub"),
        Vec::<String>::new(),
        "a failed token adds nothing"
    );
    assert_eq!(seen.upstream_all("x-jwt").len(), 1, "and is not removed");
    // In its own place each token passes.
    let seen = get(&f.plugin, "/missing", &[("x-b", &f.good_b)]);
    assert_eq!(seen.verdict(), OK);
    assert_eq!(seen.upstream_all("x-b-sub"), ["bob"]);
}
