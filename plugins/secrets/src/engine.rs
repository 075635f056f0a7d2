//! The scanner: an Aho-Corasick keyword prefilter in front of one ASCII-mode
//! regex per rule, compiled once per instance.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use regex::bytes::{Regex, RegexBuilder};

use crate::checks::{entropy, is_placeholder};
use crate::rules::{RULES, Rule};

/// One secret found in a string: the rule and the byte range of the secret
/// value (the rule's capture group, or the whole match).
#[derive(Clone, Copy, Debug)]
pub struct Match {
    pub rule: &'static Rule,
    pub start: usize,
    pub end: usize,
}

/// The compiled rule set.
pub struct Scanner {
    rules: &'static [Rule],
    /// Each rule's regex, compiled the first time its keywords occur: a
    /// fresh instance that sees a few strings compiles a few regexes.
    regexes: Vec<OnceLock<Regex>>,
    keywords: AhoCorasick,
    /// For each keyword (pattern id of `keywords`), the rules it enables.
    keyword_rules: Vec<Vec<usize>>,
}

/// The rule set, built once per instance (each rule's regex on first use).
pub fn scanner() -> &'static Scanner {
    static SCANNER: OnceLock<Scanner> = OnceLock::new();
    SCANNER.get_or_init(|| Scanner::new(RULES).expect("the built-in rules are well formed"))
}

/// Compiles one rule's regex the way the scanner does: ASCII only.
pub fn compile(pattern: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(pattern)
        .unicode(false)
        .size_limit(4 << 20)
        .dfa_size_limit(2 << 20)
        .build()
}

impl Scanner {
    /// Builds the keyword prefilter for `rules`; their regexes compile on
    /// first use (`compile_all` compiles them all now).
    pub fn new(rules: &'static [Rule]) -> Result<Scanner, String> {
        let mut words: Vec<&'static str> = Vec::new();
        let mut keyword_rules: Vec<Vec<usize>> = Vec::new();
        for (index, rule) in rules.iter().enumerate() {
            if rule.keywords.is_empty() {
                return Err(format!("rule {} has no keyword", rule.id));
            }
            for keyword in rule.keywords {
                let keyword = keyword.to_ascii_lowercase();
                match words.iter().position(|w| w.eq_ignore_ascii_case(&keyword)) {
                    Some(at) => keyword_rules[at].push(index),
                    None => {
                        words.push(
                            rule.keywords
                                .iter()
                                .find(|k| k.eq_ignore_ascii_case(&keyword))
                                .unwrap(),
                        );
                        keyword_rules.push(vec![index]);
                    }
                }
            }
        }
        let keywords = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .kind(Some(AhoCorasickKind::DFA))
            .match_kind(MatchKind::Standard)
            .build(&words)
            .map_err(|e| format!("keywords: {e}"))?;
        Ok(Scanner {
            rules,
            regexes: rules.iter().map(|_| OnceLock::new()).collect(),
            keywords,
            keyword_rules,
        })
    }

    /// Compiles every rule's regex now; an error names the rule whose
    /// regex does not compile.
    pub fn compile_all(&self) -> Result<(), String> {
        for (index, rule) in self.rules.iter().enumerate() {
            let regex = compile(rule.regex).map_err(|e| format!("rule {}: {e}", rule.id))?;
            let _ = self.regexes[index].set(regex);
        }
        Ok(())
    }

    pub fn rules(&self) -> &'static [Rule] {
        self.rules
    }

    /// The rules whose keywords occur in `text`, in table order.
    pub fn candidates(&self, text: &[u8]) -> Vec<usize> {
        let mut enabled = vec![false; self.rules.len()];
        let mut seen = vec![false; self.keyword_rules.len()];
        let mut left = self.keyword_rules.len();
        for hit in self.keywords.find_overlapping_iter(text) {
            let pattern = hit.pattern().as_usize();
            if !seen[pattern] {
                seen[pattern] = true;
                for &rule in &self.keyword_rules[pattern] {
                    enabled[rule] = true;
                }
                left -= 1;
                if left == 0 {
                    break;
                }
            }
        }
        enabled
            .iter()
            .enumerate()
            .filter_map(|(rule, &on)| on.then_some(rule))
            .collect()
    }

    /// Every secret in `text` after resolving overlaps: where matches of
    /// different rules overlap, the most specific rule wins (a distinctive
    /// format over a keyword-anchored one over a generic assignment; then
    /// the longer match; then the earlier rule in the table).
    pub fn scan(&self, text: &str) -> Vec<Match> {
        let bytes = text.as_bytes();
        let mut found = Vec::new();
        for index in self.candidates(bytes) {
            self.run_rule(index, text, &mut found);
        }
        resolve_overlaps(found)
    }

    /// All matches of one rule in `text`, without overlap resolution.
    pub fn scan_rule(&self, index: usize, text: &str) -> Vec<Match> {
        let mut found = Vec::new();
        self.run_rule(index, text, &mut found);
        found
    }

    fn run_rule(&self, index: usize, text: &str, found: &mut Vec<Match>) {
        let rule = &self.rules[index];
        let regex = self.regexes[index].get_or_init(|| {
            compile(rule.regex).unwrap_or_else(|e| panic!("rule {}: {e}", rule.id))
        });
        let bytes = text.as_bytes();
        for captures in regex.captures_iter(bytes) {
            let whole = captures.get(0).expect("group 0 always matches");
            let Some(secret) = captures.get(rule.group) else {
                continue;
            };
            let (start, end) = widen_to_char_boundaries(text, secret.start(), secret.end());
            let value = &bytes[start..end];
            if let Some(minimum) = rule.entropy
                && entropy(value) < minimum
            {
                continue;
            }
            if is_placeholder(value) {
                continue;
            }
            if let Some(check) = rule.check
                && !check(&bytes[name_start(bytes, whole.start())..whole.end()], value)
            {
                continue;
            }
            found.push(Match { rule, start, end });
        }
    }
}

/// How many name characters before a match a check sees.
const NAME_LOOKBEHIND: usize = 40;

/// Where the name that ends at `at` starts: back over `[A-Za-z0-9_.-]`, at
/// most `NAME_LOOKBEHIND` bytes. Regexes then start at their keyword, which
/// lets the regex engine use the keyword as a literal prefilter.
fn name_start(bytes: &[u8], at: usize) -> usize {
    let floor = at.saturating_sub(NAME_LOOKBEHIND);
    let mut start = at;
    while start > floor
        && matches!(bytes[start - 1], b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-')
    {
        start -= 1;
    }
    start
}

/// A rule whose pattern could stop inside a multi-byte character (a negated
/// class) is widened to whole characters, so the range can slice the string.
fn widen_to_char_boundaries(text: &str, mut start: usize, mut end: usize) -> (usize, usize) {
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    while !text.is_char_boundary(end) {
        end += 1;
    }
    (start, end)
}

pub fn resolve_overlaps(mut found: Vec<Match>) -> Vec<Match> {
    if found.len() < 2 {
        return found;
    }
    // Most specific first, then longest, then table order (stable sort).
    found.sort_by(|a, b| {
        b.rule
            .tier
            .cmp(&a.rule.tier)
            .then((b.end - b.start).cmp(&(a.end - a.start)))
    });
    // Kept matches are disjoint, so the only one a candidate can overlap
    // is the kept match with the greatest start before the candidate's end.
    let mut kept: BTreeMap<usize, Match> = BTreeMap::new();
    for candidate in found {
        let overlaps = kept
            .range(..candidate.end)
            .next_back()
            .is_some_and(|(_, k)| k.end > candidate.start);
        if !overlaps {
            kept.insert(candidate.start, candidate);
        }
    }
    kept.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlaps_keep_the_most_specific_rule() {
        let rules = scanner().rules();
        let generic = rules.iter().find(|r| r.id == "generic-api-key").unwrap();
        let aws = rules.iter().find(|r| r.id == "aws-access-key-id").unwrap();
        let kept = resolve_overlaps(vec![
            Match {
                rule: generic,
                start: 10,
                end: 40,
            },
            Match {
                rule: aws,
                start: 10,
                end: 30,
            },
            Match {
                rule: generic,
                start: 50,
                end: 70,
            },
        ]);
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].rule.id, "aws-access-key-id");
        assert_eq!(kept[1].rule.id, "generic-api-key");
        assert_eq!((kept[1].start, kept[1].end), (50, 70));
    }

    #[test]
    fn overlap_resolution_scales_to_many_matches() {
        let rules = scanner().rules();
        let generic = rules.iter().find(|r| r.id == "generic-api-key").unwrap();
        let aws = rules.iter().find(|r| r.id == "aws-access-key-id").unwrap();
        let mut found = Vec::new();
        for i in 0..50_000 {
            let at = i * 100;
            found.push(Match {
                rule: generic,
                start: at,
                end: at + 40,
            });
            found.push(Match {
                rule: aws,
                start: at + 10,
                end: at + 30,
            });
            found.push(Match {
                rule: generic,
                start: at + 60,
                end: at + 90,
            });
        }
        let kept = resolve_overlaps(found);
        assert_eq!(kept.len(), 100_000);
        assert!(kept.windows(2).all(|w| w[0].end <= w[1].start));
        assert_eq!(kept[0].rule.id, "aws-access-key-id");
    }

    #[test]
    fn ranges_never_split_a_character() {
        let text = "é€x";
        assert_eq!(widen_to_char_boundaries(text, 1, 4), (0, 5));
        assert_eq!(widen_to_char_boundaries(text, 0, 2), (0, 2));
    }
}
