//! Scenario files: a filter configuration, a sequence of requests, and what the upstream and the
//! client must see. The same file runs in test-host ([`run`]) and in real Envoy (the envoy-harness
//! crate), so it only states what both can observe: the request as the upstream received it,
//! the response as the client received it, and the filter's log lines.
//!
//! ```json
//! {
//!   "name": "header-rewrite adds and removes",
//!   "filter": "header_rewrite",
//!   "config": {"mutations": {"request_mutations": [{"append": {"header": {"key": "x-a", "value": "1"}}}]}},
//!   "requests": [{
//!     "name": "plain GET",
//!     "request": {"method": "GET", "path": "/items", "headers": [["x-user", "alice"]]},
//!     "upstream_response": {"status": 200, "headers": [["server", "up"]], "body": "ok"},
//!     "expect": {
//!       "upstream": {"path": "/items", "headers": {"x-a": "1"}, "absent": ["x-drop"]},
//!       "response": {"status": 200, "body_contains": ["ok"]},
//!       "logs": []
//!     }
//!   }]
//! }
//! ```
//!
//! A filter that makes HTTP callouts (ext-authz's check) gets them answered from `"callouts":
//! [{"status": 200, "headers": [...], "body": "..."}]`, in order; in Envoy they go to the
//! `upstream` cluster, which answers them before the request itself.

use crate::{Error, HeaderMap, HttpResponse, Plugin, TestHost};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// A scenario file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// What the scenario shows.
    pub name: String,
    /// The filter module's name in the filter directory (`header_rewrite`).
    pub filter: String,
    /// The plugin configuration.
    #[serde(default)]
    pub config: serde_json::Value,
    /// Requests, played in order on one plugin.
    pub requests: Vec<Exchange>,
}

/// One request and what must come of it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exchange {
    /// What the request shows.
    pub name: String,
    /// The client's request.
    pub request: ClientRequest,
    /// What the upstream answers, if the request reaches it. Default: 200 with no body.
    #[serde(default)]
    pub upstream_response: UpstreamResponse,
    /// Answers to the filter's HTTP callouts, in the order it makes them. In Envoy the
    /// `upstream` cluster serves them, before `upstream_response`.
    #[serde(default)]
    pub callouts: Vec<UpstreamResponse>,
    /// What must be seen.
    #[serde(default)]
    pub expect: Expectations,
}

/// A client request.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientRequest {
    /// Method. Default GET.
    #[serde(default = "default_method")]
    pub method: String,
    /// Path with query.
    pub path: String,
    /// Headers besides the pseudo-headers, in order.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// Body.
    #[serde(default)]
    pub body: String,
}

fn default_method() -> String {
    "GET".into()
}

/// The upstream's answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamResponse {
    /// Status.
    pub status: u16,
    /// Headers, in order.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// Body.
    #[serde(default)]
    pub body: String,
}

impl Default for UpstreamResponse {
    fn default() -> Self {
        UpstreamResponse {
            status: 200,
            headers: Vec::new(),
            body: String::new(),
        }
    }
}

/// What must be seen; absent parts are not checked.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectations {
    /// The request as the upstream got it; `null` means it must not reach the upstream.
    #[serde(default, deserialize_with = "present")]
    pub upstream: Option<Option<MessageExpectation>>,
    /// The response as the client got it.
    #[serde(default)]
    pub response: Option<MessageExpectation>,
    /// Substrings that must appear in the filter's log lines for this request.
    #[serde(default)]
    pub logs: Vec<String>,
}

/// Distinguishes a field set to `null` (`Some(None)`) from one left out (`None`).
fn present<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<MessageExpectation>>, D::Error> {
    Option::<MessageExpectation>::deserialize(deserializer).map(Some)
}

/// Expectations on one message.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageExpectation {
    /// Response status.
    #[serde(default)]
    pub status: Option<u16>,
    /// Request method.
    #[serde(default)]
    pub method: Option<String>,
    /// Request path.
    #[serde(default)]
    pub path: Option<String>,
    /// Headers that must have this first value.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Headers that must be absent.
    #[serde(default)]
    pub absent: Vec<String>,
    /// Exact body.
    #[serde(default)]
    pub body: Option<String>,
    /// Substrings the body must contain.
    #[serde(default)]
    pub body_contains: Vec<String>,
}

/// A message as one host observed it.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// Response status (responses).
    pub status: Option<u16>,
    /// Method (requests).
    pub method: Option<String>,
    /// Path (requests).
    pub path: Option<String>,
    /// Headers, names lower-case, in order.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Observed {
    fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        // `:authority` travels as `host` over HTTP/1.1.
        let alias = match name.as_str() {
            "host" => ":authority",
            ":authority" => "host",
            _ => "",
        };
        self.headers
            .iter()
            .find(|(key, _)| *key == name || *key == alias)
            .map(|(_, value)| value.as_str())
    }

    /// A message from a test-host header map and body.
    pub fn from_message(headers: Option<&HeaderMap>, body: &[u8]) -> Observed {
        let headers: Vec<(String, String)> = headers
            .map(|map| {
                map.entries()
                    .iter()
                    .map(|(name, value)| {
                        (
                            String::from_utf8_lossy(name).into_owned(),
                            String::from_utf8_lossy(value).into_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let pseudo = |name: &str| {
            headers
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        };
        Observed {
            status: pseudo(":status").and_then(|status| status.parse().ok()),
            method: pseudo(":method"),
            path: pseudo(":path"),
            headers,
            body: body.to_vec(),
        }
    }
}

/// What one host observed for one exchange.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// The request at the upstream, if it got there.
    pub upstream: Option<Observed>,
    /// The response at the client.
    pub response: Observed,
    /// The filter's log lines during the exchange.
    pub logs: Vec<String>,
}

impl MessageExpectation {
    fn check(&self, what: &str, observed: &Observed, failures: &mut Vec<String>) {
        let mut mismatch =
            |field: &str, expected: &dyn std::fmt::Debug, actual: &dyn std::fmt::Debug| {
                failures.push(format!(
                    "{what} {field}: expected {expected:?}, got {actual:?}"
                ));
            };
        if let Some(status) = self.status {
            if observed.status != Some(status) {
                mismatch("status", &status, &observed.status);
            }
        }
        if let Some(method) = &self.method {
            if observed.method.as_ref() != Some(method) {
                mismatch("method", method, &observed.method);
            }
        }
        if let Some(path) = &self.path {
            if observed.path.as_ref() != Some(path) {
                mismatch("path", path, &observed.path);
            }
        }
        for (name, value) in &self.headers {
            let actual = observed.header(name);
            if actual != Some(value.as_str()) {
                mismatch(&format!("header {name}"), value, &actual);
            }
        }
        for name in &self.absent {
            if let Some(actual) = observed.header(name) {
                mismatch(&format!("header {name}"), &"absent", &actual);
            }
        }
        let body = String::from_utf8_lossy(&observed.body);
        if let Some(expected) = &self.body {
            if body != *expected {
                mismatch("body", expected, &body);
            }
        }
        for fragment in &self.body_contains {
            if !body.contains(fragment.as_str()) {
                mismatch("body", &format!("to contain {fragment:?}"), &body);
            }
        }
    }
}

impl Expectations {
    /// Every way `outcome` falls short of the expectations; empty when it meets them.
    pub fn check(&self, outcome: &Outcome) -> Vec<String> {
        let mut failures = Vec::new();
        match (&self.upstream, &outcome.upstream) {
            (Some(None), Some(observed)) => failures.push(format!(
                "the request reached the upstream: {:?} {:?}",
                observed.method, observed.path
            )),
            (Some(Some(_)), None) => failures.push("the request did not reach the upstream".into()),
            (Some(Some(expected)), Some(observed)) => {
                expected.check("upstream", observed, &mut failures)
            }
            _ => {}
        }
        if let Some(expected) = &self.response {
            expected.check("response", &outcome.response, &mut failures);
        }
        for fragment in &self.logs {
            if !outcome
                .logs
                .iter()
                .any(|line| line.contains(fragment.as_str()))
            {
                failures.push(format!("no log line contains {fragment:?}"));
            }
        }
        failures
    }
}

/// The result of one exchange of a scenario run.
#[derive(Debug, Clone)]
pub struct ExchangeReport {
    /// The exchange's name.
    pub name: String,
    /// Unmet expectations; empty when it passed.
    pub failures: Vec<String>,
}

impl Scenario {
    /// Reads a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?;
        serde_json::from_str(&text).map_err(|e| Error::Usage(format!("{}: {e}", path.display())))
    }
}

/// Plays `scenario` in test-host against `module` (its `config` unless `config` overrides it),
/// and reports each exchange.
pub fn run(
    scenario: &Scenario,
    module: &Path,
    config: Option<&serde_json::Value>,
) -> Result<Vec<ExchangeReport>, Error> {
    let host = TestHost::new();
    let plugin = host
        .plugin(module)
        .name(&scenario.filter)
        .config(config.unwrap_or(&scenario.config).clone())
        .start()?;
    let mut reports = Vec::new();
    for exchange in &scenario.requests {
        let outcome = play(&plugin, exchange)?;
        reports.push(ExchangeReport {
            name: exchange.name.clone(),
            failures: exchange.expect.check(&outcome),
        });
    }
    Ok(reports)
}

/// Plays one exchange: the request, the upstream's answer if the request got there.
pub fn play(plugin: &Plugin, exchange: &Exchange) -> Result<Outcome, Error> {
    let logs_before = plugin.logs().len();
    let request = &exchange.request;
    let mut headers: Vec<(String, String)> = vec![
        (":method".into(), request.method.clone()),
        (":path".into(), request.path.clone()),
        (":authority".into(), "example.com".into()),
        (":scheme".into(), "http".into()),
    ];
    headers.extend(request.headers.iter().cloned());
    let mut stream = plugin.http_stream()?;
    let has_body = !request.body.is_empty();
    stream.send_request_headers(&headers, !has_body)?;
    if has_body && stream.local_response().is_none() {
        stream.send_request_body(request.body.as_bytes(), true)?;
    }
    for answer in &exchange.callouts {
        // Fewer callouts than answers shows in the expectations (the request was answered
        // without them).
        let Some(call) = stream.http_calls().into_iter().next() else {
            break;
        };
        let mut response = HttpResponse::new(answer.status).body(answer.body.clone());
        for (name, value) in &answer.headers {
            response = response.header(name, value);
        }
        plugin.respond_http_call(call.token, response)?;
    }
    let upstream = stream.upstream_request();
    let reached = upstream.complete && stream.local_response().is_none();
    if reached {
        let answer = &exchange.upstream_response;
        let mut response_headers: Vec<(String, String)> =
            vec![(":status".into(), answer.status.to_string())];
        response_headers.extend(answer.headers.iter().cloned());
        let has_body = !answer.body.is_empty();
        stream.send_response_headers(&response_headers, !has_body)?;
        if has_body {
            stream.send_response_body(answer.body.as_bytes(), true)?;
        }
    }
    let client = stream.client_response();
    stream.end()?;
    Ok(Outcome {
        upstream: reached
            .then(|| Observed::from_message(upstream.headers.as_ref(), &upstream.body)),
        response: Observed::from_message(client.headers.as_ref(), &client.body),
        logs: plugin.logs()[logs_before..]
            .iter()
            .map(|entry| entry.message.clone())
            .collect(),
    })
}

/// Every `filters/*/scenarios/*.json` under the workspace at `root`, sorted.
pub fn workspace_scenarios(root: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let Ok(filters) = std::fs::read_dir(root.join("filters")) else {
        return files;
    };
    for filter in filters.flatten() {
        if let Ok(entries) = std::fs::read_dir(filter.path().join("scenarios")) {
            files.extend(
                entries
                    .flatten()
                    .map(|entry| entry.path())
                    .filter(|path| path.extension().is_some_and(|ext| ext == "json")),
            );
        }
    }
    files.sort();
    files
}
