//! Configuration: Envoy's `basic_auth.v3.BasicAuth` as JSON, plus `rules` (a wasm filter has no
//! per-route config) and `stat_prefix`, validated once into the immutable [`Config`].

use crate::htpasswd::Users;
use sdk_ext::config::{validate_each, ConfigError, FromJson, Validate};
use sdk_ext::matcher::{RouteMatch, RouteMatchConfig};
use sdk_ext::proto::DataSource;
use sdk_ext::validate::{header_name, modifiable_header_name, Pseudo};

/// The filter configuration, as `envoy.extensions.filters.http.basic_auth.v3.BasicAuth`.
#[derive(FromJson, Debug)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct BasicAuthConfig {
    /// The users, in htpasswd format (`name:{SHA}base64(sha1(password))` or bcrypt).
    #[serde(default)]
    pub users: Option<DataSource>,
    /// On success, this request header is set to the user name (client values are replaced).
    #[serde(default)]
    pub forward_username_header: String,
    /// Read the credential from this header instead of `authorization`.
    #[serde(default)]
    pub authentication_header: String,
    /// Where credentials are required (not in native: it uses per-route config). Empty: every
    /// request. Otherwise the first rule whose `match` matches decides, and a request no rule
    /// matches passes without credentials.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    /// Metric names become `basic_auth.<stat_prefix>.*` (native: `http.<hcm>.basic_auth.*`).
    #[serde(default)]
    pub stat_prefix: Option<String>,
}

/// One entry of `rules`.
#[derive(FromJson, Debug)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Envoy's route match: `prefix`, `path`, `safe_regex`, `path_separated_prefix`,
    /// `case_sensitive`, `headers`.
    #[serde(rename = "match")]
    pub route: RouteMatchConfig,
    /// `true`: a matching request needs no credentials, as native's per-route
    /// `FilterConfig {disabled: true}`.
    #[serde(default)]
    pub disabled: bool,
}

/// A compiled rule.
#[derive(Debug)]
pub struct Rule {
    /// Which requests it covers.
    pub route: RouteMatch,
    /// Whether those requests go without credentials.
    pub disabled: bool,
}

/// The validated configuration the filter runs with.
#[derive(Debug)]
pub struct Config {
    /// The users.
    pub users: Users,
    /// Lower-cased header set to the user name on success, if any.
    pub forward_username_header: Option<String>,
    /// Lower-cased header the credential is read from.
    pub authentication_header: String,
    /// Where credentials are required; empty: everywhere.
    pub rules: Vec<Rule>,
    /// Metric name prefix: `basic_auth` or `basic_auth.<stat_prefix>`.
    pub stat_prefix: String,
}

impl Validate for BasicAuthConfig {
    type Validated = Config;
    const UNSUPPORTED_NATIVE_FIELDS: &'static [&'static str] = &[
        "users.filename",
        "users.environment_variable",
        "users.watched_directory",
    ];

    fn validate(self) -> Result<Config, ConfigError> {
        let users = match self.users {
            None => return Err(ConfigError::new("users", "required (inline_string)")),
            Some(source) => users(source)?,
        };
        if users.is_empty() {
            log::warn!(
                "basic_auth: users lists nobody: every request that needs credentials is refused"
            );
        }
        let forward_username_header = if self.forward_username_header.is_empty() {
            None
        } else {
            Some(
                modifiable_header_name(&self.forward_username_header, "set")
                    .map_err(|reason| ConfigError::new("forward_username_header", reason))?,
            )
        };
        let authentication_header = if self.authentication_header.is_empty() {
            "authorization".to_string()
        } else {
            header_name(&self.authentication_header, Pseudo::Never)
                .map_err(|reason| ConfigError::new("authentication_header", reason))?
        };
        let rules = validate_each("rules", self.rules, |rule| {
            Ok(Rule {
                route: rule.route.compile().map_err(|e| e.within("match"))?,
                disabled: rule.disabled,
            })
        })?;
        let stat_prefix = match self.stat_prefix {
            None => "basic_auth".to_string(),
            Some(prefix) if prefix.is_empty() => {
                return Err(ConfigError::new(
                    "stat_prefix",
                    "must not be empty when set",
                ))
            }
            Some(prefix) => format!("basic_auth.{prefix}"),
        };
        Ok(Config {
            users,
            forward_username_header,
            authentication_header,
            rules,
            stat_prefix,
        })
    }
}

/// The htpasswd text of `users`, parsed; errors name `users.inline_string` (or `inline_bytes`)
/// and the line.
fn users(source: DataSource) -> Result<Users, ConfigError> {
    let (field, text) = source.text().map_err(|error| error.within("users"))?;
    Users::parse(&text).map_err(|reason| ConfigError::new(format!("users.{field}"), reason))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    use base64::Engine as _;

    fn inline_bytes(encoded: &str) -> Result<usize, ConfigError> {
        users(DataSource {
            inline_string: None,
            inline_bytes: Some(encoded.to_string()),
        })
        .map(|users| users.len())
    }

    #[test]
    fn inline_bytes_is_either_alphabet_with_any_padding_of_up_to_two() {
        // `>>>?` encodes to `Pj4/` (standard) or `Pj4_` (url-safe).
        let text = "a:{SHA}tESsBmE/yNY3lb6a0L6vVQEZNqw=\n# >>>?\n";
        let (standard, url_safe) = (STANDARD.encode(text), URL_SAFE.encode(text));
        assert_ne!(standard, url_safe);
        let bare = standard.trim_end_matches('=').to_string();
        assert_ne!(bare, standard, "the test needs padding");
        for encoded in [
            standard.clone(),
            url_safe.clone(),
            bare.clone(),
            format!("{bare}=="),
        ] {
            assert_eq!(inline_bytes(&encoded).unwrap(), 1, "{encoded:?}");
        }
        for bad in [
            format!("{bare}==="),
            format!("{bare}=A"),
            format!("{bare}!"),
        ] {
            assert!(inline_bytes(&bad).is_err(), "{bad:?}");
        }
    }
}
