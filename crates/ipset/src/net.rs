//! NET sets: one hash set of masked networks per family and prefix length present.

use std::hash::Hash;
use std::mem::size_of;
use std::net::IpAddr;
use std::ops::BitAnd;

use hashbrown::HashSet;

use crate::text::{Cidr, mask_v4, mask_v6};

/// Networks of one prefix length.
#[derive(Clone, Debug)]
struct Table<K> {
    len: u8,
    mask: K,
    nets: HashSet<K>,
}

/// One address family: tables ordered by prefix length, longest first.
#[derive(Clone, Debug)]
struct Family<K> {
    tables: Vec<Table<K>>,
    hint: usize,
}

impl<K> Default for Family<K> {
    fn default() -> Self {
        Self { tables: Vec::new(), hint: 0 }
    }
}

impl<K: Copy + Eq + Hash + BitAnd<Output = K>> Family<K> {
    /// `net` is already masked with `mask`.
    fn add(&mut self, net: K, len: u8, mask: K) {
        if let Some(t) = self.tables.iter_mut().find(|t| t.len == len) {
            t.nets.insert(net);
            return;
        }
        let at = self.tables.iter().position(|t| t.len < len).unwrap_or(self.tables.len());
        let mut nets = HashSet::with_capacity(std::mem::take(&mut self.hint));
        nets.insert(net);
        self.tables.insert(at, Table { len, mask, nets });
    }

    fn remove(&mut self, net: K, len: u8) {
        let Some(at) = self.tables.iter().position(|t| t.len == len) else {
            return;
        };
        let now_empty = match self.tables.get_mut(at) {
            Some(t) => {
                t.nets.remove(&net);
                if t.nets.capacity() > 64 && t.nets.len() < t.nets.capacity() / 4 {
                    t.nets.shrink_to(t.nets.len().saturating_mul(2));
                }
                t.nets.is_empty()
            }
            None => false,
        };
        if now_empty {
            self.tables.remove(at);
            if self.tables.is_empty() {
                self.tables = Vec::new();
            }
        }
    }

    #[inline]
    fn contains(&self, addr: K) -> bool {
        self.tables.iter().any(|t| t.nets.contains(&(addr & t.mask)))
    }

    fn len(&self) -> usize {
        self.tables.iter().map(|t| t.nets.len()).sum()
    }

    fn heap_bytes(&self) -> usize {
        self.tables.capacity() * size_of::<Table<K>>()
            + self.tables.iter().map(|t| t.nets.allocation_size()).sum::<usize>()
    }

    fn iter(&self) -> impl Iterator<Item = (K, u8)> + '_ {
        self.tables.iter().flat_map(|t| t.nets.iter().map(move |&n| (n, t.len)))
    }
}

/// A set of CIDRs with exact containment for every prefix length.
#[derive(Clone, Debug, Default)]
pub(crate) struct NetSet {
    v4: Family<u32>,
    v6: Family<u128>,
}

impl NetSet {
    pub(crate) fn add(&mut self, cidr: Cidr) {
        match cidr {
            Cidr::V4 { net, len } => self.v4.add(net, len, mask_v4(len)),
            Cidr::V6 { net, len } => self.v6.add(net, len, mask_v6(len)),
        }
    }

    pub(crate) fn remove(&mut self, cidr: Cidr) {
        match cidr {
            Cidr::V4 { net, len } => self.v4.remove(net, len),
            Cidr::V6 { net, len } => self.v6.remove(net, len),
        }
    }

    /// `ip` is already canonical (no v4-mapped IPv6).
    #[inline]
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(ip) => self.v4.contains(u32::from(ip)),
            IpAddr::V6(ip) => self.v6.contains(u128::from(ip)),
        }
    }

    pub(crate) fn reserve_hint(&mut self, n: usize) {
        self.v4.hint = n;
    }

    pub(crate) fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.v4.heap_bytes() + self.v6.heap_bytes()
    }

    pub(crate) fn members(&self) -> impl Iterator<Item = String> + '_ {
        let v4 = self.v4.iter().map(|(net, len)| Cidr::V4 { net, len }.to_string());
        let v6 = self.v6.iter().map(|(net, len)| Cidr::V6 { net, len }.to_string());
        v4.chain(v6)
    }
}
