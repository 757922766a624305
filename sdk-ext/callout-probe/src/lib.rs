//! A test module: each request waits for a callout to `cluster` (see README.md).

use sdk_ext::config::{parse, ConfigError};
use sdk_ext::headers::REQUEST_HEADERS;
use sdk_ext::{callout, reply, request, stream, Action, HttpFilter, RootFilter};
use serde::Deserialize;
use std::rc::Rc;
use std::time::Duration;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    cluster: String,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
}

fn default_timeout_ms() -> u64 {
    1000
}

struct CalloutRoot(Config);

impl RootFilter for CalloutRoot {
    const NAME: &'static str = "callout_probe";
    type Http = CalloutCheck;

    fn configure(config: &[u8]) -> Result<Self, ConfigError> {
        let config: Config = parse(config)?;
        if config.cluster.is_empty() {
            return Err(ConfigError::new("cluster", "must not be empty"));
        }
        Ok(CalloutRoot(config))
    }

    fn create_http(root: &Rc<Self>, context_id: u32) -> CalloutCheck {
        CalloutCheck {
            root: root.clone(),
            context_id,
            token: None,
        }
    }
}

struct CalloutCheck {
    root: Rc<CalloutRoot>,
    context_id: u32,
    token: Option<u32>,
}

impl HttpFilter for CalloutCheck {
    fn on_request_headers(&mut self, _end_of_stream: bool) -> Action {
        let path = request::path().ok().flatten().unwrap_or_default();
        let path = String::from_utf8_lossy(&path);
        let config = &self.root.0;
        let call = callout::HttpCall::get(&config.cluster, "authz", &path)
            .timeout(Duration::from_millis(config.timeout_ms));
        match call.dispatch() {
            Ok(token) => {
                self.token = Some(token);
                Action::Pause
            }
            Err(status) => {
                log::error!("callout_probe: cannot call {}: {status:?}", config.cluster);
                let _ = reply::send_json_error(503, "callout_failed", "cannot call", &[]);
                Action::Pause
            }
        }
    }

    fn on_http_call_response(
        &mut self,
        token: u32,
        _num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        if self.token != Some(token) {
            log::error!("callout_probe: answer for token {token}, not ours");
            return;
        }
        match callout::response_status() {
            Some(200) => {
                let body = callout::response_body(body_size, 256).unwrap_or_default();
                let _ = REQUEST_HEADERS.add("x-callout-status", b"200");
                let _ = REQUEST_HEADERS.add("x-callout-body", &body);
                if let Err(status) = stream::resume_request(self.context_id) {
                    log::error!("callout_probe: cannot resume: {status:?}");
                }
            }
            // Envoy answers a timed-out call with its own 504, and a reset with no headers.
            Some(500..) | None => {
                let _ = reply::send_json_error(503, "callout_failed", "no answer", &[]);
            }
            Some(_) => {
                let _ = reply::send_json_error(403, "denied", "the service said no", &[]);
            }
        }
    }
}

sdk_ext::export_filter!(CalloutRoot);
