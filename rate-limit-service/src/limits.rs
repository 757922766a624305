//! The limits file: the format of Envoy's reference rate limit service
//! (github.com/envoyproxy/ratelimit), its validation, the descriptor matching, and its
//! translation into limitador limits.

use limitador::limit::{Expression, Limit};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;

/// A window unit of a `rate_limit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Second,
    Minute,
    Hour,
    Day,
    Week,
    /// 30 days, as the reference service.
    Month,
    /// 365 days, as the reference service.
    Year,
}

const UNIT_NAMES: &str = "second, minute, hour, day, week, month, year";

impl Unit {
    fn parse(s: &str) -> Option<Unit> {
        // The reference service uppercases the unit, so any case is accepted.
        Some(match s.to_ascii_lowercase().as_str() {
            "second" => Unit::Second,
            "minute" => Unit::Minute,
            "hour" => Unit::Hour,
            "day" => Unit::Day,
            "week" => Unit::Week,
            "month" => Unit::Month,
            "year" => Unit::Year,
            _ => return None,
        })
    }

    /// The window length in seconds.
    pub fn seconds(self) -> u64 {
        match self {
            Unit::Second => 1,
            Unit::Minute => 60,
            Unit::Hour => 3600,
            Unit::Day => 86_400,
            Unit::Week => 7 * 86_400,
            Unit::Month => 30 * 86_400,
            Unit::Year => 365 * 86_400,
        }
    }
}

/// A node's `rate_limit`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RateLimit {
    /// Never limited (and not counted).
    Unlimited,
    Limited {
        requests_per_unit: u32,
        unit: Unit,
        name: Option<String>,
    },
}

/// An error in a limits file; its message names the place (`descriptors[0].rate_limit.unit:
/// ...`, or a YAML line and column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitsError(String);

impl LimitsError {
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LimitsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LimitsError {}

// The file as written; validated into `Node`s, so that errors can name their place.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDomain {
    domain: Option<String>,
    #[serde(default)]
    descriptors: Vec<RawDescriptor>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDescriptor {
    key: Option<String>,
    value: Option<String>,
    rate_limit: Option<RawRateLimit>,
    #[serde(default)]
    shadow_mode: bool,
    // Real files carry it (a metrics option of the reference service); no effect here.
    #[serde(default)]
    #[allow(dead_code)]
    detailed_metric: bool,
    #[serde(default)]
    descriptors: Vec<RawDescriptor>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRateLimit {
    unit: Option<String>,
    requests_per_unit: Option<u32>,
    #[serde(default)]
    unlimited: bool,
    name: Option<String>,
}

/// One node of a domain's descriptor tree.
#[derive(Debug, Default)]
pub(crate) struct Node {
    /// Children by key, then by value (`None`: the child without a value).
    children: HashMap<String, HashMap<Option<String>, Node>>,
    pub(crate) rate_limit: Option<RateLimit>,
    pub(crate) shadow_mode: bool,
    /// The limitador namespace of this node's limit: unique per node of all domains.
    pub(crate) namespace: String,
    /// Positions (on the path from the root) of the valueless entries: each is a limitador
    /// variable, so that each distinct request value gets its own counter.
    pub(crate) variables: Vec<usize>,
}

/// The parsed limits of every domain of a file.
#[derive(Debug, Default)]
pub struct Limits {
    domains: BTreeMap<String, Node>,
}

/// Where a request descriptor leads.
#[derive(Debug)]
pub(crate) enum Lookup<'a> {
    UnknownDomain,
    /// No node matches, or the matched node has no `rate_limit`.
    NoLimit,
    Found(&'a Node),
}

/// Loads and validates a limits file; errors are prefixed with the file's path.
pub fn load_limits(path: &Path) -> Result<Limits, LimitsError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| LimitsError(format!("{}: {e}", path.display())))?;
    Limits::parse(&text).map_err(|e| LimitsError(format!("{}: {}", path.display(), e.0)))
}

/// The limitador variable name of the entry at `position`: keys are free text, not CEL
/// identifiers, and each limit has a namespace of its own, so positions name them.
pub(crate) fn variable_name(position: usize) -> String {
    format!("v{position}")
}

// `/` separates path entries and `=` a key from its value in namespaces.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '/' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl Limits {
    /// Parses and validates a limits file's text (one domain per YAML document).
    pub fn parse(text: &str) -> Result<Limits, LimitsError> {
        let mut raws = Vec::new();
        for document in serde_yaml_ng::Deserializer::from_str(text) {
            let raw: Option<RawDomain> =
                Option::deserialize(document).map_err(|e| LimitsError(format!("YAML: {e}")))?;
            raws.extend(raw);
        }
        if raws.is_empty() {
            return Err(LimitsError("no domain in the limits file".into()));
        }
        let several = raws.len() > 1;
        let mut limits = Limits::default();
        for (i, raw) in raws.into_iter().enumerate() {
            let prefix = if several {
                format!("document {}: ", i + 1)
            } else {
                String::new()
            };
            let domain = match raw.domain {
                Some(d) if !d.is_empty() => d,
                Some(_) => return Err(LimitsError(format!("{prefix}domain: must not be empty"))),
                None => return Err(LimitsError(format!("{prefix}domain: missing"))),
            };
            if limits.domains.contains_key(&domain) {
                return Err(LimitsError(format!(
                    "{prefix}domain: \"{domain}\" is defined twice"
                )));
            }
            let mut root = Node {
                namespace: escape(&domain),
                ..Node::default()
            };
            add_children(&mut root, raw.descriptors, &prefix, "descriptors", 0)?;
            limits.domains.insert(domain, root);
        }
        Ok(limits)
    }

    /// The domain names.
    pub fn domains(&self) -> impl Iterator<Item = &str> {
        self.domains.keys().map(String::as_str)
    }

    /// Walks `domain`'s tree as the reference service: at each level the child with the entry's
    /// key and value, else the one with the key and no value.
    pub(crate) fn lookup<'a, K, V>(&self, domain: &str, entries: &'a [(K, V)]) -> Lookup<'_>
    where
        K: AsRef<str> + 'a,
        V: AsRef<str> + 'a,
    {
        let Some(mut node) = self.domains.get(domain) else {
            return Lookup::UnknownDomain;
        };
        for (key, value) in entries {
            let Some(by_value) = node.children.get(key.as_ref()) else {
                return Lookup::NoLimit;
            };
            match by_value
                .get(&Some(value.as_ref().to_owned()))
                .or_else(|| by_value.get(&None))
            {
                Some(child) => node = child,
                None => return Lookup::NoLimit,
            }
        }
        match node.rate_limit {
            Some(_) => Lookup::Found(node),
            None => Lookup::NoLimit,
        }
    }

    /// One limitador limit per node with a (not unlimited) `rate_limit`, each in its own
    /// namespace with no conditions, so that a call for a namespace touches only that limit.
    pub(crate) fn limitador_limits(&self) -> Result<Vec<Limit>, String> {
        let mut out = Vec::new();
        for root in self.domains.values() {
            collect_limits(root, &mut out)?;
        }
        Ok(out)
    }
}

fn collect_limits(node: &Node, out: &mut Vec<Limit>) -> Result<(), String> {
    if let Some(RateLimit::Limited {
        requests_per_unit,
        unit,
        name,
    }) = &node.rate_limit
    {
        let variables = node
            .variables
            .iter()
            .map(|&p| Expression::parse(variable_name(p)).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        let mut limit = Limit::new(
            node.namespace.as_str(),
            u64::from(*requests_per_unit),
            unit.seconds(),
            Vec::new(),
            variables,
        );
        if let Some(name) = name {
            limit.set_name(name.clone());
        }
        out.push(limit);
    }
    for by_value in node.children.values() {
        for child in by_value.values() {
            collect_limits(child, out)?;
        }
    }
    Ok(())
}

fn add_children(
    parent: &mut Node,
    raws: Vec<RawDescriptor>,
    prefix: &str,
    path: &str,
    depth: usize,
) -> Result<(), LimitsError> {
    for (i, raw) in raws.into_iter().enumerate() {
        let here = format!("{path}[{i}]");
        let err = |field: &str, msg: String| {
            let place = if field.is_empty() {
                here.clone()
            } else {
                format!("{here}.{field}")
            };
            LimitsError(format!("{prefix}{place}: {msg}"))
        };
        let key = match raw.key {
            Some(k) if !k.is_empty() => k,
            Some(_) => return Err(err("key", "must not be empty".into())),
            None => return Err(err("key", "missing".into())),
        };
        let rate_limit = match raw.rate_limit {
            None => None,
            Some(rl) => Some(match (rl.unlimited, rl.requests_per_unit, rl.unit) {
                (true, Some(_), _) => {
                    return Err(err(
                        "rate_limit",
                        "`unlimited` together with `requests_per_unit`".into(),
                    ))
                }
                (true, None, _) => RateLimit::Unlimited,
                (false, None | Some(0), _) => {
                    return Err(err(
                        "rate_limit.requests_per_unit",
                        "must be at least 1 (or set `unlimited: true`)".into(),
                    ))
                }
                (false, Some(_), None) => {
                    return Err(err("rate_limit.unit", "missing".into()));
                }
                (false, Some(requests_per_unit), Some(unit)) => RateLimit::Limited {
                    requests_per_unit,
                    unit: Unit::parse(&unit).ok_or_else(|| {
                        err(
                            "rate_limit.unit",
                            format!("unknown unit \"{unit}\" (one of {UNIT_NAMES})"),
                        )
                    })?,
                    name: rl.name,
                },
            }),
        };
        let by_value = parent.children.entry(key.clone()).or_default();
        if by_value.contains_key(&raw.value) {
            let what = match &raw.value {
                Some(v) => format!("key \"{key}\" with value \"{v}\""),
                None => format!("key \"{key}\" without value"),
            };
            return Err(err("", format!("duplicate descriptor: {what}")));
        }
        let segment = match &raw.value {
            Some(v) => format!("{}={}", escape(&key), escape(v)),
            None => escape(&key),
        };
        let mut variables = parent.variables.clone();
        if raw.value.is_none() {
            variables.push(depth);
        }
        let mut node = Node {
            children: HashMap::new(),
            rate_limit,
            shadow_mode: raw.shadow_mode,
            namespace: format!("{}/{segment}", parent.namespace),
            variables,
        };
        add_children(
            &mut node,
            raw.descriptors,
            prefix,
            &format!("{here}.descriptors"),
            depth + 1,
        )?;
        by_value.insert(raw.value, node);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
domain: edge
descriptors:
  - key: user
    rate_limit: {unit: minute, requests_per_unit: 5}
  - key: remote_address
    value: 10.0.0.1
    rate_limit: {unit: SECOND, requests_per_unit: 100, name: vip}
    detailed_metric: true
  - key: remote_address
    rate_limit: {unit: Hour, requests_per_unit: 7}
  - key: path
    descriptors:
      - key: method
        value: POST
        rate_limit: {unit: hour, requests_per_unit: 10}
        shadow_mode: true
      - key: method
        rate_limit: {unit: day, requests_per_unit: 3}
  - key: internal
    rate_limit: {unlimited: true}
---
domain: other
descriptors:
  - key: user
    rate_limit: {unit: year, requests_per_unit: 1}
"#;

    fn found<'a>(limits: &'a Limits, domain: &str, entries: &[(&str, &str)]) -> &'a Node {
        match limits.lookup(domain, entries) {
            Lookup::Found(node) => node,
            other => panic!("{entries:?}: {other:?}"),
        }
    }

    fn error(text: &str) -> String {
        Limits::parse(text).unwrap_err().0
    }

    #[test]
    fn parses_good_file() {
        let limits = Limits::parse(GOOD).unwrap();
        assert_eq!(limits.domains().collect::<Vec<_>>(), ["edge", "other"]);
        let vip = found(&limits, "edge", &[("remote_address", "10.0.0.1")]);
        assert_eq!(
            vip.rate_limit,
            Some(RateLimit::Limited {
                requests_per_unit: 100,
                unit: Unit::Second,
                name: Some("vip".into())
            })
        );
        assert!(!vip.shadow_mode);
        let post = found(&limits, "edge", &[("path", "/a"), ("method", "POST")]);
        assert!(post.shadow_mode);
        assert_eq!(
            found(&limits, "edge", &[("internal", "x")]).rate_limit,
            Some(RateLimit::Unlimited)
        );
        assert_eq!(
            found(&limits, "other", &[("user", "x")]).rate_limit,
            Some(RateLimit::Limited {
                requests_per_unit: 1,
                unit: Unit::Year,
                name: None
            })
        );
    }

    #[test]
    fn units() {
        for (name, secs) in [
            ("second", 1),
            ("MINUTE", 60),
            ("hour", 3600),
            ("Day", 86_400),
            ("week", 604_800),
            ("month", 2_592_000),
            ("year", 31_536_000),
        ] {
            assert_eq!(Unit::parse(name).unwrap().seconds(), secs, "{name}");
        }
    }

    #[test]
    fn matching_is_the_reference_services() {
        let limits = Limits::parse(GOOD).unwrap();
        // A value match wins over the valueless sibling.
        assert_eq!(
            found(&limits, "edge", &[("remote_address", "10.0.0.1")]).namespace,
            "edge/remote_address=10.0.0.1"
        );
        let any = found(&limits, "edge", &[("remote_address", "10.0.0.2")]);
        assert_eq!(any.namespace, "edge/remote_address");
        assert_eq!(any.variables, [0]);
        let get = found(&limits, "edge", &[("path", "/a"), ("method", "GET")]);
        assert_eq!(get.namespace, "edge/path/method");
        assert_eq!(get.variables, [0, 1]);
        assert_eq!(
            found(&limits, "edge", &[("path", "/a"), ("method", "POST")]).variables,
            [0]
        );
        // The node reached has no rate_limit.
        assert!(matches!(
            limits.lookup("edge", &[("path", "/a")]),
            Lookup::NoLimit
        ));
        // A level without match, and entries beyond the tree.
        assert!(matches!(
            limits.lookup("edge", &[("nope", "x")]),
            Lookup::NoLimit
        ));
        assert!(matches!(
            limits.lookup("edge", &[("user", "a"), ("extra", "b")]),
            Lookup::NoLimit
        ));
        assert!(matches!(
            limits.lookup("nowhere", &[("user", "a")]),
            Lookup::UnknownDomain
        ));
    }

    #[test]
    fn namespaces_are_escaped_and_unique() {
        let limits = Limits::parse(
            r#"
domain: d/x
descriptors:
  - key: a=b
    rate_limit: {unit: second, requests_per_unit: 1}
  - key: a
    value: b
    rate_limit: {unit: second, requests_per_unit: 1}
"#,
        )
        .unwrap();
        assert_eq!(
            found(&limits, "d/x", &[("a=b", "z")]).namespace,
            r"d\/x/a\=b"
        );
        assert_eq!(found(&limits, "d/x", &[("a", "b")]).namespace, r"d\/x/a=b");
    }

    #[test]
    fn translation_gives_one_limit_per_limited_node() {
        let limits = Limits::parse(GOOD).unwrap();
        let mut got: Vec<_> = limits
            .limitador_limits()
            .unwrap()
            .into_iter()
            .map(|l| {
                let mut vars: Vec<_> = l.variables().into_iter().collect();
                vars.sort();
                (
                    l.namespace().as_ref().to_owned(),
                    l.max_value(),
                    l.seconds(),
                    l.name().map(str::to_owned),
                    l.conditions().len(),
                    vars,
                )
            })
            .collect();
        got.sort();
        let s = |x: &str| x.to_owned();
        assert_eq!(
            got,
            [
                (
                    s("edge/path/method"),
                    3,
                    86_400,
                    None,
                    0,
                    vec![s("v0"), s("v1")]
                ),
                (s("edge/path/method=POST"), 10, 3600, None, 0, vec![s("v0")]),
                (s("edge/remote_address"), 7, 3600, None, 0, vec![s("v0")]),
                (
                    s("edge/remote_address=10.0.0.1"),
                    100,
                    1,
                    Some(s("vip")),
                    0,
                    vec![]
                ),
                (s("edge/user"), 5, 60, None, 0, vec![s("v0")]),
                (s("other/user"), 1, 31_536_000, None, 0, vec![s("v0")]),
            ]
        );
    }

    #[test]
    fn unknown_unit() {
        assert_eq!(
            error("domain: d\ndescriptors:\n  - key: a\n    rate_limit: {unit: fortnight, requests_per_unit: 1}\n"),
            "descriptors[0].rate_limit.unit: unknown unit \"fortnight\" (one of second, minute, hour, day, week, month, year)"
        );
    }

    #[test]
    fn nested_place_and_document_number() {
        assert_eq!(
            error("domain: a\n---\ndomain: d\ndescriptors:\n  - key: a\n  - key: b\n    descriptors:\n      - value: x\n"),
            "document 2: descriptors[1].descriptors[0].key: missing"
        );
    }

    #[test]
    fn duplicate_descriptor() {
        assert_eq!(
            error("domain: d\ndescriptors:\n  - {key: a, value: x}\n  - {key: a}\n  - {key: a, value: x}\n"),
            "descriptors[2]: duplicate descriptor: key \"a\" with value \"x\""
        );
        assert_eq!(
            error("domain: d\ndescriptors:\n  - {key: a}\n  - {key: a}\n"),
            "descriptors[1]: duplicate descriptor: key \"a\" without value"
        );
        // The same key and value under different parents is fine.
        Limits::parse("domain: d\ndescriptors:\n  - {key: a, descriptors: [{key: a}]}\n  - {key: b, descriptors: [{key: a}]}\n").unwrap();
    }

    #[test]
    fn bad_keys_and_domains() {
        assert_eq!(
            error("domain: d\ndescriptors:\n  - {key: ''}\n"),
            "descriptors[0].key: must not be empty"
        );
        assert_eq!(error("descriptors: []\n"), "domain: missing");
        assert_eq!(error("domain: ''\n"), "domain: must not be empty");
        assert_eq!(
            error("domain: d\n---\ndomain: d\n"),
            "document 2: domain: \"d\" is defined twice"
        );
        assert_eq!(error(""), "no domain in the limits file");
    }

    #[test]
    fn bad_rate_limits() {
        assert_eq!(
            error("domain: d\ndescriptors:\n  - key: a\n    rate_limit: {unit: second, requests_per_unit: 0}\n"),
            "descriptors[0].rate_limit.requests_per_unit: must be at least 1 (or set `unlimited: true`)"
        );
        assert_eq!(
            error("domain: d\ndescriptors:\n  - key: a\n    rate_limit: {unit: second}\n"),
            "descriptors[0].rate_limit.requests_per_unit: must be at least 1 (or set `unlimited: true`)"
        );
        assert_eq!(
            error("domain: d\ndescriptors:\n  - key: a\n    rate_limit: {unlimited: true, unit: second, requests_per_unit: 3}\n"),
            "descriptors[0].rate_limit: `unlimited` together with `requests_per_unit`"
        );
        assert_eq!(
            error("domain: d\ndescriptors:\n  - key: a\n    rate_limit: {requests_per_unit: 3}\n"),
            "descriptors[0].rate_limit.unit: missing"
        );
    }

    #[test]
    fn yaml_errors_name_the_line() {
        let e = error("domain: d\ndescriptors:\n  - key: a\n    bogus: 1\n");
        assert!(e.starts_with("YAML: "), "{e}");
        assert!(e.contains("unknown field `bogus`"), "{e}");
        assert!(e.contains("line 4"), "{e}");
        let e = error("domain: d\ndescriptors:\n  - key: [a\n");
        assert!(e.contains("line "), "{e}");
        let e = error("domain: d\ndescriptors:\n  - key: a\n    rate_limit: {unit: second, requests_per_unit: -1}\n");
        assert!(e.contains("line 4"), "{e}");
    }

    #[test]
    fn load_limits_names_the_file() {
        let e = load_limits(Path::new("/nonexistent/limits.yaml")).unwrap_err();
        assert!(e.0.starts_with("/nonexistent/limits.yaml: "), "{e}");
    }
}
