//! `make bench`, in Envoy under wrk, every suite interleaving its variants in one Envoy:
//! - `chain`: header-rewrite, jwt-auth and rate-limit as three wasm modules, as one chain module
//!   and as their native twins, with the empty filters (bench/results/chain.md);
//! - `filters`: every filter's workloads against the floors (no filter, the no-op module, the
//!   empty filters on the proxy-wasm crate and on sdk-ext) and its native twin, then each
//!   module's size, start-up and memory (bench/results/filters.md and filters.svg, README's
//!   summary);
//! - `hostcalls`: what 20 of one hostcall cost (bench/results/hostcalls.md);
//! - `jwt-algorithms`: jwt-auth per signature algorithm (bench/results/jwt-algorithms.md);
//! - `global-rate-limit`: global-rate-limit against native ratelimit on the same
//!   rate-limit-service, and the service's own decisions per second on one core, in memory and
//!   with Redis (bench/results/global-rate-limit.md).
//!
//! `bench <suite>...` runs only those suites.

#[path = "../../../filters/jwt-auth/tests/tokens/mod.rs"]
mod tokens;

use envoy_harness::bench::{
    hostcall_module, measure, measure_in, median, noop_module, report, start_cost, Check,
    FixedUpstream, Load, Measurement, Variant, HOSTCALLS,
};
use envoy_harness::chart::{Row, Spread};
use envoy_harness::config::{
    default_routes, filter_wasm, native_filter, wasm_filter, BootstrapBuilder,
};
use envoy_harness::CannedReply;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

/// A wrk Lua script that sends 2000 tokens signed with `alg`, in turn: more than any cache here
/// holds, so every request is a full check.
fn unique_tokens_script(alg: jsonwebtoken::Algorithm, now: u64, out_dir: &Path) -> String {
    let unique: Vec<String> = (0..2000)
        .map(|n| tokens::token(alg, &json!({"iss": "https://issuer.example", "aud": "api", "exp": now + 7200, "jti": n.to_string()})))
        .collect();
    let list = out_dir.join(format!("unique-tokens-{alg:?}.txt"));
    let _ = std::fs::write(&list, unique.join("\n"));
    format!(
        "local tokens = {{}}\nfor line in io.lines(\"{}\") do tokens[#tokens + 1] = line end\nlocal n = 0\nrequest = function()\n  n = n + 1\n  return wrk.format(nil, nil, {{[\"authorization\"] = \"Bearer \" .. tokens[(n % #tokens) + 1]}})\nend\n",
        list.display()
    )
}

/// Each algorithm with unique tokens, against the same filter with a repeated token: the
/// difference is what a full check (parse, claims, signature) costs in Envoy's V8.
fn jwt_algorithms_suite(out_dir: &Path) -> (String, Vec<Variant>, String) {
    use jsonwebtoken::Algorithm;
    let now = tokens::seconds(std::time::SystemTime::now());
    let config = json!({
        "providers": {"main": {
            "issuer": "https://issuer.example", "audiences": ["api"],
            "local_jwks": {"inline_string": tokens::jwks().to_string()}
        }},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "main"}}]
    });
    let ours = wasm_filter("jwt_auth", &filter_wasm("jwt_auth"), &config);
    let repeated = format!(
        "Bearer {}",
        tokens::token(
            Algorithm::RS256,
            &json!({"iss": "https://issuer.example", "aud": "api", "exp": now + 7200})
        )
    );
    let mut variants = vec![
        Variant::new("repeated token (cache hit)", vec![ours.clone()])
            .header("authorization", &repeated),
    ];
    for alg in [
        Algorithm::HS256,
        Algorithm::RS256,
        Algorithm::PS256,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
    ] {
        let mut variant = Variant::new(&format!("unique {alg:?} tokens"), vec![ours.clone()]);
        variant.script = Some(unique_tokens_script(alg, now, out_dir));
        variants.push(variant);
    }
    (
        "jwt-auth per algorithm (unique tokens vs a cache hit)".into(),
        variants,
        "repeated token (cache hit)".into(),
    )
}

/// What one hostcall costs: 20 calls (and one) in the request-headers callback, against the
/// no-op module.
/// The request carries the chain benchmark's headers, so map reads copy what the filters copy.
fn hostcall_suite(noop: &Path, out_dir: &Path) -> (String, Vec<Variant>, String) {
    let mut variants = vec![Variant::new(
        "wasm no-op module",
        vec![wasm_filter("noop", noop, &json!({}))],
    )];
    // 20 of a call give its cost per call; one alone shows what the first of a request costs
    // (a call that returns data re-enters the module's allocator, which costs more the first
    // time in a request).
    let single = ["get", "pairs", "metric", "shared_get"];
    let counts = HOSTCALLS
        .iter()
        .map(|(call, _)| (*call, 20))
        .chain(single.iter().map(|call| (*call, 1)));
    for (call, count) in counts {
        let path = out_dir.join(format!("hostcall-{call}-{count}.wasm"));
        if let Ok(module) = hostcall_module(call, count) {
            let _ = std::fs::write(&path, module);
        }
        let name = format!("hostcall_{}_{count}", call.replace('+', "_"));
        variants.push(Variant::new(
            &format!("{count} x {call}"),
            vec![wasm_filter(&name, &path, &json!({}))],
        ));
    }
    let variants = variants
        .into_iter()
        .map(|v| {
            v.header("user-agent", "wrk")
                .header("authorization", &format!("Bearer {}", "x".repeat(600)))
                .header("x-user", "alice")
                .header("x-internal-token", "s")
        })
        .collect();
    (
        "hostcall cost (20 calls, or 1, per request)".into(),
        variants,
        "wasm no-op module".into(),
    )
}

/// The three filters of the chain benchmark, each config written once and given to the wasm
/// filter, to the chain entry and to the native twin alike (the field names are the twins').
struct ChainConfigs {
    header_rewrite: Value,
    jwt_auth: Value,
    rate_limit: Value,
}

impl ChainConfigs {
    fn new() -> ChainConfigs {
        let percent = json!({"default_value": {"numerator": 100, "denominator": "HUNDRED"}});
        ChainConfigs {
            header_rewrite: json!({"mutations": {
                "request_mutations": [
                    {"append": {"header": {"key": "x-client", "value": "%REQ(x-user)%"}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}},
                    {"append": {"header": {"key": "x-static", "value": "1"}}},
                    {"remove": "x-internal-token"}
                ],
                "response_mutations": [{"append": {"header": {"key": "x-powered-by", "value": "proxy-wasm"}}}]
            }}),
            jwt_auth: json!({
                "providers": {"main": {
                    "issuer": "https://issuer.example", "audiences": ["api"],
                    "local_jwks": {"inline_string": tokens::jwks().to_string()},
                    "jwt_cache_config": {"jwt_cache_size": 100}
                }},
                "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "main"}}]
            }),
            // Far more tokens than a run spends: every request pays the full check, none is limited.
            rate_limit: json!({
                "stat_prefix": "bench",
                "token_bucket": {"max_tokens": 4_000_000_000u32, "tokens_per_fill": 4_000_000_000u32, "fill_interval": "1s"},
                "filter_enabled": percent,
                "filter_enforced": percent,
            }),
        }
    }

    fn three_wasm(&self) -> Vec<Value> {
        vec![
            wasm_filter(
                "header_rewrite",
                &filter_wasm("header_rewrite"),
                &self.header_rewrite,
            ),
            wasm_filter("jwt_auth", &filter_wasm("jwt_auth"), &self.jwt_auth),
            wasm_filter("rate_limit", &filter_wasm("rate_limit"), &self.rate_limit),
        ]
    }

    fn chain(&self) -> Vec<Value> {
        let config = json!({"filters": [
            {"name": "header-rewrite", "config": self.header_rewrite},
            {"name": "jwt-auth", "config": self.jwt_auth},
            {"name": "rate-limit", "config": self.rate_limit},
        ]});
        vec![wasm_filter("chain", &filter_wasm("chain"), &config)]
    }

    fn native(&self) -> Vec<Value> {
        vec![
            native_filter(
                "envoy.filters.http.header_mutation",
                "header_mutation.v3.HeaderMutation",
                self.header_rewrite.clone(),
            ),
            native_filter(
                "envoy.filters.http.jwt_authn",
                "jwt_authn.v3.JwtAuthentication",
                self.jwt_auth.clone(),
            ),
            native_filter(
                "envoy.filters.http.local_ratelimit",
                "local_ratelimit.v3.LocalRateLimit",
                self.rate_limit.clone(),
            ),
        ]
    }
}

const NO_FILTER: &str = "no filter";
const THREE_WASM: &str = "3 wasm filters";
const CHAIN: &str = "chain module (3 filters)";
const NATIVE: &str = "3 native twins";
const EMPTY_PROXY_WASM: &str = "empty filter, proxy-wasm crate";
const EMPTY_SDK_EXT: &str = "empty filter, sdk-ext";
/// Empty filters stacked on one listener, so a per-filter difference far below the noise of
/// one request shows `STACK` times over.
const STACK: usize = 10;

/// The empty module `crate_lib` (`bench_empty_sdk_ext`), as `make bench` optimizes it.
fn bench_module(crate_lib: &str) -> PathBuf {
    envoy_harness::process::workspace_root()
        .join("target")
        .join("bench-modules")
        .join(format!("{crate_lib}.wasm"))
}

/// `count` plugins of one module sharing one VM.
fn stacked(name: &str, module: &Path, count: usize) -> Vec<Value> {
    (0..count)
        .map(|index| {
            let mut filter = wasm_filter(&format!("{name}_{index}"), module, &json!({}));
            filter["typed_config"]["config"]["vm_config"]["vm_id"] = json!(name);
            filter
        })
        .collect()
}

/// The variants of the chain benchmark; `full` adds the empty filters (the one-worker run).
fn chain_variants(noop: &Path, token: &str, full: bool) -> Vec<Variant> {
    let configs = ChainConfigs::new();
    let acting = |variant: Variant| {
        variant
            .check(Check::status(200).response_header("x-powered-by", "proxy-wasm"))
            .check(Check::status(401).without("authorization"))
    };
    let mut variants = vec![Variant::new(NO_FILTER, vec![])];
    if full {
        let empty_proxy_wasm = bench_module("bench_empty_proxy_wasm");
        let empty_sdk_ext = bench_module("bench_empty_sdk_ext");
        variants.extend([
            Variant::new(
                "wasm no-op module (ABI floor)",
                vec![wasm_filter("noop", noop, &json!({}))],
            ),
            Variant::new(EMPTY_PROXY_WASM, stacked("empty_pw", &empty_proxy_wasm, 1)),
            Variant::new(EMPTY_SDK_EXT, stacked("empty_sdk", &empty_sdk_ext, 1)),
            Variant::new(
                &format!("{EMPTY_PROXY_WASM} x{STACK}"),
                stacked("empty_pw", &empty_proxy_wasm, STACK),
            ),
            Variant::new(
                &format!("{EMPTY_SDK_EXT} x{STACK}"),
                stacked("empty_sdk", &empty_sdk_ext, STACK),
            ),
        ]);
    }
    variants.extend([
        acting(Variant::new(THREE_WASM, configs.three_wasm())),
        acting(Variant::new(CHAIN, configs.chain())),
        acting(Variant::new(NATIVE, configs.native())),
    ]);
    variants
        .into_iter()
        .map(|variant| {
            variant
                .header("authorization", token)
                .header("x-user", "alice")
                .header("x-internal-token", "s")
        })
        .collect()
}

fn find<'a>(measurements: &'a [Measurement], name: &str) -> Option<&'a Measurement> {
    measurements.iter().find(|m| m.name == name)
}

/// `values`' median and range, each formatted by `show`.
fn median_range(values: &[f64], show: impl Fn(f64) -> String) -> String {
    let min = values.iter().copied().fold(f64::MAX, f64::min);
    let max = values.iter().copied().fold(f64::MIN, f64::max);
    format!("{} ({} – {})", show(median(values)), show(min), show(max))
}

/// Per-round values of `a` against `b`: the rounds are interleaved, so round i of both ran under
/// the same conditions.
fn paired(a: &[f64], b: &[f64], op: impl Fn(f64, f64) -> f64) -> Vec<f64> {
    a.iter().zip(b).map(|(a, b)| op(*a, *b)).collect()
}

/// How many times `a`'s throughput `b`'s is: from wrk's rps, and from Envoy's CPU time per
/// request (the rps each would reach on a core of its own).
fn ratio_row(label: &str, a: &Measurement, b: &Measurement, target: &str) -> String {
    let times = |ratio: f64| format!("{ratio:.2}×");
    format!(
        "| {label} | {} | {} | {target} |\n",
        median_range(&paired(&a.rounds, &b.rounds, |a, b| a / b), times),
        median_range(&paired(&a.cpu_rounds, &b.cpu_rounds, |a, b| b / a), times),
    )
}

/// How many µs per request `a` costs more than `b`, divided by `per` (filters stacked): from
/// 1e6/rps and from Envoy's CPU time per request.
fn micros_row(label: &str, a: &Measurement, b: &Measurement, per: f64, target: &str) -> String {
    let micros = |value: f64| format!("{value:+.2} µs");
    format!(
        "| {label} | {} | {} | {target} |\n",
        median_range(
            &paired(&a.rounds, &b.rounds, |a, b| (1e6 / a - 1e6 / b) / per),
            micros
        ),
        median_range(
            &paired(&a.cpu_rounds, &b.cpu_rounds, |a, b| (a - b) / per),
            micros
        ),
    )
}

/// The targets of the chain benchmark, from one run's measurements.
fn chain_summary(one: &[Measurement], multi: &[Measurement], multi_load: &Load) -> String {
    let mut out = String::from(
        "### Targets\n\nMedian of the interleaved rounds' pairs (range in brackets).\n\n| measure | from wrk rps | from Envoy CPU µs/request | target |\n|---|---|---|---|\n",
    );
    let workers = multi_load.concurrency;
    for (measurements, suffix) in [
        (one, String::new()),
        (multi, format!(", {workers} workers")),
    ] {
        if let (Some(chain), Some(three), Some(native)) = (
            find(measurements, CHAIN),
            find(measurements, THREE_WASM),
            find(measurements, NATIVE),
        ) {
            out.push_str(&ratio_row(
                &format!("chain / 3 wasm filters (rps){suffix}"),
                chain,
                three,
                "≥ 1.4×",
            ));
            out.push_str(&ratio_row(
                &format!("chain / 3 native twins (rps){suffix}"),
                chain,
                native,
                "≥ 0.9×, goal ≥ 1.0×",
            ));
        }
    }
    if let (Some(sdk), Some(proxy_wasm)) = (find(one, EMPTY_SDK_EXT), find(one, EMPTY_PROXY_WASM)) {
        out.push_str(&micros_row(
            "empty filter: sdk-ext − proxy-wasm crate",
            sdk,
            proxy_wasm,
            1.0,
            "≤ 0.3 µs",
        ));
    }
    if let (Some(sdk), Some(proxy_wasm)) = (
        find(one, &format!("{EMPTY_SDK_EXT} x{STACK}")),
        find(one, &format!("{EMPTY_PROXY_WASM} x{STACK}")),
    ) {
        out.push_str(&micros_row(
            &format!("the same, from {STACK} stacked, per filter"),
            sdk,
            proxy_wasm,
            STACK as f64,
            "≤ 0.3 µs",
        ));
    }
    out
}

/// Where the run happened: date, CPU, cores, Envoy.
fn machine() -> String {
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let envoy = envoy_harness::envoy_binary()
        .and_then(|binary| Command::new(binary).arg("--version").output())
        .map(|out| {
            let text = String::from_utf8_lossy(&out.stdout);
            // `envoy  version: <commit>/1.40.0/Clean/RELEASE/BoringSSL`
            text.split_once("version:")
                .and_then(|(_, rest)| rest.split('/').nth(1))
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_default();
    format!("{date}; {cpu}, {cores} cores; Envoy {envoy}")
}

/// The RS256 token every chain request carries, valid for two hours.
fn chain_token() -> String {
    let now = tokens::seconds(std::time::SystemTime::now());
    format!(
        "Bearer {}",
        tokens::token(
            jsonwebtoken::Algorithm::RS256,
            &json!({"iss": "https://issuer.example", "aud": "api", "exp": now + 7200})
        )
    )
}

/// The chain benchmark: three filters as three wasm filters, as one chain module and as their
/// native twins, against no filter and the empty filters, with one worker and with several.
/// Writes bench/results/chain.md.
fn chain_bench(noop: &Path) -> Result<(String, Vec<Measurement>), String> {
    let token = chain_token();
    for module in ["bench_empty_proxy_wasm", "bench_empty_sdk_ext"] {
        let path = bench_module(module);
        if !path.is_file() {
            return Err(format!("{} is missing: run `make bench`", path.display()));
        }
    }
    let one = tuned(Load {
        duration: Duration::from_secs(3),
        rounds: 5,
        ..Load::default()
    });
    let multi = tuned(Load {
        concurrency: 2,
        threads: 2,
        connections: 32,
        duration: Duration::from_secs(3),
        rounds: 3,
        ..Load::default()
    });
    let one_variants = chain_variants(noop, &token, true);
    let multi_variants = chain_variants(noop, &token, false);
    eprintln!(
        "bench: chain, one worker ({} variants)...",
        one_variants.len()
    );
    let one_measured = measure(&one_variants, &one).map_err(|error| error.to_string())?;
    eprintln!(
        "bench: chain, {} workers ({} variants)...",
        multi.concurrency,
        multi_variants.len()
    );
    let multi_measured = measure(&multi_variants, &multi).map_err(|error| error.to_string())?;
    let title = "chain: header-rewrite, jwt-auth (cached RS256 token), rate-limit (never limiting)";
    let mut out = format!(
        "## {title}\n\n{}. Every request carries a valid JWT; `direct_response` route. \
         1e6/rps is the time per request when Envoy's workers are saturated; Envoy CPU µs/request is the CPU time all Envoy threads used, per request (it hardly moves when \
         other processes take cores, while rps does); spread is (max − min) / median of the \
         rounds.\n\n",
        machine()
    );
    out.push_str(&chain_summary(&one_measured, &multi_measured, &multi));
    out.push('\n');
    out.push_str(&report(
        &format!("One worker ({})", one.describe()),
        &one_measured,
        NO_FILTER,
    ));
    out.push('\n');
    out.push_str(&report(
        &format!("{} workers ({})", multi.concurrency, multi.describe()),
        &multi_measured,
        NO_FILTER,
    ));
    let dir = envoy_harness::process::workspace_root()
        .join("bench")
        .join("results");
    let path = dir.join("chain.md");
    std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&path, &out))
        .map_err(|error| format!("{}: {error}", path.display()))?;
    eprintln!("bench: written to {}", path.display());
    Ok((out, one_measured))
}

/// The names of the floor and baseline variants of the filters benchmark.
const ABI_FLOOR: &str = "wasm no-op module (ABI floor)";
const NO_FILTER_UPSTREAM: &str = "no filter, loopback upstream";
const NO_FILTER_JSON: &str = "no filter, 4 KB JSON reply";
const APP_ORIGIN: &str = "https://app.example";
/// htpasswd's `{SHA}` of `password`, and alice's Basic credentials with it.
const SHA_PASSWORD: &str = "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=";
const ALICE_BASIC: &str = "Basic YWxpY2U6cGFzc3dvcmQ=";

/// One workload of one filter: our module and, where Envoy has one, its native twin, each with
/// the same config and requests, measured against the no-filter variant of the same route.
struct Workload {
    /// The module (`target/filters/<module>.wasm`).
    module: &'static str,
    /// What is sent, e.g. `preflight`.
    label: &'static str,
    ours: Variant,
    native: Option<Variant>,
    /// The no-filter variant with the same route and requests.
    baseline: &'static str,
}

impl Workload {
    fn name(&self) -> String {
        format!("{}: {}", self.module.replace('_', "-"), self.label)
    }
}

fn header_rewrite_config() -> Value {
    json!({"mutations": {
        "request_mutations": [
            {"append": {"header": {"key": "x-client", "value": "%REQ(x-user)%"}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}},
            {"append": {"header": {"key": "x-static", "value": "1"}}},
            {"remove": "x-internal-token"}
        ],
        "response_mutations": [{"append": {"header": {"key": "x-powered-by", "value": "proxy-wasm"}}}]
    }})
}

fn jwt_config(cache: bool) -> Value {
    let mut provider = json!({
        "issuer": "https://issuer.example", "audiences": ["api"],
        "local_jwks": {"inline_string": tokens::jwks().to_string()}
    });
    if cache {
        provider["jwt_cache_config"] = json!({"jwt_cache_size": 100});
    }
    json!({
        "providers": {"main": provider},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "main"}}]
    })
}

/// A bucket far larger than a run spends: every request pays the full check, none is limited.
fn rate_limit_config() -> Value {
    let percent = json!({"default_value": {"numerator": 100, "denominator": "HUNDRED"}});
    json!({
        "stat_prefix": "bench",
        "token_bucket": {"max_tokens": 4_000_000_000u32, "tokens_per_fill": 4_000_000_000u32, "fill_interval": "1s"},
        "filter_enabled": percent,
        "filter_enforced": percent,
        "enable_x_ratelimit_headers": "DRAFT_VERSION_03",
    })
}

fn cors_policy() -> Value {
    json!({
        "allow_origin_string_match": [{"exact": APP_ORIGIN}],
        "allow_methods": "GET,POST",
        "allow_headers": "authorization,content-type",
        "max_age": "600"
    })
}

/// Native cors applies the route's CorsPolicy, and only on a route to a cluster.
fn cors_routes(native: bool) -> Value {
    let mut route = json!({"match": {"prefix": "/"}, "route": {"cluster": "upstream"}});
    if native {
        let mut policy = cors_policy();
        policy["@type"] =
            json!("type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy");
        route["typed_per_filter_config"] = json!({"envoy.filters.http.cors": policy});
    }
    json!([route])
}

fn ext_authz_config() -> Value {
    json!({
        "http_service": {
            "server_uri": {"uri": "http://authz.example", "cluster": "authz", "timeout": "1s"},
            "authorization_response": {
                "allowed_client_headers_on_success": {"patterns": [{"exact": "x-authz"}]}
            }
        }
    })
}

/// About 4 KB of JSON with a nested member and an array of cards to redact; under Envoy's
/// 4096-byte limit of a `direct_response` body.
fn json_document() -> String {
    let cards: Vec<String> = (0..34)
        .map(|i| format!("{{\"number\": \"4111-1111-{i:04}\", \"holder\": \"Card holder {i}\", \"limit\": {}}}", 1000 + i))
        .collect();
    format!(
        "{{\"user\": {{\"name\": \"Ann\", \"ssn\": \"123-45-6789\"}}, \"cards\": [{}]}}",
        cards.join(", ")
    )
}

fn json_routes() -> Value {
    json!([{
        "match": {"prefix": "/"},
        "direct_response": {"status": 200, "body": {"inline_string": json_document()}},
        "response_headers_to_add": [{
            "header": {"key": "content-type", "value": "application/json"},
            "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"
        }]
    }])
}

fn workloads(out_dir: &Path) -> Vec<Workload> {
    use jsonwebtoken::Algorithm;
    let now = tokens::seconds(std::time::SystemTime::now());
    let wasm =
        |module: &str, config: &Value| vec![wasm_filter(module, &filter_wasm(module), config)];
    let native = |twin: &str, type_name: &str, config: &Value| {
        vec![native_filter(
            &format!("envoy.filters.http.{twin}"),
            type_name,
            config.clone(),
        )]
    };
    let pair = |module: &'static str,
                label: &'static str,
                config: Value,
                twin: Option<(&str, &str)>,
                shape: &dyn Fn(Variant) -> Variant,
                baseline: &'static str| {
        let name = format!("{}: {label}", module.replace('_', "-"));
        Workload {
            module,
            label,
            ours: shape(Variant::new(&name, wasm(module, &config))),
            native: twin.map(|(twin, type_name)| {
                shape(Variant::new(
                    &format!("native {twin}: {label}"),
                    native(twin, type_name, &config),
                ))
            }),
            baseline,
        }
    };
    let repeated = format!(
        "Bearer {}",
        tokens::token(
            Algorithm::RS256,
            &json!({"iss": "https://issuer.example", "aud": "api", "exp": now + 7200})
        )
    );
    let unique = unique_tokens_script(Algorithm::RS256, now, out_dir);
    let jwt_twin = Some(("jwt_authn", "jwt_authn.v3.JwtAuthentication"));
    vec![
        pair(
            "header_rewrite",
            "4 mutations",
            header_rewrite_config(),
            Some(("header_mutation", "header_mutation.v3.HeaderMutation")),
            &|v| {
                v.header("x-user", "alice")
                    .header("x-internal-token", "s")
                    .check(Check::status(200).response_header("x-powered-by", "proxy-wasm"))
            },
            NO_FILTER,
        ),
        pair(
            "jwt_auth",
            "RS256, repeated token (cache)",
            jwt_config(true),
            jwt_twin,
            &|v| {
                v.header("authorization", &repeated)
                    .check(Check::status(200))
                    .check(Check::status(401).without("authorization"))
            },
            NO_FILTER,
        ),
        pair(
            "jwt_auth",
            "RS256, unique tokens",
            jwt_config(false),
            jwt_twin,
            &|mut v| {
                v.script = Some(unique.clone());
                v.check(Check::status(401))
            },
            NO_FILTER,
        ),
        pair(
            "rate_limit",
            "under the limit",
            rate_limit_config(),
            Some(("local_ratelimit", "local_ratelimit.v3.LocalRateLimit")),
            &|v| v.check(Check::status(200).response_header("x-ratelimit-limit", "4000000000")),
            NO_FILTER,
        ),
        pair(
            "basic_auth",
            "{SHA} password",
            json!({"users": {"inline_string": format!("alice:{SHA_PASSWORD}")}}),
            Some(("basic_auth", "basic_auth.v3.BasicAuth")),
            &|v| {
                v.header("authorization", ALICE_BASIC)
                    .check(Check::status(200))
                    .check(Check::status(401).without("authorization"))
            },
            NO_FILTER,
        ),
        cors_workload("preflight", true),
        cors_workload("actual request", false),
        pair(
            "rbac",
            "header principal",
            json!({"rules": {"action": "ALLOW", "policies": {"alice-only": {
                "permissions": [{"any": true}],
                "principals": [{"header": {"name": "x-user", "string_match": {"exact": "alice"}}}]
            }}}}),
            Some(("rbac", "rbac.v3.RBAC")),
            &|v| {
                v.header("x-user", "alice")
                    .check(Check::status(200))
                    .check(Check::status(403).without("x-user"))
            },
            NO_FILTER,
        ),
        pair(
            "ext_authz",
            "allowed by the service",
            ext_authz_config(),
            Some(("ext_authz", "ext_authz.v3.ExtAuthz")),
            &|v| v.check(Check::status(200).response_header("x-authz", "ok")),
            NO_FILTER,
        ),
        pair(
            "json_redact",
            "4 KB JSON reply",
            json!({"rules": [{"direction": "response", "redact": ["/user/ssn", "/cards/*/number"]}]}),
            None,
            &|v| {
                v.routes(json_routes())
                    .check(Check::status(200).body_contains("\"ssn\": \"***\""))
            },
            NO_FILTER_JSON,
        ),
    ]
}

fn cors_workload(label: &'static str, preflight: bool) -> Workload {
    let shape = |variant: Variant, native: bool| {
        let variant = variant
            .routes(cors_routes(native))
            .header("origin", APP_ORIGIN)
            .check(Check::status(200).response_header("access-control-allow-origin", APP_ORIGIN));
        if preflight {
            variant
                .method("OPTIONS")
                .header("access-control-request-method", "POST")
        } else {
            variant
        }
    };
    let mut wasm_policy = cors_policy();
    wasm_policy["match"] = json!({"prefix": "/"});
    Workload {
        module: "cors",
        label,
        ours: shape(
            Variant::new(
                &format!("cors: {label}"),
                vec![wasm_filter(
                    "cors",
                    &filter_wasm("cors"),
                    &json!({"policies": [wasm_policy]}),
                )],
            ),
            false,
        ),
        native: Some(shape(
            Variant::new(
                &format!("native cors: {label}"),
                vec![native_filter(
                    "envoy.filters.http.cors",
                    "cors.v3.Cors",
                    json!({}),
                )],
            ),
            true,
        )),
        baseline: if preflight {
            NO_FILTER
        } else {
            NO_FILTER_UPSTREAM
        },
    }
}

/// A median and its range, from per-round values.
fn spread(values: &[f64]) -> Spread {
    Spread {
        median: median(values),
        min: values.iter().copied().fold(f64::MAX, f64::min),
        max: values.iter().copied().fold(f64::MIN, f64::max),
    }
}

/// Envoy CPU µs per request that `a` costs above `b`, round by round.
fn cpu_above(a: &Measurement, b: &Measurement) -> Vec<f64> {
    paired(&a.cpu_rounds, &b.cpu_rounds, |a, b| a - b)
}

/// What `a` costs above `baseline`, less what `floor` costs above `no_filter`: a filter's own
/// work above a floor, round by round.
fn above_floor(
    a: &Measurement,
    baseline: &Measurement,
    floor: &Measurement,
    no_filter: &Measurement,
) -> Vec<f64> {
    paired(
        &cpu_above(a, baseline),
        &cpu_above(floor, no_filter),
        |a, b| a - b,
    )
}

fn micros(spread: Spread) -> String {
    format!(
        "{:+.1} ({:+.1} – {:+.1})",
        spread.median, spread.min, spread.max
    )
}

fn times(spread: Spread) -> String {
    format!(
        "{:.2}× ({:.2}× – {:.2}×)",
        spread.median, spread.min, spread.max
    )
}

/// Our module against its native twin: (rps ratio, CPU ratio), round by round.
fn versus_native(ours: &Measurement, native: &Measurement) -> (Spread, Spread) {
    (
        spread(&paired(&ours.rounds, &native.rounds, |a, b| a / b)),
        spread(&paired(&ours.cpu_rounds, &native.cpu_rounds, |a, b| b / a)),
    )
}

/// The file sizes of a module: raw (as cargo built it) and optimized (as Envoy loads it).
fn module_sizes(module: &str) -> (Option<u64>, Option<u64>) {
    let root = envoy_harness::process::workspace_root().join("target");
    let raw_dir = root.join("wasm").join("wasm32-wasip1").join("release");
    let (raw, optimized) = if module.starts_with("bench_") {
        (raw_dir.join(format!("{module}.wasm")), bench_module(module))
    } else {
        (
            raw_dir.join("modules").join(format!("{module}.wasm")),
            root.join("filters").join(format!("{module}.wasm")),
        )
    };
    let size = |path: PathBuf| std::fs::metadata(path).ok().map(|meta| meta.len());
    (size(raw), size(optimized))
}

fn kib(bytes: Option<u64>) -> String {
    bytes.map_or("-".into(), |bytes| {
        format!("{:.0} KB", bytes as f64 / 1000.0)
    })
}

/// The filters benchmark: every filter's workloads, its native twin and the floors in one
/// Envoy, interleaved; then each module's start-up cost and memory in Envoys of their own.
/// Writes bench/results/filters.md and filters.svg, and the README's summary.
fn filters_bench(noop: &Path, out_dir: &Path, chain: &[Measurement]) -> Result<String, String> {
    let upstream = FixedUpstream::start(CannedReply {
        status: 200,
        headers: vec![("content-type".into(), b"text/plain".to_vec())],
        body: b"ok".to_vec(),
    })
    .map_err(|error| error.to_string())?;
    let authz = FixedUpstream::start(CannedReply {
        status: 200,
        headers: vec![("x-authz".into(), b"ok".to_vec())],
        body: Vec::new(),
    })
    .map_err(|error| error.to_string())?;
    let bootstrap = BootstrapBuilder::new(upstream.port()).cluster("authz", authz.port());
    let empty_proxy_wasm = bench_module("bench_empty_proxy_wasm");
    let empty_sdk_ext = bench_module("bench_empty_sdk_ext");
    let floors = vec![
        Variant::new(NO_FILTER, vec![]),
        Variant::new(NO_FILTER_UPSTREAM, vec![]).routes(default_routes()),
        Variant::new(NO_FILTER_JSON, vec![]).routes(json_routes()),
        Variant::new(ABI_FLOOR, vec![wasm_filter("noop", noop, &json!({}))]),
        Variant::new(EMPTY_PROXY_WASM, stacked("empty_pw", &empty_proxy_wasm, 1)),
        Variant::new(EMPTY_SDK_EXT, stacked("empty_sdk", &empty_sdk_ext, 1)),
    ];
    let workloads = workloads(out_dir);
    let mut variants = floors.clone();
    for workload in &workloads {
        variants.push(workload.ours.clone());
        variants.extend(workload.native.clone());
    }
    let load = tuned(Load {
        duration: Duration::from_secs(3),
        rounds: 3,
        ..Load::default()
    });
    eprintln!(
        "bench: filters, one worker ({} variants, {})...",
        variants.len(),
        load.describe()
    );
    let measured =
        measure_in(&variants, &load, bootstrap.clone()).map_err(|error| error.to_string())?;
    let get =
        |name: &str| find(&measured, name).ok_or_else(|| format!("no measurement named {name:?}"));
    let (no_filter, abi, sdk) = (get(NO_FILTER)?, get(ABI_FLOOR)?, get(EMPTY_SDK_EXT)?);
    let proxy_wasm = get(EMPTY_PROXY_WASM)?;

    // Start-up and memory: the floors, then one workload per module and the chain.
    let mut start_variants: Vec<(String, Variant)> = vec![
        ("(no filter)".into(), floors[0].clone()),
        ("noop (ABI floor)".into(), floors[3].clone()),
        ("bench_empty_proxy_wasm".into(), floors[4].clone()),
        ("bench_empty_sdk_ext".into(), floors[5].clone()),
    ];
    for workload in &workloads {
        if !start_variants
            .iter()
            .any(|(module, _)| module == workload.module)
        {
            start_variants.push((workload.module.into(), workload.ours.clone()));
        }
    }
    let token = chain_token();
    start_variants.push((
        "chain".into(),
        chain_variants(noop, &token, false)
            .into_iter()
            .find(|variant| variant.name == CHAIN)
            .ok_or("no chain variant")?,
    ));
    let start_load = Load {
        warmup: Duration::from_secs(2),
        ..Load::default()
    };
    let mut starts = Vec::new();
    for (module, variant) in &start_variants {
        eprintln!("bench: start-up and memory, {module} (3 starts)...");
        let cost = start_cost(variant, &bootstrap, &start_load, 3)
            .map_err(|error| format!("{module}: {error}"))?;
        starts.push((module.clone(), cost));
    }

    let mut out = format!(
        "## Every filter against the wasm floors and its native twin\n\n{}. One Envoy, \
         {}; every variant on a listener of its own, `direct_response` routes unless the row says \
         otherwise (cors and the upstream baseline go to a loopback upstream). µs are Envoy's CPU \
         time per request (all threads, from /proc) above the row's baseline: median of the \
         rounds' pairs, min – max in brackets. Regenerate with `make bench`.\n\n",
        machine(),
        load.describe()
    );
    // Targets.
    out.push_str("### Targets\n\n| measure | measured | target |\n|---|---|---|\n");
    out.push_str(&format!(
        "| empty sdk-ext filter above the ABI floor | {} µs | ≤ 0.5 µs |\n",
        micros(spread(&cpu_above(sdk, abi)))
    ));
    out.push_str(&format!(
        "| empty proxy-wasm crate filter above the ABI floor | {} µs | (for comparison) |\n",
        micros(spread(&cpu_above(proxy_wasm, abi)))
    ));
    let simple = ["header_rewrite", "cors", "basic_auth", "rbac", "rate_limit"];
    let mut rows = Vec::new();
    let mut table = String::from(
        "### Per workload\n\n| workload | rps | p50 / p99 | µs above no filter | µs above the ABI floor | µs above the SDK floor | native twin: rps | native: µs above no filter | ours / native (rps) | ours / native (CPU) |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for workload in &workloads {
        let ours = get(&workload.ours.name)?;
        let baseline = get(workload.baseline)?;
        let own_above_sdk = spread(&above_floor(ours, baseline, sdk, no_filter));
        let native = match &workload.native {
            Some(variant) => Some(get(&variant.name)?),
            None => None,
        };
        let name = workload.name();
        if simple.contains(&workload.module) {
            out.push_str(&format!(
                "| {name}: own work above the SDK floor | {} µs | ≤ 1 µs |\n",
                micros(own_above_sdk)
            ));
        }
        let (rps_ratio, cpu_ratio) = native.map(|native| versus_native(ours, native)).unzip();
        if workload.module == "jwt_auth" {
            let target = if workload.label.contains("repeated") {
                "≥ 1.0×"
            } else {
                "≥ 0.5×"
            };
            if let (Some(rps_ratio), Some(cpu_ratio)) = (rps_ratio, cpu_ratio) {
                out.push_str(&format!(
                    "| {name} / native jwt_authn | {} (rps), {} (CPU) | {target} |\n",
                    times(rps_ratio),
                    times(cpu_ratio)
                ));
            }
        }
        let ours_above = spread(&cpu_above(ours, baseline));
        let native_above = native.map(|native| spread(&cpu_above(native, baseline)));
        table.push_str(&format!(
            "| {name}{} | {:.0} | {:.0} / {:.0} µs | {} | {} | {} | {} | {} | {} | {} |\n",
            if workload.baseline == NO_FILTER {
                String::new()
            } else {
                format!(" (baseline: {})", workload.baseline)
            },
            ours.rps,
            ours.p50_us,
            ours.p99_us,
            micros(ours_above),
            micros(spread(&above_floor(ours, baseline, abi, no_filter))),
            micros(own_above_sdk),
            native.map_or("no twin".into(), |native| format!("{:.0}", native.rps)),
            native_above.map_or("-".into(), micros),
            rps_ratio.map_or("-".into(), times),
            cpu_ratio.map_or("-".into(), times),
        ));
        rows.push(Row {
            label: name,
            ours: Some(ours_above),
            native: native_above,
        });
    }
    if let (Some(chain_module), Some(native), Some(three), Some(base)) = (
        find(chain, CHAIN),
        find(chain, NATIVE),
        find(chain, THREE_WASM),
        find(chain, NO_FILTER),
    ) {
        let (rps_ratio, cpu_ratio) = versus_native(chain_module, native);
        out.push_str(&format!(
            "| chain module / native chain (header-rewrite, jwt-auth, rate-limit) | {} (rps), {} (CPU) | ≥ 0.9× (issue 11) |\n",
            times(rps_ratio),
            times(cpu_ratio)
        ));
        let (three_rps, three_cpu) = versus_native(chain_module, three);
        out.push_str(&format!(
            "| chain module / the same 3 as wasm modules | {} (rps), {} (CPU) | ≥ 1.4× (issue 11) |\n",
            times(three_rps),
            times(three_cpu)
        ));
        let ours_above = spread(&cpu_above(chain_module, base));
        let native_above = spread(&cpu_above(native, base));
        table.push_str(&format!(
            "| chain: header-rewrite + jwt-auth (cache) + rate-limit, from chain.md's run | {:.0} | {:.0} / {:.0} µs | {} | - | - | {:.0} | {} | {} | {} |\n",
            chain_module.rps,
            chain_module.p50_us,
            chain_module.p99_us,
            micros(ours_above),
            native.rps,
            micros(native_above),
            times(rps_ratio),
            times(cpu_ratio)
        ));
        rows.push(Row {
            label: "chain: header-rewrite, jwt-auth, rate-limit".into(),
            ours: Some(ours_above),
            native: Some(native_above),
        });
        rows.push(Row {
            label: "the same as 3 wasm modules".into(),
            ours: Some(spread(&cpu_above(three, base))),
            native: None,
        });
    }
    out.push('\n');
    out.push_str(&table);
    out.push_str(
        "\n### Floors\n\n| variant | rps | p50 / p99 | µs above no filter |\n|---|---|---|---|\n",
    );
    for floor in [NO_FILTER, ABI_FLOOR, EMPTY_PROXY_WASM, EMPTY_SDK_EXT] {
        let measurement = get(floor)?;
        out.push_str(&format!(
            "| {floor} | {:.0} | {:.0} / {:.0} µs | {} |\n",
            measurement.rps,
            measurement.p50_us,
            measurement.p99_us,
            micros(spread(&cpu_above(measurement, no_filter)))
        ));
    }
    // Modules.
    let base_start = starts.first().map(|(_, cost)| *cost);
    out.push_str(&format!(
        "\n### Modules\n\nSizes as built (raw) and after wasm-opt (as Envoy loads them). Start-up is Envoy's \
         `server.initialization_time_ms` (which includes compiling and starting every VM) above an Envoy \
         with no filter; memory is Envoy's RSS after {} s of load, above the same. Medians of 3 starts, \
         one worker.\n\n| module | raw | optimized | start-up above no filter | RSS above no filter |\n|---|---|---|---|---|\n",
        start_load.warmup.as_secs()
    ));
    for (module, cost) in &starts {
        let (raw, optimized) = if module.starts_with('(') || module.starts_with("noop") {
            (None, None)
        } else {
            module_sizes(module)
        };
        let (init, rss) = base_start.map_or((f64::NAN, f64::NAN), |base| {
            (cost.init_ms - base.init_ms, cost.rss_mib - base.rss_mib)
        });
        out.push_str(&format!(
            "| {module} | {} | {} | {} | {} |\n",
            kib(raw),
            kib(optimized),
            if module.starts_with('(') {
                format!("{:.0} ms (absolute)", cost.init_ms)
            } else {
                format!("{init:+.0} ms")
            },
            if module.starts_with('(') {
                format!("{:.1} MiB (absolute)", cost.rss_mib)
            } else {
                format!("{rss:+.1} MiB")
            },
        ));
    }
    out.push('\n');
    out.push_str(&report(
        &format!("Every variant ({})", load.describe()),
        &measured,
        NO_FILTER,
    ));
    let dir = envoy_harness::process::workspace_root()
        .join("bench")
        .join("results");
    std::fs::create_dir_all(&dir).map_err(|error| error.to_string())?;
    let floors_drawn = vec![
        (
            "ABI floor".to_string(),
            spread(&cpu_above(abi, no_filter)).median,
        ),
        (
            "empty proxy-wasm filter".to_string(),
            spread(&cpu_above(proxy_wasm, no_filter)).median,
        ),
        (
            "empty sdk-ext filter".to_string(),
            spread(&cpu_above(sdk, no_filter)).median,
        ),
    ];
    envoy_harness::chart::write_svg(
        &dir.join("filters.svg"),
        &format!(
            "Envoy CPU per request above no filter, one worker ({})",
            machine()
        ),
        "µs per request (median of rounds; whiskers: min – max)",
        &rows,
        &floors_drawn,
    )?;
    let path = dir.join("filters.md");
    std::fs::write(&path, &out).map_err(|error| format!("{}: {error}", path.display()))?;
    eprintln!("bench: written to {} and filters.svg", path.display());
    update_readme(&summary(&workloads, &measured, chain))?;
    Ok(out)
}

/// The README's summary: one line per workload.
fn summary(workloads: &[Workload], measured: &[Measurement], chain: &[Measurement]) -> String {
    let mut out = format!(
        "Measured by `make bench` on {}; one worker. µs: Envoy CPU time per request above no filter \
         (medians). Full tables: [bench/results/filters.md](bench/results/filters.md), chart: \
         [filters.svg](bench/results/filters.svg), chain: [chain.md](bench/results/chain.md).\n\n\
         | workload | ours: µs | native twin: µs | ours / native (rps) | module (optimized) |\n|---|---|---|---|---|\n",
        machine()
    );
    for workload in workloads {
        let (Some(ours), Some(baseline)) = (
            find(measured, &workload.ours.name),
            find(measured, workload.baseline),
        ) else {
            continue;
        };
        let native = workload
            .native
            .as_ref()
            .and_then(|variant| find(measured, &variant.name));
        out.push_str(&format!(
            "| {} | {:+.1} | {} | {} | {} |\n",
            workload.name(),
            spread(&cpu_above(ours, baseline)).median,
            native.map_or("no twin".into(), |native| format!(
                "{:+.1}",
                spread(&cpu_above(native, baseline)).median
            )),
            native.map_or("-".into(), |native| format!(
                "{:.2}×",
                versus_native(ours, native).0.median
            )),
            kib(module_sizes(workload.module).1),
        ));
    }
    if let (Some(chain_module), Some(native), Some(base)) = (
        find(chain, CHAIN),
        find(chain, NATIVE),
        find(chain, NO_FILTER),
    ) {
        out.push_str(&format!(
            "| chain: header-rewrite + jwt-auth + rate-limit | {:+.1} | {:+.1} | {:.2}× | {} |\n",
            spread(&cpu_above(chain_module, base)).median,
            spread(&cpu_above(native, base)).median,
            versus_native(chain_module, native).0.median,
            kib(module_sizes("chain").1),
        ));
    }
    out
}

const SUMMARY_START: &str = "<!-- bench-summary:start (make bench writes this part) -->";
const SUMMARY_END: &str = "<!-- bench-summary:end -->";

/// Replaces the README's benchmark summary between its markers.
fn update_readme(summary: &str) -> Result<(), String> {
    let path = envoy_harness::process::workspace_root().join("README.md");
    let text = std::fs::read_to_string(&path).map_err(|error| error.to_string())?;
    let (Some(start), Some(end)) = (text.find(SUMMARY_START), text.find(SUMMARY_END)) else {
        return Err(format!(
            "{}: no {SUMMARY_START} ... {SUMMARY_END} section",
            path.display()
        ));
    };
    let updated = format!(
        "{}{SUMMARY_START}\n{summary}{}",
        &text[..start],
        &text[end..]
    );
    std::fs::write(&path, updated).map_err(|error| error.to_string())
}

/// `load` with `BENCH_ROUNDS` rounds of `BENCH_SECONDS` each when they are set: more for
/// steadier figures, fewer for a quick look.
fn tuned(mut load: Load) -> Load {
    let number = |name: &str| {
        std::env::var(name)
            .ok()
            .and_then(|value| value.parse::<u64>().ok())
    };
    if let Some(rounds) = number("BENCH_ROUNDS") {
        load.rounds = rounds.max(1) as usize;
    }
    if let Some(seconds) = number("BENCH_SECONDS") {
        load.duration = Duration::from_secs(seconds.max(1));
    }
    load
}

/// A limit no benchmark reaches: every check is a full decision that admits.
const UNREACHED_LIMITS: &str = "domain: bench
descriptors:
  - key: user
    rate_limit: {unit: hour, requests_per_unit: 4000000000}
";

/// global-rate-limit against native ratelimit, both asking one rate-limit-service (in memory)
/// about every request, through a loopback upstream; then the service alone: decisions per
/// second on a current-thread runtime (one core), in memory and with Redis.
fn global_rate_limit_bench() -> Result<String, String> {
    use rate_limit_service::testing::RedisServer;
    use rate_limit_service::{Limits, Server, Storage};
    let limits = || Limits::parse(UNREACHED_LIMITS).map_err(|e| e.to_string());
    let listener = || std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string());
    let service =
        Server::start(listener()?, limits()?, Storage::Memory).map_err(|e| e.to_string())?;
    let upstream = FixedUpstream::start(CannedReply {
        status: 200,
        headers: vec![("content-type".into(), b"text/plain".to_vec())],
        body: b"ok".to_vec(),
    })
    .map_err(|error| error.to_string())?;
    let bootstrap = BootstrapBuilder::new(upstream.port()).grpc_cluster("rls", service.port());
    let rate_limits = json!([{"actions": [{"request_headers": {"header_name": "x-user", "descriptor_key": "user"}}]}]);
    let config = json!({
        "domain": "bench",
        "timeout": "1s",
        "failure_mode_deny": true,
        "rate_limit_service": {
            "grpc_service": {"envoy_grpc": {"cluster_name": "rls"}},
            "transport_api_version": "V3"
        }
    });
    let mut ours_config = config.clone();
    ours_config["rate_limits"] = rate_limits.clone();
    let routes = json!([{"match": {"prefix": "/"}, "route": {"cluster": "upstream", "rate_limits": rate_limits}}]);
    let checked = || Check::status(200);
    let variants = vec![
        Variant::new(NO_FILTER_UPSTREAM, vec![]).routes(default_routes()),
        Variant::new(
            "native ratelimit",
            vec![native_filter(
                "envoy.filters.http.ratelimit",
                "ratelimit.v3.RateLimit",
                config,
            )],
        )
        .routes(routes.clone())
        .header("x-user", "alice")
        .check(checked()),
        Variant::new(
            "global-rate-limit (wasm)",
            vec![wasm_filter(
                "global_rate_limit",
                &filter_wasm("global_rate_limit"),
                &ours_config,
            )],
        )
        .routes(routes)
        .header("x-user", "alice")
        .check(checked()),
    ];
    let load = tuned(Load {
        duration: Duration::from_secs(3),
        rounds: 3,
        ..Load::default()
    });
    eprintln!(
        "bench: global-rate-limit, one worker ({} variants, {})...",
        variants.len(),
        load.describe()
    );
    let measured = measure_in(&variants, &load, bootstrap).map_err(|error| error.to_string())?;
    drop(service);
    let get =
        |name: &str| find(&measured, name).ok_or_else(|| format!("no measurement named {name:?}"));
    let (floor, native, ours) = (
        get(NO_FILTER_UPSTREAM)?,
        get("native ratelimit")?,
        get("global-rate-limit (wasm)")?,
    );
    let mut table =
        format!(
        "{}. {}. Both filters ask the same rate-limit-service (counters in memory, a limit never \
         reached) about every request; the route goes to a loopback upstream.\n\n{}\n\
         | | ours | native | ours/native |\n|---|---|---|---|\n\
         | rps | {:.0} | {:.0} | {:.2}× |\n\
         | p99 | {:.0} µs | {:.0} µs | {:.2}× |\n\
         | Envoy CPU µs/request above no filter | {:+.1} | {:+.1} | |\n",
        machine(),
        load.describe(),
        report("global-rate-limit vs native ratelimit", &measured, NO_FILTER_UPSTREAM),
        ours.rps,
        native.rps,
        ours.rps / native.rps,
        ours.p99_us,
        native.p99_us,
        ours.p99_us / native.p99_us,
        ours.cpu_us() - floor.cpu_us(),
        native.cpu_us() - floor.cpu_us(),
    );

    // The service alone: its gRPC server on one thread, the client on the other core.
    let seconds = tuned(Load::default()).duration;
    let redis = RedisServer::start().map_err(|e| e.to_string())?;
    table.push_str(
        "\n### rate-limit-service decisions per second (current-thread runtime: one core; \
         64 calls in flight from a client on the other core)\n\n\
         | storage | decisions/s | errors |\n|---|---|---|\n",
    );
    for (name, storage) in [
        ("memory", Storage::Memory),
        ("Redis (loopback redis-server)", Storage::Redis(redis.url())),
    ] {
        let server = Server::start(listener()?, limits()?, storage).map_err(|e| e.to_string())?;
        eprintln!(
            "bench: rate-limit-service, {name}, {}s...",
            seconds.as_secs()
        );
        let outcome = envoy_harness::rls::decisions_per_second(server.port(), "bench", seconds, 64)
            .map_err(|e| format!("rate-limit-service throughput: {e}"))?;
        eprintln!("bench:   {:.0} decisions/s", outcome.per_second);
        table.push_str(&format!(
            "| {name} | {:.0} | {} |\n",
            outcome.per_second, outcome.errors
        ));
    }
    let dir = envoy_harness::process::workspace_root()
        .join("bench")
        .join("results");
    let path = dir.join("global-rate-limit.md");
    std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&path, &table))
        .map_err(|error| format!("{}: {error}", path.display()))?;
    eprintln!("bench: written to {}", path.display());
    Ok(table)
}

/// Measures a suite of variants and writes its table to bench/results/<file>.
fn simple_suite(
    file: &str,
    (title, variants, baseline): (String, Vec<Variant>, String),
) -> Result<String, String> {
    eprintln!("bench: {title} ({} variants)...", variants.len());
    let measurements =
        measure(&variants, &tuned(Load::default())).map_err(|error| error.to_string())?;
    let table = format!(
        "{}. One worker, `direct_response` route.\n\n{}",
        machine(),
        report(&title, &measurements, &baseline)
    );
    let dir = envoy_harness::process::workspace_root()
        .join("bench")
        .join("results");
    let path = dir.join(file);
    std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&path, &table))
        .map_err(|error| format!("{}: {error}", path.display()))?;
    eprintln!("bench: written to {}", path.display());
    Ok(table)
}

const SUITES: [&str; 5] = [
    "chain",
    "filters",
    "hostcalls",
    "jwt-algorithms",
    "global-rate-limit",
];

fn main() -> ExitCode {
    let root = envoy_harness::process::workspace_root();
    let out_dir = root.join("target").join("bench");
    if let Err(error) = std::fs::create_dir_all(&out_dir) {
        eprintln!("bench: {error}");
        return ExitCode::FAILURE;
    }
    let noop = out_dir.join("noop.wasm");
    if let Err(error) = noop_module().and_then(|module| std::fs::write(&noop, module)) {
        eprintln!("bench: {error}");
        return ExitCode::FAILURE;
    }
    let wanted: Vec<String> = std::env::args().skip(1).collect();
    if let Some(unknown) = wanted.iter().find(|name| !SUITES.contains(&name.as_str())) {
        eprintln!("bench: no suite {unknown:?}; the suites are {SUITES:?}");
        return ExitCode::FAILURE;
    }
    let run = |suite: &str| wanted.is_empty() || wanted.iter().any(|name| name == suite);
    let mut chain = Vec::new();
    let mut outcome = Ok(());
    if run("chain") {
        outcome = chain_bench(&noop).map(|(text, measured)| {
            println!("{text}");
            chain = measured;
        });
    }
    if outcome.is_ok() && run("filters") {
        outcome = filters_bench(&noop, &out_dir, &chain).map(|text| println!("{text}"));
    }
    if outcome.is_ok() && run("hostcalls") {
        outcome = simple_suite("hostcalls.md", hostcall_suite(&noop, &out_dir))
            .map(|text| println!("{text}"));
    }
    if outcome.is_ok() && run("jwt-algorithms") {
        outcome = simple_suite("jwt-algorithms.md", jwt_algorithms_suite(&out_dir))
            .map(|text| println!("{text}"));
    }
    if outcome.is_ok() && run("global-rate-limit") {
        outcome = global_rate_limit_bench().map(|text| println!("{text}"));
    }
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench: {error}");
            ExitCode::FAILURE
        }
    }
}
