//! The dispatcher's filter-chain semantics, on the fake host: order, pauses and wake-ups,
//! local replies, held bodies, callout routing, ticks, config errors and per-filter state.
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
use sdk_ext::host::StreamType;
use sdk_ext::stats::Counter;
use sdk_ext::{Action, HttpCx, HttpFilter, RootCx, RootFilter};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

thread_local! {
    /// What the probes did, in order: `"<id>:<event>"`.
    static TRACE: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

thread_local! {
    /// The host time each probe read in its request-headers hook: `"<id>:<nanos>"`.
    static CLOCK: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

fn trace(id: &str, event: impl std::fmt::Display) {
    TRACE.with(|t| t.borrow_mut().push(format!("{id}:{event}")));
}

fn take_trace() -> Vec<String> {
    TRACE.with(|t| std::mem::take(&mut *t.borrow_mut()))
}

#[derive(FromJson, Default)]
#[serde(deny_unknown_fields)]
struct ProbeConfig {
    id: String,
    #[serde(default)]
    pause: bool,
    #[serde(default)]
    reply: Option<u32>,
    #[serde(default)]
    call: Option<String>,
    #[serde(default)]
    tick_ms: Option<u64>,
    #[serde(default)]
    wake_on_tick: bool,
    #[serde(default)]
    max: Option<u32>,
    /// Registers queue "q"; each request enqueues its path to it.
    #[serde(default)]
    queue: bool,
    /// Replaces the whole request body with this once it has all of it.
    #[serde(default)]
    replace_body: Option<String>,
}

/// A filter that records each hook and does what its config says.
struct Probe {
    config: ProbeConfig,
    requests: Counter,
    waiting: RefCell<Vec<u32>>,
}

impl RootFilter for Probe {
    const NAME: &'static str = "probe_filter";
    type Http = ProbeHttp;

    fn configure(cx: &mut RootCx<'_>, bytes: &[u8]) -> Result<Self, ConfigError> {
        let config: ProbeConfig = parse(bytes)?;
        if config.max == Some(0) {
            return Err(ConfigError::new("max", "must be above 0"));
        }
        if let Some(millis) = config.tick_ms {
            cx.set_tick_period(Duration::from_millis(millis));
        }
        let _ = cx.shared_data().set("k", config.id.as_bytes(), 0);
        if config.queue {
            cx.register_queue("q").unwrap();
        }
        Ok(Probe {
            requests: Counter::define(cx, &format!("probe.{}.requests", config.id)),
            config,
            waiting: RefCell::new(Vec::new()),
        })
    }

    fn create_http(root: &Rc<Self>) -> ProbeHttp {
        ProbeHttp {
            root: root.clone(),
            token: None,
        }
    }

    fn on_queue_ready(root: &Rc<Self>, cx: &mut RootCx<'_>, queue_id: u32) {
        while let Some(item) = cx.dequeue(queue_id).unwrap() {
            trace(
                &root.config.id,
                format!("queued {}", String::from_utf8_lossy(&item)),
            );
        }
    }

    fn on_tick(root: &Rc<Self>, cx: &mut RootCx<'_>) {
        trace(&root.config.id, "tick");
        if root.config.wake_on_tick {
            for context_id in root.waiting.borrow_mut().drain(..) {
                cx.wake(context_id);
            }
        }
    }
}

struct ProbeHttp {
    root: Rc<Probe>,
    token: Option<u32>,
}

impl ProbeHttp {
    fn id(&self) -> &str {
        &self.root.config.id
    }
}

fn values(cx: &HttpCx<'_>, name: &str) -> String {
    let snapshot = cx.request_headers().snapshot().unwrap();
    snapshot
        .get_all(name)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect::<Vec<_>>()
        .join(",")
}

impl HttpFilter for ProbeHttp {
    fn on_request_headers(&mut self, cx: &mut HttpCx<'_>, end: bool) -> Action {
        trace(
            self.id(),
            format!("request_headers({end}) saw [{}]", values(cx, "x-seen")),
        );
        let now = cx.now_nanos().unwrap();
        CLOCK.with(|clock| clock.borrow_mut().push(format!("{}:{now}", self.id())));
        self.root.requests.increment(cx);
        if self.root.config.queue {
            let queue = cx.resolve_queue("", "q").unwrap().unwrap();
            let path = cx.request_headers().get(":path").unwrap().unwrap();
            cx.enqueue(queue, &path).unwrap();
        }
        cx.request_headers()
            .add("x-seen", self.id().as_bytes())
            .unwrap();
        if let Some(status) = self.root.config.reply {
            cx.send_json_error(status, "probe_reply", "refused", &[])
                .unwrap();
            return Action::Pause;
        }
        if let Some(cluster) = &self.root.config.call {
            self.token = Some(
                cx.http_call(&HttpCall::get(cluster, "svc", "/check"))
                    .unwrap(),
            );
            return Action::Pause;
        }
        if self.root.config.pause {
            self.root.waiting.borrow_mut().push(cx.context_id());
            return Action::Pause;
        }
        Action::Continue
    }

    fn on_request_body(&mut self, cx: &mut HttpCx<'_>, size: usize, end: bool) -> Action {
        if let Some(replacement) = &self.root.config.replace_body {
            if !end {
                return Action::Pause;
            }
            cx.set_request_body(0, size, replacement.as_bytes())
                .unwrap();
        }
        let body = cx.request_body(0, size).unwrap();
        trace(
            self.id(),
            format!("request_body({}, {end})", String::from_utf8_lossy(&body)),
        );
        Action::Continue
    }

    fn on_request_trailers(&mut self, _cx: &mut HttpCx<'_>) -> Action {
        trace(self.id(), "request_trailers");
        Action::Continue
    }

    fn on_response_headers(&mut self, cx: &mut HttpCx<'_>, _end: bool) -> Action {
        trace(self.id(), "response_headers");
        cx.response_headers()
            .add("x-resp", self.id().as_bytes())
            .unwrap();
        Action::Continue
    }

    fn on_log(&mut self, _cx: &mut HttpCx<'_>) {
        trace(self.id(), "log");
    }

    fn on_http_call_response(
        &mut self,
        _cx: &mut HttpCx<'_>,
        response: &CallResponse<'_>,
    ) -> Action {
        assert_eq!(
            Some(response.token),
            self.token,
            "an answer reached the wrong filter"
        );
        trace(self.id(), format!("call_response({:?})", response.status()));
        match response.status() {
            Some(200) => Action::Continue,
            _ => {
                let _ = _cx.send_json_error(403, "denied", "no", &[]);
                Action::Pause
            }
        }
    }

    fn on_wake(&mut self, _cx: &mut HttpCx<'_>) -> Action {
        trace(self.id(), "wake");
        Action::Continue
    }
}

static PROBES: &[Factory] = &[Factory::of::<Probe>()];

fn chain(configs: &[serde_json::Value]) -> FakeModule {
    take_trace();
    let filters: Vec<_> = configs
        .iter()
        .map(|config| serde_json::json!({"name": "probe-filter", "config": config}))
        .collect();
    let config = serde_json::json!({ "filters": filters }).to_string();
    let module = FakeModule::new(Module::Chain(PROBES), config.as_bytes());
    assert!(module.configured(), "{:?}", module.config_error());
    take_trace();
    module
}

fn id(id: &str) -> serde_json::Value {
    serde_json::json!({ "id": id })
}

const GET: &[(&str, &str)] = &[(":method", "GET"), (":path", "/")];

#[test]
fn request_hooks_run_in_order_and_see_earlier_writes_responses_in_reverse() {
    let mut module = chain(&[id("a"), id("b"), id("c")]);
    let stream = module.stream();
    assert_eq!(module.request_headers(stream, GET, true), Action::Continue);
    assert_eq!(
        module.response_headers(stream, &[(":status", "200")], true),
        Action::Continue
    );
    module.end_with_log(stream);
    assert_eq!(
        take_trace(),
        [
            "a:request_headers(true) saw []",
            "b:request_headers(true) saw [a]",
            "c:request_headers(true) saw [a,b]",
            "c:response_headers",
            "b:response_headers",
            "a:response_headers",
            "a:log",
            "b:log",
            "c:log",
        ]
    );
    let host = module.host();
    let response = host.headers(stream, sdk_ext::headers::MapType::HttpResponseHeaders);
    assert!(response.is_empty(), "the stream's maps are gone after end");
    assert!(host.continued(stream).is_empty(), "nothing was paused");
}

#[test]
fn a_local_reply_stops_the_later_filters_and_the_reply_passes_back_through_all() {
    let mut module = chain(&[
        id("a"),
        serde_json::json!({"id": "b", "reply": 401}),
        id("c"),
    ]);
    let stream = module.stream();
    assert_eq!(module.request_headers(stream, GET, true), Action::Pause);
    let reply = module.host().local_reply(stream).unwrap();
    assert_eq!(reply.status, 401);
    assert_eq!(
        reply.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(
        take_trace(),
        [
            "a:request_headers(true) saw []",
            "b:request_headers(true) saw [a]"
        ]
    );
    assert_eq!(module.host().metric("probe.c.requests"), Some(0));
    // Envoy encodes the local reply through every filter's response hooks, as it would for
    // separate filters.
    module.response_headers(stream, &[(":status", "401")], false);
    assert_eq!(
        take_trace(),
        [
            "c:response_headers",
            "b:response_headers",
            "a:response_headers"
        ]
    );
    assert!(module.host().continued(stream).is_empty());
}

#[test]
fn a_woken_stream_resumes_at_the_next_filter_then_the_host_continues_once() {
    let mut module = chain(&[
        id("a"),
        serde_json::json!({"id": "b", "pause": true, "tick_ms": 5, "wake_on_tick": true}),
        id("c"),
    ]);
    let stream = module.stream();
    assert_eq!(module.request_headers(stream, GET, true), Action::Pause);
    assert_eq!(take_trace().len(), 2, "c waits");
    assert!(module.host().continued(stream).is_empty());
    module.run_ticks(1);
    assert_eq!(
        take_trace(),
        ["b:tick", "b:wake", "c:request_headers(true) saw [a,b]"]
    );
    assert_eq!(module.host().continued(stream), [StreamType::Request]);
    assert_eq!(
        module.host().request_header(stream, "x-seen").as_deref(),
        Some("a"),
        "every filter added its x-seen"
    );
    let seen: Vec<_> = module
        .host()
        .headers(stream, sdk_ext::headers::MapType::HttpRequestHeaders)
        .into_iter()
        .filter(|(name, _)| name == b"x-seen")
        .map(|(_, value)| String::from_utf8(value).unwrap())
        .collect();
    assert_eq!(seen, ["a", "b", "c"]);
}

#[test]
fn a_body_and_trailers_sent_while_a_filter_holds_the_headers_wait_for_it() {
    let mut module = chain(&[
        id("a"),
        serde_json::json!({"id": "b", "pause": true, "tick_ms": 5, "wake_on_tick": true}),
        id("c"),
    ]);
    let stream = module.stream();
    let post = [(":method", "POST"), (":path", "/upload")];
    assert_eq!(module.request_headers(stream, &post, false), Action::Pause);
    take_trace();
    // As in Envoy, a filter holding the headers holds the body: no filter sees it before b decides.
    assert_eq!(module.request_body(stream, b"sec", false), Action::Pause);
    assert_eq!(module.request_body(stream, b"ret", false), Action::Pause);
    assert_eq!(
        module.request_trailers(stream, &[("x-t", "1")]),
        Action::Pause
    );
    assert!(
        take_trace().is_empty(),
        "no filter saw the body before b continued"
    );
    module.run_ticks(1);
    assert_eq!(
        take_trace(),
        [
            "b:tick",
            "b:wake",
            "c:request_headers(false) saw [a,b]",
            "a:request_body(secret, false)",
            "b:request_body(secret, false)",
            "c:request_body(secret, false)",
            "a:request_trailers",
            "b:request_trailers",
            "c:request_trailers",
        ]
    );
    assert_eq!(module.host().continued(stream), [StreamType::Request]);
}

#[test]
fn a_replaced_body_reaches_the_next_filters_at_its_new_size() {
    let replace = |id: &str, body: &str| serde_json::json!({"id": id, "replace_body": body});
    let mut module = chain(&[
        id("a"),
        replace("b", "a body longer than the one sent"),
        id("c"),
        replace("d", "short"),
        id("e"),
    ]);
    let stream = module.stream();
    let post = [(":method", "POST"), (":path", "/upload")];
    module.request_headers(stream, &post, false);
    assert_eq!(module.request_body(stream, b"sec", false), Action::Pause);
    take_trace();
    assert_eq!(module.request_body(stream, b"ret", true), Action::Continue);
    assert_eq!(
        take_trace(),
        [
            "a:request_body(secret, true)",
            // b and d read their own replacement at the size they were told.
            "b:request_body(a body, true)",
            "c:request_body(a body longer than the one sent, true)",
            "d:request_body(short, true)",
            "e:request_body(short, true)",
        ],
        "each filter is told the size the filters before it left"
    );
}

#[test]
fn a_stream_that_is_never_woken_is_never_continued_and_a_late_wake_after_its_end_is_dropped() {
    let mut module = chain(&[
        serde_json::json!({"id": "a", "pause": true, "tick_ms": 5, "wake_on_tick": true}),
        id("b"),
    ]);
    let stream = module.stream();
    assert_eq!(module.request_headers(stream, GET, false), Action::Pause);
    assert_eq!(module.request_body(stream, b"x", true), Action::Pause);
    module.reset(stream);
    take_trace();
    module.run_ticks(1);
    assert_eq!(take_trace(), ["a:tick"], "the gone stream is not woken");
}

#[test]
fn callout_answers_reach_the_filter_that_asked_and_resume_after_it() {
    let mut module = chain(&[
        serde_json::json!({"id": "a", "call": "authz"}),
        serde_json::json!({"id": "b", "call": "policy"}),
        id("c"),
    ]);
    let stream = module.stream();
    assert_eq!(module.request_headers(stream, GET, true), Action::Pause);
    let calls = module.host().pending_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].cluster, "authz");
    assert_eq!(calls[0].header(":path").as_deref(), Some("/check"));
    module.respond(calls[0].token, 200, &[], b"");
    let calls = module.host().pending_calls();
    assert_eq!(calls.len(), 1, "b called once a continued");
    assert_eq!(calls[0].cluster, "policy");
    assert!(
        module.host().continued(stream).is_empty(),
        "b still holds it"
    );
    module.respond(calls[0].token, 200, &[], b"");
    assert_eq!(module.host().continued(stream), [StreamType::Request]);
    assert_eq!(
        take_trace(),
        [
            "a:request_headers(true) saw []",
            "a:call_response(Some(200))",
            "b:request_headers(true) saw [a]",
            "b:call_response(Some(200))",
            "c:request_headers(true) saw [a,b]",
        ]
    );
}

#[test]
fn a_refusing_callout_answer_stops_the_chain_and_late_answers_are_dropped() {
    let mut module = chain(&[serde_json::json!({"id": "a", "call": "authz"}), id("b")]);
    let refused = module.stream();
    module.request_headers(refused, GET, true);
    let token = module.host().pending_calls()[0].token;
    module.fail_call(token);
    assert_eq!(module.host().local_reply(refused).unwrap().status, 403);
    assert!(module.host().continued(refused).is_empty());
    // A second answer for the same token, and an answer for a stream that is gone: nothing.
    module.respond(token, 200, &[], b"");
    let gone = module.stream();
    module.request_headers(gone, GET, true);
    let token = module.host().pending_calls()[0].token;
    module.reset(gone);
    take_trace();
    module.respond(token, 200, &[], b"");
    assert!(take_trace().is_empty());
}

#[test]
fn ticks_go_to_each_filter_at_its_own_period() {
    let mut module = chain(&[
        serde_json::json!({"id": "fast", "tick_ms": 10}),
        serde_json::json!({"id": "slow", "tick_ms": 30}),
        id("none"),
    ]);
    assert_eq!(
        module.host().tick_millis(),
        10,
        "the host ticks at the shortest period"
    );
    module.run_ticks(6);
    let trace = take_trace();
    assert_eq!(trace.iter().filter(|t| *t == "fast:tick").count(), 6);
    assert_eq!(trace.iter().filter(|t| *t == "slow:tick").count(), 2);
    assert!(!trace.iter().any(|t| t.starts_with("none")));
}

#[test]
fn each_filter_keeps_its_own_shared_data_and_metrics() {
    let module = chain(&[id("a"), id("b")]);
    let host = module.host();
    assert_eq!(host.shared_keys(), ["/0/k", "/1/k"]);
    assert_eq!(
        host.shared_data(&module.shared_key(0, "k")).unwrap().0,
        b"a"
    );
    assert_eq!(
        host.shared_data(&module.shared_key(1, "k")).unwrap().0,
        b"b"
    );
    assert_eq!(
        host.metric_names(),
        ["probe.a.requests", "probe.b.requests"]
    );
}

#[test]
fn a_config_error_names_the_filter_position_and_unknown_filters_are_listed() {
    let bad = serde_json::json!({"filters": [
        {"name": "probe-filter", "config": {"id": "a"}},
        {"name": "probe_filter", "config": {"id": "b", "max": 0}},
    ]});
    let module = FakeModule::new(Module::Chain(PROBES), bad.to_string().as_bytes());
    assert!(!module.configured());
    let error = module.config_error().unwrap();
    assert_eq!(error.path, "filters[1].config.max");
    assert_eq!(error.reason, "must be above 0");

    let unknown = serde_json::json!({"filters": [{"name": "probe-filter", "config": {"id": "a"}}, {"name": "jwt-auth"}]});
    let module = FakeModule::new(Module::Chain(PROBES), unknown.to_string().as_bytes());
    let error = module.config_error().unwrap();
    assert_eq!(error.path, "filters[1].name");
    assert_eq!(
        error.reason,
        "unknown filter \"jwt-auth\"; this module has: probe-filter"
    );

    for (config, path) in [
        (serde_json::json!({"filters": []}), "filters"),
        (
            serde_json::json!({"filters": [{"name": "probe-filter", "config": {"id": "a", "typo": 1}}]}),
            "filters[0].config",
        ),
        (serde_json::json!({"filter": []}), ""),
    ] {
        let module = FakeModule::new(Module::Chain(PROBES), config.to_string().as_bytes());
        let error = module.config_error().expect("refused");
        assert!(error.path.starts_with(path), "{config}: {error}");
    }
}

#[test]
fn streams_of_a_refused_configuration_fail_closed() {
    let mut module = FakeModule::new(Module::Chain(PROBES), b"{\"filters\": 1}");
    assert!(!module.configured());
    let stream = module.stream();
    assert_eq!(module.request_headers(stream, GET, true), Action::Pause);
    let reply = module.host().local_reply(stream).unwrap();
    assert_eq!(reply.status, 500);
    assert_eq!(reply.details, "filter_not_configured");
}

#[test]
fn a_standalone_module_takes_the_filter_s_own_config() {
    take_trace();
    let mut module = FakeModule::standalone::<Probe>(br#"{"id": "solo", "reply": 418}"#).unwrap();
    let stream = module.stream();
    assert_eq!(module.request_headers(stream, GET, true), Action::Pause);
    assert_eq!(module.host().local_reply(stream).unwrap().status, 418);
    assert_eq!(module.host().shared_keys(), ["/0/k"]);
    let error = FakeModule::standalone::<Probe>(br#"{"id": "x", "max": 0}"#)
        .err()
        .unwrap();
    assert_eq!(error.path, "max");
}

#[test]
fn workers_share_the_clock_and_shared_data_but_not_streams() {
    let first = chain(&[id("a")]);
    let mut second = first.worker();
    assert!(second.configured());
    let key = first.shared_key(0, "k");
    first.host().write_shared(&key, b"from the first");
    assert_eq!(
        second.host().shared_data(&key).unwrap().0,
        b"from the first"
    );
    second.advance(Duration::from_secs(5));
    assert_eq!(first.host().now_nanos(), second.host().now_nanos());
    let stream = second.stream();
    second.request_headers(stream, GET, true);
    assert_eq!(first.host().request_header(stream, "x-seen"), None);
    assert_eq!(
        second.host().request_header(stream, "x-seen").as_deref(),
        Some("a")
    );
}

#[test]
fn queue_notifications_reach_the_filter_that_registered_the_queue_on_its_worker() {
    let queue = |id: &str| serde_json::json!({"id": id, "queue": true});
    let mut first = chain(&[queue("a"), id("plain"), queue("b")]);
    let mut second = first.worker();
    let stream = second.stream();
    second.request_headers(
        stream,
        &[(":method", "GET"), (":path", "/from-second")],
        true,
    );
    take_trace();
    assert_eq!(
        second.deliver_queue_ready(),
        0,
        "the first worker registered the queues first, so Envoy notifies it"
    );
    assert_eq!(first.deliver_queue_ready(), 2);
    assert_eq!(
        take_trace(),
        ["a:queued /from-second", "b:queued /from-second"]
    );
    assert_eq!(first.deliver_queue_ready(), 0);
}

#[test]
fn the_filters_of_one_callback_share_one_clock_read() {
    let mut module = chain(&[id("a"), id("b"), id("c")]);
    CLOCK.with(|clock| clock.borrow_mut().clear());
    let reads = |module: &FakeModule| module.host().hostcalls("get_current_time_nanoseconds");
    let before = reads(&module);
    let first = module.stream();
    module.request_headers(first, GET, true);
    assert_eq!(reads(&module), before + 1, "one read for the three filters");
    let start = module.host().now_nanos();
    let times = || CLOCK.with(|clock| std::mem::take(&mut *clock.borrow_mut()));
    assert_eq!(
        times(),
        [
            format!("a:{start}"),
            format!("b:{start}"),
            format!("c:{start}")
        ]
    );
    module.advance(Duration::from_millis(5));
    let second = module.stream();
    module.request_headers(second, GET, true);
    assert_eq!(
        reads(&module),
        before + 2,
        "each callback reads the clock afresh"
    );
    let later = start + 5_000_000;
    assert_eq!(times()[0], format!("a:{later}"));
}

/// Without the `on-log` feature a module exports no `proxy_on_log` (Envoy would call it for
/// every stream), so the fake host's stream end runs no `on_log` either.
#[test]
fn on_log_runs_only_where_the_on_log_feature_exports_it() {
    let mut module = chain(&[id("a")]);
    let stream = module.stream();
    module.request_headers(stream, GET, true);
    module.end(stream);
    let logged = take_trace().iter().any(|entry| entry == "a:log");
    assert_eq!(logged, cfg!(feature = "on-log"));
}
