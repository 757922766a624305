//! A loopback HTTP/1.1 upstream that answers every request with the request itself as JSON:
//! `{"method", "path", "headers": ["name: value", ...], "body"}`, header names lower-cased and
//! values decoded lossily as UTF-8.
//!
//! Request headers steer the reply, so tests can exercise response-side filters:
//! `x-echo-status: 503` sets the status, `x-echo-header-<name>: <value>` adds a response header.
//! A test can also queue exact replies ([`EchoUpstream::reply_next`]) and read back every request
//! the upstream received ([`EchoUpstream::received`]).

use crate::http1;
use serde_json::json;
use std::collections::VecDeque;
use std::io::{self, BufWriter};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Prefix of request headers that become response headers.
pub const SET_RESPONSE_HEADER_PREFIX: &str = "x-echo-header-";

/// A reply the upstream sends instead of the echo.
#[derive(Debug, Clone, Default)]
pub struct CannedReply {
    /// Status.
    pub status: u16,
    /// Headers, in order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Body.
    pub body: Vec<u8>,
}

/// A request as the upstream received it.
#[derive(Debug, Clone)]
pub struct ReceivedRequest {
    /// Method.
    pub method: String,
    /// Request target.
    pub path: String,
    /// Headers in order, names lower-cased.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Body.
    pub body: Vec<u8>,
}

#[derive(Default)]
struct Script {
    replies: Mutex<VecDeque<CannedReply>>,
    always: Mutex<Option<CannedReply>>,
    received: Mutex<Vec<ReceivedRequest>>,
}

/// A running echo upstream on 127.0.0.1. Stops when dropped.
pub struct EchoUpstream {
    port: u16,
    stopping: Arc<AtomicBool>,
    script: Arc<Script>,
}

impl EchoUpstream {
    /// Binds a free loopback port and starts serving.
    pub fn start() -> io::Result<EchoUpstream> {
        Self::start_on(0)
    }

    /// Binds `port` on 127.0.0.1 (0 for a free one) and starts serving.
    pub fn start_on(port: u16) -> io::Result<EchoUpstream> {
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        let port = listener.local_addr()?.port();
        let stopping = Arc::new(AtomicBool::new(false));
        let script = Arc::new(Script::default());
        let shared_script = script.clone();
        crate::servers::accept_each(listener, "echo", stopping.clone(), move |connection| {
            serve(connection, &shared_script)
        })?;
        Ok(EchoUpstream {
            port,
            stopping,
            script,
        })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Answers the next request with `reply` instead of the echo.
    pub fn reply_next(&self, reply: CannedReply) {
        lock(&self.script.replies).push_back(reply);
    }

    /// Answers every request with `reply` (after any queued with `reply_next`), e.g. to serve a
    /// JWKS document.
    pub fn reply_always(&self, reply: CannedReply) {
        *lock(&self.script.always) = Some(reply);
    }

    /// Every request received since the last call, oldest first.
    pub fn received(&self) -> Vec<ReceivedRequest> {
        std::mem::take(&mut *lock(&self.script.received))
    }

    /// Drops replies queued with [`reply_next`](Self::reply_next) that no request used.
    pub fn clear_replies(&self) {
        lock(&self.script.replies).clear();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Drop for EchoUpstream {
    fn drop(&mut self) {
        crate::servers::stop_accepting(self.port, &self.stopping);
    }
}

fn serve(connection: TcpStream, script: &Script) {
    let _ = connection.set_read_timeout(Some(Duration::from_secs(60)));
    let Ok(write_half) = connection.try_clone() else {
        return;
    };
    let mut reader = http1::reader(&connection);
    let mut writer = BufWriter::new(write_half);
    while let Ok(Some(head)) = http1::read_request_head(&mut reader) {
        let Ok(body) = http1::read_body(&mut reader, &head, false) else {
            break;
        };
        lock(&script.received).push(ReceivedRequest {
            method: head.method.clone(),
            path: head.path.clone(),
            headers: head
                .headers
                .iter()
                .map(|(name, value)| (name.to_ascii_lowercase(), value.clone()))
                .collect(),
            body: body.clone(),
        });
        let canned = lock(&script.replies)
            .pop_front()
            .or_else(|| lock(&script.always).clone());
        let (status, headers, reply) = match canned {
            Some(canned) => (canned.status, canned.headers, canned.body),
            None => echo_reply(&head, &body),
        };
        let start_line = format!("HTTP/1.1 {status} {}", reason(status));
        if http1::write_message(&mut writer, &start_line, &headers, &reply).is_err() {
            break;
        }
        let close = head
            .header("connection")
            .is_some_and(|value| value.eq_ignore_ascii_case(b"close"));
        if close {
            break;
        }
    }
    let _ = connection.shutdown(Shutdown::Both);
}

fn echo_reply(head: &http1::Head, body: &[u8]) -> (u16, http1::Headers, Vec<u8>) {
    let lossy = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    let document = json!({
        "method": head.method,
        "path": head.path,
        "headers": head
            .headers
            .iter()
            .map(|(name, value)| format!("{}: {}", name.to_ascii_lowercase(), lossy(value)))
            .collect::<Vec<_>>(),
        "body": lossy(body),
    });
    let status = head
        .header("x-echo-status")
        .and_then(|value| std::str::from_utf8(value).ok()?.parse::<u16>().ok())
        .filter(|status| (200..=599).contains(status))
        .unwrap_or(200);
    let mut headers = vec![
        ("content-type".to_string(), b"application/json".to_vec()),
        ("server".to_string(), b"echo-upstream".to_vec()),
    ];
    for (name, value) in &head.headers {
        let lower = name.to_ascii_lowercase();
        if let Some(response_name) = lower.strip_prefix(SET_RESPONSE_HEADER_PREFIX) {
            headers.push((response_name.to_string(), value.clone()));
        }
    }
    (status, headers, document.to_string().into_bytes())
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}
