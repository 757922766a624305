//! Conformance of test-host with Envoy's proxy-wasm host, one module per ABI area. The probe
//! module calls hostcalls on raw ABI terms as its script says and logs each outcome.

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;
use test_host::{Action, Error, HttpResponse, LogLevel, MetricValue, TestHost};

mod lifecycle {
    use super::*;

    #[test]
    fn start_sequence_and_stream_end_order_follow_envoy() {
        let (_host, plugin) = start(json!({}));
        let mut stream = plugin.http_stream().unwrap();
        assert_eq!(
            stream.send_request_headers(GET, true).unwrap(),
            Action::Continue
        );
        assert_eq!(
            stream
                .send_response_headers(&[(":status", "200")], true)
                .unwrap(),
            Action::Continue
        );
        stream.end().unwrap();
        let order: Vec<String> = callbacks(&plugin)
            .iter()
            .map(|c| format!("{}:{}", c[0].as_str().unwrap(), c[1]))
            .collect();
        assert_eq!(
            order,
            [
                "proxy_on_request_headers:2",
                "proxy_on_response_headers:2",
                "proxy_on_log:2",
                "proxy_on_done:2",
                "proxy_on_delete:2"
            ]
        );
        let second = plugin.http_stream().unwrap();
        assert_eq!(second.context_id(), 3, "root is 1, streams count on from 2");
    }

    #[test]
    fn stream_context_is_created_at_the_first_request_headers() {
        let (_host, plugin) = start(
            json!({"proxy_on_context_create": [{"op": "log", "level": 2, "message": "created"}]}),
        );
        let mut stream = plugin.http_stream().unwrap();
        assert!(steps_in(&plugin, "proxy_on_context_create").is_empty());
        stream.send_request_headers(GET, true).unwrap();
        assert_eq!(steps_in(&plugin, "proxy_on_context_create").len(), 1);
    }

    #[test]
    fn a_false_on_configure_or_on_vm_start_rejects_the_plugin() {
        for callback in ["proxy_on_configure", "proxy_on_vm_start"] {
            let host = TestHost::new();
            // The probe reads its script from the VM configuration at vm_start.
            let script = json!({"returns": {callback: 0}});
            let error = probe(&host, script.clone())
                .vm_config_bytes(script.to_string())
                .start()
                .err()
                .expect("rejected");
            match error {
                Error::Rejected {
                    callback: rejected, ..
                } => assert_eq!(rejected, callback),
                other => panic!("{callback}: {other}"),
            }
        }
    }

    #[test]
    fn plugin_configuration_is_readable_only_while_configuring() {
        let (_host, plugin) = start(json!({
            "proxy_on_configure": [{"op": "get_buffer", "type": 7, "start": 0, "max": 1000}],
            "proxy_on_request_headers": [{"op": "get_buffer", "type": 7, "start": 0, "max": 1000},
                                         {"op": "get_buffer", "type": 6, "start": 0, "max": 10}]
        }));
        let configure = steps_in(&plugin, "proxy_on_configure");
        assert_eq!(configure[0]["status"], 0);
        assert!(configure[0]["value"]
            .as_str()
            .unwrap()
            .contains("proxy_on_configure"));
        let mut stream = plugin.http_stream().unwrap();
        stream.send_request_headers(GET, true).unwrap();
        assert_eq!(
            statuses(&plugin, "proxy_on_request_headers"),
            [1, 0],
            "plugin config NotFound, vm config Ok"
        );
    }

    #[test]
    fn shutdown_waits_for_proxy_done_when_on_done_says_not_yet() {
        let (_host, plugin) =
            start(json!({"returns": {"proxy_on_done": 0}, "proxy_on_tick": [{"op": "done"}]}));
        assert!(!plugin.shutdown().unwrap());
        plugin.tick().unwrap();
        assert_eq!(statuses(&plugin, "proxy_on_tick"), [0]);
        assert!(plugin.done_called());
        let (_host, eager) = start(json!({"proxy_on_tick": [{"op": "done"}]}));
        eager.tick().unwrap();
        assert_eq!(
            statuses(&eager, "proxy_on_tick"),
            [1],
            "proxy_done with nothing pending is NotFound"
        );
    }
}

mod logging {
    use super::*;

    #[test]
    fn levels_are_filtered_and_reported() {
        let host = TestHost::new();
        let plugin = probe(
            &host,
            json!({"proxy_on_configure": [
                {"op": "log", "level": 1, "message": "debug line"},
                {"op": "log", "level": 3, "message": "warn line"},
                {"op": "log", "level": 9, "message": "bad level"},
                {"op": "get_log_level"}
            ]}),
        )
        .log_level(LogLevel::Info)
        .start()
        .unwrap();
        let messages = plugin.log_messages(LogLevel::Trace);
        assert!(!messages.contains(&"debug line".to_string()));
        assert!(messages.contains(&"warn line".to_string()));
        let outcome = steps_in(&plugin, "proxy_on_configure");
        assert_eq!(outcome[2]["status"], 2, "a level above 5 is BadArgument");
        assert_eq!(
            outcome[3]["result"], 2,
            "proxy_get_log_level reports the host level"
        );
    }

    #[test]
    fn stderr_becomes_error_log_lines_and_explains_a_trap() {
        let (_host, plugin) =
            start(json!({"proxy_on_request_headers": [{"op": "panic", "message": "boom"}]}));
        let mut stream = plugin.http_stream().unwrap();
        match stream.send_request_headers(GET, true).unwrap_err() {
            Error::Trap {
                stderr, callback, ..
            } => {
                assert_eq!(callback, "proxy_on_request_headers");
                assert!(stderr.contains("probe asked to panic: boom"), "{stderr}");
            }
            other => panic!("expected a trap, got {other}"),
        }
        assert!(plugin
            .log_messages(LogLevel::Error)
            .iter()
            .any(|line| line.contains("probe asked to panic: boom")));
        assert!(plugin.stderr().contains("boom"));
    }
}

mod headers {
    use super::*;

    #[test]
    fn get_add_replace_remove_follow_envoy() {
        let (_host, plugin) = start(json!({"proxy_on_request_headers": [
            {"op": "get_header", "map": 0, "key": "X-Dup"},
            {"op": "get_header", "map": 0, "key": "x-missing"},
            {"op": "add_header", "map": 0, "key": "User-Agent", "value": "two"},
            {"op": "add_header", "map": 0, "key": "x-dup", "value": "third"},
            {"op": "replace_header", "map": 0, "key": "x-replaced", "value": "new"},
            {"op": "remove_header", "map": 0, "key": "x-removed"},
            {"op": "remove_header", "map": 0, "key": "x-never-there"},
            {"op": "get_header", "map": 0, "key": "host"},
            {"op": "get_header_map_size", "map": 0},
            {"op": "get_header", "map": 8, "key": "x"}
        ]}));
        let mut stream = plugin.http_stream().unwrap();
        let request = [
            (":method", "GET"),
            (":path", "/"),
            (":authority", "example.com"),
            ("x-dup", "first"),
            ("user-agent", "one"),
            ("x-dup", "second"),
            ("x-replaced", "a"),
            ("x-removed", "b"),
            ("x-replaced", "c"),
            ("x-tail", "t"),
        ];
        stream.send_request_headers(&request, true).unwrap();
        let outcome = steps_in(&plugin, "proxy_on_request_headers");
        assert_eq!(outcome[0]["value"], "first", "the first value wins");
        assert_eq!(outcome[1]["status"], 1, "a missing header is NotFound");
        assert_eq!(outcome[7]["value"], "example.com", "host reads :authority");
        assert_eq!(
            outcome[9]["status"], 2,
            "an unknown map type is BadArgument"
        );
        let upstream = stream.upstream_request().headers.unwrap();
        assert_eq!(
            upstream.get_all("user-agent"),
            [b"one,two"],
            "inline headers join"
        );
        assert_eq!(
            upstream.get_all("x-dup"),
            [&b"first"[..], b"second", b"third"]
        );
        assert_eq!(upstream.get("x-removed"), None);
        let names: Vec<&[u8]> = upstream
            .entries()
            .iter()
            .map(|(name, _)| name.as_slice())
            .collect();
        assert_eq!(
            names.last().copied(),
            Some(&b"x-replaced"[..]),
            "replace drops old entries and appends"
        );
        assert_eq!(names[names.len() - 2], b"x-dup");
        assert_eq!(names[names.len() - 3], b"x-tail");
        let size_before: usize = request.iter().map(|(n, v)| n.len() + v.len()).sum();
        let size = outcome[8]["result"].as_u64().unwrap() as usize;
        assert_eq!(
            size,
            size_before + "two".len() + 1 + "x-dupthird".len() + "x-replacednew".len()
                - "x-replaceda".len()
                - "x-replacedc".len()
                - "x-removedb".len()
        );
    }

    #[test]
    fn pairs_round_trip_in_map_order() {
        let (_host, plugin) = start(json!({"proxy_on_request_headers": [
            {"op": "set_pairs", "map": 0, "pairs": [["x-b", "2"], [":path", "/new"], ["x-a", "1"]]},
            {"op": "get_pairs", "map": 0}
        ]}));
        let mut stream = plugin.http_stream().unwrap();
        stream.send_request_headers(GET, true).unwrap();
        let outcome = steps_in(&plugin, "proxy_on_request_headers");
        assert_eq!(
            outcome[1]["result"],
            json!([[":path", "/new"], ["x-b", "2"], ["x-a", "1"]])
        );
    }

    #[test]
    fn maps_exist_only_in_their_own_callback_and_read_only_in_on_log() {
        let (_host, plugin) = start(json!({
            "proxy_on_response_headers": [
                {"op": "get_header", "map": 0, "key": ":path"},
                {"op": "get_pairs", "map": 0},
                {"op": "add_header", "map": 0, "key": "x", "value": "1"},
                {"op": "get_header", "map": 2, "key": ":status"}
            ],
            "proxy_on_log": [
                {"op": "get_header", "map": 0, "key": ":path"},
                {"op": "get_header", "map": 1, "key": "x"},
                {"op": "replace_header", "map": 2, "key": "x", "value": "1"},
                {"op": "get_header", "map": 2, "key": ":status"}
            ]
        }));
        let mut stream = plugin.http_stream().unwrap();
        stream.send_request_headers(GET, true).unwrap();
        stream
            .send_response_headers(&[(":status", "201")], true)
            .unwrap();
        stream.end().unwrap();
        let response = steps_in(&plugin, "proxy_on_response_headers");
        assert_eq!(
            response[0]["status"], 2,
            "request headers are gone once they continued"
        );
        assert_eq!(response[1]["status"], 0);
        assert_eq!(
            response[1]["result"],
            json!([]),
            "pairs of a missing map are Ok and empty"
        );
        assert_eq!(response[2]["status"], 2);
        assert_eq!(response[3]["value"], "201");
        let log = steps_in(&plugin, "proxy_on_log");
        assert_eq!(
            log[0]["value"], "/p?q=1",
            "on_log reads the request headers"
        );
        assert_eq!(
            log[1]["status"], 1,
            "request trailers are NotFound in on_log"
        );
        assert_eq!(log[2]["status"], 2, "on_log cannot write");
        assert_eq!(log[3]["value"], "201");
    }

    #[test]
    fn a_paused_stream_keeps_its_request_headers() {
        let (_host, plugin) = start(json!({
            "proxy_on_request_headers": [{"op": "http_call", "cluster": "auth", "headers": [[":method", "GET"], [":path", "/check"], [":authority", "auth"]], "timeout": 1000}],
            "returns": {"proxy_on_request_headers": 1},
            "proxy_on_http_call_response": [
                {"op": "set_effective_context", "id": 2},
                {"op": "add_header", "map": 0, "key": "x-checked", "value": "yes"},
                {"op": "continue_stream", "stream": 0}
            ]
        }));
        let mut stream = plugin.http_stream().unwrap();
        assert_eq!(
            stream.send_request_headers(GET, false).unwrap(),
            Action::Pause
        );
        assert_eq!(
            stream.send_request_body(b"data", true).unwrap(),
            Action::Held
        );
        assert!(stream.upstream_request().headers.is_none());
        let token = stream.http_calls()[0].token;
        plugin
            .respond_http_call(token, HttpResponse::new(200))
            .unwrap();
        assert_eq!(statuses(&plugin, "proxy_on_http_call_response"), [0, 0, 0]);
        let upstream = stream.upstream_request();
        assert_eq!(upstream.header("x-checked").as_deref(), Some("yes"));
        assert_eq!(upstream.body, b"data");
        assert!(upstream.complete);
    }

    #[test]
    fn trailers_can_be_added_in_the_last_body_callback() {
        let (_host, plugin) = start(json!({"proxy_on_request_body": [
            {"op": "add_header", "map": 1, "key": "x-checksum", "value": "abc"}
        ]}));
        let mut stream = plugin.http_stream().unwrap();
        stream.send_request_headers(GET, false).unwrap();
        stream.send_request_body(b"part", false).unwrap();
        stream.send_request_body(b"end", true).unwrap();
        assert_eq!(
            statuses(&plugin, "proxy_on_request_body"),
            [2, 0],
            "only with end_of_stream"
        );
        let upstream = stream.upstream_request();
        assert_eq!(
            upstream.trailers.unwrap().get_str("x-checksum").as_deref(),
            Some("abc")
        );
        assert_eq!(upstream.body, b"partend");
    }
}

mod bodies {
    use super::*;

    #[test]
    fn buffering_shows_the_accumulated_body() {
        let (_host, plugin) = start(json!({
            "proxy_on_request_body": [{"op": "get_buffer", "type": 0, "start": 0, "max": 100}],
            "returns": {"proxy_on_request_body": 1}
        }));
        let mut stream = plugin.http_stream().unwrap();
        stream.send_request_headers(GET, false).unwrap();
        assert_eq!(
            stream.send_request_body(b"hello ", false).unwrap(),
            Action::Pause
        );
        assert_eq!(
            stream.send_request_body(b"world", true).unwrap(),
            Action::Pause
        );
        let sizes: Vec<_> = callbacks(&plugin)
            .into_iter()
            .filter(|c| c[0] == "proxy_on_request_body")
            .map(|c| c[2][0].clone())
            .collect();
        assert_eq!(sizes, [json!(6), json!(11)]);
        let reads = steps_in(&plugin, "proxy_on_request_body");
        assert_eq!(reads[1]["value"], "hello world");
        assert!(stream.upstream_request().body.is_empty());
    }

    #[test]
    fn body_writes_replace_a_prefix_or_append() {
        let (_host, plugin) = start(json!({"proxy_on_response_body": [
            {"op": "set_buffer", "type": 1, "start": 0, "size": 5, "data": "HOWDY"},
            {"op": "set_buffer", "type": 1, "start": 1000, "size": 0, "data": "!"},
            {"op": "set_buffer", "type": 1, "start": 3, "size": 1, "data": "x"},
            {"op": "get_buffer", "type": 1, "start": 6, "max": 100},
            {"op": "get_buffer", "type": 1, "start": 500, "max": 100},
            {"op": "set_buffer", "type": 6, "start": 0, "size": 0, "data": "x"}
        ]}));
        let mut stream = plugin.http_stream().unwrap();
        stream.send_request_headers(GET, true).unwrap();
        stream
            .send_response_headers(&[(":status", "200")], false)
            .unwrap();
        stream.send_response_body(b"hello world", true).unwrap();
        assert_eq!(
            statuses(&plugin, "proxy_on_response_body"),
            [0, 0, 2, 0, 0, 2]
        );
        let reads = steps_in(&plugin, "proxy_on_response_body");
        assert_eq!(reads[3]["value"], "world!");
        assert_eq!(
            reads[4]["value"], "",
            "reading past the end is Ok and empty"
        );
        assert_eq!(stream.client_response().body, b"HOWDY world!");
    }

    #[test]
    fn stop_all_on_headers_holds_data_until_continue() {
        let (_host, plugin) = start(json!({
            "returns": {"proxy_on_request_headers": 3},
            "proxy_on_tick": [{"op": "set_effective_context", "id": 2}, {"op": "continue_stream", "stream": 0}]
        }));
        let mut stream = plugin.http_stream().unwrap();
        assert_eq!(
            stream.send_request_headers(GET, false).unwrap(),
            Action::StopAllIterationAndBuffer
        );
        assert_eq!(stream.send_request_body(b"a", false).unwrap(), Action::Held);
        assert_eq!(stream.send_request_body(b"b", true).unwrap(), Action::Held);
        assert!(callbacks(&plugin)
            .iter()
            .all(|c| c[0] != "proxy_on_request_body"));
        plugin.tick().unwrap();
        let bodies: Vec<_> = callbacks(&plugin)
            .into_iter()
            .filter(|c| c[0] == "proxy_on_request_body")
            .collect();
        assert_eq!(
            bodies,
            [json!(["proxy_on_request_body", 2, [2, 1]])],
            "the held body arrives in one call"
        );
        assert_eq!(stream.upstream_request().body, b"ab");
        assert!(stream.upstream_request().complete);
    }
}

mod local_reply {
    use super::*;

    #[test]
    fn a_local_reply_stops_the_request_and_runs_through_the_response_path() {
        let (_host, plugin) = start(json!({
            "proxy_on_request_headers": [
                {"op": "send_local_response", "status_code": 403, "details": "access denied", "body": "{\"error\":\"no\"}",
                 "headers": [["content-type", "application/json"], ["x-reason", "policy"]]},
                {"op": "send_local_response", "status_code": 500, "details": "again", "body": ""}
            ],
            "proxy_on_response_headers": [{"op": "get_header", "map": 2, "key": ":status"}]
        }));
        let mut stream = plugin.http_stream().unwrap();
        let action = stream.send_request_headers(GET, false).unwrap();
        assert_eq!(
            action,
            Action::Continue,
            "the filter's own return value is reported"
        );
        assert_eq!(
            statuses(&plugin, "proxy_on_request_headers"),
            [0, 0],
            "a second local reply is accepted and ignored"
        );
        assert!(
            stream.upstream_request().headers.is_none(),
            "nothing reaches the upstream"
        );
        let reply = stream.local_response().unwrap();
        assert_eq!(
            (reply.status, reply.details.as_str()),
            (403, "access_denied")
        );
        assert_eq!(
            steps_in(&plugin, "proxy_on_response_headers")[0]["value"],
            "403",
            "the filter sees its own reply"
        );
        let client = stream.client_response();
        assert_eq!(client.status(), Some(403));
        assert_eq!(
            client.header("content-type").as_deref(),
            Some("application/json")
        );
        assert_eq!(client.header("x-reason").as_deref(), Some("policy"));
        assert_eq!(client.header("content-length").as_deref(), Some("14"));
        assert_eq!(client.body, b"{\"error\":\"no\"}");
        assert!(matches!(
            stream.send_request_body(b"late", true),
            Err(Error::Usage(_))
        ));
    }

    #[test]
    fn a_local_reply_after_response_headers_goes_straight_to_the_client() {
        let (_host, plugin) = start(json!({
            "proxy_on_response_headers": [{"op": "send_local_response", "status_code": 502, "details": "bad", "body": "nope"}]
        }));
        let mut stream = plugin.http_stream().unwrap();
        stream.send_request_headers(GET, true).unwrap();
        stream
            .send_response_headers(&[(":status", "200"), ("x-upstream", "1")], false)
            .unwrap();
        let client = stream.client_response();
        assert_eq!(client.status(), Some(502));
        assert_eq!(client.header("x-upstream"), None);
        assert_eq!(client.header("content-type").as_deref(), Some("text/plain"));
        assert_eq!(client.body, b"nope");
        assert_eq!(
            callbacks(&plugin)
                .iter()
                .filter(|c| c[0] == "proxy_on_response_headers")
                .count(),
            1
        );
    }

    #[test]
    fn a_local_reply_from_the_root_for_a_paused_stream_reaches_the_client() {
        let (_host, plugin) = start(json!({
            "returns": {"proxy_on_request_headers": 1},
            "proxy_on_tick": [
                {"op": "set_effective_context", "id": 2},
                {"op": "send_local_response", "status_code": 401, "details": "late", "body": "denied"}
            ]
        }));
        let mut stream = plugin.http_stream().unwrap();
        assert_eq!(
            stream.send_request_headers(GET, true).unwrap(),
            Action::Pause
        );
        plugin.tick().unwrap();
        assert_eq!(stream.local_response().unwrap().status, 401);
        let client = stream.client_response();
        assert_eq!(client.status(), Some(401), "{client:?}");
        assert_eq!(client.body, b"denied");
        assert!(client.complete);
        assert!(stream.upstream_request().headers.is_none());
    }

    #[test]
    fn close_stream_resets_both_directions() {
        let (_host, plugin) =
            start(json!({"proxy_on_request_body": [{"op": "close_stream", "stream": 0}]}));
        let mut stream = plugin.http_stream().unwrap();
        stream.send_request_headers(GET, false).unwrap();
        stream.send_request_body(b"x", true).unwrap();
        assert!(stream.upstream_request().reset);
        assert!(stream.client_response().reset);
    }
}

mod shared_data {
    use super::*;

    #[test]
    fn cas_semantics_follow_proxy_wasm_cpp_host() {
        let (host, plugin) = start(json!({"proxy_on_configure": [
            {"op": "get_shared", "key": "k"},
            {"op": "set_shared", "key": "k", "value": "v1", "cas": 77},
            {"op": "get_shared", "key": "k", "save": "cas1"},
            {"op": "set_shared", "key": "k", "value": "v2", "cas": 999},
            {"op": "set_shared", "key": "k", "value": "v2", "cas": "$cas1"},
            {"op": "set_shared", "key": "k", "value": "v3", "cas": 0},
            {"op": "get_shared", "key": "k"}
        ]}));
        let outcome = steps_in(&plugin, "proxy_on_configure");
        let statuses: Vec<_> = outcome
            .iter()
            .map(|s| s["status"].as_u64().unwrap())
            .collect();
        assert_eq!(
            statuses,
            [1, 0, 0, 8, 0, 0, 0],
            "missing is NotFound, a wrong CAS is CasMismatch, 0 is unconditional"
        );
        assert_eq!(outcome[2]["cas"], 1, "the first CAS is 1");
        assert_eq!(outcome[6]["value"], "v3");
        assert_eq!(outcome[6]["cas"], 3, "one counter for all writes");
        assert_eq!(host.shared_data("", b"k"), Some((b"v3".to_vec(), 3)));
    }

    #[test]
    fn vms_with_the_same_vm_id_share_data_and_others_do_not() {
        let host = TestHost::new();
        let writer = json!({"proxy_on_configure": [{"op": "set_shared", "key": "k", "value": "hello", "cas": 0}]});
        let reader = json!({"proxy_on_configure": [{"op": "get_shared", "key": "k"}]});
        probe(&host, writer).vm_id("a").start().unwrap();
        let same = probe(&host, reader.clone()).vm_id("a").start().unwrap();
        let other = probe(&host, reader).vm_id("b").start().unwrap();
        assert_eq!(steps(&same)[0]["value"], "hello");
        assert_eq!(steps(&other)[0]["status"], 1);
    }
}

mod queues {
    use super::*;

    #[test]
    fn enqueue_notifies_the_owner_later_not_inside_the_call() {
        let host = TestHost::new();
        let owner = probe(
            &host,
            json!({
                "proxy_on_configure": [{"op": "register_queue", "name": "jobs"}, {"op": "register_queue", "name": "jobs"}],
                "proxy_on_queue_ready": [{"op": "dequeue", "queue": "$queue_ready"}, {"op": "dequeue", "queue": "$queue_ready"}]
            }),
        )
        .vm_id("q")
        .start()
        .unwrap();
        let registered = steps_in(&owner, "proxy_on_configure");
        assert_eq!(
            (
                registered[0]["result"].clone(),
                registered[1]["result"].clone()
            ),
            (json!(1), json!(1)),
            "re-registering keeps the token"
        );
        let producer = probe(
            &host,
            json!({"proxy_on_configure": [
                {"op": "resolve_queue", "vm_id": "q", "name": "jobs", "save": "jobs"},
                {"op": "resolve_queue", "vm_id": "q", "name": "nope"},
                {"op": "enqueue", "queue": "$jobs", "value": "job-1"},
                {"op": "enqueue", "queue": 99, "value": "x"}
            ]}),
        )
        .vm_id("p")
        .start()
        .unwrap();
        assert_eq!(statuses(&producer, "proxy_on_configure"), [0, 1, 0, 1]);
        assert!(
            steps_in(&owner, "proxy_on_queue_ready").is_empty(),
            "not delivered inside the enqueue"
        );
        assert_eq!(host.queue_items("q", "jobs").unwrap(), [b"job-1".to_vec()]);
        assert_eq!(owner.deliver_queue_ready().unwrap(), 1);
        let ready = steps_in(&owner, "proxy_on_queue_ready");
        assert_eq!(ready[0]["value"], "job-1");
        assert_eq!(ready[1]["status"], 7, "an empty queue is Empty");
        assert_eq!(
            producer.deliver_queue_ready().unwrap(),
            0,
            "only the owner is notified"
        );
    }
}

mod timers_and_time {
    use super::*;

    #[test]
    fn ticks_fire_once_per_elapsed_period_and_time_follows_the_host_clock() {
        let (host, plugin) = start(json!({
            "proxy_on_configure": [{"op": "set_tick_period", "ms": 100}],
            "proxy_on_tick": [{"op": "get_current_time"}]
        }));
        assert_eq!(plugin.tick_period(), Duration::from_millis(100));
        let before = host.now();
        plugin.advance(Duration::from_millis(350)).unwrap();
        let ticks = steps_in(&plugin, "proxy_on_tick");
        assert_eq!(ticks.len(), 3);
        let first = ticks[0]["result"].as_u64().unwrap();
        let expected = before
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            + 100_000_000;
        assert_eq!(
            first, expected,
            "the first tick comes one period after it was set"
        );
        assert_eq!(
            host.now().duration_since(before).unwrap(),
            Duration::from_millis(350)
        );
    }

    #[test]
    fn period_zero_disables_the_timer() {
        let (_host, plugin) = start(json!({
            "proxy_on_configure": [{"op": "set_tick_period", "ms": 10}],
            "proxy_on_tick": [{"op": "set_tick_period", "ms": 0}]
        }));
        plugin.advance(Duration::from_millis(100)).unwrap();
        assert_eq!(steps_in(&plugin, "proxy_on_tick").len(), 1);
    }
}

mod http_callouts {
    use super::*;

    fn call(cluster: &str, headers: serde_json::Value, timeout: i64) -> serde_json::Value {
        json!({"op": "http_call", "cluster": cluster, "headers": headers, "body": "ping", "timeout": timeout})
    }

    #[test]
    fn validation_and_token_numbering_follow_envoy() {
        let host = TestHost::new();
        host.set_clusters(["auth"]);
        let good = json!([[":method", "POST"], [":path", "/check"], ["host", "auth"]]);
        let plugin = probe(
            &host,
            json!({"proxy_on_request_headers": [
                call("auth", good.clone(), 500),
                call("auth", good.clone(), 0),
                call("nowhere", good.clone(), 500),
                call("auth", json!([[":method", "GET"], [":authority", "auth"]]), 500),
                call("auth", good, -1)
            ]}),
        )
        .start()
        .unwrap();
        let mut stream = plugin.http_stream().unwrap();
        stream.send_request_headers(GET, true).unwrap();
        let outcome = steps_in(&plugin, "proxy_on_request_headers");
        let statuses: Vec<_> = outcome
            .iter()
            .map(|s| s["status"].as_u64().unwrap())
            .collect();
        assert_eq!(statuses, [0, 0, 2, 2, 2]);
        assert_eq!(
            (outcome[0]["result"].clone(), outcome[1]["result"].clone()),
            (json!(4), json!(8))
        );
        let calls = plugin.http_calls();
        assert_eq!(calls.len(), 2);
        assert_eq!(
            calls[0].headers.get_str(":authority").as_deref(),
            Some("auth")
        );
        assert_eq!(
            calls[0].headers.get_str("content-length").as_deref(),
            Some("4")
        );
        assert_eq!(calls[0].timeout, Some(Duration::from_millis(500)));
        assert_eq!(calls[1].timeout, None, "0 means no timeout");
        assert_eq!(calls[0].context_id, 2);
    }

    #[test]
    fn responses_go_to_the_root_context_and_exist_only_during_the_callback() {
        let (_host, plugin) = start(json!({
            "proxy_on_configure": [{"op": "http_call", "cluster": "c", "headers": [[":method", "GET"], [":path", "/"], [":authority", "c"]], "timeout": 100}],
            "proxy_on_http_call_response": [
                {"op": "get_header", "map": 6, "key": ":status"},
                {"op": "get_buffer", "type": 4, "start": 0, "max": 100},
                {"op": "get_header", "map": 7, "key": "grpc-status"},
                {"op": "add_header", "map": 6, "key": "x", "value": "y"},
                {"op": "get_status"}
            ],
            "proxy_on_tick": [{"op": "get_buffer", "type": 4, "start": 0, "max": 100}, {"op": "get_header", "map": 6, "key": ":status"}]
        }));
        let token = plugin.http_calls()[0].token;
        plugin
            .respond_http_call(
                token,
                HttpResponse::new(201)
                    .header("x-a", "1")
                    .body("pong")
                    .trailer("grpc-status", "0"),
            )
            .unwrap();
        let callback = callbacks(&plugin)
            .into_iter()
            .find(|c| c[0] == "proxy_on_http_call_response")
            .unwrap();
        assert_eq!(
            callback,
            json!(["proxy_on_http_call_response", 1, [4, 3, 4, 1]]),
            "root context, token, 3 headers, 4 body bytes, 1 trailer"
        );
        let outcome = steps_in(&plugin, "proxy_on_http_call_response");
        assert_eq!(outcome[0]["value"], "201");
        assert_eq!(outcome[1]["value"], "pong");
        assert_eq!(outcome[2]["value"], "0");
        assert_eq!(outcome[3]["status"], 2, "the response is read-only");
        assert_eq!(outcome[4]["result"], 0);
        plugin.tick().unwrap();
        assert_eq!(
            statuses(&plugin, "proxy_on_tick"),
            [1, 2],
            "gone after the callback"
        );
    }

    #[test]
    fn failures_and_timeouts() {
        let script = json!({
            "proxy_on_configure": [
                {"op": "http_call", "cluster": "c", "headers": [[":method", "GET"], [":path", "/"], [":authority", "c"]], "timeout": 100},
                {"op": "http_call", "cluster": "c", "headers": [[":method", "GET"], [":path", "/"], [":authority", "c"]], "timeout": 300}
            ],
            "proxy_on_http_call_response": [{"op": "get_status"}, {"op": "get_header", "map": 6, "key": ":status"}]
        });
        let (_host, plugin) = start(script);
        plugin.fail_http_call(4).unwrap();
        let outcome = steps_in(&plugin, "proxy_on_http_call_response");
        assert_eq!(outcome[0]["result"], 11);
        assert_eq!(outcome[0]["value"], "reset");
        assert_eq!(outcome[1]["status"], 2);
        plugin.advance(Duration::from_millis(299)).unwrap();
        assert_eq!(plugin.http_calls().len(), 1);
        plugin.advance(Duration::from_millis(1)).unwrap();
        assert!(plugin.http_calls().is_empty());
        let outcome = steps_in(&plugin, "proxy_on_http_call_response");
        assert_eq!(outcome[3]["value"], "504", "a timeout answers 504");
        let callbacks = callbacks(&plugin);
        assert!(callbacks.contains(&json!(["proxy_on_http_call_response", 1, [4, 0, 0, 0]])));
    }

    #[test]
    fn a_stream_that_ends_cancels_its_callouts() {
        let (_host, plugin) = start(json!({
            "proxy_on_request_headers": [{"op": "http_call", "cluster": "auth", "headers": [[":method", "GET"], [":path", "/check"], [":authority", "auth"]], "timeout": 1000}],
            "returns": {"proxy_on_request_headers": 1}
        }));
        let mut gone = plugin.http_stream().unwrap();
        gone.send_request_headers(GET, false).unwrap();
        let mut kept = plugin.http_stream().unwrap();
        kept.send_request_headers(GET, false).unwrap();
        let gone_token = gone.http_calls()[0].token;
        let kept_token = kept.http_calls()[0].token;
        gone.end().unwrap();
        let pending: Vec<u32> = plugin.http_calls().iter().map(|call| call.token).collect();
        assert_eq!(
            pending,
            [kept_token],
            "only the live stream's callout is left"
        );
        assert!(plugin
            .respond_http_call(gone_token, HttpResponse::new(200))
            .is_err());
        // The timeout of a cancelled call fires nothing either.
        plugin.advance(Duration::from_millis(1000)).unwrap();
        let answered: Vec<_> = callbacks(&plugin)
            .into_iter()
            .filter(|callback| callback[0] == "proxy_on_http_call_response")
            .map(|callback| callback[2][0].clone())
            .collect();
        assert_eq!(answered, [json!(kept_token)]);
    }
}

mod grpc_callouts {
    use super::*;

    #[test]
    fn calls_and_streams_use_envoy_tokens_and_callbacks() {
        let (_host, plugin) = start(json!({
            "proxy_on_configure": [
                {"op": "grpc_call", "service": "grpc-cluster", "service_name": "pkg.Svc", "method": "Check", "message": "req", "timeout": 100},
                {"op": "grpc_stream", "service": "grpc-cluster", "service_name": "pkg.Svc", "method": "Watch"},
                {"op": "grpc_send", "token": 6, "message": "m1", "end_stream": 0},
                {"op": "grpc_send", "token": 5, "message": "x", "end_stream": 0},
                {"op": "grpc_send", "token": 42, "message": "x", "end_stream": 0}
            ],
            "proxy_on_grpc_receive": [{"op": "get_buffer", "type": 5, "start": 0, "max": 100}],
            "proxy_on_grpc_receive_initial_metadata": [{"op": "get_header", "map": 4, "key": "k"}],
            "proxy_on_grpc_close": [{"op": "get_status"}]
        }));
        let outcome = steps_in(&plugin, "proxy_on_configure");
        assert_eq!(
            (outcome[0]["result"].clone(), outcome[1]["result"].clone()),
            (json!(5), json!(6))
        );
        assert_eq!(
            statuses(&plugin, "proxy_on_configure")[2..],
            [0, 2, 1],
            "send on a call is BadArgument, on an unknown stream NotFound"
        );
        assert_eq!(plugin.grpc_calls()[1].messages, [b"m1".to_vec()]);
        plugin.respond_grpc_call(5, b"resp").unwrap();
        assert_eq!(
            steps_in(&plugin, "proxy_on_grpc_receive")[0]["value"],
            "resp"
        );
        plugin
            .grpc_stream_initial_metadata(6, &[("k", "v")])
            .unwrap();
        assert_eq!(
            steps_in(&plugin, "proxy_on_grpc_receive_initial_metadata")[0]["value"],
            "v"
        );
        plugin.close_grpc(6, 14, "unavailable").unwrap();
        let closed = steps_in(&plugin, "proxy_on_grpc_close");
        assert_eq!(
            (closed[0]["result"].clone(), closed[0]["value"].clone()),
            (json!(14), json!("unavailable"))
        );
        assert!(plugin.grpc_calls().is_empty());
    }
}

mod metrics {
    use super::*;

    #[test]
    fn ids_types_and_increment_rules_follow_envoy() {
        let (host, plugin) = start(json!({"proxy_on_configure": [
            {"op": "define_metric", "type": 0, "name": "requests", "save": "c"},
            {"op": "define_metric", "type": 1, "name": "active", "save": "g"},
            {"op": "define_metric", "type": 2, "name": "latency", "save": "h"},
            {"op": "define_metric", "type": 0, "name": "requests", "save": "c2"},
            {"op": "define_metric", "type": 3, "name": "bad"},
            {"op": "increment_metric", "id": "$c", "offset": 2},
            {"op": "increment_metric", "id": "$c2", "offset": 1},
            {"op": "increment_metric", "id": "$c", "offset": 0},
            {"op": "increment_metric", "id": "$c", "offset": -1},
            {"op": "increment_metric", "id": "$g", "offset": 5},
            {"op": "increment_metric", "id": "$g", "offset": -2},
            {"op": "record_metric", "id": "$h", "value": 42},
            {"op": "increment_metric", "id": "$h", "offset": 1},
            {"op": "get_metric", "id": "$c"},
            {"op": "get_metric", "id": "$g"},
            {"op": "get_metric", "id": "$h"},
            {"op": "get_metric", "id": 404},
            {"op": "record_metric", "id": "$g", "value": 9},
            {"op": "get_metric", "id": "$g"}
        ]}));
        let outcome = steps_in(&plugin, "proxy_on_configure");
        let ids: Vec<_> = outcome[..4].iter().map(|s| s["result"].clone()).collect();
        assert_eq!(
            ids,
            [json!(4), json!(5), json!(6), json!(8)],
            "a new id per define, per type, type in the low bits"
        );
        let statuses: Vec<_> = outcome[4..]
            .iter()
            .map(|s| s["status"].as_u64().unwrap())
            .collect();
        assert_eq!(statuses, [2, 0, 0, 2, 2, 0, 0, 0, 2, 0, 0, 2, 1, 0, 0]);
        assert_eq!(outcome[13]["result"], 3, "both ids count into one counter");
        assert_eq!(outcome[14]["result"], 3);
        assert_eq!(outcome[18]["result"], 9);
        assert_eq!(host.counter("requests"), Some(3));
        assert_eq!(
            host.metric("latency"),
            Some(MetricValue::Histogram(vec![42]))
        );
    }
}

mod properties {
    use super::*;

    #[test]
    fn stream_properties_are_computed_as_envoy_does() {
        let host = TestHost::new();
        let plugin = probe(
            &host,
            json!({
                "proxy_on_configure": [{"op": "get_property", "path": ["request", "path"]}, {"op": "get_property", "path": ["plugin_name"]}],
                "proxy_on_request_headers": [
                    {"op": "get_property", "path": ["request", "path"]},
                    {"op": "get_property", "path": ["request", "url_path"]},
                    {"op": "get_property", "path": ["request", "method"]},
                    {"op": "get_property", "path": ["source", "address"]},
                    {"op": "get_property", "path": ["source", "port"]},
                    {"op": "get_property", "path": ["request", "headers", "x-multi"]},
                    {"op": "set_property", "path": ["my_state"], "value": "kept"},
                    {"op": "get_property", "path": ["my_state"]},
                    {"op": "get_property", "path": ["no", "such"]},
                    {"op": "get_property", "path": []}
                ],
                "proxy_on_response_headers": [{"op": "get_property", "path": ["request", "path"]}, {"op": "get_property", "path": ["response", "code"]}]
            }),
        )
        .name("my-plugin")
        .start()
        .unwrap();
        assert_eq!(
            statuses(&plugin, "proxy_on_configure"),
            [1, 0],
            "a root context has no request"
        );
        assert_eq!(
            steps_in(&plugin, "proxy_on_configure")[1]["value"],
            "my-plugin"
        );
        let mut stream = plugin.http_stream().unwrap();
        stream.set_property(&["source", "address"], "10.0.0.7:4321");
        let mut request = GET.to_vec();
        request.extend([("x-multi", "a"), ("x-multi", "b")]);
        stream.send_request_headers(&request, true).unwrap();
        let outcome = steps_in(&plugin, "proxy_on_request_headers");
        assert_eq!(outcome[0]["value"], "/p?q=1");
        assert_eq!(outcome[1]["value"], "/p");
        assert_eq!(outcome[2]["value"], "GET");
        assert_eq!(outcome[3]["value"], "10.0.0.7:4321");
        assert_eq!(
            outcome[4]["hex"], "e110000000000000",
            "integers are 8-byte little-endian"
        );
        assert_eq!(outcome[5]["value"], "a,b");
        assert_eq!(outcome[7]["value"], "kept");
        assert_eq!(outcome[8]["status"], 1);
        assert_eq!(
            outcome[9]["status"], 3,
            "an empty path is SerializationFailure"
        );
        stream
            .send_response_headers(&[(":status", "404")], true)
            .unwrap();
        let response = steps_in(&plugin, "proxy_on_response_headers");
        assert_eq!(
            response[0]["status"], 1,
            "request.path is gone after the request headers"
        );
        assert_eq!(response[1]["hex"], "9401000000000000");
    }
}

mod effective_context_and_foreign_functions {
    use super::*;

    #[test]
    fn effective_context_must_exist_and_foreign_functions_are_envoys() {
        let (_host, plugin) = start(json!({"proxy_on_configure": [
            {"op": "set_effective_context", "id": 77},
            {"op": "call_foreign", "name": "compress", "args": "aaaaaaaaaaaaaaaaaaaaaaaa", "save": "packed"},
            {"op": "call_foreign", "name": "no_such_function", "args": ""}
        ]}));
        assert_eq!(statuses(&plugin, "proxy_on_configure"), [2, 0, 1]);
    }
}

mod failures {
    use super::*;

    #[test]
    fn a_trap_fails_the_stream_with_503_and_the_vm_for_good() {
        let (_host, plugin) = start(json!({"proxy_on_request_headers": [{"op": "trap"}]}));
        let mut stream = plugin.http_stream().unwrap();
        let error = stream.send_request_headers(GET, true).unwrap_err();
        assert!(
            matches!(error, Error::Trap { ref callback, .. } if callback == "proxy_on_request_headers"),
            "{error}"
        );
        assert_eq!(stream.client_response().status(), Some(503));
        assert!(plugin
            .failure()
            .unwrap()
            .contains("proxy_on_request_headers"));
        assert!(matches!(plugin.http_stream(), Err(Error::VmFailed(_))));
    }

    #[test]
    fn a_bad_pointer_is_a_status_not_a_trap() {
        let (_host, plugin) =
            start(json!({"proxy_on_request_headers": [{"op": "oob_log"}, {"op": "oob_return"}]}));
        let mut stream = plugin.http_stream().unwrap();
        stream.send_request_headers(GET, true).unwrap();
        assert_eq!(statuses(&plugin, "proxy_on_request_headers"), [6, 6]);
        assert!(plugin.failure().is_none());
    }
}

mod many_vms {
    use super::*;

    #[test]
    fn vms_on_several_threads_share_metrics_data_and_queues() {
        let host = TestHost::new();
        let owner = probe(
            &host,
            json!({"proxy_on_configure": [{"op": "register_queue", "name": "work"}]}),
        )
        .vm_id("w")
        .start()
        .unwrap();
        let worker_script = json!({
            "proxy_on_configure": [
                {"op": "define_metric", "type": 0, "name": "all_requests", "save": "c"},
                {"op": "resolve_queue", "vm_id": "w", "name": "work", "save": "q"}
            ],
            "proxy_on_request_headers": [
                {"op": "increment_metric", "id": "$c", "offset": 1},
                {"op": "enqueue", "queue": "$q", "value": "item"}
            ]
        });
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let host = host.clone();
                let script = worker_script.clone();
                std::thread::spawn(move || {
                    let plugin = probe(&host, script).vm_id("w").start().unwrap();
                    for _ in 0..50 {
                        let mut stream = plugin.http_stream().unwrap();
                        stream.send_request_headers(GET, true).unwrap();
                        stream.end().unwrap();
                    }
                    statuses(&plugin, "proxy_on_request_headers")
                        .iter()
                        .all(|status| *status == 0)
                })
            })
            .collect();
        for worker in workers {
            assert!(worker.join().unwrap(), "every hostcall succeeded");
        }
        assert_eq!(host.counter("all_requests"), Some(200));
        assert_eq!(host.queue_items("w", "work").unwrap().len(), 200);
        assert_eq!(
            owner.deliver_queue_ready().unwrap(),
            200,
            "one notification per enqueue, to the owner"
        );
    }
}

mod fault_injection {
    use super::*;
    use test_host::{Limits, Status, Times};

    /// The trace of `records` for hostcalls named `filter`: (name, status, injected).
    fn trace(
        records: &[test_host::HostcallRecord],
        filter: &str,
    ) -> Vec<(&'static str, Status, bool)> {
        records
            .iter()
            .filter(|record| record.name.contains(filter))
            .map(|record| (record.name, record.status, record.injected))
            .collect()
    }

    #[test]
    fn a_hostcall_fails_once_with_the_chosen_status() {
        let (_host, plugin) = start(json!({
            "proxy_on_request_headers": [
                {"op": "set_shared", "key": "k", "value": "v"},
                {"op": "get_shared", "key": "k"},
                {"op": "get_shared", "key": "k"},
                {"op": "get_shared", "key": "missing"}
            ]
        }));
        plugin
            .fail_hostcall(
                "proxy_get_shared_data",
                Status::InternalFailure,
                Times::Once,
            )
            .unwrap();
        let mut stream = plugin.http_stream().unwrap();
        stream.send_request_headers(GET, true).unwrap();
        assert_eq!(statuses(&plugin, "proxy_on_request_headers"), [0, 10, 0, 1]);
        assert_eq!(
            trace(&stream.hostcalls(), "shared"),
            [
                ("proxy_set_shared_data", Status::Ok, false),
                ("proxy_get_shared_data", Status::InternalFailure, true),
                ("proxy_get_shared_data", Status::Ok, false),
                ("proxy_get_shared_data", Status::NotFound, false),
            ]
        );
    }

    #[test]
    fn a_refused_http_call_leaves_nothing_pending_until_the_failure_is_cleared() {
        let (_host, plugin) = start(json!({
            "proxy_on_request_headers": [
                {"op": "http_call", "cluster": "auth", "headers": [[":method", "GET"], [":path", "/"], [":authority", "auth"]], "timeout": 1000}
            ]
        }));
        plugin
            .fail_hostcall("proxy_http_call", Status::BadArgument, Times::Always)
            .unwrap();
        for _ in 0..2 {
            let mut stream = plugin.http_stream().unwrap();
            stream.send_request_headers(GET, true).unwrap();
        }
        assert_eq!(statuses(&plugin, "proxy_on_request_headers"), [2, 2]);
        assert!(plugin.http_calls().is_empty());
        plugin.clear_hostcall_failures();
        let mut stream = plugin.http_stream().unwrap();
        stream.send_request_headers(GET, true).unwrap();
        assert_eq!(statuses(&plugin, "proxy_on_request_headers"), [2, 2, 0]);
        assert_eq!(stream.http_calls().len(), 1);
    }

    #[test]
    fn a_metric_that_cannot_be_defined_while_configuring() {
        let host = TestHost::new();
        let plugin = probe(
            &host,
            json!({"proxy_on_configure": [
                {"op": "define_metric", "type": 0, "name": "first"},
                {"op": "define_metric", "type": 0, "name": "second"},
                {"op": "define_metric", "type": 0, "name": "third"}
            ]}),
        )
        .fail_hostcall(
            "proxy_define_metric",
            Status::InternalFailure,
            Times::Next(2),
        )
        .start()
        .unwrap();
        assert_eq!(statuses(&plugin, "proxy_on_configure"), [10, 10, 0]);
        assert_eq!(host.metrics().keys().collect::<Vec<_>>(), ["third"]);
        let root = plugin.root_context_id();
        assert!(plugin
            .hostcalls()
            .iter()
            .filter(|record| record.name == "proxy_define_metric")
            .all(|record| record.context_id == root));
    }

    #[test]
    fn an_unknown_hostcall_name_is_a_usage_error() {
        let (host, plugin) = start(json!({}));
        assert!(matches!(
            plugin.fail_hostcall("get_shared_data", Status::NotFound, Times::Once),
            Err(Error::Usage(_))
        ));
        assert!(matches!(
            probe(&host, json!({}))
                .fail_hostcall("proxy_frobnicate", Status::NotFound, Times::Always)
                .start(),
            Err(Error::Usage(_))
        ));
    }

    #[test]
    fn even_logging_can_fail() {
        let (_host, plugin) = start(json!({}));
        plugin
            .fail_hostcall("proxy_log", Status::InternalFailure, Times::Always)
            .unwrap();
        let before = plugin.logs().len();
        let mut stream = plugin.http_stream().unwrap();
        stream.send_request_headers(GET, true).unwrap();
        assert_eq!(plugin.logs().len(), before, "no line was logged");
        assert!(trace(&stream.hostcalls(), "proxy_log")
            .iter()
            .all(|call| *call == ("proxy_log", Status::InternalFailure, true)));
        assert!(!stream.hostcalls().is_empty());
    }

    #[test]
    fn the_trace_follows_each_stream_and_keeps_the_newest_entries() {
        let host = TestHost::with_limits(Limits::default().trace_entries(8));
        let plugin = probe(
            &host,
            json!({"proxy_on_request_headers": [
                {"op": "get_header", "map": 0, "key": ":path"},
                {"op": "get_header", "map": 0, "key": "x-missing"}
            ]}),
        )
        .start()
        .unwrap();
        let mut first = plugin.http_stream().unwrap();
        first.send_request_headers(GET, true).unwrap();
        let mut second = plugin.http_stream().unwrap();
        second.send_request_headers(GET, true).unwrap();
        assert_eq!(
            trace(&second.hostcalls(), "header"),
            [
                ("proxy_get_header_map_value", Status::Ok, false),
                ("proxy_get_header_map_value", Status::NotFound, false),
            ]
        );
        assert!(second.hostcalls().iter().all(|r| r.context_id == 3));
        assert_eq!(plugin.hostcalls().len(), 8, "the cap keeps the newest");
        assert_eq!(plugin.hostcalls().last(), second.hostcalls().last());
    }
}

/// WASI preview 1 as Envoy (proxy-wasm-cpp-host's `wasi_unstable_*`) gives it. Each module calls
/// WASI functions from a callback and reports what it got as one log line of hex words.
mod wasi {
    use super::*;
    use test_host::Plugin;

    /// The WAT import of a WASI function, named `$name`, with the signature Envoy registers.
    fn import(name: &str) -> String {
        let signature = match name {
            "fd_write" | "fd_read" | "poll_oneoff" => "(param i32 i32 i32 i32) (result i32)",
            "fd_pwrite" | "fd_pread" | "fd_readdir" => "(param i32 i32 i32 i64 i32) (result i32)",
            "clock_time_get" => "(param i32 i64 i32) (result i32)",
            "fd_seek" => "(param i32 i64 i32 i32) (result i32)",
            "fd_advise" => "(param i32 i64 i64 i32) (result i32)",
            "path_open" => "(param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)",
            "path_filestat_get" | "sock_send" => "(param i32 i32 i32 i32 i32) (result i32)",
            "path_link" => "(param i32 i32 i32 i32 i32 i32) (result i32)",
            "sock_accept" | "path_create_directory" | "fd_prestat_dir_name" => {
                "(param i32 i32 i32) (result i32)"
            }
            "fd_sync" | "fd_close" | "proc_raise" => "(param i32) (result i32)",
            "sched_yield" => "(result i32)",
            "proc_exit" => "(param i32)",
            _ => "(param i32 i32) (result i32)",
        };
        format!(r#"(import "wasi_snapshot_preview1" "{name}" (func ${name} {signature}))"#)
    }

    /// A module with 4 pages of memory whose `proxy_on_configure` runs `configure` and reports.
    /// `$put` and `$put64` add a value to the report (results build up at 60000); `$report` logs
    /// them as one info line. Data: "hello " at 100, "world\n" at 106, "oops" at 112; iovecs of
    /// both halves of the greeting at 200, of "oops" at 216, and of 8 bytes past the end of memory
    /// at 232.
    fn module(imports: &[&str], raw_imports: &str, configure: &str, extra: &str) -> String {
        let imports: String = imports.iter().map(|name| import(name)).collect();
        format!(
            r#"(module
                (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
                {imports}
                {raw_imports}
                (memory (export "memory") 4)
                (global $next (mut i32) (i32.const 200000))
                (global $out (mut i32) (i32.const 60000))
                (data (i32.const 100) "hello world\noops")
                (data (i32.const 200) "\64\00\00\00\06\00\00\00\6a\00\00\00\06\00\00\00")
                (data (i32.const 216) "\70\00\00\00\04\00\00\00")
                (data (i32.const 232) "\fc\ff\03\00\08\00\00\00")
                (func (export "proxy_abi_version_0_2_1"))
                (func (export "proxy_on_memory_allocate") (param $size i32) (result i32)
                    (local $at i32)
                    (local.set $at (global.get $next))
                    (global.set $next (i32.add (global.get $next) (local.get $size)))
                    (local.get $at))
                (func $put64 (param $value i64)
                    (local $i i32) (local $digit i32)
                    (loop $digits
                        (local.set $digit (i32.wrap_i64 (i64.and (i64.const 15)
                            (i64.shr_u (local.get $value)
                                (i64.extend_i32_u (i32.mul (i32.const 4) (i32.sub (i32.const 15) (local.get $i))))))))
                        (i32.store8 (i32.add (global.get $out) (local.get $i))
                            (i32.add (local.get $digit)
                                (select (i32.const 48) (i32.const 87) (i32.lt_u (local.get $digit) (i32.const 10)))))
                        (local.set $i (i32.add (local.get $i) (i32.const 1)))
                        (br_if $digits (i32.lt_u (local.get $i) (i32.const 16))))
                    (i32.store8 (i32.add (global.get $out) (i32.const 16)) (i32.const 32))
                    (global.set $out (i32.add (global.get $out) (i32.const 17))))
                (func $put (param $value i32) (call $put64 (i64.extend_i32_u (local.get $value))))
                (func $report
                    (if (i32.gt_u (global.get $out) (i32.const 60000))
                        (then (drop (call $log (i32.const 2) (i32.const 60000)
                            (i32.sub (global.get $out) (i32.const 60000))))))
                    (global.set $out (i32.const 60000)))
                (func (export "proxy_on_configure") (param i32 i32) (result i32)
                    {configure}
                    (call $report)
                    (i32.const 1))
                {extra})"#
        )
    }

    fn start_module(wat: String) -> Plugin {
        TestHost::new()
            .plugin_from_bytes(wat)
            .start()
            .unwrap_or_else(|e| panic!("the module should start: {e}"))
    }

    /// Every report the module logged, oldest first.
    fn reports(plugin: &Plugin) -> Vec<Vec<u64>> {
        plugin
            .logs()
            .iter()
            .filter_map(|entry| {
                let words: Vec<&str> = entry.message.split_whitespace().collect();
                let report: Vec<u64> = words
                    .iter()
                    .filter(|word| word.len() == 16)
                    .filter_map(|word| u64::from_str_radix(word, 16).ok())
                    .collect();
                (!words.is_empty() && report.len() == words.len()).then_some(report)
            })
            .collect()
    }

    fn report(plugin: &Plugin) -> Vec<u64> {
        let reports = reports(plugin);
        assert_eq!(reports.len(), 1, "{:?}", plugin.logs());
        reports[0].clone()
    }

    #[test]
    fn stdout_and_stderr_writes_are_info_and_error_log_lines() {
        let plugin = start_module(module(
            &["fd_write", "fd_pwrite"],
            r#"(import "wasi_unstable" "fd_write" (func $old_write (param i32 i32 i32 i32) (result i32)))"#,
            "(call $put (call $fd_write (i32.const 1) (i32.const 200) (i32.const 2) (i32.const 300)))
             (call $put (i32.load (i32.const 300)))
             (call $put (call $fd_pwrite (i32.const 2) (i32.const 216) (i32.const 1) (i64.const 99) (i32.const 300)))
             (call $put (i32.load (i32.const 300)))
             (call $put (call $fd_write (i32.const 3) (i32.const 216) (i32.const 1) (i32.const 300)))
             (call $put (call $old_write (i32.const 1) (i32.const 216) (i32.const 1) (i32.const 300)))
             (call $put (call $fd_write (i32.const 1) (i32.const 216) (i32.const 0) (i32.const 300)))
             (call $put (i32.load (i32.const 300)))",
            "",
        ));
        assert_eq!(
            report(&plugin),
            [0, 12, 0, 4, 8, 0, 0, 0],
            "one write of both iovecs, 12 bytes; fd 3 is BADF; no iovecs write 0 bytes"
        );
        let lines: Vec<(LogLevel, String)> = plugin
            .logs()
            .into_iter()
            .map(|entry| (entry.level, entry.message))
            .take(3)
            .collect();
        assert_eq!(
            lines,
            [
                (LogLevel::Info, "hello world".to_string()),
                (LogLevel::Error, "oops".to_string()),
                (LogLevel::Info, "oops".to_string()),
            ],
            "one line per write, the trailing newline dropped; wasi_unstable is the same WASI"
        );
        assert_eq!(plugin.stdout(), "hello world\noops");
        assert_eq!(plugin.stderr(), "oops");
    }

    #[test]
    fn the_environment_is_the_plugins_and_there_are_no_arguments() {
        let wat = module(
            &[
                "environ_sizes_get",
                "environ_get",
                "args_sizes_get",
                "args_get",
            ],
            "",
            "(call $put (call $environ_sizes_get (i32.const 300) (i32.const 304)))
             (call $put (i32.load (i32.const 300)))
             (call $put (i32.load (i32.const 304)))
             (call $put (call $environ_get (i32.const 400) (i32.const 500)))
             (call $put (i32.load (i32.const 400)))
             (call $put (i32.load (i32.const 404)))
             (drop (call $log (i32.const 2) (i32.const 500) (i32.load (i32.const 304))))
             (call $put (call $args_sizes_get (i32.const 300) (i32.const 304)))
             (call $put (i32.load (i32.const 300)))
             (call $put (i32.load (i32.const 304)))
             (call $put (call $args_get (i32.const 400) (i32.const 500)))",
            "",
        );
        let plugin = TestHost::new()
            .plugin_from_bytes(wat)
            .env("A", "1")
            .env("LONG", "x=y")
            .start()
            .unwrap();
        assert_eq!(report(&plugin), [0, 2, 13, 0, 500, 504, 0, 0, 0, 0]);
        assert!(
            plugin.logs().iter().any(|e| e.message == "A=1\0LONG=x=y\0"),
            "{:?}",
            plugin.logs()
        );
    }

    #[test]
    fn the_clocks_follow_the_host_clock() {
        let clocks =
            "(call $put (call $clock_time_get (i32.const 0) (i64.const 1) (i32.const 300)))
             (call $put64 (i64.load (i32.const 300)))
             (call $put (call $clock_time_get (i32.const 1) (i64.const 1) (i32.const 300)))
             (call $put64 (i64.load (i32.const 300)))
             (call $put (call $clock_res_get (i32.const 0) (i32.const 300)))
             (call $put64 (i64.load (i32.const 300)))
             (call $put (call $clock_res_get (i32.const 1) (i32.const 300)))
             (call $put64 (i64.load (i32.const 300)))
             (call $put (call $clock_time_get (i32.const 2) (i64.const 1) (i32.const 300)))
             (call $put (call $clock_res_get (i32.const 3) (i32.const 300)))
             (call $report)";
        let host = TestHost::new();
        let plugin = host
            .plugin_from_bytes(module(
                &["clock_time_get", "clock_res_get"],
                "",
                "",
                &format!(r#"(func (export "proxy_on_tick") (param i32) {clocks})"#),
            ))
            .start()
            .unwrap();
        let nanos = |time: std::time::SystemTime| {
            time.duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        };
        let before = nanos(host.now());
        plugin.tick().unwrap();
        host.advance_clock(Duration::from_secs(90));
        plugin.tick().unwrap();
        let reports = reports(&plugin);
        let (first, second) = (&reports[0], &reports[1]);
        assert_eq!(first[0..10], [0, before, 0, first[3], 0, 1, 0, 1, 58, 58]);
        assert_eq!(second[1], before + 90_000_000_000, "realtime is the host's");
        assert_eq!(second[3] - first[3], 90_000_000_000, "monotonic too");
    }

    /// `random_get` of 64 KiB at 70000 (the first 8 and last 8 bytes reported), then of one byte
    /// more, of nothing, and past the end of memory.
    fn random_module() -> String {
        module(
            &["random_get"],
            "",
            "(call $put (call $random_get (i32.const 70000) (i32.const 65536)))
             (call $put64 (i64.load (i32.const 70000)))
             (call $put64 (i64.load (i32.const 135528)))
             (call $put (call $random_get (i32.const 70000) (i32.const 65537)))
             (call $put (call $random_get (i32.const 0) (i32.const 0)))
             (call $put (call $random_get (i32.const 262140) (i32.const 8)))
             (call $put (call $random_get (i32.const 262144) (i32.const 0)))",
            "",
        )
    }

    #[test]
    fn random_get_serves_up_to_64_kib_from_a_seeded_generator() {
        let host = TestHost::new();
        let first = report(&host.plugin_from_bytes(random_module()).start().unwrap());
        assert_eq!(
            [first[0], first[3], first[4], first[5], first[6]],
            [0, 28, 0, 21, 0],
            "64 KiB is the most (INVAL past it); nothing is success; past memory is FAULT"
        );
        assert!(first[1] != 0 && first[2] != 0 && first[1] != first[2]);
        let second_vm = report(&host.plugin_from_bytes(random_module()).start().unwrap());
        assert_ne!(second_vm[1], first[1], "each VM has its own sequence");
        let other_host = TestHost::new();
        let again = report(
            &other_host
                .plugin_from_bytes(random_module())
                .start()
                .unwrap(),
        );
        assert_eq!(
            again, first,
            "the same VM of another host gets the same bytes"
        );
    }

    #[test]
    fn a_pointer_outside_memory_is_efault_not_a_trap() {
        let plugin = start_module(module(
            &[
                "fd_write",
                "environ_sizes_get",
                "args_sizes_get",
                "clock_time_get",
                "poll_oneoff",
                "fd_readdir",
                "sock_accept",
                "fd_fdstat_get",
            ],
            "",
            "(call $put (call $fd_write (i32.const 1) (i32.const 0xfffffff0) (i32.const 1) (i32.const 300)))
             (call $put (call $fd_write (i32.const 1) (i32.const 232) (i32.const 1) (i32.const 300)))
             (call $put (call $fd_write (i32.const 1) (i32.const 216) (i32.const 0x7fffffff) (i32.const 300)))
             (call $put (call $fd_write (i32.const 1) (i32.const 216) (i32.const 1) (i32.const 262142)))
             (call $put (call $environ_sizes_get (i32.const 262142) (i32.const 300)))
             (call $put (call $args_sizes_get (i32.const 300) (i32.const 262142)))
             (call $put (call $clock_time_get (i32.const 0) (i64.const 1) (i32.const 262140)))
             (call $put (call $poll_oneoff (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 262142)))
             (call $put (call $fd_readdir (i32.const 3) (i32.const 0) (i32.const 0) (i64.const 0) (i32.const 262142)))
             (call $put (call $sock_accept (i32.const 0) (i32.const 0) (i32.const 262140)))
             (call $put (call $fd_fdstat_get (i32.const 1) (i32.const 262140)))",
            "",
        ));
        assert_eq!(
            report(&plugin),
            [21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 0],
            "EFAULT everywhere but fd_fdstat_get, which Envoy answers with success"
        );
        assert_eq!(
            plugin.log_messages(LogLevel::Info)[0],
            "oops",
            "a write with a bad result pointer is still logged, as in Envoy"
        );
        assert_eq!(plugin.stdout(), "oops", "a faulting iovec writes nothing");
        assert!(plugin.failure().is_none());
    }

    #[test]
    fn the_functions_without_files_or_sockets_return_envoys_errno() {
        let plugin = TestHost::new()
            .plugin_from_bytes(module(
                &[
                    "path_open",
                    "fd_read",
                    "fd_pread",
                    "fd_prestat_get",
                    "fd_prestat_dir_name",
                    "fd_filestat_get",
                    "path_filestat_get",
                    "path_create_directory",
                    "path_link",
                    "fd_renumber",
                    "fd_readdir",
                    "sock_send",
                    "sock_shutdown",
                    "fd_fdstat_set_flags",
                    "fd_sync",
                    "fd_seek",
                    "fd_close",
                    "sched_yield",
                    "fd_fdstat_get",
                    "fd_tell",
                    "fd_advise",
                ],
                "",
                "(call $put (call $path_open (i32.const 3) (i32.const 0) (i32.const 100) (i32.const 4) (i32.const 0) (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 300)))
                 (call $put (call $fd_read (i32.const 0) (i32.const 200) (i32.const 1) (i32.const 300)))
                 (call $put (call $fd_pread (i32.const 0) (i32.const 200) (i32.const 1) (i64.const 0) (i32.const 300)))
                 (call $put (call $fd_prestat_get (i32.const 3) (i32.const 300)))
                 (call $put (call $fd_prestat_dir_name (i32.const 3) (i32.const 300) (i32.const 4)))
                 (call $put (call $fd_filestat_get (i32.const 1) (i32.const 300)))
                 (call $put (call $path_filestat_get (i32.const 3) (i32.const 0) (i32.const 100) (i32.const 4) (i32.const 300)))
                 (call $put (call $path_create_directory (i32.const 3) (i32.const 100) (i32.const 4)))
                 (call $put (call $path_link (i32.const 3) (i32.const 0) (i32.const 100) (i32.const 4) (i32.const 3) (i32.const 106)))
                 (call $put (call $fd_renumber (i32.const 1) (i32.const 2)))
                 (call $put (call $fd_renumber (i32.const 1) (i32.const 5)))
                 (call $put (call $fd_readdir (i32.const 3) (i32.const 400) (i32.const 64) (i64.const 0) (i32.const 300)))
                 (call $put (call $sock_send (i32.const 0) (i32.const 200) (i32.const 1) (i32.const 0) (i32.const 300)))
                 (call $put (call $sock_shutdown (i32.const 0) (i32.const 0)))
                 (call $put (call $fd_fdstat_set_flags (i32.const 1) (i32.const 0)))
                 (call $put (call $fd_sync (i32.const 1)))
                 (call $put (call $fd_sync (i32.const 0)))
                 (call $put (call $fd_seek (i32.const 1) (i64.const 0) (i32.const 0) (i32.const 300)))
                 (call $put (call $fd_close (i32.const 1)))
                 (call $put (call $sched_yield))
                 (call $put (call $fd_fdstat_get (i32.const 1) (i32.const 300)))
                 (call $put (i32.load8_u (i32.const 300)))
                 (call $put64 (i64.load (i32.const 308)))
                 (call $put (call $fd_fdstat_get (i32.const 0) (i32.const 300)))
                 (call $put (call $fd_tell (i32.const 2) (i32.const 300)))
                 (call $put (call $fd_advise (i32.const 9) (i64.const 0) (i64.const 0) (i32.const 0)))",
                "",
            ))
            .log_level(LogLevel::Trace)
            .start()
            .unwrap();
        assert_eq!(
            report(&plugin),
            [
                44, 52, 52, 8, 52, 8, 58, 58, 58, 58, 8, 20, 58, 58, 52, 0, 8, 0, 0, 0, 0, 0, 64,
                8, 0, 0
            ]
        );
        let traces = plugin.log_messages(LogLevel::Trace);
        assert!(
            traces.contains(&"wasi_unstable fd_seek".to_string()),
            "{traces:?}"
        );
        assert!(
            traces.contains(&"wasi_unstable fd_close".to_string()),
            "{traces:?}"
        );
    }

    #[test]
    fn a_wasi_function_envoy_lacks_fails_the_load() {
        for (name, signature) in [
            ("proc_raise", "(param i32) (result i32)"),
            // WASI's path_link, with the new path's length that Envoy's lacks.
            (
                "path_link",
                "(param i32 i32 i32 i32 i32 i32 i32) (result i32)",
            ),
        ] {
            let wat = module(
                &[],
                &format!(r#"(import "wasi_unstable" "{name}" (func ${name} {signature}))"#),
                "",
                "",
            );
            match TestHost::new().plugin_from_bytes(wat).start() {
                Err(Error::Load(reason)) => {
                    assert!(reason.contains(name), "{name}: {reason}")
                }
                other => panic!("{name}: expected a load error, got {:?}", other.err()),
            }
        }
    }

    #[test]
    fn proc_exit_logs_and_returns_and_the_code_after_it_runs() {
        let exits = |after: &str| {
            TestHost::new()
                .plugin_from_bytes(module(
                    &["proc_exit"],
                    "",
                    &format!("(call $proc_exit (i32.const 3)) (call $put (i32.const 7)) {after}"),
                    "",
                ))
                .log_level(LogLevel::Trace)
                .start()
        };
        let plugin = exits("").unwrap();
        assert_eq!(report(&plugin), [7], "the module went on after proc_exit");
        assert!(plugin
            .log_messages(LogLevel::Trace)
            .contains(&"wasi_unstable proc_exit".to_string()));
        match exits("(unreachable)") {
            Err(Error::Trap { callback, .. }) => assert_eq!(callback, "proxy_on_configure"),
            other => panic!(
                "expected the unreachable after proc_exit to trap: {:?}",
                other.err()
            ),
        }
    }

    #[test]
    fn while_the_module_starts_proc_exit_sched_yield_and_path_open_trap() {
        let starting = |call: &str| {
            let wat = module(
                &["proc_exit", "sched_yield", "path_open", "fd_write"],
                "",
                "",
                &format!(r#"(func (export "_initialize") {call})"#),
            );
            TestHost::new().plugin_from_bytes(wat).start()
        };
        for call in [
            "(call $proc_exit (i32.const 0))",
            "(drop (call $sched_yield))",
            "(drop (call $path_open (i32.const 3) (i32.const 0) (i32.const 100) (i32.const 4) (i32.const 0) (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 300)))",
        ] {
            let error = starting(call).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(error.contains("restricted_callback"), "{call}: {error}");
        }
        let plugin = starting(
            "(drop (call $fd_write (i32.const 1) (i32.const 216) (i32.const 1) (i32.const 300)))",
        )
        .unwrap();
        assert_eq!(plugin.stdout(), "oops", "writes are allowed while starting");
    }
}
