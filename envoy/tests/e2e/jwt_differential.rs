//! The differential suite: native jwt_authn and jwt-auth get the same configuration in one Envoy,
//! and every request in the tables below must get the same answer from both: status, body and
//! `www-authenticate`, and when the request reaches the upstream, the same headers and path.
//!
//! Each case is one line: class, config variant, name, request, and the status native answers
//! (which keeps the case honest: a fixture that no longer tests what its name says fails too).
//! A second, short table holds what jwt-auth refuses on purpose although native admits it; each
//! of those must be in the README's list of what jwt-auth refuses on purpose.
//!
//! One Envoy runs every variant as a pair of listeners, `native-<variant>` and `wasm-<variant>`,
//! and the requests go out concurrently. A failure lists every diverging case with both sides.

use crate::tokens;

use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine;
use envoy_harness::config::{filter_wasm, native_filter, wasm_filter, BootstrapBuilder};
use envoy_harness::differential::{run_pairs, shortened, Seen};
use envoy_harness::{EchoUpstream, Envoy, Request};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Instant, SystemTime};

const ISS_A: &str = "https://issuer.example";
const ISS_B: &str = "https://other.example";
const EVIL: &str = "https://evil.example";

/// Upstream request headers that differ between the two listeners of a pair by design.
const IGNORED_UPSTREAM_HEADERS: &[&str] = &["x-request-id"];

/// Requests in flight at once.
const PARALLEL_REQUESTS: usize = 8;

/// The README whose section `STRICTER_SECTION` must list every stricter case.
const README: &str = include_str!("../../../filters/jwt-auth/README.md");
const STRICTER_SECTION: &str = "### Stricter than native, on purpose";

/// Keys and tokens made by OpenSSL for what the Rust signing crates cannot do (RSA 8192, P-521);
/// `make_interop.py` regenerates them.
const INTEROP: &str = include_str!("../data/jwt_differential/interop.json");

// ---------------------------------------------------------------------------------------------
// Configuration variants: one listener pair each.

/// A provider/rule configuration, given identically to both filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// Providers `a` and `b` with every kind of location, claim and payload headers, and one
    /// path per requirement kind.
    Main,
    /// `forward: true` and a padded payload header.
    Forward,
    /// Provider `a` with no locations configured: `Authorization: Bearer` and `access_token`.
    Defaults,
    /// Keys from other issuers: RSA 4096 and 8192, P-256 with short coordinates, P-521.
    Interop,
    /// Providers `a` and `b` that both read the default locations.
    Shared,
}

const VARIANTS: [Variant; 5] = [
    Variant::Main,
    Variant::Forward,
    Variant::Defaults,
    Variant::Interop,
    Variant::Shared,
];

/// The requirement paths of the main variant, and what each request there also carries.
const MAIN_REQUIREMENTS: [(&str, &str); 6] = [
    ("/api", "provider a"),
    ("/allow-missing", "allow_missing"),
    ("/allow-failed", "allow_missing_or_failed"),
    ("/any", "requires_any [a, b]"),
    ("/all", "requires_all [a, b] (with a valid b token)"),
    ("/a-or-missing", "requires_any [a, allow_missing]"),
];

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Main => "main",
            Variant::Forward => "forward",
            Variant::Defaults => "defaults",
            Variant::Interop => "interop",
            Variant::Shared => "shared",
        }
    }

    fn config(self, keys: &Keys) -> Value {
        let jwks = |keys: &Value| json!({"inline_string": keys.to_string()});
        let provider_a = json!({
            "issuer": ISS_A,
            "audiences": ["api"],
            "local_jwks": jwks(&tokens::jwks()),
            "from_headers": [
                {"name": "authorization", "value_prefix": "Bearer "},
                {"name": "x-jwt"},
                {"name": "x-token", "value_prefix": "Token "}
            ],
            "from_params": ["access_token"],
            "from_cookies": ["jwt"],
            "forward_payload_header": "x-jwt-payload",
            "claim_to_headers": [
                {"header_name": "x-sub", "claim_name": "sub"},
                {"header_name": "x-tenant", "claim_name": "org.tenant"}
            ]
        });
        match self {
            Variant::Main => json!({
                "providers": {
                    "a": provider_a,
                    "b": {
                        "issuer": ISS_B,
                        "audiences": ["api"],
                        "local_jwks": jwks(&tokens::jwks()),
                        "from_headers": [{"name": "x-b-jwt"}],
                        "from_params": ["b_token"],
                        "from_cookies": ["b_jwt"],
                        "forward_payload_header": "x-b-payload",
                        "claim_to_headers": [{"header_name": "x-b-sub", "claim_name": "sub"}]
                    }
                },
                "rules": [
                    {"match": {"prefix": "/public"}},
                    {"match": {"prefix": "/api"}, "requires": {"provider_name": "a"}},
                    {"match": {"prefix": "/allow-missing"}, "requires": {"allow_missing": {}}},
                    {"match": {"prefix": "/allow-failed"}, "requires": {"allow_missing_or_failed": {}}},
                    {"match": {"prefix": "/any"}, "requires": {"requires_any": {"requirements": [
                        {"provider_name": "a"}, {"provider_name": "b"}]}}},
                    {"match": {"prefix": "/all"}, "requires": {"requires_all": {"requirements": [
                        {"provider_name": "a"}, {"provider_name": "b"}]}}},
                    {"match": {"prefix": "/a-or-missing"}, "requires": {"requires_any": {"requirements": [
                        {"provider_name": "a"}, {"allow_missing": {}}]}}}
                ]
            }),
            Variant::Forward => {
                let mut provider = provider_a;
                provider["forward"] = json!(true);
                provider["pad_forward_payload_header"] = json!(true);
                json!({
                    "providers": {"a": provider},
                    "rules": [
                        {"match": {"prefix": "/api"}, "requires": {"provider_name": "a"}},
                        {"match": {"prefix": "/allow-missing"}, "requires": {"allow_missing": {}}}
                    ]
                })
            }
            Variant::Defaults => {
                let mut provider = provider_a;
                let object = provider.as_object_mut().expect("object");
                for location in ["from_headers", "from_params", "from_cookies"] {
                    object.remove(location);
                }
                json!({
                    "providers": {"a": provider},
                    "rules": [
                        {"match": {"prefix": "/api"}, "requires": {"provider_name": "a"}},
                        {"match": {"prefix": "/allow-missing"}, "requires": {"allow_missing": {}}}
                    ]
                })
            }
            Variant::Interop => {
                let mut provider = provider_a;
                provider["local_jwks"] = jwks(&keys.interop_jwks);
                json!({
                    "providers": {"a": provider},
                    "rules": [{"match": {"prefix": "/api"}, "requires": {"provider_name": "a"}}]
                })
            }
            Variant::Shared => json!({
                "providers": {
                    "a": {"issuer": ISS_A, "audiences": ["api"], "local_jwks": jwks(&tokens::jwks()),
                        "claim_to_headers": [{"header_name": "x-sub", "claim_name": "sub"}]},
                    "b": {"issuer": ISS_B, "audiences": ["api"], "local_jwks": jwks(&tokens::jwks()),
                        "claim_to_headers": [{"header_name": "x-b-sub", "claim_name": "sub"}]}
                },
                "rules": [
                    {"match": {"prefix": "/provider-a"}, "requires": {"provider_name": "a"}},
                    {"match": {"prefix": "/provider-b"}, "requires": {"provider_name": "b"}},
                    {"match": {"prefix": "/any"}, "requires": {"requires_any": {"requirements": [
                        {"provider_name": "a"}, {"provider_name": "b"}]}}},
                    {"match": {"prefix": "/all"}, "requires": {"requires_all": {"requirements": [
                        {"provider_name": "a"}, {"provider_name": "b"}]}}},
                    {"match": {"prefix": "/allow-missing"}, "requires": {"allow_missing": {}}}
                ]
            }),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Keys and tokens.

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(text).expect("base64url")
}

/// Key material beyond the shared test keys.
struct Keys {
    rsa4096: EncodingKey,
    /// P-256 keys whose public `x` (index 0) or `y` (index 1) starts with a zero byte.
    p256_short: [p256::ecdsa::SigningKey; 2],
    p384: p384::ecdsa::SigningKey,
    p256: p256::ecdsa::SigningKey,
    /// OpenSSL-made tokens by name (`interop.json`).
    interop_tokens: BTreeMap<String, String>,
    interop_jwks: Value,
}

/// The first P-256 key, from a fixed sequence of scalars, whose coordinate `index` (0: x,
/// 1: y) starts with a zero byte, so that a non-conforming issuer writes it one byte short.
fn p256_key_with_leading_zero(index: usize) -> p256::ecdsa::SigningKey {
    (0u32..)
        .find_map(|counter| {
            let scalar = Sha256::digest(format!("jwt differential P-256 key {counter}"));
            let key = p256::ecdsa::SigningKey::from_slice(&scalar).ok()?;
            let point = key.verifying_key().to_encoded_point(false);
            let coordinate = [point.x(), point.y()][index]?;
            (coordinate[0] == 0).then_some(key)
        })
        .expect("one in 256 keys qualifies")
}

/// A P-256 JWK whose coordinates are written without their leading zero bytes.
fn short_p256_jwk(key: &p256::ecdsa::SigningKey, kid: &str) -> Value {
    let point = key.verifying_key().to_encoded_point(false);
    let strip =
        |bytes: &[u8]| b64(&bytes[bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len())..]);
    json!({"kty": "EC", "crv": "P-256", "kid": kid,
        "x": strip(point.x().expect("x")), "y": strip(point.y().expect("y"))})
}

impl Keys {
    fn new() -> Keys {
        use p256::pkcs8::DecodePrivateKey;
        let rsa4096 = EncodingKey::from_rsa_der(include_bytes!(
            "../../../filters/jwt-auth/crypto/tests/data/rsa4096.der"
        ));
        let mut rsa4096_jwk =
            serde_json::to_value(Jwk::from_encoding_key(&rsa4096, Algorithm::RS256).expect("JWK"))
                .expect("JSON");
        rsa4096_jwk.as_object_mut().expect("object").remove("alg");
        rsa4096_jwk["kid"] = json!("rsa4096");
        let p256_short = [p256_key_with_leading_zero(0), p256_key_with_leading_zero(1)];
        let interop: Value = serde_json::from_str(INTEROP).expect("interop.json");
        let mut keys = vec![
            tokens::jwk(Algorithm::RS256),
            rsa4096_jwk,
            short_p256_jwk(&p256_short[0], "p256-short-x"),
            short_p256_jwk(&p256_short[1], "p256-short-y"),
        ];
        keys.extend(
            interop["jwks"]["keys"]
                .as_array()
                .expect("keys")
                .iter()
                .cloned(),
        );
        Keys {
            rsa4096,
            p256_short,
            p384: p384::ecdsa::SigningKey::from_pkcs8_der(include_bytes!(
                "../../../filters/jwt-auth/crypto/tests/data/p384.der"
            ))
            .expect("P-384 key"),
            p256: p256::ecdsa::SigningKey::from_pkcs8_der(include_bytes!(
                "../../../filters/jwt-auth/crypto/tests/data/p256.der"
            ))
            .expect("P-256 key"),
            interop_tokens: serde_json::from_value(interop["tokens"].clone()).expect("tokens"),
            interop_jwks: json!({ "keys": keys }),
        }
    }
}

/// Token factory for one run: `$A`, `$B`, `$EVIL`, `$EXP` (in ten minutes) and `$PAST` (an hour
/// ago) in a JSON template are replaced, so a table line shows the exact bytes signed.
struct Tokens {
    now: u64,
    keys: Keys,
    /// A's token for alice of tenant acme, RS256.
    valid: String,
    /// A's token for bob, RS256.
    valid2: String,
    /// `valid` with the payload of an admin and `valid`'s signature.
    forged: String,
    /// B's token for carol, RS256.
    b_valid: String,
    /// `b_valid` with an admin payload.
    b_forged: String,
    /// A's token that expired an hour ago.
    expired: String,
}

const VALID: &str = r#"{"iss":$A,"aud":"api","sub":"alice","org":{"tenant":"acme"},"exp":$EXP}"#;
const ADMIN: &str = r#"{"iss":$A,"aud":"api","sub":"admin","org":{"tenant":"root"},"exp":$EXP}"#;

impl Tokens {
    fn new(now: u64) -> Tokens {
        let mut tokens = Tokens {
            now,
            keys: Keys::new(),
            valid: String::new(),
            valid2: String::new(),
            forged: String::new(),
            b_valid: String::new(),
            b_forged: String::new(),
            expired: String::new(),
        };
        tokens.valid = tokens.rs(VALID);
        tokens.valid2 = tokens.rs(r#"{"iss":$A,"aud":"api","sub":"bob","exp":$EXP}"#);
        tokens.forged = tokens.with_payload(&tokens.valid, ADMIN);
        tokens.b_valid = tokens.rs(r#"{"iss":$B,"aud":"api","sub":"carol","exp":$EXP}"#);
        tokens.b_forged = tokens.with_payload(
            &tokens.b_valid,
            r#"{"iss":$B,"aud":"api","sub":"admin","exp":$EXP}"#,
        );
        tokens.expired = tokens.rs(r#"{"iss":$A,"aud":"api","sub":"alice","exp":$PAST}"#);
        tokens
    }

    fn fill(&self, template: &str) -> String {
        template
            .replace("$A", &format!("{ISS_A:?}"))
            .replace("$B", &format!("{ISS_B:?}"))
            .replace("$EVIL", &format!("{EVIL:?}"))
            .replace("$EXP", &(self.now + 600).to_string())
            .replace("$PAST", &(self.now - 3600).to_string())
    }

    /// `header.payload` from JSON templates, base64url-encoded as written.
    fn signing_input(&self, header: &str, payload: &str) -> String {
        format!(
            "{}.{}",
            b64(self.fill(header).as_bytes()),
            b64(self.fill(payload).as_bytes())
        )
    }

    /// A token with exactly this header and payload, signed with `alg`'s test key.
    fn raw(&self, alg: Algorithm, header: &str, payload: &str) -> String {
        let input = self.signing_input(header, payload);
        let signature =
            jsonwebtoken::crypto::sign(input.as_bytes(), &tokens::encoding_key(alg), alg)
                .expect("sign");
        format!("{input}.{signature}")
    }

    /// An RS256 token for `payload` with the usual header (kid `rsa`).
    fn rs(&self, payload: &str) -> String {
        self.alg(Algorithm::RS256, payload)
    }

    /// An RS256 token whose header is `header`, as written.
    fn rs_header(&self, header: &str, payload: &str) -> String {
        self.raw(Algorithm::RS256, header, payload)
    }

    /// A token signed with `alg`'s test key, header `{"alg","typ","kid"}`.
    fn alg(&self, alg: Algorithm, payload: &str) -> String {
        let header = format!(
            r#"{{"alg":"{alg:?}","typ":"JWT","kid":"{}"}}"#,
            tokens::kid(alg)
        );
        self.raw(alg, &header, payload)
    }

    /// `token` with its payload replaced and its signature kept.
    fn with_payload(&self, token: &str, payload: &str) -> String {
        let parts: Vec<&str> = token.split('.').collect();
        format!(
            "{}.{}.{}",
            parts[0],
            b64(self.fill(payload).as_bytes()),
            parts[2]
        )
    }

    /// `token` with its signature bytes changed by `change`.
    fn with_signature(token: &str, change: impl FnOnce(Vec<u8>) -> Vec<u8>) -> String {
        let (input, signature) = token.rsplit_once('.').expect("three parts");
        format!("{input}.{}", b64(&change(unb64(signature))))
    }

    /// A token whose claims nest `depth` levels deep, counting the payload object.
    fn nested_payload(&self, depth: usize) -> String {
        let arrays = depth - 1;
        let nest = format!("{}{}", "[".repeat(arrays), "]".repeat(arrays));
        self.rs(&format!(
            r#"{{"iss":$A,"aud":"api","sub":"deep","exp":$EXP,"n":{nest}}}"#
        ))
    }

    /// A token whose header nests `depth` levels deep, counting the header object.
    fn nested_header(&self, depth: usize) -> String {
        let arrays = depth - 1;
        let nest = format!("{}{}", "[".repeat(arrays), "]".repeat(arrays));
        self.rs_header(
            &format!(r#"{{"alg":"RS256","kid":"rsa","n":{nest}}}"#),
            VALID,
        )
    }

    /// A valid RS256 token whose segment `index` (0: header, 1: payload) carries `=` padding,
    /// either in the signed text (`signed_as_sent`) or added after signing.
    fn padded(&self, index: usize, signed_as_sent: bool) -> String {
        // A filler claim whose length makes the segment need padding.
        let filler = (1..)
            .map(|length| "f".repeat(length))
            .find(|filler| {
                let input = self.padding_input(filler);
                !input
                    .split('.')
                    .nth(index)
                    .expect("segment")
                    .len()
                    .is_multiple_of(4)
            })
            .expect("some length needs padding");
        let input = self.padding_input(&filler);
        let mut parts: Vec<String> = input.split('.').map(str::to_string).collect();
        if signed_as_sent {
            parts[index] = pad(&parts[index]);
        }
        let signature = jsonwebtoken::crypto::sign(
            parts.join(".").as_bytes(),
            &tokens::encoding_key(Algorithm::RS256),
            Algorithm::RS256,
        )
        .expect("sign");
        parts[index] = pad(&parts[index]);
        format!("{}.{signature}", parts.join("."))
    }

    fn padding_input(&self, filler: &str) -> String {
        self.signing_input(
            &format!(r#"{{"alg":"RS256","kid":"rsa","f":"{filler}"}}"#),
            &format!(r#"{{"iss":$A,"aud":"api","sub":"padded","f":"{filler}","exp":$EXP}}"#),
        )
    }

    /// A PS/RS token over the 2048-bit key whose signature s is replaced by s + n, of the same
    /// length (signing again with another `jti` until s + n fits).
    fn plus_modulus(&self, alg: Algorithm) -> String {
        let n = unb64(tokens::jwk(Algorithm::RS256)["n"].as_str().expect("n"));
        (0..)
            .find_map(|jti| {
                let token = self.alg(
                    alg,
                    &format!(
                        r#"{{"iss":$A,"aud":"api","sub":"malleable","jti":"{jti}","exp":$EXP}}"#
                    ),
                );
                let s = unb64(token.rsplit_once('.').expect("three parts").1);
                let sum = add_same_length(&s, &n)?;
                Some(Tokens::with_signature(&token, |_| sum))
            })
            .expect("s + n fits often")
    }

    /// An ES256-headed token signed by the P-384 test key over SHA-256.
    fn es256_header_p384_key(&self) -> String {
        use p384::ecdsa::signature::hazmat::PrehashSigner;
        let input = self.signing_input(r#"{"alg":"ES256","typ":"JWT","kid":"p384"}"#, VALID);
        let signature: p384::ecdsa::Signature = self
            .keys
            .p384
            .sign_prehash(&Sha256::digest(input.as_bytes()))
            .expect("sign");
        format!("{input}.{}", b64(&signature.to_bytes()))
    }

    /// An RS256-headed token signed by the P-256 test key (ES256).
    fn rs256_header_p256_key(&self) -> String {
        let input = self.signing_input(r#"{"alg":"RS256","typ":"JWT","kid":"p256"}"#, VALID);
        self.p256_signed(&self.keys.p256, &input)
    }

    /// An RS256-headed token signed with HMAC-SHA256 by the `hmac` key.
    fn rs256_header_hmac_key(&self) -> String {
        let input = self.signing_input(r#"{"alg":"RS256","typ":"JWT","kid":"hmac"}"#, VALID);
        let signature = jsonwebtoken::crypto::sign(
            input.as_bytes(),
            &tokens::encoding_key(Algorithm::HS256),
            Algorithm::HS256,
        )
        .expect("sign");
        format!("{input}.{signature}")
    }

    fn p256_signed(&self, key: &p256::ecdsa::SigningKey, input: &str) -> String {
        use p256::ecdsa::signature::Signer;
        let signature: p256::ecdsa::Signature = key.sign(input.as_bytes());
        format!("{input}.{}", b64(&signature.to_bytes()))
    }

    /// ES256 by the P-256 key whose JWK coordinate `index` is written one byte short.
    fn p256_short(&self, index: usize, payload: &str) -> String {
        let kid = ["p256-short-x", "p256-short-y"][index];
        let input = self.signing_input(
            &format!(r#"{{"alg":"ES256","typ":"JWT","kid":"{kid}"}}"#),
            payload,
        );
        self.p256_signed(&self.keys.p256_short[index], &input)
    }

    /// RS256 by the 4096-bit key.
    fn rsa4096(&self, payload: &str) -> String {
        let input = self.signing_input(r#"{"alg":"RS256","typ":"JWT","kid":"rsa4096"}"#, payload);
        let signature =
            jsonwebtoken::crypto::sign(input.as_bytes(), &self.keys.rsa4096, Algorithm::RS256)
                .expect("sign");
        format!("{input}.{signature}")
    }

    fn interop(&self, name: &str) -> String {
        self.keys.interop_tokens[name].clone()
    }
}

/// `a + b` for big-endian numbers of one length, or `None` when the sum needs another byte.
fn add_same_length(a: &[u8], b: &[u8]) -> Option<Vec<u8>> {
    let mut sum = vec![0u8; a.len()];
    let mut carry = 0u16;
    for i in (0..a.len()).rev() {
        let digit = u16::from(a[i]) + u16::from(b[i]) + carry;
        sum[i] = digit as u8;
        carry = digit >> 8;
    }
    (carry == 0).then_some(sum)
}

/// `segment` with the unused low bits of its last base64url character set (a non-canonical
/// spelling of the same bytes).
fn noncanonical_tail(segment: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    assert_ne!(
        segment.len() % 4,
        0,
        "a full final group has no unused bits"
    );
    let last = segment.as_bytes()[segment.len() - 1];
    let index = ALPHABET.iter().position(|&c| c == last).expect("base64url");
    format!(
        "{}{}",
        &segment[..segment.len() - 1],
        ALPHABET[index | 1] as char
    )
}

// ---------------------------------------------------------------------------------------------
// Requests and cases.

/// A request: path with query, and headers in order (repeats included).
#[derive(Debug, Clone)]
struct Req {
    path: String,
    headers: Vec<(String, String)>,
}

fn get(path: &str) -> Req {
    Req {
        path: path.into(),
        headers: Vec::new(),
    }
}

impl Req {
    fn h(mut self, name: &str, value: impl AsRef<str>) -> Req {
        self.headers.push((name.into(), value.as_ref().to_string()));
        self
    }

    fn bearer(self, token: &str) -> Req {
        self.h("authorization", format!("Bearer {token}"))
    }

    fn cookie(self, value: impl AsRef<str>) -> Req {
        self.h("cookie", value)
    }

    /// Client-sent copies of every claim and payload header of the main variant.
    fn spoofed(self) -> Req {
        self.h("x-sub", "spoofed")
            .h("x-tenant", "spoofed")
            .h("x-jwt-payload", b64(br#"{"sub":"spoofed"}"#))
            .h("x-b-sub", "spoofed")
            .h("x-b-payload", "spoofed")
    }

    /// The same request under path prefix `prefix` (the request's path is its query, if any).
    fn under(&self, prefix: &str) -> Req {
        Req {
            path: format!("{prefix}{}", self.path),
            headers: self.headers.clone(),
        }
    }
}

/// The issue's classes of attack, plus the control group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    Control,
    Smuggling,
    Spoofing,
    Parsing,
    PssMalleability,
    Binding,
    Interop,
}

struct Case {
    class: Class,
    variant: Variant,
    name: String,
    request: Req,
    /// What native answers: checked, so that a case keeps testing what its name says.
    native: u16,
}

fn c(class: Class, variant: Variant, name: &str, request: Req, native: u16) -> Case {
    Case {
        class,
        variant,
        name: name.into(),
        request,
        native,
    }
}

/// A token jwt-auth refuses on purpose (401) where native admits it (`native: 200`) or refuses
/// it for another reason (`native: 401`, another body); `readme` is the phrase of the README's
/// `STRICTER_SECTION` that documents it.
struct Stricter {
    name: &'static str,
    request: Req,
    native: u16,
    readme: &'static str,
}

/// Token placements an attacker tries, each run under every requirement of the main variant
/// (`MAIN_REQUIREMENTS`), with native's status under each, in that order.
#[rustfmt::skip]
fn smuggling(t: &Tokens) -> Vec<(&'static str, Req, [u16; 6])> {
    let (v, v2, f) = (&t.valid, &t.valid2, &t.forged);
    let two_spaces = format!("a=1;  jwt={f}");
    vec![
        //                                                                                                                  api  miss fail  any  all  a|miss
        ("x-jwt: valid, then forged",                    get("").h("x-jwt", v).h("x-jwt", f),                              [401, 200, 200, 401, 401, 401]),
        ("x-jwt: forged, then valid",                    get("").h("x-jwt", f).h("x-jwt", v),                              [401, 401, 200, 401, 401, 401]),
        ("x-jwt: valid, then another valid",             get("").h("x-jwt", v).h("x-jwt", v2),                             [200, 200, 200, 200, 200, 200]),
        ("x-jwt: the same valid token twice",            get("").h("x-jwt", v).h("x-jwt", v),                              [200, 200, 200, 200, 200, 200]),
        ("x-jwt: valid, then X-JWT: forged",             get("").h("x-jwt", v).h("X-JWT", f),                              [401, 200, 200, 401, 401, 401]),
        ("x-token prefix: valid, then forged",           get("").h("x-token", format!("Token {v}")).h("x-token", format!("Token {f}")), [401, 200, 200, 401, 401, 401]),
        ("x-token prefix: forged, then valid",           get("").h("x-token", format!("Token {f}")).h("x-token", format!("Token {v}")), [401, 401, 200, 401, 401, 401]),
        ("x-token prefix: junk, then forged",            get("").h("x-token", "Basic abc").h("x-token", format!("Token {f}")), [401, 401, 200, 401, 401, 401]),
        ("authorization: valid, then forged",            get("").bearer(v).bearer(f),                                      [401, 401, 200, 401, 401, 401]),
        ("authorization: forged, then valid",            get("").bearer(f).bearer(v),                                      [401, 401, 200, 401, 401, 401]),
        ("cookie: valid, second Cookie header forged",   get("").cookie(format!("jwt={v}")).cookie(format!("jwt={f}")),    [200, 200, 200, 200, 200, 200]),
        ("cookie: forged only in a second Cookie header", get("").cookie("a=1").cookie(format!("jwt={f}")),                [401, 401, 200, 401, 401, 401]),
        ("cookie: forged after two spaces",              get("").cookie(&two_spaces),                                      [401, 401, 200, 401, 401, 401]),
        ("cookie: forged after a tab",                   get("").cookie(format!("a=1;\tjwt={f}")),                         [401, 200, 200, 401, 401, 200]),
        ("cookie: forged after tab, space, tab",         get("").cookie(format!("a=1;\t \tjwt={f}")),                      [401, 200, 200, 401, 401, 200]),
        ("cookie: valid, then forged in one header",     get("").cookie(format!("jwt={v}; jwt={f}")),                      [200, 200, 200, 200, 200, 200]),
        ("bearer valid, ?access%5Ftoken=forged",         get(&format!("?access%5Ftoken={f}")).bearer(v),                   [401, 200, 200, 401, 401, 401]),
        ("bearer valid, ?%61ccess_token=forged",         get(&format!("?%61ccess_token={f}")).bearer(v),                   [401, 200, 200, 401, 401, 401]),
        ("bearer valid, ?access_token=forged",           get(&format!("?access_token={f}")).bearer(v),                     [401, 200, 200, 401, 401, 401]),
        ("bearer forged, ?access_token=valid",           get(&format!("?access_token={v}")).bearer(f),                     [401, 401, 200, 401, 401, 401]),
        ("?access_token= valid, then forged",            get(&format!("?access_token={v}&access_token={f}")),              [200, 200, 200, 200, 200, 200]),
        ("only ?access%5Ftoken=forged",                  get(&format!("?access%5Ftoken={f}")),                             [401, 401, 200, 401, 401, 401]),
        ("bearer valid, x-jwt forged",                   get("").bearer(v).h("x-jwt", f),                                  [401, 200, 200, 401, 401, 401]),
        ("x-jwt valid, cookie forged",                   get("").h("x-jwt", v).cookie(format!("jwt={f}")),                 [401, 200, 200, 401, 401, 401]),
        ("bearer valid, ?ACCESS_TOKEN=forged",           get(&format!("?ACCESS_TOKEN={f}")).bearer(v),                     [200, 200, 200, 200, 200, 200]),
        ("bearer valid, cookie JWT=forged",              get("").bearer(v).cookie(format!("JWT={f}")),                     [200, 200, 200, 200, 200, 200]),
        ("bearer valid, ?a=1;access_token=forged",       get(&format!("?a=1;access_token={f}")).bearer(v),                 [200, 200, 200, 200, 200, 200]),
        ("bearer valid, ?access_token=forged, %-encoded", get(&format!("?access_token={}", f.replace('.', "%2E"))).bearer(v), [401, 200, 200, 401, 401, 401]),
        ("?access_token=valid&access%5Ftoken=forged",    get(&format!("?access_token={v}&access%5Ftoken={f}")),            [200, 200, 200, 200, 200, 200]),
        ("?access%5Ftoken=forged&access_token=valid",    get(&format!("?access%5Ftoken={f}&access_token={v}")),            [401, 401, 200, 401, 401, 401]),
        ("x-jwt: empty, then forged",                    get("").h("x-jwt", "").h("x-jwt", f),                             [401, 401, 200, 401, 401, 401]),
        ("x-b-jwt: b valid, then b forged",              get("").h("x-b-jwt", &t.b_valid).h("x-b-jwt", &t.b_forged),       [401, 200, 200, 401, 401, 200]),
        ("bearer valid, ?%2561ccess_token=forged",       get(&format!("?%2561ccess_token={f}")).bearer(v),                 [200, 200, 200, 200, 200, 200]),
        ("bearer valid, forged after 60 parameters",     get(&format!("?{}access_token={f}", "p=1&".repeat(60))).bearer(v), [401, 200, 200, 401, 401, 401]),
        ("x-jwt: valid, then 40 forged copies",          (0..40).fold(get("").h("x-jwt", v), |r, _| r.h("x-jwt", f)),       [401, 200, 200, 401, 401, 401]),
        ("cookie: forged in the 20th Cookie header",     (0..19).fold(get(""), |r, i| r.cookie(format!("c{i}=1"))).cookie(format!("jwt={f}")), [401, 401, 200, 401, 401, 401]),
    ]
}

/// Every case whose answer must match native's.
#[rustfmt::skip]
fn cases(t: &Tokens) -> Vec<Case> {
    use Class::*;
    use Variant::{Defaults, Forward, Interop as Keyset, Main, Shared};
    let v = &t.valid;
    let mut cases = vec![
        // Ordinary tokens, every location, every family.
        c(Control, Main, "no token", get("/api"), 401),
        c(Control, Main, "valid bearer", get("/api?x=1").bearer(v), 200),
        c(Control, Main, "valid in x-jwt", get("/api").h("x-jwt", v), 200),
        c(Control, Main, "valid in x-token after its prefix", get("/api").h("x-token", format!("Token {v}")), 200),
        c(Control, Main, "x-token without its prefix", get("/api").h("x-token", v), 401),
        c(Control, Main, "valid ?access_token", get(&format!("/api?access_token={v}")), 200),
        c(Control, Main, "valid ?access_token among other parameters", get(&format!("/api?z=1&access_token={v}&a=%41&b")), 200),
        c(Control, Main, "valid jwt cookie", get("/api").cookie(format!("s=1; jwt={v}; t=2")), 200),
        c(Control, Main, "valid quoted jwt cookie", get("/api").cookie(format!("jwt=\"{v}\"")), 200),
        c(Control, Main, "valid ES256", get("/api").bearer(&t.alg(Algorithm::ES256, VALID)), 200),
        c(Control, Main, "valid ES384", get("/api").bearer(&t.alg(Algorithm::ES384, VALID)), 200),
        c(Control, Main, "valid PS256", get("/api").bearer(&t.alg(Algorithm::PS256, VALID)), 200),
        c(Control, Main, "valid PS512", get("/api").bearer(&t.alg(Algorithm::PS512, VALID)), 200),
        c(Control, Main, "valid EdDSA", get("/api").bearer(&t.alg(Algorithm::EdDSA, VALID)), 200),
        c(Control, Main, "valid HS256", get("/api").bearer(&t.alg(Algorithm::HS256, VALID)), 200),
        c(Control, Main, "expired", get("/api").bearer(&t.expired), 401),
        c(Control, Main, "not yet valid", get("/api").bearer(&t.rs(r#"{"iss":$A,"aud":"api","nbf":9999999999}"#)), 401),
        c(Control, Main, "wrong audience", get("/api").bearer(&t.rs(r#"{"iss":$A,"aud":"other","exp":$EXP}"#)), 403),
        c(Control, Main, "unknown issuer", get("/api").bearer(&t.rs(r#"{"iss":$EVIL,"aud":"api","exp":$EXP}"#)), 401),
        c(Control, Main, "forged payload", get("/api").bearer(&t.forged), 401),
        c(Control, Main, "b's token where b reads it, under requires_any", get("/any").h("x-b-jwt", &t.b_valid), 200),
        c(Control, Main, "a and b tokens under requires_all", get("/all").bearer(v).h("x-b-jwt", &t.b_valid), 200),
        c(Control, Main, "expired under allow_missing_or_failed", get("/allow-failed").bearer(&t.expired), 200),
        c(Control, Main, "valid under allow_missing", get("/allow-missing").bearer(v), 200),
        c(Control, Main, "no token on a public path", get("/public"), 200),
        c(Control, Forward, "valid bearer kept", get("/api").bearer(v), 200),
        c(Control, Forward, "valid ?access_token kept", get(&format!("/api?access_token={v}&a=1")), 200),
        c(Control, Defaults, "valid bearer", get("/api").bearer(v), 200),
        c(Control, Defaults, "valid ?access_token", get(&format!("/api?a=1&access_token={v}")), 200),
        c(Control, Defaults, "x-jwt is not a default location", get("/api").h("x-jwt", v), 401),

        // Token smuggling outside the main variant's requirement grid.
        c(Smuggling, Defaults, "bearer valid, ?access%5Ftoken=forged", get(&format!("/api?access%5Ftoken={}", t.forged)).bearer(v), 401),
        c(Smuggling, Defaults, "allow_missing: only ?access%5Ftoken=forged", get(&format!("/allow-missing?access%5Ftoken={}", t.forged)), 401),
        c(Smuggling, Defaults, "allow_missing: authorization valid, then forged", get("/allow-missing").bearer(v).bearer(&t.forged), 401),
        c(Smuggling, Forward, "authorization valid, then forged", get("/api").bearer(v).bearer(&t.forged), 401),
        c(Smuggling, Forward, "x-jwt valid, then valid again: both kept", get("/api").h("x-jwt", v).h("x-jwt", &t.valid2), 200),
        c(Smuggling, Forward, "allow_missing: forged in a second Cookie header", get("/allow-missing").cookie("a=1").cookie(format!("jwt={}", t.forged)), 401),

        // Claim-header spoofing: client copies must never reach the upstream.
        c(Spoofing, Main, "public path", get("/public").spoofed(), 200),
        c(Spoofing, Main, "public path with a valid token", get("/public").bearer(v).spoofed(), 200),
        c(Spoofing, Main, "path no rule matches", get("/unmatched").spoofed(), 200),
        c(Spoofing, Main, "allow_missing without a token", get("/allow-missing").spoofed(), 200),
        c(Spoofing, Main, "allow_missing_or_failed without a token", get("/allow-failed").spoofed(), 200),
        c(Spoofing, Main, "allow_missing_or_failed with a forged token", get("/allow-failed").bearer(&t.forged).spoofed(), 200),
        c(Spoofing, Main, "requires_any [a, allow_missing] without a token", get("/a-or-missing").spoofed(), 200),
        c(Spoofing, Main, "valid token: the real claims, once", get("/api").bearer(v).spoofed(), 200),
        c(Spoofing, Main, "valid token: repeated, upper-case copies", get("/api").bearer(v).h("X-Sub", "one").h("x-sub", "two").h("X-JWT-PAYLOAD", "three"), 200),
        c(Spoofing, Main, "valid token without the tenant claim", get("/api").bearer(&t.valid2).spoofed(), 200),
        c(Spoofing, Main, "b's token under requires_any: a's headers", get("/any").h("x-b-jwt", &t.b_valid).spoofed(), 200),
        c(Spoofing, Main, "a and b tokens under requires_all", get("/all").bearer(v).h("x-b-jwt", &t.b_valid).spoofed(), 200),
        c(Spoofing, Forward, "valid token, padded payload header", get("/api").bearer(v).spoofed(), 200),
        c(Spoofing, Forward, "allow_missing without a token", get("/allow-missing").spoofed(), 200),
        c(Spoofing, Defaults, "path no rule matches", get("/unmatched").spoofed(), 200),
        c(Spoofing, Defaults, "valid token", get("/api").bearer(v).spoofed(), 200),

        // Lax parsing: duplicate keys, nesting, padding, segments.
        c(Parsing, Main, "payload: iss twice, evil first", get("/api").bearer(&t.rs(r#"{"iss":$EVIL,"iss":$A,"aud":"api","exp":$EXP}"#)), 401),
        c(Parsing, Main, "payload: iss twice, evil last", get("/api").bearer(&t.rs(r#"{"iss":$A,"iss":$EVIL,"aud":"api","exp":$EXP}"#)), 401),
        c(Parsing, Main, "payload: iss twice, both good", get("/api").bearer(&t.rs(r#"{"iss":$A,"iss":$A,"aud":"api","exp":$EXP}"#)), 401),
        c(Parsing, Main, "payload: exp twice, past first", get("/api").bearer(&t.rs(r#"{"iss":$A,"aud":"api","exp":$PAST,"exp":$EXP}"#)), 401),
        c(Parsing, Main, "payload: exp twice, past last", get("/api").bearer(&t.rs(r#"{"iss":$A,"aud":"api","exp":$EXP,"exp":$PAST}"#)), 401),
        c(Parsing, Main, "payload: sub twice", get("/api").bearer(&t.rs(r#"{"iss":$A,"aud":"api","sub":"admin","sub":"alice","exp":$EXP}"#)), 401),
        c(Parsing, Main, "payload: iss twice, one spelled with \\u escapes", get("/api").bearer(&t.rs(r#"{"iss":$EVIL,"\u0069ss":$A,"aud":"api","exp":$EXP}"#)), 401),
        c(Parsing, Main, "payload: aud twice", get("/api").bearer(&t.rs(r#"{"iss":$A,"aud":"other","aud":"api","exp":$EXP}"#)), 401),
        c(Parsing, Main, "header: alg twice, none first", get("/api").bearer(&t.rs_header(r#"{"alg":"none","alg":"RS256","kid":"rsa"}"#, VALID)), 401),
        c(Parsing, Main, "header: alg twice, RS256 both", get("/api").bearer(&t.rs_header(r#"{"alg":"RS256","alg":"RS256","kid":"rsa"}"#, VALID)), 401),
        c(Parsing, Main, "header: kid twice, unknown first", get("/api").bearer(&t.rs_header(r#"{"alg":"RS256","kid":"nope","kid":"rsa"}"#, VALID)), 401),
        c(Parsing, Main, "header: kid twice, unknown last", get("/api").bearer(&t.rs_header(r#"{"alg":"RS256","kid":"rsa","kid":"nope"}"#, VALID)), 401),
        c(Parsing, Main, "payload nested at native's limit", get("/api").bearer(&t.nested_payload(NATIVE_MAX_DEPTH)), 200),
        c(Parsing, Main, "payload nested one over native's limit", get("/api").bearer(&t.nested_payload(NATIVE_MAX_DEPTH + 1)), 401),
        c(Parsing, Main, "payload nested past serde_json's limit", get("/api").bearer(&t.nested_payload(130)), 401),
        c(Parsing, Main, "header nested at native's limit", get("/api").bearer(&t.nested_header(NATIVE_MAX_DEPTH)), 200),
        c(Parsing, Main, "header nested one over native's limit", get("/api").bearer(&t.nested_header(NATIVE_MAX_DEPTH + 1)), 401),
        c(Parsing, Main, "= after the signature", get("/api").bearer(&format!("{v}=")), 401),
        c(Parsing, Main, "= after the signature, in x-jwt", get("/api").h("x-jwt", format!("{v}=")), 401),
        c(Parsing, Main, "standard base64 alphabet in the signature", get("/api").bearer(&standard_alphabet_signature(v)), 401),
        c(Parsing, Main, "empty header segment", get("/api").bearer(&segments(v, |p| format!(".{}.{}", p[1], p[2]))), 401),
        c(Parsing, Main, "empty payload segment", get("/api").bearer(&segments(v, |p| format!("{}..{}", p[0], p[2]))), 401),
        c(Parsing, Main, "empty signature segment", get("/api").bearer(&segments(v, |p| format!("{}.{}.", p[0], p[1]))), 401),
        c(Parsing, Main, "only two dots", get("/api").bearer(".."), 401),
        c(Parsing, Main, "a dot after the signature", get("/api").bearer(&format!("{v}.")), 200),
        c(Parsing, Main, "a fourth segment", get("/api").bearer(&format!("{v}.{}", b64(b"{}"))), 401),
        c(Parsing, Main, "a leading dot", get("/api").bearer(&format!(".{v}")), 200),
        c(Parsing, Main, "a doubled dot", get("/api").bearer(&v.replacen('.', "..", 1)), 200),
        c(Parsing, Main, "payload: JSON then garbage", get("/api").bearer(&t.rs(r#"{"iss":$A,"aud":"api","exp":$EXP} x"#)), 401),
        c(Parsing, Main, "payload: two JSON objects", get("/api").bearer(&t.rs(r#"{"iss":$A,"aud":"api","exp":$EXP}{}"#)), 401),
        c(Parsing, Main, "payload: an array", get("/api").bearer(&t.rs(r#"[{"iss":$A,"aud":"api","exp":$EXP}]"#)), 401),
        c(Parsing, Main, "payload: a byte-order mark", get("/api").bearer(&t.rs("\u{feff}{\"iss\":$A,\"aud\":\"api\",\"exp\":$EXP}")), 401),
        c(Parsing, Main, "payload: whitespace around", get("/api").bearer(&t.rs(" \n{ \"iss\" : $A , \"aud\" : \"api\" , \"exp\" : $EXP }\t")), 200),
        c(Parsing, Main, "payload: exp as a string", get("/api").bearer(&t.rs(r#"{"iss":$A,"aud":"api","exp":"$EXP"}"#)), 401),
        c(Parsing, Main, "payload: exp with a fraction", get("/api").bearer(&t.rs(r#"{"iss":$A,"aud":"api","exp":$EXP.5}"#)), 200),
        c(Parsing, Main, "payload: exp past 2^64", get("/api").bearer(&t.rs(r#"{"iss":$A,"aud":"api","exp":18446744073709551616}"#)), 401),
        c(Parsing, Main, "payload: negative exp", get("/api").bearer(&t.rs(r#"{"iss":$A,"aud":"api","exp":-1}"#)), 401),
        c(Parsing, Main, "payload: iss with escaped slashes", get("/api").bearer(&t.rs(r#"{"iss":"https:\/\/issuer.example","aud":"api","exp":$EXP}"#)), 200),
        c(Parsing, Main, "payload: iss not a string", get("/api").bearer(&t.rs(r#"{"iss":1,"aud":"api","exp":$EXP}"#)), 401),
        c(Parsing, Main, "payload: a dotted claim name, not nested", get("/api").bearer(&t.rs(r#"{"iss":$A,"aud":"api","sub":"x","org.tenant":"flat","exp":$EXP}"#)), 200),
        c(Parsing, Main, "header: crit names an extension", get("/api").bearer(&t.rs_header(r#"{"alg":"RS256","kid":"rsa","crit":["exp"]}"#, VALID)), 200),
        c(Parsing, Main, "header: alg in lower case", get("/api").bearer(&t.rs_header(r#"{"alg":"rs256","kid":"rsa"}"#, VALID)), 401),
        c(Parsing, Main, "header: not an object", get("/api").bearer(&t.rs_header(r#"["RS256"]"#, VALID)), 401),
        c(Parsing, Main, "token with a trailing comma", get("/api").h("x-jwt", format!("{v},")), 401),
        c(Parsing, Main, "bearer with two spaces", get("/api").h("authorization", format!("Bearer  {v}")), 200),

        // PS* malleability: s + n of the same length.
        c(PssMalleability, Main, "PS256 s + n", get("/api").bearer(&t.plus_modulus(Algorithm::PS256)), 401),
        c(PssMalleability, Main, "PS384 s + n", get("/api").bearer(&t.plus_modulus(Algorithm::PS384)), 401),
        c(PssMalleability, Main, "PS512 s + n", get("/api").bearer(&t.plus_modulus(Algorithm::PS512)), 401),
        c(PssMalleability, Main, "RS256 s + n", get("/api").bearer(&t.plus_modulus(Algorithm::RS256)), 401),
        c(PssMalleability, Main, "PS256 with a leading zero byte", get("/api").bearer(&Tokens::with_signature(&t.alg(Algorithm::PS256, VALID), |s| [vec![0], s].concat())), 401),
        c(PssMalleability, Main, "PS256 s + n under allow_missing", get("/allow-missing").bearer(&t.plus_modulus(Algorithm::PS256)), 401),

        // Issuer/location binding: a token where A looks, with B's issuer (and the reverse).
        c(Binding, Main, "provider a: b's issuer in a's header", get("/api").h("x-jwt", &t.b_valid), 401),
        c(Binding, Main, "allow_missing: b's issuer in a's header", get("/allow-missing").h("x-jwt", &t.b_valid), 401),
        c(Binding, Main, "allow_missing: b's issuer in a's bearer", get("/allow-missing").bearer(&t.b_valid), 401),
        c(Binding, Main, "allow_missing: a's issuer in b's header", get("/allow-missing").h("x-b-jwt", v), 401),
        c(Binding, Main, "allow_missing: a's issuer in b's parameter", get(&format!("/allow-missing?b_token={v}")), 401),
        c(Binding, Main, "allow_missing: a's issuer in b's cookie", get("/allow-missing").cookie(format!("b_jwt={v}")), 401),
        c(Binding, Main, "allow_missing_or_failed: b's issuer in a's header", get("/allow-failed").h("x-jwt", &t.b_valid).spoofed(), 200),
        c(Binding, Main, "requires_any: b's issuer in a's header", get("/any").h("x-jwt", &t.b_valid), 401),
        c(Binding, Main, "requires_any: a's issuer in b's header", get("/any").h("x-b-jwt", v), 401),
        c(Binding, Main, "requires_any [a, allow_missing]: b's issuer in a's header", get("/a-or-missing").h("x-jwt", &t.b_valid), 401),
        c(Binding, Main, "requires_all: issuers swapped", get("/all").h("x-jwt", &t.b_valid).h("x-b-jwt", v), 401),
        c(Binding, Main, "allow_missing: no iss in a's header", get("/allow-missing").h("x-jwt", t.rs(r#"{"aud":"api","sub":"x","exp":$EXP}"#)), 401),
        c(Binding, Main, "allow_missing: a's issuer with a trailing slash", get("/allow-missing").h("x-jwt", t.rs(r#"{"iss":"https://issuer.example/","aud":"api","exp":$EXP}"#)), 401),
        c(Binding, Shared, "provider a: a's token", get("/provider-a").bearer(v), 200),
        c(Binding, Shared, "provider b: a's token", get("/provider-b").bearer(v), 401),
        c(Binding, Shared, "provider b: b's token", get("/provider-b").bearer(&t.b_valid), 200),
        c(Binding, Shared, "requires_any: a's token", get("/any").bearer(v), 200),
        c(Binding, Shared, "requires_any: b's token", get("/any").bearer(&t.b_valid), 200),
        c(Binding, Shared, "requires_any: an unknown issuer", get("/any").bearer(&t.rs(r#"{"iss":$EVIL,"aud":"api","exp":$EXP}"#)), 401),
        c(Binding, Shared, "requires_all: a's bearer, b's parameter", get(&format!("/all?access_token={}", t.b_valid)).bearer(v), 401),
        c(Binding, Shared, "allow_missing: a's bearer, b's parameter", get(&format!("/allow-missing?access_token={}", t.b_valid)).bearer(v), 401),
        c(Binding, Shared, "allow_missing: b's token", get("/allow-missing").bearer(&t.b_valid), 401),
        c(Binding, Shared, "allow_missing: an unknown issuer", get("/allow-missing").bearer(&t.rs(r#"{"iss":$EVIL,"aud":"api","exp":$EXP}"#)), 401),
        c(Binding, Shared, "provider a: a's bearer, b's forged parameter", get(&format!("/provider-a?access_token={}", t.b_forged)).bearer(v), 401),
        c(Binding, Defaults, "allow_missing: an unknown issuer in the default location", get("/allow-missing").bearer(&t.rs(r#"{"iss":$EVIL,"aud":"api","exp":$EXP}"#)), 401),

        // Interop: keys and placements real issuers and clients use.
        c(Interop, Keyset, "RS256 with a 4096-bit key", get("/api").bearer(&t.rsa4096(VALID)), 200),
        c(Interop, Keyset, "RS256 with a 4096-bit key, forged", get("/api").bearer(&t.with_payload(&t.rsa4096(VALID), ADMIN)), 401),
        c(Interop, Keyset, "RS256 with an 8192-bit key", get("/api").bearer(&t.interop("rs256_8192")), 200),
        c(Interop, Keyset, "PS256 with an 8192-bit key", get("/api").bearer(&t.interop("ps256_8192")), 200),
        c(Interop, Keyset, "RS512 with an 8192-bit key", get("/api").bearer(&t.interop("rs512_8192")), 200),
        c(Interop, Keyset, "RS256 with an 8192-bit key, forged", get("/api").bearer(&t.with_payload(&t.interop("rs256_8192"), ADMIN)), 401),
        c(Interop, Keyset, "ES256, JWK x without its leading zero", get("/api").bearer(&t.p256_short(0, VALID)), 200),
        c(Interop, Keyset, "ES256, JWK y without its leading zero", get("/api").bearer(&t.p256_short(1, VALID)), 200),
        c(Interop, Keyset, "ES256, short JWK x, forged", get("/api").bearer(&t.with_payload(&t.p256_short(0, VALID), ADMIN)), 401),
        c(Interop, Keyset, "ES512", get("/api").bearer(&t.interop("es512")), 200),
        c(Interop, Keyset, "ES512, forged", get("/api").bearer(&t.with_payload(&t.interop("es512"), ADMIN)), 401),
        c(Interop, Keyset, "ES512, signature bit flipped", get("/api").bearer(&Tokens::with_signature(&t.interop("es512"), |mut s| { s[40] ^= 1; s })), 401),
        c(Interop, Keyset, "RS256 with the 2048-bit key beside them", get("/api").bearer(v), 200),
        c(Interop, Main, "valid token in the second Cookie header", get("/api").cookie("a=1").cookie(format!("jwt={v}")), 200),
        c(Interop, Main, "valid token in the third Cookie header", get("/api").cookie("a=1").cookie("b=2").cookie(format!("jwt={v}")), 200),
        c(Interop, Main, "valid token after two spaces", get("/api").cookie(format!("a=1;  jwt={v}")), 200),
        c(Interop, Main, "a tab is not a cookie separator", get("/api").cookie(format!("a=1;\tjwt={v}")), 401),
        c(Interop, Main, "valid token at ?access%5Ftoken", get(&format!("/api?access%5Ftoken={v}")), 200),
    ];
    for (shape, request, statuses) in smuggling(t) {
        for ((path, requirement), native) in MAIN_REQUIREMENTS.iter().zip(statuses) {
            let mut request = request.under(path);
            if *path == "/all" {
                request = request.h("x-b-jwt", &t.b_valid);
            }
            cases.push(c(Smuggling, Main, &format!("{shape} [{requirement}]"), request, native));
        }
    }
    cases
}

/// Where jwt-auth refuses on purpose what native admits, or refuses it for another reason.
/// Keep it short.
#[rustfmt::skip]
fn stricter(t: &Tokens) -> Vec<Stricter> {
    let v = &t.valid;
    let es256 = t.alg(Algorithm::ES256, VALID);
    let big = t.rs(&format!(r#"{{"iss":$A,"aud":"api","sub":"big","exp":$EXP,"pad":"{}"}}"#, "x".repeat(9000)));
    vec![
        Stricter { name: "ES256 header, P-384 key", request: get("/api").bearer(&t.es256_header_p384_key()), native: 200, readme: "ES256 header verified with a P-384 key" },
        Stricter { name: "RS256 header, P-256 key", request: get("/api").bearer(&t.rs256_header_p256_key()), native: 200, readme: "RS*/PS* header with an EC or `oct` key" },
        Stricter { name: "RS256 header, HMAC key", request: get("/api").bearer(&t.rs256_header_hmac_key()), native: 200, readme: "RS*/PS* header with an EC or `oct` key" },
        Stricter { name: "ES256 signature with a trailing byte", request: get("/api").bearer(&Tokens::with_signature(&es256, |s| [s, vec![0]].concat())), native: 200, readme: "Trailing bytes after an ECDSA signature" },
        Stricter { name: "= padding added to the header after signing", request: get("/api").bearer(&t.padded(0, false)), native: 401, readme: "with the status of its segment" },
        Stricter { name: "= padding added to the payload after signing", request: get("/api").bearer(&t.padded(1, false)), native: 401, readme: "with the status of its segment" },
        Stricter { name: "a space inside the signature, in x-jwt", request: get("/api").h("x-jwt", format!("{} {}", &v[..v.len() - 20], &v[v.len() - 20..])), native: 200, readme: "Whitespace inside a token" },
        Stricter { name: "a space inside the payload, in x-jwt", request: get("/api").h("x-jwt", segments(v, |p| format!("{}.{} {}.{}", p[0], &p[1][..10], &p[1][10..], p[2]))), native: 401, readme: "Whitespace inside a token" },
        Stricter { name: "token with a trailing space in x-jwt", request: get("/api").h("x-jwt", format!("{v} x")), native: 401, readme: "Whitespace inside a token" },
        Stricter { name: "non-canonical base64 tail bits in the signature", request: get("/api").bearer(&segments(&t.valid, |p| format!("{}.{}.{}", p[0], p[1], noncanonical_tail(p[2])))), native: 200, readme: "unused low bits are" },
        Stricter { name: "a token over 8 KiB", request: get("/api").bearer(&big), native: 200, readme: "Tokens over 8 KiB are refused" },
        Stricter { name: "canonical == after the signature", request: get("/api").bearer(&format!("{}==", t.valid)), native: 200, readme: "canonical padding" },
        Stricter { name: "canonical = padding on the header, signed as sent", request: get("/api").bearer(&t.padded(0, true)), native: 200, readme: "canonical padding" },
        Stricter { name: "canonical = padding on the payload, signed as sent", request: get("/api").bearer(&t.padded(1, true)), native: 200, readme: "canonical padding" },
    ]
}

/// The README's section on what jwt-auth refuses on purpose, up to the next heading (empty when
/// there is none).
fn stricter_section() -> &'static str {
    let Some(start) = README.find(STRICTER_SECTION) else {
        return "";
    };
    let section = &README[start..];
    let end = section[STRICTER_SECTION.len()..]
        .find("\n#")
        .map_or(section.len(), |at| at + STRICTER_SECTION.len());
    &section[..end]
}

/// The deepest JSON nesting native jwt_authn parses, counting the outermost object.
const NATIVE_MAX_DEPTH: usize = 100;

/// `token` rebuilt from its three segments.
fn segments(token: &str, build: impl FnOnce(&[&str]) -> String) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    build(&parts)
}

/// `segment` with the `=` padding base64 would give it.
fn pad(segment: &str) -> String {
    let mut padded = segment.to_string();
    while !padded.len().is_multiple_of(4) {
        padded.push('=');
    }
    padded
}

/// `token` with its signature in the standard base64 alphabet (`+`, `/`).
fn standard_alphabet_signature(token: &str) -> String {
    let (input, signature) = token.rsplit_once('.').expect("three parts");
    let standard = STANDARD_NO_PAD.encode(unb64(signature));
    assert!(standard.contains(['+', '/']), "the alphabets differ here");
    format!("{input}.{standard}")
}

// ---------------------------------------------------------------------------------------------
// Running and comparing.

/// `None` when both sides saw the same; otherwise whether they differ only in how the query
/// that remains after a token parameter is removed is written: native sorts the parameters
/// and decodes them, jwt-auth leaves them as the client sent them (the README's "Differences
/// from native" says so). The decoded parameters must still be the same, in the same order per
/// name.
fn same_but_query_form(native: &Seen, wasm: &Seen) -> Option<bool> {
    if native == wasm {
        return None;
    }
    let (Some(native_upstream), Some(wasm_upstream)) = (&native.upstream, &wasm.upstream) else {
        return Some(false);
    };
    let parameters = |path: &str| {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let mut pairs: Vec<(String, String)> = query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                (percent_decode(name), percent_decode(value))
            })
            .collect();
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        (path.to_string(), pairs)
    };
    let mut native_rest = native.clone();
    let mut wasm_rest = wasm.clone();
    for rest in [&mut native_rest, &mut wasm_rest] {
        if let Some(upstream) = &mut rest.upstream {
            upstream.path = String::new();
        }
    }
    Some(
        native_rest == wasm_rest
            && parameters(&native_upstream.path) == parameters(&wasm_upstream.path),
    )
}

fn percent_decode(text: &str) -> String {
    String::from_utf8_lossy(&sdk_ext::request::percent_decode(text.as_bytes())).into_owned()
}

/// The common tokens and payload segments by name, so a report shows `<forged>` where a
/// token would take 500 bytes; other long values are shown by their ends.
struct Legend(Vec<(String, String)>);

impl Legend {
    fn new(t: &Tokens) -> Legend {
        let mut entries = Vec::new();
        for (name, token) in [
            ("valid", &t.valid),
            ("valid2", &t.valid2),
            ("forged", &t.forged),
            ("b_valid", &t.b_valid),
            ("b_forged", &t.b_forged),
            ("expired", &t.expired),
        ] {
            entries.push((format!("<{name}>"), token.clone()));
            let payload = token.split('.').nth(1).expect("payload");
            entries.push((format!("<payload of {name}>"), payload.to_string()));
        }
        Legend(entries)
    }

    fn show(&self, text: &str) -> String {
        let text = self.0.iter().fold(text.to_string(), |text, (name, value)| {
            text.replace(value, name)
        });
        shortened(&text, 40)
    }

    fn request(&self, request: &Req) -> String {
        let mut text = format!("GET {}", self.show(&request.path));
        for (name, value) in &request.headers {
            let _ = write!(
                text,
                "\n        {name}: {}",
                self.show(&value.escape_debug().to_string())
            );
        }
        text
    }
}

fn send(port: u16, request: &Req) -> Seen {
    let mut outgoing = Request::get(&request.path).header("host", "api.example.com");
    for (name, value) in &request.headers {
        outgoing = outgoing.header(name, value);
    }
    Seen::of(
        outgoing.send(port).map_err(|error| error.to_string()),
        &["www-authenticate"],
        IGNORED_UPSTREAM_HEADERS,
    )
}

/// Sends each request to the native and the wasm listener of its variant, `PARALLEL_REQUESTS`
/// at a time, and returns (native, wasm) in order.
fn run(envoy: &Envoy, requests: &[(Variant, &Req)]) -> Vec<(Seen, Seen)> {
    let named: Vec<(&str, &Req)> = requests
        .iter()
        .map(|(variant, request)| (variant.name(), *request))
        .collect();
    run_pairs(envoy, &named, PARALLEL_REQUESTS, send)
}

fn start_envoy(upstream: &EchoUpstream, keys: &Keys) -> Envoy {
    let mut bootstrap = BootstrapBuilder::new(upstream.port());
    for variant in VARIANTS {
        let config = variant.config(keys);
        let native = native_filter(
            "native_jwt",
            "jwt_authn.v3.JwtAuthentication",
            config.clone(),
        );
        let wasm = wasm_filter(
            &format!("jwt_auth_{}", variant.name()),
            &filter_wasm("jwt_auth"),
            &config,
        );
        bootstrap = bootstrap
            .listener(&format!("native-{}", variant.name()), vec![native])
            .listener(&format!("wasm-{}", variant.name()), vec![wasm]);
    }
    Envoy::start(bootstrap.build()).expect("Envoy starts with every variant")
}

#[test]
fn jwt_auth_answers_as_native_jwt_authn() {
    let started = Instant::now();
    let t = Tokens::new(tokens::seconds(SystemTime::now()));
    let cases = cases(&t);
    let stricter = stricter(&t);
    let upstream = EchoUpstream::start().expect("upstream");
    let envoy = start_envoy(&upstream, &t.keys);
    let ready = started.elapsed();

    let requests: Vec<(Variant, &Req)> = cases
        .iter()
        .map(|case| (case.variant, &case.request))
        .chain(stricter.iter().map(|case| (Variant::Main, &case.request)))
        .collect();
    let results = run(&envoy, &requests);
    let (case_results, stricter_results) = results.split_at(cases.len());

    let legend = Legend::new(&t);
    let mut diverging = String::new();
    let mut admitted = 0;
    let mut query_form = 0;
    let mut mislabelled = String::new();
    let mut failing_per_class: BTreeMap<Class, (usize, usize)> = BTreeMap::new();
    for (case, (native, wasm)) in cases.iter().zip(case_results) {
        let title = format!("[{:?}] {} ({})", case.class, case.name, case.variant.name());
        let tally = failing_per_class.entry(case.class).or_default();
        tally.1 += 1;
        if native.status != case.native {
            let _ = writeln!(
                mislabelled,
                "  {title}: native answered {}, the table says {}\n    request {}\n    native {}",
                native.status,
                case.native,
                legend.request(&case.request),
                native.describe(&|text| legend.show(text))
            );
        }
        let same = match same_but_query_form(native, wasm) {
            Some(true) => {
                query_form += 1;
                true
            }
            Some(false) => false,
            None => true,
        };
        if !same {
            tally.0 += 1;
            // The worst kind: the upstream sees a request native refused.
            let admits = native.upstream.is_none() && wasm.upstream.is_some();
            admitted += usize::from(admits);
            let _ = writeln!(
                diverging,
                "  {}{title}\n    request {}\n    native {}\n    wasm   {}",
                if admits { "ADMITS " } else { "" },
                legend.request(&case.request),
                native.describe(&|text| legend.show(text)),
                wasm.describe(&|text| legend.show(text))
            );
        }
    }
    let mut not_stricter = String::new();
    for (case, (native, wasm)) in stricter.iter().zip(stricter_results) {
        let documented = stricter_section().contains(case.readme);
        if native.status != case.native || wasm.status != 401 || !documented {
            let _ = writeln!(
                not_stricter,
                "  {}: want native {}, jwt-auth 401, README's stricter list naming {:?} ({})\n    native {}\n    wasm   {}",
                case.name,
                case.native,
                case.readme,
                if documented { "found" } else { "missing" },
                native.describe(&|text| legend.show(text)),
                wasm.describe(&|text| legend.show(text))
            );
        }
    }

    let mut summary = format!(
        "{} cases and {} stricter cases in {:.1} s (Envoy ready after {:.1} s); diverging per class:",
        cases.len(),
        stricter.len(),
        started.elapsed().as_secs_f64(),
        ready.as_secs_f64()
    );
    for (class, (failing, total)) in &failing_per_class {
        let _ = write!(summary, " {class:?} {failing}/{total};");
    }
    let _ = write!(
        summary,
        " jwt-auth admits {admitted} that native refuses; {query_form} differ only in the form of the query that remains"
    );
    println!("{summary}");
    let mut report = String::new();
    if !diverging.is_empty() {
        let _ = write!(report, "\njwt-auth and native differ:\n{diverging}");
    }
    if !mislabelled.is_empty() {
        let _ = write!(
            report,
            "\ncases whose native answer is not the table's:\n{mislabelled}"
        );
    }
    if !not_stricter.is_empty() {
        let _ = write!(
            report,
            "\nstricter cases that are not (or not documented):\n{not_stricter}"
        );
    }
    assert!(report.is_empty(), "{summary}\n{report}");
}
