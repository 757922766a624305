//! The rate limit service's messages (`envoy.service.ratelimit.v3`, `rls.proto`) on the wire:
//! the `RateLimitRequest` this filter sends and the `RateLimitResponse` it reads, and the
//! `x-ratelimit-*` headers native Envoy derives from a response.

use sdk_ext::protobuf::{DecodeError, Field, Reader, Writer};
use sdk_ext::ratelimit::Entry;

/// The gRPC service.
pub const SERVICE: &str = "envoy.service.ratelimit.v3.RateLimitService";
/// Its one method.
pub const METHOD: &str = "ShouldRateLimit";

/// `RateLimitRequest.domain`, serialized once at configuration time.
pub fn domain_field(domain: &str) -> Vec<u8> {
    let mut out = Writer::new();
    out.bytes(1, domain.as_bytes());
    out.into_bytes()
}

/// Appends one `RateLimitRequest.descriptors` entry. Empty strings are left out, as proto3
/// serializes them.
pub fn push_descriptor(out: &mut Writer, entries: &[Entry<'_>]) {
    out.message(2, |descriptor| {
        for (key, value) in entries {
            descriptor.message(1, |entry| {
                if !key.is_empty() {
                    entry.bytes(1, key.as_bytes());
                }
                if !value.is_empty() {
                    entry.bytes(2, value);
                }
            });
        }
    });
}

/// `RateLimitResponse.Code.OVER_LIMIT`; native treats every other code as OK.
const OVER_LIMIT: u64 = 2;

/// A decoded `RateLimitResponse`: what the filter acts on.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Response {
    /// `overall_code == OVER_LIMIT`.
    pub over_limit: bool,
    /// `statuses`, one per descriptor sent.
    pub statuses: Vec<DescriptorStatus>,
    /// `response_headers_to_add`: (key, value).
    pub response_headers_to_add: Vec<(String, String)>,
    /// `request_headers_to_add`: (key, value).
    pub request_headers_to_add: Vec<(String, String)>,
    /// `raw_body`: the body of an over-limit reply.
    pub raw_body: Vec<u8>,
}

/// `RateLimitResponse.DescriptorStatus`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DescriptorStatus {
    /// `current_limit`, when the service set one.
    pub current_limit: Option<Limit>,
    /// `limit_remaining`.
    pub limit_remaining: u32,
    /// `duration_until_reset.seconds`.
    pub reset_seconds: i64,
}

/// `RateLimitResponse.RateLimit`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Limit {
    /// `requests_per_unit`.
    pub requests_per_unit: u32,
    /// `unit` (enum number).
    pub unit: u64,
    /// `name`.
    pub name: String,
}

/// Reads every field of `message` into `read`; a malformed field is an error.
fn each<'a>(
    message: &'a [u8],
    mut read: impl FnMut(Field<'a>) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    for field in Reader::new(message) {
        read(field?)?;
    }
    Ok(())
}

/// A proto3 `string`: protobuf parsers refuse one that is not UTF-8.
fn string(bytes: &[u8]) -> Result<String, DecodeError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError)
}

/// `config.core.v3.HeaderValue`: `key` and `value` (native reads `value`, not `raw_value`).
fn header(message: &[u8]) -> Result<(String, String), DecodeError> {
    let (mut key, mut value) = (String::new(), String::new());
    each(message, |field| {
        match (field.number, field.bytes()) {
            (1, Some(bytes)) => key = string(bytes)?,
            (2, Some(bytes)) => value = string(bytes)?,
            _ => {}
        }
        Ok(())
    })?;
    Ok((key, value))
}

fn limit(message: &[u8]) -> Result<Limit, DecodeError> {
    let mut limit = Limit::default();
    each(message, |field| {
        match (field.number, field.bytes(), field.varint()) {
            (1, _, Some(value)) => limit.requests_per_unit = value as u32,
            (2, _, Some(value)) => limit.unit = value,
            (3, Some(bytes), _) => limit.name = string(bytes)?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(limit)
}

fn status(message: &[u8]) -> Result<DescriptorStatus, DecodeError> {
    let mut status = DescriptorStatus::default();
    each(message, |field| {
        match (field.number, field.bytes()) {
            (2, Some(bytes)) => status.current_limit = Some(limit(bytes)?),
            (3, None) => status.limit_remaining = field.varint().map_or(0, |value| value as u32),
            // google.protobuf.Duration: seconds = 1 (int64), nanos = 2.
            (4, Some(bytes)) => each(bytes, |inner| {
                if inner.number == 1 {
                    if let Some(seconds) = inner.varint() {
                        status.reset_seconds = seconds as i64;
                    }
                }
                Ok(())
            })?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(status)
}

/// Decodes a `RateLimitResponse`. Fields this filter does not use (`dynamic_metadata`, `quota`,
/// a status's `code`) are skipped; a field with an unexpected wire type is skipped as protobuf
/// parsers skip unknown fields.
pub fn decode_response(message: &[u8]) -> Result<Response, DecodeError> {
    let mut response = Response::default();
    each(message, |field| {
        match (field.number, field.bytes()) {
            (1, None) => response.over_limit = field.varint() == Some(OVER_LIMIT),
            (2, Some(bytes)) => response.statuses.push(status(bytes)?),
            (3, Some(bytes)) => response.response_headers_to_add.push(header(bytes)?),
            (4, Some(bytes)) => response.request_headers_to_add.push(header(bytes)?),
            (5, Some(bytes)) => response.raw_body = bytes.to_vec(),
            _ => {}
        }
        Ok(())
    })?;
    Ok(response)
}

/// Seconds in a `RateLimitResponse.RateLimit.Unit`; 0 for UNKNOWN or a value native does not
/// know.
fn window_seconds(unit: u64) -> u32 {
    match unit {
        1 => 1,
        2 => 60,
        3 => 60 * 60,
        4 => 24 * 60 * 60,
        5 => 30 * 24 * 60 * 60,
        6 => 365 * 24 * 60 * 60,
        7 => 7 * 24 * 60 * 60,
        _ => 0,
    }
}

/// The `x-ratelimit-limit`, `-remaining` and `-reset` values of native's DRAFT_VERSION_03
/// headers: from the status with a `current_limit` and the least `limit_remaining` (the first of
/// equals), its limit followed by the quota policy of every status with a limit and a known unit
/// (`10, 10;w=1;name="per-ip", 1000;w=3600`). None when no status has a limit.
pub fn x_ratelimit_headers(statuses: &[DescriptorStatus]) -> Option<[(&'static str, String); 3]> {
    use std::fmt::Write;
    let mut least: Option<(&DescriptorStatus, &Limit)> = None;
    let mut policy = String::new();
    for status in statuses {
        let Some(limit) = &status.current_limit else {
            continue;
        };
        if least.is_none_or(|(known, _)| status.limit_remaining < known.limit_remaining) {
            least = Some((status, limit));
        }
        let window = window_seconds(limit.unit);
        if window == 0 {
            continue;
        }
        let _ = write!(policy, ", {};w={window}", limit.requests_per_unit);
        if !limit.name.is_empty() {
            let _ = write!(policy, ";name=\"{}\"", limit.name);
        }
    }
    let (status, limit) = least?;
    Some([
        (
            "x-ratelimit-limit",
            format!("{}{policy}", limit.requests_per_unit),
        ),
        ("x-ratelimit-remaining", status.limit_remaining.to_string()),
        ("x-ratelimit-reset", status.reset_seconds.to_string()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    #[test]
    fn a_request_is_serialized_as_protobuf_does() {
        let mut out = Writer::new();
        out.raw(&domain_field("edge"));
        let value: Cow<[u8]> = Cow::Borrowed(&b"10.0.0.1"[..]);
        push_descriptor(
            &mut out,
            &[("remote_address", value), ("k", Cow::Borrowed(&b""[..]))],
        );
        let mut expected = b"\x0a\x04edge".to_vec();
        // descriptors: entry (key, value), entry (key only: an empty value is not written).
        expected.extend_from_slice(b"\x12\x21");
        expected.extend_from_slice(b"\x0a\x1a\x0a\x0eremote_address\x12\x0810.0.0.1");
        expected.extend_from_slice(b"\x0a\x03\x0a\x01k");
        assert_eq!(out.as_bytes(), expected);
    }

    /// A response as a service writes it, by hand: OVER_LIMIT, two statuses, headers, a body,
    /// and fields this filter skips.
    fn realistic() -> Vec<u8> {
        let mut bytes = vec![0x08, 0x02]; // overall_code OVER_LIMIT
                                          // statuses[0]: code OVER_LIMIT, limit {10/MINUTE "per-ip"}, remaining 0, reset 42s.
        bytes.extend_from_slice(b"\x12\x16");
        bytes.extend_from_slice(b"\x08\x02");
        bytes.extend_from_slice(b"\x12\x0c\x08\x0a\x10\x02\x1a\x06per-ip");
        bytes.extend_from_slice(b"\x18\x00");
        bytes.extend_from_slice(b"\x22\x02\x08\x2a");
        // statuses[1]: code OK, limit {1000/HOUR}, remaining 998, reset 3000s and 5 nanos.
        bytes.extend_from_slice(b"\x12\x13");
        bytes.extend_from_slice(b"\x08\x01\x12\x05\x08\xe8\x07\x10\x03\x18\xe6\x07");
        bytes.extend_from_slice(b"\x22\x05\x08\xb8\x17\x10\x05");
        // response_headers_to_add: retry-after: 42; request_headers_to_add: x-rl: over.
        bytes.extend_from_slice(b"\x1a\x11\x0a\x0bretry-after\x12\x0242");
        bytes.extend_from_slice(b"\x22\x0c\x0a\x04x-rl\x12\x04over");
        // raw_body.
        bytes.extend_from_slice(b"\x2a\x0aslow down\n");
        // dynamic_metadata (Struct, skipped) and an unknown fixed32 field 15.
        bytes.extend_from_slice(b"\x32\x00\x7d\x01\x02\x03\x04");
        bytes
    }

    #[test]
    fn a_realistic_response_decodes() {
        let response = decode_response(&realistic()).unwrap();
        assert!(response.over_limit);
        assert_eq!(
            response.statuses,
            [
                DescriptorStatus {
                    current_limit: Some(Limit {
                        requests_per_unit: 10,
                        unit: 2,
                        name: "per-ip".into()
                    }),
                    limit_remaining: 0,
                    reset_seconds: 42,
                },
                DescriptorStatus {
                    current_limit: Some(Limit {
                        requests_per_unit: 1000,
                        unit: 3,
                        name: String::new()
                    }),
                    limit_remaining: 998,
                    reset_seconds: 3000,
                },
            ]
        );
        assert_eq!(
            response.response_headers_to_add,
            [("retry-after".to_string(), "42".to_string())]
        );
        assert_eq!(
            response.request_headers_to_add,
            [("x-rl".to_string(), "over".to_string())]
        );
        assert_eq!(response.raw_body, b"slow down\n");
        let headers = x_ratelimit_headers(&response.statuses).unwrap();
        assert_eq!(headers[0].1, "10, 10;w=60;name=\"per-ip\", 1000;w=3600");
        assert_eq!(headers[1].1, "0");
        assert_eq!(headers[2].1, "42");
    }

    #[test]
    fn an_empty_or_unknown_code_is_not_over_limit() {
        assert_eq!(decode_response(b"").unwrap(), Response::default());
        for code in [0u8, 1, 3, 0x7f] {
            assert!(!decode_response(&[0x08, code]).unwrap().over_limit);
        }
    }

    #[test]
    fn malformed_responses_are_errors() {
        let bytes = realistic();
        // Every cut inside a field is an error; between fields it is a shorter response.
        let mut errors = 0;
        for cut in 0..bytes.len() {
            if decode_response(&bytes[..cut]).is_err() {
                errors += 1;
            }
        }
        assert!(errors > bytes.len() / 2, "{errors}");
        // A header key that is not UTF-8, a nested status that is not a message.
        assert!(decode_response(b"\x1a\x04\x0a\x02\xff\xfe").is_err());
        assert!(decode_response(b"\x12\x02\x0b\x00").is_err());
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let seed = realistic();
        for round in 0..20_000u32 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut bytes = if round % 2 == 0 {
                seed.clone()
            } else {
                Vec::new()
            };
            let extra = (state % 48) as usize;
            bytes.extend((0..extra).map(|i| (state >> ((i % 8) * 8)) as u8 ^ i as u8));
            // Flip a byte of the realistic message too.
            if let Some(byte) = bytes.get_mut((state >> 20) as usize % seed.len()) {
                *byte ^= (state >> 40) as u8;
            }
            if let Ok(response) = decode_response(&bytes) {
                let _ = x_ratelimit_headers(&response.statuses);
            }
        }
    }

    #[test]
    fn x_ratelimit_headers_as_native() {
        let status = |rpu, unit, name: &str, remaining, reset| DescriptorStatus {
            current_limit: Some(Limit {
                requests_per_unit: rpu,
                unit,
                name: name.into(),
            }),
            limit_remaining: remaining,
            reset_seconds: reset,
        };
        // Native's own example: the least remaining wins, every limit is listed.
        let values = |statuses: &[DescriptorStatus]| {
            x_ratelimit_headers(statuses).map(|h| h.map(|(_, value)| value))
        };
        assert_eq!(
            values(&[status(1, 2, "first", 2, 3), status(4, 3, "second", 5, 6)]).unwrap(),
            [
                "1, 1;w=60;name=\"first\", 4;w=3600;name=\"second\"",
                "2",
                "3"
            ]
        );
        // A status without a limit is ignored; an unknown unit is left out of the policy;
        // equal remaining: the first wins.
        assert_eq!(
            values(&[
                DescriptorStatus::default(),
                status(5, 0, "odd", 1, 9),
                status(7, 7, "", 1, 8),
            ])
            .unwrap(),
            ["5, 7;w=604800", "1", "9"]
        );
        assert_eq!(values(&[DescriptorStatus::default()]), None);
        assert_eq!(values(&[]), None);
    }
}
