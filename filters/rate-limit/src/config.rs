//! Configuration: Envoy's `local_ratelimit` filter config as JSON (plus the descriptor sources a
//! wasm filter must carry itself), validated into the runtime [`Config`]. The Envoy types it
//! shares with other filters (token buckets, statuses, rate-limit actions and descriptors) are
//! sdk-ext's.

use crate::bucket::Bucket;
use crate::runtime::{Config, HeaderAddition, Limit, StaticDescriptor, WildcardDescriptor};
use sdk_ext::config::{validate_each, ConfigError, FromJson, Validate};
use sdk_ext::proto::{
    HeaderEdit, HeaderValueOption, HttpStatus, RuntimeFractionalPercent, Sampling,
    TokenBucketConfig,
};
use sdk_ext::ratelimit::{DescriptorConfig, RateLimitEntryConfig, XRateLimitHeaders};
use sdk_ext::text::Quoted;
use sdk_ext::validate::{header_value, modifiable_header_name};
use std::time::Duration;

/// Envoy's limit on `response_headers_to_add` and `request_headers_to_add_when_not_enforced`.
const MAX_HEADERS_TO_ADD: usize = 10;
/// Native's default `max_dynamic_descriptors`.
const DEFAULT_MAX_DYNAMIC_DESCRIPTORS: u32 = 20;
/// The most descriptors all wildcard descriptors together may track: `max_dynamic_descriptors`
/// times the number of wildcard descriptors. Their tables (24 bytes of shared data per
/// descriptor, in keys of 16) are created when the filter is configured, on every worker, and
/// proxy-wasm cannot delete a key; this keeps that at 6 MiB and a fraction of a second.
const MAX_DYNAMIC_DESCRIPTORS: u32 = 1 << 18;
/// Keys per shared-data value of a wildcard table: one CAS covers all of them.
pub const MAX_WAYS: u32 = 16;
/// Native refuses faster fills.
const MIN_FILL_INTERVAL: Duration = Duration::from_millis(50);

/// The filter configuration, as `envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit`.
#[derive(FromJson, Debug)]
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

/// The local reply's `error` code, and native's response code details.
pub const REPLY_CODE: &str = "local_rate_limited";

impl Validate for RateLimitConfig {
    type Validated = Config;
    const UNSUPPORTED_NATIVE_FIELDS: &'static [&'static str] = sdk_ext::with_rate_limits_unsupported![
        "stage",
        "local_rate_limit_per_downstream_connection",
        "local_cluster_rate_limit",
        "vh_rate_limits",
        "rate_limited_as_resource_exhausted",
    ];

    fn validate(self) -> Result<Config, ConfigError> {
        if self.stat_prefix.is_empty() {
            return Err(ConfigError::new("stat_prefix", "must not be empty"));
        }
        let mut warnings = Vec::new();
        let status = match self.status.map(HttpStatus::checked).transpose() {
            Err(error) => return Err(error.within("status")),
            Ok(None) => 429,
            Ok(Some(code)) if code < 400 => {
                warnings.push(format!(
                    "status {code} is below 400, so 429 is used (as native)"
                ));
                429
            }
            Ok(Some(code)) => code,
        };
        let key_prefix = format!("rate_limit/v1/{}", self.stat_prefix);
        let default_limit = self
            .token_bucket
            .map(|config| {
                Ok(Limit {
                    bucket: bucket(&config).map_err(|e| e.within("token_bucket"))?,
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
            let parsed = validate_descriptor(descriptor, &key_prefix, max_dynamic).map_err(at)?;
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
        let tracked = u64::from(max_dynamic) * wildcards.len() as u64;
        if tracked > u64::from(MAX_DYNAMIC_DESCRIPTORS) {
            return Err(ConfigError::new(
                "max_dynamic_descriptors",
                format!(
                    "{max_dynamic} for each of {} wildcard descriptors tracks {tracked} descriptors; \
                     at most {MAX_DYNAMIC_DESCRIPTORS} in all",
                    wildcards.len()
                ),
            ));
        }
        let policies = validate_each(
            "rate_limits",
            self.rate_limits,
            RateLimitEntryConfig::compile,
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

/// The bucket of a `token_bucket`, with native local_ratelimit's 50ms floor.
fn bucket(config: &TokenBucketConfig) -> Result<Bucket, ConfigError> {
    let (max_tokens, tokens_per_fill, interval) = config.checked(MIN_FILL_INTERVAL)?;
    Bucket::new(u64::from(max_tokens), u64::from(tokens_per_fill), interval)
        .map_err(|reason| ConfigError::new("fill_interval", reason))
}

enum Parsed {
    Static(StaticDescriptor),
    Wildcard(WildcardDescriptor),
}

/// A `descriptors` entry: a static bucket, or a wildcard table of at most `max_dynamic` buckets,
/// with shared-data keys under `key_prefix`.
fn validate_descriptor(
    descriptor: DescriptorConfig,
    key_prefix: &str,
    max_dynamic: u32,
) -> Result<Parsed, ConfigError> {
    let DescriptorConfig {
        entries,
        token_bucket,
    } = descriptor;
    if entries.is_empty() {
        return Err(ConfigError::new("entries", "needs at least one entry"));
    }
    for (index, entry) in entries.iter().enumerate() {
        if entry.key.is_empty() {
            return Err(ConfigError::new(
                format!("entries[{index}].key"),
                "must not be empty",
            ));
        }
    }
    let bucket = bucket(&token_bucket).map_err(|e| e.within("token_bucket"))?;
    let mut key = format!("{key_prefix}/descriptor/");
    for (index, entry) in entries.iter().enumerate() {
        if index > 0 {
            key.push('&');
        }
        escape_into(&mut key, &entry.key);
        key.push('=');
        escape_into(&mut key, &entry.value);
    }
    if entries.iter().all(|entry| !entry.value.is_empty()) {
        return Ok(Parsed::Static(StaticDescriptor {
            entries: entries
                .into_iter()
                .map(|entry| (entry.key, entry.value))
                .collect(),
            limit: Limit { bucket, key },
        }));
    }
    let sets = max_dynamic.div_ceil(MAX_WAYS);
    let ways = max_dynamic.div_ceil(sets);
    Ok(Parsed::Wildcard(WildcardDescriptor {
        entries: entries
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
    let name = modifiable_header_name(&option.header.key, "added")
        .map_err(|reason| ConfigError::new("header.key", reason))?;
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
    header_value(text.as_bytes())?;
    let mut value = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(byte) = bytes.next() {
        if byte == b'%' && bytes.next() != Some(b'%') {
            return Err(format!(
                "{} has a %COMMAND%; only literal values are supported (write %% for %)",
                Quoted(text)
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
    use sdk_ext::proto::AppendAction;
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
                json!({"stat_prefix": "p", "request_headers_to_add_when_not_enforced": [{"header": {"key": "Host", "value": "x"}}]}),
                "request_headers_to_add_when_not_enforced[0].header.key",
                "cannot be added",
            ),
            (
                json!({"stat_prefix": "p", "response_headers_to_add": [{"header": {"key": "x", "value": "a\rb"}}]}),
                "response_headers_to_add[0].header.value",
                "NUL, CR or LF",
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
