//! Fuzzes the selector parser: no panics, canonical form stable, meaning preserved.
#![no_main]

use alp_selector::{Selector, normalise, token};
use libfuzzer_sys::fuzz_target;

/// Small fixed label sets the selector and its canonical form must agree on.
const LABEL_SETS: &[&[(&str, &str)]] = &[
    &[],
    &[("a", "x")],
    &[("a", ""), ("b", "y"), ("has", "z")],
    &[("a", "\""), ("b", "'"), ("c", "x y"), ("k8s-app", "web")],
    &[("all", "a"), ("in", "b"), ("not", "c"), ("x.y/z_1", "abc")],
];

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let _ = token::tokenize(input);
    let _ = normalise(input);
    let Ok(sel) = Selector::parse(input) else {
        return;
    };
    let canon = sel.to_string();
    let again = match Selector::parse(&canon) {
        Ok(again) => again,
        Err(e) => panic!("canonical {canon:?} of {input:?} does not parse: {e}"),
    };
    let canon2 = again.to_string();
    if canon2 == canon {
        assert_eq!(again, sel, "{input:?}");
        assert_eq!(again.unique_id(), sel.unique_id(), "{input:?}");
    } else {
        // Upstream prints "!(!x)" as "!!x", which reads back as "x": the only
        // canonical string that is not a fixed point. One more step must be.
        assert!(canon.contains("!!"), "{input:?}: {canon:?} -> {canon2:?}");
        let third = Selector::parse(&canon2).map(|s| s.to_string());
        assert_eq!(third.as_deref(), Ok(canon2.as_str()), "{input:?}");
    }
    assert_eq!(sel.unique_id(), sel.unique_id());
    assert_eq!(normalise(&canon).as_deref(), Ok(canon2.as_str()));
    for labels in LABEL_SETS {
        assert_eq!(
            sel.matches(*labels),
            again.matches(*labels),
            "{input:?} vs {canon:?} on {labels:?}"
        );
    }
});
