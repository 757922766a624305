//! Envoy's rate-limit descriptors: the route's `rate_limits` entries (`config.route.v3.RateLimit`)
//! whose actions build a descriptor from the request, as Envoy's router does, and the
//! `common.ratelimit.v3` types that local and global rate limiting share.
//!
//! ```json
//! {"rate_limits": [{"match": {"prefix": "/api"}, "actions": [
//!   {"request_headers": {"header_name": "x-user", "descriptor_key": "user"}},
//!   {"remote_address": {}}]}]}
//! ```
//!
//! A wasm filter sees no route configuration, so each entry carries its own route `match`.

use crate::config::json::{proto_enum, Json};
use crate::config::{validate_each, ConfigError, FromJson};
use crate::headers::Headers;
use crate::matcher::{
    HeaderMatcher, HeaderMatcherConfig, RequestView, RouteMatch, RouteMatchConfig,
};
use crate::properties::address_without_port;
use crate::proto::TokenBucketConfig;
use crate::validate::{header_name, Pseudo};
use crate::HttpCx;
use std::borrow::Cow;

/// A filter's `UNSUPPORTED_NATIVE_FIELDS` (see [`crate::config::Validate`]): the fields given,
/// then the fields of the route's `RateLimit` entries (under `rate_limits`) that
/// [`RateLimitEntryConfig`] does not implement.
#[macro_export]
macro_rules! with_rate_limits_unsupported {
    ($($field:literal),* $(,)?) => {
        &[
            $($field,)*
            "rate_limits.*.stage",
            "rate_limits.*.disable_key",
            "rate_limits.*.limit",
            "rate_limits.*.apply_on_stream_done",
            "rate_limits.*.hits_addend",
            "rate_limits.*.x_ratelimit_option",
            "rate_limits.*.actions.*.source_cluster",
            "rate_limits.*.actions.*.destination_cluster",
            "rate_limits.*.actions.*.dynamic_metadata",
            "rate_limits.*.actions.*.metadata",
            "rate_limits.*.actions.*.extension",
            "rate_limits.*.actions.*.masked_remote_address",
            "rate_limits.*.actions.*.query_parameter_value_match",
            "rate_limits.*.actions.*.query_parameters",
        ]
    };
}

/// `common.ratelimit.v3.LocalRateLimitDescriptor`.
#[derive(FromJson, Debug, Clone)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct DescriptorConfig {
    /// The entries a request descriptor must have, in order.
    pub entries: Vec<EntryConfig>,
    /// The bucket of requests with this descriptor.
    pub token_bucket: TokenBucketConfig,
}

/// `common.ratelimit.v3.RateLimitDescriptor.Entry`.
#[derive(FromJson, Debug, Clone)]
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
#[derive(FromJson, Debug, Clone)]
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
#[derive(FromJson, Debug, Clone)]
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
#[derive(FromJson, Debug, Clone)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct EmptyConfig {}

/// `RateLimit.Action.RequestHeaders`.
#[derive(FromJson, Debug, Clone)]
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
#[derive(FromJson, Debug, Clone)]
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
#[derive(FromJson, Debug, Clone)]
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

impl FromJson for XRateLimitHeaders {
    fn from_json(value: Json, _path: &mut String) -> Result<Self, String> {
        proto_enum(
            value,
            &[
                ("OFF", XRateLimitHeaders::Off),
                ("DRAFT_VERSION_03", XRateLimitHeaders::DraftVersion03),
            ],
            "OFF or DRAFT_VERSION_03 (or 0-1)",
        )
    }
}

#[cfg(feature = "schema")]
crate::proto::string_schema!(XRateLimitHeaders, "XRateLimitHeaders", {
    "oneOf": [
        {"type": "string", "enum": ["OFF", "DRAFT_VERSION_03"]},
        {"type": "integer", "minimum": 0, "maximum": 1}
    ]
});

/// One `rate_limits` entry: an optional route match and the actions that build its descriptor.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Requests the entry applies to; `None` is all.
    pub route: Option<RouteMatch>,
    /// Each action yields one entry (or skips, or cancels the descriptor).
    pub actions: Vec<Action>,
}

/// A validated `RateLimit.Action`.
#[derive(Debug, Clone)]
pub enum Action {
    /// `(key, first value of header name)`.
    RequestHeader {
        /// Lower-case header name.
        name: String,
        /// Entry key.
        key: String,
        /// When the header is absent: skip the entry (true) or cancel the descriptor (false).
        skip_if_absent: bool,
    },
    /// `("remote_address", client IP without port)`.
    RemoteAddress,
    /// `(key, value)`.
    GenericKey {
        /// Entry key.
        key: String,
        /// Entry value.
        value: String,
    },
    /// `(key, value)` when the headers' match equals `expect_match`; else no descriptor.
    HeaderValueMatch {
        /// Entry key.
        key: String,
        /// Entry value.
        value: String,
        /// Whether the headers must match or must not.
        expect_match: bool,
        /// All must match.
        headers: Vec<HeaderMatcher>,
    },
}

/// What descriptor building reads from the request: the route-match view plus the client
/// address.
pub trait Request: RequestView {
    /// The downstream address (`source.address`, `ip:port`).
    fn remote_address(&self) -> Option<Vec<u8>>;
}

/// A stream's request as descriptor building reads it: headers live, the client address the
/// `source.address` property.
pub struct StreamRequest<'a> {
    headers: Headers<'a>,
    cx: &'a HttpCx<'a>,
}

impl<'a> StreamRequest<'a> {
    /// The request of the stream `cx`.
    pub fn new(cx: &'a HttpCx<'a>) -> Self {
        StreamRequest {
            headers: cx.request_headers(),
            cx,
        }
    }
}

impl RequestView for StreamRequest<'_> {
    fn path(&self) -> Option<Cow<'_, [u8]>> {
        self.headers.path()
    }
    fn header(&self, name: &str) -> Option<Cow<'_, [u8]>> {
        RequestView::header(&self.headers, name)
    }
    fn header_matches(&self, matcher: &HeaderMatcher) -> bool {
        self.headers.header_matches(matcher)
    }
}

impl Request for StreamRequest<'_> {
    fn remote_address(&self) -> Option<Vec<u8>> {
        self.cx.property(&["source", "address"]).ok().flatten()
    }
}

/// One entry of a request descriptor; values borrow the config when they are fixed.
pub type Entry<'a> = (&'a str, Cow<'a, [u8]>);

impl RateLimitEntryConfig {
    /// Compiles the entry: at least one action, each valid; errors name the field path.
    pub fn compile(self) -> Result<Policy, ConfigError> {
        if self.actions.is_empty() {
            return Err(ConfigError::new("actions", "needs at least one action"));
        }
        let route = self
            .route_match
            .map(|m| m.compile().map_err(|e| e.within("match")))
            .transpose()?;
        let actions = validate_each("actions", self.actions, ActionConfig::compile)?;
        Ok(Policy { route, actions })
    }
}

fn non_empty(field: &str, value: String) -> Result<String, ConfigError> {
    if value.is_empty() {
        Err(ConfigError::new(field, "must not be empty"))
    } else {
        Ok(value)
    }
}

/// An optional descriptor key, with Envoy's default when unset or empty.
fn key_or(key: Option<String>, default: &str) -> String {
    key.filter(|key| !key.is_empty())
        .unwrap_or_else(|| default.into())
}

impl ActionConfig {
    /// Compiles the action, as Envoy validates it.
    pub fn compile(self) -> Result<Action, ConfigError> {
        Ok(match self {
            ActionConfig::RequestHeaders(config) => {
                let within = |e: ConfigError| e.within("request_headers");
                Action::RequestHeader {
                    name: header_name(&config.header_name, Pseudo::Any)
                        .map_err(|reason| within(ConfigError::new("header_name", reason)))?,
                    key: non_empty("descriptor_key", config.descriptor_key).map_err(within)?,
                    skip_if_absent: config.skip_if_absent,
                }
            }
            ActionConfig::RemoteAddress(EmptyConfig {}) => Action::RemoteAddress,
            ActionConfig::GenericKey(config) => Action::GenericKey {
                key: key_or(config.descriptor_key, "generic_key"),
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
                    key: key_or(config.descriptor_key, "header_match"),
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

impl Policy {
    /// Builds the descriptor this entry yields for the request into `entries` (cleared first).
    /// False when the route does not match or an action cancelled the descriptor.
    pub fn populate<'a>(&'a self, request: &impl Request, entries: &mut Vec<Entry<'a>>) -> bool {
        entries.clear();
        if self
            .route
            .as_ref()
            .is_some_and(|route| !route.matches(request))
        {
            return false;
        }
        for action in &self.actions {
            match action {
                Action::RequestHeader {
                    name,
                    key,
                    skip_if_absent,
                } => match request.header(name) {
                    Some(value) => entries.push((key, Cow::Owned(value.into_owned()))),
                    None if *skip_if_absent => {}
                    None => return false,
                },
                Action::RemoteAddress => match request.remote_address() {
                    Some(address) => {
                        let ip = address_without_port(&address).to_vec();
                        entries.push(("remote_address", Cow::Owned(ip)));
                    }
                    None => return false,
                },
                Action::GenericKey { key, value } => {
                    entries.push((key, Cow::Borrowed(value.as_bytes())))
                }
                Action::HeaderValueMatch {
                    key,
                    value,
                    expect_match,
                    headers,
                } => {
                    let matched = headers
                        .iter()
                        .all(|matcher| request.header_matches(matcher));
                    if matched != *expect_match {
                        return false;
                    }
                    entries.push((key, Cow::Borrowed(value.as_bytes())));
                }
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;

    #[derive(Default)]
    struct FakeRequest {
        headers: HashMap<&'static str, &'static str>,
        address: Option<&'static str>,
    }

    impl RequestView for FakeRequest {
        fn path(&self) -> Option<Cow<'_, [u8]>> {
            self.header(":path")
        }
        fn header(&self, name: &str) -> Option<Cow<'_, [u8]>> {
            self.headers.get(name).map(|v| Cow::Borrowed(v.as_bytes()))
        }
    }

    impl Request for FakeRequest {
        fn remote_address(&self) -> Option<Vec<u8>> {
            self.address.map(|a| a.as_bytes().to_vec())
        }
    }

    fn request(headers: &[(&'static str, &'static str)]) -> FakeRequest {
        let mut map: HashMap<_, _> = headers.iter().copied().collect();
        map.entry(":path").or_insert("/");
        FakeRequest {
            headers: map,
            address: Some("10.0.0.7:5555"),
        }
    }

    fn compile(json: serde_json::Value) -> Result<Vec<Policy>, ConfigError> {
        let entries: Vec<RateLimitEntryConfig> =
            crate::config::read(crate::config::json::Json::from(json)).unwrap();
        validate_each("rate_limits", entries, RateLimitEntryConfig::compile)
    }

    fn describe(policies: &[Policy], request: &FakeRequest) -> Vec<Option<Vec<(String, String)>>> {
        let mut entries = Vec::new();
        policies
            .iter()
            .map(|policy| {
                policy.populate(request, &mut entries).then(|| {
                    entries
                        .iter()
                        .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v).into_owned()))
                        .collect()
                })
            })
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
        Some(
            list.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn actions_build_descriptors_as_envoy() {
        let policies = compile(json!([
            {"actions": [{"request_headers": {"header_name": "X-User", "descriptor_key": "user"}}]},
            {"actions": [{"request_headers": {"header_name": "x-user", "descriptor_key": "user", "skip_if_absent": true}},
                         {"generic_key": {"descriptor_value": "g"}}]},
            {"actions": [{"remote_address": {}}]},
            {"actions": [{"header_value_match": {"descriptor_value": "posts", "headers": [{"name": ":method", "exact_match": "POST"}]}}]},
            {"actions": [{"header_value_match": {"descriptor_key": "k", "descriptor_value": "not-posts", "expect_match": false,
                          "headers": [{"name": ":method", "exact_match": "POST"}]}}]},
            {"match": {"prefix": "/admin"}, "actions": [{"generic_key": {"descriptor_key": "area", "descriptor_value": "admin"}}]}
        ]))
        .unwrap();
        let alice = request(&[("x-user", "alice"), (":method", "GET")]);
        assert_eq!(
            describe(&policies, &alice),
            [
                pairs(&[("user", "alice")]),
                pairs(&[("user", "alice"), ("generic_key", "g")]),
                pairs(&[("remote_address", "10.0.0.7")]),
                None,
                pairs(&[("k", "not-posts")]),
                None,
            ]
        );
        let anonymous_post = request(&[(":method", "POST"), (":path", "/admin/x")]);
        assert_eq!(
            describe(&policies, &anonymous_post),
            [
                None,
                pairs(&[("generic_key", "g")]),
                pairs(&[("remote_address", "10.0.0.7")]),
                pairs(&[("header_match", "posts")]),
                None,
                pairs(&[("area", "admin")]),
            ]
        );
        let no_address = FakeRequest {
            address: None,
            ..request(&[])
        };
        assert_eq!(describe(&policies, &no_address)[2], None);
    }

    #[test]
    fn bad_actions_name_the_field() {
        let action = |action: serde_json::Value| json!([{"actions": [action]}]);
        for (json, path, reason) in [
            (
                json!([{"actions": []}]),
                "rate_limits[0].actions",
                "at least one",
            ),
            (
                action(
                    json!({"request_headers": {"header_name": "bad name", "descriptor_key": "k"}}),
                ),
                "rate_limits[0].actions[0].request_headers.header_name",
                "not a valid header name",
            ),
            (
                action(json!({"request_headers": {"header_name": "x", "descriptor_key": ""}})),
                "rate_limits[0].actions[0].request_headers.descriptor_key",
                "must not be empty",
            ),
            (
                action(json!({"generic_key": {"descriptor_value": ""}})),
                "rate_limits[0].actions[0].generic_key.descriptor_value",
                "must not be empty",
            ),
            (
                action(json!({"header_value_match": {"descriptor_value": "v", "headers": []}})),
                "rate_limits[0].actions[0].header_value_match.headers",
                "at least one header matcher",
            ),
            (
                json!([{"match": {}, "actions": [{"remote_address": {}}]}]),
                "rate_limits[0].match",
                "needs one of prefix",
            ),
        ] {
            let error = compile(json.clone()).unwrap_err();
            assert_eq!(error.path, path, "{json}");
            assert!(error.reason.contains(reason), "{json}: {}", error.reason);
        }
    }

    #[test]
    fn x_ratelimit_headers_parse_by_name_or_number() {
        let parse = |json: &str| crate::config::read_str::<XRateLimitHeaders>(json);
        assert_eq!(
            parse("\"DRAFT_VERSION_03\"").unwrap(),
            XRateLimitHeaders::DraftVersion03
        );
        assert_eq!(parse("0").unwrap(), XRateLimitHeaders::Off);
        assert!(parse("\"DRAFT_VERSION_04\"").is_err());
    }
}
