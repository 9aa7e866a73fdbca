//! The scenarios have the shape BENCHMARKS.md gives, and the engine answers them as the
//! benchmarks expect.

use std::{collections::HashSet, sync::Arc};

use alp_engine::{Code, Config, Snapshot, Store, decide};
use alp_felix::MAX_MEMBERS_PER_MESSAGE;
use alp_proto::felix::{IpSetUpdate, ToDataplane, ip_set_update::IpSetType, to_dataplane::Payload};
use alp_scenarios::{
    S1_MATCH_EARLY_POLICY, S1_POLICIES, S1_RULES_PER_POLICY, S1Variant, S2_NAMESPACES, S2_REQUESTS,
    S2_SERVICE_ACCOUNTS, Scenario, s1, s2, to_json_lines,
};
use prost::Message as _;

/// A full IP-set update as the scenarios send it: split by Felix's splitter at `max` members.
fn split_ipset_update(id: &str, kind: IpSetType, members: Vec<String>, max: usize) -> Vec<ToDataplane> {
    assert_eq!(max, MAX_MEMBERS_PER_MESSAGE, "Felix's splitter has one limit");
    alp_felix::split_ip_set_update(IpSetUpdate { id: id.to_owned(), members, r#type: kind as i32 })
}

fn snapshot(messages: &[ToDataplane]) -> Arc<Snapshot> {
    let mut store = Store::new(Config::default());
    for m in messages {
        store.apply(m).unwrap_or_else(|e| panic!("{e}"));
    }
    assert!(store.in_sync());
    store.snapshot()
}

fn kinds(messages: &[ToDataplane]) -> Vec<&'static str> {
    messages
        .iter()
        .map(|m| match m.payload.as_ref().expect("payload") {
            Payload::IpsetUpdate(_) => "ipset",
            Payload::IpsetDeltaUpdate(_) => "delta",
            Payload::ActivePolicyUpdate(_) => "policy",
            Payload::ActiveProfileUpdate(_) => "profile",
            Payload::WorkloadEndpointUpdate(_) => "endpoint",
            Payload::ServiceAccountUpdate(_) => "sa",
            Payload::NamespaceUpdate(_) => "ns",
            Payload::InSync(_) => "in_sync",
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

/// Collapses runs: ["ipset", "ipset", "policy"] → ["ipset", "policy"].
fn runs(kinds: &[&'static str]) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = kinds.to_vec();
    out.dedup();
    out
}

struct S1Counts {
    sets: usize,
    members: usize,
    policies: usize,
    rules: usize,
    actions: [usize; 3],
    src_refs: usize,
    dst_refs: usize,
    guarded: usize,
    referenced: HashSet<String>,
}

fn s1_counts(s: &Scenario) -> S1Counts {
    let mut c = S1Counts {
        sets: 0,
        members: 0,
        policies: 0,
        rules: 0,
        actions: [0; 3],
        src_refs: 0,
        dst_refs: 0,
        guarded: 0,
        referenced: HashSet::new(),
    };
    for m in &s.messages {
        match m.payload.as_ref().unwrap() {
            Payload::IpsetUpdate(u) => {
                assert_eq!(u.r#type, IpSetType::Net as i32);
                assert!(u.id.starts_with("s:") && u.id.len() == 40, "{}", u.id);
                c.sets += 1;
                c.members += u.members.len();
            }
            Payload::IpsetDeltaUpdate(u) => c.members += u.added_members.len(),
            Payload::ActivePolicyUpdate(u) => {
                let id = u.id.as_ref().unwrap();
                assert_eq!((id.namespace.as_str(), id.kind.as_str()), ("", "GlobalNetworkPolicy"));
                if id.name == S1_MATCH_EARLY_POLICY {
                    continue;
                }
                c.policies += 1;
                let policy = u.policy.as_ref().unwrap();
                assert_eq!(policy.tier, "perimeter");
                assert_eq!(policy.inbound_rules.len(), S1_RULES_PER_POLICY);
                for r in &policy.inbound_rules {
                    c.rules += 1;
                    match r.action.as_str() {
                        "deny" => c.actions[0] += 1,
                        "allow" => c.actions[1] += 1,
                        "pass" => c.actions[2] += 1,
                        a => panic!("action {a}"),
                    }
                    let guard =
                        |p: &[alp_proto::felix::PortRange]| p.len() == 1 && p[0].first == 65001 && p[0].last == 65001;
                    match (r.src_ip_set_ids.len(), r.dst_ip_set_ids.len()) {
                        (1, 0) => {
                            assert!(guard(&r.src_ports) && r.dst_ports.is_empty());
                            c.src_refs += 1;
                            c.referenced.insert(r.src_ip_set_ids[0].clone());
                        }
                        (0, 1) => {
                            assert!(guard(&r.dst_ports) && r.src_ports.is_empty());
                            c.dst_refs += 1;
                            c.referenced.insert(r.dst_ip_set_ids[0].clone());
                        }
                        (0, 0) => {
                            assert!(guard(&r.dst_ports) && r.src_ports.is_empty());
                            c.guarded += 1;
                        }
                        other => panic!("{other:?}"),
                    }
                }
            }
            _ => {}
        }
    }
    c
}

#[test]
fn s1_has_the_spec_shape() {
    let s = s1(S1Variant::FullWalk);
    let c = s1_counts(&s);
    assert_eq!(c.policies, S1_POLICIES);
    assert_eq!(c.rules, 19_992);
    assert_eq!(c.actions, [10, 1, 19_992 - 11]);
    assert_eq!(c.src_refs + c.dst_refs, 4838, "24.2 % of 19,992 rules");
    assert_eq!(c.src_refs, c.dst_refs);
    assert_eq!(c.guarded, 19_992 - 4838);
    assert_eq!(c.sets, 3708);
    assert!((1_000_000..=1_100_000).contains(&c.members), "{} members", c.members);
    eprintln!("S1: {} members, {} sets referenced", c.members, c.referenced.len());

    // Felix's order: IP sets, policies, endpoint, InSync.
    assert_eq!(runs(&kinds(&s.messages)), ["ipset", "policy", "endpoint", "in_sync"]);
    // No S1 set reaches 82,200 members, so nothing is split; every message fits in 4 MiB.
    for m in &s.messages {
        assert!(m.encoded_len() < 4 << 20);
    }
    let Some(Payload::WorkloadEndpointUpdate(ep)) = &s.messages[s.messages.len() - 2].payload else { panic!() };
    let tier = &ep.endpoint.as_ref().unwrap().tiers[0];
    assert_eq!((tier.name.as_str(), tier.default_action.as_str()), ("perimeter", "Deny"));
    let names: Vec<_> = tier.ingress_policies.iter().map(|p| p.name.clone()).collect();
    let expected: Vec<_> = (0..294).map(|i| format!("policy-{i:03}")).collect();
    assert_eq!(names, expected);

    // Set sizes follow the histogram.
    let mut sizes: Vec<usize> = s
        .messages
        .iter()
        .filter_map(|m| match &m.payload {
            Some(Payload::IpsetUpdate(u)) => Some(u.members.len()),
            _ => None,
        })
        .collect();
    sizes.sort_unstable();
    let count = |lo: usize, hi: usize| sizes.iter().filter(|s| (lo..=hi).contains(*s)).count();
    assert_eq!(
        [count(0, 0), count(1, 9), count(10, 99), count(100, 999), count(1000, 9999), count(54_566, 54_566)],
        [4, 3035, 446, 64, 158, 1]
    );
    // Ids are unique, and every referenced id is sent.
    let ids: HashSet<String> = s
        .messages
        .iter()
        .filter_map(|m| match &m.payload {
            Some(Payload::IpsetUpdate(u)) => Some(u.id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(ids.len(), 3708);
    assert!(c.referenced.is_subset(&ids));
}

#[test]
fn s1_is_deterministic() {
    let a = s1(S1Variant::MissingSets);
    let b = s1(S1Variant::MissingSets);
    assert_eq!(a.messages, b.messages);
    assert_eq!(a.requests, b.requests);
}

#[test]
fn s1_variants() {
    let full = s1(S1Variant::FullWalk);
    let early = s1(S1Variant::MatchEarly);
    let missing = s1(S1Variant::MissingSets);
    // Match-early: one extra policy, sent first and listed first.
    assert_eq!(early.messages.len(), full.messages.len() + 1);
    let first_policy = early.messages.iter().find_map(|m| match &m.payload {
        Some(Payload::ActivePolicyUpdate(u)) => Some(u),
        _ => None,
    });
    let first_policy = first_policy.unwrap();
    assert_eq!(first_policy.id.as_ref().unwrap().name, S1_MATCH_EARLY_POLICY);
    let rules = &first_policy.policy.as_ref().unwrap().inbound_rules;
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0], alp_proto::felix::Rule { action: "allow".into(), ..Default::default() });
    // Missing-sets: 8 referenced sets are not sent; all else is the same.
    let mc = s1_counts(&missing);
    assert_eq!(mc.sets, 3700);
    let sent: HashSet<String> = missing
        .messages
        .iter()
        .filter_map(|m| match &m.payload {
            Some(Payload::IpsetUpdate(u)) => Some(u.id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(mc.referenced.difference(&sent).count(), 8);
    assert_eq!(missing.messages.len(), full.messages.len() - 8);
}

#[test]
fn s1_engine_answers() {
    for variant in S1Variant::ALL {
        let s = s1(variant);
        let snap = snapshot(&s.messages);
        assert_eq!(snap.policy_count(), S1_POLICIES + usize::from(variant == S1Variant::MatchEarly));
        let (label, check) = &s.requests[0];
        assert_eq!(label, variant.label());
        let d = decide(&snap, &alp_envoy::to_request(check));
        match variant {
            S1Variant::FullWalk => {
                assert_eq!(d.code, Code::PermissionDenied);
                assert_eq!(d.trace.len(), 1);
                // The end-of-tier deny names the tier's first policy, as Dikastes does.
                assert_eq!((d.trace[0].tier(), d.trace[0].name(), d.trace[0].index), ("perimeter", "policy-000", -1));
            }
            S1Variant::MatchEarly => {
                assert_eq!(d.code, Code::Ok);
                assert_eq!((d.trace[0].name(), d.trace[0].index), (S1_MATCH_EARLY_POLICY, 0));
            }
            S1Variant::MissingSets => {
                assert_eq!(d.code, Code::Internal, "{}", d.message);
                assert!(d.message.contains("missing"), "{}", d.message);
            }
        }
    }
}

#[test]
fn splitting_follows_felix() {
    let members: Vec<String> =
        (0..200_000).map(|i| format!("10.{}.{}.{}/32", i >> 16, (i >> 8) & 255, i & 255)).collect();
    let msgs = split_ipset_update("s:big", IpSetType::Net, members.clone(), MAX_MEMBERS_PER_MESSAGE);
    assert_eq!(kinds(&msgs), ["ipset", "delta", "delta"]);
    let mut rebuilt = Vec::new();
    let mut sizes = Vec::new();
    for m in &msgs {
        assert!(m.encoded_len() < 4 << 20);
        match m.payload.as_ref().unwrap() {
            Payload::IpsetUpdate(u) => {
                sizes.push(u.members.len());
                rebuilt.extend(u.members.clone());
            }
            Payload::IpsetDeltaUpdate(u) => {
                assert_eq!(u.id, "s:big");
                assert!(u.removed_members.is_empty());
                sizes.push(u.added_members.len());
                rebuilt.extend(u.added_members.clone());
            }
            _ => unreachable!(),
        }
    }
    assert_eq!(sizes, [82_200, 82_200, 35_600]);
    assert_eq!(rebuilt, members);
    // Exactly 82,200 is one message; an empty set is one empty update.
    assert_eq!(split_ipset_update("s:x", IpSetType::Net, members[..82_200].to_vec(), MAX_MEMBERS_PER_MESSAGE).len(), 1);
    let empty = split_ipset_update("s:x", IpSetType::Net, Vec::new(), MAX_MEMBERS_PER_MESSAGE);
    assert!(matches!(&empty[..], [m] if matches!(&m.payload, Some(Payload::IpsetUpdate(u)) if u.members.is_empty())));
    // The store rebuilds the whole set from the chunks.
    let mut store = Store::new(Config::default());
    for m in &msgs {
        store.apply(m).unwrap();
    }
    let snap = store.snapshot();
    assert_eq!(snap.ip_set("s:big").unwrap().len(), 200_000);
}

#[test]
fn s2_has_the_spec_shape() {
    let s = s2();
    assert_eq!(runs(&kinds(&s.messages)), ["ipset", "policy", "profile", "endpoint", "sa", "ns", "in_sync"]);
    let k = kinds(&s.messages);
    assert_eq!(k.iter().filter(|k| **k == "policy").count(), 20);
    assert_eq!(k.iter().filter(|k| **k == "sa").count(), S2_SERVICE_ACCOUNTS);
    assert_eq!(k.iter().filter(|k| **k == "ns").count(), S2_NAMESPACES);
    let (mut sa_names, mut sa_sel, mut ns_sel, mut pod_sel, mut methods, mut exact, mut prefix) = (0, 0, 0, 0, 0, 0, 0);
    for m in &s.messages {
        match m.payload.as_ref().unwrap() {
            Payload::ActivePolicyUpdate(u) => {
                let id = u.id.as_ref().unwrap();
                assert_eq!((id.namespace.as_str(), id.kind.as_str()), ("ns-0", "NetworkPolicy"));
                for r in &u.policy.as_ref().unwrap().inbound_rules {
                    if let Some(sa) = &r.src_service_account_match {
                        sa_names += usize::from(!sa.names.is_empty());
                        sa_sel += usize::from(!sa.selector.is_empty());
                    }
                    ns_sel += usize::from(!r.original_src_namespace_selector.is_empty());
                    pod_sel += usize::from(!r.original_src_selector.is_empty());
                    if let Some(h) = &r.http_match {
                        methods += usize::from(!h.methods.is_empty());
                        use alp_proto::felix::http_match::path_match::PathMatch as P;
                        for p in &h.paths {
                            match p.path_match.as_ref().unwrap() {
                                P::Exact(_) => exact += 1,
                                P::Prefix(_) => prefix += 1,
                            }
                        }
                    }
                }
            }
            Payload::WorkloadEndpointUpdate(u) => {
                let ep = u.endpoint.as_ref().unwrap();
                assert_eq!(ep.profile_ids, ["kns.ns-0", "ksa.ns-0.sa-0"]);
                let tiers: Vec<_> = ep
                    .tiers
                    .iter()
                    .map(|t| (t.name.as_str(), t.default_action.as_str(), t.ingress_policies.len()))
                    .collect();
                assert_eq!(tiers, [("security", "Pass", 8), ("default", "Deny", 12)]);
            }
            _ => {}
        }
    }
    for n in [sa_names, sa_sel, ns_sel, pod_sel, methods, exact, prefix] {
        assert!(n > 0, "{:?}", [sa_names, sa_sel, ns_sel, pod_sel, methods, exact, prefix]);
    }
}

#[test]
fn s2_engine_answers() {
    let s = s2();
    let snap = snapshot(&s.messages);
    assert_eq!(snap.policy_count(), 20);
    assert!(snap.service_account_labels("ns-49", "sa-3").is_some());
    assert!(snap.namespace_labels("ns-49").is_some());
    assert_eq!(s.requests.len(), S2_REQUESTS.len());
    for (label, check) in &s.requests {
        let d = decide(&snap, &alp_envoy::to_request(check));
        let want = if label.starts_with("allowed") { Code::Ok } else { Code::PermissionDenied };
        assert_eq!(d.code, want, "{label}: {d:?}");
    }
    let check = |label: &str| {
        let d = decide(&snap, &alp_envoy::to_request(s.request(label).unwrap()));
        d.trace.iter().map(|h| format!("{}/{}/{}", h.tier(), h.name(), h.index)).collect::<Vec<_>>()
    };
    assert_eq!(check("allowed"), ["security/sec-prod-fastpath/0", "default/allow-same-ns-read/0"]);
    // End-of-tier steps name each tier's first policy, as Dikastes does.
    assert_eq!(check("denied"), ["security/sec-quarantine/-1", "default/allow-same-ns-read/-1"]);
    assert_eq!(check("allowed-cross-namespace"), ["security/sec-quarantine/-1", "default/allow-payments-write/0"]);
    assert_eq!(check("allowed-admin"), ["security/sec-admin-paths/0", "default/allow-admin/0"]);
    assert_eq!(check("denied-quarantine"), ["security/sec-quarantine/0"]);
    assert_eq!(check("denied-admin-path"), ["security/sec-admin-paths/1"]);
    assert_eq!(check("denied-method"), ["security/sec-methods/0"]);
}

#[test]
fn json_lines_round_trip() {
    let s = s2();
    let text = to_json_lines(&s.messages);
    let back: Vec<ToDataplane> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(back, s.messages);
}
