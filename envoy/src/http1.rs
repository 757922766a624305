//! Just enough HTTP/1.1 for a loopback echo server and test client: heads parsed by `httparse`,
//! bodies by Content-Length or chunked encoding. Header values stay raw bytes.

use std::io::{self, BufRead, BufReader, Read, Write};

/// Largest request or response head accepted.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Largest body accepted.
const MAX_BODY_BYTES: usize = 16 << 20;

/// Headers in order: names as sent, values as raw bytes.
pub type Headers = Vec<(String, Vec<u8>)>;

/// A parsed message head: the start line's parts and the headers.
#[derive(Debug, Clone, Default)]
pub struct Head {
    /// Request method, or empty for a response.
    pub method: String,
    /// Request target, or empty for a response.
    pub path: String,
    /// Response status, or 0 for a request.
    pub status: u16,
    /// Headers in order, names as sent.
    pub headers: Headers,
}

impl Head {
    /// The first value of `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_slice())
    }
}

fn invalid(reason: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, reason.into())
}

/// Reads bytes up to and including the blank line that ends a head. `Ok(None)` on a clean EOF.
fn read_head_bytes(reader: &mut impl BufRead) -> io::Result<Option<Vec<u8>>> {
    let mut head = Vec::new();
    loop {
        let before = head.len();
        let read = reader.read_until(b'\n', &mut head)?;
        if read == 0 {
            return if head.is_empty() {
                Ok(None)
            } else {
                Err(invalid("connection closed inside a message head"))
            };
        }
        if head.len() > MAX_HEAD_BYTES {
            return Err(invalid("message head too large"));
        }
        let line = &head[before..];
        if line == b"\r\n" || line == b"\n" {
            return Ok(Some(head));
        }
    }
}

fn collect_headers(headers: &[httparse::Header<'_>]) -> Headers {
    headers
        .iter()
        .map(|header| (header.name.to_string(), header.value.to_vec()))
        .collect()
}

/// Reads one request head; `Ok(None)` when the peer closed the connection between requests.
pub fn read_request_head(reader: &mut impl BufRead) -> io::Result<Option<Head>> {
    let Some(bytes) = read_head_bytes(reader)? else {
        return Ok(None);
    };
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(&bytes).map_err(|e| invalid(e.to_string()))? {
        httparse::Status::Complete(_) => Ok(Some(Head {
            method: request.method.unwrap_or_default().to_string(),
            path: request.path.unwrap_or_default().to_string(),
            status: 0,
            headers: collect_headers(request.headers),
        })),
        httparse::Status::Partial => Err(invalid("incomplete request head")),
    }
}

/// Reads one response head.
pub fn read_response_head(reader: &mut impl BufRead) -> io::Result<Head> {
    let bytes =
        read_head_bytes(reader)?.ok_or_else(|| invalid("connection closed before a response"))?;
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(&bytes).map_err(|e| invalid(e.to_string()))? {
        httparse::Status::Complete(_) => Ok(Head {
            status: response.code.unwrap_or_default(),
            headers: collect_headers(response.headers),
            ..Head::default()
        }),
        httparse::Status::Partial => Err(invalid("incomplete response head")),
    }
}

/// Reads the body that follows `head`: chunked, by Content-Length, or (for a response with
/// neither) until the connection closes.
pub fn read_body(reader: &mut impl BufRead, head: &Head, is_response: bool) -> io::Result<Vec<u8>> {
    let chunked = head
        .header("transfer-encoding")
        .is_some_and(|value| value.eq_ignore_ascii_case(b"chunked"));
    if chunked {
        return read_chunked(reader);
    }
    if let Some(length) = head.header("content-length") {
        let length: usize = std::str::from_utf8(length)
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .filter(|&length| length <= MAX_BODY_BYTES)
            .ok_or_else(|| invalid("bad content-length"))?;
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        return Ok(body);
    }
    let mut body = Vec::new();
    if is_response && !matches!(head.status, 100..=199 | 204 | 304) {
        reader.take(MAX_BODY_BYTES as u64).read_to_end(&mut body)?;
    }
    Ok(body)
}

fn read_chunked(reader: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let size_text = line.trim().split(';').next().unwrap_or_default();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| invalid("bad chunk size"))?;
        if body.len() + size > MAX_BODY_BYTES {
            return Err(invalid("body too large"));
        }
        if size == 0 {
            // Trailers, if any, end with a blank line.
            while read_head_line(reader)? > 2 {}
            return Ok(body);
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        read_head_line(reader)?;
    }
}

fn read_head_line(reader: &mut impl BufRead) -> io::Result<usize> {
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line)
}

/// Writes a message head and body with a Content-Length.
pub fn write_message(
    writer: &mut impl Write,
    start_line: &str,
    headers: &[(String, Vec<u8>)],
    body: &[u8],
) -> io::Result<()> {
    let mut out = Vec::with_capacity(256 + body.len());
    out.extend_from_slice(start_line.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(body);
    writer.write_all(&out)?;
    writer.flush()
}

/// A buffered reader over a stream, as the readers above expect.
pub fn reader<R: Read>(inner: R) -> BufReader<R> {
    BufReader::new(inner)
}
