//! Runs Calico's selector cases (`vectors/selectors.json`) against the crate.
//!
//! The file is read from `ALP_VECTORS_DIR` if set, else from the repository's `vectors/`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use alp_selector::{Selector, token};
use serde_json::Value;

fn vectors() -> Value {
    let dir = std::env::var_os("ALP_VECTORS_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../vectors"), PathBuf::from);
    let path = dir.join("selectors.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

fn section(name: &str) -> Vec<Value> {
    vectors()[name].as_array().unwrap_or_else(|| panic!("section {name} missing")).clone()
}

fn s<'a>(case: &'a Value, key: &str) -> &'a str {
    case[key].as_str().unwrap_or_else(|| panic!("{}: field {key} is not a string", case["id"]))
}

fn labels(case: &Value) -> BTreeMap<String, String> {
    case["labels"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect())
        .unwrap_or_default()
}

/// Fails with every collected failure listed.
fn report(section: &str, run: usize, failures: &[String]) {
    assert!(run > 0, "{section}: no cases run");
    assert!(failures.is_empty(), "{section}: {} of {run} cases failed:\n{}", failures.len(), failures.join("\n"));
    println!("{section}: {run} cases passed");
}

#[test]
fn evaluation() {
    let cases = section("evaluation");
    let mut failures = Vec::new();
    for case in &cases {
        let id = &case["id"];
        let input = s(case, "selector");
        let expect = case["expect"].as_bool().unwrap_or_else(|| panic!("{id}: expect"));
        let labels = labels(case);
        let sel = match Selector::parse(input) {
            Ok(sel) => sel,
            Err(e) => {
                failures.push(format!("{id}: parse({input:?}) failed: {e}"));
                continue;
            }
        };
        if sel.matches(&labels) != expect {
            failures.push(format!("{id}: {input:?} on {labels:?}: expected {expect}"));
        }
        let canonical = sel.to_string();
        if let Some(want) = case["canonical_derived"].as_str() {
            if canonical != want {
                failures.push(format!("{id}: canonical {canonical:?}, expected {want:?}"));
            }
            match Selector::parse(want) {
                Ok(sel2) if sel2.matches(&labels) == expect => {}
                Ok(_) => failures.push(format!("{id}: canonical {want:?}: expected {expect}")),
                Err(e) => failures.push(format!("{id}: parse(canonical {want:?}) failed: {e}")),
            }
        }
    }
    report("evaluation", cases.len(), &failures);
}

#[test]
fn parse_failures() {
    let cases = section("parse_failures");
    let mut failures = Vec::new();
    for case in &cases {
        let input = s(case, "selector");
        if let Ok(sel) = Selector::parse(input) {
            failures.push(format!("{}: {input:?} parsed as {sel}", case["id"]));
        }
        if case["failing_stage_derived"] == "tokenizer" && token::tokenize(input).is_ok() {
            failures.push(format!("{}: {input:?} tokenized", case["id"]));
        }
    }
    report("parse_failures", cases.len(), &failures);
}

#[test]
fn canonical() {
    let cases = section("canonical");
    let mut failures = Vec::new();
    for case in &cases {
        let id = &case["id"];
        let input = s(case, "selector");
        let want = s(case, "canonical");
        let sel = match Selector::parse(input) {
            Ok(sel) => sel,
            Err(e) => {
                failures.push(format!("{id}: parse({input:?}) failed: {e}"));
                continue;
            }
        };
        let canonical = sel.to_string();
        if canonical != want {
            failures.push(format!("{id}: canonical {canonical:?}, expected {want:?}"));
        }
        match alp_selector::normalise(input) {
            Ok(n) if n == want => {}
            other => failures.push(format!("{id}: normalise gave {other:?}")),
        }
        match Selector::parse(&canonical) {
            Ok(again) => {
                if again.to_string() != canonical {
                    failures.push(format!("{id}: round trip gave {again}"));
                }
                if again.unique_id() != sel.unique_id() {
                    failures.push(format!("{id}: round trip changed the unique id"));
                }
            }
            Err(e) => failures.push(format!("{id}: parse(canonical) failed: {e}")),
        }
        if let Some(uid) = case["unique_id"].as_str()
            && sel.unique_id() != uid
        {
            failures.push(format!("{id}: unique_id {}, expected {uid}", sel.unique_id()));
        }
    }
    report("canonical", cases.len(), &failures);
}

#[test]
fn tokenizer() {
    let cases = section("tokenizer");
    let mut failures = Vec::new();
    for case in &cases {
        let id = &case["id"];
        let input = s(case, "input");
        let got = token::tokenize(input);
        match (&case["tokens"], &got) {
            (Value::Null, Ok(tokens)) => failures.push(format!("{id}: expected an error, got {tokens:?}")),
            (Value::Null, Err(_)) => {}
            (want, Ok(tokens)) => {
                let got: Vec<(String, Option<String>)> =
                    tokens.iter().map(|t| (t.kind.name().to_owned(), t.value.clone())).collect();
                let want: Vec<(String, Option<String>)> = want
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|t| {
                        (t["kind"].as_str().unwrap_or_default().to_owned(), t["value"].as_str().map(str::to_owned))
                    })
                    .collect();
                if got != want {
                    failures.push(format!("{id}: tokens {got:?}, expected {want:?}"));
                }
            }
            (_, Err(e)) => failures.push(format!("{id}: tokenize failed: {e}")),
        }
        let parsed = Selector::parse(input);
        if let Some(valid) = case["parse_valid_derived"].as_bool()
            && parsed.is_ok() != valid
        {
            failures.push(format!("{id}: parse ok = {}, expected {valid}", parsed.is_ok()));
        }
        if let Some(want) = case["canonical_derived"].as_str() {
            match &parsed {
                Ok(sel) if sel.to_string() == want => {}
                other => failures.push(format!("{id}: canonical {other:?}, expected {want:?}")),
            }
        }
    }
    report("tokenizer", cases.len(), &failures);
}

/// Optional section: `with_label_prefix` is Calico's `PrefixVisitor`.
#[test]
fn prefix_visitor() {
    let cases = section("prefix_visitor");
    let mut failures = Vec::new();
    for case in &cases {
        let id = &case["id"];
        let input = s(case, "selector");
        let want = s(case, "canonical_after_prefixing");
        match Selector::parse(input) {
            Ok(sel) => {
                let got = sel.with_label_prefix(s(case, "prefix")).to_string();
                if got != want {
                    failures.push(format!("{id}: {got:?}, expected {want:?}"));
                }
            }
            Err(e) => failures.push(format!("{id}: parse({input:?}) failed: {e}")),
        }
    }
    report("prefix_visitor", cases.len(), &failures);
}
