//! `filters/chain` built with its default features: one module holding the other filters, whose
//! configuration names them, `{"filters": [{"name": "jwt-auth", "config": {...}}, ...]}`.

use crate::filters::FilterKind;
use sdk_ext::config::ConfigError;
use sdk_ext::dispatch::Module;
use sdk_ext::fake::FakeModule;
use sdk_ext::filter::Factory;
use serde_json::{json, Map, Value};

/// The directory name of the module builder under `filters/` and `istio/`.
pub const NAME: &str = "chain";

/// The filters `chain.wasm` holds: the default features of `filters/chain/Cargo.toml`.
pub static FACTORIES: &[Factory] = &[
    Factory::of::<header_rewrite::filter::HeaderRewriteRoot>(),
    Factory::of::<jwt_auth::filter::JwtAuthRoot>(),
    Factory::of::<rate_limit::filter::RateLimitRoot>(),
    Factory::of::<basic_auth::filter::BasicAuthRoot>(),
    Factory::of::<cors::filter::CorsRoot>(),
    Factory::of::<rbac::filter::RbacRoot>(),
    Factory::of::<ext_authz::filter::ExtAuthzRoot>(),
    Factory::of::<json_redact::filter::JsonRedactRoot>(),
    Factory::of::<global_rate_limit::filter::GlobalRateLimitRoot>(),
];

/// Loads a chain configuration as `chain.wasm`'s `on_configure` does: sdk-ext's dispatcher parses
/// the list and runs each named filter's own `configure` on its `config`, on the in-memory host,
/// so an error reads `filters[i].config.<path>` exactly as the module logs it.
pub fn load_config(bytes: &[u8]) -> Result<(), ConfigError> {
    let module = FakeModule::new(Module::Chain(FACTORIES), bytes);
    match module.config_error() {
        Some(error) => Err(error.clone()),
        None if module.configured() => Ok(()),
        None => Err(ConfigError::new("", "refused by the chain module")),
    }
}

/// The registered filter a chain entry's `name` means (`jwt-auth` or `jwt_auth`).
pub fn entry_kind<'a>(kinds: &'a [FilterKind], name: &str) -> Option<&'a FilterKind> {
    let factory = FACTORIES.iter().find(|factory| factory.is_named(name))?;
    let name = factory.chain_name();
    kinds.iter().find(|kind| kind.name == name)
}

/// The filter names a chain configuration lists, in order (malformed entries are skipped: the
/// loader reports them).
pub fn entry_names(config: &Value) -> Vec<&str> {
    config["filters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|entry| entry["name"].as_str())
        .collect()
}

/// The JSON Schema of the chain configuration: each entry's `config` is checked against the
/// schema of the filter its `name` names (an `if`/`then` per filter), so editors flag a wrong
/// field inside a composed filter. The filters' own definitions move to `$defs` as
/// `<filter>` (its root) and `<filter>.<Type>`, so equal type names of two filters never clash.
pub fn config_schema(kinds: &[FilterKind]) -> schemars::Schema {
    let mut defs = Map::new();
    let mut names = Vec::new();
    let mut cases = Vec::new();
    for factory in FACTORIES {
        let name = factory.chain_name();
        let Some(kind) = kinds.iter().find(|kind| kind.name == name) else {
            continue;
        };
        let mut schema = (kind.config_schema)().to_value();
        let own_defs = schema
            .as_object_mut()
            .and_then(|root| {
                root.remove("$schema");
                root.remove("$defs")
            })
            .and_then(|defs| match defs {
                Value::Object(defs) => Some(defs),
                _ => None,
            })
            .unwrap_or_default();
        for (def, mut value) in own_defs {
            prefix_refs(&mut value, &name);
            defs.insert(format!("{name}.{def}"), value);
        }
        prefix_refs(&mut schema, &name);
        defs.insert(name.clone(), schema);
        let spellings: Vec<String> = if factory.name == name {
            vec![name.clone()]
        } else {
            vec![name.clone(), factory.name.to_string()]
        };
        cases.push(json!({
            "if": {"properties": {"name": {"enum": spellings}}, "required": ["name"]},
            "then": {"properties": {"config": {"$ref": format!("#/$defs/{name}")}}},
        }));
        names.extend(spellings);
    }
    let schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "ChainConfig",
        "description": "The chain module's configuration: the filters it runs, in request order (responses pass them in reverse).",
        "type": "object",
        "properties": {
            "filters": {
                "description": "The filters, in the order requests pass them; a filter may be listed more than once.",
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {
                            "description": "The filter (its directory name; `_` for `-` is accepted too).",
                            "enum": names,
                        },
                        "config": {
                            "description": "The filter's own configuration, as it reads it alone; absent means `{}`.",
                        },
                    },
                    "required": ["name"],
                    "additionalProperties": false,
                    "allOf": cases,
                },
            },
        },
        "required": ["filters"],
        "additionalProperties": false,
        "$defs": defs,
    });
    schemars::Schema::try_from(schema).unwrap_or_default()
}

/// Rewrites `#/$defs/<Type>` references to `#/$defs/<filter>.<Type>`.
fn prefix_refs(value: &mut Value, filter: &str) {
    match value {
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                match item {
                    Value::String(target) if key == "$ref" => {
                        if let Some(def) = target.strip_prefix("#/$defs/") {
                            *target = format!("#/$defs/{filter}.{def}");
                        }
                    }
                    _ => prefix_refs(item, filter),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| prefix_refs(item, filter)),
        _ => {}
    }
}
