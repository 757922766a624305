//! Configuration: a list of Envoy `CorsPolicy` messages, each scoped by a route match (a wasm
//! filter has no per-route config), validated once into the immutable [`Config`].

use sdk_ext::config::{validate_each, ConfigError, FromJson, Validate};
use sdk_ext::matcher::{RouteMatch, RouteMatchConfig, StringMatcher, StringMatcherConfig};
use sdk_ext::validate::header_value;

/// The filter configuration.
#[derive(FromJson, Debug)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CorsConfig {
    /// The policies in order; the first whose `match` matches the request applies.
    pub policies: Vec<PolicyConfig>,
    /// Prefix of the metrics (native: `http.<connection manager prefix>.cors`). Default `cors`.
    #[serde(default = "default_stat_prefix")]
    pub stat_prefix: String,
}

/// One `envoy.extensions.filters.http.cors.v3.CorsPolicy` plus the requests it covers.
#[derive(FromJson, Debug)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// The requests this policy covers (a route's `match`); unset: every request.
    #[serde(rename = "match", default)]
    pub route_match: Option<RouteMatchConfig>,
    /// An origin is allowed when any of these matches it (or matches `*`).
    #[serde(default)]
    pub allow_origin_string_match: Vec<StringMatcherConfig>,
    /// `access-control-allow-methods` of a preflight answer; `*` echoes the requested method.
    #[serde(default)]
    pub allow_methods: String,
    /// `access-control-allow-headers` of a preflight answer; `*` echoes the requested headers.
    #[serde(default)]
    pub allow_headers: String,
    /// `access-control-expose-headers` of responses to allowed origins.
    #[serde(default)]
    pub expose_headers: String,
    /// `access-control-max-age` of a preflight answer, in seconds.
    #[serde(default)]
    pub max_age: String,
    /// Sends `access-control-allow-credentials: true`. Default false.
    #[serde(default)]
    pub allow_credentials: Option<bool>,
    /// Answers `access-control-request-private-network: true` with
    /// `access-control-allow-private-network: true`. Default false.
    #[serde(default)]
    pub allow_private_network_access: Option<bool>,
    /// A preflight from an origin that is not allowed goes to the upstream (true) or is
    /// answered without `access-control-allow-origin` (false). Default true.
    #[serde(default)]
    pub forward_not_matching_preflights: Option<bool>,
}

fn default_stat_prefix() -> String {
    "cors".to_string()
}

/// What a preflight answer says about methods or headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allowed {
    /// Not configured: the header is not sent.
    Unset,
    /// `*`: echo what the preflight asked for.
    Echo,
    /// This literal value.
    Value(Vec<u8>),
}

/// One validated policy.
#[derive(Debug)]
pub struct Policy {
    /// The requests it covers.
    pub route: RouteMatch,
    /// Origin matchers.
    pub origins: Vec<StringMatcher>,
    /// Some matcher matches the literal `*`, so native allows every origin.
    pub allow_any_origin: bool,
    /// `access-control-allow-methods`.
    pub allow_methods: Allowed,
    /// `access-control-allow-headers`.
    pub allow_headers: Allowed,
    /// `access-control-expose-headers`; empty: not sent.
    pub expose_headers: Vec<u8>,
    /// `access-control-max-age`; empty: not sent.
    pub max_age: Vec<u8>,
    /// Whether `access-control-allow-credentials: true` is sent.
    pub allow_credentials: bool,
    /// Whether private network access preflights are allowed.
    pub allow_private_network_access: bool,
    /// Whether a preflight from a refused origin is forwarded.
    pub forward_not_matching_preflights: bool,
}

impl Policy {
    /// Whether `origin` (non-empty, as the request carries it) is allowed. A matcher only allows
    /// a valid UTF-8 origin (a browser's serialized origin is ASCII); a policy that allows every
    /// origin allows any bytes, as native.
    pub fn allows(&self, origin: &[u8]) -> bool {
        self.allow_any_origin
            || (std::str::from_utf8(origin).is_ok()
                && self.origins.iter().any(|matcher| matcher.matches(origin)))
    }
}

/// The validated configuration the filter runs with.
#[derive(Debug)]
pub struct Config {
    /// The policies, first match wins.
    pub policies: Vec<Policy>,
    /// Prefix of the metrics.
    pub stat_prefix: String,
}

impl Config {
    /// The index and policy of the first policy covering the request.
    pub fn policy_for(
        &self,
        request: &impl sdk_ext::matcher::RequestView,
    ) -> Option<(usize, &Policy)> {
        self.policies
            .iter()
            .enumerate()
            .find(|(_, policy)| policy.route.matches(request))
    }
}

impl Validate for CorsConfig {
    type Validated = Config;
    // Runtime-sampled enabling would cost ~12 KB of config parsing for a rarely used feature.
    const UNSUPPORTED_NATIVE_FIELDS: &'static [&'static str] = &[
        "policies.*.filter_enabled",
        "policies.*.shadow_enabled",
        "policies.*.allow_origin_string_match.*.custom",
    ];

    fn validate(self) -> Result<Config, ConfigError> {
        if self.stat_prefix.is_empty() {
            return Err(ConfigError::new("stat_prefix", "must not be empty"));
        }
        if self.policies.is_empty() {
            return Err(ConfigError::new(
                "policies",
                "must hold at least one policy",
            ));
        }
        Ok(Config {
            policies: validate_each("policies", self.policies, validate_policy)?,
            stat_prefix: self.stat_prefix,
        })
    }
}

fn validate_policy(policy: PolicyConfig) -> Result<Policy, ConfigError> {
    let route = match policy.route_match {
        None => RouteMatch::any(),
        Some(config) => config.compile().map_err(|e| e.within("match"))?,
    };
    let origins = validate_each(
        "allow_origin_string_match",
        policy.allow_origin_string_match,
        origin_matcher,
    )?;
    let allow_any_origin = origins.iter().any(|matcher| matcher.matches(b"*"));
    let max_age = literal("max_age", policy.max_age)?;
    if !max_age.iter().all(u8::is_ascii_digit) {
        return Err(ConfigError::new(
            "max_age",
            "must be a whole number of seconds, e.g. \"600\"",
        ));
    }
    Ok(Policy {
        route,
        origins,
        allow_any_origin,
        allow_methods: allowed("allow_methods", policy.allow_methods)?,
        allow_headers: allowed("allow_headers", policy.allow_headers)?,
        expose_headers: literal("expose_headers", policy.expose_headers)?,
        max_age,
        allow_credentials: policy.allow_credentials.unwrap_or(false),
        allow_private_network_access: policy.allow_private_network_access.unwrap_or(false),
        forward_not_matching_preflights: policy.forward_not_matching_preflights.unwrap_or(true),
    })
}

/// Native's `StringMatcher` validation: `prefix`, `suffix` and `contains` need at least one
/// character, which would otherwise match every origin.
fn origin_matcher(config: StringMatcherConfig) -> Result<StringMatcher, ConfigError> {
    for (field, value) in [
        ("prefix", &config.prefix),
        ("suffix", &config.suffix),
        ("contains", &config.contains),
    ] {
        if value.as_deref() == Some("") {
            return Err(ConfigError::new(field, "must not be empty"));
        }
    }
    config.compile()
}

/// A header value from the config: checked as Envoy checks header values.
fn literal(field: &str, value: String) -> Result<Vec<u8>, ConfigError> {
    header_value(value.as_bytes()).map_err(|reason| ConfigError::new(field, reason))?;
    Ok(value.into_bytes())
}

fn allowed(field: &str, value: String) -> Result<Allowed, ConfigError> {
    let value = literal(field, value)?;
    Ok(match value.as_slice() {
        b"" => Allowed::Unset,
        b"*" => Allowed::Echo,
        _ => Allowed::Value(value),
    })
}
