//! `make istio-validate`: checks the committed manifests as they are. Each finding names the
//! file and the field path.

use crate::deploy::load_deploy;
use crate::filters;
use crate::generate::WASM_TYPE_URL;
use crate::schema::{self, Document, Models};
use crate::service;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// One problem in one file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Finding {
    /// The file, relative to the root (with the document number when the file holds several).
    pub file: String,
    /// Dotted field path inside the document (`spec.pluginConfig.rules[0].match`).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}: {}: {}", self.file, self.path, self.message)
        }
    }
}

/// WasmPlugin phases in the order Istio inserts them into the chain.
const PHASES: &[&str] = &["AUTHN", "AUTHZ", "STATS"];

/// URL schemes Istio fetches a module from (its CRD rule; no scheme means `oci`).
const URL_SCHEMES: &[&str] = &["oci", "http", "https", "file"];

/// Reads every YAML document of a file as JSON.
pub fn read_yaml_docs(path: &Path) -> Result<Vec<Value>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).map_err(|e| format!("{}: {e}", path.display())))
        .collect()
}

/// Checks every committed manifest under `root`: the generator's output, Istio's CRD schemas and
/// Kubernetes' API schemas (from the packages in `models`), and the rules the schemas cannot
/// express.
pub fn check(root: &Path, models: &Models) -> Result<Vec<Finding>, String> {
    let mut findings = Vec::new();
    let generated = crate::generate_all(root)?;
    let mut loaded: Vec<(String, Value)> = Vec::new();
    for file in &generated {
        let label = file.path.to_string_lossy().into_owned();
        let path = root.join(&file.path);
        let Ok(committed) = std::fs::read_to_string(&path) else {
            findings.push(finding(&label, "", "missing: run `make istio`"));
            continue;
        };
        if let Some(message) = first_difference(&committed, &file.text) {
            findings.push(finding(&label, "", &message));
        }
        if path.extension().is_none_or(|ext| ext != "yaml") {
            continue;
        }
        match read_yaml_docs(&path) {
            Ok(docs) => {
                let many = docs.len() > 1;
                for (index, doc) in docs.into_iter().enumerate() {
                    let label = if many {
                        format!("{label} (document {})", index + 1)
                    } else {
                        label.clone()
                    };
                    loaded.push((label, doc));
                }
            }
            Err(e) => findings.push(finding(&label, "", &e)),
        }
    }
    let documents: Vec<Document> = loaded
        .iter()
        .map(|(file, value)| Document { file, value })
        .collect();
    findings.extend(schema::validate(models, &documents)?);
    findings.extend(config_schemas(root, models, &loaded)?);
    findings.extend(semantic(root, &loaded)?);
    findings.extend(service::check(&loaded));
    Ok(findings)
}

/// Each WasmPlugin's `pluginConfig` against its filter's committed `config.schema.json`.
fn config_schemas(
    root: &Path,
    models: &Models,
    docs: &[(String, Value)],
) -> Result<Vec<Finding>, String> {
    let mut schemas = Vec::new();
    for (file, doc) in docs {
        let Some(filter) = filter_of(file) else {
            continue;
        };
        if doc["kind"] != "WasmPlugin" {
            continue;
        }
        let path = root
            .join("istio")
            .join(filter)
            .join(crate::CONFIG_SCHEMA_FILE);
        // A missing or unreadable schema is already a drift finding.
        let Some(schema) = std::fs::read_to_string(&path)
            .ok()
            .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        else {
            continue;
        };
        schemas.push((file, schema, &doc["spec"]["pluginConfig"]));
    }
    let configs: Vec<schema::PluginConfig> = schemas
        .iter()
        .map(|(file, schema, config)| schema::PluginConfig {
            file,
            path: "spec.pluginConfig",
            schema,
            config,
        })
        .collect();
    schema::validate_configs(models, &configs)
}

fn finding(file: &str, path: &str, message: &str) -> Finding {
    Finding {
        file: file.to_string(),
        path: path.to_string(),
        message: message.to_string(),
    }
}

/// Where a committed file stops matching the generator, or `None` when it matches byte for byte.
pub fn first_difference(committed: &str, generated: &str) -> Option<String> {
    if committed == generated {
        return None;
    }
    let mut committed_lines = committed.lines();
    let mut generated_lines = generated.lines();
    for line in 1.. {
        let (have, want) = (committed_lines.next(), generated_lines.next());
        if have != want || (have.is_none() && want.is_none()) {
            return Some(format!(
                "differs from what `make istio` generates at line {line} (file: {:?}, generated: {:?}); edit deploy.json (or the filter's config types) and run `make istio` instead of editing this file",
                have.unwrap_or("<end>"),
                want.unwrap_or("<end>")
            ));
        }
    }
    None
}

/// The filter a manifest belongs to: its directory under `istio/` (none for the rate limit
/// service's manifests, which `service::check` judges).
fn filter_of(file: &str) -> Option<&str> {
    if service::is_service_file(file) {
        return None;
    }
    file.strip_prefix("istio/")?.split('/').next()
}

/// Where a WasmPlugin runs: phase rank, then higher priority first.
type Position = (usize, i64);

/// The rules Istio's schemas cannot express.
fn semantic(root: &Path, docs: &[(String, Value)]) -> Result<Vec<Finding>, String> {
    let mut findings = Vec::new();
    let mut plugin_positions: BTreeMap<String, (String, Position)> = BTreeMap::new();
    let mut envoy_filter_priorities: BTreeMap<String, (String, i64)> = BTreeMap::new();
    for (file, doc) in docs {
        let Some(filter) = filter_of(file) else {
            continue;
        };
        let Some(kind) = filters::kind(filter) else {
            findings.push(finding(
                file,
                "",
                "no filter of this name in istio/src/filters.rs",
            ));
            continue;
        };
        let mut add = |path: &str, message: String| findings.push(finding(file, path, &message));
        match doc["kind"].as_str() {
            Some("WasmPlugin") => {
                let spec = &doc["spec"];
                if doc["apiVersion"] != "extensions.istio.io/v1alpha1" {
                    add("apiVersion", "must be extensions.istio.io/v1alpha1".into());
                }
                let selectors = ["selector", "targetRef", "targetRefs"]
                    .into_iter()
                    .filter(|key| !spec[*key].is_null())
                    .collect::<Vec<_>>();
                if selectors.len() > 1 {
                    add(
                        "spec",
                        format!("{} are exclusive: set one", selectors.join(" and ")),
                    );
                }
                check_url(
                    (spec["url"].as_str(), "spec.url"),
                    (spec["sha256"].as_str(), "spec.sha256"),
                    &mut add,
                );
                let phase = spec["phase"].as_str().unwrap_or("UNSPECIFIED_PHASE");
                match PHASES.iter().position(|known| *known == phase) {
                    None => add(
                        "spec.phase",
                        format!(
                            "{phase} leaves the position in the chain unspecified; use one of {}",
                            PHASES.join(", ")
                        ),
                    ),
                    Some(rank) => {
                        let priority = spec["priority"].as_i64().unwrap_or(0);
                        plugin_positions
                            .insert(filter.to_string(), (file.clone(), (rank, -priority)));
                    }
                }
                if let Some((required, why)) = filters::required_phase(kind, &spec["pluginConfig"])
                {
                    if phase != required {
                        add("spec.phase", format!("must be {required}: {why}"));
                    }
                }
                check_plugin_config(kind, &spec["pluginConfig"], "spec.pluginConfig", &mut add);
            }
            Some("EnvoyFilter") => {
                if doc["apiVersion"] != "networking.istio.io/v1alpha3" {
                    add("apiVersion", "must be networking.istio.io/v1alpha3".into());
                }
                let spec = &doc["spec"];
                check_envoy_filter(kind, spec, &mut add);
                if let Some(priority) = spec["priority"].as_i64() {
                    envoy_filter_priorities.insert(filter.to_string(), (file.clone(), priority));
                }
            }
            _ => {}
        }
    }
    // Ordering between filters, as each filter's deploy.json asks (`after`).
    for (filter, (file, position)) in &plugin_positions {
        let deploy = load_deploy(&root.join("istio").join(filter))?;
        for before in &deploy.after {
            if let Some((_, earlier)) = plugin_positions.get(before) {
                if earlier >= position {
                    findings.push(finding(
                        file,
                        "spec.phase",
                        &format!("must place {filter} after {before} (a later phase, or a lower priority in the same phase)"),
                    ));
                }
            }
            if let (Some((file, mine)), Some((_, theirs))) = (
                envoy_filter_priorities.get(filter),
                envoy_filter_priorities.get(before),
            ) {
                if theirs >= mine {
                    findings.push(finding(
                        file,
                        "spec.priority",
                        &format!("must be higher than {before}'s ({theirs}) so {filter} is inserted after it"),
                    ));
                }
            }
        }
    }
    let mut seen: BTreeMap<Position, &str> = BTreeMap::new();
    for (filter, (file, position)) in &plugin_positions {
        if let Some(other) = seen.insert(*position, filter) {
            findings.push(finding(
                file,
                "spec.priority",
                &format!("same phase and priority as {other}: their order is undefined"),
            ));
        }
    }
    Ok(findings)
}

/// The module URL: a scheme Istio fetches from, and a digest where the URL alone proves nothing.
fn check_url(
    (url, url_path): (Option<&str>, &str),
    (sha256, sha256_path): (Option<&str>, &str),
    add: &mut impl FnMut(&str, String),
) {
    let Some(url) = url else {
        add(url_path, "missing".into());
        return;
    };
    let scheme = url.split_once("://").map(|(scheme, _)| scheme);
    match scheme {
        None => add(
            url_path,
            format!("{url:?} has no scheme; write oci://, https:// or file:// explicitly"),
        ),
        Some(scheme) if !URL_SCHEMES.contains(&scheme) => add(
            url_path,
            format!(
                "scheme {scheme:?} is not one Istio fetches from ({})",
                URL_SCHEMES.join(", ")
            ),
        ),
        Some("http" | "https") if sha256.is_none() => add(
            sha256_path,
            "required for an http(s) module: without it any bytes at the URL are loaded".into(),
        ),
        _ => {}
    }
    if let Some(sha256) = sha256 {
        if sha256.len() != 64
            || !sha256
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            add(sha256_path, "must be 64 lower-case hex digits".into());
        }
    }
}

/// Loads a plugin configuration with the filter's own loader.
fn check_plugin_config(
    kind: &filters::FilterKind,
    config: &Value,
    at: &str,
    add: &mut impl FnMut(&str, String),
) {
    check_config_bytes(kind, config.to_string().as_bytes(), at, add);
}

fn check_config_bytes(
    kind: &filters::FilterKind,
    bytes: &[u8],
    at: &str,
    add: &mut impl FnMut(&str, String),
) {
    if let Err(error) = (kind.load_config)(bytes) {
        let path = sdk_ext::config::join_path(at, &error.path);
        add(
            &path,
            format!("rejected by {}: {}", kind.name, error.reason),
        );
    }
}

/// The ECDS pair: an extension config with the module and configuration, and an HTTP filter that
/// discovers it by the same name.
fn check_envoy_filter(
    kind: &filters::FilterKind,
    spec: &Value,
    add: &mut impl FnMut(&str, String),
) {
    let patches = spec["configPatches"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let relative = patches.iter().any(|patch| {
        matches!(
            patch["patch"]["operation"].as_str(),
            Some("INSERT_BEFORE" | "INSERT_AFTER" | "REPLACE" | "MERGE" | "REMOVE")
        )
    });
    if relative && spec["priority"].as_i64().unwrap_or(0) == 0 {
        add(
            "spec.priority",
            "must be set: a relative patch without a priority may be applied before its anchor exists (istioctl analyze IST0151)".into(),
        );
    }
    let find = |apply_to: &str| {
        patches
            .iter()
            .position(|patch| patch["applyTo"] == apply_to)
            .map(|index| (index, &patches[index]))
    };
    let Some((ext_index, extension)) = find("EXTENSION_CONFIG") else {
        add(
            "spec.configPatches",
            "needs an EXTENSION_CONFIG patch".into(),
        );
        return;
    };
    let Some((http_index, http_filter)) = find("HTTP_FILTER") else {
        add("spec.configPatches", "needs an HTTP_FILTER patch".into());
        return;
    };
    let ext_at = format!("spec.configPatches[{ext_index}].patch.value");
    let http_at = format!("spec.configPatches[{http_index}].patch.value");
    let value = &extension["patch"]["value"];
    let name = value["name"].as_str().unwrap_or_default();
    let discovery = &http_filter["patch"]["value"];
    if discovery["name"].as_str() != Some(name) || name.is_empty() {
        add(
            &format!("{http_at}.name"),
            format!("must equal the extension config's name {name:?}"),
        );
    }
    let type_urls = &discovery["config_discovery"]["type_urls"];
    if !type_urls
        .as_array()
        .is_some_and(|urls| urls.iter().any(|url| url == WASM_TYPE_URL))
    {
        add(
            &format!("{http_at}.config_discovery.type_urls"),
            format!("must list {WASM_TYPE_URL}"),
        );
    }
    let config = &value["typed_config"]["config"];
    let remote = &config["vm_config"]["code"]["remote"];
    let remote_at = format!("{ext_at}.typed_config.config.vm_config.code.remote");
    check_url(
        (
            remote["http_uri"]["uri"].as_str(),
            &format!("{remote_at}.http_uri.uri"),
        ),
        (remote["sha256"].as_str(), &format!("{remote_at}.sha256")),
        add,
    );
    let configuration = &config["configuration"]["value"];
    let at = format!("{ext_at}.typed_config.config.configuration.value");
    match configuration.as_str() {
        Some(text) => check_config_bytes(kind, text.as_bytes(), &at, add),
        None => add(
            &at,
            "must be the plugin configuration as a JSON string".into(),
        ),
    }
}
