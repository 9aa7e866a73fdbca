//! NET-set benchmarks: lookup in a 55k-member set, building 1M members, memory per member.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use alp_ipset::{IpSet, IpSetType};
use criterion::{Criterion, criterion_group, criterion_main};

/// `n` distinct /32 members spread over 10.0.0.0/8 (pod-CIDR-like clustering).
fn members(n: u32, seed: u32) -> Vec<String> {
    (0..n)
        .map(|i| {
            let ip = 0x0a00_0000 | (i.wrapping_mul(2_654_435_761).wrapping_add(seed) & 0x00ff_ffff);
            format!("{}/32", Ipv4Addr::from(ip))
        })
        .collect()
}

fn build(members: &[String]) -> IpSet {
    let mut s = IpSet::new(IpSetType::Net);
    for m in members {
        s.add(m).unwrap();
    }
    s
}

fn bench(c: &mut Criterion) {
    let m55 = members(55_000, 0);
    let mut set = build(&m55);
    set.add("192.168.0.0/16").unwrap();
    set.add("172.16.5.0/28").unwrap();
    let hit: IpAddr = m55[12_345].trim_end_matches("/32").parse().unwrap();
    let miss: IpAddr = "11.0.0.1".parse().unwrap();
    c.bench_function("net_contains_55k_hit", |b| b.iter(|| black_box(&set).contains_ip(black_box(hit))));
    c.bench_function("net_contains_55k_miss", |b| b.iter(|| black_box(&set).contains_ip(black_box(miss))));
    let mut ip_port = IpSet::new(IpSetType::IpAndPort);
    for m in &m55 {
        ip_port.add(&format!("{},tcp:8080", m.trim_end_matches("/32"))).unwrap();
    }
    c.bench_function("ip_port_contains_55k_hit", |b| {
        b.iter(|| black_box(&ip_port).contains_ip_port(black_box(hit), 6, 8080))
    });

    let m1m = members(1_000_000, 7);
    let mut g = c.benchmark_group("build");
    g.sample_size(10);
    g.bench_function("net_build_1m", |b| b.iter(|| build(black_box(&m1m))));
    g.finish();

    // Memory: one 1M set, and 1.05M members spread over 3,700 sets (the snapshot shape).
    let big = build(&m1m);
    eprintln!(
        "memory: 1 set x {} members: {} heap bytes, {:.2} B/member",
        big.len(),
        big.heap_bytes(),
        big.heap_bytes() as f64 / big.len() as f64
    );
    let mut total = 0usize;
    let mut count = 0usize;
    let mut all = members(1_050_000, 3).into_iter();
    for i in 0..3_700usize {
        // Sizes vary between sets: a few big ones, many small ones.
        let size = if i < 10 { 55_000 } else { (1_050_000 - 550_000) / 3_690 };
        let mut s = IpSet::new(IpSetType::Net);
        for m in all.by_ref().take(size) {
            s.add(&m).unwrap();
        }
        total += s.heap_bytes() + std::mem::size_of::<IpSet>();
        count += s.len();
    }
    eprintln!("memory: 3,700 sets x {count} members: {total} bytes, {:.2} B/member", total as f64 / count as f64);
}

criterion_group!(benches, bench);
criterion_main!(benches);
