//! Configuration: JSON that rejects unknown fields, validated once into the immutable [`Config`].

use crate::redact::{Pointer, Redaction, MAX_POINTERS};
use sdk_ext::config::{validate_each, ConfigError, FromJson, Validate};
use sdk_ext::matcher::{RouteMatch, RouteMatchConfig};

/// Default `max_body_bytes`: Envoy's default per-connection buffer limit (1 MiB).
pub const DEFAULT_MAX_BODY_BYTES: u64 = 1024 * 1024;

/// The filter configuration.
#[derive(FromJson, Debug)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct JsonRedactConfig {
    /// What to redact where. For each direction, the first rule whose `match` matches the
    /// request and whose `direction` covers it applies.
    pub rules: Vec<RuleConfig>,
    /// Largest body buffered and rewritten, in bytes. Default 1 MiB. Keep it at or under the
    /// listener's `per_connection_buffer_limit_bytes`.
    #[serde(default)]
    pub max_body_bytes: Option<u64>,
    /// A response body over `max_body_bytes`: `pass` (default: unmodified, logged and counted)
    /// or `reject` (its body is replaced by a JSON error; a 502 when `content-length` told in
    /// advance).
    #[serde(default)]
    pub response_over_limit: OverLimit,
    /// Prefix of the metrics. Default `json_redact`.
    #[serde(default = "default_stat_prefix")]
    pub stat_prefix: String,
}

fn default_stat_prefix() -> String {
    "json_redact".to_string()
}

/// Which bodies a rule rewrites.
#[derive(FromJson, Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// The request body, before the upstream sees it.
    Request,
    /// The response body, before the client sees it.
    Response,
    /// Both.
    Both,
}

impl Direction {
    /// Whether it covers the request body.
    pub fn request(self) -> bool {
        matches!(self, Direction::Request | Direction::Both)
    }
    /// Whether it covers the response body.
    pub fn response(self) -> bool {
        matches!(self, Direction::Response | Direction::Both)
    }
}

/// What happens to a redacted field.
#[derive(FromJson, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ActionConfig {
    /// The value becomes the `mask` string.
    #[default]
    Mask,
    /// The member (or array element) is removed.
    Remove,
}

/// What happens to a response body over `max_body_bytes`.
#[derive(FromJson, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum OverLimit {
    /// Passed through unmodified, with a log line and `response_too_large`.
    #[default]
    Pass,
    /// Not delivered: its body becomes a JSON error.
    Reject,
}

/// One entry of `rules`.
#[derive(FromJson, Debug)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Envoy's route match (`prefix`, `path`, `safe_regex`, `path_separated_prefix`,
    /// `case_sensitive`, `headers`) on the request. Default: every request.
    #[serde(rename = "match", default)]
    pub route: Option<RouteMatchConfig>,
    /// `request`, `response` or `both`. Default `response`.
    #[serde(default = "default_direction")]
    pub direction: Direction,
    /// Media types (parameters ignored, case-insensitive; `type/*` for any subtype) whose
    /// bodies are rewritten. Default `["application/json"]`.
    #[serde(default)]
    pub content_types: Option<Vec<String>>,
    /// JSON pointers (RFC 6901) of the fields to redact; a `*` segment is every array element
    /// or object member.
    pub redact: Vec<String>,
    /// `mask` (default) or `remove`.
    #[serde(default)]
    pub action: ActionConfig,
    /// The string a masked value becomes. Default `"***"`.
    #[serde(default = "default_mask")]
    pub mask: String,
}

fn default_direction() -> Direction {
    Direction::Response
}

fn default_mask() -> String {
    "***".to_string()
}

/// A compiled rule.
#[derive(Debug)]
pub struct Rule {
    /// Which requests it covers.
    pub route: RouteMatch,
    /// Which bodies.
    pub direction: Direction,
    /// Lower-cased media types; `type/*` entries are stored as `type/`.
    pub content_types: Vec<String>,
    /// The pointers and what to do with what they find.
    pub redaction: Redaction,
}

impl Rule {
    /// Whether a `content-type` header value names one of the rule's media types.
    pub fn accepts_content_type(&self, header: Option<&[u8]>) -> bool {
        let Some(header) = header else {
            return false;
        };
        let media = header.split(|&b| b == b';').next().unwrap_or_default();
        let media = media.trim_ascii();
        self.content_types.iter().any(|want| {
            let want = want.as_bytes();
            if want.ends_with(b"/") {
                media.len() > want.len()
                    && media
                        .get(..want.len())
                        .is_some_and(|head| head.eq_ignore_ascii_case(want))
            } else {
                media.eq_ignore_ascii_case(want)
            }
        })
    }
}

/// The validated configuration the filter runs with.
#[derive(Debug)]
pub struct Config {
    /// The rules, in order.
    pub rules: Vec<Rule>,
    /// Largest body buffered.
    pub max_body_bytes: usize,
    /// What an over-limit response gets.
    pub response_over_limit: OverLimit,
    /// Prefix of the metrics.
    pub stat_prefix: String,
}

impl Validate for JsonRedactConfig {
    type Validated = Config;

    fn validate(self) -> Result<Config, ConfigError> {
        if self.rules.is_empty() {
            return Err(ConfigError::new("rules", "must list at least one rule"));
        }
        let rules = validate_each("rules", self.rules, rule)?;
        let max_body_bytes = match self.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES) {
            0 => return Err(ConfigError::new("max_body_bytes", "must be above 0")),
            // A wasm32 VM cannot hold more; Envoy's own buffer limits are far below.
            max => usize::try_from(max)
                .ok()
                .filter(|&max| max <= u32::MAX as usize / 2)
                .ok_or_else(|| ConfigError::new("max_body_bytes", "must be at most 2147483647"))?,
        };
        if self.stat_prefix.is_empty() {
            return Err(ConfigError::new("stat_prefix", "must not be empty"));
        }
        Ok(Config {
            rules,
            max_body_bytes,
            response_over_limit: self.response_over_limit,
            stat_prefix: self.stat_prefix,
        })
    }
}

fn rule(rule: RuleConfig) -> Result<Rule, ConfigError> {
    let route = match rule.route {
        None => RouteMatch::any(),
        Some(route) => route.compile().map_err(|e| e.within("match"))?,
    };
    let content_types = match rule.content_types {
        None => vec!["application/json".to_string()],
        Some(types) if types.is_empty() => {
            return Err(ConfigError::new(
                "content_types",
                "must list at least one media type (omit it for application/json)",
            ))
        }
        Some(types) => validate_each("content_types", types, content_type)?,
    };
    if rule.redact.is_empty() {
        return Err(ConfigError::new("redact", "must list at least one path"));
    }
    if rule.redact.len() > MAX_POINTERS {
        return Err(ConfigError::new(
            "redact",
            format!("at most {MAX_POINTERS} paths per rule"),
        ));
    }
    let pointers = validate_each("redact", rule.redact, |text| {
        Pointer::parse(&text).map_err(|reason| ConfigError::new("", reason))
    })?;
    let redaction = match rule.action {
        ActionConfig::Mask => Redaction::mask(pointers, &rule.mask),
        ActionConfig::Remove => Redaction::remove(pointers),
    };
    Ok(Rule {
        route,
        direction: rule.direction,
        content_types,
        redaction,
    })
}

fn content_type(text: String) -> Result<String, ConfigError> {
    let lower = text.trim().to_ascii_lowercase();
    let (kind, subtype) = lower
        .split_once('/')
        .ok_or_else(|| ConfigError::new("", "must be a media type such as application/json"))?;
    let token = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    if !token(kind) || !(subtype == "*" || token(subtype)) || lower.contains(';') {
        return Err(ConfigError::new(
            "",
            "must be a media type such as application/json or application/*, without parameters",
        ));
    }
    Ok(if subtype == "*" {
        format!("{kind}/")
    } else {
        lower
    })
}
