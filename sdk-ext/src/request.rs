//! The request's pseudo-headers, read during `on_request_headers` (Envoy drops the request
//! headers once that callback lets them through).

use crate::headers::REQUEST_HEADERS;
use crate::host::Status;

/// `:path`, including the query string.
pub fn path() -> Result<Option<Vec<u8>>, Status> {
    REQUEST_HEADERS.get(":path")
}

/// `:method`.
pub fn method() -> Result<Option<Vec<u8>>, Status> {
    REQUEST_HEADERS.get(":method")
}

/// `:authority` (the `Host` header).
pub fn host() -> Result<Option<Vec<u8>>, Status> {
    REQUEST_HEADERS.get(":authority")
}

/// The value of query parameter `name` in a `:path` (first occurrence, not percent-decoded).
pub fn query_parameter<'a>(path: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let query = &path[path.iter().position(|&b| b == b'?')? + 1..];
    let query = query.split(|&b| b == b'#').next().unwrap_or_default();
    query.split(|&b| b == b'&').find_map(|pair| {
        let mut parts = pair.splitn(2, |&b| b == b'=');
        let key = parts.next()?;
        (key == name.as_bytes()).then(|| parts.next().unwrap_or_default())
    })
}

/// The value of cookie `name` in a `Cookie` header value.
pub fn cookie<'a>(cookie_header: &'a [u8], name: &str) -> Option<&'a [u8]> {
    cookie_header.split(|&b| b == b';').find_map(|pair| {
        let pair = pair.strip_prefix(b" ").unwrap_or(pair);
        let mut parts = pair.splitn(2, |&b| b == b'=');
        let key = parts.next()?;
        (key == name.as_bytes()).then(|| parts.next().unwrap_or_default())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_and_cookies() {
        let path = b"/a?x=1&token=abc.def&empty&y=2#frag";
        assert_eq!(query_parameter(path, "token"), Some(&b"abc.def"[..]));
        assert_eq!(query_parameter(path, "empty"), Some(&b""[..]));
        assert_eq!(query_parameter(path, "missing"), None);
        assert_eq!(query_parameter(b"/no-query", "x"), None);
        let cookies = b"session=s1; jwt=tok; other=x";
        assert_eq!(cookie(cookies, "jwt"), Some(&b"tok"[..]));
        assert_eq!(cookie(cookies, "session"), Some(&b"s1"[..]));
        assert_eq!(cookie(cookies, "nope"), None);
    }
}
