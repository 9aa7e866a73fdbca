//! Compiled selector tree: evaluation and the canonical string form.

use std::fmt::{self, Write as _};

use crate::Labels;

/// String comparison operators taking one literal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Contains,
    StartsWith,
    EndsWith,
}

impl CmpOp {
    fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => " == ",
            CmpOp::Ne => " != ",
            CmpOp::Contains => " contains ",
            CmpOp::StartsWith => " starts with ",
            CmpOp::EndsWith => " ends with ",
        }
    }
}

/// One node of a parsed selector. `And`/`Or` hold two or more operands; parentheses
/// leave no node of their own (as upstream).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Node {
    All,
    Global,
    Has(Box<str>),
    Cmp {
        op: CmpOp,
        label: Box<str>,
        value: Box<str>,
    },
    /// `label in {..}` (or `not in` when `negated`); `values` sorted by bytes, no duplicates.
    Set {
        negated: bool,
        label: Box<str>,
        values: Box<[Box<str>]>,
    },
    Not(Box<Node>),
    And(Box<[Node]>),
    Or(Box<[Node]>),
}

impl Node {
    pub(crate) fn eval<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        match self {
            Node::All | Node::Global => true,
            Node::Has(label) => labels.get(label).is_some(),
            Node::Cmp { op, label, value } => match (op, labels.get(label)) {
                (CmpOp::Ne, None) => true,
                (_, None) => false,
                (CmpOp::Eq, Some(v)) => v == &**value,
                (CmpOp::Ne, Some(v)) => v != &**value,
                (CmpOp::Contains, Some(v)) => v.contains(&**value),
                (CmpOp::StartsWith, Some(v)) => v.starts_with(&**value),
                (CmpOp::EndsWith, Some(v)) => v.ends_with(&**value),
            },
            Node::Set { negated, label, values } => match labels.get(label) {
                None => *negated,
                Some(v) => values.binary_search_by(|x| (**x).cmp(v)).is_ok() != *negated,
            },
            Node::Not(inner) => !inner.eval(labels),
            Node::And(nodes) => nodes.iter().all(|n| n.eval(labels)),
            Node::Or(nodes) => nodes.iter().any(|n| n.eval(labels)),
        }
    }

    /// Copy with every label name prefixed (Calico's `PrefixVisitor`).
    pub(crate) fn prefixed(&self, prefix: &str) -> Node {
        let p = |label: &str| -> Box<str> { format!("{prefix}{label}").into_boxed_str() };
        match self {
            Node::All => Node::All,
            Node::Global => Node::Global,
            Node::Has(label) => Node::Has(p(label)),
            Node::Cmp { op, label, value } => Node::Cmp { op: *op, label: p(label), value: value.clone() },
            Node::Set { negated, label, values } => {
                Node::Set { negated: *negated, label: p(label), values: values.clone() }
            }
            Node::Not(inner) => Node::Not(Box::new(inner.prefixed(prefix))),
            Node::And(nodes) => Node::And(nodes.iter().map(|n| n.prefixed(prefix)).collect()),
            Node::Or(nodes) => Node::Or(nodes.iter().map(|n| n.prefixed(prefix)).collect()),
        }
    }
}

/// Writes `s` in double quotes, or in single quotes if it contains `"`.
fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    let q = if s.contains('"') { '\'' } else { '"' };
    f.write_char(q)?;
    f.write_str(s)?;
    f.write_char(q)
}

fn write_joined(f: &mut fmt::Formatter<'_>, nodes: &[Node], sep: &str) -> fmt::Result {
    f.write_char('(')?;
    for (i, n) in nodes.iter().enumerate() {
        if i > 0 {
            f.write_str(sep)?;
        }
        fmt::Display::fmt(n, f)?;
    }
    f.write_char(')')
}

/// Calico's `String()`: the canonical form.
impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::All => f.write_str("all()"),
            Node::Global => f.write_str("global()"),
            Node::Has(label) => write!(f, "has({label})"),
            Node::Cmp { op, label, value } => {
                f.write_str(label)?;
                f.write_str(op.as_str())?;
                write_quoted(f, value)
            }
            Node::Set { negated, label, values } => {
                f.write_str(label)?;
                f.write_str(if *negated { " not in {" } else { " in {" })?;
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write_quoted(f, v)?;
                }
                f.write_char('}')
            }
            Node::Not(inner) => {
                f.write_char('!')?;
                fmt::Display::fmt(inner, f)
            }
            Node::And(nodes) => write_joined(f, nodes, " && "),
            Node::Or(nodes) => write_joined(f, nodes, " || "),
        }
    }
}
