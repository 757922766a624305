//! The single source of a filter's manifests: `istio/<filter>/deploy.json` (deploy metadata and
//! the example plugin configuration) and, once `make oci` has pushed it, `istio/<filter>/image.json`.

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// `istio/<filter>/deploy.json`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deploy {
    /// The module's file name without `.wasm` (`jwt_auth`), as `make build` writes it.
    pub module: String,
    /// WasmPlugin `phase`: AUTHN, AUTHZ or STATS.
    pub phase: String,
    /// WasmPlugin `priority`: higher runs first within a phase.
    pub priority: i32,
    /// WasmPlugin `failStrategy`: FAIL_CLOSE or FAIL_OPEN.
    pub fail_strategy: String,
    /// WasmPlugin `imagePullPolicy`: IfNotPresent or Always.
    pub image_pull_policy: String,
    /// EnvoyFilter `priority`: lower is applied first, so it sits earlier in the chain.
    pub envoy_filter_priority: i32,
    /// Filters that must run before this one (their directory names).
    #[serde(default)]
    pub after: Vec<String>,
    /// Labels of the example `selector`.
    pub selector: BTreeMap<String, String>,
    /// `vmConfig.env` entries, for filters that read environment variables.
    #[serde(default)]
    pub vm_env: Vec<VmEnv>,
    /// Hosts outside the mesh that the filter calls out to (a ServiceEntry and a
    /// DestinationRule each).
    #[serde(default)]
    pub upstreams: Vec<Upstream>,
    /// The example configuration, exactly as the filter reads it.
    pub plugin_config: Value,
}

/// One `vmConfig.env` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VmEnv {
    /// Variable name.
    pub name: String,
    /// Inline value.
    pub value: String,
}

/// An external host reached by a callout, through the cluster `outbound|<port>||<host>`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    /// DNS name.
    pub host: String,
    /// TLS port.
    pub port: u16,
}

impl Upstream {
    /// The Envoy cluster Istio builds for this host's ServiceEntry port.
    pub fn cluster(&self) -> String {
        format!("outbound|{}||{}", self.port, self.host)
    }
}

/// `istio/<filter>/image.json`, written by `make oci` after a push: where the image is and the
/// digest Istio checks (the image manifest's sha256, as istio-agent compares it for `oci://`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Image {
    /// `oci://registry/repository:tag`.
    pub url: String,
    /// Hex sha256 of the image manifest; absent means "pull by tag, unverified".
    #[serde(default)]
    pub sha256: Option<String>,
}

/// The image reference used until `make oci` writes `image.json`.
pub fn default_image(filter: &str) -> Image {
    Image {
        url: format!("oci://registry.example.com/proxy-wasm-filters/{filter}:0.1.0"),
        sha256: None,
    }
}

/// Reads `istio/<filter>/deploy.json`.
pub fn load_deploy(dir: &Path) -> Result<Deploy, String> {
    let path = dir.join("deploy.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Reads `istio/<filter>/image.json`, or the default image when there is none.
pub fn load_image(dir: &Path, filter: &str) -> Result<Image, String> {
    let path = dir.join("image.json");
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(default_image(filter)),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}
