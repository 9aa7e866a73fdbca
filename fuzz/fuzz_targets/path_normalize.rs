//! Fuzzes `alp_http_path::normalize` and `PathMatcher` on arbitrary UTF-8 input: no panic, the
//! output shape holds, and normalising an output again changes nothing (unless decoding revealed
//! a '%', '?' or '#', which Go's normaliser also treats again on a second pass).
#![no_main]

use std::borrow::Cow;

use alp_http_path::{PathMatcher, PathRule, normalize, normalize_bytes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(out) = normalize(input) {
        assert!(out.starts_with('/'), "{input:?} -> {out:?}");
        assert!(!out.contains("//"), "{input:?} -> {out:?}");
        assert!(!out.contains("/./"), "{input:?} -> {out:?}");
        assert!(!out.contains("/../"), "{input:?} -> {out:?}");
        assert!(!out.ends_with("/.") && !out.ends_with("/.."), "{input:?} -> {out:?}");
        assert!(out == "/" || !out.ends_with('/'), "{input:?} -> {out:?}");
        assert!(!out.contains(['\\', ';', '\0']), "{input:?} -> {out:?}");
        if !out.contains(['%', '?', '#']) {
            let again = normalize(&out);
            assert!(
                matches!(&again, Some(Cow::Borrowed(s)) if *s == out),
                "not idempotent: {input:?} -> {out:?} -> {again:?}"
            );
        }
        let bytes = normalize_bytes(input);
        assert_eq!(bytes.as_deref().map(String::from_utf8_lossy), Some(out.clone()));
    } else {
        assert!(normalize_bytes(input).is_none());
    }

    // Split the input into a rule path and a request path.
    let (rule, request) = input.split_once('\n').unwrap_or((input, input));
    let m = PathMatcher::new([
        PathRule::Prefix(rule.to_owned()),
        PathRule::Exact(rule.to_owned()),
    ]);
    let got = m.matches(request);
    assert_eq!(got.is_err(), !request.starts_with('/'));
    if let (Ok(matched), Some(r), Some(q)) = (&got, normalize_bytes(rule), normalize_bytes(request)) {
        if q == r || r.as_ref() == b"/" {
            assert!(*matched, "{rule:?} vs {request:?}");
        }
    }
    let _ = PathMatcher::new([PathRule::Exact(input.to_owned())]).matches(input);
});
