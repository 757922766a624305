//! json-redact in real Envoy: real request and response bodies through the filter, to the echo
//! upstream and back, including a body of a few MB sent in many chunks.
//!
//! One Envoy, three listeners: `wasm` (json-redact, an 8 MiB limit), `small` (json-redact, a
//! 1 KiB limit) and `plain` (no filter). There is no native twin; for every case the filter must
//! leave alone (gzip, HEAD, 204, 304), the `plain` listener is the reference: status, body and
//! framing headers must match. Requests go out concurrently; every failure is listed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use envoy_harness::config::{filter_wasm, wasm_filter, BootstrapBuilder};
use envoy_harness::http1;
use envoy_harness::{CannedReply, EchoUpstream, Envoy, Request, Response};
use serde_json::{json, Value};
use std::io::{self, BufWriter, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const RULES: &str = r#"[{"direction": "both", "redact": ["/user/ssn", "/cards/*/number"]}]"#;
/// Cards in the big documents: about 3 MB.
const BIG_CARDS: usize = 30_000;
/// Chunk size of the big chunked request.
const CHUNK: usize = 16 * 1024;

/// `{"user": {"ssn": ...}, "cards": [{"number": ..., "pad": ...}, ...]}` with `cards` cards; the
/// numbers are `number(i)` or, redacted, the mask.
fn document(cards: usize, redacted: bool) -> String {
    let mut text = String::with_capacity(cards * 100 + 64);
    let ssn = if redacted {
        "\"***\""
    } else {
        "\"123-45-6789\""
    };
    text.push_str(&format!(
        "{{\"user\": {{\"name\": \"Ann\", \"ssn\": {ssn}}}, \"cards\": ["
    ));
    for i in 0..cards {
        if i > 0 {
            text.push_str(", ");
        }
        let number = if redacted {
            "\"***\"".to_string()
        } else {
            format!("\"4111-{i:08}\"")
        };
        text.push_str(&format!(
            "{{\"number\": {number}, \"pad\": \"card {i} of {cards}, \\u00e9 {}\"}}",
            "x".repeat(40)
        ));
    }
    text.push_str("], \"total\": 1.50}");
    text
}

fn canned(status: u16, headers: &[(&str, &[u8])], body: &[u8]) -> EchoUpstream {
    let upstream = EchoUpstream::start().unwrap();
    upstream.reply_always(CannedReply {
        status,
        headers: headers
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_vec()))
            .collect(),
        body: body.to_vec(),
    });
    upstream
}

/// A POST of `body` sent with `transfer-encoding: chunked` in chunks of `chunk` bytes, flushed
/// one by one.
fn post_chunked(
    port: u16,
    path: &str,
    content_type: &str,
    body: &[u8],
    chunk: usize,
) -> io::Result<Response> {
    let stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut writer = BufWriter::new(stream.try_clone()?);
    write!(
        writer,
        "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: {content_type}\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    )?;
    writer.flush()?;
    for piece in body.chunks(chunk) {
        write!(writer, "{:x}\r\n", piece.len())?;
        writer.write_all(piece)?;
        writer.write_all(b"\r\n")?;
        writer.flush()?;
    }
    writer.write_all(b"0\r\n\r\n")?;
    writer.flush()?;
    let mut reader = http1::reader(&stream);
    let head = http1::read_response_head(&mut reader)?;
    let body = http1::read_body(&mut reader, &head, true)?;
    Ok(Response {
        status: head.status,
        headers: head
            .headers
            .into_iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value))
            .collect(),
        body,
    })
}

fn post(path: &str, content_type: &str, body: &[u8]) -> Request {
    let mut request = Request::get(path).header("content-type", content_type);
    request.method = "POST".into();
    request.body = body.to_vec();
    request
}

fn head(path: &str) -> Request {
    let mut request = Request::get(path);
    request.method = "HEAD".into();
    request
}

/// The framing is consistent: a content-length names the body's length, or the body came
/// chunked; never both.
fn framing(response: &Response) -> Result<(), String> {
    let length = response.header("content-length");
    let chunked = response
        .header("transfer-encoding")
        .is_some_and(|te| te.eq_ignore_ascii_case("chunked"));
    match (length, chunked) {
        (Some(_), true) => Err("both content-length and chunked".into()),
        (Some(length), false) if length != response.body.len().to_string() => Err(format!(
            "content-length {length} for a body of {}",
            response.body.len()
        )),
        _ => Ok(()),
    }
}

/// A body json-redact rewrote reaches the client chunked: the upstream's content-length is gone.
fn rechunked(response: &Response) -> Result<(), String> {
    framing(response)?;
    check(
        response.header("content-length").is_none()
            && response.header("transfer-encoding").as_deref() == Some("chunked"),
        || format!("not re-framed: {:?}", response.headers),
    )
}

/// What the echo upstream received, from its reply: (headers, body).
fn echoed(response: &Response) -> Result<(Vec<(String, String)>, String), String> {
    let document = response.json();
    let body = document["body"].as_str().ok_or_else(|| {
        format!(
            "not an echo: {} {}",
            response.status,
            String::from_utf8_lossy(&response.body[..response.body.len().min(300)])
        )
    })?;
    Ok((response.upstream_headers(), body.to_string()))
}

/// The request framing the upstream saw is consistent with the body it got, and chunked when
/// `rewritten` (json-redact dropped the content-length).
fn upstream_framing(
    headers: &[(String, String)],
    body: &str,
    rewritten: bool,
) -> Result<(), String> {
    let length = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .map(|(_, v)| v.clone());
    let chunked = headers
        .iter()
        .any(|(name, value)| name == "transfer-encoding" && value == "chunked");
    match (length, chunked) {
        (None, true) => Ok(()),
        (Some(length), false) if !rewritten && length == body.len().to_string() => Ok(()),
        other => Err(format!(
            "upstream framing {other:?} for a body of {}",
            body.len()
        )),
    }
}

fn check(condition: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if condition {
        Ok(())
    } else {
        Err(what())
    }
}

fn short(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    if text.len() > 200 {
        format!(
            "{}... ({} bytes)",
            &text[..text.char_indices().nth(200).map_or(text.len(), |(i, _)| i)],
            bytes.len()
        )
    } else {
        text.into_owned()
    }
}

/// Status, body and the framing-relevant headers the client got, for comparing with `plain`.
fn shape(response: &Response) -> String {
    let headers: Vec<String> = [
        "content-length",
        "transfer-encoding",
        "content-encoding",
        "content-type",
        "etag",
    ]
    .iter()
    .filter_map(|name| {
        response
            .header(name)
            .map(|value| format!("{name}: {value}"))
    })
    .collect();
    format!("{} {headers:?} {}", response.status, short(&response.body))
}

#[test]
fn json_redact_rewrites_real_bodies_in_envoy() {
    let started = Instant::now();
    let small_doc = document(2, false);
    let small_redacted = document(2, true);
    let big_doc = document(BIG_CARDS, false);
    let big_redacted = document(BIG_CARDS, true);
    assert!(big_doc.len() > 3_000_000, "{}", big_doc.len());

    let echo = EchoUpstream::start().unwrap();
    let json_type: &[u8] = b"application/json";
    let json_up = canned(200, &[("content-type", json_type)], small_doc.as_bytes());
    let big_up = canned(200, &[("content-type", json_type)], big_doc.as_bytes());
    let gzip_body =
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xab\xae\x05\x00\x43\xbf\xa6\xa3\x02\x00\x00\x00";
    let gzip_up = canned(
        200,
        &[("content-type", json_type), ("content-encoding", b"gzip")],
        gzip_body,
    );
    let no_content_up = canned(204, &[("content-type", json_type)], b"");
    let not_modified_up = canned(
        304,
        &[("content-type", json_type), ("etag", b"\"v1\"")],
        b"",
    );

    let routes = json!([
        {"match": {"prefix": "/canned/json"}, "route": {"cluster": "json"}},
        {"match": {"prefix": "/canned/big"}, "route": {"cluster": "big"}},
        {"match": {"prefix": "/canned/gzip"}, "route": {"cluster": "gzip"}},
        {"match": {"prefix": "/canned/204"}, "route": {"cluster": "no_content"}},
        {"match": {"prefix": "/canned/304"}, "route": {"cluster": "not_modified"}},
        {"match": {"prefix": "/"}, "route": {"cluster": "upstream", "timeout": "20s"}}
    ]);
    let rules: Value = serde_json::from_str(RULES).unwrap();
    let wasm = filter_wasm("json_redact");
    let filter = |name: &str, config: Value| vec![wasm_filter(name, &wasm, &config)];
    let mut bootstrap = BootstrapBuilder::new(echo.port())
        .cluster("json", json_up.port())
        .cluster("big", big_up.port())
        .cluster("gzip", gzip_up.port())
        .cluster("no_content", no_content_up.port())
        .cluster("not_modified", not_modified_up.port())
        .listener_with_routes(
            "wasm",
            filter(
                "json_redact",
                json!({"rules": rules, "max_body_bytes": 8 << 20}),
            ),
            routes.clone(),
        )
        .listener_with_routes(
            "small",
            filter(
                "json_redact_small",
                json!({"rules": rules, "max_body_bytes": 1024, "stat_prefix": "small"}),
            ),
            routes.clone(),
        )
        .listener_with_routes("plain", vec![], routes)
        .build();
    // Envoy's own buffer limit (1 MiB by default) must stay above max_body_bytes.
    for kind in ["listeners", "clusters"] {
        for entry in bootstrap["static_resources"][kind].as_array_mut().unwrap() {
            entry["per_connection_buffer_limit_bytes"] = json!(16 << 20);
        }
    }
    let envoy = Envoy::start(bootstrap).unwrap();
    let port = |name: &str| envoy.listener_port(name).unwrap();
    let (wasm_port, small_port, plain_port) = (port("wasm"), port("small"), port("plain"));

    type Case<'a> = (
        &'static str,
        Box<dyn Fn() -> Result<(), String> + Send + Sync + 'a>,
    );
    let cases: Vec<Case> = vec![
        (
            "a small request body with content-length is redacted before the upstream",
            Box::new(|| {
                let response = post("/echo/small", "application/json", small_doc.as_bytes())
                    .send(wasm_port)
                    .map_err(|e| e.to_string())?;
                check(response.status == 200, || {
                    format!("status {}", response.status)
                })?;
                let (headers, body) = echoed(&response)?;
                check(body == small_redacted, || {
                    format!("upstream got {}", short(body.as_bytes()))
                })?;
                upstream_framing(&headers, &body, true)?;
                framing(&response)
            }),
        ),
        (
            "a body of a few MB in many chunks is redacted before the upstream",
            Box::new(|| {
                let response = post_chunked(
                    wasm_port,
                    "/echo/big",
                    "application/json",
                    big_doc.as_bytes(),
                    CHUNK,
                )
                .map_err(|e| e.to_string())?;
                check(response.status == 200, || {
                    format!("status {} {}", response.status, short(&response.body))
                })?;
                let (headers, body) = echoed(&response)?;
                check(body == big_redacted, || {
                    format!("upstream got {}", short(body.as_bytes()))
                })?;
                upstream_framing(&headers, &body, true)?;
                framing(&response)
            }),
        ),
        (
            "a JSON response is redacted before the client, re-framed",
            Box::new(|| {
                let response = Request::get("/canned/json")
                    .send(wasm_port)
                    .map_err(|e| e.to_string())?;
                check(response.status == 200, || {
                    format!("status {}", response.status)
                })?;
                check(response.body == small_redacted.as_bytes(), || {
                    format!("client got {}", short(&response.body))
                })?;
                rechunked(&response)
            }),
        ),
        (
            "a response of a few MB is redacted before the client",
            Box::new(|| {
                let response = Request::get("/canned/big")
                    .send(wasm_port)
                    .map_err(|e| e.to_string())?;
                check(response.status == 200, || {
                    format!("status {}", response.status)
                })?;
                check(response.body == big_redacted.as_bytes(), || {
                    format!("client got {}", short(&response.body))
                })?;
                rechunked(&response)
            }),
        ),
        (
            "non-JSON and invalid JSON request bodies reach the upstream untouched",
            Box::new(|| {
                for (content_type, body) in [
                    ("text/plain", small_doc.as_str()),
                    ("application/json", "{\"user\": {\"ssn\": 1}"),
                ] {
                    let response = post("/echo/text", content_type, body.as_bytes())
                        .send(wasm_port)
                        .map_err(|e| e.to_string())?;
                    let (headers, got) = echoed(&response)?;
                    check(got == body, || {
                        format!("{content_type}: upstream got {}", short(got.as_bytes()))
                    })?;
                    upstream_framing(&headers, &got, false)?;
                }
                Ok(())
            }),
        ),
        (
            "gzip, HEAD, 204 and 304 responses are exactly what no filter gives",
            Box::new(|| {
                for request in [
                    Request::get("/canned/gzip"),
                    head("/canned/json"),
                    Request::get("/canned/204"),
                    Request::get("/canned/304"),
                ] {
                    let with = request.send(wasm_port).map_err(|e| e.to_string())?;
                    let without = request.send(plain_port).map_err(|e| e.to_string())?;
                    check(shape(&with) == shape(&without), || {
                        format!(
                            "{} {}: wasm {} / plain {}",
                            request.method,
                            request.path,
                            shape(&with),
                            shape(&without)
                        )
                    })?;
                }
                Ok(())
            }),
        ),
        (
            "an over-limit request gets a JSON 413, declared or chunked",
            Box::new(|| {
                let body = document(40, false);
                let declared = post("/echo/over", "application/json", body.as_bytes())
                    .send(small_port)
                    .map_err(|e| e.to_string())?;
                let chunked = post_chunked(
                    small_port,
                    "/echo/over",
                    "application/json",
                    body.as_bytes(),
                    100,
                )
                .map_err(|e| e.to_string())?;
                for response in [declared, chunked] {
                    check(response.status == 413, || {
                        format!("status {} {}", response.status, short(&response.body))
                    })?;
                    check(response.json()["error"] == "request_body_too_large", || {
                        short(&response.body)
                    })?;
                    check(
                        response.header("content-type").as_deref() == Some("application/json"),
                        || format!("{:?}", response.headers),
                    )?;
                    framing(&response)?;
                }
                Ok(())
            }),
        ),
        (
            "an over-limit response passes unmodified",
            Box::new(|| {
                let response = Request::get("/canned/big")
                    .send(small_port)
                    .map_err(|e| e.to_string())?;
                check(response.status == 200, || {
                    format!("status {}", response.status)
                })?;
                check(response.body == big_doc.as_bytes(), || {
                    format!("client got {}", short(&response.body))
                })?;
                framing(&response)
            }),
        ),
    ];

    let failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = cases
            .iter()
            .map(|(name, case)| (name, scope.spawn(case)))
            .collect();
        handles
            .into_iter()
            .filter_map(|(name, handle)| match handle.join() {
                Ok(Ok(())) => None,
                Ok(Err(why)) => Some(format!("{name}: {why}")),
                Err(_) => Some(format!("{name}: panicked")),
            })
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}\n--- envoy log ---\n{}",
        failures.len(),
        failures.join("\n"),
        envoy.logs()
    );

    // The over-limit request never reached the upstream.
    assert!(echo
        .received()
        .iter()
        .all(|request| request.path != "/echo/over"));
    let stat = |name: &str| envoy.stat(&format!("wasmcustom.{name}")).unwrap_or(0);
    assert_eq!(stat("json_redact.redacted"), 4);
    assert_eq!(stat("json_redact.passed_non_json"), 1);
    assert_eq!(stat("json_redact.invalid_json"), 1);
    assert_eq!(stat("json_redact.encoded_passthrough"), 1);
    assert_eq!(stat("small.request_too_large"), 2);
    assert_eq!(stat("small.response_too_large"), 1);
    assert!(
        envoy.logs().contains("passed unredacted"),
        "the log line for the over-limit response"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}
