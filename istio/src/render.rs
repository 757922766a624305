//! Turns a generated EnvoyFilter back into what Envoy runs, with the module as a local file, so a
//! real Envoy can check and serve it without a mesh.

use serde_json::{json, Value};
use std::path::Path;

/// The EXTENSION_CONFIG patch value of an EnvoyFilter document.
pub fn extension_config(envoy_filter: &Value) -> Result<&Value, String> {
    envoy_filter["spec"]["configPatches"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|patch| patch["applyTo"] == "EXTENSION_CONFIG")
        .map(|patch| &patch["patch"]["value"])
        .ok_or_else(|| "spec.configPatches has no EXTENSION_CONFIG patch".to_string())
}

/// The HTTP filter Envoy gets once istio-agent has fetched the module: the EXTENSION_CONFIG value
/// with `vm_config.code` pointing at `wasm` on disk.
pub fn local_http_filter(envoy_filter: &Value, wasm: &Path) -> Result<Value, String> {
    let mut extension = extension_config(envoy_filter)?.clone();
    let code = extension
        .pointer_mut("/typed_config/config/vm_config/code")
        .ok_or("the extension config has no typed_config.config.vm_config.code")?;
    *code = json!({"local": {"filename": wasm.to_string_lossy()}});
    Ok(json!({"name": extension["name"], "typed_config": extension["typed_config"]}))
}

/// Reads the single document of a YAML file as JSON.
pub fn read_yaml_doc(path: &Path) -> Result<Value, String> {
    let docs = crate::check::read_yaml_docs(path)?;
    match <[Value; 1]>::try_from(docs) {
        Ok([doc]) => Ok(doc),
        Err(docs) => Err(format!(
            "{}: expected one document, found {}",
            path.display(),
            docs.len()
        )),
    }
}
