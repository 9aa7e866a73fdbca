//! Parsing and canonical text: Go `net.ParseCIDR`-style CIDRs and the exact-string member forms.

use std::fmt::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A CIDR masked to its network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cidr {
    V4 { net: u32, len: u8 },
    V6 { net: u128, len: u8 },
}

/// The address Go's `net.IP` would see: an IPv4-mapped IPv6 address is its IPv4 address.
#[inline]
pub(crate) fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        IpAddr::V4(_) => ip,
    }
}

/// Network mask of `len` leading ones in 32 bits (`len` is at most 32).
#[inline]
pub(crate) fn mask_v4(len: u8) -> u32 {
    u32::MAX.checked_shl(32u32.saturating_sub(u32::from(len))).unwrap_or(0)
}

/// Network mask of `len` leading ones in 128 bits (`len` is at most 128).
#[inline]
pub(crate) fn mask_v6(len: u8) -> u128 {
    u128::MAX.checked_shl(128u32.saturating_sub(u32::from(len))).unwrap_or(0)
}

impl Cidr {
    /// Masks `addr` to `len` bits (`len` must be in range for the family).
    pub(crate) fn new(addr: IpAddr, len: u8) -> Self {
        match addr {
            IpAddr::V4(a) => Cidr::V4 { net: u32::from(a) & mask_v4(len), len },
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                // Go's IPNet.Contains treats a v4-mapped network of /96 or longer as IPv4.
                Some(v4) if len >= 96 => {
                    let len = len - 96;
                    Cidr::V4 { net: u32::from(v4) & mask_v4(len), len }
                }
                _ => Cidr::V6 { net: u128::from(a) & mask_v6(len), len },
            },
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Cidr::V4 { net, len } => write!(f, "{}/{}", Ipv4Addr::from(net), len),
            Cidr::V6 { net, len } => write!(f, "{}/{}", Ipv6Addr::from(net), len),
        }
    }
}

/// Go `net.ParseCIDR`: `addr/len`, `len` decimal digits only and at most 32 (IPv4) or 128 (IPv6).
pub(crate) fn parse_cidr(s: &str) -> Result<Cidr, &'static str> {
    if let Some(c) = fast_v4(s.as_bytes()) {
        return Ok(c);
    }
    parse_cidr_general(s)
}

fn parse_cidr_general(s: &str) -> Result<Cidr, &'static str> {
    let (addr, len) = s.split_once('/').ok_or("missing '/'")?;
    let addr: IpAddr = addr.parse().map_err(|_| "bad address")?;
    let max: u32 = match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    };
    if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) {
        return Err("bad prefix length");
    }
    let n = len.bytes().fold(0u32, |acc, b| acc.saturating_mul(10).saturating_add(u32::from(b - b'0')));
    if n > max {
        return Err("prefix length out of range");
    }
    let len = u8::try_from(n).map_err(|_| "prefix length out of range")?;
    Ok(Cidr::new(addr, len))
}

/// Protocol name used in IP_AND_PORT members, from its number.
#[inline]
pub(crate) fn proto_name(n: u8) -> Option<&'static str> {
    match n {
        1 => Some("icmp"),
        6 => Some("tcp"),
        17 => Some("udp"),
        132 => Some("sctp"),
        _ => None,
    }
}

fn proto_number(name: &str) -> Option<u8> {
    match name {
        "icmp" => Some(1),
        "tcp" => Some(6),
        "udp" => Some(17),
        "sctp" => Some(132),
        _ => None,
    }
}

/// Typed key of an exact-string member that is the canonical text of that key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ExactKey {
    Ip(IpAddr),
    IpPort(IpAddr, u8, u16),
}

impl fmt::Display for ExactKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ExactKey::Ip(ip) => write!(f, "{ip}"),
            ExactKey::IpPort(ip, proto, port) => {
                write!(f, "{ip},{}:{port}", proto_name(proto).unwrap_or("?"))
            }
        }
    }
}

/// Parses `s` into a typed key iff `s` is exactly that key's canonical text (Go's
/// `net.IP.String()`, `"<ip>,<proto>:<port>"`); otherwise `None` (a verbatim member).
pub(crate) fn parse_exact(s: &str) -> Option<ExactKey> {
    let key = match s.split_once(',') {
        None => ExactKey::Ip(s.parse().ok()?),
        Some((ip, rest)) => {
            let (proto, port) = rest.split_once(':')?;
            ExactKey::IpPort(ip.parse().ok()?, proto_number(proto)?, port.parse().ok()?)
        }
    };
    // IPv4-mapped IPv6 addresses print as IPv4 in Go, so their v6 spelling is never canonical;
    // the round trip below rejects every other non-canonical spelling.
    let key = match key {
        ExactKey::Ip(ip) => ExactKey::Ip(canonical_ip(ip)),
        ExactKey::IpPort(ip, proto, port) => ExactKey::IpPort(canonical_ip(ip), proto, port),
    };
    let mut buf = StackBuf::new();
    (write!(buf, "{key}").is_ok() && buf.as_bytes() == s.as_bytes()).then_some(key)
}

/// A small fixed buffer for formatting without allocating.
struct StackBuf {
    buf: [u8; 64],
    len: usize,
}

impl StackBuf {
    fn new() -> Self {
        Self { buf: [0; 64], len: 0 }
    }

    fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }
}

impl fmt::Write for StackBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        let dst = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Fast path for the common canonical `a.b.c.d/n` (anything else: `None`, and the general parser decides).
#[inline]
fn fast_v4(b: &[u8]) -> Option<Cidr> {
    let mut i = 0usize;
    let mut addr = 0u32;
    for octet in 0..4 {
        let start = i;
        let mut v = 0u32;
        while let Some(&c) = b.get(i) {
            if !c.is_ascii_digit() {
                break;
            }
            v = v * 10 + u32::from(c - b'0');
            i += 1;
            if i - start > 3 {
                return None;
            }
        }
        let n = i - start;
        if n == 0 || v > 255 || (n > 1 && b.get(start) == Some(&b'0')) {
            return None;
        }
        addr = (addr << 8) | v;
        let sep = if octet == 3 { b'/' } else { b'.' };
        if b.get(i) != Some(&sep) {
            return None;
        }
        i += 1;
    }
    let rest = b.get(i..)?;
    if rest.is_empty() || rest.len() > 2 || !rest.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let len = rest.iter().fold(0u8, |a, c| a * 10 + (c - b'0'));
    if len > 32 {
        return None;
    }
    Some(Cidr::V4 { net: addr & mask_v4(len), len })
}

#[cfg(test)]
mod fast_path_tests {
    use super::*;

    #[test]
    fn fast_v4_agrees_with_the_general_parser() {
        for s in [
            "10.0.0.1/32",
            "10.0.0.1/8",
            "0.0.0.0/0",
            "255.255.255.255/32",
            "1.2.3.4/33",
            "01.2.3.4/8",
            "1.2.3/8",
            "1.2.3.4",
            "1.2.3.4/",
            "1.2.3.4/08",
            "1.2.3.4/+8",
            "256.1.1.1/8",
            "1.2.3.4/8/9",
            "1.2.3.4 /8",
            "1..3.4/8",
        ] {
            if let Some(fast) = fast_v4(s.as_bytes()) {
                assert_eq!(Ok(fast), parse_cidr_general(s), "{s}");
            }
            assert_eq!(parse_cidr(s).is_ok(), parse_cidr_general(s).is_ok(), "{s}");
        }
    }
}
