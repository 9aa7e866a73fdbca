use super::*;

fn n(p: &str) -> Option<String> {
    normalize(p).map(Cow::into_owned)
}

#[test]
fn spec_6_4_examples() {
    let cases: &[(&str, Option<&str>)] = &[
        ("/a/../b", Some("/b")),
        ("/foo/", Some("/foo")),
        ("//a//b", Some("/a/b")),
        ("/%2e%2e/admin", Some("/admin")),
        ("/%252e%252e/admin", None),
        ("/a%2fb", Some("/a/b")),
        ("/a%00b", None),
        ("/a\\..\\b", Some("/b")),
        ("/public/..;x/admin", Some("/admin")),
        ("/x?y=1#f", Some("/x")),
        ("/%zz", None),
        ("/..", Some("/")),
        ("/%41", Some("/A")),
    ];
    for (input, want) in cases {
        assert_eq!(n(input).as_deref(), *want, "{input:?}");
    }
    // Prefix `/pub` does not match `/public`.
    let m = PathMatcher::new([PathRule::Prefix("/pub".into())]);
    assert_eq!(m.matches("/public"), Ok(false));
    assert_eq!(m.matches("/pub"), Ok(true));
    assert_eq!(m.matches("/pub/lic"), Ok(true));
}

#[test]
fn more_normalisation() {
    let cases: &[(&str, Option<&str>)] = &[
        ("/", Some("/")),
        ("", None),
        ("?", None),
        ("/?", Some("/")),
        ("#", None),
        ("a", None),
        ("\\", Some("/")),
        ("/.", Some("/")),
        ("/./", Some("/")),
        ("/../../..", Some("/")),
        ("/a/b/../../../c", Some("/c")),
        ("/a/./b/.", Some("/a/b")),
        ("/a/.../b", Some("/a/.../b")),
        ("/a/..b/c", Some("/a/..b/c")),
        ("/a/b..", Some("/a/b..")),
        ("/a+b", Some("/a+b")),
        ("/a%2Bb", Some("/a+b")),
        ("/a%", None),
        ("/a%4", None),
        ("/a%4g", None),
        ("/%2F%2Fa", Some("/a")),
        ("%2Fa", Some("/a")),
        ("%5Ca", Some("/a")),
        ("/a%253B", Some("/a%3B")),
        ("/a%3Fb", Some("/a?b")),
        ("/a;b/c", Some("/a/c")),
        ("/;x", Some("/")),
        ("/a/;x/../b", Some("/b")),
        ("/a;/b", Some("/a/b")),
        ("/a\u{0}", None),
        ("/caf\u{e9}", Some("/caf\u{e9}")),
        ("/caf%C3%A9", Some("/caf\u{e9}")),
        ("/%ff", Some("/\u{fffd}")),
        ("/a#b?c", Some("/a")),
        ("/a%23b", Some("/a#b")),
    ];
    for (input, want) in cases {
        assert_eq!(n(input).as_deref(), *want, "{input:?}");
    }
    assert_eq!(normalize_bytes("/%ff").as_deref(), Some(&b"/\xff"[..]));
}

#[test]
fn borrows_when_already_normal() {
    for p in ["/", "/a", "/a/b.c/d", "/a/.../b", "/.x", "/..x", "/x.", "/a+b", "/caf\u{e9}"] {
        assert!(matches!(normalize(p), Some(Cow::Borrowed(s)) if s == p), "{p:?}");
    }
    for p in
        ["//", "/a/", "/a//b", "/.", "/..", "/a/.", "/a/..", "/./a", "/../a", "/a?", "/a#", "/%41", "/a\\b", "/a;b"]
    {
        assert!(!matches!(normalize(p), Some(Cow::Borrowed(_))), "{p:?}");
    }
}

#[test]
fn matcher_semantics() {
    let m = PathMatcher::new([]);
    assert!(m.is_unconstrained());
    assert_eq!(m.matches("no-slash"), Ok(true));
    assert_eq!(m.matches(""), Ok(true));
    assert!(PathMatcher::default().is_unconstrained());

    let m = PathMatcher::new([PathRule::Exact("/foo".into())]);
    assert!(!m.is_unconstrained());
    assert_eq!(m.matches(""), Err(InvalidPath(String::new())));
    assert_eq!(m.matches("foo"), Err(InvalidPath("foo".into())));
    assert!(m.matches("\\foo").is_err());
    assert_eq!(m.matches("/foo/"), Ok(true));
    assert_eq!(m.matches("/foo/bar"), Ok(false));
    assert_eq!(m.matches("/%zz"), Ok(false));

    // Only rules that cannot be normalised: constrained, never matching.
    let m = PathMatcher::new([PathRule::Prefix("/%zz".into()), PathRule::Exact("x".into())]);
    assert!(!m.is_unconstrained());
    assert_eq!(m.matches("/"), Ok(false));
    assert!(m.matches("x").is_err());

    // Root prefix matches every normalisable path.
    let m = PathMatcher::new([PathRule::Prefix("/".into())]);
    assert_eq!(m.matches("/anything/at/all"), Ok(true));
    assert_eq!(m.matches("/"), Ok(true));
    assert_eq!(m.matches("/%00"), Ok(false));

    // Rule paths are normalised too.
    let m = PathMatcher::new([PathRule::Prefix("/a/b/../c/".into())]);
    assert_eq!(m.matches("/a/c"), Ok(true));
    assert_eq!(m.matches("/a/c/d"), Ok(true));
    assert_eq!(m.matches("/a/cd"), Ok(false));

    // Non-UTF-8 decoded bytes compare exactly.
    let m = PathMatcher::new([PathRule::Exact("/%ff".into())]);
    assert_eq!(m.matches("/%FF"), Ok(true));
    assert_eq!(m.matches("/%fe"), Ok(false));
    assert_eq!(m.matches("/\u{fffd}"), Ok(false));
}

#[test]
fn invalid_path_truncates() {
    let long = "x".repeat(100);
    let m = PathMatcher::new([PathRule::Exact("/".into())]);
    let err = m.matches(&long).unwrap_err();
    assert_eq!(err.0.chars().count(), 64);
    let multi = "\u{e9}".repeat(100);
    assert_eq!(m.matches(&multi).unwrap_err().0, "\u{e9}".repeat(64));
    assert_eq!(InvalidPath("foo".into()).to_string(), "request path \"foo\" does not start with '/'");
}

#[test]
fn methods() {
    assert!(MethodMatcher::default().matches("GET"));
    assert!(MethodMatcher::new(Vec::new()).matches("ANY"));
    assert!(MethodMatcher::new(["GET".to_owned(), "*".to_owned()]).matches("PATCH"));
    let m = MethodMatcher::new(["GET".to_owned(), "HEAD".to_owned()]);
    assert!(m.matches("GET"));
    assert!(!m.matches("get"));
    assert!(!m.matches("POST"));
    assert!(!m.matches(""));
}

mod fast_path {
    use super::super::{is_normal, normalize_slow};
    use proptest::prelude::*;

    fn pathish() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("/"),
            Just("."),
            Just(".."),
            Just("a"),
            Just("bc"),
            Just("%"),
            Just("%41"),
            Just("?"),
            Just("#"),
            Just("\\"),
            Just(";"),
            Just("\0"),
            Just("\u{e9}"),
        ];
        proptest::collection::vec(piece, 0..40).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]
        /// The borrow fast path is taken exactly when the full algorithm leaves the input as is.
        #[test]
        fn fast_path_agrees_with_full_algorithm(s in pathish()) {
            let unchanged = normalize_slow(s.as_bytes()).as_deref() == Some(s.as_bytes());
            prop_assert_eq!(is_normal(s.as_bytes()), unchanged, "{:?}", s);
        }
    }
}
