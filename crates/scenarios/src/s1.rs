//! S1: the production-scale policy walk (BENCHMARKS.md; Calico's
//! `app-policy/checker/bench_test.go` "BaselinePolicyScale", with its sentinel-set guard replaced
//! by guards on port 65001).

use alp_felix::pod_endpoint_id;
use alp_proto::felix::{
    self, ActivePolicyUpdate, InSync, TierInfo, ToDataplane, WorkloadEndpoint, WorkloadEndpointUpdate,
    to_dataplane::Payload,
};

use crate::{CheckRequest, Endpoint, Scenario, check_request, felix_set_id, net_set, policy_id, port, rng::Rng};

/// Which S1 walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum S1Variant {
    /// No rule matches: every rule is walked and the tier's default Deny answers
    /// (PERMISSION_DENIED, trace: one entry, index −1).
    FullWalk,
    /// A policy whose first rule is a bare `allow` comes first in the tier: one rule walked (OK).
    MatchEarly,
    /// 8 referenced IP sets are not sent: alp fails closed (INTERNAL).
    MissingSets,
}

impl S1Variant {
    /// All variants, in the order BENCHMARKS.md lists them.
    pub const ALL: [S1Variant; 3] = [S1Variant::FullWalk, S1Variant::MatchEarly, S1Variant::MissingSets];

    /// The label of the variant's request (`full-walk`, `match-early`, `missing-sets`).
    pub fn label(self) -> &'static str {
        match self {
            S1Variant::FullWalk => "full-walk",
            S1Variant::MatchEarly => "match-early",
            S1Variant::MissingSets => "missing-sets",
        }
    }
}

/// The tier holding every S1 policy (default action Deny).
pub const S1_TIER: &str = "perimeter";
/// Number of GlobalNetworkPolicies (`policy-000` … `policy-293`).
pub const S1_POLICIES: usize = 294;
/// Inbound rules per policy.
pub const S1_RULES_PER_POLICY: usize = 68;
/// The match-early variant's extra policy, first in the tier.
pub const S1_MATCH_EARLY_POLICY: &str = "policy-match-early";
/// IP-set size histogram: (sets, min size, max size), sizes uniform in the range.
pub const S1_SET_HISTOGRAM: [(usize, usize, usize); 6] =
    [(4, 0, 0), (3035, 1, 9), (446, 10, 99), (64, 100, 999), (158, 1000, 9999), (1, 54_566, 54_566)];
/// The flow (TEST-NET addresses, outside the sets' 10.0.0.0/8).
pub const S1_SRC_IP: &str = "192.0.2.10";
/// The flow's source port.
pub const S1_SRC_PORT: u32 = 45_000;
/// The flow's destination address.
pub const S1_DST_IP: &str = "198.51.100.20";
/// The flow's destination port.
pub const S1_DST_PORT: u32 = 8080;

const SEED: u64 = 20_200;
const DENY_RULES: usize = 10;
const ALLOW_RULES: usize = 1;
/// 24.2 % of 19,992 rules, rounded: 4,838 rules name one IP set.
const IPSET_REF_PER_MILLE: usize = 242;
const MISSING_SETS: usize = 8;
/// The port that guards every rule (the flow uses 45000 → 8080).
const GUARD_PORT: i32 = 65_001;
const KIND: &str = "GlobalNetworkPolicy";

/// Member `k` (distinct for distinct `k < 2^24`): an odd multiplier permutes 10.0.0.0/8 so
/// members are unique and scattered, not consecutive.
fn member(k: usize) -> String {
    let x = (k as u32).wrapping_mul(0x0009_e377).wrapping_add(0x0051_3f2d) & 0x00ff_ffff;
    format!("10.{}.{}.{}/32", x >> 16, (x >> 8) & 0xff, x & 0xff)
}

struct Generated {
    set_ids: Vec<String>,
    set_sizes: Vec<usize>,
    policies: Vec<(felix::PolicyId, felix::Policy)>,
    missing: Vec<usize>,
}

fn generate() -> Generated {
    let mut rng = Rng::new(SEED);
    let mut set_ids = Vec::new();
    let mut set_sizes = Vec::new();
    for (count, lo, hi) in S1_SET_HISTOGRAM {
        for _ in 0..count {
            set_ids.push(felix_set_id(&format!("s1-bench-set-{:04}", set_ids.len())));
            set_sizes.push(rng.range(lo, hi));
        }
    }
    let n_sets = set_ids.len();

    let n_rules = S1_POLICIES * S1_RULES_PER_POLICY;
    let mut action = vec!["pass"; n_rules];
    for (i, slot) in rng.sample(n_rules, DENY_RULES + ALLOW_RULES).into_iter().enumerate() {
        if let Some(a) = action.get_mut(slot) {
            *a = if i < DENY_RULES { "deny" } else { "allow" };
        }
    }
    // Which rules name a set: (set index, true = source side).
    let n_ref = (n_rules * IPSET_REF_PER_MILLE + 500) / 1000;
    let mut reference: Vec<Option<(usize, bool)>> = vec![None; n_rules];
    for (i, slot) in rng.sample(n_rules, n_ref).into_iter().enumerate() {
        let set = rng.below(n_sets);
        if let Some(r) = reference.get_mut(slot) {
            *r = Some((set, i % 2 == 0));
        }
    }

    let mut referenced = Vec::new();
    let mut seen = vec![false; n_sets];
    let mut policies = Vec::with_capacity(S1_POLICIES);
    for p in 0..S1_POLICIES {
        let mut rules = Vec::with_capacity(S1_RULES_PER_POLICY);
        for r in 0..S1_RULES_PER_POLICY {
            let slot = p * S1_RULES_PER_POLICY + r;
            let mut rule =
                felix::Rule { action: action.get(slot).copied().unwrap_or("pass").to_owned(), ..Default::default() };
            match reference.get(slot).copied().flatten() {
                Some((set, src)) => {
                    let id = set_ids.get(set).cloned().unwrap_or_default();
                    if let Some(s) = seen.get_mut(set).filter(|s| !**s) {
                        *s = true;
                        referenced.push(set);
                    }
                    if src {
                        rule.src_ip_set_ids = vec![id];
                        rule.src_ports = vec![port(GUARD_PORT)];
                    } else {
                        rule.dst_ip_set_ids = vec![id];
                        rule.dst_ports = vec![port(GUARD_PORT)];
                    }
                }
                None => rule.dst_ports = vec![port(GUARD_PORT)],
            }
            rules.push(rule);
        }
        let policy = felix::Policy { inbound_rules: rules, tier: S1_TIER.to_owned(), ..Default::default() };
        policies.push((policy_id(&format!("policy-{p:03}"), "", KIND), policy));
    }

    rng.shuffle(&mut referenced);
    referenced.truncate(MISSING_SETS);
    Generated { set_ids, set_sizes, policies, missing: referenced }
}

/// The S1 flow: TCP 192.0.2.10:45000 → 198.51.100.20:8080, mTLS principals, no HTTP attributes.
pub fn s1_request() -> CheckRequest {
    check_request(
        &Endpoint { ip: S1_SRC_IP, port: S1_SRC_PORT, principal: "spiffe://cluster.local/ns/ns-1/sa/sa-1" },
        &Endpoint { ip: S1_DST_IP, port: S1_DST_PORT, principal: "spiffe://cluster.local/ns/ns-0/sa/sa-0" },
        None,
    )
}

/// Scenario S1 in the given variant. Messages, in Felix's endpoint-sync order: the IP sets
/// (`IPSetUpdate` + `IPSetDeltaUpdate` chunks of at most 82,200 members), the policies in tier
/// order, the `WorkloadEndpointUpdate`, `InSync`. One request, labelled [`S1Variant::label`].
///
/// Felix sends a pod only the sets its policies name; S1 follows the Calico benchmark's store
/// and sends all 3,708 sets (about a quarter are named by no rule).
pub fn s1(variant: S1Variant) -> Scenario {
    let g = generate();
    let mut messages = Vec::new();
    let mut next_member = 0usize;
    for (i, (id, size)) in g.set_ids.iter().zip(&g.set_sizes).enumerate() {
        let members: Vec<String> = (next_member..next_member + size).map(member).collect();
        next_member += size;
        if variant == S1Variant::MissingSets && g.missing.contains(&i) {
            continue;
        }
        messages.extend(net_set(id, members));
    }

    let mut tier = TierInfo { name: S1_TIER.to_owned(), default_action: "Deny".to_owned(), ..Default::default() };
    if variant == S1Variant::MatchEarly {
        let id = policy_id(S1_MATCH_EARLY_POLICY, "", KIND);
        let policy = felix::Policy {
            inbound_rules: vec![felix::Rule { action: "allow".to_owned(), ..Default::default() }],
            tier: S1_TIER.to_owned(),
            ..Default::default()
        };
        tier.ingress_policies.push(id.clone());
        messages.push(ToDataplane::from(Payload::ActivePolicyUpdate(ActivePolicyUpdate {
            id: Some(id),
            policy: Some(policy),
        })));
    }
    for (id, policy) in g.policies {
        tier.ingress_policies.push(id.clone());
        messages.push(ToDataplane::from(Payload::ActivePolicyUpdate(ActivePolicyUpdate {
            id: Some(id),
            policy: Some(policy),
        })));
    }
    messages.push(ToDataplane::from(Payload::WorkloadEndpointUpdate(WorkloadEndpointUpdate {
        id: Some(pod_endpoint_id("ns-0", "pod-0")),
        endpoint: Some(WorkloadEndpoint {
            state: "active".to_owned(),
            name: "cali1a2b3c4d5e6".to_owned(),
            ipv4_nets: vec![format!("{S1_DST_IP}/32")],
            tiers: vec![tier],
            ..Default::default()
        }),
    })));
    messages.push(ToDataplane::from(Payload::InSync(InSync {})));

    Scenario { messages, requests: vec![(variant.label().to_owned(), s1_request())] }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for k in 0..1_200_000 {
            assert!(seen.insert(member(k)), "member {k} repeats");
        }
    }

    #[test]
    fn missing_sets_are_referenced_and_distinct() {
        let g = generate();
        let mut m = g.missing.clone();
        m.sort_unstable();
        m.dedup();
        assert_eq!(m.len(), MISSING_SETS);
    }
}
