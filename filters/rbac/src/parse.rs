//! Reads [`RbacConfig`] from a JSON value by hand, with field paths in errors. serde's derived
//! visitors for the nested permission and principal types (with sdk-ext's path tracking
//! around each) made the module about 100 KB bigger; this reader is the one the filter runs. The
//! serde derives stay for the JSON Schema and for `sdk_ext::config::load::<RbacConfig>` (Istio's
//! offline checks), and `tests/unit.rs` checks that both readers accept and refuse the same
//! configurations at the same paths.

use crate::config::{
    Int32Range, PathMatcherConfig, PermissionConfig, PermissionSet, PolicyConfig, PrincipalConfig,
    PrincipalSet, RbacConfig, RulesConfig, UNSUPPORTED_NATIVE_NAMES,
};
use crate::engine::Action;
use sdk_ext::config::ConfigError;
use sdk_ext::matcher::{HeaderMatcherConfig, RegexConfig, StringMatcherConfig};
use sdk_ext::net::CidrRangeConfig;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

type Object = Map<String, Value>;

/// Reads the whole configuration.
pub fn rbac_config(value: &Value) -> Result<RbacConfig, ConfigError> {
    let map = object(
        value,
        &[
            "rules",
            "shadow_rules",
            "rules_stat_prefix",
            "shadow_rules_stat_prefix",
            "xff_num_trusted_hops",
        ],
    )?;
    Ok(RbacConfig {
        rules: optional(map, "rules", rules)?,
        shadow_rules: optional(map, "shadow_rules", rules)?,
        rules_stat_prefix: optional(map, "rules_stat_prefix", string)?.unwrap_or_default(),
        shadow_rules_stat_prefix: optional(map, "shadow_rules_stat_prefix", string)?
            .unwrap_or_default(),
        xff_num_trusted_hops: optional(map, "xff_num_trusted_hops", unsigned)?.unwrap_or(0),
    })
}

fn rules(value: &Value) -> Result<RulesConfig, ConfigError> {
    let map = object(value, &["action", "policies"])?;
    let mut policies = BTreeMap::new();
    if let Some(value) = present(map, "policies") {
        let Value::Object(entries) = value else {
            return Err(wrong_type(value, "a map of policies").within("policies"));
        };
        for (name, value) in entries {
            let policy = policy(value).map_err(|e| e.within(&format!("policies.{name}")))?;
            policies.insert(name.clone(), policy);
        }
    }
    Ok(RulesConfig {
        action: optional(map, "action", action)?.unwrap_or_default(),
        policies,
    })
}

fn action(value: &Value) -> Result<Action, ConfigError> {
    let names = [
        ("ALLOW", Action::Allow),
        ("DENY", Action::Deny),
        ("LOG", Action::Log),
    ];
    let found = match value {
        Value::String(name) => names.iter().find(|(known, _)| known == name),
        Value::Number(number) => number
            .as_u64()
            .and_then(|index| usize::try_from(index).ok())
            .and_then(|index| names.get(index)),
        _ => None,
    };
    found.map(|&(_, action)| action).ok_or_else(|| {
        ConfigError::new(
            "",
            "invalid value, expected ALLOW, DENY or LOG (or 0, 1, 2)",
        )
    })
}

fn policy(value: &Value) -> Result<PolicyConfig, ConfigError> {
    let map = object(value, &["permissions", "principals"])?;
    Ok(PolicyConfig {
        permissions: list(map, "permissions", permission)?,
        principals: list(map, "principals", principal)?,
    })
}

const PERMISSION_FIELDS: &[&str] = &[
    "any",
    "header",
    "url_path",
    "and_rules",
    "or_rules",
    "not_rule",
    "destination_port",
    "destination_port_range",
    "destination_ip",
];

fn permission(value: &Value) -> Result<PermissionConfig, ConfigError> {
    let map = object(value, PERMISSION_FIELDS)?;
    Ok(PermissionConfig {
        any: optional(map, "any", boolean)?,
        header: optional(map, "header", header)?,
        url_path: optional(map, "url_path", path_matcher)?,
        and_rules: optional(map, "and_rules", permission_set)?,
        or_rules: optional(map, "or_rules", permission_set)?,
        not_rule: optional(map, "not_rule", |v| permission(v).map(Box::new))?,
        destination_port: optional(map, "destination_port", unsigned)?,
        destination_port_range: optional(map, "destination_port_range", int32_range)?,
        destination_ip: optional(map, "destination_ip", cidr)?,
    })
}

fn permission_set(value: &Value) -> Result<PermissionSet, ConfigError> {
    let map = object(value, &["rules"])?;
    Ok(PermissionSet {
        rules: list(map, "rules", permission)?,
    })
}

const PRINCIPAL_FIELDS: &[&str] = &[
    "any",
    "header",
    "url_path",
    "and_ids",
    "or_ids",
    "not_id",
    "direct_remote_ip",
    "remote_ip",
];

fn principal(value: &Value) -> Result<PrincipalConfig, ConfigError> {
    let map = object(value, PRINCIPAL_FIELDS)?;
    Ok(PrincipalConfig {
        any: optional(map, "any", boolean)?,
        header: optional(map, "header", header)?,
        url_path: optional(map, "url_path", path_matcher)?,
        and_ids: optional(map, "and_ids", principal_set)?,
        or_ids: optional(map, "or_ids", principal_set)?,
        not_id: optional(map, "not_id", |v| principal(v).map(Box::new))?,
        direct_remote_ip: optional(map, "direct_remote_ip", cidr)?,
        remote_ip: optional(map, "remote_ip", cidr)?,
    })
}

fn principal_set(value: &Value) -> Result<PrincipalSet, ConfigError> {
    let map = object(value, &["ids"])?;
    Ok(PrincipalSet {
        ids: list(map, "ids", principal)?,
    })
}

fn cidr(value: &Value) -> Result<CidrRangeConfig, ConfigError> {
    let map = object(value, &["address_prefix", "prefix_len"])?;
    Ok(CidrRangeConfig {
        address_prefix: required(map, "address_prefix", string)?,
        prefix_len: optional(map, "prefix_len", unsigned)?,
    })
}

fn int32_range(value: &Value) -> Result<Int32Range, ConfigError> {
    let map = object(value, &["start", "end"])?;
    Ok(Int32Range {
        start: optional(map, "start", signed)?.unwrap_or(0),
        end: optional(map, "end", signed)?.unwrap_or(0),
    })
}

fn path_matcher(value: &Value) -> Result<PathMatcherConfig, ConfigError> {
    let map = object(value, &["path"])?;
    Ok(PathMatcherConfig {
        path: required(map, "path", string_matcher)?,
    })
}

fn regex(value: &Value) -> Result<RegexConfig, ConfigError> {
    let map = object(value, &["regex"])?;
    Ok(RegexConfig {
        regex: required(map, "regex", string)?,
    })
}

fn string_matcher(value: &Value) -> Result<StringMatcherConfig, ConfigError> {
    let map = object(
        value,
        &[
            "exact",
            "prefix",
            "suffix",
            "contains",
            "safe_regex",
            "ignore_case",
        ],
    )?;
    Ok(StringMatcherConfig {
        exact: optional(map, "exact", string)?,
        prefix: optional(map, "prefix", string)?,
        suffix: optional(map, "suffix", string)?,
        contains: optional(map, "contains", string)?,
        safe_regex: optional(map, "safe_regex", regex)?,
        ignore_case: optional(map, "ignore_case", boolean)?.unwrap_or(false),
    })
}

fn header(value: &Value) -> Result<HeaderMatcherConfig, ConfigError> {
    let map = object(
        value,
        &[
            "name",
            "exact_match",
            "prefix_match",
            "suffix_match",
            "contains_match",
            "safe_regex_match",
            "present_match",
            "string_match",
            "invert_match",
            "treat_missing_header_as_empty",
        ],
    )?;
    Ok(HeaderMatcherConfig {
        name: required(map, "name", string)?,
        exact_match: optional(map, "exact_match", string)?,
        prefix_match: optional(map, "prefix_match", string)?,
        suffix_match: optional(map, "suffix_match", string)?,
        contains_match: optional(map, "contains_match", string)?,
        safe_regex_match: optional(map, "safe_regex_match", regex)?,
        present_match: optional(map, "present_match", boolean)?,
        string_match: optional(map, "string_match", string_matcher)?,
        invert_match: optional(map, "invert_match", boolean)?.unwrap_or(false),
        treat_missing_header_as_empty: optional(map, "treat_missing_header_as_empty", boolean)?
            .unwrap_or(false),
    })
}

// ---------------------------------------------------------------------------------------------
// Plumbing: every error names its path (relative, joined by the callers with `within`).

/// `value` as an object whose keys are all in `fields`.
fn object<'a>(value: &'a Value, fields: &[&str]) -> Result<&'a Object, ConfigError> {
    let Value::Object(map) = value else {
        return Err(wrong_type(value, "an object"));
    };
    match map.keys().find(|key| !fields.contains(&key.as_str())) {
        Some(key) => Err(unknown(key, fields)),
        None => Ok(map),
    }
}

/// serde's wording, or "not supported" for a native field this filter lacks.
fn unknown(key: &str, fields: &[&str]) -> ConfigError {
    let expected = fields
        .iter()
        .filter(|field| !UNSUPPORTED_NATIVE_NAMES.contains(field))
        .map(|field| format!("`{field}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let reason = format!("unknown field `{key}`, expected one of {expected}");
    if UNSUPPORTED_NATIVE_NAMES.contains(&key) {
        return ConfigError::new(
            key,
            format!(
                "not supported: `{key}` is a field of the native Envoy filter that this filter does not implement ({reason})"
            ),
        );
    }
    ConfigError::new(key, reason)
}

fn wrong_type(value: &Value, expected: &str) -> ConfigError {
    let found = match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    ConfigError::new("", format!("invalid type: {found}, expected {expected}"))
}

/// A field that is there and not `null` (proto3 JSON's "unset").
fn present<'a>(map: &'a Object, key: &str) -> Option<&'a Value> {
    map.get(key).filter(|value| !value.is_null())
}

fn optional<T>(
    map: &Object,
    key: &str,
    read: fn(&Value) -> Result<T, ConfigError>,
) -> Result<Option<T>, ConfigError> {
    present(map, key)
        .map(|value| read(value).map_err(|e| e.within(key)))
        .transpose()
}

fn required<T>(
    map: &Object,
    key: &str,
    read: fn(&Value) -> Result<T, ConfigError>,
) -> Result<T, ConfigError> {
    optional(map, key, read)?.ok_or_else(|| ConfigError::new("", format!("missing field `{key}`")))
}

fn list<T>(
    map: &Object,
    key: &str,
    read: fn(&Value) -> Result<T, ConfigError>,
) -> Result<Vec<T>, ConfigError> {
    let Some(value) = present(map, key) else {
        return Ok(Vec::new());
    };
    let Value::Array(items) = value else {
        return Err(wrong_type(value, "a list").within(key));
    };
    items
        .iter()
        .enumerate()
        .map(|(index, item)| read(item).map_err(|e| e.within(&format!("{key}[{index}]"))))
        .collect()
}

fn string(value: &Value) -> Result<String, ConfigError> {
    match value {
        Value::String(text) => Ok(text.clone()),
        other => Err(wrong_type(other, "a string")),
    }
}

fn boolean(value: &Value) -> Result<bool, ConfigError> {
    match value {
        Value::Bool(flag) => Ok(*flag),
        other => Err(wrong_type(other, "a boolean")),
    }
}

fn unsigned(value: &Value) -> Result<u32, ConfigError> {
    match value {
        Value::Number(number) => number
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| {
                ConfigError::new(
                    "",
                    "invalid value: expected an integer from 0 to 4294967295",
                )
            }),
        other => Err(wrong_type(other, "an integer")),
    }
}

fn signed(value: &Value) -> Result<i64, ConfigError> {
    match value {
        Value::Number(number) => number
            .as_i64()
            .ok_or_else(|| ConfigError::new("", "invalid value: expected an integer")),
        other => Err(wrong_type(other, "an integer")),
    }
}
