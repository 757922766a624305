//! Configuration: Envoy's `envoy.extensions.filters.http.rbac.v3.RBAC` as JSON (a documented
//! subset), plus `xff_num_trusted_hops`, validated once into the immutable [`Config`].

use crate::engine::{Action, Engine, Permission, Policy, Principal};
use sdk_ext::config::json::{proto_enum, Json};
use sdk_ext::config::{validate_each, ConfigError, FromJson, Validate};
use sdk_ext::matcher::{HeaderMatcher, HeaderMatcherConfig, StringMatcherConfig};
use sdk_ext::net::CidrRangeConfig;
use std::cell::Cell;
use std::collections::BTreeMap;

/// The filter configuration, as native `RBAC`.
#[derive(FromJson, Debug, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RbacConfig {
    /// The enforced policies. Unset: every request is let through, uncounted (as native).
    #[serde(default)]
    pub rules: Option<RulesConfig>,
    /// Policies that are only evaluated and counted (`shadow_allowed`, `shadow_denied`).
    #[serde(default)]
    pub shadow_rules: Option<RulesConfig>,
    /// Inserted into the names of `allowed` and `denied`: `rbac.<prefix>.allowed`.
    #[serde(default)]
    pub rules_stat_prefix: String,
    /// Inserted into the names of the shadow counters: `rbac.<prefix>.shadow_allowed`.
    #[serde(default)]
    pub shadow_rules_stat_prefix: String,
    /// Our extension, named after the connection manager's field: `remote_ip` is the address
    /// this many entries from the right of `x-forwarded-for` (after the one Envoy appends), or
    /// the peer when XFF is shorter. 0 (default): `remote_ip` is the peer.
    #[serde(default)]
    pub xff_num_trusted_hops: u32,
}

/// `config.rbac.v3.RBAC`: an action and named policies.
#[derive(FromJson, Debug, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RulesConfig {
    /// `ALLOW` (default): only requests some policy matches pass. `DENY`: requests some policy
    /// matches are refused. `LOG`: nothing is refused.
    #[serde(default, deserialize_with = "action")]
    #[cfg_attr(
        feature = "schema",
        schemars(with = "String", extend("enum" = ["ALLOW", "DENY", "LOG"]))
    )]
    pub action: Action,
    /// Policies by name; they are tried in name order, and the first that matches decides.
    #[serde(default)]
    pub policies: BTreeMap<String, PolicyConfig>,
}

fn action(value: Json, _path: &mut String) -> Result<Action, String> {
    proto_enum(
        value,
        &[
            ("ALLOW", Action::Allow),
            ("DENY", Action::Deny),
            ("LOG", Action::Log),
        ],
        "ALLOW, DENY or LOG",
    )
}

/// `config.rbac.v3.Policy`: matches when any permission and any principal match.
#[derive(FromJson, Debug, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// What the request does (at least one).
    #[serde(default)]
    pub permissions: Vec<PermissionConfig>,
    /// Who sends it (at least one).
    #[serde(default)]
    pub principals: Vec<PrincipalConfig>,
}

/// `config.rbac.v3.Permission`: exactly one kind.
#[derive(FromJson, Debug, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PermissionConfig {
    /// Every request (must be `true`).
    #[serde(default)]
    pub any: Option<bool>,
    /// A request header, as a route's `HeaderMatcher`.
    #[serde(default)]
    pub header: Option<HeaderMatcherConfig>,
    /// The path without query and fragment.
    #[serde(default)]
    pub url_path: Option<PathMatcherConfig>,
    /// All of the rules.
    #[serde(default)]
    pub and_rules: Option<PermissionSet>,
    /// Any of the rules.
    #[serde(default)]
    pub or_rules: Option<PermissionSet>,
    /// The rule does not match.
    #[serde(default)]
    pub not_rule: Option<Box<PermissionConfig>>,
    /// The port the request came in on (`destination.address`).
    #[serde(default)]
    pub destination_port: Option<u32>,
    /// A port in `[start, end)`.
    #[serde(default)]
    pub destination_port_range: Option<Int32Range>,
    /// The address the request came in on.
    #[serde(default)]
    pub destination_ip: Option<CidrRangeConfig>,
}

/// `config.rbac.v3.Permission.Set`.
#[derive(FromJson, Debug)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PermissionSet {
    /// At least one.
    #[serde(default)]
    pub rules: Vec<PermissionConfig>,
}

/// `config.rbac.v3.Principal`: exactly one kind.
#[derive(FromJson, Debug, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PrincipalConfig {
    /// Every request (must be `true`).
    #[serde(default)]
    pub any: Option<bool>,
    /// A request header, as a route's `HeaderMatcher`.
    #[serde(default)]
    pub header: Option<HeaderMatcherConfig>,
    /// The path without query and fragment.
    #[serde(default)]
    pub url_path: Option<PathMatcherConfig>,
    /// All of the ids.
    #[serde(default)]
    pub and_ids: Option<PrincipalSet>,
    /// Any of the ids.
    #[serde(default)]
    pub or_ids: Option<PrincipalSet>,
    /// The id does not match.
    #[serde(default)]
    pub not_id: Option<Box<PrincipalConfig>>,
    /// The peer of the connection (`source.address`).
    #[serde(default)]
    pub direct_remote_ip: Option<CidrRangeConfig>,
    /// The client: the peer, or from `x-forwarded-for` with `xff_num_trusted_hops`.
    #[serde(default)]
    pub remote_ip: Option<CidrRangeConfig>,
}

/// `config.rbac.v3.Principal.Set`.
#[derive(FromJson, Debug)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PrincipalSet {
    /// At least one.
    #[serde(default)]
    pub ids: Vec<PrincipalConfig>,
}

/// `type.matcher.v3.PathMatcher`.
#[derive(FromJson, Debug)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PathMatcherConfig {
    /// Matched against the path without query and fragment.
    pub path: StringMatcherConfig,
}

/// `type.v3.Int32Range`: `[start, end)`.
#[derive(FromJson, Debug)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Int32Range {
    /// Inclusive.
    #[serde(default)]
    pub start: i64,
    /// Exclusive.
    #[serde(default)]
    pub end: i64,
}

/// The validated configuration the filter runs with.
#[derive(Debug)]
pub struct Config {
    /// The enforced engine.
    pub rules: Option<Engine>,
    /// The shadow engine.
    pub shadow_rules: Option<Engine>,
    /// Native `rules_stat_prefix`.
    pub rules_stat_prefix: String,
    /// Native `shadow_rules_stat_prefix`.
    pub shadow_rules_stat_prefix: String,
    /// See [`RbacConfig::xff_num_trusted_hops`].
    pub xff_num_trusted_hops: u32,
    /// What the engines read from a request, so nothing else is fetched.
    pub needs: Needs,
}

/// What the policies read, found once at configure time.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    /// Request headers (`header`, `url_path`).
    pub headers: bool,
    /// The peer (`direct_remote_ip`, `remote_ip`).
    pub source: bool,
    /// `x-forwarded-for` (`remote_ip` with `xff_num_trusted_hops`).
    pub xff: bool,
    /// The local address (`destination_port`, `destination_ip`).
    pub destination: bool,
}

/// Parses and validates configuration bytes; errors name the field path.
pub fn load(bytes: &[u8]) -> Result<Config, ConfigError> {
    sdk_ext::config::load::<RbacConfig>(bytes)
}

impl Validate for RbacConfig {
    type Validated = Config;
    /// Kinds and fields of the native filter that this one does not implement; each name belongs
    /// to one message, so it is matched at any depth.
    const UNSUPPORTED_NATIVE_FIELDS: &'static [&'static str] = &[
        // RBAC
        "matcher",
        "shadow_matcher",
        "track_per_rule_stats",
        // RBAC.rules
        "**.audit_logging_options",
        // Policy
        "**.condition",
        "**.checked_condition",
        // Permission
        "**.metadata",
        "**.sourced_metadata",
        "**.requested_server_name",
        "**.uri_template",
        // Principal
        "**.authenticated",
        "**.source_ip",
        "**.filter_state",
    ];

    fn validate(self) -> Result<Config, ConfigError> {
        for (field, prefix) in [
            ("rules_stat_prefix", &self.rules_stat_prefix),
            ("shadow_rules_stat_prefix", &self.shadow_rules_stat_prefix),
        ] {
            if !prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
            {
                return Err(ConfigError::new(
                    field,
                    "may hold only ASCII letters, digits, '_', '.' and '-'",
                ));
            }
        }
        let hops = self.xff_num_trusted_hops;
        let needs = Cell::new(Needs::default());
        let rules = self
            .rules
            .map(|rules| engine(rules, hops, &needs).map_err(|e| e.within("rules")))
            .transpose()?;
        let shadow_rules = self
            .shadow_rules
            .map(|rules| engine(rules, hops, &needs).map_err(|e| e.within("shadow_rules")))
            .transpose()?;
        Ok(Config {
            rules,
            shadow_rules,
            rules_stat_prefix: self.rules_stat_prefix,
            shadow_rules_stat_prefix: self.shadow_rules_stat_prefix,
            xff_num_trusted_hops: hops,
            needs: needs.get(),
        })
    }
}

fn engine(config: RulesConfig, hops: u32, needs: &Cell<Needs>) -> Result<Engine, ConfigError> {
    let mut policies = Vec::with_capacity(config.policies.len());
    for (name, policy) in config.policies {
        let at = |e: ConfigError| e.within(&format!("policies.{name}"));
        if policy.permissions.is_empty() {
            return Err(at(ConfigError::new("permissions", "needs at least one")));
        }
        if policy.principals.is_empty() {
            return Err(at(ConfigError::new("principals", "needs at least one")));
        }
        let permissions =
            validate_each("permissions", policy.permissions, |p| permission(p, needs))
                .map_err(at)?;
        let principals = validate_each("principals", policy.principals, |p| {
            principal(p, hops, needs)
        })
        .map_err(at)?;
        policies.push(Policy {
            name,
            permissions,
            principals,
        });
    }
    Ok(Engine {
        action: config.action,
        policies,
    })
}

fn mark(needs: &Cell<Needs>, change: impl FnOnce(&mut Needs)) {
    let mut value = needs.get();
    change(&mut value);
    needs.set(value);
}

fn any(value: bool) -> Result<(), ConfigError> {
    if value {
        Ok(())
    } else {
        Err(ConfigError::new(
            "any",
            "must be true (leave the rule out instead)",
        ))
    }
}

fn header(config: HeaderMatcherConfig, needs: &Cell<Needs>) -> Result<HeaderMatcher, ConfigError> {
    mark(needs, |n| n.headers = true);
    config.compile().map_err(|e| e.within("header"))
}

fn url_path(
    config: PathMatcherConfig,
    needs: &Cell<Needs>,
) -> Result<sdk_ext::matcher::StringMatcher, ConfigError> {
    mark(needs, |n| n.headers = true);
    config.path.compile().map_err(|e| e.within("url_path.path"))
}

/// Exactly one of `kinds` (name, set?) is set.
fn one_kind(kinds: &[(&str, bool)]) -> Result<(), ConfigError> {
    let set: Vec<&str> = kinds
        .iter()
        .filter(|(_, set)| *set)
        .map(|(name, _)| *name)
        .collect();
    let names = || {
        kinds
            .iter()
            .map(|(name, _)| *name)
            .collect::<Vec<_>>()
            .join(", ")
    };
    match set.len() {
        1 => Ok(()),
        0 => Err(ConfigError::new("", format!("needs one of {}", names()))),
        _ => Err(ConfigError::new(
            "",
            format!("needs only one of {}, not {}", names(), set.join(" and ")),
        )),
    }
}

fn permission(config: PermissionConfig, needs: &Cell<Needs>) -> Result<Permission, ConfigError> {
    let PermissionConfig {
        any: any_value,
        header: header_config,
        url_path: path,
        and_rules,
        or_rules,
        not_rule,
        destination_port,
        destination_port_range,
        destination_ip,
    } = config;
    one_kind(&[
        ("any", any_value.is_some()),
        ("header", header_config.is_some()),
        ("url_path", path.is_some()),
        ("and_rules", and_rules.is_some()),
        ("or_rules", or_rules.is_some()),
        ("not_rule", not_rule.is_some()),
        ("destination_port", destination_port.is_some()),
        ("destination_port_range", destination_port_range.is_some()),
        ("destination_ip", destination_ip.is_some()),
    ])?;
    if let Some(value) = any_value {
        any(value)?;
        return Ok(Permission::Any);
    }
    if let Some(config) = header_config {
        return Ok(Permission::Header(header(config, needs)?));
    }
    if let Some(config) = path {
        return Ok(Permission::UrlPath(url_path(config, needs)?));
    }
    if let Some(set) = and_rules {
        return Ok(Permission::And(
            permission_set(set, needs).map_err(|e| e.within("and_rules"))?,
        ));
    }
    if let Some(set) = or_rules {
        return Ok(Permission::Or(
            permission_set(set, needs).map_err(|e| e.within("or_rules"))?,
        ));
    }
    if let Some(rule) = not_rule {
        return Ok(Permission::Not(Box::new(
            permission(*rule, needs).map_err(|e| e.within("not_rule"))?,
        )));
    }
    if let Some(port) = destination_port {
        mark(needs, |n| n.destination = true);
        let port = u16::try_from(port)
            .map_err(|_| ConfigError::new("destination_port", format!("{port} is above 65535")))?;
        return Ok(Permission::DestinationPort(port));
    }
    if let Some(range) = destination_port_range {
        mark(needs, |n| n.destination = true);
        let at = |field: &str, reason: String| {
            ConfigError::new(format!("destination_port_range.{field}"), reason)
        };
        for (field, value) in [("start", range.start), ("end", range.end)] {
            if !(0..=65536).contains(&value) {
                return Err(at(field, format!("{value} is not between 0 and 65536")));
            }
        }
        if range.start >= range.end {
            return Err(at(
                "end",
                format!("{} must be above start {}", range.end, range.start),
            ));
        }
        return Ok(Permission::DestinationPortRange(
            range.start as u32,
            range.end as u32,
        ));
    }
    let range = destination_ip.unwrap_or_default();
    mark(needs, |n| n.destination = true);
    Ok(Permission::DestinationIp(
        range.compile().map_err(|e| e.within("destination_ip"))?,
    ))
}

fn permission_set(set: PermissionSet, needs: &Cell<Needs>) -> Result<Vec<Permission>, ConfigError> {
    if set.rules.is_empty() {
        return Err(ConfigError::new("rules", "needs at least one"));
    }
    validate_each("rules", set.rules, |p| permission(p, needs))
}

fn principal(
    config: PrincipalConfig,
    hops: u32,
    needs: &Cell<Needs>,
) -> Result<Principal, ConfigError> {
    let PrincipalConfig {
        any: any_value,
        header: header_config,
        url_path: path,
        and_ids,
        or_ids,
        not_id,
        direct_remote_ip,
        remote_ip,
    } = config;
    one_kind(&[
        ("any", any_value.is_some()),
        ("header", header_config.is_some()),
        ("url_path", path.is_some()),
        ("and_ids", and_ids.is_some()),
        ("or_ids", or_ids.is_some()),
        ("not_id", not_id.is_some()),
        ("direct_remote_ip", direct_remote_ip.is_some()),
        ("remote_ip", remote_ip.is_some()),
    ])?;
    if let Some(value) = any_value {
        any(value)?;
        return Ok(Principal::Any);
    }
    if let Some(config) = header_config {
        return Ok(Principal::Header(header(config, needs)?));
    }
    if let Some(config) = path {
        return Ok(Principal::UrlPath(url_path(config, needs)?));
    }
    if let Some(set) = and_ids {
        return Ok(Principal::And(
            principal_set(set, hops, needs).map_err(|e| e.within("and_ids"))?,
        ));
    }
    if let Some(set) = or_ids {
        return Ok(Principal::Or(
            principal_set(set, hops, needs).map_err(|e| e.within("or_ids"))?,
        ));
    }
    if let Some(id) = not_id {
        return Ok(Principal::Not(Box::new(
            principal(*id, hops, needs).map_err(|e| e.within("not_id"))?,
        )));
    }
    if let Some(range) = direct_remote_ip {
        mark(needs, |n| n.source = true);
        return Ok(Principal::DirectRemoteIp(
            range.compile().map_err(|e| e.within("direct_remote_ip"))?,
        ));
    }
    let range = remote_ip.unwrap_or_default();
    mark(needs, |n| {
        n.source = true;
        n.xff |= hops > 0;
    });
    Ok(Principal::RemoteIp(
        range.compile().map_err(|e| e.within("remote_ip"))?,
    ))
}

fn principal_set(
    set: PrincipalSet,
    hops: u32,
    needs: &Cell<Needs>,
) -> Result<Vec<Principal>, ConfigError> {
    if set.ids.is_empty() {
        return Err(ConfigError::new("ids", "needs at least one"));
    }
    validate_each("ids", set.ids, |p| principal(p, hops, needs))
}
