//! Configuration JSON in two steps. serde_json parses the bytes once into a [`Json`] tree,
//! refusing repeated keys. Then [`FromJson`] reads the config type from the tree, keeping the
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

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::{BTreeMap, HashMap};
use std::fmt::{self, Write as _};

pub use sdk_ext_derive::FromJson;

/// A parsed JSON document; objects keep their entries in document order.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    /// serde_json's integer kinds: a non-negative integer is `U64`, a negative one `I64`, any
    /// other number `F64`.
    U64(u64),
    I64(i64),
    F64(f64),
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
        let mut duplicate = false;
        let mut parser = serde_json::Deserializer::from_slice(bytes);
        let build = Build {
            path: &mut path,
            duplicate: &mut duplicate,
        };
        match build.deserialize(&mut parser).and_then(|json| {
            parser.end()?;
            Ok(json)
        }) {
            Ok(json) => Ok(json),
            Err(_) if duplicate => Err((path, "duplicate key".to_string())),
            Err(error) => Err((path, error.to_string())),
        }
    }

    /// How an error names this value (serde's wording, but a float is not printed: `f64`'s
    /// `Display` alone is 20 KB of wasm, for an error message).
    fn describe(&self) -> String {
        match self {
            Json::Null => "null".to_string(),
            Json::Bool(value) => format!("boolean `{value}`"),
            Json::U64(value) => format!("integer `{value}`"),
            Json::I64(value) => format!("integer `{value}`"),
            Json::F64(_) => "a number with a fraction or exponent".to_string(),
            Json::Str(value) => format!("string {value:?}"),
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
                _ => Json::F64(number.as_f64().unwrap_or(f64::NAN)),
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
            Json::F64(value) => serializer.serialize_f64(*value),
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

/// Builds a [`Json`] from serde_json's parser, tracking the path for its errors.
struct Build<'p> {
    path: &'p mut String,
    duplicate: &'p mut bool,
}

impl<'de> DeserializeSeed<'de> for Build<'_> {
    type Value = Json;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Json, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Build<'_> {
    type Value = Json;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_bool<E>(self, value: bool) -> Result<Json, E> {
        Ok(Json::Bool(value))
    }
    fn visit_u64<E>(self, value: u64) -> Result<Json, E> {
        Ok(Json::U64(value))
    }
    fn visit_i64<E>(self, value: i64) -> Result<Json, E> {
        Ok(Json::I64(value))
    }
    fn visit_f64<E>(self, value: f64) -> Result<Json, E> {
        Ok(Json::F64(value))
    }
    fn visit_str<E>(self, value: &str) -> Result<Json, E> {
        Ok(Json::Str(value.to_string()))
    }
    fn visit_string<E>(self, value: String) -> Result<Json, E> {
        Ok(Json::Str(value))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let len = self.path.len();
        let mut items = Vec::new();
        loop {
            push_index(self.path, items.len());
            let item = Build {
                path: &mut *self.path,
                duplicate: &mut *self.duplicate,
            };
            let Some(item) = seq.next_element_seed(item)? else {
                break;
            };
            items.push(item);
            self.path.truncate(len);
        }
        self.path.truncate(len);
        Ok(Json::Arr(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let len = self.path.len();
        let mut entries: Vec<(String, Json)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            // Keys compare as decoded text, so an escape does not make a second name. A linear
            // scan: configuration objects are small, and a sort would link more code.
            let repeated = entries.iter().any(|(seen, _)| *seen == key);
            push_name(self.path, &key);
            if repeated {
                *self.duplicate = true;
                return Err(de::Error::custom("duplicate key"));
            }
            let value = map.next_value_seed(Build {
                path: &mut *self.path,
                duplicate: &mut *self.duplicate,
            })?;
            entries.push((key, value));
            self.path.truncate(len);
        }
        Ok(Json::Obj(entries))
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
    #[allow(clippy::should_implement_trait)]
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
            Json::F64(number) => Ok(number),
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
        let Json::Arr(items) = value else {
            return Err(invalid_type(&value, "a sequence"));
        };
        let len = path.len();
        let mut read = Vec::with_capacity(items.len());
        for item in items {
            push_index(path, read.len());
            read.push(T::from_json(item, path)?);
            path.truncate(len);
        }
        Ok(read)
    }
}

/// A JSON object's entries, each read at its key.
fn entries<T: FromJson>(
    value: Json,
    path: &mut String,
    mut insert: impl FnMut(String, T),
) -> Result<(), String> {
    let mut object = Object::new(value, path, "a map")?;
    while let Some((key, value)) = object.next_entry() {
        let read = object.read(value)?;
        insert(key, read);
    }
    Ok(())
}

impl<T: FromJson> FromJson for BTreeMap<String, T> {
    fn from_json(value: Json, path: &mut String) -> Result<BTreeMap<String, T>, String> {
        let mut map = BTreeMap::new();
        entries(value, path, |key, value| {
            map.insert(key, value);
        })?;
        Ok(map)
    }
}

impl<T: FromJson> FromJson for HashMap<String, T> {
    fn from_json(value: Json, path: &mut String) -> Result<HashMap<String, T>, String> {
        let mut map = HashMap::new();
        entries(value, path, |key, value| {
            map.insert(key, value);
        })?;
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
                Json::F64(value) => Value::from(value),
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
