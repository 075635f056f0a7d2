//! Bounds on text that crosses a trust boundary (caller requests, plugin
//! errors and logs, upstream messages): cut to a size, on a character
//! boundary, saying how much was cut, so nothing unbounded is kept, logged or
//! stored.

use std::borrow::Cow;

/// The longest prefix of `text` of at most `max` bytes that ends on a
/// character boundary.
pub(crate) fn prefix(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// `text` if it has at most `max` bytes; otherwise its [`prefix`] of `max`
/// bytes followed by `…[N more bytes]`.
pub(crate) fn bounded(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    let kept = prefix(text, max);
    Cow::Owned(format!("{kept}…[{} more bytes]", text.len() - kept.len()))
}

#[cfg(test)]
mod tests {
    use super::{bounded, prefix};

    #[test]
    fn cuts_on_a_character_boundary_and_says_how_much() {
        assert_eq!(bounded("short", 10), "short");
        assert_eq!(bounded("abcdef", 3), "abc…[3 more bytes]");
        // "é" is two bytes: a cut inside it moves back before it.
        assert_eq!(bounded("aé", 2), "a…[2 more bytes]");
        assert_eq!(prefix("aé", 2), "a");
        assert_eq!(prefix("aé", 3), "aé");
    }
}
