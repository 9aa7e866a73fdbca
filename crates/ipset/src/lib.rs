//! Felix IP sets as Dikastes consults them (`app-policy/policystore/ipset.go`), with alp's
//! deliberate difference D2: NET containment is correct for **every** prefix length, IPv4 and
//! IPv6 (Calico's trie never finds /25–/31 and /121–/127 members).
//!
//! * [`IpSetType::Ip`] and [`IpSetType::IpAndPort`] sets are exact-string sets, as in Calico. Both
//!   kinds answer both probes: [`IpSet::contains_ip`] asks for the member `net.IP.String()` of the
//!   address, [`IpSet::contains_ip_port`] for `"<ip>,<proto>:<port>"`. Members are parsed once, on
//!   [`IpSet::add`], into typed keys when (and only when) the member is exactly the canonical text of
//!   that key, so a probe never allocates and never formats. Any other member is kept verbatim and
//!   can only be found by [`IpSet::contains_str`].
//! * [`IpSetType::Net`] sets hold CIDRs (`"10.0.0.5/32"`, `"2001:db8::/64"`), masked to the network
//!   as Go's `net.ParseCIDR` does. Per family and per prefix length present there is one hash set of
//!   networks; a lookup masks the address once per length present (usually only /32 or /128) and
//!   probes. Memory is about 8–12 bytes per /32 member.
//!
//! IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are treated the way Go's `net.IP` treats them: a
//! probe with such an address is the IPv4 address, and a NET member `::ffff:a.b.c.d/N` with `N ≥ 96`
//! is the IPv4 network `a.b.c.d/(N-96)` (Go's `IPNet.Contains`). Apart from that, IPv4 and IPv6
//! never match each other.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing))]

mod exact;
mod net;
mod text;

use std::net::IpAddr;

use exact::ExactSet;
use net::NetSet;

/// The kind of an IP set, as in Felix's `IPSetUpdate.IPSetType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IpSetType {
    /// Members are bare addresses (`"10.0.0.1"`); exact-string semantics.
    Ip,
    /// Members are `"<ip>,<tcp|udp|sctp>:<port>"`; exact-string semantics.
    IpAndPort,
    /// Members are CIDRs; containment semantics.
    Net,
}

/// A member that a NET set cannot hold (IP and IP_AND_PORT sets accept any string).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind:?} member {member:?}: {reason}")]
pub struct InvalidMember {
    /// Kind of the set the member was added to.
    pub kind: IpSetType,
    /// The member as given.
    pub member: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

#[derive(Clone, Debug)]
enum Repr {
    Exact(ExactSet),
    Net(NetSet),
}

/// One IP set of any kind.
#[derive(Clone, Debug)]
pub struct IpSet {
    kind: IpSetType,
    repr: Repr,
}

impl IpSet {
    /// An empty set of the given kind.
    pub fn new(kind: IpSetType) -> Self {
        let repr = match kind {
            IpSetType::Ip | IpSetType::IpAndPort => Repr::Exact(ExactSet::default()),
            IpSetType::Net => Repr::Net(NetSet::default()),
        };
        Self { kind, repr }
    }

    /// Sizes the first NET table for about `n` members (a full update knows its size).
    pub fn reserve_hint(&mut self, n: usize) {
        if let Repr::Net(set) = &mut self.repr {
            set.reserve_hint(n);
        }
    }

    /// The kind given to [`IpSet::new`].
    pub fn kind(&self) -> IpSetType {
        self.kind
    }

    /// Adds a member (idempotent). A NET member must be `addr/len`, Go `ParseCIDR` style, and is
    /// stored masked to its network; anything else is an error and leaves the set unchanged.
    /// IP and IP_AND_PORT sets accept every string.
    pub fn add(&mut self, member: &str) -> Result<(), InvalidMember> {
        match &mut self.repr {
            Repr::Exact(set) => {
                set.add(member);
                Ok(())
            }
            Repr::Net(set) => match text::parse_cidr(member) {
                Ok(net) => {
                    set.add(net);
                    Ok(())
                }
                Err(reason) => Err(InvalidMember { kind: self.kind, member: member.to_owned(), reason }),
            },
        }
    }

    /// Removes exactly that member (for NET: exactly that masked prefix, so a covering or
    /// covered prefix stays). Unknown or malformed members are a no-op.
    pub fn remove(&mut self, member: &str) {
        match &mut self.repr {
            Repr::Exact(set) => set.remove(member),
            Repr::Net(set) => {
                if let Ok(net) = text::parse_cidr(member) {
                    set.remove(net);
                }
            }
        }
    }

    /// Number of distinct members (NET: distinct masked prefixes).
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Exact(set) => set.len(),
            Repr::Net(set) => set.len(),
        }
    }

    /// True when the set has no member.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// NET: some member prefix contains `ip`. IP / IP_AND_PORT: the set holds the member that is
    /// Go's `net.IP.String()` of `ip` (so IP_AND_PORT members never match this probe).
    #[inline]
    pub fn contains_ip(&self, ip: IpAddr) -> bool {
        let ip = text::canonical_ip(ip);
        match &self.repr {
            Repr::Exact(set) => set.contains_ip(ip),
            Repr::Net(set) => set.contains(ip),
        }
    }

    /// IP / IP_AND_PORT: the set holds the member `"<ip>,<proto>:<port>"`, the protocol named from
    /// its number (1 icmp, 6 tcp, 17 udp, 132 sctp; any other number never matches). A NET set
    /// never matches this probe.
    #[inline]
    pub fn contains_ip_port(&self, ip: IpAddr, protocol: u8, port: u16) -> bool {
        match &self.repr {
            Repr::Exact(set) => set.contains_ip_port(text::canonical_ip(ip), protocol, port),
            Repr::Net(_) => false,
        }
    }

    /// Calico's `Contains(string)`: IP / IP_AND_PORT sets test exact string membership; NET sets
    /// parse `value` as an address (unparsable → false) and test containment. Does not allocate.
    pub fn contains_str(&self, value: &str) -> bool {
        match &self.repr {
            Repr::Exact(set) => set.contains_str(value),
            Repr::Net(set) => match value.parse::<IpAddr>() {
                Ok(ip) => set.contains(text::canonical_ip(ip)),
                Err(_) => false,
            },
        }
    }

    /// The members as strings, in no particular order (NET members in masked `addr/len` form).
    /// For debugging and tests; allocates.
    pub fn members(&self) -> impl Iterator<Item = String> + '_ {
        let it: Box<dyn Iterator<Item = String> + '_> = match &self.repr {
            Repr::Exact(set) => Box::new(set.members()),
            Repr::Net(set) => Box::new(set.members()),
        };
        it
    }

    /// Approximate heap bytes owned by the set (hash-table allocations and verbatim strings).
    pub fn heap_bytes(&self) -> usize {
        match &self.repr {
            Repr::Exact(set) => set.heap_bytes(),
            Repr::Net(set) => set.heap_bytes(),
        }
    }
}

#[cfg(test)]
mod tests;
