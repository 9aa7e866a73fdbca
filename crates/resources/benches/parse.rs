//! Parsing cost of one file as S5 edits it: a namespace, 5 service accounts, 100 pods and 10
//! NetworkPolicies in one multi-document YAML file (116 documents), as YAML and as JSON.
//!
//! `cargo bench -p alp-resources --bench parse`

use std::{fmt::Write as _, hint::black_box};

use criterion::{Criterion, criterion_group, criterion_main};

fn namespace_file() -> String {
    let mut s = String::from("apiVersion: v1\nkind: Namespace\nmetadata: {name: ns-1, labels: {idx: \"1\"}}\n");
    for a in 0..5 {
        let _ = write!(
            s,
            "---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: sa-{a}, namespace: ns-1, labels: {{sa: \"{a}\"}}}}\n"
        );
    }
    for j in 0..100 {
        let _ = write!(
            s,
            "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p-{j}, namespace: ns-1, labels: {{app: a-{}, role: r-{}}}}}\n\
             spec: {{nodeName: node-{}, serviceAccountName: sa-{}}}\nstatus: {{podIP: 10.1.0.{j}}}\n",
            j % 10,
            j % 20,
            j % 100,
            j % 5
        );
    }
    for k in 0..10 {
        let _ = write!(
            s,
            "---\napiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {{name: np-{k}, namespace: ns-1}}\n\
             spec:\n  selector: app == 'a-{k}'\n  ingress:\n  - action: Allow\n    source: {{selector: role == 'r-{k}'}}\n    http: {{methods: [GET]}}\n"
        );
    }
    s
}

fn bench(c: &mut Criterion) {
    let yaml = namespace_file();
    let docs = alp_resources::parse_documents(&yaml, "ns-1.yaml");
    assert_eq!(docs.len(), 116);
    assert!(docs.iter().all(Result::is_ok), "{docs:?}");
    c.bench_function("parse/s5-namespace-file/yaml", |b| {
        b.iter(|| black_box(alp_resources::parse_documents(black_box(&yaml), "ns-1.yaml").len()))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
