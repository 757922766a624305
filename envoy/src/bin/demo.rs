//! `make run`: Envoy with every filter chained (envoy/configs/demo.yaml) on 127.0.0.1:PORT, the
//! echo upstream, and a JWKS server, in the foreground. It checks each filter before it prints
//! the curl lines that show them.

#[path = "../../../filters/jwt-auth/tests/tokens/mod.rs"]
mod tokens;

use envoy_harness::config::{config_template, fill_template};
use envoy_harness::echo::CannedReply;
use envoy_harness::{Bootstrap, EchoUpstream, Envoy, EnvoyOptions, Request, Response};
use jsonwebtoken::Algorithm;
use serde_json::json;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

const TEMPLATE: &str = "demo.yaml";

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

/// A day-long RS256 token for `sub` from the demo issuer, signed with the key the JWKS serves.
fn demo_token(sub: &str) -> String {
    let now = tokens::seconds(SystemTime::now());
    tokens::token(
        Algorithm::RS256,
        &json!({"iss": "https://issuer.example", "sub": sub, "aud": "api", "iat": now, "exp": now + 86_400}),
    )
}

fn run() -> Result<(), String> {
    let port = port_argument()?;
    let upstream = EchoUpstream::start().map_err(|e| format!("echo upstream: {e}"))?;
    let jwks_server = EchoUpstream::start().map_err(|e| format!("JWKS server: {e}"))?;
    jwks_server.reply_always(CannedReply {
        status: 200,
        headers: vec![("content-type".into(), b"application/json".to_vec())],
        body: tokens::jwks().to_string().into_bytes(),
    });
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
            ("JWKS_PORT", jwks_server.port().to_string()),
            ("FILTER_WASM_DIR", wasm_dir),
        ],
    )?;
    let options = EnvoyOptions {
        concurrency: 2,
        ..EnvoyOptions::default()
    };
    let envoy = Envoy::start_with(Bootstrap::Yaml(yaml), &options)
        .map_err(|e| format!("Envoy did not start: {e}"))?;
    let token = demo_token("alice");
    self_check(port, &token)?;
    let base = format!("http://127.0.0.1:{port}");
    let mut tampered = token.clone();
    tampered.truncate(tampered.len() - 4);
    tampered.push_str("AAAA");
    println!(
        "\nEnvoy {} is serving the filters on {base} (admin: http://127.0.0.1:{}), upstream echo on port {}.",
        envoy_version(),
        envoy.admin_port(),
        upstream.port()
    );
    println!("The echo upstream answers with the request it received, as JSON.");
    println!("\nheader-rewrite adds x-client-ip and x-original-path and strips x-internal-token on the way up:");
    println!("  curl -s {base}/hello -H 'x-internal-token: s3cret' | python3 -m json.tool");
    println!("on the way back it adds x-powered-by and strips x-upstream-secret (which the echo sets on request):");
    println!("  curl -s -D - -o /dev/null {base}/hello -H 'x-echo-header-x-upstream-secret: leak'");
    println!("\njwt-auth guards /api with keys fetched from the JWKS server (cluster jwks):");
    println!("  TOKEN={token}");
    println!("no token: 401 and www-authenticate");
    println!("  curl -s -i {base}/api/orders");
    println!("a valid token: 200; the upstream sees x-user from the sub claim, and no token");
    println!(
        "  curl -s {base}/api/orders -H \"authorization: Bearer $TOKEN\" | python3 -m json.tool"
    );
    println!("a tampered signature: 401 Jwt verification fails");
    println!("  curl -s -i {base}/api/orders -H 'authorization: Bearer {tampered}'");
    println!("\nrate-limit allows 3 requests a minute per x-client-id, shared by both workers; then 429 with retry-after:");
    println!("  for i in 1 2 3 4 5; do curl -s -o /dev/null -w '%{{http_code}} ' {base}/ -H 'x-client-id: bob'; done; echo");
    println!("  curl -s -i {base}/ -H 'x-client-id: bob'");
    println!("\nthe filters' counters:");
    println!(
        "  curl -s http://127.0.0.1:{}/stats | grep -E 'jwt_auth|demo.http_local_rate_limit'",
        envoy.admin_port()
    );
    println!("\nPress Ctrl-C to stop.");
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

fn failed(what: &str, response: &Response) -> String {
    format!(
        "self-check failed: {what}: status {}, body {}",
        response.status,
        String::from_utf8_lossy(&response.body)
    )
}

/// Proves each filter works before telling the user it does.
fn self_check(port: u16, token: &str) -> Result<(), String> {
    let send = |request: Request| {
        request
            .send(port)
            .map_err(|e| format!("self-check request failed: {e}"))
    };

    let rewritten = send(
        Request::get("/hello")
            .header("x-internal-token", "s3cret")
            .header("x-echo-header-x-upstream-secret", "leak"),
    )?;
    let ok = rewritten.status == 200
        && rewritten.upstream_header("x-original-path").as_deref() == Some("/hello")
        && rewritten.upstream_header("x-internal-token").is_none()
        && rewritten.header("x-powered-by").is_some()
        && rewritten.header("x-upstream-secret").is_none();
    if !ok {
        return Err(failed("header-rewrite", &rewritten));
    }

    let missing = send(Request::get("/api/orders"))?;
    if missing.status != 401 || missing.header("www-authenticate").is_none() {
        return Err(failed("jwt-auth without a token", &missing));
    }
    let allowed =
        send(Request::get("/api/orders").header("authorization", format!("Bearer {token}")))?;
    let ok = allowed.status == 200
        && allowed.upstream_header("x-user").as_deref() == Some("alice")
        && allowed.upstream_header("authorization").is_none();
    if !ok {
        return Err(failed("jwt-auth with a valid token", &allowed));
    }

    // A client id of its own, so the user's curl loop starts with a full bucket.
    let client = format!("self-check-{}", std::process::id());
    let mut statuses = Vec::new();
    let mut last = None;
    for _ in 0..4 {
        let response = send(Request::get("/").header("x-client-id", &client))?;
        statuses.push(response.status);
        last = Some(response);
    }
    let limited = last.expect("four requests");
    if statuses != [200, 200, 200, 429] || limited.header("retry-after").is_none() {
        return Err(failed(
            &format!("rate-limit answered {statuses:?}"),
            &limited,
        ));
    }
    println!("self-check passed: header-rewrite, jwt-auth and rate-limit each did their job");
    Ok(())
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
