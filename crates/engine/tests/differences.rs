//! One test per deliberate difference from Calico's Dikastes (README.md, D1–D8) that lives in
//! the engine. D6 (reconnect backoff) is the sync client's and is tested there.

mod common;

use alp_engine::{Code, Config, Store, decide};
use common::*;
use serde_json::{Value, json};

fn gnp(name: &str) -> Value {
    json!({"name": name, "kind": "GlobalNetworkPolicy"})
}

/// A store with one Deny tier holding the given policies (rules as JSON), in order.
fn store(policies: &[(&str, Value)], sets: Value) -> Value {
    json!({
        "ip_sets": sets,
        "policies": policies.iter().map(|(n, rules)| json!({"id": gnp(n), "policy": {"inbound_rules": rules}})).collect::<Vec<_>>(),
        "endpoint": {"tiers": [{"name": "t1", "default_action": "Deny",
                                "ingress_policies": policies.iter().map(|(n, _)| gnp(n)).collect::<Vec<_>>()}],
                     "profile_ids": []},
    })
}

fn code(store: &Value, req: &Value) -> (Code, String) {
    let snap = snapshot(store);
    let req = OwnedRequest::from_vector(req);
    let d = decide(&snap, &req.request());
    (d.code, d.message)
}

fn tcp(src: &str, dst: &str, port: u32) -> Value {
    json!({"source": {"address": {"ip": src, "port": 40000}},
           "destination": {"address": {"ip": dst, "port": port, "protocol": "TCP"}},
           "http": {"method": "GET", "path": "/"}})
}

#[test]
fn d1_missing_ip_set_fails_closed_when_reached() {
    // Calico ignores the missing set's clause, which would let this Allow match everyone.
    let s = store(&[("p", json!([{"action": "allow", "src_ip_set_ids": ["s:gone"]}]))], json!([]));
    let (c, message) = code(&s, &tcp("10.0.0.1", "10.0.0.2", 80));
    assert_eq!(c, Code::Internal);
    assert!(message.contains("s:gone"), "the message names the set: {message}");

    // A decision before the broken rule is not affected.
    let s = store(
        &[("first", json!([{"action": "allow"}])), ("p", json!([{"action": "allow", "src_ip_set_ids": ["s:gone"]}]))],
        json!([]),
    );
    assert_eq!(code(&s, &tcp("10.0.0.1", "10.0.0.2", 80)).0, Code::Ok);

    // Removing the set from the store later has the same effect.
    let mut st = Store::new(Config::default());
    for m in store_messages(&store(
        &[("p", json!([{"action": "allow", "src_ip_set_ids": ["s:a"]}]))],
        json!([{"id": "s:a", "type": "NET", "members": ["10.0.0.1/32"]}]),
    )) {
        st.apply(&m).unwrap();
    }
    let req = OwnedRequest::from_vector(&tcp("10.0.0.1", "10.0.0.2", 80));
    assert_eq!(decide(&st.snapshot(), &req.request()).code, Code::Ok);
    st.apply(&msg(json!({"ipset_remove": {"id": "s:a"}}))).unwrap();
    assert_eq!(decide(&st.snapshot(), &req.request()).code, Code::Internal);
}

#[test]
fn d2_net_members_of_every_prefix_length_match() {
    for (member, inside, outside) in [
        ("192.168.8.8/30", "192.168.8.9", "192.168.8.12"),
        ("192.168.8.128/25", "192.168.8.200", "192.168.8.1"),
        ("192.168.8.8/31", "192.168.8.9", "192.168.8.10"),
        ("2001:db8::/127", "2001:db8::1", "2001:db8::2"),
        ("2001:db8::/121", "2001:db8::7f", "2001:db8::80"),
    ] {
        let s = store(
            &[("p", json!([{"action": "allow", "src_ip_set_ids": ["s:n"]}]))],
            json!([{"id": "s:n", "type": "NET", "members": [member]}]),
        );
        let dst = if inside.contains(':') { "2001:db8:1::1" } else { "10.0.0.2" };
        assert_eq!(code(&s, &tcp(inside, dst, 80)).0, Code::Ok, "{inside} in {member}");
        assert_eq!(code(&s, &tcp(outside, dst, 80)).0, Code::PermissionDenied, "{outside} not in {member}");
    }
}

#[test]
fn d3_named_ports_are_probed_with_ip_proto_port() {
    let sets = json!([{"id": "n:web", "type": "IP_AND_PORT", "members": ["10.0.0.2,tcp:8080"]}]);
    let s = store(&[("p", json!([{"action": "allow", "dst_named_port_ip_set_ids": ["n:web"]}]))], sets.clone());
    assert_eq!(code(&s, &tcp("10.0.0.1", "10.0.0.2", 8080)).0, Code::Ok, "Calico never matches a named port");
    assert_eq!(code(&s, &tcp("10.0.0.1", "10.0.0.2", 8081)).0, Code::PermissionDenied);
    assert_eq!(code(&s, &tcp("10.0.0.1", "10.0.0.3", 8080)).0, Code::PermissionDenied, "the IP is part of the probe");

    let s = store(&[("p", json!([{"action": "allow", "not_dst_named_port_ip_set_ids": ["n:web"]}]))], sets);
    assert_eq!(code(&s, &tcp("10.0.0.1", "10.0.0.2", 8080)).0, Code::PermissionDenied, "the negated form excludes");
    assert_eq!(code(&s, &tcp("10.0.0.1", "10.0.0.2", 9090)).0, Code::Ok);
}

#[test]
fn d4_a_connection_passes_if_some_request_on_it_could() {
    let network = json!({"source": {"principal": "spiffe://cluster.local/ns/a/sa/b"}});
    let http = |m: &str| json!({"source": {"principal": "spiffe://cluster.local/ns/a/sa/b"}, "http": {"method": m, "path": "/admin"}});
    // A Deny for DELETE must not close the connection (Calico: it does).
    let s = store(
        &[("p", json!([{"action": "deny", "http_match": {"methods": ["DELETE"]}}, {"action": "allow"}]))],
        json!([]),
    );
    assert_eq!(code(&s, &network).0, Code::Ok);
    assert_eq!(code(&s, &http("DELETE")).0, Code::PermissionDenied);
    assert_eq!(code(&s, &http("GET")).0, Code::Ok);

    // An Allow limited to GET lets the connection through; the HTTP check decides each request.
    let s = store(&[("p", json!([{"action": "allow", "http_match": {"methods": ["GET"]}}]))], json!([]));
    assert_eq!(code(&s, &network).0, Code::Ok);
    assert_eq!(code(&s, &http("POST")).0, Code::PermissionDenied);

    // Nothing on the connection could be allowed: closed.
    let s = store(&[("p", json!([{"action": "deny", "http_match": {"methods": ["GET"]}}]))], json!([]));
    assert_eq!(code(&s, &network).0, Code::PermissionDenied);

    // Pass with an HTTP clause: one branch goes to the next tier, which allows.
    let s = json!({
        "policies": [
            {"id": gnp("p1"), "policy": {"inbound_rules": [{"action": "pass", "http_match": {"paths": [{"prefix": "/public"}]}}]}},
            {"id": gnp("p2"), "policy": {"inbound_rules": [{"action": "allow"}]}},
        ],
        "endpoint": {"tiers": [
            {"name": "t1", "default_action": "Deny", "ingress_policies": [gnp("p1")]},
            {"name": "t2", "default_action": "Deny", "ingress_policies": [gnp("p2")]},
        ]},
    });
    let snap = snapshot(&s);
    let req = OwnedRequest::from_vector(&network);
    let d = decide(&snap, &req.request());
    assert_eq!(d.code, Code::Ok);
    let trace: Vec<_> = d.trace.iter().map(|h| (h.name(), h.index, h.action.as_str())).collect();
    assert_eq!(trace, [("p1", 0, "pass"), ("p2", 0, "allow")], "the trace follows the allowing branch");
}

#[test]
fn d5_a_fresh_store_holds_nothing_of_an_earlier_connection() {
    let first = store(
        &[("old", json!([{"action": "allow"}]))],
        json!([{"id": "s:x", "type": "NET", "members": ["10.0.0.0/8"]}]),
    );
    let mut a = Store::new(Config::default());
    for m in store_messages(&first) {
        a.apply(&m).unwrap();
    }
    assert!(a.snapshot().policy(&alp_model::PolicyId::new("old", "", "GlobalNetworkPolicy")).is_some());
    // The replay after a reconnect no longer has `old`: a new store per connection cannot keep it.
    let second = store(&[("new", json!([{"action": "deny"}]))], json!([]));
    let mut b = Store::new(Config::default());
    assert!(!b.in_sync(), "a new store is not in sync until its stream says so");
    for m in store_messages(&second) {
        b.apply(&m).unwrap();
    }
    let snap = b.snapshot();
    assert!(snap.policy(&alp_model::PolicyId::new("old", "", "GlobalNetworkPolicy")).is_none());
    assert!(snap.ip_set("s:x").is_none());
    let req = OwnedRequest::from_vector(&tcp("10.0.0.1", "10.0.0.2", 80));
    assert_eq!(decide(&snap, &req.request()).code, Code::PermissionDenied);
}

#[test]
fn d7_trust_domain_restricts_identities() {
    let s = store(&[("p", json!([{"action": "allow", "src_service_account_match": {"names": ["web"]}}]))], json!([]));
    let from = |p: &str| json!({"source": {"principal": p}, "http": {"method": "GET", "path": "/"}});
    let local = from("spiffe://cluster.local/ns/a/sa/web");
    let foreign = from("spiffe://evil.example/ns/a/sa/web");
    let restricted = |req: &Value| {
        let snap = snapshot_with(&s, Config { trust_domain: Some("cluster.local".into()) });
        let req = OwnedRequest::from_vector(req);
        decide(&snap, &req.request()).code
    };
    assert_eq!(code(&s, &foreign).0, Code::Ok, "by default any trust domain is accepted, as Calico does");
    assert_eq!(restricted(&local), Code::Ok);
    assert_eq!(restricted(&foreign), Code::PermissionDenied);
}

#[test]
fn d8_unparsable_selector_or_cidr_ends_the_check_when_reached() {
    for bad in [
        json!({"action": "deny", "src_net": ["10.0.0.0/33"]}),
        json!({"action": "deny", "not_dst_net": ["nonsense"]}),
        json!({"action": "deny", "src_service_account_match": {"selector": "not.a.real.selector"}}),
        json!({"action": "deny", "original_src_namespace_selector": "a ==="}),
    ] {
        let s = store(&[("p", json!([bad.clone(), {"action": "allow"}]))], json!([]));
        let (c, msg) = code(&s, &tcp("10.0.0.1", "10.0.0.2", 80));
        assert_eq!(c, Code::InvalidArgument, "{bad}");
        assert!(msg.contains("rule 0 of policy gnp/p"), "{msg}");
        // An earlier decision is unaffected, and so are other snapshots' policies.
        let s = store(&[("first", json!([{"action": "allow"}])), ("p", json!([bad]))], json!([]));
        assert_eq!(code(&s, &tcp("10.0.0.1", "10.0.0.2", 80)).0, Code::Ok);
    }
}
