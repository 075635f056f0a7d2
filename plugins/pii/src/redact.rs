//! Replacement text for findings, in the mode the deployment chose.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::detect::Kind;

/// The environment variable that selects the redaction mode.
pub const MODE_VARIABLE: &str = "WARDEN_PII_REDACTION";

/// How matches are replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    /// Keep the last four characters of cards, IBANs and phone numbers, the
    /// first character and the domain of an email; `*` for everything else.
    #[default]
    Mask,
    /// `<kind:first 12 hex digits of sha256(normalised value)>`.
    Hash,
    /// `<EMAIL_1>`, `<PHONE_2>`…: numbered per kind within one verdict, the
    /// same value always getting the same placeholder.
    Placeholder,
}

impl Mode {
    /// Parses a mode name; an empty value means the default.
    pub fn parse(value: &str) -> Result<Mode, String> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "mask" => Ok(Mode::Mask),
            "hash" => Ok(Mode::Hash),
            "placeholder" => Ok(Mode::Placeholder),
            _ => Err(format!(
                "{MODE_VARIABLE} must be one of `mask`, `hash` or `placeholder` (or unset for `mask`)"
            )),
        }
    }

    /// The mode from [`MODE_VARIABLE`]; unset means `mask`.
    pub fn from_env() -> Result<Mode, String> {
        match std::env::var(MODE_VARIABLE) {
            Ok(value) => Mode::parse(&value),
            Err(std::env::VarError::NotPresent) => Ok(Mode::Mask),
            Err(std::env::VarError::NotUnicode(_)) => Err(format!(
                "{MODE_VARIABLE} is not UTF-8; it must be one of `mask`, `hash` or `placeholder`"
            )),
        }
    }
}

/// The value a match stands for, so `4111 1111 1111 1111` and
/// `4111-1111-1111-1111` hash and number alike: emails and IP addresses in
/// lower case, everything else its letters and digits in upper case.
pub fn normalise(kind: Kind, matched: &str) -> String {
    match kind {
        Kind::Email | Kind::IpAddress => matched.to_ascii_lowercase(),
        Kind::Phone => {
            let digits: String = matched.chars().filter(char::is_ascii_digit).collect();
            if matched.starts_with('+') {
                format!("+{digits}")
            } else {
                digits
            }
        }
        _ => matched
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_uppercase())
            .collect(),
    }
}

/// Produces replacements for the findings of one verdict.
#[derive(Default)]
pub struct Redactor {
    mode: Mode,
    placeholders: BTreeMap<(Kind, String), usize>,
    counts: BTreeMap<Kind, usize>,
}

impl Redactor {
    pub fn new(mode: Mode) -> Redactor {
        Redactor {
            mode,
            ..Redactor::default()
        }
    }

    /// The replacement for `matched`, a match of `kind`.
    pub fn replacement(&mut self, kind: Kind, matched: &str) -> String {
        match self.mode {
            Mode::Mask => mask(kind, matched),
            Mode::Hash => {
                let digest = Sha256::digest(normalise(kind, matched).as_bytes());
                let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
                format!("<{}:{hex}>", kind.as_str())
            }
            Mode::Placeholder => {
                let key = (kind, normalise(kind, matched));
                let n = match self.placeholders.get(&key) {
                    Some(&n) => n,
                    None => {
                        let count = self.counts.entry(kind).or_default();
                        *count += 1;
                        self.placeholders.insert(key, *count);
                        *count
                    }
                };
                let name = kind.as_str().to_ascii_uppercase().replace('-', "_");
                format!("<{name}_{n}>")
            }
        }
    }
}

/// `mask` mode. Separators stay where they are so the text keeps its shape.
pub fn mask(kind: Kind, matched: &str) -> String {
    match kind {
        Kind::Email => {
            let (local, domain) = matched.split_once('@').unwrap_or((matched, ""));
            let first = local.chars().next().unwrap_or('*');
            format!("{first}***@{domain}")
        }
        Kind::PaymentCard | Kind::Iban | Kind::Phone => {
            let total = matched.chars().filter(char::is_ascii_alphanumeric).count();
            let keep_from = total.saturating_sub(4);
            let mut seen = 0;
            matched
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        seen += 1;
                        if seen > keep_from { c } else { '*' }
                    } else {
                        c
                    }
                })
                .collect()
        }
        _ => matched
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { '*' } else { c })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_keeps_last_four_and_email_domain() {
        assert_eq!(
            mask(Kind::PaymentCard, "4111 1111 1111 1111"),
            "**** **** **** 1111"
        );
        assert_eq!(
            mask(Kind::Iban, "DE89370400440532013000"),
            "******************3000"
        );
        assert_eq!(mask(Kind::Phone, "+44 20 7946 0958"), "+** ** **** 0958");
        assert_eq!(
            mask(Kind::Email, "jane.doe@example.com"),
            "j***@example.com"
        );
        assert_eq!(mask(Kind::UsSsn, "536-22-1234"), "***-**-****");
        assert_eq!(mask(Kind::IpAddress, "81.2.69.160"), "**.*.**.***");
    }

    #[test]
    fn hash_is_sha256_of_the_normalised_value() {
        let mut r = Redactor::new(Mode::Hash);
        // sha256("jane@example.com") = 8c87b489ce35cf2e2f39f80e282cb2e804932a56a213983eeeb428407d43b52d
        assert_eq!(
            r.replacement(Kind::Email, "Jane@Example.com"),
            "<email:8c87b489ce35>"
        );
        assert_eq!(
            r.replacement(Kind::PaymentCard, "4111 1111 1111 1111"),
            r.replacement(Kind::PaymentCard, "4111-1111-1111-1111")
        );
        assert_ne!(
            r.replacement(Kind::PaymentCard, "4111111111111111"),
            r.replacement(Kind::PaymentCard, "5555555555554444")
        );
    }

    #[test]
    fn placeholders_are_per_kind_and_consistent() {
        let mut r = Redactor::new(Mode::Placeholder);
        assert_eq!(r.replacement(Kind::Email, "a@example.com"), "<EMAIL_1>");
        assert_eq!(r.replacement(Kind::Phone, "+44 20 7946 0958"), "<PHONE_1>");
        assert_eq!(r.replacement(Kind::Email, "b@example.com"), "<EMAIL_2>");
        assert_eq!(r.replacement(Kind::Email, "A@example.com"), "<EMAIL_1>");
        assert_eq!(r.replacement(Kind::Phone, "+442079460958"), "<PHONE_1>");
        assert_eq!(
            r.replacement(Kind::PaymentCard, "4111 1111 1111 1111"),
            "<PAYMENT_CARD_1>"
        );
    }

    #[test]
    fn modes_parse_and_unknown_names_the_variable() {
        assert_eq!(Mode::parse("mask"), Ok(Mode::Mask));
        assert_eq!(Mode::parse(""), Ok(Mode::Mask));
        assert_eq!(Mode::parse(" Hash "), Ok(Mode::Hash));
        assert_eq!(Mode::parse("placeholder"), Ok(Mode::Placeholder));
        let err = Mode::parse("shred").unwrap_err();
        assert!(err.contains(MODE_VARIABLE), "{err}");
        assert!(err.contains("mask") && err.contains("hash") && err.contains("placeholder"));
    }
}
