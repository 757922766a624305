//! Every config in envoy/configs is valid for Envoy and serves a request.

use envoy_harness::config::{config_template, fill_config, TemplatePorts};
use envoy_harness::{validate, Bootstrap, EchoUpstream, Envoy, Request};

#[test]
fn checked_in_configs_are_valid_and_serve() {
    let upstream = EchoUpstream::start().unwrap();
    let configs_dir = config_template("");
    let mut checked = 0;
    for entry in std::fs::read_dir(&configs_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let template = std::fs::read_to_string(&path).unwrap();
        let ports = TemplatePorts {
            listen: 0,
            upstream: upstream.port(),
            jwks: upstream.port(),
        };
        let yaml =
            fill_config(&template, ports).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let exited = validate(Bootstrap::Yaml(yaml.clone())).unwrap();
        assert!(
            exited.status.is_some_and(|s| s.success()),
            "{}: {}",
            path.display(),
            exited.logs
        );
        let envoy = Envoy::start(Bootstrap::Yaml(yaml))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let response = Request::get("/").send(envoy.port()).unwrap();
        assert_eq!(response.status, 200, "{}: {}", path.display(), envoy.logs());
        checked += 1;
    }
    assert!(
        checked >= 1,
        "no configs found in {}",
        configs_dir.display()
    );
}
