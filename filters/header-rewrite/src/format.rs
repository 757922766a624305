//! Header value templates: the subset of Envoy's substitution formatter that a proxy-wasm filter
//! can evaluate. Parsed once at configure time; rendering only reads what the template names.
//!
//! Supported: literal text, `%%` for a literal `%`, and the commands
//! `%REQ(name)%`, `%REQ(name?alternative)%`, `%RESP(...)%` (same forms), `%PROTOCOL%`,
//! `%DOWNSTREAM_REMOTE_ADDRESS%`, `%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%`,
//! `%DOWNSTREAM_LOCAL_ADDRESS%` and `%DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT%`, each with an
//! optional `:N` byte-length limit (`%REQ(user-agent):10%`). A value that is missing renders as
//! the empty string, as Envoy's header formatter does.

use sdk_ext::config::ConfigError;
use sdk_ext::properties::address_without_port;
use sdk_ext::text::Quoted;
use sdk_ext::validate::{header_name, Pseudo};
use std::borrow::Cow;

/// A parsed header value template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(Vec<u8>),
    Command {
        source: Source,
        max_len: Option<usize>,
    },
}

/// Where a command's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A request header, with an optional fallback header.
    RequestHeader(String, Option<String>),
    /// A response header, with an optional fallback header.
    ResponseHeader(String, Option<String>),
    /// A host property, optionally with the `:port` suffix removed.
    Property {
        /// Property path segments, as for `proxy_get_property`.
        path: &'static [&'static str],
        /// Strip a trailing `:port` (and IPv6 brackets) from an address.
        strip_port: bool,
    },
}

/// What a template can read while rendering. The filter implements it with hostcalls.
pub trait Lookup {
    /// The first value of a request header.
    fn request_header(&mut self, name: &str) -> Option<Cow<'_, [u8]>>;
    /// The first value of a response header; `None` while the request is being processed.
    fn response_header(&mut self, name: &str) -> Option<Cow<'_, [u8]>>;
    /// A host property.
    fn property(&mut self, path: &[&str]) -> Option<Cow<'_, [u8]>>;
}

const PROPERTY_COMMANDS: &[(&str, &[&str], bool)] = &[
    ("PROTOCOL", &["request", "protocol"], false),
    ("DOWNSTREAM_REMOTE_ADDRESS", &["source", "address"], false),
    (
        "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT",
        &["source", "address"],
        true,
    ),
    (
        "DOWNSTREAM_LOCAL_ADDRESS",
        &["destination", "address"],
        false,
    ),
    (
        "DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT",
        &["destination", "address"],
        true,
    ),
];

impl Template {
    /// Parses a header value format. Errors name the position or command that is wrong.
    pub fn parse(format: &str) -> Result<Template, ConfigError> {
        let mut parts = Vec::new();
        let mut literal = Vec::new();
        let mut rest = format;
        while let Some((text, after)) = rest.split_once('%') {
            literal.extend_from_slice(text.as_bytes());
            if let Some(after_escape) = after.strip_prefix('%') {
                literal.push(b'%');
                rest = after_escape;
                continue;
            }
            if !literal.is_empty() {
                parts.push(Part::Literal(std::mem::take(&mut literal)));
            }
            let (part, tail) = parse_command(after).map_err(|reason| {
                // The byte offset of the '%' that starts the command.
                let pos = format.len().saturating_sub(after.len() + 1);
                ConfigError::new(
                    "",
                    format!("{reason} (in {} at byte {pos})", Quoted(format)),
                )
            })?;
            parts.push(part);
            rest = tail;
        }
        literal.extend_from_slice(rest.as_bytes());
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Template { parts })
    }

    /// The value when the template has no commands, so it can be used without rendering.
    pub fn as_literal(&self) -> Option<&[u8]> {
        match self.parts.as_slice() {
            [] => Some(&[]),
            [Part::Literal(text)] => Some(text),
            _ => None,
        }
    }

    /// Whether the template reads any response header.
    pub fn reads_response(&self) -> bool {
        self.parts.iter().any(|part| {
            matches!(
                part,
                Part::Command {
                    source: Source::ResponseHeader(..),
                    ..
                }
            )
        })
    }

    /// The request headers the template reads (with their alternatives).
    pub fn request_headers_read(&self) -> impl Iterator<Item = &str> {
        self.parts
            .iter()
            .flat_map(|part| match part {
                Part::Command {
                    source: Source::RequestHeader(name, alternative),
                    ..
                } => [Some(name.as_str()), alternative.as_deref()],
                _ => [None, None],
            })
            .flatten()
    }

    /// Renders the template into `out` (cleared first).
    pub fn render(&self, lookup: &mut impl Lookup, out: &mut Vec<u8>) {
        out.clear();
        for part in &self.parts {
            let (source, max_len) = match part {
                Part::Literal(text) => {
                    out.extend_from_slice(text);
                    continue;
                }
                Part::Command { source, max_len } => (source, *max_len),
            };
            let mut push = |value: &[u8]| {
                let kept = max_len.and_then(|max| value.get(..max)).unwrap_or(value);
                out.extend_from_slice(kept);
            };
            match source {
                Source::RequestHeader(name, alternative) => {
                    if lookup.request_header(name).map(|v| push(&v)).is_none() {
                        if let Some(v) = alternative
                            .as_deref()
                            .and_then(|alt| lookup.request_header(alt))
                        {
                            push(&v);
                        }
                    }
                }
                Source::ResponseHeader(name, alternative) => {
                    if lookup.response_header(name).map(|v| push(&v)).is_none() {
                        if let Some(v) = alternative
                            .as_deref()
                            .and_then(|alt| lookup.response_header(alt))
                        {
                            push(&v);
                        }
                    }
                }
                Source::Property { path, strip_port } => {
                    if let Some(value) = lookup.property(path) {
                        push(if *strip_port {
                            address_without_port(&value)
                        } else {
                            &value
                        });
                    }
                }
            }
        }
    }
}

/// Parses one `%COMMAND(arg):N%` from `text`, the bytes after its opening `%`; returns the
/// part and the text after its closing `%`. The grammar is Envoy's:
/// `%[A-Z0-9_]+(\([^)]*\))?(:[0-9]+)?%`.
fn parse_command(text: &str) -> Result<(Part, &str), String> {
    let invalid = || "no valid command after '%' (use %% for a literal percent sign)".to_string();
    let name_len = text
        .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
        .unwrap_or(text.len());
    let (name, mut rest) = text.split_at_checked(name_len).ok_or_else(invalid)?;
    if name.is_empty() {
        return Err(invalid());
    }
    let mut argument = None;
    if let Some(open) = rest.strip_prefix('(') {
        let (inside, after) = open.split_once(')').ok_or_else(invalid)?;
        argument = Some(inside);
        rest = after;
    }
    let mut max_len = None;
    if let Some(limit) = rest.strip_prefix(':') {
        let digits_len = limit
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(limit.len());
        let (digits, after) = limit.split_at_checked(digits_len).ok_or_else(invalid)?;
        if digits.is_empty() {
            return Err(invalid());
        }
        max_len = Some(
            digits
                .parse::<usize>()
                .map_err(|_| format!("length limit of %{name}% is too large"))?,
        );
        rest = after;
    }
    let rest = rest.strip_prefix('%').ok_or_else(invalid)?;
    let source = match name {
        "REQ" | "RESP" => {
            let (main, alternative) = parse_header_argument(name, argument)?;
            if name == "REQ" {
                Source::RequestHeader(main, alternative)
            } else {
                Source::ResponseHeader(main, alternative)
            }
        }
        _ => {
            let &(_, path, strip_port) = PROPERTY_COMMANDS
                .iter()
                .find(|(command, _, _)| *command == name)
                .ok_or_else(|| format!("unsupported command %{name}%"))?;
            if argument.is_some() {
                return Err(format!("%{name}% takes no argument"));
            }
            Source::Property { path, strip_port }
        }
    };
    Ok((Part::Command { source, max_len }, rest))
}

fn parse_header_argument(
    command: &str,
    argument: Option<&str>,
) -> Result<(String, Option<String>), String> {
    let argument =
        argument.ok_or_else(|| format!("%{command}% needs a header name: %{command}(name)%"))?;
    let mut names = argument.split('?');
    let main = names.next().unwrap_or_default();
    let alternative = names.next();
    if names.next().is_some() {
        return Err(format!(
            "%{command}({argument})% has more than one alternative header"
        ));
    }
    let check = |name: &str| {
        header_name(name, Pseudo::Any).map_err(|_| {
            format!(
                "%{command}({argument})% has an invalid header name {}",
                Quoted(name)
            )
        })
    };
    Ok((check(main)?, alternative.map(check).transpose()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Default)]
    struct Values {
        request: HashMap<&'static str, &'static [u8]>,
        response: HashMap<&'static str, &'static [u8]>,
        properties: HashMap<String, &'static [u8]>,
    }

    impl Lookup for Values {
        fn request_header(&mut self, name: &str) -> Option<Cow<'_, [u8]>> {
            self.request.get(name).map(|v| Cow::Borrowed(*v))
        }
        fn response_header(&mut self, name: &str) -> Option<Cow<'_, [u8]>> {
            self.response.get(name).map(|v| Cow::Borrowed(*v))
        }
        fn property(&mut self, path: &[&str]) -> Option<Cow<'_, [u8]>> {
            self.properties
                .get(&path.join("."))
                .map(|v| Cow::Borrowed(*v))
        }
    }

    fn render(format: &str, values: &mut Values) -> Vec<u8> {
        let mut out = Vec::new();
        Template::parse(format).unwrap().render(values, &mut out);
        out
    }

    #[test]
    fn literals_and_escapes() {
        let template = Template::parse("100%% real").unwrap();
        assert_eq!(template.as_literal(), Some(&b"100% real"[..]));
        assert_eq!(Template::parse("").unwrap().as_literal(), Some(&b""[..]));
    }

    #[test]
    fn request_and_response_headers_with_alternatives_and_limits() {
        let mut values = Values::default();
        values.request.insert("x-a", b"alpha");
        values.request.insert("x-b", &[0xff, 0xfe]);
        values.response.insert("x-r", b"resp");
        assert_eq!(render("<%REQ(X-A)%>", &mut values), b"<alpha>");
        assert_eq!(render("%REQ(x-missing?x-b)%", &mut values), [0xff, 0xfe]);
        assert_eq!(render("%REQ(x-a):3%-%RESP(x-r)%", &mut values), b"alp-resp");
        assert_eq!(render("a%REQ(x-missing)%b", &mut values), b"ab");
        assert!(Template::parse("%RESP(x-r)%").unwrap().reads_response());
        assert!(!Template::parse("%REQ(x-r)%").unwrap().reads_response());
        let template = Template::parse("%REQ(a)%-%REQ(b?c)%-%RESP(d)%").unwrap();
        assert_eq!(
            template.request_headers_read().collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
    }

    #[test]
    fn addresses_lose_their_port() {
        let mut values = Values::default();
        values
            .properties
            .insert("source.address".into(), b"10.0.0.1:5555");
        values
            .properties
            .insert("destination.address".into(), b"[::1]:10000");
        values
            .properties
            .insert("request.protocol".into(), b"HTTP/1.1");
        assert_eq!(
            render("%DOWNSTREAM_REMOTE_ADDRESS%", &mut values),
            b"10.0.0.1:5555"
        );
        assert_eq!(
            render("%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%", &mut values),
            b"10.0.0.1"
        );
        assert_eq!(
            render("%DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT%", &mut values),
            b"::1"
        );
        assert_eq!(render("%PROTOCOL%", &mut values), b"HTTP/1.1");
    }

    #[test]
    fn bad_formats_are_rejected_with_a_reason() {
        for (format, expected) in [
            ("50%", "no valid command"),
            ("%req(x)%", "no valid command"),
            ("%REQ(x)", "no valid command"),
            ("%REQ(x", "no valid command"),
            ("%REQ%", "needs a header name"),
            ("%REQ()%", "invalid header name"),
            ("%REQ(a?b?c)%", "more than one alternative"),
            ("%REQ(bad name)%", "invalid header name"),
            ("%START_TIME%", "unsupported command %START_TIME%"),
            ("%PROTOCOL(x)%", "takes no argument"),
            ("%REQ(x):%", "no valid command"),
            ("%REQ(x):99999999999999999999999%", "too large"),
        ] {
            let err = Template::parse(format).unwrap_err();
            assert!(err.reason.contains(expected), "{format}: {}", err.reason);
        }
    }
}
