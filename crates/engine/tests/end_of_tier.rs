//! What the trace names when a tier ends without a decision: the tier's first in-scope policy,
//! as Dikastes's `checkTiers` does (it keeps the id of the first policy that did not match),
//! whichever rules the port index skipped. Staged policies are not in scope of an enforced
//! check and are never named by one.

mod common;

use alp_engine::{Code, Decision, Direction, Scope, decide_unindexed, decide_with};
use common::*;
use serde_json::{Value, json};

fn gnp(name: &str) -> Value {
    json!({"name": name, "kind": "GlobalNetworkPolicy"})
}

fn staged(name: &str) -> Value {
    json!({"name": name, "kind": "StagedGlobalNetworkPolicy"})
}

/// Rules none of which matches a GET to port 80: one hashed under port 81 (the index skips it),
/// one scanned (no port clause) whose method differs, one on a wide port range that misses.
fn no_match(which: usize) -> Value {
    match which % 3 {
        0 => json!([{"action": "allow", "dst_ports": [{"first": 81, "last": 81}]}]),
        1 => json!([{"action": "deny", "http_match": {"methods": ["POST"]}}]),
        _ => json!([{"action": "allow", "dst_ports": [{"first": 1000, "last": 60000}]}]),
    }
}

/// A tier: name, default action, policy ids with their rules.
type Tier<'a> = (&'a str, &'a str, Vec<(Value, Value)>);

fn store(tiers: &[Tier<'_>]) -> Value {
    let policies: Vec<Value> = tiers
        .iter()
        .flat_map(|(_, _, pols)| pols.iter().map(|(id, rules)| json!({"id": id, "policy": {"inbound_rules": rules}})))
        .collect();
    let tier_infos: Vec<Value> = tiers
        .iter()
        .map(|(name, default, pols)| {
            json!({"name": name, "default_action": default,
                   "ingress_policies": pols.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>()})
        })
        .collect();
    json!({"policies": policies, "endpoint": {"tiers": tier_infos, "profile_ids": []}})
}

fn get_80() -> OwnedRequest {
    OwnedRequest::from_vector(&json!({
        "source": {"address": {"ip": "10.0.0.1", "port": 40000}},
        "destination": {"address": {"ip": "10.0.0.2", "port": 80, "protocol": "TCP"}},
        "http": {"method": "GET", "path": "/"},
    }))
}

type Step = (String, String, String, i32, &'static str);

fn steps(d: &Decision<'_>) -> Vec<Step> {
    d.trace
        .iter()
        .map(|h| (h.kind().to_owned(), h.tier().to_owned(), h.name().to_owned(), h.index, h.action.as_str()))
        .collect()
}

/// Decides with and without the port index, which must agree; returns the code and trace.
fn check(store: &Value, scope: Scope) -> (Code, Vec<Step>) {
    let snap = snapshot(store);
    let owned = get_80();
    let req = owned.request();
    let indexed = decide_with(&snap, &req, Direction::Ingress, scope);
    let full = decide_unindexed(&snap, &req, Direction::Ingress, scope);
    assert_eq!((indexed.code, steps(&indexed)), (full.code, steps(&full)), "the index changes nothing");
    (indexed.code, steps(&indexed))
}

fn step(kind: &str, tier: &str, name: &str, action: &'static str) -> Step {
    (kind.to_owned(), tier.to_owned(), name.to_owned(), -1, action)
}

#[test]
fn a_tier_that_ends_undecided_names_its_first_policy() {
    let pols: Vec<(Value, Value)> =
        ["a", "b", "c", "d"].iter().enumerate().map(|(i, n)| (gnp(n), no_match(i))).collect();
    let s = store(&[("t1", "Deny", pols)]);
    let (code, trace) = check(&s, Scope::Enforced);
    assert_eq!(code, Code::PermissionDenied);
    assert_eq!(trace, [step("GlobalNetworkPolicy", "t1", "a", "deny")], "the first policy, not the last (d)");
}

#[test]
fn the_first_policy_is_named_whatever_the_index_skips() {
    // `a` has no rule at all and `b`'s only rule is hashed under another port: the walk's first
    // candidate is `c`'s scanned rule, and the step still names `a`.
    let s = store(&[(
        "t1",
        "Deny",
        vec![(gnp("a"), json!([])), (gnp("b"), no_match(0)), (gnp("c"), no_match(1)), (gnp("d"), no_match(0))],
    )]);
    assert_eq!(check(&s, Scope::Enforced).1, [step("GlobalNetworkPolicy", "t1", "a", "deny")]);
}

#[test]
fn a_staged_policy_before_the_first_enforced_one_is_not_named() {
    let s = store(&[
        ("t1", "Pass", vec![(staged("s1"), no_match(1)), (gnp("a"), no_match(0)), (gnp("b"), no_match(1))]),
        (
            "t2",
            "Deny",
            vec![
                (staged("s2"), no_match(2)),
                (staged("s3"), no_match(0)),
                (gnp("x"), no_match(2)),
                (gnp("y"), no_match(1)),
            ],
        ),
    ]);
    let (code, trace) = check(&s, Scope::Enforced);
    assert_eq!(code, Code::PermissionDenied);
    assert_eq!(
        trace,
        [step("GlobalNetworkPolicy", "t1", "a", "pass"), step("GlobalNetworkPolicy", "t2", "x", "deny")],
        "each tier's first enforced policy; the staged ones before it are not in scope"
    );
    // Evaluated as if enforced, the staged policies are in scope and come first.
    let (_, trace) = check(&s, Scope::StagedAsEnforced);
    assert_eq!(
        trace,
        [step("StagedGlobalNetworkPolicy", "t1", "s1", "pass"), step("StagedGlobalNetworkPolicy", "t2", "s2", "deny")]
    );
}

#[test]
fn a_tier_of_staged_policies_only_is_skipped_by_an_enforced_check() {
    let s = store(&[
        ("t1", "Deny", vec![(staged("s1"), no_match(0)), (staged("s2"), no_match(1))]),
        ("t2", "Deny", vec![(gnp("x"), no_match(1)), (gnp("y"), no_match(2))]),
    ]);
    assert_eq!(check(&s, Scope::Enforced).1, [step("GlobalNetworkPolicy", "t2", "x", "deny")]);
}

#[test]
fn an_invalid_default_fails_at_the_first_policy_that_does_not_decide() {
    // The policy an end-of-tier step would name is where Dikastes reads the default action: if it
    // does not decide, the check ends with INVALID_ARGUMENT whatever later policies say.
    let allow = json!([{"action": "allow"}]);
    let s =
        store(&[("t1", "Bogus", vec![(staged("s"), no_match(1)), (gnp("a"), no_match(0)), (gnp("b"), allow.clone())])]);
    let (code, trace) = check(&s, Scope::Enforced);
    assert_eq!(code, Code::InvalidArgument);
    assert!(trace.is_empty(), "{trace:?}");
    // A first policy that decides never reads it.
    let s = store(&[("t1", "Bogus", vec![(staged("s"), no_match(1)), (gnp("a"), allow), (gnp("b"), no_match(0))])]);
    assert_eq!(
        check(&s, Scope::Enforced),
        (Code::Ok, vec![("GlobalNetworkPolicy".into(), "t1".into(), "a".into(), 0, "allow")])
    );
    // Nothing decides: the same failure at the end of the tier.
    let s = store(&[("t1", "Bogus", vec![(gnp("a"), no_match(0)), (gnp("b"), no_match(1))])]);
    assert_eq!(check(&s, Scope::Enforced).0, Code::InvalidArgument);
}

#[test]
fn only_exactly_pass_passes_any_other_action_denies() {
    // Dikastes parses the default action (any case) and then passes only on the string `Pass`.
    let allow_profile = |default: &str| {
        let mut s = store(&[("t1", default, vec![(gnp("a"), no_match(0))])]);
        s["profiles"] = json!([{"id": {"name": "kns.ns"}, "profile": {"inbound_rules": [{"action": "allow"}]}}]);
        s["endpoint"]["profile_ids"] = json!(["kns.ns"]);
        s
    };
    let (code, trace) = check(&allow_profile("Pass"), Scope::Enforced);
    assert_eq!(code, Code::Ok, "{trace:?}");
    assert_eq!(trace[0], step("GlobalNetworkPolicy", "t1", "a", "pass"));
    for (default, shown) in [
        ("Deny", "deny"),
        ("deny", "deny"),
        ("Allow", "allow"),
        ("pass", "pass"),
        ("Next-Tier", "pass"),
        ("Log", "log"),
    ] {
        let (code, trace) = check(&allow_profile(default), Scope::Enforced);
        assert_eq!(code, Code::PermissionDenied, "{default}: {trace:?}");
        assert_eq!(trace, [step("GlobalNetworkPolicy", "t1", "a", shown)], "{default}");
    }
}
