//! Load benchmarks in real Envoy: several filter chains side by side in one Envoy (one listener
//! each, one worker thread), the same load from `wrk` on loopback against each, interleaved and
//! repeated, so that ratios come from one run. Routes answer with `direct_response`, so only
//! Envoy and the filters are measured.

use crate::config::BootstrapBuilder;
use crate::process::{Envoy, EnvoyOptions};
use serde_json::{json, Value};
use std::io;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// One filter chain to measure.
#[derive(Debug, Clone)]
pub struct Variant {
    /// Short name for the report.
    pub name: String,
    /// HTTP filters, before the router.
    pub filters: Vec<Value>,
    /// Headers each request carries.
    pub headers: Vec<(String, String)>,
    /// A wrk Lua script that builds the requests instead (e.g. a different token each time).
    pub script: Option<String>,
}

impl Variant {
    /// A variant with these filters and no extra request headers.
    pub fn new(name: &str, filters: Vec<Value>) -> Variant {
        Variant {
            name: name.to_string(),
            filters,
            headers: Vec::new(),
            script: None,
        }
    }

    /// Adds a request header.
    pub fn header(mut self, name: &str, value: &str) -> Variant {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

/// Load settings.
#[derive(Debug, Clone)]
pub struct Load {
    /// Connections (`wrk -c`).
    pub connections: u32,
    /// Duration of one measurement.
    pub duration: Duration,
    /// Measurements per variant, interleaved across variants; the median is reported.
    pub rounds: usize,
    /// Seconds of warm-up load before measuring.
    pub warmup: Duration,
}

impl Default for Load {
    fn default() -> Self {
        Load {
            connections: 16,
            duration: Duration::from_secs(4),
            rounds: 3,
            warmup: Duration::from_secs(1),
        }
    }
}

/// The result for one variant.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// The variant's name.
    pub name: String,
    /// Median requests per second.
    pub rps: f64,
    /// Every round's requests per second.
    pub rounds: Vec<f64>,
    /// Non-2xx responses seen (a benchmark of an unlimited load expects none).
    pub non_2xx: u64,
}

impl Measurement {
    /// Microseconds of the worker's time per request (one worker, saturated).
    pub fn micros_per_request(&self) -> f64 {
        1e6 / self.rps
    }
}

/// The route every benchmark listener uses: Envoy answers itself.
fn direct_response() -> Value {
    json!([{"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": "ok"}}}])
}

fn wrk_binary() -> io::Result<String> {
    let found = Command::new("sh").args(["-c", "command -v wrk"]).output()?;
    if found.status.success() {
        Ok(String::from_utf8_lossy(&found.stdout).trim().to_string())
    } else {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            "wrk is not installed: run `make bench` (it installs Debian's wrk)",
        ))
    }
}

fn run_wrk(
    wrk: &str,
    port: u16,
    variant: &Variant,
    duration: Duration,
    connections: u32,
    script_dir: &Path,
) -> io::Result<(f64, u64)> {
    let mut command = Command::new(wrk);
    command
        .args(["-t1", "-c", &connections.to_string(), "-d"])
        .arg(format!("{}s", duration.as_secs().max(1)));
    for (name, value) in &variant.headers {
        command.arg("-H").arg(format!("{name}: {value}"));
    }
    if let Some(script) = &variant.script {
        let path = script_dir.join(format!(
            "{}.lua",
            variant
                .name
                .replace(|c: char| !c.is_ascii_alphanumeric(), "_")
        ));
        std::fs::write(&path, script)?;
        command.arg("-s").arg(path);
    }
    command.arg(format!("http://127.0.0.1:{port}/bench"));
    let output = command.output()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let rps = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("Requests/sec:"))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .ok_or_else(|| {
            io::Error::other(format!(
                "no Requests/sec in wrk output:\n{text}{}",
                String::from_utf8_lossy(&output.stderr)
            ))
        })?;
    let non_2xx = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("Non-2xx or 3xx responses:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0);
    Ok((rps, non_2xx))
}

/// Measures every variant in one Envoy with one worker.
pub fn measure(variants: &[Variant], load: &Load) -> io::Result<Vec<Measurement>> {
    let wrk = wrk_binary()?;
    let mut bootstrap = BootstrapBuilder::new(1);
    for (index, variant) in variants.iter().enumerate() {
        bootstrap = bootstrap.listener_with_routes(
            &format!("bench{index}"),
            variant.filters.clone(),
            direct_response(),
        );
    }
    let options = EnvoyOptions {
        concurrency: 1,
        log_level: "warning".into(),
    };
    let envoy = Envoy::start_with(bootstrap.build(), &options)?;
    let script_dir = std::env::temp_dir().join(format!("envoy-bench-{}", std::process::id()));
    std::fs::create_dir_all(&script_dir)?;
    let port = |index: usize| envoy.listener_port(&format!("bench{index}")).unwrap_or(0);
    for (index, variant) in variants.iter().enumerate() {
        run_wrk(
            &wrk,
            port(index),
            variant,
            load.warmup,
            load.connections,
            &script_dir,
        )?;
    }
    let mut rounds: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    let mut non_2xx = vec![0u64; variants.len()];
    for _ in 0..load.rounds {
        for (index, variant) in variants.iter().enumerate() {
            let (rps, errors) = run_wrk(
                &wrk,
                port(index),
                variant,
                load.duration,
                load.connections,
                &script_dir,
            )?;
            rounds[index].push(rps);
            non_2xx[index] += errors;
        }
    }
    let _ = std::fs::remove_dir_all(&script_dir);
    Ok(variants
        .iter()
        .zip(rounds)
        .zip(non_2xx)
        .map(|((variant, mut measured), non_2xx)| {
            let mut sorted = measured.clone();
            sorted.sort_by(|a, b| a.total_cmp(b));
            let rps = sorted[sorted.len() / 2];
            measured.shrink_to_fit();
            Measurement {
                name: variant.name.clone(),
                rps,
                rounds: measured,
                non_2xx,
            }
        })
        .collect())
}

/// A markdown table: rps, µs per request, and the cost above `baseline` (a variant name).
pub fn report(title: &str, measurements: &[Measurement], baseline: &str) -> String {
    let base = measurements
        .iter()
        .find(|m| m.name == baseline)
        .map(Measurement::micros_per_request);
    let mut out = format!("### {title}\n\n| variant | rps (median) | µs/request | above {baseline} | rounds | non-2xx |\n|---|---|---|---|---|---|\n");
    for measurement in measurements {
        let above = base.map_or("-".to_string(), |base| {
            format!("{:+.1} µs", measurement.micros_per_request() - base)
        });
        let rounds: Vec<String> = measurement
            .rounds
            .iter()
            .map(|rps| format!("{rps:.0}"))
            .collect();
        out.push_str(&format!(
            "| {} | {:.0} | {:.1} | {} | {} | {} |\n",
            measurement.name,
            measurement.rps,
            measurement.micros_per_request(),
            above,
            rounds.join(" / "),
            measurement.non_2xx
        ));
    }
    out
}

/// A module like [`noop_module`] whose request-headers callback makes `count` calls of one
/// hostcall, to measure what a hostcall costs in Envoy: `get` (a header read, which also calls
/// the module's allocator), `metric` (a counter increment) or `pairs` (all request headers).
pub fn hostcall_module(call: &str, count: usize) -> Vec<u8> {
    let one = match call {
        "get" => "(drop (call $get (i32.const 0) (i32.const 16) (i32.const 10) (i32.const 64) (i32.const 68)))",
        "metric" => "(drop (call $increment (global.get $metric) (i64.const 1)))",
        _ => "(drop (call $pairs (i32.const 0) (i32.const 64) (i32.const 68)))",
    };
    let wat = format!(
        r#"(module
        (import "env" "proxy_get_header_map_value" (func $get (param i32 i32 i32 i32 i32) (result i32)))
        (import "env" "proxy_get_header_map_pairs" (func $pairs (param i32 i32 i32) (result i32)))
        (import "env" "proxy_define_metric" (func $define (param i32 i32 i32 i32) (result i32)))
        (import "env" "proxy_increment_metric" (func $increment (param i32 i64) (result i32)))
        (memory (export "memory") 2)
        (data (i32.const 16) "user-agent")
        (data (i32.const 32) "bench_calls")
        (global $metric (mut i32) (i32.const 0))
        (func (export "proxy_abi_version_0_2_1"))
        ;; A bump allocator reset by every request: results are never kept.
        (global $next (mut i32) (i32.const 4096))
        (func (export "malloc") (param $size i32) (result i32)
            (local $at i32)
            (local.set $at (global.get $next))
            (global.set $next (i32.add (global.get $next) (local.get $size)))
            (local.get $at))
        (func (export "proxy_on_context_create") (param i32 i32))
        (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
        (func (export "proxy_on_configure") (param i32 i32) (result i32)
            (drop (call $define (i32.const 0) (i32.const 32) (i32.const 11) (i32.const 80)))
            (global.set $metric (i32.load (i32.const 80)))
            (i32.const 1))
        (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
            (global.set $next (i32.const 4096))
            {calls}
            (i32.const 0))
        (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32) (i32.const 0))
        (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
        (func (export "proxy_on_log") (param i32))
        (func (export "proxy_on_delete") (param i32)))"#,
        calls = one.repeat(count)
    );
    wat::parse_str(wat).expect("the hostcall module is valid WAT")
}

/// A module that exports the proxy-wasm callbacks and does nothing: the ABI floor.
pub fn noop_module() -> Vec<u8> {
    let wat = r#"(module
        (memory (export "memory") 1)
        (func (export "proxy_abi_version_0_2_1"))
        (func (export "malloc") (param i32) (result i32) (i32.const 1024))
        (func (export "proxy_on_context_create") (param i32 i32))
        (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
        (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))
        (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (i32.const 0))
        (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32) (i32.const 0))
        (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
        (func (export "proxy_on_log") (param i32))
        (func (export "proxy_on_delete") (param i32)))"#;
    wat::parse_str(wat).expect("the no-op module is valid WAT")
}
