//! Configuration: Envoy's `jwt_authn` `JwtAuthentication` as JSON, validated into [`Config`].

use crate::jwks::KeySet;
use sdk_ext::config::{validate_each, ConfigError, FromJson, Validate};
use sdk_ext::matcher::{RouteMatch, RouteMatchConfig, StringMatcher, StringMatcherConfig};
use sdk_ext::proto::{DataSource, HttpUri, ProtoDuration};
use sdk_ext::text::Quoted;
use sdk_ext::validate::{self, Pseudo};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

/// `envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication`.
#[derive(Debug, FromJson)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct JwtAuthConfig {
    /// Providers by name.
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderConfig>,
    /// Which requests need which tokens; the first matching rule decides.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    /// Let CORS preflight requests through unchecked.
    #[serde(default)]
    pub bypass_cors_preflight: bool,
    /// Reply with an empty body and no `www-authenticate`.
    #[serde(default)]
    pub strip_failure_response: bool,
    /// Metric names become `jwt_auth.<stat_prefix>.<counter>`.
    #[serde(default)]
    pub stat_prefix: Option<String>,
}

/// `JwtProvider`.
#[derive(Debug, FromJson)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Required `iss`; empty accepts any.
    #[serde(default)]
    pub issuer: String,
    /// Accepted `aud` values; empty accepts any.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Accepted `sub` values.
    #[serde(default)]
    pub subjects: Option<StringMatcherConfig>,
    /// Keys given inline.
    #[serde(default)]
    pub local_jwks: Option<DataSource>,
    /// Keys fetched from a cluster.
    #[serde(default)]
    pub remote_jwks: Option<RemoteJwksConfig>,
    /// Keep the token in the request after a successful check. Default false.
    #[serde(default)]
    pub forward: bool,
    /// Headers the token may come in.
    #[serde(default)]
    pub from_headers: Vec<JwtHeader>,
    /// Query parameters the token may come in.
    #[serde(default)]
    pub from_params: Vec<String>,
    /// Cookies the token may come in.
    #[serde(default)]
    pub from_cookies: Vec<String>,
    /// Header that receives the token's base64url payload.
    #[serde(default)]
    pub forward_payload_header: String,
    /// Pad that payload to a multiple of four with `=`.
    #[serde(default)]
    pub pad_forward_payload_header: bool,
    /// Claims copied into request headers.
    #[serde(default)]
    pub claim_to_headers: Vec<ClaimToHeader>,
    /// Allowed clock difference for `exp` and `nbf`; 0 means the default, 60. A uint32, as in
    /// Envoy's proto.
    #[serde(default)]
    pub clock_skew_seconds: u32,
    /// Tokens without `exp` are refused.
    #[serde(default)]
    pub require_expiration: bool,
    /// Longest remaining lifetime a token may have (implies `require_expiration`).
    #[serde(default)]
    pub max_lifetime: Option<ProtoDuration>,
    /// Size of the verified-token cache.
    #[serde(default)]
    pub jwt_cache_config: Option<JwtCacheConfig>,
}

/// `RemoteJwks`.
#[derive(Debug, FromJson)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RemoteJwksConfig {
    /// Where to fetch from.
    pub http_uri: HttpUri,
    /// How long fetched keys are used. Default 600 s.
    #[serde(default)]
    pub cache_duration: Option<ProtoDuration>,
}

/// `JwtHeader`.
#[derive(Debug, FromJson)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct JwtHeader {
    /// Header name.
    pub name: String,
    /// Text before the token, e.g. `Bearer `.
    #[serde(default)]
    pub value_prefix: String,
}

/// `JwtClaimToHeader`.
#[derive(Debug, FromJson)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ClaimToHeader {
    /// The request header to set.
    pub header_name: String,
    /// The claim, with `.` walking nested objects.
    pub claim_name: String,
}

/// `JwtCacheConfig`.
#[derive(Debug, FromJson)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct JwtCacheConfig {
    /// Tokens kept. Default 100.
    #[serde(default)]
    pub jwt_cache_size: u32,
    /// Longer tokens are not cached. Default 4096.
    #[serde(default)]
    pub jwt_max_token_size: u32,
}

/// `RequirementRule`.
#[derive(Debug, FromJson)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Which requests the rule covers.
    #[serde(rename = "match")]
    pub route: RouteMatchConfig,
    /// What they need; absent lets them through.
    #[serde(default)]
    pub requires: Option<RequirementConfig>,
}

/// `JwtRequirement`: at most one of the fields.
#[derive(Debug, Default, FromJson)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RequirementConfig {
    /// A valid token of this provider.
    #[serde(default)]
    pub provider_name: Option<String>,
    /// A provider with these audiences instead of its own.
    #[serde(default)]
    pub provider_and_audiences: Option<ProviderAndAudiences>,
    /// Any one of these.
    #[serde(default)]
    pub requires_any: Option<RequirementList>,
    /// All of these.
    #[serde(default)]
    pub requires_all: Option<RequirementList>,
    /// A missing token passes; an invalid one fails.
    #[serde(default)]
    pub allow_missing: Option<Empty>,
    /// Every request passes; valid tokens still produce their headers.
    #[serde(default)]
    pub allow_missing_or_failed: Option<Empty>,
}

/// `ProviderWithAudiences`.
#[derive(Debug, FromJson)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ProviderAndAudiences {
    /// The provider.
    pub provider_name: String,
    /// Audiences that replace the provider's.
    #[serde(default)]
    pub audiences: Vec<String>,
}

/// `JwtRequirementOrList` / `JwtRequirementAndList`.
#[derive(Debug, FromJson)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RequirementList {
    /// The requirements.
    pub requirements: Vec<RequirementConfig>,
}

/// `google.protobuf.Empty`.
#[derive(Debug, Default, FromJson)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// Where a token can be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A header (lower-case name) and the text before the token.
    Header(String, String),
    /// A query parameter.
    Param(String),
    /// A cookie.
    Cookie(String),
}

/// Where keys come from.
#[derive(Debug)]
pub enum KeySource {
    /// Parsed at configure time.
    Local(Rc<KeySet>),
    /// Fetched with a callout.
    Remote(Remote),
}

/// A remote JWKS endpoint.
#[derive(Debug, Clone)]
pub struct Remote {
    /// The full URI, for logs.
    pub uri: String,
    /// Cluster.
    pub cluster: String,
    /// `:authority`.
    pub authority: String,
    /// `:path`.
    pub path: String,
    /// Callout timeout.
    pub timeout: Duration,
    /// How long keys are used.
    pub cache_duration: Duration,
}

/// A validated provider.
#[derive(Debug)]
pub struct Provider {
    /// Name, as rules refer to it.
    pub name: String,
    /// Required `iss`, or empty.
    pub issuer: String,
    /// Accepted audiences.
    pub audiences: Vec<String>,
    /// Accepted subjects.
    pub subjects: Option<StringMatcher>,
    /// Keys.
    pub keys: KeySource,
    /// Keep the token.
    pub forward: bool,
    /// Token locations, in Envoy's extraction order.
    pub locations: Vec<Location>,
    /// Payload header, or empty.
    pub forward_payload_header: String,
    /// Pad the payload header.
    pub pad_forward_payload_header: bool,
    /// (header, claim path) pairs.
    pub claim_to_headers: Vec<(String, String)>,
    /// Clock skew in seconds.
    pub clock_skew: u64,
    /// Longest remaining lifetime, when limited.
    pub max_lifetime: Option<Duration>,
    /// Verified tokens kept.
    pub cache_size: usize,
    /// Longest token cached.
    pub cache_max_token: usize,
}

/// A validated requirement.
#[derive(Debug, Clone)]
pub enum Requirement {
    /// A provider (by index), with its audiences or replacements.
    Provider(usize, Option<Vec<String>>),
    /// Any one child; the flags rescue a missing (or any) failure.
    Any {
        /// The alternatives.
        children: Vec<Requirement>,
        /// A missing token passes.
        allow_missing: bool,
        /// Everything passes.
        allow_failed: bool,
    },
    /// Every child.
    All(Vec<Requirement>),
    /// A missing token passes, an invalid one fails.
    AllowMissing,
    /// Everything passes.
    AllowMissingOrFailed,
    /// No requirement.
    AllowAll,
}

/// A validated rule.
#[derive(Debug)]
pub struct Rule {
    /// Which requests.
    pub route: RouteMatch,
    /// What they need.
    pub requirement: Requirement,
}

/// The validated configuration.
#[derive(Debug)]
pub struct Config {
    /// Providers, indexed by the requirements.
    pub providers: Vec<Provider>,
    /// Rules in order.
    pub rules: Vec<Rule>,
    /// Let CORS preflights through.
    pub bypass_cors_preflight: bool,
    /// Reply without body and `www-authenticate`.
    pub strip_failure_response: bool,
    /// Metric name prefix, `jwt_auth` or `jwt_auth.<stat_prefix>`.
    pub stat_prefix: String,
    /// Every provider's locations in Envoy's extraction order, for `allow_missing` and
    /// `allow_missing_or_failed`.
    pub any_locations: Vec<Location>,
}

const DEFAULT_CLOCK_SKEW: u64 = 60;
const DEFAULT_CACHE_DURATION: Duration = Duration::from_secs(600);
const DEFAULT_CACHE_SIZE: usize = 100;
const DEFAULT_CACHE_MAX_TOKEN: usize = 4096;

/// A header a token is read from or a claim is written to: a regular header, never a pseudo-header.
fn header_name(name: &str, field: &str) -> Result<String, ConfigError> {
    validate::header_name(name, Pseudo::Never).map_err(|reason| ConfigError::new(field, reason))
}

/// A stable insertion sort for the short lists of a configuration (token locations). The standard
/// library's sorts take several KB of wasm for each element type; these lists hold a few entries.
fn sort_small<T: Ord>(items: &mut [T]) {
    for sorted in 1..items.len() {
        let mut at = sorted;
        while at > 0 && items.get(at - 1) > items.get(at) {
            items.swap(at - 1, at);
            at -= 1;
        }
    }
}

impl ProviderConfig {
    fn validate(self, name: String) -> Result<Provider, ConfigError> {
        let keys = match (self.local_jwks, self.remote_jwks) {
            (Some(local), None) => {
                let (field, text) = local.text().map_err(|e| e.within("local_jwks"))?;
                let keys = KeySet::parse(text.as_bytes())
                    .map_err(|reason| ConfigError::new(format!("local_jwks.{field}"), reason))?;
                KeySource::Local(Rc::new(keys))
            }
            (None, Some(remote)) => {
                let target = remote
                    .http_uri
                    .validate()
                    .map_err(|e| e.within("remote_jwks.http_uri"))?;
                let (authority, path) = target.authority_and_path().ok_or_else(|| {
                    ConfigError::new(
                        "remote_jwks.http_uri.uri",
                        format!("{} is not an http(s) URI", Quoted(&target.uri)),
                    )
                })?;
                let cache_duration = remote
                    .cache_duration
                    .map_or(DEFAULT_CACHE_DURATION, |d| d.0);
                if cache_duration < Duration::from_millis(1) {
                    return Err(ConfigError::new(
                        "remote_jwks.cache_duration",
                        "must be at least 1ms",
                    ));
                }
                KeySource::Remote(Remote {
                    uri: target.uri,
                    cluster: target.cluster,
                    authority,
                    path,
                    timeout: target.timeout,
                    cache_duration,
                })
            }
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    "",
                    "set only one of local_jwks and remote_jwks",
                ))
            }
            (None, None) => return Err(ConfigError::new("", "needs local_jwks or remote_jwks")),
        };
        let mut headers = Vec::new();
        for (index, header) in self.from_headers.iter().enumerate() {
            let field = format!("from_headers[{index}].name");
            headers.push((
                header_name(&header.name, &field)?,
                header.value_prefix.clone(),
            ));
        }
        // Envoy checks headers in key order, then parameters, then cookies.
        sort_small(&mut headers);
        let mut locations: Vec<Location> = headers
            .into_iter()
            .map(|(name, prefix)| Location::Header(name, prefix))
            .collect();
        let mut params = self.from_params.clone();
        sort_small(&mut params);
        for (index, param) in params.iter().enumerate() {
            if param.is_empty() {
                return Err(ConfigError::new(
                    format!("from_params[{index}]"),
                    "must not be empty",
                ));
            }
            locations.push(Location::Param(param.clone()));
        }
        let mut cookies = self.from_cookies.clone();
        sort_small(&mut cookies);
        for (index, cookie) in cookies.iter().enumerate() {
            if cookie.is_empty() {
                return Err(ConfigError::new(
                    format!("from_cookies[{index}]"),
                    "must not be empty",
                ));
            }
            locations.push(Location::Cookie(cookie.clone()));
        }
        if locations.is_empty() {
            locations.push(Location::Header("authorization".into(), "Bearer ".into()));
            locations.push(Location::Param("access_token".into()));
        }
        let locations = crate::extract::native_order(&locations);
        let forward_payload_header = if self.forward_payload_header.is_empty() {
            String::new()
        } else {
            header_name(&self.forward_payload_header, "forward_payload_header")?
        };
        let claim_to_headers = validate_each("claim_to_headers", self.claim_to_headers, |claim| {
            if claim.claim_name.is_empty() {
                return Err(ConfigError::new("claim_name", "must not be empty"));
            }
            Ok((
                header_name(&claim.header_name, "header_name")?,
                claim.claim_name,
            ))
        })?;
        let subjects = self
            .subjects
            .map(|subjects| subjects.compile().map_err(|e| e.within("subjects")))
            .transpose()?;
        let max_lifetime = match (self.max_lifetime, self.require_expiration) {
            (Some(max), _) => Some(max.0),
            (None, true) => Some(Duration::MAX),
            (None, false) => None,
        };
        let (cache_size, cache_max_token) = match &self.jwt_cache_config {
            Some(cache) => (
                if cache.jwt_cache_size == 0 {
                    DEFAULT_CACHE_SIZE
                } else {
                    cache.jwt_cache_size as usize
                },
                if cache.jwt_max_token_size == 0 {
                    DEFAULT_CACHE_MAX_TOKEN
                } else {
                    cache.jwt_max_token_size as usize
                },
            ),
            None => (DEFAULT_CACHE_SIZE, DEFAULT_CACHE_MAX_TOKEN),
        };
        Ok(Provider {
            name,
            issuer: self.issuer,
            audiences: self.audiences,
            subjects,
            keys,
            forward: self.forward,
            locations,
            forward_payload_header,
            pad_forward_payload_header: self.pad_forward_payload_header,
            claim_to_headers,
            clock_skew: if self.clock_skew_seconds == 0 {
                DEFAULT_CLOCK_SKEW
            } else {
                u64::from(self.clock_skew_seconds)
            },
            max_lifetime,
            cache_size,
            cache_max_token,
        })
    }
}

impl RequirementConfig {
    fn validate(self, providers: &[Provider]) -> Result<Requirement, ConfigError> {
        let find = |name: &str, field: &str| {
            providers
                .iter()
                .position(|provider| provider.name == name)
                .ok_or_else(|| {
                    ConfigError::new(field, format!("no provider named {}", Quoted(name)))
                })
        };
        let mut kinds = Vec::new();
        if let Some(name) = &self.provider_name {
            kinds.push(Requirement::Provider(find(name, "provider_name")?, None));
        }
        if let Some(both) = self.provider_and_audiences {
            let index = find(&both.provider_name, "provider_and_audiences.provider_name")?;
            let audiences = (!both.audiences.is_empty()).then_some(both.audiences);
            kinds.push(Requirement::Provider(index, audiences));
        }
        if let Some(any) = self.requires_any {
            let mut allow_missing = false;
            let mut allow_failed = false;
            let mut children = Vec::new();
            for (index, child) in any.requirements.into_iter().enumerate() {
                let field = format!("requires_any.requirements[{index}]");
                // Allow entries in an OR list are flags, not alternatives (as in Envoy).
                match child.validate(providers).map_err(|e| e.within(&field))? {
                    Requirement::AllowMissing => allow_missing = true,
                    Requirement::AllowMissingOrFailed => allow_failed = true,
                    other => children.push(other),
                }
            }
            if children.is_empty() && !allow_missing && !allow_failed {
                return Err(ConfigError::new(
                    "requires_any.requirements",
                    "needs at least one requirement",
                ));
            }
            kinds.push(if children.is_empty() && allow_failed {
                Requirement::AllowMissingOrFailed
            } else if children.is_empty() {
                Requirement::AllowMissing
            } else {
                Requirement::Any {
                    children,
                    allow_missing,
                    allow_failed,
                }
            });
        }
        if let Some(all) = self.requires_all {
            if all.requirements.is_empty() {
                return Err(ConfigError::new(
                    "requires_all.requirements",
                    "needs at least one requirement",
                ));
            }
            let children = validate_each("requires_all.requirements", all.requirements, |child| {
                child.validate(providers)
            })?;
            kinds.push(Requirement::All(children));
        }
        if self.allow_missing.is_some() {
            kinds.push(Requirement::AllowMissing);
        }
        if self.allow_missing_or_failed.is_some() {
            kinds.push(Requirement::AllowMissingOrFailed);
        }
        match kinds.len() {
            0 => Ok(Requirement::AllowAll),
            1 => Ok(kinds.remove(0)),
            _ => Err(ConfigError::new("", "set only one of provider_name, provider_and_audiences, requires_any, requires_all, allow_missing, allow_missing_or_failed")),
        }
    }
}

impl Validate for JwtAuthConfig {
    type Validated = Config;
    const UNSUPPORTED_NATIVE_FIELDS: &'static [&'static str] = &[
        "filter_state_rules",
        "requirement_map",
        "rules.*.requirement_name",
        "rules.*.match.connect_matcher",
        "rules.*.match.path_match_policy",
        "rules.*.match.runtime_fraction",
        "rules.*.match.query_parameters",
        "rules.*.match.grpc",
        "rules.*.match.tls_context",
        "rules.*.match.dynamic_metadata",
        "rules.*.match.filter_state",
        "providers.*.payload_in_metadata",
        "providers.*.header_in_metadata",
        "providers.*.failed_status_in_metadata",
        "providers.*.normalize_payload_in_metadata",
        "providers.*.clear_route_cache",
        "providers.*.local_jwks.filename",
        "providers.*.local_jwks.environment_variable",
        "providers.*.remote_jwks.async_fetch",
        "providers.*.remote_jwks.retry_policy",
    ];

    fn validate(self) -> Result<Config, ConfigError> {
        let mut providers = Vec::new();
        for (name, provider) in self.providers {
            let field = format!("providers.{name}");
            providers.push(provider.validate(name).map_err(|e| e.within(&field))?);
        }
        if providers.len() > 64 {
            return Err(ConfigError::new("providers", "at most 64 providers"));
        }
        let rules = validate_each("rules", self.rules, |rule| {
            Ok(Rule {
                route: rule.route.compile().map_err(|e| e.within("match"))?,
                requirement: match rule.requires {
                    Some(requires) => requires
                        .validate(&providers)
                        .map_err(|e| e.within("requires"))?,
                    None => Requirement::AllowAll,
                },
            })
        })?;
        let stat_prefix = match self.stat_prefix {
            Some(prefix) if !prefix.is_empty() => format!("jwt_auth.{prefix}"),
            _ => "jwt_auth".to_string(),
        };
        let any_locations =
            crate::extract::native_order(providers.iter().flat_map(|p| &p.locations));
        Ok(Config {
            any_locations,
            providers,
            rules,
            bypass_cors_preflight: self.bypass_cors_preflight,
            strip_failure_response: self.strip_failure_response,
            stat_prefix,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn error_of(provider: serde_json::Value) -> ConfigError {
        let mut provider = provider;
        let keys = json!({"keys": [{"kty": "oct", "k": "YSBzZWNyZXQgdGhhdCBpcyBsb25nIGVub3VnaCBmb3IgSFMyNTY"}]});
        provider["local_jwks"] = json!({"inline_string": keys.to_string()});
        let config = json!({"providers": {"p": provider}});
        sdk_ext::config::load::<JwtAuthConfig>(config.to_string().as_bytes())
            .expect_err("config should be rejected")
    }

    #[test]
    fn header_names_are_regular_tokens() {
        for (provider, path, reason) in [
            (
                json!({"from_headers": [{"name": "x-a"}, {"name": "bad name"}]}),
                "providers.p.from_headers[1].name",
                "not a valid header name",
            ),
            (
                json!({"from_headers": [{"name": ":authority"}]}),
                "providers.p.from_headers[0].name",
                "pseudo-headers are not allowed",
            ),
            (
                json!({"from_headers": [{"name": ""}]}),
                "providers.p.from_headers[0].name",
                "must not be empty",
            ),
            (
                json!({"forward_payload_header": "x\ny"}),
                "providers.p.forward_payload_header",
                "not a valid header name",
            ),
            (
                json!({"claim_to_headers": [{"header_name": ":path", "claim_name": "sub"}]}),
                "providers.p.claim_to_headers[0].header_name",
                "pseudo-headers are not allowed",
            ),
        ] {
            let error = error_of(provider.clone());
            assert_eq!(error.path, path, "{provider}: {error}");
            assert!(error.reason.contains(reason), "{provider}: {error}");
        }
    }
}
