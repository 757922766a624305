//! The filters that ship Istio manifests, and how their configuration is checked natively.

use crate::chain;
use sdk_ext::config::{load, ConfigError};
use serde_json::Value;

/// A filter crate under `filters/` and its config loader.
pub struct FilterKind {
    /// The directory name under `filters/` and `istio/` (`jwt-auth`).
    pub name: &'static str,
    /// Loads a plugin configuration exactly as the filter's `on_configure` does.
    pub load_config: fn(&[u8]) -> Result<(), ConfigError>,
    /// The JSON Schema of the filter's configuration, from its config types.
    pub config_schema: fn() -> schemars::Schema,
    /// The WasmPlugin phase the filter must run in, and why; `None` lets deploy.json choose.
    pub required_phase: Option<(&'static str, &'static str)>,
}

/// Every filter with manifests, and the chain module. A new filter adds a line here and an
/// `istio/<name>/deploy.json`; until it does, `make istio` and `make istio-validate` fail and name
/// the missing entry.
pub const FILTERS: &[FilterKind] = &[
    FilterKind {
        name: chain::NAME,
        load_config: chain::load_config,
        config_schema: || chain::config_schema(FILTERS),
        // Derived from the filters the configuration lists: see `required_phase`.
        required_phase: None,
    },
    FilterKind {
        name: "header-rewrite",
        load_config: |bytes| {
            load::<header_rewrite::config::HeaderRewriteConfig>(bytes).map(drop)
        },
        config_schema: || schemars::schema_for!(header_rewrite::config::HeaderRewriteConfig),
        required_phase: None,
    },
    FilterKind {
        name: "jwt-auth",
        load_config: |bytes| load::<jwt_auth::config::JwtAuthConfig>(bytes).map(drop),
        config_schema: || schemars::schema_for!(jwt_auth::config::JwtAuthConfig),
        required_phase: Some((
            "AUTHN",
            "it authenticates, so it must run before Istio's authorization and the filters that trust its claim headers",
        )),
    },
    FilterKind {
        name: "rate-limit",
        load_config: |bytes| load::<rate_limit::config::RateLimitConfig>(bytes).map(drop),
        config_schema: || schemars::schema_for!(rate_limit::config::RateLimitConfig),
        required_phase: None,
    },
    FilterKind {
        name: "basic-auth",
        load_config: |bytes| load::<basic_auth::config::BasicAuthConfig>(bytes).map(drop),
        config_schema: || schemars::schema_for!(basic_auth::config::BasicAuthConfig),
        required_phase: None,
    },
    FilterKind {
        name: "cors",
        load_config: |bytes| load::<cors::config::CorsConfig>(bytes).map(drop),
        config_schema: || schemars::schema_for!(cors::config::CorsConfig),
        required_phase: None,
    },
    FilterKind {
        name: "rbac",
        load_config: |bytes| load::<rbac::config::RbacConfig>(bytes).map(drop),
        config_schema: || schemars::schema_for!(rbac::config::RbacConfig),
        required_phase: None,
    },
    FilterKind {
        name: "ext-authz",
        load_config: |bytes| load::<ext_authz::config::ExtAuthzConfig>(bytes).map(drop),
        config_schema: || schemars::schema_for!(ext_authz::config::ExtAuthzConfig),
        required_phase: None,
    },
    FilterKind {
        name: "json-redact",
        load_config: |bytes| load::<json_redact::config::JsonRedactConfig>(bytes).map(drop),
        config_schema: || schemars::schema_for!(json_redact::config::JsonRedactConfig),
        required_phase: None,
    },
    FilterKind {
        name: "global-rate-limit",
        load_config: |bytes| load::<global_rate_limit::config::GlobalRateLimitConfig>(bytes).map(drop),
        config_schema: || schemars::schema_for!(global_rate_limit::config::GlobalRateLimitConfig),
        required_phase: None,
    },
];

/// The registered filter called `name`.
pub fn kind(name: &str) -> Option<&'static FilterKind> {
    FILTERS.iter().find(|kind| kind.name == name)
}

/// The phase a plugin of `kind` configured with `plugin_config` must run in, and why. A chain
/// inherits the requirement of the filters it lists (jwt-auth puts the whole chain in AUTHN).
pub fn required_phase(kind: &FilterKind, plugin_config: &Value) -> Option<(&'static str, String)> {
    if let Some((phase, why)) = kind.required_phase {
        return Some((phase, why.to_string()));
    }
    if kind.name != chain::NAME {
        return None;
    }
    chain::entry_names(plugin_config)
        .into_iter()
        .filter_map(|name| chain::entry_kind(FILTERS, name))
        .find_map(|inner| {
            let (phase, why) = inner.required_phase?;
            Some((phase, format!("it holds {} ({why})", inner.name)))
        })
}
