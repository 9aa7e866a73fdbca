//! Memory of the S1 (and S2) snapshot (BENCHMARKS.md, S1 / S2):
//! heap bytes live after applying the stream to a fresh store and taking the snapshot, minus the
//! bytes live before, with the messages dropped; then with the store dropped too (the snapshot
//! alone). Heap bytes are counted by a global allocator wrapping `System` (`cap`: the workspace
//! forbids `unsafe`, and `#![allow(unsafe_code)]` cannot override a `forbid`).
//!
//! Also prints the S1 build time as min and median of 9 runs.
//!
//! `cargo run --release -p alp-scenarios --example s1_memory`

use std::{alloc::System, time::Instant};

use alp_engine::{Config, Store};
use alp_proto::felix::{ToDataplane, to_dataplane::Payload};
use alp_scenarios::{S1Variant, s1, s2};
use cap::Cap;

#[global_allocator]
static ALLOC: Cap<System> = Cap::new(System, usize::MAX);

const MIB: f64 = 1024.0 * 1024.0;

fn mib(bytes: usize) -> String {
    format!("{:8.2} MiB ({bytes} B)", bytes as f64 / MIB)
}

fn live() -> usize {
    ALLOC.allocated()
}

fn apply(store: &mut Store, messages: &[ToDataplane]) {
    for m in messages {
        if let Err(e) = store.apply(m) {
            panic!("scenario message rejected: {e}");
        }
    }
}

fn measure(name: &str, messages: Vec<ToDataplane>, base: usize) {
    let msgs = live() - base;
    let (sets, rest): (Vec<&ToDataplane>, Vec<&ToDataplane>) = messages
        .iter()
        .partition(|m| matches!(m.payload, Some(Payload::IpsetUpdate(_) | Payload::IpsetDeltaUpdate(_))));
    let members: usize = sets
        .iter()
        .map(|m| match &m.payload {
            Some(Payload::IpsetUpdate(u)) => u.members.len(),
            Some(Payload::IpsetDeltaUpdate(u)) => u.added_members.len(),
            _ => 0,
        })
        .sum();
    let sets: Vec<ToDataplane> = sets.into_iter().cloned().collect();
    let rest: Vec<ToDataplane> = rest.into_iter().cloned().collect();
    let before = live();

    let start = Instant::now();
    let mut store = Store::new(Config::default());
    apply(&mut store, &sets);
    let after_sets = live();
    apply(&mut store, &rest);
    let after_policies = live();
    let snap = store.snapshot();
    let after_snapshot = live();
    let elapsed = start.elapsed();

    drop((sets, rest, messages));
    let store_and_snapshot = live() - base;
    let ipset_heap = snap.ip_set_heap_bytes();
    let (n_sets, n_members) = snap.ip_set_stats();
    drop(store);
    let snapshot_alone = live() - base;
    drop(snap);
    let leftover = live() - base;

    println!("== {name}: {n_sets} IP sets, {n_members} members ({members} sent), built in {elapsed:.1?} (untimed run)");
    println!("  messages (decoded)               {}", mib(msgs));
    println!("  store: IP sets applied           {}", mib(after_sets - before));
    println!("  store: policies+endpoint applied {}", mib(after_policies - after_sets));
    println!("  snapshot() (clone maps + plan)   {}", mib(after_snapshot - after_policies));
    println!("  LIVE store+snapshot, msgs dropped {}", mib(store_and_snapshot));
    println!("  LIVE snapshot alone              {}", mib(snapshot_alone));
    println!("  of which IP sets (heap_bytes)    {}", mib(ipset_heap));
    if n_members > 0 {
        println!("  IP-set bytes per member          {:8.2}", ipset_heap as f64 / n_members as f64);
    }
    println!("  peak since start                 {}", mib(ALLOC.max_allocated() - base));
    println!("  left after dropping all          {}", mib(leftover));
}

/// Build time as min and median of `runs` builds: the minimum is the figure least disturbed by
/// other load on a shared machine (criterion's `snapshot` bench gives the full distribution).
fn build_times(messages: &[ToDataplane], runs: usize) {
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            let mut store = Store::new(Config::default());
            apply(&mut store, messages);
            let snap = store.snapshot();
            let t = start.elapsed().as_secs_f64() * 1e3;
            drop((snap, store));
            t
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let median = times.get(times.len() / 2).copied().unwrap_or_default();
    let min = times.first().copied().unwrap_or_default();
    println!("  build (apply all + snapshot), {runs} runs: min {min:.1} ms, median {median:.1} ms");
}

fn main() {
    let base = live();
    let messages = s1(S1Variant::FullWalk).messages;
    build_times(&messages, 9);
    measure("S1 full-walk", messages, base);
    let base = live();
    measure("S2", s2().messages, base);
}
