//! JSON Pointers (RFC 6901) with one extension: a reference token that is
//! exactly `*` matches every element of an array and every member of an
//! object. [`Pattern::parse`] checks the syntax once, at contract load;
//! [`Pattern::find`] expands a pattern against the content into concrete
//! [`Match`]es.

use serde_json::Value;
use std::fmt;

/// Most values one pattern may expand to, counted at every step of the
/// expansion. Past it the check cannot be completed within the verifier's
/// budget, and the verdict is an error rather than a partial pass.
pub const MAX_MATCHES: usize = 10_000;

/// One reference token of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// `*`: every array element or object member.
    Any,
    /// A member name or array index, unescaped (`~1` is `/`, `~0` is `~`).
    Name(String),
}

/// A JSON Pointer whose `*` tokens are wildcards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    tokens: Vec<Token>,
}

/// A value a pattern found in the content.
#[derive(Debug, Clone)]
pub struct Match<'a> {
    /// The concrete JSON Pointer of the value (no wildcards, escaped).
    pub pointer: String,
    /// The escaped token each `*` of the pattern took, in order.
    pub bindings: Vec<String>,
    /// The value.
    pub value: &'a Value,
}

/// The pattern matched more than [`MAX_MATCHES`] values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooMany;

impl Pattern {
    /// Parses an RFC 6901 pointer: "" (the whole document) or `/`-prefixed
    /// tokens in which `~` is followed only by `0` or `1`.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Ok(Pattern {
                text: String::new(),
                tokens: Vec::new(),
            });
        }
        let Some(rest) = text.strip_prefix('/') else {
            return Err(format!(
                "`{text}` is not a JSON Pointer: it must be empty or start with `/`"
            ));
        };
        let tokens = rest
            .split('/')
            .map(|token| {
                if token == "*" {
                    Ok(Token::Any)
                } else {
                    unescape(token).map(Token::Name).ok_or_else(|| {
                        format!(
                            "`{text}` is not a JSON Pointer: `~` must be followed by `0` or `1`"
                        )
                    })
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Pattern {
            text: text.to_string(),
            tokens,
        })
    }

    /// How many `*` tokens the pattern has.
    pub fn wildcards(&self) -> usize {
        self.tokens.iter().filter(|t| **t == Token::Any).count()
    }

    /// The pattern with its first `bindings.len()` wildcards replaced by
    /// those (escaped) tokens.
    pub fn bind(&self, bindings: &[String]) -> Pattern {
        let mut bindings = bindings.iter();
        let mut text = String::new();
        let tokens = self
            .tokens
            .iter()
            .map(|token| {
                let token = match token {
                    Token::Any => match bindings.next() {
                        Some(bound) => Token::Name(unescape(bound).unwrap_or_default()),
                        None => Token::Any,
                    },
                    name => name.clone(),
                };
                text.push('/');
                match &token {
                    Token::Any => text.push('*'),
                    Token::Name(name) => text.push_str(&escape(name)),
                }
                token
            })
            .collect();
        Pattern { text, tokens }
    }

    /// Every value the pattern names in `document`, in document order. A
    /// token that names nothing (a missing member, an index past the end,
    /// `-`, an index with a leading zero) drops that branch.
    pub fn find<'a>(&self, document: &'a Value) -> Result<Vec<Match<'a>>, TooMany> {
        let mut frontier = vec![Match {
            pointer: String::new(),
            bindings: Vec::new(),
            value: document,
        }];
        for token in &self.tokens {
            let mut next = Vec::new();
            for found in frontier {
                match token {
                    Token::Name(name) => {
                        if let Some(value) = child(found.value, name) {
                            next.push(Match {
                                pointer: format!("{}/{}", found.pointer, escape(name)),
                                value,
                                ..found
                            });
                        }
                    }
                    Token::Any => {
                        let children: Box<dyn Iterator<Item = (String, &Value)>> = match found.value
                        {
                            Value::Array(items) => {
                                Box::new(items.iter().enumerate().map(|(i, v)| (i.to_string(), v)))
                            }
                            Value::Object(members) => {
                                Box::new(members.iter().map(|(k, v)| (escape(k), v)))
                            }
                            _ => Box::new(std::iter::empty()),
                        };
                        for (token, value) in children {
                            if next.len() == MAX_MATCHES {
                                return Err(TooMany);
                            }
                            let mut bindings = found.bindings.clone();
                            bindings.push(token.clone());
                            next.push(Match {
                                pointer: format!("{}/{token}", found.pointer),
                                bindings,
                                value,
                            });
                        }
                    }
                }
            }
            frontier = next;
        }
        Ok(frontier)
    }

    /// The concrete pointer of the deepest value along this (wildcard-free)
    /// pattern that exists in `document`: where a missing member is reported.
    pub fn deepest_existing(&self, document: &Value) -> String {
        let mut pointer = String::new();
        let mut value = document;
        for token in &self.tokens {
            let Token::Name(name) = token else { break };
            match child(value, name) {
                Some(next) => {
                    value = next;
                    pointer.push('/');
                    pointer.push_str(&escape(name));
                }
                None => break,
            }
        }
        pointer
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The member `name` of an object, or the element `name` of an array when
/// `name` is a decimal index without leading zeros (RFC 6901 section 4).
fn child<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
    match value {
        Value::Object(members) => members.get(name),
        Value::Array(items) => {
            let canonical = name == "0" || (!name.starts_with('0') && !name.is_empty());
            if canonical && name.bytes().all(|b| b.is_ascii_digit()) {
                items.get(name.parse::<usize>().ok()?)
            } else {
                None
            }
        }
        _ => None,
    }
}

/// `~1` → `/`, `~0` → `~`; `None` for any other `~` sequence.
fn unescape(token: &str) -> Option<String> {
    if !token.contains('~') {
        return Some(token.to_string());
    }
    let mut out = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// A member name as a reference token: `~` → `~0`, `/` → `~1`.
pub fn escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pointers(pattern: &str, document: &Value) -> Vec<String> {
        Pattern::parse(pattern)
            .unwrap()
            .find(document)
            .unwrap()
            .into_iter()
            .map(|m| m.pointer)
            .collect()
    }

    #[test]
    fn plain_pointers_follow_rfc_6901() {
        let doc = json!({"a/b": {"c~d": 1}, "list": [10, 20], "": {"x": 2}});
        assert_eq!(pointers("/a~1b/c~0d", &doc), ["/a~1b/c~0d"]);
        assert_eq!(pointers("/list/1", &doc), ["/list/1"]);
        assert!(pointers("/list/01", &doc).is_empty());
        assert!(pointers("/list/-", &doc).is_empty());
        assert!(pointers("/list/2", &doc).is_empty());
        assert_eq!(pointers("//x", &doc), ["//x"]);
        assert_eq!(pointers("", &doc), [""]);
        assert!(Pattern::parse("a").is_err());
        assert!(Pattern::parse("/a~2").is_err());
        assert!(Pattern::parse("/a~").is_err());
    }

    #[test]
    fn wildcards_expand_arrays_and_objects_with_bindings() {
        let doc = json!({"items": [{"p": 1}, {"q": 2}, {"p": 3}], "m": {"x/y": {"p": 4}}});
        assert_eq!(pointers("/items/*/p", &doc), ["/items/0/p", "/items/2/p"]);
        assert_eq!(pointers("/m/*/p", &doc), ["/m/x~1y/p"]);
        let found = Pattern::parse("/*/*/p").unwrap().find(&doc).unwrap();
        let bindings: Vec<Vec<String>> = found.into_iter().map(|m| m.bindings).collect();
        assert_eq!(
            bindings,
            [vec!["items", "0"], vec!["items", "2"], vec!["m", "x~1y"]]
        );
        assert!(pointers("/items/0/p/*", &doc).is_empty());
    }

    #[test]
    fn binding_fills_the_first_wildcards() {
        let pattern = Pattern::parse("/a/*/b/*").unwrap();
        let bound = pattern.bind(&["x~1y".to_string()]);
        assert_eq!(bound.to_string(), "/a/x~1y/b/*");
        assert_eq!(bound.wildcards(), 1);
        let doc = json!({"a": {"x/y": {"b": [1]}}});
        assert_eq!(
            bound.bind(&["0".to_string()]).find(&doc).unwrap()[0].pointer,
            "/a/x~1y/b/0"
        );
    }

    #[test]
    fn expansion_is_bounded() {
        let doc = json!({"a": vec![vec![0; 200]; 100]});
        assert_eq!(
            Pattern::parse("/a/*").unwrap().find(&doc).unwrap().len(),
            100
        );
        assert_eq!(
            Pattern::parse("/a/*/*").unwrap().find(&doc).unwrap_err(),
            TooMany
        );
    }

    #[test]
    fn the_deepest_existing_ancestor_locates_a_missing_member() {
        let doc = json!({"a": {"b": {}}});
        let pattern = Pattern::parse("/a/b/c/d").unwrap();
        assert_eq!(pattern.deepest_existing(&doc), "/a/b");
        assert_eq!(Pattern::parse("/z").unwrap().deepest_existing(&doc), "");
    }
}
