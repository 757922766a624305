//! Envoy's common proto3 types as they appear in JSON configuration, for filters whose config
//! mirrors a native one: `google.protobuf.Duration` (`"1.5s"`), `type.v3.FractionalPercent`,
//! `config.core.v3.RuntimeFractionalPercent`, `config.core.v3.HeaderValueOption`,
//! `type.v3.HttpStatus` and `type.v3.TokenBucket`, and [`proto_enum`](crate::config::json::proto_enum) for proto
//! enums given by name or number. Rate-limit actions and descriptors are in [`ratelimit`](crate::ratelimit).
//!
//! ```json
//! {"fill_interval": "0.5s",
//!  "filter_enabled": {"default_value": {"numerator": 100, "denominator": "HUNDRED"}, "runtime_key": "x"},
//!  "response_headers_to_add": [{"header": {"key": "x-a", "value": "1"}, "append_action": "ADD_IF_ABSENT"}]}
//! ```

use crate::config::json::{invalid_type, Json};
use crate::config::{ConfigError, FromJson};
use crate::text::Quoted;
use std::time::Duration;

/// A `google.protobuf.Duration` in its JSON form: decimal seconds with an `s` suffix, up to nine
/// fractional digits (`"1s"`, `"0.050s"`, `"3600s"`). Negative durations are rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProtoDuration(pub Duration);

/// Parses the JSON form of a `google.protobuf.Duration` (`"1.5s"`) into a non-negative duration.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let quoted = Quoted(text);
    let expected = || format!("{quoted} is not a duration like \"1s\" or \"0.5s\"");
    let number = text.strip_suffix('s').ok_or_else(expected)?;
    if number.starts_with('-') {
        return Err(format!("{quoted} is negative"));
    }
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(expected());
    }
    if fraction.len() > 9 {
        return Err(format!("{quoted} has more than nine fractional digits"));
    }
    let seconds: u64 = if whole.is_empty() {
        0
    } else {
        whole
            .parse()
            .map_err(|_| format!("{quoted} is too large"))?
    };
    // proto3 caps a Duration at 10,000 years.
    if seconds > 315_576_000_000 {
        return Err(format!("{quoted} is too large"));
    }
    let nanos = if fraction.is_empty() {
        0
    } else {
        let digits: u32 = fraction.parse().map_err(|_| expected())?;
        digits * 10u32.pow(9 - fraction.len() as u32)
    };
    Ok(Duration::new(seconds, nanos))
}

impl FromJson for ProtoDuration {
    fn from_json(value: Json, _path: &mut String) -> Result<Self, String> {
        match value {
            Json::Str(text) => parse_duration(&text).map(ProtoDuration),
            other => Err(invalid_type(
                &other,
                "a duration string like \"1s\" or \"0.5s\"",
            )),
        }
    }
}

/// `type.v3.FractionalPercent.DenominatorType`, by name or by its proto number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Denominator {
    /// 100 (`HUNDRED`, 0).
    #[default]
    Hundred,
    /// 10,000 (`TEN_THOUSAND`, 1).
    TenThousand,
    /// 1,000,000 (`MILLION`, 2).
    Million,
}

impl Denominator {
    /// The denominator as a number.
    pub fn value(self) -> u32 {
        match self {
            Denominator::Hundred => 100,
            Denominator::TenThousand => 10_000,
            Denominator::Million => 1_000_000,
        }
    }
}

impl FromJson for Denominator {
    fn from_json(value: Json, _path: &mut String) -> Result<Self, String> {
        crate::config::json::proto_enum(
            value,
            &[
                ("HUNDRED", Denominator::Hundred),
                ("TEN_THOUSAND", Denominator::TenThousand),
                ("MILLION", Denominator::Million),
            ],
            "one of HUNDRED, TEN_THOUSAND, MILLION (or 0-2)",
        )
    }
}

/// `type.v3.FractionalPercent`: `numerator` out of `denominator` (default `HUNDRED`). A numerator
/// above the denominator means 100%, as in Envoy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, FromJson)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct FractionalPercent {
    /// The share, out of the denominator.
    #[serde(default)]
    pub numerator: u32,
    /// 100, 10,000 or 1,000,000.
    #[serde(default)]
    pub denominator: Denominator,
}

/// How often a [`FractionalPercent`] holds, reduced for a fast check per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sampling {
    /// 0%: never.
    Never,
    /// 100% (or more): always.
    Always,
    /// `numerator` out of `denominator`, both as configured.
    Fraction {
        /// The share.
        numerator: u32,
        /// Out of this.
        denominator: u32,
    },
}

impl Sampling {
    /// Whether the event happens for a uniformly random `random` (Envoy's
    /// `random % denominator < numerator`). `Never` and `Always` ignore `random`.
    pub fn sample(self, random: u64) -> bool {
        match self {
            Sampling::Never => false,
            Sampling::Always => true,
            Sampling::Fraction {
                numerator,
                denominator,
            } => random % u64::from(denominator) < u64::from(numerator),
        }
    }

    /// Whether `sample` needs a random number at all.
    pub fn is_random(self) -> bool {
        matches!(self, Sampling::Fraction { .. })
    }
}

impl FractionalPercent {
    /// 100%.
    pub const ALWAYS: FractionalPercent = FractionalPercent {
        numerator: 100,
        denominator: Denominator::Hundred,
    };

    /// The percent as a [`Sampling`].
    pub fn sampling(self) -> Sampling {
        let denominator = self.denominator.value();
        if self.numerator == 0 {
            Sampling::Never
        } else if self.numerator >= denominator {
            Sampling::Always
        } else {
            Sampling::Fraction {
                numerator: self.numerator,
                denominator,
            }
        }
    }
}

/// `config.core.v3.RuntimeFractionalPercent`. A wasm filter cannot read Envoy's runtime, so
/// `runtime_key` is accepted for compatibility and only `default_value` applies.
#[derive(Debug, Clone, PartialEq, Eq, Default, FromJson)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RuntimeFractionalPercent {
    /// The percent in effect.
    #[serde(default)]
    pub default_value: FractionalPercent,
    /// Envoy's runtime key that would override `default_value` (not readable from wasm).
    #[serde(default)]
    pub runtime_key: Option<String>,
}

/// `type.v3.HttpStatus`.
#[derive(FromJson, Debug, Clone, Copy)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct HttpStatus {
    /// The status code.
    pub code: u32,
}

impl HttpStatus {
    /// The code, if it is an HTTP status (100 to 599); else an error at `code`.
    pub fn checked(self) -> Result<u32, ConfigError> {
        if (100..=599).contains(&self.code) {
            Ok(self.code)
        } else {
            Err(ConfigError::new(
                "code",
                format!("{} is not an HTTP status code", self.code),
            ))
        }
    }
}

/// `type.v3.TokenBucket`.
#[derive(FromJson, Debug, Clone)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct TokenBucketConfig {
    /// Capacity, and the tokens a new bucket starts with.
    pub max_tokens: u32,
    /// Tokens added per `fill_interval`. Default 1.
    #[serde(default)]
    pub tokens_per_fill: Option<u32>,
    /// How often `tokens_per_fill` tokens are added (continuously, as native).
    pub fill_interval: ProtoDuration,
}

impl TokenBucketConfig {
    /// Checks Envoy's rules (`max_tokens` > 0, `tokens_per_fill` > 0, `fill_interval` at least
    /// `min_fill_interval`) and returns `(max_tokens, tokens_per_fill, fill_interval)`. Each
    /// filter builds its own bucket from them; native local_ratelimit refuses fills under 50ms.
    pub fn checked(
        &self,
        min_fill_interval: Duration,
    ) -> Result<(u32, u32, Duration), ConfigError> {
        if self.max_tokens == 0 {
            return Err(ConfigError::new("max_tokens", "must be at least 1"));
        }
        let tokens_per_fill = self.tokens_per_fill.unwrap_or(1);
        if tokens_per_fill == 0 {
            return Err(ConfigError::new("tokens_per_fill", "must be at least 1"));
        }
        let interval = self.fill_interval.0;
        if interval.is_zero() {
            return Err(ConfigError::new("fill_interval", "must be greater than 0"));
        }
        if interval < min_fill_interval {
            return Err(ConfigError::new(
                "fill_interval",
                format!(
                    "must be at least {}ms (native refuses shorter ones too)",
                    // `u128`'s formatting is a kilobyte of wasm; no minimum is that long.
                    u64::try_from(min_fill_interval.as_millis()).unwrap_or(u64::MAX)
                ),
            ));
        }
        Ok((self.max_tokens, tokens_per_fill, interval))
    }
}

/// `config.core.v3.HeaderValueOption`: a header to add, and what to do when it exists.
/// [`crate::validate`] checks the name and value; [`HeaderValueOption::action`] resolves the
/// action, and [`Headers::apply`](crate::headers::Headers::apply) performs it.
#[derive(FromJson, Debug, Clone)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct HeaderValueOption {
    /// The header and its value.
    pub header: HeaderValue,
    /// What to do when the header exists. Default `APPEND_IF_EXISTS_OR_ADD`.
    #[serde(default)]
    pub append_action: Option<AppendAction>,
    /// Deprecated in Envoy: `true` = `APPEND_IF_EXISTS_OR_ADD`, `false` = `OVERWRITE_IF_EXISTS_OR_ADD`.
    #[serde(default)]
    pub append: Option<bool>,
    /// Add the header even when its value is empty. Default false.
    #[serde(default)]
    pub keep_empty_value: bool,
}

/// `config.core.v3.HeaderValue`.
#[derive(FromJson, Debug, Clone)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct HeaderValue {
    /// Header name; matched case-insensitively.
    pub key: String,
    /// The value in Envoy's header formatter syntax (`%COMMAND%`, `%%` for `%`); each filter
    /// says which commands it evaluates.
    #[serde(default)]
    pub value: String,
}

impl HeaderValueOption {
    /// The action in effect: `append_action`, else the deprecated `append`, else
    /// `APPEND_IF_EXISTS_OR_ADD`. Setting both is an error at `append`.
    pub fn action(&self) -> Result<AppendAction, ConfigError> {
        match (self.append_action, self.append) {
            (Some(_), Some(_)) => Err(ConfigError::new(
                "append",
                "both append and append_action are set; use append_action only",
            )),
            (Some(action), None) => Ok(action),
            (None, Some(true)) | (None, None) => Ok(AppendAction::AppendIfExistsOrAdd),
            (None, Some(false)) => Ok(AppendAction::OverwriteIfExistsOrAdd),
        }
    }
}

/// `HeaderValueOption.HeaderAppendAction`, by name or by its proto number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AppendAction {
    /// Add another entry if the header exists, else add it.
    #[default]
    AppendIfExistsOrAdd,
    /// Add only when the header is absent.
    AddIfAbsent,
    /// Replace all entries if present, else add.
    OverwriteIfExistsOrAdd,
    /// Replace all entries only when present.
    OverwriteIfExists,
}

/// The change an [`AppendAction`] makes to a header map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderEdit {
    /// Add one more entry, keeping existing ones.
    Add,
    /// Replace every entry with the one value.
    Replace,
}

impl AppendAction {
    /// Whether the action's edit depends on the header being present already.
    pub fn needs_presence(self) -> bool {
        matches!(
            self,
            AppendAction::AddIfAbsent | AppendAction::OverwriteIfExists
        )
    }

    /// The edit the action makes when the header is `present` or not; `None` leaves the map as is.
    pub fn edit(self, present: bool) -> Option<HeaderEdit> {
        match self {
            AppendAction::AppendIfExistsOrAdd => Some(HeaderEdit::Add),
            AppendAction::AddIfAbsent => (!present).then_some(HeaderEdit::Add),
            AppendAction::OverwriteIfExistsOrAdd => Some(HeaderEdit::Replace),
            AppendAction::OverwriteIfExists => present.then_some(HeaderEdit::Replace),
        }
    }
}

impl FromJson for AppendAction {
    fn from_json(value: Json, _path: &mut String) -> Result<Self, String> {
        crate::config::json::proto_enum(
            value,
            &[
                ("APPEND_IF_EXISTS_OR_ADD", AppendAction::AppendIfExistsOrAdd),
                ("ADD_IF_ABSENT", AppendAction::AddIfAbsent),
                ("OVERWRITE_IF_EXISTS_OR_ADD", AppendAction::OverwriteIfExistsOrAdd),
                ("OVERWRITE_IF_EXISTS", AppendAction::OverwriteIfExists),
            ],
            "one of APPEND_IF_EXISTS_OR_ADD, ADD_IF_ABSENT, OVERWRITE_IF_EXISTS_OR_ADD, OVERWRITE_IF_EXISTS (or 0-3)",
        )
    }
}

/// `config.core.v3.HttpUri`: where a filter's callouts go.
#[derive(Debug, FromJson)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct HttpUri {
    /// The URI, e.g. `https://keys.example.com/jwks.json`.
    pub uri: String,
    /// The Envoy cluster that serves it.
    pub cluster: String,
    /// The callout's timeout, e.g. `"0.5s"`.
    pub timeout: ProtoDuration,
}

/// A checked [`HttpUri`]: a cluster, and a timeout the host takes (whole milliseconds in a
/// u32, never 0, which would mean none: a callout must always end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalloutTarget {
    /// The URI as configured.
    pub uri: String,
    /// The cluster.
    pub cluster: String,
    /// The timeout.
    pub timeout: Duration,
}

impl HttpUri {
    /// Checks the fields; errors name `uri`, `cluster` or `timeout` (callers add where the
    /// HttpUri is).
    pub fn validate(self) -> Result<CalloutTarget, ConfigError> {
        if self.uri.is_empty() {
            return Err(ConfigError::new("uri", "must not be empty"));
        }
        if self.cluster.is_empty() {
            return Err(ConfigError::new("cluster", "must not be empty"));
        }
        let timeout = self.timeout.0;
        if timeout < Duration::from_millis(1) || timeout.as_millis() > u128::from(u32::MAX) {
            return Err(ConfigError::new(
                "timeout",
                "must be between 1ms and 49 days: a callout always times out",
            ));
        }
        Ok(CalloutTarget {
            uri: self.uri,
            cluster: self.cluster,
            timeout,
        })
    }
}

impl CalloutTarget {
    /// The `:authority` and `:path` of an `http(s)://authority[/path]` URI; `None` for any other.
    pub fn authority_and_path(&self) -> Option<(String, String)> {
        let rest = self
            .uri
            .strip_prefix("https://")
            .or_else(|| self.uri.strip_prefix("http://"))?;
        let (authority, path) = match rest.find('/') {
            Some(at) => rest.split_at(at),
            None => (rest, "/"),
        };
        (!authority.is_empty()).then(|| (authority.to_string(), path.to_string()))
    }
}

/// `config.core.v3.DataSource`, in the inline forms a wasm VM can read (it has no file system):
/// `inline_string`, or `inline_bytes` (proto3 JSON `bytes`: base64).
#[derive(Debug, FromJson)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct DataSource {
    /// The text.
    #[serde(default)]
    pub inline_string: Option<String>,
    /// The text, base64 in either alphabet, padding optional.
    #[serde(default)]
    pub inline_bytes: Option<String>,
}

impl DataSource {
    /// The text, and the field it came from (`inline_string` or `inline_bytes`, for the caller's
    /// errors about its content). Exactly one must be set, and not empty, as native requires;
    /// errors name the field, or none when the choice itself is wrong.
    pub fn text(self) -> Result<(&'static str, String), ConfigError> {
        let (field, text) = match (self.inline_string, self.inline_bytes) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    "",
                    "set one of inline_string and inline_bytes, not both",
                ))
            }
            (Some(text), None) => ("inline_string", text),
            (None, Some(encoded)) => {
                let bytes = decode_proto_bytes(&encoded)
                    .ok_or_else(|| ConfigError::new("inline_bytes", "not base64"))?;
                let text = String::from_utf8(bytes).map_err(|_| {
                    ConfigError::new("inline_bytes", "the decoded text is not UTF-8")
                })?;
                ("inline_bytes", text)
            }
            (None, None) => {
                return Err(ConfigError::new("", "needs inline_string or inline_bytes"))
            }
        };
        if text.is_empty() {
            // Native: "DataSource cannot be empty".
            return Err(ConfigError::new(field, "must not be empty"));
        }
        Ok((field, text))
    }
}

/// Strips at most two trailing `=`, as Envoy's `Base64::decodeWithoutPadding` does: the padding
/// need not be there, nor be the right amount. base64's `DecodePaddingMode::Indifferent` refuses
/// the wrong amount (`AAAA=`), so the padding goes here and the engines require none (a third `=`
/// stays and is refused).
pub fn strip_base64_padding(input: &[u8]) -> &[u8] {
    let input = input.strip_suffix(b"=").unwrap_or(input);
    input.strip_suffix(b"=").unwrap_or(input)
}

/// proto3 JSON `bytes`: base64 in the standard or the url-safe alphabet, padding optional,
/// trailing bits ignored.
pub fn decode_proto_bytes(text: &str) -> Option<Vec<u8>> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    use base64::{alphabet, Engine as _};
    const CONFIG: GeneralPurposeConfig = GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true);
    const STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, CONFIG);
    const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, CONFIG);
    let trimmed = strip_base64_padding(text.as_bytes());
    STANDARD
        .decode(trimmed)
        .or_else(|_| URL_SAFE.decode(trimmed))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_proto3_json() {
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("0.05s"), Ok(Duration::from_millis(50)));
        assert_eq!(parse_duration(".5s"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("3600s"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1.000000001s"), Ok(Duration::new(1, 1)));
        assert_eq!(parse_duration("2.s"), Ok(Duration::from_secs(2)));
        for bad in [
            "1",
            "1m",
            "s",
            ".s",
            "-1s",
            "1.2.3s",
            "1 s",
            "",
            "1.0000000001s",
            "+1s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(parse_duration("99999999999999999999s")
            .unwrap_err()
            .contains("too large"));
        let parsed: ProtoDuration = crate::config::read_str("\"0.25s\"").unwrap();
        assert_eq!(parsed.0, Duration::from_millis(250));
        assert!(crate::config::read_str::<ProtoDuration>("5").is_err());
    }

    #[test]
    fn fractional_percents_parse_by_name_or_number() {
        let percent: FractionalPercent =
            crate::config::read_str(r#"{"numerator": 5, "denominator": "TEN_THOUSAND"}"#).unwrap();
        assert_eq!(percent.denominator.value(), 10_000);
        let percent: FractionalPercent =
            crate::config::read_str(r#"{"numerator": 5, "denominator": 2}"#).unwrap();
        assert_eq!(percent.denominator, Denominator::Million);
        let percent: FractionalPercent = crate::config::read_str(r#"{"numerator": 7}"#).unwrap();
        assert_eq!(percent.denominator, Denominator::Hundred);
        assert!(
            crate::config::read_str::<FractionalPercent>(r#"{"denominator": "THOUSAND"}"#).is_err()
        );
        assert!(crate::config::read_str::<FractionalPercent>(r#"{"denominator": 3}"#).is_err());
        let runtime: RuntimeFractionalPercent = crate::config::read_str(
            r#"{"default_value": {"numerator": 100, "denominator": "HUNDRED"}, "runtime_key": "k"}"#,
        )
        .unwrap();
        assert_eq!(runtime.default_value.sampling(), Sampling::Always);
        assert_eq!(runtime.runtime_key.as_deref(), Some("k"));
    }

    #[test]
    fn sampling_follows_envoy() {
        let never = FractionalPercent::default().sampling();
        assert_eq!(never, Sampling::Never);
        assert!(!never.sample(0));
        let over = FractionalPercent {
            numerator: 150,
            denominator: Denominator::Hundred,
        };
        assert_eq!(over.sampling(), Sampling::Always);
        let quarter = FractionalPercent {
            numerator: 25,
            denominator: Denominator::Hundred,
        }
        .sampling();
        assert!(quarter.is_random());
        let hits = (0..1000u64).filter(|&r| quarter.sample(r)).count();
        assert_eq!(hits, 250);
        assert!(quarter.sample(124) && !quarter.sample(125));
    }

    #[test]
    fn enums_deserialize_by_name_or_number() {
        #[derive(Debug, Clone, Copy, PartialEq)]
        enum Color {
            Red,
            Blue,
        }
        let parse = |json: &str| {
            let value = Json::parse(json.as_bytes()).unwrap();
            crate::config::json::proto_enum(
                value,
                &[("RED", Color::Red), ("BLUE", Color::Blue)],
                "RED or BLUE (or 0-1)",
            )
        };
        assert_eq!(parse(r#""BLUE""#), Ok(Color::Blue));
        assert_eq!(parse("0"), Ok(Color::Red));
        assert_eq!(parse("1"), Ok(Color::Blue));
        for bad in [r#""blue""#, "2", "-1", "1.0", "null", "[]"] {
            let error = parse(bad).unwrap_err();
            assert!(
                error.contains("RED or BLUE (or 0-1)") || error.contains("invalid type"),
                "{bad}: {error}"
            );
        }
        assert!(parse(r#""GREEN""#)
            .unwrap_err()
            .starts_with("invalid value: string \"GREEN\", expected RED or BLUE (or 0-1)"));
    }

    #[test]
    fn header_value_options_resolve_their_action() {
        let option = |json: &str| crate::config::read_str::<HeaderValueOption>(json);
        let action = |json: &str| option(json).unwrap().action();
        let header = r#""header": {"key": "x-a", "value": "1"}"#;
        assert_eq!(
            action(&format!("{{{header}}}")),
            Ok(AppendAction::AppendIfExistsOrAdd)
        );
        assert_eq!(
            action(&format!(
                r#"{{{header}, "append_action": "ADD_IF_ABSENT"}}"#
            )),
            Ok(AppendAction::AddIfAbsent)
        );
        assert_eq!(
            action(&format!(r#"{{{header}, "append_action": 3}}"#)),
            Ok(AppendAction::OverwriteIfExists)
        );
        assert_eq!(
            action(&format!(r#"{{{header}, "append": false}}"#)),
            Ok(AppendAction::OverwriteIfExistsOrAdd)
        );
        assert_eq!(
            action(&format!(r#"{{{header}, "append": true}}"#)),
            Ok(AppendAction::AppendIfExistsOrAdd)
        );
        let both = action(&format!(
            r#"{{{header}, "append": true, "append_action": "ADD_IF_ABSENT"}}"#
        ))
        .unwrap_err();
        assert_eq!(both.path, "append");
        assert!(both.reason.contains("both append and append_action"));
        let parsed = option(r#"{"header": {"key": "x"}, "keep_empty_value": true}"#).unwrap();
        assert_eq!(
            (parsed.header.value.as_str(), parsed.keep_empty_value),
            ("", true)
        );
        assert!(option(r#"{"header": {"key": "x", "raw_value": "eA=="}}"#).is_err());
        assert!(option(&format!(r#"{{{header}, "append_action": 4}}"#)).is_err());
    }

    #[test]
    fn http_statuses_and_token_buckets_check_envoys_rules() {
        let status = |code| HttpStatus { code }.checked();
        assert_eq!(status(429), Ok(429));
        assert_eq!(status(100), Ok(100));
        assert_eq!(status(599), Ok(599));
        for bad in [0, 99, 600] {
            let error = status(bad).unwrap_err();
            assert_eq!(error.path, "code");
            assert!(error.reason.contains("not an HTTP status code"), "{error}");
        }
        let bucket = |json: &str| {
            crate::config::read_str::<TokenBucketConfig>(json)
                .unwrap()
                .checked(Duration::from_millis(50))
        };
        assert_eq!(
            bucket(r#"{"max_tokens": 5, "fill_interval": "0.05s"}"#),
            Ok((5, 1, Duration::from_millis(50)))
        );
        for (json, path, reason) in [
            (
                r#"{"max_tokens": 0, "fill_interval": "1s"}"#,
                "max_tokens",
                "at least 1",
            ),
            (
                r#"{"max_tokens": 1, "tokens_per_fill": 0, "fill_interval": "1s"}"#,
                "tokens_per_fill",
                "at least 1",
            ),
            (
                r#"{"max_tokens": 1, "fill_interval": "0s"}"#,
                "fill_interval",
                "greater than 0",
            ),
            (
                r#"{"max_tokens": 1, "fill_interval": "0.049s"}"#,
                "fill_interval",
                "at least 50ms",
            ),
        ] {
            let error = bucket(json).unwrap_err();
            assert_eq!(error.path, path, "{json}");
            assert!(error.reason.contains(reason), "{json}: {error}");
        }
        assert!(crate::config::read_str::<TokenBucketConfig>(
            r#"{"max_tokens": 1, "fill_interval": "1s", "x": 1}"#
        )
        .is_err());
    }

    #[test]
    fn append_actions_edit_as_envoy() {
        use AppendAction::*;
        let edits = |action: AppendAction| (action.edit(false), action.edit(true));
        assert_eq!(
            edits(AppendIfExistsOrAdd),
            (Some(HeaderEdit::Add), Some(HeaderEdit::Add))
        );
        assert_eq!(edits(AddIfAbsent), (Some(HeaderEdit::Add), None));
        assert_eq!(
            edits(OverwriteIfExistsOrAdd),
            (Some(HeaderEdit::Replace), Some(HeaderEdit::Replace))
        );
        assert_eq!(edits(OverwriteIfExists), (None, Some(HeaderEdit::Replace)));
        for action in [
            AppendIfExistsOrAdd,
            AddIfAbsent,
            OverwriteIfExistsOrAdd,
            OverwriteIfExists,
        ] {
            assert_eq!(
                action.needs_presence(),
                action.edit(false) != action.edit(true),
                "{action:?}"
            );
        }
    }

    #[test]
    fn an_http_uri_needs_a_cluster_and_a_timeout_a_host_can_keep() {
        let uri = |uri: &str, cluster: &str, timeout: &str| {
            crate::config::read::<HttpUri>(crate::config::json::Json::from(serde_json::json!({
                "uri": uri, "cluster": cluster, "timeout": timeout
            })))
            .unwrap()
            .validate()
        };
        let target = uri("https://keys.example:8443/a/jwks.json?x=1", "keys", "0.5s").unwrap();
        assert_eq!(target.timeout, Duration::from_millis(500));
        assert_eq!(
            target.authority_and_path(),
            Some(("keys.example:8443".into(), "/a/jwks.json?x=1".into()))
        );
        let bare = uri("http://authz", "authz", "1s").unwrap();
        assert_eq!(
            bare.authority_and_path(),
            Some(("authz".into(), "/".into()))
        );
        // A bare name is a valid ext_authz URI (native only wants it non-empty) but has no
        // authority and path to fetch from.
        assert_eq!(uri("authz", "c", "1s").unwrap().authority_and_path(), None);
        assert_eq!(
            uri("http://", "c", "1s").unwrap().authority_and_path(),
            None
        );
        for (bad, path) in [
            (uri("", "c", "1s"), "uri"),
            (uri("http://a", "", "1s"), "cluster"),
            (uri("http://a", "c", "0s"), "timeout"),
            (uri("http://a", "c", "0.0001s"), "timeout"),
            (uri("http://a", "c", "4294968s"), "timeout"),
        ] {
            assert_eq!(bad.unwrap_err().path, path);
        }
    }

    #[test]
    fn a_data_source_is_one_inline_text_or_base64_of_it() {
        let source = |json: serde_json::Value| {
            crate::config::read::<DataSource>(crate::config::json::Json::from(json))
                .unwrap()
                .text()
        };
        assert_eq!(
            source(serde_json::json!({"inline_string": "keys"})),
            Ok(("inline_string", "keys".to_string()))
        );
        // "keys?" is a2V5cz8= in the standard alphabet and a2V5cz8 without padding.
        for encoded in ["a2V5cz8=", "a2V5cz8", "a2V5cz8=="] {
            assert_eq!(
                source(serde_json::json!({"inline_bytes": encoded})),
                Ok(("inline_bytes", "keys?".to_string())),
                "{encoded}"
            );
        }
        for (json, path, reason) in [
            (
                serde_json::json!({}),
                "",
                "needs inline_string or inline_bytes",
            ),
            (
                serde_json::json!({"inline_string": "a", "inline_bytes": "YQ"}),
                "",
                "not both",
            ),
            (
                serde_json::json!({"inline_string": ""}),
                "inline_string",
                "must not be empty",
            ),
            (
                serde_json::json!({"inline_bytes": "a2V5cz8==="}),
                "inline_bytes",
                "not base64",
            ),
            (
                serde_json::json!({"inline_bytes": "/w"}),
                "inline_bytes",
                "not UTF-8",
            ),
        ] {
            let error = source(json.clone()).unwrap_err();
            assert_eq!(error.path, path, "{json}");
            assert!(error.reason.contains(reason), "{json}: {error}");
        }
    }
}

/// A string schema for a type with a hand-written `Deserialize` (JSON Schema output only).
#[cfg(feature = "schema")]
macro_rules! string_schema {
    ($type:ty, $name:literal, $schema:tt) => {
        impl schemars::JsonSchema for $type {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                $name.into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!($schema)
            }
        }
    };
}
#[cfg(feature = "schema")]
pub(crate) use string_schema;

#[cfg(feature = "schema")]
string_schema!(ProtoDuration, "Duration", {
    "type": "string",
    "pattern": "^[0-9]+(\\.[0-9]{1,9})?s$",
    "description": "A protobuf Duration in JSON form, e.g. \"1s\" or \"0.5s\"."
});

#[cfg(feature = "schema")]
string_schema!(Denominator, "Denominator", {
    "oneOf": [
        {"type": "string", "enum": ["HUNDRED", "TEN_THOUSAND", "MILLION"]},
        {"type": "integer", "minimum": 0, "maximum": 2}
    ]
});

#[cfg(feature = "schema")]
string_schema!(AppendAction, "AppendAction", {
    "oneOf": [
        {"type": "string", "enum": ["APPEND_IF_EXISTS_OR_ADD", "ADD_IF_ABSENT", "OVERWRITE_IF_EXISTS_OR_ADD", "OVERWRITE_IF_EXISTS"]},
        {"type": "integer", "minimum": 0, "maximum": 3}
    ]
});
