//! Renders a filter's manifests from its deploy metadata and example configuration.

use crate::deploy::{Deploy, Image, Upstream};
use serde_json::{json, Value};

/// The Envoy type of a wasm HTTP filter's config.
pub const WASM_TYPE_URL: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";

/// Prefix of the Envoy filter and extension-config names the EnvoyFilter form uses.
pub const ENVOY_NAME_PREFIX: &str = "proxy-wasm-filters";

/// One generated file: its name inside `istio/<filter>/` and its documents.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// File name (`wasmplugin.yaml`).
    pub file: &'static str,
    /// The YAML documents, in order.
    pub docs: Vec<Value>,
}

/// Every manifest of `filter`.
pub fn manifests(filter: &str, deploy: &Deploy, image: &Image) -> Vec<Manifest> {
    let mut out = vec![
        Manifest {
            file: "wasmplugin.yaml",
            docs: vec![wasm_plugin(filter, deploy, image)],
        },
        Manifest {
            file: "envoyfilter.yaml",
            docs: vec![envoy_filter(filter, deploy, image)],
        },
    ];
    if !deploy.upstreams.is_empty() {
        out.push(Manifest {
            file: "upstreams.yaml",
            docs: deploy
                .upstreams
                .iter()
                .flat_map(|upstream| upstream_docs(filter, upstream))
                .collect(),
        });
    }
    out
}

/// The `extensions.istio.io/v1alpha1` WasmPlugin.
pub fn wasm_plugin(filter: &str, deploy: &Deploy, image: &Image) -> Value {
    let mut spec = json!({
        "selector": {"matchLabels": deploy.selector},
        "url": image.url,
        "imagePullPolicy": deploy.image_pull_policy,
        "phase": deploy.phase,
        "priority": deploy.priority,
        "failStrategy": deploy.fail_strategy,
        "match": [{"mode": "SERVER"}],
        "pluginConfig": deploy.plugin_config,
    });
    if let Some(sha256) = &image.sha256 {
        spec["sha256"] = json!(sha256);
    }
    if !deploy.vm_env.is_empty() {
        let env: Vec<Value> = deploy
            .vm_env
            .iter()
            .map(|env| json!({"name": env.name, "value": env.value}))
            .collect();
        spec["vmConfig"] = json!({ "env": env });
    }
    json!({
        "apiVersion": "extensions.istio.io/v1alpha1",
        "kind": "WasmPlugin",
        "metadata": {"name": filter},
        "spec": spec,
    })
}

/// The Envoy filter and extension-config name of `filter` in the EnvoyFilter form.
pub fn envoy_name(filter: &str) -> String {
    format!("{ENVOY_NAME_PREFIX}.{filter}")
}

/// The `networking.istio.io/v1alpha3` EnvoyFilter, ECDS form: the module and its configuration
/// as an extension config, and an HTTP filter that discovers it by name.
pub fn envoy_filter(filter: &str, deploy: &Deploy, image: &Image) -> Value {
    let name = envoy_name(filter);
    let mut remote = json!({
        "http_uri": {"uri": image.url, "cluster": "_", "timeout": "30s"},
    });
    if let Some(sha256) = &image.sha256 {
        remote["sha256"] = json!(sha256);
    }
    // istio-agent reads `fail_open` (not Envoy's newer `failure_policy`) to decide whether a
    // failed module pull is NACKed.
    let fail_open = deploy.fail_strategy == "FAIL_OPEN";
    let extension = json!({
        "name": name,
        "typed_config": {
            "@type": WASM_TYPE_URL,
            "config": {
                "name": name,
                "root_id": "",
                "fail_open": fail_open,
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": canonical_json(&deploy.plugin_config),
                },
                "vm_config": {
                    "vm_id": name,
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"remote": remote},
                },
            },
        },
    });
    json!({
        "apiVersion": "networking.istio.io/v1alpha3",
        "kind": "EnvoyFilter",
        "metadata": {"name": filter},
        "spec": {
            "workloadSelector": {"labels": deploy.selector},
            "priority": deploy.envoy_filter_priority,
            "configPatches": [
                {
                    "applyTo": "EXTENSION_CONFIG",
                    "patch": {"operation": "ADD", "value": extension},
                },
                {
                    "applyTo": "HTTP_FILTER",
                    "match": {
                        "context": "SIDECAR_INBOUND",
                        "listener": {"filterChain": {"filter": {
                            "name": "envoy.filters.network.http_connection_manager",
                            "subFilter": {"name": "envoy.filters.http.router"},
                        }}},
                    },
                    "patch": {
                        "operation": "INSERT_BEFORE",
                        "value": {
                            "name": name,
                            "config_discovery": {
                                "config_source": {"ads": {}, "initial_fetch_timeout": "0s"},
                                "type_urls": [WASM_TYPE_URL],
                            },
                        },
                    },
                },
            ],
        },
    })
}

/// A ServiceEntry that gives the mesh the cluster `outbound|<port>||<host>`, and a
/// DestinationRule that makes that cluster speak TLS (callouts send plain HTTP to the cluster).
pub fn upstream_docs(filter: &str, upstream: &Upstream) -> Vec<Value> {
    let name = format!("{filter}-{}", upstream.host.replace('.', "-"));
    vec![
        json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "ServiceEntry",
            "metadata": {"name": name},
            "spec": {
                "hosts": [upstream.host],
                "location": "MESH_EXTERNAL",
                "resolution": "DNS",
                "ports": [{"number": upstream.port, "name": "https", "protocol": "HTTPS"}],
            },
        }),
        json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "DestinationRule",
            "metadata": {"name": name},
            "spec": {
                "host": upstream.host,
                "trafficPolicy": {"tls": {"mode": "SIMPLE", "sni": upstream.host}},
            },
        }),
    ]
}

/// The YAML text of a manifest: a header naming its source, then the documents with keys sorted.
pub fn to_yaml(filter: &str, manifest: &Manifest) -> Result<String, String> {
    let mut text = format!(
        "# Generated by `make istio` from istio/{filter}/deploy.json (and image.json when present).\n\
         # Edit those, not this file: `make istio-validate` fails on any difference.\n"
    );
    text.push_str(&documents_yaml(&manifest.docs)?);
    Ok(text)
}

/// YAML documents, each after a `---` line, with keys sorted.
pub fn documents_yaml(docs: &[Value]) -> Result<String, String> {
    let mut text = String::new();
    for doc in docs {
        text.push_str("---\n");
        let yaml = serde_yaml_ng::to_string(&sorted(doc)).map_err(|e| e.to_string())?;
        text.push_str(&yaml);
    }
    Ok(text)
}

/// JSON text with object keys sorted, the same whichever map order serde_json was built with.
pub fn canonical_json(value: &Value) -> String {
    serde_json::to_string(&sorted(value)).unwrap_or_default()
}

/// A copy of `value` whose object keys are in sorted order, whatever serde_json's map keeps.
fn sorted(value: &Value) -> serde_yaml_ng::Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut out = serde_yaml_ng::Mapping::new();
            for key in keys {
                out.insert(serde_yaml_ng::Value::String(key.clone()), sorted(&map[key]));
            }
            serde_yaml_ng::Value::Mapping(out)
        }
        Value::Array(items) => serde_yaml_ng::Value::Sequence(items.iter().map(sorted).collect()),
        Value::String(s) => serde_yaml_ng::Value::String(s.clone()),
        Value::Bool(b) => serde_yaml_ng::Value::Bool(*b),
        Value::Number(n) => serde_yaml_ng::to_value(n).unwrap_or(serde_yaml_ng::Value::Null),
        Value::Null => serde_yaml_ng::Value::Null,
    }
}
