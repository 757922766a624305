//! Every config in envoy/configs is valid for Envoy and serves a request.

use envoy_harness::config::{config_template, fill_config, filter_wasm, TemplatePorts};
use envoy_harness::process::workspace_root;
use envoy_harness::{validate, Bootstrap, EchoUpstream, Envoy, Request};

#[test]
fn checked_in_configs_are_valid_and_serve() {
    let upstream = EchoUpstream::start().unwrap();
    let configs_dir = config_template("");
    let mut paths: Vec<_> = std::fs::read_dir(&configs_dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().and_then(|e| e.to_str()) == Some("yaml"))
        .collect();
    paths.sort();
    assert!(
        !paths.is_empty(),
        "no configs found in {}",
        configs_dir.display()
    );
    // One Envoy per config, side by side: Envoy refuses an invalid config at start, so a config
    // that starts and serves is valid.
    std::thread::scope(|scope| {
        for path in &paths {
            let upstream = &upstream;
            scope.spawn(move || {
                let template = std::fs::read_to_string(path).unwrap();
                let ports = TemplatePorts {
                    listen: 0,
                    upstream: upstream.port(),
                    jwks: upstream.port(),
                };
                let yaml = fill_config(&template, ports)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let envoy = Envoy::start(Bootstrap::Yaml(yaml))
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let response = Request::get("/").send(envoy.port()).unwrap();
                assert_eq!(response.status, 200, "{}: {}", path.display(), envoy.logs());
            });
        }
    });
}

#[test]
fn readme_config_is_valid_once_the_path_is_filled() {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let section = &readme[readme.find("## Load it into Envoy").unwrap()..];
    let start = section.find("```yaml\n").unwrap() + "```yaml\n".len();
    let yaml = &section[start..start + section[start..].find("```").unwrap()];
    let wasm_dir = filter_wasm("x")
        .parent()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(yaml.contains("/abs/path/target/filters/"));
    let yaml = yaml.replace("/abs/path/target/filters", &wasm_dir);
    let exited = validate(Bootstrap::Yaml(yaml)).unwrap();
    assert!(
        exited.status.is_some_and(|s| s.success()),
        "{}",
        exited.logs
    );
}

#[test]
fn make_envoy_config_fills_every_placeholder() {
    // What `make envoy-config` writes: every template with the documented default ports.
    std::thread::scope(|scope| {
        for name in ["header-rewrite", "jwt-auth", "rate-limit"] {
            scope.spawn(move || {
                let template =
                    std::fs::read_to_string(config_template(&format!("{name}.yaml"))).unwrap();
                let ports = TemplatePorts {
                    listen: 10000,
                    upstream: 8080,
                    jwks: 8081,
                };
                let yaml = fill_config(&template, ports).unwrap();
                assert!(!yaml.contains("${"), "{name}");
                let exited = validate(Bootstrap::Yaml(yaml)).unwrap();
                assert!(
                    exited.status.is_some_and(|s| s.success()),
                    "{name}: {}",
                    exited.logs
                );
            });
        }
    });
}
