//! `grounding`: the built-in verifier that checks an answer against the
//! tool outputs its session has seen (`subject.sources`).
//!
//! [`check`] walks every string of the content. In each string
//! [`text::markers`] finds the citations, [`text::quotes`] the quotations
//! and [`text::sentences`] splits the rest; [`sources::Sources`] resolves
//! each citation to sources and builds, lazily and once per call, the
//! normalised text and number set of every source a claim is checked
//! against. Findings: `unresolved-citation`, `misquote`,
//! `unsupported-number`, `source-unavailable` and `uncited-claim`, all with
//! the label `ungrounded`; the README gives the exact rules.

#![deny(missing_docs)]

pub mod sources;
pub mod text;

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use sources::{Sources, Unavailable};
use text::{Marker, Quote};
use warden_plugin_sdk::verifier::{Finding, Location, Severity, Source, Verdict, json_strings};

/// The label every finding carries.
pub const LABEL: &str = "ungrounded";

/// Most findings in one verdict. The most severe are kept.
pub const MAX_FINDINGS: usize = 64;

/// Most bytes of source text searched for quotations in one call: 256 MiB.
/// Past it the call fails rather than passing claims it did not check.
pub const SEARCH_BUDGET: usize = 256 * 1024 * 1024;

/// Content checked once in `prepare`, so the snapshot starts warm.
pub const WARM_UP: &str =
    r#"{"answer": "Revenue grew 12% to $1.2M, “the best quarter yet”. [source: 0]"}"#;

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A citation that names no source of the session.
    UnresolvedCitation,
    /// A quotation that no cited source holds.
    Misquote,
    /// A number that no cited source states.
    UnsupportedNumber,
    /// A cited source whose content the verifier cannot read.
    SourceUnavailable,
    /// A sentence with a number or quotation and no citation.
    UncitedClaim,
}

impl Kind {
    /// The finding's `kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::UnresolvedCitation => "unresolved-citation",
            Kind::Misquote => "misquote",
            Kind::UnsupportedNumber => "unsupported-number",
            Kind::SourceUnavailable => "source-unavailable",
            Kind::UncitedClaim => "uncited-claim",
        }
    }

    fn severity(self) -> Severity {
        match self {
            Kind::UnresolvedCitation | Kind::Misquote => Severity::High,
            Kind::UnsupportedNumber | Kind::UncitedClaim => Severity::Medium,
            Kind::SourceUnavailable => Severity::Info,
        }
    }

    fn score(self) -> f32 {
        match self {
            Kind::UnresolvedCitation => 1.0,
            Kind::Misquote => 0.9,
            Kind::UnsupportedNumber => 0.7,
            Kind::UncitedClaim => 0.6,
            Kind::SourceUnavailable => 0.2,
        }
    }
}

fn rank(severity: Severity) -> u8 {
    match severity {
        Severity::Critical => 0,
        Severity::High => 1,
        Severity::Medium => 2,
        Severity::Low => 3,
        Severity::Info => 4,
    }
}

/// Findings as they are found, at most [`MAX_FINDINGS`] of each severity
/// (enough to keep the most severe), in document order.
#[derive(Debug, Default)]
struct Findings {
    list: Vec<Finding>,
    per_rank: [usize; 5],
}

impl Findings {
    fn push(
        &mut self,
        kind: Kind,
        pointer: &str,
        range: &Range<usize>,
        message: &str,
    ) -> Result<(), String> {
        let severity = kind.severity();
        let count = &mut self.per_rank[usize::from(rank(severity))];
        if *count >= MAX_FINDINGS {
            return Ok(());
        }
        *count += 1;
        let offset = |at: usize| {
            u32::try_from(at).map_err(|_| format!("string at `{pointer}` is over 4 GiB"))
        };
        self.list.push(Finding {
            kind: kind.as_str().to_string(),
            label: LABEL.to_string(),
            severity,
            score: kind.score(),
            location: Some(Location {
                pointer: pointer.to_string(),
                start: offset(range.start)?,
                end: offset(range.end)?,
            }),
            message: message.to_string(),
        });
        Ok(())
    }

    /// The most severe [`MAX_FINDINGS`], in document order.
    fn into_vec(self) -> Vec<Finding> {
        let mut indexed: Vec<(usize, Finding)> = self.list.into_iter().enumerate().collect();
        indexed.sort_by_key(|(i, f)| (rank(f.severity), *i));
        indexed.truncate(MAX_FINDINGS);
        indexed.sort_by_key(|(i, _)| *i);
        indexed.into_iter().map(|(_, f)| f).collect()
    }
}

/// The state of one call's check across the content's strings.
struct Checker<'a> {
    sources: Sources<'a>,
    resolved: HashMap<String, Vec<usize>>,
    reported_unavailable: HashSet<usize>,
    searched: usize,
    findings: Findings,
}

/// What the cited sources say about one claim.
enum Support {
    Found,
    NotFound,
    /// Not in the sources that could be read, and some could not.
    Unknown,
}

impl Checker<'_> {
    fn resolve(&mut self, reference: &str) -> Vec<usize> {
        if let Some(hit) = self.resolved.get(reference) {
            return hit.clone();
        }
        let hit = self.sources.resolve(reference);
        self.resolved.insert(reference.to_string(), hit.clone());
        hit
    }

    fn check_string(&mut self, pointer: &str, text: &str) -> Result<(), String> {
        let markers = text::markers(text);
        let quotes = text::quotes(text);
        let sentences = text::sentences(text, &quotes, &markers);
        let masks: Vec<Range<usize>> = markers
            .iter()
            .flat_map(|m| m.masks.iter().cloned())
            .collect();
        // A string of one word is a value (an id, a date, a figure), not a
        // sentence: it can cite, but it is no uncited claim.
        let one_word = !text.trim().contains(char::is_whitespace);

        let mut cited: Vec<Vec<usize>> = Vec::with_capacity(markers.len());
        for marker in &markers {
            let mut sources = Vec::new();
            let mut unresolved = marker.targets.is_empty();
            for target in &marker.targets {
                let hit = self.resolve(text.get(target.clone()).unwrap_or(""));
                unresolved |= hit.is_empty();
                sources.extend(hit);
            }
            if unresolved {
                let message = if marker.targets.len() > 1 {
                    "citation names a reference that resolves to no source seen in this session"
                } else {
                    "citation resolves to no source seen in this session"
                };
                self.findings
                    .push(Kind::UnresolvedCitation, pointer, &marker.range, message)?;
            }
            cited.push(sources);
        }

        let headings = text::headings(text);
        for sentence in sentences {
            // Markers and quotations never straddle a sentence (the splitter
            // steps over them), so those starting inside it are inside it.
            let marker_ids: Vec<usize> = text::within(&markers, &sentence, |m| &m.range).collect();
            let quote_span = text::within(&quotes, &sentence, |q| &q.range);
            let claims: Vec<&Quote> = quotes[quote_span]
                .iter()
                .filter(|q| q.is_claim(text) && !inside_marker(&markers, &q.range))
                .collect();
            let mask_span = text::within(&masks, &sentence, |m| m);
            let mut numbers = text::numbers(text, sentence.clone(), &masks[mask_span]);
            // Numbers inside a quotation are checked with it.
            let mut next_claim = claims.iter().peekable();
            numbers.retain(|n| {
                while next_claim
                    .next_if(|q| q.range.end <= n.range.start)
                    .is_some()
                {}
                !next_claim
                    .peek()
                    .is_some_and(|q| q.range.start <= n.range.start && n.range.end <= q.range.end)
            });
            let heading = text::within(&headings, &(0..sentence.start + 1), |h| h)
                .next_back()
                .is_some_and(|h| headings[h].end >= sentence.start);
            if marker_ids.is_empty() {
                if (!claims.is_empty() || !numbers.is_empty()) && !one_word && !heading {
                    self.findings.push(
                        Kind::UncitedClaim,
                        pointer,
                        &sentence,
                        "sentence states a number or a quotation but cites no source",
                    )?;
                }
                continue;
            }
            let mut sources: Vec<usize> = marker_ids
                .iter()
                .flat_map(|&i| cited[i].iter().copied())
                .collect();
            sources.sort_unstable();
            sources.dedup();
            if sources.is_empty() {
                // Only unresolved citations: reported above, nothing to check against.
                continue;
            }
            for &source in &sources {
                if self.sources.evicted(source) && self.reported_unavailable.insert(source) {
                    let at = marker_ids
                        .iter()
                        .find(|&&i| cited[i].contains(&source))
                        .map(|&i| markers[i].range.clone());
                    self.findings.push(
                        Kind::SourceUnavailable,
                        pointer,
                        &at.unwrap_or(sentence.clone()),
                        "cited source was evicted from the session; its quotations and numbers were not checked",
                    )?;
                }
            }
            if claims.is_empty() && numbers.is_empty() {
                continue;
            }
            for quote in claims {
                let fragments = text::quote_fragments(text.get(quote.inner.clone()).unwrap_or(""));
                if fragments.is_empty() {
                    continue;
                }
                if let Support::NotFound = self.support(
                    pointer,
                    &markers,
                    &marker_ids,
                    &cited,
                    &sources,
                    |h, searched| h.contains_fragments(&fragments, searched),
                )? {
                    self.findings.push(
                        Kind::Misquote,
                        pointer,
                        &quote.range,
                        "quotation not found verbatim in any cited source",
                    )?;
                }
                if self.searched > SEARCH_BUDGET {
                    return Err(format!(
                        "the answer's quotations need more than {} MiB of source text searched; not checked",
                        SEARCH_BUDGET >> 20
                    ));
                }
            }
            for number in numbers {
                if let Support::NotFound =
                    self.support(pointer, &markers, &marker_ids, &cited, &sources, |h, _| {
                        number.forms.iter().any(|f| h.numbers.contains(f))
                    })?
                {
                    self.findings.push(
                        Kind::UnsupportedNumber,
                        pointer,
                        &number.range,
                        "number not found in any cited source",
                    )?;
                }
            }
        }
        Ok(())
    }

    /// Whether `found` holds for a cited source; a source too large for the
    /// budget is reported (once) the first time a claim needs it.
    fn support(
        &mut self,
        pointer: &str,
        markers: &[Marker],
        marker_ids: &[usize],
        cited: &[Vec<usize>],
        sources: &[usize],
        found: impl Fn(&sources::Haystack, &mut usize) -> bool,
    ) -> Result<Support, String> {
        let mut unknown = false;
        for &source in sources {
            match self.sources.haystack(source) {
                Ok(haystack) => {
                    if found(haystack, &mut self.searched) {
                        return Ok(Support::Found);
                    }
                }
                Err(why) => {
                    unknown = true;
                    if why == Unavailable::OverBudget && self.reported_unavailable.insert(source) {
                        let at = marker_ids
                            .iter()
                            .find(|&&i| cited[i].contains(&source))
                            .map_or(0..0, |&i| markers[i].range.clone());
                        self.findings.push(
                            Kind::SourceUnavailable,
                            pointer,
                            &at,
                            "cited source is larger than the verifier reads in one call; its quotations and numbers were not checked",
                        )?;
                    }
                }
            }
        }
        Ok(if unknown {
            Support::Unknown
        } else {
            Support::NotFound
        })
    }
}

/// Whether `range` lies inside one of the (ordered) markers.
fn inside_marker(markers: &[Marker], range: &Range<usize>) -> bool {
    let after = markers.partition_point(|m| m.range.start <= range.start);
    after > 0 && markers[after - 1].range.end >= range.end
}

/// The verdict on `content` (JSON text) given the session's `sources`.
pub fn check(content: &str, sources: &[Source]) -> Result<Verdict, String> {
    let strings = json_strings(content)?;
    let mut checker = Checker {
        sources: Sources::new(sources),
        resolved: HashMap::new(),
        reported_unavailable: HashSet::new(),
        searched: 0,
        findings: Findings::default(),
    };
    for (pointer, text) in &strings {
        checker.check_string(pointer, text)?;
    }
    Ok(Verdict {
        findings: checker.findings.into_vec(),
        redactions: Vec::new(),
    })
}

/// The component's export. Only on wasm: the export's symbol names do not
/// link into a native shared library, and native builds serve the tests,
/// the evaluation and the benchmark.
#[cfg(target_arch = "wasm32")]
mod component {
    use warden_plugin_sdk::verifier::{Guest, Source, Subject, Verdict};

    struct Grounding;

    impl Guest for Grounding {
        /// Runs one check, so the snapshot starts with the allocator warm.
        fn prepare() {
            let source = Source {
                id: "0".to_string(),
                target_name: "fetch.get".to_string(),
                locator: None,
                digest: String::new(),
                content: Some(
                    r#"{"text": "Revenue grew 12% to $1.2M, the best quarter yet."}"#.to_string(),
                ),
            };
            let _ = super::check(super::WARM_UP, &[source]);
        }

        fn verify(subject: Subject) -> Result<Verdict, String> {
            super::check(&subject.content, &subject.sources)
        }
    }

    warden_plugin_sdk::verifier::export_verifier!(Grounding);
}
