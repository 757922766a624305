//! Typed filter configuration: JSON bytes → serde type → validated config, with every error
//! naming the field path (`providers.jwt.issuer`, `rules[2].match.prefix`).

use serde::de::DeserializeOwned;
use std::fmt;

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
    /// Checks every field and builds the runtime form, or names the first bad field.
    fn validate(self) -> Result<Self::Validated, ConfigError>;
}

/// Parses JSON configuration bytes into `T`; an empty buffer parses as `{}`.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ConfigError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let path = if path == "." { String::new() } else { path };
        ConfigError::new(path, error.into_inner().to_string())
    })?;
    deserializer
        .end()
        .map_err(|error| ConfigError::new("", error.to_string()))?;
    Ok(value)
}

/// Parses and validates configuration bytes in one step.
pub fn load<T: DeserializeOwned + Validate>(bytes: &[u8]) -> Result<T::Validated, ConfigError> {
    parse::<T>(bytes)?.validate()
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
