//! The filters' metrics in Envoy's `/stats/prometheus` with the stats settings shipped in
//! `istio/stats`: rate-limit's come out named and labelled exactly as native local_ratelimit's
//! (checked against native in the same Envoy), and jwt-auth's denials carry the reason as a label.
//! Once as plain Envoy (`envoy-stats-tags.json`), once as Istio renders a sidecar bootstrap
//! (`proxy-config.json` in the stats matcher, `custom_bootstrap.json` merged as an override).

use crate::tokens::*;
use envoy_harness::config::{filter_wasm, native_filter, wasm_filter, BootstrapBuilder};
use envoy_harness::process::workspace_root;
use envoy_harness::{EchoUpstream, Envoy, EnvoyOptions, Request};
use jsonwebtoken::Algorithm;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::SystemTime;

const ISSUER: &str = "https://issuer.example";
/// Requests per listener against a bucket of [`BUCKET`] tokens.
const REQUESTS: u64 = 5;
const BUCKET: u64 = 2;
const RATE_LIMIT_COUNTERS: [&str; 4] = ["enabled", "ok", "rate_limited", "enforced"];

fn stats_file(name: &str) -> String {
    let path = workspace_root().join("istio").join("stats").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn stats_json(name: &str) -> Value {
    serde_json::from_str(&stats_file(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn limit_config(stat_prefix: &str) -> Value {
    let always = |key: &str| json!({"default_value": {"numerator": 100, "denominator": "HUNDRED"}, "runtime_key": key});
    json!({
        "stat_prefix": stat_prefix,
        "token_bucket": {"max_tokens": BUCKET, "tokens_per_fill": 1, "fill_interval": "3600s"},
        "filter_enabled": always("enabled"),
        "filter_enforced": always("enforced"),
    })
}

fn jwt_config() -> Value {
    json!({
        "providers": {"main": {
            "issuer": ISSUER,
            "audiences": ["api"],
            "local_jwks": {"inline_string": jwks().to_string()}
        }},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "main"}}]
    })
}

/// Native local_ratelimit (prefix `native`), ours (prefix `demo`), and jwt-auth.
fn listeners(builder: BootstrapBuilder) -> BootstrapBuilder {
    builder
        .listener(
            "native",
            vec![native_filter(
                "envoy.filters.http.local_ratelimit",
                "local_ratelimit.v3.LocalRateLimit",
                limit_config("native"),
            )],
        )
        .listener(
            "wasm",
            vec![wasm_filter(
                "rate_limit",
                &filter_wasm("rate_limit"),
                &limit_config("demo"),
            )],
        )
        .listener(
            "jwt",
            vec![wasm_filter(
                "jwt_auth",
                &filter_wasm("jwt_auth"),
                &jwt_config(),
            )],
        )
}

/// Denials the requests below cause, by reason, and the number of allowed requests.
const DENIALS: [(&str, u64); 4] = [
    ("missing", 2),
    ("expired", 1),
    ("malformed", 1),
    ("verification_failed", 1),
];
const ALLOWED: u64 = 2;

/// Sends the same burst to both rate limiters and a known mix of tokens to jwt-auth.
fn send_traffic(envoy: &Envoy) {
    for listener in ["native", "wasm"] {
        let statuses: Vec<u16> = (0..REQUESTS)
            .map(|_| {
                Request::get("/")
                    .send(envoy.listener_port(listener).unwrap())
                    .unwrap()
                    .status
            })
            .collect();
        assert_eq!(statuses, [200, 200, 429, 429, 429], "{listener}");
    }
    let now = seconds(SystemTime::now());
    let valid = token(Algorithm::HS256, &claims(now));
    let expired = token(
        Algorithm::HS256,
        &json!({"iss": ISSUER, "aud": "api", "exp": now - 600}),
    );
    // A valid header and payload with the signature of another token.
    let other = token(Algorithm::HS256, &claims(now + 1));
    let forged = format!(
        "{}.{}",
        valid.rsplit_once('.').unwrap().0,
        other.rsplit_once('.').unwrap().1
    );
    let bearer = |token: &str| Some(format!("Bearer {token}"));
    let requests = [
        (None, 401),
        (Some("Basic dXNlcjpwYXNz".to_string()), 401),
        (bearer(&expired), 401),
        (bearer("not.a.token"), 401),
        (bearer(&forged), 401),
        (bearer(&valid), 200),
        (bearer(&valid), 200),
    ];
    let port = envoy.listener_port("jwt").unwrap();
    for (authorization, status) in requests {
        let mut request = Request::get("/api").header("host", "api.example.com");
        if let Some(value) = &authorization {
            request = request.header("authorization", value);
        }
        assert_eq!(
            request.send(port).unwrap().status,
            status,
            "{authorization:?}"
        );
    }
}

/// One sample of the Prometheus text format: name, labels, value.
type Sample = (String, BTreeMap<String, String>, u64);

fn scrape(envoy: &Envoy) -> Vec<Sample> {
    let response = Request::get("/stats/prometheus")
        .send(envoy.admin_port())
        .unwrap();
    assert_eq!(response.status, 200);
    String::from_utf8(response.body)
        .unwrap()
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(parse_sample)
        .collect()
}

/// Parses `name{a="x",b="y"} 3`; histograms and non-integer values are skipped.
fn parse_sample(line: &str) -> Option<Sample> {
    let (series, value) = line.rsplit_once(' ')?;
    let value = value.parse().ok()?;
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => (name, rest.strip_suffix('}')?),
        None => (series, ""),
    };
    let labels = labels
        .split(',')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').expect("label=value");
            (key.to_string(), value.trim_matches('"').to_string())
        })
        .collect();
    Some((name.to_string(), labels, value))
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn value(samples: &[Sample], name: &str, with: &[(&str, &str)]) -> Option<u64> {
    let with = labels(with);
    samples
        .iter()
        .find(|(n, l, _)| n == name && *l == with)
        .map(|(_, _, v)| *v)
}

/// Ours has the native name and label set, and counted what native counted.
fn assert_rate_limit_like_native(samples: &[Sample]) {
    let expected = [
        ("enabled", REQUESTS),
        ("ok", BUCKET),
        ("rate_limited", REQUESTS - BUCKET),
        ("enforced", REQUESTS - BUCKET),
    ];
    assert_eq!(expected.map(|(c, _)| c), RATE_LIMIT_COUNTERS);
    for (counter, count) in expected {
        let name = format!("envoy_http_local_rate_limit_{counter}");
        let native = value(
            samples,
            &name,
            &[("envoy_local_http_ratelimit_prefix", "native")],
        );
        let ours = value(
            samples,
            &name,
            &[("envoy_local_http_ratelimit_prefix", "demo")],
        );
        assert_eq!(native, Some(count), "native {name}");
        assert_eq!(ours, native, "ours {name}{{prefix=demo}} vs native");
    }
    // Nothing of ours is left under the old names.
    let leftovers: Vec<&Sample> = samples
        .iter()
        .filter(|(name, _, _)| name.contains("demo") || name.contains("wasmcustom"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // Every local rate limit series is labelled with its prefix, ours and native alike.
    for (name, l, _) in samples
        .iter()
        .filter(|(n, _, _)| n.contains("http_local_rate_limit"))
    {
        assert!(name.starts_with("envoy_http_local_rate_limit_"), "{name}");
        let prefix = l
            .get("envoy_local_http_ratelimit_prefix")
            .map(String::as_str);
        assert!(matches!(prefix, Some("native" | "demo")), "{name} {l:?}");
        assert_eq!(l.len(), 1, "{name} {l:?}");
    }
}

fn assert_jwt_denials_by_reason(samples: &[Sample]) {
    assert_eq!(value(samples, "jwt_auth_allowed", &[]), Some(ALLOWED));
    for (reason, count) in DENIALS {
        assert_eq!(
            value(samples, "jwt_auth_denied", &[("reason", reason)]),
            Some(count),
            "jwt_auth_denied{{reason=\"{reason}\"}}"
        );
    }
    // The unlabelled series is the total, and the labelled ones add up to it.
    let total: u64 = DENIALS.iter().map(|(_, count)| count).sum();
    assert_eq!(value(samples, "jwt_auth_denied", &[]), Some(total));
    let by_reason: u64 = samples
        .iter()
        .filter(|(n, l, _)| n == "jwt_auth_denied" && l.contains_key("reason"))
        .map(|(_, _, v)| v)
        .sum();
    assert_eq!(by_reason, total);
    // No reason is left in a metric name.
    let leftovers: Vec<&String> = samples
        .iter()
        .map(|(name, _, _)| name)
        .filter(|name| name.starts_with("jwt_auth_denied_"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Envoy as a plain bootstrap: the default tags plus `envoy-stats-tags.json`.
#[test]
fn plain_envoy_names_and_labels_match_native() {
    let upstream = EchoUpstream::start().unwrap();
    let stats_config = stats_json("envoy-stats-tags.json")["stats_config"].clone();
    let bootstrap = listeners(BootstrapBuilder::new(upstream.port()).stats_config(stats_config));
    let envoy = Envoy::start(bootstrap.build()).unwrap();
    send_traffic(&envoy);
    let samples = scrape(&envoy);
    assert_rate_limit_like_native(&samples);
    assert_jwt_denials_by_reason(&samples);
}

/// The `stats_config` Istio's sidecar bootstrap has (tools/packaging/common/envoy_bootstrap.json
/// and pkg/bootstrap): no default tags, its own tags, and a stats matcher that includes only
/// Istio's prefixes plus the proxyStatsMatcher ones.
fn istio_stats_config(proxy_stats_matcher: &Value) -> Value {
    let strings = |key: &str| {
        proxy_stats_matcher[key]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let mut patterns = vec![json!({"prefix": "reporter="})];
    for prefix in strings("inclusionPrefixes").into_iter().chain(
        [
            "cluster_manager",
            "listener_manager",
            "server",
            "cluster.xds-grpc",
            "wasm",
        ]
        .map(Value::from),
    ) {
        patterns.push(json!({"prefix": prefix}));
    }
    for suffix in strings("inclusionSuffixes").into_iter().chain(
        [
            "rbac.allowed",
            "rbac.denied",
            "shadow_allowed",
            "shadow_denied",
            "downstream_cx_active",
        ]
        .map(Value::from),
    ) {
        patterns.push(json!({"suffix": suffix}));
    }
    for regex in strings("inclusionRegexps") {
        patterns.push(json!({"safe_regex": {"regex": regex}}));
    }
    patterns.extend([json!({"prefix": "component"}), json!({"prefix": "istio"})]);
    json!({
        "use_all_default_tags": false,
        "stats_tags": [
            {"tag_name": "cluster_name", "regex": "^cluster\\.((.+?(\\..+?\\.svc\\.cluster\\.local)?)\\.)"},
            {"tag_name": "response_code", "regex": "_rq(_(\\d{3}))$"},
            {"tag_name": "http_conn_manager_prefix", "regex": "^http\\.(((?:[_.[:digit:]]*|[_\\[\\]aAbBcCdDeEfF[:digit:]]*))\\.)"},
            {"tag_name": "cache", "regex": "(cache\\.(.+?)\\.)"},
            {"tag_name": "component", "regex": "(component\\.(.+?)\\.)"},
            {"tag_name": "wasm_filter", "regex": "(wasm_filter\\.(.+?)\\.)"},
            {"tag_name": "authz_enforce_result", "regex": "rbac(\\.(allowed|denied))"}
        ],
        "stats_matcher": {"inclusion_list": {"patterns": patterns}}
    })
}

fn start_istio_like(upstream: &EchoUpstream, proxy_config: &Value, overlay: &str) -> Envoy {
    let stats_config = istio_stats_config(&proxy_config["proxyStatsMatcher"]);
    let bootstrap = listeners(BootstrapBuilder::new(upstream.port()).stats_config(stats_config));
    Envoy::start_merged(bootstrap.build(), overlay, &EnvoyOptions::default()).unwrap()
}

/// A sidecar with `proxy.istio.io/config` = `proxy-config.json` and the bootstrap override
/// `custom_bootstrap.json`: the same names and labels as plain Envoy gives native.
#[test]
fn istio_sidecar_names_and_labels_match_native() {
    let upstream = EchoUpstream::start().unwrap();
    let envoy = start_istio_like(
        &upstream,
        &stats_json("proxy-config.json"),
        &stats_file("custom_bootstrap.json"),
    );
    send_traffic(&envoy);
    let samples = scrape(&envoy);
    assert_rate_limit_like_native(&samples);
    assert_jwt_denials_by_reason(&samples);
}

/// Without the two settings, the same sidecar shows what users see today: no native local rate
/// limit series at all, ours under a name that carries the prefix, reasons inside names.
#[test]
fn istio_sidecar_without_the_settings_shows_the_old_names() {
    let upstream = EchoUpstream::start().unwrap();
    let envoy = start_istio_like(&upstream, &json!({}), "{}");
    send_traffic(&envoy);
    let samples = scrape(&envoy);
    let names: Vec<&str> = samples.iter().map(|(n, _, _)| n.as_str()).collect();
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("envoy_http_local_rate_limit")),
        "{names:?}"
    );
    assert_eq!(
        value(&samples, "demo_http_local_rate_limit_enabled", &[]),
        Some(REQUESTS)
    );
    assert_eq!(value(&samples, "jwt_auth_denied_expired", &[]), Some(1));
}
