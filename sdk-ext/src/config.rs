//! Typed filter configuration: JSON bytes → serde type → validated config, with every error
//! naming the field path (`providers.jwt.issuer`, `rules[2].match.prefix`).

use serde::de::DeserializeOwned;
use std::fmt;

mod de;

/// A configuration error: where it is (a dotted field path) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted path to the offending field, e.g. `mutations.request_mutations[0].append`.
    pub path: String,
    /// What is wrong with it.
    pub reason: String,
}

impl ConfigError {
    /// An error at `path` for `reason`.
    pub fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// Prefixes the path with the field that contains it (`header` + `key` = `header.key`).
    pub fn within(mut self, parent: &str) -> Self {
        self.path = join_path(parent, &self.path);
        self
    }
}

/// Joins a parent field path and a child path; list indexes (`[3]`) attach without a dot.
pub fn join_path(parent: &str, child: &str) -> String {
    match (parent.is_empty(), child.is_empty()) {
        (true, _) => child.to_string(),
        (_, true) => parent.to_string(),
        _ if child.starts_with('[') => format!("{parent}{child}"),
        _ => format!("{parent}.{child}"),
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "<root>"
        } else {
            &self.path
        };
        write!(f, "invalid configuration at {path}: {}", self.reason)
    }
}

impl std::error::Error for ConfigError {}

/// A deserialized configuration that can check itself and turn into its runtime form.
pub trait Validate {
    /// The immutable form the filter runs with.
    type Validated;
    /// Fields of the native Envoy twin's config that this filter does not implement, as field
    /// paths where `*` stands for any map key or list index (`providers.*.payload_in_metadata`).
    /// A config that sets one fails with "not supported" rather than a plain "unknown field".
    const UNSUPPORTED_NATIVE_FIELDS: &'static [&'static str] = &[];
    /// Checks every field and builds the runtime form, or names the first bad field.
    fn validate(self) -> Result<Self::Validated, ConfigError>;
}

/// Parses JSON configuration bytes into `T`; an empty buffer parses as `{}`. The document must
/// be an object, no object in it may repeat a key (serde keeps the last of two map entries: two
/// providers of one name), and a struct at any depth must be an object (serde would read an
/// array as its fields in order).
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ConfigError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    match bytes.iter().find(|byte| !byte.is_ascii_whitespace()) {
        Some(b'{') => {}
        _ => {
            return Err(ConfigError::new(
                "",
                "the configuration must be a JSON object",
            ))
        }
    }
    check_unique_keys(bytes)?;
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = de::deserialize(&mut deserializer)
        .map_err(|(path, error)| ConfigError::new(path, error.to_string()))?;
    deserializer
        .end()
        .map_err(|error| ConfigError::new("", error.to_string()))?;
    Ok(value)
}

/// Fails on the first object that repeats a key, naming the key's path. Syntax errors are left
/// to the typed parse, which reports them with its own path.
fn check_unique_keys(bytes: &[u8]) -> Result<(), ConfigError> {
    use serde::de::DeserializeSeed;
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let mut duplicate = None;
    let walk = UniqueKeys {
        path: String::new(),
        duplicate: &mut duplicate,
        depth: 0,
    };
    let _ = walk.deserialize(&mut deserializer);
    match duplicate {
        Some(path) => Err(ConfigError::new(path, "duplicate key")),
        None => Ok(()),
    }
}

/// Walks a JSON value, recording the path of the first repeated object key.
struct UniqueKeys<'a> {
    path: String,
    duplicate: &'a mut Option<String>,
    depth: usize,
}

/// serde_json refuses nesting deeper than 128 itself; this bound keeps the walk's own stack
/// small whatever the input.
const MAX_DEPTH: usize = 128;

impl<'de> serde::de::DeserializeSeed<'de> for UniqueKeys<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for UniqueKeys<'_> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if self.depth >= MAX_DEPTH {
            return Err(serde::de::Error::custom("nested too deeply"));
        }
        let mut index = 0usize;
        loop {
            let item = UniqueKeys {
                path: format!("{}[{index}]", self.path),
                duplicate: &mut *self.duplicate,
                depth: self.depth + 1,
            };
            if seq.next_element_seed(item)?.is_none() {
                return Ok(());
            }
            if self.duplicate.is_some() {
                return Err(serde::de::Error::custom("duplicate key"));
            }
            index += 1;
        }
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        if self.depth >= MAX_DEPTH {
            return Err(serde::de::Error::custom("nested too deeply"));
        }
        let mut keys = std::collections::BTreeSet::new();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let path = join_path(&self.path, &key);
            if !keys.insert(key.into_owned()) {
                *self.duplicate = Some(path);
                return Err(serde::de::Error::custom("duplicate key"));
            }
            map.next_value_seed(UniqueKeys {
                path,
                duplicate: &mut *self.duplicate,
                depth: self.depth + 1,
            })?;
            if self.duplicate.is_some() {
                return Err(serde::de::Error::custom("duplicate key"));
            }
        }
        Ok(())
    }
}

/// Parses and validates configuration bytes in one step.
pub fn load<T: DeserializeOwned + Validate>(bytes: &[u8]) -> Result<T::Validated, ConfigError> {
    parse::<T>(bytes)
        .map_err(|error| name_unsupported(error, T::UNSUPPORTED_NATIVE_FIELDS))?
        .validate()
}

/// Turns serde's "unknown field" or "unknown variant" into "not supported" when the name is one
/// of `unsupported` (field paths with `*` wildcards), so users learn the field is known but missing.
pub fn name_unsupported(error: ConfigError, unsupported: &[&str]) -> ConfigError {
    let Some(name) = unknown_name(&error.reason) else {
        return error;
    };
    // The path of an unknown field ends with the field; that of an unknown variant is the enum's.
    let field_path = if error.path == name || error.path.ends_with(&format!(".{name}")) {
        error.path.clone()
    } else {
        join_path(&error.path, name)
    };
    if !unsupported
        .iter()
        .any(|pattern| path_matches(pattern, &field_path))
    {
        return error;
    }
    ConfigError::new(
        error.path,
        format!(
            "not supported: `{name}` is a field of the native Envoy filter that this filter does not implement ({})",
            error.reason
        ),
    )
}

/// The name in serde's "unknown field `x`, ..." or "unknown variant `x`, ..." messages.
fn unknown_name(reason: &str) -> Option<&str> {
    let rest = reason
        .strip_prefix("unknown field `")
        .or_else(|| reason.strip_prefix("unknown variant `"))?;
    rest.split('`').next()
}

/// Whether a field path (`rules[2].requires.x`) matches a pattern (`rules.*.requires.x`).
fn path_matches(pattern: &str, path: &str) -> bool {
    let segments = |text: &str| -> Vec<String> {
        text.replace('[', ".[")
            .split('.')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    let (pattern, path) = (segments(pattern), segments(path));
    pattern.len() == path.len()
        && pattern
            .iter()
            .zip(&path)
            .all(|(want, got)| want == "*" || want == got)
}

/// Validates each item of a list, naming the failing index in the path.
pub fn validate_each<T, U>(
    field: &str,
    items: Vec<T>,
    validate: impl Fn(T) -> Result<U, ConfigError>,
) -> Result<Vec<U>, ConfigError> {
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| validate(item).map_err(|e| e.within(&format!("{field}[{index}]"))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        #[serde(default)]
        items: Vec<Inner>,
    }

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        name: String,
    }

    #[test]
    fn unknown_field_names_its_path() {
        let err = parse::<Outer>(br#"{"items": [{"name": "a"}, {"nmae": "b"}]}"#).unwrap_err();
        assert_eq!(err.path, "items[1].nmae");
        assert!(
            err.reason.contains("unknown field `nmae`"),
            "{}",
            err.reason
        );
    }

    #[test]
    fn wrong_type_names_its_path() {
        let err = parse::<Outer>(br#"{"items": [{"name": 7}]}"#).unwrap_err();
        assert_eq!(err.path, "items[0].name");
        assert!(err.reason.contains("invalid type"), "{}", err.reason);
    }

    #[test]
    fn valid_config_parses() {
        let outer = parse::<Outer>(br#"{"items": [{"name": "a"}]}"#).unwrap();
        assert_eq!(outer.items[0].name, "a");
    }

    #[test]
    fn empty_config_is_an_empty_object() {
        assert!(parse::<Outer>(b"").unwrap().items.is_empty());
        assert!(parse::<Outer>(b" \n").unwrap().items.is_empty());
    }

    #[test]
    fn only_an_object_is_a_configuration() {
        for bytes in [&b"[]"[..], b" [{\"name\": \"a\"}]", b"null", b"1", b"\"x\""] {
            let err = parse::<Outer>(bytes).unwrap_err();
            assert_eq!(err.path, "");
            assert!(
                err.reason.contains("must be a JSON object"),
                "{}",
                err.reason
            );
        }
        // A map type as much as a struct: an array must not read as its entries.
        let err = parse::<std::collections::BTreeMap<String, u32>>(b"[]").unwrap_err();
        assert!(
            err.reason.contains("must be a JSON object"),
            "{}",
            err.reason
        );
    }

    #[test]
    fn a_repeated_key_is_refused_at_its_path_at_any_depth() {
        type Map = std::collections::BTreeMap<String, serde_json::Value>;
        let cases: &[(&[u8], &str)] = &[
            (br#"{"a": 1, "a": 2}"#, "a"),
            (br#"{"p": {"x": {}, "y": {}, "x": {"z": 1}}}"#, "p.x"),
            (br#"{"l": [{"k": 1}, {"k": 1, "k": 2}]}"#, "l[1].k"),
            // Keys compare as decoded text: an escape does not make a second name.
            (br#"{"a": 1, "\u0061": 2}"#, "a"),
        ];
        for (bytes, path) in cases {
            let err = parse::<Map>(bytes).unwrap_err();
            assert_eq!(
                (err.path.as_str(), err.reason.as_str()),
                (*path, "duplicate key"),
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
        // Structs too: serde's own check is kept, the path is ours.
        let err = parse::<Outer>(br#"{"items": [{"name": "a", "name": "b"}]}"#).unwrap_err();
        assert_eq!(err.path, "items[0].name");
        // Equal keys in different objects are fine.
        assert!(
            parse::<Map>(br#"{"a": {"k": 1}, "b": {"k": 1}, "c": [{"k": 1}, {"k": 2}]}"#).is_ok()
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!("{{\"a\": {}{}}}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse::<serde_json::Value>(deep.as_bytes()).is_err());
    }

    #[test]
    fn syntax_error_and_trailing_data_are_errors() {
        assert!(parse::<Outer>(b"{").is_err());
        let err = parse::<Outer>(b"{} {}").unwrap_err();
        assert!(err.reason.contains("trailing characters"), "{}", err.reason);
    }

    #[test]
    fn display_has_the_documented_shape() {
        let err = ConfigError::new("key", "must not be empty").within("header");
        assert_eq!(
            err.to_string(),
            "invalid configuration at header.key: must not be empty"
        );
        assert_eq!(join_path("list", "[2].x"), "list[2].x");
    }

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Twin {
        #[serde(default)]
        items: Vec<Inner>,
        #[serde(default)]
        action: Option<Action>,
    }

    #[derive(Deserialize, Debug)]
    #[serde(rename_all = "snake_case", deny_unknown_fields)]
    enum Action {
        Keep {},
    }

    impl Validate for Twin {
        type Validated = usize;
        const UNSUPPORTED_NATIVE_FIELDS: &'static [&'static str] =
            &["stage", "items.*.raw_name", "action.drop"];
        fn validate(self) -> Result<usize, ConfigError> {
            Ok(self.items.len() + usize::from(self.action.is_some()))
        }
    }

    #[test]
    fn native_fields_we_lack_are_not_supported_rather_than_unknown() {
        let err = load::<Twin>(br#"{"stage": 1}"#).unwrap_err();
        assert_eq!(err.path, "stage");
        assert!(err.reason.starts_with("not supported: `stage`"), "{err}");
        let err = load::<Twin>(br#"{"items": [{"name": "a"}, {"name": "b", "raw_name": "eA=="}]}"#)
            .unwrap_err();
        assert_eq!(err.path, "items[1].raw_name");
        assert!(err.reason.starts_with("not supported"), "{err}");
        let err = load::<Twin>(br#"{"action": {"drop": {}}}"#).unwrap_err();
        assert_eq!(err.path, "action");
        assert!(err.reason.starts_with("not supported"), "{err}");
    }

    #[test]
    fn other_unknown_fields_stay_unknown() {
        for (json, path) in [
            (&br#"{"stag": 1}"#[..], "stag"),
            (br#"{"items": [{"name_raw": "x"}]}"#, "items[0].name_raw"),
            (br#"{"raw_name": "x"}"#, "raw_name"),
            (
                br#"{"items": [{"name": "a", "stage": 1}]}"#,
                "items[0].stage",
            ),
        ] {
            let err = load::<Twin>(json).unwrap_err();
            assert_eq!(err.path, path);
            assert!(err.reason.starts_with("unknown field"), "{err}");
        }
        let err = load::<Twin>(br#"{"action": {"move": {}}}"#).unwrap_err();
        assert!(err.reason.starts_with("unknown variant"), "{err}");
    }

    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Shapes {
        #[serde(default)]
        nested: Option<Inner>,
        #[serde(default)]
        list: Vec<Inner>,
        #[serde(default)]
        by_name: std::collections::BTreeMap<String, Inner>,
        #[serde(default)]
        kinds: Vec<Kind>,
        #[serde(default, rename = "match")]
        matched: Option<Denominator>,
        #[serde(default)]
        wrapped: Option<Wrapped>,
    }

    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(rename_all = "snake_case", deny_unknown_fields)]
    enum Kind {
        Plain,
        Named(Inner),
        Text(String),
        Pair { left: u32, right: Inner },
    }

    #[derive(Deserialize, Debug, PartialEq)]
    struct Wrapped(Inner);

    /// A proto enum read by hand with `deserialize_any`, by name or number.
    #[derive(Debug, PartialEq, Clone, Copy)]
    struct Denominator(u32);

    impl<'de> Deserialize<'de> for Denominator {
        fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            crate::proto::deserialize_enum(
                deserializer,
                &[
                    ("HUNDRED", Denominator(100)),
                    ("MILLION", Denominator(1_000_000)),
                ],
                "HUNDRED or MILLION",
            )
        }
    }

    impl PartialEq for Inner {
        fn eq(&self, other: &Self) -> bool {
            self.name == other.name
        }
    }

    #[test]
    fn an_array_is_refused_wherever_a_struct_is_expected() {
        let cases: &[(&[u8], &str)] = &[
            (br#"{"nested": ["a"]}"#, "nested"),
            (br#"{"list": [{"name": "a"}, ["b"]]}"#, "list[1]"),
            (
                br#"{"by_name": {"x": {"name": "a"}, "y": ["b"]}}"#,
                "by_name.y",
            ),
            (
                br#"{"kinds": ["plain", {"named": ["a"]}]}"#,
                "kinds[1].named",
            ),
            (
                br#"{"kinds": [{"pair": [1, {"name": "a"}]}]}"#,
                "kinds[0].pair",
            ),
            (
                br#"{"kinds": [{"pair": {"left": 1, "right": ["a"]}}]}"#,
                "kinds[0].pair.right",
            ),
            (br#"{"wrapped": ["a"]}"#, "wrapped"),
            (br#"{"list": [{"name": "a"}], "nested": []}"#, "nested"),
        ];
        for (bytes, path) in cases {
            let err = parse::<Shapes>(bytes).unwrap_err();
            assert_eq!(err.path, *path, "{}", String::from_utf8_lossy(bytes));
            assert!(
                err.reason.starts_with("invalid type: sequence, expected"),
                "{}",
                err.reason
            );
        }
        let err = parse::<Shapes>(br#"{"nested": ["a"]}"#).unwrap_err();
        assert!(err.reason.contains("expected struct Inner"), "{err}");
        // The generated-config case: rate-limit's `filter_enabled`.
        type Enabled = std::collections::BTreeMap<String, crate::proto::RuntimeFractionalPercent>;
        let err = parse::<Enabled>(br#"{"filter_enabled": {"default_value": [1]}}"#).unwrap_err();
        assert_eq!(err.path, "filter_enabled.default_value");
        assert!(
            err.reason
                .starts_with("invalid type: sequence, expected struct FractionalPercent"),
            "{err}"
        );
        // serde's derive alone would have read these as the fields in order.
        let err = parse::<Outer>(br#"{"items": [["a"]]}"#).unwrap_err();
        assert_eq!(err.path, "items[0]");
    }

    #[test]
    fn every_shape_the_filters_use_still_parses() {
        let shapes = parse::<Shapes>(
            br#"{"nested": {"name": "n"}, "list": [{"name": "l"}],
                "by_name": {"k": {"name": "m"}},
                "kinds": ["plain", {"named": {"name": "e"}}, {"text": "t"},
                          {"pair": {"left": 1, "right": {"name": "p"}}}],
                "match": "MILLION", "wrapped": {"name": "w"}}"#,
        )
        .unwrap();
        let inner = |name: &str| Inner {
            name: name.to_string(),
        };
        assert_eq!(
            shapes,
            Shapes {
                nested: Some(inner("n")),
                list: vec![inner("l")],
                by_name: [("k".to_string(), inner("m"))].into_iter().collect(),
                kinds: vec![
                    Kind::Plain,
                    Kind::Named(inner("e")),
                    Kind::Text("t".to_string()),
                    Kind::Pair {
                        left: 1,
                        right: inner("p")
                    },
                ],
                matched: Some(Denominator(1_000_000)),
                wrapped: Some(Wrapped(inner("w"))),
            }
        );
        let shapes = parse::<Shapes>(br#"{"nested": null, "match": 0}"#).unwrap();
        assert_eq!(
            (shapes.nested, shapes.matched),
            (None, Some(Denominator(100)))
        );
        let value = parse::<serde_json::Value>(br#"{"a": [1, {"b": null}], "c": "d"}"#).unwrap();
        assert_eq!(value["a"][1]["b"], serde_json::Value::Null);
    }

    #[test]
    fn errors_inside_every_shape_name_their_path() {
        let cases: &[(&[u8], &str, &str)] = &[
            (br#"{"nested": {"name": 1}}"#, "nested.name", "invalid type"),
            (
                br#"{"by_name": {"k": {"nam": "a"}}}"#,
                "by_name.k.nam",
                "unknown field",
            ),
            (
                br#"{"by_name": {"k": {}}}"#,
                "by_name.k",
                "missing field `name`",
            ),
            (br#"{"kinds": ["named"]}"#, "kinds[0].named", "invalid type"),
            (
                br#"{"kinds": ["other"]}"#,
                "kinds[0]",
                "unknown variant `other`",
            ),
            (
                br#"{"kinds": [{"text": 1}]}"#,
                "kinds[0].text",
                "invalid type",
            ),
            (
                br#"{"kinds": [{"pair": {"left": 1, "right": {"name": 2}}}]}"#,
                "kinds[0].pair.right.name",
                "invalid type",
            ),
            (
                br#"{"kinds": [{"pair": {"left": 1, "extra": 2}}]}"#,
                "kinds[0].pair.extra",
                "unknown field",
            ),
            (br#"{"match": "TEN"}"#, "match", "invalid value"),
            (br#"{"match": [1]}"#, "match", "invalid type"),
            (
                br#"{"wrapped": {"name": []}}"#,
                "wrapped.name",
                "invalid type",
            ),
            (
                br#"{"list": [{"name": "a"}, {"name": "b",}]}"#,
                "list[1]",
                "trailing comma",
            ),
        ];
        for (bytes, path, reason) in cases {
            let err = parse::<Shapes>(bytes).unwrap_err();
            assert_eq!(err.path, *path, "{}", String::from_utf8_lossy(bytes));
            assert!(err.reason.contains(reason), "{}", err.reason);
        }
    }

    #[test]
    fn validate_each_names_the_index() {
        let err = validate_each("items", vec![1, 2, 3], |n| {
            if n == 3 {
                Err(ConfigError::new("value", "too big"))
            } else {
                Ok(n)
            }
        })
        .unwrap_err();
        assert_eq!(err.path, "items[2].value");
    }
}
