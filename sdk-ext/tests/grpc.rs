//! gRPC callouts on the fake host: what a call carries, its answer (a message or a status)
//! reaching the filter that sent it, the resume at the next filter, and answers that must be
//! dropped.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use sdk_ext::callout::{CallResponse, HttpCall};
use sdk_ext::config::{parse, ConfigError, FromJson};
use sdk_ext::dispatch::Module;
use sdk_ext::fake::FakeModule;
use sdk_ext::filter::Factory;
use sdk_ext::grpc::{GrpcCall, GrpcResponse, GRPC_UNAVAILABLE};
use sdk_ext::host::StreamType;
use sdk_ext::{Action, HttpCx, HttpFilter, RootCx, RootFilter};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

thread_local! {
    static TRACE: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

fn trace(event: String) {
    TRACE.with(|t| t.borrow_mut().push(event));
}

fn take_trace() -> Vec<String> {
    TRACE.with(|t| std::mem::take(&mut *t.borrow_mut()))
}

#[derive(FromJson)]
#[serde(deny_unknown_fields)]
struct CheckConfig {
    cluster: String,
    /// Also sends an HTTP callout, whose answer must not be taken for the gRPC one.
    #[serde(default)]
    http_too: bool,
}

/// Asks `test.Check/Check` about each request's path; "allow" lets it through, any other
/// message gets a 403, a closed call a 503 that names the status.
struct Check(CheckConfig);

struct CheckHttp {
    root: Rc<Check>,
    token: Option<u32>,
}

impl RootFilter for Check {
    const NAME: &'static str = "grpc_check";
    type Http = CheckHttp;

    fn configure(_cx: &mut RootCx<'_>, config: &[u8]) -> Result<Self, ConfigError> {
        Ok(Check(parse(config)?))
    }

    fn create_http(root: &Rc<Self>) -> CheckHttp {
        CheckHttp {
            root: root.clone(),
            token: None,
        }
    }
}

impl HttpFilter for CheckHttp {
    fn on_request_headers(&mut self, cx: &mut HttpCx<'_>, _end: bool) -> Action {
        let path = cx
            .request_headers()
            .get(":path")
            .unwrap()
            .unwrap_or_default();
        let config = &self.root.0;
        let call = GrpcCall::new(&config.cluster, "test.Check", "Check", &path)
            .metadata("x-request", b"1")
            .timeout(Duration::from_millis(250));
        if config.http_too {
            cx.http_call(&HttpCall::get(&config.cluster, "a", "/side"))
                .unwrap();
        }
        match cx.grpc_call(&call) {
            Ok(token) => {
                self.token = Some(token);
                Action::Pause
            }
            Err(status) => {
                let _ = cx.send_json_error(500, "grpc_failed", &format!("{status:?}"), &[]);
                Action::Pause
            }
        }
    }

    fn on_http_call_response(
        &mut self,
        _cx: &mut HttpCx<'_>,
        response: &CallResponse<'_>,
    ) -> Action {
        trace(format!("http answer {}", response.token));
        Action::Pause
    }

    fn on_grpc_call_response(
        &mut self,
        cx: &mut HttpCx<'_>,
        response: &GrpcResponse<'_>,
    ) -> Action {
        assert_eq!(
            Some(response.token),
            self.token,
            "the answer to this filter's call"
        );
        if !response.is_ok() {
            trace(format!(
                "closed {} {:?}",
                response.status,
                response.status_message()
            ));
            let _ = cx.send_json_error(503, "grpc_closed", "closed", &[]);
            return Action::Pause;
        }
        let message = response.message().unwrap();
        trace(format!("message {}", String::from_utf8_lossy(&message)));
        if message == b"allow" {
            Action::Continue
        } else {
            let _ = cx.send_json_error(403, "denied", "denied", &[]);
            Action::Pause
        }
    }
}

/// Records that the request reached it.
struct Next;

struct NextHttp;

impl RootFilter for Next {
    const NAME: &'static str = "next";
    type Http = NextHttp;

    fn configure(_cx: &mut RootCx<'_>, _config: &[u8]) -> Result<Self, ConfigError> {
        Ok(Next)
    }

    fn create_http(_root: &Rc<Self>) -> NextHttp {
        NextHttp
    }
}

impl HttpFilter for NextHttp {
    fn on_request_headers(&mut self, _cx: &mut HttpCx<'_>, _end: bool) -> Action {
        trace("next".into());
        Action::Continue
    }
}

static FILTERS: &[Factory] = &[Factory::of::<Check>(), Factory::of::<Next>()];

fn module(check: serde_json::Value) -> FakeModule {
    let config = serde_json::json!({"filters": [
        {"name": "grpc_check", "config": check},
        {"name": "next"}
    ]});
    let module = FakeModule::new(Module::Chain(FILTERS), config.to_string().as_bytes());
    assert!(module.configured(), "{:?}", module.config_error());
    take_trace();
    module
}

const GET: &[(&str, &str)] = &[(":method", "GET"), (":path", "/orders")];

#[test]
fn a_message_resumes_the_stream_at_the_next_filter() {
    let mut module = module(serde_json::json!({"cluster": "rls"}));
    let stream = module.stream();
    assert_eq!(module.request_headers(stream, GET, true), Action::Pause);
    let calls = module.host().pending_grpc_calls();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(
        (
            call.cluster.as_str(),
            call.service.as_str(),
            call.method.as_str()
        ),
        ("rls", "test.Check", "Check")
    );
    assert_eq!(call.message, b"/orders");
    assert_eq!(call.metadata, [(b"x-request".to_vec(), b"1".to_vec())]);
    assert_eq!(call.timeout, Duration::from_millis(250));
    assert_eq!(call.context_id, stream);
    assert!(take_trace().is_empty(), "the next filter waits");
    module.respond_grpc(call.token, b"allow");
    assert_eq!(take_trace(), ["message allow", "next"]);
    assert_eq!(module.host().continued(stream), [StreamType::Request]);
    assert!(module.host().pending_grpc_calls().is_empty());
}

#[test]
fn a_refusing_message_replies_and_the_next_filter_never_runs() {
    let mut module = module(serde_json::json!({"cluster": "rls"}));
    let stream = module.stream();
    module.request_headers(stream, GET, true);
    let token = module.host().pending_grpc_calls()[0].token;
    module.respond_grpc(token, b"no");
    assert_eq!(take_trace(), ["message no"]);
    assert_eq!(module.host().local_reply(stream).unwrap().status, 403);
    assert!(module.host().continued(stream).is_empty());
}

#[test]
fn a_closed_call_reaches_the_filter_with_its_status_and_message() {
    let mut module = module(serde_json::json!({"cluster": "rls"}));
    let stream = module.stream();
    module.request_headers(stream, GET, true);
    let token = module.host().pending_grpc_calls()[0].token;
    module.close_grpc(token, GRPC_UNAVAILABLE, "no healthy upstream");
    assert_eq!(take_trace(), ["closed 14 Some(\"no healthy upstream\")"]);
    assert_eq!(module.host().local_reply(stream).unwrap().status, 503);
}

#[test]
fn late_and_repeated_answers_are_dropped() {
    let mut module = module(serde_json::json!({"cluster": "rls"}));
    // A unary call has one answer: a close after the message does nothing.
    let answered = module.stream();
    module.request_headers(answered, GET, true);
    let token = module.host().pending_grpc_calls()[0].token;
    module.respond_grpc(token, b"allow");
    take_trace();
    module.close_grpc(token, GRPC_UNAVAILABLE, "late");
    assert!(take_trace().is_empty());
    // The client went away before the answer: nothing runs for the gone stream.
    let gone = module.stream();
    module.request_headers(gone, GET, true);
    let token = module.host().pending_grpc_calls()[0].token;
    module.reset(gone);
    module.respond_grpc(token, b"allow");
    assert!(take_trace().is_empty());
    // A token nobody sent.
    module.respond_grpc(999, b"allow");
    assert!(take_trace().is_empty());
}

#[test]
fn grpc_and_http_answers_with_the_same_token_reach_their_own_hooks() {
    let mut module = module(serde_json::json!({"cluster": "rls", "http_too": true}));
    let stream = module.stream();
    module.request_headers(stream, GET, true);
    let http = module.host().pending_calls()[0].token;
    let grpc = module.host().pending_grpc_calls()[0].token;
    assert_eq!(http, grpc, "Envoy counts the two kinds of token apart");
    module.respond(http, 200, &[], b"");
    assert_eq!(take_trace(), [format!("http answer {http}")]);
    assert_eq!(module.host().pending_grpc_calls().len(), 1, "still waiting");
    module.respond_grpc(grpc, b"allow");
    assert_eq!(take_trace(), ["message allow", "next"]);
}

#[test]
fn a_call_the_host_refuses_is_an_error_the_filter_answers() {
    let mut module = module(serde_json::json!({"cluster": "rls"}));
    module.host().fail("grpc_call");
    let stream = module.stream();
    module.request_headers(stream, GET, true);
    assert_eq!(module.host().local_reply(stream).unwrap().status, 500);
    assert!(module.host().pending_grpc_calls().is_empty());
}
