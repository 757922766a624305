//! The `users` list in htpasswd format, parsed once into [`Users`], and the password checks.
//!
//! Lines are `name:hash`; empty lines and lines starting with `#` are skipped, as native does.
//! A hash is `{SHA}` and the base64 of the password's SHA-1 (native's only format), or bcrypt
//! (`$2y$`, `$2b$`, `$2a$`, which native refuses). Every refusal names the line.

use base64::alphabet;
use base64::engine::{general_purpose, DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use sdk_ext::text::Quoted;
use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

/// bcrypt's own bounds on the cost. Each step doubles the work, so [`MAX_BCRYPT_COST`] is lower.
const MIN_BCRYPT_COST: u32 = 4;
/// The highest bcrypt cost accepted: one check at cost 12 takes about 0.4 s in wasm here (see the
/// README), and a wrong password always pays it in full, on the worker that serves the request.
pub const MAX_BCRYPT_COST: u32 = 12;
/// bcrypt reads at most this many password bytes (with the terminating NUL).
const BCRYPT_MAX_KEY: usize = 72;

/// bcrypt's salt and hash: its own alphabet, no padding; the last symbol's unused bits are
/// ignored, as OpenBSD does.
const BCRYPT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::BCRYPT,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true),
);

/// A user's password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hash {
    /// `{SHA}`: the SHA-1 digest of the password.
    Sha1([u8; 20]),
    /// bcrypt: cost, salt and the 23-byte hash; `slot` is the user's entry in the cache of
    /// verified credentials.
    Bcrypt {
        /// log2 of the rounds.
        cost: u32,
        /// The salt.
        salt: [u8; 16],
        /// The 23 bytes bcrypt's text keeps of its 24-byte output.
        hash: [u8; 23],
        /// Index of this user's cache entry.
        slot: usize,
    },
}

/// One configured user.
#[derive(Debug, Clone)]
pub struct User {
    /// The name, as the credential must carry it.
    pub name: String,
    /// The password hash.
    pub hash: Hash,
}

/// The configured users, sorted by name for lookup.
#[derive(Debug, Clone, Default)]
pub struct Users {
    sorted: Vec<User>,
    bcrypt_users: usize,
}

impl Users {
    /// Parses htpasswd text; the error says which line is wrong and why (the first wrong line,
    /// a repeated name included).
    pub fn parse(text: &str) -> Result<Users, String> {
        let mut users: Vec<(usize, User)> = Vec::new();
        let mut bcrypt_users = 0;
        // `\n` ends a line, as std::getline does in native.
        for (index, line) in text.split('\n').enumerate() {
            let number = index + 1;
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match parse_line(line, bcrypt_users) {
                Ok(user) => {
                    if matches!(user.hash, Hash::Bcrypt { .. }) {
                        bcrypt_users += 1;
                    }
                    users.push((number, user));
                }
                // A repeated name on an earlier line is the first error.
                Err(reason) => {
                    return Err(sort_unique(&mut users)
                        .err()
                        .unwrap_or_else(|| format!("line {number}: {reason}")))
                }
            }
        }
        sort_unique(&mut users)?;
        Ok(Users {
            sorted: users.into_iter().map(|(_, user)| user).collect(),
            bcrypt_users,
        })
    }

    /// The user named `name` (raw credential bytes).
    pub fn get(&self, name: &[u8]) -> Option<&User> {
        self.sorted
            .binary_search_by(|user| user.name.as_bytes().cmp(name))
            .ok()
            .and_then(|index| self.sorted.get(index))
    }

    /// How many users there are.
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// How many users have a bcrypt hash: the size of the cache of verified credentials.
    pub fn bcrypt_users(&self) -> usize {
        self.bcrypt_users
    }
}

/// One `name:hash` line, or why it is wrong.
fn parse_line(line: &str, bcrypt_users: usize) -> Result<User, String> {
    let Some((name, hash)) = line.split_once(':') else {
        return Err("expected `name:hash`, found no `:`".into());
    };
    if name.is_empty() || hash.is_empty() {
        return Err("empty user name or password hash".into());
    }
    if line.ends_with('\r') {
        return Err("ends with CR: use LF line ends (native refuses CRLF too)".into());
    }
    // A name is forwarded in `forward_username_header`, so it must be a valid value.
    if name.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(format!(
            "user {}: the name holds a control character",
            Quoted(name)
        ));
    }
    let hash = parse_hash(hash, bcrypt_users)
        .map_err(|reason| format!("user {}: {reason}", Quoted(name)))?;
    Ok(User {
        name: name.to_string(),
        hash,
    })
}

/// Sorts users (with their line numbers) by name, stably, so a name's lines stay in order; a
/// name given twice is an error at its earliest second line. O(n log n), where a scan per line was quadratic in the users.
fn sort_unique(users: &mut [(usize, User)]) -> Result<(), String> {
    users.sort_by(|(_, a), (_, b)| a.name.cmp(&b.name));
    let repeated = users
        .windows(2)
        .filter_map(|pair| match pair {
            [(first, a), (second, b)] if a.name == b.name => Some((*second, *first, &b.name)),
            _ => None,
        })
        .min();
    match repeated {
        Some((second, first, name)) => Err(format!(
            "line {second}: duplicate user {} (first on line {first})",
            Quoted(name)
        )),
        None => Ok(()),
    }
}

fn parse_hash(hash: &str, slot: usize) -> Result<Hash, String> {
    if let Some(digest) = hash.strip_prefix("{SHA}") {
        // Native compares the base64 text with the one it encodes, so only the canonical,
        // padded form of a 20-byte digest can ever match: refuse any other.
        // STANDARD requires canonical padding and a canonical last symbol.
        let decoded = (digest.len() == 28 && digest.ends_with('=') && !digest.ends_with("=="))
            .then(|| general_purpose::STANDARD.decode(digest).ok())
            .flatten()
            .and_then(|bytes| <[u8; 20]>::try_from(bytes).ok());
        return decoded.map(Hash::Sha1).ok_or_else(|| {
            "the {SHA} hash must be the 28-character base64 of a SHA-1 digest".to_string()
        });
    }
    if hash.starts_with("$2") {
        return parse_bcrypt(hash, slot);
    }
    Err("unsupported hash: use {SHA} (as native) or bcrypt ($2y$, $2b$ or $2a$)".into())
}

/// `$2y$NN$` + 22 symbols of salt + 31 symbols of hash.
fn parse_bcrypt(hash: &str, slot: usize) -> Result<Hash, String> {
    let malformed = || "malformed bcrypt hash: expected $2y$NN$ and 53 characters".to_string();
    let mut parts = hash.split('$');
    let (Some(""), Some(version), Some(cost), Some(rest), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(malformed());
    };
    if !matches!(version, "2y" | "2b" | "2a") {
        return Err(format!(
            "unsupported bcrypt version ${version}$: use $2y$, $2b$ or $2a$"
        ));
    }
    if cost.len() != 2 || !cost.bytes().all(|b| b.is_ascii_digit()) || rest.len() != 53 {
        return Err(malformed());
    }
    let cost: u32 = cost.parse().map_err(|_| malformed())?;
    if !(MIN_BCRYPT_COST..=MAX_BCRYPT_COST).contains(&cost) {
        return Err(format!(
            "bcrypt cost {cost} is outside {MIN_BCRYPT_COST}..={MAX_BCRYPT_COST} (each check of a \
             cost-{cost} hash runs on the worker that serves the request)"
        ));
    }
    let (salt, digest) = rest.split_at(22);
    let salt = BCRYPT_BASE64
        .decode(salt)
        .ok()
        .and_then(|bytes| <[u8; 16]>::try_from(bytes).ok())
        .ok_or_else(malformed)?;
    let digest = BCRYPT_BASE64
        .decode(digest)
        .ok()
        .and_then(|bytes| <[u8; 23]>::try_from(bytes).ok())
        .ok_or_else(malformed)?;
    Ok(Hash::Bcrypt {
        cost,
        salt,
        hash: digest,
        slot,
    })
}

/// Whether `password`'s SHA-1 is `expected`, compared in constant time.
pub fn sha1_matches(expected: &[u8; 20], password: &[u8]) -> bool {
    Sha1::digest(password).as_slice().ct_eq(expected).into()
}

/// Whether bcrypt of `password` with this cost and salt is `expected`, compared in constant time.
/// As every bcrypt, it reads the password's first 72 bytes (with a NUL terminator when shorter).
pub fn bcrypt_matches(cost: u32, salt: &[u8; 16], expected: &[u8; 23], password: &[u8]) -> bool {
    let mut key = [0u8; BCRYPT_MAX_KEY];
    let len = (password.len() + 1).min(BCRYPT_MAX_KEY);
    let copied = password.len().min(BCRYPT_MAX_KEY);
    if let (Some(to), Some(from)) = (key.get_mut(..copied), password.get(..copied)) {
        to.copy_from_slice(from);
    }
    // The cost was checked at configure time and the key is 1..=72 bytes: bcrypt() cannot panic.
    let output = bcrypt::bcrypt(cost, *salt, key.get(..len).unwrap_or(&key));
    output.get(..23).unwrap_or(&output).ct_eq(expected).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER1: &str = "user1:{SHA}tESsBmE/yNY3lb6a0L6vVQEZNqw="; // user1:test1
    /// `htpasswd -nbBC 4 alice secret`
    const ALICE: &str = "alice:$2y$04$sRBZ2DLqO3CVglSPAKlAqORfTml34XGml.zozMtm/fSG6LoYNJ1Jm";

    #[test]
    fn sha_and_bcrypt_users_parse_and_verify() {
        let users = Users::parse(&format!("# users\n\n{USER1}\n{ALICE}\n")).unwrap();
        assert_eq!((users.len(), users.bcrypt_users()), (2, 1));
        let Hash::Sha1(digest) = &users.get(b"user1").unwrap().hash else {
            panic!("user1 is a {{SHA}} user")
        };
        assert!(sha1_matches(digest, b"test1"));
        assert!(!sha1_matches(digest, b"test2"));
        let Hash::Bcrypt {
            cost, salt, hash, ..
        } = &users.get(b"alice").unwrap().hash
        else {
            panic!("alice is a bcrypt user")
        };
        assert_eq!(*cost, 4);
        assert!(bcrypt_matches(*cost, salt, hash, b"secret"));
        assert!(!bcrypt_matches(*cost, salt, hash, b"secreT"));
        assert!(!bcrypt_matches(*cost, salt, hash, b""));
        assert!(users.get(b"user2").is_none());
        assert!(users.get(b"").is_none());
    }

    #[test]
    fn bcrypt_reads_72_bytes_as_everyone_does() {
        // libxcrypt's crypt("p" * 100, "$2b$04$Uv5YXn1yOEhT30JcUSbBZO").
        let users = Users::parse(
            "p:$2b$04$Uv5YXn1yOEhT30JcUSbBZOJR6XIqEdFw02FetBydRx/vn8y8n8QVy\n\
             a:$2a$04$Uv5YXn1yOEhT30JcUSbBZO6IVjhwiAegb/fFegHZQgin06b2/eR7G",
        )
        .unwrap();
        let Hash::Bcrypt {
            salt, hash, slot, ..
        } = users.get(b"p").unwrap().hash
        else {
            panic!("bcrypt")
        };
        assert_eq!(slot, 0);
        let long = [b'p'; 100];
        assert!(bcrypt_matches(4, &salt, &hash, &long[..72]));
        assert!(bcrypt_matches(4, &salt, &hash, &long));
        assert!(!bcrypt_matches(4, &salt, &hash, &long[..71]));
        let Hash::Bcrypt {
            salt, hash, slot, ..
        } = users.get(b"a").unwrap().hash
        else {
            panic!("bcrypt")
        };
        assert_eq!(slot, 1);
        assert!(bcrypt_matches(4, &salt, &hash, b"secret"));
    }

    #[test]
    fn bcrypt_base64_ignores_trailing_bits() {
        // `..` is 12 zero bits: one zero byte and 4 unused bits; `.A` sets one of those.
        assert_eq!(BCRYPT_BASE64.decode(".."), Ok(vec![0]));
        assert_eq!(BCRYPT_BASE64.decode(".A"), Ok(vec![0]));
        assert!(BCRYPT_BASE64.decode("+").is_err());
        assert!(BCRYPT_BASE64.decode("..=").is_err());
        assert!(BCRYPT_BASE64.decode("...").is_ok());
        assert!(BCRYPT_BASE64.decode(".....").is_err());
    }

    #[test]
    fn bad_lines_name_their_number() {
        for (text, reason) in [
            ("nocolon", "line 1: expected `name:hash`"),
            ("#c\n\n  \n", "line 3: expected `name:hash`"),
            (
                ":{SHA}tESsBmE/yNY3lb6a0L6vVQEZNqw=",
                "line 1: empty user name",
            ),
            ("a:", "line 1: empty user name or password hash"),
            (&format!("{USER1}\r\n"), "line 1: ends with CR"),
            (
                &format!("{USER1}\n{USER1}"),
                "line 2: duplicate user \"user1\" (first on line 1)",
            ),
            (
                "a:b:{SHA}tESsBmE/yNY3lb6a0L6vVQEZNqw=",
                "line 1: user \"a\": unsupported hash",
            ),
            ("a:{SHA}short", "must be the 28-character base64"),
            (
                "a:{SHA}tESsBmE/yNY3lb6a0L6vVQEZNqx=",
                "must be the 28-character base64",
            ),
            (
                "a:{SHA}tESsBmE/yNY3lb6a0L6vVQEZNq==",
                "must be the 28-character base64",
            ),
            (
                "a:{SHA}tESsBmE/yNY3lb6a0L6vVQEZNqw= ",
                "must be the 28-character base64",
            ),
            (
                "a:{SHA}!ESsBmE/yNY3lb6a0L6vVQEZNqw=",
                "must be the 28-character base64",
            ),
            ("a:{sha}tESsBmE/yNY3lb6a0L6vVQEZNqw=", "unsupported hash"),
            (
                "a\u{1}b:{SHA}tESsBmE/yNY3lb6a0L6vVQEZNqw=",
                "control character",
            ),
            (
                "a:$2x$04$Uv5YXn1yOEhT30JcUSbBZOOdsV8PW0dxOwS3sz5BBHSnUx0XmGNoW",
                "version $2x$",
            ),
            (
                "a:$2y$13$Uv5YXn1yOEhT30JcUSbBZOOdsV8PW0dxOwS3sz5BBHSnUx0XmGNoW",
                "cost 13",
            ),
            (
                "a:$2y$03$Uv5YXn1yOEhT30JcUSbBZOOdsV8PW0dxOwS3sz5BBHSnUx0XmGNoW",
                "cost 3",
            ),
            (
                "a:$2y$4$Uv5YXn1yOEhT30JcUSbBZOOdsV8PW0dxOwS3sz5BBHSnUx0XmGNoW",
                "malformed bcrypt",
            ),
            (
                "a:$2y$04$Uv5YXn1yOEhT30JcUSbBZOOdsV8PW0dxOwS3sz5BBHSnUx0XmGNo",
                "malformed bcrypt",
            ),
            (
                "a:$2y$04$Uv5YXn1yOEhT30JcUSbBZOOdsV8PW0dxOwS3sz5BBHSnUx0XmGN+W",
                "malformed bcrypt",
            ),
            (
                "a:$2y$04$x$Uv5YXn1yOEhT30JcUSbBZOOdsV8PW0dxOwS3sz5BBHSnUx0XmGNoW",
                "malformed bcrypt",
            ),
        ] {
            let error = Users::parse(text).unwrap_err();
            assert!(error.contains(reason), "{text:?}: {error}");
            assert!(error.starts_with("line "), "{text:?}: {error}");
        }
    }

    /// The first wrong line is reported, whether it repeats a name or is wrong itself.
    #[test]
    fn the_first_wrong_line_wins() {
        let sha = "{SHA}tESsBmE/yNY3lb6a0L6vVQEZNqw=";
        for (text, error) in [
            (
                format!("a:{sha}\nb:x\na:{sha}"),
                "line 2: user \"b\": unsupported hash",
            ),
            (
                format!("a:{sha}\na:{sha}\nb:x"),
                "line 2: duplicate user \"a\" (first on line 1)",
            ),
            (
                format!("b:{sha}\na:{sha}\nc:{sha}\na:{sha}\nb:{sha}\na:{sha}"),
                "line 4: duplicate user \"a\" (first on line 2)",
            ),
            (
                format!("z:{sha}\n#z:{sha}\n\nz:{sha}"),
                "line 4: duplicate user \"z\" (first on line 1)",
            ),
        ] {
            let refused = Users::parse(&text).unwrap_err();
            assert!(refused.starts_with(error), "{text:?}: {refused}");
        }
        // Many users: each found by name, a repeat of the last refused at its line.
        let many: String = (0..20_000).map(|i| format!("user{i}:{sha}\n")).collect();
        let users = Users::parse(&many).unwrap();
        assert_eq!(users.len(), 20_000);
        assert!(users.get(b"user0").is_some() && users.get(b"user19999").is_some());
        assert!(users.get(b"user20000").is_none());
        let repeated = format!("{many}user19999:{sha}");
        assert_eq!(
            Users::parse(&repeated).unwrap_err(),
            "line 20001: duplicate user \"user19999\" (first on line 20000)"
        );
    }

    #[test]
    fn lines_native_accepts_parse() {
        let users = Users::parse(
            "a b:{SHA}tESsBmE/yNY3lb6a0L6vVQEZNqw=\n #x:{SHA}tESsBmE/yNY3lb6a0L6vVQEZNqw=\n",
        )
        .unwrap();
        assert!(users.get(b"a b").is_some() && users.get(b" #x").is_some());
        assert!(Users::parse("\n").unwrap().is_empty());
        assert!(Users::parse("").unwrap().is_empty());
    }
}
