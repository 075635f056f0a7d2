//! Normalisation before matching: one lower-case, mostly ASCII spelling of a
//! string, with a map from each normalised byte back to the original.
//!
//! Upper case becomes lower case; runs of whitespace become one space (one
//! newline if the run held a line break, so line-start rules still work);
//! invisible characters are dropped; fullwidth forms, mathematical
//! alphanumerics, circled letters, common Cyrillic and Greek look-alikes and
//! accented Latin letters become their ASCII base letter; curly quotes become
//! straight ones. Everything else is kept as it is.

/// A normalised string and where each of its bytes came from.
#[derive(Debug)]
pub struct Normalized {
    /// The normalised text (UTF-8; ASCII wherever a mapping exists).
    pub text: Vec<u8>,
    /// For each byte of `text`, the offset of the original character it
    /// came from (always a character boundary of the original).
    pub origin: Vec<u32>,
}

impl Normalized {
    /// The original byte range `[start, end)` of the normalised range
    /// `[start, end)`; both ends are character boundaries of `original`.
    pub fn original_range(&self, original: &str, start: usize, end: usize) -> (usize, usize) {
        let Some(&first) = self.origin.get(start) else {
            return (original.len(), original.len());
        };
        let last = self
            .origin
            .get(end.saturating_sub(1).max(start))
            .copied()
            .unwrap_or(first) as usize;
        let last_len = original
            .get(last..)
            .and_then(|rest| rest.chars().next())
            .map_or(0, char::len_utf8);
        (first as usize, last + last_len)
    }
}

/// Characters that render as nothing (or nearly nothing) and have no place
/// inside ordinary words: zero-width space/joiners, word joiner, BOM,
/// Mongolian vowel separator, invisible math operators.
pub fn is_zero_width(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200D}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}' | '\u{180E}'
    )
}

/// Bidirectional embedding, override and isolate controls.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Unicode tag characters (the "invisible ASCII" block).
pub fn is_tag(c: char) -> bool {
    matches!(c, '\u{E0000}'..='\u{E007F}')
}

/// Whether `c` is dropped by normalisation: invisible characters, bidi
/// controls, tags, soft hyphens, variation selectors, direction marks.
fn is_dropped(c: char) -> bool {
    is_zero_width(c)
        || is_bidi_control(c)
        || is_tag(c)
        || matches!(
            c,
            '\u{00AD}' | '\u{034F}' | '\u{200E}' | '\u{200F}' | '\u{FE00}'..='\u{FE0F}'
        )
}

/// The ASCII spelling of a look-alike or accented letter, if it has one.
fn fold(c: char) -> Option<&'static str> {
    const LOWER: [&str; 26] = [
        "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q", "r",
        "s", "t", "u", "v", "w", "x", "y", "z",
    ];
    const DIGITS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
    let code = c as u32;
    let folded = match c {
        // Fullwidth ASCII.
        '\u{FF01}'..='\u{FF5E}' => {
            let ascii = (code - 0xFEE0) as u8;
            return ASCII_STRS.get(usize::from(ascii)).copied();
        }
        // Mathematical alphanumerics: 13 styles of A-Z, a-z in a row.
        '\u{1D400}'..='\u{1D6A3}' => LOWER[((code - 0x1D400) % 52 % 26) as usize],
        '\u{1D7CE}'..='\u{1D7FF}' => DIGITS[((code - 0x1D7CE) % 10) as usize],
        // Circled and parenthesised letters.
        '\u{24B6}'..='\u{24CF}' => LOWER[(code - 0x24B6) as usize],
        '\u{24D0}'..='\u{24E9}' => LOWER[(code - 0x24D0) as usize],
        '\u{249C}'..='\u{24B5}' => LOWER[(code - 0x249C) as usize],
        // Cyrillic look-alikes.
        'а' | 'А' => "a",
        'в' | 'В' => "b",
        'е' | 'Е' | 'ё' | 'Ё' => "e",
        'к' | 'К' => "k",
        'м' | 'М' => "m",
        'н' | 'Н' => "h",
        'о' | 'О' => "o",
        'р' | 'Р' => "p",
        'с' | 'С' => "c",
        'т' | 'Т' => "t",
        'у' | 'У' => "y",
        'х' | 'Х' => "x",
        'і' | 'І' | 'ї' => "i",
        'ј' | 'Ј' => "j",
        'ѕ' | 'Ѕ' => "s",
        'ԁ' => "d",
        'ԛ' => "q",
        'ԝ' => "w",
        // Greek look-alikes.
        'α' | 'Α' => "a",
        'β' | 'Β' => "b",
        'ε' | 'Ε' => "e",
        'η' | 'Η' => "h",
        'ι' | 'Ι' => "i",
        'κ' | 'Κ' => "k",
        'μ' | 'Μ' => "m",
        'ν' | 'Ν' => "n",
        'ο' | 'Ο' => "o",
        'ρ' | 'Ρ' => "p",
        'τ' | 'Τ' => "t",
        'υ' | 'Υ' => "y",
        'χ' | 'Χ' => "x",
        'ζ' | 'Ζ' => "z",
        // Accented Latin.
        'à'..='å' | 'À'..='Å' | 'ā' | 'ă' | 'ą' => "a",
        'æ' | 'Æ' => "ae",
        'ç' | 'Ç' | 'ć' | 'č' => "c",
        'è'..='ë' | 'È'..='Ë' | 'ē' | 'ė' | 'ę' | 'ě' => "e",
        'ì'..='ï' | 'Ì'..='Ï' | 'ī' | 'ı' => "i",
        'ñ' | 'Ñ' | 'ń' | 'ň' => "n",
        'ò'..='ö' | 'Ò'..='Ö' | 'ø' | 'Ø' | 'ō' | 'ő' => "o",
        'œ' | 'Œ' => "oe",
        'ù'..='ü' | 'Ù'..='Ü' | 'ū' | 'ů' | 'ű' => "u",
        'ý' | 'ÿ' | 'Ý' => "y",
        'ß' => "ss",
        'ś' | 'š' | 'ş' => "s",
        'ź' | 'ż' | 'ž' => "z",
        'ł' | 'Ł' => "l",
        // Quotes, dashes and the like.
        '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}' | '\u{2032}' => "'",
        '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{201F}' | '«' | '»' | '\u{2033}' => "\"",
        '\u{2010}'..='\u{2015}' | '\u{2212}' => "-",
        '\u{2024}' | '\u{FE52}' => ".",
        _ => return None,
    };
    Some(folded)
}

/// Each ASCII byte as a one-character lower-case string (index = byte).
const ASCII_STRS: [&str; 128] = {
    const ALL: &str = "\0\u{1}\u{2}\u{3}\u{4}\u{5}\u{6}\u{7}\u{8}\t\n\u{b}\u{c}\r\u{e}\u{f}\u{10}\u{11}\u{12}\u{13}\u{14}\u{15}\u{16}\u{17}\u{18}\u{19}\u{1a}\u{1b}\u{1c}\u{1d}\u{1e}\u{1f} !\"#$%&'()*+,-./0123456789:;<=>?@abcdefghijklmnopqrstuvwxyz[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~\u{7f}";
    let mut out = [""; 128];
    let mut i = 0;
    while i < 128 {
        // `split_at` is const; every character of ALL is one byte.
        let (_, rest) = ALL.split_at(i);
        let (one, _) = rest.split_at(1);
        out[i] = one;
        i += 1;
    }
    out
};

/// Normalises `text` (see the module documentation).
pub fn normalize(text: &str) -> Normalized {
    let bytes = text.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(text.len());
    let mut origin: Vec<u32> = Vec::with_capacity(text.len());
    // A pending whitespace run: (offset of its first character, held a newline).
    let mut space: Option<(u32, bool)> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let at = i as u32;
        // Runs of ASCII other than whitespace, the common case, in bulk,
        // with the single spaces between them (which stay as they are).
        if b.is_ascii_graphic() {
            if let Some((first, newline)) = space.take()
                && !out.is_empty()
            {
                out.push(if newline { b'\n' } else { b' ' });
                origin.push(first);
            }
            let mut run = i + 1;
            while run < bytes.len() {
                if bytes[run].is_ascii_graphic() {
                    run += 1;
                } else if bytes[run] == b' ' && bytes.get(run + 1).is_some_and(u8::is_ascii_graphic)
                {
                    run += 2;
                } else {
                    break;
                }
            }
            let from = out.len();
            out.extend_from_slice(&bytes[i..run]);
            out[from..].make_ascii_lowercase();
            origin.extend(at..run as u32);
            i = run;
            continue;
        }
        if b.is_ascii() {
            i += 1;
            if b.is_ascii_whitespace() || b == 0x0B {
                let newline = matches!(b, b'\n' | b'\r');
                space = Some(match space {
                    Some((first, held)) => (first, held || newline),
                    None => (at, newline),
                });
                continue;
            }
            if let Some((first, newline)) = space.take()
                && !out.is_empty()
            {
                out.push(if newline { b'\n' } else { b' ' });
                origin.push(first);
            }
            out.push(b.to_ascii_lowercase());
            origin.push(at);
            continue;
        }
        let Some(c) = text.get(i..).and_then(|rest| rest.chars().next()) else {
            break;
        };
        i += c.len_utf8();
        if c.is_whitespace() {
            let newline = matches!(c, '\u{2028}' | '\u{2029}' | '\u{85}');
            space = Some(match space {
                Some((first, held)) => (first, held || newline),
                None => (at, newline),
            });
            continue;
        }
        if is_dropped(c) {
            continue;
        }
        if let Some((first, newline)) = space.take()
            && !out.is_empty()
        {
            out.push(if newline { b'\n' } else { b' ' });
            origin.push(first);
        }
        let mut buffer = [0u8; 4];
        let folded: &[u8] = match fold(c) {
            Some(folded) => folded.as_bytes(),
            None => {
                let lower = if c.is_uppercase() {
                    c.to_lowercase().next().unwrap_or(c)
                } else {
                    c
                };
                lower.encode_utf8(&mut buffer).as_bytes()
            }
        };
        out.extend_from_slice(folded);
        origin.extend(std::iter::repeat_n(at, folded.len()));
    }
    Normalized { text: out, origin }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(text: &str) -> String {
        String::from_utf8(normalize(text).text).unwrap()
    }

    #[test]
    fn spellings_fold_to_one() {
        assert_eq!(norm("IGNORE  all\tprevious"), "ignore all previous");
        assert_eq!(norm("a \n\n b"), "a\nb");
        assert_eq!(norm("ig\u{200B}no\u{200D}re"), "ignore");
        assert_eq!(norm("ｉｇｎｏｒｅ ＡＬＬ"), "ignore all");
        assert_eq!(norm("іgnоrе"), "ignore");
        assert_eq!(norm("𝐢𝐠𝐧𝐨𝐫𝐞 𝙧𝙪𝙡𝙚𝙨"), "ignore rules");
        assert_eq!(norm("Ⓘⓖⓝⓞⓡⓔ"), "ignore");
        assert_eq!(norm("précédentes Straße"), "precedentes strasse");
        assert_eq!(norm("“quoted” don’t"), "\"quoted\" don't");
        assert_eq!(norm("Ärger 東京"), "arger 東京");
    }

    #[test]
    fn ranges_map_back_to_the_original() {
        let text = "Ｘ  ｉｇｎｏｒｅ é!";
        let n = normalize(text);
        assert_eq!(n.text, b"x ignore e!");
        assert_eq!(n.origin.len(), n.text.len());
        let (start, end) = n.original_range(text, 2, 8);
        assert_eq!(&text[start..end], "ｉｇｎｏｒｅ");
        let (start, end) = n.original_range(text, 9, 10);
        assert_eq!(&text[start..end], "é");
        assert_eq!(n.original_range(text, 99, 100), (text.len(), text.len()));
    }
}
