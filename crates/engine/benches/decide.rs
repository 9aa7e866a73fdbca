//! Time per decision (BENCHMARKS.md, S1 and S2), starting from the Envoy `CheckRequest`:
//! each iteration is `decide(&snapshot, &alp_envoy::to_request(&check))`.
//!
//! `cargo bench -p alp-engine --bench decide` (add `-- --quick` for a short run, or a filter such
//! as `-- s1/full-walk`). The `breakdown/` entries split match-early into the `CheckRequest`
//! conversion and the walk from a prebuilt `Request`.

use std::{hint::black_box, sync::Arc};

use alp_engine::{Code, Config, Snapshot, Store, decide};
use alp_proto::felix::ToDataplane;
use alp_scenarios::{CheckRequest, S1Variant, s1, s2};
use criterion::{Criterion, criterion_group, criterion_main};

fn snapshot(messages: &[ToDataplane]) -> Arc<Snapshot> {
    let mut store = Store::new(Config::default());
    for m in messages {
        if let Err(e) = store.apply(m) {
            panic!("scenario message rejected: {e}");
        }
    }
    assert!(store.in_sync());
    store.snapshot()
}

fn bench_check(c: &mut Criterion, name: &str, snap: &Snapshot, check: &CheckRequest) {
    c.bench_function(name, |b| {
        b.iter(|| {
            let req = alp_envoy::to_request(black_box(check));
            let d = decide(snap, &req);
            black_box(d.code)
        })
    });
}

fn s1_bench(c: &mut Criterion) {
    for variant in S1Variant::ALL {
        let scenario = s1(variant);
        let snap = snapshot(&scenario.messages);
        drop(scenario.messages);
        let (label, check) = &scenario.requests[0];
        // Check once, outside the timing loop, that the walk is the intended one.
        let d = decide(&snap, &alp_envoy::to_request(check));
        match variant {
            S1Variant::FullWalk => {
                assert_eq!(d.code, Code::PermissionDenied);
                assert_eq!(d.trace.len(), 1, "{:?}", d.trace);
                assert_eq!(d.trace[0].index, -1, "{:?}", d.trace);
            }
            S1Variant::MatchEarly => assert_eq!(d.code, Code::Ok, "{d:?}"),
            S1Variant::MissingSets => assert_eq!(d.code, Code::Internal, "{d:?}"),
        }
        drop(d);
        bench_check(c, &format!("s1/{label}"), &snap, check);
        if variant == S1Variant::MatchEarly {
            // Breakdown: the CheckRequest conversion alone, and the walk from a prebuilt Request.
            c.bench_function("breakdown/to_request", |b| {
                b.iter(|| black_box(alp_envoy::to_request(black_box(check)).source.port))
            });
            let req = alp_envoy::to_request(check);
            c.bench_function("breakdown/s1/match-early/prebuilt-request", |b| {
                b.iter(|| black_box(decide(&snap, black_box(&req)).code))
            });
        }
    }
}

fn s2_bench(c: &mut Criterion) {
    let scenario = s2();
    let snap = snapshot(&scenario.messages);
    for (label, check) in &scenario.requests {
        let d = decide(&snap, &alp_envoy::to_request(check));
        let want = if label.starts_with("allowed") { Code::Ok } else { Code::PermissionDenied };
        assert_eq!(d.code, want, "{label}: {d:?}");
    }
    for label in ["allowed", "denied"] {
        let check = scenario.request(label).unwrap_or_else(|| panic!("S2 has no {label} request"));
        bench_check(c, &format!("s2/{label}"), &snap, check);
    }
}

criterion_group!(benches, s1_bench, s2_bench);
criterion_main!(benches);
