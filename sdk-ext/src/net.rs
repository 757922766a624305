//! Network rules shared by filters: CIDR ranges in Envoy's `{address_prefix, prefix_len}` shape,
//! peer addresses from properties, and the trusted client address from `x-forwarded-for`.
//!
//! ```json
//! {"address_prefix": "10.0.0.0", "prefix_len": 8}
//! ```
//!
//! As in Envoy: a range matches addresses of its own IP family only (an IPv4 range never matches
//! an IPv6 address, IPv4-mapped or not), bits past `prefix_len` are ignored, and an unset
//! `prefix_len` is 0 (every address of the family).

use crate::config::{ConfigError, FromJson};
use ipnet::IpNet;
use std::net::IpAddr;

/// `config.core.v3.CidrRange` as configured.
#[derive(Debug, Clone, Default, FromJson)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CidrRangeConfig {
    /// An IPv4 or IPv6 address, without port or brackets: `10.0.0.0`, `2001:db8::`.
    pub address_prefix: String,
    /// Leading bits that must match (IPv4 up to 32, IPv6 up to 128); unset is 0.
    #[serde(default)]
    pub prefix_len: Option<u32>,
}

/// A validated CIDR range: the network address (host bits cleared) and its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CidrRange(IpNet);

impl CidrRangeConfig {
    /// Validates the range; errors name `address_prefix` or `prefix_len`.
    pub fn compile(&self) -> Result<CidrRange, ConfigError> {
        let address: IpAddr = self.address_prefix.parse().map_err(|_| {
            ConfigError::new(
                "address_prefix",
                "not an IPv4 or IPv6 address (give it without port, brackets or length)",
            )
        })?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let len = self.prefix_len.unwrap_or(0);
        // Envoy clamps a longer length to the maximum; a typo there is better refused.
        let len = u8::try_from(len)
            .ok()
            .filter(|len| *len <= max)
            .ok_or_else(|| {
                ConfigError::new(
                    "prefix_len",
                    format!(
                        "{len} is longer than an {} address ({max} bits)",
                        family(address)
                    ),
                )
            })?;
        let net = IpNet::new(address, len)
            .map_err(|error| ConfigError::new("prefix_len", error.to_string()))?;
        Ok(CidrRange(net.trunc()))
    }
}

fn family(address: IpAddr) -> &'static str {
    if address.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    }
}

impl CidrRange {
    /// Whether `ip` is in the range; an address of the other family never is.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip)
    }

    /// The range as `address/len`.
    pub fn net(&self) -> IpNet {
        self.0
    }
}

/// An address property value (`source.address`, `destination.address`) as Envoy writes it:
/// `1.2.3.4:5678` or `[::1]:80` (a bare IP is taken too, with no port). An IPv4-mapped IPv6
/// address is returned as IPv4, as Envoy reports a dual-stack socket's IPv4 peer. `None` for
/// anything else: a pipe path, an internal address, garbage.
pub fn parse_socket_address(value: &[u8]) -> Option<(IpAddr, Option<u16>)> {
    let text = std::str::from_utf8(value).ok()?;
    let (ip, port) = if let Some(rest) = text.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?.parse::<u16>().ok()?),
        };
        (ip.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6)?, port)
    } else if let Ok(ip) = text.parse::<IpAddr>() {
        (ip, None)
    } else {
        let (ip, port) = text.rsplit_once(':')?;
        (
            ip.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)?,
            Some(port.parse::<u16>().ok()?),
        )
    };
    Some((ip.to_canonical(), port))
}

/// The trusted client address from an `x-forwarded-for` value, as Envoy's connection manager
/// computes it (`Utility::getLastAddressFromXFF`): skip `num_to_skip` entries from the right, and
/// the next one, trimmed of whitespace, must be a plain IP. `None` (fall back to the peer) when
/// the header has too few entries or that entry is not an IP (a port, brackets, empty, garbage,
/// not UTF-8). Repeated headers are one comma-joined value, as Envoy merges them.
///
/// With the connection manager's `use_remote_address: false` and `xff_num_trusted_hops: N`, the
/// client is `trusted_client_address(xff, N)`; with `use_remote_address: true` and `N`, it is
/// `trusted_client_address(xff, N - 1)` of the header as the client sent it, which is
/// `trusted_client_address(xff, N)` of the header after Envoy appended the peer.
pub fn trusted_client_address(xff: &[u8], num_to_skip: u32) -> Option<IpAddr> {
    let mut rest = xff;
    for _ in 0..num_to_skip {
        let comma = rest.iter().rposition(|&b| b == b',')?;
        rest = rest.split_at(comma).0;
    }
    // Envoy's quirk, kept: with a trailing comma the whole remainder is parsed, and fails.
    let entry = match rest.iter().rposition(|&b| b == b',') {
        Some(comma) if comma + 1 < rest.len() => rest.split_at(comma + 1).1,
        _ => rest,
    };
    let entry = std::str::from_utf8(entry).ok()?.trim_matches(is_xff_space);
    entry.parse::<IpAddr>().ok()
}

/// Envoy's `StringUtil::ltrim`/`rtrim` set.
fn is_xff_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(prefix: &str, len: Option<u32>) -> Result<CidrRange, ConfigError> {
        CidrRangeConfig {
            address_prefix: prefix.into(),
            prefix_len: len,
        }
        .compile()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn ranges_match_their_own_family() {
        let ten = range("10.1.2.3", Some(8)).unwrap();
        assert_eq!(ten.net().to_string(), "10.0.0.0/8", "host bits are cleared");
        assert!(ten.contains(ip("10.255.0.1")));
        assert!(!ten.contains(ip("11.0.0.1")));
        assert!(
            !ten.contains(ip("::ffff:10.0.0.1")),
            "an IPv4-mapped IPv6 address is IPv6 to a range, as in Envoy"
        );
        let host = range("192.0.2.7", Some(32)).unwrap();
        assert!(host.contains(ip("192.0.2.7")) && !host.contains(ip("192.0.2.6")));
        let v6 = range("2001:db8::", Some(32)).unwrap();
        assert!(v6.contains(ip("2001:db8:1::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
        assert!(!v6.contains(ip("10.0.0.1")));
        let mapped = range("::ffff:10.0.0.0", Some(104)).unwrap();
        assert!(mapped.contains(ip("::ffff:10.9.9.9")));
        let all_v4 = range("0.0.0.0", None).unwrap();
        assert!(all_v4.contains(ip("203.0.113.9")) && !all_v4.contains(ip("::1")));
    }

    #[test]
    fn bad_ranges_name_the_field() {
        for (prefix, len, field) in [
            ("10.0.0.0/8", Some(8), "address_prefix"),
            ("10.0.0", Some(8), "address_prefix"),
            ("[::1]", Some(8), "address_prefix"),
            ("10.0.0.1:80", None, "address_prefix"),
            ("", None, "address_prefix"),
            ("010.0.0.1", None, "address_prefix"),
            ("10.0.0.0", Some(33), "prefix_len"),
            ("::", Some(129), "prefix_len"),
            ("::", Some(u32::MAX), "prefix_len"),
        ] {
            let error = range(prefix, len).unwrap_err();
            assert_eq!(error.path, field, "{prefix}/{len:?}: {error}");
        }
        assert!(range("::", Some(128)).is_ok());
    }

    #[test]
    fn socket_addresses_parse_as_envoy_writes_them() {
        assert_eq!(
            parse_socket_address(b"1.2.3.4:5678"),
            Some((ip("1.2.3.4"), Some(5678)))
        );
        assert_eq!(
            parse_socket_address(b"[::1]:80"),
            Some((ip("::1"), Some(80)))
        );
        assert_eq!(
            parse_socket_address(b"[2001:db8::7]"),
            Some((ip("2001:db8::7"), None))
        );
        assert_eq!(
            parse_socket_address(b"[::ffff:10.0.0.1]:9"),
            Some((ip("10.0.0.1"), Some(9))),
            "an IPv4-mapped peer is IPv4"
        );
        assert_eq!(
            parse_socket_address(b"10.0.0.1"),
            Some((ip("10.0.0.1"), None))
        );
        assert_eq!(parse_socket_address(b"::1"), Some((ip("::1"), None)));
        for bad in [
            &b""[..],
            b"/tmp/envoy.sock",
            b"envoy://internal",
            b"1.2.3.4:",
            b"1.2.3.4:65536",
            b"1.2.3.4:x",
            b"[::1",
            b"[::1]80",
            b"[1.2.3.4]:80",
            b"::1:80:x",
            b"\xff\xfe:80",
        ] {
            assert_eq!(
                parse_socket_address(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn the_client_is_counted_from_the_right_of_xff() {
        let xff = b"203.0.113.1, 198.51.100.2,192.0.2.3";
        assert_eq!(trusted_client_address(xff, 0), Some(ip("192.0.2.3")));
        assert_eq!(trusted_client_address(xff, 1), Some(ip("198.51.100.2")));
        assert_eq!(trusted_client_address(xff, 2), Some(ip("203.0.113.1")));
        assert_eq!(trusted_client_address(xff, 3), None, "too few entries");
        assert_eq!(
            trusted_client_address(b"2001:db8::1", 0),
            Some(ip("2001:db8::1"))
        );
        assert_eq!(
            trusted_client_address(b"::ffff:1.2.3.4", 0),
            Some(ip("::ffff:1.2.3.4")),
            "an XFF entry stays as written, as Envoy parses it"
        );
        assert_eq!(
            trusted_client_address(b" \t10.0.0.1 \t", 0),
            Some(ip("10.0.0.1"))
        );
    }

    #[test]
    fn malformed_xff_entries_give_no_client() {
        for (xff, skip) in [
            (&b""[..], 0),
            (b",,,", 0),
            (b",,,", 2),
            (b"not-an-ip", 0),
            (b"1.2.3.4:80", 0),
            (b"[::1]", 0),
            (b"[::1]:80", 0),
            (b"1.2.3.4,", 0),
            (b"1.2.3.4, ", 0),
            (b"1.2.3.4,,5.6.7.8", 1),
            (b"\xff1.2.3.4", 0),
            (b"01.2.3.4", 0),
            (b"1.2.3.4 5.6.7.8", 0),
        ] {
            assert_eq!(
                trusted_client_address(xff, skip),
                None,
                "{:?} skip {skip}",
                String::from_utf8_lossy(xff)
            );
        }
        // A bad entry further left does not matter.
        assert_eq!(
            trusted_client_address(b"junk,[::1],10.0.0.9", 0),
            Some(ip("10.0.0.9"))
        );
    }

    #[test]
    fn a_thousand_entries_are_fine() {
        let xff: Vec<u8> = (0..1000)
            .map(|i| format!("10.0.{}.{}", i / 256, i % 256))
            .collect::<Vec<_>>()
            .join(",")
            .into_bytes();
        assert_eq!(trusted_client_address(&xff, 0), Some(ip("10.0.3.231")));
        assert_eq!(trusted_client_address(&xff, 999), Some(ip("10.0.0.0")));
        assert_eq!(trusted_client_address(&xff, 1000), None);
        assert_eq!(trusted_client_address(&xff, u32::MAX), None);
    }
}
