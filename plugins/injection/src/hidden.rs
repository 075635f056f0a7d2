//! Hidden text: zero-width characters, bidi controls and Unicode tag
//! characters, minus their legitimate uses (emoji ZWJ sequences, joiners in
//! Arabic and Indic scripts, word breaks in Thai, embeddings in RTL text,
//! flag tag sequences). Tag runs are decoded and text under a right-to-left
//! override is reversed, and both are searched for phrases.

use crate::normalize::{is_bidi_control, is_tag, is_zero_width};
use crate::rules::Kind;
use crate::scan::{Match, best_phrase};

/// Hidden runs decoded (tags) or reversed (bidi overrides) per string.
const MAX_DECODED_RUNS: usize = 8;
/// Characters decoded or reversed per run.
const MAX_RUN_CHARS: usize = 4096;

/// Pictographs and the pieces of emoji sequences.
fn is_emoji_part(c: char) -> bool {
    matches!(c,
        '\u{1F000}'..='\u{1FAFF}' | '\u{2600}'..='\u{27BF}' | '\u{2B00}'..='\u{2BFF}'
        | '\u{FE0F}' | '\u{20E3}' | '\u{2190}'..='\u{21FF}' | '\u{2300}'..='\u{23FF}'
        | '\u{00A9}' | '\u{00AE}' | '\u{2122}')
}

/// Scripts that use ZWJ/ZWNJ inside words (Arabic, Persian, Syriac,
/// Indic, Sinhala) or ZWSP between words (Thai, Lao, Khmer, Myanmar,
/// Tibetan, CJK).
fn is_joining_script(c: char) -> bool {
    matches!(c,
        '\u{0600}'..='\u{08FF}' | '\u{0900}'..='\u{0DFF}' | '\u{0E00}'..='\u{0FFF}'
        | '\u{1000}'..='\u{109F}' | '\u{1780}'..='\u{17FF}' | '\u{3000}'..='\u{9FFF}'
        | '\u{FB50}'..='\u{FDFF}' | '\u{FE70}'..='\u{FEFE}')
}

/// Right-to-left letters (Hebrew, Arabic and their presentation forms).
fn is_rtl(c: char) -> bool {
    matches!(c, '\u{0590}'..='\u{08FF}' | '\u{FB1D}'..='\u{FDFF}' | '\u{FE70}'..='\u{FEFE}')
}

/// The character at byte `at` of `text` (a character boundary), if any.
fn char_at(text: &str, at: usize) -> Option<char> {
    text.get(at..).and_then(|rest| rest.chars().next())
}

/// The character before byte `at` of `text`, if any.
fn char_before(text: &str, at: usize) -> Option<char> {
    text.get(..at).and_then(|head| head.chars().next_back())
}

/// Findings for the hidden text in `text`.
pub fn scan(text: &str) -> Vec<Match> {
    let bytes = text.as_bytes();
    // Every character this module looks at is encoded with one of these
    // lead bytes (U+180E; U+200B..U+2069; U+FEFF; U+E0000..U+E007F), so
    // only their positions are decoded.
    let is_lead = |b: u8| matches!(b, 0xE1 | 0xE2 | 0xEF | 0xF3);
    let mut out = Vec::new();
    // Zero-width characters.
    let (mut count, mut in_word, mut first, mut last) = (0usize, 0usize, usize::MAX, 0usize);
    // Bidi controls; whether the text has right-to-left letters, once asked.
    let mut has_rtl: Option<bool> = None;
    let (mut bidi, mut overrides, mut bidi_first, mut bidi_last) = (0usize, 0usize, usize::MAX, 0);
    let mut reversed_score: f32 = 0.0;
    let mut decoded_runs = 0;
    let mut i = 0;
    while i < bytes.len() {
        // Plain ASCII, eight bytes at a time.
        if let Some(block) = bytes.get(i..i + 8)
            && u64::from_le_bytes(block.try_into().unwrap_or([0x80; 8])) & 0x8080_8080_8080_8080
                == 0
        {
            i += 8;
            continue;
        }
        if !is_lead(bytes[i]) {
            i += 1;
            continue;
        }
        let at = i;
        let Some(c) = char_at(text, at) else {
            i += 1;
            continue;
        };
        let end = at + c.len_utf8();
        i = end;
        if is_zero_width(c) {
            let prev = char_before(text, at);
            let next = char_at(text, end);
            let legit = (c == '\u{FEFF}' && at == 0)
                || (matches!(c, '\u{200C}' | '\u{200D}')
                    && (prev.is_some_and(is_emoji_part) && next.is_some_and(is_emoji_part)
                        || prev.is_some_and(is_joining_script)
                        || next.is_some_and(is_joining_script)))
                || (c == '\u{200B}'
                    && (prev.is_some_and(is_joining_script)
                        || next.is_some_and(is_joining_script)));
            if !legit {
                count += 1;
                if prev.is_some_and(char::is_alphanumeric)
                    && next.is_some_and(char::is_alphanumeric)
                {
                    in_word += 1;
                }
                first = first.min(at);
                last = end;
            }
        } else if is_bidi_control(c) {
            let is_override = matches!(c, '\u{202D}' | '\u{202E}');
            let rtl = *has_rtl.get_or_insert_with(|| text.chars().any(is_rtl));
            if is_override || !rtl {
                bidi += 1;
                overrides += usize::from(is_override);
                bidi_first = bidi_first.min(at);
                bidi_last = end;
            }
            if c == '\u{202E}' && decoded_runs < MAX_DECODED_RUNS {
                decoded_runs += 1;
                // What a reader sees under the override: the characters up
                // to the next pop, isolate or line end, reversed.
                let shown: String = text[end..]
                    .chars()
                    .take_while(|&c| !matches!(c, '\u{202C}' | '\u{2066}'..='\u{2069}' | '\n'))
                    .take(MAX_RUN_CHARS)
                    .collect::<Vec<char>>()
                    .into_iter()
                    .rev()
                    .collect();
                if let Some((score, _)) = best_phrase(&shown) {
                    reversed_score = reversed_score.max(score);
                }
            }
        } else if is_tag(c) {
            let mut run = vec![(at, c)];
            while let Some(next) = char_at(text, i).filter(|&c| is_tag(c)) {
                run.push((i, next));
                i += next.len_utf8();
            }
            let is_flag = char_before(text, at) == Some('\u{1F3F4}')
                && run.len() <= 8
                && run.last().map(|&(_, c)| c) == Some('\u{E007F}');
            if !is_flag && out.len() < MAX_DECODED_RUNS {
                out.push(tag_run(&run, i));
            }
        }
    }
    if count > 0 {
        let score = if in_word >= 3 || count >= 8 {
            0.6
        } else if count >= 3 {
            0.45
        } else {
            0.3
        };
        out.push(Match {
            kind: Kind::HiddenText,
            rule: "zero-width",
            title: "zero-width characters",
            start: first,
            end: last,
            score,
            note: Some(format!("{count} characters, {in_word} inside words")),
        });
    }
    if bidi > 0 {
        let mut score = if overrides > 0 { 0.6 } else { 0.5 };
        let mut note = format!("{bidi} controls, {overrides} overrides");
        if reversed_score >= 0.4 {
            score = (reversed_score + 0.1).max(0.9);
            note.push_str("; the reversed text is instruction-like");
        }
        out.push(Match {
            kind: Kind::HiddenText,
            rule: "bidi-control",
            title: "bidirectional text controls",
            start: bidi_first,
            end: bidi_last,
            score,
            note: Some(note),
        });
    }
    out
}

/// The finding for one run of tag characters ending at byte `end`.
fn tag_run(run: &[(usize, char)], end: usize) -> Match {
    let decoded: String = run
        .iter()
        .take(MAX_RUN_CHARS)
        .filter_map(|&(_, c)| {
            let ascii = (c as u32).wrapping_sub(0xE0000);
            (0x20..0x7F)
                .contains(&ascii)
                .then(|| char::from(ascii as u8))
        })
        .collect();
    let mut score = 0.85;
    let mut note = format!("{} tag characters", run.len());
    if let Some((phrase, kind)) = best_phrase(&decoded)
        && phrase >= 0.4
    {
        score = (phrase + 0.1).max(0.95);
        note.push_str(&format!("; decoded text holds a {} signal", kind.as_str()));
    }
    Match {
        kind: Kind::TagSmuggling,
        rule: "unicode-tags",
        title: "text in invisible Unicode tag characters",
        start: run.first().map_or(end, |&(at, _)| at),
        end,
        score,
        note: Some(note),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<(&'static str, f32)> {
        scan(text).iter().map(|m| (m.rule, m.score)).collect()
    }

    #[test]
    fn legitimate_invisible_characters_pass() {
        assert!(kinds("family 👨\u{200D}👩\u{200D}👧 and 🏳\u{FE0F}\u{200D}🌈").is_empty());
        assert!(kinds("\u{FEFF}id,name").is_empty());
        assert!(kinds("می\u{200C}خواهم").is_empty());
        assert!(kinds("ภาษาไทย\u{200B}ไม่มี").is_empty());
        assert!(kinds("שלום \u{2067}עולם\u{2069} ok").is_empty());
        let scotland = "🏴\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}";
        assert!(kinds(scotland).is_empty());
    }

    #[test]
    fn suspicious_invisible_characters_are_found() {
        assert_eq!(kinds("a\u{200B}b"), [("zero-width", 0.3)]);
        assert_eq!(
            kinds("h\u{200B}e\u{200B}l\u{200B}lo"),
            [("zero-width", 0.6)]
        );
        assert_eq!(kinds("price \u{202E}cba"), [("bidi-control", 0.6)]);
        assert_eq!(kinds("x \u{2066}y\u{2069}"), [("bidi-control", 0.5)]);
        let hidden: String = "hello"
            .chars()
            .map(|c| char::from_u32(0xE0000 + c as u32).unwrap())
            .collect();
        let found = scan(&format!("hi{hidden}!"));
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].start, found[0].end), (2, 2 + 5 * 4));
        assert_eq!(found[0].score, 0.85);
    }
}
