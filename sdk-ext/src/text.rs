//! Strings shown in messages and reply bodies, quoted as JSON strings.
//!
//! Messages quote names with [`Quoted`] rather than `{:?}`: JSON's escapes are what a user
//! reading a JSON config expects. (It saves no Unicode tables: std's own WASI error `Debug`, on
//! the panic path, links `str`'s `Debug` into every module anyway.)

use std::fmt::{self, Display, Formatter, Write};

/// Shows a string as a JSON string: `format!("unknown filter {}", Quoted(name))` gives
/// `unknown filter "x\n"` for `x` and a newline. `"`, `\` and control characters are escaped as
/// serde_json escapes them; everything else is written as it is.
#[derive(Clone, Copy)]
pub struct Quoted<'a>(pub &'a str);

impl Display for Quoted<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let hex = |nibble: u8| char::from(if nibble < 10 { b'0' } else { b'a' - 10 } + nibble);
        f.write_char('"')?;
        let mut plain = 0;
        for (index, byte) in self.0.bytes().enumerate() {
            let escape = match byte {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0x08 => "\\b",
                0x0c => "\\f",
                ..=0x1f => "",
                _ => continue,
            };
            // Only ASCII bytes end a run, so the slice bounds are character boundaries.
            f.write_str(self.0.get(plain..index).unwrap_or_default())?;
            plain = index + 1;
            if escape.is_empty() {
                f.write_str("\\u00")?;
                f.write_char(hex(byte >> 4))?;
                f.write_char(hex(byte & 0xf))?;
            } else {
                f.write_str(escape)?;
            }
        }
        f.write_str(self.0.get(plain..).unwrap_or_default())?;
        f.write_char('"')
    }
}

/// Appends `text` as a JSON string.
pub fn push_json_string(out: &mut String, text: &str) {
    // Writing to a `String` cannot fail.
    let _ = write!(out, "{}", Quoted(text));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_matches_serde_json() {
        let mut every_ascii: String = (0u8..0x80).map(char::from).collect();
        every_ascii.push_str("é中\u{2028}\u{10ffff}");
        for text in [
            "",
            "plain",
            "say \"hi\"",
            "a\\b",
            "\u{1}\u{1f}\u{7f}",
            &every_ascii,
        ] {
            assert_eq!(
                Quoted(text).to_string(),
                serde_json::to_string(text).unwrap(),
                "{text:?}"
            );
            let mut pushed = "x".to_string();
            push_json_string(&mut pushed, text);
            assert_eq!(pushed, format!("x{}", serde_json::to_string(text).unwrap()));
        }
    }

    #[test]
    fn a_quoted_string_reads_back_as_itself() {
        let mut text = String::new();
        for code in (0..0x800).chain([0xd7ff, 0xe000, 0xfffd, 0x1_0000, 0x10_ffff]) {
            text.extend(char::from_u32(code));
        }
        let quoted = Quoted(&text).to_string();
        assert_eq!(serde_json::from_str::<String>(&quoted).unwrap(), text);
    }
}
