//! Configuration: Envoy's `local_ratelimit` filter config as JSON (plus the descriptor sources a
//! wasm filter must carry itself), validated into [`Config`].

use crate::bucket::Bucket;
use crate::descriptors::{Action, Policy};
use sdk_ext::config::{validate_each, ConfigError, Validate};
use sdk_ext::matcher::{HeaderMatcherConfig, RouteMatchConfig};
use sdk_ext::proto::{
    deserialize_enum, AppendAction, HeaderEdit, HeaderValueOption, ProtoDuration,
    RuntimeFractionalPercent, Sampling,
};
use serde::{Deserialize, Deserializer};

/// Envoy's limit on `response_headers_to_add` and `request_headers_to_add_when_not_enforced`.
const MAX_HEADERS_TO_ADD: usize = 10;
/// Native's default `max_dynamic_descriptors`.
const DEFAULT_MAX_DYNAMIC_DESCRIPTORS: u32 = 20;
/// The most keys one wildcard descriptor may track (24 bytes of shared data each).
const MAX_DYNAMIC_DESCRIPTORS: u32 = 1 << 20;
/// Keys per shared-data value of a wildcard table: one CAS covers all of them.
pub const MAX_WAYS: u32 = 16;
/// Native refuses faster fills.
const MIN_FILL_INTERVAL_NANOS: u128 = 50_000_000;

/// The filter configuration, as `envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit`.
#[derive(Deserialize, Debug)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Prefix of the filter's stats and of its shared-data keys.
    pub stat_prefix: String,
    /// The status of a limited request (default 429; below 400 means 429).
    #[serde(default)]
    pub status: Option<HttpStatus>,
    /// The default bucket: every request that no descriptor matches takes from it (and, with
    /// `always_consume_default_token_bucket`, every other request too). None: no default limit.
    #[serde(default)]
    pub token_bucket: Option<TokenBucketConfig>,
    /// The share of requests the filter checks. Unset: none, as in native.
    #[serde(default)]
    pub filter_enabled: Option<RuntimeFractionalPercent>,
    /// The share of checked requests whose limit is enforced. Unset: none (shadow mode).
    #[serde(default)]
    pub filter_enforced: Option<RuntimeFractionalPercent>,
    /// Added to a limited request that is let through because it is not enforced.
    #[serde(default)]
    pub request_headers_to_add_when_not_enforced: Vec<HeaderValueOption>,
    /// Added to the local reply of an enforced limit.
    #[serde(default)]
    pub response_headers_to_add: Vec<HeaderValueOption>,
    /// Buckets for request descriptors; an empty entry value matches any value (one bucket per
    /// distinct value).
    #[serde(default)]
    pub descriptors: Vec<DescriptorConfig>,
    /// `DRAFT_VERSION_03` adds `x-ratelimit-limit`, `-remaining` and `-reset` to responses.
    #[serde(default)]
    #[cfg_attr(
        feature = "schema",
        schemars(with = "String", extend("enum" = ["OFF", "DRAFT_VERSION_03"]))
    )]
    pub enable_x_ratelimit_headers: XRateLimitHeaders,
    /// Also take from the default bucket when a descriptor matched. Default true, as native.
    #[serde(default)]
    pub always_consume_default_token_bucket: Option<bool>,
    /// Where request descriptors come from: route `rate_limits` entries.
    #[serde(default)]
    pub rate_limits: Vec<RateLimitEntryConfig>,
    /// Distinct values one wildcard descriptor tracks at once (default 20, as native).
    #[serde(default)]
    pub max_dynamic_descriptors: Option<u32>,
}

/// `type.v3.HttpStatus`.
#[derive(Deserialize, Debug, Clone, Copy)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct HttpStatus {
    /// The status code.
    pub code: u32,
}

/// `type.v3.TokenBucket`.
#[derive(Deserialize, Debug, Clone)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct TokenBucketConfig {
    /// Capacity, and the tokens a new bucket starts with.
    pub max_tokens: u32,
    /// Tokens added per `fill_interval`. Default 1.
    #[serde(default)]
    pub tokens_per_fill: Option<u32>,
    /// How often `tokens_per_fill` tokens are added (continuously, as native).
    pub fill_interval: ProtoDuration,
}

/// `common.ratelimit.v3.LocalRateLimitDescriptor`.
#[derive(Deserialize, Debug, Clone)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct DescriptorConfig {
    /// The entries a request descriptor must have, in order.
    pub entries: Vec<EntryConfig>,
    /// The bucket of requests with this descriptor.
    pub token_bucket: TokenBucketConfig,
}

/// `common.ratelimit.v3.RateLimitDescriptor.Entry`.
#[derive(Deserialize, Debug, Clone)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct EntryConfig {
    /// The descriptor key, e.g. `remote_address`.
    pub key: String,
    /// The value; empty matches any value, with a bucket per distinct value.
    #[serde(default)]
    pub value: String,
}

/// `config.route.v3.RateLimit`, with a route match because a wasm filter sees no route config.
#[derive(Deserialize, Debug, Clone)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RateLimitEntryConfig {
    /// Requests this entry applies to (default: all).
    #[serde(default, rename = "match")]
    pub route_match: Option<RouteMatchConfig>,
    /// Each action adds one entry to the descriptor, in order.
    pub actions: Vec<ActionConfig>,
}

/// `config.route.v3.RateLimit.Action`: exactly one kind.
#[derive(Deserialize, Debug, Clone)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ActionConfig {
    /// The value of a request header.
    RequestHeaders(RequestHeadersConfig),
    /// The client's IP address, as `remote_address`.
    RemoteAddress(EmptyConfig),
    /// A fixed entry.
    GenericKey(GenericKeyConfig),
    /// A fixed entry when the request's headers match (or do not match).
    HeaderValueMatch(HeaderValueMatchConfig),
}

/// An action with no settings (`{}`).
#[derive(Deserialize, Debug, Clone)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct EmptyConfig {}

/// `RateLimit.Action.RequestHeaders`.
#[derive(Deserialize, Debug, Clone)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RequestHeadersConfig {
    /// The header to read.
    pub header_name: String,
    /// The entry's key.
    pub descriptor_key: String,
    /// When the header is absent: skip this entry (true) or produce no descriptor (false).
    #[serde(default)]
    pub skip_if_absent: bool,
}

/// `RateLimit.Action.GenericKey`.
#[derive(Deserialize, Debug, Clone)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct GenericKeyConfig {
    /// The entry's value.
    pub descriptor_value: String,
    /// The entry's key. Default `generic_key`.
    #[serde(default)]
    pub descriptor_key: Option<String>,
}

/// `RateLimit.Action.HeaderValueMatch`.
#[derive(Deserialize, Debug, Clone)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct HeaderValueMatchConfig {
    /// The entry's value.
    pub descriptor_value: String,
    /// The entry's key. Default `header_match`.
    #[serde(default)]
    pub descriptor_key: Option<String>,
    /// Produce the entry when the headers match (true, default) or when they do not.
    #[serde(default)]
    pub expect_match: Option<bool>,
    /// Every matcher must match.
    pub headers: Vec<HeaderMatcherConfig>,
}

/// `common.ratelimit.v3.XRateLimitHeadersRFCVersion`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XRateLimitHeaders {
    /// No headers.
    #[default]
    Off,
    /// `x-ratelimit-limit`, `x-ratelimit-remaining`, `x-ratelimit-reset`.
    DraftVersion03,
}

impl<'de> Deserialize<'de> for XRateLimitHeaders {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_enum(
            deserializer,
            &[
                ("OFF", XRateLimitHeaders::Off),
                ("DRAFT_VERSION_03", XRateLimitHeaders::DraftVersion03),
            ],
            "OFF or DRAFT_VERSION_03 (or 0-1)",
        )
    }
}

/// A bucket and the shared-data key that holds its state.
#[derive(Debug, Clone)]
pub struct Limit {
    /// The bucket's settings.
    pub bucket: Bucket,
    /// Its shared-data key.
    pub key: String,
}

/// A descriptor whose entries all have values: one bucket.
#[derive(Debug, Clone)]
pub struct StaticDescriptor {
    /// `(key, value)` pairs a request descriptor must equal.
    pub entries: Vec<(String, String)>,
    /// Its bucket.
    pub limit: Limit,
}

/// A descriptor with at least one empty value: a bucket per distinct request descriptor, in a
/// fixed table of shared-data keys.
#[derive(Debug, Clone)]
pub struct WildcardDescriptor {
    /// `(key, value)` pairs; `None` matches any value.
    pub entries: Vec<(String, Option<String>)>,
    /// The settings of each bucket.
    pub bucket: Bucket,
    /// The table: `sets` shared-data keys `<table_key>/<set>`, each holding `ways` buckets.
    pub table_key: String,
    /// Number of shared-data keys in the table.
    pub sets: u32,
    /// Buckets per key.
    pub ways: u32,
    /// The bucket that request descriptors share while their set is full.
    pub overflow: Limit,
}

/// A header to add, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderAddition {
    /// Lower-case name.
    pub name: String,
    /// Literal value.
    pub value: Vec<u8>,
    /// What to do when the header exists.
    pub action: AppendAction,
}

/// The validated, immutable configuration the filter runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// `<stat_prefix>.http_local_rate_limit`: the prefix of every stat.
    pub stats_prefix: String,
    /// Status of the local reply.
    pub status: u32,
    /// Share of requests checked.
    pub enabled: Sampling,
    /// Share of checked requests enforced.
    pub enforced: Sampling,
    /// The default bucket.
    pub default_limit: Option<Limit>,
    /// Descriptors with fixed values.
    pub descriptors: Vec<StaticDescriptor>,
    /// Descriptors with wildcard values.
    pub wildcards: Vec<WildcardDescriptor>,
    /// Descriptor sources.
    pub policies: Vec<Policy>,
    /// Whether to add the `x-ratelimit-*` headers.
    pub x_ratelimit_headers: bool,
    /// Whether matched requests also take from the default bucket.
    pub always_consume_default: bool,
    /// Headers of the local reply, before `retry-after`.
    pub reply_headers: Vec<(String, Vec<u8>)>,
    /// Body of the local reply.
    pub reply_body: Vec<u8>,
    /// Added to limited requests that are not enforced.
    pub request_headers_when_not_enforced: Vec<HeaderAddition>,
    /// Warnings worth a log line at configuration time (settings that make the filter inert).
    pub warnings: Vec<String>,
}

impl Config {
    /// Every shared-data key this configuration uses, with the bytes of a fresh value: a full
    /// bucket (8 zero bytes) or an empty wildcard set. The filter creates them when configured.
    pub fn shared_keys(&self) -> impl Iterator<Item = (String, usize)> + '_ {
        let statics = self
            .default_limit
            .iter()
            .chain(self.descriptors.iter().map(|d| &d.limit))
            .chain(self.wildcards.iter().map(|w| &w.overflow))
            .map(|limit| (limit.key.clone(), crate::store::BUCKET_BYTES));
        let sets = self.wildcards.iter().flat_map(|w| {
            (0..w.sets).map(move |set| {
                (
                    crate::store::set_key(&w.table_key, set),
                    w.ways as usize * crate::store::ENTRY_BYTES,
                )
            })
        });
        statics.chain(sets)
    }
}

/// The local reply's `error` code, and native's response code details.
pub const REPLY_CODE: &str = "local_rate_limited";

impl Validate for RateLimitConfig {
    type Validated = Config;
    const UNSUPPORTED_NATIVE_FIELDS: &'static [&'static str] = &[
        "stage",
        "local_rate_limit_per_downstream_connection",
        "local_cluster_rate_limit",
        "vh_rate_limits",
        "rate_limited_as_resource_exhausted",
        "rate_limits.*.stage",
        "rate_limits.*.disable_key",
        "rate_limits.*.limit",
        "rate_limits.*.apply_on_stream_done",
        "rate_limits.*.hits_addend",
        "rate_limits.*.actions.*.source_cluster",
        "rate_limits.*.actions.*.destination_cluster",
        "rate_limits.*.actions.*.dynamic_metadata",
        "rate_limits.*.actions.*.metadata",
        "rate_limits.*.actions.*.extension",
        "rate_limits.*.actions.*.masked_remote_address",
        "rate_limits.*.actions.*.query_parameter_value_match",
        "rate_limits.*.actions.*.query_parameters",
    ];

    fn validate(self) -> Result<Config, ConfigError> {
        if self.stat_prefix.is_empty() {
            return Err(ConfigError::new("stat_prefix", "must not be empty"));
        }
        let mut warnings = Vec::new();
        let status = match self.status {
            None => 429,
            Some(HttpStatus { code }) if !(100..=599).contains(&code) => {
                return Err(ConfigError::new(
                    "status.code",
                    format!("{code} is not an HTTP status code"),
                ))
            }
            Some(HttpStatus { code }) if code < 400 => {
                warnings.push(format!(
                    "status {code} is below 400, so 429 is used (as native)"
                ));
                429
            }
            Some(HttpStatus { code }) => code,
        };
        let key_prefix = format!("rate_limit/v1/{}", self.stat_prefix);
        let default_limit = self
            .token_bucket
            .map(|config| {
                Ok(Limit {
                    bucket: config.validate().map_err(|e| e.within("token_bucket"))?,
                    key: format!("{key_prefix}/default"),
                })
            })
            .transpose()?;
        let max_dynamic = self
            .max_dynamic_descriptors
            .unwrap_or(DEFAULT_MAX_DYNAMIC_DESCRIPTORS);
        if !(1..=MAX_DYNAMIC_DESCRIPTORS).contains(&max_dynamic) {
            return Err(ConfigError::new(
                "max_dynamic_descriptors",
                format!("must be between 1 and {MAX_DYNAMIC_DESCRIPTORS}"),
            ));
        }
        let mut descriptors: Vec<StaticDescriptor> = Vec::new();
        let mut wildcards: Vec<WildcardDescriptor> = Vec::new();
        for (index, descriptor) in self.descriptors.into_iter().enumerate() {
            let at = |e: ConfigError| e.within(&format!("descriptors[{index}]"));
            let parsed = descriptor.validate(&key_prefix, max_dynamic).map_err(at)?;
            let duplicate = match &parsed {
                Parsed::Static(new) => descriptors.iter().any(|d| d.entries == new.entries),
                Parsed::Wildcard(new) => wildcards.iter().any(|w| w.entries == new.entries),
            };
            if duplicate {
                return Err(at(ConfigError::new(
                    "entries",
                    "duplicates an earlier descriptor",
                )));
            }
            match parsed {
                Parsed::Static(d) => descriptors.push(d),
                Parsed::Wildcard(w) => wildcards.push(w),
            }
        }
        let policies = validate_each(
            "rate_limits",
            self.rate_limits,
            RateLimitEntryConfig::validate,
        )?;
        let request_headers_when_not_enforced = validate_headers(
            "request_headers_to_add_when_not_enforced",
            self.request_headers_to_add_when_not_enforced,
        )?;
        let reply_headers = reply_headers(validate_headers(
            "response_headers_to_add",
            self.response_headers_to_add,
        )?);
        let enabled = sampling(self.filter_enabled);
        if enabled == Sampling::Never {
            warnings.push(
                "filter_enabled is unset or 0%: no request is checked (as native)".to_string(),
            );
        }
        if default_limit.is_none() && descriptors.is_empty() && wildcards.is_empty() {
            warnings.push("no token_bucket and no descriptors: no request is limited".to_string());
        }
        if policies.is_empty() && !(descriptors.is_empty() && wildcards.is_empty()) {
            warnings.push(
                "descriptors are set but rate_limits is empty: no request has a descriptor"
                    .to_string(),
            );
        }
        Ok(Config {
            stats_prefix: format!("{}.http_local_rate_limit", self.stat_prefix),
            status,
            enabled,
            enforced: sampling(self.filter_enforced),
            default_limit,
            descriptors,
            wildcards,
            policies,
            x_ratelimit_headers: self.enable_x_ratelimit_headers
                == XRateLimitHeaders::DraftVersion03,
            always_consume_default: self.always_consume_default_token_bucket.unwrap_or(true),
            reply_headers,
            reply_body: sdk_ext::reply::json_error_body(REPLY_CODE, "too many requests")
                .into_bytes(),
            request_headers_when_not_enforced,
            warnings,
        })
    }
}

fn sampling(percent: Option<RuntimeFractionalPercent>) -> Sampling {
    percent.map_or(Sampling::Never, |percent| percent.default_value.sampling())
}

impl TokenBucketConfig {
    fn validate(self) -> Result<Bucket, ConfigError> {
        if self.max_tokens == 0 {
            return Err(ConfigError::new("max_tokens", "must be at least 1"));
        }
        if self.tokens_per_fill == Some(0) {
            return Err(ConfigError::new("tokens_per_fill", "must be at least 1"));
        }
        let interval = self.fill_interval.0;
        if interval.as_nanos() < MIN_FILL_INTERVAL_NANOS {
            return Err(ConfigError::new(
                "fill_interval",
                "must be at least 50ms (native refuses shorter ones too)",
            ));
        }
        Bucket::new(
            u64::from(self.max_tokens),
            u64::from(self.tokens_per_fill.unwrap_or(1)),
            interval,
        )
        .map_err(|reason| ConfigError::new("fill_interval", reason))
    }
}

enum Parsed {
    Static(StaticDescriptor),
    Wildcard(WildcardDescriptor),
}

impl DescriptorConfig {
    fn validate(self, key_prefix: &str, max_dynamic: u32) -> Result<Parsed, ConfigError> {
        if self.entries.is_empty() {
            return Err(ConfigError::new("entries", "needs at least one entry"));
        }
        for (index, entry) in self.entries.iter().enumerate() {
            if entry.key.is_empty() {
                return Err(ConfigError::new(
                    format!("entries[{index}].key"),
                    "must not be empty",
                ));
            }
        }
        let bucket = self
            .token_bucket
            .validate()
            .map_err(|e| e.within("token_bucket"))?;
        let mut key = format!("{key_prefix}/descriptor/");
        for (index, entry) in self.entries.iter().enumerate() {
            if index > 0 {
                key.push('&');
            }
            escape_into(&mut key, &entry.key);
            key.push('=');
            escape_into(&mut key, &entry.value);
        }
        if self.entries.iter().all(|entry| !entry.value.is_empty()) {
            return Ok(Parsed::Static(StaticDescriptor {
                entries: self
                    .entries
                    .into_iter()
                    .map(|entry| (entry.key, entry.value))
                    .collect(),
                limit: Limit { bucket, key },
            }));
        }
        let sets = max_dynamic.div_ceil(MAX_WAYS);
        let ways = max_dynamic.div_ceil(sets);
        Ok(Parsed::Wildcard(WildcardDescriptor {
            entries: self
                .entries
                .into_iter()
                .map(|entry| (entry.key, Some(entry.value).filter(|v| !v.is_empty())))
                .collect(),
            bucket,
            // The geometry is in the name: a table of another size never reads this one's state.
            table_key: format!("{key}/{sets}x{ways}"),
            sets,
            ways,
            overflow: Limit {
                bucket,
                key: format!("{key}/overflow"),
            },
        }))
    }
}

impl RateLimitEntryConfig {
    fn validate(self) -> Result<Policy, ConfigError> {
        if self.actions.is_empty() {
            return Err(ConfigError::new("actions", "needs at least one action"));
        }
        let route = self
            .route_match
            .map(|m| m.compile().map_err(|e| e.within("match")))
            .transpose()?;
        let actions = validate_each("actions", self.actions, ActionConfig::validate)?;
        Ok(Policy { route, actions })
    }
}

impl ActionConfig {
    fn validate(self) -> Result<Action, ConfigError> {
        let non_empty = |field: &str, value: String| {
            if value.is_empty() {
                Err(ConfigError::new(field, "must not be empty"))
            } else {
                Ok(value)
            }
        };
        Ok(match self {
            ActionConfig::RequestHeaders(config) => Action::RequestHeader {
                name: validate_header_name(&config.header_name)
                    .map_err(|reason| ConfigError::new("header_name", reason))
                    .map_err(|e| e.within("request_headers"))?,
                key: non_empty("descriptor_key", config.descriptor_key)
                    .map_err(|e| e.within("request_headers"))?,
                skip_if_absent: config.skip_if_absent,
            },
            ActionConfig::RemoteAddress(EmptyConfig {}) => Action::RemoteAddress,
            ActionConfig::GenericKey(config) => Action::GenericKey {
                key: config
                    .descriptor_key
                    .filter(|key| !key.is_empty())
                    .unwrap_or_else(|| "generic_key".into()),
                value: non_empty("descriptor_value", config.descriptor_value)
                    .map_err(|e| e.within("generic_key"))?,
            },
            ActionConfig::HeaderValueMatch(config) => {
                let within = |e: ConfigError| e.within("header_value_match");
                if config.headers.is_empty() {
                    return Err(within(ConfigError::new(
                        "headers",
                        "needs at least one header matcher",
                    )));
                }
                Action::HeaderValueMatch {
                    key: config
                        .descriptor_key
                        .filter(|key| !key.is_empty())
                        .unwrap_or_else(|| "header_match".into()),
                    value: non_empty("descriptor_value", config.descriptor_value)
                        .map_err(within)?,
                    expect_match: config.expect_match.unwrap_or(true),
                    headers: validate_each("headers", config.headers, HeaderMatcherConfig::compile)
                        .map_err(within)?,
                }
            }
        })
    }
}

/// Appends `text` with the characters that separate descriptor entries in key names (`%&=/`)
/// percent-escaped, so that distinct descriptors always get distinct keys.
fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '%' => out.push_str("%25"),
            '&' => out.push_str("%26"),
            '=' => out.push_str("%3D"),
            '/' => out.push_str("%2F"),
            c => out.push(c),
        }
    }
}

/// Checks a header name and returns it lower-cased.
fn validate_header_name(name: &str) -> Result<String, String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    let lower = name.to_ascii_lowercase();
    let bare = lower.strip_prefix(':').unwrap_or(&lower);
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if bare.is_empty() || !bare.bytes().all(token) {
        return Err(format!("{name:?} is not a valid header name"));
    }
    Ok(lower)
}

fn validate_headers(
    field: &str,
    options: Vec<HeaderValueOption>,
) -> Result<Vec<HeaderAddition>, ConfigError> {
    if options.len() > MAX_HEADERS_TO_ADD {
        return Err(ConfigError::new(
            field,
            format!("at most {MAX_HEADERS_TO_ADD} headers (as native)"),
        ));
    }
    let additions = validate_each(field, options, validate_addition)?;
    Ok(additions.into_iter().flatten().collect())
}

/// The addition, or `None` for an empty value that is not kept.
fn validate_addition(option: HeaderValueOption) -> Result<Option<HeaderAddition>, ConfigError> {
    let name = validate_header_name(&option.header.key)
        .map_err(|reason| ConfigError::new("header.key", reason))?;
    if name.starts_with(':') {
        return Err(ConfigError::new(
            "header.key",
            "pseudo-headers cannot be added",
        ));
    }
    let value = literal_value(&option.header.value)
        .map_err(|reason| ConfigError::new("header.value", reason))?;
    let action = option.action()?;
    if value.is_empty() && !option.keep_empty_value {
        return Ok(None);
    }
    Ok(Some(HeaderAddition {
        name,
        value,
        action,
    }))
}

/// A header value as Envoy's header formatter reads a literal: `%%` is `%`, and any other `%`
/// would start a command, which this filter does not evaluate.
fn literal_value(text: &str) -> Result<Vec<u8>, String> {
    if text.bytes().any(|b| matches!(b, b'\0' | b'\r' | b'\n')) {
        return Err("must not contain NUL, CR or LF".into());
    }
    let mut value = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(byte) = bytes.next() {
        if byte == b'%' && bytes.next() != Some(b'%') {
            return Err(format!(
                "{text:?} has a %COMMAND%; only literal values are supported (write %% for %)"
            ));
        }
        value.push(byte);
    }
    Ok(value)
}

/// The local reply's headers: the JSON content type, then `response_headers_to_add` applied in
/// order as they would be to the reply's header map.
fn reply_headers(additions: Vec<HeaderAddition>) -> Vec<(String, Vec<u8>)> {
    let mut headers = vec![("content-type".to_string(), b"application/json".to_vec())];
    for addition in additions {
        let present = headers.iter().any(|(name, _)| *name == addition.name);
        match addition.action.edit(present) {
            Some(HeaderEdit::Add) => {}
            Some(HeaderEdit::Replace) => headers.retain(|(name, _)| *name != addition.name),
            None => continue,
        }
        headers.push((addition.name, addition.value));
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;
    use sdk_ext::config::load;
    use serde_json::json;

    fn load_json(json: serde_json::Value) -> Result<Config, ConfigError> {
        load::<RateLimitConfig>(json.to_string().as_bytes())
    }

    fn error_of(json: serde_json::Value) -> ConfigError {
        load_json(json).expect_err("config should be rejected")
    }

    fn bucket(max: u32, fill: &str) -> serde_json::Value {
        json!({"max_tokens": max, "tokens_per_fill": 1, "fill_interval": fill})
    }

    #[test]
    fn full_config_validates() {
        let config = load_json(json!({
            "stat_prefix": "api",
            "status": {"code": 503},
            "token_bucket": {"max_tokens": 10, "tokens_per_fill": 5, "fill_interval": "1s"},
            "filter_enabled": {"default_value": {"numerator": 100, "denominator": "HUNDRED"}, "runtime_key": "on"},
            "filter_enforced": {"default_value": {"numerator": 50}},
            "response_headers_to_add": [
                {"header": {"key": "X-Limited", "value": "100%%"}},
                {"header": {"key": "content-type", "value": "text/plain"}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}
            ],
            "request_headers_to_add_when_not_enforced": [{"header": {"key": "x-shadow", "value": "1"}, "append": false}],
            "enable_x_ratelimit_headers": "DRAFT_VERSION_03",
            "always_consume_default_token_bucket": false,
            "descriptors": [
                {"entries": [{"key": "user", "value": "alice"}], "token_bucket": bucket(2, "60s")},
                {"entries": [{"key": "user"}], "token_bucket": bucket(1, "60s")}
            ],
            "rate_limits": [{"match": {"prefix": "/api"}, "actions": [
                {"request_headers": {"header_name": "X-User", "descriptor_key": "user"}},
                {"remote_address": {}},
                {"generic_key": {"descriptor_value": "v"}},
                {"header_value_match": {"descriptor_value": "get", "headers": [{"name": ":method", "exact_match": "GET"}]}}
            ]}],
            "max_dynamic_descriptors": 100
        }))
        .unwrap();
        assert_eq!(config.status, 503);
        assert_eq!(config.stats_prefix, "api.http_local_rate_limit");
        assert_eq!(config.enabled, Sampling::Always);
        assert!(config.enforced.is_random());
        assert!(config.x_ratelimit_headers);
        assert!(!config.always_consume_default);
        assert_eq!(config.descriptors.len(), 1);
        assert_eq!(config.wildcards.len(), 1);
        let wildcard = &config.wildcards[0];
        assert_eq!((wildcard.sets, wildcard.ways), (7, 15));
        assert_eq!(
            wildcard.table_key,
            "rate_limit/v1/api/descriptor/user=/7x15"
        );
        assert_eq!(
            config.descriptors[0].limit.key,
            "rate_limit/v1/api/descriptor/user=alice"
        );
        assert_eq!(
            config.reply_headers,
            [
                ("x-limited".to_string(), b"100%".to_vec()),
                ("content-type".to_string(), b"text/plain".to_vec())
            ]
        );
        assert_eq!(
            config.request_headers_when_not_enforced[0].action,
            AppendAction::OverwriteIfExistsOrAdd
        );
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
        let keys: Vec<_> = config.shared_keys().collect();
        // default, alice, overflow, then 7 sets.
        assert_eq!(keys.len(), 3 + 7);
        assert_eq!(keys[3].1, 15 * crate::store::ENTRY_BYTES);
    }

    #[test]
    fn defaults_follow_native() {
        let config = load_json(json!({"stat_prefix": "p"})).unwrap();
        assert_eq!(config.status, 429);
        assert_eq!(config.enabled, Sampling::Never);
        assert_eq!(config.enforced, Sampling::Never);
        assert!(config.always_consume_default);
        assert!(!config.x_ratelimit_headers);
        assert_eq!(config.warnings.len(), 2, "{:?}", config.warnings);
        let low = load_json(json!({"stat_prefix": "p", "status": {"code": 200}})).unwrap();
        assert_eq!(low.status, 429);
        let wildcard = load_json(json!({"stat_prefix": "p", "descriptors": [
            {"entries": [{"key": "k", "value": ""}], "token_bucket": bucket(1, "1s")}]}))
        .unwrap();
        assert_eq!(
            (wildcard.wildcards[0].sets, wildcard.wildcards[0].ways),
            (2, 10)
        );
    }

    #[test]
    fn errors_name_the_field_path() {
        let cases = [
            (json!({}), "", "missing field `stat_prefix`"),
            (
                json!({"stat_prefix": ""}),
                "stat_prefix",
                "must not be empty",
            ),
            (
                json!({"stat_prefix": "p", "stage": 1}),
                "stage",
                "unknown field",
            ),
            (
                json!({"stat_prefix": "p", "token_bucket": {"max_tokens": 1, "fill_interval": "1 s"}}),
                "token_bucket.fill_interval",
                "not a duration",
            ),
            (
                json!({"stat_prefix": "p", "token_bucket": {"max_tokens": 1, "fill_interval": "0.01s"}}),
                "token_bucket.fill_interval",
                "at least 50ms",
            ),
            (
                json!({"stat_prefix": "p", "token_bucket": {"max_tokens": 0, "fill_interval": "1s"}}),
                "token_bucket.max_tokens",
                "at least 1",
            ),
            (
                json!({"stat_prefix": "p", "token_bucket": {"max_tokens": 1, "tokens_per_fill": 0, "fill_interval": "1s"}}),
                "token_bucket.tokens_per_fill",
                "at least 1",
            ),
            (
                json!({"stat_prefix": "p", "token_bucket": {"max_tokens": 4000000000u32, "fill_interval": "3600s"}}),
                "token_bucket.fill_interval",
                "10 years",
            ),
            (
                json!({"stat_prefix": "p", "status": {"code": 700}}),
                "status.code",
                "not an HTTP status",
            ),
            (
                json!({"stat_prefix": "p", "descriptors": [{"entries": [], "token_bucket": bucket(1, "1s")}]}),
                "descriptors[0].entries",
                "at least one",
            ),
            (
                json!({"stat_prefix": "p", "descriptors": [{"entries": [{"key": "", "value": "v"}], "token_bucket": bucket(1, "1s")}]}),
                "descriptors[0].entries[0].key",
                "must not be empty",
            ),
            (
                json!({"stat_prefix": "p", "descriptors": [{"entries": [{"key": "k", "value": "v"}]}]}),
                "descriptors[0]",
                "missing field `token_bucket`",
            ),
            (
                json!({"stat_prefix": "p", "descriptors": [
                    {"entries": [{"key": "k", "value": "v"}], "token_bucket": bucket(1, "1s")},
                    {"entries": [{"key": "k", "value": "v"}], "token_bucket": bucket(2, "1s")}]}),
                "descriptors[1].entries",
                "duplicates",
            ),
            (
                json!({"stat_prefix": "p", "rate_limits": [{"actions": [{"destination_cluster": {}}]}]}),
                "rate_limits[0].actions[0]",
                "unknown variant `destination_cluster`",
            ),
            (
                json!({"stat_prefix": "p", "rate_limits": [{"actions": []}]}),
                "rate_limits[0].actions",
                "at least one",
            ),
            (
                json!({"stat_prefix": "p", "rate_limits": [{"actions": [{"request_headers": {"header_name": "bad name", "descriptor_key": "k"}}]}]}),
                "rate_limits[0].actions[0].request_headers.header_name",
                "not a valid header name",
            ),
            (
                json!({"stat_prefix": "p", "rate_limits": [{"actions": [{"remote_address": {"x": 1}}]}]}),
                "rate_limits[0].actions[0].remote_address.x",
                "unknown field",
            ),
            (
                json!({"stat_prefix": "p", "rate_limits": [{"match": {}, "actions": [{"remote_address": {}}]}]}),
                "rate_limits[0].match",
                "needs one of prefix",
            ),
            (
                json!({"stat_prefix": "p", "rate_limits": [{"actions": [{"header_value_match": {"descriptor_value": "v", "headers": [{"name": "a"}]}}]}]}),
                "rate_limits[0].actions[0].header_value_match.headers[0]",
                "needs one of",
            ),
            (
                json!({"stat_prefix": "p", "response_headers_to_add": [{"header": {"key": "x", "value": "%START_TIME%"}}]}),
                "response_headers_to_add[0].header.value",
                "only literal values",
            ),
            (
                json!({"stat_prefix": "p", "response_headers_to_add": [{"header": {"key": ":status", "value": "1"}}]}),
                "response_headers_to_add[0].header.key",
                "pseudo-headers",
            ),
            (
                json!({"stat_prefix": "p", "max_dynamic_descriptors": 0}),
                "max_dynamic_descriptors",
                "between 1 and",
            ),
            (
                json!({"stat_prefix": "p", "enable_x_ratelimit_headers": "DRAFT_VERSION_04"}),
                "enable_x_ratelimit_headers",
                "invalid value",
            ),
        ];
        for (json, path, reason) in cases {
            let error = error_of(json.clone());
            assert_eq!(error.path, path, "{json}: {error}");
            assert!(error.reason.contains(reason), "{json}: {}", error.reason);
        }
        let too_many: Vec<_> = (0..11)
            .map(|i| json!({"header": {"key": format!("x-{i}"), "value": "v"}}))
            .collect();
        let error = error_of(json!({"stat_prefix": "p", "response_headers_to_add": too_many}));
        assert_eq!(error.path, "response_headers_to_add");
    }

    #[test]
    fn descriptor_keys_are_unambiguous() {
        let config = load_json(json!({"stat_prefix": "p", "descriptors": [
            {"entries": [{"key": "a", "value": "b&c=d"}], "token_bucket": bucket(1, "1s")},
            {"entries": [{"key": "a", "value": "b"}, {"key": "c", "value": "d"}], "token_bucket": bucket(1, "1s")}
        ]}))
        .unwrap();
        assert_eq!(
            config.descriptors[0].limit.key,
            "rate_limit/v1/p/descriptor/a=b%26c%3Dd"
        );
        assert_eq!(
            config.descriptors[1].limit.key,
            "rate_limit/v1/p/descriptor/a=b&c=d"
        );
    }

    #[test]
    fn reply_headers_apply_append_actions() {
        let additions = |list: &[(&str, AppendAction)]| {
            reply_headers(
                list.iter()
                    .map(|(name, action)| HeaderAddition {
                        name: name.to_string(),
                        value: b"v".to_vec(),
                        action: *action,
                    })
                    .collect(),
            )
            .into_iter()
            .map(|(name, value)| format!("{name}={}", String::from_utf8_lossy(&value)))
            .collect::<Vec<_>>()
        };
        assert_eq!(
            additions(&[
                ("x-a", AppendAction::AppendIfExistsOrAdd),
                ("x-a", AppendAction::AppendIfExistsOrAdd),
                ("content-type", AppendAction::AddIfAbsent),
                ("x-b", AppendAction::OverwriteIfExists),
                ("x-a", AppendAction::OverwriteIfExists),
            ]),
            ["content-type=application/json", "x-a=v"]
        );
    }
}
