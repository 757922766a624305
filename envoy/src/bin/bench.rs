//! `make bench`: each filter against the empty wasm floor and its native Envoy twin, in one Envoy
//! per suite, under the same wrk load; then the three filters as three wasm filters, as one chain
//! module and as their native twins, with the empty filter on sdk-ext against the proxy-wasm
//! crate's. Prints markdown, writes target/bench/results.md and bench/results/chain.md.
//! `bench <suite prefix>...` runs only those suites (`bench chain`, `bench hostcall`).

#[path = "../../../filters/jwt-auth/tests/tokens/mod.rs"]
mod tokens;

use envoy_harness::bench::{
    hostcall_module, measure, median, noop_module, report, Check, Load, Measurement, Variant,
    HOSTCALLS,
};
use envoy_harness::config::{filter_wasm, native_filter, wasm_filter};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

fn header_rewrite_suite(noop: &Path) -> (String, Vec<Variant>, String) {
    let mutations = json!({"mutations": {
        "request_mutations": [
            {"append": {"header": {"key": "x-client", "value": "%REQ(x-user)%"}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}},
            {"append": {"header": {"key": "x-static", "value": "1"}}},
            {"remove": "x-internal-token"}
        ],
        "response_mutations": [{"append": {"header": {"key": "x-powered-by", "value": "proxy-wasm"}}}]
    }});
    let wasm =
        |config: &Value| wasm_filter("header_rewrite", &filter_wasm("header_rewrite"), config);
    let variants = vec![
        Variant::new("no filter", vec![]),
        Variant::new(
            "wasm no-op module",
            vec![wasm_filter("noop", noop, &json!({}))],
        ),
        Variant::new("header_rewrite, empty config", vec![wasm(&json!({}))]),
        Variant::new("header_rewrite, 4 mutations", vec![wasm(&mutations)]),
        Variant::new(
            "native header_mutation, 4 mutations",
            vec![native_filter(
                "hm",
                "header_mutation.v3.HeaderMutation",
                mutations.clone(),
            )],
        ),
    ];
    let variants = variants
        .into_iter()
        .map(|v| v.header("x-user", "alice").header("x-internal-token", "s"))
        .collect();
    (
        "header-rewrite vs native header_mutation".into(),
        variants,
        "no filter".into(),
    )
}

/// A load that is never limited (a bucket far larger than the run), so every request pays the
/// full check: clock, shared-data read and CAS write, counters. The empty Rust filter
/// (header_rewrite with no mutations) shows what the SDK itself costs above the no-op module.
fn rate_limit_suite(noop: &Path) -> (String, Vec<Variant>, String) {
    let percent = json!({"default_value": {"numerator": 100, "denominator": "HUNDRED"}});
    let bucket = json!({"max_tokens": 4_000_000_000u32, "tokens_per_fill": 4_000_000_000u32, "fill_interval": "1s"});
    let default_bucket = json!({
        "stat_prefix": "bench",
        "token_bucket": bucket,
        "filter_enabled": percent,
        "filter_enforced": percent,
    });
    let mut with_headers = default_bucket.clone();
    with_headers["enable_x_ratelimit_headers"] = json!("DRAFT_VERSION_03");
    let mut per_client = with_headers.clone();
    per_client["rate_limits"] = json!([{"actions": [{"remote_address": {}}]}]);
    per_client["descriptors"] =
        json!([{"entries": [{"key": "remote_address", "value": ""}], "token_bucket": bucket}]);
    let wasm = |config: &Value| wasm_filter("rate_limit", &filter_wasm("rate_limit"), config);
    let native = |config: &Value| {
        native_filter(
            "envoy.filters.http.local_ratelimit",
            "local_ratelimit.v3.LocalRateLimit",
            config.clone(),
        )
    };
    let variants = vec![
        Variant::new("no filter", vec![]),
        Variant::new(
            "wasm no-op module",
            vec![wasm_filter("noop", noop, &json!({}))],
        ),
        Variant::new(
            "empty Rust filter (header_rewrite, no mutations)",
            vec![wasm_filter(
                "header_rewrite",
                &filter_wasm("header_rewrite"),
                &json!({}),
            )],
        ),
        Variant::new("rate_limit, default bucket", vec![wasm(&default_bucket)]),
        Variant::new(
            "native local_ratelimit, default bucket",
            vec![native(&default_bucket)],
        ),
        Variant::new(
            "rate_limit, default bucket + x-ratelimit headers",
            vec![wasm(&with_headers)],
        ),
        Variant::new(
            "native local_ratelimit, default bucket + x-ratelimit headers",
            vec![native(&with_headers)],
        ),
        Variant::new(
            "rate_limit, default + per-client bucket + headers",
            vec![wasm(&per_client)],
        ),
    ];
    (
        "rate-limit vs native local_ratelimit (never limited)".into(),
        variants,
        "wasm no-op module".into(),
    )
}

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

/// RS256 tokens: one reused on every request (cache hits), and many that are never repeated
/// within a cache's size (every request a signature check), served by a wrk Lua script.
fn jwt_suite(noop: &Path, out_dir: &Path) -> (String, Vec<Variant>, String) {
    use jsonwebtoken::Algorithm;
    let now = tokens::seconds(std::time::SystemTime::now());
    let config = json!({
        "providers": {"main": {
            "issuer": "https://issuer.example", "audiences": ["api"],
            "local_jwks": {"inline_string": tokens::jwks().to_string()},
            "jwt_cache_config": {"jwt_cache_size": 100}
        }},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "main"}}]
    });
    let script = unique_tokens_script(Algorithm::RS256, now, out_dir);
    let repeated = format!(
        "Bearer {}",
        tokens::token(
            Algorithm::RS256,
            &json!({"iss": "https://issuer.example", "aud": "api", "exp": now + 7200})
        )
    );
    let ours = wasm_filter("jwt_auth", &filter_wasm("jwt_auth"), &config);
    let native = native_filter(
        "jwt_authn",
        "jwt_authn.v3.JwtAuthentication",
        config.clone(),
    );
    let unique_variant = |name: &str, filter: Value| {
        let mut variant = Variant::new(name, vec![filter]);
        variant.script = Some(script.clone());
        variant
    };
    let variants = vec![
        Variant::new("no filter", vec![]),
        Variant::new(
            "wasm no-op module",
            vec![wasm_filter("noop", noop, &json!({}))],
        ),
        Variant::new("jwt_auth, repeated token", vec![ours.clone()])
            .header("authorization", &repeated),
        Variant::new(
            "native jwt_authn + cache, repeated token",
            vec![native.clone()],
        )
        .header("authorization", &repeated),
        unique_variant("jwt_auth, unique RS256 tokens", ours),
        unique_variant("native jwt_authn, unique RS256 tokens", native),
    ];
    (
        "jwt-auth vs native jwt_authn (RS256, 2048-bit)".into(),
        variants,
        "no filter".into(),
    )
}

/// What one hostcall costs: 20 calls in the request-headers callback, against the no-op module.
/// The request carries the chain benchmark's headers, so map reads copy what the filters copy.
fn hostcall_suite(noop: &Path, out_dir: &Path) -> (String, Vec<Variant>, String) {
    let mut variants = vec![Variant::new(
        "wasm no-op module",
        vec![wasm_filter("noop", noop, &json!({}))],
    )];
    for (call, _) in HOSTCALLS {
        let path = out_dir.join(format!("hostcall-{call}.wasm"));
        if let Ok(module) = hostcall_module(call, 20) {
            let _ = std::fs::write(&path, module);
        }
        let name = format!("hostcall_{}", call.replace('+', "_"));
        variants.push(Variant::new(
            &format!("20 x {call}"),
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
        "hostcall cost (20 calls per request)".into(),
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
            .check(Check {
                without: None,
                status: 200,
                response_header: Some(("x-powered-by".into(), "proxy-wasm".into())),
            })
            .check(Check {
                without: Some("authorization".into()),
                status: 401,
                response_header: None,
            })
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

/// The chain benchmark: three filters as three wasm filters, as one chain module and as their
/// native twins, against no filter and the empty filters, with one worker and with several.
/// Writes bench/results/chain.md.
fn chain_bench(noop: &Path) -> Result<String, String> {
    let now = tokens::seconds(std::time::SystemTime::now());
    let token = format!(
        "Bearer {}",
        tokens::token(
            jsonwebtoken::Algorithm::RS256,
            &json!({"iss": "https://issuer.example", "aud": "api", "exp": now + 7200})
        )
    );
    for module in ["bench_empty_proxy_wasm", "bench_empty_sdk_ext"] {
        let path = bench_module(module);
        if !path.is_file() {
            return Err(format!("{} is missing: run `make bench`", path.display()));
        }
    }
    let one = Load {
        duration: Duration::from_secs(3),
        rounds: 5,
        ..Load::default()
    };
    let multi = Load {
        concurrency: 2,
        threads: 2,
        connections: 32,
        duration: Duration::from_secs(3),
        rounds: 3,
        ..Load::default()
    };
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
    Ok(out)
}

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
    // Built only when wanted: a suite names the modules it loads, and each must be fresh.
    type Suite<'a> = Box<dyn Fn() -> (String, Vec<Variant>, String) + 'a>;
    let suites: [(&str, Suite<'_>); 5] = [
        (
            "hostcall cost",
            Box::new(|| hostcall_suite(&noop, &out_dir)),
        ),
        (
            "header-rewrite vs",
            Box::new(|| header_rewrite_suite(&noop)),
        ),
        ("jwt-auth vs", Box::new(|| jwt_suite(&noop, &out_dir))),
        (
            "jwt-auth per algorithm",
            Box::new(|| jwt_algorithms_suite(&out_dir)),
        ),
        ("rate-limit vs", Box::new(|| rate_limit_suite(&noop))),
    ];
    if wanted.is_empty() || wanted.iter().any(|name| "chain".starts_with(name.as_str())) {
        match chain_bench(&noop) {
            Ok(text) => println!("{text}"),
            Err(error) => {
                eprintln!("bench: chain: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    let load = Load::default();
    let mut results =
        String::from("## Envoy benchmarks (one worker, wrk -t1 -c16, direct_response route)\n\n");
    for (key, suite) in suites {
        if !wanted.is_empty() && !wanted.iter().any(|name| key.starts_with(name.as_str())) {
            continue;
        }
        let (title, variants, baseline) = suite();
        eprintln!("bench: {title} ({} variants)...", variants.len());
        match measure(&variants, &load) {
            Ok(measurements) => {
                let table = report(&title, &measurements, &baseline);
                println!("{table}");
                results.push_str(&table);
                results.push('\n');
            }
            Err(error) => {
                eprintln!("bench: {title}: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    let path = out_dir.join("results.md");
    if let Err(error) = std::fs::write(&path, results) {
        eprintln!("bench: {}: {error}", path.display());
        return ExitCode::FAILURE;
    }
    eprintln!("bench: written to {}", path.display());
    ExitCode::SUCCESS
}
