//! Finding tokens in a request, as Envoy's jwt_authn extractor does, and removing them.

use crate::config::Location;
use sdk_ext::headers::{Snapshot, REQUEST_HEADERS};
use sdk_ext::host::Status;
use sdk_ext::request;

/// Envoy bounds the path in the `www-authenticate` realm to this many bytes.
const MAX_REALM_PATH: usize = 256;

/// The request headers as verification reads them: one snapshot, taken once.
#[derive(Debug, Clone, Default)]
pub struct RequestInfo {
    /// `:path`.
    pub path: Vec<u8>,
    /// Every request header.
    pub headers: Snapshot,
}

/// A token and where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The location.
    pub location: Location,
    /// The token text.
    pub value: String,
}

fn lossy(bytes: Option<&[u8]>) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(bytes.unwrap_or_default())
}

impl RequestInfo {
    /// Reads the request headers (one hostcall).
    pub fn read() -> RequestInfo {
        let headers = Snapshot::read(REQUEST_HEADERS).unwrap_or_default();
        RequestInfo {
            path: headers.get(":path").unwrap_or_default().to_vec(),
            headers,
        }
    }

    /// The `Bearer realm` of a refusal: scheme://authority + path (`x-envoy-original-path` when
    /// set), the path cut to 256 bytes, as Envoy builds it.
    pub fn realm(&self) -> String {
        if self.path.is_empty() {
            return String::new();
        }
        let shown = self
            .headers
            .get("x-envoy-original-path")
            .unwrap_or(&self.path);
        format!(
            "{}://{}{}",
            lossy(self.headers.get(":scheme")),
            lossy(self.headers.get(":authority")),
            String::from_utf8_lossy(&shown[..shown.len().min(MAX_REALM_PATH)])
        )
    }

    fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.get(name)
    }

    fn cookies(&self) -> Option<&[u8]> {
        self.headers.get("cookie")
    }

    /// Every token at `locations`, in extraction order.
    pub fn tokens(&self, locations: &[Location]) -> Vec<Token> {
        locations
            .iter()
            .filter_map(|location| {
                let value = match location {
                    Location::Header(name, prefix) => from_header(self.header(name)?, prefix)?,
                    Location::Param(name) => {
                        percent_decode(request::query_parameter(&self.path, name)?)?
                    }
                    Location::Cookie(name) => cookie(self.cookies()?, name)?,
                };
                Some(Token {
                    location: location.clone(),
                    value,
                })
            })
            .collect()
    }
}

fn is_jwt_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'=')
}

/// The token in a header value: everything after `prefix` (found anywhere, case-sensitively),
/// from its first token character to the end, as Envoy's extractor.
fn from_header(value: &[u8], prefix: &str) -> Option<String> {
    let value = String::from_utf8_lossy(value);
    if prefix.is_empty() {
        return Some(value.into_owned());
    }
    let after = &value[value.find(prefix)? + prefix.len()..];
    match after.bytes().position(is_jwt_char) {
        Some(start) => Some(after[start..].to_string()),
        None => Some(value.into_owned()),
    }
}

fn cookie(header: &[u8], name: &str) -> Option<String> {
    let value = request::cookie(header, name)?;
    let value = value
        .strip_prefix(b"\"")
        .and_then(|v| v.strip_suffix(b"\""))
        .unwrap_or(value);
    Some(String::from_utf8_lossy(value).into_owned())
}

fn percent_decode(raw: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.iter().copied();
    while let Some(byte) = bytes.next() {
        if byte == b'%' {
            let hex = [bytes.next()?, bytes.next()?];
            out.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
        } else {
            out.push(byte);
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// Removes a verified token from the request (`forward: false`): the whole header, or every
/// occurrence of the query parameter. Cookies stay, as in Envoy.
pub fn remove(token: &Token, info: &RequestInfo) -> Result<(), Status> {
    match &token.location {
        Location::Header(name, _) => REQUEST_HEADERS.remove(name),
        Location::Param(name) => REQUEST_HEADERS.set(":path", &without_param(&info.path, name)),
        Location::Cookie(_) => Ok(()),
    }
}

/// `path` without every `name=...` (or bare `name`) query parameter.
fn without_param(path: &[u8], name: &str) -> Vec<u8> {
    let Some(question) = path.iter().position(|&b| b == b'?') else {
        return path.to_vec();
    };
    let (before, query) = (&path[..question], &path[question + 1..]);
    let (query, fragment) = match query.iter().position(|&b| b == b'#') {
        Some(at) => (&query[..at], &query[at..]),
        None => (query, &b""[..]),
    };
    let kept: Vec<&[u8]> = query
        .split(|&b| b == b'&')
        .filter(|pair| {
            !pair.is_empty() && pair.splitn(2, |&b| b == b'=').next() != Some(name.as_bytes())
        })
        .collect();
    let mut out = before.to_vec();
    if !kept.is_empty() {
        out.push(b'?');
        out.extend(kept.join(&b'&'));
    }
    out.extend_from_slice(fragment);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_tokens_follow_envoys_prefix_search() {
        assert_eq!(
            from_header(b"Bearer abc.def.ghi", "Bearer ").as_deref(),
            Some("abc.def.ghi")
        );
        assert_eq!(
            from_header(b"Basic x, Bearer abc", "Bearer ").as_deref(),
            Some("abc")
        );
        assert_eq!(
            from_header(b"bearer abc", "Bearer "),
            None,
            "the prefix is case-sensitive"
        );
        assert_eq!(from_header(b"raw-token", "").as_deref(), Some("raw-token"));
        assert_eq!(
            from_header(b"Bearer   tok", "Bearer ").as_deref(),
            Some("tok")
        );
    }

    #[test]
    fn params_and_cookies() {
        let headers = sdk_ext::wire::encode_pairs(&[
            (":path", &b"/p?a=1&access_token=x%2Ey&b"[..]),
            ("cookie", b"s=1; jwt=\"quoted\""),
        ]);
        let headers = Snapshot::from_wire(headers).unwrap();
        let info = RequestInfo {
            path: headers.get(":path").unwrap().to_vec(),
            headers,
        };
        let tokens = info.tokens(&[
            Location::Param("access_token".into()),
            Location::Cookie("jwt".into()),
            Location::Cookie("nope".into()),
        ]);
        assert_eq!(
            tokens.iter().map(|t| t.value.as_str()).collect::<Vec<_>>(),
            ["x.y", "quoted"]
        );
    }

    #[test]
    fn removing_a_parameter_keeps_the_rest() {
        assert_eq!(without_param(b"/p?a=1&t=x&b=2", "t"), b"/p?a=1&b=2");
        assert_eq!(without_param(b"/p?t=x", "t"), b"/p");
        assert_eq!(without_param(b"/p?t=x&t=y&tt=1#f", "t"), b"/p?tt=1#f");
        assert_eq!(without_param(b"/p", "t"), b"/p");
    }
}
