//! The walk plan: an endpoint's tiers, policies and rules for one direction and scope, laid
//! out in first-match order and indexed by destination port, so a check only touches the rules
//! that can match it while keeping the order exact.

use std::sync::Arc;

use alp_model::{DefaultAction, Direction, Policy, PolicyId, PortRange, Profile, Rule, Scope, SetRef};
use rustc_hash::FxHashMap;

use crate::{contents::Contents, origin::Origin};

/// A destination-port list with at most this many ports is indexed port by port.
const EXACT_PORT_SPAN: i64 = 64;

#[derive(Debug)]
pub(crate) struct TierPlan {
    pub name: String,
    pub default: DefaultAction,
    /// First entry (rule slot) of the tier; entries of later tiers come after.
    pub first_entry: u32,
    /// In-scope policies of the tier are `policies[first_policy..end_policy]`.
    pub first_policy: u32,
    pub end_policy: u32,
}

impl TierPlan {
    pub fn in_scope(&self) -> bool {
        self.end_policy > self.first_policy
    }
}

#[derive(Debug)]
pub(crate) struct PolicySlot {
    pub id: PolicyId,
    /// `None`: named by the tier but missing from the store (INTERNAL when reached).
    pub policy: Option<Arc<Policy>>,
    pub origin: Origin,
}

/// Why an entry is always a candidate and what reaching it means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EntryKind {
    Rule,
    MissingPolicy,
    /// Difference D1: a rule naming a set that is not in the store.
    MissingSet(SetRef),
    /// Difference D8: a rule whose selector or CIDR does not parse.
    Defect,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry {
    pub tier: u32,
    pub policy: u32,
    pub rule: u32,
    pub kind: EntryKind,
}

#[derive(Debug)]
pub(crate) struct ProfileSlot {
    pub name: String,
    pub profile: Option<Arc<Profile>>,
    pub origin: Origin,
}

/// What a scanned entry needs of a request's ports to be a candidate.
#[derive(Debug)]
enum PortFilter {
    Any,
    Dst(Box<[PortRange]>),
    Src(Box<[PortRange]>),
}

#[derive(Debug)]
struct ScanEntry {
    pos: u32,
    ports: PortFilter,
}

/// Candidate entries by port. A rule whose destination ports are few is hashed under each of
/// them; failing that, one whose source ports are few is hashed by source port; the rest are
/// scanned in order with their port ranges kept inline (so rejecting one touches no rule).
#[derive(Debug, Default)]
pub(crate) struct PortIndex {
    by_dst: FxHashMap<u32, Vec<u32>>,
    by_src: FxHashMap<u32, Vec<u32>>,
    scan: Vec<ScanEntry>,
    /// The first position hashed by either port: scanned entries before it are walked without
    /// looking the request's ports up.
    first_hashed: u32,
}

#[derive(Debug)]
pub(crate) struct Plan {
    pub direction: Direction,
    pub has_endpoint: bool,
    pub tiers: Vec<TierPlan>,
    pub policies: Vec<PolicySlot>,
    pub entries: Vec<Entry>,
    pub index: PortIndex,
    pub profiles: Vec<ProfileSlot>,
}

pub(crate) fn rules(policy: &Policy, direction: Direction) -> &[Rule] {
    match direction {
        Direction::Ingress => &policy.inbound,
        Direction::Egress => &policy.outbound,
    }
}

pub(crate) fn profile_rules(profile: &Profile, direction: Direction) -> &[Rule] {
    match direction {
        Direction::Ingress => &profile.inbound,
        Direction::Egress => &profile.outbound,
    }
}

/// The first IP set a rule names that the contents do not hold.
pub(crate) fn missing_set(contents: &Contents, rule: &Rule) -> Option<SetRef> {
    rule.set_refs().find(|r| contents.set(*r).is_none())
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Plan {
    pub fn build(contents: &Contents, direction: Direction, scope: Scope) -> Plan {
        let mut plan = Plan {
            direction,
            has_endpoint: contents.endpoint.is_some(),
            tiers: Vec::new(),
            policies: Vec::new(),
            entries: Vec::new(),
            index: PortIndex::default(),
            profiles: Vec::new(),
        };
        let Some(ep) = contents.endpoint.as_deref() else { return plan };
        for tier in &ep.tiers {
            let ids = match direction {
                Direction::Ingress => &tier.ingress_policies,
                Direction::Egress => &tier.egress_policies,
            };
            let t = to_u32(plan.tiers.len());
            let first_policy = to_u32(plan.policies.len());
            let first_entry = to_u32(plan.entries.len());
            for id in ids.iter().filter(|id| scope == Scope::StagedAsEnforced || !id.is_staged()) {
                let p = to_u32(plan.policies.len());
                let policy = contents.policies.get(id).cloned();
                match policy.as_deref() {
                    None => plan.entries.push(Entry { tier: t, policy: p, rule: 0, kind: EntryKind::MissingPolicy }),
                    Some(pol) => {
                        for (i, rule) in rules(pol, direction).iter().enumerate() {
                            let kind = match (missing_set(contents, rule), &rule.defect) {
                                (Some(set), _) => EntryKind::MissingSet(set),
                                (None, Some(_)) => EntryKind::Defect,
                                (None, None) => EntryKind::Rule,
                            };
                            plan.entries.push(Entry { tier: t, policy: p, rule: to_u32(i), kind });
                        }
                    }
                }
                plan.policies.push(PolicySlot { origin: Origin::policy(id, &tier.name), id: id.clone(), policy });
            }
            plan.tiers.push(TierPlan {
                name: tier.name.clone(),
                default: tier.default_action.clone(),
                first_entry,
                first_policy,
                end_policy: to_u32(plan.policies.len()),
            });
        }
        plan.profiles = ep
            .profile_ids
            .iter()
            .map(|name| ProfileSlot {
                name: name.clone(),
                profile: contents.profiles.get(name).cloned(),
                origin: Origin::profile(name),
            })
            .collect();
        plan.index = PortIndex::build(&plan);
        plan
    }

    pub fn rule(&self, e: &Entry) -> Option<&Rule> {
        let policy = self.policies.get(e.policy as usize)?.policy.as_deref()?;
        rules(policy, self.direction).get(e.rule as usize)
    }

    /// Candidate entry positions for a request's ports, in walk order.
    pub fn candidates(&self, dst_port: u32, src_port: u32) -> Candidates<'_> {
        Candidates {
            unresolved: Some(&self.index),
            by_dst: &[],
            by_src: &[],
            scan: &self.index.scan,
            dst_port,
            src_port,
            floor: 0,
            all: None,
        }
    }

    /// Every entry, in walk order: what the index must be equivalent to.
    pub fn all_entries(&self) -> Candidates<'_> {
        Candidates {
            unresolved: None,
            by_dst: &[],
            by_src: &[],
            scan: &[],
            dst_port: 0,
            src_port: 0,
            floor: 0,
            all: Some(0..to_u32(self.entries.len())),
        }
    }
}

fn candidates_for(map: &FxHashMap<u32, Vec<u32>>, port: u32) -> &[u32] {
    map.get(&port).map_or(&[][..], Vec::as_slice)
}

/// The ports of a list of at most [`EXACT_PORT_SPAN`] ports, or `None`.
fn few_ports(ranges: &[PortRange]) -> Option<impl Iterator<Item = u32> + '_> {
    let span: i64 = ranges.iter().map(|r| (i64::from(r.last) - i64::from(r.first) + 1).max(0)).sum();
    (span <= EXACT_PORT_SPAN)
        .then(|| ranges.iter().flat_map(|r| (r.first.max(0)..=r.last).filter_map(|p| u32::try_from(p).ok())))
}

fn push_unique(map: &mut FxHashMap<u32, Vec<u32>>, port: u32, pos: u32) {
    let list = map.entry(port).or_default();
    if list.last() != Some(&pos) {
        list.push(pos);
    }
}

impl PortIndex {
    fn build(plan: &Plan) -> PortIndex {
        let mut index = PortIndex { first_hashed: u32::MAX, ..PortIndex::default() };
        for (pos, e) in plan.entries.iter().enumerate() {
            let pos = to_u32(pos);
            let rule = match (e.kind, plan.rule(e)) {
                (EntryKind::Rule, Some(rule)) => rule,
                _ => {
                    index.scan.push(ScanEntry { pos, ports: PortFilter::Any });
                    continue;
                }
            };
            // A port clause rules a rule out only if no named-port set could match instead.
            let dst = Some(rule.dst.ports.as_slice()).filter(|p| !p.is_empty() && rule.dst.named_port_sets.is_empty());
            let src = Some(rule.src.ports.as_slice()).filter(|p| !p.is_empty() && rule.src.named_port_sets.is_empty());
            match (dst, src) {
                (Some(ports), _) if let Some(each) = few_ports(ports) => {
                    index.first_hashed = index.first_hashed.min(pos);
                    each.for_each(|p| push_unique(&mut index.by_dst, p, pos));
                }
                (_, Some(ports)) if let Some(each) = few_ports(ports) => {
                    index.first_hashed = index.first_hashed.min(pos);
                    each.for_each(|p| push_unique(&mut index.by_src, p, pos));
                }
                (Some(ports), _) => index.scan.push(ScanEntry { pos, ports: PortFilter::Dst(ports.into()) }),
                (None, Some(ports)) => index.scan.push(ScanEntry { pos, ports: PortFilter::Src(ports.into()) }),
                (None, None) => index.scan.push(ScanEntry { pos, ports: PortFilter::Any }),
            }
        }
        index
    }
}

/// Merges the candidates hashed by destination port, by source port and scanned, in position
/// order.
#[derive(Clone, Debug)]
pub(crate) struct Candidates<'p> {
    /// The index, until the hashed lists are looked up (on the first candidate that could be
    /// one of theirs).
    unresolved: Option<&'p PortIndex>,
    by_dst: &'p [u32],
    by_src: &'p [u32],
    scan: &'p [ScanEntry],
    dst_port: u32,
    src_port: u32,
    /// No candidate before this position (applied to the hashed lists when they are looked up).
    floor: u32,
    /// Unindexed walk (for equivalence tests).
    all: Option<std::ops::Range<u32>>,
}

fn skip_before(list: &[u32], pos: u32) -> &[u32] {
    match list.first() {
        Some(first) if *first < pos => list.get(list.partition_point(|p| *p < pos)..).unwrap_or_default(),
        _ => list,
    }
}

impl Candidates<'_> {
    /// Skips to the first candidate at or after `pos`.
    pub fn seek(&mut self, pos: u32) {
        if let Some(all) = &mut self.all {
            all.start = all.start.max(pos);
            return;
        }
        self.floor = self.floor.max(pos);
        self.by_dst = skip_before(self.by_dst, pos);
        self.by_src = skip_before(self.by_src, pos);
        if self.scan.first().is_some_and(|s| s.pos < pos) {
            let j = self.scan.partition_point(|s| s.pos < pos);
            self.scan = self.scan.get(j..).unwrap_or_default();
        }
    }
}

impl Iterator for Candidates<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        if let Some(all) = &mut self.all {
            return all.next();
        }
        while let Some((s, rest)) = self.scan.split_first() {
            let pass = match &s.ports {
                PortFilter::Any => true,
                PortFilter::Dst(r) => r.iter().any(|r| r.contains(self.dst_port)),
                PortFilter::Src(r) => r.iter().any(|r| r.contains(self.src_port)),
            };
            if pass {
                break;
            }
            self.scan = rest;
        }
        if let Some(index) = self.unresolved {
            match self.scan.split_first() {
                Some((s, rest)) if s.pos < index.first_hashed => {
                    self.scan = rest;
                    self.floor = s.pos + 1;
                    return Some(s.pos);
                }
                _ => {
                    self.unresolved = None;
                    self.by_dst = skip_before(candidates_for(&index.by_dst, self.dst_port), self.floor);
                    self.by_src = skip_before(candidates_for(&index.by_src, self.src_port), self.floor);
                }
            }
        }
        let heads = [self.by_dst.first().copied(), self.by_src.first().copied(), self.scan.first().map(|s| s.pos)];
        let next = heads.into_iter().flatten().min()?;
        if heads[0] == Some(next) {
            self.by_dst = self.by_dst.get(1..).unwrap_or_default();
        } else if heads[1] == Some(next) {
            self.by_src = self.by_src.get(1..).unwrap_or_default();
        } else {
            self.scan = self.scan.get(1..).unwrap_or_default();
        }
        Some(next)
    }
}
