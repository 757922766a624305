//! `make istio-validate` on the committed manifests, and on copies broken the ways a user would
//! break them: each failure names the file and the field path.

use istio_manifests::check::{check, Finding};
use istio_manifests::schema::models_dir;
use istio_manifests::{filter_names, workspace_root, write_all};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A copy of the workspace's `istio/` sources and manifests, with the same filter names.
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
        for filter in filter_names(&source).unwrap() {
            let crate_dir = root.join("filters").join(&filter);
            std::fs::create_dir_all(&crate_dir).unwrap();
            std::fs::write(crate_dir.join("Cargo.toml"), "").unwrap();
            let from = source.join("istio").join(&filter);
            let to = root.join("istio").join(&filter);
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

fn models() -> PathBuf {
    models_dir(&workspace_root())
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
    let chain = copy.path("filters/chain");
    std::fs::create_dir_all(&chain).unwrap();
    std::fs::write(chain.join("Cargo.toml"), "").unwrap();
    let error = check(&copy.root, &models()).unwrap_err();
    assert!(
        error.contains("filters/chain has no entry in istio/src/filters.rs"),
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
