//! Golden tests: a directory of resources in, the exact policy-sync stream a workload receives
//! out (`alp calc`, proto3 JSON lines). One test per case directory under `tests/golden/`;
//! `ALP_BLESS=1` rewrites the expected files after a deliberate change (review the diff).

use std::{path::Path, process::Command};

fn case(name: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name);
    let workload = std::fs::read_to_string(dir.join("workload")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_alp"))
        .args(["calc", "--datastore", &format!("file:{}", dir.display()), "--workload", workload.trim()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got = String::from_utf8(out.stdout).unwrap();
    let expected_path = dir.join("expected.jsonl");
    if std::env::var_os("ALP_BLESS").is_some() {
        std::fs::write(&expected_path, &got).unwrap();
    }
    let expected = std::fs::read_to_string(&expected_path).unwrap();
    for (i, (g, e)) in got.lines().zip(expected.lines()).enumerate() {
        assert_eq!(g, e, "{name}: line {} differs", i + 1);
    }
    assert_eq!(got.lines().count(), expected.lines().count(), "{name}: line count");
}

#[test]
fn demo_database() {
    case("demo-database");
}

#[test]
fn k8s_networkpolicy_and_staged() {
    case("k8s-networkpolicy");
}
