//! Configuration JSON in two steps. The bytes are parsed once into a [`Json`] tree, refusing
//! repeated keys. Then [`FromJson`] reads the config type from the tree, keeping the
//! field path of the value being read, so an error names the value that failed
//! (`rules[2].match.prefix`).
//!
//! Why not serde's `Deserialize`: its visitors are generic over the deserializer, so every config
//! type instantiated a deserializer (and serde_json's parser) of its own; that was the largest
//! part of a simple filter's module. `#[derive(FromJson)]` generates a match over an object's
//! keys that calls the helpers here, which are generic over the value type only.
//!
//! The path is one `String` threaded through by `&mut`: entering a map value, list item or enum
//! variant appends its segment, a success truncates it again, and an error leaves it in place,
//! so after a failure it names the innermost value that failed.

use crate::text::Quoted;
use std::collections::BTreeMap;
use std::fmt::Write as _;

pub use sdk_ext_derive::FromJson;

/// A parsed JSON document; objects keep their entries in document order.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    /// An integer that fits: non-negative ones are `U64`, negative ones `I64` (as serde_json).
    U64(u64),
    I64(i64),
    /// Any other number (a fraction, an exponent, or beyond 64 bits), as written: no config field
    /// reads one, and a float parser is 10 KB of wasm.
    Number(String),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    /// Parses a whole document; on error, also the path where parsing stopped. A repeated key is
    /// refused at its path: a map would keep the last of two entries (two providers of one
    /// name), so a copy with a typo could silently replace the first.
    pub fn parse(bytes: &[u8]) -> Result<Json, (String, String)> {
        let mut path = String::new();
        let mut parser = Parser::new(bytes, &mut path, true);
        let parsed = parser.value().and_then(|json| {
            if parser.at_end() {
                Ok(json)
            } else {
                Err(Syntax("trailing characters"))
            }
        });
        match parsed {
            Ok(json) => Ok(json),
            Err(Syntax(reason @ "duplicate key")) => Err((path, reason.to_string())),
            Err(Syntax(reason)) => {
                let at = parser.position();
                Err((path, format!("{reason} at {at}")))
            }
        }
    }

    /// Whether `bytes` is one JSON text, as serde_json reads it into `IgnoredAny`: for a filter
    /// that checks a body before it edits it. Unlike [`Json::parse`], it keeps and allocates
    /// nothing but a stack of open containers, so nesting is unbounded; a key may repeat; and a
    /// `\u` escape is checked for its four hex digits only, so a lone surrogate passes. The text
    /// must be UTF-8.
    pub fn is_valid(bytes: &[u8]) -> bool {
        let mut path = String::new();
        let mut parser = Parser::new(bytes, &mut path, false);
        // UTF-8 in one pass: outside strings any non-ASCII byte is a syntax error anyway.
        std::str::from_utf8(bytes).is_ok() && parser.check().is_ok() && parser.at_end()
    }

    /// How an error names this value (serde's wording).
    fn describe(&self) -> String {
        match self {
            Json::Null => "null".to_string(),
            Json::Bool(value) => format!("boolean `{value}`"),
            Json::U64(value) => format!("integer `{value}`"),
            Json::I64(value) => format!("integer `{value}`"),
            Json::Number(text) => format!("number `{text}`"),
            Json::Str(value) => format!("string {}", Quoted(value)),
            Json::Arr(_) => "sequence".to_string(),
            Json::Obj(_) => "map".to_string(),
        }
    }
}

impl From<serde_json::Value> for Json {
    fn from(value: serde_json::Value) -> Json {
        use serde_json::Value;
        match value {
            Value::Null => Json::Null,
            Value::Bool(value) => Json::Bool(value),
            Value::Number(number) => match (number.as_u64(), number.as_i64()) {
                (Some(value), _) => Json::U64(value),
                (None, Some(value)) => Json::I64(value),
                _ => Json::Number(number.to_string()),
            },
            Value::String(value) => Json::Str(value),
            Value::Array(items) => Json::Arr(items.into_iter().map(Json::from).collect()),
            Value::Object(entries) => Json::Obj(
                entries
                    .into_iter()
                    .map(|(key, value)| (key, Json::from(value)))
                    .collect(),
            ),
        }
    }
}

/// Writes the tree back as JSON (the chain hands each filter its part of the document).
impl serde::Serialize for Json {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self {
            Json::Null => serializer.serialize_unit(),
            Json::Bool(value) => serializer.serialize_bool(*value),
            Json::U64(value) => serializer.serialize_u64(*value),
            Json::I64(value) => serializer.serialize_i64(*value),
            // Through f64, as serde has no call for a number's text (only the chain writes a tree
            // back): a number beyond f64 becomes null, which a field that reads it refuses too.
            Json::Number(text) => serializer.serialize_f64(text.parse().unwrap_or(f64::NAN)),
            Json::Str(value) => serializer.serialize_str(value),
            Json::Arr(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Json::Obj(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }
    }
}

/// Appends a map key or variant name to a path (`a` + `b` = `a.b`).
fn push_name(path: &mut String, name: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(name);
}

/// Appends a list index to a path (`a` + 2 = `a[2]`).
fn push_index(path: &mut String, index: usize) {
    let _ = write!(path, "[{index}]");
}

/// Arrays and objects nested deeper than this are refused (as by serde_json), so that neither
/// parsing, reading nor dropping a tree can exhaust the stack.
const MAX_DEPTH: usize = 127;

/// A JSON text (RFC 8259) parsed straight into a [`Json`]. Not serde_json: its parser is about
/// 16 KB of every module that links it, for one configuration document; this one is a few.
/// `tests::the_parser_agrees_with_serde_json` checks the two against each other.
struct Parser<'a> {
    bytes: &'a [u8],
    at: usize,
    /// The path of the value being parsed, for errors.
    path: &'a mut String,
    depth: usize,
    /// False when only checking ([`Json::is_valid`]): strings and numbers are scanned, not kept.
    keep: bool,
}

/// A parse error: the reason, and where in the text.
struct Syntax(&'static str);

impl<'a> Parser<'a> {
    fn new(bytes: &'a [u8], path: &'a mut String, keep: bool) -> Parser<'a> {
        Parser {
            bytes,
            at: 0,
            path,
            depth: 0,
            keep,
        }
    }

    /// Whether only whitespace is left.
    fn at_end(&mut self) -> bool {
        self.skip_whitespace();
        self.peek().is_none()
    }

    fn error<T>(&self, reason: &'static str) -> Result<T, Syntax> {
        Err(Syntax(reason))
    }

    /// "at line L column C" of the current position, as serde_json says it.
    fn position(&self) -> String {
        let before = self.bytes.get(..self.at).unwrap_or(self.bytes);
        let line = before.iter().filter(|&&byte| byte == b'\n').count() + 1;
        let column = before
            .iter()
            .rev()
            .take_while(|&&byte| byte != b'\n')
            .count();
        format!("line {line} column {column}")
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    /// The next byte after whitespace, consumed.
    fn next_token(&mut self) -> Option<u8> {
        self.skip_whitespace();
        let byte = self.peek()?;
        self.at += 1;
        Some(byte)
    }

    fn value(&mut self) -> Result<Json, Syntax> {
        let Some(byte) = self.next_token() else {
            return self.error("EOF while parsing a value");
        };
        match byte {
            b'n' => self.literal(b"ull", Json::Null),
            b't' => self.literal(b"rue", Json::Bool(true)),
            b'f' => self.literal(b"alse", Json::Bool(false)),
            b'"' => self.string().map(Json::Str),
            b'-' | b'0'..=b'9' => {
                self.at -= 1;
                self.number()
            }
            b'[' => self.nested(Parser::array),
            b'{' => self.nested(Parser::object),
            _ => {
                self.at -= 1;
                self.error("expected value")
            }
        }
    }

    /// Scans one value without recursion: the stack holds the closing byte of each open
    /// container.
    fn check(&mut self) -> Result<(), Syntax> {
        let mut open: Vec<u8> = Vec::new();
        loop {
            match self.next_token() {
                Some(b'[') if !self.empty(b']') => {
                    open.push(b']');
                    continue;
                }
                Some(b'{') if !self.empty(b'}') => {
                    open.push(b'}');
                    self.key()?;
                    continue;
                }
                Some(b'[' | b'{') => {}
                // Strings and numbers directly: most of a body, and no `Json` to make and drop.
                Some(b'"') => {
                    self.string()?;
                }
                Some(b'-' | b'0'..=b'9') => {
                    self.at -= 1;
                    self.number()?;
                }
                Some(_) => {
                    self.at -= 1;
                    self.value()?;
                }
                None => return self.error("EOF while parsing a value"),
            }
            // After a value: close what it ends, then the next item or entry, if any.
            loop {
                let Some(&close) = open.last() else {
                    return Ok(());
                };
                if !self.after_item(close, "expected `,` or a close", "EOF in a container")? {
                    if close == b'}' {
                        self.key()?;
                    }
                    break;
                }
                open.pop();
            }
        }
    }

    /// An object entry's key and colon, checked only.
    fn key(&mut self) -> Result<(), Syntax> {
        self.expect(b'"', "key must be a string")?;
        self.string()?;
        self.expect(b':', "expected `:`")
    }

    fn literal(&mut self, rest: &[u8], value: Json) -> Result<Json, Syntax> {
        for &expected in rest {
            match self.peek() {
                Some(byte) if byte == expected => self.at += 1,
                Some(_) => return self.error("expected ident"),
                None => return self.error("EOF while parsing a value"),
            }
        }
        Ok(value)
    }

    fn nested(&mut self, parse: fn(&mut Self) -> Result<Json, Syntax>) -> Result<Json, Syntax> {
        if self.depth >= MAX_DEPTH {
            return self.error("recursion limit exceeded");
        }
        self.depth += 1;
        let value = parse(self);
        self.depth -= 1;
        value
    }

    fn array(&mut self) -> Result<Json, Syntax> {
        let len = self.path.len();
        let mut items = Vec::new();
        if self.empty(b']') {
            return Ok(Json::Arr(items));
        }
        loop {
            push_index(self.path, items.len());
            items.push(self.value()?);
            self.path.truncate(len);
            if self.after_item(b']', "expected `,` or `]`", "EOF while parsing a list")? {
                return Ok(Json::Arr(items));
            }
        }
    }

    fn object(&mut self) -> Result<Json, Syntax> {
        let len = self.path.len();
        let mut entries: Vec<(String, Json)> = Vec::new();
        if self.empty(b'}') {
            return Ok(Json::Obj(entries));
        }
        loop {
            self.expect(b'"', "key must be a string")?;
            let key = self.string()?;
            push_name(self.path, &key);
            // Keys compare as decoded text, so an escape does not make a second name. A linear
            // scan: configuration objects are small.
            if entries.iter().any(|(seen, _)| *seen == key) {
                return Err(Syntax("duplicate key"));
            }
            self.expect(b':', "expected `:`")?;
            let value = self.value()?;
            entries.push((key, value));
            self.path.truncate(len);
            if self.after_item(b'}', "expected `,` or `}`", "EOF while parsing an object")? {
                return Ok(Json::Obj(entries));
            }
        }
    }

    /// Whether an array or object closes at once (`[]`, `{}`), consuming `close` if so.
    fn empty(&mut self, close: u8) -> bool {
        self.skip_whitespace();
        let empty = self.peek() == Some(close);
        if empty {
            self.at += 1;
        }
        empty
    }

    /// Consumes `wanted` within an object, or fails with `expected`.
    fn expect(&mut self, wanted: u8, expected: &'static str) -> Result<(), Syntax> {
        match self.next_token() {
            Some(byte) if byte == wanted => Ok(()),
            Some(_) => {
                self.at -= 1;
                self.error(expected)
            }
            None => self.error("EOF while parsing an object"),
        }
    }

    /// What follows an array item or object entry: `,` and another one (false), or `close` (true).
    fn after_item(
        &mut self,
        close: u8,
        expected: &'static str,
        eof: &'static str,
    ) -> Result<bool, Syntax> {
        match self.next_token() {
            Some(b',') => {
                self.skip_whitespace();
                if self.peek() == Some(close) {
                    return self.error("trailing comma");
                }
                Ok(false)
            }
            Some(byte) if byte == close => Ok(true),
            Some(_) => {
                self.at -= 1;
                self.error(expected)
            }
            None => self.error(eof),
        }
    }

    /// A string's content after its opening quote; the text must be UTF-8.
    fn string(&mut self) -> Result<String, Syntax> {
        let mut text = Vec::new();
        loop {
            let rest = self.bytes.get(self.at..).unwrap_or_default();
            let len = rest
                .iter()
                .position(|&byte| byte == b'"' || byte == b'\\' || byte < 0x20)
                .unwrap_or(rest.len());
            let run = rest.get(..len).unwrap_or_default();
            self.at += len;
            // When only checking, the whole text was checked to be UTF-8 at once.
            if self.keep {
                text.extend_from_slice(run);
            }
            match self.peek() {
                None => return self.error("EOF while parsing a string"),
                Some(b'"') => {
                    self.at += 1;
                    if !self.keep {
                        return Ok(String::new());
                    }
                    return String::from_utf8(text)
                        .or_else(|_| self.error("invalid unicode code point"));
                }
                Some(b'\\') => {
                    self.at += 1;
                    self.escape(&mut text)?;
                }
                Some(_) => {
                    return self
                        .error("control character (\\u0000-\\u001F) found while parsing a string")
                }
            }
        }
    }

    fn escape(&mut self, text: &mut Vec<u8>) -> Result<(), Syntax> {
        let Some(byte) = self.peek() else {
            return self.error("EOF while parsing a string");
        };
        self.at += 1;
        let simple = match byte {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let unit = self.hex4()?;
                if !self.keep {
                    return Ok(());
                }
                let code = match unit {
                    0xD800..=0xDBFF => {
                        if self.bytes.get(self.at..self.at + 2) != Some(b"\\u") {
                            return self.error("unexpected end of hex escape");
                        }
                        self.at += 2;
                        let low = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&low) {
                            return self.error("lone leading surrogate in hex escape");
                        }
                        0x10000 + ((u32::from(unit) - 0xD800) << 10) + (u32::from(low) - 0xDC00)
                    }
                    0xDC00..=0xDFFF => return self.error("lone leading surrogate in hex escape"),
                    unit => u32::from(unit),
                };
                let Some(c) = char::from_u32(code) else {
                    return self.error("invalid unicode code point");
                };
                let mut buffer = [0; 4];
                text.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
                return Ok(());
            }
            _ => {
                self.at -= 1;
                return self.error("invalid escape");
            }
        };
        if self.keep {
            text.push(simple);
        }
        Ok(())
    }

    fn hex4(&mut self) -> Result<u16, Syntax> {
        let mut value = 0u16;
        for _ in 0..4 {
            let digit = match self.peek() {
                Some(byte @ b'0'..=b'9') => byte - b'0',
                Some(byte @ b'a'..=b'f') => byte - b'a' + 10,
                Some(byte @ b'A'..=b'F') => byte - b'A' + 10,
                Some(_) => return self.error("invalid escape"),
                None => return self.error("EOF while parsing a string"),
            };
            self.at += 1;
            value = value * 16 + u16::from(digit);
        }
        Ok(value)
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`: an integer that fits is `U64` or `I64`,
    /// anything else keeps its text.
    fn number(&mut self) -> Result<Json, Syntax> {
        let start = self.at;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.at += 1;
        }
        let digits = |parser: &mut Self| {
            let from = parser.at;
            while let Some(b'0'..=b'9') = parser.peek() {
                parser.at += 1;
            }
            parser.at - from
        };
        let first = self.peek();
        let whole = digits(self);
        if whole == 0 {
            return self.error("invalid number");
        }
        if first == Some(b'0') && whole > 1 {
            self.at = start + usize::from(negative) + 1;
            return self.error("invalid number");
        }
        let mut integer = true;
        if self.peek() == Some(b'.') {
            self.at += 1;
            integer = false;
            if digits(self) == 0 {
                return self.error("invalid number");
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            integer = false;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            if digits(self) == 0 {
                return self.error("invalid number");
            }
        }
        if !self.keep {
            return Ok(Json::Null);
        }
        let text = std::str::from_utf8(self.bytes.get(start..self.at).unwrap_or_default())
            .unwrap_or_default();
        if integer {
            if negative {
                // `-0` stays a number as written: serde_json reads it as the float -0.0.
                if let Ok(value @ ..=-1) = text.parse::<i64>() {
                    return Ok(Json::I64(value));
                }
            } else if let Ok(value) = text.parse::<u64>() {
                return Ok(Json::U64(value));
            }
        }
        Ok(Json::Number(text.to_string()))
    }
}

/// A type read from configuration JSON; `#[derive(FromJson)]` implements it for structs and
/// enums. On error the reason is returned and `path` names the value that failed.
pub trait FromJson: Sized {
    /// Reads a value; `path` is where it is in the document.
    fn from_json(value: Json, path: &mut String) -> Result<Self, String>;

    /// The value of a field the object lacks (and has no `#[serde(default)]`): an error, except
    /// for an `Option`, which is `None`, as with serde.
    fn missing(field: &str) -> Result<Self, String> {
        Err(format!("missing field `{field}`"))
    }
}

/// The error for a value of the wrong JSON type.
pub fn invalid_type(value: &Json, expected: &str) -> String {
    format!("invalid type: {}, expected {expected}", value.describe())
}

/// The error for a value of the right type that is out of range.
pub fn invalid_value(value: &Json, expected: &str) -> String {
    format!("invalid value: {}, expected {expected}", value.describe())
}

/// serde's "expected one of `a`, `b`" list.
fn one_of(names: &[&str]) -> String {
    match names {
        [] => "there are none".to_string(),
        [name] => format!("expected `{name}`"),
        names => {
            let mut text = "expected one of ".to_string();
            for (index, name) in names.iter().enumerate() {
                if index > 0 {
                    text.push_str(", ");
                }
                let _ = write!(text, "`{name}`");
            }
            text
        }
    }
}

/// The error for a key a struct does not have (serde's wording, which
/// [`name_unsupported`](super::name_unsupported) reads).
pub fn unknown_field(key: &str, fields: &[&str]) -> String {
    format!("unknown field `{key}`, {}", one_of(fields))
}

/// The error for an enum name that is not a variant.
pub fn unknown_variant(name: &str, variants: &[&str]) -> String {
    format!("unknown variant `{name}`, {}", one_of(variants))
}

/// An object's entries, read one by one; each value is read at its key.
pub struct Object<'p> {
    entries: std::vec::IntoIter<(String, Json)>,
    path: &'p mut String,
    /// The length of the object's own path, which each entry's key extends.
    len: usize,
}

impl<'p> Object<'p> {
    /// The entries of `value`, which must be an object: a struct is never read from an array,
    /// as serde's derive would (the fields in order), since Envoy's proto JSON never does that.
    pub fn new(value: Json, path: &'p mut String, expected: &str) -> Result<Object<'p>, String> {
        match value {
            Json::Obj(entries) => Ok(Object {
                entries: entries.into_iter(),
                len: path.len(),
                path,
            }),
            other => Err(invalid_type(&other, expected)),
        }
    }

    /// The entries of a struct variant's content, at the variant's name.
    pub fn variant(
        content: Option<Json>,
        name: &str,
        path: &'p mut String,
        expected: &str,
    ) -> Result<Object<'p>, String> {
        push_name(path, name);
        match content {
            Some(value) => Object::new(value, path, expected),
            None => Err(format!("invalid type: unit variant, expected {expected}")),
        }
    }

    /// The next key and value; the key is on the path until the next call, so that an unknown
    /// field fails at its own path. After the last entry the path is the object's again.
    pub fn next_entry(&mut self) -> Option<(String, Json)> {
        self.path.truncate(self.len);
        let (key, value) = self.entries.next()?;
        push_name(self.path, &key);
        Some((key, value))
    }

    /// Reads the value of the entry just returned.
    pub fn read<T: FromJson>(&mut self, value: Json) -> Result<T, String> {
        T::from_json(value, self.path)
    }

    /// Reads the value of the entry just returned with `read` (`#[serde(deserialize_with)]`).
    pub fn read_with<T>(
        &mut self,
        value: Json,
        read: fn(Json, &mut String) -> Result<T, String>,
    ) -> Result<T, String> {
        read(value, self.path)
    }
}

/// An enum's variant name and content: a name alone (`"plain"`) is a unit variant; an object of
/// one key (`{"named": {...}}`) is that variant with its content.
pub fn variant(value: Json, expected: &str) -> Result<(String, Option<Json>), String> {
    match value {
        Json::Str(name) => Ok((name, None)),
        Json::Obj(entries) => {
            let mut entries = entries.into_iter();
            match (entries.next(), entries.next()) {
                (Some((name, content)), None) => Ok((name, Some(content))),
                _ => Err("invalid value: map, expected map with a single key".to_string()),
            }
        }
        other => Err(invalid_type(&other, expected)),
    }
}

/// A unit variant's content: none, or `null`.
pub fn unit_variant(content: Option<Json>, name: &str, path: &mut String) -> Result<(), String> {
    match content {
        None | Some(Json::Null) => Ok(()),
        Some(other) => {
            push_name(path, name);
            Err(invalid_type(&other, "unit variant"))
        }
    }
}

/// A newtype variant's content, read at the variant's name.
pub fn newtype_variant<T: FromJson>(
    content: Option<Json>,
    name: &str,
    path: &mut String,
) -> Result<T, String> {
    push_name(path, name);
    match content {
        Some(value) => T::from_json(value, path),
        None => Err("invalid type: unit variant, expected newtype variant".to_string()),
    }
}

impl FromJson for Json {
    fn from_json(value: Json, _path: &mut String) -> Result<Json, String> {
        Ok(value)
    }
}

impl FromJson for bool {
    fn from_json(value: Json, _path: &mut String) -> Result<bool, String> {
        match value {
            Json::Bool(value) => Ok(value),
            other => Err(invalid_type(&other, "a boolean")),
        }
    }
}

impl FromJson for String {
    fn from_json(value: Json, _path: &mut String) -> Result<String, String> {
        match value {
            Json::Str(value) => Ok(value),
            other => Err(invalid_type(&other, "a string")),
        }
    }
}

/// An integer of any width, as `i128`, so each width converts from one value.
fn integer(value: Json, expected: &str) -> Result<(i128, Json), String> {
    match value {
        Json::U64(number) => Ok((i128::from(number), value)),
        Json::I64(number) => Ok((i128::from(number), value)),
        other => Err(invalid_type(&other, expected)),
    }
}

macro_rules! from_json_integer {
    ($($ty:ty)*) => {$(
        impl FromJson for $ty {
            fn from_json(value: Json, _path: &mut String) -> Result<$ty, String> {
                let (number, value) = integer(value, stringify!($ty))?;
                <$ty>::try_from(number).map_err(|_| invalid_value(&value, stringify!($ty)))
            }
        }
    )*};
}

from_json_integer!(u8 u16 u32 u64 usize i32 i64);

impl FromJson for f64 {
    fn from_json(value: Json, _path: &mut String) -> Result<f64, String> {
        match value {
            Json::U64(number) => Ok(number as f64),
            Json::I64(number) => Ok(number as f64),
            Json::Number(ref text) => match text.parse::<f64>() {
                Ok(number) if number.is_finite() => Ok(number),
                _ => Err(invalid_value(&value, "f64")),
            },
            other => Err(invalid_type(&other, "f64")),
        }
    }
}

impl<T: FromJson> FromJson for Option<T> {
    fn from_json(value: Json, path: &mut String) -> Result<Option<T>, String> {
        match value {
            Json::Null => Ok(None),
            value => T::from_json(value, path).map(Some),
        }
    }

    fn missing(_field: &str) -> Result<Option<T>, String> {
        Ok(None)
    }
}

impl<T: FromJson> FromJson for Box<T> {
    fn from_json(value: Json, path: &mut String) -> Result<Box<T>, String> {
        T::from_json(value, path).map(Box::new)
    }
}

impl<T: FromJson> FromJson for Vec<T> {
    fn from_json(value: Json, path: &mut String) -> Result<Vec<T>, String> {
        let mut read = Vec::new();
        each_item(value, path, &mut |item, path| {
            read.push(T::from_json(item, path)?);
            Ok(())
        })?;
        Ok(read)
    }
}

/// Passes each item of an array to `read` with its index on the path.
fn each_item(
    value: Json,
    path: &mut String,
    read: &mut dyn FnMut(Json, &mut String) -> Result<(), String>,
) -> Result<(), String> {
    let Json::Arr(items) = value else {
        return Err(invalid_type(&value, "a sequence"));
    };
    let len = path.len();
    for (index, item) in items.into_iter().enumerate() {
        push_index(path, index);
        read(item, path)?;
        path.truncate(len);
    }
    Ok(())
}

impl<T: FromJson> FromJson for BTreeMap<String, T> {
    fn from_json(value: Json, path: &mut String) -> Result<BTreeMap<String, T>, String> {
        let mut map = BTreeMap::new();
        let mut object = Object::new(value, path, "a map")?;
        while let Some((key, value)) = object.next_entry() {
            let read = object.read(value)?;
            map.insert(key, read);
        }
        Ok(map)
    }
}

/// A JSON value as serde_json's: what a configuration passes through uninterpreted.
impl FromJson for serde_json::Value {
    fn from_json(value: Json, _path: &mut String) -> Result<serde_json::Value, String> {
        use serde_json::Value;
        fn convert(value: Json) -> Value {
            match value {
                Json::Null => Value::Null,
                Json::Bool(value) => Value::Bool(value),
                Json::U64(value) => Value::from(value),
                Json::I64(value) => Value::from(value),
                Json::Number(text) => serde_json::from_str(&text).unwrap_or(Value::Null),
                Json::Str(value) => Value::String(value),
                Json::Arr(items) => Value::Array(items.into_iter().map(convert).collect()),
                Json::Obj(entries) => Value::Object(
                    entries
                        .into_iter()
                        .map(|(key, value)| (key, convert(value)))
                        .collect(),
                ),
            }
        }
        Ok(convert(value))
    }
}

/// A proto enum given by name (`"MILLION"`) or by number (`2`), as proto3 JSON allows. `names`
/// lists the values in proto number order; `expected` completes "invalid value: ..., expected".
pub fn proto_enum<T: Copy>(value: Json, names: &[(&str, T)], expected: &str) -> Result<T, String> {
    let found = match &value {
        Json::Str(name) => names.iter().find(|(known, _)| known == name),
        Json::U64(number) => usize::try_from(*number)
            .ok()
            .and_then(|index| names.get(index)),
        Json::I64(_) => None,
        other => return Err(invalid_type(other, expected)),
    };
    found
        .map(|&(_, value)| value)
        .ok_or_else(|| invalid_value(&value, expected))
}
