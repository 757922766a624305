//! What differential e2e tests compare: one request sent to a native filter's listener and to its
//! wasm twin's, reduced to what the client and the upstream saw, and run many at a time.

use crate::client::Response;
use crate::process::Envoy;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// What a client saw, reduced to what must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The status; 0 when no response came.
    pub status: u16,
    /// The compared response headers, by name, in the order asked for.
    pub headers: Vec<(&'static str, Option<String>)>,
    /// The body of a local reply (empty when the upstream answered).
    pub body: String,
    /// The request as the upstream received it, when it did.
    pub upstream: Option<Upstream>,
}

/// The request as the echo upstream received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// Path with query.
    pub path: String,
    /// Headers sorted by name (values of one name in the order received).
    pub headers: Vec<(String, String)>,
}

impl Seen {
    /// Reduces `response` to its status, the response headers `compared`, a local reply's body,
    /// and the upstream's view (the echo's), without the upstream headers `ignored`.
    pub fn of(
        response: Result<Response, String>,
        compared: &[&'static str],
        ignored: &[&str],
    ) -> Seen {
        let response = match response {
            Ok(response) => response,
            Err(error) => {
                return Seen {
                    status: 0,
                    headers: compared.iter().map(|name| (*name, None)).collect(),
                    body: format!("no response: {error}"),
                    upstream: None,
                }
            }
        };
        let echo = response.json();
        let upstream = echo.get("headers").map(|_| {
            let mut headers: Vec<(String, String)> = response
                .upstream_headers()
                .into_iter()
                .filter(|(name, _)| !ignored.contains(&name.as_str()))
                .collect();
            headers.sort_by(|a, b| a.0.cmp(&b.0));
            Upstream {
                path: echo["path"].as_str().unwrap_or_default().to_string(),
                headers,
            }
        });
        Seen {
            status: response.status,
            headers: compared
                .iter()
                .map(|name| (*name, response.header(name)))
                .collect(),
            body: if upstream.is_some() {
                String::new()
            } else {
                String::from_utf8_lossy(&response.body).into_owned()
            },
            upstream,
        }
    }

    /// A compared response header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(compared, _)| *compared == name)
            .and_then(|(_, value)| value.as_deref())
    }

    /// Several lines for a failure report; `show` shortens long values.
    pub fn describe(&self, show: &dyn Fn(&str) -> String) -> String {
        let mut text = format!("{}", self.status);
        for (name, value) in &self.headers {
            if let Some(value) = value {
                let _ = write!(text, " {name}: {}", show(value));
            }
        }
        if !self.body.is_empty() {
            let _ = write!(text, " body: {:?}", show(&self.body));
        }
        if let Some(upstream) = &self.upstream {
            let _ = write!(text, "\n      upstream {}", show(&upstream.path));
            for (name, value) in &upstream.headers {
                let _ = write!(text, "\n        {name}: {}", show(value));
            }
        }
        text
    }
}

/// `text` whole when short, else its first `keep` and last `keep` characters around its length.
pub fn shortened(text: &str, keep: usize) -> String {
    if text.chars().count() <= keep * 3 {
        return text.to_string();
    }
    let start: String = text.chars().take(keep).collect();
    let end: Vec<char> = text.chars().rev().take(keep).collect();
    let end: String = end.into_iter().rev().collect();
    format!("{start}…({} bytes)…{end}", text.len())
}

/// Sends each request to the listeners `native-<variant>` and `wasm-<variant>`, `parallel` at a
/// time, and returns (native, wasm) in the requests' order.
pub fn run_pairs<R: Sync>(
    envoy: &Envoy,
    requests: &[(&str, &R)],
    parallel: usize,
    send: impl Fn(u16, &R) -> Seen + Sync,
) -> Vec<(Seen, Seen)> {
    let port = |side: &str, variant: &str| {
        envoy
            .listener_port(&format!("{side}-{variant}"))
            .unwrap_or_else(|| panic!("no listener {side}-{variant}"))
    };
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<(Seen, Seen)>>> = Mutex::new(vec![None; requests.len()]);
    std::thread::scope(|scope| {
        for _ in 0..parallel.max(1) {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::SeqCst);
                let Some((variant, request)) = requests.get(index) else {
                    break;
                };
                let native = send(port("native", variant), request);
                let wasm = send(port("wasm", variant), request);
                if let Ok(mut results) = results.lock() {
                    if let Some(slot) = results.get_mut(index) {
                        *slot = Some((native, wasm));
                    }
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .into_iter()
        .map(|result| result.unwrap_or_else(|| panic!("a request did not run")))
        .collect()
}
