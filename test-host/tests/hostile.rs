//! Hostile and broken modules: each gives a clear error within its limit, never a host panic or
//! hang. Modules are small WAT texts so the failure is exactly the one under test.

mod common;

use std::time::{Duration, Instant};
use test_host::{Error, Limits, LogLevel, TestHost};

/// A minimal 0.2.1 module; `body` adds or overrides exports and functions.
fn module(imports: &str, body: &str) -> String {
    format!(
        r#"(module
            {imports}
            (memory (export "memory") 1)
            (global $next (mut i32) (i32.const 1024))
            (func (export "proxy_abi_version_0_2_1"))
            (func (export "proxy_on_memory_allocate") (param $size i32) (result i32)
                (local $at i32)
                (local.set $at (global.get $next))
                (global.set $next (i32.add (global.get $next) (local.get $size)))
                (local.get $at))
            {body})"#
    )
}

fn start(wat: &str) -> Result<test_host::Plugin, Error> {
    TestHost::new()
        .plugin_from_bytes(wat)
        .call_timeout(Duration::from_millis(500))
        .start()
}

fn load_error(wat: &str) -> String {
    match start(wat) {
        Err(Error::Load(reason)) => reason,
        Err(other) => panic!("expected a load error, got {other}"),
        Ok(_) => panic!("the module should not load"),
    }
}

#[test]
fn an_infinite_loop_in_on_configure_hits_the_deadline() {
    let wat = module(
        "",
        r#"(func (export "proxy_on_configure") (param i32 i32) (result i32) (loop $forever (br $forever)) (i32.const 1))"#,
    );
    let started = Instant::now();
    match start(&wat) {
        Err(Error::Trap {
            callback, message, ..
        }) => {
            assert_eq!(callback, "proxy_on_configure");
            assert!(message.contains("deadline exceeded"), "{message}");
        }
        other => panic!("expected a deadline trap, got {:?}", other.err()),
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn a_memory_bomb_stops_at_the_cap() {
    // Grows memory a page at a time until the host refuses, then traps.
    let wat = module(
        "",
        r#"(func (export "proxy_on_configure") (param i32 i32) (result i32)
            (loop $grow (br_if $grow (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
            unreachable)"#,
    );
    let started = Instant::now();
    match start(&wat) {
        Err(Error::Trap {
            callback, message, ..
        }) => {
            assert_eq!(callback, "proxy_on_configure");
            assert!(message.contains("unreachable"), "{message}");
        }
        other => panic!("expected a trap once memory ran out, got {:?}", other.err()),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_rust_memory_bomb_reports_the_allocation_failure() {
    let (_host, plugin) = common::start(serde_json::json!({"proxy_on_tick": [{"op": "grow"}]}));
    match plugin.tick() {
        Err(Error::Trap { stderr, .. }) => {
            assert!(stderr.contains("memory allocation"), "{stderr}")
        }
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[test]
fn an_unknown_import_is_named() {
    let wat = module(
        r#"(import "env" "proxy_frobnicate" (func (param i32) (result i32)))"#,
        "",
    );
    let reason = load_error(&wat);
    assert!(reason.contains("env.proxy_frobnicate"), "{reason}");
}

#[test]
fn imports_envoy_refuses_for_this_abi_are_refused() {
    let old = module(
        r#"(import "env" "proxy_continue_request" (func (result i32)))"#,
        "",
    );
    assert!(load_error(&old).contains("env.proxy_continue_request"));
    let global = module(r#"(import "env" "some_global" (global i32))"#, "");
    assert!(load_error(&global).contains("env.some_global"));
    let on_0_2_0 = r#"(module
        (import "env" "proxy_get_log_level" (func (param i32) (result i32)))
        (memory (export "memory") 1)
        (func (export "proxy_abi_version_0_2_0"))
        (func (export "malloc") (param i32) (result i32) (i32.const 1024)))"#;
    assert!(
        load_error(on_0_2_0).contains("env.proxy_get_log_level"),
        "proxy_get_log_level is 0.2.1 only"
    );
}

#[test]
fn a_missing_allocator_is_reported() {
    let wat = r#"(module (memory (export "memory") 1) (func (export "proxy_abi_version_0_2_1")))"#;
    assert!(load_error(wat).contains("malloc"));
}

#[test]
fn a_bad_or_missing_abi_version_is_reported() {
    let old = r#"(module (memory (export "memory") 1) (func (export "proxy_abi_version_0_1_0")) (func (export "malloc") (param i32) (result i32) (i32.const 0)))"#;
    assert!(load_error(old).contains("proxy_abi_version_0_1_0"));
    let none = r#"(module (memory (export "memory") 1) (func (export "malloc") (param i32) (result i32) (i32.const 0)))"#;
    assert!(load_error(none).contains("ABI version"));
}

#[test]
fn a_callback_with_the_wrong_signature_is_reported() {
    let wat = module(
        "",
        r#"(func (export "proxy_on_request_headers") (param i32 i32) (result i32) (i32.const 0))"#,
    );
    let reason = load_error(&wat);
    assert!(reason.contains("proxy_on_request_headers"), "{reason}");
}

#[test]
fn not_wasm_at_all_is_a_load_error() {
    for bytes in [&b""[..], b"\0asm", b"hello", b"\0asm\x01\0\0\0\x01\xff\xff"] {
        assert!(matches!(
            TestHost::new().plugin_from_bytes(bytes).start(),
            Err(Error::Load(_))
        ));
    }
}

#[test]
fn hostcalls_other_than_logging_trap_while_the_module_starts() {
    let wat = module(
        r#"(import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
           (import "env" "proxy_define_metric" (func $define (param i32 i32 i32 i32) (result i32)))"#,
        r#"(data (i32.const 16) "hi")
           (func (export "_initialize") (drop (call $log (i32.const 2) (i32.const 16) (i32.const 2)))
                                       (drop (call $define (i32.const 0) (i32.const 16) (i32.const 2) (i32.const 32))))"#,
    );
    match start(&wat) {
        Err(Error::Trap {
            callback, message, ..
        }) => {
            assert_eq!(callback, "_initialize");
            assert!(message.contains("restricted_callback"), "{message}");
        }
        other => panic!("expected a restricted-call trap, got {:?}", other.err()),
    }
}

#[test]
fn an_allocator_that_returns_garbage_gives_a_status() {
    // The allocator hands out an address past the end of memory: the hostcall reports
    // InvalidMemoryAccess (6) and the module sees it.
    let wat = r#"(module
        (import "env" "proxy_get_buffer_bytes" (func $get (param i32 i32 i32 i32 i32) (result i32)))
        (memory (export "memory") 1)
        (func (export "proxy_abi_version_0_2_1"))
        (func (export "malloc") (param i32) (result i32) (i32.const 0x7fffffff))
        (func (export "proxy_on_configure") (param i32 i32) (result i32)
            (i32.eq (call $get (i32.const 7) (i32.const 0) (i32.const 100) (i32.const 0) (i32.const 4)) (i32.const 6))))"#;
    let plugin = TestHost::new()
        .plugin_from_bytes(wat)
        .config_bytes("{}")
        .start();
    assert!(
        plugin.is_ok(),
        "on_configure saw status 6: {:?}",
        plugin.err()
    );
}

#[test]
fn random_and_mutated_modules_never_panic_the_host() {
    let valid = std::fs::read(common::probe_wasm()).unwrap();
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..40 {
        let mut bytes = valid.clone();
        for _ in 0..(1 + next() % 8) {
            let at = (next() as usize) % bytes.len();
            bytes[at] = next() as u8;
        }
        if round % 5 == 0 {
            bytes.truncate((next() as usize) % bytes.len());
        }
        let host = TestHost::new();
        let result = host
            .plugin_from_bytes(bytes)
            .call_timeout(Duration::from_millis(200))
            .config_bytes("{}")
            .start();
        if let Ok(plugin) = result {
            if let Ok(mut stream) = plugin.http_stream() {
                let _ = stream.send_request_headers(common::GET, true);
            }
        }
    }
}

/// WAT string literal bytes.
fn wat_bytes(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("\\{byte:02x}")).collect()
}

/// `(:method GET) (:path /) (:authority a)` in proxy-wasm's pair encoding.
fn callout_headers() -> Vec<u8> {
    let pairs: [(&[u8], &[u8]); 3] = [
        (b":method", b"GET"),
        (b":path", b"/"),
        (b":authority", b"a"),
    ];
    let mut bytes = (pairs.len() as u32).to_le_bytes().to_vec();
    for (name, value) in pairs {
        bytes.extend((name.len() as u32).to_le_bytes());
        bytes.extend((value.len() as u32).to_le_bytes());
    }
    for (name, value) in pairs {
        bytes.extend(name);
        bytes.push(0);
        bytes.extend(value);
        bytes.push(0);
    }
    bytes
}

const MIB: usize = 1 << 20;

/// A module whose `proxy_on_configure` runs `prelude`, then evaluates `call` (an i32 status; it
/// may use `(local.get $i)`) `n` times, and reports the statuses as letters (`A` + status: `A` is
/// Ok, `K` InternalFailure) in an info log line and in shared data under `statuses`.
///
/// Memory: distinct one-byte names at `$i`; HTTP callout headers at 256 (`HEADERS_LEN` bytes);
/// scratch at 700..1000; `pages` pages of zeros from 65536 for big values.
fn repeated(imports: &str, prelude: &str, call: &str, n: usize, pages: usize) -> String {
    repeated_in(CONFIGURE, imports, prelude, call, n, pages)
}

const CONFIGURE: &str = r#"(func (export "proxy_on_configure") (param i32 i32) (result i32)"#;
const REQUEST_HEADERS: &str =
    r#"(func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)"#;
const REQUEST_BODY: &str =
    r#"(func (export "proxy_on_request_body") (param i32 i32 i32) (result i32)"#;

/// [`repeated`] in the callback that `export` opens (its result is 1).
fn repeated_in(
    export: &str,
    imports: &str,
    prelude: &str,
    call: &str,
    n: usize,
    pages: usize,
) -> String {
    format!(
        r#"(module
            (import "env" "proxy_log" (func $report_log (param i32 i32 i32) (result i32)))
            (import "env" "proxy_set_shared_data" (func $report_set (param i32 i32 i32 i32 i32) (result i32)))
            {imports}
            (memory (export "memory") {pages})
            (global $next (mut i32) (i32.const 1024))
            (global $token (mut i32) (i32.const 0))
            (data (i32.const 0) "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
            (data (i32.const 256) "{headers}")
            (data (i32.const 600) "statuses")
            (func (export "proxy_abi_version_0_2_1"))
            (func (export "proxy_on_memory_allocate") (param $size i32) (result i32)
                (local $at i32)
                (local.set $at (global.get $next))
                (global.set $next (i32.add (global.get $next) (local.get $size)))
                (local.get $at))
            {export}
                (local $i i32)
                {prelude}
                (block $done (loop $again
                    (br_if $done (i32.ge_u (local.get $i) (i32.const {n})))
                    (i32.store8 (i32.add (i32.const 512) (local.get $i)) (i32.add (i32.const 65) {call}))
                    (local.set $i (i32.add (local.get $i) (i32.const 1)))
                    (br $again)))
                (drop (call $report_log (i32.const 2) (i32.const 512) (i32.const {n})))
                (drop (call $report_set (i32.const 600) (i32.const 8) (i32.const 512) (i32.const {n}) (i32.const 0)))
                (i32.const 1)))"#,
        pages = pages.max(2),
        headers = wat_bytes(&callout_headers()),
    )
}

/// Starts `wat` on a host with `limits`, and returns the plugin and the statuses it reported.
fn run_repeated(wat: &str, limits: Limits) -> (TestHost, test_host::Plugin, String) {
    run_repeated_with(wat, limits, |_| {})
}

/// [`run_repeated`], with `drive` playing a request through the plugin first.
fn run_repeated_with(
    wat: &str,
    limits: Limits,
    drive: impl FnOnce(&test_host::Plugin),
) -> (TestHost, test_host::Plugin, String) {
    let host = TestHost::with_limits(limits);
    let plugin = host
        .plugin_from_bytes(wat)
        .start()
        .unwrap_or_else(|e| panic!("the module should start: {e}"));
    drive(&plugin);
    let letters = |text: &str| !text.is_empty() && text.bytes().all(|b| b.is_ascii_uppercase());
    let statuses = plugin
        .logs()
        .into_iter()
        .map(|entry| entry.message)
        .find(|message| letters(message))
        .or_else(|| {
            host.shared_data("", b"statuses")
                .map(|(value, _)| String::from_utf8_lossy(&value).into_owned())
        })
        .expect("the module reports its statuses");
    (host, plugin, statuses)
}

/// `ok` letters `A` then `K`s up to `n`.
fn ok_then_refused(ok: usize, n: usize) -> String {
    "A".repeat(ok) + &"K".repeat(n - ok)
}

fn cap_line(plugin: &test_host::Plugin, cap: &str, value: usize) {
    let wanted = format!("cap {cap} ({value}) reached");
    assert!(
        plugin
            .log_messages(LogLevel::Error)
            .iter()
            .any(|line| line.contains(&wanted)),
        "no log line says {wanted:?}: {:?}",
        plugin.log_messages(LogLevel::Error)
    );
}

mod host_memory_caps {
    use super::*;

    const SET_SHARED: &str = r#"(import "env" "proxy_set_shared_data" (func $set (param i32 i32 i32 i32 i32) (result i32)))"#;

    #[test]
    fn shared_data_stops_at_its_cap() {
        let wat = repeated(
            SET_SHARED,
            "",
            "(call $set (local.get $i) (i32.const 1) (i32.const 65536) (i32.const 1048576) (i32.const 0))",
            24,
            17,
        );
        let (host, plugin, statuses) =
            run_repeated(&wat, Limits::default().shared_data_bytes(4 * MIB));
        assert_eq!(statuses, ok_then_refused(3, 24));
        assert!(host.shared_data("", b"c").is_some());
        assert!(host.shared_data("", b"d").is_none());
        cap_line(&plugin, "shared_data_bytes", 4 * MIB);
    }

    #[test]
    fn the_default_cap_refuses_a_shared_data_bomb() {
        // 24 values of 64 MiB once took the host to 1.5 GB.
        let wat = repeated(
            SET_SHARED,
            "",
            "(call $set (local.get $i) (i32.const 1) (i32.const 65536) (i32.const 67108864) (i32.const 0))",
            24,
            1026,
        );
        let (_host, plugin, statuses) = run_repeated(&wat, Limits::default());
        assert_eq!(statuses, ok_then_refused(0, 24));
        cap_line(&plugin, "shared_data_bytes", 64 * MIB);
    }

    #[test]
    fn queue_items_stop_at_their_cap() {
        let wat = repeated(
            r#"(import "env" "proxy_register_shared_queue" (func $register (param i32 i32 i32) (result i32)))
               (import "env" "proxy_enqueue_shared_queue" (func $enqueue (param i32 i32 i32) (result i32)))"#,
            "(drop (call $register (i32.const 0) (i32.const 1) (i32.const 700))) (global.set $token (i32.load (i32.const 700)))",
            "(call $enqueue (global.get $token) (i32.const 65536) (i32.const 1048576))",
            24,
            17,
        );
        let (host, plugin, statuses) = run_repeated(&wat, Limits::default().queue_bytes(4 * MIB));
        assert_eq!(statuses, ok_then_refused(3, 24));
        assert_eq!(host.queue_items("", "a").map(|items| items.len()), Some(3));
        cap_line(&plugin, "queue_bytes", 4 * MIB);
    }

    #[test]
    fn queues_stop_at_their_count() {
        let wat = repeated(
            r#"(import "env" "proxy_register_shared_queue" (func $register (param i32 i32 i32) (result i32)))"#,
            "",
            "(call $register (local.get $i) (i32.const 1) (i32.const 700))",
            10,
            2,
        );
        let (_host, plugin, statuses) = run_repeated(&wat, Limits::default().queues(3));
        assert_eq!(statuses, ok_then_refused(3, 10));
        cap_line(&plugin, "queues", 3);
    }

    #[test]
    fn logs_stop_at_their_cap() {
        let wat = repeated(
            "",
            "",
            "(call $report_log (i32.const 2) (i32.const 65536) (i32.const 1048576))",
            24,
            17,
        );
        let (_host, plugin, statuses) = run_repeated(&wat, Limits::default().log_bytes(4 * MIB));
        assert_eq!(statuses, ok_then_refused(4, 24));
        let kept: usize = plugin.logs().iter().map(|entry| entry.message.len()).sum();
        assert!(kept <= 4 * MIB + 1024, "{kept} bytes of logs kept");
        cap_line(&plugin, "log_bytes", 4 * MIB);
    }

    #[test]
    fn a_log_line_bigger_than_the_cap_is_refused_before_it_is_copied() {
        let wat = repeated(
            "",
            "",
            "(call $report_log (i32.const 2) (i32.const 65536) (i32.const 67108864))",
            24,
            1026,
        );
        let (_host, plugin, statuses) = run_repeated(&wat, Limits::default());
        assert_eq!(statuses, ok_then_refused(0, 24));
        cap_line(&plugin, "log_bytes", 16 * MIB);
    }

    #[test]
    fn stdout_writes_stop_at_the_log_and_capture_caps() {
        let wat = repeated(
            r#"(import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))"#,
            "(i32.store (i32.const 700) (i32.const 65536)) (i32.store (i32.const 704) (i32.const 1048576))",
            "(call $write (i32.const 1) (i32.const 700) (i32.const 1) (i32.const 708))",
            24,
            17,
        );
        let limits = Limits::default()
            .log_bytes(4 * MIB)
            .output_capture_bytes(2 * MIB);
        let (_host, plugin, statuses) = run_repeated(&wat, limits);
        assert_eq!(statuses, "A".repeat(24), "writes succeed, as in Envoy");
        let kept: usize = plugin.logs().iter().map(|entry| entry.message.len()).sum();
        assert!(kept <= 4 * MIB + 1024, "{kept} bytes of logs kept");
        assert_eq!(plugin.stdout().len(), 2 * MIB);
        cap_line(&plugin, "log_bytes", 4 * MIB);
        cap_line(&plugin, "output_capture_bytes", 2 * MIB);
    }

    const DEFINE: &str = r#"(import "env" "proxy_define_metric" (func $define (param i32 i32 i32 i32) (result i32)))"#;

    #[test]
    fn metrics_stop_at_their_count() {
        let wat = repeated(
            DEFINE,
            "",
            "(call $define (i32.const 0) (local.get $i) (i32.const 1) (i32.const 700))",
            10,
            2,
        );
        let (host, plugin, statuses) = run_repeated(&wat, Limits::default().metrics(3));
        assert_eq!(statuses, ok_then_refused(3, 10));
        assert_eq!(host.metrics().len(), 3);
        cap_line(&plugin, "metrics", 3);
    }

    #[test]
    fn redefining_one_metric_stops_at_the_count_too() {
        // Every define hands out a new id, which the host keeps.
        let wat = repeated(
            DEFINE,
            "",
            "(call $define (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 700))",
            10,
            2,
        );
        let (_host, plugin, statuses) = run_repeated(&wat, Limits::default().metrics(3));
        assert_eq!(statuses, ok_then_refused(3, 10));
        cap_line(&plugin, "metrics", 3);
    }

    #[test]
    fn a_metric_name_longer_than_the_cap_is_refused() {
        let wat = repeated(
            DEFINE,
            "",
            "(call $define (i32.const 0) (i32.const 65536) (i32.add (i32.const 1024) (local.get $i)) (i32.const 700))",
            2,
            2,
        );
        let (_host, plugin, statuses) = run_repeated(&wat, Limits::default());
        assert_eq!(statuses, "AK", "1,024 bytes is the longest name");
        cap_line(&plugin, "metric_name_bytes", 1024);
    }

    #[test]
    fn histogram_values_stop_at_their_cap() {
        let wat = repeated(
            &format!(
                r#"{DEFINE} (import "env" "proxy_record_metric" (func $record (param i32 i64) (result i32)))"#
            ),
            "(drop (call $define (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 700))) (global.set $token (i32.load (i32.const 700)))",
            "(call $record (global.get $token) (i64.const 7))",
            10,
            2,
        );
        let (host, plugin, statuses) = run_repeated(&wat, Limits::default().histogram_values(5));
        assert_eq!(statuses, ok_then_refused(5, 10));
        assert_eq!(
            host.metric("a"),
            Some(test_host::MetricValue::Histogram(vec![7; 5]))
        );
        cap_line(&plugin, "histogram_values", 5);
    }

    fn http_call(body_len: usize) -> String {
        format!(
            "(call $http (i32.const 0) (i32.const 1) (i32.const 256) (i32.const {}) (i32.const 65536) (i32.const {body_len}) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 700))",
            callout_headers().len()
        )
    }

    const HTTP: &str = r#"(import "env" "proxy_http_call" (func $http (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))"#;

    #[test]
    fn pending_callouts_stop_at_their_count() {
        let wat = repeated(HTTP, "", &http_call(0), 10, 2);
        let (_host, plugin, statuses) = run_repeated(&wat, Limits::default().pending_callouts(3));
        assert_eq!(statuses, ok_then_refused(3, 10));
        assert_eq!(plugin.http_calls().len(), 3);
        cap_line(&plugin, "pending_callouts", 3);
    }

    #[test]
    fn pending_callout_bytes_stop_at_their_cap() {
        let wat = repeated(HTTP, "", &http_call(MIB), 10, 17);
        let (_host, plugin, statuses) =
            run_repeated(&wat, Limits::default().callout_bytes(4 * MIB));
        assert_eq!(statuses, ok_then_refused(3, 10));
        cap_line(&plugin, "callout_bytes", 4 * MIB);
    }

    #[test]
    fn grpc_stream_messages_count_toward_the_callout_bytes() {
        let wat = repeated(
            r#"(import "env" "proxy_grpc_stream" (func $stream (param i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
               (import "env" "proxy_grpc_send" (func $send (param i32 i32 i32 i32) (result i32)))"#,
            "(drop (call $stream (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 0) (i32.const 700))) (global.set $token (i32.load (i32.const 700)))",
            "(call $send (global.get $token) (i32.const 65536) (i32.const 1048576) (i32.const 0))",
            10,
            17,
        );
        let (_host, plugin, statuses) =
            run_repeated(&wat, Limits::default().callout_bytes(4 * MIB));
        assert_eq!(statuses, ok_then_refused(3, 10));
        cap_line(&plugin, "callout_bytes", 4 * MIB);
    }
}

mod blocking_wasi {
    use super::*;

    /// A module whose `proxy_on_configure` calls `poll_oneoff` with one clock subscription (at 128)
    /// of an hour (`flags` 1: an absolute time on the monotonic clock), and accepts only Envoy's answer:
    /// success at once with no events.
    fn sleeper(flags: u32) -> String {
        module(
            r#"(import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))"#,
            &format!(
                r#"(func (export "proxy_on_configure") (param i32 i32) (result i32)
                    (i32.store8 (i32.const 136) (i32.const 0))
                    (i32.store (i32.const 144) (i32.const 1))
                    (i64.store (i32.const 152) (i64.const 3600000000000))
                    (i64.store (i32.const 160) (i64.const 0))
                    (i32.store16 (i32.const 168) (i32.const {flags}))
                    (i32.store (i32.const 320) (i32.const 99))
                    (i32.and
                        (i32.eqz (call $poll (i32.const 128) (i32.const 256) (i32.const 1) (i32.const 320)))
                        (i32.eqz (i32.load (i32.const 320)))))"#
            ),
        )
    }

    #[test]
    fn a_module_that_sleeps_an_hour_gets_no_events_at_once() {
        for flags in [0, 1] {
            let started = Instant::now();
            let plugin = TestHost::new()
                .plugin_from_bytes(sleeper(flags))
                .config_bytes("{}")
                .start();
            assert!(plugin.is_ok(), "flags {flags}: {:?}", plugin.err());
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "took {:?}",
                started.elapsed()
            );
        }
    }

    #[test]
    fn a_sleep_does_not_move_the_clock() {
        let host = TestHost::new();
        let before = host.now();
        host.plugin_from_bytes(sleeper(0)).start().unwrap();
        assert_eq!(host.now(), before);
    }

    #[test]
    fn other_wasi_calls_that_could_block_return_at_once() {
        // stdin, a read subscription on stdin, sockets, yield: none waits.
        let wat = module(
            r#"(import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
               (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
               (import "wasi_snapshot_preview1" "sock_accept" (func $accept (param i32 i32 i32) (result i32)))
               (import "wasi_snapshot_preview1" "sock_recv" (func $recv (param i32 i32 i32 i32 i32 i32) (result i32)))
               (import "wasi_snapshot_preview1" "sched_yield" (func $yield (result i32)))"#,
            r#"(func (export "proxy_on_configure") (param i32 i32) (result i32)
                (i32.store (i32.const 400) (i32.const 512))
                (i32.store (i32.const 404) (i32.const 64))
                (drop (call $read (i32.const 0) (i32.const 400) (i32.const 1) (i32.const 408)))
                (i32.store8 (i32.const 136) (i32.const 1))
                (i32.store (i32.const 144) (i32.const 0))
                (drop (call $poll (i32.const 128) (i32.const 256) (i32.const 1) (i32.const 320)))
                (drop (call $accept (i32.const 0) (i32.const 0) (i32.const 408)))
                (drop (call $recv (i32.const 0) (i32.const 400) (i32.const 1) (i32.const 0) (i32.const 408) (i32.const 412)))
                (drop (call $yield))
                (i32.const 1))"#,
        );
        let started = Instant::now();
        let plugin = TestHost::new()
            .plugin_from_bytes(wat)
            .call_timeout(Duration::from_secs(1))
            .start();
        assert!(plugin.is_ok(), "{:?}", plugin.err());
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "took {:?}",
            started.elapsed()
        );
    }
}

mod stack {
    use super::*;

    /// `proxy_on_configure` recurses without end; with `hostcall`, each level also writes to
    /// stdout, so hostcalls run below deep wasm frames.
    fn recursive(hostcall: bool) -> String {
        let body = if hostcall {
            "(drop (call $write (i32.const 1) (i32.const 400) (i32.const 1) (i32.const 408)))"
        } else {
            ""
        };
        module(
            r#"(import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))"#,
            &format!(
                r#"(func $deeper (param $n i32) (result i32)
                    {body}
                    (i32.add (call $deeper (i32.add (local.get $n) (i32.const 1))) (i32.const 1)))
                (func (export "proxy_on_configure") (param i32 i32) (result i32)
                    (i32.store (i32.const 400) (i32.const 420))
                    (i32.store (i32.const 404) (i32.const 0))
                    (call $deeper (i32.const 0)))"#
            ),
        )
    }

    fn expect_stack_overflow(result: Result<test_host::Plugin, Error>) {
        match result {
            Err(Error::Trap {
                callback, message, ..
            }) => {
                assert_eq!(callback, "proxy_on_configure");
                assert!(message.contains("call stack exhausted"), "{message}");
            }
            other => panic!("expected a stack-overflow trap, got {:?}", other.err()),
        }
    }

    #[test]
    fn deep_recursion_is_a_trap_on_a_test_thread() {
        for hostcall in [false, true] {
            expect_stack_overflow(start(&recursive(hostcall)));
        }
    }

    #[test]
    fn deep_recursion_from_small_stack_threads_is_a_trap_not_an_abort() {
        for stack in [64 << 10, 256 << 10, 1 << 20] {
            for hostcall in [false, true] {
                let wat = recursive(hostcall);
                let outcome = std::thread::Builder::new()
                    .stack_size(stack)
                    .spawn(move || match start(&wat) {
                        Err(Error::Trap { message, .. }) => message,
                        other => format!("no trap: {:?}", other.err()),
                    })
                    .unwrap()
                    .join()
                    .unwrap();
                assert!(
                    outcome.contains("call stack exhausted"),
                    "stack {stack}, hostcall {hostcall}: {outcome}"
                );
            }
        }
    }

    #[test]
    fn a_small_stack_thread_runs_a_real_filter_module() {
        let outcome = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(|| {
                let (_host, plugin) = common::start(serde_json::json!({}));
                let mut stream = plugin.http_stream().unwrap();
                stream.send_request_headers(common::GET, true).unwrap();
                stream.end().is_ok()
            })
            .unwrap()
            .join()
            .unwrap();
        assert!(outcome);
    }
}

mod durations {
    use super::*;

    #[test]
    fn the_longest_call_timeout_saturates() {
        let wat = module(
            "",
            r#"(func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))"#,
        );
        let plugin = TestHost::new()
            .plugin_from_bytes(wat)
            .call_timeout(Duration::MAX)
            .start();
        assert!(plugin.is_ok(), "{:?}", plugin.err());
    }

    #[test]
    fn the_longest_clock_moves_saturate() {
        let (host, plugin) = common::start(serde_json::json!({
            "proxy_on_configure": [{"op": "set_tick_period", "ms": 1000}],
            "proxy_on_tick": [{"op": "get_current_time"}]
        }));
        plugin.advance(Duration::from_secs(1)).unwrap();
        host.advance_clock(Duration::MAX);
        host.advance_clock(Duration::MAX);
        assert!(host.now() > std::time::SystemTime::now());
        plugin.tick().unwrap();
        let times = common::steps_in(&plugin, "proxy_on_tick");
        assert_eq!(times.last().unwrap()["result"], serde_json::json!(u64::MAX));
    }

    #[test]
    fn advancing_a_plugin_by_the_longest_duration_does_not_overflow() {
        let (_host, plugin) = common::start(serde_json::json!({}));
        plugin.advance(Duration::MAX).unwrap();
        plugin.advance(Duration::MAX).unwrap();
    }
}

mod stream_data_caps {
    use super::*;

    fn request(plugin: &test_host::Plugin) {
        let mut stream = plugin.http_stream().unwrap();
        stream.send_request_headers(common::GET, false).unwrap();
        stream.send_request_body(b"x", true).unwrap();
    }

    #[test]
    fn a_header_map_stops_at_its_cap() {
        let wat = repeated_in(
            REQUEST_HEADERS,
            r#"(import "env" "proxy_add_header_map_value" (func $add (param i32 i32 i32 i32 i32) (result i32)))"#,
            "",
            "(call $add (i32.const 0) (local.get $i) (i32.const 1) (i32.const 65536) (i32.const 1048576))",
            10,
            17,
        );
        let (_host, plugin, statuses) =
            run_repeated_with(&wat, Limits::default().stream_data_bytes(4 * MIB), request);
        assert_eq!(statuses, ok_then_refused(3, 10));
        cap_line(&plugin, "stream_data_bytes", 4 * MIB);
    }

    #[test]
    fn a_body_stops_at_its_cap() {
        let wat = repeated_in(
            REQUEST_BODY,
            r#"(import "env" "proxy_set_buffer_bytes" (func $set (param i32 i32 i32 i32 i32) (result i32)))"#,
            "",
            "(call $set (i32.const 0) (i32.const 0x7fffffff) (i32.const 0) (i32.const 65536) (i32.const 1048576))",
            10,
            17,
        );
        let (_host, plugin, statuses) =
            run_repeated_with(&wat, Limits::default().stream_data_bytes(4 * MIB), request);
        assert_eq!(
            statuses,
            ok_then_refused(3, 10),
            "the request's own byte counts"
        );
        cap_line(&plugin, "stream_data_bytes", 4 * MIB);
    }

    #[test]
    fn queued_stream_actions_stop_at_their_cap() {
        let wat = repeated_in(
            REQUEST_HEADERS,
            r#"(import "env" "proxy_continue_stream" (func $continue (param i32) (result i32)))"#,
            "",
            "(call $continue (i32.const 0))",
            10,
            2,
        );
        let (_host, plugin, statuses) =
            run_repeated_with(&wat, Limits::default().pending_stream_actions(5), request);
        assert_eq!(statuses, ok_then_refused(5, 10));
        cap_line(&plugin, "pending_stream_actions", 5);
    }

    #[test]
    fn stream_properties_stop_at_their_cap() {
        let wat = repeated_in(
            REQUEST_HEADERS,
            r#"(import "env" "proxy_set_property" (func $set (param i32 i32 i32 i32) (result i32)))"#,
            "",
            "(call $set (local.get $i) (i32.const 1) (i32.const 65536) (i32.const 1048576))",
            10,
            17,
        );
        let (_host, plugin, statuses) =
            run_repeated_with(&wat, Limits::default().stream_data_bytes(4 * MIB), request);
        assert_eq!(statuses, ok_then_refused(3, 10));
        cap_line(&plugin, "stream_data_bytes", 4 * MIB);
    }
}

mod rust_modules {
    use super::*;

    #[test]
    fn a_rust_sleep_of_an_hour_returns_at_once() {
        let started = Instant::now();
        let (host, plugin) =
            common::start(serde_json::json!({"proxy_on_tick": [{"op": "sleep", "ms": 3_600_000}]}));
        let before = host.now();
        plugin.tick().unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "took {:?}",
            started.elapsed()
        );
        assert_eq!(host.now(), before, "a sleep does not move the clock");
    }

    #[test]
    fn a_rust_recursion_from_a_small_stack_thread_is_a_trap() {
        let outcome = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(|| {
                let (_host, plugin) = common::start(serde_json::json!({
                    "proxy_on_tick": [{"op": "recurse", "depth": 10_000_000u64}]
                }));
                match plugin.tick() {
                    Err(Error::Trap { message, .. }) => message,
                    other => format!("no trap: {other:?}"),
                }
            })
            .unwrap()
            .join()
            .unwrap();
        assert!(outcome.contains("call stack exhausted"), "{outcome}");
    }

    #[test]
    fn a_shallow_rust_recursion_from_a_small_stack_thread_succeeds() {
        let statuses = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(|| {
                let (_host, plugin) = common::start(serde_json::json!({
                    "proxy_on_tick": [{"op": "recurse", "depth": 1000}]
                }));
                plugin.tick().unwrap();
                common::statuses(&plugin, "proxy_on_tick")
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(statuses, [0]);
    }
}
