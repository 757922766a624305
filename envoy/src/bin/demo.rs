//! `make run`: Envoy with every filter chained (envoy/configs/demo.yaml) on 127.0.0.1:PORT, the
//! echo upstream, and a JWKS server, in the foreground. It checks each filter before it prints
//! the curl lines that show them.

#[path = "../../../filters/jwt-auth/tests/tokens/mod.rs"]
mod tokens;

use envoy_harness::config::{
    config_template, fill_template, filter_wasm, wasm_filter, BootstrapBuilder,
};
use envoy_harness::echo::CannedReply;
use envoy_harness::process::workspace_root;
use envoy_harness::{Bootstrap, EchoUpstream, Envoy, EnvoyOptions, Request, Response};
use jsonwebtoken::Algorithm;
use rate_limit_service::{Limits, Server, Storage};
use serde_json::json;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};
use test_host::scenario::Scenario;

const TEMPLATE: &str = "demo.yaml";

/// Filters made with `make new` since: each runs on a listener of its own (the ports after PORT)
/// with the config of its first scenario file, which the self-check plays in Envoy first.
const NEW_FILTERS: &[&str] = &[
    "basic-auth",
    "cors",
    "rbac",
    "ext-authz",
    "json-redact",
    // make new: filters above.
];

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
    let mut new_filters = Vec::new();
    for (offset, name) in (1..).zip(NEW_FILTERS) {
        let filter_port = port
            .checked_add(offset)
            .ok_or_else(|| format!("no port after {port} for {name}"))?;
        new_filters.push(start_new_filter(
            name,
            filter_port,
            upstream.port(),
            &options,
        )?);
    }
    // global-rate-limit needs its service: on the port after the other filters.
    let global_port = port
        .checked_add(NEW_FILTERS.len() as u16 + 1)
        .ok_or_else(|| format!("no port after {port} for global-rate-limit"))?;
    let (_global_envoy, _service, global_text) =
        start_global_rate_limit(global_port, upstream.port(), &options)?;
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
    for (_, text) in &new_filters {
        println!("{text}");
    }
    println!("{global_text}");
    println!("\nPress Ctrl-C to stop.");
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// Plays the first scenario file of filter `name` in Envoy, then starts Envoy with that filter,
/// configured as the scenario is, on `port`; returns it and the lines that present it.
fn start_new_filter(
    name: &str,
    port: u16,
    upstream_port: u16,
    options: &EnvoyOptions,
) -> Result<(Envoy, String), String> {
    let dir = workspace_root()
        .join("filters")
        .join(name)
        .join("scenarios");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    let file = files
        .first()
        .ok_or_else(|| format!("{}: no scenario file", dir.display()))?;
    let scenario = Scenario::load(file).map_err(|e| e.to_string())?;
    let reports = envoy_harness::scenario::run(&scenario)
        .map_err(|e| format!("self-check of {name}: {e}"))?;
    if let Some(report) = reports.iter().find(|report| !report.failures.is_empty()) {
        return Err(format!(
            "self-check failed: {name}: {}: {}",
            report.name,
            report.failures.join("; ")
        ));
    }
    let module = filter_wasm(&scenario.filter);
    let filter = wasm_filter(&scenario.filter, &module, &scenario.config);
    let mut bootstrap = BootstrapBuilder::new(upstream_port)
        .listener(name, vec![filter])
        .build();
    if let Some(listen) =
        bootstrap.pointer_mut("/static_resources/listeners/0/address/socket_address/port_value")
    {
        *listen = json!(port);
    }
    let envoy = Envoy::start_with(bootstrap, options)
        .map_err(|e| format!("Envoy with {name} did not start: {e}"))?;
    let mut text = format!(
        "\n{name} (filters/{name}/README.md) on http://127.0.0.1:{port}, configured as in {}, which passed in Envoy:\n  {}",
        file.strip_prefix(workspace_root()).unwrap_or(file).display(),
        scenario.config
    );
    // Each exchange of the scenario, as the curl line that replays it.
    for exchange in &scenario.requests {
        let request = &exchange.request;
        let status = exchange
            .expect
            .response
            .as_ref()
            .and_then(|response| response.status)
            // The demo's echo answers 200 where the scenario's upstream answered otherwise.
            .filter(|_| exchange.upstream_response.status == 200)
            .map_or(String::new(), |status| format!(": {status}"));
        let mut line = format!(
            "  curl -s -i -X {} 'http://127.0.0.1:{port}{}'",
            request.method, request.path
        );
        for (header, value) in &request.headers {
            line.push_str(&format!(" -H '{header}: {}'", value.replace('\'', "'\\''")));
        }
        if !request.body.is_empty() {
            line.push_str(&format!(
                " --data '{}'",
                request.body.replace('\'', "'\\''")
            ));
        }
        text.push_str(&format!("\n  # {}{status}\n{line}", exchange.name));
    }
    Ok((envoy, text))
}

/// The limits of the demo's rate limit service: 5 requests a minute per `x-user`, 2 for `guest`.
const DEMO_LIMITS: &str = "domain: demo
descriptors:
  - key: user
    rate_limit: {unit: minute, requests_per_unit: 5}
  - key: user
    value: guest
    rate_limit: {unit: minute, requests_per_unit: 2, name: guests}
";

/// rate-limit-service (counters in memory) and an Envoy whose global-rate-limit asks it about
/// every request with an `x-user`; checked before it is presented.
fn start_global_rate_limit(
    port: u16,
    upstream_port: u16,
    options: &EnvoyOptions,
) -> Result<(Envoy, Server, String), String> {
    let limits = Limits::parse(DEMO_LIMITS).map_err(|e| format!("demo limits: {e}"))?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| format!("rate-limit-service: {e}"))?;
    let service = Server::start(listener, limits, Storage::Memory)
        .map_err(|e| format!("rate-limit-service: {e}"))?;
    let config = json!({
        "domain": "demo",
        "timeout": "0.5s",
        "enable_x_ratelimit_headers": "DRAFT_VERSION_03",
        "rate_limit_service": {
            "grpc_service": {"envoy_grpc": {"cluster_name": "rate_limit_service"}},
            "transport_api_version": "V3"
        },
        "rate_limits": [{"actions": [{"request_headers": {"header_name": "x-user", "descriptor_key": "user"}}]}]
    });
    let filter = wasm_filter(
        "global_rate_limit",
        &filter_wasm("global_rate_limit"),
        &config,
    );
    let mut bootstrap = BootstrapBuilder::new(upstream_port)
        .grpc_cluster("rate_limit_service", service.port())
        .listener("global-rate-limit", vec![filter])
        .build();
    if let Some(listen) =
        bootstrap.pointer_mut("/static_resources/listeners/0/address/socket_address/port_value")
    {
        *listen = json!(port);
    }
    let envoy = Envoy::start_with(bootstrap, options)
        .map_err(|e| format!("Envoy with global-rate-limit did not start: {e}"))?;
    // A user of its own, so that the user's curl loop starts with a full count.
    let user = format!("self-check-{}", std::process::id());
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let response = Request::get("/")
            .header("x-user", &user)
            .send(port)
            .map_err(|e| format!("self-check of global-rate-limit: {e}"))?;
        statuses.push(response.status);
    }
    if statuses != [200, 200, 200, 200, 200, 429] {
        return Err(format!(
            "self-check failed: global-rate-limit answered {statuses:?}"
        ));
    }
    let base = format!("http://127.0.0.1:{port}");
    let text = format!(
        "\nglobal-rate-limit (filters/global-rate-limit/README.md) on {base} asks rate-limit-service \
         (gRPC on 127.0.0.1:{}, counters in memory; with --redis they are shared by every Envoy) \
         about each request with an x-user: 5 a minute per user, 2 for guest, then 429 with x-envoy-ratelimited:\n  \
         for i in 1 2 3 4 5 6; do curl -s -o /dev/null -w '%{{http_code}} ' {base}/ -H 'x-user: carol'; done; echo\n  \
         curl -s -i {base}/ -H 'x-user: guest'   # x-ratelimit-limit: 2, 2;w=60;name=\"guests\"\n  \
         # without x-user no descriptor is built and no check is made:\n  \
         curl -s -o /dev/null -w '%{{http_code}}\\n' {base}/",
        service.port()
    );
    Ok((envoy, service, text))
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
