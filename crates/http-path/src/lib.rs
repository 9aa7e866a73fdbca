//! HTTP path normalisation and matching as Calico's Dikastes does it at HEAD
//! (`app-policy/checker/match.go`; cases in `vectors/http_paths.json`).
//!
//! [`normalize`] applies, in order: cut at the first `?` or `#`; percent-decode once (Go
//! `url.PathUnescape`: a `%` not followed by two hex digits rejects, `+` stays); reject if the
//! decoded text still holds `%2e`, `%2f` or `%5c` (any case: double encoding) or a NUL byte;
//! turn `\` into `/`; reject unless it starts with `/`; cut every segment at its first `;`
//! (matrix parameters); Go `path.Clean`. An input that is already normal is returned borrowed,
//! without allocating.
//!
//! Percent-decoding can produce bytes that are not UTF-8 (`/%ff`). Go keeps them; so does
//! [`normalize_bytes`], which is what [`PathMatcher`] compares, while [`normalize`] shows them as
//! U+FFFD.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing))]

use std::borrow::Cow;

/// Normalises a request or rule path; `None` means rejected (such a path never matches).
///
/// Bytes that percent-decoding produced and that are not UTF-8 become U+FFFD here; use
/// [`normalize_bytes`] for the exact result.
pub fn normalize(path: &str) -> Option<Cow<'_, str>> {
    if is_normal(path.as_bytes()) {
        return Some(Cow::Borrowed(path));
    }
    let bytes = normalize_slow(path.as_bytes())?;
    Some(Cow::Owned(match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }))
}

/// [`normalize`] with the exact bytes Go would produce; borrowed (the whole input) when the input
/// is already normal.
pub fn normalize_bytes(path: &str) -> Option<Cow<'_, [u8]>> {
    if is_normal(path.as_bytes()) {
        Some(Cow::Borrowed(path.as_bytes()))
    } else {
        normalize_slow(path.as_bytes()).map(Cow::Owned)
    }
}

/// Per pair of adjacent bytes `(x, y)`: is `y` a byte that normalisation changes, or `x y` = `//`;
/// and is `x y` = `/.` (the start of a possible dot segment).
#[inline(always)]
fn pair_flags(x: u8, y: u8) -> (u8, u8) {
    let slash = x == b'/';
    let bad = (y == b'?') | (y == b'#') | (y == b'%') | (y == b'\\') | (y == b';') | (y == 0) | (slash & (y == b'/'));
    (u8::from(bad), u8::from(slash & (y == b'.')))
}

/// True when normalising `p` would return it unchanged: it starts with `/`, has none of
/// `? # % \ ;` or NUL, no empty, `.` or `..` segment, and no trailing `/` (except `"/"`).
#[inline]
fn is_normal(p: &[u8]) -> bool {
    let Some(rest) = p.strip_prefix(b"/") else {
        return false;
    };
    // Every adjacent pair, 16 at a time in fixed-size lanes the compiler vectorises, then the
    // tail. Dot segments are checked exactly only when some "/." occurs (rare).
    let mut bad = [0u8; 16];
    let mut slash_dot = [0u8; 16];
    let mut tail = p;
    while let Some(chunk) = tail.first_chunk::<17>() {
        let (Some(xs), Some(ys)) = (chunk.first_chunk::<16>(), chunk.last_chunk::<16>()) else {
            break;
        };
        for ((&x, &y), (b, d)) in xs.iter().zip(ys).zip(bad.iter_mut().zip(slash_dot.iter_mut())) {
            let (fb, fd) = pair_flags(x, y);
            *b |= fb;
            *d |= fd;
        }
        tail = tail.get(16..).unwrap_or_default();
    }
    let (mut any_bad, mut any_slash_dot) = (0u8, 0u8);
    for (&x, &y) in tail.iter().zip(tail.get(1..).unwrap_or_default()) {
        let (fb, fd) = pair_flags(x, y);
        any_bad |= fb;
        any_slash_dot |= fd;
    }
    any_bad |= bad.iter().fold(0, |a, &v| a | v);
    any_slash_dot |= slash_dot.iter().fold(0, |a, &v| a | v);
    if any_bad != 0 || rest.last() == Some(&b'/') {
        return false;
    }
    any_slash_dot == 0 || !has_dot_segment(rest)
}

/// Whether some `/`-separated segment of `rest` is `.` or `..`.
#[cold]
fn has_dot_segment(rest: &[u8]) -> bool {
    rest.split(|&b| b == b'/').any(|seg| seg == b"." || seg == b"..")
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Go `url.PathUnescape`: every `%` must be followed by two hex digits; nothing else changes.
fn percent_decode(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut it = s.iter();
    while let Some(&b) = it.next() {
        if b == b'%' {
            let hi = hex_val(*it.next()?)?;
            let lo = hex_val(*it.next()?)?;
            out.push((hi << 4) | lo);
        } else {
            out.push(b);
        }
    }
    Some(out)
}

/// `%2e`, `%2f` or `%5c` in any case: a second layer of encoding of `.`, `/` or `\`.
fn has_double_encoding(s: &[u8]) -> bool {
    s.windows(3).any(|w| match *w {
        [b'%', b'2', c] => matches!(c, b'e' | b'E' | b'f' | b'F'),
        [b'%', b'5', c] => matches!(c, b'c' | b'C'),
        _ => false,
    })
}

#[inline(never)]
fn normalize_slow(input: &[u8]) -> Option<Vec<u8>> {
    // 1. Cut at the first '?' or '#'.
    let raw = match input.iter().position(|&b| b == b'?' || b == b'#') {
        Some(end) => input.get(..end)?,
        None => input,
    };
    // 2. Percent-decode once.
    let decoded: Cow<'_, [u8]> =
        if raw.contains(&b'%') { Cow::Owned(percent_decode(raw)?) } else { Cow::Borrowed(raw) };
    // 3, 4. Double encoding, NUL.
    if has_double_encoding(&decoded) || decoded.contains(&0) {
        return None;
    }
    // 5, 6. '\' counts as '/', and the path must start with one.
    if !matches!(decoded.first(), Some(b'/' | b'\\')) {
        return None;
    }
    // 7, 8. Matrix parameters off each segment, then path.Clean of a rooted path.
    let mut out: Vec<u8> = Vec::with_capacity(decoded.len());
    for seg in decoded.split(|&b| b == b'/' || b == b'\\') {
        let seg = match seg.iter().position(|&b| b == b';') {
            Some(end) => seg.get(..end)?,
            None => seg,
        };
        match seg {
            b"" | b"." => {}
            b".." => {
                let keep = out.iter().rposition(|&b| b == b'/').unwrap_or(0);
                out.truncate(keep);
            }
            _ => {
                out.push(b'/');
                out.extend_from_slice(seg);
            }
        }
    }
    if out.is_empty() {
        out.push(b'/');
    }
    Some(out)
}

/// One `http_match.paths` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathRule {
    /// The normalised request path equals the normalised rule path.
    Exact(String),
    /// The normalised request path is the rule path or lies below it (segment-aligned).
    Prefix(String),
}

/// The request path did not start with `/` while the rule constrains paths (the checker answers
/// INVALID_ARGUMENT). Holds at most the first 64 characters of the path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("request path {0:?} does not start with '/'")]
pub struct InvalidPath(pub String);

impl InvalidPath {
    fn new(path: &str) -> Self {
        Self(path.chars().take(64).collect())
    }
}

/// Compiled `http_match.paths`: every rule path normalised once.
#[derive(Clone, Debug, Default)]
pub struct PathMatcher {
    /// The rule's list was non-empty (even if no entry survived normalisation).
    constrained: bool,
    exact: Vec<Box<[u8]>>,
    prefix: Vec<Box<[u8]>>,
}

impl PathMatcher {
    /// Compiles the rule paths; a path that cannot be normalised is skipped.
    pub fn new<I: IntoIterator<Item = PathRule>>(rules: I) -> Self {
        let mut m = Self::default();
        for rule in rules {
            m.constrained = true;
            let (list, path) = match &rule {
                PathRule::Exact(p) => (&mut m.exact, p),
                PathRule::Prefix(p) => (&mut m.prefix, p),
            };
            if let Some(n) = normalize_bytes(path) {
                list.push(n.into_owned().into_boxed_slice());
            }
        }
        m
    }

    /// True iff the rule's path list was empty (every path matches).
    pub fn is_unconstrained(&self) -> bool {
        !self.constrained
    }

    /// Whether `request_path` matches some rule path. An empty list matches anything. Otherwise a
    /// path not starting with `/` (including `""`) is `Err(InvalidPath)`, and a path that cannot
    /// be normalised matches nothing.
    pub fn matches(&self, request_path: &str) -> Result<bool, InvalidPath> {
        self.matches_prepared(&RequestPath::new(request_path))
    }

    /// [`PathMatcher::matches`] for a path normalised once for all the rules of a check.
    pub fn matches_prepared(&self, req: &RequestPath<'_>) -> Result<bool, InvalidPath> {
        if !self.constrained {
            return Ok(true);
        }
        if !req.raw.starts_with('/') {
            return Err(InvalidPath::new(req.raw));
        }
        let Some(req) = req.normalized.as_deref() else {
            return Ok(false);
        };
        Ok(self.exact.iter().any(|e| **e == *req) || self.prefix.iter().any(|p| prefix_matches(p, req)))
    }
}

/// A request path and its normalised form, computed once per check.
#[derive(Clone, Debug)]
pub struct RequestPath<'a> {
    raw: &'a str,
    /// `None` when the path cannot be normalised (it then matches no path rule).
    normalized: Option<Cow<'a, [u8]>>,
}

impl<'a> RequestPath<'a> {
    /// Normalises `raw` (borrowing when it is already normal).
    pub fn new(raw: &'a str) -> Self {
        RequestPath { raw, normalized: normalize_bytes(raw) }
    }
}

/// `req == prefix`, or `req` starts with `prefix + "/"`, or `prefix == "/"`.
#[inline]
fn prefix_matches(prefix: &[u8], req: &[u8]) -> bool {
    prefix == b"/"
        || match req.strip_prefix(prefix) {
            Some(rest) => rest.is_empty() || rest.first() == Some(&b'/'),
            None => false,
        }
}

/// Compiled `http_match.methods`. The default matches every method, like an empty list.
#[derive(Clone, Debug, Default)]
pub struct MethodMatcher {
    /// The allowed methods; empty = any (an empty list, or `"*"` in the list).
    only: Vec<String>,
}

impl MethodMatcher {
    /// Compiles the rule's method list.
    pub fn new<I: IntoIterator<Item = String>>(methods: I) -> Self {
        let mut only: Vec<String> = methods.into_iter().collect();
        if only.iter().any(|m| m == "*") {
            only.clear();
        }
        Self { only }
    }

    /// An empty list or `"*"` matches every method; otherwise exact, case-sensitive equality.
    pub fn matches(&self, method: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|m| m == method)
    }
}

#[cfg(test)]
mod tests;
