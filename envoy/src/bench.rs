//! Load benchmarks in real Envoy: several filter chains side by side in one Envoy (one listener
//! each), the same load from `wrk` on loopback against each, interleaved and repeated, so that
//! ratios come from one run and the spread between rounds shows the noise. Routes answer with
//! `direct_response`, so only Envoy and the filters are measured.
//!
//! Besides wrk's rps and latency, each run reads the CPU time Envoy's threads used
//! (`/proc/<pid>/task/*/schedstat`): CPU per request hardly moves when other processes take
//! cores from the benchmark, while rps does.

use crate::client::Request;
use crate::config::BootstrapBuilder;
use crate::echo::CannedReply;
use crate::http1;
use crate::process::{Envoy, EnvoyOptions};
use serde_json::{json, Value};
use std::io::{self, BufWriter};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// A request sent once before the load, to show that a variant's filters really act: the
/// benchmark request (method, headers, body), less one header if `without` says so.
#[derive(Debug, Clone)]
pub struct Check {
    /// A header of the benchmark request left out of this one (e.g. `authorization`).
    pub without: Option<String>,
    /// The status expected.
    pub status: u16,
    /// A response header expected, with its value.
    pub response_header: Option<(String, String)>,
    /// Text the response body must contain.
    pub body_contains: Option<String>,
}

impl Check {
    /// The benchmark request itself must get `status`.
    pub fn status(status: u16) -> Check {
        Check {
            without: None,
            status,
            response_header: None,
            body_contains: None,
        }
    }

    /// Sends the request without this header.
    pub fn without(mut self, name: &str) -> Check {
        self.without = Some(name.to_string());
        self
    }

    /// The response must carry this header with this value.
    pub fn response_header(mut self, name: &str, value: &str) -> Check {
        self.response_header = Some((name.to_string(), value.to_string()));
        self
    }

    /// The response body must contain `text`.
    pub fn body_contains(mut self, text: &str) -> Check {
        self.body_contains = Some(text.to_string());
        self
    }
}

/// One filter chain to measure.
#[derive(Debug, Clone)]
pub struct Variant {
    /// Short name for the report.
    pub name: String,
    /// HTTP filters, before the router.
    pub filters: Vec<Value>,
    /// Headers each request carries.
    pub headers: Vec<(String, String)>,
    /// The request method.
    pub method: String,
    /// The request body, if any.
    pub body: Option<String>,
    /// The listener's routes; `None` is a `direct_response` 200 for every path.
    pub routes: Option<Value>,
    /// A wrk Lua script that builds the requests instead (e.g. a different token each time).
    pub script: Option<String>,
    /// Requests that must get their expected answer before the load starts.
    pub checks: Vec<Check>,
}

impl Variant {
    /// A variant with these filters and no extra request headers.
    pub fn new(name: &str, filters: Vec<Value>) -> Variant {
        Variant {
            name: name.to_string(),
            filters,
            headers: Vec::new(),
            method: "GET".into(),
            body: None,
            routes: None,
            script: None,
            checks: Vec::new(),
        }
    }

    /// The same filters under another name.
    pub fn named(mut self, name: &str) -> Variant {
        self.name = name.to_string();
        self
    }

    /// Sends `method` instead of GET.
    pub fn method(mut self, method: &str) -> Variant {
        self.method = method.to_string();
        self
    }

    /// Sends this body with every request.
    pub fn body(mut self, body: &str) -> Variant {
        self.body = Some(body.to_string());
        self
    }

    /// Routes the listener so instead of answering with `direct_response`.
    pub fn routes(mut self, routes: Value) -> Variant {
        self.routes = Some(routes);
        self
    }

    /// Adds a request header.
    pub fn header(mut self, name: &str, value: &str) -> Variant {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Adds a request that must get its expected answer before the load starts.
    pub fn check(mut self, check: Check) -> Variant {
        self.checks.push(check);
        self
    }
}

/// Load settings.
#[derive(Debug, Clone)]
pub struct Load {
    /// Envoy worker threads (`--concurrency`).
    pub concurrency: u32,
    /// wrk threads (`wrk -t`).
    pub threads: u32,
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
            concurrency: 1,
            threads: 1,
            connections: 16,
            duration: Duration::from_secs(4),
            rounds: 3,
            warmup: Duration::from_secs(1),
        }
    }
}

impl Load {
    /// One line for a report's heading: workers and wrk settings.
    pub fn describe(&self) -> String {
        format!(
            "Envoy --concurrency {}, wrk -t{} -c{} -d{}s, {} interleaved rounds",
            self.concurrency,
            self.threads,
            self.connections,
            self.duration.as_secs(),
            self.rounds
        )
    }
}

/// What wrk reported for one run.
#[derive(Debug, Clone, Copy)]
struct Run {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
    non_2xx: u64,
    /// Envoy's CPU time per request, µs (NaN when /proc could not tell).
    cpu_us: f64,
}

/// The result for one variant.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// The variant's name.
    pub name: String,
    /// Median requests per second.
    pub rps: f64,
    /// Every round's requests per second, in the order measured.
    pub rounds: Vec<f64>,
    /// Median over the rounds of wrk's median latency, µs.
    pub p50_us: f64,
    /// Median over the rounds of wrk's 99th percentile latency, µs.
    pub p99_us: f64,
    /// Non-2xx responses seen (a benchmark of an unlimited load expects none).
    pub non_2xx: u64,
    /// Every round's Envoy CPU time per request, µs, in the order measured.
    pub cpu_rounds: Vec<f64>,
}

impl Measurement {
    /// Microseconds of Envoy's time per request: worker time when the workers are saturated.
    pub fn micros_per_request(&self) -> f64 {
        1e6 / self.rps
    }

    /// The spread of the rounds' rps: (max - min) / median, in percent.
    pub fn spread_percent(&self) -> f64 {
        spread_percent(&self.rounds)
    }

    /// Median Envoy CPU time per request, µs.
    pub fn cpu_us(&self) -> f64 {
        median(&self.cpu_rounds)
    }
}

/// The median of `values` (the upper one of an even count); 0 when empty.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}

/// (max - min) / median of `values`, in percent.
pub fn spread_percent(values: &[f64]) -> f64 {
    let max = values.iter().copied().fold(f64::MIN, f64::max);
    let min = values.iter().copied().fold(f64::MAX, f64::min);
    let middle = median(values);
    if middle > 0.0 {
        100.0 * (max - min) / middle
    } else {
        0.0
    }
}

/// The Envoy this process started: its child named `envoy`.
fn child_envoy_pid() -> Option<u32> {
    let own = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // `pid (comm) state ppid ...`: comm may hold spaces, so split after its `)`.
            let (head, rest) = stat.rsplit_once(')')?;
            let comm = head.split_once('(')?.1;
            let ppid = rest.split_whitespace().nth(1)?;
            (comm == "envoy" && ppid == own).then_some(pid)
        })
}

/// CPU time every thread of `pid` has run, in ns (`schedstat`'s first field).
fn cpu_nanos(pid: u32) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = 0u64;
    for task in tasks.flatten() {
        let stat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
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

/// A wrk latency such as `392.00us`, `1.23ms` or `2.01s`, in µs.
fn parse_latency(text: &str) -> Option<f64> {
    let text = text.trim();
    let (number, scale) = if let Some(number) = text.strip_suffix("us") {
        (number, 1.0)
    } else if let Some(number) = text.strip_suffix("ms") {
        (number, 1e3)
    } else if let Some(number) = text.strip_suffix('s') {
        (number, 1e6)
    } else {
        return None;
    };
    number.trim().parse::<f64>().ok().map(|value| value * scale)
}

/// The value of wrk's `--latency` distribution line for `percentile` (e.g. `99%`).
fn percentile(text: &str, percentile: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.trim().strip_prefix(percentile))
        .and_then(parse_latency)
}

fn run_wrk(
    wrk: &str,
    port: u16,
    variant: &Variant,
    duration: Duration,
    load: &Load,
    script_dir: &Path,
    envoy_pid: Option<u32>,
) -> io::Result<Run> {
    let mut command = Command::new(wrk);
    command
        .arg(format!("-t{}", load.threads.max(1)))
        .args(["-c", &load.connections.to_string(), "--latency", "-d"])
        .arg(format!("{}s", duration.as_secs().max(1)));
    for (name, value) in &variant.headers {
        command.arg("-H").arg(format!("{name}: {value}"));
    }
    if let Some(script) = wrk_script(variant) {
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
    let cpu_before = envoy_pid.and_then(cpu_nanos);
    let output = command.output()?;
    let cpu_after = envoy_pid.and_then(cpu_nanos);
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
    let requests = text
        .lines()
        .find_map(|line| line.trim().split_once(" requests in "))
        .and_then(|(count, _)| count.trim().parse::<f64>().ok());
    let cpu_us = match (cpu_before, cpu_after, requests) {
        (Some(before), Some(after), Some(requests)) if requests > 0.0 => {
            after.saturating_sub(before) as f64 / 1e3 / requests
        }
        _ => f64::NAN,
    };
    Ok(Run {
        rps,
        cpu_us,
        p50_us: percentile(&text, "50%").unwrap_or(f64::NAN),
        p99_us: percentile(&text, "99%").unwrap_or(f64::NAN),
        non_2xx,
    })
}

/// The variant's Lua script: its own, or one that sets a method or body other than wrk's GET.
fn wrk_script(variant: &Variant) -> Option<String> {
    if variant.script.is_some() {
        return variant.script.clone();
    }
    if variant.method == "GET" && variant.body.is_none() {
        return None;
    }
    // Lua long brackets hold any body that has no `]==]`; the bodies here are JSON.
    let mut script = format!("wrk.method = \"{}\"\n", variant.method);
    if let Some(body) = &variant.body {
        script.push_str(&format!("wrk.body = [==[{body}]==]\n"));
    }
    Some(script)
}

/// Sends each of the variant's checks once; an unexpected answer fails the benchmark, so a
/// misconfigured listener is never measured as a fast one.
fn run_checks(port: u16, variant: &Variant) -> io::Result<()> {
    for check in &variant.checks {
        let mut request = Request::get("/bench");
        request.method = variant.method.clone();
        if let Some(body) = &variant.body {
            request.body = body.as_bytes().to_vec();
        }
        for (name, value) in &variant.headers {
            if check.without.as_deref() != Some(name.as_str()) {
                request = request.header(name, value);
            }
        }
        let response = request.send(port)?;
        let header_ok = check
            .response_header
            .as_ref()
            .is_none_or(|(name, value)| response.header(name).as_deref() == Some(value.as_str()));
        let body = String::from_utf8_lossy(&response.body);
        let body_ok = check
            .body_contains
            .as_ref()
            .is_none_or(|text| body.contains(text.as_str()));
        if response.status != check.status || !header_ok || !body_ok {
            return Err(io::Error::other(format!(
                "{}: expected {} {:?} {:?} (without {:?}), got {} with headers {:?} and body {body:?}",
                variant.name,
                check.status,
                check.response_header,
                check.body_contains,
                check.without,
                response.status,
                response.headers
            )));
        }
    }
    Ok(())
}

/// Measures every variant in one Envoy, with `load.concurrency` workers.
pub fn measure(variants: &[Variant], load: &Load) -> io::Result<Vec<Measurement>> {
    measure_in(variants, load, BootstrapBuilder::new(1))
}

/// [`measure`] in a bootstrap that already has the clusters the variants' routes and filters
/// name (an upstream, an authorization service).
pub fn measure_in(
    variants: &[Variant],
    load: &Load,
    mut bootstrap: BootstrapBuilder,
) -> io::Result<Vec<Measurement>> {
    let wrk = wrk_binary()?;
    for (index, variant) in variants.iter().enumerate() {
        bootstrap = bootstrap.listener_with_routes(
            &format!("bench{index}"),
            variant.filters.clone(),
            variant.routes.clone().unwrap_or_else(direct_response),
        );
    }
    let options = EnvoyOptions {
        concurrency: load.concurrency.max(1),
        log_level: "warning".into(),
    };
    let envoy = Envoy::start_with(bootstrap.build(), &options)?;
    let pid = child_envoy_pid();
    let script_dir = std::env::temp_dir().join(format!("envoy-bench-{}", std::process::id()));
    std::fs::create_dir_all(&script_dir)?;
    let mut ports = Vec::with_capacity(variants.len());
    for index in 0..variants.len() {
        let name = format!("bench{index}");
        let port = envoy
            .listener_port(&name)
            .ok_or_else(|| io::Error::other(format!("Envoy has no listener {name}")))?;
        ports.push(port);
    }
    for (variant, &port) in variants.iter().zip(&ports) {
        run_checks(port, variant)?;
        run_wrk(&wrk, port, variant, load.warmup, load, &script_dir, pid)?;
    }
    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); variants.len()];
    for round in 1..=load.rounds {
        for (index, ((variant, &port), runs)) in
            variants.iter().zip(&ports).zip(runs.iter_mut()).enumerate()
        {
            let run = run_wrk(&wrk, port, variant, load.duration, load, &script_dir, pid)?;
            eprintln!(
                "bench:   round {round}/{}, {}/{} {}: {:.0} rps, {:.1} µs CPU/request",
                load.rounds,
                index + 1,
                variants.len(),
                variant.name,
                run.rps,
                run.cpu_us
            );
            runs.push(run);
        }
    }
    let _ = std::fs::remove_dir_all(&script_dir);
    Ok(variants
        .iter()
        .zip(runs)
        .map(|(variant, runs)| {
            let rounds: Vec<f64> = runs.iter().map(|run| run.rps).collect();
            let p50: Vec<f64> = runs.iter().map(|run| run.p50_us).collect();
            let p99: Vec<f64> = runs.iter().map(|run| run.p99_us).collect();
            Measurement {
                name: variant.name.clone(),
                rps: median(&rounds),
                rounds,
                p50_us: median(&p50),
                p99_us: median(&p99),
                non_2xx: runs.iter().map(|run| run.non_2xx).sum(),
                cpu_rounds: runs.iter().map(|run| run.cpu_us).collect(),
            }
        })
        .collect())
}

/// A markdown table: rps and its spread, latency, 1e6/rps, Envoy's CPU time per request and its
/// spread, and the CPU cost above `baseline` (a variant name).
pub fn report(title: &str, measurements: &[Measurement], baseline: &str) -> String {
    let base = measurements
        .iter()
        .find(|m| m.name == baseline)
        .map(Measurement::cpu_us);
    let mut out = format!(
        "### {title}\n\n| variant | rps (median) | spread | p50 | p99 | 1e6/rps | Envoy CPU µs/request | spread | CPU above {baseline} | rounds (rps) | non-2xx |\n|---|---|---|---|---|---|---|---|---|---|---|\n"
    );
    for measurement in measurements {
        let above = base.map_or("-".to_string(), |base| {
            format!("{:+.1} µs", measurement.cpu_us() - base)
        });
        let rounds: Vec<String> = measurement
            .rounds
            .iter()
            .map(|rps| format!("{rps:.0}"))
            .collect();
        out.push_str(&format!(
            "| {} | {:.0} | {:.1}% | {:.0} µs | {:.0} µs | {:.1} µs | {:.1} | {:.1}% | {} | {} | {} |\n",
            measurement.name,
            measurement.rps,
            measurement.spread_percent(),
            measurement.p50_us,
            measurement.p99_us,
            measurement.micros_per_request(),
            measurement.cpu_us(),
            spread_percent(&measurement.cpu_rounds),
            above,
            rounds.join(" / "),
            measurement.non_2xx
        ));
    }
    out
}
/// A loopback upstream that answers every request with the same reply, on kept-alive
/// connections, recording nothing: a long load costs it no memory. Stops when dropped.
pub struct FixedUpstream {
    port: u16,
    stopping: Arc<AtomicBool>,
}

impl FixedUpstream {
    /// Binds a free loopback port and answers every request with `reply`.
    pub fn start(reply: CannedReply) -> io::Result<FixedUpstream> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let stopping = Arc::new(AtomicBool::new(false));
        let reply = Arc::new(reply);
        crate::servers::accept_each(listener, "fixed", stopping.clone(), move |connection| {
            serve_fixed(connection, &reply)
        })?;
        Ok(FixedUpstream { port, stopping })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for FixedUpstream {
    fn drop(&mut self) {
        crate::servers::stop_accepting(self.port, &self.stopping);
    }
}

fn serve_fixed(connection: TcpStream, reply: &CannedReply) {
    let Ok(write_half) = connection.try_clone() else {
        return;
    };
    let mut reader = http1::reader(&connection);
    let mut writer = BufWriter::new(write_half);
    let start_line = format!("HTTP/1.1 {} Fixed", reply.status);
    while let Ok(Some(head)) = http1::read_request_head(&mut reader) {
        if http1::read_body(&mut reader, &head, false).is_err()
            || http1::write_message(&mut writer, &start_line, &reply.headers, &reply.body).is_err()
        {
            break;
        }
    }
    let _ = connection.shutdown(Shutdown::Both);
}

/// What loading a variant's filters costs Envoy.
#[derive(Debug, Clone, Copy)]
pub struct StartCost {
    /// Envoy's `server.initialization_time_ms` (start until the workers take connections), which
    /// includes creating every wasm VM: median over the starts.
    pub init_ms: f64,
    /// Envoy's resident memory after the warm-up load, MiB: median over the starts.
    pub rss_mib: f64,
}

/// Starts Envoy `starts` times with only `variant`'s listener (in `bootstrap`, which has the
/// clusters it needs), loads it with wrk for `warmup`, and reads the start-up time and memory.
pub fn start_cost(
    variant: &Variant,
    bootstrap: &BootstrapBuilder,
    load: &Load,
    starts: usize,
) -> io::Result<StartCost> {
    let wrk = wrk_binary()?;
    let script_dir = std::env::temp_dir().join(format!("envoy-start-{}", std::process::id()));
    std::fs::create_dir_all(&script_dir)?;
    let mut init = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..starts.max(1) {
        let mut config = bootstrap
            .clone()
            .listener_with_routes(
                "bench",
                variant.filters.clone(),
                variant.routes.clone().unwrap_or_else(direct_response),
            )
            .build();
        // Histograms reach the admin endpoint when stats are flushed: on each admin read.
        config["stats_flush_on_admin"] = json!(true);
        let options = EnvoyOptions {
            concurrency: load.concurrency.max(1),
            log_level: "warning".into(),
        };
        let envoy = Envoy::start_with(config, &options)?;
        let port = envoy
            .listener_port("bench")
            .ok_or_else(|| io::Error::other("Envoy has no listener bench"))?;
        run_checks(port, variant)?;
        run_wrk(&wrk, port, variant, load.warmup, load, &script_dir, None)?;
        init.push(initialization_ms(&envoy).unwrap_or(f64::NAN));
        rss.push(envoy.rss_bytes()? as f64 / (1024.0 * 1024.0));
    }
    let _ = std::fs::remove_dir_all(&script_dir);
    Ok(StartCost {
        init_ms: median(&init),
        rss_mib: median(&rss),
    })
}

/// `server.initialization_time_ms` from the admin endpoint's JSON stats. The histogram's merge
/// after a flush is asynchronous, so the first reads may not have it yet.
fn initialization_ms(envoy: &Envoy) -> Option<f64> {
    for _ in 0..20 {
        let response = Request::get("/stats?format=json&filter=initialization_time_ms")
            .send(envoy.admin_port())
            .ok()?;
        let document = response.json();
        let found = document["stats"].as_array().and_then(|stats| {
            stats.iter().find_map(|stat| {
                let histograms = stat.get("histograms")?;
                let quantiles = histograms["supported_quantiles"].as_array()?;
                let p100 = quantiles.iter().position(|q| q.as_f64() == Some(100.0))?;
                histograms["computed_quantiles"]
                    .as_array()?
                    .iter()
                    .find(|h| h["name"] == "server.initialization_time_ms")?["values"][p100]
                    ["cumulative"]
                    .as_f64()
            })
        });
        if found.is_some() {
            return found;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// The hostcalls [`hostcall_module`] can repeat, and what one repetition does.
pub const HOSTCALLS: &[(&str, &str)] = &[
    (
        "get",
        "proxy_get_header_map_value(user-agent), which also calls the module's allocator",
    ),
    ("pairs", "proxy_get_header_map_pairs of the request headers"),
    (
        "pairs+set",
        "proxy_get_header_map_pairs, then proxy_set_header_map_pairs of the same map (2 calls)",
    ),
    ("replace", "proxy_replace_header_map_value(x-client: alice)"),
    ("add", "proxy_add_header_map_value(x-client: alice)"),
    ("remove", "proxy_remove_header_map_value(x-internal-token)"),
    ("metric", "proxy_increment_metric of a counter"),
    ("time", "proxy_get_current_time_nanoseconds"),
    ("shared_get", "proxy_get_shared_data of an 8-byte value"),
    (
        "shared_set",
        "proxy_set_shared_data of an 8-byte value, no CAS",
    ),
];

/// A module like [`noop_module`] whose request-headers callback makes `count` repetitions of one
/// of [`HOSTCALLS`], to measure what a hostcall costs in Envoy.
pub fn hostcall_module(call: &str, count: usize) -> io::Result<Vec<u8>> {
    let one = match call {
        "get" => "(drop (call $get (i32.const 0) (i32.const 16) (i32.const 10) (i32.const 64) (i32.const 68)))",
        "pairs" => "(drop (call $pairs (i32.const 0) (i32.const 64) (i32.const 68)))",
        "pairs+set" => "(drop (call $pairs (i32.const 0) (i32.const 64) (i32.const 68))) (drop (call $set_pairs (i32.const 0) (i32.load (i32.const 64)) (i32.load (i32.const 68))))",
        "replace" => "(drop (call $replace (i32.const 0) (i32.const 48) (i32.const 8) (i32.const 136) (i32.const 5)))",
        "add" => "(drop (call $add (i32.const 0) (i32.const 48) (i32.const 8) (i32.const 136) (i32.const 5)))",
        "remove" => "(drop (call $remove (i32.const 0) (i32.const 112) (i32.const 16)))",
        "metric" => "(drop (call $increment (global.get $metric) (i64.const 1)))",
        "time" => "(drop (call $time (i32.const 96)))",
        "shared_get" => "(drop (call $shared_get (i32.const 144) (i32.const 9) (i32.const 64) (i32.const 68) (i32.const 72)))",
        "shared_set" => "(drop (call $shared_set (i32.const 144) (i32.const 9) (i32.const 96) (i32.const 8) (i32.const 0)))",
        other => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("unknown hostcall {other:?}"),
            ))
        }
    };
    let wat = format!(
        r#"(module
        (import "env" "proxy_get_header_map_value" (func $get (param i32 i32 i32 i32 i32) (result i32)))
        (import "env" "proxy_get_header_map_pairs" (func $pairs (param i32 i32 i32) (result i32)))
        (import "env" "proxy_set_header_map_pairs" (func $set_pairs (param i32 i32 i32) (result i32)))
        (import "env" "proxy_replace_header_map_value" (func $replace (param i32 i32 i32 i32 i32) (result i32)))
        (import "env" "proxy_add_header_map_value" (func $add (param i32 i32 i32 i32 i32) (result i32)))
        (import "env" "proxy_remove_header_map_value" (func $remove (param i32 i32 i32) (result i32)))
        (import "env" "proxy_define_metric" (func $define (param i32 i32 i32 i32) (result i32)))
        (import "env" "proxy_increment_metric" (func $increment (param i32 i64) (result i32)))
        (import "env" "proxy_get_current_time_nanoseconds" (func $time (param i32) (result i32)))
        (import "env" "proxy_get_shared_data" (func $shared_get (param i32 i32 i32 i32 i32) (result i32)))
        (import "env" "proxy_set_shared_data" (func $shared_set (param i32 i32 i32 i32 i32) (result i32)))
        (memory (export "memory") 4)
        (data (i32.const 16) "user-agent")
        (data (i32.const 32) "bench_calls")
        (data (i32.const 48) "x-client")
        (data (i32.const 112) "x-internal-token")
        (data (i32.const 136) "alice")
        (data (i32.const 144) "bench_key")
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
            (drop (call $shared_set (i32.const 144) (i32.const 9) (i32.const 96) (i32.const 8) (i32.const 0)))
            (i32.const 1))
        (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
            (global.set $next (i32.const 4096))
            {calls}
            (i32.const 0))
        (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32) (i32.const 0))
        (func (export "proxy_on_delete") (param i32)))"#,
        calls = one.repeat(count)
    );
    wat::parse_str(wat).map_err(io::Error::other)
}

/// A module that exports the proxy-wasm callbacks a filter needs and does nothing: the ABI
/// floor. No `proxy_on_done` or `proxy_on_log`: Envoy skips a callback that is not exported,
/// and sdk-ext's modules export neither (each is a call into V8 for every stream).
pub fn noop_module() -> io::Result<Vec<u8>> {
    let wat = r#"(module
        (memory (export "memory") 1)
        (func (export "proxy_abi_version_0_2_1"))
        (func (export "malloc") (param i32) (result i32) (i32.const 1024))
        (func (export "proxy_on_context_create") (param i32 i32))
        (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
        (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))
        (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (i32.const 0))
        (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32) (i32.const 0))
        (func (export "proxy_on_delete") (param i32)))"#;
    wat::parse_str(wat).map_err(io::Error::other)
}
