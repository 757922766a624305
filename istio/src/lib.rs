//! Istio delivery of the filters: `make istio` writes each filter's WasmPlugin, EnvoyFilter and
//! upstream manifests from `istio/<filter>/deploy.json`; `make istio-validate` checks the
//! committed files against Istio's CRD schemas, the filters' own config loaders and the generator.

pub mod chain;
pub mod check;
pub mod deploy;
pub mod filters;
pub mod generate;
pub mod limits;
pub mod render;
pub mod schema;
pub mod service;

use std::path::{Path, PathBuf};

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The filter crates under `<root>/filters`, sorted.
pub fn filter_names(root: &Path) -> Result<Vec<String>, String> {
    let dir = root.join("filters");
    let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|entry| entry.path().join("Cargo.toml").is_file())
        .filter_map(|entry| entry.file_name().to_str().map(str::to_string))
        .collect();
    names.sort();
    Ok(names)
}

/// The JSON Schema of a filter's configuration, next to its manifests (for editors, and as
/// the reference of `pluginConfig`).
pub const CONFIG_SCHEMA_FILE: &str = "config.schema.json";

/// A generated file: its path relative to the root and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    /// `istio/<filter>/<file>`.
    pub path: PathBuf,
    /// The exact text the generator writes.
    pub text: String,
}

/// Every file `make istio` writes, from the sources under `<root>/istio`: each filter's, then the
/// rate limit service's (`istio/rate-limit-service/`).
pub fn generate_all(root: &Path) -> Result<Vec<GeneratedFile>, String> {
    let mut files = Vec::new();
    for filter in filter_names(root)? {
        let Some(kind) = filters::kind(&filter) else {
            return Err(format!(
                "filters/{filter} has no entry in istio/src/filters.rs (FILTERS): add its config loader there and an istio/{filter}/deploy.json"
            ));
        };
        let dir = root.join("istio").join(&filter);
        let deploy = deploy::load_deploy(&dir)?;
        let image = deploy::load_image(&dir, &filter)?;
        for manifest in generate::manifests(&filter, &deploy, &image) {
            files.push(GeneratedFile {
                path: Path::new("istio").join(&filter).join(manifest.file),
                text: generate::to_yaml(&filter, &manifest)?,
            });
        }
        let schema =
            serde_json::to_string_pretty(&(kind.config_schema)()).map_err(|e| e.to_string())?;
        files.push(GeneratedFile {
            path: Path::new("istio").join(&filter).join(CONFIG_SCHEMA_FILE),
            text: schema + "\n",
        });
    }
    files.extend(service::generate(root)?);
    Ok(files)
}

/// Writes every generated file under `root`; returns the paths written.
pub fn write_all(root: &Path) -> Result<Vec<PathBuf>, String> {
    let files = generate_all(root)?;
    for file in &files {
        let path = root.join(&file.path);
        std::fs::write(&path, &file.text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(files.into_iter().map(|file| file.path).collect())
}
