//! A test module: each request waits for a callout to `cluster` (see README.md).

use sdk_ext::callout::{CallResponse, HttpCall};
use sdk_ext::config::{parse, ConfigError, FromJson};
use sdk_ext::grpc::{GrpcCall, GrpcResponse};
use sdk_ext::{Action, HttpCx, HttpFilter, RootCx, RootFilter};
use std::rc::Rc;
use std::time::Duration;

#[derive(FromJson)]
#[serde(deny_unknown_fields)]
struct Config {
    cluster: String,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
    /// Asks `probe.Check/Check` over gRPC (the message is the path) instead of an HTTP GET.
    #[serde(default)]
    grpc: bool,
}

fn default_timeout_ms() -> u64 {
    1000
}

struct CalloutRoot(Config);

impl RootFilter for CalloutRoot {
    const NAME: &'static str = "callout_probe";
    type Http = CalloutCheck;

    fn configure(_cx: &mut RootCx<'_>, config: &[u8]) -> Result<Self, ConfigError> {
        let config: Config = parse(config)?;
        if config.cluster.is_empty() {
            return Err(ConfigError::new("cluster", "must not be empty"));
        }
        Ok(CalloutRoot(config))
    }

    fn create_http(root: &Rc<Self>) -> CalloutCheck {
        CalloutCheck {
            root: root.clone(),
            token: None,
        }
    }
}

struct CalloutCheck {
    root: Rc<CalloutRoot>,
    token: Option<u32>,
}

impl HttpFilter for CalloutCheck {
    fn on_request_headers(&mut self, cx: &mut HttpCx<'_>, _end_of_stream: bool) -> Action {
        let path = cx
            .request_headers()
            .get(":path")
            .ok()
            .flatten()
            .unwrap_or_default();
        let config = &self.root.0;
        let timeout = Duration::from_millis(config.timeout_ms);
        let sent = if config.grpc {
            let call = GrpcCall::new(&config.cluster, "probe.Check", "Check", &path)
                .metadata("x-probe", b"1")
                .timeout(timeout);
            cx.grpc_call(&call)
        } else {
            let path = String::from_utf8_lossy(&path);
            cx.http_call(&HttpCall::get(&config.cluster, "authz", &path).timeout(timeout))
        };
        match sent {
            Ok(token) => {
                self.token = Some(token);
                Action::Pause
            }
            Err(status) => {
                log::error!("callout_probe: cannot call {}: {status:?}", config.cluster);
                let _ = cx.send_json_error(503, "callout_failed", "cannot call", &[]);
                Action::Pause
            }
        }
    }

    fn on_grpc_call_response(
        &mut self,
        cx: &mut HttpCx<'_>,
        response: &GrpcResponse<'_>,
    ) -> Action {
        if self.token != Some(response.token) {
            log::error!(
                "callout_probe: gRPC answer for token {}, not ours",
                response.token
            );
            return Action::Pause;
        }
        self.grpc_answer(cx, response)
    }

    fn on_http_call_response(
        &mut self,
        cx: &mut HttpCx<'_>,
        response: &CallResponse<'_>,
    ) -> Action {
        if self.token != Some(response.token) {
            log::error!(
                "callout_probe: answer for token {}, not ours",
                response.token
            );
            return Action::Pause;
        }
        match response.status() {
            Some(200) => {
                let body = response.body(256).unwrap_or_default();
                let headers = cx.request_headers();
                let _ = headers.add("x-callout-status", b"200");
                let _ = headers.add("x-callout-body", &body);
                Action::Continue
            }
            // Envoy answers a timed-out call with its own 504, and a reset with no headers.
            Some(500..) | None => {
                let _ = cx.send_json_error(503, "callout_failed", "no answer", &[]);
                Action::Pause
            }
            Some(_) => {
                let _ = cx.send_json_error(403, "denied", "the service said no", &[]);
                Action::Pause
            }
        }
    }
}

impl CalloutCheck {
    /// A message lets the request through with `x-callout-body` (the message) added; a call
    /// that closed with a status gets a 503 whose message names it.
    fn grpc_answer(&mut self, cx: &mut HttpCx<'_>, response: &GrpcResponse<'_>) -> Action {
        if !response.is_ok() {
            let reason = format!(
                "grpc status {}: {}",
                response.status,
                response.status_message().unwrap_or_default()
            );
            let _ = cx.send_json_error(503, "callout_failed", &reason, &[]);
            return Action::Pause;
        }
        let message = response.message().unwrap_or_default();
        let _ = cx.request_headers().add("x-callout-body", &message);
        Action::Continue
    }
}

sdk_ext::export_standalone!(CalloutRoot);
