//! Envoy's rules for the header names and values a configuration names, so every filter accepts
//! and refuses the same ones:
//!
//! - a name is an RFC 9110 token (`tchar`), or `:` and a token for a pseudo-header; Envoy stores
//!   it lower-cased (`LowerCaseString`), and so do these checks;
//! - a value holds no NUL, CR or LF (`HeaderString`'s invariant);
//! - a `config.core.v3.HeaderValue` key or value is at most 16 KiB (`max_bytes: 16384`);
//! - a configuration may not add, set or remove a pseudo-header or `host`
//!   (`HeaderUtility::isModifiableHeader`).
//!
//! ```
//! use sdk_ext::validate::{header_name, Pseudo};
//! assert_eq!(header_name("X-User", Pseudo::Never).as_deref(), Ok("x-user"));
//! assert!(header_name("x user", Pseudo::Never).is_err());
//! ```

use crate::text::Quoted;

/// Envoy's limit on a `HeaderValue` key or value in config (`max_bytes: 16384`).
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// The pseudo-headers Envoy's codecs know; no other `:` name reaches a filter or an upstream.
pub const PSEUDO_HEADERS: &[&str] = &[
    ":authority",
    ":method",
    ":path",
    ":scheme",
    ":protocol",
    ":status",
];

/// Which `:`-prefixed names a field takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pseudo {
    /// None: the field names a regular header (a token's location, a claim's header).
    Never,
    /// Any `:` and a token: a header the filter only reads, where an unknown one is just absent.
    Any,
    /// Only [`PSEUDO_HEADERS`]: a header the filter writes.
    Known,
}

/// Whether `byte` may appear in a header name: an RFC 9110 `tchar`.
pub fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// Checks a header name from a configuration and returns it lower-cased, or says what is wrong.
pub fn header_name(name: &str, pseudo: Pseudo) -> Result<String, String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > MAX_HEADER_BYTES {
        return Err(format!("longer than {MAX_HEADER_BYTES} bytes"));
    }
    let lower = name.to_ascii_lowercase();
    let bare = match lower.strip_prefix(':') {
        None => lower.as_str(),
        Some(_) if pseudo == Pseudo::Never => {
            return Err(format!(
                "{} is not a valid header name here: pseudo-headers are not allowed",
                Quoted(name)
            ))
        }
        Some(_) if pseudo == Pseudo::Known && !PSEUDO_HEADERS.contains(&lower.as_str()) => {
            return Err(format!(
                "unknown pseudo-header {}; known: {}",
                Quoted(name),
                PSEUDO_HEADERS.join(", ")
            ))
        }
        Some(bare) => bare,
    };
    if bare.is_empty() || !bare.bytes().all(is_token_byte) {
        return Err(format!("{} is not a valid header name", Quoted(name)));
    }
    Ok(lower)
}

/// Checks the name of a header that a configuration adds, sets or removes, where Envoy refuses
/// pseudo-headers and `host` (`HeaderUtility::isModifiableHeader`); `change` says what the field
/// does to it ("added", "removed") in the error.
pub fn modifiable_header_name(name: &str, change: &str) -> Result<String, String> {
    let lower = header_name(name, Pseudo::Any)?;
    if lower.starts_with(':') || lower == "host" {
        return Err(format!(
            "{} cannot be {change}: Envoy does not let a configuration modify pseudo-headers or host",
            Quoted(name)
        ));
    }
    Ok(lower)
}

/// Checks a header value from a configuration: at most [`MAX_HEADER_BYTES`], and no NUL, CR or
/// LF, which would split or end the header on the wire.
pub fn header_value(value: &[u8]) -> Result<(), String> {
    if value.len() > MAX_HEADER_BYTES {
        return Err(format!("longer than {MAX_HEADER_BYTES} bytes"));
    }
    if value.iter().any(|b| matches!(b, b'\0' | b'\r' | b'\n')) {
        return Err("must not contain NUL, CR or LF".into());
    }
    Ok(())
}

/// Checks a value a filter writes into pseudo-header `name` at run time (a value rendered from
/// the request, say): Envoy forwards what a filter sets, so a `:path` of `GET /evil` or a
/// `:status` of 0 would reach the upstream or the client as it is.
///
/// - `:method`, `:protocol`: a token;
/// - `:path`: `*`, or `/` then visible ASCII without `#`;
/// - `:authority`: a host and optional port: RFC 3986 unreserved, sub-delims, `%`, `:`, `[`, `]`
///   (no userinfo, no path);
/// - `:scheme`: a letter, then letters, digits, `+`, `-`, `.`;
/// - `:status`: three digits from 100 to 599;
/// - any other pseudo-header is refused.
pub fn pseudo_header_value(name: &str, value: &[u8]) -> Result<(), &'static str> {
    let valid = match name {
        ":method" | ":protocol" => !value.is_empty() && value.iter().all(|&b| is_token_byte(b)),
        ":path" => {
            value == b"*"
                || (value.first() == Some(&b'/')
                    && value.iter().all(|&b| b.is_ascii_graphic() && b != b'#'))
        }
        ":authority" => {
            !value.is_empty()
                && value
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=%:[]".contains(&b))
        }
        ":scheme" => {
            value.first().is_some_and(u8::is_ascii_alphabetic)
                && value
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        }
        ":status" => {
            value.len() == 3
                && value.iter().all(u8::is_ascii_digit)
                && value.first().is_some_and(|b| (b'1'..=b'5').contains(b))
        }
        _ => return Err("not a pseudo-header Envoy knows"),
    };
    if valid {
        Ok(())
    } else {
        Err(match name {
            ":method" | ":protocol" => "must be a token",
            ":path" => "must be * or start with / and hold only visible ASCII without #",
            ":authority" => "must be a host and optional port",
            ":scheme" => "must be a URI scheme",
            _ => "must be three digits from 100 to 599",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudo_header_values_are_checked_by_kind() {
        let valid: &[(&str, &[u8])] = &[
            (":method", b"GET"),
            (":method", b"PROPFIND"),
            (":path", b"/a/b?c=d%20e"),
            (":path", b"*"),
            (":authority", b"example.com:8443"),
            (":authority", b"[::1]:80"),
            (":scheme", b"https"),
            (":status", b"100"),
            (":status", b"599"),
            (":protocol", b"websocket"),
        ];
        for (name, value) in valid {
            assert_eq!(pseudo_header_value(name, value), Ok(()), "{name} {value:?}");
        }
        let invalid: &[(&str, &[u8])] = &[
            (":method", b"GET /evil"),
            (":method", b""),
            (":path", b"evil"),
            (":path", b"/a b"),
            (":path", b"/a#frag"),
            (":path", b"/\xff"),
            (":path", b""),
            (":authority", b"a@b"),
            (":authority", b"a/b"),
            (":authority", b"a b"),
            (":authority", b""),
            (":scheme", b"1http"),
            (":scheme", b"ht tp"),
            (":status", b"999"),
            (":status", b"0"),
            (":status", b"099"),
            (":status", b"20"),
            (":status", b"2000"),
            (":status", b" 200"),
            (":unknown", b"x"),
        ];
        for (name, value) in invalid {
            assert!(
                pseudo_header_value(name, value).is_err(),
                "{name} {value:?}"
            );
        }
    }

    #[test]
    fn names_are_tokens_lower_cased() {
        assert_eq!(
            header_name("X-Rate_Limit", Pseudo::Never).as_deref(),
            Ok("x-rate_limit")
        );
        assert_eq!(
            header_name("x!#$%&'*+-.^_`|~9", Pseudo::Never).as_deref(),
            Ok("x!#$%&'*+-.^_`|~9")
        );
        for bad in [
            "x y", "x:y", "x\ny", "x\0", "é", "x(", "x\"", "x/", "x@", "x,",
        ] {
            let error = header_name(bad, Pseudo::Any).unwrap_err();
            assert!(
                error.contains("is not a valid header name"),
                "{bad:?}: {error}"
            );
        }
        assert_eq!(
            header_name("", Pseudo::Any).unwrap_err(),
            "must not be empty"
        );
        let long = "x".repeat(MAX_HEADER_BYTES + 1);
        assert!(header_name(&long, Pseudo::Any)
            .unwrap_err()
            .contains("16384"));
        assert!(header_name(&long[1..], Pseudo::Any).is_ok());
        assert!((0..=255u8)
            .filter(|&b| is_token_byte(b))
            .all(|b| b.is_ascii_graphic() && !b"\"(),/:;<=>?@[\\]{}".contains(&b)));
        assert_eq!((0..=255u8).filter(|&b| is_token_byte(b)).count(), 77);
    }

    #[test]
    fn pseudo_headers_follow_the_field() {
        assert_eq!(header_name(":Path", Pseudo::Any).as_deref(), Ok(":path"));
        assert_eq!(header_name(":foo", Pseudo::Any).as_deref(), Ok(":foo"));
        assert!(header_name(":", Pseudo::Any)
            .unwrap_err()
            .contains("not a valid header name"));
        assert!(header_name("::path", Pseudo::Any).is_err());
        assert_eq!(
            header_name(":status", Pseudo::Known).as_deref(),
            Ok(":status")
        );
        assert!(header_name(":foo", Pseudo::Known)
            .unwrap_err()
            .starts_with("unknown pseudo-header \":foo\""));
        assert!(header_name(":path", Pseudo::Never)
            .unwrap_err()
            .contains("pseudo-headers are not allowed"));
    }

    #[test]
    fn pseudo_headers_and_host_are_not_modifiable() {
        assert_eq!(modifiable_header_name("X-A", "added").as_deref(), Ok("x-a"));
        for name in [":path", ":foo", "Host", "host"] {
            let error = modifiable_header_name(name, "removed").unwrap_err();
            assert!(
                error.starts_with(&format!("{name:?} cannot be removed: ")),
                "{error}"
            );
        }
        assert_eq!(
            modifiable_header_name("", "added").unwrap_err(),
            "must not be empty"
        );
        assert_eq!(
            modifiable_header_name("hostname", "added").as_deref(),
            Ok("hostname")
        );
    }

    #[test]
    fn values_hold_no_nul_cr_or_lf() {
        assert_eq!(header_value(b"a b\t\x7f\xff%"), Ok(()));
        assert_eq!(header_value(b""), Ok(()));
        for bad in [&b"a\rb"[..], b"a\nb", b"\0"] {
            assert_eq!(
                header_value(bad).unwrap_err(),
                "must not contain NUL, CR or LF"
            );
        }
        assert!(header_value(&[b'v'; MAX_HEADER_BYTES]).is_ok());
        assert!(header_value(&[b'v'; MAX_HEADER_BYTES + 1])
            .unwrap_err()
            .contains("16384"));
    }
}
