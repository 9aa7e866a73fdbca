use alp_proto::felix::{NamespaceId, NamespaceRemove, ServiceAccountId, ServiceAccountRemove};
use alp_test_support::{
    allow_from, describe, members, mk_in_sync as in_sync, mk_ip_set, mk_ip_set_delta, mk_namespace,
    mk_policy as policy, mk_profile, mk_service_account, mk_workload as wep, mk_workload_remove as wep_remove, strs,
};

use super::*;

const A: &str = "ns/a";
const B: &str = "ns/b";

/// A profile whose one outbound rule allows the sources in `sets`.
fn profile(name: &str, sets: &[&str]) -> ToDataplane {
    mk_profile(name, vec![], vec![allow_from(sets)])
}

fn ipset(id: &str, members: &[&str]) -> ToDataplane {
    mk_ip_set(id, strs(members))
}

fn delta(id: &str, added: &[&str], removed: &[&str]) -> ToDataplane {
    mk_ip_set_delta(id, strs(added), strs(removed))
}

fn sa(ns: &str, name: &str) -> ToDataplane {
    mk_service_account(ns, name, &[])
}

fn namespace(name: &str) -> ToDataplane {
    mk_namespace(name, &[])
}

fn names(msgs: &[ToDataplane]) -> Vec<String> {
    msgs.iter().map(describe).collect()
}

/// What `out` sends to `key`, `end` for the end of the stream.
fn for_key(out: &[(EndpointKey, Outgoing)], key: &str) -> Vec<String> {
    out.iter()
        .filter(|(k, _)| k == key)
        .map(|(_, o)| match o {
            Outgoing::Message(m) => describe(m),
            Outgoing::End => "end".into(),
        })
        .collect()
}

fn apply_all(p: &mut Processor, msgs: impl IntoIterator<Item = ToDataplane>) -> Vec<(EndpointKey, Outgoing)> {
    msgs.into_iter().flat_map(|m| p.apply(m)).collect()
}

/// A processor that knows A's endpoint (tier t1: p1 ingress, p2 egress; tier t2: p3
/// ingress, p1 egress again; profiles kns.ns, ksa.ns.sa), what it references, and things it
/// does not reference.
fn loaded() -> Processor {
    let mut p = Processor::new();
    let out = apply_all(
        &mut p,
        [
            ipset("s1", &["10.0.0.1/32"]),
            ipset("s2", &["10.0.0.2/32", "10.0.0.3/32"]),
            ipset("s9", &["10.9.9.9/32"]),
            policy("p1", &["s1"]),
            policy("p2", &["s1"]),
            policy("p3", &[]),
            policy("p9", &["s9"]),
            profile("kns.ns", &["s2"]),
            profile("ksa.ns.sa", &[]),
            wep(A, &[("t1", &["p1"], &["p2"]), ("t2", &["p3"], &["p1"])], &["kns.ns", "ksa.ns.sa"]),
            sa("ns", "sa"),
            sa("ns", "default"),
            namespace("ns"),
            namespace("other"),
            in_sync(),
        ],
    );
    assert!(out.is_empty(), "nothing is connected yet: {out:?}");
    p
}

#[test]
fn join_sends_endpoint_sync_then_service_accounts_and_namespaces_then_in_sync() {
    let mut p = loaded();
    let (join, msgs) = p.join(A);
    assert_eq!(join.get(), 1);
    assert_eq!(
        names(&msgs),
        strs(&[
            "set s1 (1)",
            "set s2 (2)",
            "policy p1",
            "policy p2",
            "policy p3",
            "profile kns.ns",
            "profile ksa.ns.sa",
            "endpoint ns/a",
            "sa ns/default",
            "sa ns/sa",
            "ns ns",
            "ns other",
            "in-sync",
        ])
    );
    assert_eq!(p.current_join(A), Some(join));
}

#[test]
fn join_of_an_unknown_endpoint_gets_service_accounts_namespaces_and_in_sync_then_its_sync() {
    let mut p = loaded();
    let (_, msgs) = p.join(B);
    assert_eq!(names(&msgs), strs(&["sa ns/default", "sa ns/sa", "ns ns", "ns other", "in-sync"]));
    let out = p.apply(wep(B, &[("t1", &["p9"], &[])], &[]));
    assert_eq!(for_key(&out, B), strs(&["set s9 (1)", "policy p9", "endpoint ns/b"]));
    assert!(for_key(&out, A).is_empty());
}

#[test]
fn in_sync_goes_out_once_and_joins_before_it_get_none() {
    let mut p = Processor::new();
    p.apply(namespace("ns"));
    let (_, msgs) = p.join(A);
    assert_eq!(names(&msgs), strs(&["ns ns"]));
    let out = p.apply(in_sync());
    assert_eq!(for_key(&out, A), strs(&["in-sync"]));
    assert!(p.apply(in_sync()).is_empty(), "a second InSync is ignored");
    let (_, msgs) = p.join(B);
    assert_eq!(names(&msgs), strs(&["ns ns", "in-sync"]));
}

#[test]
fn a_newer_join_replaces_the_older_and_a_late_leave_of_the_older_is_ignored() {
    let mut p = loaded();
    let (first, _) = p.join(A);
    let (second, msgs) = p.join(A);
    assert!(second > first);
    assert_eq!(msgs.len(), 13, "the newer stream gets the full sequence again");
    p.leave(A, first);
    assert_eq!(p.current_join(A), Some(second), "the older stream's leave must not end the newer");
    assert_eq!(for_key(&p.apply(namespace("x")), A), strs(&["ns x"]));
    p.leave(A, second);
    assert_eq!(p.current_join(A), None);
    assert!(p.apply(namespace("y")).is_empty());
    assert!(p.knows_endpoint(A), "the endpoint outlives its stream");
}

#[test]
fn leave_forgets_a_workload_without_an_endpoint() {
    let mut p = Processor::new();
    let (join, _) = p.join(B);
    assert_eq!(p.connected(), 1);
    p.leave(B, join);
    assert_eq!((p.connected(), p.knows_endpoint(B)), (0, false));
    assert!(p.endpoints.is_empty());
}

#[test]
fn endpoint_remove_is_sent_then_the_stream_ends_and_the_endpoint_is_forgotten() {
    let mut p = loaded();
    let (join, _) = p.join(A);
    p.join(B);
    let out = p.apply(wep_remove(A));
    assert_eq!(for_key(&out, A), strs(&["remove endpoint ns/a", "end"]));
    assert!(for_key(&out, B).is_empty());
    assert_eq!((p.current_join(A), p.knows_endpoint(A)), (None, false));
    p.leave(A, join); // the stream's own leave comes later: harmless
    assert_eq!(for_key(&p.apply(namespace("x")), A), Vec::<String>::new());
    // Removing an endpoint without a stream sends nothing.
    p.apply(wep(A, &[], &[]));
    assert!(p.apply(wep_remove(A)).is_empty());
}

#[test]
fn policy_update_sends_added_sets_then_the_policy_then_removed_sets_to_referencing_streams_only() {
    let mut p = loaded();
    p.join(A);
    p.apply(wep(B, &[("t1", &["p9"], &[])], &[]));
    p.join(B);
    p.apply(ipset("s3", &["10.0.0.4/32", "10.0.0.5/32", "10.0.0.6/32"]));
    // p2 moves from s1 to s3: s1 is still needed by p1, so nothing is removed.
    let out = p.apply(policy("p2", &["s3"]));
    assert_eq!(for_key(&out, A), strs(&["set s3 (3)", "policy p2"]));
    assert!(for_key(&out, B).is_empty());
    // p1 drops s1 too: now nothing needs s1.
    let out = p.apply(policy("p1", &["s3"]));
    assert_eq!(for_key(&out, A), strs(&["policy p1", "remove set s1"]));
    // An unreferenced policy is only stored.
    assert!(p.apply(policy("p-new", &["s1"])).is_empty());
}

#[test]
fn profile_update_goes_to_streams_whose_endpoint_names_it() {
    let mut p = loaded();
    p.join(A);
    p.apply(ipset("s3", &["10.0.0.4/32"]));
    let out = p.apply(profile("kns.ns", &["s3"]));
    assert_eq!(for_key(&out, A), strs(&["set s3 (1)", "profile kns.ns", "remove set s2"]));
    assert!(p.apply(profile("kns.other", &["s9"])).is_empty());
}

#[test]
fn endpoint_update_adds_before_and_removes_after_the_endpoint() {
    let mut p = loaded();
    p.join(A);
    // Drop tier t2 (p3) and p2; add p9 (set s9); drop profile ksa.
    let out = p.apply(wep(A, &[("t1", &["p1", "p9"], &[])], &["kns.ns"]));
    assert_eq!(
        for_key(&out, A),
        strs(&[
            "set s9 (1)",
            "policy p9",
            "endpoint ns/a",
            "remove policy p2",
            "remove policy p3",
            "remove profile ksa.ns.sa"
        ])
    );
    // Drop everything: policies, profiles, then sets, in that order, after the endpoint.
    let out = p.apply(wep(A, &[], &[]));
    assert_eq!(
        for_key(&out, A),
        strs(&[
            "endpoint ns/a",
            "remove policy p1",
            "remove policy p9",
            "remove profile kns.ns",
            "remove set s1",
            "remove set s2",
            "remove set s9",
        ])
    );
    // An unchanged endpoint resends only itself.
    assert_eq!(for_key(&p.apply(wep(A, &[], &[])), A), strs(&["endpoint ns/a"]));
}

#[test]
fn ip_set_updates_reach_only_streams_that_have_the_set() {
    let mut p = loaded();
    p.join(A);
    p.apply(wep(B, &[("t1", &["p9"], &[])], &[]));
    p.join(B);
    // New set: only stored.
    assert!(p.apply(ipset("s-new", &["10.1.0.0/16"])).is_empty());
    // Existing set: the full new content, to A only.
    let out = p.apply(ipset("s1", &["10.0.0.7/32", "10.0.0.8/32"]));
    assert_eq!(for_key(&out, A), strs(&["set s1 (2)"]));
    assert!(for_key(&out, B).is_empty());
    let out = p.apply(delta("s2", &["10.0.0.9/32"], &["10.0.0.2/32"]));
    assert_eq!(for_key(&out, A), strs(&["delta s2 +1 -1"]));
    assert!(for_key(&out, B).is_empty());
    assert!(p.apply(delta("unknown", &["10.0.0.1/32"], &[])).is_empty(), "delta of an unknown set");
    // The store follows the deltas: a new stream gets the current members.
    let (_, msgs) = p.join(A);
    let s2 = msgs.iter().find_map(|m| match &m.payload {
        Some(Payload::IpsetUpdate(u)) if u.id == "s2" => Some(u.members.clone()),
        _ => None,
    });
    assert_eq!(s2, Some(strs(&["10.0.0.3/32", "10.0.0.9/32"])));
    // IPSetRemove only drops the set from the store.
    assert!(p.apply(ToDataplane::from(Payload::IpsetRemove(IpSetRemove { id: "s9".into() }))).is_empty());
    assert!(!p.catalog.ip_sets.contains_key("s9"));
}

#[test]
fn service_accounts_and_namespaces_go_to_every_stream_and_are_remembered() {
    let mut p = loaded();
    p.join(A);
    p.join(B);
    let remove_sa = ToDataplane::from(Payload::ServiceAccountRemove(ServiceAccountRemove {
        id: Some(ServiceAccountId { namespace: "ns".into(), name: "default".into() }),
    }));
    let remove_ns =
        ToDataplane::from(Payload::NamespaceRemove(NamespaceRemove { id: Some(NamespaceId { name: "other".into() }) }));
    let out = apply_all(&mut p, [sa("ns2", "x"), namespace("ns2"), remove_sa, remove_ns]);
    for key in [A, B] {
        assert_eq!(for_key(&out, key), strs(&["sa ns2/x", "ns ns2", "remove sa ns/default", "remove ns other"]));
    }
    let (_, msgs) = p.join("ns/c");
    assert_eq!(names(&msgs), strs(&["sa ns/sa", "sa ns2/x", "ns ns", "ns ns2", "in-sync"]));
}

#[test]
fn references_before_definitions_are_sent_when_the_definitions_arrive() {
    // Out of order input (Felix's calc graph never sends it; Felix would crash).
    let mut p = Processor::new();
    p.apply(wep(A, &[("t1", &["p1"], &[])], &[]));
    let (_, msgs) = p.join(A);
    assert_eq!(names(&msgs), strs(&["endpoint ns/a"]));
    let out = p.apply(policy("p1", &["s1"]));
    assert_eq!(for_key(&out, A), strs(&["policy p1"]));
    let out = p.apply(ipset("s1", &["10.0.0.1/32"]));
    assert_eq!(for_key(&out, A), strs(&["set s1 (1)"]));
    let out = p.apply(delta("s1", &["10.0.0.2/32"], &[]));
    assert_eq!(for_key(&out, A), strs(&["delta s1 +1 -0"]));
}

#[test]
fn endpoints_no_connection_can_stand_for_are_ignored() {
    let mut p = Processor::new();
    let mut other = wep(A, &[], &[]);
    if let Some(Payload::WorkloadEndpointUpdate(u)) = other.payload.as_mut()
        && let Some(id) = u.id.as_mut()
    {
        id.endpoint_id = "eth1".into();
    }
    p.join(A);
    assert!(p.apply(other).is_empty());
    assert!(!p.knows_endpoint(A));
}

#[test]
fn large_sets_are_split_on_join_on_update_and_on_delta() {
    let mut p = Processor::new();
    let big = IpSetUpdate { id: "big".into(), members: members(200_000), r#type: 2 };
    apply_all(
        &mut p,
        [ToDataplane::from(Payload::IpsetUpdate(big)), policy("p1", &["big"]), wep(A, &[("t1", &["p1"], &[])], &[])],
    );
    let (_, msgs) = p.join(A);
    assert_eq!(
        names(&msgs),
        strs(&["set big (82200)", "delta big +82200 -0", "delta big +35600 -0", "policy p1", "endpoint ns/a"])
    );
    let bigger = IpSetUpdate { id: "big".into(), members: members(170_000), r#type: 2 };
    let out = p.apply(ToDataplane::from(Payload::IpsetUpdate(bigger)));
    assert_eq!(for_key(&out, A), strs(&["set big (82200)", "delta big +82200 -0", "delta big +5600 -0"]));
    let gone: Vec<String> = members(100_000);
    let d = IpSetDeltaUpdate { id: "big".into(), added_members: vec![], removed_members: gone };
    let out = p.apply(ToDataplane::from(Payload::IpsetDeltaUpdate(d)));
    assert_eq!(for_key(&out, A), strs(&["delta big +0 -17800", "delta big +0 -82200"]));
    assert_eq!(p.catalog.ip_sets.get("big").map(|s| s.members.len()), Some(70_000));
}

#[test]
fn ip_set_references_cover_every_set_field_of_both_directions() {
    let r = Rule {
        src_ip_set_ids: strs(&["a"]),
        dst_ip_set_ids: strs(&["b"]),
        dst_ip_port_set_ids: strs(&["c"]),
        src_named_port_ip_set_ids: strs(&["d"]),
        dst_named_port_ip_set_ids: strs(&["e"]),
        not_src_ip_set_ids: strs(&["f"]),
        not_dst_ip_set_ids: strs(&["g", "a"]),
        not_src_named_port_ip_set_ids: strs(&["h"]),
        not_dst_named_port_ip_set_ids: strs(&["i"]),
        ..Rule::default()
    };
    let out = Rule { dst_ip_set_ids: strs(&["j"]), ..Rule::default() };
    assert_eq!(rule_ip_sets([&r, &out]), strs(&["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]));
}
