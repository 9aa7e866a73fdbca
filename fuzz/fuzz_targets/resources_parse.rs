//! YAML and JSON resource files: any text parses to resources or located errors, never a panic;
//! a parsed resource serialises and parses back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for name in ["f.yaml", "f.json"] {
        for doc in alp_resources::parse_documents(text, name) {
            match doc {
                Ok(r) => {
                    let json = serde_json::to_string(&r).unwrap_or_default();
                    let again = alp_resources::parse_documents(&json, "again.json");
                    assert!(matches!(again.as_slice(), [Ok(back)] if *back == r), "round trip of {json}");
                }
                Err(e) => {
                    let _ = e.to_string();
                }
            }
        }
    }
});
