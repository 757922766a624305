//! Configuration: native `envoy.extensions.filters.http.ratelimit.v3.RateLimit` as JSON,
//! rejecting unknown fields, validated once into the immutable [`Config`].

use crate::rls;
use sdk_ext::config::json::{proto_enum, Json};
use sdk_ext::config::{validate_each, ConfigError, FromJson, Validate};
use sdk_ext::proto::{HeaderValue, HttpStatus, ProtoDuration};
use sdk_ext::ratelimit::{Policy, RateLimitEntryConfig, XRateLimitHeaders};
use sdk_ext::text::Quoted;
use sdk_ext::validate::{header_name, header_value, Pseudo};
use std::time::Duration;

/// The filter configuration: `envoy.extensions.filters.http.ratelimit.v3.RateLimit`.
#[derive(FromJson, Debug)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct GlobalRateLimitConfig {
    /// The rate limit domain sent to the service (required, non-empty).
    #[serde(default)]
    pub domain: String,
    /// `internal` (requests with `x-envoy-internal: true`), `external` or `both` (default).
    #[serde(default)]
    pub request_type: String,
    /// The service call's timeout. Default 20ms.
    #[serde(default)]
    pub timeout: Option<ProtoDuration>,
    /// Refuse requests (`status_on_error`) when the service fails or cannot be reached.
    #[serde(default)]
    pub failure_mode_deny: bool,
    /// The rate limit service (required).
    #[serde(default)]
    pub rate_limit_service: Option<RateLimitServiceConfig>,
    /// `DRAFT_VERSION_03` adds `x-ratelimit-limit`, `-remaining` and `-reset`.
    #[serde(default)]
    pub enable_x_ratelimit_headers: XRateLimitHeaders,
    /// Leave `x-envoy-ratelimited: true` off the over-limit reply.
    #[serde(default)]
    pub disable_x_envoy_ratelimited_header: bool,
    /// Status of the over-limit reply. Default 429; below 400 means 429.
    #[serde(default)]
    pub rate_limited_status: Option<HttpStatus>,
    /// Status of the reply when the service fails and `failure_mode_deny` is set. Default 500.
    #[serde(default)]
    pub status_on_error: Option<HttpStatus>,
    /// Extra metrics prefix: `ratelimit.<stat_prefix>.ok`.
    #[serde(default)]
    pub stat_prefix: String,
    /// The route `rate_limits` entries that build the descriptors (a wasm filter cannot read
    /// the route's); each may carry a route `match`.
    #[serde(default)]
    pub rate_limits: Vec<RateLimitEntryConfig>,
}

/// `config.ratelimit.v3.RateLimitServiceConfig`.
#[derive(FromJson, Debug)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RateLimitServiceConfig {
    /// Where the service is (required).
    #[serde(default)]
    pub grpc_service: Option<GrpcServiceConfig>,
    /// Must be `V3`, as native requires.
    #[serde(default)]
    #[cfg_attr(
        feature = "schema",
        schemars(with = "String", extend("enum" = ["AUTO", "V2", "V3"]))
    )]
    pub transport_api_version: ApiVersion,
}

/// `config.core.v3.GrpcService`, Envoy gRPC only.
#[derive(FromJson, Debug)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct GrpcServiceConfig {
    /// The Envoy cluster of the service (required: `google_grpc` is not supported).
    #[serde(default)]
    pub envoy_grpc: Option<EnvoyGrpcConfig>,
    /// Accepted and ignored, as native's rate limit filter ignores it: the filter's `timeout`
    /// applies.
    #[serde(default)]
    pub timeout: Option<ProtoDuration>,
    /// Metadata (request headers) sent with every call.
    #[serde(default)]
    pub initial_metadata: Vec<HeaderValue>,
}

/// `config.core.v3.GrpcService.EnvoyGrpc`.
#[derive(FromJson, Debug)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct EnvoyGrpcConfig {
    /// The cluster's name.
    #[serde(default)]
    pub cluster_name: String,
}

/// `config.core.v3.ApiVersion`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ApiVersion {
    /// `AUTO` (0), the default: refused, as native refuses it.
    #[default]
    Auto,
    /// `V2` (1): refused.
    V2,
    /// `V3` (2).
    V3,
}

impl FromJson for ApiVersion {
    fn from_json(value: Json, _path: &mut String) -> Result<Self, String> {
        proto_enum(
            value,
            &[
                ("AUTO", ApiVersion::Auto),
                ("V2", ApiVersion::V2),
                ("V3", ApiVersion::V3),
            ],
            "AUTO, V2 or V3 (or 0-2)",
        )
    }
}

/// Which requests the filter checks, by `x-envoy-internal: true`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestType {
    /// Only internal requests.
    Internal,
    /// Only external requests.
    External,
    /// All requests.
    Both,
}

/// Call metadata: lower-cased names and their values.
pub type Metadata = Vec<(String, Vec<u8>)>;

/// Native's default call timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_millis(20);

/// The validated configuration the filter runs with.
#[derive(Debug)]
pub struct Config {
    /// `RateLimitRequest.domain`, serialized: the constant start of every request message.
    pub domain_field: Vec<u8>,
    /// The service's cluster.
    pub cluster: String,
    /// Metadata sent with every call.
    pub metadata: Metadata,
    /// The call timeout.
    pub timeout: Duration,
    /// Which requests are checked.
    pub request_type: RequestType,
    /// Refuse on a service failure.
    pub failure_mode_deny: bool,
    /// Add the `x-ratelimit-*` headers.
    pub x_ratelimit_headers: bool,
    /// Add `x-envoy-ratelimited: true` to the over-limit reply.
    pub x_envoy_ratelimited: bool,
    /// Status of the over-limit reply.
    pub rate_limited_status: u32,
    /// Status of the error reply.
    pub status_on_error: u32,
    /// Descriptor builders, one per `rate_limits` entry.
    pub policies: Vec<Policy>,
    /// Metrics prefix: `ratelimit[.<stat_prefix>]`.
    pub stat_prefix: String,
}

fn status(field: &str, status: Option<HttpStatus>, default: u32) -> Result<u32, ConfigError> {
    status
        .map_or(Ok(default), HttpStatus::checked)
        .map_err(|e| e.within(field))
}

impl Validate for GlobalRateLimitConfig {
    type Validated = Config;
    const UNSUPPORTED_NATIVE_FIELDS: &'static [&'static str] = sdk_ext::with_rate_limits_unsupported![
        "stage",
        "rate_limited_as_resource_exhausted",
        "response_headers_to_add",
        "filter_enabled",
        "filter_enforced",
        "failure_mode_deny_percent",
        "rate_limit_service.grpc_service.google_grpc",
        "rate_limit_service.grpc_service.retry_policy",
        "rate_limit_service.grpc_service.envoy_grpc.authority",
        "rate_limit_service.grpc_service.envoy_grpc.retry_policy",
        "rate_limit_service.grpc_service.envoy_grpc.max_receive_message_length",
        "rate_limit_service.grpc_service.envoy_grpc.skip_envoy_headers",
    ];

    fn validate(self) -> Result<Config, ConfigError> {
        if self.domain.is_empty() {
            return Err(ConfigError::new("domain", "must not be empty"));
        }
        let request_type = match self.request_type.as_str() {
            "internal" => RequestType::Internal,
            "external" => RequestType::External,
            "both" | "" => RequestType::Both,
            other => {
                return Err(ConfigError::new(
                    "request_type",
                    format!("{} is not one of internal, external, both", Quoted(other)),
                ))
            }
        };
        let timeout = self.timeout.map_or(DEFAULT_TIMEOUT, |timeout| timeout.0);
        if timeout < Duration::from_millis(1) || timeout.as_millis() > u128::from(u32::MAX) {
            return Err(ConfigError::new(
                "timeout",
                "must be between 1ms and 49 days: a call always times out (native's 0s, no \
                 timeout, is not supported)",
            ));
        }
        let service = self
            .rate_limit_service
            .ok_or_else(|| ConfigError::new("rate_limit_service", "is required"))?;
        let (cluster, metadata) = service
            .validate()
            .map_err(|e| e.within("rate_limit_service"))?;
        if self.rate_limits.is_empty() {
            return Err(ConfigError::new(
                "rate_limits",
                "needs at least one entry: a wasm filter cannot read the route's rate_limits",
            ));
        }
        let policies = validate_each(
            "rate_limits",
            self.rate_limits,
            RateLimitEntryConfig::compile,
        )?;
        let rate_limited_status =
            match status("rate_limited_status", self.rate_limited_status, 429)? {
                code if code < 400 => 429,
                code => code,
            };
        let status_on_error = status("status_on_error", self.status_on_error, 500)?;
        let stat_prefix = match self.stat_prefix.trim_end_matches('.') {
            "" => "ratelimit".to_string(),
            extra => format!("ratelimit.{extra}"),
        };
        Ok(Config {
            domain_field: rls::domain_field(&self.domain),
            cluster,
            metadata,
            timeout,
            request_type,
            failure_mode_deny: self.failure_mode_deny,
            x_ratelimit_headers: self.enable_x_ratelimit_headers
                == XRateLimitHeaders::DraftVersion03,
            x_envoy_ratelimited: !self.disable_x_envoy_ratelimited_header,
            rate_limited_status,
            status_on_error,
            policies,
            stat_prefix,
        })
    }
}

impl RateLimitServiceConfig {
    /// The cluster and the call metadata; errors name the field below `rate_limit_service`.
    fn validate(self) -> Result<(String, Metadata), ConfigError> {
        if self.transport_api_version != ApiVersion::V3 {
            return Err(ConfigError::new(
                "transport_api_version",
                "must be V3 (native refuses AUTO and V2)",
            ));
        }
        let grpc = self
            .grpc_service
            .ok_or_else(|| ConfigError::new("grpc_service", "is required"))?;
        let envoy_grpc = grpc.envoy_grpc.ok_or_else(|| {
            ConfigError::new(
                "grpc_service.envoy_grpc",
                "is required (google_grpc is not supported)",
            )
        })?;
        if envoy_grpc.cluster_name.is_empty() {
            return Err(ConfigError::new(
                "grpc_service.envoy_grpc.cluster_name",
                "must not be empty",
            ));
        }
        let metadata = validate_each("initial_metadata", grpc.initial_metadata, |header| {
            let name = header_name(&header.key, Pseudo::Never)
                .map_err(|reason| ConfigError::new("key", reason))?;
            header_value(header.value.as_bytes())
                .map_err(|reason| ConfigError::new("value", reason))?;
            Ok((name, header.value.into_bytes()))
        })
        .map_err(|e| e.within("grpc_service"))?;
        Ok((envoy_grpc.cluster_name, metadata))
    }
}
