//! `make istio-validate` on the committed manifests, and on copies broken the ways a user would
//! break them: each failure names the file and the field path.

use istio_manifests::check::{check, Finding};
use istio_manifests::schema::Models;
use istio_manifests::service;
use istio_manifests::{filter_names, workspace_root, write_all};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A copy of the workspace's `istio/` sources and manifests, with the same filter names, and the
/// rate limit service's directory.
struct Copy {
    root: PathBuf,
}

impl Copy {
    fn new() -> Copy {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let root = std::env::temp_dir().join(format!(
            "istio-validate-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&root);
        let source = workspace_root();
        let mut dirs = Vec::new();
        for filter in filter_names(&source).unwrap() {
            let crate_dir = root.join("filters").join(&filter);
            std::fs::create_dir_all(&crate_dir).unwrap();
            std::fs::write(crate_dir.join("Cargo.toml"), "").unwrap();
            dirs.push(filter);
        }
        dirs.push(service::DIR.to_string());
        for dir in dirs {
            let from = source.join("istio").join(&dir);
            let to = root.join("istio").join(&dir);
            std::fs::create_dir_all(&to).unwrap();
            for entry in std::fs::read_dir(&from).unwrap() {
                let path = entry.unwrap().path();
                std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
            }
        }
        Copy { root }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.root.join(file)
    }

    /// Replaces `from` (which must occur) by `to` in `file`.
    fn edit(&self, file: &str, from: &str, to: &str) {
        let path = self.path(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{file} has no {from:?}");
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    }

    /// Edits a source file, then regenerates the manifests as `make istio` would.
    fn edit_source(&self, file: &str, from: &str, to: &str) {
        self.edit(file, from, to);
        write_all(&self.root).unwrap();
    }

    fn check(&self) -> Vec<Finding> {
        check(&self.root, &models()).unwrap()
    }
}

impl Drop for Copy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn models() -> Models {
    Models::locate(&workspace_root())
}

/// The findings about `file` at `path`, as text.
fn at(findings: &[Finding], file: &str, path: &str) -> Vec<String> {
    findings
        .iter()
        .filter(|f| f.file == file && f.path == path)
        .map(|f| f.to_string())
        .collect()
}

fn assert_one_containing(findings: &[Finding], file: &str, path: &str, text: &str) {
    let hits = at(findings, file, path);
    assert!(
        hits.iter().any(|hit| hit.contains(text)),
        "no finding at {file}: {path} containing {text:?}; all: {findings:#?}"
    );
}

#[test]
fn committed_manifests_are_valid_and_current() {
    let findings = check(&workspace_root(), &models()).unwrap();
    assert!(findings.is_empty(), "{findings:#?}");
}

#[test]
fn every_filter_has_manifests() {
    let root = workspace_root();
    for filter in filter_names(&root).unwrap() {
        for file in [
            "deploy.json",
            "wasmplugin.yaml",
            "envoyfilter.yaml",
            "config.schema.json",
        ] {
            let path = root.join("istio").join(&filter).join(file);
            assert!(path.is_file(), "{} is missing", path.display());
        }
    }
}

#[test]
fn a_hand_edit_fails_and_names_the_file_and_line() {
    let copy = Copy::new();
    let file = "istio/jwt-auth/wasmplugin.yaml";
    copy.edit(file, "  priority: 100\n", "  priority: 101\n");
    let findings = copy.check();
    assert_eq!(findings.len(), 1, "{findings:#?}");
    let message = findings[0].to_string();
    assert!(message.starts_with(file), "{message}");
    assert!(
        message.contains("differs from what `make istio` generates at line"),
        "{message}"
    );
    assert!(message.contains("priority: 101"), "{message}");
}

#[test]
fn an_unknown_field_is_named_with_its_path() {
    let copy = Copy::new();
    let file = "istio/jwt-auth/wasmplugin.yaml";
    copy.edit(
        file,
        "  phase: AUTHN\n",
        "  phase: AUTHN\n  phases: AUTHN\n",
    );
    copy.edit(
        file,
        "  - mode: SERVER\n",
        "  - mode: SERVER\n    port: 8080\n",
    );
    let findings = copy.check();
    assert_one_containing(&findings, file, "spec.phases", "unknown field");
    assert_one_containing(&findings, file, "spec.match[0].port", "unknown field");
    // pluginConfig is free-form for Istio; the filter's own loader judges it, not the CRD.
    let envoy_filter = "istio/rate-limit/envoyfilter.yaml";
    copy.edit(
        envoy_filter,
        "  priority: 20\n",
        "  priority: 20\n  workloadSelectors: {}\n",
    );
    let findings = copy.check();
    assert_one_containing(
        &findings,
        envoy_filter,
        "spec.workloadSelectors",
        "unknown field",
    );
}

#[test]
fn a_wrong_phase_fails() {
    let copy = Copy::new();
    let file = "istio/jwt-auth/wasmplugin.yaml";
    copy.edit_source("istio/jwt-auth/deploy.json", "\"AUTHN\"", "\"AUTHX\"");
    let findings = copy.check();
    assert_one_containing(
        &findings,
        file,
        "spec.phase",
        "must be one of UNSPECIFIED_PHASE, AUTHN, AUTHZ, STATS",
    );

    let copy = Copy::new();
    copy.edit_source("istio/jwt-auth/deploy.json", "\"AUTHN\"", "\"STATS\"");
    let findings = copy.check();
    assert_one_containing(
        &findings,
        file,
        "spec.phase",
        "must be AUTHN: it authenticates",
    );
    assert_one_containing(
        &findings,
        "istio/rate-limit/wasmplugin.yaml",
        "spec.phase",
        "must place rate-limit after jwt-auth",
    );
}

#[test]
fn rate_limit_ahead_of_jwt_auth_in_the_same_phase_fails() {
    let copy = Copy::new();
    let deploy = "istio/rate-limit/deploy.json";
    copy.edit_source(deploy, "\"phase\": \"AUTHZ\"", "\"phase\": \"AUTHN\"");
    copy.edit_source(deploy, "\"priority\": 10,", "\"priority\": 500,");
    copy.edit_source(
        deploy,
        "\"envoy_filter_priority\": 20",
        "\"envoy_filter_priority\": 5",
    );
    let findings = copy.check();
    assert_eq!(findings.len(), 2, "{findings:#?}");
    assert_one_containing(
        &findings,
        "istio/rate-limit/wasmplugin.yaml",
        "spec.phase",
        "after jwt-auth",
    );
    assert_one_containing(
        &findings,
        "istio/rate-limit/envoyfilter.yaml",
        "spec.priority",
        "higher than jwt-auth's (10)",
    );
}

#[test]
fn a_bad_plugin_config_field_fails_in_both_forms() {
    let copy = Copy::new();
    copy.edit_source(
        "istio/jwt-auth/deploy.json",
        "\"audiences\"",
        "\"audience\"",
    );
    let findings = copy.check();
    assert_one_containing(
        &findings,
        "istio/jwt-auth/wasmplugin.yaml",
        "spec.pluginConfig.providers.example.audience",
        "rejected by jwt-auth: unknown field `audience`",
    );
    assert_one_containing(
        &findings,
        "istio/jwt-auth/envoyfilter.yaml",
        "spec.configPatches[0].patch.value.typed_config.config.configuration.value.providers.example.audience",
        "unknown field",
    );
}

#[test]
fn a_native_field_we_lack_says_not_supported() {
    let copy = Copy::new();
    copy.edit_source(
        "istio/rate-limit/deploy.json",
        "\"stat_prefix\"",
        "\"stage\": 1, \"stat_prefix\"",
    );
    let findings = copy.check();
    assert_one_containing(
        &findings,
        "istio/rate-limit/wasmplugin.yaml",
        "spec.pluginConfig.stage",
        "rejected by rate-limit: not supported: `stage`",
    );
}

#[test]
fn a_config_value_the_filter_refuses_fails() {
    let copy = Copy::new();
    copy.edit_source(
        "istio/rate-limit/deploy.json",
        "\"fill_interval\": \"60s\"",
        "\"fill_interval\": \"0.01s\"",
    );
    let findings = copy.check();
    assert_one_containing(
        &findings,
        "istio/rate-limit/wasmplugin.yaml",
        "spec.pluginConfig.token_bucket.fill_interval",
        "at least 50ms",
    );
}

#[test]
fn a_wrong_api_version_fails() {
    let copy = Copy::new();
    let file = "istio/header-rewrite/wasmplugin.yaml";
    copy.edit(
        file,
        "extensions.istio.io/v1alpha1",
        "extensions.istio.io/v1",
    );
    let findings = copy.check();
    assert_one_containing(
        &findings,
        file,
        "apiVersion",
        "no WasmPlugin schema for apiVersion extensions.istio.io/v1",
    );
    assert_one_containing(
        &findings,
        file,
        "apiVersion",
        "must be extensions.istio.io/v1alpha1",
    );
}

fn write_image(copy: &Copy, filter: &str, json: &str) {
    std::fs::write(copy.path(&format!("istio/{filter}/image.json")), json).unwrap();
    write_all(&copy.root).unwrap();
}

#[test]
fn the_image_digest_and_url_come_from_image_json() {
    let copy = Copy::new();
    let digest = "0123456789abcdef".repeat(4);
    write_image(
        &copy,
        "rate-limit",
        &format!(r#"{{"url": "oci://localhost:5000/rate-limit:1", "sha256": "{digest}"}}"#),
    );
    assert!(copy.check().is_empty());
    let plugin = std::fs::read_to_string(copy.path("istio/rate-limit/wasmplugin.yaml")).unwrap();
    assert!(plugin.contains(&format!("sha256: {digest}\n")), "{plugin}");
    assert!(
        plugin.contains("url: oci://localhost:5000/rate-limit:1\n"),
        "{plugin}"
    );
    let filter = std::fs::read_to_string(copy.path("istio/rate-limit/envoyfilter.yaml")).unwrap();
    assert!(filter.contains(&format!("sha256: {digest}\n")), "{filter}");
}

#[test]
fn a_bad_sha256_or_url_scheme_fails() {
    let copy = Copy::new();
    let file = "istio/rate-limit/wasmplugin.yaml";
    write_image(
        &copy,
        "rate-limit",
        r#"{"url": "oci://localhost:5000/rate-limit:1", "sha256": "ABC"}"#,
    );
    let findings = copy.check();
    assert_one_containing(
        &findings,
        file,
        "spec.sha256",
        "must match (^$|^[a-f0-9]{64}$)",
    );
    assert_one_containing(
        &findings,
        file,
        "spec.sha256",
        "must be 64 lower-case hex digits",
    );
    assert_one_containing(
        &findings,
        "istio/rate-limit/envoyfilter.yaml",
        "spec.configPatches[0].patch.value.typed_config.config.vm_config.code.remote.sha256",
        "64 lower-case hex",
    );

    write_image(
        &copy,
        "rate-limit",
        r#"{"url": "ftp://example.com/rate-limit.wasm"}"#,
    );
    assert_one_containing(
        &copy.check(),
        file,
        "spec.url",
        "scheme \"ftp\" is not one Istio fetches from",
    );

    write_image(
        &copy,
        "rate-limit",
        r#"{"url": "https://example.com/rate-limit.wasm"}"#,
    );
    assert_one_containing(
        &copy.check(),
        file,
        "spec.sha256",
        "required for an http(s) module",
    );
}

#[test]
fn selector_and_target_refs_are_exclusive() {
    let copy = Copy::new();
    let file = "istio/header-rewrite/wasmplugin.yaml";
    copy.edit(
        file,
        "  selector:\n",
        "  targetRefs:\n  - kind: Gateway\n    group: gateway.networking.k8s.io\n    name: edge\n  selector:\n",
    );
    let findings = copy.check();
    assert_one_containing(
        &findings,
        file,
        "spec",
        "selector and targetRefs are exclusive",
    );
}

#[test]
fn an_envoy_filter_without_priority_is_ist0151() {
    let copy = Copy::new();
    let file = "istio/header-rewrite/envoyfilter.yaml";
    copy.edit(file, "  priority: 30\n", "");
    let findings = copy.check();
    assert_one_containing(&findings, file, "spec.priority", "IST0151");
}

#[test]
fn a_new_filter_without_manifests_is_named() {
    let copy = Copy::new();
    let geo_block = copy.path("filters/geo-block");
    std::fs::create_dir_all(&geo_block).unwrap();
    std::fs::write(geo_block.join("Cargo.toml"), "").unwrap();
    let error = check(&copy.root, &models()).unwrap_err();
    assert!(
        error.contains("filters/geo-block has no entry in istio/src/filters.rs"),
        "{error}"
    );
}

#[test]
fn manifests_reference_only_existing_sources() {
    // The generator reads nothing outside istio/<filter>/: a copy regenerates byte for byte.
    let copy = Copy::new();
    write_all(&copy.root).unwrap();
    for filter in filter_names(&workspace_root()).unwrap() {
        for file in ["wasmplugin.yaml", "envoyfilter.yaml"] {
            let rel = Path::new("istio").join(&filter).join(file);
            assert_eq!(
                std::fs::read_to_string(copy.root.join(&rel)).unwrap(),
                std::fs::read_to_string(workspace_root().join(&rel)).unwrap(),
                "{}",
                rel.display()
            );
        }
    }
}

#[test]
fn config_schemas_are_generated_strict_and_checked_for_drift() {
    let root = workspace_root();
    for filter in filter_names(&root).unwrap() {
        let path = root.join("istio").join(&filter).join("config.schema.json");
        let schema: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        // deny_unknown_fields carries over, so editors flag a typo as the filter would.
        assert_eq!(schema["additionalProperties"], false, "{}", path.display());
    }
    let rate_limit =
        std::fs::read_to_string(root.join("istio/rate-limit/config.schema.json")).unwrap();
    assert!(rate_limit.contains("\"DRAFT_VERSION_03\""));
    let copy = Copy::new();
    let file = "istio/jwt-auth/config.schema.json";
    copy.edit(
        file,
        "\"additionalProperties\": false",
        "\"additionalProperties\": true",
    );
    let findings = copy.check();
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0].file, file);
    assert!(findings[0]
        .message
        .contains("differs from what `make istio` generates"));
}

#[test]
fn a_chain_naming_an_unknown_filter_fails_at_its_name() {
    let copy = Copy::new();
    copy.edit_source(
        "istio/chain/deploy.json",
        "\"name\": \"rate-limit\"",
        "\"name\": \"rate-limiter\"",
    );
    let findings = copy.check();
    assert_one_containing(
        &findings,
        "istio/chain/wasmplugin.yaml",
        "spec.pluginConfig.filters[1].name",
        "rejected by chain: unknown filter \"rate-limiter\"; this module has: header-rewrite, jwt-auth, rate-limit",
    );
    assert_one_containing(
        &findings,
        "istio/chain/envoyfilter.yaml",
        "spec.configPatches[0].patch.value.typed_config.config.configuration.value.filters[1].name",
        "unknown filter \"rate-limiter\"",
    );
}

#[test]
fn a_bad_field_inside_a_chained_filter_is_named_by_its_position() {
    let copy = Copy::new();
    copy.edit_source(
        "istio/chain/deploy.json",
        "\"max_tokens\": 1000",
        "\"max_tokens\": 0",
    );
    let findings = copy.check();
    assert_one_containing(
        &findings,
        "istio/chain/wasmplugin.yaml",
        "spec.pluginConfig.filters[1].config.token_bucket.max_tokens",
        "rejected by chain: must be at least 1",
    );
    assert_one_containing(
        &findings,
        "istio/chain/envoyfilter.yaml",
        "spec.configPatches[0].patch.value.typed_config.config.configuration.value.filters[1].config.token_bucket.max_tokens",
        "must be at least 1",
    );

    // An unknown field is the composed filter's own error, with the chain's prefix.
    let copy = Copy::new();
    copy.edit_source("istio/chain/deploy.json", "\"audiences\"", "\"audience\"");
    assert_one_containing(
        &copy.check(),
        "istio/chain/wasmplugin.yaml",
        "spec.pluginConfig.filters[0].config.providers.example.audience",
        "unknown field `audience`",
    );
}

#[test]
fn a_chain_holding_jwt_auth_must_be_in_authn() {
    let copy = Copy::new();
    copy.edit_source("istio/chain/deploy.json", "\"AUTHN\"", "\"STATS\"");
    assert_one_containing(
        &copy.check(),
        "istio/chain/wasmplugin.yaml",
        "spec.phase",
        "must be AUTHN: it holds jwt-auth (it authenticates",
    );
}

#[test]
fn a_chain_without_jwt_auth_may_run_in_any_phase() {
    let copy = Copy::new();
    let deploy = copy.path("istio/chain/deploy.json");
    let mut source: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&deploy).unwrap()).unwrap();
    source["phase"] = "STATS".into();
    let filters = source["plugin_config"]["filters"].as_array_mut().unwrap();
    filters.retain(|entry| entry["name"] != "jwt-auth");
    assert_eq!(filters.len(), 2);
    std::fs::write(&deploy, source.to_string()).unwrap();
    write_all(&copy.root).unwrap();
    let findings = copy.check();
    assert!(findings.is_empty(), "{findings:#?}");
}

#[test]
fn the_chain_schema_checks_each_config_against_its_filter() {
    let root = workspace_root();
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("istio/chain/config.schema.json")).unwrap(),
    )
    .unwrap();
    let item = &schema["properties"]["filters"]["items"];
    // Every filter chain.wasm links, in both spellings (one when the name has no `-`).
    let mut spellings = Vec::new();
    for factory in istio_manifests::chain::FACTORIES {
        let name = factory.chain_name();
        let underscored = name.replace('-', "_");
        spellings.push(name.clone());
        if underscored != name {
            spellings.push(underscored);
        }
    }
    assert!(
        spellings.contains(&"rate_limit".to_string()) && spellings.contains(&"cors".to_string())
    );
    assert_eq!(
        item["properties"]["name"]["enum"],
        serde_json::json!(spellings)
    );
    let cases = item["allOf"].as_array().unwrap();
    assert_eq!(cases.len(), istio_manifests::chain::FACTORIES.len());
    for case in cases {
        let name = case["if"]["properties"]["name"]["enum"][0]
            .as_str()
            .unwrap();
        assert_eq!(
            case["then"]["properties"]["config"]["$ref"],
            format!("#/$defs/{name}")
        );
        // The filter's root schema is its own config.schema.json, with its refs moved under it.
        let own: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(root.join("istio").join(name).join("config.schema.json"))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(schema["$defs"][name]["title"], own["title"]);
        assert_eq!(schema["$defs"][name]["additionalProperties"], false);
    }
    // Every reference resolves inside the chain schema.
    let text = serde_json::to_string(&schema).unwrap();
    for target in text.split("\"$ref\":\"").skip(1) {
        let target = &target[..target.find('"').unwrap()];
        let pointer = target.strip_prefix('#').unwrap();
        assert!(schema.pointer(pointer).is_some(), "dangling $ref {target}");
    }
}

#[test]
fn the_chain_holds_what_chain_wasm_is_built_with() {
    // filters/chain's default features are the filters of chain.wasm; the checker must load
    // the same set, or it would accept a name the module refuses.
    let cargo = std::fs::read_to_string(workspace_root().join("filters/chain/Cargo.toml")).unwrap();
    let line = cargo
        .lines()
        .find(|line| line.starts_with("default = ["))
        .unwrap();
    let built: Vec<&str> = line
        .trim_start_matches("default = [")
        .trim_end_matches(']')
        .split(',')
        .map(|name| name.trim().trim_matches('"'))
        .collect();
    let checked: Vec<String> = istio_manifests::chain::FACTORIES
        .iter()
        .map(|factory| factory.chain_name())
        .collect();
    assert_eq!(checked, built);
}

#[test]
fn plugin_configs_are_checked_against_their_json_schema() {
    // An editor using config.schema.json flags what the loader refuses, inside the chain too.
    let copy = Copy::new();
    copy.edit_source(
        "istio/chain/deploy.json",
        "\"stat_prefix\": \"chain\"",
        "\"stat_prefix\": \"chain\", \"stat_prefixes\": 1",
    );
    let findings = copy.check();
    let file = "istio/chain/wasmplugin.yaml";
    let path = "spec.pluginConfig.filters[1].config.stat_prefixes";
    assert_one_containing(
        &findings,
        file,
        path,
        "does not match config.schema.json: unknown field",
    );
    assert_one_containing(&findings, file, path, "rejected by chain: unknown field");

    // A committed schema that no longer accepts the example fails, naming the field.
    let copy = Copy::new();
    copy.edit(
        "istio/rate-limit/config.schema.json",
        "\"stat_prefix\": {",
        "\"stat_prefix\": {\"maxLength\": 2,",
    );
    let findings = copy.check();
    assert_one_containing(
        &findings,
        "istio/rate-limit/wasmplugin.yaml",
        "spec.pluginConfig.stat_prefix",
        "does not match config.schema.json: must NOT have more than 2 characters",
    );
}

#[test]
fn every_filter_refuses_a_non_object_and_a_repeated_key() {
    for filter in istio_manifests::filters::FILTERS {
        let error = (filter.load_config)(b"[]").unwrap_err();
        assert!(
            error.reason.contains("must be a JSON object"),
            "{}: {error}",
            filter.name
        );
        let error = (filter.load_config)(br#"{"some_field": 1, "some_field": 2}"#).unwrap_err();
        assert_eq!(
            (error.path.as_str(), error.reason.as_str()),
            ("some_field", "duplicate key"),
            "{}",
            filter.name
        );
    }
    // Two jwt-auth providers of one name: refused, not the last one kept.
    let jwt_auth = istio_manifests::filters::FILTERS
        .iter()
        .find(|filter| filter.name == "jwt-auth")
        .unwrap();
    let interop: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            workspace_root().join("envoy/tests/data/jwt_differential/interop.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let jwks = interop["jwks"].to_string();
    let provider = |skew: u64| {
        serde_json::json!({
            "issuer": "https://issuer",
            "local_jwks": {"inline_string": jwks},
            "clock_skew_seconds": skew
        })
        .to_string()
    };
    let config = format!(
        r#"{{"providers": {{"a": {}, "a": {}}}}}"#,
        provider(1),
        provider(2)
    );
    let error = (jwt_auth.load_config)(config.as_bytes()).unwrap_err();
    assert_eq!(error.path, "providers.a");
    // clock_skew_seconds is a uint32, as in Envoy's proto.
    let config = |skew| format!(r#"{{"providers": {{"a": {}}}}}"#, provider(skew));
    let result = (jwt_auth.load_config)(config(u64::from(u32::MAX)).as_bytes());
    assert!(result.is_ok(), "{result:?}");
    let error = (jwt_auth.load_config)(config(1 << 32).as_bytes()).unwrap_err();
    assert_eq!(error.path, "providers.a.clock_skew_seconds", "{error}");
}

/// Where a chain or filter config holds a map keyed by names the user picks (providers,
/// policies): an unknown key there is a new entry, not an unknown field.
const NAME_MAPS: &[&str] = &[
    "providers",
    "rules.policies",
    "shadow_rules.policies",
    "filters[0].config.providers",
];

/// Every location of `value` as a field path (`a.b[2].c`), with the value there.
fn locations(value: &serde_json::Value, path: &str, out: &mut Vec<(String, serde_json::Value)>) {
    out.push((path.to_string(), value.clone()));
    let join = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match value {
        serde_json::Value::Object(map) => {
            for (key, child) in map {
                locations(child, &join(key), out);
            }
        }
        serde_json::Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                locations(child, &format!("{path}[{index}]"), out);
            }
        }
        _ => {}
    }
}

/// The value at field path `path` of `root`, to change in place.
fn at_path<'a>(root: &'a mut serde_json::Value, path: &str) -> &'a mut serde_json::Value {
    let mut current = root;
    for part in path.split('.').filter(|part| !part.is_empty()) {
        let (key, indexes) = part
            .split_once('[')
            .map_or((part, ""), |(k, rest)| (k, rest));
        if !key.is_empty() {
            current = current.get_mut(key).unwrap();
        }
        for index in indexes.split('[').filter(|i| !i.is_empty()) {
            current = current
                .get_mut(index.trim_end_matches(']').parse::<usize>().unwrap())
                .unwrap();
        }
    }
    current
}

/// `error` names `path` itself, something inside it, or the object that holds it.
fn names(error_path: &str, path: &str) -> bool {
    let within = |outer: &str, inner: &str| {
        outer.is_empty()
            || inner == outer
            || inner.starts_with(&format!("{outer}."))
            || inner.starts_with(&format!("{outer}["))
    };
    within(path, error_path) || within(error_path, path)
}

/// Each filter's example config (`deploy.json`'s pluginConfig), broken every way a generator can:
/// each value replaced by one of every other JSON type, each number pushed out of range, an
/// unknown field added to each object, each field removed. Nothing panics; a wrong type or an
/// unknown field is refused, naming where it is (an unknown key may only be accepted in a map of
/// user-chosen names, listed in `NAME_MAPS`); an out-of-range number is refused naming where it
/// is, or accepted (in range for its type); a removal is refused, or accepted (an optional
/// field).
#[test]
fn generated_bad_configs_are_refused_where_they_are_wrong() {
    let root = workspace_root();
    let mut report = Vec::new();
    let mut failures = Vec::new();
    for filter in istio_manifests::filters::FILTERS {
        let deploy: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(root.join("istio").join(filter.name).join("deploy.json"))
                .unwrap(),
        )
        .unwrap();
        let config = deploy["plugin_config"].clone();
        assert!(
            (filter.load_config)(config.to_string().as_bytes()).is_ok(),
            "{}: the example config is refused",
            filter.name
        );
        let mut spots = Vec::new();
        locations(&config, "", &mut spots);
        let (mut refused, mut accepted) = (0, 0);
        // A removal may be refused where the missing piece is felt (a rule naming a provider
        // that is gone): anywhere, as long as it is refused or accepted cleanly.
        let mut attempt =
            |what: String, path: &str, broken: &serde_json::Value, must_refuse: bool| {
                let anywhere = what == "removing it";
                match (filter.load_config)(broken.to_string().as_bytes()) {
                    Err(error) if anywhere || names(&error.path, path) => refused += 1,
                    Err(error) => failures.push(format!(
                        "{}: {what} at {path:?} refused at another place: {error}",
                        filter.name
                    )),
                    Ok(()) if must_refuse => {
                        failures.push(format!("{}: {what} at {path:?} accepted", filter.name))
                    }
                    Ok(()) => accepted += 1,
                }
            };
        for (path, value) in &spots {
            if path.is_empty() {
                continue;
            }
            let replacements = [
                serde_json::json!("text"),
                serde_json::json!(7),
                serde_json::json!(true),
                serde_json::json!([1]),
                serde_json::json!({"k": 1}),
            ];
            for replacement in replacements {
                let same_type =
                    std::mem::discriminant(&replacement) == std::mem::discriminant(value);
                if same_type {
                    continue;
                }
                let mut broken = config.clone();
                *at_path(&mut broken, path) = replacement.clone();
                attempt(format!("{replacement} for {value}"), path, &broken, true);
            }
            if value.is_number() {
                for number in [
                    serde_json::json!(-1),
                    serde_json::json!(4294967296u64),
                    serde_json::json!(1e300),
                    serde_json::json!(0.5),
                ] {
                    let mut broken = config.clone();
                    *at_path(&mut broken, path) = number.clone();
                    attempt(format!("{number}"), path, &broken, false);
                }
            }
            let mut broken = config.clone();
            let (parent, key) = path.rsplit_once('.').unwrap_or(("", path));
            if !key.contains('[') {
                if let Some(map) = at_path(&mut broken, parent).as_object_mut() {
                    map.remove(key);
                    attempt("removing it".into(), path, &broken, false);
                }
            }
            if value.is_object() {
                let mut broken = config.clone();
                at_path(&mut broken, path)
                    .as_object_mut()
                    .unwrap()
                    .insert("zz_unknown".into(), serde_json::json!(1));
                let name_map = NAME_MAPS.contains(&path.as_str());
                attempt(
                    "an unknown field".into(),
                    &format!("{path}.zz_unknown"),
                    &broken,
                    !name_map,
                );
            }
        }
        report.push(format!(
            "{}: {refused} refused, {accepted} accepted",
            filter.name
        ));
    }
    println!("{}", report.join("\n"));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

const SERVICE: &str = "istio/rate-limit-service/service.yaml";
const CONFIG_MAP: &str = "istio/rate-limit-service/service.yaml (document 1)";
const DEPLOYMENT: &str = "istio/rate-limit-service/service.yaml (document 2)";
const K8S_SERVICE: &str = "istio/rate-limit-service/service.yaml (document 3)";
const CONTAINER: &str = "spec.template.spec.containers[0]";

/// Sets global-rate-limit's `plugin_config` field at `pointer` in a copy, and regenerates.
fn set_client_config(copy: &Copy, pointer: &str, value: &str) {
    let deploy = copy.path("istio/global-rate-limit/deploy.json");
    let mut source: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&deploy).unwrap()).unwrap();
    *source["plugin_config"].pointer_mut(pointer).unwrap() = value.into();
    std::fs::write(&deploy, source.to_string()).unwrap();
    write_all(&copy.root).unwrap();
}

#[test]
fn the_rate_limit_service_manifests_are_generated() {
    let root = workspace_root();
    let dir = root.join("istio").join(service::DIR);
    for file in [
        "service.json",
        "limits.yaml",
        "service.yaml",
        "redis-demo.yaml",
    ] {
        assert!(dir.join(file).is_file(), "{file} is missing");
    }
    // The generator reads nothing outside istio/rate-limit-service/: a copy regenerates it.
    let copy = Copy::new();
    write_all(&copy.root).unwrap();
    for file in ["service.yaml", "redis-demo.yaml"] {
        let rel = Path::new("istio").join(service::DIR).join(file);
        assert_eq!(
            std::fs::read_to_string(copy.root.join(&rel)).unwrap(),
            std::fs::read_to_string(root.join(&rel)).unwrap(),
            "{}",
            rel.display()
        );
    }
    let text = std::fs::read_to_string(dir.join("service.yaml")).unwrap();
    let limits = std::fs::read_to_string(dir.join("limits.yaml")).unwrap();
    let docs: Vec<serde_json::Value> =
        istio_manifests::check::read_yaml_docs(&dir.join("service.yaml")).unwrap();
    assert_eq!(docs.len(), 3, "{text}");
    // The limits file is embedded as it is, comments included.
    assert_eq!(docs[0]["data"]["limits.yaml"], limits.as_str());
    let container = &docs[1]["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["args"],
        serde_json::json!([
            "--grpc",
            "0.0.0.0:8081",
            "--config",
            "/etc/rate-limit/limits.yaml",
            "--redis",
            "redis://redis:6379"
        ])
    );
    assert_eq!(container["image"], "rate-limit-service:0.1.0");
    assert_eq!(container["readinessProbe"]["tcpSocket"]["port"], "grpc");
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(
        docs[2]["spec"]["ports"][0],
        serde_json::json!({"name": "grpc", "port": 8081, "targetPort": "grpc", "protocol": "TCP", "appProtocol": "grpc"})
    );
    let demo = std::fs::read_to_string(dir.join("redis-demo.yaml")).unwrap();
    assert!(demo.contains("# DEMO ONLY"), "{demo}");
    assert!(demo.contains("image: redis:7\n"), "{demo}");
}

#[test]
fn an_unknown_field_or_wrong_type_in_the_service_manifests_is_named() {
    let copy = Copy::new();
    copy.edit(
        SERVICE,
        "        imagePullPolicy: IfNotPresent\n",
        "        imagePullPolicy: IfNotPresent\n        imagePullPolicys: Always\n",
    );
    copy.edit(SERVICE, "    port: 8081\n", "    port: '8081'\n");
    copy.edit(
        SERVICE,
        "kind: ConfigMap\n",
        "kind: ConfigMap\nimmutable: 'yes'\nbinary: {}\n",
    );
    let findings = copy.check();
    assert_one_containing(
        &findings,
        SERVICE,
        "",
        "differs from what `make istio` generates",
    );
    assert_one_containing(
        &findings,
        DEPLOYMENT,
        &format!("{CONTAINER}.imagePullPolicys"),
        "unknown field (not in the Kubernetes API schema)",
    );
    assert_one_containing(
        &findings,
        K8S_SERVICE,
        "spec.ports[0].port",
        "must be of type integer",
    );
    assert_one_containing(
        &findings,
        CONFIG_MAP,
        "immutable",
        "must be of type boolean",
    );
    assert_one_containing(&findings, CONFIG_MAP, "binary", "unknown field");
}

#[test]
fn a_kubernetes_api_version_without_a_schema_fails() {
    let copy = Copy::new();
    copy.edit(
        SERVICE,
        "apiVersion: apps/v1\n",
        "apiVersion: apps/v1beta3\n",
    );
    assert_one_containing(
        &copy.check(),
        DEPLOYMENT,
        "apiVersion",
        "no Deployment schema for apiVersion apps/v1beta3 in kubernetes-models 5.1.0; known: apps/v1, apps/v1beta1, apps/v1beta2",
    );
}

#[test]
fn the_grpc_port_must_be_served_probed_and_exposed() {
    // --grpc on another port than the container, the probes and the Service use.
    let copy = Copy::new();
    copy.edit(
        SERVICE,
        "        - 0.0.0.0:8081\n",
        "        - 0.0.0.0:9090\n",
    );
    let findings = copy.check();
    assert_one_containing(
        &findings,
        DEPLOYMENT,
        &format!("{CONTAINER}.args[1]"),
        "--grpc listens on 9090, which is not a containerPort of the container (8081)",
    );
    assert_one_containing(
        &findings,
        DEPLOYMENT,
        &format!("{CONTAINER}.readinessProbe.tcpSocket.port"),
        "\"grpc\" is not the gRPC port 9090 (--grpc)",
    );
    assert_one_containing(
        &findings,
        K8S_SERVICE,
        "spec.ports[0].targetPort",
        "\"grpc\" reaches 8081, not the port the service listens on (9090, --grpc)",
    );
    assert_one_containing(
        &findings,
        K8S_SERVICE,
        "spec.ports",
        "no port reaches the service's gRPC port 9090 (--grpc)",
    );

    // The Service's targetPort elsewhere, and not as gRPC.
    let copy = Copy::new();
    copy.edit(SERVICE, "    targetPort: grpc\n", "    targetPort: 9090\n");
    copy.edit(
        SERVICE,
        "  - appProtocol: grpc\n",
        "  - appProtocol: http\n",
    );
    let findings = copy.check();
    assert_one_containing(
        &findings,
        K8S_SERVICE,
        "spec.ports[0].targetPort",
        "9090 reaches 9090, not the port the service listens on (8081, --grpc)",
    );
    let copy = Copy::new();
    copy.edit(
        SERVICE,
        "  - appProtocol: grpc\n",
        "  - appProtocol: http\n",
    );
    assert_one_containing(
        &copy.check(),
        K8S_SERVICE,
        "spec.ports[0].appProtocol",
        "must be grpc, so that Istio makes the cluster HTTP/2",
    );

    // A Service that selects no pod of the Deployment.
    let copy = Copy::new();
    copy.edit(
        SERVICE,
        "  selector:\n    app: rate-limit-service\n",
        "  selector:\n    app: ratelimit\n",
    );
    assert_one_containing(
        &copy.check(),
        K8S_SERVICE,
        "spec.selector",
        "must select the Deployment's pods",
    );
}

#[test]
fn the_config_flag_must_name_the_mounted_limits_file() {
    let copy = Copy::new();
    copy.edit(
        SERVICE,
        "        - /etc/rate-limit/limits.yaml\n",
        "        - /etc/ratelimit/limits.yaml\n",
    );
    assert_one_containing(
        &copy.check(),
        DEPLOYMENT,
        &format!("{CONTAINER}.args[3]"),
        "--config /etc/ratelimit/limits.yaml: not in the ConfigMap rate-limit-service's mount (/etc/rate-limit)",
    );

    let copy = Copy::new();
    copy.edit(
        SERVICE,
        "        - /etc/rate-limit/limits.yaml\n",
        "        - /etc/rate-limit/limit.yaml\n",
    );
    assert_one_containing(
        &copy.check(),
        DEPLOYMENT,
        &format!("{CONTAINER}.args[3]"),
        "the ConfigMap rate-limit-service mounted at /etc/rate-limit has no key \"limit.yaml\" (it has limits.yaml)",
    );

    // An unknown flag, and a missing --config.
    let copy = Copy::new();
    copy.edit(SERVICE, "        - --config\n", "        - --limits\n");
    let findings = copy.check();
    assert_one_containing(
        &findings,
        DEPLOYMENT,
        &format!("{CONTAINER}.args[2]"),
        "\"--limits\" is not a flag of rate-limit-service (it takes --grpc, --config, --redis)",
    );
    assert_one_containing(
        &findings,
        DEPLOYMENT,
        &format!("{CONTAINER}.args"),
        "must pass --config with the mounted limits file",
    );
}

#[test]
fn a_limits_file_the_service_refuses_fails_where_it_is_wrong() {
    let copy = Copy::new();
    copy.edit_source(
        "istio/rate-limit-service/limits.yaml",
        "unit: minute",
        "unit: fortnight",
    );
    assert_one_containing(
        &copy.check(),
        CONFIG_MAP,
        "data[\"limits.yaml\"].descriptors[0].rate_limit.unit",
        "rejected by rate-limit-service: unknown unit \"fortnight\" (one of second, minute, hour, day, week, month, year)",
    );

    let copy = Copy::new();
    copy.edit_source(
        "istio/rate-limit-service/limits.yaml",
        "requests_per_unit: 100\n",
        "requests_per_unit: 0\n",
    );
    assert_one_containing(
        &copy.check(),
        CONFIG_MAP,
        "data[\"limits.yaml\"].descriptors[0].rate_limit.requests_per_unit",
        "rejected by rate-limit-service: must be at least 1",
    );

    // An unknown field is a YAML error of the service's parser, with its line.
    let copy = Copy::new();
    copy.edit_source(
        "istio/rate-limit-service/limits.yaml",
        "requests_per_unit: 100\n",
        "request_per_unit: 100\n",
    );
    assert_one_containing(
        &copy.check(),
        CONFIG_MAP,
        "data[\"limits.yaml\"]",
        "rejected by rate-limit-service: YAML: descriptors[0].rate_limit: unknown field `request_per_unit`",
    );
}

#[test]
fn the_service_runs_as_non_root_on_a_read_only_root() {
    let copy = Copy::new();
    copy.edit(
        SERVICE,
        "          readOnlyRootFilesystem: true\n          runAsNonRoot: true\n",
        "          readOnlyRootFilesystem: false\n",
    );
    copy.edit(SERVICE, "        runAsNonRoot: true\n", "");
    let findings = copy.check();
    assert_one_containing(
        &findings,
        DEPLOYMENT,
        &format!("{CONTAINER}.securityContext.readOnlyRootFilesystem"),
        "must be true",
    );
    assert_one_containing(
        &findings,
        DEPLOYMENT,
        &format!("{CONTAINER}.securityContext.runAsNonRoot"),
        "must be true (here or in the pod's securityContext)",
    );
}

#[test]
fn the_redis_flag_must_reach_the_demo_redis() {
    let copy = Copy::new();
    copy.edit_source(
        "istio/rate-limit-service/service.json",
        "redis://redis:6379",
        "redis://cache:6379",
    );
    assert_one_containing(
        &copy.check(),
        "istio/rate-limit-service/redis-demo.yaml (document 2)",
        "spec.ports",
        "the service's --redis redis://cache:6379 does not reach this demo Redis (redis:6379)",
    );

    let copy = Copy::new();
    copy.edit_source(
        "istio/rate-limit-service/service.json",
        "redis://redis:6379",
        "redis:6379",
    );
    assert_one_containing(
        &copy.check(),
        DEPLOYMENT,
        &format!("{CONTAINER}.args[5]"),
        "--redis \"redis:6379\": must start with redis:// or rediss://",
    );

    // Without a Redis the flag is left out (counters in each replica's memory).
    let copy = Copy::new();
    copy.edit_source(
        "istio/rate-limit-service/service.json",
        "\"redis_url\": \"redis://redis:6379\",",
        "",
    );
    let text = std::fs::read_to_string(copy.path(SERVICE)).unwrap();
    assert!(!text.contains("--redis"), "{text}");
}

#[test]
fn global_rate_limit_must_name_the_services_cluster_and_domain() {
    let cluster = "/rate_limit_service/grpc_service/envoy_grpc/cluster_name";
    let plugin = "istio/global-rate-limit/wasmplugin.yaml";

    // The cluster Istio builds for the Service, in any namespace, and the limits' domain.
    let copy = Copy::new();
    set_client_config(
        &copy,
        cluster,
        "outbound|8081||rate-limit-service.ratelimit.svc.cluster.local",
    );
    set_client_config(&copy, "/domain", "httpbin");
    let findings = copy.check();
    assert!(
        at(&findings, plugin, service::CLUSTER_PATH).is_empty()
            && at(&findings, plugin, "spec.pluginConfig.domain").is_empty(),
        "{findings:#?}"
    );

    assert!(service::warnings(&copy.root).is_empty());

    // Aimed at the Service, but another port or not a cluster name: a finding.
    for wrong in [
        "outbound|9090||rate-limit-service.ratelimit.svc.cluster.local",
        "outbound|8081||rate-limit-service.ratelimit",
        "rate-limit-service",
    ] {
        set_client_config(&copy, cluster, wrong);
        assert_one_containing(
            &copy.check(),
            plugin,
            service::CLUSTER_PATH,
            &format!("{wrong:?} is not the cluster Istio builds for istio/rate-limit-service/service.yaml's Service: outbound|8081||rate-limit-service.<namespace>.svc.cluster.local"),
        );
    }

    // Another host may be another rate limit service on purpose: a warning, and its domain is
    // not compared with our limits file.
    set_client_config(
        &copy,
        cluster,
        "outbound|8081||ratelimit.ratelimit.svc.cluster.local",
    );
    set_client_config(&copy, "/domain", "edge");
    let findings = copy.check();
    assert!(
        at(&findings, plugin, service::CLUSTER_PATH).is_empty()
            && at(&findings, plugin, "spec.pluginConfig.domain").is_empty(),
        "{findings:#?}"
    );
    let warnings = service::warnings(&copy.root);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("\"outbound|8081||ratelimit.ratelimit.svc.cluster.local\" is not istio/rate-limit-service/service.yaml's Service"),
        "{warnings:?}"
    );

    set_client_config(
        &copy,
        cluster,
        "outbound|8081||rate-limit-service.ratelimit.svc.cluster.local",
    );
    set_client_config(&copy, "/domain", "edge");
    assert_one_containing(
        &copy.check(),
        plugin,
        "spec.pluginConfig.domain",
        "\"edge\" is not a domain of istio/rate-limit-service/limits.yaml (httpbin): the service would apply no limit",
    );
}

#[test]
fn a_hand_edit_of_the_service_manifests_fails() {
    let copy = Copy::new();
    copy.edit(SERVICE, "  replicas: 2\n", "  replicas: 3\n");
    let findings: Vec<Finding> = copy
        .check()
        .into_iter()
        .filter(|f| f.file.starts_with("istio/rate-limit-service/"))
        .collect();
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0].file, SERVICE);
    assert!(findings[0].message.contains("at line") && findings[0].message.contains("replicas: 3"));
}
