//! Calico selector language: first stop of every label match: parse once, match many.
//!
//! [`Selector::parse`] accepts exactly the language of Calico's
//! `libcalico-go/lib/selector` (tokenizer and parser), builds a compact tree, and
//! [`Selector::matches`] evaluates it against any [`Labels`] without allocating.
//! [`Display`](std::fmt::Display) gives Calico's canonical `String()` form, and
//! [`Selector::unique_id`] Felix's IP-set id for the selector.
//!
//! ```
//! use alp_selector::Selector;
//! let sel: Selector = "app == 'web' && tier in {'a', 'b'}".parse().unwrap();
//! assert!(sel.matches(&[("app", "web"), ("tier", "b")][..]));
//! assert_eq!(sel.to_string(), r#"(app == "web" && tier in {"a", "b"})"#);
//! ```
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing))]

mod ast;
mod error;
mod parser;
pub mod token;

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::str::FromStr;

use base64::Engine as _;
use sha2::{Digest as _, Sha224};

pub use error::ParseError;
pub use parser::MAX_DEPTH;
pub use token::MAX_LABEL_LEN;

/// A set of labels a selector can be evaluated against.
pub trait Labels {
    /// The value of label `key`, if present.
    fn get(&self, key: &str) -> Option<&str>;
}

impl<T: Labels + ?Sized> Labels for &T {
    fn get(&self, key: &str) -> Option<&str> {
        (**self).get(key)
    }
}

impl<T: Labels + ?Sized> Labels for Box<T> {
    fn get(&self, key: &str) -> Option<&str> {
        (**self).get(key)
    }
}

impl<K: Borrow<str> + Ord, V: AsRef<str>> Labels for BTreeMap<K, V> {
    fn get(&self, key: &str) -> Option<&str> {
        BTreeMap::get(self, key).map(AsRef::as_ref)
    }
}

impl<K: Borrow<str> + Hash + Eq, V: AsRef<str>, S: BuildHasher> Labels for HashMap<K, V, S> {
    fn get(&self, key: &str) -> Option<&str> {
        HashMap::get(self, key).map(AsRef::as_ref)
    }
}

/// A list of pairs; the first pair with the key wins.
impl<K: AsRef<str>, V: AsRef<str>> Labels for [(K, V)] {
    fn get(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| k.as_ref() == key).map(|(_, v)| v.as_ref())
    }
}

impl<K: AsRef<str>, V: AsRef<str>, const N: usize> Labels for [(K, V); N] {
    fn get(&self, key: &str) -> Option<&str> {
        Labels::get(self.as_slice(), key)
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Labels for Vec<(K, V)> {
    fn get(&self, key: &str) -> Option<&str> {
        Labels::get(self.as_slice(), key)
    }
}

/// A parsed and compiled selector.
///
/// Equality and hashing are structural: two selectors are equal exactly when their
/// canonical strings are.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Selector {
    root: ast::Node,
}

impl Selector {
    /// Parses a selector. Empty or blank (space/tab) input gives `all()`.
    ///
    /// Errors carry the byte position of the first problem in the input. Besides
    /// upstream's rules, more than [`MAX_DEPTH`] nested parentheses are rejected.
    pub fn parse(input: &str) -> Result<Selector, ParseError> {
        parser::parse(input).map(|root| Selector { root })
    }

    /// The selector matching everything (`all()`).
    pub fn all() -> Selector {
        Selector { root: ast::Node::All }
    }

    /// Whether `labels` satisfy the selector. Does not allocate.
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        self.root.eval(labels)
    }

    /// Felix's IP-set id for this selector:
    /// `"s:" + base64url_nopad(SHA-224("s:" + canonical))`.
    pub fn unique_id(&self) -> String {
        let mut hasher = Sha224::new();
        hasher.update(b"s:");
        hasher.update(self.to_string().as_bytes());
        let digest = hasher.finalize();
        let mut id = String::from("s:");
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(digest, &mut id);
        id
    }

    /// A copy with `prefix` put in front of every label name (Calico's
    /// `PrefixVisitor`, used for the `pcns.`/`pcsa.` selectors). The result is not
    /// re-validated: a prefixed name may exceed [`MAX_LABEL_LEN`].
    pub fn with_label_prefix(&self, prefix: &str) -> Selector {
        Selector { root: self.root.prefixed(prefix) }
    }

    /// Whether this is exactly `all()` (also the result of parsing blank input).
    pub fn is_all(&self) -> bool {
        self.root == ast::Node::All
    }
}

impl Default for Selector {
    /// `all()`.
    fn default() -> Self {
        Selector::all()
    }
}

/// The canonical form: exactly Calico's `String()`, e.g. `(a == "b" && has(c))`.
impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.root, f)
    }
}

impl FromStr for Selector {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Selector::parse(s)
    }
}

/// Calico's `selector.Normalise`: trims surrounding whitespace (any Unicode
/// whitespace, as Go's `strings.TrimSpace`), parses, and returns the canonical form.
/// Unlike upstream, a selector that does not parse is an error (positions refer to
/// the untrimmed input).
pub fn normalise(input: &str) -> Result<String, ParseError> {
    let trimmed = input.trim_start();
    let offset = input.len() - trimmed.len();
    Selector::parse(trimmed.trim_end()).map(|s| s.to_string()).map_err(|e| e.shifted(offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_impls() {
        let sel = Selector::parse("a == 'x' && b not in {'y'}").unwrap();
        let mut bt = BTreeMap::new();
        bt.insert("a".to_string(), "x".to_string());
        assert!(sel.matches(&bt));
        let hm: HashMap<&str, &str> = [("a", "x"), ("b", "y")].into_iter().collect();
        assert!(!sel.matches(&hm));
        assert!(sel.matches(&[("a", "x")]));
        assert!(sel.matches(&[("a", "x"), ("a", "z")][..]));
        assert!(sel.matches(&vec![("a".to_string(), "x".to_string())]));
        let boxed: Box<dyn Labels> = Box::new(bt);
        assert!(sel.matches(&boxed));
        assert!(sel.matches(&*boxed));
    }

    #[test]
    fn missing_label_semantics() {
        let none: [(&str, &str); 0] = [];
        for (s, want) in [
            ("a == 'x'", false),
            ("a != 'x'", true),
            ("a in {'x'}", false),
            ("a in {}", false),
            ("a not in {'x'}", true),
            ("a not in {}", true),
            ("a contains ''", false),
            ("a starts with ''", false),
            ("a ends with ''", false),
            ("has(a)", false),
            ("!has(a)", true),
            ("all()", true),
            ("global()", true),
            ("!global()", false),
        ] {
            assert_eq!(Selector::parse(s).unwrap().matches(&none), want, "{s}");
        }
        let some = [("a", "xyz")];
        for (s, want) in [
            ("a contains 'y'", true),
            ("a contains ''", true),
            ("a starts with 'xy'", true),
            ("a ends with 'yz'", true),
            ("a ends with 'xy'", false),
            ("a in {'xyz', 'b'}", true),
            ("a not in {'xyz', 'b'}", false),
            ("a in {}", false),
        ] {
            assert_eq!(Selector::parse(s).unwrap().matches(&some), want, "{s}");
        }
    }

    #[test]
    fn normalise_and_ids() {
        assert_eq!(normalise("").unwrap(), "all()");
        assert_eq!(normalise(" \n all() \r\n").unwrap(), "all()");
        assert!(Selector::parse("all()\n").is_err());
        let e = normalise("\n  a ==").unwrap_err();
        assert_eq!(e.position, 7);
        assert_eq!(Selector::parse("").unwrap().unique_id(), "s:5y5I3VdRZfDU01O--xXAPx2yxCQQqMf0M6IWug");
        assert!(Selector::all().is_all());
        assert!(Selector::parse(" ").unwrap().is_all());
        assert_eq!(Selector::default(), Selector::all());
        assert_eq!(Selector::parse("a == 'x'").unwrap(), Selector::parse("a==\"x\"").unwrap());
    }

    #[test]
    fn label_prefix() {
        let sel = Selector::parse("!(!(k == 'v' && has(t) || all()) && (a in {'b', 'c'}))").unwrap();
        assert_eq!(
            sel.with_label_prefix("visited/").to_string(),
            r#"!(!((visited/k == "v" && has(visited/t)) || all()) && visited/a in {"b", "c"})"#
        );
    }
}
