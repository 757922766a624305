//! Route matching in Envoy's shape (`config.route.v3.RouteMatch` and `HeaderMatcher`), shared by
//! every filter that scopes itself to some requests:
//!
//! ```json
//! {"prefix": "/api", "headers": [{"name": "x-env", "string_match": {"exact": "prod"}}]}
//! ```
//!
//! As in Envoy: `path` and `safe_regex` match the path without its query string, `prefix` the
//! whole `:path`; a regex must match the entire path; `case_sensitive` (default true) applies to
//! `prefix`, `path` and `path_separated_prefix`.

use crate::config::{validate_each, ConfigError, FromJson};
use crate::validate::{header_name, Pseudo};
use regex_lite::Regex;
use std::borrow::Cow;

/// `RouteMatch` as configured.
#[derive(Debug, Clone, Default, FromJson)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RouteMatchConfig {
    /// Matches when `:path` starts with this.
    #[serde(default)]
    pub prefix: Option<String>,
    /// Matches when the path (without query) equals this.
    #[serde(default)]
    pub path: Option<String>,
    /// Matches when the path (without query) fully matches this regex.
    #[serde(default)]
    pub safe_regex: Option<RegexConfig>,
    /// Matches the prefix at a `/` boundary: `/api` matches `/api` and `/api/x`, not `/apix`.
    #[serde(default)]
    pub path_separated_prefix: Option<String>,
    /// Default true.
    #[serde(default)]
    pub case_sensitive: Option<bool>,
    /// All of these must match too.
    #[serde(default)]
    pub headers: Vec<HeaderMatcherConfig>,
}

/// `type.matcher.v3.RegexMatcher`.
#[derive(Debug, Clone, FromJson)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RegexConfig {
    /// The regex (RE2 syntax; this implementation accepts the common subset).
    pub regex: String,
}

/// `config.route.v3.HeaderMatcher`.
#[derive(Debug, Clone, Default, FromJson)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct HeaderMatcherConfig {
    /// Header name.
    pub name: String,
    /// Deprecated in Envoy: the value equals this.
    #[serde(default)]
    pub exact_match: Option<String>,
    /// Deprecated in Envoy: the value starts with this.
    #[serde(default)]
    pub prefix_match: Option<String>,
    /// Deprecated in Envoy: the value ends with this.
    #[serde(default)]
    pub suffix_match: Option<String>,
    /// Deprecated in Envoy: the value contains this.
    #[serde(default)]
    pub contains_match: Option<String>,
    /// Deprecated in Envoy: the value fully matches this regex.
    #[serde(default)]
    pub safe_regex_match: Option<RegexConfig>,
    /// `true`: the header is present; `false`: it is absent.
    #[serde(default)]
    pub present_match: Option<bool>,
    /// `type.matcher.v3.StringMatcher`.
    #[serde(default)]
    pub string_match: Option<StringMatcherConfig>,
    /// Negates the result.
    #[serde(default)]
    pub invert_match: bool,
    /// A missing header is matched as the empty string.
    #[serde(default)]
    pub treat_missing_header_as_empty: bool,
}

/// `type.matcher.v3.StringMatcher`.
#[derive(Debug, Clone, Default, FromJson)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct StringMatcherConfig {
    /// Equals.
    #[serde(default)]
    pub exact: Option<String>,
    /// Starts with.
    #[serde(default)]
    pub prefix: Option<String>,
    /// Ends with.
    #[serde(default)]
    pub suffix: Option<String>,
    /// Contains.
    #[serde(default)]
    pub contains: Option<String>,
    /// Fully matches.
    #[serde(default)]
    pub safe_regex: Option<RegexConfig>,
    /// Compare ASCII case-insensitively (not for `safe_regex`).
    #[serde(default)]
    pub ignore_case: bool,
}

/// A compiled string matcher.
#[derive(Debug, Clone)]
pub enum StringMatcher {
    /// Equals.
    Exact(String, bool),
    /// Starts with.
    Prefix(String, bool),
    /// Ends with.
    Suffix(String, bool),
    /// Contains.
    Contains(String, bool),
    /// Fully matches.
    Regex(Regex),
}

fn compile_regex(regex: &str, field: &str) -> Result<Regex, ConfigError> {
    Regex::new(&format!("^(?:{regex})$"))
        .map_err(|error| ConfigError::new(field, format!("invalid regex: {error}")))
}

fn lower_if(text: &str, ignore_case: bool) -> String {
    if ignore_case {
        text.to_ascii_lowercase()
    } else {
        text.to_string()
    }
}

impl StringMatcherConfig {
    /// Compiles the matcher; exactly one kind must be set.
    pub fn compile(self) -> Result<StringMatcher, ConfigError> {
        let ignore = self.ignore_case;
        let mut kinds = Vec::new();
        if let Some(value) = self.exact {
            kinds.push(StringMatcher::Exact(lower_if(&value, ignore), ignore));
        }
        if let Some(value) = self.prefix {
            kinds.push(StringMatcher::Prefix(lower_if(&value, ignore), ignore));
        }
        if let Some(value) = self.suffix {
            kinds.push(StringMatcher::Suffix(lower_if(&value, ignore), ignore));
        }
        if let Some(value) = self.contains {
            kinds.push(StringMatcher::Contains(lower_if(&value, ignore), ignore));
        }
        if let Some(regex) = self.safe_regex {
            kinds.push(StringMatcher::Regex(compile_regex(
                &regex.regex,
                "safe_regex.regex",
            )?));
        }
        exactly_one(
            kinds,
            "",
            "one of exact, prefix, suffix, contains, safe_regex",
        )
    }
}

fn exactly_one<T>(mut kinds: Vec<T>, field: &str, what: &str) -> Result<T, ConfigError> {
    match kinds.len() {
        1 => Ok(kinds.remove(0)),
        0 => Err(ConfigError::new(field, format!("needs {what}"))),
        _ => Err(ConfigError::new(
            field,
            format!("needs only {what}, not several"),
        )),
    }
}

impl StringMatcher {
    /// Whether `value` matches. Non-UTF-8 values only match a regex or byte-equal text.
    pub fn matches(&self, value: &[u8]) -> bool {
        let text = String::from_utf8_lossy(value);
        let folded = |ignore: bool| {
            if ignore {
                text.to_ascii_lowercase()
            } else {
                text.to_string()
            }
        };
        match self {
            StringMatcher::Exact(expected, ignore) => folded(*ignore) == *expected,
            StringMatcher::Prefix(expected, ignore) => {
                folded(*ignore).starts_with(expected.as_str())
            }
            StringMatcher::Suffix(expected, ignore) => folded(*ignore).ends_with(expected.as_str()),
            StringMatcher::Contains(expected, ignore) => {
                folded(*ignore).contains(expected.as_str())
            }
            StringMatcher::Regex(regex) => regex.is_match(&text),
        }
    }
}

/// A compiled header matcher.
#[derive(Debug, Clone)]
pub struct HeaderMatcher {
    name: String,
    rule: HeaderRule,
    invert: bool,
    missing_as_empty: bool,
}

#[derive(Debug, Clone)]
enum HeaderRule {
    Present(bool),
    Value(StringMatcher),
}

impl HeaderMatcherConfig {
    /// Compiles the matcher; exactly one match kind must be set.
    pub fn compile(self) -> Result<HeaderMatcher, ConfigError> {
        // Any `:` name: an unknown pseudo-header is just absent, as in Envoy.
        let name = header_name(&self.name, Pseudo::Any)
            .map_err(|reason| ConfigError::new("name", reason))?;
        let mut kinds = Vec::new();
        let plain = |value: String| HeaderRule::Value(StringMatcher::Exact(value, false));
        if let Some(value) = self.exact_match {
            kinds.push(plain(value));
        }
        if let Some(value) = self.prefix_match {
            kinds.push(HeaderRule::Value(StringMatcher::Prefix(value, false)));
        }
        if let Some(value) = self.suffix_match {
            kinds.push(HeaderRule::Value(StringMatcher::Suffix(value, false)));
        }
        if let Some(value) = self.contains_match {
            kinds.push(HeaderRule::Value(StringMatcher::Contains(value, false)));
        }
        if let Some(regex) = self.safe_regex_match {
            kinds.push(HeaderRule::Value(StringMatcher::Regex(compile_regex(
                &regex.regex,
                "safe_regex_match.regex",
            )?)));
        }
        if let Some(present) = self.present_match {
            kinds.push(HeaderRule::Present(present));
        }
        if let Some(matcher) = self.string_match {
            kinds.push(HeaderRule::Value(
                matcher.compile().map_err(|e| e.within("string_match"))?,
            ));
        }
        let rule = exactly_one(
            kinds,
            "",
            "one of string_match, present_match, exact_match, prefix_match, suffix_match, contains_match, safe_regex_match",
        )?;
        Ok(HeaderMatcher {
            name,
            rule,
            invert: self.invert_match,
            missing_as_empty: self.treat_missing_header_as_empty,
        })
    }
}

impl HeaderMatcher {
    /// The lower-case header name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the header, given its value (`None` when absent), matches.
    pub fn matches(&self, value: Option<&[u8]>) -> bool {
        self.matches_values(value)
    }

    /// Whether the header, given all of its values, matches, as Envoy 1.40 matches headers
    /// (checked against native rbac): each value of a repeated header is matched on its own and
    /// any one may match, then `invert_match` applies; an absent header fails every value rule,
    /// inverted or not, and `invert_match` flips only `present_match` for it.
    pub fn matches_values<'v>(&self, values: impl IntoIterator<Item = &'v [u8]>) -> bool {
        let mut values = values.into_iter().peekable();
        if values.peek().is_none() {
            return match &self.rule {
                _ if self.missing_as_empty => self.rule_matches(b"") != self.invert,
                HeaderRule::Present(present) => *present == self.invert,
                HeaderRule::Value(_) => false,
            };
        }
        values.any(|value| self.rule_matches(value)) != self.invert
    }

    /// The rule on one present value, before `invert_match`.
    fn rule_matches(&self, value: &[u8]) -> bool {
        match &self.rule {
            HeaderRule::Present(present) => *present,
            HeaderRule::Value(matcher) => matcher.matches(value),
        }
    }
}

/// What a route match reads from the request: borrowed where the request is already in memory
/// (a [`Snapshot`](crate::headers::Snapshot)), so a match on it allocates nothing.
pub trait RequestView {
    /// The `:path` header.
    fn path(&self) -> Option<Cow<'_, [u8]>>;
    /// A request header's value.
    fn header(&self, name: &str) -> Option<Cow<'_, [u8]>>;

    /// Whether `matcher` matches the request. A view that reads headers one hostcall at a time
    /// sees only a repeated header's first value (`proxy_get_header_map_value`), a snapshot
    /// sees them all.
    fn header_matches(&self, matcher: &HeaderMatcher) -> bool {
        matcher.matches(self.header(matcher.name()).as_deref())
    }
}

/// The request headers of the running stream, read live (one hostcall per lookup).
impl RequestView for crate::headers::Headers<'_> {
    fn path(&self) -> Option<Cow<'_, [u8]>> {
        self.get(":path").ok().flatten().map(Cow::Owned)
    }

    fn header(&self, name: &str) -> Option<Cow<'_, [u8]>> {
        self.get(name).ok().flatten().map(Cow::Owned)
    }
}

/// A snapshot of the request headers (no hostcall per lookup).
impl RequestView for crate::headers::Snapshot {
    fn path(&self) -> Option<Cow<'_, [u8]>> {
        self.get(":path").map(Cow::Borrowed)
    }

    fn header(&self, name: &str) -> Option<Cow<'_, [u8]>> {
        self.get(name).map(Cow::Borrowed)
    }

    fn header_matches(&self, matcher: &HeaderMatcher) -> bool {
        matcher.matches_values(self.get_all(matcher.name()))
    }
}

#[derive(Debug, Clone)]
enum PathRule {
    Prefix(String),
    Exact(String),
    Regex(Regex),
    SeparatedPrefix(String),
}

/// A compiled route match.
#[derive(Debug, Clone)]
pub struct RouteMatch {
    path: PathRule,
    case_sensitive: bool,
    headers: Vec<HeaderMatcher>,
}

impl RouteMatchConfig {
    /// Compiles the match; exactly one of `prefix`, `path`, `safe_regex`,
    /// `path_separated_prefix` must be set.
    pub fn compile(self) -> Result<RouteMatch, ConfigError> {
        let case_sensitive = self.case_sensitive.unwrap_or(true);
        let fold = |text: String| {
            if case_sensitive {
                text
            } else {
                text.to_ascii_lowercase()
            }
        };
        let mut kinds = Vec::new();
        if let Some(prefix) = self.prefix {
            kinds.push(PathRule::Prefix(fold(prefix)));
        }
        if let Some(path) = self.path {
            kinds.push(PathRule::Exact(fold(path)));
        }
        if let Some(regex) = self.safe_regex {
            kinds.push(PathRule::Regex(compile_regex(
                &regex.regex,
                "safe_regex.regex",
            )?));
        }
        if let Some(prefix) = self.path_separated_prefix {
            if prefix.ends_with('/') || prefix.contains(['?', '#']) {
                return Err(ConfigError::new(
                    "path_separated_prefix",
                    "must not end with / or hold ? or #",
                ));
            }
            kinds.push(PathRule::SeparatedPrefix(fold(prefix)));
        }
        let path = exactly_one(
            kinds,
            "",
            "one of prefix, path, safe_regex, path_separated_prefix",
        )?;
        let headers = validate_each("headers", self.headers, HeaderMatcherConfig::compile)?;
        Ok(RouteMatch {
            path,
            case_sensitive,
            headers,
        })
    }
}

impl RouteMatch {
    /// A match for every request (`prefix: "/"`).
    pub fn any() -> RouteMatch {
        RouteMatch {
            path: PathRule::Prefix("/".into()),
            case_sensitive: true,
            headers: Vec::new(),
        }
    }

    /// Whether the request matches the path rule and every header matcher.
    pub fn matches(&self, request: &impl RequestView) -> bool {
        let Some(raw_path) = request.path() else {
            return false;
        };
        let path = String::from_utf8_lossy(&raw_path);
        let without_query = path.split(['?', '#']).next().unwrap_or_default();
        let case_sensitive = self.case_sensitive;
        let folded = |text| fold_case(text, case_sensitive);
        let path_matches = match &self.path {
            PathRule::Prefix(prefix) => folded(&path).starts_with(prefix.as_str()),
            PathRule::Exact(exact) => *folded(without_query) == **exact,
            PathRule::Regex(regex) => regex.is_match(without_query),
            PathRule::SeparatedPrefix(prefix) => {
                let candidate = folded(without_query);
                *candidate == **prefix
                    || candidate
                        .strip_prefix(prefix.as_str())
                        .is_some_and(|rest| rest.starts_with('/'))
            }
        };
        path_matches
            && self
                .headers
                .iter()
                .all(|matcher| request.header_matches(matcher))
    }
}

/// `text` as the path rules compare it: as is, or lower-cased when matching ignores case.
fn fold_case(text: &str, case_sensitive: bool) -> Cow<'_, str> {
    if case_sensitive {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(text.to_ascii_lowercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Request(HashMap<&'static str, &'static str>);

    impl RequestView for Request {
        fn path(&self) -> Option<Cow<'_, [u8]>> {
            self.header(":path")
        }
        fn header(&self, name: &str) -> Option<Cow<'_, [u8]>> {
            self.0
                .get(name)
                .map(|value| Cow::Borrowed(value.as_bytes()))
        }
    }

    fn request(path: &'static str, headers: &[(&'static str, &'static str)]) -> Request {
        let mut map: HashMap<_, _> = headers.iter().copied().collect();
        map.insert(":path", path);
        Request(map)
    }

    fn compile(json: serde_json::Value) -> Result<RouteMatch, ConfigError> {
        crate::config::read::<RouteMatchConfig>(crate::config::json::Json::from(json))
            .unwrap()
            .compile()
    }

    #[test]
    fn path_rules_follow_envoy() {
        let prefix = compile(serde_json::json!({"prefix": "/api"})).unwrap();
        assert!(prefix.matches(&request("/api/v1?x=1", &[])));
        assert!(prefix.matches(&request("/apix", &[])));
        assert!(!prefix.matches(&request("/API", &[])));
        let insensitive =
            compile(serde_json::json!({"prefix": "/API", "case_sensitive": false})).unwrap();
        assert!(insensitive.matches(&request("/api/x", &[])));
        let exact = compile(serde_json::json!({"path": "/login"})).unwrap();
        assert!(exact.matches(&request("/login?next=/", &[])));
        assert!(!exact.matches(&request("/login/", &[])));
        let regex = compile(serde_json::json!({"safe_regex": {"regex": "/users/[0-9]+"}})).unwrap();
        assert!(regex.matches(&request("/users/42?full=1", &[])));
        assert!(
            !regex.matches(&request("/users/42/posts", &[])),
            "a regex must match the whole path"
        );
        let separated = compile(serde_json::json!({"path_separated_prefix": "/api"})).unwrap();
        assert!(separated.matches(&request("/api", &[])));
        assert!(separated.matches(&request("/api/x", &[])));
        assert!(!separated.matches(&request("/apix", &[])));
    }

    #[test]
    fn header_matchers_follow_envoy() {
        let route = compile(serde_json::json!({"prefix": "/", "headers": [
            {"name": "X-Env", "string_match": {"exact": "PROD", "ignore_case": true}},
            {"name": "x-debug", "present_match": false},
            {"name": "x-tenant", "safe_regex_match": {"regex": "t-[a-z]+"}, "invert_match": true}
        ]}))
        .unwrap();
        assert!(route.matches(&request("/", &[("x-env", "prod"), ("x-tenant", "T-ACME")])));
        assert!(!route.matches(&request("/", &[("x-env", "prod"), ("x-tenant", "t-acme")])));
        assert!(
            !route.matches(&request("/", &[("x-env", "prod")])),
            "an absent header fails an inverted value rule too"
        );
        assert!(!route.matches(&request(
            "/",
            &[("x-env", "prod"), ("x-tenant", "T"), ("x-debug", "1")]
        )));
        assert!(
            !route.matches(&request("/", &[])),
            "a missing header does not match a value"
        );
        let empty = compile(serde_json::json!({"prefix": "/", "headers": [
            {"name": "x-a", "string_match": {"exact": ""}, "treat_missing_header_as_empty": true}]}))
        .unwrap();
        assert!(empty.matches(&request("/", &[])));
    }

    #[test]
    fn a_repeated_header_matches_value_by_value_then_inverts() {
        let matcher = |json: serde_json::Value| {
            crate::config::read::<HeaderMatcherConfig>(crate::config::json::Json::from(json))
                .unwrap()
                .compile()
                .unwrap()
        };
        let exact =
            matcher(serde_json::json!({"name": "x-role", "string_match": {"exact": "a,b"}}));
        let values = |list: &[&'static str]| list.iter().map(|v| v.as_bytes()).collect::<Vec<_>>();
        assert!(exact.matches_values(values(&["x", "a,b"])), "any one value");
        assert!(
            !exact.matches_values(values(&["a", "b"])),
            "values are not joined"
        );
        let inverted = matcher(
            serde_json::json!({"name": "x-debug", "string_match": {"exact": "1"}, "invert_match": true}),
        );
        assert!(inverted.matches_values(values(&["0", "2"])));
        assert!(!inverted.matches_values(values(&["0", "1"])));
        assert!(!inverted.matches_values(values(&[])));
        let not_present = matcher(
            serde_json::json!({"name": "x-p", "present_match": true, "invert_match": true}),
        );
        assert!(not_present.matches_values(values(&[])));
        assert!(!not_present.matches_values(values(&[""])));
    }

    #[test]
    fn bad_matches_name_the_field() {
        for (json, path, reason) in [
            (serde_json::json!({}), "", "needs one of prefix"),
            (
                serde_json::json!({"prefix": "/", "path": "/x"}),
                "",
                "not several",
            ),
            (
                serde_json::json!({"safe_regex": {"regex": "("}}),
                "safe_regex.regex",
                "invalid regex",
            ),
            (
                serde_json::json!({"prefix": "/", "headers": [{"name": "a"}]}),
                "headers[0]",
                "needs one of",
            ),
            (
                serde_json::json!({"prefix": "/", "headers": [{"name": "a", "string_match": {}}]}),
                "headers[0].string_match",
                "needs one of",
            ),
            (
                serde_json::json!({"prefix": "/", "headers": [{"name": "x y", "present_match": true}]}),
                "headers[0].name",
                "not a valid header name",
            ),
            (
                serde_json::json!({"prefix": "/", "headers": [{"name": "", "present_match": true}]}),
                "headers[0].name",
                "must not be empty",
            ),
            (
                serde_json::json!({"path_separated_prefix": "/api/"}),
                "path_separated_prefix",
                "must not end",
            ),
        ] {
            let error = compile(json.clone()).unwrap_err();
            assert_eq!(error.path, path, "{json}");
            assert!(error.reason.contains(reason), "{json}: {}", error.reason);
        }
    }
}
