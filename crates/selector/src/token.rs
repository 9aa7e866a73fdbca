//! Tokenizer for the selector language (Calico's `selector/tokenizer`).
//!
//! [`tokenize`] turns a whole input into tokens, ending with [`TokenKind::Eof`].
//! The parser uses the same lexer lazily, one token at a time.

use crate::error::{END_OF_INPUT, ParseError, quoted};

/// Longest label name accepted (bytes; labels are ASCII).
pub const MAX_LABEL_LEN: usize = 512;

/// Kind of a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// A label name (carries the name).
    Label,
    /// A quoted string (carries the text between the quotes).
    StringLiteral,
    /// `has(label)` (carries the label name).
    Has,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `in`
    In,
    /// `not in` / `notin`
    NotIn,
    /// `!`
    Not,
    /// `contains`
    Contains,
    /// `starts with` / `startswith`
    StartsWith,
    /// `ends with` / `endswith`
    EndsWith,
    /// `all()`
    All,
    /// `global()`
    Global,
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `{`
    LBrace,
    /// `}`
    RBrace,
    /// `,`
    Comma,
    /// `&&`
    And,
    /// `||`
    Or,
    /// End of input (always the last token).
    Eof,
}

impl TokenKind {
    /// Snake-case name, as used by the conformance vectors (`"not_in"`, `"string_literal"`, …).
    pub fn name(self) -> &'static str {
        match self {
            TokenKind::Label => "label",
            TokenKind::StringLiteral => "string_literal",
            TokenKind::Has => "has",
            TokenKind::Eq => "eq",
            TokenKind::Ne => "ne",
            TokenKind::In => "in",
            TokenKind::NotIn => "not_in",
            TokenKind::Not => "not",
            TokenKind::Contains => "contains",
            TokenKind::StartsWith => "starts_with",
            TokenKind::EndsWith => "ends_with",
            TokenKind::All => "all",
            TokenKind::Global => "global",
            TokenKind::LParen => "lparen",
            TokenKind::RParen => "rparen",
            TokenKind::LBrace => "lbrace",
            TokenKind::RBrace => "rbrace",
            TokenKind::Comma => "comma",
            TokenKind::And => "and",
            TokenKind::Or => "or",
            TokenKind::Eof => "eof",
        }
    }

    /// Whether tokens of this kind carry a value.
    pub fn has_value(self) -> bool {
        matches!(self, TokenKind::Label | TokenKind::StringLiteral | TokenKind::Has)
    }
}

/// One token: its kind and, for labels, strings and `has(…)`, its text.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Token {
    /// What the token is.
    pub kind: TokenKind,
    /// The label name or string contents; `None` for the other kinds.
    pub value: Option<String>,
}

/// Tokenizes the whole input (Calico's `Tokenize`). The result always ends with an
/// [`TokenKind::Eof`] token. Only space and tab count as whitespace.
pub fn tokenize(input: &str) -> Result<Vec<Token>, ParseError> {
    let mut lexer = Lexer::new(input);
    let mut tokens = Vec::new();
    loop {
        let lexeme = lexer.next_lexeme().map_err(|e| e.error)?;
        tokens.push(Token { kind: lexeme.kind, value: lexeme.kind.has_value().then(|| lexeme.text.to_owned()) });
        if lexeme.kind == TokenKind::Eof {
            return Ok(tokens);
        }
    }
}

/// What any token may start with; used when the lexer does not know the context.
const ANY_TOKEN: &str = "a label, a string, an operator, '(', ')', '{', '}', ',', '!', 'has(', 'all()' or 'global()'";
/// What may follow a label.
pub(crate) const OPERATOR: &str = "an operator ('==', '!=', 'in', 'not in', 'contains', 'starts with' or 'ends with')";

/// A token with its position; `text` borrows from the input.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Lexeme<'a> {
    pub(crate) kind: TokenKind,
    /// Label name / string contents / `has` label; empty for other kinds.
    pub(crate) text: &'a str,
    /// Byte offset where the token starts.
    pub(crate) pos: usize,
}

impl Lexeme<'_> {
    /// How the token is named in error messages.
    pub(crate) fn describe(&self) -> String {
        match self.kind {
            TokenKind::Label => format!("label {}", quoted(self.text)),
            TokenKind::StringLiteral => format!("string {}", quoted(self.text)),
            TokenKind::Has => format!("'has({})'", self.text),
            TokenKind::Eq => "'=='".into(),
            TokenKind::Ne => "'!='".into(),
            TokenKind::In => "'in'".into(),
            TokenKind::NotIn => "'not in'".into(),
            TokenKind::Not => "'!'".into(),
            TokenKind::Contains => "'contains'".into(),
            TokenKind::StartsWith => "'starts with'".into(),
            TokenKind::EndsWith => "'ends with'".into(),
            TokenKind::All => "'all()'".into(),
            TokenKind::Global => "'global()'".into(),
            TokenKind::LParen => "'('".into(),
            TokenKind::RParen => "')'".into(),
            TokenKind::LBrace => "'{'".into(),
            TokenKind::RBrace => "'}'".into(),
            TokenKind::Comma => "','".into(),
            TokenKind::And => "'&&'".into(),
            TokenKind::Or => "'||'".into(),
            TokenKind::Eof => END_OF_INPUT.into(),
        }
    }
}

/// A lexer error. `generic` errors (an unexpected character where a new token should
/// start) carry a context-free `expected`, which the parser replaces with its own.
#[derive(Debug)]
pub(crate) struct LexError {
    pub(crate) error: ParseError,
    pub(crate) generic: bool,
}

impl LexError {
    fn specific(position: usize, expected: &str, found: String) -> Self {
        LexError { error: ParseError::new(position, expected, found), generic: false }
    }
}

/// `[A-Za-z0-9_./-]`
pub(crate) fn is_label_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'/' | b'-')
}

fn is_space(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Pull lexer over one input.
#[derive(Debug)]
pub(crate) struct Lexer<'a> {
    input: &'a str,
    pos: usize,
    /// The previous token was a label: the next word must be an operator.
    after_label: bool,
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(input: &'a str) -> Self {
        Lexer { input, pos: 0, after_label: false }
    }

    fn byte(&self, at: usize) -> Option<u8> {
        self.input.as_bytes().get(at).copied()
    }

    fn slice(&self, from: usize, to: usize) -> &'a str {
        self.input.get(from..to).unwrap_or("")
    }

    fn has_at(&self, at: usize, word: &str) -> bool {
        self.input.as_bytes().get(at..).is_some_and(|rest| rest.starts_with(word.as_bytes()))
    }

    fn skip_space(&self, mut at: usize) -> usize {
        while self.byte(at).is_some_and(is_space) {
            at += 1;
        }
        at
    }

    fn label_end(&self, mut at: usize) -> usize {
        while self.byte(at).is_some_and(is_label_byte) {
            at += 1;
        }
        at
    }

    /// End of input or a byte that cannot continue a label.
    fn boundary(&self, at: usize) -> bool {
        !self.byte(at).is_some_and(is_label_byte)
    }

    /// Describes the input at `at`: a whole label-like word, one character, or end of input.
    fn describe_at(&self, at: usize) -> String {
        let end = self.label_end(at);
        if end > at {
            return quoted(self.slice(at, end));
        }
        match self.input.get(at..).and_then(|rest| rest.chars().next()) {
            Some(c) => quoted(c.encode_utf8(&mut [0; 4])),
            None => END_OF_INPUT.to_owned(),
        }
    }

    /// Describes up to `len` bytes at `at` (for the two-character operators).
    fn describe_chars(&self, at: usize, len: usize) -> String {
        match self.input.get(at..) {
            Some(rest) if !rest.is_empty() => {
                let text: String = rest.chars().take(len).collect();
                quoted(&text)
            }
            _ => END_OF_INPUT.to_owned(),
        }
    }

    /// `word` at `at` followed by a word boundary: the position after it.
    fn word_at(&self, at: usize, word: &str) -> Option<usize> {
        let end = at + word.len();
        (self.has_at(at, word) && self.boundary(end)).then_some(end)
    }

    /// A label name at `at`: its end, or an error.
    fn label_at(&self, at: usize) -> Result<usize, LexError> {
        let end = self.label_end(at);
        if end == at {
            return Err(LexError { error: ParseError::new(at, "a label", self.describe_at(at)), generic: false });
        }
        if end - at > MAX_LABEL_LEN {
            return Err(LexError::specific(
                at,
                "a label of at most 512 characters",
                format!("a label of {} characters", end - at),
            ));
        }
        Ok(end)
    }

    /// After a label: one of the word operators.
    fn operator_word(&self, at: usize) -> Result<(TokenKind, usize), LexError> {
        if let Some(end) = self.word_at(at, "contains") {
            return Ok((TokenKind::Contains, end));
        }
        if let Some(end) = self.word_at(at, "in") {
            return Ok((TokenKind::In, end));
        }
        for (first, second, kind, operand) in [
            ("starts", "with", TokenKind::StartsWith, "a string literal"),
            ("ends", "with", TokenKind::EndsWith, "a string literal"),
            ("not", "in", TokenKind::NotIn, "'{'"),
        ] {
            if !self.has_at(at, first) {
                continue;
            }
            // Both the joined ("startswith") and the spaced ("starts  with") forms.
            let second_at = self.skip_space(at + first.len());
            if let Some(end) = self.word_at(second_at, second) {
                // As upstream, blanks after a two-word operator are skipped before the
                // boundary check, so "a starts with b" is a tokenizer error.
                let next = self.skip_space(end);
                if self.boundary(next) {
                    return Ok((kind, end));
                }
                return Err(LexError::specific(next, operand, self.describe_at(next)));
            }
            if self.boundary(at + first.len()) {
                let want = format!("'{second}'");
                return Err(LexError::specific(second_at, &want, self.describe_at(second_at)));
            }
        }
        Err(LexError::specific(at, OPERATOR, self.describe_at(at)))
    }

    /// `name(` was seen (ending at `at`): optional blanks, then `)`.
    fn close_paren(&self, at: usize) -> Result<usize, LexError> {
        let at = self.skip_space(at);
        if self.byte(at) == Some(b')') { Ok(at + 1) } else { Err(LexError::specific(at, "')'", self.describe_at(at))) }
    }

    /// The next token; after [`TokenKind::Eof`] it keeps returning `Eof`.
    pub(crate) fn next_lexeme(&mut self) -> Result<Lexeme<'a>, LexError> {
        let start = self.skip_space(self.pos);
        let (kind, text, end) = self.scan(start)?;
        self.pos = end;
        self.after_label = kind == TokenKind::Label;
        Ok(Lexeme { kind, text, pos: start })
    }

    fn scan(&self, start: usize) -> Result<(TokenKind, &'a str, usize), LexError> {
        let Some(first) = self.byte(start) else {
            return Ok((TokenKind::Eof, "", start));
        };
        let second = self.byte(start + 1);
        let simple = |kind| Ok((kind, "", start + 1));
        let pair = |kind, op: &str| {
            if second == op.as_bytes().get(1).copied() {
                Ok((kind, "", start + 2))
            } else {
                let want = format!("'{op}'");
                Err(LexError::specific(start, &want, self.describe_chars(start, 2)))
            }
        };
        match first {
            b'(' => simple(TokenKind::LParen),
            b')' => simple(TokenKind::RParen),
            b'{' => simple(TokenKind::LBrace),
            b'}' => simple(TokenKind::RBrace),
            b',' => simple(TokenKind::Comma),
            b'"' | b'\'' => {
                let body = start + 1;
                let rest = self.input.get(body..).unwrap_or("");
                match rest.find(char::from(first)) {
                    Some(len) => Ok((TokenKind::StringLiteral, self.slice(body, body + len), body + len + 1)),
                    None => Err(LexError::specific(
                        self.input.len(),
                        if first == b'"' { "a closing '\"'" } else { "a closing \"'\"" },
                        END_OF_INPUT.to_owned(),
                    )),
                }
            }
            b'=' => pair(TokenKind::Eq, "=="),
            b'&' => pair(TokenKind::And, "&&"),
            b'|' => pair(TokenKind::Or, "||"),
            b'!' if second == Some(b'=') => Ok((TokenKind::Ne, "", start + 2)),
            b'!' => simple(TokenKind::Not),
            _ if self.after_label => {
                let (kind, end) = self.operator_word(start)?;
                Ok((kind, "", end))
            }
            _ if self.has_at(start, "has(") => {
                let label_at = self.skip_space(start + 4);
                let label_end = self.label_at(label_at)?;
                let end = self.close_paren(label_end)?;
                Ok((TokenKind::Has, self.slice(label_at, label_end), end))
            }
            _ if self.has_at(start, "all(") => Ok((TokenKind::All, "", self.close_paren(start + 4)?)),
            _ if self.has_at(start, "global(") => Ok((TokenKind::Global, "", self.close_paren(start + 7)?)),
            _ if is_label_byte(first) => {
                let end = self.label_at(start)?;
                Ok((TokenKind::Label, self.slice(start, end), end))
            }
            _ => Err(LexError { error: ParseError::new(start, ANY_TOKEN, self.describe_at(start)), generic: true }),
        }
    }
}

#[cfg(test)]
mod tests;
