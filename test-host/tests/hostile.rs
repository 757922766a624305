//! Hostile and broken modules: each gives a clear error within its limit, never a host panic or
//! hang. Modules are small WAT texts so the failure is exactly the one under test.

mod common;

use std::time::{Duration, Instant};
use test_host::{Error, TestHost};

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
