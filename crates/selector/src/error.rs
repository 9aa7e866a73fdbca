//! The one error type of the crate.

/// Why a selector (or a token stream) was rejected.
///
/// `position` is a 0-based byte offset into the input; `expected` says what the
/// grammar allowed there and `found` what was actually there (or `"end of input"`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at position {position}: expected {expected}, found {found}")]
pub struct ParseError {
    /// Byte offset (0-based) of the offending input.
    pub position: usize,
    /// What the grammar allowed at `position`.
    pub expected: String,
    /// What was there instead, or `"end of input"`.
    pub found: String,
}

impl ParseError {
    pub(crate) fn new(position: usize, expected: &str, found: impl Into<String>) -> Self {
        ParseError { position, expected: expected.to_owned(), found: found.into() }
    }

    /// Same error, `offset` bytes further into a larger input.
    pub(crate) fn shifted(mut self, offset: usize) -> Self {
        self.position = self.position.saturating_add(offset);
        self
    }
}

/// Text used for `found` when the input ran out.
pub(crate) const END_OF_INPUT: &str = "end of input";

/// Longest piece of input quoted in an error message (in chars).
const MAX_QUOTED: usize = 40;

/// `'text'`, shortened to [`MAX_QUOTED`] chars.
pub(crate) fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_QUOTED * 4) + 5);
    out.push('\'');
    for (i, c) in text.chars().enumerate() {
        if i == MAX_QUOTED {
            out.push('…');
            break;
        }
        out.extend(c.escape_debug());
    }
    out.push('\'');
    out
}
