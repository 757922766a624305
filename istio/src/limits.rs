//! The limits file of `rate-limit-service` (the format of Envoy's reference rate limit service),
//! loaded by the service's own parser, `rate_limit_service::Limits::parse`, so that an error is
//! the one the service prints when it starts (and exits 2).

/// One problem in a limits file: the field path inside it and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitsError {
    /// Dotted path inside the file (`descriptors[1].rate_limit.unit`); empty when the service
    /// names no place (a YAML error carries its line and column in `reason`).
    pub path: String,
    /// What is wrong, in the service's words.
    pub reason: String,
}

/// What the cross-checks need of a file that loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Its domains (one per YAML document).
    pub domains: Vec<String>,
}

/// Loads a limits file as `rate-limit-service --config` does.
pub fn check(text: &str) -> Result<Limits, LimitsError> {
    match rate_limit_service::Limits::parse(text) {
        Ok(limits) => Ok(Limits {
            domains: limits.domains().map(str::to_string).collect(),
        }),
        Err(error) => Err(split(error.message())),
    }
}

/// `[document N: ]descriptors[0].rate_limit.unit: unknown unit ...` -> the place and the rest.
fn split(message: &str) -> LimitsError {
    let (document, rest) = match message.split_once(": ") {
        Some((head, rest)) if head.starts_with("document ") => (format!("{head}: "), rest),
        _ => (String::new(), message),
    };
    match rest.split_once(": ") {
        Some((place, reason))
            if (place.starts_with("domain") || place.starts_with("descriptors"))
                && !place.contains(' ') =>
        {
            LimitsError {
                path: place.to_string(),
                reason: format!("{document}{reason}"),
            }
        }
        _ => LimitsError {
            path: String::new(),
            reason: message.to_string(),
        },
    }
}
