//! Path normalisation and matching benchmarks.

use std::hint::black_box;

use alp_http_path::{PathMatcher, PathRule, normalize};
use criterion::{Criterion, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    let normal = "/api/v1/namespaces/default/pods/web-7d4b9c6f5-x2k8p";
    let messy = "/api/v1//namespaces/./default/../default/pods/web;jsessionid=1/%70ods?watch=1";
    assert!(matches!(normalize(normal), Some(std::borrow::Cow::Borrowed(_))));
    c.bench_function("normalize_already_normal", |b| b.iter(|| normalize(black_box(normal))));
    c.bench_function("normalize_needs_work", |b| b.iter(|| normalize(black_box(messy))));
    let m = PathMatcher::new([
        PathRule::Exact("/healthz".to_owned()),
        PathRule::Prefix("/api/v1/namespaces/kube-system".to_owned()),
        PathRule::Prefix("/api/v1/namespaces/default".to_owned()),
    ]);
    c.bench_function("matcher_3_rules_normal_path", |b| b.iter(|| black_box(&m).matches(black_box(normal))));
}

criterion_group!(benches, bench);
criterion_main!(benches);
