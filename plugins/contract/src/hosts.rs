//! The `hosts` rule: a URL's host must be one of an allowed list.
//!
//! Entries are normalized once, when the contract is loaded, the way the
//! `url` crate (WHATWG URL Standard) normalizes a URL's host: lower case,
//! IDNA to punycode, IPv4 in any of its spellings (`0x7f.1`) to dotted
//! decimal. A URL's host is then compared with the entries exactly.

use std::fmt;
use std::net::IpAddr;
use url::{Host, Url};

/// One allowed host.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    /// Exactly this domain.
    Domain(String),
    /// `*.suffix`: any subdomain of the suffix, not the suffix itself.
    Subdomains(String),
    /// Exactly this IP address; wildcards never match an address.
    Ip(IpAddr),
}

/// The allowed hosts of one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowed(Vec<Entry>);

/// Why a value failed the rule. The message never includes the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not a string.
    NotString,
    /// A backslash, whitespace or control character: URL parsers disagree
    /// on these (WHATWG treats `\` as `/` and drops tabs and newlines), so
    /// what this verifier checks may not be what the consumer fetches.
    Ambiguous,
    /// Not an absolute URL.
    NotUrl,
    /// A URL without a host (`mailto:`, `file:///`, `data:`).
    NoHost,
    /// A URL with a user name or password, as in
    /// `https://example.com@evil.test/`, where the allowed name is only the
    /// user name.
    UserInfo,
    /// A host that no entry matches.
    NotAllowed,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::NotString => "value is not a string",
            Refusal::Ambiguous => "URL contains a backslash, whitespace or control character",
            Refusal::NotUrl => "value is not an absolute URL",
            Refusal::NoHost => "URL has no host",
            Refusal::UserInfo => "URL carries user info before its host",
            Refusal::NotAllowed => "host not in the allowed list",
        })
    }
}

impl Allowed {
    /// Parses the entries: a host name, `*.` and a host name, an IPv4
    /// address or an IPv6 address (with or without brackets).
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<Allowed, String> {
        entries
            .into_iter()
            .map(|text| {
                entry(text).ok_or_else(|| {
                    format!("`{text}` is not a host name, `*.` and a host name, or an IP address")
                })
            })
            .collect::<Result<_, _>>()
            .map(Allowed)
    }

    /// Checks one value of the content.
    pub fn check(&self, value: &str) -> Result<(), Refusal> {
        if value
            .chars()
            .any(|c| c == '\\' || c.is_whitespace() || c.is_control())
        {
            return Err(Refusal::Ambiguous);
        }
        let url = Url::parse(value).map_err(|_| Refusal::NotUrl)?;
        // An empty user info (`https://@example.com/`) parses to no user
        // name, so the raw authority is looked at too.
        if !url.username().is_empty() || url.password().is_some() || raw_user_info(value) {
            return Err(Refusal::UserInfo);
        }
        let allowed = match url.host().ok_or(Refusal::NoHost)? {
            Host::Domain(domain) => {
                let domain = domain.to_ascii_lowercase();
                let domain = domain.strip_suffix('.').unwrap_or(&domain);
                if domain.is_empty() {
                    return Err(Refusal::NoHost);
                }
                self.0.iter().any(|entry| match entry {
                    Entry::Domain(name) => name == domain,
                    Entry::Subdomains(suffix) => domain
                        .strip_suffix(suffix.as_str())
                        .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
                    Entry::Ip(_) => false,
                })
            }
            Host::Ipv4(ip) => self.0.contains(&Entry::Ip(IpAddr::V4(ip))),
            Host::Ipv6(ip) => self.0.contains(&Entry::Ip(IpAddr::V6(ip))),
        };
        if allowed {
            Ok(())
        } else {
            Err(Refusal::NotAllowed)
        }
    }
}

/// Whether the authority of `value` (after `//`, up to the path, query or
/// fragment) contains `@`.
fn raw_user_info(value: &str) -> bool {
    value.split_once("//").is_some_and(|(_, rest)| {
        rest.split(['/', '?', '#'])
            .next()
            .is_some_and(|authority| authority.contains('@'))
    })
}

fn entry(text: &str) -> Option<Entry> {
    let (wildcard, name) = match text.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    if name.is_empty() || name.contains('*') {
        return None;
    }
    let bracketed;
    let name = if name.contains(':') && !name.starts_with('[') {
        bracketed = format!("[{name}]");
        &bracketed
    } else {
        name
    };
    match Host::parse(name).ok()? {
        Host::Domain(domain) => {
            let domain = domain.to_ascii_lowercase();
            let domain = domain.strip_suffix('.').unwrap_or(&domain).to_string();
            if domain.is_empty() || domain.ends_with('.') {
                return None;
            }
            Some(if wildcard {
                Entry::Subdomains(domain)
            } else {
                Entry::Domain(domain)
            })
        }
        Host::Ipv4(ip) if !wildcard => Some(Entry::Ip(IpAddr::V4(ip))),
        Host::Ipv6(ip) if !wildcard => Some(Entry::Ip(IpAddr::V6(ip))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(entries: &[&str]) -> Allowed {
        Allowed::parse(entries.iter().copied()).unwrap()
    }

    #[test]
    fn entries_are_validated() {
        for bad in [
            "",
            "*",
            "*.",
            "*.*.example.org",
            "a*.example.org",
            "example.com/x",
            "user@example.com",
            "*.10.0.0.1",
            "exa mple.com",
            "example.com:443",
            "[::1",
        ] {
            assert!(Allowed::parse([bad]).is_err(), "{bad:?} should be refused");
        }
        for good in [
            "example.com",
            "*.example.org",
            "EXAMPLE.com.",
            "10.0.0.1",
            "::1",
            "[2001:db8::1]",
            "bücher.example",
            "xn--bcher-kva.example",
            "localhost",
        ] {
            assert!(
                Allowed::parse([good]).is_ok(),
                "{good:?} should be accepted"
            );
        }
    }

    #[test]
    fn subdomain_entries_match_subdomains_only() {
        let list = allowed(&["*.example.org"]);
        assert_eq!(list.check("https://a.example.org/x"), Ok(()));
        assert_eq!(list.check("https://a.b.example.org/"), Ok(()));
        assert_eq!(list.check("https://example.org/"), Err(Refusal::NotAllowed));
        assert_eq!(
            list.check("https://badexample.org/"),
            Err(Refusal::NotAllowed)
        );
        assert_eq!(
            list.check("https://example.org.evil.test/"),
            Err(Refusal::NotAllowed)
        );
        assert_eq!(
            list.check("https://.example.org/"),
            Err(Refusal::NotAllowed)
        );
    }
}
