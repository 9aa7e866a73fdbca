//! Parse and match timings for a typical policy selector.

use std::collections::HashMap;
use std::hint::black_box;

use alp_selector::Selector;
use criterion::{Criterion, criterion_group, criterion_main};

const TYPICAL: &str = "app == 'frontend' && tier in {'web', 'edge', 'api'} \
    && !has(quarantine) && projectcalico.org/namespace starts with 'prod-'";

fn labels() -> HashMap<String, String> {
    [
        ("app", "frontend"),
        ("tier", "web"),
        ("projectcalico.org/namespace", "prod-eu"),
        ("projectcalico.org/orchestrator", "k8s"),
        ("pod-template-hash", "5d8f9c7b6"),
        ("version", "v2"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn bench(c: &mut Criterion) {
    c.bench_function("parse_typical", |b| b.iter(|| Selector::parse(black_box(TYPICAL))));
    let sel = Selector::parse(TYPICAL).unwrap_or_default();
    let hit = labels();
    let mut miss = labels();
    miss.insert("quarantine".into(), "yes".into());
    c.bench_function("matches_typical_hit", |b| b.iter(|| black_box(&sel).matches(black_box(&hit))));
    c.bench_function("matches_typical_miss", |b| b.iter(|| black_box(&sel).matches(black_box(&miss))));
    c.bench_function("unique_id_typical", |b| b.iter(|| black_box(&sel).unique_id()));
}

criterion_group!(benches, bench);
criterion_main!(benches);
