//! Configuration: JSON that rejects unknown fields, validated once into the immutable [`Config`].

use sdk_ext::config::{ConfigError, FromJson, Validate};
use sdk_ext::proto::HeaderValue;
use sdk_ext::validate::{header_name, header_value, modifiable_header_name, Pseudo};

/// The filter configuration.
#[derive(FromJson, Debug)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct {{Type}}Config {
    /// A request without this header is refused with a 403.
    pub required_header: String,
    /// A header set on every response; its value is literal.
    #[serde(default)]
    pub response_header: Option<HeaderValue>,
    /// Prefix of the metrics. Default `{{crate}}`.
    #[serde(default = "default_stat_prefix")]
    pub stat_prefix: String,
}

fn default_stat_prefix() -> String {
    "{{crate}}".to_string()
}

/// The validated configuration the filter runs with.
#[derive(Debug)]
pub struct Config {
    /// The required request header, lower-cased.
    pub required_header: String,
    /// The response header's lower-cased name and value.
    pub response_header: Option<(String, Vec<u8>)>,
    /// Prefix of the metrics.
    pub stat_prefix: String,
}

impl Validate for {{Type}}Config {
    type Validated = Config;

    fn validate(self) -> Result<Config, ConfigError> {
        let required_header = header_name(&self.required_header, Pseudo::Any)
            .map_err(|reason| ConfigError::new("required_header", reason))?;
        let response_header = match self.response_header {
            None => None,
            Some(header) => {
                let name = modifiable_header_name(&header.key, "set")
                    .map_err(|reason| ConfigError::new("response_header.key", reason))?;
                header_value(header.value.as_bytes())
                    .map_err(|reason| ConfigError::new("response_header.value", reason))?;
                Some((name, header.value.into_bytes()))
            }
        };
        if self.stat_prefix.is_empty() {
            return Err(ConfigError::new("stat_prefix", "must not be empty"));
        }
        Ok(Config {
            required_header,
            response_header,
            stat_prefix: self.stat_prefix,
        })
    }
}
