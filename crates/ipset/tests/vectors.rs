//! Runs every `set_operations` case of `vectors/ipsets.json` (`store_updates` belongs to the
//! store and is run there).

use std::net::IpAddr;
use std::path::PathBuf;

use alp_ipset::{IpSet, IpSetType};
use serde_json::Value;

fn vectors_dir() -> PathBuf {
    match std::env::var_os("ALP_VECTORS_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../vectors"),
    }
}

fn load(name: &str) -> Value {
    let path = vectors_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn kind(s: &str) -> IpSetType {
    match s {
        "IP" => IpSetType::Ip,
        "IP_AND_PORT" => IpSetType::IpAndPort,
        "NET" => IpSetType::Net,
        other => panic!("unknown set type {other}"),
    }
}

/// `"<ip>,<proto>:<port>"` as a typed probe.
fn ip_port_probe(v: &str) -> Option<(IpAddr, u8, u16)> {
    let (ip, rest) = v.split_once(',')?;
    let (proto, port) = rest.split_once(':')?;
    let proto = match proto {
        "icmp" => 1,
        "tcp" => 6,
        "udp" => 17,
        "sctp" => 132,
        _ => return None,
    };
    Some((ip.parse().ok()?, proto, port.parse().ok()?))
}

#[test]
fn set_operations() {
    let v = load("ipsets.json");
    let cases = v["set_operations"].as_array().unwrap();
    assert!(!cases.is_empty());
    let (mut steps, mut probes) = (0, 0);
    for case in cases {
        let id = case["id"].as_str().unwrap();
        let mut set = IpSet::new(kind(case["type"].as_str().unwrap()));
        for step in case["steps"].as_array().unwrap() {
            steps += 1;
            match step["op"].as_str().unwrap() {
                "add" => set.add(step["member"].as_str().unwrap()).unwrap(),
                "remove" => set.remove(step["member"].as_str().unwrap()),
                "contains" => {
                    probes += 1;
                    let value = step["value"].as_str().unwrap();
                    let expect = step["expect"].as_bool().unwrap();
                    // Calico's Contains(string) semantics.
                    assert_eq!(set.contains_str(value), expect, "{id}: contains_str {value}");
                    // The typed probe the checker uses, where the value is one.
                    if let Ok(ip) = value.parse::<IpAddr>() {
                        assert_eq!(set.contains_ip(ip), expect, "{id}: contains_ip {value}");
                    } else if let Some((ip, proto, port)) = ip_port_probe(value) {
                        let got = set.contains_ip_port(ip, proto, port);
                        assert_eq!(got, expect, "{id}: contains_ip_port {value}");
                    }
                }
                other => panic!("{id}: unknown op {other}"),
            }
        }
    }
    eprintln!("ipsets.json set_operations: {} cases, {steps} steps, {probes} probes passed", cases.len());
}
