//! The query and cookie parsing that Envoy's own filters use, byte for byte.

use std::borrow::Cow;

/// Percent-decodes as Envoy's `PercentEncoding::decode`: `%` and two hex digits become one
/// byte, any other `%` stays as it is, and `+` stays a `+`.
pub fn percent_decode(raw: &[u8]) -> Cow<'_, [u8]> {
    if !raw.contains(&b'%') {
        return Cow::Borrowed(raw);
    }
    let hex = |byte: &u8| char::from(*byte).to_digit(16);
    let mut out = Vec::with_capacity(raw.len());
    let mut rest = raw;
    while let Some((&byte, after)) = rest.split_first() {
        if let (b'%', [high, low, ..]) = (byte, after) {
            if let (Some(high), Some(low)) = (hex(high), hex(low)) {
                out.push((high * 16 + low) as u8);
                rest = after.get(2..).unwrap_or_default();
                continue;
            }
        }
        out.push(byte);
        rest = after;
    }
    Cow::Owned(out)
}

/// The query parameters of a `:path` as Envoy's `parseAndDecodeQueryString` reads them:
/// everything after the first `?` split on `&`, each name and value percent-decoded (a bare
/// name has an empty value). Like Envoy, `#` has no special meaning here.
pub fn query_parameters(path: &[u8]) -> impl Iterator<Item = (Cow<'_, [u8]>, Cow<'_, [u8]>)> {
    let query: &[u8] = match path.iter().position(|&b| b == b'?') {
        Some(at) => path.get(at + 1..).unwrap_or_default(),
        None => &[],
    };
    query
        .split(|&b| b == b'&')
        .filter(move |_| !query.is_empty())
        .map(|pair| match pair.iter().position(|&b| b == b'=') {
            Some(at) => {
                let (name, value) = pair.split_at(at);
                (
                    percent_decode(name),
                    percent_decode(value.get(1..).unwrap_or_default()),
                )
            }
            None => (percent_decode(pair), Cow::Borrowed(&[][..])),
        })
}

/// The first value of query parameter `name`, names compared after decoding (Envoy's
/// `getFirstValue`): `?access%5Ftoken=x` is `access_token`.
pub fn query_parameter<'a>(path: &'a [u8], name: &str) -> Option<Cow<'a, [u8]>> {
    query_parameters(path)
        .find(|(key, _)| **key == *name.as_bytes())
        .map(|(_, value)| value)
}

/// Cookie `name` over every `Cookie` header value, as Envoy's `parseCookies`: each value split
/// on `;`, spaces (not tabs) skipped before a name, the first `name=` in any header wins, and
/// a value in double quotes loses them.
pub fn cookie<'a>(
    cookie_headers: impl IntoIterator<Item = &'a [u8]>,
    name: &str,
) -> Option<&'a [u8]> {
    cookie_headers.into_iter().find_map(|header| {
        header
            .split(|&b| b == b';')
            .filter(|pair| !pair.is_empty())
            .find_map(|pair| {
                let equals = pair.iter().position(|&b| b == b'=')?;
                let start = pair.iter().position(|&b| b != b' ').unwrap_or(equals);
                let key = pair.get(start..equals).unwrap_or_default();
                if key != name.as_bytes() {
                    return None;
                }
                let value = pair.get(equals + 1..).unwrap_or_default();
                Some(match value {
                    [b'"', inner @ .., b'"'] => inner,
                    _ => value,
                })
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_are_decoded_like_envoys() {
        let path = b"/a?x=1&token=abc.def&empty&y=2";
        assert_eq!(
            query_parameter(path, "token").as_deref(),
            Some(&b"abc.def"[..])
        );
        assert_eq!(query_parameter(path, "empty").as_deref(), Some(&b""[..]));
        assert_eq!(query_parameter(path, "missing"), None);
        assert_eq!(query_parameter(b"/no-query", "x"), None);
        assert_eq!(query_parameter(b"/q?", ""), None);
        // Names are decoded before they are compared; the first occurrence wins.
        let path = b"/a?access%5Ftoken=forged&access_token=good";
        assert_eq!(
            query_parameter(path, "access_token").as_deref(),
            Some(&b"forged"[..])
        );
        assert_eq!(
            query_parameter(b"/a?t=x%2Ey%2e", "t").as_deref(),
            Some(&b"x.y."[..])
        );
        assert_eq!(
            query_parameter(b"/a?t=a#b", "t").as_deref(),
            Some(&b"a#b"[..])
        );
    }

    #[test]
    fn invalid_escapes_stay_as_they_are() {
        assert_eq!(&*percent_decode(b"%zz%4"), b"%zz%4");
        assert_eq!(&*percent_decode(b"%41%"), b"A%");
        assert_eq!(&*percent_decode(b"a+b%2B"), b"a+b+");
        assert_eq!(&*percent_decode(b"%C3%A9"), "é".as_bytes());
        assert!(matches!(percent_decode(b"plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn cookies_are_read_from_every_header() {
        let one: &[&[u8]] = &[b"session=s1; jwt=tok; other=x"];
        assert_eq!(cookie(one.iter().copied(), "jwt"), Some(&b"tok"[..]));
        assert_eq!(cookie(one.iter().copied(), "session"), Some(&b"s1"[..]));
        assert_eq!(cookie(one.iter().copied(), "nope"), None);
        let two: &[&[u8]] = &[b"a=1", b"jwt=\"second\""];
        assert_eq!(cookie(two.iter().copied(), "jwt"), Some(&b"second"[..]));
        let first_wins: &[&[u8]] = &[b"jwt=1; jwt=2", b"jwt=3"];
        assert_eq!(cookie(first_wins.iter().copied(), "jwt"), Some(&b"1"[..]));
        for header in [&b"a=1;   jwt=v"[..], b"a=1;jwt=v", b";; jwt=v;"] {
            assert_eq!(cookie([header], "jwt"), Some(&b"v"[..]), "{header:?}");
        }
        // Only spaces precede a name; nothing is trimmed after it.
        assert_eq!(cookie([&b"a=1;\tjwt=v"[..]], "jwt"), None);
        assert_eq!(cookie([&b"jwt =v"[..]], "jwt"), None);
        assert_eq!(cookie([&b"jwt"[..]], "jwt"), None);
        assert_eq!(cookie([&b"jwt=\""[..]], "jwt"), Some(&b"\""[..]));
    }
}
