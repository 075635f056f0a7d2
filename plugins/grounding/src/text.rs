//! Reading one string of an answer: citation [`Marker`]s, [`Quote`]s,
//! sentences and [`Number`]s. Every function works on byte offsets into the
//! string, returns ranges on character boundaries, runs in time linear in
//! the string's length and never panics.

use std::ops::Range;

/// Longest id list inside one `[source: …]` marker. A longer bracket is not
/// a marker: it bounds the work spent on each `[`.
const MAX_MARKER: usize = 1024;
/// Longest link text of a markdown link `[text](url)`.
const MAX_LINK_TEXT: usize = 1024;
/// Longest URL of a markdown link.
const MAX_URL: usize = 2048;

/// The two ways an answer cites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerKind {
    /// `[source: X]`, `[source:X, Y]`, `[Source: X]`.
    Source,
    /// A markdown link `[text](X)` to an http(s) URL.
    Link,
}

/// A citation marker in a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    /// The whole marker, brackets included.
    pub range: Range<usize>,
    /// Which form it takes.
    pub kind: MarkerKind,
    /// Each cited reference (id, locator or digest prefix), trimmed.
    pub targets: Vec<Range<usize>>,
    /// The bytes that are citation syntax rather than text: the whole
    /// `[source: …]`, or a link's brackets and URL (its text stays text).
    pub masks: Vec<Range<usize>>,
}

/// Every citation marker of `text`, in order, never overlapping.
pub fn markers(text: &str) -> Vec<Marker> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(offset) = bytes
        .get(at..)
        .and_then(|rest| rest.iter().position(|&b| b == b'['))
    {
        let open = at + offset;
        match marker_at(text, open) {
            Some(marker) => {
                at = marker.range.end;
                out.push(marker);
            }
            None => at = open + 1,
        }
    }
    out
}

/// The first byte in `from..from + max` for which `found` holds, unless
/// `fail` holds for an earlier byte.
fn scan_until(
    bytes: &[u8],
    from: usize,
    max: usize,
    found: impl Fn(u8) -> bool,
    fail: impl Fn(u8) -> bool,
) -> Option<usize> {
    for (k, &b) in bytes.get(from..)?.iter().enumerate().take(max) {
        if found(b) {
            return Some(from + k);
        }
        if fail(b) {
            return None;
        }
    }
    None
}

/// The range of `text[start..end]` without surrounding whitespace.
fn trimmed(text: &str, range: Range<usize>) -> Range<usize> {
    let Some(slice) = text.get(range.clone()) else {
        return range.start..range.start;
    };
    let start = range.start + (slice.len() - slice.trim_start().len());
    let end = range.end - (slice.len() - slice.trim_end().len());
    if start >= end {
        start..start
    } else {
        start..end
    }
}

fn marker_at(text: &str, open: usize) -> Option<Marker> {
    let bytes = text.as_bytes();
    let rest = bytes.get(open + 1..)?;
    // Brackets never nest in a marker: a `[` inside ends the attempt, which
    // also keeps the scan from each `[` short.
    if rest.len() >= 7 && rest[..6].eq_ignore_ascii_case(b"source") && rest[6] == b':' {
        let body = open + 8;
        let close = scan_until(
            bytes,
            body,
            MAX_MARKER,
            |b| b == b']',
            |b| b == b'\n' || b == b'[',
        )?;
        let mut targets = Vec::new();
        let mut start = body;
        for piece in text.get(body..close)?.split(',') {
            let range = trimmed(text, start..start + piece.len());
            if !range.is_empty() {
                targets.push(range);
            }
            start += piece.len() + 1;
        }
        return Some(Marker {
            range: open..close + 1,
            kind: MarkerKind::Source,
            targets,
            masks: std::iter::once(open..close + 1).collect(),
        });
    }
    let close = scan_until(
        bytes,
        open + 1,
        MAX_LINK_TEXT,
        |b| b == b']',
        |b| b == b'\n' || b == b'[',
    )?;
    if bytes.get(close + 1) != Some(&b'(') {
        return None;
    }
    let url = close + 2;
    let head = bytes.get(url..)?;
    let is_http = |scheme: &[u8]| {
        head.len() > scheme.len() && head[..scheme.len()].eq_ignore_ascii_case(scheme)
    };
    if !is_http(b"http://") && !is_http(b"https://") {
        return None;
    }
    let end = scan_until(
        bytes,
        url,
        MAX_URL,
        |b| b == b')',
        |b| b.is_ascii_whitespace() || b == b'[' || b == b'(',
    )?;
    Some(Marker {
        range: open..end + 1,
        kind: MarkerKind::Link,
        targets: std::iter::once(url..end).collect(),
        masks: vec![open..open + 1, close..end + 1],
    })
}

/// A quotation: text between matching quotation marks on one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    /// The quotation, marks included.
    pub range: Range<usize>,
    /// What is quoted, marks excluded.
    pub inner: Range<usize>,
}

impl Quote {
    /// Long enough to be a claim about a source (three words or twelve
    /// characters); shorter ones are names and scare quotes.
    pub fn is_claim(&self, text: &str) -> bool {
        let inner = text.get(self.inner.clone()).unwrap_or("");
        inner.split_whitespace().count() >= 3 || inner.trim().chars().count() >= 12
    }
}

/// Every quotation of `text`: `“…”`, `"…"` and `‘…’`, each closed on the
/// line it opens (an unterminated mark quotes nothing). A `’` followed by a
/// letter is an apostrophe, not a closing mark.
pub fn quotes(text: &str) -> Vec<Quote> {
    let mut out = Vec::new();
    let mut at = 0;
    let mut line_end = 0;
    // Past these offsets no closing mark of that kind exists on the current
    // line, so later openers there need not search again (linear time).
    let mut no_double_close_before = 0;
    let mut no_single_close_before = 0;
    while let Some(c) = text.get(at..).and_then(|rest| rest.chars().next()) {
        if at >= line_end {
            line_end = text[at..].find('\n').map_or(text.len(), |n| at + n);
        }
        let width = c.len_utf8();
        let close = match c {
            '“' if at >= no_double_close_before => {
                let found = text[at + width..line_end]
                    .find('”')
                    .map(|n| (at + width + n, '”'.len_utf8()));
                if found.is_none() {
                    no_double_close_before = line_end;
                }
                found
            }
            '"' => text[at + 1..line_end].find('"').map(|n| (at + 1 + n, 1)),
            '‘' if at >= no_single_close_before => {
                let found = closing_single(text, at + width, line_end);
                if found.is_none() {
                    no_single_close_before = line_end;
                }
                found.map(|n| (n, '’'.len_utf8()))
            }
            _ => None,
        };
        match close {
            Some((close, close_width)) => {
                out.push(Quote {
                    range: at..close + close_width,
                    inner: at + width..close,
                });
                at = close + close_width;
            }
            None => at += width,
        }
    }
    out
}

/// The first `’` in `from..to` not followed by a letter.
fn closing_single(text: &str, from: usize, to: usize) -> Option<usize> {
    let mut at = from;
    while let Some(n) = text.get(at..to)?.find('’') {
        let close = at + n;
        let after = close + '’'.len_utf8();
        if !text[after..]
            .chars()
            .next()
            .is_some_and(char::is_alphabetic)
        {
            return Some(close);
        }
        at = after;
    }
    None
}

/// Words that end with a period without ending a sentence.
const ABBREVIATIONS: &[&str] = &[
    "e.g", "i.e", "vs", "cf", "mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "inc", "ltd",
    "co", "corp", "no", "nos", "approx", "fig", "figs", "al", "u.s", "u.k", "a.m", "p.m", "jan",
    "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "est", "dept",
    "vol", "pp", "ed", "eds", "ca",
];

/// Whether the period at `dot` ends an abbreviation, an initial (`J.`) or a
/// list item number at the start of a line (`1.`).
fn period_continues(text: &str, dot: usize) -> bool {
    let bytes = text.as_bytes();
    let mut start = dot;
    while start > 0
        && dot - start < 16
        && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'.')
    {
        start -= 1;
    }
    let word = &text[start..dot];
    if word.is_empty() {
        return false;
    }
    if word.len() == 1 && word.as_bytes()[0].is_ascii_uppercase() {
        return true;
    }
    if word.len() <= 3 && word.bytes().all(|b| b.is_ascii_digit()) {
        return at_line_start(text, start);
    }
    ABBREVIATIONS.iter().any(|a| word.eq_ignore_ascii_case(a))
}

/// Whether only whitespace and list or quote markup (`-`, `*`, `+`, `>`,
/// `#`, `|`) precede `at` on its line.
pub fn at_line_start(text: &str, at: usize) -> bool {
    let bytes = text.as_bytes();
    let mut k = at;
    while k > 0 && at - k < 64 {
        match bytes[k - 1] {
            b'\n' => return true,
            b' ' | b'\t' | b'\r' | b'-' | b'*' | b'+' | b'>' | b'#' | b'|' => k -= 1,
            _ => return false,
        }
    }
    k == 0
}

/// The lines of `text` that are markdown headings (`# …`), in order.
pub fn headings(text: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for line in text.split('\n') {
        if line.trim_start().starts_with('#') {
            out.push(start..start + line.len());
        }
        start += line.len() + 1;
    }
    out
}

/// The items of `sorted` (ordered, non-overlapping ranges) that start
/// within `range`.
pub fn within<T>(
    sorted: &[T],
    range: &Range<usize>,
    key: impl Fn(&T) -> &Range<usize>,
) -> Range<usize> {
    let lo = sorted.partition_point(|t| key(t).start < range.start);
    let hi = sorted.partition_point(|t| key(t).start < range.end);
    lo..hi.max(lo)
}

fn starts_closing(text: &str, at: usize) -> Option<usize> {
    let c = text.get(at..)?.chars().next()?;
    matches!(c, ')' | ']' | '"' | '\'' | '”' | '’' | '*' | '_').then(|| c.len_utf8())
}

/// The sentences of `text`, as trimmed, non-empty ranges in order.
///
/// A sentence ends at a newline, or at `.`, `!` or `?` (and any closing
/// quotes or brackets after it) followed by whitespace or the end. A period
/// inside a number, after an abbreviation or initial, or after a list number
/// does not end one, nor does anything inside a quotation or a marker.
/// Markers that follow the end on the same line, and a line holding only
/// markers, belong to the sentence before them.
pub fn sentences(text: &str, quotes: &[Quote], markers: &[Marker]) -> Vec<Range<usize>> {
    let bytes = text.as_bytes();
    let mut raw: Vec<Range<usize>> = Vec::new();
    let (mut qi, mut mi) = (0, 0);
    let mut start = 0;
    let mut at = 0;
    while at < bytes.len() {
        while qi < quotes.len() && quotes[qi].range.start < at {
            qi += 1;
        }
        while mi < markers.len() && markers[mi].range.start < at {
            mi += 1;
        }
        if let Some(m) = markers.get(mi).filter(|m| m.range.start == at) {
            at = m.range.end;
            continue;
        }
        let mut end_after = None;
        if let Some(q) = quotes.get(qi).filter(|q| q.range.start == at) {
            // A quotation that closes a sentence: `… said “We grew.” Next`.
            let last = text[q.inner.clone()].trim_end().chars().next_back();
            at = q.range.end;
            if matches!(last, Some('.' | '!' | '?')) {
                end_after = Some(at);
            } else {
                continue;
            }
        }
        let end = match end_after {
            Some(end) => Some(end),
            None => match bytes[at] {
                b'\n' => {
                    raw.push(start..at);
                    start = at + 1;
                    at += 1;
                    continue;
                }
                b'.' | b'!' | b'?' => {
                    let dot = at;
                    let mut j = at + 1;
                    while j < bytes.len() && matches!(bytes[j], b'.' | b'!' | b'?') {
                        j += 1;
                    }
                    while let Some(w) = starts_closing(text, j) {
                        j += w;
                    }
                    if bytes[dot] == b'.' && j == dot + 1 && period_continues(text, dot) {
                        None
                    } else {
                        Some(j)
                    }
                }
                _ => None,
            },
        };
        let Some(mut end) = end else {
            at += text[at..].chars().next().map_or(1, char::len_utf8);
            continue;
        };
        if end < bytes.len() && !text[end..].starts_with(char::is_whitespace) {
            at = end;
            continue;
        }
        // Markers right after the end, on the same line, are this sentence's.
        let mut k = end;
        loop {
            while k < bytes.len() && matches!(bytes[k], b' ' | b'\t') {
                k += 1;
            }
            match markers.iter().skip(mi).find(|m| m.range.start >= k) {
                Some(m) if m.range.start == k => {
                    // A link is the sentence's only when nothing but
                    // another marker follows it on the line.
                    let after = text[m.range.end..].trim_start_matches([' ', '\t']);
                    let trailing = m.kind == MarkerKind::Source
                        || after.is_empty()
                        || after.starts_with(['\n', '\r', '[']);
                    if !trailing {
                        break;
                    }
                    end = m.range.end;
                    k = end;
                }
                _ => break,
            }
        }
        raw.push(start..end);
        start = end;
        at = end;
    }
    raw.push(start..bytes.len());

    let mut out: Vec<Range<usize>> = Vec::new();
    for range in raw {
        let range = trimmed(text, range);
        if range.is_empty() {
            continue;
        }
        let only_markers = {
            let mut k = range.start;
            let mut any = false;
            let inside = within(markers, &range, |m| &m.range);
            for m in markers[inside].iter().filter(|m| m.range.end <= range.end) {
                if !text[k..m.range.start].trim().is_empty() {
                    break;
                }
                any = true;
                k = m.range.end;
            }
            any && text[k..range.end]
                .trim_matches(|c: char| c.is_whitespace() || c == '.' || c == ',')
                .is_empty()
        };
        match out.last_mut() {
            Some(last) if only_markers => last.end = range.end,
            _ => out.push(range),
        }
    }
    out
}

/// A number in text and the forms it may take in a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Number {
    /// The digits (with their separators and decimal point).
    pub range: Range<usize>,
    /// Canonical values: the number itself (`1,200` → `1200`, `3.50` →
    /// `3.5`) and, with a scale (`$1.2M`, `4 billion`), its full value.
    pub forms: Vec<String>,
}

/// Scale words after a number and the power of ten they stand for.
const SCALE_WORDS: &[(&str, u32)] = &[
    ("thousand", 3),
    ("million", 6),
    ("millions", 6),
    ("billion", 9),
    ("billions", 9),
    ("trillion", 12),
    ("bn", 9),
    ("mn", 6),
];

/// Suffixes a number may carry without becoming a word, with their scale.
const SUFFIXES: &[(&str, u32)] = &[
    ("%", 0),
    ("‰", 0),
    ("bn", 9),
    ("mn", 6),
    ("K", 3),
    ("k", 3),
    ("M", 6),
    ("B", 9),
    ("T", 12),
    ("x", 0),
    ("×", 0),
];

/// Currency and sign prefixes.
const PREFIXES: &[&str] = &["US$", "$", "€", "£", "¥", "₹", "+", "-", "−", "±", "~", "≈"];

/// The numbers in `text[range]`, skipping the `masks` (citation syntax).
///
/// Numbers are read per whitespace-separated word: a word with letters other
/// than a currency prefix or a scale or percent suffix (`v2`, `COVID-19`,
/// `3D`, `12th`, a UUID), a URL or an address holds no number; a list item
/// number at the start of a line (`1.`, `2)`) is not one either. Within a
/// word, `-`, `/`, `:` and similar separate numbers (ranges, dates, times).
pub fn numbers(text: &str, range: Range<usize>, masks: &[Range<usize>]) -> Vec<Number> {
    let bytes = text.as_bytes();
    let end = range.end.min(text.len());
    let mut out = Vec::new();
    let mut at = range.start;
    let mut mask = 0;
    // Only words holding a digit matter: jump from digit to digit.
    while let Some(offset) = bytes
        .get(at..end)
        .and_then(|rest| rest.iter().position(u8::is_ascii_digit))
    {
        let digit = at + offset;
        while masks.get(mask).is_some_and(|m| m.end <= digit) {
            mask += 1;
        }
        if let Some(m) = masks.get(mask).filter(|m| m.start <= digit) {
            at = m.end;
            continue;
        }
        let segment_start = mask
            .checked_sub(1)
            .map_or(range.start, |m| masks[m].end.max(range.start));
        let segment_end = masks.get(mask).map_or(end, |m| m.start.min(end));
        let word_start = text[segment_start..digit]
            .char_indices()
            .rev()
            .find(|(_, c)| c.is_whitespace())
            .map_or(segment_start, |(i, c)| segment_start + i + c.len_utf8());
        let word_end = text[digit..segment_end]
            .char_indices()
            .find(|(_, c)| c.is_whitespace())
            .map_or(segment_end, |(i, _)| digit + i);
        let next = short_word_after(text, word_end, segment_end);
        word_numbers(text, word_start..word_end, next, &mut out);
        at = word_end;
    }
    out
}

/// The word after `from` (within `to`) when it is short enough to be a
/// scale word.
fn short_word_after(text: &str, from: usize, to: usize) -> Option<&str> {
    let rest = text.get(from..to)?.trim_start();
    let mut len = rest.len();
    for (i, c) in rest.char_indices() {
        if c.is_whitespace() {
            len = i;
            break;
        }
        if i >= 16 {
            return None;
        }
    }
    Some(&rest[..len])
}

fn word_numbers(text: &str, word: Range<usize>, next: Option<&str>, out: &mut Vec<Number>) {
    let raw = &text[word.clone()];
    if !raw.bytes().any(|b| b.is_ascii_digit()) || raw.contains("://") || raw.contains('@') {
        return;
    }
    let lead = |c: char| {
        matches!(
            c,
            '(' | '[' | '{' | '"' | '\'' | '“' | '‘' | '*' | '_' | '`' | '<'
        )
    };
    let trail = |c: char| {
        matches!(
            c,
            '.' | ','
                | ';'
                | ':'
                | '!'
                | '?'
                | ')'
                | ']'
                | '}'
                | '"'
                | '\''
                | '”'
                | '’'
                | '*'
                | '_'
                | '`'
                | '>'
        )
    };
    let core = raw.trim_start_matches(lead);
    let mut start = word.start + (raw.len() - core.len());
    let core = core.trim_end_matches(trail);
    let list_item = raw.len() <= 4
        && (raw.ends_with('.') || raw.ends_with(')'))
        && core.bytes().all(|b| b.is_ascii_digit())
        && at_line_start(text, word.start);
    if core.is_empty() || list_item {
        return;
    }
    let mut body = core;
    // Most words start and end with a digit: no affix to look for.
    for _ in 0..2 {
        if body.starts_with(|c: char| c.is_ascii_digit()) {
            break;
        }
        if let Some(p) = PREFIXES.iter().find(|p| body.starts_with(*p)) {
            start += p.len();
            body = &body[p.len()..];
        }
    }
    let mut scale = 0;
    if let Some((suffix, power)) = SUFFIXES
        .iter()
        .filter(|_| !body.ends_with(|c: char| c.is_ascii_digit()))
        .find(|(s, _)| {
            body.strip_suffix(*s)
                .is_some_and(|b| b.ends_with(|c: char| c.is_ascii_digit()))
        })
    {
        body = &body[..body.len() - suffix.len()];
        scale = *power;
    }
    if body.chars().any(char::is_alphabetic) {
        return;
    }
    if scale == 0
        && let Some(next) = next
    {
        let next = next.trim_end_matches(trail);
        if let Some((_, power)) = SCALE_WORDS
            .iter()
            .find(|(w, _)| next.eq_ignore_ascii_case(w))
        {
            scale = *power;
        }
    }
    pieces(body, start, scale, out);
}

/// Reads the numbers of one word's body (no letters left) starting at
/// byte `base` of the string.
fn pieces(body: &str, base: usize, scale: u32, out: &mut Vec<Number>) {
    let b = body.as_bytes();
    let digit = |k: usize| b.get(k).is_some_and(u8::is_ascii_digit);
    let mut k = 0;
    while k < b.len() {
        if !digit(k) {
            k += 1;
            continue;
        }
        let start = k;
        while digit(k) {
            k += 1;
        }
        let mut int = body[start..k].to_string();
        if k - start <= 3 {
            // Thousands separators: `,` followed by exactly three digits.
            while b.get(k) == Some(&b',')
                && digit(k + 1)
                && digit(k + 2)
                && digit(k + 3)
                && !digit(k + 4)
            {
                int.push_str(&body[k + 1..k + 4]);
                k += 4;
            }
        }
        let mut frac = "";
        if b.get(k) == Some(&b'.') && digit(k + 1) {
            let f = k + 1;
            k += 1;
            while digit(k) {
                k += 1;
            }
            frac = &body[f..k];
        }
        let forms = if b.get(k) == Some(&b'.') && digit(k + 1) {
            // A version or a dotted date (`1.2.3`, `12.05.2023`): compared as written.
            while digit(k) || (b.get(k) == Some(&b'.') && digit(k + 1)) {
                k += 1;
            }
            vec![body[start..k].to_string()]
        } else {
            let mut forms = vec![canonical(&int, frac)];
            if scale > 0 {
                forms.push(scaled(&int, frac, scale));
            }
            forms
        };
        out.push(Number {
            range: base + start..base + k,
            forms,
        });
    }
}

/// `int.frac` without leading zeros in `int` or trailing zeros in `frac`.
pub fn canonical(int: &str, frac: &str) -> String {
    let int = int.trim_start_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        int.to_string()
    } else {
        format!("{int}.{frac}")
    }
}

/// `int.frac` times ten to the `power`, canonical.
fn scaled(int: &str, frac: &str, power: u32) -> String {
    let power = power as usize;
    if frac.len() <= power {
        let zeros = "0".repeat(power - frac.len());
        canonical(&format!("{int}{frac}{zeros}"), "")
    } else {
        canonical(&format!("{int}{}", &frac[..power]), &frac[power..])
    }
}

/// Appends `text` to `out` with whitespace runs collapsed to one space and
/// every quotation mark and apostrophe (straight or curly, single or
/// double) made `"`, the form quotations are compared in.
pub fn normalise_into(text: &str, out: &mut String) {
    let mut space = false;
    let mut started = false;
    // Runs of ordinary characters are copied whole.
    let mut run = 0;
    for (i, c) in text.char_indices() {
        let quote = matches!(c, '“' | '”' | '„' | '‟' | '‘' | '’' | '‚' | '‛' | '\'');
        if !c.is_whitespace() && !quote {
            if space && started {
                out.push(' ');
                run = i;
            }
            space = false;
            started = true;
            continue;
        }
        out.push_str(&text[run..i]);
        run = i + c.len_utf8();
        if c.is_whitespace() {
            space = true;
        } else {
            if space && started {
                out.push(' ');
            }
            space = false;
            started = true;
            // Nested quotations switch between double and single marks, and
            // apostrophes come straight or curly: all compare as one mark.
            out.push('"');
        }
    }
    if !space {
        out.push_str(&text[run..]);
    }
}

/// The fragments a quotation must match in order: its text split at
/// ellipses (`...`, `…`, `[…]`), normalised, without trailing punctuation.
pub fn quote_fragments(inner: &str) -> Vec<String> {
    let inner = inner
        .trim()
        .trim_end_matches(['.', ',', ';', ':', '!', '?']);
    inner
        .replace("[…]", "…")
        .replace("[...]", "…")
        .replace("...", "…")
        .split('…')
        .filter_map(|fragment| {
            let mut normal = String::new();
            normalise_into(fragment, &mut normal);
            (!normal.is_empty()).then_some(normal)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sentence_texts(text: &str) -> Vec<&str> {
        let q = quotes(text);
        let m = markers(text);
        sentences(text, &q, &m)
            .into_iter()
            .map(|r| &text[r])
            .collect()
    }

    fn number_forms(text: &str) -> Vec<String> {
        numbers(text, 0..text.len(), &[])
            .into_iter()
            .map(|n| n.forms.join("|"))
            .collect()
    }

    #[test]
    fn markers_in_their_forms() {
        let text = "a [source: x, y ] b [Source:z] [source:] [t](https://e.com/a) [u](ftp://x) [source: [n]]";
        let found = markers(text);
        let got: Vec<(&str, Vec<&str>)> = found
            .iter()
            .map(|m| {
                (
                    &text[m.range.clone()],
                    m.targets.iter().map(|t| &text[t.clone()]).collect(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("[source: x, y ]", vec!["x", "y"]),
                ("[Source:z]", vec!["z"]),
                ("[source:]", vec![]),
                ("[t](https://e.com/a)", vec!["https://e.com/a"]),
            ]
        );
        assert!(markers("ends with [source:").is_empty());
        assert!(markers("[source: x\n]").is_empty());
    }

    #[test]
    fn sentences_split_at_ends_not_decimals_or_abbreviations() {
        assert_eq!(
            sentence_texts(
                "Growth was 3.5 percent, e.g. in Q3. Then it fell! Why? Dr. Smith knows\nNew line"
            ),
            [
                "Growth was 3.5 percent, e.g. in Q3.",
                "Then it fell!",
                "Why?",
                "Dr. Smith knows",
                "New line"
            ]
        );
        assert_eq!(
            sentence_texts("It grew 12%. [source: a] [source: b] Costs fell. [x](http://h/) more"),
            [
                "It grew 12%. [source: a] [source: b]",
                "Costs fell.",
                "[x](http://h/) more"
            ]
        );
        assert_eq!(
            sentence_texts("It grew 12%.\n\n[source: a]\nNext."),
            ["It grew 12%.\n\n[source: a]", "Next."]
        );
        assert_eq!(
            sentence_texts("He said “We grew. We hired.” Then left."),
            ["He said “We grew. We hired.”", "Then left."]
        );
        assert_eq!(
            sentence_texts("1. First item\n2. Second"),
            ["1. First item", "2. Second"]
        );
    }

    #[test]
    fn quotations_close_on_their_line() {
        let text = "“one two three” and \"four\" and ‘it’s fine here’ and “open\n”";
        let got: Vec<&str> = quotes(text)
            .iter()
            .map(|q| &text[q.inner.clone()])
            .collect();
        assert_eq!(got, ["one two three", "four", "it’s fine here"]);
    }

    #[test]
    fn numbers_and_their_forms() {
        assert_eq!(
            number_forms("1,200 units, 3.50%, $1.2M and 4 billion"),
            ["1200", "3.5", "1.2|1200000", "4|4000000000"]
        );
        assert_eq!(
            number_forms("v2 COVID-19 3D 12th 550e8400 http://h:8080/x a@b1.c"),
            Vec::<String>::new()
        );
        assert_eq!(
            number_forms("2024-03-05 at 10:30, ranges 10–15%"),
            ["2024", "3", "5", "10", "30", "10", "15"]
        );
        assert_eq!(number_forms("version 1.2.3 and 1,2"), ["1.2.3", "1", "2"]);
        assert_eq!(number_forms("1. Item\n2) Item 7."), ["7"]);
        assert_eq!(
            number_forms("€0.5bn, (007) and 12.0"),
            ["0.5|500000000", "7", "12"]
        );
    }

    #[test]
    fn fragments_split_at_ellipses() {
        assert_eq!(
            quote_fragments(" We  grew … strongly in “Q3”. "),
            ["We grew", "strongly in \"Q3\""]
        );
    }
}
