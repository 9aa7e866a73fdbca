//! A NET set agrees with a naive list of (network, length) checked linearly.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use alp_ipset::{IpSet, IpSetType};
use proptest::prelude::*;

/// Naive reference: (masked network, length) pairs, IPv4 as u128 with a family flag.
#[derive(Default)]
struct Reference {
    nets: Vec<(bool, u128, u8)>,
}

fn mask(v6: bool, len: u8) -> u128 {
    let bits = if v6 { 128 } else { 32 };
    let all = if v6 { u128::MAX } else { u128::from(u32::MAX) };
    if len == 0 { 0 } else { (all >> (bits - len as u32)) << (bits - len as u32) }
}

impl Reference {
    fn add(&mut self, v6: bool, addr: u128, len: u8) {
        let n = (v6, addr & mask(v6, len), len);
        if !self.nets.contains(&n) {
            self.nets.push(n);
        }
    }
    fn remove(&mut self, v6: bool, addr: u128, len: u8) {
        let n = (v6, addr & mask(v6, len), len);
        self.nets.retain(|x| *x != n);
    }
    fn contains(&self, v6: bool, addr: u128) -> bool {
        self.nets.iter().any(|&(f, net, len)| f == v6 && addr & mask(v6, len) == net)
    }
}

#[derive(Clone, Debug)]
enum Op {
    Add(bool, u128, u8),
    Remove(bool, u128, u8),
    Probe(bool, u128),
}

/// Addresses from a small universe so that adds, removes and probes collide often.
fn addr(v6: bool) -> BoxedStrategy<u128> {
    if v6 {
        (0u128..4, any::<u8>()).prop_map(|(hi, lo)| (0x2001_0db8u128 << 96) | (hi << 64) | u128::from(lo)).boxed()
    } else {
        (0u32..4, any::<u8>()).prop_map(|(hi, lo)| u128::from(0x0a00_0000u32 | (hi << 16) | u32::from(lo))).boxed()
    }
}

fn op() -> impl Strategy<Value = Op> {
    any::<bool>().prop_flat_map(|v6| {
        let max = if v6 { 128u8 } else { 32 };
        // Lengths biased to the interesting ends, plus anything.
        let len = prop_oneof![0u8..=max, (max - 8)..=max, if v6 { 118u8..=128 } else { 22u8..=32 },];
        prop_oneof![
            3 => (addr(v6), len.clone()).prop_map(move |(a, l)| Op::Add(v6, a, l)),
            1 => (addr(v6), len).prop_map(move |(a, l)| Op::Remove(v6, a, l)),
            4 => addr(v6).prop_map(move |a| Op::Probe(v6, a)),
        ]
    })
}

fn text(v6: bool, a: u128) -> String {
    if v6 { Ipv6Addr::from(a).to_string() } else { Ipv4Addr::from(a as u32).to_string() }
}

fn ip(v6: bool, a: u128) -> IpAddr {
    if v6 { IpAddr::V6(Ipv6Addr::from(a)) } else { IpAddr::V4(Ipv4Addr::from(a as u32)) }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn net_set_agrees_with_naive_reference(ops in proptest::collection::vec(op(), 1..120)) {
        let mut set = IpSet::new(IpSetType::Net);
        let mut reference = Reference::default();
        for op in ops {
            match op {
                Op::Add(v6, a, l) => {
                    set.add(&format!("{}/{l}", text(v6, a))).unwrap();
                    reference.add(v6, a, l);
                }
                Op::Remove(v6, a, l) => {
                    set.remove(&format!("{}/{l}", text(v6, a)));
                    reference.remove(v6, a, l);
                }
                Op::Probe(v6, a) => {
                    prop_assert_eq!(set.contains_ip(ip(v6, a)), reference.contains(v6, a));
                    // The other family's address with the same low bits never matches a
                    // set holding only this family.
                    if !reference.nets.iter().any(|n| n.0 != v6) {
                        prop_assert!(!set.contains_ip(ip(!v6, a)));
                    }
                }
            }
            prop_assert_eq!(set.len(), reference.nets.len());
        }
        let mut got: Vec<String> = set.members().collect();
        let mut want: Vec<String> = reference
            .nets
            .iter()
            .map(|&(v6, n, l)| format!("{}/{l}", text(v6, n)))
            .collect();
        got.sort();
        want.sort();
        prop_assert_eq!(got, want);
    }
}
