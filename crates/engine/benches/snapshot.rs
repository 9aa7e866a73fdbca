//! Time to build the S1 snapshot from decoded sync messages (BENCHMARKS.md, S1): apply the
//! whole stream to a fresh `Store`, then `snapshot()`. The store and snapshot are dropped outside
//! the timing. Also, to see where the time goes: the IP sets alone, the policies alone and `snapshot()` alone; and S2's build.
//!
//! `cargo bench -p alp-engine --bench snapshot` (add `-- --quick` for a short run).

use std::{hint::black_box, time::Duration};

use alp_engine::{Config, Store};
use alp_proto::felix::{ToDataplane, to_dataplane::Payload};
use alp_scenarios::{S1Variant, s1, s2};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

fn apply_all(store: &mut Store, messages: &[ToDataplane]) {
    for m in messages {
        if let Err(e) = store.apply(m) {
            panic!("scenario message rejected: {e}");
        }
    }
}

fn is_ipset(m: &ToDataplane) -> bool {
    matches!(m.payload, Some(Payload::IpsetUpdate(_) | Payload::IpsetDeltaUpdate(_)))
}

fn build(c: &mut Criterion) {
    let messages = s1(S1Variant::FullWalk).messages;
    let (sets, rest): (Vec<ToDataplane>, Vec<ToDataplane>) = messages.iter().cloned().partition(is_ipset);

    let mut g = c.benchmark_group("s1-build");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.bench_function("apply+snapshot", |b| {
        b.iter_batched(
            || Store::new(Config::default()),
            |mut store| {
                apply_all(&mut store, &messages);
                let snap = store.snapshot();
                (snap, store)
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("apply-ipsets", |b| {
        b.iter_batched(
            || Store::new(Config::default()),
            |mut store| {
                apply_all(&mut store, &sets);
                store
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("apply-policies+endpoint", |b| {
        // Policies compile without their sets (ids are interned), so this is the policy work.
        b.iter_batched(
            || Store::new(Config::default()),
            |mut store| {
                apply_all(&mut store, &rest);
                store
            },
            BatchSize::PerIteration,
        )
    });
    let mut full = Store::new(Config::default());
    apply_all(&mut full, &messages);
    g.bench_function("snapshot-only", |b| b.iter(|| black_box(full.snapshot())));
    g.finish();

    let s2_messages = s2().messages;
    c.bench_function("s2-build/apply+snapshot", |b| {
        b.iter_batched(
            || Store::new(Config::default()),
            |mut store| {
                apply_all(&mut store, &s2_messages);
                (store.snapshot(), store)
            },
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, build);
criterion_main!(benches);
