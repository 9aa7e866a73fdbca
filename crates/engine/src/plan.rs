//! The walk plan: an endpoint's tiers, policies and rules for one direction and scope, laid
//! out in first-match order and indexed by destination port, so a check only touches the rules
//! that can match it while keeping the order exact.

use std::sync::Arc;

use alp_model::{DefaultAction, Direction, Policy, PolicyId, PortRange, Profile, Rule, Scope, SetRef};
use rustc_hash::FxHashMap;

use crate::snapshot::Snapshot;

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
}

#[derive(Debug)]
struct ScanEntry {
    pos: u32,
    /// `None`: any destination port may match.
    ports: Option<Box<[PortRange]>>,
}

/// Candidate entries by destination port: single ports hashed, the rest scanned.
#[derive(Debug, Default)]
pub(crate) struct PortIndex {
    exact: FxHashMap<u32, Vec<u32>>,
    scan: Vec<ScanEntry>,
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

/// The first IP set a rule names that the snapshot does not hold.
pub(crate) fn missing_set(snap: &Snapshot, rule: &Rule) -> Option<SetRef> {
    rule.set_refs().find(|r| snap.set(*r).is_none())
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Plan {
    pub fn build(snap: &Snapshot, direction: Direction, scope: Scope) -> Plan {
        let mut plan = Plan {
            direction,
            has_endpoint: snap.endpoint.is_some(),
            tiers: Vec::new(),
            policies: Vec::new(),
            entries: Vec::new(),
            index: PortIndex::default(),
            profiles: Vec::new(),
        };
        let Some(ep) = snap.endpoint.as_deref() else { return plan };
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
                let policy = snap.policies.get(id).cloned();
                match policy.as_deref() {
                    None => plan.entries.push(Entry { tier: t, policy: p, rule: 0, kind: EntryKind::MissingPolicy }),
                    Some(pol) => {
                        for (i, rule) in rules(pol, direction).iter().enumerate() {
                            let kind = match (missing_set(snap, rule), &rule.defect) {
                                (Some(set), _) => EntryKind::MissingSet(set),
                                (None, Some(_)) => EntryKind::Defect,
                                (None, None) => EntryKind::Rule,
                            };
                            plan.entries.push(Entry { tier: t, policy: p, rule: to_u32(i), kind });
                        }
                    }
                }
                plan.policies.push(PolicySlot { id: id.clone(), policy });
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
            .map(|name| ProfileSlot { name: name.clone(), profile: snap.profiles.get(name).cloned() })
            .collect();
        plan.index = PortIndex::build(&plan);
        plan
    }

    pub fn rule(&self, e: &Entry) -> Option<&Rule> {
        let policy = self.policies.get(e.policy as usize)?.policy.as_deref()?;
        rules(policy, self.direction).get(e.rule as usize)
    }

    /// Candidate entry positions for a destination port, in walk order.
    pub fn candidates(&self, port: u32) -> Candidates<'_> {
        Candidates {
            exact: self.index.exact.get(&port).map_or(&[][..], Vec::as_slice),
            scan: &self.index.scan,
            port,
            all: None,
        }
    }

    /// Every entry, in walk order: what the index must be equivalent to.
    pub fn all_entries(&self) -> Candidates<'_> {
        Candidates { exact: &[], scan: &[], port: 0, all: Some(0..to_u32(self.entries.len())) }
    }
}

impl PortIndex {
    fn build(plan: &Plan) -> PortIndex {
        let mut index = PortIndex::default();
        for (pos, e) in plan.entries.iter().enumerate() {
            let pos = to_u32(pos);
            let ports = match (e.kind, plan.rule(e)) {
                (EntryKind::Rule, Some(rule)) if rule.dst.named_port_sets.is_empty() => rule.dst.ports.as_slice(),
                _ => &[],
            };
            if ports.is_empty() {
                index.scan.push(ScanEntry { pos, ports: None });
                continue;
            }
            let span: i64 = ports.iter().map(|r| (i64::from(r.last) - i64::from(r.first) + 1).max(0)).sum();
            if span > EXACT_PORT_SPAN {
                index.scan.push(ScanEntry { pos, ports: Some(ports.into()) });
                continue;
            }
            for r in ports {
                for port in r.first.max(0)..=r.last {
                    let Ok(port) = u32::try_from(port) else { continue };
                    let list = index.exact.entry(port).or_default();
                    if list.last() != Some(&pos) {
                        list.push(pos);
                    }
                }
            }
        }
        index
    }
}

/// Merges the hashed and scanned candidates of one port, in position order.
#[derive(Clone, Debug)]
pub(crate) struct Candidates<'p> {
    exact: &'p [u32],
    scan: &'p [ScanEntry],
    port: u32,
    /// Unindexed walk (for equivalence tests).
    all: Option<std::ops::Range<u32>>,
}

impl Candidates<'_> {
    /// Skips to the first candidate at or after `pos`.
    pub fn seek(&mut self, pos: u32) {
        if let Some(all) = &mut self.all {
            all.start = all.start.max(pos);
            return;
        }
        let i = self.exact.partition_point(|p| *p < pos);
        self.exact = self.exact.get(i..).unwrap_or_default();
        let j = self.scan.partition_point(|s| s.pos < pos);
        self.scan = self.scan.get(j..).unwrap_or_default();
    }
}

impl Iterator for Candidates<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        if let Some(all) = &mut self.all {
            return all.next();
        }
        while let Some((s, rest)) = self.scan.split_first() {
            match &s.ports {
                Some(ranges) if !ranges.iter().any(|r| r.contains(self.port)) => self.scan = rest,
                _ => break,
            }
        }
        match (self.exact.split_first(), self.scan.split_first()) {
            (Some((e, erest)), Some((s, _))) if *e < s.pos => {
                self.exact = erest;
                Some(*e)
            }
            (_, Some((s, srest))) => {
                let pos = s.pos;
                self.scan = srest;
                Some(pos)
            }
            (Some((e, erest)), None) => {
                self.exact = erest;
                Some(*e)
            }
            (None, None) => None,
        }
    }
}
