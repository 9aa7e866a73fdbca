//! Recursive-descent parser (Calico's `selector/parser`), pulling tokens lazily so
//! that the first error in the input is the one reported.

use crate::ast::{CmpOp, Node};
use crate::error::ParseError;
use crate::token::{LexError, Lexeme, Lexer, OPERATOR, TokenKind};

/// Deepest nesting of parentheses accepted (keeps recursion bounded).
pub const MAX_DEPTH: usize = 128;

const OPERAND: &str = "a label, '(', '!', 'has(', 'all()' or 'global()'";
const STRING: &str = "a string literal";
const LBRACE: &str = "'{'";
const SET_ITEM: &str = "a string literal or '}'";
const SET_NEXT: &str = "',' or '}'";
const AFTER_TOP: &str = "'&&', '||' or end of input";
const AFTER_NESTED: &str = "'&&', '||' or ')'";
const DEPTH: &str = "at most 128 nested parentheses";

/// Parses a whole selector; empty or blank input is `all()`.
pub(crate) fn parse(input: &str) -> Result<Node, ParseError> {
    let mut p = Parser { lexer: Lexer::new(input), peeked: None };
    if p.peek(OPERAND)?.kind == TokenKind::Eof {
        return Ok(Node::All);
    }
    let node = p.or_expr(0)?;
    let next = p.peek(AFTER_TOP)?;
    if next.kind != TokenKind::Eof {
        return Err(unexpected(&next, AFTER_TOP));
    }
    Ok(node)
}

fn unexpected(lexeme: &Lexeme<'_>, expected: &str) -> ParseError {
    ParseError::new(lexeme.pos, expected, lexeme.describe())
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    peeked: Option<Lexeme<'a>>,
}

impl<'a> Parser<'a> {
    /// The next token, not consumed. `expected` names what the caller allows here; it
    /// replaces the lexer's context-free text when no token can start at this point.
    fn peek(&mut self, expected: &str) -> Result<Lexeme<'a>, ParseError> {
        if let Some(lexeme) = self.peeked {
            return Ok(lexeme);
        }
        match self.lexer.next_lexeme() {
            Ok(lexeme) => {
                self.peeked = Some(lexeme);
                Ok(lexeme)
            }
            Err(LexError { mut error, generic }) => {
                if generic {
                    expected.clone_into(&mut error.expected);
                }
                Err(error)
            }
        }
    }

    /// Consumes the peeked token.
    fn bump(&mut self) {
        self.peeked = None;
    }

    /// Next token, which must be of `kind`.
    fn expect(&mut self, kind: TokenKind, expected: &str) -> Result<Lexeme<'a>, ParseError> {
        let lexeme = self.peek(expected)?;
        if lexeme.kind != kind {
            return Err(unexpected(&lexeme, expected));
        }
        self.bump();
        Ok(lexeme)
    }

    fn after(depth: usize) -> &'static str {
        if depth == 0 { AFTER_TOP } else { AFTER_NESTED }
    }

    /// `and ("||" and)*`
    fn or_expr(&mut self, depth: usize) -> Result<Node, ParseError> {
        let first = self.and_expr(depth)?;
        if self.peek(Self::after(depth))?.kind != TokenKind::Or {
            return Ok(first);
        }
        let mut nodes = vec![first];
        while self.peek(Self::after(depth))?.kind == TokenKind::Or {
            self.bump();
            nodes.push(self.and_expr(depth)?);
        }
        Ok(Node::Or(nodes.into_boxed_slice()))
    }

    /// `unary ("&&" unary)*`
    fn and_expr(&mut self, depth: usize) -> Result<Node, ParseError> {
        let first = self.unary(depth)?;
        if self.peek(Self::after(depth))?.kind != TokenKind::And {
            return Ok(first);
        }
        let mut nodes = vec![first];
        while self.peek(Self::after(depth))?.kind == TokenKind::And {
            self.bump();
            nodes.push(self.unary(depth)?);
        }
        Ok(Node::And(nodes.into_boxed_slice()))
    }

    /// `"!"* primary`; an even number of `!` cancels out.
    fn unary(&mut self, depth: usize) -> Result<Node, ParseError> {
        let mut negated = false;
        while self.peek(OPERAND)?.kind == TokenKind::Not {
            self.bump();
            negated = !negated;
        }
        let node = self.primary(depth)?;
        Ok(if negated { Node::Not(Box::new(node)) } else { node })
    }

    fn primary(&mut self, depth: usize) -> Result<Node, ParseError> {
        let lexeme = self.peek(OPERAND)?;
        let node = match lexeme.kind {
            TokenKind::Has => Node::Has(lexeme.text.into()),
            TokenKind::All => Node::All,
            TokenKind::Global => Node::Global,
            TokenKind::LParen => {
                if depth >= MAX_DEPTH {
                    return Err(unexpected(&lexeme, DEPTH));
                }
                self.bump();
                let inner = self.or_expr(depth + 1)?;
                self.expect(TokenKind::RParen, AFTER_NESTED)?;
                return Ok(inner);
            }
            TokenKind::Label => {
                self.bump();
                return self.operation(lexeme.text);
            }
            _ => return Err(unexpected(&lexeme, OPERAND)),
        };
        self.bump();
        Ok(node)
    }

    /// What follows a label: an operator and its operand.
    fn operation(&mut self, label: &str) -> Result<Node, ParseError> {
        let op = self.peek(OPERATOR)?;
        let cmp = match op.kind {
            TokenKind::Eq => CmpOp::Eq,
            TokenKind::Ne => CmpOp::Ne,
            TokenKind::Contains => CmpOp::Contains,
            TokenKind::StartsWith => CmpOp::StartsWith,
            TokenKind::EndsWith => CmpOp::EndsWith,
            TokenKind::In | TokenKind::NotIn => {
                self.bump();
                return self.set(label, op.kind == TokenKind::NotIn);
            }
            _ => return Err(unexpected(&op, OPERATOR)),
        };
        self.bump();
        let value = self.expect(TokenKind::StringLiteral, STRING)?;
        Ok(Node::Cmp { op: cmp, label: label.into(), value: value.text.into() })
    }

    /// `"{" [str ("," str)* [","]] "}"`
    fn set(&mut self, label: &str, negated: bool) -> Result<Node, ParseError> {
        self.expect(TokenKind::LBrace, LBRACE)?;
        let mut values: Vec<&str> = Vec::new();
        loop {
            let item = self.peek(SET_ITEM)?;
            match item.kind {
                TokenKind::RBrace => break,
                TokenKind::StringLiteral => {
                    self.bump();
                    values.push(item.text);
                }
                _ => return Err(unexpected(&item, SET_ITEM)),
            }
            let next = self.peek(SET_NEXT)?;
            match next.kind {
                TokenKind::Comma => self.bump(),
                TokenKind::RBrace => break,
                _ => return Err(unexpected(&next, SET_NEXT)),
            }
        }
        self.bump(); // the '}'
        values.sort_unstable();
        values.dedup();
        Ok(Node::Set { negated, label: label.into(), values: values.into_iter().map(Box::from).collect() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(input: &str) -> (usize, String, String) {
        let e = parse(input).unwrap_err();
        (e.position, e.expected, e.found)
    }

    fn canon(input: &str) -> String {
        parse(input).unwrap().to_string()
    }

    #[test]
    fn error_positions_and_expectations() {
        assert_eq!(err("b == b"), (5, STRING.into(), "label 'b'".into()));
        assert_eq!(err("'b1' == b"), (0, OPERAND.into(), "string 'b1'".into()));
        assert_eq!(err("b"), (1, OPERATOR.into(), "end of input".into()));
        assert_eq!(err("a "), (2, OPERATOR.into(), "end of input".into()));
        assert_eq!(err("!"), (1, OPERAND.into(), "end of input".into()));
        assert_eq!(err("a b"), (2, OPERATOR.into(), "'b'".into()));
        assert_eq!(err("foo in \"\""), (7, LBRACE.into(), "string ''".into()));
        assert_eq!(err("foo in {\"\", ||"), (12, SET_ITEM.into(), "'||'".into()));
        assert_eq!(err("a in {\"x\" \"y\"}"), (10, SET_NEXT.into(), "string 'y'".into()));
        assert_eq!(err("a in {,}"), (6, SET_ITEM.into(), "','".into()));
        assert_eq!(err("("), (1, OPERAND.into(), "end of input".into()));
        assert_eq!(err("(a == \"foo\""), (11, AFTER_NESTED.into(), "end of input".into()));
        assert_eq!(err(")"), (0, OPERAND.into(), "')'".into()));
        assert_eq!(err("()"), (1, OPERAND.into(), "')'".into()));
        assert_eq!(err("%"), (0, OPERAND.into(), "'%'".into()));
        assert_eq!(err("a == \"b\" && %"), (12, OPERAND.into(), "'%'".into()));
        assert_eq!(err("has(foo) &&"), (11, OPERAND.into(), "end of input".into()));
        assert_eq!(err("has(a) has(b)"), (7, AFTER_TOP.into(), "'has(b)'".into()));
        assert_eq!(err("has(a) %"), (7, AFTER_TOP.into(), "'%'".into()));
        assert_eq!(err("(has(a) %"), (8, AFTER_NESTED.into(), "'%'".into()));
        assert_eq!(err("a == 'x' || \n"), (12, OPERAND.into(), "'\\n'".into()));
        // The earliest error wins, whether the tokenizer or the parser finds it.
        assert_eq!(err(") %"), (0, OPERAND.into(), "')'".into()));
        let e = parse("a == 'b' && c").unwrap_err();
        assert_eq!(e.to_string(), format!("at position 13: expected {OPERATOR}, found end of input"));
    }

    #[test]
    fn depth_cap() {
        let ok = format!("{}has(a){}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert_eq!(canon(&ok), "has(a)");
        let ok = format!("{}has(a){}", "!(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert!(parse(&ok).is_ok());

        let deep = format!("{}has(a){}", "(".repeat(MAX_DEPTH + 1), ")".repeat(MAX_DEPTH + 1));
        assert_eq!(err(&deep), (MAX_DEPTH, DEPTH.into(), "'('".into()));
        // Far beyond the cap: still an error, no stack overflow.
        let huge = "(".repeat(1_000_000);
        assert_eq!(err(&huge).0, MAX_DEPTH);
        let huge = "!(".repeat(500_000);
        assert_eq!(err(&huge).0, 2 * MAX_DEPTH + 1);
        // Long flat chains and runs of '!' are not nesting.
        let chain = vec!["has(a)"; 10_000].join(" && ");
        assert!(parse(&chain).is_ok());
        let nots = format!("{}has(a)", "!".repeat(100_001));
        assert_eq!(canon(&nots), "!has(a)");
    }

    #[test]
    fn canonical_shapes() {
        assert_eq!(canon("a == 'b' && c == 'd' && has(e)"), r#"(a == "b" && c == "d" && has(e))"#);
        assert_eq!(canon("a == 'b' || c == 'd' || has(e)"), r#"(a == "b" || c == "d" || has(e))"#);
        assert_eq!(canon("(has(a) || has(b)) || has(c)"), "((has(a) || has(b)) || has(c))");
        assert_eq!(canon("has(a) && has(b) || has(c)"), "((has(a) && has(b)) || has(c))");
        assert_eq!(canon("has(a) || has(b) && has(c)"), "(has(a) || (has(b) && has(c)))");
        assert_eq!(canon("!(has(a) && has(b))"), "!(has(a) && has(b))");
        assert_eq!(canon("!a == 'x'"), r#"!a == "x""#);
        assert_eq!(canon("((( has(a) )))"), "has(a)");
        assert_eq!(canon("a notin {'y','x',}"), r#"a not in {"x", "y"}"#);
        assert_eq!(canon("a in { }"), "a in {}");
        assert_eq!(canon("a != \"x'\""), r#"a != "x'""#);
        assert_eq!(canon("a == ''"), r#"a == """#);
        // Upstream keeps a negated parenthesised negation as two nodes: "!!x", which
        // re-parses as "x" (the only canonical string that is not a fixed point).
        assert_eq!(canon("!(!has(a))"), "!!has(a)");
        assert_eq!(canon("!!has(a)"), "has(a)");
    }
}
