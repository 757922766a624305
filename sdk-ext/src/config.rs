//! Typed filter configuration: JSON bytes → [`FromJson`] type → validated config, with every error
//! naming the field path (`providers.jwt.issuer`, `rules[2].match.prefix`).

use std::fmt;

pub mod json;
pub use json::FromJson;

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
pub fn parse<T: FromJson>(bytes: &[u8]) -> Result<T, ConfigError> {
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
    let json = json::Json::parse(bytes).map_err(|(path, reason)| ConfigError::new(path, reason))?;
    read(json)
}

/// Reads a `T` from JSON text of any shape (parts of a configuration, in tests).
pub fn read_str<T: FromJson>(text: &str) -> Result<T, ConfigError> {
    let json = json::Json::parse(text.as_bytes())
        .map_err(|(path, reason)| ConfigError::new(path, reason))?;
    read(json)
}

/// Reads a `T` from a parsed document, or from a `serde_json::Value` (`.into()`).
pub fn read<T: FromJson>(json: json::Json) -> Result<T, ConfigError> {
    let mut path = String::new();
    T::from_json(json, &mut path).map_err(|reason| ConfigError::new(path, reason))
}

/// Parses and validates configuration bytes in one step.
pub fn load<T: FromJson + Validate>(bytes: &[u8]) -> Result<T::Validated, ConfigError> {
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

/// Whether a field path (`rules[2].requires.x`) matches a pattern (`rules.*.requires.x`); a
/// leading `**` stands for any number of segments (`**.condition`: a `condition` at any depth).
fn path_matches(pattern: &str, path: &str) -> bool {
    // Segments compare from the end, without allocating: `a.b[2]` is `a`, `b`, `2]`.
    let segments = |text| str::split(text, ['.', '[']).filter(|s| !s.is_empty()).rev();
    let (any_prefix, pattern) = match pattern.strip_prefix("**") {
        Some(rest) => (true, rest),
        None => (false, pattern),
    };
    let (mut want, mut got) = (segments(pattern), segments(path));
    loop {
        match (want.next(), got.next()) {
            (None, None) => return true,
            (None, Some(_)) => return any_prefix,
            (Some(_), None) => return false,
            (Some(want), Some(got)) if want != "*" && want != got => return false,
            (Some(_), Some(_)) => {}
        }
    }
}

/// Validates each item of a list, naming the failing index in the path.
pub fn validate_each<T, U>(
    field: &str,
    items: Vec<T>,
    validate: impl Fn(T) -> Result<U, ConfigError>,
) -> Result<Vec<U>, ConfigError> {
    // A loop, not `collect` into a `Result`, whose iterator adapters were 2.8 KB of rbac's wasm.
    let mut valid = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        match validate(item) {
            Ok(item) => valid.push(item),
            Err(error) => return Err(at_index(error, field, index)),
        }
    }
    Ok(valid)
}

/// The error of the item at `index` of `field`.
fn at_index(error: ConfigError, field: &str, index: usize) -> ConfigError {
    error.within(&format!("{field}[{index}]"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(FromJson, Debug)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        #[serde(default)]
        items: Vec<Inner>,
    }

    #[derive(FromJson, Debug)]
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

    #[derive(FromJson, Debug)]
    #[serde(deny_unknown_fields)]
    struct Twin {
        #[serde(default)]
        items: Vec<Inner>,
        #[serde(default)]
        action: Option<Action>,
    }

    #[derive(FromJson, Debug)]
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

    #[derive(FromJson, Debug, PartialEq)]
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

    #[derive(FromJson, Debug, PartialEq)]
    #[serde(rename_all = "snake_case", deny_unknown_fields)]
    enum Kind {
        Plain,
        Named(Inner),
        Text(String),
        Pair { left: u32, right: Inner },
    }

    #[derive(FromJson, Debug, PartialEq)]
    struct Wrapped(Inner);

    /// A proto enum read by hand, by name or number.
    #[derive(Debug, PartialEq, Clone, Copy)]
    struct Denominator(u32);

    impl FromJson for Denominator {
        fn from_json(value: json::Json, _path: &mut String) -> Result<Self, String> {
            json::proto_enum(
                value,
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

    #[derive(FromJson, Debug, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Scalars {
        #[serde(default)]
        small: Option<u8>,
        #[serde(default)]
        count: Option<u32>,
        #[serde(default)]
        offset: Option<i32>,
        #[serde(default)]
        ratio: Option<f64>,
        #[serde(default)]
        flag: Option<bool>,
        #[serde(default = "seven")]
        seven: u64,
        #[serde(default, deserialize_with = "upper")]
        upper: String,
        required: String,
    }

    fn seven() -> u64 {
        7
    }

    fn upper(value: json::Json, _path: &mut String) -> Result<String, String> {
        match value {
            json::Json::Str(text) => Ok(text.to_uppercase()),
            other => Err(json::invalid_type(&other, "a string to upper-case")),
        }
    }

    /// Lenient about unknown keys, as serde is without `deny_unknown_fields`.
    #[derive(FromJson, Debug, PartialEq)]
    struct Lenient {
        #[serde(default)]
        kept: u32,
    }

    #[test]
    fn scalars_take_their_range_and_type_only() {
        let read = |json: &str| read_str::<Scalars>(json);
        let ok = read(
            r#"{"small": 255, "count": 4294967295, "offset": -2147483648, "ratio": 2,
                "flag": false, "upper": "ab", "required": ""}"#,
        )
        .unwrap();
        assert_eq!(
            ok,
            Scalars {
                small: Some(255),
                count: Some(u32::MAX),
                offset: Some(i32::MIN),
                ratio: Some(2.0),
                flag: Some(false),
                seven: 7,
                upper: "AB".to_string(),
                required: String::new(),
            }
        );
        // null is unset, as proto3 JSON has it.
        let nulls = read(r#"{"small": null, "count": null, "required": "r"}"#).unwrap();
        assert_eq!((nulls.small, nulls.count), (None, None));
        let cases = [
            (
                r#"{"small": 256}"#,
                "small",
                "invalid value: integer `256`, expected u8",
            ),
            (
                r#"{"count": -1}"#,
                "count",
                "invalid value: integer `-1`, expected u32",
            ),
            (
                r#"{"count": 4294967296}"#,
                "count",
                "invalid value: integer `4294967296`, expected u32",
            ),
            (
                r#"{"offset": 2147483648}"#,
                "offset",
                "invalid value: integer `2147483648`, expected i32",
            ),
            (
                r#"{"count": 1.5}"#,
                "count",
                "invalid type: number `1.5`, expected u32",
            ),
            (
                r#"{"count": 1e2}"#,
                "count",
                "invalid type: number `1e2`, expected u32",
            ),
            (
                r#"{"count": 18446744073709551616}"#,
                "count",
                "invalid type: number `18446744073709551616`, expected u32",
            ),
            (
                r#"{"ratio": 1e400}"#,
                "ratio",
                "invalid value: number `1e400`, expected f64",
            ),
            (
                r#"{"count": "1"}"#,
                "count",
                "invalid type: string \"1\", expected u32",
            ),
            (
                r#"{"ratio": "1"}"#,
                "ratio",
                "invalid type: string \"1\", expected f64",
            ),
            (
                r#"{"flag": 1}"#,
                "flag",
                "invalid type: integer `1`, expected a boolean",
            ),
            (
                r#"{"upper": 1}"#,
                "upper",
                "invalid type: integer `1`, expected a string to upper-case",
            ),
            (
                r#"{"required": null}"#,
                "required",
                "invalid type: null, expected a string",
            ),
            (r#"{}"#, "", "missing field `required`"),
            (
                r#"{"required": "r", "extra": 1}"#,
                "extra",
                "unknown field `extra`, expected one of `small`, `count`",
            ),
        ];
        for (json, path, reason) in cases {
            let error = read(json).unwrap_err();
            assert_eq!(error.path, path, "{json}: {error}");
            assert!(error.reason.starts_with(reason), "{json}: {error}");
        }
        // Without deny_unknown_fields an unknown key is skipped, whatever it holds.
        assert_eq!(
            read_str::<Lenient>(r#"{"kept": 1, "other": [{"a": 1}]}"#).unwrap(),
            Lenient { kept: 1 }
        );
        // The root itself: only an object is a configuration, any value a part of one.
        assert_eq!(read_str::<u32>("5").unwrap(), 5);
        assert_eq!(read_str::<Vec<u8>>("[1, 2]").unwrap(), vec![1, 2]);
        assert_eq!(read_str::<Vec<u8>>("[1, 256]").unwrap_err().path, "[1]");
    }

    #[test]
    fn enum_shapes_that_do_not_fit_are_refused_at_the_variant() {
        let cases: &[(&[u8], &str, &str)] = &[
            // A unit variant takes no content but null.
            (
                br#"{"kinds": [{"plain": 1}]}"#,
                "kinds[0].plain",
                "invalid type: integer `1`, expected unit variant",
            ),
            (br#"{"kinds": [{"plain": null}]}"#, "", ""),
            // A newtype or struct variant needs its content.
            (
                br#"{"kinds": ["text"]}"#,
                "kinds[0].text",
                "expected newtype variant",
            ),
            (
                br#"{"kinds": ["pair"]}"#,
                "kinds[0].pair",
                "expected struct variant Kind::Pair",
            ),
            (
                br#"{"kinds": [{"text": "a", "plain": null}]}"#,
                "kinds[0]",
                "expected map with a single key",
            ),
            (
                br#"{"kinds": [{}]}"#,
                "kinds[0]",
                "expected map with a single key",
            ),
            (
                br#"{"kinds": [3]}"#,
                "kinds[0]",
                "invalid type: integer `3`, expected enum Kind",
            ),
        ];
        for (bytes, path, reason) in cases {
            let result = parse::<Shapes>(bytes);
            if reason.is_empty() {
                assert!(result.is_ok(), "{:?}", result.err());
                continue;
            }
            let error = result.unwrap_err();
            assert_eq!(
                error.path,
                *path,
                "{}: {error}",
                String::from_utf8_lossy(bytes)
            );
            assert!(error.reason.contains(reason), "{error}");
        }
    }

    #[test]
    fn a_document_written_back_keeps_its_order_and_values() {
        let text = r#"{"z":1,"a":[-1,2.5,"x",null,true,{"k":{}}],"m":"\u00e9"}"#;
        let json = json::Json::parse(text.as_bytes()).unwrap();
        assert_eq!(
            serde_json::to_string(&json).unwrap(),
            r#"{"z":1,"a":[-1,2.5,"x",null,true,{"k":{}}],"m":"é"}"#
        );
        let value: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(json::Json::from(value.clone()), {
            // serde_json's map sorts its keys; the tree from a Value has them in that order.
            let sorted = serde_json::to_string(&value).unwrap();
            json::Json::parse(sorted.as_bytes()).unwrap()
        });
    }

    /// Our parser against serde_json's on the same bytes: edge cases, then generated documents
    /// with random whitespace and random byte mutations. They must agree on every value, and
    /// refuse the same texts, except for two documented differences: a repeated key (refused
    /// here, kept last by serde_json) and a number beyond f64 (kept as text here; a field that
    /// reads it refuses it). `Json::is_valid` must agree with serde_json's `IgnoredAny` on all.
    #[test]
    fn the_parser_agrees_with_serde_json() {
        let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let mut cases: Vec<Vec<u8>> = [
            "",
            " ",
            "null",
            "nul",
            "nulll",
            "true",
            "tru",
            "false",
            "0",
            "-0",
            "01",
            "-01",
            "1.",
            ".1",
            "1e",
            "1e+",
            "1E-2",
            "-",
            "--1",
            "+1",
            "1.5e-3",
            "-1.0",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775808",
            "-9223372036854775809",
            "1e400",
            "-1e400",
            "1e-400",
            "123456789012345678901234567890",
            r#""""#,
            r#""a"#,
            r#""\""#,
            r#""\u00e9\n\t\/\\\"\b\f\r""#,
            r#""\ud83d\ude00""#,
            r#""\ud83d""#,
            r#""\ude00""#,
            r#""\ud83dx""#,
            r#""\ud83d\u0041""#,
            r#""\u12""#,
            r#""\x""#,
            "\"\t\"",
            "\"\u{7f}\"",
            "[]",
            "[1,]",
            "[,1]",
            "[1 2]",
            "[1",
            "{}",
            "{\"a\":1,}",
            "{\"a\" 1}",
            "{\"a\":}",
            "{1:2}",
            "{\"a\":1",
            "{\"a\":1 \"b\":2}",
            "{\"a\":1}{}",
            "{\"a\":1} x",
            " {\"a\" : [ 1 , { } ] } ",
            "\u{feff}{}",
            "[1]\n",
            "{\"a\":1,\"a\":2}",
            "{\"a\":1,\"\\u0061\":2}",
        ]
        .iter()
        .map(|text| text.as_bytes().to_vec())
        .collect();
        for depth in [126, 127, 128, 129, 100_000] {
            cases.push(nested(depth).into_bytes());
        }
        cases.push(format!("{}1{}", "{\"a\":[".repeat(50_000), "]}".repeat(50_000)).into_bytes());
        cases.push(b"\"\xff\"".to_vec());
        cases.push(b"\"\xc3\xa9\"".to_vec());
        cases.push(b"\"\xed\xa0\x80\"".to_vec());
        cases.push(b"[\x00]".to_vec());
        // Generated documents, each mutated at up to three bytes.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |bound: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % bound
        };
        fn generate(next: &mut dyn FnMut(u64) -> u64, depth: u32, out: &mut String) {
            let space = |next: &mut dyn FnMut(u64) -> u64, out: &mut String| {
                for _ in 0..next(3) {
                    out.push([' ', '\n', '\t', '\r'][next(4) as usize]);
                }
            };
            space(next, out);
            match next(if depth > 3 { 6 } else { 8 }) {
                0 => out.push_str(["null", "true", "false"][next(3) as usize]),
                1 => out.push_str(&next(u64::MAX).to_string()),
                2 => out.push_str(&format!("-{}", next(1 << 63))),
                3 => out
                    .push_str(["1.5", "-0.25e3", "1E+2", "0.0", "2e-7", "1e999"][next(6) as usize]),
                4 | 5 => {
                    out.push('"');
                    for _ in 0..next(6) {
                        out.push_str(
                            [
                                "a",
                                "é",
                                "\\n",
                                "\\u0041",
                                "\\ud83d\\ude00",
                                "\\\"",
                                "😀",
                                " ",
                            ][next(8) as usize],
                        );
                    }
                    out.push('"');
                }
                6 => {
                    out.push('[');
                    for index in 0..next(4) {
                        if index > 0 {
                            out.push(',');
                        }
                        generate(next, depth + 1, out);
                    }
                    out.push(']');
                }
                _ => {
                    out.push('{');
                    for index in 0..next(4) {
                        if index > 0 {
                            out.push(',');
                        }
                        out.push_str(
                            ["\"k\"", "\"key\"", "\"\\u006b\"", "\"x\""][next(4) as usize],
                        );
                        space(next, out);
                        out.push(':');
                        generate(next, depth + 1, out);
                    }
                    out.push('}');
                }
            }
            space(next, out);
        }
        for _ in 0..30_000 {
            let mut text = String::new();
            generate(&mut next, 0, &mut text);
            let mut bytes = text.into_bytes();
            for _ in 0..next(4) {
                let at = next(bytes.len() as u64 + 1) as usize;
                let byte = b"{}[],:\"\\ 0-.eE\x00\xff\xc3tnu1"[next(21) as usize];
                match next(3) {
                    0 if at < bytes.len() => {
                        bytes.remove(at);
                    }
                    1 if at < bytes.len() => bytes[at] = byte,
                    _ => bytes.insert(at, byte),
                }
            }
            cases.push(bytes);
        }
        let (mut accepted, mut refused) = (0, 0);
        for bytes in &cases {
            let shown = String::from_utf8_lossy(bytes);
            // The checker, against what serde_json reads into `IgnoredAny` (which takes any
            // bytes in a string).
            let valid = std::str::from_utf8(bytes).is_ok()
                && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok();
            assert_eq!(json::Json::is_valid(bytes), valid, "{shown}");
            let ours = json::Json::parse(bytes);
            let theirs = serde_json::from_slice::<serde_json::Value>(bytes);
            match (ours, theirs) {
                (Ok(ours), Ok(theirs)) => {
                    accepted += 1;
                    let ours = read::<serde_json::Value>(ours).unwrap();
                    assert_eq!(ours, theirs, "{shown}");
                }
                (Err(_), Err(_)) => refused += 1,
                (Err((_, reason)), Ok(_)) => {
                    assert_eq!(reason, "duplicate key", "{shown}: serde_json accepts");
                }
                (Ok(_), Err(error)) => {
                    assert!(
                        error.to_string().starts_with("number out of range"),
                        "{shown}: serde_json refuses: {error}"
                    );
                }
            }
        }
        assert!(accepted > 5_000 && refused > 5_000, "{accepted} {refused}");
    }

    #[test]
    fn unsupported_field_patterns_match_whole_segments() {
        for (pattern, path, matches) in [
            ("stage", "stage", true),
            ("stage", "stages", false),
            ("stage", "a.stage", false),
            ("rules.*.requires.x", "rules[2].requires.x", true),
            ("rules.*.requires.x", "rules.p.requires.x", true),
            ("rules.*.requires.x", "rules[2].requires", false),
            ("rules.*.requires.x", "a.rules[2].requires.x", false),
            ("a.b", "a[1].b", false),
            ("**.condition", "condition", true),
            ("**.condition", "policies.p.permissions[0].condition", true),
            ("**.condition", "policies.p.conditions", false),
            ("**.a.*", "x[3].a.b", true),
            ("**.a.*", "x[3].a", false),
        ] {
            assert_eq!(path_matches(pattern, path), matches, "{pattern} {path}");
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
