//! `make run`: the echo upstream and Envoy with the filters on 127.0.0.1:PORT, in the foreground.

use envoy_harness::config::{config_template, fill_template};
use envoy_harness::{Bootstrap, EchoUpstream, Envoy, EnvoyOptions, Request};
use std::process::ExitCode;
use std::time::Duration;

const TEMPLATE: &str = "header-rewrite.yaml";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("demo: {error}");
            ExitCode::FAILURE
        }
    }
}

fn port_argument() -> Result<u16, String> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|arg| arg == "--port") {
        Some(at) => args
            .get(at + 1)
            .and_then(|port| port.parse().ok())
            .ok_or_else(|| "--port needs a port number".to_string()),
        None => Ok(10000),
    }
}

fn run() -> Result<(), String> {
    let port = port_argument()?;
    let upstream = EchoUpstream::start().map_err(|e| format!("echo upstream: {e}"))?;
    let template_path = config_template(TEMPLATE);
    let template = std::fs::read_to_string(&template_path)
        .map_err(|e| format!("{}: {e}", template_path.display()))?;
    let wasm_dir = envoy_harness::config::filter_wasm("x")
        .parent()
        .map(|dir| dir.to_string_lossy().into_owned())
        .unwrap_or_default();
    let yaml = fill_template(
        &template,
        &[
            ("LISTEN_PORT", port.to_string()),
            ("UPSTREAM_PORT", upstream.port().to_string()),
            ("FILTER_WASM_DIR", wasm_dir),
        ],
    )?;
    let options = EnvoyOptions {
        concurrency: 2,
        ..EnvoyOptions::default()
    };
    let envoy = Envoy::start_with(Bootstrap::Yaml(yaml), &options)
        .map_err(|e| format!("Envoy did not start: {e}"))?;
    self_check(port)?;
    println!(
        "\nEnvoy {} is serving the filters on http://127.0.0.1:{port} (admin: http://127.0.0.1:{}), upstream echo on port {}.",
        envoy_version(),
        envoy.admin_port(),
        upstream.port()
    );
    println!("\nheader-rewrite adds x-client-ip and x-original-path and strips x-internal-token on the way up;");
    println!("the echo upstream shows the request it received:");
    println!("  curl -s http://127.0.0.1:{port}/hello -H 'x-internal-token: s3cret' | python3 -m json.tool");
    println!("on the way back it adds x-powered-by and strips x-upstream-secret (which the echo sets on request):");
    println!("  curl -s -D - -o /dev/null http://127.0.0.1:{port}/hello -H 'x-echo-header-x-upstream-secret: leak'");
    println!("\nPress Ctrl-C to stop.");
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// Proves the filter works before telling the user it does.
fn self_check(port: u16) -> Result<(), String> {
    let response = Request::get("/hello")
        .header("x-internal-token", "s3cret")
        .header("x-echo-header-x-upstream-secret", "leak")
        .send(port)
        .map_err(|e| format!("self-check request failed: {e}"))?;
    let ok = response.status == 200
        && response.upstream_header("x-original-path").as_deref() == Some("/hello")
        && response.upstream_header("x-internal-token").is_none()
        && response.header("x-powered-by").is_some()
        && response.header("x-upstream-secret").is_none();
    if ok {
        println!("self-check passed: the filter rewrote the request and the response");
        Ok(())
    } else {
        Err(format!(
            "self-check failed: status {}, body {}",
            response.status,
            String::from_utf8_lossy(&response.body)
        ))
    }
}

fn envoy_version() -> String {
    envoy_harness::envoy_binary()
        .ok()
        .and_then(|binary| {
            std::process::Command::new(binary)
                .arg("--version")
                .output()
                .ok()
        })
        .map(|output| {
            String::from_utf8_lossy(&output.stdout)
                .trim()
                .rsplit(' ')
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .unwrap_or_default()
}
