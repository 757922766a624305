//! Finding tokens in a request, as Envoy's jwt_authn extractor does, and removing them.

use crate::config::Location;
use sdk_ext::headers::{Headers, Snapshot};
use sdk_ext::request;
use std::borrow::Cow;

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

/// A token and where it was found, borrowed from the configuration and the request: a cache
/// hit then costs no copy of the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token<'a> {
    /// The location.
    pub location: &'a Location,
    /// The token text.
    pub value: Cow<'a, str>,
}

fn lossy(bytes: Option<&[u8]>) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(bytes.unwrap_or_default())
}

impl RequestInfo {
    /// Reads the request headers (one hostcall).
    pub fn read(request_headers: &Headers<'_>) -> RequestInfo {
        let headers = request_headers.snapshot().unwrap_or_default();
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
            String::from_utf8_lossy(shown.get(..MAX_REALM_PATH).unwrap_or(shown))
        )
    }

    /// Every token at `locations`, which are in Envoy's extraction order ([`native_order`],
    /// applied once to the configuration). Each value of a repeated header is a token of its own.
    pub fn tokens<'a>(&'a self, locations: &'a [Location]) -> Vec<Token<'a>> {
        let mut tokens = Vec::new();
        for location in locations {
            match location {
                Location::Header(name, prefix) => {
                    for value in self.headers.get_all(name) {
                        if let Some(value) = from_header(value, prefix) {
                            tokens.push(Token { location, value });
                        }
                    }
                }
                Location::Param(name) => {
                    if let Some(value) = request::query_parameter(&self.path, name) {
                        tokens.push(Token {
                            location,
                            value: Cow::Owned(String::from_utf8_lossy(&value).into_owned()),
                        });
                    }
                }
                Location::Cookie(name) => {
                    if let Some(value) = request::cookie(self.headers.get_all("cookie"), name) {
                        tokens.push(Token {
                            location,
                            value: text(value),
                        });
                    }
                }
            }
        }
        tokens
    }
}

/// Envoy keys its header locations by name followed by prefix, in a sorted map; then come
/// parameters and cookies, each sorted by name.
fn order_key(location: &Location) -> (u8, String) {
    match location {
        Location::Header(name, prefix) => (0, format!("{name}{prefix}")),
        Location::Param(name) => (1, name.clone()),
        Location::Cookie(name) => (2, name.clone()),
    }
}

/// `locations` sorted and without repeats, as Envoy's extractor holds them (header locations by
/// name and prefix, then parameters, then cookies, each once however many providers name it).
pub fn native_order<'a>(locations: impl IntoIterator<Item = &'a Location>) -> Vec<Location> {
    let mut ordered: Vec<(&Location, (u8, String))> = Vec::new();
    for location in locations {
        let key = order_key(location);
        if let Err(at) = ordered.binary_search_by(|(_, other)| other.cmp(&key)) {
            ordered.insert(at, (location, key));
        }
    }
    ordered
        .into_iter()
        .map(|(location, _)| location.clone())
        .collect()
}

/// Token bytes as text: borrowed when they are UTF-8 (a JWT always is), else a lossy copy.
fn text(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// Envoy's JWT alphabet: base64url and `.`.
fn is_jwt_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.')
}

/// The token in a header value: everything after `prefix` (found anywhere, case-sensitively),
/// from its first token character to the end (the whole value when there is none), as Envoy's
/// extractor. `None` when the prefix is absent.
fn from_header<'a>(value: &'a [u8], prefix: &str) -> Option<Cow<'a, str>> {
    if prefix.is_empty() {
        return Some(text(value));
    }
    let after = value
        .windows(prefix.len())
        .position(|window| window == prefix.as_bytes())?
        + prefix.len();
    let rest = value.get(after..).unwrap_or_default();
    let token = match rest.iter().position(|&b| is_jwt_char(b)) {
        Some(start) => rest.get(start..).unwrap_or_default(),
        None => value,
    };
    Some(text(token))
}

/// Removes a verified token from the request (`forward: false`) as Envoy does: every value of
/// the header, or every occurrence of the query parameter. A parameter is removed from
/// `new_path` (`original_path` until a first removal), for the caller to set once; a header
/// is returned for the caller to remove.
pub fn remove<'a>(
    token: &Token<'a>,
    original_path: &[u8],
    new_path: &mut Option<Vec<u8>>,
) -> Option<&'a str> {
    match token.location {
        Location::Header(name, _) => Some(name),
        Location::Param(name) => {
            let path = new_path.get_or_insert_with(|| original_path.to_vec());
            *path = without_param(path, name);
            None
        }
        Location::Cookie(_) => None,
    }
}

/// `path` without every `name=...` (or bare `name`) query parameter, names compared after
/// percent-decoding as Envoy reads them.
fn without_param(path: &[u8], name: &str) -> Vec<u8> {
    let Some(question) = path.iter().position(|&b| b == b'?') else {
        return path.to_vec();
    };
    let (before, query) = path.split_at(question);
    let query = query.get(1..).unwrap_or_default();
    let kept: Vec<&[u8]> = query
        .split(|&b| b == b'&')
        .filter(|pair| {
            let key = pair.split(|&b| b == b'=').next().unwrap_or_default();
            !pair.is_empty() && *request::percent_decode(key) != *name.as_bytes()
        })
        .collect();
    let mut out = before.to_vec();
    if !kept.is_empty() {
        out.push(b'?');
        out.extend(kept.join(&b'&'));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(headers: &[(&str, &str)]) -> RequestInfo {
        let headers = Snapshot::from_wire(sdk_ext::wire::encode_pairs(headers)).unwrap();
        RequestInfo {
            path: headers.get(":path").unwrap_or_default().to_vec(),
            headers,
        }
    }

    fn values<'a>(tokens: &'a [Token<'_>]) -> Vec<&'a str> {
        tokens.iter().map(|token| &*token.value).collect()
    }

    fn header(name: &str, prefix: &str) -> Location {
        Location::Header(name.into(), prefix.into())
    }

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
        assert_eq!(
            from_header(b"Bearer ==tok=", "Bearer ").as_deref(),
            Some("tok="),
            "`=` is not a token character: it is skipped before the token, kept after"
        );
        assert_eq!(
            from_header(b"Bearer  ", "Bearer ").as_deref(),
            Some("Bearer  "),
            "no token character: the whole value"
        );
        assert_eq!(
            from_header(b"Bearer a, Bearer b", "Bearer ").as_deref(),
            Some("a, Bearer b"),
            "a merged header is one token to the end"
        );
    }

    #[test]
    fn every_value_of_a_repeated_header_is_a_token() {
        let request = info(&[
            (":path", "/p"),
            ("x-jwt", "first"),
            ("authorization", "Bearer one"),
            ("x-jwt", "second"),
            ("authorization", "Basic zz"),
            ("authorization", "Bearer two"),
        ]);
        let locations = native_order(&[header("x-jwt", ""), header("authorization", "Bearer ")]);
        let tokens = request.tokens(&locations);
        assert_eq!(values(&tokens), ["one", "two", "first", "second"]);
        assert_eq!(*tokens[0].location, header("authorization", "Bearer "));
        assert_eq!(*tokens[3].location, header("x-jwt", ""));
    }

    #[test]
    fn locations_are_read_once_in_envoys_order() {
        let request = info(&[
            (":path", "/p?b=pb&a=pa"),
            ("cookie", "z=cz; y=cy"),
            ("x-b", "hb"),
            ("x-a", "Bearer ha"),
        ]);
        let locations = [
            Location::Cookie("z".into()),
            Location::Param("b".into()),
            header("x-b", ""),
            Location::Cookie("y".into()),
            header("x-a", "Bearer "),
            Location::Param("a".into()),
            header("x-b", ""),
            Location::Param("b".into()),
        ];
        assert_eq!(
            values(&request.tokens(&native_order(&locations))),
            ["ha", "hb", "pa", "pb", "cy", "cz"]
        );
        // The key is name then prefix as one string: "x-a-b" sorts before "x-aB".
        let request = info(&[(":path", "/"), ("x-a", "B1"), ("x-a-b", "2")]);
        assert_eq!(
            values(&request.tokens(&native_order(&[header("x-a", "B"), header("x-a-b", "")]))),
            ["2", "1"]
        );
    }

    #[test]
    fn params_are_decoded_and_cookies_read_from_every_header() {
        let request = info(&[
            (
                ":path",
                "/p?a=1&access%5Ftoken=x%2Ey&access_token=later&bad=%zz",
            ),
            ("cookie", "s=1"),
            ("cookie", "other=2;  jwt=\"quoted\""),
        ]);
        let locations = native_order(&[
            Location::Param("access_token".into()),
            Location::Param("bad".into()),
            Location::Cookie("jwt".into()),
            Location::Cookie("nope".into()),
        ]);
        let tokens = request.tokens(&locations);
        assert_eq!(values(&tokens), ["x.y", "%zz", "quoted"]);
    }

    #[test]
    fn removing_a_parameter_removes_every_spelling_of_it() {
        assert_eq!(without_param(b"/p?a=1&t=x&b=2", "t"), b"/p?a=1&b=2");
        assert_eq!(without_param(b"/p?t=x", "t"), b"/p");
        assert_eq!(without_param(b"/p?t=x&t=y&tt=1", "t"), b"/p?tt=1");
        assert_eq!(without_param(b"/p?%74=x&t%3D=y&t", "t"), b"/p?t%3D=y");
        assert_eq!(without_param(b"/p", "t"), b"/p");
    }

    #[test]
    fn removals_build_on_each_other() {
        let original = b"/p?a=1&b=2&c=3";
        let mut path = None;
        let (param_a, param_c) = (Location::Param("a".into()), Location::Param("c".into()));
        let cookie = Location::Cookie("a".into());
        let header = Location::Header("x-jwt".into(), String::new());
        let token = |location| Token {
            location,
            value: Cow::Borrowed(""),
        };
        assert_eq!(remove(&token(&param_a), original, &mut path), None);
        assert_eq!(remove(&token(&param_c), original, &mut path), None);
        assert_eq!(path.as_deref(), Some(&b"/p?b=2"[..]));
        let mut untouched = None;
        assert_eq!(remove(&token(&cookie), original, &mut untouched), None);
        assert_eq!(untouched, None, "cookies stay, as in Envoy");
        assert_eq!(
            remove(&token(&header), original, &mut untouched),
            Some("x-jwt")
        );
    }
}
