//! Generated lifecycles: random headers (non-UTF-8, empty, huge and repeated), bodies in random
//! chunks, trailers, callout answers, failures and timeouts, and clients that go away at any
//! point, played on a filter's real module. A filter must never trap on any of them.
//!
//! A case is a list of [`Op`]s made from a seed, so a failure can be saved as JSON and replayed
//! as it was, whatever the generator becomes later.

use serde::{Deserialize, Serialize};
use std::time::Duration;
use test_host::{Error, HttpResponse, HttpStream, Plugin, TestHost};

/// gRPC's `UNAVAILABLE`, as Envoy closes a call whose connection reset.
const GRPC_UNAVAILABLE: u32 = 14;

/// splitmix64: small, seedable, and the same everywhere.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound.max(1) as u64) as usize
    }

    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }

    /// Up to `most - 1` random bytes.
    fn some_bytes(&mut self, most: usize) -> Vec<u8> {
        let len = self.below(most);
        self.bytes(len)
    }
}

/// Bytes as hex in the saved JSON, so that any byte round-trips.
mod hex {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        let text: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
        serializer.serialize_str(&text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        (0..text.len() / 2)
            .map(|at| u8::from_str_radix(&text[2 * at..2 * at + 2], 16))
            .collect::<Result<_, _>>()
            .map_err(serde::de::Error::custom)
    }
}

/// A header or trailer entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    #[serde(with = "hex")]
    pub name: Vec<u8>,
    #[serde(with = "hex")]
    pub value: Vec<u8>,
}

/// One step of a lifecycle.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    RequestHeaders {
        headers: Vec<Entry>,
        end: bool,
    },
    RequestBody {
        #[serde(with = "hex")]
        chunk: Vec<u8>,
        end: bool,
    },
    RequestTrailers {
        trailers: Vec<Entry>,
    },
    ResponseHeaders {
        headers: Vec<Entry>,
        end: bool,
    },
    ResponseBody {
        #[serde(with = "hex")]
        chunk: Vec<u8>,
        end: bool,
    },
    ResponseTrailers {
        trailers: Vec<Entry>,
    },
    /// Answers every pending callout.
    AnswerCalls {
        status: u16,
        headers: Vec<Entry>,
        #[serde(with = "hex")]
        body: Vec<u8>,
    },
    /// Every pending callout fails (a reset).
    FailCalls,
    /// The clock moves on: ticks fire and callouts time out.
    Advance {
        millis: u64,
    },
    /// The stream ends here; a client that goes away before the response.
    End,
}

/// A saved case: the module, its configuration and the lifecycle.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Case {
    pub module: String,
    pub config: serde_json::Value,
    pub ops: Vec<Op>,
}

const NAMES: &[&str] = &[
    "authorization",
    "cookie",
    "origin",
    "access-control-request-method",
    "access-control-request-headers",
    "x-forwarded-for",
    "content-type",
    "content-length",
    "content-encoding",
    "transfer-encoding",
    "x-user",
    "x-api-key",
    "host",
    "user-agent",
    "x-envoy-auth-partial-body",
    ":path",
    ":method",
    ":authority",
];

fn value(rng: &mut Rng) -> Vec<u8> {
    match rng.below(16) {
        0 => Vec::new(),
        1 => vec![b'a'; 1 + rng.below(64 * 1024)],
        2 => rng.some_bytes(64),
        3 => b"Bearer ".iter().copied().chain(token(rng)).collect(),
        4 => format!(
            "Basic {}",
            rng.pick(&["YWxpY2U6c2VjcmV0", "Og==", "!!!", "YWxpY2U="])
        )
        .into_bytes(),
        5 => rng
            .pick(&[
                "1.2.3.4",
                "::1",
                "10.0.0.1, 192.168.0.1",
                ",,,",
                "not-an-ip",
                "[::1]:80",
            ])
            .as_bytes()
            .to_vec(),
        6 => rng
            .pick(&[
                "application/json",
                "application/json; charset=utf-8",
                "text/plain",
                "*/*",
            ])
            .as_bytes()
            .to_vec(),
        7 => rng
            .pick(&[
                "gzip",
                "identity",
                "0",
                "-1",
                "99999999999999999999",
                "chunked",
            ])
            .as_bytes()
            .to_vec(),
        8 => rng
            .pick(&["https://app.example", "null", "http://evil.example", "*"])
            .as_bytes()
            .to_vec(),
        9 => rng
            .pick(&["GET", "POST", "OPTIONS", "HEAD", "DELETE", "GET /evil"])
            .as_bytes()
            .to_vec(),
        10 => rng
            .pick(&["/", "/api/items?a=1", "/%2e%2e/admin", "//", "*", "/a#b"])
            .as_bytes()
            .to_vec(),
        11 => "ünïcödé ✓".as_bytes().to_vec(),
        12 => b"session=abc; token=xyz; token=second".to_vec(),
        13 => json(rng, 0),
        _ => format!("{}", rng.next()).into_bytes(),
    }
}

/// A JWT-shaped string: sometimes a real token from the interop set, cut or flipped.
fn token(rng: &mut Rng) -> Vec<u8> {
    let mut token = match rng.below(3) {
        0 => rng.pick(&TOKENS.with(|t| t.clone())).clone().into_bytes(),
        1 => b"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.".to_vec(),
        _ => rng.some_bytes(200),
    };
    if !token.is_empty() && rng.chance(50) {
        let at = rng.below(token.len());
        token[at] ^= 1 << rng.below(8);
    }
    if rng.chance(20) {
        token.truncate(rng.below(token.len() + 1));
    }
    token
}

thread_local! {
    static TOKENS: Vec<String> = interop().1;
}

/// The JWKS and the tokens of the JWT differential's interop set.
pub fn interop() -> (serde_json::Value, Vec<String>) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../envoy/tests/data/jwt_differential/interop.json");
    let data: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let tokens = data["tokens"]
        .as_object()
        .unwrap()
        .values()
        .map(|token| token.as_str().unwrap().to_string())
        .collect();
    (data["jwks"].clone(), tokens)
}

/// A JSON document, sometimes broken.
fn json(rng: &mut Rng, depth: usize) -> Vec<u8> {
    let text = match rng.below(if depth > 3 { 4 } else { 8 }) {
        0 => "null".to_string(),
        1 => format!("{}", rng.next() as i64),
        2 => "\"s\\u00e9\"".to_string(),
        3 => "true".to_string(),
        4 | 5 => {
            let members: Vec<String> = (0..rng.below(4))
                .map(|_| {
                    let key = rng.pick(&["user", "ssn", "cards", "number", "a", "a", "~1"]);
                    let value = String::from_utf8_lossy(&json(rng, depth + 1)).into_owned();
                    format!("\"{key}\": {value}")
                })
                .collect();
            format!("{{{}}}", members.join(", "))
        }
        6 => {
            let items: Vec<String> = (0..rng.below(4))
                .map(|_| String::from_utf8_lossy(&json(rng, depth + 1)).into_owned())
                .collect();
            format!("[{}]", items.join(", "))
        }
        _ => rng.pick(&["{", "[1, 2", "{\"a\": }", "\u{0}"]).to_string(),
    };
    text.into_bytes()
}

fn entries(rng: &mut Rng, count: usize) -> Vec<Entry> {
    (0..count)
        .map(|_| {
            let name = if rng.chance(90) {
                rng.pick(NAMES).as_bytes().to_vec()
            } else {
                b"x-"
                    .iter()
                    .copied()
                    .chain(
                        rng.some_bytes(12)
                            .into_iter()
                            .map(|byte| b"abcdefghijklmnopqrstuvwxyz-_.~!"[byte as usize % 31]),
                    )
                    .collect()
            };
            Entry {
                name,
                value: value(rng),
            }
        })
        .collect()
}

/// A request the filter's own scenarios send, which the generator starts from half of the time,
/// so that lifecycles also get past the filter's checks.
#[derive(Debug, Clone)]
pub struct Known {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

fn request_headers(rng: &mut Rng, known: &[Known]) -> (Vec<Entry>, Option<Vec<u8>>) {
    if !known.is_empty() && rng.chance(50) {
        let request = rng.pick(known).clone();
        let mut headers = vec![
            Entry {
                name: b":method".to_vec(),
                value: request.method.into_bytes(),
            },
            Entry {
                name: b":path".to_vec(),
                value: request.path.into_bytes(),
            },
            Entry {
                name: b":authority".to_vec(),
                value: b"example.com".to_vec(),
            },
            Entry {
                name: b":scheme".to_vec(),
                value: b"http".to_vec(),
            },
        ];
        headers.extend(request.headers.into_iter().map(|(name, value)| Entry {
            name: name.into_bytes(),
            value: value.into_bytes(),
        }));
        // Now and then one more header, a repeat, or a value cut short.
        if rng.chance(30) {
            headers.extend(entries(rng, 1));
        }
        if rng.chance(20) {
            let entry = rng.pick(&headers).clone();
            headers.push(entry);
        }
        if rng.chance(20) {
            let at = 4 + rng.below(headers.len().saturating_sub(4).max(1));
            if let Some(entry) = headers.get_mut(at) {
                let keep = rng.below(entry.value.len() + 1);
                entry.value.truncate(keep);
            }
        }
        return (
            headers,
            Some(request.body.into_bytes()).filter(|b| !b.is_empty()),
        );
    }
    (random_request_headers(rng), None)
}

fn random_request_headers(rng: &mut Rng) -> Vec<Entry> {
    let method = *rng.pick(&["GET", "POST", "OPTIONS", "HEAD", "PUT"]);
    let path = *rng.pick(&["/", "/api", "/api/items", "/admin", "/public/x", "/%61pi"]);
    let mut headers = vec![
        Entry {
            name: b":method".to_vec(),
            value: method.as_bytes().to_vec(),
        },
        Entry {
            name: b":path".to_vec(),
            value: path.as_bytes().to_vec(),
        },
        Entry {
            name: b":authority".to_vec(),
            value: b"example.com".to_vec(),
        },
        Entry {
            name: b":scheme".to_vec(),
            value: b"http".to_vec(),
        },
    ];
    let extra = rng.below(8);
    headers.extend(entries(rng, extra));
    headers
}

fn body_chunks(rng: &mut Rng) -> Vec<Vec<u8>> {
    let body = match rng.below(4) {
        0 => Vec::new(),
        1 => json(rng, 0),
        2 => rng.some_bytes(4096),
        _ => {
            let mut big = b"{\"items\": [".to_vec();
            for index in 0..rng.below(2000) {
                if index > 0 {
                    big.push(b',');
                }
                big.extend_from_slice(b"{\"ssn\": \"123-45-6789\", \"n\": 1}");
            }
            big.extend_from_slice(b"]}");
            big
        }
    };
    split(rng, &body)
}

/// Callout answers, failures or time at a pause.
fn callout_step(rng: &mut Rng, ops: &mut Vec<Op>) {
    match rng.below(5) {
        0 => ops.push(Op::FailCalls),
        1 => ops.push(Op::Advance {
            millis: [1, 100, 1_000, 10_000, 400_000][rng.below(5)],
        }),
        _ => {
            let status = *rng.pick(&[200, 200, 204, 301, 401, 403, 500, 503, 999, 0]);
            let body = if rng.chance(50) {
                let (jwks, _) = interop();
                jwks.to_string().into_bytes()
            } else {
                value(rng)
            };
            let count = rng.below(4);
            let headers = entries(rng, count);
            ops.push(Op::AnswerCalls {
                status,
                headers,
                body,
            });
        }
    }
}

fn trailers(rng: &mut Rng) -> Vec<Entry> {
    let count = 1 + rng.below(3);
    entries(rng, count)
}

/// `body` cut into 1 to 6 chunks at random places.
fn split(rng: &mut Rng, body: &[u8]) -> Vec<Vec<u8>> {
    let pieces = 1 + rng.below(6);
    let mut chunks = Vec::new();
    let mut rest = body;
    for left in (1..=pieces).rev() {
        let take = if left == 1 {
            rest.len()
        } else {
            rng.below(rest.len() + 1)
        };
        let (chunk, tail) = rest.split_at(take);
        chunks.push(chunk.to_vec());
        rest = tail;
    }
    chunks
}

/// A whole lifecycle, starting half of the time from one of the `known` requests.
pub fn lifecycle(rng: &mut Rng, known: &[Known]) -> Vec<Op> {
    let mut ops = Vec::new();
    let (headers, known_body) = request_headers(rng, known);
    let chunks = match known_body {
        Some(body) => split(rng, &body),
        None if rng.chance(40) => Vec::new(),
        None => body_chunks(rng),
    };
    let request_trailers = rng.chance(15);
    ops.push(Op::RequestHeaders {
        headers,
        end: chunks.is_empty() && !request_trailers,
    });
    if rng.chance(40) {
        callout_step(rng, &mut ops);
    }
    let count = chunks.len();
    for (index, chunk) in chunks.into_iter().enumerate() {
        ops.push(Op::RequestBody {
            chunk,
            end: index + 1 == count && !request_trailers,
        });
        if rng.chance(10) {
            callout_step(rng, &mut ops);
        }
        if rng.chance(3) {
            ops.push(Op::End);
            return ops;
        }
    }
    if request_trailers {
        ops.push(Op::RequestTrailers {
            trailers: trailers(rng),
        });
    }
    if rng.chance(50) {
        callout_step(rng, &mut ops);
    }
    if rng.chance(5) {
        ops.push(Op::End);
        return ops;
    }
    let status = *rng.pick(&["200", "204", "304", "404", "500", "999", "abc", ""]);
    let mut headers = vec![Entry {
        name: b":status".to_vec(),
        value: status.as_bytes().to_vec(),
    }];
    let extra = rng.below(5);
    headers.extend(entries(rng, extra));
    let chunks = if rng.chance(40) {
        Vec::new()
    } else {
        body_chunks(rng)
    };
    let response_trailers = rng.chance(15);
    ops.push(Op::ResponseHeaders {
        headers,
        end: chunks.is_empty() && !response_trailers,
    });
    let count = chunks.len();
    for (index, chunk) in chunks.into_iter().enumerate() {
        ops.push(Op::ResponseBody {
            chunk,
            end: index + 1 == count && !response_trailers,
        });
    }
    if response_trailers {
        ops.push(Op::ResponseTrailers {
            trailers: trailers(rng),
        });
    }
    ops.push(Op::End);
    ops
}

fn pairs(entries: &[Entry]) -> Vec<(Vec<u8>, Vec<u8>)> {
    entries
        .iter()
        .map(|entry| (entry.name.clone(), entry.value.clone()))
        .collect()
}

/// A trap or a failed VM; the test-host's refusals of a step Envoy would not take are fine.
fn fatal<T>(result: test_host::Result<T>) -> Result<(), String> {
    match result {
        Ok(_) | Err(Error::Usage(_)) => Ok(()),
        Err(error) => Err(error.to_string()),
    }
}

/// Starts `module` with `config` on a fresh host.
pub fn start(module: &std::path::Path, config: &serde_json::Value) -> Plugin {
    TestHost::new()
        .plugin(module)
        .config(config.clone())
        .start()
        .unwrap_or_else(|error| panic!("{}: {error}", module.display()))
}

/// What a played lifecycle came to, to show the generator reaches each path.
#[derive(Debug, Default, Clone, Copy)]
pub struct Seen {
    /// The filter answered the client itself.
    pub local_reply: bool,
    /// The request reached the upstream whole.
    pub upstream: bool,
    /// Callouts answered, failed or timed out.
    pub callouts: usize,
}

/// Plays `ops` on a new stream of `plugin`; `Err` says what trapped.
pub fn play(plugin: &Plugin, ops: &[Op]) -> Result<Seen, String> {
    let mut seen = Seen::default();
    let mut stream: HttpStream = plugin.http_stream().map_err(|e| e.to_string())?;
    for op in ops {
        if matches!(
            op,
            Op::AnswerCalls { .. } | Op::FailCalls | Op::Advance { .. }
        ) {
            seen.callouts += plugin.http_calls().len() + plugin.grpc_calls().len();
        }
        match op {
            Op::RequestHeaders { headers, end } => {
                fatal(stream.send_request_headers(&pairs(headers), *end))?
            }
            Op::RequestBody { chunk, end } => fatal(stream.send_request_body(chunk, *end))?,
            Op::RequestTrailers { trailers } => {
                fatal(stream.send_request_trailers(&pairs(trailers)))?
            }
            Op::ResponseHeaders { headers, end } => {
                fatal(stream.send_response_headers(&pairs(headers), *end))?
            }
            Op::ResponseBody { chunk, end } => fatal(stream.send_response_body(chunk, *end))?,
            Op::ResponseTrailers { trailers } => {
                fatal(stream.send_response_trailers(&pairs(trailers)))?
            }
            Op::AnswerCalls {
                status,
                headers,
                body,
            } => {
                for call in plugin.http_calls() {
                    let mut response = HttpResponse::new(*status).body(body.clone());
                    for entry in headers {
                        let name = String::from_utf8_lossy(&entry.name).into_owned();
                        response = response.header(&name, &entry.value);
                    }
                    fatal(plugin.respond_http_call(call.token, response))?;
                }
                // A gRPC call gets the body as its message: any bytes, as a hostile service.
                for call in plugin.grpc_calls() {
                    fatal(plugin.respond_grpc_call(call.token, body))?;
                }
            }
            Op::FailCalls => {
                for call in plugin.http_calls() {
                    fatal(plugin.fail_http_call(call.token))?;
                }
                for call in plugin.grpc_calls() {
                    fatal(plugin.close_grpc(call.token, GRPC_UNAVAILABLE, "reset"))?;
                }
            }
            Op::Advance { millis } => fatal(plugin.advance(Duration::from_millis(*millis)))?,
            Op::End => break,
        }
        if let Some(failure) = plugin.failure() {
            return Err(failure);
        }
    }
    seen.local_reply = stream.local_response().is_some();
    seen.upstream = stream.upstream_request().complete;
    fatal(stream.end())?;
    match plugin.failure() {
        Some(failure) => Err(failure),
        None => Ok(seen),
    }
}
