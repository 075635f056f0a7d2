//! The session's sources as an answer cites them: [`Sources`] resolves a
//! citation to the sources it names and builds, lazily and once per
//! verify, each cited source's [`Haystack`] (its text normalised for
//! quotations and the set of numbers it states).

use std::collections::{HashMap, HashSet};

use warden_plugin_sdk::verifier::Source;

use crate::text;

/// Most source content (JSON text) one verify parses: 4 MiB. A cited source
/// past what is left of it is treated as unavailable.
pub const SOURCE_BUDGET: usize = 4 * 1024 * 1024;

/// Shortest digest prefix a citation may use: 12 hex digits (48 bits).
pub const MIN_DIGEST_PREFIX: usize = 12;

/// Separates a source's strings in its haystack, so that no quotation
/// matches across two of them.
const SEPARATOR: char = '\u{1f}';

/// What a source says, in the forms an answer's claims are compared in.
#[derive(Debug, Default)]
pub struct Haystack {
    /// Every string (values and keys), normalised with
    /// [`text::normalise_into`], joined by a separator.
    pub text: String,
    /// Every form of every number, in strings or as JSON numbers.
    pub numbers: HashSet<String>,
}

impl Haystack {
    /// Reads a source's content (JSON text; anything else counts as one string).
    pub fn build(content: &str) -> Haystack {
        let mut haystack = Haystack::default();
        match serde_json::from_str::<serde_json::Value>(content) {
            Ok(value) => haystack.add_value(&value),
            Err(_) => haystack.add_string(content),
        }
        haystack
    }

    fn add_value(&mut self, value: &serde_json::Value) {
        match value {
            serde_json::Value::String(s) => self.add_string(s),
            serde_json::Value::Number(n) => self.add_json_number(&n.to_string()),
            serde_json::Value::Array(items) => items.iter().for_each(|item| self.add_value(item)),
            serde_json::Value::Object(fields) => {
                for (key, item) in fields {
                    self.add_string(key);
                    self.add_value(item);
                }
            }
            serde_json::Value::Bool(_) | serde_json::Value::Null => {}
        }
    }

    fn add_string(&mut self, s: &str) {
        if !self.text.is_empty() {
            self.text.push(SEPARATOR);
        }
        text::normalise_into(s, &mut self.text);
        for number in text::numbers(s, 0..s.len(), &[]) {
            self.numbers.extend(number.forms);
        }
    }

    fn add_json_number(&mut self, n: &str) {
        let n = n.trim_start_matches('-');
        if n.contains(['e', 'E']) {
            return;
        }
        let (int, frac) = n.split_once('.').unwrap_or((n, ""));
        self.numbers.insert(text::canonical(int, frac));
    }

    /// Whether every fragment occurs, in order; adds the bytes searched to
    /// `searched`. The first letter of the quotation may differ in case
    /// (`said “this was…”` quoting "This was…"); nothing else may.
    pub fn contains_fragments(&self, fragments: &[String], searched: &mut usize) -> bool {
        if self.contains_in_order(fragments, searched) {
            return true;
        }
        let Some(first) = fragments.first() else {
            return false;
        };
        let mut chars = first.chars();
        let Some(c) = chars.next().filter(|c| c.is_alphabetic()) else {
            return false;
        };
        let swapped: String = if c.is_uppercase() {
            c.to_lowercase().chain(chars).collect()
        } else {
            c.to_uppercase().chain(chars).collect()
        };
        if &swapped == first {
            return false;
        }
        let mut other = Vec::with_capacity(fragments.len());
        other.push(swapped);
        other.extend_from_slice(&fragments[1..]);
        self.contains_in_order(&other, searched)
    }

    fn contains_in_order(&self, fragments: &[String], searched: &mut usize) -> bool {
        let mut from = 0;
        for fragment in fragments {
            let rest = self.text.get(from..).unwrap_or("");
            *searched += rest.len();
            match rest.find(fragment.as_str()) {
                Some(at) => from += at + fragment.len(),
                None => return false,
            }
        }
        !fragments.is_empty()
    }
}

/// Why a cited source's content cannot be checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// The session's source budget evicted it (only its digest is kept).
    Evicted,
    /// It does not fit in what is left of [`SOURCE_BUDGET`].
    OverBudget,
}

#[derive(Debug)]
enum State {
    Unbuilt,
    Built(Haystack),
    Unavailable(Unavailable),
}

/// The sources of one verify, indexed for resolving citations.
#[derive(Debug)]
pub struct Sources<'a> {
    list: &'a [Source],
    by_id: HashMap<String, Vec<usize>>,
    by_locator: HashMap<String, Vec<usize>>,
    states: Vec<State>,
    budget: usize,
}

impl<'a> Sources<'a> {
    /// Indexes `list` by id and by normalised locator.
    pub fn new(list: &'a [Source]) -> Self {
        let mut by_id: HashMap<String, Vec<usize>> = HashMap::new();
        let mut by_locator: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, source) in list.iter().enumerate() {
            by_id
                .entry(source.id.trim().to_ascii_lowercase())
                .or_default()
                .push(i);
            if let Some(locator) = &source.locator {
                by_locator.entry(locator_key(locator)).or_default().push(i);
            }
        }
        let states = list
            .iter()
            .map(|s| match s.content {
                Some(_) => State::Unbuilt,
                None => State::Unavailable(Unavailable::Evicted),
            })
            .collect();
        Sources {
            list,
            by_id,
            by_locator,
            states,
            budget: SOURCE_BUDGET,
        }
    }

    /// The sources `reference` names, in order, without repeats: by id
    /// (ASCII case-insensitive), by locator (URLs normalised, see
    /// [`normalise_url`]) or by a digest prefix of at least
    /// [`MIN_DIGEST_PREFIX`] hex digits (optionally after `sha256:`).
    pub fn resolve(&self, reference: &str) -> Vec<usize> {
        let reference = reference.trim();
        if reference.is_empty() {
            return Vec::new();
        }
        let mut hits = Vec::new();
        if let Some(ids) = self.by_id.get(&reference.to_ascii_lowercase()) {
            hits.extend(ids);
        }
        if let Some(ids) = self.by_locator.get(&locator_key(reference)) {
            hits.extend(ids);
        }
        let hex = reference.strip_prefix("sha256:").unwrap_or(reference);
        if (MIN_DIGEST_PREFIX..=64).contains(&hex.len())
            && hex.bytes().all(|b| b.is_ascii_hexdigit())
        {
            let hex = hex.to_ascii_lowercase();
            hits.extend(
                self.list
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.digest.to_ascii_lowercase().starts_with(&hex))
                    .map(|(i, _)| i),
            );
        }
        hits.sort_unstable();
        hits.dedup();
        hits
    }

    /// Whether source `i` has no content to check, without building it.
    pub fn evicted(&self, i: usize) -> bool {
        matches!(
            self.states.get(i),
            Some(State::Unavailable(Unavailable::Evicted))
        )
    }

    /// Source `i`'s haystack, built on first use within the budget.
    pub fn haystack(&mut self, i: usize) -> Result<&Haystack, Unavailable> {
        let Some(state) = self.states.get_mut(i) else {
            return Err(Unavailable::Evicted);
        };
        if let State::Unbuilt = state {
            let content = self
                .list
                .get(i)
                .and_then(|s| s.content.as_deref())
                .unwrap_or("");
            *state = if content.len() > self.budget {
                State::Unavailable(Unavailable::OverBudget)
            } else {
                self.budget -= content.len();
                State::Built(Haystack::build(content))
            };
        }
        match state {
            State::Built(haystack) => Ok(haystack),
            State::Unavailable(why) => Err(*why),
            State::Unbuilt => Err(Unavailable::Evicted),
        }
    }
}

/// The form a locator is compared in: a normalised URL, or the text as is.
fn locator_key(locator: &str) -> String {
    let locator = locator.trim();
    normalise_url(locator).unwrap_or_else(|| locator.to_string())
}

/// An http(s) URL in the form citations are compared in: scheme and host in
/// lower case, the scheme's default port dropped, an empty path made `/`,
/// the fragment removed. Path, query and percent-encoding stay as written.
/// `None` for anything that is not an http(s) URL with a host.
pub fn normalise_url(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => "80",
        "https" => "443",
        _ => return None,
    };
    let rest = rest.split('#').next().unwrap_or("");
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(split);
    let (userinfo, host_port) = match authority.rsplit_once('@') {
        Some((user, hp)) => (Some(user), hp),
        None => (None, authority),
    };
    let (host, port) = if host_port.starts_with('[') {
        let close = host_port.find(']')?;
        let (host, after) = host_port.split_at(close + 1);
        (host, after.strip_prefix(':'))
    } else {
        match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    if host.is_empty() || port.is_some_and(|p| !p.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    let port = port.filter(|p| !p.is_empty() && *p != default_port);
    let mut out = format!("{scheme}://");
    if let Some(user) = userinfo {
        out.push_str(user);
        out.push('@');
    }
    out.push_str(&host.to_ascii_lowercase());
    if let Some(port) = port {
        out.push(':');
        out.push_str(port);
    }
    if !tail.starts_with('/') {
        out.push('/');
    }
    out.push_str(tail);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_normalise() {
        let n = |u: &str| normalise_url(u);
        assert_eq!(
            n("HTTP://Example.COM").as_deref(),
            Some("http://example.com/")
        );
        assert_eq!(
            n("http://example.com:80/a#frag").as_deref(),
            Some("http://example.com/a")
        );
        assert_eq!(
            n("https://example.com:443?q=1").as_deref(),
            Some("https://example.com/?q=1")
        );
        assert_eq!(
            n("http://127.0.0.1:8080/report").as_deref(),
            Some("http://127.0.0.1:8080/report")
        );
        assert_eq!(n("https://[::1]:443/x").as_deref(), Some("https://[::1]/x"));
        assert_eq!(
            n("https://u@H.com/Path/").as_deref(),
            Some("https://u@h.com/Path/")
        );
        assert_eq!(n("ftp://example.com/"), None);
        assert_eq!(n("http:///path"), None);
        assert_eq!(n("http://h:port/"), None);
        assert_ne!(n("http://h/a"), n("http://h/a/"));
    }

    #[test]
    fn haystacks_hold_strings_keys_and_numbers() {
        let h = Haystack::build(
            r#"{"note":"Revenue  grew “fast”, to 1,200 units","growth":12.50,"2023":true}"#,
        );
        assert!(h.text.contains("Revenue grew \"fast\", to 1,200 units"));
        assert!(
            h.numbers.contains("1200") && h.numbers.contains("12.5") && h.numbers.contains("2023")
        );
        let mut searched = 0;
        assert!(!h.contains_fragments(&["units\u{1f}growth".into()], &mut searched));
        assert!(h.contains_fragments(&["Revenue".into(), "units".into()], &mut searched));
        assert!(!h.contains_fragments(&["units".into(), "Revenue".into()], &mut searched));
        assert!(h.contains_fragments(&["revenue grew".into()], &mut searched));
        assert!(!h.contains_fragments(&["REVENUE grew".into()], &mut searched));
        assert!(!h.contains_fragments(&["Units".into(), "revenue".into()], &mut searched));
        assert!(searched > 0);
    }
}
