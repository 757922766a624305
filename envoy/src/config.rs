//! Envoy bootstraps for tests, built as JSON: loopback listeners on port 0, an `upstream`
//! cluster, and wasm or native HTTP filters in front of the router.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// The optimized module of a filter, as `make build` leaves it (`$FILTER_WASM_DIR/<name>.wasm`).
/// Panics when it is missing or older than its sources, as [`test_host::filter_wasm`] does.
#[track_caller]
pub fn filter_wasm(name: &str) -> PathBuf {
    test_host::filter_wasm(name)
}

/// An HTTP filter entry that runs `wasm_file` in V8 with `config` as its plugin configuration.
pub fn wasm_filter(name: &str, wasm_file: &Path, config: &Value) -> Value {
    json!({
        "name": name,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": name,
                "root_id": "",
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": config.to_string()
                },
                "vm_config": {
                    "vm_id": name,
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": wasm_file.to_string_lossy()}}
                }
            }
        }
    })
}

/// A native Envoy HTTP filter entry: `type_name` is the part after
/// `type.googleapis.com/envoy.extensions.filters.http.`, e.g. `header_mutation.v3.HeaderMutation`.
pub fn native_filter(name: &str, type_name: &str, config: Value) -> Value {
    let mut typed_config = config;
    typed_config["@type"] = json!(format!(
        "type.googleapis.com/envoy.extensions.filters.http.{type_name}"
    ));
    json!({"name": name, "typed_config": typed_config})
}

/// A route to the `upstream` cluster for every path.
pub fn default_routes() -> Value {
    json!([{"match": {"prefix": "/"}, "route": {"cluster": "upstream"}}])
}

/// A bootstrap under construction.
#[derive(Debug, Clone)]
pub struct BootstrapBuilder {
    upstream_port: u16,
    listeners: Vec<Value>,
    clusters: Vec<Value>,
    stats_config: Option<Value>,
}

impl BootstrapBuilder {
    /// A bootstrap whose `upstream` cluster is 127.0.0.1:`upstream_port`.
    pub fn new(upstream_port: u16) -> Self {
        BootstrapBuilder {
            upstream_port,
            listeners: Vec::new(),
            clusters: Vec::new(),
            stats_config: None,
        }
    }

    /// Adds a listener on a free loopback port with these HTTP filters (the router is appended).
    pub fn listener(self, name: &str, http_filters: Vec<Value>) -> Self {
        self.listener_with_routes(name, http_filters, default_routes())
    }

    /// Adds a listener with these HTTP filters and routes (one virtual host matching `*`).
    pub fn listener_with_routes(
        mut self,
        name: &str,
        mut http_filters: Vec<Value>,
        routes: Value,
    ) -> Self {
        http_filters.push(json!({
            "name": "envoy.filters.http.router",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}
        }));
        self.listeners.push(json!({
            "name": name,
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
            "filter_chains": [{"filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    "stat_prefix": name,
                    "codec_type": "AUTO",
                    "route_config": {
                        "name": name,
                        "virtual_hosts": [{"name": name, "domains": ["*"], "routes": routes}]
                    },
                    "http_filters": http_filters
                }
            }]}]
        }));
        self
    }

    /// Adds a cluster of one loopback endpoint.
    pub fn cluster(mut self, name: &str, port: u16) -> Self {
        self.clusters.push(loopback_cluster(name, port));
        self
    }

    /// Adds a cluster of one loopback endpoint that speaks HTTP/2 only, as a gRPC service needs.
    pub fn grpc_cluster(mut self, name: &str, port: u16) -> Self {
        let mut cluster = loopback_cluster(name, port);
        cluster["typed_extension_protocol_options"] = json!({
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}}
            }
        });
        self.clusters.push(cluster);
        self
    }

    /// Sets the bootstrap's `stats_config` (stats tags, stats matcher).
    pub fn stats_config(mut self, stats_config: Value) -> Self {
        self.stats_config = Some(stats_config);
        self
    }

    /// The bootstrap as JSON.
    pub fn build(self) -> Value {
        let mut clusters = vec![loopback_cluster("upstream", self.upstream_port)];
        clusters.extend(self.clusters);
        let mut bootstrap = json!({
            "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
            "static_resources": {"listeners": self.listeners, "clusters": clusters}
        });
        if let Some(stats_config) = self.stats_config {
            bootstrap["stats_config"] = stats_config;
        }
        bootstrap
    }
}

/// A STATIC cluster with one endpoint on 127.0.0.1.
pub fn loopback_cluster(name: &str, port: u16) -> Value {
    json!({
        "name": name,
        "connect_timeout": "1s",
        "type": "STATIC",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}]
        }
    })
}

/// Fills a YAML template from `envoy/configs`: each `${NAME}` is replaced by its value.
pub fn fill_template(template: &str, values: &[(&str, String)]) -> Result<String, String> {
    let mut text = template.to_string();
    for (name, value) in values {
        text = text.replace(&format!("${{{name}}}"), value);
    }
    match text.find("${") {
        Some(at) => Err(format!(
            "unfilled placeholder near: {}",
            &text[at..text.len().min(at + 40)]
        )),
        None => Ok(text),
    }
}

/// The ports a config template under `envoy/configs` listens on and sends to.
#[derive(Debug, Clone, Copy)]
pub struct TemplatePorts {
    /// `${LISTEN_PORT}`: the listener (0 picks a free one).
    pub listen: u16,
    /// `${UPSTREAM_PORT}`: the upstream service.
    pub upstream: u16,
    /// `${JWKS_PORT}`: the server of the JWKS document.
    pub jwks: u16,
}

/// Fills every placeholder of a template under `envoy/configs`; the modules are this checkout's
/// optimized `.wasm` files (`$FILTER_WASM_DIR`).
pub fn fill_config(template: &str, ports: TemplatePorts) -> Result<String, String> {
    let wasm_dir = filter_wasm("x")
        .parent()
        .map(|dir| dir.to_string_lossy().into_owned())
        .unwrap_or_default();
    fill_template(
        template,
        &[
            ("LISTEN_PORT", ports.listen.to_string()),
            ("UPSTREAM_PORT", ports.upstream.to_string()),
            ("JWKS_PORT", ports.jwks.to_string()),
            ("FILTER_WASM_DIR", wasm_dir),
        ],
    )
}

/// Path of a config template under `envoy/configs`.
pub fn config_template(file: &str) -> PathBuf {
    crate::process::workspace_root()
        .join("envoy")
        .join("configs")
        .join(file)
}
