//! Per-request logic, through the context object each hook is handed: the same code runs as its
//! own module, inside a chain, and on the fake host in unit tests.
//!
//! The rule for each direction is chosen once, at the request headers (a response rule matches
//! on the request). A body that may be rewritten loses its `content-length` in the header
//! phase, so Envoy re-frames whatever length it ends up with; then the body is buffered up to
//! `max_body_bytes` ([`sdk_ext::body`]) and rewritten at its end.

use crate::config::{Config, JsonRedactConfig, OverLimit, Rule};
use crate::redact::Outcome;
use sdk_ext::body::{replace_body, BodyBuffer, Buffered};
use sdk_ext::config::{load, ConfigError};
use sdk_ext::headers::Snapshot;
use sdk_ext::types::StreamType;
use sdk_ext::{Action, HttpCx, HttpFilter, RootCx, RootFilter};
use std::rc::Rc;

sdk_ext::stats! {
    /// The filter's counters, `<stat_prefix>.<field>`. Each body the filter looks at counts
    /// once, in one of them.
    pub struct Stats {
        /// Bodies rewritten (at least one value masked or removed).
        redacted: Counter,
        /// JSON bodies with nothing to redact, passed unmodified.
        unchanged: Counter,
        /// Bodies whose content type the rule does not list, passed unmodified.
        passed_non_json: Counter,
        /// Bodies of a listed content type that are not valid UTF-8 JSON, passed unmodified.
        invalid_json: Counter,
        /// Bodies with a `content-encoding` (gzip, ...), passed unmodified.
        encoded_passthrough: Counter,
        /// Request bodies over `max_body_bytes`, refused with a 413.
        request_too_large: Counter,
        /// Response bodies over `max_body_bytes`: passed unmodified, or rejected.
        response_too_large: Counter,
        /// Bodies the host failed to hand over or take back, passed unmodified.
        errors: Counter,
    }
}

/// The per-VM root: the validated configuration and the metrics.
pub struct JsonRedactRoot {
    config: Config,
    stats: Stats,
    /// The body a rejected over-limit response gets.
    too_large_body: Vec<u8>,
}

impl RootFilter for JsonRedactRoot {
    const NAME: &'static str = "json_redact";
    type Http = JsonRedact;

    fn configure(cx: &mut RootCx<'_>, config: &[u8]) -> Result<Self, ConfigError> {
        let config = load::<JsonRedactConfig>(config)?;
        let stats = Stats::define(cx, &config.stat_prefix);
        let too_large_body = sdk_ext::reply::json_error_body(
            "response_body_too_large",
            &format!(
                "the response body is over {} bytes and cannot be redacted",
                config.max_body_bytes
            ),
        )
        .into_bytes();
        Ok(JsonRedactRoot {
            config,
            stats,
            too_large_body,
        })
    }

    fn create_http(root: &Rc<Self>) -> JsonRedact {
        JsonRedact {
            root: root.clone(),
            request: Side::Idle,
            response_rule: None,
            response: Side::Idle,
        }
    }
}

/// Where one direction's body stands.
enum Side {
    /// Nothing to do.
    Idle,
    /// Buffering for the rule at this index.
    Buffering(usize, BodyBuffer),
    /// An over-limit response being replaced by the error body.
    Rejecting,
}

/// What the headers say about a body a rule covers.
enum Admit {
    Buffer,
    Encoded,
    NotJson,
    TooLarge(u64),
}

/// The per-request filter.
pub struct JsonRedact {
    root: Rc<JsonRedactRoot>,
    request: Side,
    /// The response's rule, chosen with the request (none for HEAD or an upgrade).
    response_rule: Option<usize>,
    response: Side,
}

impl JsonRedact {
    fn admit(&self, rule: &Rule, headers: &Snapshot) -> Admit {
        let encoded = headers.get_all("content-encoding").any(|value| {
            let value = value.trim_ascii();
            !value.is_empty() && !value.eq_ignore_ascii_case(b"identity")
        });
        if encoded {
            return Admit::Encoded;
        }
        if !rule.accepts_content_type(headers.get("content-type")) {
            return Admit::NotJson;
        }
        let declared = headers
            .get("content-length")
            .and_then(|value| std::str::from_utf8(value).ok())
            .and_then(|value| value.trim().parse::<u64>().ok());
        match declared {
            Some(length) if length > self.root.config.max_body_bytes as u64 => {
                Admit::TooLarge(length)
            }
            _ => Admit::Buffer,
        }
    }

    /// Redacts a complete body; returns nothing, every outcome is counted.
    fn rewrite(&self, cx: &HttpCx<'_>, rule: usize, buffer: &BodyBuffer, body: &[u8]) {
        let stats = self.root.stats;
        if body.is_empty() {
            return;
        }
        let Some(rule) = self.root.config.rules.get(rule) else {
            return;
        };
        match rule.redaction.apply(body) {
            Outcome::Redacted(out, _) => match buffer.replace(cx, &out) {
                Ok(()) => stats.redacted.increment(cx),
                Err(status) => {
                    log::warn!("json_redact: cannot replace the body: {status:?}");
                    stats.errors.increment(cx);
                }
            },
            Outcome::Unchanged => stats.unchanged.increment(cx),
            Outcome::Invalid => {
                log::debug!("json_redact: the body is not valid JSON; passed unmodified");
                stats.invalid_json.increment(cx);
            }
        }
    }

    fn refuse_request(&mut self, cx: &HttpCx<'_>, size: u64) -> Action {
        let max = self.root.config.max_body_bytes;
        // The 413 passes back through the response hooks: it is ours, leave it alone.
        self.response_rule = None;
        self.root.stats.request_too_large.increment(cx);
        log::info!("json_redact: a request body of {size} bytes is over {max}; refused");
        let message = format!("the request body is over {max} bytes");
        if let Err(status) = cx.send_json_error(413, "request_body_too_large", &message, &[]) {
            log::warn!("json_redact: cannot send the 413: {status:?}");
        }
        Action::Pause
    }

    /// An over-limit response: passed (the default) or rejected from here on.
    fn response_too_large(&mut self, cx: &HttpCx<'_>, size: u64) {
        let max = self.root.config.max_body_bytes;
        self.root.stats.response_too_large.increment(cx);
        match self.root.config.response_over_limit {
            OverLimit::Pass => {
                log::warn!(
                    "json_redact: a response body of {size} bytes is over {max}; passed unredacted"
                );
                self.response = Side::Idle;
            }
            OverLimit::Reject => {
                log::warn!("json_redact: a response body of {size} bytes is over {max}; replaced by an error");
                self.response = Side::Rejecting;
            }
        }
    }

    /// Replaces this callback's response chunk by nothing, and the last one by the error.
    fn reject_chunk(&self, cx: &HttpCx<'_>, size: usize, end_of_stream: bool) {
        let body: &[u8] = if end_of_stream {
            &self.root.too_large_body
        } else {
            b""
        };
        if let Err(status) = replace_body(cx, StreamType::Response, size, body) {
            log::warn!("json_redact: cannot drop the response body: {status:?}");
            self.root.stats.errors.increment(cx);
        }
    }
}

/// A request whose body is a byte stream of another protocol, never a JSON document.
fn is_upgrade(headers: &Snapshot) -> bool {
    headers.get(":method") == Some(b"CONNECT") || headers.contains("upgrade")
}

/// A response that has no body by definition.
fn has_no_body(status: Option<&[u8]>) -> bool {
    matches!(status, Some(b"204" | b"304")) || status.is_some_and(|s| s.first() == Some(&b'1'))
}

impl HttpFilter for JsonRedact {
    fn on_request_headers(&mut self, cx: &mut HttpCx<'_>, end_of_stream: bool) -> Action {
        let headers = match cx.request_headers().snapshot() {
            Ok(headers) => headers,
            Err(status) => {
                log::warn!("json_redact: cannot read the request headers: {status:?}");
                self.root.stats.errors.increment(cx);
                return Action::Continue;
            }
        };
        if is_upgrade(&headers) {
            return Action::Continue;
        }
        let rules = &self.root.config.rules;
        // A HEAD response has headers only, whatever its content-length says.
        if headers.get(":method") != Some(b"HEAD") {
            self.response_rule = rules
                .iter()
                .position(|rule| rule.direction.response() && rule.route.matches(&headers));
        }
        if end_of_stream {
            return Action::Continue;
        }
        let Some(index) = rules
            .iter()
            .position(|rule| rule.direction.request() && rule.route.matches(&headers))
        else {
            return Action::Continue;
        };
        let Some(rule) = rules.get(index) else {
            return Action::Continue;
        };
        let stats = self.root.stats;
        match self.admit(rule, &headers) {
            Admit::Encoded => stats.encoded_passthrough.increment(cx),
            Admit::NotJson => stats.passed_non_json.increment(cx),
            Admit::TooLarge(length) => return self.refuse_request(cx, length),
            Admit::Buffer => {
                if headers.contains("content-length") {
                    if let Err(status) = cx.request_headers().remove("content-length") {
                        log::warn!("json_redact: cannot remove content-length: {status:?}");
                        stats.errors.increment(cx);
                        return Action::Continue;
                    }
                }
                let buffer = BodyBuffer::new(StreamType::Request, self.root.config.max_body_bytes);
                self.request = Side::Buffering(index, buffer);
            }
        }
        Action::Continue
    }

    fn on_request_body(&mut self, cx: &mut HttpCx<'_>, size: usize, end_of_stream: bool) -> Action {
        let Side::Buffering(rule, buffer) = &mut self.request else {
            return Action::Continue;
        };
        let (rule, outcome) = (*rule, buffer.on_body(cx, size, end_of_stream));
        match outcome {
            Ok(Buffered::More) => Action::Pause,
            Ok(Buffered::Passing) => Action::Continue,
            Ok(Buffered::OverLimit(size)) => {
                self.request = Side::Idle;
                self.refuse_request(cx, size as u64)
            }
            Ok(Buffered::Complete(body)) => {
                if let Side::Buffering(_, buffer) = std::mem::replace(&mut self.request, Side::Idle)
                {
                    self.rewrite(cx, rule, &buffer, &body);
                }
                Action::Continue
            }
            Err(status) => {
                log::warn!("json_redact: cannot read the request body: {status:?}");
                self.root.stats.errors.increment(cx);
                self.request = Side::Idle;
                Action::Continue
            }
        }
    }

    fn on_response_headers(&mut self, cx: &mut HttpCx<'_>, end_of_stream: bool) -> Action {
        let Some(index) = self.response_rule else {
            return Action::Continue;
        };
        let Some(rule) = self.root.config.rules.get(index) else {
            return Action::Continue;
        };
        if end_of_stream {
            return Action::Continue;
        }
        let stats = self.root.stats;
        let response = cx.response_headers();
        let headers = match response.snapshot() {
            Ok(headers) => headers,
            Err(status) => {
                log::warn!("json_redact: cannot read the response headers: {status:?}");
                stats.errors.increment(cx);
                return Action::Continue;
            }
        };
        if has_no_body(headers.get(":status")) {
            return Action::Continue;
        }
        match self.admit(rule, &headers) {
            Admit::Encoded => stats.encoded_passthrough.increment(cx),
            Admit::NotJson => stats.passed_non_json.increment(cx),
            Admit::TooLarge(length) => {
                self.response_too_large(cx, length);
                if matches!(self.response, Side::Rejecting) {
                    // Known before anything was sent: the client gets a proper error.
                    let edits = [
                        response.set(":status", b"502"),
                        response.set("content-type", b"application/json"),
                        response.remove("content-length"),
                    ];
                    if let Some(Err(status)) = edits.into_iter().find(Result::is_err) {
                        log::warn!("json_redact: cannot rewrite the response headers: {status:?}");
                        stats.errors.increment(cx);
                    }
                }
            }
            Admit::Buffer => {
                if headers.contains("content-length") {
                    if let Err(status) = response.remove("content-length") {
                        log::warn!("json_redact: cannot remove content-length: {status:?}");
                        stats.errors.increment(cx);
                        return Action::Continue;
                    }
                }
                let buffer = BodyBuffer::new(StreamType::Response, self.root.config.max_body_bytes);
                self.response = Side::Buffering(index, buffer);
            }
        }
        Action::Continue
    }

    fn on_response_body(
        &mut self,
        cx: &mut HttpCx<'_>,
        size: usize,
        end_of_stream: bool,
    ) -> Action {
        let (rule, outcome) = match &mut self.response {
            Side::Idle => return Action::Continue,
            Side::Rejecting => {
                self.reject_chunk(cx, size, end_of_stream);
                return Action::Continue;
            }
            Side::Buffering(rule, buffer) => (*rule, buffer.on_body(cx, size, end_of_stream)),
        };
        match outcome {
            Ok(Buffered::More) => Action::Pause,
            Ok(Buffered::Passing) => Action::Continue,
            Ok(Buffered::OverLimit(size)) => {
                self.response_too_large(cx, size as u64);
                if matches!(self.response, Side::Rejecting) {
                    self.reject_chunk(cx, size, end_of_stream);
                }
                Action::Continue
            }
            Ok(Buffered::Complete(body)) => {
                if let Side::Buffering(_, buffer) =
                    std::mem::replace(&mut self.response, Side::Idle)
                {
                    self.rewrite(cx, rule, &buffer, &body);
                }
                Action::Continue
            }
            Err(status) => {
                log::warn!("json_redact: cannot read the response body: {status:?}");
                self.root.stats.errors.increment(cx);
                self.response = Side::Idle;
                Action::Continue
            }
        }
    }
}
