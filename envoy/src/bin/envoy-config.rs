//! `make envoy-config FILTER=<name>`: writes `target/envoy-configs/<name>.yaml`, the config of
//! `envoy/configs/<name>.yaml` with its placeholders filled, ready for `envoy -c`.

use envoy_harness::config::{config_template, fill_config, TemplatePorts};
use envoy_harness::process::workspace_root;
use std::process::ExitCode;

/// Where the upstream of every config is expected (`make run` and the README use the same).
const UPSTREAM_PORT: u16 = 8080;
/// Where jwt-auth's config expects its JWKS server.
const JWKS_PORT: u16 = 8081;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (name, port) = match args.as_slice() {
        [name] => (name.as_str(), Ok(10000)),
        [name, flag, port] if flag == "--port" => (name.as_str(), port.parse::<u16>()),
        _ => {
            eprintln!("usage: envoy-config <filter> [--port N]");
            return ExitCode::from(2);
        }
    };
    let Ok(listen) = port else {
        eprintln!("envoy-config: --port takes a port number");
        return ExitCode::from(2);
    };
    let template_path = config_template(&format!("{name}.yaml"));
    let written = std::fs::read_to_string(&template_path)
        .map_err(|e| format!("{}: {e}", template_path.display()))
        .and_then(|template| {
            let ports = TemplatePorts {
                listen,
                upstream: UPSTREAM_PORT,
                jwks: JWKS_PORT,
            };
            fill_config(&template, ports)
        })
        .and_then(|yaml| {
            let dir = workspace_root().join("target").join("envoy-configs");
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            let path = dir.join(format!("{name}.yaml"));
            std::fs::write(&path, yaml).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(path)
        });
    match written {
        Ok(path) => {
            println!("wrote {}", path.display());
            println!("run it: envoy -c {} --concurrency 1", path.display());
            println!("it proxies 127.0.0.1:{listen} to an upstream on 127.0.0.1:{UPSTREAM_PORT}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("envoy-config: {error}");
            ExitCode::FAILURE
        }
    }
}
