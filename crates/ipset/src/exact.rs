//! IP and IP_AND_PORT sets: exact-string sets stored as typed keys plus verbatim strings.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hashbrown::HashSet;

use crate::text::{ExactKey, parse_exact, proto_name};

/// Packs an IPv4 ip-port key: address, protocol number, port.
#[inline]
fn pack_v4(ip: Ipv4Addr, proto: u8, port: u16) -> u64 {
    (u64::from(u32::from(ip)) << 24) | (u64::from(proto) << 16) | u64::from(port)
}

/// Packs the protocol and port of an IPv6 ip-port key.
#[inline]
fn pack_pp(proto: u8, port: u16) -> u32 {
    (u32::from(proto) << 16) | u32::from(port)
}

/// Members that are the canonical text of a typed key live in the typed tables (a bijection, so
/// string equality is key equality); every other string lives in `raw`, where no typed probe
/// looks.
#[derive(Clone, Debug, Default)]
pub(crate) struct ExactSet {
    v4: HashSet<u32>,
    v6: HashSet<u128>,
    v4_port: HashSet<u64>,
    v6_port: HashSet<(u128, u32)>,
    raw: HashSet<Box<str>>,
}

/// Gives memory back after many removals.
fn maybe_shrink<T: Eq + std::hash::Hash>(set: &mut HashSet<T>) {
    if set.capacity() > 64 && set.len() < set.capacity() / 4 {
        set.shrink_to(set.len().saturating_mul(2));
    }
}

impl ExactSet {
    pub(crate) fn add(&mut self, member: &str) {
        match parse_exact(member) {
            Some(ExactKey::Ip(IpAddr::V4(ip))) => {
                self.v4.insert(u32::from(ip));
            }
            Some(ExactKey::Ip(IpAddr::V6(ip))) => {
                self.v6.insert(u128::from(ip));
            }
            Some(ExactKey::IpPort(IpAddr::V4(ip), proto, port)) => {
                self.v4_port.insert(pack_v4(ip, proto, port));
            }
            Some(ExactKey::IpPort(IpAddr::V6(ip), proto, port)) => {
                self.v6_port.insert((u128::from(ip), pack_pp(proto, port)));
            }
            None => {
                if !self.raw.contains(member) {
                    self.raw.insert(member.into());
                }
            }
        }
    }

    pub(crate) fn remove(&mut self, member: &str) {
        match parse_exact(member) {
            Some(ExactKey::Ip(IpAddr::V4(ip))) => {
                self.v4.remove(&u32::from(ip));
                maybe_shrink(&mut self.v4);
            }
            Some(ExactKey::Ip(IpAddr::V6(ip))) => {
                self.v6.remove(&u128::from(ip));
                maybe_shrink(&mut self.v6);
            }
            Some(ExactKey::IpPort(IpAddr::V4(ip), proto, port)) => {
                self.v4_port.remove(&pack_v4(ip, proto, port));
                maybe_shrink(&mut self.v4_port);
            }
            Some(ExactKey::IpPort(IpAddr::V6(ip), proto, port)) => {
                self.v6_port.remove(&(u128::from(ip), pack_pp(proto, port)));
                maybe_shrink(&mut self.v6_port);
            }
            None => {
                self.raw.remove(member);
                maybe_shrink(&mut self.raw);
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.v4.len() + self.v6.len() + self.v4_port.len() + self.v6_port.len() + self.raw.len()
    }

    /// `ip` is already canonical (no v4-mapped IPv6).
    #[inline]
    pub(crate) fn contains_ip(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(ip) => self.v4.contains(&u32::from(ip)),
            IpAddr::V6(ip) => self.v6.contains(&u128::from(ip)),
        }
    }

    /// `ip` is already canonical (no v4-mapped IPv6).
    #[inline]
    pub(crate) fn contains_ip_port(&self, ip: IpAddr, proto: u8, port: u16) -> bool {
        if proto_name(proto).is_none() {
            return false;
        }
        match ip {
            IpAddr::V4(ip) => self.v4_port.contains(&pack_v4(ip, proto, port)),
            IpAddr::V6(ip) => self.v6_port.contains(&(u128::from(ip), pack_pp(proto, port))),
        }
    }

    pub(crate) fn contains_str(&self, value: &str) -> bool {
        match parse_exact(value) {
            Some(ExactKey::Ip(ip)) => self.contains_ip(ip),
            Some(ExactKey::IpPort(ip, proto, port)) => self.contains_ip_port(ip, proto, port),
            None => self.raw.contains(value),
        }
    }

    pub(crate) fn members(&self) -> impl Iterator<Item = String> + '_ {
        let v4 = self.v4.iter().map(|&ip| Ipv4Addr::from(ip).to_string());
        let v6 = self.v6.iter().map(|&ip| Ipv6Addr::from(ip).to_string());
        let v4p = self.v4_port.iter().map(|&k| {
            // Truncating casts unpack the fields packed by `pack_v4`.
            let ip = Ipv4Addr::from((k >> 24) as u32);
            ExactKey::IpPort(IpAddr::V4(ip), (k >> 16) as u8, k as u16).to_string()
        });
        let v6p = self.v6_port.iter().map(|&(ip, pp)| {
            let ip = IpAddr::V6(Ipv6Addr::from(ip));
            ExactKey::IpPort(ip, (pp >> 16) as u8, pp as u16).to_string()
        });
        let raw = self.raw.iter().map(|s| s.to_string());
        v4.chain(v6).chain(v4p).chain(v6p).chain(raw)
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.v4.allocation_size()
            + self.v6.allocation_size()
            + self.v4_port.allocation_size()
            + self.v6_port.allocation_size()
            + self.raw.allocation_size()
            + self.raw.iter().map(|s| s.len()).sum::<usize>()
    }
}
