//! Every signal in one string: the phrase scanner's matches, hidden text
//! and encoded payloads, combined so that signals which support each other
//! raise each other's scores.

use crate::normalize::normalize;
use crate::rules::Kind;
use crate::scan::{Match, scanner};
use crate::{encoded, hidden};

/// Every signal in one string, combined: at most one match per range and
/// kind (the highest score), sorted by position.
pub fn scan(text: &str) -> Vec<Match> {
    let mut found = scanner().phrases(text, &normalize(text));
    if !text.is_ascii() {
        found.extend(hidden::scan(text));
    }
    found.extend(encoded::scan(text));
    combine(&mut found);
    resolve_overlaps(found)
}

/// Signals that support each other raise each other's scores: different
/// kinds in one string, and hidden characters inside a phrase.
fn combine(found: &mut [Match]) {
    let mut kinds: Vec<Kind> = found
        .iter()
        .filter(|m| m.score >= 0.3)
        .map(|m| m.kind)
        .collect();
    kinds.sort_unstable();
    kinds.dedup();
    let phrases: Vec<(usize, usize, f32)> = found
        .iter()
        .filter(|m| m.kind.is_phrase() && m.score >= 0.4)
        .map(|m| (m.start, m.end, m.score))
        .collect();
    // Two fake turns make a fake transcript.
    let turns = found
        .iter()
        .filter(|m| m.kind == Kind::RoleSpoofing && m.score >= 0.3)
        .count();
    for m in found.iter_mut() {
        if kinds.len() >= 2 && m.score >= 0.3 {
            m.score += 0.1;
        }
        if turns >= 2 && m.kind == Kind::RoleSpoofing {
            m.score += 0.15;
        }
        if m.kind == Kind::HiddenText
            && phrases
                .iter()
                .any(|&(start, end, _)| start < m.end && m.start < end)
        {
            m.score = m.score.max(0.9);
            m.note = Some(match m.note.take() {
                Some(note) => format!("{note}; inside an instruction-like phrase"),
                None => "inside an instruction-like phrase".to_string(),
            });
        }
        m.score = m.score.clamp(0.0, 0.99);
    }
}

/// Keeps, of matches of one kind that overlap, the highest score (then
/// the longest); the result is sorted by start.
fn resolve_overlaps(mut found: Vec<Match>) -> Vec<Match> {
    found.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then((b.end - b.start).cmp(&(a.end - a.start)))
    });
    let mut kept: Vec<Match> = Vec::with_capacity(found.len());
    for m in found {
        if !kept
            .iter()
            .any(|k| k.kind == m.kind && k.start < m.end && m.start < k.end)
        {
            kept.push(m);
        }
    }
    kept.sort_by_key(|m| (m.start, m.end));
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlaps_keep_the_best_of_a_kind() {
        let m = |kind, start, end, score| Match {
            kind,
            rule: "r",
            title: "t",
            start,
            end,
            score,
            note: None,
        };
        let kept = resolve_overlaps(vec![
            m(Kind::Jailbreak, 0, 10, 0.5),
            m(Kind::Jailbreak, 5, 12, 0.8),
            m(Kind::HiddenText, 0, 3, 0.3),
        ]);
        let got: Vec<(usize, f32)> = kept.iter().map(|m| (m.start, m.score)).collect();
        assert_eq!(got, [(0, 0.3), (5, 0.8)]);
    }
}
