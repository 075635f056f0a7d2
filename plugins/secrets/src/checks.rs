//! Checks a rule can run on a match after its regex and entropy threshold:
//! placeholders, names that are not secrets, values that decode to nothing.
//! Each takes the whole match and the secret value (both raw bytes).

/// Words that mark a value as a stand-in for a secret rather than one:
/// documentation examples (`AKIAIOSFODNN7EXAMPLE`), template variables,
/// masks and fixtures that say what they are.
const PLACEHOLDER_MARKS: &[&str] = &[
    "example",
    "placeholder",
    "changeme",
    "change_me",
    "change-me",
    "dummy",
    "fake",
    "fixture",
    "sample",
    "redacted",
    "your_",
    "your-",
    "yourkey",
    "yourtoken",
    "yoursecret",
    "yourpassword",
    "xxxx",
    "****",
    "...",
    "<",
    ">",
    "${",
    "{{",
    "}}",
    "$(",
    "%s",
    "not_a_real",
    "not-a-real",
    "notareal",
];

/// True when `value` is a stand-in: it carries a placeholder mark, is one
/// character repeated, or is mostly an ascending run (`1234567890abcdef`).
pub fn is_placeholder(value: &[u8]) -> bool {
    let lower = value.to_ascii_lowercase();
    if PLACEHOLDER_MARKS
        .iter()
        .any(|mark| contains(&lower, mark.as_bytes()))
    {
        return true;
    }
    let Some(&first) = value.first() else {
        return true;
    };
    if value.iter().all(|&b| b == first) {
        return true;
    }
    if value.len() >= 8 {
        let ascending = value
            .windows(2)
            .filter(|w| w[1] == w[0].wrapping_add(1))
            .count();
        if ascending * 2 > value.len() {
            return true;
        }
    }
    false
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The name of an assignment: the whole match up to its operator or quote.
fn assignment_name(whole: &[u8]) -> Vec<u8> {
    let end = whole
        .iter()
        .position(|b| matches!(b, b'"' | b'\'' | b' ' | b'\t' | b':' | b'=' | b'>' | b'?'))
        .unwrap_or(whole.len());
    whole[..end].to_ascii_lowercase()
}

/// Names that contain a secret-ish word but hold no secret: pagination
/// tokens, token counts, tokenizer names, references to where a secret lives,
/// identifiers and digests of keys, public keys.
const NOT_SECRET_NAMES: &[&str] = &[
    "tokeniz",
    "page_token",
    "pagetoken",
    "page-token",
    "next_token",
    "nexttoken",
    "continuation",
    "cursor",
    "sync_token",
    "token_type",
    "tokentype",
    "token_count",
    "tokens",
    "max_token",
    "token_limit",
    "token_url",
    "token_uri",
    "tokenurl",
    "tokenuri",
    "token_endpoint",
    "secret_name",
    "secretname",
    "secret_ref",
    "secretref",
    "secretkeyref",
    "secret_arn",
    "secret_id",
    "secretid",
    "secret_path",
    "secret_version",
    "key_id",
    "keyid",
    "key_name",
    "keyname",
    "public",
    "publishable",
    "hash",
    "sha1",
    "sha256",
    "sha512",
    "_sha",
    "digest",
    "checksum",
    "fingerprint",
    "csrf",
    "xsrf",
    "idempotency",
    "_file",
    "_path",
    "_env",
];

fn has_digit(value: &[u8]) -> bool {
    value.iter().any(u8::is_ascii_digit)
}

fn has_letter(value: &[u8]) -> bool {
    value.iter().any(u8::is_ascii_alphabetic)
}

fn is_uuid(value: &[u8]) -> bool {
    value.len() == 36
        && value.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// The longest run of ASCII letters and digits.
fn longest_alnum_run(value: &[u8]) -> usize {
    value
        .split(|b| !b.is_ascii_alphanumeric())
        .map(<[u8]>::len)
        .max()
        .unwrap_or(0)
}

/// `AtomicU32Provider`, `Curve25519SeedBin`, `CString`: a type or constant
/// name, not a key. After an optional leading acronym (up to four capitals)
/// every part is a capital followed by digits, or by at least two lower-case
/// letters and then only digits. Random mixed-case text almost never splits
/// that way.
fn is_camel_case_identifier(value: &[u8]) -> bool {
    if !value.iter().all(u8::is_ascii_alphanumeric) || !value[0].is_ascii_uppercase() {
        return false;
    }
    let acronym = value.iter().take_while(|b| b.is_ascii_uppercase()).count();
    let mut rest = &value[acronym.saturating_sub(1).min(4)..];
    if acronym > 5 {
        return false;
    }
    let mut words = 0;
    while let Some((&capital, tail)) = rest.split_first() {
        if !capital.is_ascii_uppercase() {
            return false;
        }
        let end = tail
            .iter()
            .position(u8::is_ascii_uppercase)
            .unwrap_or(tail.len());
        let part = &tail[..end];
        let lower = part.iter().take_while(|b| b.is_ascii_lowercase()).count();
        let digits_after = part[lower..].iter().all(u8::is_ascii_digit);
        if !(digits_after && (lower >= 2 || (lower == 0 && !part.is_empty()))) {
            return false;
        }
        words += 1;
        rest = &tail[end..];
    }
    words >= 1
}

/// A generic `api_key = value`: the name must not be a known non-secret, and
/// the value must look random (letters and digits, a long unbroken run or a
/// UUID) rather than a path, a dotted name or a model name.
pub fn generic_assignment(whole: &[u8], value: &[u8]) -> bool {
    let name = assignment_name(whole);
    if NOT_SECRET_NAMES
        .iter()
        .any(|n| contains(&name, n.as_bytes()))
    {
        return false;
    }
    if matches!(value.first(), Some(b'/' | b'.' | b'~')) {
        return false;
    }
    // Publishable keys (`pk_live_...`, Mapbox `pk.eyJ...`) are public by design.
    if value.starts_with(b"pk_") || value.starts_with(b"pk.") {
        return false;
    }
    // Hex carries at most 4 bits a character, so a random 32-digit hex key
    // rarely reaches the 3.5 bits asked of mixed alphabets.
    if is_camel_case_identifier(value) {
        return false;
    }
    let minimum = if value.iter().all(u8::is_ascii_hexdigit) {
        3.0
    } else {
        3.5
    };
    entropy(value) >= minimum
        && has_digit(value)
        && has_letter(value)
        && (longest_alnum_run(value) >= 12 || is_uuid(value))
}

/// Words people write after `password:` in prose and configuration that are
/// not passwords.
const NOT_PASSWORDS: &[&str] = &[
    "password",
    "passwd",
    "required",
    "optional",
    "string",
    "null",
    "none",
    "true",
    "false",
    "undefined",
    "secret",
    "hidden",
    "masked",
    "prompt",
    "default",
];

const NOT_PASSWORD_NAMES: &[&str] = &[
    "hash",
    "policy",
    "length",
    "expir",
    "reset",
    "field",
    "label",
    "hint",
    "prompt",
    "strength",
    "_url",
    "_file",
    "_path",
    "_env",
    "_var",
    "_id",
    "salt",
    "digest",
    "rule",
    "forgot",
    "change",
    "confirm_",
    "placeholder",
    "type",
    "input",
];

/// A `password = value` assignment: a plausible name and a plausible password.
pub fn password_assignment(whole: &[u8], value: &[u8]) -> bool {
    let name = assignment_name(whole);
    !NOT_PASSWORD_NAMES
        .iter()
        .any(|n| contains(&name, n.as_bytes()))
        && plausible_password(value)
}

/// Passwords that only say "password", and well-known documentation
/// examples (RFC 7617's Aladdin, xkcd's horse, bash.org's hunter2,
/// anonymous FTP's e-mail address).
const EXAMPLE_PASSWORDS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "opensesame",
    "open sesame",
    "correct horse",
    "correcthorse",
    "correct%20horse",
    "hunter2",
    "anonymous",
];

/// A literal that could be someone's password rather than code, a path, a
/// template or an example: at least 4 bytes mixing at least two of lower
/// case, upper case, digits and symbols.
pub fn plausible_password(value: &[u8]) -> bool {
    if value.len() < 4 || is_placeholder(value) {
        return false;
    }
    let lower = value.to_ascii_lowercase();
    // `password=None):` in a Python signature: the word without the
    // punctuation that closes the code around it.
    let word_end = lower
        .iter()
        .rposition(|b| !b")]:,".contains(b))
        .map_or(0, |i| i + 1);
    if NOT_PASSWORDS
        .iter()
        .any(|w| &lower[..word_end] == w.as_bytes())
        || EXAMPLE_PASSWORDS
            .iter()
            .any(|w| contains(&lower, w.as_bytes()))
    {
        return false;
    }
    // Paths (`PWD=/usr/src/app`), variables (`$PASS`, `%PASS%`), code
    // (`::Cleartext`, `*const`, `&[u8]`), encodings and templates.
    if matches!(
        value[0],
        b'/' | b'~' | b'.' | b'$' | b'%' | b':' | b'*' | b'&' | b'(' | b'[' | b'{' | b'<'
    ) || contains(value, b"::")
        || value.iter().any(|b| matches!(b, b'{' | b'}' | b'\\'))
    {
        return false;
    }
    // A call or an index rather than a literal: `attempt(&host, ...)`,
    // `format!(...)`, `sim_auth[0]`.
    if let Some(paren) = value.iter().position(|&b| b == b'(' || b == b'[')
        && value[0].is_ascii_alphabetic()
        && value[..paren]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"_.!".contains(b))
    {
        return false;
    }
    // An expression rather than a literal: `var.db_password`, `getpass()`,
    // `PasswordKind`.
    if !has_digit(value)
        && value
            .iter()
            .all(|b| b.is_ascii_alphabetic() || b"_.()[]-".contains(b))
        && value.iter().any(|b| b"_.()[]-".contains(b))
        || !has_digit(value) && is_camel_case_identifier(value)
    {
        return false;
    }
    let classes = [
        value.iter().any(u8::is_ascii_lowercase),
        value.iter().any(u8::is_ascii_uppercase),
        has_digit(value),
        value.iter().any(|b| !b.is_ascii_alphanumeric()),
    ];
    classes.iter().filter(|&&c| c).count() >= 2 && !value.iter().all(u8::is_ascii_digit)
}

/// The password of `scheme://user:password@host` (also used for `Password=`
/// in connection strings): a plausible password that is not the user name
/// again (`postgres://postgres:postgres@`).
pub fn url_password(whole: &[u8], value: &[u8]) -> bool {
    let user = whole
        .windows(3)
        .position(|w| w == b"://")
        .map(|at| {
            let rest = &whole[at + 3..];
            let end = rest.iter().position(|&b| b == b':').unwrap_or(rest.len());
            &rest[..end]
        })
        .unwrap_or_default();
    // `cvs://:pserver:anoncvs@host`: no user and a colon in the "password"
    // is CVS's `:method:user@host`, not credentials.
    let cvs = user.is_empty() && value.contains(&b':');
    plausible_password(value) && !user.eq_ignore_ascii_case(value) && !cvs
}

/// A JWT whose header decodes to JSON naming a signing algorithm other
/// than `none`.
pub fn jwt(_whole: &[u8], value: &[u8]) -> bool {
    let header = value.split(|&b| b == b'.').next().unwrap_or_default();
    let Some(decoded) = base64_decode(header) else {
        return false;
    };
    let compact: Vec<u8> = decoded
        .into_iter()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    contains(&compact, b"\"alg\":") && !contains(&compact.to_ascii_lowercase(), b"\"alg\":\"none\"")
}

/// HTTP basic credentials: base64 of printable `user:password` with a
/// non-empty password that is not a placeholder.
pub fn basic_credentials(_whole: &[u8], value: &[u8]) -> bool {
    let Some(decoded) = base64_decode(value) else {
        return false;
    };
    if decoded.is_empty() || !decoded.iter().all(|b| (0x20..0x7f).contains(b)) {
        return false;
    }
    match decoded.iter().position(|&b| b == b':') {
        Some(colon) => plausible_password(&decoded[colon + 1..]),
        None => false,
    }
}

/// A bearer token or similar opaque credential: letters and digits, and
/// random-looking.
pub fn opaque_token(_whole: &[u8], value: &[u8]) -> bool {
    has_digit(value) && has_letter(value) && longest_alnum_run(value) >= 8 && entropy(value) >= 3.0
}

/// A password or token given on a command line: a plausible password that
/// is not the next flag.
pub fn command_line_password(_whole: &[u8], value: &[u8]) -> bool {
    value[0] != b'-' && plausible_password(value)
}

/// Decodes standard or URL-safe base64, padded or not.
pub fn base64_decode(text: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut buffer = 0u32;
    let mut bits = 0;
    let trimmed = text
        .iter()
        .rposition(|&b| b != b'=')
        .map_or(&text[..0], |end| &text[..=end]);
    if text.len() - trimmed.len() > 2 || trimmed.len() % 4 == 1 {
        return None;
    }
    for &b in trimmed {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    Some(out)
}

/// Shannon entropy of `value` in bits per byte.
pub fn entropy(value: &[u8]) -> f32 {
    if value.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in value {
        counts[b as usize] += 1;
    }
    let length = value.len() as f32;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f32 / length;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entropy_of_known_strings() {
        assert_eq!(entropy(b""), 0.0);
        assert_eq!(entropy(b"aaaa"), 0.0);
        assert!((entropy(b"abcd") - 2.0).abs() < 1e-6);
        assert!((entropy(b"0123456789abcdef") - 4.0).abs() < 1e-6);
    }

    #[test]
    fn placeholders() {
        assert!(is_placeholder(b"AKIAIOSFODNN7EXAMPLE"));
        assert!(is_placeholder(b"${API_KEY}"));
        assert!(is_placeholder(b"<your-token>"));
        assert!(is_placeholder(b"aaaaaaaaaaaa"));
        assert!(is_placeholder(b"1234567890abcdef"));
        assert!(!is_placeholder(b"q8Zr2LmX0vB7nT4k"));
    }

    #[test]
    fn camel_case_identifiers() {
        for name in [
            "AtomicU32Provider",
            "Curve25519SeedBin",
            "CString",
            "XMLParser",
            "PasswordKind",
        ] {
            assert!(is_camel_case_identifier(name.as_bytes()), "{name}");
        }
        for random in [
            "Dy60lPtvUjeb",
            "QWxhZGRpbjpvcGVu",
            "mYhpTQe1kl7U6I54",
            "ABCDEFGHXyz",
            "Ab",
        ] {
            assert!(!is_camel_case_identifier(random.as_bytes()), "{random}");
        }
    }

    #[test]
    fn base64() {
        assert_eq!(base64_decode(b"dXNlcjpwYXNz").unwrap(), b"user:pass");
        assert_eq!(base64_decode(b"YQ==").unwrap(), b"a");
        assert_eq!(base64_decode(b"YQ").unwrap(), b"a");
        assert!(base64_decode(b"Y").is_none());
        assert!(base64_decode(b"a b").is_none());
    }

    #[test]
    fn basic_credentials_need_a_password() {
        assert!(basic_credentials(b"", b"YWxpY2U6czNjcjN0UGFzcw=="));
        assert!(!basic_credentials(b"", b"YWxpY2U6"));
        assert!(!basic_credentials(b"", b"understanding"));
    }

    #[test]
    fn jwt_headers() {
        assert!(jwt(b"", b"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.x.y"));
        assert!(!jwt(b"", b"eyJhbGciOiJub25lIn0.x.y"));
        assert!(!jwt(b"", b"eyJmb28iOiJiYXIifQ.x.y"));
    }
}
