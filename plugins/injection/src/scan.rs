//! The scanner: a keyword prefilter in front of the phrase rules, the
//! context checks that adjust a match's score, and [`scan`], which runs
//! every detector on one string and combines their signals.

use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use regex::bytes::{Regex, RegexBuilder};

use crate::normalize::{Normalized, normalize};
use crate::rules::{Check, Kind, RULES, Rule, WINDOW_AFTER, expand};

/// Matches of one rule kept per string: a string that repeats a phrase a
/// thousand times is no more an injection than one that says it once.
const MAX_PER_RULE: usize = 8;

/// How far around a match [`Check::AiContext`] looks for words about AI.
const AI_CONTEXT: usize = 200;

/// One thing found in a string: a byte range of the original string, on
/// character boundaries, end exclusive.
#[derive(Clone, Debug, PartialEq)]
pub struct Match {
    /// The finding kind.
    pub kind: Kind,
    /// The rule or detector id, named in the message.
    pub rule: &'static str,
    /// What was found, for the message.
    pub title: &'static str,
    /// First byte of the match.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
    /// Confidence, 0 to 1.
    pub score: f32,
    /// Extra words for the message (never the matched text).
    pub note: Option<String>,
}

/// The compiled rules and the keyword prefilter.
#[derive(Debug)]
pub struct Scanner {
    regexes: Vec<Regex>,
    /// The rules' keywords and the context words, in one automaton.
    keywords: AhoCorasick,
    /// What each keyword of `keywords` stands for.
    meanings: Vec<Meaning>,
    /// For each rule, whether it has [`NEEDS`].
    needy: Vec<bool>,
    ai_words: Regex,
    destination: Regex,
}

/// A rule (index in [`RULES`]) and the windows of a text its regex runs on.
type RuleWindows = (usize, Vec<(usize, usize)>);

/// What one keyword of the prefilter stands for.
#[derive(Debug, Default)]
struct Meaning {
    /// The rules it opens windows for.
    rules: Vec<usize>,
    /// The rules that need it in a window (see [`NEEDS`]).
    needed_by: Vec<usize>,
    /// The context fact it is a word for, if any.
    context: Option<ContextWord>,
}

/// The kinds of words [`Context`] looks for.
#[derive(Clone, Copy, Debug, PartialEq)]
enum ContextWord {
    Discussion,
    Template,
    Fence,
    Xml,
}

/// The scanner, built once per instance (in `prepare` for the component).
pub fn scanner() -> &'static Scanner {
    static SCANNER: OnceLock<Scanner> = OnceLock::new();
    SCANNER.get_or_init(|| Scanner::new(RULES).expect("the built-in rules are well formed"))
}

fn compile(pattern: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(pattern)
        .unicode(false)
        .size_limit(8 << 20)
        .dfa_size_limit(4 << 20)
        .build()
}

/// Rules whose regex is faster without a search for its prefixes: their
/// prefixes include short, common words (`i`, `if`, `the`), so the search
/// stops at nearly every word.
const SLOW_PREFIX_SEARCH: &[&str] = &["addressed-to-ai"];

/// An alternative that never matches (a byte, then the start of the text)
/// but starts with any byte, so the regex has no prefixes to search for.
const NO_PREFIX: &str = r"[\x00-\xff]\A";

/// For rules whose keywords are common in ordinary text, words at least
/// one of which every match of the rule holds: a window with none of them
/// cannot hold a match, so the rule's regex does not run there.
const NEEDS: &[(&str, &[&str])] = &[
    (
        "ignore-instructions",
        &[
            "instruction",
            "prompt",
            "direct",
            "rules",
            "guid",
            "command",
            "order",
            "context",
            "constraint",
            "programming",
            "training",
            "system",
            "task",
        ],
    ),
    (
        "instructions-void",
        &[
            "void",
            "null",
            "cancel",
            "revoked",
            "obsolete",
            "test",
            "fake",
            "overridden",
            "longer",
            "changed",
        ],
    ),
    (
        "ignore-instructions-fr",
        &[
            "instructions",
            "consignes",
            "directives",
            "regles",
            "ordres",
            "indications",
        ],
    ),
    (
        "ignore-instructions-es-it-pt",
        &[
            "instrucciones",
            "indicaciones",
            "reglas",
            "ordenes",
            "directrices",
            "normas",
            "istruzioni",
            "regole",
            "direttive",
            "instrucoes",
            "regras",
            "diretrizes",
        ],
    ),
    ("url-template", &["{", "[", "<", "%7b", "$"]),
];

/// Words that mark text as writing *about* prompt injection.
const DISCUSSION: &[&str] = &[
    "prompt injection",
    "prompt-injection",
    "injection attack",
    "jailbreak prompts",
    "jailbreaking",
    "attacker",
    "red team",
    "red-team",
    "owasp",
    "guardrail",
    "researcher",
    "such as",
    "for example",
    "e.g.",
    "phrases like",
    "known as",
    "example of",
    "adversarial",
    "the paper",
    "this paper",
];

/// Words that mark text as being about chat templates (documentation, code).
const TEMPLATE_WORDS: &[&str] = &[
    "token",
    "template",
    "tag",
    "marker",
    "delimiter",
    "format",
    "wrap",
    "role",
];

/// Words in a match that name the model's own instructions.
const QUALIFIERS: &[&str] = &[
    "previous",
    "prior",
    "above",
    "earlier",
    "preceding",
    "foregoing",
    "former",
    "original",
    "initial",
    "old",
    "all",
    "any",
    "every",
    "your",
    "system",
    "developer",
    "safety",
    "these",
    "those",
    "existing",
    "current",
    "hidden",
    "secret",
    "full",
    "entire",
    "whatever",
    "everything",
    // French, Spanish, Italian, Portuguese, German.
    "toutes",
    "tous",
    "precedentes",
    "precedents",
    "anterieures",
    "dessus",
    "tes",
    "vos",
    "todas",
    "todos",
    "anteriores",
    "previas",
    "previos",
    "tus",
    "sus",
    "tutte",
    "precedenti",
    "tue",
    "le",
    "vorherigen",
    "obigen",
    "alle",
    "allen",
    "bisherigen",
    "deine",
    "ihre",
    "systemanweisungen",
];

/// First-person words: a person correcting their own instructions.
const FIRST_PERSON: &[&str] = &[
    "my", "our", "me", "mes", "mis", "meine", "miei", "minhas", "nos",
];

impl Scanner {
    /// Compiles `rules` and the prefilter.
    pub fn new(rules: &[Rule]) -> Result<Scanner, String> {
        let mut words: Vec<&str> = Vec::new();
        let mut meanings: Vec<Meaning> = Vec::new();
        // The index of `word` in `words` (and `meanings`), added if new.
        let mut index_of = |word: &'static str, meanings: &mut Vec<Meaning>| {
            words.iter().position(|w| *w == word).unwrap_or_else(|| {
                words.push(word);
                meanings.push(Meaning::default());
                words.len() - 1
            })
        };
        let mut regexes = Vec::with_capacity(rules.len());
        for (index, rule) in rules.iter().enumerate() {
            let pattern = if SLOW_PREFIX_SEARCH.contains(&rule.id) {
                format!("{NO_PREFIX}|{}", expand(rule.pattern))
            } else {
                expand(rule.pattern)
            };
            regexes.push(compile(&pattern).map_err(|e| format!("{}: {e}", rule.id))?);
            for keyword in rule.keywords {
                let at = index_of(keyword, &mut meanings);
                meanings[at].rules.push(index);
            }
        }
        let mut needy = vec![false; rules.len()];
        for (id, needs) in NEEDS {
            let index = rules
                .iter()
                .position(|rule| rule.id == *id)
                .ok_or_else(|| format!("needs of an unknown rule {id}"))?;
            needy[index] = true;
            for word in *needs {
                let at = index_of(word, &mut meanings);
                meanings[at].needed_by.push(index);
            }
        }
        let context_words = DISCUSSION
            .iter()
            .map(|w| (*w, ContextWord::Discussion))
            .chain(TEMPLATE_WORDS.iter().map(|w| (*w, ContextWord::Template)))
            .chain([("```", ContextWord::Fence), ("<?xml", ContextWord::Xml)]);
        for (word, kind) in context_words {
            let at = index_of(word, &mut meanings);
            meanings[at].context = Some(kind);
        }
        // Normalised text is lower case, like the keywords.
        // Standard semantics report every occurrence of every word in order
        // of their ends, longest first among those ending together.
        let keywords = AhoCorasick::builder()
            .kind(Some(AhoCorasickKind::DFA))
            .match_kind(MatchKind::Standard)
            .build(&words)
            .map_err(|e| format!("keywords: {e}"))?;
        let ai_words = compile(&expand(
            r"\b(?:ai|llms?|chatgpt|gpt(?:-?[0-9.]+)?|openai|anthropic|claude|gemini|bard|copilot|language~models?|chatbots?|content~polic(?:y|ies)|uncensored|jailbreak|safety~(?:rules|filters?|guidelines))\b",
        ))
        .map_err(|e| format!("ai words: {e}"))?;
        let destination = compile(
            r"https?:|www\.|\b[a-z0-9-]+\.(?:com|net|org|io|example|site|xyz|ru|cn|app|dev|me|co|biz|info)\b|[a-z0-9._%+-]+@[a-z0-9-]+\.[a-z]|\b(?:endpoint|webhook|pastebin|server|url|link|issue|gist|[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3})\b",
        )
        .map_err(|e| format!("destination: {e}"))?;
        Ok(Scanner {
            regexes,
            keywords,
            meanings,
            needy,
            ai_words,
            destination,
        })
    }

    /// For each rule whose keywords occur in `text`, the windows of `text`
    /// around those occurrences (merged, in order): the only places its
    /// regex runs; and the string's [`Context`], from the same pass.
    fn windows(&self, text: &[u8]) -> (Vec<RuleWindows>, Context) {
        let mut hits: Vec<Vec<usize>> = vec![Vec::new(); self.regexes.len()];
        // For each rule, where its needed words are (in order of their ends).
        let mut needed: Vec<Vec<(usize, usize)>> = vec![Vec::new(); self.regexes.len()];
        let mut context = Context {
            fences: Vec::new(),
            discussion: false,
            template: false,
            xml: false,
        };
        // Context words count as a search that never reports overlapping
        // occurrences would: from the end of the last one counted.
        let mut counted_to = 0;
        for found in self.keywords.find_overlapping_iter(text) {
            let (start, end) = (found.start(), found.end());
            let meaning = &self.meanings[found.pattern()];
            for &rule in &meaning.rules {
                hits[rule].push(start);
            }
            for &rule in &meaning.needed_by {
                needed[rule].push((start, end));
            }
            if let Some(kind) = meaning.context
                && start >= counted_to
            {
                counted_to = end;
                context.count(kind, text, start);
            }
        }
        let mut out = Vec::new();
        for (rule, mut positions) in hits.into_iter().enumerate() {
            if positions.is_empty() {
                continue;
            }
            positions.sort_unstable();
            let reach = RULES[rule].reach;
            let mut windows: Vec<(usize, usize)> = Vec::new();
            for at in positions {
                let start = at.saturating_sub(reach);
                let end = word_end(text, (at + WINDOW_AFTER).min(text.len()));
                match windows.last_mut() {
                    Some(last) if start <= last.1 => last.1 = last.1.max(end),
                    _ => windows.push((start, end)),
                }
            }
            if self.needy[rule] {
                // Windows are in order and apart, and needed words in order of
                // their ends: one pass keeps the windows holding one.
                let mut words = needed[rule].iter().peekable();
                windows.retain(|&(start, end)| {
                    let mut holds = false;
                    while let Some(&&(word_start, word_end)) = words.peek() {
                        if word_end > end {
                            break;
                        }
                        holds |= word_start >= start;
                        words.next();
                    }
                    holds
                });
                if windows.is_empty() {
                    continue;
                }
            }
            out.push((rule, windows));
        }
        (out, context)
    }

    /// The phrase rules' matches in `normalized` (the normalisation of
    /// `original`), with ranges in `original` and context-adjusted scores.
    /// Matches scored below 0.05 are dropped.
    pub fn phrases(&self, original: &str, normalized: &Normalized) -> Vec<Match> {
        let text = normalized.text.as_slice();
        let (windows, context) = self.windows(text);
        let mut out = Vec::new();
        for (index, windows) in windows {
            let rule = &RULES[index];
            let regex = &self.regexes[index];
            let mut kept = 0;
            'windows: for (window_start, window_end) in windows {
                // Searching from the window's start in the text cut at its
                // end keeps the look-behind (`\b`, `^`) of the bytes before.
                let haystack = &text[..window_end];
                let mut at = window_start;
                while let Some(m) = regex.find_at(haystack, at) {
                    at = m.end().max(m.start() + 1);
                    let (start, end) = trim(text, m.start(), m.end());
                    if start >= end {
                        continue;
                    }
                    let score = self.score(rule, text, start, end, &context);
                    if score < 0.05 {
                        continue;
                    }
                    let (start, end) = normalized.original_range(original, start, end);
                    if start >= end {
                        continue;
                    }
                    out.push(Match {
                        kind: rule.kind,
                        rule: rule.id,
                        title: rule.title,
                        start,
                        end,
                        score,
                        note: None,
                    });
                    kept += 1;
                    if kept >= MAX_PER_RULE {
                        break 'windows;
                    }
                    if at >= window_end {
                        break;
                    }
                }
            }
        }
        out
    }

    /// A match's score: the rule's, adjusted by its check and by context.
    fn score(&self, rule: &Rule, text: &[u8], start: usize, end: usize, context: &Context) -> f32 {
        let matched = &text[start..end];
        let mut score = match rule.check {
            Check::None | Check::Template => rule.score,
            Check::Qualifier => {
                // The match and the three words after it ("the instructions
                // above", "the rules your developer gave").
                let words: Vec<&[u8]> = matched
                    .split(|b| !b.is_ascii_alphanumeric())
                    .filter(|w| !w.is_empty())
                    .chain(
                        text[end..]
                            .split(|b| !b.is_ascii_alphanumeric())
                            .filter(|w| !w.is_empty())
                            .take(3),
                    )
                    .collect();
                let has = |list: &[&str]| {
                    words
                        .iter()
                        .any(|w| list.iter().any(|q| q.as_bytes() == *w))
                };
                if has(FIRST_PERSON) {
                    0.35
                } else if has(QUALIFIERS) {
                    rule.score
                } else {
                    0.45
                }
            }
            Check::AiContext => {
                let around =
                    &text[start.saturating_sub(AI_CONTEXT)..(end + AI_CONTEXT).min(text.len())];
                if self.ai_words.is_match(around) {
                    rule.score
                } else {
                    0.2
                }
            }
            Check::Destination => {
                let after = &text[end..text.len().min(end + 160)];
                let strong = matched.starts_with(b"exfiltrat") || matched.starts_with(b"leak");
                if strong || self.destination.is_match(after) || self.destination.is_match(matched)
                {
                    rule.score
                } else {
                    0.35
                }
            }
            Check::NotXml => {
                // An element between other elements is XML data.
                let next = text[end..].iter().find(|b| !b.is_ascii_whitespace());
                let previous = text[..start]
                    .iter()
                    .rev()
                    .find(|b| !b.is_ascii_whitespace());
                if next == Some(&b'<') || previous == Some(&b'>') || context.xml {
                    0.25
                } else {
                    rule.score
                }
            }
        };
        let quoted = quoted(text, &context.fences, start);
        if rule.check == Check::Template || rule.kind == Kind::DelimiterSpoofing {
            // Code and documentation about chat templates write the tokens
            // in string literals and name them.
            if quoted {
                score *= 0.4;
            }
            if context.template {
                score *= 0.55;
            }
        } else if context.discussion {
            // Writing about prompt injection quotes its examples: a quoted
            // example in such text is the common case, an attack the rare one.
            score *= if quoted { 0.4 } else { 0.5 };
        } else if quoted {
            score *= 0.9;
        }
        score
    }
}

/// Facts about a whole string that the context checks use.
struct Context {
    /// Offsets of the code fences (```).
    fences: Vec<usize>,
    discussion: bool,
    template: bool,
    xml: bool,
}

impl Context {
    /// Counts an occurrence of a context word at `start` of `text`.
    fn count(&mut self, kind: ContextWord, text: &[u8], start: usize) {
        match kind {
            ContextWord::Discussion => self.discussion = true,
            // Template words count at the start of a word only.
            ContextWord::Template => {
                self.template |= start == 0 || !text[start - 1].is_ascii_alphabetic();
            }
            ContextWord::Fence => self.fences.push(start),
            ContextWord::Xml => self.xml = true,
        }
    }
}

/// The first offset at or after `at` that is not inside a word (so a
/// window never cuts a word in two), at most 64 bytes on.
fn word_end(text: &[u8], at: usize) -> usize {
    let limit = (at + 64).min(text.len());
    (at..limit)
        .find(|&i| !text[i].is_ascii_alphanumeric())
        .unwrap_or(limit)
}

/// Trims whitespace from both ends of `[start, end)`.
fn trim(text: &[u8], mut start: usize, mut end: usize) -> (usize, usize) {
    while start < end && text[start].is_ascii_whitespace() {
        start += 1;
    }
    while end > start && text[end - 1].is_ascii_whitespace() {
        end -= 1;
    }
    (start, end)
}

/// How far back on its line [`quoted`] looks for an opening quote.
const QUOTE_LOOK_BACK: usize = 1024;

/// Whether `at` lies inside a quotation on its line (straight double
/// quotes, backticks, single quotes that are not apostrophes, within
/// [`QUOTE_LOOK_BACK`] bytes) or inside a fenced code block (`fences`: the
/// offsets of the string's code fences).
fn quoted(text: &[u8], fences: &[usize], at: usize) -> bool {
    if fences.partition_point(|&f| f < at) % 2 == 1 {
        return true;
    }
    let before = &text[at.saturating_sub(QUOTE_LOOK_BACK)..at];
    let line_start = at - before.len()
        + before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
    let line = &text[line_start..at];
    let count = |q: u8| line.iter().filter(|&&b| b == q).count();
    let singles = line
        .iter()
        .enumerate()
        .filter(|&(i, &b)| {
            b == b'\''
                && !(i > 0
                    && line[i - 1].is_ascii_alphanumeric()
                    && text
                        .get(line_start + i + 1)
                        .is_some_and(u8::is_ascii_alphanumeric))
        })
        .count();
    count(b'"') % 2 == 1 || count(b'`') % 2 == 1 || singles % 2 == 1
}

/// The strongest phrase in `text` (decoded or hidden text): its score and
/// kind, or `None`.
pub fn best_phrase(text: &str) -> Option<(f32, Kind)> {
    let scanner = scanner();
    scanner
        .phrases(text, &normalize(text))
        .into_iter()
        .map(|m| (m.score, m.kind))
        .max_by(|a, b| a.0.total_cmp(&b.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_and_fences() {
        let text = b"he said \"ignore this\" and 'that' isn't it";
        assert!(quoted(text, &[], 9));
        assert!(!quoted(text, &[], 22));
        assert!(quoted(text, &[], 27));
        assert!(!quoted(text, &[], 36));
        assert!(quoted(b"```\ncode here", &[0], 5));
        assert!(!quoted(b"```\ncode\n```\nprose", &[0, 9], 14));
    }

    /// What [`NEEDS`] promises: every match of such a rule, found anywhere
    /// in the evaluation texts (and in spellings of them), holds one of its
    /// needed words, so skipping windows without one loses no match.
    #[test]
    fn every_match_of_a_rule_with_needs_holds_a_needed_word() {
        let scanner = scanner();
        let mut checked = vec![0usize; NEEDS.len()];
        for line in include_str!("../eval/cases.jsonl").lines() {
            let case: serde_json::Value = serde_json::from_str(line).expect("a JSON case");
            let text = case["text"].as_str().expect("a text");
            let spellings = [
                text.to_string(),
                text.to_uppercase(),
                text.replace(' ', " \u{200b}\n "),
            ];
            for spelling in &spellings {
                let normalized = normalize(spelling);
                let haystack = normalized.text.as_slice();
                for (n, (id, needs)) in NEEDS.iter().enumerate() {
                    let rule = RULES.iter().position(|r| r.id == *id).expect("a rule");
                    for m in scanner.regexes[rule].find_iter(haystack) {
                        let matched = &haystack[m.start()..m.end()];
                        let holds = needs
                            .iter()
                            .any(|word| matched.windows(word.len()).any(|w| w == word.as_bytes()));
                        assert!(
                            holds,
                            "rule {id} matched {:?}, which holds none of its needed words",
                            String::from_utf8_lossy(matched)
                        );
                        checked[n] += 1;
                    }
                }
            }
        }
        for ((id, _), count) in NEEDS.iter().zip(checked) {
            assert!(count >= 3, "rule {id}: only {count} matches to check");
        }
    }
}
