//! Finding personal data in one string.
//!
//! Each kind has a small ASCII regex (compiled once per instance) that finds
//! candidates; code then checks boundaries, context and check digits. Byte
//! regexes (`regex::bytes`) are used so every offset is a UTF-8 byte offset
//! into the original string and non-ASCII bytes simply never match.

use std::sync::OnceLock;

use regex::bytes::{Regex, RegexBuilder};

use crate::checks;

/// What was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Email,
    Phone,
    PaymentCard,
    Iban,
    IpAddress,
    UsSsn,
    UkNino,
    NlBsn,
    EsDni,
    ItCodiceFiscale,
    FrNir,
    SePersonnummer,
    DeSteuerId,
    InAadhaar,
}

impl Kind {
    /// Every kind, in a stable order.
    pub const ALL: [Kind; 14] = [
        Kind::Email,
        Kind::Phone,
        Kind::PaymentCard,
        Kind::Iban,
        Kind::IpAddress,
        Kind::UsSsn,
        Kind::UkNino,
        Kind::NlBsn,
        Kind::EsDni,
        Kind::ItCodiceFiscale,
        Kind::FrNir,
        Kind::SePersonnummer,
        Kind::DeSteuerId,
        Kind::InAadhaar,
    ];

    /// The finding's `kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Email => "email",
            Kind::Phone => "phone",
            Kind::PaymentCard => "payment-card",
            Kind::Iban => "iban",
            Kind::IpAddress => "ip-address",
            Kind::UsSsn => "us-ssn",
            Kind::UkNino => "uk-nino",
            Kind::NlBsn => "nl-bsn",
            Kind::EsDni => "es-dni",
            Kind::ItCodiceFiscale => "it-codice-fiscale",
            Kind::FrNir => "fr-nir",
            Kind::SePersonnummer => "se-personnummer",
            Kind::DeSteuerId => "de-steuer-id",
            Kind::InAadhaar => "in-aadhaar",
        }
    }

    /// The kind for a `kind` string.
    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// What people call it, for the finding's message.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::Email => "email address",
            Kind::Phone => "phone number",
            Kind::PaymentCard => "payment card number",
            Kind::Iban => "IBAN (bank account)",
            Kind::IpAddress => "IP address",
            Kind::UsSsn => "US Social Security number",
            Kind::UkNino => "UK National Insurance number",
            Kind::NlBsn => "Dutch citizen service number (BSN)",
            Kind::EsDni => "Spanish DNI/NIE",
            Kind::ItCodiceFiscale => "Italian codice fiscale",
            Kind::FrNir => "French social security number (NIR)",
            Kind::SePersonnummer => "Swedish personnummer",
            Kind::DeSteuerId => "German tax identification number",
            Kind::InAadhaar => "Indian Aadhaar number",
        }
    }
}

/// How much a finding matters (mirrors the WIT `severity`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Info,
    Low,
    Medium,
    High,
}

/// One match in a string: `text[start..end]` (bytes, end exclusive).
#[derive(Clone, Debug, PartialEq)]
pub struct Match {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
    pub score: f32,
    pub level: Level,
    /// A qualifier for the message, e.g. the card network or "a published
    /// test number". Never derived from the matched text beyond its class.
    pub note: Option<&'static str>,
}

struct Patterns {
    email: Regex,
    phone_intl: TokenRegex,
    phone_nanp: TokenRegex,
    phone_national: TokenRegex,
    card: TokenRegex,
    iban: TokenRegex,
    ipv4: TokenRegex,
    ipv6: Regex,
    ssn: TokenRegex,
    nino: TokenRegex,
    dni: TokenRegex,
    codice_fiscale: TokenRegex,
    nir: Regex,
    personnummer: TokenRegex,
    steuer_id: TokenRegex,
    aadhaar: TokenRegex,
    bsn_dotted: TokenRegex,
    digit_run: TokenRegex,
}

fn ascii(pattern: &str) -> Regex {
    RegexBuilder::new(pattern)
        .unicode(false)
        .build()
        .expect("built-in pattern compiles")
}

/// A fully compiled DFA (forward and reverse) for searches in short token
/// windows: no cache to fetch per search, which dominates on 20-byte
/// haystacks. (`nir` stays a lazy `Regex`: its many optional spaces make
/// the full DFA 2.6 MB and 80 ms to build, and it runs only on windows with
/// 13 digits.)
type TokenRegex = regex_automata::dfa::regex::Regex;

fn token(pattern: &str) -> TokenRegex {
    use regex_automata::{nfa::thompson, util::syntax};
    regex_automata::dfa::regex::Builder::new()
        .syntax(syntax::Config::new().unicode(false).utf8(false))
        .thompson(thompson::Config::new().utf8(false))
        .build(pattern)
        .expect("built-in pattern compiles")
}

/// A pattern searched for within token windows.
trait WindowSearch {
    /// Calls `found` with each match's byte range in `haystack`, leftmost first.
    fn each_match(&self, haystack: &[u8], found: impl FnMut(usize, usize));
}

impl WindowSearch for TokenRegex {
    fn each_match(&self, haystack: &[u8], mut found: impl FnMut(usize, usize)) {
        for m in self.find_iter(haystack) {
            found(m.start(), m.end());
        }
    }
}

impl WindowSearch for Regex {
    fn each_match(&self, haystack: &[u8], mut found: impl FnMut(usize, usize)) {
        for m in self.find_iter(haystack) {
            found(m.start(), m.end());
        }
    }
}

fn patterns() -> &'static Patterns {
    static PATTERNS: OnceLock<Patterns> = OnceLock::new();
    PATTERNS.get_or_init(|| Patterns {
        email: ascii(
            r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)+",
        ),
        phone_intl: token(
            r"(?:\+|00)[1-9][0-9]{0,2}(?:[ .\-]?\([0-9]{1,4}\)|[ .\-]?[0-9]{1,5}){1,6}",
        ),
        phone_nanp: token(
            r"(?:\([2-9][0-9]{2}\) ?|[2-9][0-9]{2}[ .\-])[2-9][0-9]{2}[ .\-][0-9]{4}",
        ),
        phone_national: token(
            r"(?:\(0[0-9]{1,4}\)|0[0-9]{1,4})(?: ?/ ?|[ .\-/])[0-9]{2,8}(?:[ .\-/][0-9]{2,8}){0,3}",
        ),
        card: token(r"[0-9](?:[ \-]?[0-9]){11,18}"),
        iban: token(r"[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}"),
        ipv4: token(r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}"),
        ipv6: ascii(r"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}"),
        ssn: token(r"[0-9]{3}[ \-][0-9]{2}[ \-][0-9]{4}"),
        nino: token(r"[A-Z]{2} ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-D]"),
        dni: token(r"(?:[0-9]{8}|[XYZ][0-9]{7})-?[A-Z]"),
        codice_fiscale: token(
            r"[A-Z]{6}[0-9LMNPQRSTUV]{2}[ABCDEHLMPRST][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z]",
        ),
        nir: ascii(
            r"[12378] ?[0-9]{2} ?[0-9]{2} ?(?:[0-9]{2}|2[AB]) ?[0-9]{3} ?[0-9]{3} ?[0-9]{2}",
        ),
        personnummer: token(r"(?:19|20)?[0-9]{6}[\-+][0-9]{4}"),
        steuer_id: token(r"[1-9][0-9] [0-9]{3} [0-9]{3} [0-9]{3}"),
        aadhaar: token(r"[2-9][0-9]{3}[ \-][0-9]{4}[ \-][0-9]{4}"),
        bsn_dotted: token(r"[0-9]{4}\.[0-9]{2}\.[0-9]{3}"),
        digit_run: token(r"[0-9]{9,13}"),
    })
}

/// Cheap facts about a string, gathered in one pass, that decide which
/// detectors can possibly match.
#[derive(Default)]
struct Shape {
    digits: usize,
    upper: usize,
    at: bool,
    dots: bool,
    colons: usize,
}

impl Shape {
    fn of(text: &[u8]) -> Shape {
        let mut shape = Shape::default();
        for &b in text {
            match b {
                b'0'..=b'9' => shape.digits += 1,
                b'A'..=b'Z' => shape.upper += 1,
                b'@' => shape.at = true,
                b'.' => shape.dots = true,
                b':' => shape.colons += 1,
                _ => {}
            }
        }
        shape
    }
}

/// A stretch of the string holding one number-shaped token: digits and
/// upper-case letters joined by at most [`MAX_JOINER`] separators from
/// `[ -+./()]` (`+44 (0)20 7946 0958`, `DE89 3704 0044 …`, `AB 12 34 56 C`,
/// `RSSMRA85T10A562S`), widened by [`MARGIN`] bytes on each side. Every
/// identifier except emails and IPv6 addresses lies inside one, so the
/// number-shaped patterns search these windows, each only where the token
/// has as many digits as the pattern needs, and not the whole string.
struct Window {
    start: usize,
    end: usize,
    digits: usize,
    /// Upper-case letters: IBANs and most national ids need some.
    upper: usize,
}

const MAX_JOINER: usize = 3;
const MARGIN: usize = 2;
/// The fewest digits any windowed pattern needs (`1.2.3.4`).
const MIN_WINDOW_DIGITS: usize = 4;

fn windows(text: &[u8]) -> Vec<Window> {
    let token = |b: u8| b.is_ascii_digit() || b.is_ascii_uppercase();
    let joiner = |b: u8| matches!(b, b' ' | b'-' | b'+' | b'.' | b'/' | b'(' | b')');
    let mut out: Vec<Window> = Vec::new();
    let mut i = 0;
    while i < text.len() {
        if !token(text[i]) {
            i += 1;
            continue;
        }
        let start = i;
        let (mut digits, mut upper) = (0, 0);
        let end = loop {
            while i < text.len() && token(text[i]) {
                if text[i].is_ascii_digit() {
                    digits += 1;
                } else {
                    upper += 1;
                }
                i += 1;
            }
            let mut j = i;
            while j < text.len() && j - i < MAX_JOINER && joiner(text[j]) {
                j += 1;
            }
            if j > i && j < text.len() && token(text[j]) {
                i = j;
            } else {
                break i;
            }
        };
        if digits < MIN_WINDOW_DIGITS {
            continue;
        }
        let start = start.saturating_sub(MARGIN);
        let end = (end + MARGIN).min(text.len());
        out.push(Window {
            start,
            end,
            digits,
            upper,
        });
    }
    out
}

/// Matches of `re` (as byte ranges of `text`) inside the windows holding at
/// least `min_digits` digits.
fn finds(
    re: &impl WindowSearch,
    text: &[u8],
    windows: &[Window],
    min_digits: usize,
) -> Vec<(usize, usize)> {
    finds_upper(re, text, windows, min_digits, 0)
}

/// [`finds`] in windows that also hold at least `min_upper` upper-case letters.
fn finds_upper(
    re: &impl WindowSearch,
    text: &[u8],
    windows: &[Window],
    min_digits: usize,
    min_upper: usize,
) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for w in windows
        .iter()
        .filter(|w| w.digits >= min_digits && w.upper >= min_upper)
    {
        re.each_match(&text[w.start..w.end], |start, end| {
            out.push((w.start + start, w.start + end));
        });
    }
    out
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Nothing glued to the left of `start`: not a word character, and not a
/// joiner (`-`, `.`, `/`) that itself follows a word character.
fn clean_left(text: &[u8], start: usize) -> bool {
    match start.checked_sub(1).map(|i| text[i]) {
        None => true,
        Some(b) if is_word(b) => false,
        Some(b'-' | b'.' | b'/') => start < 2 || !is_word(text[start - 2]),
        Some(_) => true,
    }
}

/// Nothing glued to the right of `end` (the mirror of [`clean_left`]).
fn clean_right(text: &[u8], end: usize) -> bool {
    match text.get(end) {
        None => true,
        Some(&b) if is_word(b) => false,
        Some(b'-' | b'.' | b'/') => text.get(end + 1).is_none_or(|&b| !is_word(b)),
        Some(_) => true,
    }
}

fn clean(text: &[u8], start: usize, end: usize) -> bool {
    clean_left(text, start) && clean_right(text, end)
}

fn is_group_separator(b: u8) -> bool {
    matches!(b, b' ' | b'-' | b'.' | b'/')
}

/// [`clean`], and not one more group of a longer digit sequence on either
/// side (`2 55 08 14 …` does not contain the phone number `08 14 …`).
fn isolated(text: &[u8], start: usize, end: usize) -> bool {
    let more_left =
        start >= 2 && is_group_separator(text[start - 1]) && text[start - 2].is_ascii_digit();
    let more_right = text.get(end).is_some_and(|&b| is_group_separator(b))
        && text.get(end + 1).is_some_and(u8::is_ascii_digit);
    clean(text, start, end) && !more_left && !more_right
}

fn alnum_upper(bytes: &[u8]) -> Vec<u8> {
    bytes
        .iter()
        .filter(|b| b.is_ascii_alphanumeric())
        .map(u8::to_ascii_uppercase)
        .collect()
}

fn digits_of(bytes: &[u8]) -> Vec<u8> {
    bytes.iter().copied().filter(u8::is_ascii_digit).collect()
}

/// Whether one of `words` starts a word (ASCII case-insensitively) in the
/// `window` bytes before `start`: `ver ` is in `ver 1.2`, not in `resolver `.
fn preceded_by(text: &[u8], start: usize, window: usize, words: &[&str]) -> bool {
    const MAX: usize = 64;
    let from = start.saturating_sub(window.min(MAX));
    let before = &text[from..start];
    let mut lower = [0u8; MAX];
    for (l, b) in lower.iter_mut().zip(before) {
        *l = b.to_ascii_lowercase();
    }
    let hay = &lower[..before.len()];
    let mut previous = from.checked_sub(1).map(|j| text[j]);
    for (i, &b) in hay.iter().enumerate() {
        let word_start = !previous.is_some_and(|b| b.is_ascii_alphabetic());
        previous = Some(b);
        if word_start
            && words.iter().any(|w| {
                let w = w.as_bytes();
                w[0] == b && hay[i..].starts_with(w)
            })
        {
            return true;
        }
    }
    false
}

/// Words that make a nearby number a reference rather than personal data.
const REFERENCE_WORDS: &[&str] = &[
    "order",
    "invoice",
    "tracking",
    "sku",
    "part no",
    "part number",
    "p/n",
    "serial",
    "model",
    "item",
    "ticket",
    "isbn",
    "catalog",
    "product code",
    "ref",
    "build",
    "version",
    "release",
];

const CARD_WORDS: &[&str] = &[
    "card", "visa", "master", "amex", "credit", "debit", "pan", "cc",
];
const PHONE_WORDS: &[&str] = &[
    "phone", "tel", "mobile", "cell", "call", "fax", "whatsapp", "sms", "handy", "portable",
    "contact",
];

/// Every match in `text`, ordered by start, not overlapping: where two
/// detectors claim overlapping bytes the higher score (then the longer
/// match) wins.
pub fn scan(text: &str) -> Vec<Match> {
    let bytes = text.as_bytes();
    let shape = Shape::of(bytes);
    let p = patterns();
    let mut found = Vec::new();
    if shape.at {
        emails(p, bytes, &mut found);
    }
    if shape.colons >= 2 {
        ipv6(p, bytes, &mut found);
    }
    if shape.digits < MIN_WINDOW_DIGITS {
        return resolve(found);
    }
    let w = windows(bytes);
    cards(p, bytes, &w, &mut found);
    phones(p, bytes, &w, &mut found);
    if shape.upper >= 2 {
        ibans(p, bytes, &w, &mut found);
    }
    if shape.dots {
        ipv4(p, bytes, &w, &mut found);
    }
    national_ids(p, bytes, &shape, &w, &mut found);
    resolve(found)
}

fn resolve(mut found: Vec<Match>) -> Vec<Match> {
    // Overlaps only happen between neighbours: sort by position, split into
    // runs of overlapping matches, and settle each run on its own.
    found.sort_by_key(|m| (m.start, std::cmp::Reverse(m.end)));
    let mut kept: Vec<Match> = Vec::with_capacity(found.len());
    let mut rest = found.as_slice();
    while let Some(first) = rest.first() {
        let mut reach = first.end;
        let len = 1 + rest[1..]
            .iter()
            .take_while(|m| {
                let overlaps = m.start < reach;
                reach = reach.max(m.end);
                overlaps
            })
            .count();
        let (run, tail) = rest.split_at(len);
        rest = tail;
        if let [only] = run {
            kept.push(only.clone());
            continue;
        }
        let mut run = run.to_vec();
        run.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then((b.end - b.start).cmp(&(a.end - a.start)))
                .then(a.start.cmp(&b.start))
        });
        let at = kept.len();
        for m in run {
            if kept[at..]
                .iter()
                .all(|k| m.end <= k.start || k.end <= m.start)
            {
                kept.push(m);
            }
        }
        kept[at..].sort_by_key(|m| m.start);
    }
    kept
}

fn push(
    out: &mut Vec<Match>,
    kind: Kind,
    start: usize,
    end: usize,
    score: f32,
    level: Level,
    note: Option<&'static str>,
) {
    out.push(Match {
        kind,
        start,
        end,
        score,
        level,
        note,
    });
}

/// File extensions that look like top-level domains in `icon@2x.png`.
const FILE_EXTENSIONS: &[&str] = &[
    "png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "bmp", "tif", "tiff", "js", "mjs", "cjs",
    "ts", "tsx", "jsx", "css", "scss", "json", "yaml", "yml", "toml", "lock", "txt", "html", "htm",
    "xml", "wasm", "exe", "dll", "so", "dylib", "map", "min",
];

fn emails(p: &Patterns, text: &[u8], out: &mut Vec<Match>) {
    for m in p.email.find_iter(text) {
        let (mut start, end) = (m.start(), m.end());
        let Some(at) = text[start..end].iter().position(|&b| b == b'@') else {
            continue;
        };
        let at = start + at;
        // A local part cannot start with a dot; `..` and a trailing dot are invalid.
        while start < at && text[start] == b'.' {
            start += 1;
        }
        let local = &text[start..at];
        if local.is_empty() || local.ends_with(b".") || local.windows(2).any(|w| w == b"..") {
            continue;
        }
        let domain = &text[at + 1..end];
        let tld = domain.rsplit(|&b| b == b'.').next().unwrap_or_default();
        let tld_ok = (2..=24).contains(&tld.len()) && tld.iter().all(u8::is_ascii_alphabetic)
            || tld.starts_with(b"xn--");
        if !tld_ok {
            continue;
        }
        let tld_lower = tld.to_ascii_lowercase();
        if FILE_EXTENSIONS.iter().any(|e| e.as_bytes() == tld_lower) {
            continue;
        }
        // `git@github.com:org/repo.git` is an SSH remote, not a mailbox.
        if text.get(end) == Some(&b':') && text.get(end + 1).is_some_and(|&b| is_word(b)) {
            continue;
        }
        if text.get(end).is_some_and(|&b| b == b'@') {
            continue;
        }
        push(out, Kind::Email, start, end, 0.9, Level::Medium, None);
    }
}

/// The separators of a candidate and the digit groups between them.
fn groups(candidate: &[u8]) -> (Vec<u8>, Vec<(usize, usize)>) {
    let mut seps = Vec::new();
    let mut spans = Vec::new();
    let mut group_start = 0;
    for (i, &b) in candidate.iter().enumerate() {
        if !b.is_ascii_digit() {
            seps.push(b);
            spans.push((group_start, i));
            group_start = i + 1;
        }
    }
    spans.push((group_start, candidate.len()));
    (seps, spans)
}

/// Group layouts people write card numbers in: 4-4-4-4 (and 4-4-4-4-3 for
/// 19 digits), 4-6-5 (Amex), 4-6-4 (Diners), 4-4-4-1..3 (13 to 15 digits).
fn card_layout(lens: &[usize]) -> bool {
    matches!(
        lens,
        [4, 6, 5] | [4, 6, 4] | [4, 4, 4, 4] | [4, 4, 4, 4, 1..=3] | [4, 4, 4, 1..=3]
    )
}

fn cards(p: &Patterns, text: &[u8], w: &[Window], out: &mut Vec<Match>) {
    for (start, end) in finds(&p.card, text, w, 12) {
        if !clean_left(text, start) {
            continue;
        }
        let mut candidate = &text[start..end];
        // The regex stops after 19 digits: a digit right after means a longer number.
        let mut cut = text.get(end).is_some_and(u8::is_ascii_digit);
        // One kind of separator: `4539-1488-0343-6467 12/29` ends before the space.
        if let Some(first) = candidate.iter().position(|b| !b.is_ascii_digit()) {
            let sep = candidate[first];
            if let Some(other) = candidate
                .iter()
                .position(|&b| !b.is_ascii_digit() && b != sep)
            {
                candidate = &candidate[..other];
                cut = false;
            }
        }
        let (seps, spans) = groups(candidate);
        let lens: Vec<usize> = spans.iter().map(|&(a, b)| b - a).collect();
        // The whole candidate, or (written in groups) a standard layout followed
        // by something that is not another group of four, such as an expiry date.
        let ends: Vec<usize> = if seps.is_empty() {
            vec![1]
        } else {
            (1..=lens.len())
                .rev()
                .filter(|&k| card_layout(&lens[..k]))
                .collect()
        };
        for k in ends {
            let end = start + spans[k - 1].1;
            if k == lens.len() {
                if cut || !clean_right(text, end) {
                    continue;
                }
            } else if lens[k] == 4 || (k + 1 == lens.len() && cut) {
                continue;
            }
            let digits = digits_of(&text[start..end]);
            if !(12..=19).contains(&digits.len()) || !checks::luhn(&digits) {
                continue;
            }
            let Some(network) = checks::card_network(&digits) else {
                continue;
            };
            if preceded_by(text, start, 24, REFERENCE_WORDS)
                && !preceded_by(text, start, 24, CARD_WORDS)
            {
                break;
            }
            let test = checks::TEST_CARDS
                .iter()
                .any(|c| c.as_bytes() == digits.as_slice());
            if test {
                let note = Some("a published test number");
                push(out, Kind::PaymentCard, start, end, 0.3, Level::Low, note);
            } else {
                push(
                    out,
                    Kind::PaymentCard,
                    start,
                    end,
                    0.95,
                    Level::High,
                    Some(network),
                );
            }
            break;
        }
    }
}

/// Whether the digits of an international number (after `+`) start with an
/// assigned country code: NANP (`1`, then area and exchange starting 2–9,
/// eleven digits), Russia and Kazakhstan (`7`, eleven digits), a two-digit
/// code, or a prefix of three-digit codes (ITU-T E.164 assignments).
fn country_code(digits: &[u8]) -> bool {
    const TWO: &[u8] = &[
        20, 27, 30, 31, 32, 33, 34, 36, 39, 40, 41, 43, 44, 45, 46, 47, 48, 49, 51, 52, 53, 54, 55,
        56, 57, 58, 60, 61, 62, 63, 64, 65, 66, 81, 82, 84, 86, 90, 91, 92, 93, 94, 95, 98,
    ];
    const THREE: &[u8] = &[
        21, 22, 23, 24, 25, 26, 29, 35, 37, 38, 42, 50, 59, 67, 68, 69, 80, 85, 87, 88, 96, 97, 99,
    ];
    match digits {
        [b'1', rest @ ..] => rest.len() == 10 && rest[0] >= b'2' && rest[3] >= b'2',
        [b'7', rest @ ..] => rest.len() == 10,
        [a, b, ..] => {
            let two = (a - b'0') * 10 + (b - b'0');
            TWO.contains(&two) || THREE.contains(&two)
        }
        _ => false,
    }
}

fn phones(p: &Patterns, text: &[u8], w: &[Window], out: &mut Vec<Match>) {
    let reference = |start: usize| {
        preceded_by(text, start, 24, REFERENCE_WORDS) && !preceded_by(text, start, 24, PHONE_WORDS)
    };
    // `+44 20 7946 0958`, or with the international prefix `0044 20 7946 0958`.
    for (start, end) in finds(&p.phone_intl, text, w, 8) {
        let plus = text[start] == b'+';
        let glued = if plus {
            start > 0 && (is_word(text[start - 1]) || text[start - 1] == b'+')
        } else {
            !clean_left(text, start)
                || start >= 2
                    && is_group_separator(text[start - 1])
                    && text[start - 2].is_ascii_digit()
        };
        if glued || !clean_right(text, end) || text.get(end) == Some(&b'(') {
            continue;
        }
        let mut digits = digits_of(&text[start..end]);
        if !plus {
            digits.drain(..2);
        }
        if !(8..=15).contains(&digits.len()) || !country_code(&digits) || reference(start) {
            continue;
        }
        push(out, Kind::Phone, start, end, 0.85, Level::Medium, None);
    }
    for (start, end) in finds(&p.phone_nanp, text, w, 10) {
        // A trunk prefix `1-`, `1 ` or `1.` belongs to the number.
        let start = if start >= 2
            && text[start - 2] == b'1'
            && matches!(text[start - 1], b' ' | b'-' | b'.')
            && clean_left(text, start - 2)
        {
            start - 2
        } else {
            start
        };
        if !isolated(text, start, end) {
            continue;
        }
        let candidate = &text[start..end];
        // Without parentheses the separators must agree: 415-555-2671, 415.555.2671.
        if !candidate.contains(&b'(') {
            let seps: Vec<u8> = candidate
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_digit())
                .collect();
            if seps.iter().any(|&s| s != seps[seps.len() - 1]) {
                continue;
            }
        }
        // Area codes N11 are service codes, not numbers.
        let digits = digits_of(candidate);
        let area = &digits[digits.len() - 10..digits.len() - 7];
        if area[1..] == *b"11" || reference(start) {
            continue;
        }
        // `200 300 4000` in a table is three numbers unless something says phone.
        let spaced = !candidate.contains(&b'(') && candidate[candidate.len() - 5] == b' ';
        if spaced && !preceded_by(text, start, 32, PHONE_WORDS) {
            continue;
        }
        push(out, Kind::Phone, start, end, 0.8, Level::Medium, None);
    }
    for (start, end) in finds(&p.phone_national, text, w, 10) {
        if !isolated(text, start, end) {
            continue;
        }
        let candidate = &text[start..end];
        let digits = digits_of(candidate);
        // `00` starts an international number, never a national one.
        if !(10..=12).contains(&digits.len()) || digits.starts_with(b"00") {
            continue;
        }
        // After the area code one kind of single separator: 01 23 45 67 89,
        // (020) 7946 0958, 089 / 12 34 56 78.
        let runs: Vec<&[u8]> = candidate
            .split(u8::is_ascii_digit)
            .filter(|r| !r.is_empty() && *r != b"(")
            .collect();
        if runs.len() > 1 && runs[1..].iter().any(|r| r.len() != 1 || *r != runs[1]) {
            continue;
        }
        if reference(start) {
            continue;
        }
        push(out, Kind::Phone, start, end, 0.75, Level::Medium, None);
    }
}

fn ibans(p: &Patterns, text: &[u8], w: &[Window], out: &mut Vec<Match>) {
    for (start, end) in finds_upper(&p.iban, text, w, 8, 2) {
        if !clean_left(text, start) {
            continue;
        }
        let candidate = &text[start..end];
        let Some(len) = checks::iban_length(&candidate[..2]) else {
            continue;
        };
        // Take exactly `len` characters; spaces only between groups of four.
        let mut compact = Vec::with_capacity(len);
        let mut end = start;
        let mut spaced_ok = true;
        for (i, &b) in candidate.iter().enumerate() {
            if compact.len() == len {
                break;
            }
            if b == b' ' {
                if compact.len() % 4 != 0 {
                    spaced_ok = false;
                    break;
                }
                continue;
            }
            compact.push(b);
            end = start + i + 1;
        }
        if !spaced_ok || compact.len() != len || !clean_right(text, end) {
            continue;
        }
        if checks::iban(&compact) {
            push(out, Kind::Iban, start, end, 0.95, Level::High, None);
        }
    }
}

/// Words after which a dotted quad is a version or a section number.
const VERSION_WORDS: &[&str] = &[
    "version",
    "ver.",
    "ver ",
    "release",
    "build",
    "firmware",
    "rev",
    "sdk",
    "oid",
    "update",
    "patch",
    "section",
    "chapter",
    "§",
    "clause",
    "figure",
    "fig.",
    "table",
    "step",
    "paragraph",
    "art.",
];

fn ipv4(p: &Patterns, text: &[u8], w: &[Window], out: &mut Vec<Match>) {
    for (start, end) in finds(&p.ipv4, text, w, 4) {
        // Not inside a longer dotted run (OIDs, five-part versions) or a word.
        if start > 0 && (is_word(text[start - 1]) || text[start - 1] == b'.') {
            continue;
        }
        match text.get(end) {
            Some(&b) if is_word(b) => continue,
            Some(b'.' | b'-' | b'+') if text.get(end + 1).is_some_and(|&b| is_word(b)) => continue,
            _ => {}
        }
        let octets: Vec<&[u8]> = text[start..end].split(|&b| b == b'.').collect();
        let mut values = [0u16; 4];
        let mut ok = true;
        for (v, o) in values.iter_mut().zip(&octets) {
            if o.len() > 1 && o[0] == b'0' {
                ok = false;
            }
            *v = o.iter().fold(0u16, |a, d| a * 10 + u16::from(d - b'0'));
            if *v > 255 {
                ok = false;
            }
        }
        if !ok || preceded_by(text, start, 16, VERSION_WORDS) {
            continue;
        }
        let [a, b, c, _] = values;
        // Unspecified, loopback, broadcast and netmasks carry nobody's identity.
        if a == 0 || a == 127 || a == 255 {
            continue;
        }
        let documentation =
            (a, b, c) == (192, 0, 2) || (a, b, c) == (198, 51, 100) || (a, b, c) == (203, 0, 113);
        let private = a == 10
            || (a == 172 && (16..=31).contains(&b))
            || (a == 192 && b == 168)
            || (a == 169 && b == 254)
            || (a == 100 && (64..=127).contains(&b));
        let (score, level, note) = if documentation {
            (0.3, Level::Info, Some("a documentation address"))
        } else if private {
            (0.5, Level::Low, Some("a private address"))
        } else {
            (0.8, Level::Medium, None)
        };
        push(out, Kind::IpAddress, start, end, score, level, note);
    }
}

fn ipv6(p: &Patterns, text: &[u8], out: &mut Vec<Match>) {
    for m in p.ipv6.find_iter(text) {
        let (start, end) = (m.start(), m.end());
        let candidate = &text[start..end];
        if candidate.len() < 3 || !candidate.iter().any(u8::is_ascii_digit) {
            continue;
        }
        let glued = |b: u8| is_word(b) || b == b':' || b == b'.';
        if start > 0 && glued(text[start - 1]) || text.get(end).is_some_and(|&b| glued(b)) {
            continue;
        }
        let groups = candidate
            .split(|&b| b == b':')
            .filter(|g| !g.is_empty())
            .count();
        if groups < 3 {
            continue;
        }
        let Ok(s) = std::str::from_utf8(candidate) else {
            continue;
        };
        let Ok(addr) = s.parse::<std::net::Ipv6Addr>() else {
            continue;
        };
        if addr.is_loopback() || addr.is_unspecified() {
            continue;
        }
        let seg = addr.segments();
        let documentation = seg[0] == 0x2001 && seg[1] == 0x0db8;
        let local = seg[0] & 0xfe00 == 0xfc00 || seg[0] & 0xffc0 == 0xfe80;
        let (score, level, note) = if documentation {
            (0.3, Level::Info, Some("a documentation address"))
        } else if local {
            (0.5, Level::Low, Some("a private address"))
        } else {
            (0.8, Level::Medium, None)
        };
        push(out, Kind::IpAddress, start, end, score, level, note);
    }
}

const SSN_WORDS: &[&str] = &["ssn", "social security", "ss#", "ss #"];
const BSN_WORDS: &[&str] = &["bsn", "burgerservicenummer", "sofinummer", "sofi-nummer"];
const STEUER_WORDS: &[&str] = &[
    "steuer",
    "idnr",
    "id-nr",
    "identifikationsnummer",
    "tax id",
    "tin",
];
const AADHAAR_WORDS: &[&str] = &["aadhaar", "aadhar", "uidai", "uid"];
const PERSONNUMMER_WORDS: &[&str] = &["personnummer", "personnr", "samordningsnummer"];

fn national_ids(p: &Patterns, text: &[u8], shape: &Shape, w: &[Window], out: &mut Vec<Match>) {
    if shape.digits >= 9 {
        for (start, end) in finds(&p.ssn, text, w, 9) {
            let candidate = &text[start..end];
            if !isolated(text, start, end) || candidate[3] != candidate[6] {
                continue;
            }
            if candidate[3] == b' ' && !preceded_by(text, start, 32, SSN_WORDS) {
                continue;
            }
            if checks::us_ssn(&digits_of(candidate)) {
                push(out, Kind::UsSsn, start, end, 0.85, Level::High, None);
            }
        }
    }
    if shape.upper >= 3 {
        for (start, end) in finds_upper(&p.nino, text, w, 6, 3) {
            let candidate = &text[start..end];
            let spaces = candidate.iter().filter(|&&b| b == b' ').count();
            if !clean(text, start, end) || !(spaces == 0 || spaces == 4) {
                continue;
            }
            if checks::uk_nino(&alnum_upper(candidate)) {
                push(out, Kind::UkNino, start, end, 0.85, Level::High, None);
            }
        }
    }
    if shape.digits >= 7 && shape.upper >= 1 {
        for (start, end) in finds_upper(&p.dni, text, w, 7, 1) {
            if clean(text, start, end) && checks::es_dni(&alnum_upper(&text[start..end])) {
                push(out, Kind::EsDni, start, end, 0.9, Level::High, None);
            }
        }
    }
    if shape.upper >= 9 {
        for (start, end) in finds_upper(&p.codice_fiscale, text, w, 4, 9) {
            if clean(text, start, end) && checks::it_codice_fiscale(&text[start..end]) {
                push(
                    out,
                    Kind::ItCodiceFiscale,
                    start,
                    end,
                    0.95,
                    Level::High,
                    None,
                );
            }
        }
    }
    if shape.digits >= 13 {
        for (start, end) in finds(&p.nir, text, w, 13) {
            let candidate = &text[start..end];
            if !isolated(text, start, end) {
                continue;
            }
            let compact = alnum_upper(candidate);
            let month = (compact[3] - b'0') * 10 + (compact[4] - b'0');
            let month_ok = matches!(month, 1..=12 | 20 | 30..=42 | 50..=99);
            if month_ok && checks::fr_nir(&compact) {
                push(out, Kind::FrNir, start, end, 0.9, Level::High, None);
            }
        }
    }
    if shape.digits >= 10 {
        for (start, end) in finds(&p.personnummer, text, w, 10) {
            if !isolated(text, start, end) || preceded_by(text, start, 24, REFERENCE_WORDS) {
                continue;
            }
            let digits = digits_of(&text[start..end]);
            if checks::se_personnummer(&digits[digits.len() - 10..]) {
                push(
                    out,
                    Kind::SePersonnummer,
                    start,
                    end,
                    0.9,
                    Level::High,
                    None,
                );
            }
        }
    }
    if shape.digits >= 11 {
        for (start, end) in finds(&p.steuer_id, text, w, 11) {
            if isolated(text, start, end) && checks::de_steuer_id(&digits_of(&text[start..end])) {
                push(out, Kind::DeSteuerId, start, end, 0.85, Level::High, None);
            }
        }
    }
    if shape.digits >= 12 {
        for (start, end) in finds(&p.aadhaar, text, w, 12) {
            let candidate = &text[start..end];
            if !isolated(text, start, end) || candidate[4] != candidate[9] {
                continue;
            }
            if checks::in_aadhaar(&digits_of(candidate)) {
                push(out, Kind::InAadhaar, start, end, 0.85, Level::High, None);
            }
        }
    }
    if shape.digits >= 9 && shape.dots {
        for (start, end) in finds(&p.bsn_dotted, text, w, 9) {
            if isolated(text, start, end) && checks::nl_bsn(&digits_of(&text[start..end])) {
                push(out, Kind::NlBsn, start, end, 0.85, Level::High, None);
            }
        }
    }
    if shape.digits >= 9 {
        bare_numbers(p, text, w, out);
    }
}

/// The key a value is attached to: `created_at` in `created_at=123` or
/// `"created_at": "123`, `Tel.` in `Tel.: 123`.
fn label_before(text: &[u8], start: usize) -> Option<&[u8]> {
    let mut i = start;
    let skip = |i: &mut usize, set: &[u8]| {
        while *i > 0 && set.contains(&text[*i - 1]) {
            *i -= 1;
        }
    };
    skip(&mut i, b" \"'");
    if i == 0 || !matches!(text[i - 1], b'=' | b':') {
        return None;
    }
    i -= 1;
    skip(&mut i, b" \"'");
    let end = i;
    while i > 0 && (is_word(text[i - 1]) || matches!(text[i - 1], b'.' | b'-')) {
        i -= 1;
    }
    (i < end).then(|| &text[i..end])
}

/// Runs of 9 to 13 digits with nothing around them: many things are (order
/// numbers, timestamps), so each identifier needs a word naming it nearby.
fn bare_numbers(p: &Patterns, text: &[u8], w: &[Window], out: &mut Vec<Match>) {
    for (start, end) in finds(&p.digit_run, text, w, 9) {
        if !isolated(text, start, end) {
            continue;
        }
        let digits = &text[start..end];
        // `key=123…` or `"key": 123…` is named by its key alone; otherwise
        // a word within the 40 bytes before names it.
        let label = label_before(text, start);
        let near = |words: &[&str]| match label {
            Some(label) => {
                let label = label.to_ascii_lowercase();
                words
                    .iter()
                    .any(|w| label.windows(w.len()).any(|win| win == w.as_bytes()))
            }
            None => preceded_by(text, start, 40, words),
        };
        let found = match digits.len() {
            // Check digits first: they are cheaper than the word search.
            9 if checks::nl_bsn(digits) && near(BSN_WORDS) => Some((Kind::NlBsn, 0.85)),
            9 if checks::us_ssn(digits) && near(SSN_WORDS) => Some((Kind::UsSsn, 0.8)),
            11 if checks::de_steuer_id(digits) && near(STEUER_WORDS) => {
                Some((Kind::DeSteuerId, 0.85))
            }
            12 if checks::in_aadhaar(digits) && near(AADHAAR_WORDS) => {
                Some((Kind::InAadhaar, 0.85))
            }
            10 | 12
                if checks::se_personnummer(&digits[digits.len() - 10..])
                    && near(PERSONNUMMER_WORDS) =>
            {
                Some((Kind::SePersonnummer, 0.85))
            }
            10..=13 if (digits[0] == b'0' || digits.len() == 10) && near(PHONE_WORDS) => {
                Some((Kind::Phone, 0.6))
            }
            _ => None,
        };
        if let Some((kind, score)) = found {
            let level = if kind == Kind::Phone {
                Level::Medium
            } else {
                Level::High
            };
            push(out, kind, start, end, score, level, None);
        }
    }
}
