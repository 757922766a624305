//! Configuration: Envoy's `header_mutation` filter config as JSON, validated into [`Config`].

use crate::format::Template;
use sdk_ext::config::{validate_each, ConfigError, FromJson, Validate};
use sdk_ext::proto::{AppendAction, HeaderValueOption};
use sdk_ext::validate::{header_name, header_value, modifiable_header_name, Pseudo};

/// The filter configuration, as Envoy's `envoy.extensions.filters.http.header_mutation.v3.HeaderMutation`.
#[derive(FromJson, Debug, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct HeaderRewriteConfig {
    /// The mutations to apply.
    #[serde(default)]
    pub mutations: Mutations,
}

/// `envoy.extensions.filters.http.header_mutation.v3.Mutations`.
#[derive(FromJson, Debug, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Mutations {
    /// Applied to request headers, in order.
    #[serde(default)]
    pub request_mutations: Vec<HeaderMutation>,
    /// Applied to response headers, in order.
    #[serde(default)]
    pub response_mutations: Vec<HeaderMutation>,
    /// Applied to request trailers when the request has trailers.
    #[serde(default)]
    pub request_trailers_mutations: Vec<HeaderMutation>,
    /// Applied to response trailers when the response has trailers.
    #[serde(default)]
    pub response_trailers_mutations: Vec<HeaderMutation>,
}

/// `envoy.config.common.mutation_rules.v3.HeaderMutation`: exactly one of `append` or `remove`.
#[derive(FromJson, Debug)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum HeaderMutation {
    /// Add or overwrite a header.
    Append(HeaderValueOption),
    /// Remove every entry of a header.
    Remove(String),
}

/// The validated, immutable configuration the filter runs with.
#[derive(Debug, Default)]
pub struct Config {
    /// Request header mutations, in order.
    pub request: Vec<Mutation>,
    /// Response header mutations, in order.
    pub response: Vec<Mutation>,
    /// Request trailer mutations, in order.
    pub request_trailers: Vec<Mutation>,
    /// Response trailer mutations, in order.
    pub response_trailers: Vec<Mutation>,
    /// Request headers that response-side values read. Envoy only exposes request headers to a
    /// wasm filter during the request callbacks, so these are captured then.
    pub captured_request_headers: Vec<String>,
}

/// One validated mutation.
#[derive(Debug)]
pub enum Mutation {
    /// Add or overwrite `name` with the rendered `value`.
    Append {
        /// Lower-case header name.
        name: String,
        /// Value template.
        value: Template,
        /// Behaviour when the header exists.
        action: AppendAction,
        /// Add even when the value renders empty.
        keep_empty_value: bool,
    },
    /// Remove every entry of `name`.
    Remove {
        /// Lower-case header name.
        name: String,
    },
}

impl Validate for HeaderRewriteConfig {
    type Validated = Config;
    const UNSUPPORTED_NATIVE_FIELDS: &'static [&'static str] = &[
        "most_specific_header_mutations_wins",
        "mutations.query_parameter_mutations",
        "mutations.*.*.remove_on_match",
        "mutations.*.*.append.header.raw_value",
    ];

    fn validate(self) -> Result<Config, ConfigError> {
        let m = self.mutations;
        let list = |field: &str, items| {
            validate_each(field, items, HeaderMutation::validate).map_err(|e| e.within("mutations"))
        };
        let response = list("response_mutations", m.response_mutations)?;
        let response_trailers = list("response_trailers_mutations", m.response_trailers_mutations)?;
        let mut captured_request_headers: Vec<String> = Vec::new();
        for mutation in response.iter().chain(&response_trailers) {
            if let Mutation::Append { value, .. } = mutation {
                for name in value.request_headers_read() {
                    if !captured_request_headers.iter().any(|known| known == name) {
                        captured_request_headers.push(name.to_string());
                    }
                }
            }
        }
        Ok(Config {
            request: list("request_mutations", m.request_mutations)?,
            response,
            request_trailers: list("request_trailers_mutations", m.request_trailers_mutations)?,
            response_trailers,
            captured_request_headers,
        })
    }
}

impl HeaderMutation {
    fn validate(self) -> Result<Mutation, ConfigError> {
        match self {
            HeaderMutation::Remove(name) => {
                let name = modifiable_header_name(&name, "removed")
                    .map_err(|reason| ConfigError::new("remove", reason))?;
                Ok(Mutation::Remove { name })
            }
            HeaderMutation::Append(option) => {
                validate_append(option).map_err(|e| e.within("append"))
            }
        }
    }
}

/// Validates an `append` mutation: the name, then the value as a template, then the action.
/// Unlike native, a mutation may set the pseudo-headers Envoy knows (see README.md).
fn validate_append(option: HeaderValueOption) -> Result<Mutation, ConfigError> {
    let name = header_name(&option.header.key, Pseudo::Known)
        .map_err(|reason| ConfigError::new("header.key", reason))?;
    let text = &option.header.value;
    header_value(text.as_bytes()).map_err(|reason| ConfigError::new("header.value", reason))?;
    let value = Template::parse(text).map_err(|e| e.within("header.value"))?;
    Ok(Mutation::Append {
        name,
        value,
        action: option.action()?,
        keep_empty_value: option.keep_empty_value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sdk_ext::config::load;

    fn load_json(json: serde_json::Value) -> Result<Config, ConfigError> {
        load::<HeaderRewriteConfig>(json.to_string().as_bytes())
    }

    fn error_of(json: serde_json::Value) -> ConfigError {
        load_json(json).expect_err("config should be rejected")
    }

    #[test]
    fn full_config_validates() {
        let config = load_json(serde_json::json!({"mutations": {
            "request_mutations": [
                {"append": {"header": {"key": "X-Added", "value": "v-%REQ(:path)%"}}},
                {"append": {"header": {"key": ":path", "value": "/new"}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}},
                {"append": {"header": {"key": "x-n", "value": "1"}, "append_action": 3}},
                {"append": {"header": {"key": "x-old", "value": "1"}, "append": false}},
                {"remove": "X-Remove"}
            ],
            "response_mutations": [{"append": {"header": {"key": "x-e", "value": ""}, "keep_empty_value": true}}],
            "request_trailers_mutations": [{"remove": "x-t"}],
            "response_trailers_mutations": []
        }}))
        .unwrap();
        assert_eq!(config.request.len(), 5);
        match &config.request[0] {
            Mutation::Append { name, action, .. } => {
                assert_eq!(name, "x-added");
                assert_eq!(*action, AppendAction::AppendIfExistsOrAdd);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            &config.request[2],
            Mutation::Append {
                action: AppendAction::OverwriteIfExists,
                ..
            }
        ));
        assert!(matches!(
            &config.request[3],
            Mutation::Append {
                action: AppendAction::OverwriteIfExistsOrAdd,
                ..
            }
        ));
        assert!(matches!(&config.request[4], Mutation::Remove { name } if name == "x-remove"));
        assert!(matches!(
            &config.response[0],
            Mutation::Append {
                keep_empty_value: true,
                ..
            }
        ));
        assert_eq!(config.request_trailers.len(), 1);
        assert!(config.captured_request_headers.is_empty());
    }

    #[test]
    fn request_headers_read_by_response_values_are_captured_once() {
        let config = load_json(serde_json::json!({"mutations": {
            "request_mutations": [{"append": {"header": {"key": "a", "value": "%REQ(x-request-only)%"}}}],
            "response_mutations": [
                {"append": {"header": {"key": "b", "value": "%REQ(X-User)%%REQ(x-user?x-alt)%"}}},
                {"remove": "c"}
            ],
            "response_trailers_mutations": [{"append": {"header": {"key": "d", "value": "%REQ(x-alt)%"}}}]
        }}))
        .unwrap();
        assert_eq!(config.captured_request_headers, ["x-user", "x-alt"]);
    }

    #[test]
    fn empty_config_is_a_no_op_filter() {
        let config = load::<HeaderRewriteConfig>(b"").unwrap();
        assert!(config.request.is_empty() && config.response.is_empty());
    }

    #[test]
    fn errors_name_the_field_path() {
        let cases = [
            (
                serde_json::json!({"mutations": {"request_mutations": [{"append": {"header": {"key": "x", "value": "v"}, "append_action": "APPEND"}}]}}),
                "mutations.request_mutations[0].append.append_action",
                "invalid value",
            ),
            (
                serde_json::json!({"mutations": {"request_mutations": [{"remove": "a"}, {"append": {"header": {"key": "", "value": "v"}}}]}}),
                "mutations.request_mutations[1].append.header.key",
                "must not be empty",
            ),
            (
                serde_json::json!({"mutations": {"response_mutations": [{"append": {"header": {"key": "x", "value": "v", "raw_value": "eA=="}}}]}}),
                "mutations.response_mutations[0].append.header.raw_value",
                "unknown field",
            ),
            (
                serde_json::json!({"mutation": {}}),
                "mutation",
                "unknown field",
            ),
            (
                serde_json::json!({"mutations": {"request_mutations": [{"remove": ":path"}]}}),
                "mutations.request_mutations[0].remove",
                "cannot be removed",
            ),
            (
                serde_json::json!({"mutations": {"request_mutations": [{"remove": ""}]}}),
                "mutations.request_mutations[0].remove",
                "must not be empty",
            ),
            (
                serde_json::json!({"mutations": {"request_mutations": [{"remove": "Host"}]}}),
                "mutations.request_mutations[0].remove",
                "cannot be removed",
            ),
            (
                serde_json::json!({"mutations": {"request_mutations": [{"append": {"header": {"key": "x", "value": "%BOGUS%"}}}]}}),
                "mutations.request_mutations[0].append.header.value",
                "unsupported command %BOGUS%",
            ),
            (
                serde_json::json!({"mutations": {"request_mutations": [{"append": {"header": {"key": "x y", "value": "v"}}}]}}),
                "mutations.request_mutations[0].append.header.key",
                "not a valid header name",
            ),
            (
                serde_json::json!({"mutations": {"request_mutations": [{"append": {"header": {"key": ":foo", "value": "v"}}}]}}),
                "mutations.request_mutations[0].append.header.key",
                "unknown pseudo-header",
            ),
            (
                serde_json::json!({"mutations": {"request_mutations": [{"append": {"header": {"key": "x", "value": "a\nb"}}}]}}),
                "mutations.request_mutations[0].append.header.value",
                "must not contain",
            ),
            (
                serde_json::json!({"mutations": {"request_mutations": [{"append": {"header": {"key": "x", "value": "v"}, "append": true, "append_action": "ADD_IF_ABSENT"}}]}}),
                "mutations.request_mutations[0].append.append",
                "both append and append_action",
            ),
            (
                serde_json::json!({"mutations": {"request_mutations": [{"append": {"header": {"key": "x"}}, "remove": "y"}]}}),
                "mutations.request_mutations[0]",
                "",
            ),
            (
                serde_json::json!({"mutations": {"request_mutations": {"remove": "y"}}}),
                "mutations.request_mutations",
                "invalid type",
            ),
        ];
        for (json, path, reason) in cases {
            let err = error_of(json.clone());
            assert_eq!(err.path, path, "{json}: {err}");
            assert!(err.reason.contains(reason), "{json}: {err}");
        }
    }
}
