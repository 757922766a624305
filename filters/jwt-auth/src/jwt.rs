//! A JWT split, decoded and type-checked as Envoy's jwt_authn does it, with Envoy's failure
//! statuses. Signature checks live in `jwks`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Tokens longer than this are refused before any decoding (Envoy has no such limit; a bound
/// keeps a hostile token from costing more than a few decodes).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Why a token was refused, with Envoy's status strings (google/jwt_verify_lib `status.cc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtError {
    /// No token where the rule needs one.
    Missing,
    /// `nbf` is in the future.
    NotYetValid,
    /// `exp` is in the past.
    Expired,
    /// Not three dot-separated parts.
    BadFormat,
    /// The header is not base64url.
    HeaderBadBase64,
    /// The header is not JSON.
    HeaderBadJson,
    /// `alg` is missing or not a string.
    HeaderBadAlg,
    /// `alg` is not one this filter verifies.
    HeaderNotImplementedAlg,
    /// `kid` is not a string.
    HeaderBadKid,
    /// The payload is not base64url.
    PayloadBadBase64,
    /// The payload is not JSON.
    PayloadBadJson,
    /// A registered claim has the wrong type.
    PayloadBadClaim(&'static str),
    /// The signature is not base64url.
    SignatureBadBase64,
    /// An Ed25519 key met a signature that is not 64 bytes.
    Ed25519SignatureWrongLength,
    /// No provider accepts the token's `iss` at this location.
    UnknownIssuer,
    /// No configured audience is in `aud`.
    AudienceNotAllowed,
    /// The signature, subject or lifetime check failed.
    VerificationFail,
    /// No key matches the token's `kid` or `alg`.
    KidAlgMismatch,
    /// The provider has no usable key.
    NoValidKeys,
    /// The remote JWKS could not be fetched.
    JwksFetchFail,
    /// The token is longer than [`MAX_TOKEN_BYTES`].
    TooLarge,
}

impl JwtError {
    /// Envoy's status string, used as the reply body.
    pub fn message(self) -> &'static str {
        match self {
            JwtError::Missing => "Jwt is missing",
            JwtError::NotYetValid => "Jwt not yet valid",
            JwtError::Expired => "Jwt is expired",
            JwtError::BadFormat => {
                "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections"
            }
            JwtError::HeaderBadBase64 => "Jwt header is an invalid Base64url encoded",
            JwtError::HeaderBadJson => "Jwt header is an invalid JSON",
            JwtError::HeaderBadAlg => "Jwt header [alg] field is required and must be a string",
            JwtError::HeaderNotImplementedAlg => "Jwt header [alg] is not supported",
            JwtError::HeaderBadKid => "Jwt header [kid] field is not a string",
            JwtError::PayloadBadBase64 => "Jwt payload is an invalid Base64url encoded",
            JwtError::PayloadBadJson => "Jwt payload is an invalid JSON",
            JwtError::PayloadBadClaim(message) => message,
            JwtError::SignatureBadBase64 => "Jwt signature is an invalid Base64url encoded",
            JwtError::Ed25519SignatureWrongLength => "Jwt ED25519 signature is wrong length",
            JwtError::UnknownIssuer => "Jwt issuer is not configured",
            JwtError::AudienceNotAllowed => "Audiences in Jwt are not allowed",
            JwtError::VerificationFail => "Jwt verification fails",
            JwtError::KidAlgMismatch => "Jwks doesn't have key to match kid or alg from Jwt",
            JwtError::NoValidKeys => "Jwks doesn't have any valid public key",
            JwtError::JwksFetchFail => "Jwks remote fetch is failed",
            JwtError::TooLarge => "Jwt is too large",
        }
    }

    /// 403 for an audience mismatch, 401 for everything else, as Envoy.
    pub fn http_status(self) -> u32 {
        if self == JwtError::AudienceNotAllowed {
            403
        } else {
            401
        }
    }

    /// A short name for the `denied.<reason>` metric.
    pub fn reason(self) -> &'static str {
        match self {
            JwtError::Missing => "missing",
            JwtError::NotYetValid => "not_yet_valid",
            JwtError::Expired => "expired",
            JwtError::UnknownIssuer => "unknown_issuer",
            JwtError::AudienceNotAllowed => "audience",
            JwtError::VerificationFail | JwtError::Ed25519SignatureWrongLength => {
                "verification_failed"
            }
            JwtError::KidAlgMismatch | JwtError::NoValidKeys => "no_key",
            JwtError::JwksFetchFail => "jwks_fetch_failed",
            JwtError::TooLarge => "too_large",
            _ => "malformed",
        }
    }

    /// Every reason [`reason`](Self::reason) returns, for defining the metrics up front.
    pub const REASONS: &'static [&'static str] = &[
        "missing",
        "not_yet_valid",
        "expired",
        "unknown_issuer",
        "audience",
        "verification_failed",
        "no_key",
        "jwks_fetch_failed",
        "too_large",
        "malformed",
    ];
}

/// The algorithms jwt_authn accepts in a token header.
pub const ALGORITHMS: &[&str] = &[
    "ES256", "ES384", "ES512", "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256",
    "PS384", "PS512", "EdDSA",
];

/// A parsed token.
#[derive(Debug, Clone)]
pub struct Jwt {
    /// The base64url header segment as received.
    pub header_b64: String,
    /// The base64url payload segment as received (what `forward_payload_header` sends).
    pub payload_b64: String,
    /// The base64url signature segment.
    pub signature_b64: String,
    /// The decoded signature.
    pub signature: Vec<u8>,
    /// `alg`.
    pub alg: String,
    /// `kid`, empty when absent.
    pub kid: String,
    /// `iss`, empty when absent.
    pub iss: String,
    /// `sub`, empty when absent.
    pub sub: String,
    /// `exp`, 0 when absent.
    pub exp: u64,
    /// `nbf`, 0 when absent.
    pub nbf: u64,
    /// `aud` as a list.
    pub audiences: Vec<String>,
    /// Every claim.
    pub claims: Map<String, Value>,
}

fn decode(segment: &str) -> Option<Vec<u8>> {
    // No `=` padding and canonical tail bits, so each token has exactly one spelling.
    URL_SAFE_NO_PAD.decode(segment).ok()
}

/// Nesting that native jwt_authn's JSON parser (protobuf's) accepts in a token's header or
/// payload, counting the outer object as one level.
pub const MAX_JSON_DEPTH: usize = 100;

/// A JSON value read through serde_json, refusing what protobuf's JSON parser refuses and
/// serde_json would let pass: a key repeated in one object (serde_json keeps the last), and
/// nesting deeper than [`MAX_JSON_DEPTH`]. The value is how many more levels may open.
struct StrictJson(usize);

impl<'de> DeserializeSeed<'de> for StrictJson {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl StrictJson {
    fn nested<E: de::Error>(&self) -> Result<StrictJson, E> {
        match self.0.checked_sub(1) {
            Some(left) => Ok(StrictJson(left)),
            None => Err(E::custom("nested too deeply")),
        }
    }
}

impl<'de> Visitor<'de> for StrictJson {
    type Value = Value;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let inner = self.nested()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(StrictJson(inner.0))? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let inner = self.nested()?;
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom("duplicate key"));
            }
            let value = map.next_value_seed(StrictJson(inner.0))?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// A JSON object under [`StrictJson`]'s rules, with nothing after it but whitespace.
fn strict_object(bytes: &[u8]) -> Option<Map<String, Value>> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = StrictJson(MAX_JSON_DEPTH)
        .deserialize(&mut deserializer)
        .ok()?;
    deserializer.end().ok()?;
    match value {
        Value::Object(object) => Some(object),
        _ => None,
    }
}

fn string_claim(
    claims: &Map<String, Value>,
    name: &str,
    error: &'static str,
) -> Result<String, JwtError> {
    match claims.get(name) {
        None => Ok(String::new()),
        Some(Value::String(text)) => Ok(text.clone()),
        Some(_) => Err(JwtError::PayloadBadClaim(error)),
    }
}

fn time_claim(
    claims: &Map<String, Value>,
    name: &str,
    not_integer: &'static str,
    out_of_range: &'static str,
) -> Result<u64, JwtError> {
    match claims.get(name) {
        None => Ok(0),
        Some(Value::Number(number)) => {
            let value = number.as_f64().unwrap_or(-1.0);
            if !(0.0..18_446_744_073_709_551_616.0).contains(&value) {
                return Err(JwtError::PayloadBadClaim(out_of_range));
            }
            // Envoy reads numbers as doubles and truncates the fraction.
            Ok(number.as_u64().unwrap_or(value as u64))
        }
        Some(_) => Err(JwtError::PayloadBadClaim(not_integer)),
    }
}

impl Jwt {
    /// Parses a token in Envoy's order of checks.
    pub fn parse(token: &str) -> Result<Jwt, JwtError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(JwtError::TooLarge);
        }
        // Envoy splits on '.' and skips empty parts, so "h..p.s" reads as "h.p.s".
        let mut parts = token.split('.').filter(|part| !part.is_empty());
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::BadFormat);
        };
        let header = decode(header_b64).ok_or(JwtError::HeaderBadBase64)?;
        let header = strict_object(&header).ok_or(JwtError::HeaderBadJson)?;
        let alg = match header.get("alg") {
            Some(Value::String(alg)) => alg.clone(),
            _ => return Err(JwtError::HeaderBadAlg),
        };
        if !ALGORITHMS.contains(&alg.as_str()) {
            return Err(JwtError::HeaderNotImplementedAlg);
        }
        let kid = match header.get("kid") {
            None => String::new(),
            Some(Value::String(kid)) => kid.clone(),
            Some(_) => return Err(JwtError::HeaderBadKid),
        };
        let payload = decode(payload_b64).ok_or(JwtError::PayloadBadBase64)?;
        let claims = strict_object(&payload).ok_or(JwtError::PayloadBadJson)?;
        let iss = string_claim(&claims, "iss", "Jwt payload [iss] field is not a string")?;
        let sub = string_claim(&claims, "sub", "Jwt payload [sub] field is not a string")?;
        time_claim(
            &claims,
            "iat",
            "Jwt payload [iat] field is not an integer",
            "Jwt payload [iat] field is not a positive 64 bit integer",
        )?;
        let nbf = time_claim(
            &claims,
            "nbf",
            "Jwt payload [nbf] field is not an integer",
            "Jwt payload [nbf] field is not a positive 64 bit integer",
        )?;
        let exp = time_claim(
            &claims,
            "exp",
            "Jwt payload [exp] field is not an integer",
            "Jwt payload [exp] field is not a positive 64 bit integer",
        )?;
        string_claim(&claims, "jti", "Jwt payload [jti] field is not a string")?;
        let audiences = match claims.get("aud") {
            None => Vec::new(),
            Some(Value::String(aud)) => vec![aud.clone()],
            Some(Value::Array(list)) => list
                .iter()
                .map(|aud| aud.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or(JwtError::PayloadBadClaim(
                    "Jwt payload [aud] field is not a string or string list",
                ))?,
            Some(_) => {
                return Err(JwtError::PayloadBadClaim(
                    "Jwt payload [aud] field is not a string or string list",
                ))
            }
        };
        let signature = decode(signature_b64).ok_or(JwtError::SignatureBadBase64)?;
        Ok(Jwt {
            header_b64: header_b64.to_string(),
            payload_b64: payload_b64.to_string(),
            signature_b64: signature_b64.to_string(),
            signature,
            alg,
            kid,
            iss,
            sub,
            exp,
            nbf,
            audiences,
            claims,
        })
    }

    /// Envoy's time check: not yet valid if `now + skew < nbf`, expired if `now > exp + skew`
    /// (a missing or zero `exp` never expires).
    pub fn check_time(&self, now: u64, skew: u64) -> Result<(), JwtError> {
        if now.saturating_add(skew) < self.nbf {
            return Err(JwtError::NotYetValid);
        }
        if self.exp != 0 && now > self.exp.saturating_add(skew) {
            return Err(JwtError::Expired);
        }
        Ok(())
    }

    /// The signed bytes: `header.payload` as received.
    pub fn signing_input(&self) -> String {
        format!("{}.{}", self.header_b64, self.payload_b64)
    }

    /// A claim by dotted path (`a.b.c` walks nested objects).
    pub fn claim(&self, path: &str) -> Option<&Value> {
        let mut parts = path.split('.');
        let mut value = self.claims.get(parts.next()?)?;
        for part in parts {
            value = value.as_object()?.get(part)?;
        }
        Some(value)
    }
}

/// Audience match as Envoy's: any token audience equals any allowed one, each compared without a
/// leading `http://`/`https://` and one trailing `/`. No audiences configured allows all.
pub fn audience_allowed(allowed: &[String], token: &[String]) -> bool {
    fn normalize(audience: &str) -> &str {
        let stripped = audience
            .strip_prefix("http://")
            .or_else(|| audience.strip_prefix("https://"))
            .unwrap_or(audience);
        stripped.strip_suffix('/').unwrap_or(stripped)
    }
    allowed.is_empty()
        || token
            .iter()
            .any(|aud| allowed.iter().any(|ok| normalize(ok) == normalize(aud)))
}

/// A claim value as a header value, formatted as Envoy's `claim_to_headers`: strings as they
/// are, non-negative integers as digits, other numbers with six decimals, booleans as words,
/// objects and arrays as standard base64 of their JSON. `None` for null.
pub fn claim_header_value(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Bool(flag) => Some(flag.to_string()),
        Value::Number(number) => Some(match number.as_u64() {
            Some(whole) => whole.to_string(),
            None => {
                let float = number.as_f64().unwrap_or_default();
                if float >= 0.0 && float.fract() == 0.0 && float < 18_446_744_073_709_551_616.0 {
                    format!("{}", float as u64)
                } else {
                    six_decimals(float)
                }
            }
        }),
        Value::Array(_) | Value::Object(_) => {
            Some(base64::engine::general_purpose::STANDARD.encode(value.to_string()))
        }
        Value::Null => None,
    }
}

/// `format!("{value:.6}")` for a finite `value`, by exact integer arithmetic: the standard
/// formatter would bring its Grisu and Dragon4 code (several KB of wasm) for this one call.
/// `|value| = mantissa × 2^exponent`; the digits are `|value| × 10^6` rounded half to even.
fn six_decimals(value: f64) -> String {
    let bits = value.to_bits();
    let (fraction, biased) = (bits & ((1 << 52) - 1), ((bits >> 52) & 0x7ff) as i32);
    let (mantissa, exponent) = match biased {
        0 => (fraction, -1074),
        _ => (fraction | 1 << 52, biased - 1075),
    };
    // Below 2^73, so the scaled value fits in a u128 before any shift.
    let scaled = u128::from(mantissa) * 1_000_000;
    let rounded = match exponent.unsigned_abs() {
        _ if exponent >= 0 => scaled,
        128.. => 0,
        by => {
            let (quotient, rest, half) = (scaled >> by, scaled & ((1 << by) - 1), 1 << (by - 1));
            quotient + u128::from(rest > half || (rest == half && quotient & 1 == 1))
        }
    };
    // Little-endian 32-bit limbs, shifted left for a value of 2^53 or more (an integer).
    let mut limbs: Vec<u32> = (0..4).map(|i| (rounded >> (32 * i)) as u32).collect();
    if exponent > 0 {
        let by = exponent as usize;
        limbs.splice(0..0, std::iter::repeat_n(0, by / 32));
        let mut carry = 0;
        for limb in limbs.iter_mut() {
            let wide = (u64::from(*limb) << (by % 32)) | carry;
            *limb = wide as u32;
            carry = wide >> 32;
        }
        limbs.push(carry as u32);
    }
    // Base 10^9 chunks, least significant first, then their digits.
    let mut chunks = Vec::new();
    while limbs.iter().any(|&limb| limb != 0) {
        let mut rest = 0u64;
        for limb in limbs.iter_mut().rev() {
            let wide = (rest << 32) | u64::from(*limb);
            *limb = (wide / 1_000_000_000) as u32;
            rest = wide % 1_000_000_000;
        }
        chunks.push(rest as u32);
    }
    let mut digits: Vec<u8> = vec![b'0'; 7];
    for chunk in chunks.iter().rev() {
        let mut power = 100_000_000;
        while power > 0 {
            digits.push(b'0' + (chunk / power % 10) as u8);
            power /= 10;
        }
    }
    // At least one digit before the point.
    let first = digits
        .iter()
        .position(|&d| d != b'0')
        .unwrap_or(digits.len());
    // `digits` starts with 7 zeros, so 7 digits are always left.
    let digits = digits
        .get(first.min(digits.len().saturating_sub(7))..)
        .unwrap_or_default();
    let (whole, decimals) = digits.split_at(digits.len() - 6);
    let mut out = String::with_capacity(digits.len() + 2);
    if bits >> 63 == 1 {
        out.push('-');
    }
    for &digit in whole {
        out.push(char::from(digit));
    }
    out.push('.');
    for &digit in decimals {
        out.push(char::from(digit));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(value: &Value) -> String {
        URL_SAFE_NO_PAD.encode(value.to_string())
    }

    fn token(header: Value, payload: Value) -> String {
        format!("{}.{}.c2ln", b64(&header), b64(&payload))
    }

    #[test]
    fn parses_registered_claims() {
        let jwt = Jwt::parse(&token(
            json!({"alg": "RS256", "kid": "k1"}),
            json!({"iss": "i", "sub": "s", "exp": 2000, "nbf": 1000.7, "aud": ["a", "b"], "nested": {"x": 1}}),
        ))
        .unwrap();
        assert_eq!(
            (jwt.alg.as_str(), jwt.kid.as_str(), jwt.iss.as_str()),
            ("RS256", "k1", "i")
        );
        assert_eq!((jwt.exp, jwt.nbf), (2000, 1000));
        assert_eq!(jwt.audiences, ["a", "b"]);
        assert_eq!(jwt.signature, b"sig");
        assert_eq!(jwt.claim("nested.x"), Some(&json!(1)));
        assert_eq!(jwt.claim("nested.y"), None);
    }

    #[test]
    fn failures_follow_envoys_order_and_wording() {
        let ok_header = json!({"alg": "RS256"});
        let cases: Vec<(String, JwtError)> = vec![
            ("a.b".into(), JwtError::BadFormat),
            ("a.b.c.d".into(), JwtError::BadFormat),
            ("a.b.".into(), JwtError::BadFormat),
            ("!!.b.c".into(), JwtError::HeaderBadBase64),
            (
                format!("{}.b.c", URL_SAFE_NO_PAD.encode("not json")),
                JwtError::HeaderBadJson,
            ),
            (token(json!({"alg": 1}), json!({})), JwtError::HeaderBadAlg),
            (
                token(json!({"alg": "none"}), json!({})),
                JwtError::HeaderNotImplementedAlg,
            ),
            (
                token(json!({"alg": "RS256", "kid": 5}), json!({})),
                JwtError::HeaderBadKid,
            ),
            (
                format!("{}.!!.c", b64(&ok_header)),
                JwtError::PayloadBadBase64,
            ),
            (
                token(ok_header.clone(), json!({"exp": "soon"})),
                JwtError::PayloadBadClaim("Jwt payload [exp] field is not an integer"),
            ),
            (
                token(ok_header.clone(), json!({"exp": -1})),
                JwtError::PayloadBadClaim(
                    "Jwt payload [exp] field is not a positive 64 bit integer",
                ),
            ),
            (
                token(ok_header.clone(), json!({"aud": [1]})),
                JwtError::PayloadBadClaim("Jwt payload [aud] field is not a string or string list"),
            ),
            (
                format!("{}.{}.!!", b64(&ok_header), b64(&json!({}))),
                JwtError::SignatureBadBase64,
            ),
            ("x".repeat(MAX_TOKEN_BYTES + 1), JwtError::TooLarge),
        ];
        for (token, expected) in cases {
            assert_eq!(Jwt::parse(&token).unwrap_err(), expected, "{token}");
        }
        assert!(
            Jwt::parse(&format!("{}..{}.c2ln", b64(&ok_header), b64(&json!({})))).is_ok(),
            "empty parts are skipped"
        );
    }

    fn raw_token(header: &str, payload: &str) -> String {
        format!(
            "{}.{}.c2ln",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        )
    }

    #[test]
    fn a_repeated_key_refuses_the_token() {
        let header = r#"{"alg":"RS256"}"#;
        let cases = [
            (
                r#"{"alg":"RS256","alg":"RS256"}"#,
                "{}",
                JwtError::HeaderBadJson,
            ),
            (
                r#"{"alg":"RS256","kid":"a","kid":"b"}"#,
                "{}",
                JwtError::HeaderBadJson,
            ),
            (
                header,
                r#"{"iss":"evil","iss":"good"}"#,
                JwtError::PayloadBadJson,
            ),
            (
                header,
                r#"{"exp":1,"sub":"a","exp":9999999999}"#,
                JwtError::PayloadBadJson,
            ),
            // Equal once unescaped.
            (
                header,
                r#"{"iss":"a","\u0069ss":"b"}"#,
                JwtError::PayloadBadJson,
            ),
            // Deep inside a claim.
            (
                header,
                r#"{"o":{"a":[{"k":1,"k":2}]}}"#,
                JwtError::PayloadBadJson,
            ),
        ];
        for (header, payload, expected) in cases {
            assert_eq!(
                Jwt::parse(&raw_token(header, payload)).unwrap_err(),
                expected,
                "{header} {payload}"
            );
        }
        // The same key in sibling objects is fine.
        let jwt = Jwt::parse(&raw_token(
            header,
            r#"{"a":{"k":1},"b":{"k":2},"c":[{"k":3},{"k":4}]}"#,
        ))
        .unwrap();
        assert_eq!(jwt.claim("b.k"), Some(&json!(2)));
    }

    #[test]
    fn nesting_is_bounded_as_in_native() {
        let nested = |depth: usize, open: &str, close: &str| {
            // The payload object is level 1.
            format!(
                r#"{{"d":{}1{}}}"#,
                open.repeat(depth - 1),
                close.repeat(depth - 1)
            )
        };
        let header = r#"{"alg":"RS256"}"#;
        for (open, close) in [("[", "]"), (r#"{"k":"#, "}")] {
            let at_limit = nested(MAX_JSON_DEPTH, open, close);
            assert!(Jwt::parse(&raw_token(header, &at_limit)).is_ok(), "{open}");
            let over = nested(MAX_JSON_DEPTH + 1, open, close);
            assert_eq!(
                Jwt::parse(&raw_token(header, &over)).unwrap_err(),
                JwtError::PayloadBadJson,
                "{open}"
            );
            let header_over = format!(r#"{{"alg":"RS256","x":{}}}"#, &over[5..over.len() - 1]);
            assert_eq!(
                Jwt::parse(&raw_token(&header_over, "{}")).unwrap_err(),
                JwtError::HeaderBadJson,
                "{open}"
            );
        }
        // Far past serde_json's own limit: refused, not a stack overflow.
        let deep = format!(r#"{{"d":{}}}"#, "[".repeat(5_000));
        assert_eq!(
            Jwt::parse(&raw_token(header, &deep)).unwrap_err(),
            JwtError::PayloadBadJson
        );
    }

    #[test]
    fn strict_json_keeps_values_and_refuses_what_json_refuses() {
        let payload =
            r#"{"s":"x\u00e9","n":-1,"u":18446744073709551615,"f":1.5,"b":true,"z":null,"a":[]} "#;
        let jwt = Jwt::parse(&raw_token(r#"{"alg":"RS256"}"#, payload)).unwrap();
        assert_eq!(
            Value::Object(jwt.claims),
            serde_json::from_str::<Value>(payload).unwrap()
        );
        for payload in [r#"{"a":1} x"#, r#"["a"]"#, r#""s""#, r#"{"a":1,}"#, "{"] {
            assert_eq!(
                Jwt::parse(&raw_token(r#"{"alg":"RS256"}"#, payload)).unwrap_err(),
                JwtError::PayloadBadJson,
                "{payload}"
            );
        }
    }

    #[test]
    fn padding_is_refused_so_a_token_has_one_spelling() {
        use base64::engine::general_purpose::URL_SAFE;
        // Lengths 16, 11 and 4 bytes: each segment has a padded spelling.
        let (header, payload, signature) = (r#"{"alg":"RS256" }"#, r#"{"sub":"a"}"#, "sig!");
        let segments = |pad: [bool; 3]| {
            let encode = |text: &str, pad: bool| {
                if pad {
                    URL_SAFE.encode(text)
                } else {
                    URL_SAFE_NO_PAD.encode(text)
                }
            };
            format!(
                "{}.{}.{}",
                encode(header, pad[0]),
                encode(payload, pad[1]),
                encode(signature, pad[2])
            )
        };
        let unpadded = segments([false; 3]);
        assert_eq!(Jwt::parse(&unpadded).unwrap().signature, b"sig!");
        let cases = [
            (segments([true, false, false]), JwtError::HeaderBadBase64),
            (segments([false, true, false]), JwtError::PayloadBadBase64),
            (segments([false, false, true]), JwtError::SignatureBadBase64),
            (format!("{unpadded}="), JwtError::SignatureBadBase64),
            (format!("{unpadded}==="), JwtError::SignatureBadBase64),
        ];
        for (spelling, expected) in cases {
            assert!(spelling.contains('='));
            assert_eq!(Jwt::parse(&spelling).unwrap_err(), expected, "{spelling}");
        }
        // Nor may the unused low bits of the last character be set ("IQ" is "!", "IR" too).
        assert!(unpadded.ends_with("IQ"));
        let tail_bits = format!("{}R", &unpadded[..unpadded.len() - 1]);
        assert_eq!(
            Jwt::parse(&tail_bits).unwrap_err(),
            JwtError::SignatureBadBase64
        );
    }

    #[test]
    fn time_checks_use_the_skew_at_the_edges() {
        let jwt = Jwt::parse(&token(
            json!({"alg": "RS256"}),
            json!({"exp": 1000, "nbf": 500}),
        ))
        .unwrap();
        assert_eq!(jwt.check_time(1060, 60), Ok(()));
        assert_eq!(jwt.check_time(1061, 60), Err(JwtError::Expired));
        assert_eq!(jwt.check_time(440, 60), Ok(()));
        assert_eq!(jwt.check_time(439, 60), Err(JwtError::NotYetValid));
        let forever = Jwt::parse(&token(json!({"alg": "RS256"}), json!({"exp": 0}))).unwrap();
        assert_eq!(forever.check_time(u64::MAX, 60), Ok(()));
    }

    #[test]
    fn audiences_are_normalized() {
        let allowed = vec!["https://api.example.com/".to_string()];
        assert!(audience_allowed(&allowed, &["api.example.com".into()]));
        assert!(audience_allowed(
            &allowed,
            &["http://api.example.com".into()]
        ));
        assert!(!audience_allowed(&allowed, &["api.example.org".into()]));
        assert!(!audience_allowed(&allowed, &[]));
        assert!(audience_allowed(&[], &[]));
    }

    #[test]
    fn claim_values_format_like_envoy() {
        assert_eq!(claim_header_value(&json!("x")).as_deref(), Some("x"));
        assert_eq!(
            claim_header_value(&json!(1700000000)).as_deref(),
            Some("1700000000")
        );
        assert_eq!(claim_header_value(&json!(1.5)).as_deref(), Some("1.500000"));
        assert_eq!(claim_header_value(&json!(-3)).as_deref(), Some("-3.000000"));
        assert_eq!(claim_header_value(&json!(true)).as_deref(), Some("true"));
        assert_eq!(
            claim_header_value(&json!(["a", "b"])).as_deref(),
            Some("WyJhIiwiYiJd")
        );
        assert_eq!(claim_header_value(&json!(null)), None);
        assert_eq!(
            claim_header_value(&json!(1e300)).as_deref(),
            Some(format!("{:.6}", 1e300).as_str())
        );
    }

    #[test]
    fn six_decimals_match_the_standard_formatter() {
        let mut values = vec![
            0.0,
            -0.0,
            0.5e-6,
            1.5e-6,
            2.5e-6,
            -2.5e-6,
            0.4999999e-6,
            1e-7,
            -1e-9,
            0.125,
            0.1234565,
            123.4567895,
            9.9999995,
            2f64.powi(53) + 2.0,
            2f64.powi(64),
            -2f64.powi(70),
            1e22,
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            f64::from_bits(1),
            -f64::from_bits(0x000f_ffff_ffff_ffff),
        ];
        // Ties and near-ties at the sixth decimal, and arbitrary bit patterns.
        for k in 0..2000u32 {
            values.push((f64::from(k) + 0.5) / 1e6);
            values.push(-(f64::from(k) * 7.0 + 0.5) * 1e-6);
        }
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            values.push(f64::from_bits(state));
            // Mostly moderate magnitudes, where the decimals matter.
            values.push(f64::from_bits(state) % 1e9);
        }
        for value in values.into_iter().filter(|v| v.is_finite()) {
            assert_eq!(
                super::six_decimals(value),
                format!("{value:.6}"),
                "{value:e}"
            );
        }
    }
}
