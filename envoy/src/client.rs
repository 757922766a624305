//! A blocking HTTP/1.1 test client for loopback requests, with raw-byte header values.

use crate::http1::{self, Headers};
use serde_json::Value;
use std::io::{self, BufWriter};
use std::net::TcpStream;
use std::time::Duration;

/// A response as the client saw it.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Response headers in order, names lower-cased.
    pub headers: Headers,
    /// Response body.
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of `name` as a string.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| String::from_utf8_lossy(value).into_owned())
    }

    /// Every value of `name`, as strings.
    pub fn header_all(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| String::from_utf8_lossy(value).into_owned())
            .collect()
    }

    /// The body parsed as JSON (`Value::Null` if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// For a response from the echo upstream: the request headers it received, in order.
    pub fn upstream_headers(&self) -> Vec<(String, String)> {
        self.json()["headers"]
            .as_array()
            .map(|headers| {
                headers
                    .iter()
                    .filter_map(|line| {
                        let (name, value) = line.as_str()?.split_once(": ")?;
                        Some((name.to_string(), value.to_string()))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// For a response from the echo upstream: every value of request header `name` it received.
    pub fn upstream_header_all(&self, name: &str) -> Vec<String> {
        let name = name.to_ascii_lowercase();
        self.upstream_headers()
            .into_iter()
            .filter(|(key, _)| *key == name)
            .map(|(_, value)| value)
            .collect()
    }

    /// For a response from the echo upstream: the first value of request header `name`.
    pub fn upstream_header(&self, name: &str) -> Option<String> {
        self.upstream_header_all(name).into_iter().next()
    }
}

/// A request to send.
#[derive(Debug, Clone)]
pub struct Request {
    /// Method, e.g. `GET`.
    pub method: String,
    /// Request target, e.g. `/api?x=1`.
    pub path: String,
    /// Headers in order; `host` is added when absent.
    pub headers: Headers,
    /// Body; sent with a Content-Length when non-empty.
    pub body: Vec<u8>,
}

impl Request {
    /// A GET of `path`.
    pub fn get(path: &str) -> Request {
        Request {
            method: "GET".into(),
            path: path.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Request {
        self.headers
            .push((name.to_string(), value.as_ref().to_vec()));
        self
    }

    /// Sends the request to 127.0.0.1:`port` on a new connection and reads the response.
    pub fn send(&self, port: u16) -> io::Result<Response> {
        self.send_on(TcpStream::connect(("127.0.0.1", port))?)
    }

    /// Sends the request on `stream`, a new connection (for example one bound to another source
    /// address first), and reads the response.
    pub fn send_on(&self, stream: TcpStream) -> io::Result<Response> {
        let port = stream.peer_addr()?.port();
        stream.set_read_timeout(Some(Duration::from_secs(20)))?;
        let mut headers = self.headers.clone();
        if !headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("host"))
        {
            headers.insert(0, ("host".into(), format!("127.0.0.1:{port}").into_bytes()));
        }
        headers.push(("connection".into(), b"close".to_vec()));
        let mut writer = BufWriter::new(stream.try_clone()?);
        let start_line = format!("{} {} HTTP/1.1", self.method, self.path);
        http1::write_message(&mut writer, &start_line, &headers, &self.body)?;
        let mut reader = http1::reader(&stream);
        let head = http1::read_response_head(&mut reader)?;
        let body = if self.method == "HEAD" {
            Vec::new()
        } else {
            http1::read_body(&mut reader, &head, true)?
        };
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
}
