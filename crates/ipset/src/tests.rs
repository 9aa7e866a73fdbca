use super::*;
use std::net::{Ipv4Addr, Ipv6Addr};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn net(members: &[&str]) -> IpSet {
    let mut s = IpSet::new(IpSetType::Net);
    for m in members {
        s.add(m).unwrap();
    }
    s
}

#[test]
fn d2_v4_every_prefix_25_to_31() {
    for len in 25u8..=31 {
        let base = Ipv4Addr::new(192, 168, 8, 0);
        let s = net(&[&format!("192.168.8.0/{len}")]);
        let size = 1u32 << (32 - len);
        for off in 0..size {
            let inside = Ipv4Addr::from(u32::from(base) + off);
            assert!(s.contains_ip(IpAddr::V4(inside)), "/{len} {inside}");
        }
        let outside = Ipv4Addr::from(u32::from(base) + size);
        assert!(!s.contains_ip(IpAddr::V4(outside)), "/{len} {outside}");
        assert!(!s.contains_ip(ip("192.168.7.255")));
    }
    // The README's example of the upstream quirk.
    assert!(net(&["192.168.8.8/30"]).contains_ip(ip("192.168.8.9")));
}

#[test]
fn d2_v6_every_prefix_121_to_127() {
    for len in 121u8..=127 {
        let s = net(&[&format!("2001:db8::100/{len}")]);
        let base = u128::from(ip6("2001:db8::100"));
        let size = 1u128 << (128 - len);
        for off in 0..size {
            assert!(s.contains_ip(IpAddr::V6(Ipv6Addr::from(base + off))), "/{len}");
        }
        assert!(!s.contains_ip(IpAddr::V6(Ipv6Addr::from(base + size))));
        assert!(!s.contains_ip(IpAddr::V6(Ipv6Addr::from(base - 1))));
    }
}

fn ip6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

#[test]
fn all_lengths_zero_to_max() {
    let s = net(&["0.0.0.0/0"]);
    assert!(s.contains_ip(ip("1.2.3.4")));
    assert!(s.contains_ip(ip("255.255.255.255")));
    assert!(!s.contains_ip(ip("::1")));
    let s = net(&["::/0"]);
    assert!(s.contains_ip(ip("2001:db8::1")));
    assert!(!s.contains_ip(ip("1.2.3.4")));
    assert!(!s.contains_ip(ip("::ffff:1.2.3.4")));
    let s = net(&["10.1.2.3/32", "2001:db8::7/128"]);
    assert!(s.contains_ip(ip("10.1.2.3")));
    assert!(!s.contains_ip(ip("10.1.2.2")));
    assert!(s.contains_ip(ip("2001:db8::7")));
    assert!(!s.contains_ip(ip("2001:db8::6")));
}

#[test]
fn v4_and_v6_never_cross_match() {
    // 10.0.0.0/8 and the IPv6 network whose top 32 bits are 10.0.0.0.
    let s = net(&["10.0.0.0/8"]);
    assert!(!s.contains_ip(ip("a00::1")));
    assert!(!s.contains_ip(ip("::a00:1")));
    let s = net(&["a00::/8", "::/96"]);
    assert!(!s.contains_ip(ip("10.0.0.1")));
    assert!(!s.contains_ip(ip("0.0.0.1")));
    assert!(s.contains_ip(ip("a00::1")));
}

#[test]
fn v4_mapped_follows_go_net_ip() {
    // A v4-mapped probe is the IPv4 address, as Go's net.ParseIP/To4 sees it.
    let s = net(&["10.0.0.0/8"]);
    assert!(s.contains_ip(ip("::ffff:10.1.2.3")));
    // A v4-mapped member of /96 or longer is the IPv4 network (Go IPNet.Contains).
    let s = net(&["::ffff:10.0.0.0/104"]);
    assert!(s.contains_ip(ip("10.9.9.9")));
    assert_eq!(s.members().collect::<Vec<_>>(), ["10.0.0.0/8"]);
    let mut s2 = net(&["10.0.0.0/8"]);
    s2.remove("::ffff:10.0.0.0/104");
    assert!(s2.is_empty());
}

#[test]
fn masking() {
    let mut s = net(&["192.168.8.9/24"]);
    assert_eq!(s.members().collect::<Vec<_>>(), ["192.168.8.0/24"]);
    assert!(s.contains_ip(ip("192.168.8.200")));
    s.add("192.168.8.0/24").unwrap();
    assert_eq!(s.len(), 1);
    // Removal of a differently-spelled member of the same masked prefix.
    s.remove("192.168.8.77/24");
    assert!(s.is_empty());
    let s = net(&["fe80:23af:77bd:ffff::1/49"]);
    assert_eq!(s.members().collect::<Vec<_>>(), ["fe80:23af:77bd:8000::/49"]);
    let s = net(&["1.2.3.4/0"]);
    assert_eq!(s.members().collect::<Vec<_>>(), ["0.0.0.0/0"]);
}

#[test]
fn removal_of_exact_prefix_only() {
    let mut s = net(&["10.0.0.0/8", "10.1.0.0/16", "10.1.2.3/32"]);
    s.remove("10.0.0.0/16"); // not a member
    s.remove("10.1.0.0/8"); // masks to 10.0.0.0/8: that is a member
    assert!(!s.contains_ip(ip("10.2.0.1")));
    assert!(s.contains_ip(ip("10.1.9.9")));
    s.remove("10.1.2.3/31"); // not a member
    s.remove("10.1.0.0/16");
    assert!(!s.contains_ip(ip("10.1.9.9")));
    assert!(s.contains_ip(ip("10.1.2.3")));
    assert_eq!(s.len(), 1);
    s.remove("10.1.2.3/32");
    assert!(s.is_empty());
    s.remove("10.1.2.3/32"); // idempotent
    s.remove("garbage");
    assert!(s.is_empty());
}

#[test]
fn invalid_net_members() {
    for bad in [
        "10.0.0.1",
        "10.0.0.1/",
        "10.0.0.1/33",
        "10.0.0.1/-1",
        "10.0.0.1/+8",
        "10.0.0.1/8/9",
        "10.0.0.1/ 8",
        "10.0.0.256/8",
        "010.0.0.1/8",
        "::1/129",
        "fe80::1%eth0/64",
        "/8",
        "",
        "garbage",
        "10.0.0.1/99999999999999999999999",
    ] {
        let mut s = IpSet::new(IpSetType::Net);
        let err = s.add(bad).unwrap_err();
        assert_eq!(err.kind, IpSetType::Net);
        assert_eq!(err.member, bad);
        assert!(s.is_empty(), "{bad}");
    }
    // Leading zeros in the length are fine (Go dtoi).
    let s = net(&["10.0.0.1/008"]);
    assert_eq!(s.members().collect::<Vec<_>>(), ["10.0.0.0/8"]);
    let e = IpSet::new(IpSetType::Net).add("1.2.3.4").unwrap_err();
    assert_eq!(e.to_string(), "invalid Net member \"1.2.3.4\": missing '/'");
}

#[test]
fn net_never_matches_ip_port_probe() {
    let s = net(&["0.0.0.0/0"]);
    assert!(!s.contains_ip_port(ip("1.2.3.4"), 6, 80));
    assert!(!IpSet::new(IpSetType::Net).contains_str("1.2.3.4"));
    assert!(s.contains_str("1.2.3.4"));
    assert!(!s.contains_str("not an ip"));
}

#[test]
fn exact_sets_accept_anything() {
    for kind in [IpSetType::Ip, IpSetType::IpAndPort] {
        let mut s = IpSet::new(kind);
        s.add("10.0.0.1").unwrap();
        s.add("10.0.0.1,tcp:8080").unwrap();
        s.add("fd00::1,udp:53").unwrap();
        s.add("fd00::2").unwrap();
        s.add("garbage").unwrap();
        s.add("").unwrap();
        s.add("010.0.0.1").unwrap();
        s.add("::ffff:1.2.3.4").unwrap();
        s.add("10.0.0.2,TCP:80").unwrap();
        s.add("10.0.0.3,tcp:080").unwrap();
        s.add("10.0.0.1").unwrap(); // idempotent
        assert_eq!(s.len(), 10);
        assert!(s.contains_ip(ip("10.0.0.1")));
        assert!(!s.contains_ip(ip("10.0.0.2")));
        assert!(s.contains_ip(ip("fd00::2")));
        assert!(s.contains_ip_port(ip("10.0.0.1"), 6, 8080));
        assert!(!s.contains_ip_port(ip("10.0.0.1"), 17, 8080));
        assert!(!s.contains_ip_port(ip("10.0.0.1"), 6, 8081));
        assert!(s.contains_ip_port(ip("fd00::1"), 17, 53));
        // Non-canonical spellings are verbatim strings that no typed probe equals.
        assert!(!s.contains_ip(ip("1.2.3.4")));
        assert!(!s.contains_ip(ip("::ffff:1.2.3.4")));
        assert!(!s.contains_ip_port(ip("10.0.0.2"), 6, 80));
        assert!(!s.contains_ip_port(ip("10.0.0.3"), 6, 80));
        assert!(s.contains_str("garbage"));
        assert!(s.contains_str(""));
        assert!(s.contains_str("10.0.0.2,TCP:80"));
        assert!(s.contains_str("10.0.0.1,tcp:8080"));
        assert!(!s.contains_str("10.0.0.1,tcp:8081"));
        let mut m: Vec<String> = s.members().collect();
        m.sort();
        assert!(m.contains(&"fd00::1,udp:53".to_owned()));
        assert!(m.contains(&"10.0.0.1,tcp:8080".to_owned()));
        s.remove("10.0.0.1");
        s.remove("garbage");
        s.remove("nope");
        assert!(!s.contains_ip(ip("10.0.0.1")));
        assert!(s.contains_ip_port(ip("10.0.0.1"), 6, 8080));
        assert_eq!(s.len(), 8);
    }
}

#[test]
fn ip_port_never_matches_ip_probe() {
    let mut s = IpSet::new(IpSetType::IpAndPort);
    s.add("2.2.2.2,tcp:2222").unwrap();
    assert!(!s.contains_ip(ip("2.2.2.2")));
    assert!(s.contains_ip_port(ip("2.2.2.2"), 6, 2222));
    // IPv4-mapped probes print as IPv4 in Go.
    assert!(s.contains_ip_port(ip("::ffff:2.2.2.2"), 6, 2222));
}

#[test]
fn protocol_names() {
    let mut s = IpSet::new(IpSetType::IpAndPort);
    for m in ["1.1.1.1,icmp:0", "1.1.1.1,tcp:1", "1.1.1.1,udp:2", "1.1.1.1,sctp:3"] {
        s.add(m).unwrap();
    }
    assert!(s.contains_ip_port(ip("1.1.1.1"), 1, 0));
    assert!(s.contains_ip_port(ip("1.1.1.1"), 6, 1));
    assert!(s.contains_ip_port(ip("1.1.1.1"), 17, 2));
    assert!(s.contains_ip_port(ip("1.1.1.1"), 132, 3));
    assert!(!s.contains_ip_port(ip("1.1.1.1"), 58, 0));
    assert!(!s.contains_ip_port(ip("1.1.1.1"), 0, 1));
}

#[test]
fn go_ipv6_text() {
    // net.IP.String() outputs (RFC 5952): the first longest run of >= 2 zero groups is "::".
    for canonical in [
        "::",
        "::1",
        "2001:db8::1",
        "2001:db8:0:1:1:1:1:1",
        "2001:0:0:1::1",
        "1::2:0:0:3:4",
        "fe80::",
        "1:2:3:4:5:6:7:8",
    ] {
        assert_eq!(ip(canonical).to_string(), canonical);
        let mut s = IpSet::new(IpSetType::Ip);
        s.add(canonical).unwrap();
        assert!(s.contains_ip(ip(canonical)), "{canonical}");
    }
    let mut s = IpSet::new(IpSetType::Ip);
    s.add("2001:DB8::1").unwrap();
    s.add("2001:db8:0::2").unwrap();
    assert!(!s.contains_ip(ip("2001:db8::1")));
    assert!(!s.contains_ip(ip("2001:db8::2")));
}

#[test]
fn heap_bytes_grows() {
    let mut s = IpSet::new(IpSetType::Net);
    assert_eq!(s.heap_bytes(), 0);
    for i in 0..1000u32 {
        s.add(&format!("{}/32", Ipv4Addr::from(0x0a00_0000 + i))).unwrap();
    }
    let b = s.heap_bytes();
    assert!((4000..16 * 1000).contains(&b), "{b}");
    for i in 0..1000u32 {
        s.remove(&format!("{}/32", Ipv4Addr::from(0x0a00_0000 + i)));
    }
    assert_eq!(s.heap_bytes(), 0);
}
