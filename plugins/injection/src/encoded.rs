//! Encoded payloads: base64, hex and percent-encoded runs that decode to
//! text holding a phrase. Only runs of at least [`MIN_RUN`] characters are
//! decoded, each up to [`MAX_RUN`] characters, and at most
//! [`MAX_DECODED`] bytes per string in all, so a megabyte of base64 costs a
//! bounded amount of work. Binary data (images, keys, hashes) fails the
//! printable-text test and is never searched.

use crate::rules::Kind;
use crate::scan::{Match, best_phrase};

/// Shortest run decoded.
pub const MIN_RUN: usize = 16;
/// Longest prefix of a run decoded.
pub const MAX_RUN: usize = 8 * 1024;
/// Bytes decoded per string, over all runs.
pub const MAX_DECODED: usize = 64 * 1024;

/// Byte classes: part of a token (printable ASCII but quotes and angle
/// brackets), part of a base64 run.
const TOKEN: u8 = 1;
const BASE64: u8 = 2;

static CLASSES: [u8; 256] = {
    let mut classes = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let byte = b as u8;
        if byte.is_ascii_graphic() && !matches!(byte, b'"' | b'\'' | b'<' | b'>' | b'`') {
            classes[b] |= TOKEN;
        }
        if byte.is_ascii_alphanumeric() || matches!(byte, b'+' | b'/' | b'-' | b'_') {
            classes[b] |= BASE64;
        }
        b += 1;
    }
    classes
};

fn is_base64(b: u8) -> bool {
    CLASSES[usize::from(b)] & BASE64 != 0
}

fn base64_value(b: u8) -> Option<u32> {
    Some(match b {
        b'A'..=b'Z' => b - b'A',
        b'a'..=b'z' => b - b'a' + 26,
        b'0'..=b'9' => b - b'0' + 52,
        b'+' | b'-' => 62,
        b'/' | b'_' => 63,
        _ => return None,
    } as u32)
}

/// Decodes standard or URL-safe base64 without padding; a trailing
/// partial group of 2 or 3 characters gives 1 or 2 bytes.
fn decode_base64(run: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(run.len() / 4 * 3 + 2);
    for group in run.chunks(4) {
        let mut n = 0u32;
        for i in 0..4 {
            let b = group.get(i).copied().unwrap_or(b'A');
            n = (n << 6) | base64_value(b).unwrap_or(0);
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..group.len().saturating_sub(1)]);
    }
    out
}

fn hex_value(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        b'A'..=b'F' => b - b'A' + 10,
        _ => 0,
    }
}

fn decode_hex(run: &[u8]) -> Vec<u8> {
    run.chunks_exact(2)
        .map(|pair| (hex_value(pair[0]) << 4) | hex_value(pair[1]))
        .collect()
}

fn decode_percent(run: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(run.len());
    let mut i = 0;
    while i < run.len() {
        match run[i] {
            b'%' if run.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && run.get(i + 2).is_some_and(u8::is_ascii_hexdigit) =>
            {
                out.push((hex_value(run[i + 1]) << 4) | hex_value(run[i + 2]));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// The decoded bytes as text, if they read as text: valid UTF-8 and at
/// least 90% printable characters (letters, spaces, punctuation).
fn as_text(bytes: &[u8]) -> Option<String> {
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        // A run cut at MAX_RUN may end inside a character.
        Err(e) if e.error_len().is_none() && e.valid_up_to() + 4 > bytes.len() => {
            std::str::from_utf8(&bytes[..e.valid_up_to()]).ok()?
        }
        Err(_) => return None,
    };
    let total = text.chars().count();
    let printable = text
        .chars()
        .filter(|&c| !c.is_control() || matches!(c, '\n' | '\r' | '\t'))
        .count();
    let letters = text.chars().filter(|c| c.is_alphabetic()).count();
    (total >= 8 && printable * 10 >= total * 9 && letters * 2 >= total).then(|| text.to_string())
}

/// Whether all eight bytes of `block` are in `!`..=`~` or DEL (a cheap
/// first test for token bytes: one comparison for all eight).
fn printable(block: &[u8]) -> bool {
    let x = u64::from_le_bytes(block.try_into().unwrap_or([0; 8]));
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // A byte below 0x21 borrows into its high bit (the classic "has a byte
    // less than n" test); bytes from 0x80 have it set already.
    let below = x.wrapping_sub(0x2121_2121_2121_2121) & !x & HIGH;
    (x & HIGH) | below == 0
}

/// The encoded payloads in `text`.
pub fn scan(text: &str) -> Vec<Match> {
    let bytes = text.as_bytes();
    let mut budget = MAX_DECODED;
    let mut out = Vec::new();
    let mut check = |start: usize, end: usize, encoding: &'static str, decoded: Vec<u8>| {
        budget = budget.saturating_sub(decoded.len());
        if let Some(decoded) = as_text(&decoded)
            && let Some((score, kind)) = best_phrase(&decoded)
            && score >= 0.4
        {
            out.push(Match {
                kind: Kind::EncodedPayload,
                rule: encoding,
                title: "encoded text holding an injection signal",
                start,
                end,
                // Encoding a clear signal is a signal of its own; a weak one
                // stays weak.
                score: if score >= 0.6 {
                    (score + 0.05).min(0.99)
                } else {
                    score
                },
                note: Some(format!(
                    "{encoding}; decoded text holds a {} signal",
                    kind.as_str()
                )),
            });
        }
        budget > 0
    };
    // Tokens: runs of printable ASCII other than quotes and brackets. A
    // token of MIN_RUN (at least 15) bytes holds a whole aligned block of
    // 8, so only blocks of 8 token bytes are looked at more closely.
    let is_token = |b: u8| CLASSES[usize::from(b)] & TOKEN != 0;
    let mut block = 0;
    while block + 8 <= bytes.len() {
        let eight = &bytes[block..block + 8];
        if !printable(eight) || !eight.iter().all(|&b| is_token(b)) {
            block += 8;
            continue;
        }
        let mut token_start = block;
        while token_start > 0 && is_token(bytes[token_start - 1]) {
            token_start -= 1;
        }
        let mut token_end = block + 8;
        while token_end < bytes.len() && is_token(bytes[token_end]) {
            token_end += 1;
        }
        block = token_end.next_multiple_of(8);
        if token_end - token_start < MIN_RUN {
            continue;
        }
        let token = &bytes[token_start..token_end];
        let escapes = token
            .windows(3)
            .filter(|w| w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit())
            .count();
        if escapes >= 3 {
            let take = &bytes[token_start..token_end.min(token_start + MAX_RUN)];
            if !check(
                token_start,
                token_end,
                "percent-encoding",
                decode_percent(take),
            ) {
                break;
            }
            continue;
        }
        // Base64 and hex runs inside the token.
        let mut j = token_start;
        while j < token_end {
            if !is_base64(bytes[j]) {
                j += 1;
                continue;
            }
            let start = j;
            let mut hex = true;
            while j < token_end && is_base64(bytes[j]) {
                hex &= bytes[j].is_ascii_hexdigit();
                j += 1;
            }
            let run = &bytes[start..j];
            if run.len() < MIN_RUN {
                continue;
            }
            let mut end = j;
            while end < token_end && end < j + 2 && bytes[end] == b'=' {
                end += 1;
            }
            let take = &run[..run.len().min(MAX_RUN)];
            let going = if hex && run.len().is_multiple_of(2) {
                check(start, end, "hex", decode_hex(take))
            } else {
                check(start, end, "base64", decode_base64(take))
            };
            if !going {
                return out;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoders() {
        assert_eq!(decode_base64(b"aGVsbG8gd29ybGQh"), b"hello world!");
        assert_eq!(decode_base64(b"aGk_"), [0x68, 0x69, 0x3f]);
        assert_eq!(decode_base64(b"aGVsbG8"), b"hello");
        assert_eq!(decode_hex(b"68656c6C6f"), b"hello");
        assert_eq!(decode_percent(b"a%20b+c%2"), b"a b c%2");
        assert!(printable(b"aGVsbG8~"));
        assert!(!printable(b"aGVs bG8"));
        assert!(!printable(b"aGVs\x80bG8"));
        assert!(!printable(b"\x1fGVsbG8x"));
        assert_eq!(as_text(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), None);
        assert_eq!(
            as_text(b"plain words here").as_deref(),
            Some("plain words here")
        );
    }
}
