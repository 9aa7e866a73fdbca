//! The port index must not change any answer: on random stores and requests, the indexed walk
//! and the walk over every rule agree on code, message and trace.

mod common;

use alp_engine::{Direction, Scope, decide_unindexed, decide_with};
use common::*;
use proptest::prelude::*;
use serde_json::{Value, json};

fn port_range() -> impl Strategy<Value = Value> {
    prop_oneof![
        (78u32..84).prop_map(|p| json!({"first": p, "last": p})),
        (78u32..84, 0u32..4).prop_map(|(p, w)| json!({"first": p, "last": p + w})),
        Just(json!({"first": 1, "last": 1000})),
        Just(json!({"first": 8080, "last": 8080})),
    ]
}

fn rule() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec!["allow", "deny", "pass", "log", "Next-Tier", "bogus"]),
        prop::collection::vec(port_range(), 0..3),
        prop::option::weighted(0.15, prop::sample::select(vec!["n:present", "n:missing"])),
        prop::option::weighted(0.2, prop::sample::select(vec!["GET", "POST"])),
        prop::option::weighted(0.1, prop::sample::select(vec!["s:present", "s:missing"])),
        prop::option::weighted(0.05, Just("10.0.0.0/99")),
        prop::option::weighted(0.2, (78u32..84).prop_map(|p| json!([{"first": p, "last": p}]))),
        prop::collection::vec(port_range(), 0..2),
        prop::option::weighted(0.1, prop::sample::select(vec!["n:present", "n:missing"])),
    )
        .prop_map(|(action, ports, named, method, set, bad_net, not_ports, src_ports, src_named)| {
            let mut r = json!({"action": action, "dst_ports": ports, "src_ports": src_ports});
            if let Some(n) = src_named {
                r["src_named_port_ip_set_ids"] = json!([n]);
            }
            if let Some(n) = named {
                r["dst_named_port_ip_set_ids"] = json!([n]);
            }
            if let Some(m) = method {
                r["http_match"] = json!({"methods": [m]});
            }
            if let Some(s) = set {
                r["src_ip_set_ids"] = json!([s]);
            }
            if let Some(n) = bad_net {
                r["dst_net"] = json!([n]);
            }
            if let Some(p) = not_ports {
                r["not_dst_ports"] = p;
            }
            r
        })
}

/// (stored?, staged?, rules) per policy, policies per tier, default action per tier.
fn store() -> impl Strategy<Value = Value> {
    let policy = (prop::bool::weighted(0.9), prop::bool::weighted(0.15), prop::collection::vec(rule(), 0..5));
    let tier = (prop::sample::select(vec!["Deny", "Pass", "Pass", ""]), prop::collection::vec(policy, 0..4));
    (prop::collection::vec(tier, 1..4), prop::collection::vec(rule(), 0..3)).prop_map(|(tiers, profile_rules)| {
        let mut policies = Vec::new();
        let mut tier_infos = Vec::new();
        for (t, (default, pols)) in tiers.into_iter().enumerate() {
            let mut ids = Vec::new();
            for (p, (stored, staged, rules)) in pols.into_iter().enumerate() {
                let kind = if staged { "StagedGlobalNetworkPolicy" } else { "GlobalNetworkPolicy" };
                let id = json!({"name": format!("t{t}-p{p}"), "kind": kind});
                if stored {
                    policies.push(json!({"id": id, "policy": {"inbound_rules": rules}}));
                }
                ids.push(id);
            }
            tier_infos.push(json!({"name": format!("t{t}"), "default_action": default, "ingress_policies": ids}));
        }
        json!({
            "ip_sets": [
                {"id": "s:present", "type": "NET", "members": ["10.0.0.0/8"]},
                {"id": "n:present", "type": "IP_AND_PORT", "members": ["10.1.0.2,tcp:80", "10.1.0.2,tcp:8080", "10.0.0.1,tcp:81"]},
            ],
            "policies": policies,
            "profiles": [{"id": {"name": "prof"}, "profile": {"inbound_rules": profile_rules}}],
            "endpoint": {"tiers": tier_infos, "profile_ids": ["prof"]},
        })
    })
}

fn request() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec![0u32, 50, 78, 79, 80, 81, 82, 83, 8080, 9999]),
        prop::option::weighted(0.7, prop::sample::select(vec!["GET", "POST", "PUT"])),
        prop::sample::select(vec!["10.0.0.1", "192.168.0.1"]),
        prop::sample::select(vec![0u32, 78, 80, 81, 83, 8080, 40000]),
    )
        .prop_map(|(port, method, src, src_port)| {
            let mut r = json!({"source": {"address": {"ip": src, "port": src_port}},
                               "destination": {"address": {"ip": "10.1.0.2", "port": port, "protocol": "TCP"}}});
            if let Some(m) = method {
                r["http"] = json!({"method": m, "path": "/x"});
            }
            r
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn indexed_walk_equals_full_walk(store in store(), reqs in prop::collection::vec(request(), 1..6)) {
        let snap = snapshot(&store);
        for r in &reqs {
            let owned = OwnedRequest::from_vector(r);
            let req = owned.request();
            for scope in [Scope::Enforced, Scope::StagedAsEnforced] {
                let a = decide_with(&snap, &req, Direction::Ingress, scope);
                let b = decide_unindexed(&snap, &req, Direction::Ingress, scope);
                prop_assert_eq!(a.code, b.code, "{} {}", r, a.message);
                prop_assert_eq!(&a.message, &b.message);
                prop_assert_eq!(a.trace.as_slice(), b.trace.as_slice());
                for hit in a.trace.iter().filter(|h| h.index == -1 && h.tier() != alp_engine::PROFILE_TIER) {
                    prop_assert_eq!(Some(hit.name()), first_in_scope(&store, hit.tier(), scope), "{:?}", a.trace);
                }
            }
        }
    }
}

/// The first policy of a tier that a check in `scope` walks: what an end-of-tier step names.
fn first_in_scope<'v>(store: &'v Value, tier: &str, scope: Scope) -> Option<&'v str> {
    let tiers = store["endpoint"]["tiers"].as_array()?;
    let tier = tiers.iter().find(|t| t["name"] == tier)?;
    tier["ingress_policies"]
        .as_array()?
        .iter()
        .find(|id| scope == Scope::StagedAsEnforced || !id["kind"].as_str().is_some_and(|k| k.starts_with("Staged")))
        .and_then(|id| id["name"].as_str())
}
