//! Per-request logic, through the context object each hook is handed: the same code runs as its
//! own module, inside a chain, and on the fake host in unit tests.
//!
//! One snapshot of the request headers (one hostcall) serves the rules, the credential and the
//! realm of a refusal. A refusal is native's: 401, its body text and response code details, and
//! `www-authenticate: Basic realm="<original URI>"`.

use crate::config::{BasicAuthConfig, Config};
use crate::htpasswd::{bcrypt_matches, sha1_matches, Hash, User};
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use sdk_ext::config::{load, ConfigError};
use sdk_ext::headers::Snapshot;
use sdk_ext::stats::Counter;
use sdk_ext::{Action, Cx, HttpCx, HttpFilter, RootCx, RootFilter};
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::rc::Rc;
use subtle::ConstantTimeEq;

/// The credential's base64 once its padding is stripped: standard alphabet, a canonical last
/// symbol (Envoy refuses `YR`).
const CREDENTIAL_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(false),
);

/// The credential of `Basic <token>` as Envoy decodes it: padding optional (up to two `=`),
/// canonical last symbol. `None` where Envoy gets an empty string.
fn decode_credential(token: &[u8]) -> Option<Vec<u8>> {
    CREDENTIAL_BASE64
        .decode(sdk_ext::proto::strip_base64_padding(token))
        .ok()
        .filter(|decoded| !decoded.is_empty())
}

/// Envoy's `buildOriginalUri` keeps at most this much of the path in the realm.
const MAX_REALM_PATH: usize = 256;

sdk_ext::stats! {
    /// The filter's counters, `<stat_prefix>.<field>`, besides one `denied.<reason>` per
    /// [`Denial::reason`].
    pub struct Stats {
        /// Requests with valid credentials.
        allowed: Counter,
        /// Requests refused with a 401.
        denied: Counter,
        /// Requests no rule requires credentials for.
        skipped: Counter,
        /// Full bcrypt checks run (a miss of the cache of verified credentials).
        bcrypt_verified: Counter,
        /// bcrypt credentials found in the cache of verified credentials.
        bcrypt_cache_hits: Counter,
    }
}

/// Why a request is refused; each has native's reply body and response code details.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// No credential header.
    Missing,
    /// The value does not start with `Basic `.
    Scheme,
    /// The token is not base64 of `name:password`.
    Format,
    /// Unknown user or wrong password.
    Credentials,
}

impl Denial {
    /// Every denial.
    pub const ALL: [Denial; 4] = [
        Denial::Missing,
        Denial::Scheme,
        Denial::Format,
        Denial::Credentials,
    ];

    /// The reply body, as native sends it (`text/plain`).
    pub fn body(self) -> &'static str {
        match self {
            Denial::Missing => "User authentication failed. Missing username and password.",
            Denial::Scheme => "User authentication failed. Expected 'Basic' authentication scheme.",
            Denial::Format => "User authentication failed. Invalid basic credential format.",
            Denial::Credentials => {
                "User authentication failed. Invalid username/password combination."
            }
        }
    }

    /// Envoy's response code details, as native sets them.
    pub fn details(self) -> &'static str {
        match self {
            Denial::Missing => "no_credential_for_basic_auth",
            Denial::Scheme => "invalid_scheme_for_basic_auth",
            Denial::Format => "invalid_format_for_basic_auth",
            Denial::Credentials => "invalid_credential_for_basic_auth",
        }
    }

    /// The metric: `<stat_prefix>.denied.<reason>`.
    pub fn reason(self) -> &'static str {
        match self {
            Denial::Missing => "missing",
            Denial::Scheme | Denial::Format => "malformed",
            Denial::Credentials => "wrong_credentials",
        }
    }
}

/// The per-VM root: the validated configuration, the metrics, and the cache of verified bcrypt
/// credentials (one entry per bcrypt user: the SHA-256 of salt and password last verified).
pub struct BasicAuthRoot {
    config: Config,
    stats: Stats,
    denied_by: Vec<(&'static str, Counter)>,
    verified: RefCell<Vec<Option<[u8; 32]>>>,
}

impl RootFilter for BasicAuthRoot {
    const NAME: &'static str = "basic_auth";
    type Http = BasicAuth;

    fn configure(cx: &mut RootCx<'_>, config: &[u8]) -> Result<Self, ConfigError> {
        let config = load::<BasicAuthConfig>(config)?;
        let stats = Stats::define(cx, &config.stat_prefix);
        let mut denied_by: Vec<(&'static str, Counter)> = Vec::new();
        for denial in Denial::ALL {
            let reason = denial.reason();
            if !denied_by.iter().any(|(known, _)| *known == reason) {
                let name = format!("{}.denied.{reason}", config.stat_prefix);
                denied_by.push((reason, Counter::define(cx, &name)));
            }
        }
        let verified = RefCell::new(vec![None; config.users.bcrypt_users()]);
        Ok(BasicAuthRoot {
            config,
            stats,
            denied_by,
            verified,
        })
    }

    fn create_http(root: &Rc<Self>) -> BasicAuth {
        BasicAuth { root: root.clone() }
    }
}

impl BasicAuthRoot {
    /// Whether the request needs credentials: always without rules, else as the first matching
    /// rule says, and not when no rule matches.
    fn requires_credentials(&self, headers: &Snapshot) -> bool {
        if self.config.rules.is_empty() {
            return true;
        }
        self.config
            .rules
            .iter()
            .find(|rule| rule.route.matches(headers))
            .is_some_and(|rule| !rule.disabled)
    }

    /// The user whose credential the request carries, or why it is refused.
    fn authenticate(&self, cx: &Cx<'_>, headers: &Snapshot) -> Result<&User, Denial> {
        // An empty value is present: native says "Expected 'Basic'" for it.
        let value = headers
            .get(&self.config.authentication_header)
            .ok_or(Denial::Missing)?;
        // Case-sensitive and one space, as native (clients send exactly this).
        let token = value.strip_prefix(b"Basic ").ok_or(Denial::Scheme)?;
        let credential = decode_credential(token).ok_or(Denial::Format)?;
        let colon = credential
            .iter()
            .position(|&byte| byte == b':')
            .ok_or(Denial::Format)?;
        let (name, password) = (
            credential.get(..colon).unwrap_or_default(),
            credential.get(colon + 1..).unwrap_or_default(),
        );
        let Some(user) = self.config.users.get(name) else {
            // Hash anyway, so an unknown name costs what a {SHA} user's wrong password costs.
            std::hint::black_box(sha1_matches(&[0; 20], password));
            return Err(Denial::Credentials);
        };
        let valid = match &user.hash {
            Hash::Sha1(digest) => sha1_matches(digest, password),
            Hash::Bcrypt {
                cost,
                salt,
                hash,
                slot,
            } => self.check_bcrypt(cx, *cost, salt, hash, *slot, password),
        };
        if valid {
            Ok(user)
        } else {
            Err(Denial::Credentials)
        }
    }

    /// bcrypt, with the cache of verified credentials in front: a password verified before
    /// costs one SHA-256; any other pays the full bcrypt, and replaces the entry if it is right.
    fn check_bcrypt(
        &self,
        cx: &Cx<'_>,
        cost: u32,
        salt: &[u8; 16],
        hash: &[u8; 23],
        slot: usize,
        password: &[u8],
    ) -> bool {
        let key: [u8; 32] = Sha256::new()
            .chain_update(salt)
            .chain_update(password)
            .finalize()
            .into();
        let cached = self
            .verified
            .borrow()
            .get(slot)
            .copied()
            .flatten()
            .is_some_and(|entry| bool::from(entry.ct_eq(&key)));
        if cached {
            self.stats.bcrypt_cache_hits.increment(cx);
            return true;
        }
        self.stats.bcrypt_verified.increment(cx);
        let valid = bcrypt_matches(cost, salt, hash, password);
        if valid {
            if let Some(entry) = self.verified.borrow_mut().get_mut(slot) {
                *entry = Some(key);
            }
        }
        valid
    }

    fn deny(&self, cx: &HttpCx<'_>, headers: &Snapshot, denial: Denial) {
        self.stats.denied.increment(cx);
        if let Some((_, counter)) = self
            .denied_by
            .iter()
            .find(|(reason, _)| *reason == denial.reason())
        {
            counter.increment(cx);
        }
        let challenge = challenge(headers);
        if let Err(status) = cx.send_reply(
            401,
            denial.details(),
            denial.body().as_bytes(),
            &[("www-authenticate", &challenge)],
        ) {
            log::error!("basic_auth: cannot send the 401: {status:?}");
        }
    }
}

/// `Basic realm="<scheme>://<authority><path>"` as native builds it: the scheme from
/// `x-forwarded-proto`, the path from `x-envoy-original-path` when set, cut to 256 bytes, and
/// `"` and `\` escaped.
pub fn challenge(headers: &Snapshot) -> Vec<u8> {
    let mut uri: Vec<u8> = Vec::new();
    if let Some(path) = headers.get(":path") {
        let path = headers.get("x-envoy-original-path").unwrap_or(path);
        let path = path.get(..MAX_REALM_PATH).unwrap_or(path);
        uri.extend_from_slice(headers.get("x-forwarded-proto").unwrap_or_default());
        uri.extend_from_slice(b"://");
        uri.extend_from_slice(headers.get(":authority").unwrap_or_default());
        uri.extend_from_slice(path);
    }
    let mut value = Vec::with_capacity(uri.len() + 16);
    value.extend_from_slice(b"Basic realm=\"");
    for byte in uri {
        if byte == b'"' || byte == b'\\' {
            value.push(b'\\');
        }
        value.push(byte);
    }
    value.push(b'"');
    value
}

/// The per-request filter.
pub struct BasicAuth {
    root: Rc<BasicAuthRoot>,
}

impl HttpFilter for BasicAuth {
    fn on_request_headers(&mut self, cx: &mut HttpCx<'_>, _end_of_stream: bool) -> Action {
        let root = &*self.root;
        let headers = match cx.request_headers().snapshot() {
            Ok(headers) => headers,
            Err(status) => {
                // Without the headers no decision is safe: refuse.
                log::error!("basic_auth: cannot read the request headers: {status:?}");
                let _ = cx.send_json_error(
                    500,
                    "basic_auth_error",
                    "cannot read the request headers",
                    &[],
                );
                return Action::Pause;
            }
        };
        let forward = root.config.forward_username_header.as_deref();
        if !root.requires_credentials(&headers) {
            root.stats.skipped.increment(cx);
            // Stricter than native: a user name the client made up never reaches the upstream.
            if let Some(name) = forward.filter(|name| headers.contains(name)) {
                if let Err(status) = cx.request_headers().remove(name) {
                    return fail(cx, name, status);
                }
            }
            return Action::Continue;
        }
        match root.authenticate(cx, &headers) {
            Ok(user) => {
                if let Some(name) = forward {
                    if let Err(status) = cx.request_headers().set(name, user.name.as_bytes()) {
                        return fail(cx, name, status);
                    }
                }
                root.stats.allowed.increment(cx);
                Action::Continue
            }
            Err(denial) => {
                log::debug!("basic_auth: request refused: {}", denial.details());
                root.deny(cx, &headers, denial);
                Action::Pause
            }
        }
    }
}

/// The forwarded user name header could not be written: the client's value might pass, so
/// refuse with a 500.
fn fail(cx: &HttpCx<'_>, name: &str, status: sdk_ext::Status) -> Action {
    log::error!("basic_auth: cannot write {name}: {status:?}");
    let _ = cx.send_json_error(
        500,
        "basic_auth_error",
        "cannot write the user name header",
        &[],
    );
    Action::Pause
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credential(token: &str) -> Option<String> {
        decode_credential(token.as_bytes()).map(|bytes| String::from_utf8(bytes).unwrap())
    }

    #[test]
    fn credentials_decode_as_envoy_does() {
        for (token, decoded) in [
            ("dXNlcjE6dGVzdDE=", "user1:test1"),
            // No padding, and one `=` too many: both accepted by Envoy.
            ("dXNlcjE6dGVzdDE", "user1:test1"),
            ("dXNlcjE6dGVzdDE==", "user1:test1"),
            // Padding after a complete quad, which base64's `Indifferent` mode refuses.
            ("YWJj=", "abc"),
            ("YWJj==", "abc"),
            ("YQ", "a"),
        ] {
            assert_eq!(credential(token).as_deref(), Some(decoded), "{token:?}");
        }
        for bad in [
            "",
            "=",
            "==",
            "YWJj===",
            "YQ===",
            "dXNlcjE6dGVzdDE===",
            "dXNlcjE6dGVzdDF=",
            "dXNlcjE6dGVzdDE=a",
            "dXNlcjE6dGVzdD=E",
            "dXNlcjE6dGVzdDE-",
            "dXNlcjE6dGVzd",
            " dXNlcjE6dGVzdDE=",
            "dXNl cjE6dGVzdDE=",
            "YR",
        ] {
            assert_eq!(credential(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn every_byte_round_trips() {
        let bytes: Vec<u8> = (0..=255u8).collect();
        let encoded = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5fYGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6e3x9fn+AgYKDhIWGh4iJiouMjY6PkJGSk5SVlpeYmZqbnJ2en6ChoqOkpaanqKmqq6ytrq+wsbKztLW2t7i5uru8vb6/wMHCw8TFxsfIycrLzM3Oz9DR0tPU1dbX2Nna29zd3t/g4eLj5OXm5+jp6uvs7e7v8PHy8/T19vf4+fr7/P3+/w==";
        assert_eq!(decode_credential(encoded.as_bytes()), Some(bytes));
    }
}
