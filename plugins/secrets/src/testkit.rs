//! Example templates: the rule table's examples and the evaluation cases are
//! written with random parts drawn deterministically, so no literal
//! credential-shaped string needs to sit in the source and lengths are right
//! by construction.
//!
//! `[[c N]]` (without the space) stands for N characters of class `c`:
//! `a` `[A-Za-z0-9]`, `A` `[A-Z0-9]`, `l` `[a-z0-9]`, `L` `[a-z]`, `U` `[A-Z]`,
//! `x` `[A-Za-z]`, `h` `[0-9a-f]`, `H` `[0-9A-F]`, `d` `[0-9]`,
//! `b` base64 `[A-Za-z0-9+/]`, `u` base64url `[A-Za-z0-9_-]`, `B` base32
//! `[A-Z2-7]`, `e` bech32 upper case, `z` the letter `x` repeated (a placeholder). `[[uuid]]` is a
//! random lower-case UUID. `<<` and `>>` mark the expected secret and are
//! removed.

/// A small deterministic generator (SplitMix64).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// A seed from a string, so each example draws its own sequence.
    pub fn from_label(label: &str) -> Rng {
        // FNV-1a.
        let mut hash = 0xcbf2_9ce4_8422_2325u64;
        for b in label.bytes() {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        Rng(hash)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    pub fn string(&mut self, class: char, n: usize) -> String {
        if class == 'z' {
            return "x".repeat(n);
        }
        let alphabet = alphabet(class).unwrap_or_else(|| panic!("unknown class {class}"));
        (0..n)
            .map(|_| alphabet[self.below(alphabet.len())] as char)
            .collect()
    }

    pub fn uuid(&mut self) -> String {
        format!(
            "{}-{}-{}-{}-{}",
            self.string('h', 8),
            self.string('h', 4),
            self.string('h', 4),
            self.string('h', 4),
            self.string('h', 12)
        )
    }
}

fn alphabet(class: char) -> Option<&'static [u8]> {
    Some(match class {
        'a' => b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
        'A' => b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
        'l' => b"abcdefghijklmnopqrstuvwxyz0123456789",
        'L' => b"abcdefghijklmnopqrstuvwxyz",
        'U' => b"ABCDEFGHIJKLMNOPQRSTUVWXYZ",
        'x' => b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
        'h' => b"0123456789abcdef",
        'H' => b"0123456789ABCDEF",
        'd' => b"0123456789",
        'b' => b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
        'u' => b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-",
        'B' => b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567",
        'e' => b"QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L",
        _ => return None,
    })
}

/// Expands `template` with `rng`; returns the text and the byte range the
/// `<<`/`>>` markers enclosed, if any.
pub fn expand(template: &str, rng: &mut Rng) -> (String, Option<(usize, usize)>) {
    let mut out = String::with_capacity(template.len() * 2);
    let mut start = None;
    let mut span = None;
    let mut rest = template;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("<<") {
            start = Some(out.len());
            rest = after;
        } else if let Some(after) = rest.strip_prefix(">>") {
            span = Some((start.expect("`>>` after `<<`"), out.len()));
            rest = after;
        } else if let Some(after) = rest.strip_prefix("[[") {
            let end = after.find("]]").expect("`[[` closed by `]]`");
            let spec = &after[..end];
            if spec == "uuid" {
                out.push_str(&rng.uuid());
            } else {
                let class = spec.chars().next().expect("a class");
                let n: usize = spec[class.len_utf8()..].parse().expect("a length");
                out.push_str(&rng.string(class, n));
            }
            rest = &after[end + 2..];
        } else {
            let c = rest.chars().next().expect("not empty");
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    (out, span)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_expand_deterministically() {
        let (text, span) = expand("key=<<ghp_[[a36]]>>;", &mut Rng::from_label("x"));
        assert_eq!(text.len(), 4 + 4 + 36 + 1);
        assert_eq!(span, Some((4, 44)));
        assert!(text[8..44].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(
            expand("[[uuid]] [[z3]]", &mut Rng::from_label("y")).0,
            expand("[[uuid]] [[z3]]", &mut Rng::from_label("y")).0
        );
        assert!(expand("[[z3]]", &mut Rng::new(1)).0 == "xxx");
    }
}
