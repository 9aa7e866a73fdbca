//! Runs the `vectors/http_paths.json` sections `normalization`,
//! `normalization_fuzz_seeds_derived`, `path_match` and `method_match` (`http_match_absent` is
//! the checker's).

use std::path::PathBuf;

use alp_http_path::{InvalidPath, MethodMatcher, PathMatcher, PathRule, normalize};
use serde_json::Value;

fn vectors() -> Value {
    let dir = match std::env::var_os("ALP_VECTORS_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../vectors"),
    };
    let path = dir.join("http_paths.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn section<'a>(v: &'a Value, name: &str) -> &'a [Value] {
    let cases = v[name].as_array().unwrap_or_else(|| panic!("no section {name}"));
    assert!(!cases.is_empty(), "empty section {name}");
    cases
}

fn run_normalization(name: &str) {
    let v = vectors();
    let cases = section(&v, name);
    for case in cases {
        let id = case["id"].as_str().unwrap();
        let input = case["input"].as_str().unwrap();
        let want = case["normalized"].as_str();
        let got = normalize(input);
        assert_eq!(got.as_deref(), want, "{id}: {input:?}");
    }
    eprintln!("http_paths.json {name}: {} passed", cases.len());
}

#[test]
fn normalization() {
    run_normalization("normalization");
}

#[test]
fn normalization_fuzz_seeds_derived() {
    run_normalization("normalization_fuzz_seeds_derived");
}

#[test]
fn path_match() {
    let v = vectors();
    let cases = section(&v, "path_match");
    for case in cases {
        let id = case["id"].as_str().unwrap();
        let rules = case["paths"].as_array().unwrap().iter().map(|p| match (p.get("exact"), p.get("prefix")) {
            (Some(e), None) => PathRule::Exact(e.as_str().unwrap().to_owned()),
            (None, Some(p)) => PathRule::Prefix(p.as_str().unwrap().to_owned()),
            _ => panic!("{id}: bad path rule {p}"),
        });
        let m = PathMatcher::new(rules);
        let req = case["request_path"].as_str().unwrap();
        let got = m.matches(req);
        match &case["expect"] {
            Value::Bool(b) => assert_eq!(got, Ok(*b), "{id}: {req:?}"),
            Value::String(s) if s == "invalid_argument" => {
                assert_eq!(got, Err(InvalidPath(req.to_owned())), "{id}: {req:?}")
            }
            other => panic!("{id}: bad expect {other}"),
        }
    }
    eprintln!("http_paths.json path_match: {} passed", cases.len());
}

#[test]
fn method_match() {
    let v = vectors();
    let cases = section(&v, "method_match");
    for case in cases {
        let id = case["id"].as_str().unwrap();
        let methods = case["methods"].as_array().unwrap().iter().map(|m| m.as_str().unwrap().to_owned());
        let m = MethodMatcher::new(methods);
        let method = case["method"].as_str().unwrap();
        assert_eq!(m.matches(method), case["expect"].as_bool().unwrap(), "{id}");
    }
    eprintln!("http_paths.json method_match: {} passed", cases.len());
}
