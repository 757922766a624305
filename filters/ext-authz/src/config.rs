//! Configuration: native ext_authz's JSON (`http_service` mode), rejecting unknown fields,
//! validated once into the immutable [`Config`].

use sdk_ext::config::{validate_each, ConfigError, FromJson, Validate};
use sdk_ext::matcher::{StringMatcher, StringMatcherConfig};
use sdk_ext::proto::{HeaderValue, HttpStatus, HttpUri};
use sdk_ext::validate::{header_name, header_value, Pseudo};
use std::time::Duration;

/// The filter configuration: `envoy.extensions.filters.http.ext_authz.v3.ExtAuthz`.
#[derive(FromJson, Debug)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ExtAuthzConfig {
    /// The HTTP authorization service (required: `grpc_service` is not supported).
    #[serde(default)]
    pub http_service: Option<HttpServiceConfig>,
    /// Let the request through when the authorization service fails or times out.
    #[serde(default)]
    pub failure_mode_allow: bool,
    /// With `failure_mode_allow`, mark such requests with `x-envoy-auth-failure-mode-allowed: true`.
    #[serde(default)]
    pub failure_mode_allow_header_add: bool,
    /// Status of the reply when the service fails. Default 403.
    #[serde(default)]
    pub status_on_error: Option<HttpStatus>,
    /// Send the request body (buffered up to a limit) to the service.
    #[serde(default)]
    pub with_request_body: Option<BufferSettings>,
    /// Accepted for compatibility; a no-op (Envoy re-picks the route when a wasm filter edits headers).
    #[serde(default)]
    pub clear_route_cache: bool,
    /// Extra metrics prefix: `ext_authz.<stat_prefix>.ok`.
    #[serde(default)]
    pub stat_prefix: String,
}

/// `ext_authz.v3.HttpService`.
#[derive(FromJson, Debug)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct HttpServiceConfig {
    /// Where the service is.
    pub server_uri: HttpUri,
    /// Prepended to the request's `:path` in the check request.
    #[serde(default)]
    pub path_prefix: String,
    /// What the check request carries.
    #[serde(default)]
    pub authorization_request: Option<AuthorizationRequest>,
    /// What of the service's answer goes where.
    #[serde(default)]
    pub authorization_response: Option<AuthorizationResponse>,
}

/// `ext_authz.v3.AuthorizationRequest`.
#[derive(FromJson, Debug, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct AuthorizationRequest {
    /// Request headers sent to the service, besides `authorization`, `:method`, `:path`,
    /// `:authority` (always sent).
    #[serde(default)]
    pub allowed_headers: Option<ListStringMatcher>,
    /// Headers set on the check request.
    #[serde(default)]
    pub headers_to_add: Vec<HeaderValue>,
}

/// `ext_authz.v3.AuthorizationResponse`.
#[derive(FromJson, Debug, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct AuthorizationResponse {
    /// On allow: service headers set on the upstream request.
    #[serde(default)]
    pub allowed_upstream_headers: Option<ListStringMatcher>,
    /// On allow: service headers appended to the upstream request's (`a,b`).
    #[serde(default)]
    pub allowed_upstream_headers_to_append: Option<ListStringMatcher>,
    /// On deny: service headers sent to the client; empty: all but `host`.
    #[serde(default)]
    pub allowed_client_headers: Option<ListStringMatcher>,
    /// On allow: service headers added to the response the client gets.
    #[serde(default)]
    pub allowed_client_headers_on_success: Option<ListStringMatcher>,
}

/// `type.matcher.v3.ListStringMatcher`.
#[derive(FromJson, Debug, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ListStringMatcher {
    /// Matches when any pattern matches.
    #[serde(default)]
    pub patterns: Vec<StringMatcherConfig>,
}

/// `ext_authz.v3.BufferSettings`.
#[derive(FromJson, Debug)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct BufferSettings {
    /// Most body bytes buffered and sent (required, at least 1).
    pub max_request_bytes: u32,
    /// Send the first `max_request_bytes` of a larger body instead of refusing it with 413.
    #[serde(default)]
    pub allow_partial_message: bool,
}

/// Names (lower-case) of header keys, as native's header key matchers.
#[derive(Debug, Default)]
pub struct KeyMatcher(Vec<StringMatcher>);

impl KeyMatcher {
    /// Whether `name` (lower-case) matches any pattern.
    pub fn matches(&self, name: &[u8]) -> bool {
        self.0.iter().any(|matcher| matcher.matches(name))
    }

    /// Whether there is no pattern.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Which service headers a denied client gets.
#[derive(Debug)]
pub enum ClientHeaders {
    /// Native's default for an empty list: every header but `host`.
    AllButHost,
    /// The listed ones, plus `www-authenticate` and `location` (and `:status`, `content-length`,
    /// which the local reply sets itself).
    Listed(KeyMatcher),
}

impl ClientHeaders {
    /// Whether service header `name` goes to the client.
    pub fn matches(&self, name: &[u8]) -> bool {
        match self {
            ClientHeaders::AllButHost => name != b"host",
            ClientHeaders::Listed(matcher) => {
                name == b"www-authenticate" || name == b"location" || matcher.matches(name)
            }
        }
    }
}

/// The validated configuration the filter runs with.
#[derive(Debug)]
pub struct Config {
    /// Cluster of the service.
    pub cluster: String,
    /// Check request timeout.
    pub timeout: Duration,
    /// Prepended to `:path`.
    pub path_prefix: String,
    /// User request header patterns (the defaults are always sent).
    pub allowed_headers: KeyMatcher,
    /// Headers set on the check request.
    pub headers_to_add: Vec<(String, Vec<u8>)>,
    /// Service headers set upstream on allow.
    pub upstream_headers: KeyMatcher,
    /// Service headers appended upstream on allow.
    pub upstream_headers_to_append: KeyMatcher,
    /// Service headers the client gets on deny.
    pub client_headers: ClientHeaders,
    /// Service headers added to the client's response on allow.
    pub client_headers_on_success: KeyMatcher,
    /// Continue when the service fails.
    pub failure_mode_allow: bool,
    /// Mark requests let through by `failure_mode_allow`.
    pub failure_mode_allow_header_add: bool,
    /// Reply status when the service fails.
    pub status_on_error: u32,
    /// Body buffering: (max bytes, allow partial).
    pub with_request_body: Option<(usize, bool)>,
    /// Metrics prefix.
    pub stat_prefix: String,
}

fn key_matcher(list: Option<ListStringMatcher>) -> Result<KeyMatcher, ConfigError> {
    let patterns = list.map(|list| list.patterns).unwrap_or_default();
    validate_each("patterns", patterns, StringMatcherConfig::compile).map(KeyMatcher)
}

impl Validate for ExtAuthzConfig {
    type Validated = Config;
    const UNSUPPORTED_NATIVE_FIELDS: &'static [&'static str] = &[
        "grpc_service",
        "transport_api_version",
        "metadata_context_namespaces",
        "typed_metadata_context_namespaces",
        "route_metadata_context_namespaces",
        "route_typed_metadata_context_namespaces",
        "filter_enabled",
        "filter_enabled_metadata",
        "deny_at_disable",
        "include_peer_certificate",
        "include_tls_session",
        "charge_cluster_response_stats",
        "allowed_headers",
        "disallowed_headers",
        "include_headers_as_bytes",
        "decoder_header_mutation_rules",
        "enable_dynamic_metadata_ingestion",
        "filter_metadata",
        "emit_filter_state_stats",
        "validate_mutations",
        "encode_raw_headers",
        "max_denied_response_body_bytes",
        "with_request_body.pack_as_bytes",
        "http_service.retry_policy",
        "http_service.authorization_response.dynamic_metadata_from_headers",
        "http_service.server_uri.http_upstream_type",
    ];

    fn validate(self) -> Result<Config, ConfigError> {
        let service = self.http_service.ok_or_else(|| {
            ConfigError::new(
                "http_service",
                "is required (only the HTTP service mode is supported, not grpc_service)",
            )
        })?;
        // The URI itself only has to be there, as native: the cluster decides where the check
        // goes, and the check carries the client's authority.
        let server = service
            .server_uri
            .validate()
            .map_err(|e| e.within("http_service.server_uri"))?;
        let timeout = server.timeout;
        header_value(service.path_prefix.as_bytes())
            .map_err(|reason| ConfigError::new("http_service.path_prefix", reason))?;
        if !service.path_prefix.is_empty() && !service.path_prefix.starts_with('/') {
            return Err(ConfigError::new(
                "http_service.path_prefix",
                "must start with /",
            ));
        }
        let request = service.authorization_request.unwrap_or_default();
        let allowed_headers = key_matcher(request.allowed_headers)
            .map_err(|e| e.within("http_service.authorization_request.allowed_headers"))?;
        let headers_to_add = validate_each("headers_to_add", request.headers_to_add, |header| {
            let name = header_name(&header.key, Pseudo::Never)
                .map_err(|reason| ConfigError::new("key", reason))?;
            header_value(header.value.as_bytes())
                .map_err(|reason| ConfigError::new("value", reason))?;
            Ok((name, header.value.into_bytes()))
        })
        .map_err(|e| e.within("http_service.authorization_request"))?;
        let response = service.authorization_response.unwrap_or_default();
        let within = |field: &str| format!("http_service.authorization_response.{field}");
        let upstream_headers = key_matcher(response.allowed_upstream_headers)
            .map_err(|e| e.within(&within("allowed_upstream_headers")))?;
        let upstream_headers_to_append =
            key_matcher(response.allowed_upstream_headers_to_append)
                .map_err(|e| e.within(&within("allowed_upstream_headers_to_append")))?;
        let client = key_matcher(response.allowed_client_headers)
            .map_err(|e| e.within(&within("allowed_client_headers")))?;
        let client_headers_on_success = key_matcher(response.allowed_client_headers_on_success)
            .map_err(|e| e.within(&within("allowed_client_headers_on_success")))?;
        let client_headers = if client.is_empty() {
            ClientHeaders::AllButHost
        } else {
            ClientHeaders::Listed(client)
        };
        let status_on_error = match self.status_on_error {
            None => 403,
            Some(status) => status.checked().map_err(|e| e.within("status_on_error"))?,
        };
        let with_request_body = match self.with_request_body {
            None => None,
            Some(settings) if settings.max_request_bytes == 0 => {
                return Err(ConfigError::new(
                    "with_request_body.max_request_bytes",
                    "must be at least 1",
                ))
            }
            Some(settings) => Some((
                usize::try_from(settings.max_request_bytes).unwrap_or(usize::MAX),
                settings.allow_partial_message,
            )),
        };
        let stat_prefix = match self.stat_prefix.trim_end_matches('.') {
            "" => "ext_authz".to_string(),
            extra => format!("ext_authz.{extra}"),
        };
        Ok(Config {
            cluster: server.cluster,
            timeout,
            path_prefix: service.path_prefix,
            allowed_headers,
            headers_to_add,
            upstream_headers,
            upstream_headers_to_append,
            client_headers,
            client_headers_on_success,
            failure_mode_allow: self.failure_mode_allow,
            failure_mode_allow_header_add: self.failure_mode_allow_header_add,
            status_on_error,
            with_request_body,
            stat_prefix,
        })
    }
}
