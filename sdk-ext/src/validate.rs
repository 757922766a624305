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
                "{name:?} is not a valid header name here: pseudo-headers are not allowed"
            ))
        }
        Some(_) if pseudo == Pseudo::Known && !PSEUDO_HEADERS.contains(&lower.as_str()) => {
            return Err(format!(
                "unknown pseudo-header {name:?}; known: {}",
                PSEUDO_HEADERS.join(", ")
            ))
        }
        Some(bare) => bare,
    };
    if bare.is_empty() || !bare.bytes().all(is_token_byte) {
        return Err(format!("{name:?} is not a valid header name"));
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
            "{name:?} cannot be {change}: Envoy does not let a configuration modify pseudo-headers or host"
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

#[cfg(test)]
mod tests {
    use super::*;

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
