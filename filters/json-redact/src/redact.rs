//! JSON pointers with `*`, and the rewrite that masks or removes what they find.
//!
//! The rewrite edits the original bytes in place of re-serializing a parsed tree: every byte
//! outside a redacted value is kept as it was (member order, duplicate members, number
//! spelling, escapes, whitespace), which a parsed tree would not keep. sdk-ext's JSON checker
//! validates the document first, so the walk runs on well-formed JSON only.

use sdk_ext::config::json::Json;
use sdk_ext::text::{push_json_string, Quoted};

/// Most pointers one rule holds (they are tracked as bits of a `u64`).
pub const MAX_POINTERS: usize = 64;
/// Most segments of one pointer: the walk recurses once per segment at most.
pub const MAX_SEGMENTS: usize = 128;

/// One reference token of a pointer.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// `*`: every array element or object member.
    Any,
    /// A member name (unescaped); `index` when it is also an array index (`0`, `17`).
    Name { name: String, index: Option<usize> },
}

impl Segment {
    fn matches_index(&self, at: usize) -> bool {
        match self {
            Segment::Any => true,
            Segment::Name { index, .. } => *index == Some(at),
        }
    }
}

/// An RFC 6901 JSON pointer whose `*` segments match every element or member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pointer {
    segments: Vec<Segment>,
}

impl Pointer {
    /// Parses `/a/b~1c/*/0`; the reason when it is not a pointer (or names the whole document,
    /// which cannot be redacted).
    pub fn parse(text: &str) -> Result<Pointer, String> {
        let Some(rest) = text.strip_prefix('/') else {
            return Err(if text.is_empty() {
                "the whole document cannot be redacted: name a field, e.g. /user/ssn".into()
            } else {
                format!(
                    "{} is not a JSON pointer: it must start with /",
                    Quoted(text)
                )
            });
        };
        let segments = rest
            .split('/')
            .map(segment)
            .collect::<Result<Vec<_>, _>>()?;
        if segments.len() > MAX_SEGMENTS {
            return Err(format!("at most {MAX_SEGMENTS} segments"));
        }
        Ok(Pointer { segments })
    }

    fn get(&self, depth: usize) -> Option<&Segment> {
        self.segments.get(depth)
    }

    fn len(&self) -> usize {
        self.segments.len()
    }
}

fn segment(token: &str) -> Result<Segment, String> {
    if token == "*" {
        return Ok(Segment::Any);
    }
    let mut name = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        if c != '~' {
            name.push(c);
            continue;
        }
        match chars.next() {
            Some('0') => name.push('~'),
            Some('1') => name.push('/'),
            _ => {
                return Err(format!(
                    "{}: ~ must be followed by 0 or 1 (~0 is ~, ~1 is /)",
                    Quoted(token)
                ))
            }
        }
    }
    // RFC 6901: an array index is 0 or digits without a leading zero.
    let index =
        if token == "0" || (!token.starts_with('0') && token.bytes().all(|b| b.is_ascii_digit())) {
            token.parse().ok()
        } else {
            None
        };
    Ok(Segment::Name { name, index })
}

/// A rule's pointers and what happens to the values they find.
#[derive(Debug, Clone)]
pub struct Redaction {
    pointers: Vec<Pointer>,
    /// The JSON text a masked value becomes; `None`: the member or element is removed.
    replacement: Option<Vec<u8>>,
}

/// What a rewrite made of a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The rewritten body and how many values were redacted (at least one).
    Redacted(Vec<u8>, usize),
    /// Valid JSON with nothing to redact.
    Unchanged,
    /// Not UTF-8 JSON: left alone.
    Invalid,
}

impl Redaction {
    /// Values found are replaced by the JSON string `mask`.
    pub fn mask(pointers: Vec<Pointer>, mask: &str) -> Redaction {
        let mut replacement = String::new();
        push_json_string(&mut replacement, mask);
        Redaction {
            pointers,
            replacement: Some(replacement.into_bytes()),
        }
    }

    /// Members and elements found are removed.
    pub fn remove(pointers: Vec<Pointer>) -> Redaction {
        Redaction {
            pointers,
            replacement: None,
        }
    }

    /// Rewrites `body`. Pointers are evaluated against the original document: removing
    /// `/a/0` and `/a/1` removes the first two elements.
    pub fn apply(&self, body: &[u8]) -> Outcome {
        if !Json::is_valid(body) {
            return Outcome::Invalid;
        }
        let all = match self.pointers.len() {
            0 => return Outcome::Unchanged,
            n if n >= 64 => u64::MAX,
            n => (1u64 << n) - 1,
        };
        let mut walk = Walk {
            src: body,
            pos: 0,
            out: Vec::new(),
            flushed: 0,
            redaction: self,
            count: 0,
        };
        walk.ws();
        if matches!(walk.peek(), Some(b'{' | b'[')) {
            walk.container(all, 0);
        }
        if walk.count == 0 {
            return Outcome::Unchanged;
        }
        let rest = body.get(walk.flushed..).unwrap_or_default();
        walk.out.extend_from_slice(rest);
        Outcome::Redacted(walk.out, walk.count)
    }
}

/// One pass over a validated document, copying it to `out` with edits.
struct Walk<'a> {
    src: &'a [u8],
    pos: usize,
    /// The rewritten document up to `flushed` in `src`.
    out: Vec<u8>,
    flushed: usize,
    redaction: &'a Redaction,
    count: usize,
}

impl Walk<'_> {
    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.pos += 1;
        }
    }

    /// Replaces `src[start..end]` with `with`.
    fn edit(&mut self, start: usize, end: usize, with: &[u8]) {
        let kept = self.src.get(self.flushed..start).unwrap_or_default();
        self.out.extend_from_slice(kept);
        self.out.extend_from_slice(with);
        self.flushed = end;
    }

    fn skip_string(&mut self) {
        self.pos += 1;
        while let Some(b) = self.peek() {
            self.pos += 1;
            match b {
                b'\\' => self.pos += 1,
                b'"' => return,
                _ => {}
            }
        }
    }

    /// Skips one value; containers without recursion (their depth is unbounded).
    fn skip_value(&mut self) {
        match self.peek() {
            Some(b'"') => self.skip_string(),
            Some(b'{' | b'[') => {
                let mut depth = 0usize;
                while let Some(b) = self.peek() {
                    match b {
                        b'"' => {
                            self.skip_string();
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth = depth.saturating_sub(1);
                            if depth == 0 {
                                self.pos += 1;
                                return;
                            }
                        }
                        _ => {}
                    }
                    self.pos += 1;
                }
            }
            _ => {
                while let Some(b) = self.peek() {
                    if matches!(b, b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t') {
                        return;
                    }
                    self.pos += 1;
                }
            }
        }
    }

    /// The pointers of `active` (those whose first `depth` segments led here) that go on into
    /// the member named by the raw string `key` (quotes included).
    fn following_member(&self, active: u64, depth: usize, key: &[u8]) -> u64 {
        let raw = key.get(1..key.len().saturating_sub(1)).unwrap_or_default();
        // Escaped names (`"\u0073sn"`) are compared decoded, so escaping cannot dodge a rule.
        let decoded: Option<String> = if raw.contains(&b'\\') {
            match Json::parse(key) {
                Ok(Json::Str(name)) => Some(name),
                _ => None,
            }
        } else {
            None
        };
        let name = decoded.as_deref().map_or(raw, str::as_bytes);
        self.select(active, depth, |segment| match segment {
            Segment::Any => true,
            Segment::Name { name: want, .. } => {
                want.as_bytes() == name && (decoded.is_some() || !raw.contains(&b'\\'))
            }
        })
    }

    fn following_element(&self, active: u64, depth: usize, at: usize) -> u64 {
        self.select(active, depth, |segment| segment.matches_index(at))
    }

    fn select(&self, active: u64, depth: usize, matches: impl Fn(&Segment) -> bool) -> u64 {
        let mut next = 0u64;
        for (bit, pointer) in self.redaction.pointers.iter().enumerate().take(64) {
            if active & (1 << bit) != 0 && pointer.get(depth).is_some_and(&matches) {
                next |= 1 << bit;
            }
        }
        next
    }

    /// Whether a pointer of `selected` ends at `depth`: the value there is redacted.
    fn ends(&self, selected: u64, depth: usize) -> bool {
        self.redaction
            .pointers
            .iter()
            .enumerate()
            .take(64)
            .any(|(bit, pointer)| selected & (1 << bit) != 0 && pointer.len() == depth)
    }

    /// Walks the object or array at `pos`, whose path the pointers of `active` followed for
    /// `depth` segments.
    fn container(&mut self, active: u64, depth: usize) {
        let object = self.peek() == Some(b'{');
        self.pos += 1;
        let mut at = 0usize;
        let mut kept_any = false;
        loop {
            // Just after the opening bracket or a comma.
            let lead = self.pos;
            self.ws();
            match self.peek() {
                None => return,
                Some(b'}' | b']') => {
                    self.pos += 1;
                    return;
                }
                _ => {}
            }
            let selected = if object {
                let key_start = self.pos;
                self.skip_string();
                let key = self.src.get(key_start..self.pos).unwrap_or_default();
                let selected = self.following_member(active, depth, key);
                self.ws();
                self.pos += 1; // the colon
                self.ws();
                selected
            } else {
                self.following_element(active, depth, at)
            };
            at += 1;
            let value_start = self.pos;
            let redacted = selected != 0 && self.ends(selected, depth + 1);
            if redacted {
                self.skip_value();
                self.count += 1;
            } else if selected != 0 && matches!(self.peek(), Some(b'{' | b'[')) {
                self.container(selected, depth + 1);
            } else {
                self.skip_value();
            }
            let value_end = self.pos;
            self.ws();
            let separator = self.pos;
            let more = self.peek() == Some(b',');
            match (redacted, self.redaction.replacement.as_deref()) {
                (true, Some(mask)) => self.edit(value_start, value_end, mask),
                // The first kept member has no comma before it: take the one after.
                (true, None) if !kept_any => {
                    self.edit(lead, if more { separator + 1 } else { separator }, b"")
                }
                // Otherwise the comma before it goes: it is still there (it follows the last
                // kept member, or a member removed this way).
                (true, None) => self.edit(lead.saturating_sub(1), separator, b""),
                (false, _) => {}
            }
            if !redacted || self.redaction.replacement.is_some() {
                kept_any = true;
            }
            if more {
                self.pos += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(pointers: &[&str], body: &str) -> String {
        let pointers = pointers
            .iter()
            .map(|p| Pointer::parse(p).unwrap())
            .collect();
        match Redaction::mask(pointers, "***").apply(body.as_bytes()) {
            Outcome::Redacted(out, _) => String::from_utf8(out).unwrap(),
            other => format!("{other:?}"),
        }
    }

    fn remove(pointers: &[&str], body: &str) -> String {
        let pointers = pointers
            .iter()
            .map(|p| Pointer::parse(p).unwrap())
            .collect();
        match Redaction::remove(pointers).apply(body.as_bytes()) {
            Outcome::Redacted(out, _) => String::from_utf8(out).unwrap(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn masks_in_place_keeping_every_other_byte() {
        assert_eq!(
            mask(
                &["/user/ssn"],
                r#"{"user": {"ssn": "123", "n": 1.50}, "z": 1e3}"#
            ),
            r#"{"user": {"ssn": "***", "n": 1.50}, "z": 1e3}"#
        );
    }

    #[test]
    fn removes_members_with_their_commas() {
        let doc = r#"{"a": 1, "b": 2, "c": 3}"#;
        assert_eq!(remove(&["/a"], doc), r#"{ "b": 2, "c": 3}"#);
        assert_eq!(remove(&["/b"], doc), r#"{"a": 1, "c": 3}"#);
        assert_eq!(remove(&["/c"], doc), r#"{"a": 1, "b": 2}"#);
        assert_eq!(remove(&["/a", "/b"], doc), r#"{ "c": 3}"#);
        assert_eq!(remove(&["/b", "/c"], doc), r#"{"a": 1}"#);
        assert_eq!(remove(&["/a", "/c"], doc), r#"{ "b": 2}"#);
        assert_eq!(remove(&["/*"], doc), r#"{}"#);
        assert_eq!(remove(&["/1"], "[0, 1, 2]"), "[0, 2]");
        assert_eq!(remove(&["/*"], "[[], {}]"), "[]");
        assert_eq!(
            remove(&["/a"], r#"{"a":1,"a":2,"b":3,"a":4}"#),
            r#"{"b":3}"#
        );
        assert_eq!(
            remove(&["/a/1", "/a/2"], r#"{"a":[0,1,2,3]}"#),
            r#"{"a":[0,3]}"#
        );
        assert_eq!(remove(&["/a"], " {\n\t\"a\" : 1 \n} "), " {} ");
    }

    #[test]
    fn wildcards_and_escapes() {
        assert_eq!(
            mask(
                &["/cards/*/number"],
                r#"{"cards": [{"number": 1}, {"x": 2}, {"number": [3]}]}"#
            ),
            r#"{"cards": [{"number": "***"}, {"x": 2}, {"number": "***"}]}"#
        );
        assert_eq!(
            mask(&["/a~1b/~0"], r#"{"a/b": {"~": 1}}"#),
            r#"{"a/b": {"~": "***"}}"#
        );
        assert_eq!(
            mask(&["/ssn"], r#"{"\u0073sn": 1}"#),
            r#"{"\u0073sn": "***"}"#
        );
        assert_eq!(
            mask(&["/ssn"], r#"{"ssn": 1, "ssn": 2}"#),
            r#"{"ssn": "***", "ssn": "***"}"#
        );
        // A lone surrogate escape is valid JSON text (as serde_json reads it): it must not make
        // the body "invalid" and let it through unredacted.
        assert_eq!(
            mask(&["/ssn"], r#"{"x": "\ud800", "ssn": 1, "\udc00": 2}"#),
            r#"{"x": "\ud800", "ssn": "***", "\udc00": 2}"#
        );
        assert_eq!(mask(&["/01"], r#"[0, 1]"#), "Unchanged");
        assert_eq!(mask(&["/x"], r#"{"x": 1"#), "Invalid");
        assert_eq!(mask(&["/x"], "\"x\""), "Unchanged");
    }

    #[test]
    fn the_mask_is_written_as_a_json_string() {
        let pointers = vec![Pointer::parse("/a").unwrap()];
        let redaction = Redaction::mask(pointers, "say \"no\"\n\u{1}é");
        match redaction.apply(br#"{"a": 1}"#) {
            Outcome::Redacted(out, _) => {
                assert_eq!(
                    String::from_utf8(out).unwrap(),
                    r#"{"a": "say \"no\"\n\u0001é"}"#
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_pointers_say_why() {
        assert!(Pointer::parse("").unwrap_err().contains("whole document"));
        assert!(Pointer::parse("a")
            .unwrap_err()
            .contains("must start with /"));
        assert!(Pointer::parse("/a~2")
            .unwrap_err()
            .contains("~ must be followed"));
        assert!(Pointer::parse("/a~").is_err());
        assert!(Pointer::parse("/").is_ok());
    }
}
