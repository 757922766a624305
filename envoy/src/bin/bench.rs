//! `make bench`: each filter against the empty wasm floor and its native Envoy twin, in one Envoy
//! per suite, under the same wrk load. Prints markdown and writes target/bench/results.md.

#[path = "../../../filters/jwt-auth/tests/tokens/mod.rs"]
mod tokens;

use envoy_harness::bench::{hostcall_module, measure, noop_module, report, Load, Variant};
use envoy_harness::config::{filter_wasm, native_filter, wasm_filter};
use serde_json::{json, Value};
use std::path::Path;
use std::process::ExitCode;

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
fn hostcall_suite(noop: &Path, out_dir: &Path) -> (String, Vec<Variant>, String) {
    let mut variants = vec![Variant::new(
        "wasm no-op module",
        vec![wasm_filter("noop", noop, &json!({}))],
    )];
    for call in ["get", "metric", "pairs"] {
        let path = out_dir.join(format!("hostcall-{call}.wasm"));
        let _ = std::fs::write(&path, hostcall_module(call, 20));
        variants.push(Variant::new(
            &format!("20 x {call}"),
            vec![wasm_filter(&format!("hostcall_{call}"), &path, &json!({}))],
        ));
    }
    let variants = variants
        .into_iter()
        .map(|v| v.header("user-agent", "wrk"))
        .collect();
    (
        "hostcall cost (20 calls per request)".into(),
        variants,
        "wasm no-op module".into(),
    )
}

fn main() -> ExitCode {
    let root = envoy_harness::process::workspace_root();
    let out_dir = root.join("target").join("bench");
    if let Err(error) = std::fs::create_dir_all(&out_dir) {
        eprintln!("bench: {error}");
        return ExitCode::FAILURE;
    }
    let noop = out_dir.join("noop.wasm");
    if let Err(error) = std::fs::write(&noop, noop_module()) {
        eprintln!("bench: {error}");
        return ExitCode::FAILURE;
    }
    let wanted: Vec<String> = std::env::args().skip(1).collect();
    let suites = [
        hostcall_suite(&noop, &out_dir),
        header_rewrite_suite(&noop),
        jwt_suite(&noop, &out_dir),
        jwt_algorithms_suite(&out_dir),
        rate_limit_suite(&noop),
    ];
    let load = Load::default();
    let mut results =
        String::from("## Envoy benchmarks (one worker, wrk -t1 -c16, direct_response route)\n\n");
    for (title, variants, baseline) in suites {
        if !wanted.is_empty() && !wanted.iter().any(|name| title.starts_with(name.as_str())) {
            continue;
        }
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
