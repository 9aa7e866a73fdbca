//! Shared by the engine's vector and difference tests: build stores from the vectors' JSON
//! (through the real proto3 JSON decoder and `Store::apply`) and requests from their shorthand.
#![allow(dead_code)]

use std::{collections::HashMap, net::IpAddr, path::PathBuf, sync::Arc};

use alp_engine::{Config, Snapshot, Store};
use alp_model::{Http, Peer, Request};
use alp_proto::felix::ToDataplane;
use serde_json::{Value, json};

pub fn vectors(file: &str) -> Value {
    let dir = std::env::var_os("ALP_VECTORS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../vectors"));
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

pub fn msg(v: Value) -> ToDataplane {
    serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{v}: {e}"))
}

fn arr(v: &Value, key: &str) -> Vec<Value> {
    v.get(key).and_then(Value::as_array).cloned().unwrap_or_default()
}

/// The policy-sync messages that produce a vector's store, in Felix's order.
pub fn store_messages(store: &Value) -> Vec<ToDataplane> {
    let mut out = Vec::new();
    for s in arr(store, "ip_sets") {
        out.push(msg(json!({"ipset_update": s})));
    }
    for p in arr(store, "policies") {
        out.push(msg(json!({"active_policy_update": p})));
    }
    for p in arr(store, "profiles") {
        out.push(msg(json!({"active_profile_update": p})));
    }
    for sa in arr(store, "service_accounts") {
        out.push(msg(json!({"service_account_update": {
            "id": {"namespace": sa["namespace"], "name": sa["name"]}, "labels": sa.get("labels").cloned().unwrap_or(json!({}))}})));
    }
    for ns in arr(store, "namespaces") {
        out.push(msg(json!({"namespace_update": {
            "id": {"name": ns["name"]}, "labels": ns.get("labels").cloned().unwrap_or(json!({}))}})));
    }
    if let Some(ep) = store.get("endpoint").filter(|e| !e.is_null()) {
        out.push(msg(json!({"workload_endpoint_update": {"id": {"workload_id": "ns/pod"}, "endpoint": ep}})));
    }
    out.push(msg(json!({"in_sync": {}})));
    out
}

pub fn snapshot_with(store: &Value, config: Config) -> Arc<Snapshot> {
    let mut s = Store::new(config);
    for m in store_messages(store) {
        s.apply(&m).unwrap_or_else(|e| panic!("{e}"));
    }
    assert!(s.in_sync());
    s.snapshot()
}

pub fn snapshot(store: &Value) -> Arc<Snapshot> {
    snapshot_with(store, Config::default())
}

/// Owns what a vector request's `Request` borrows.
#[derive(Debug)]
pub struct OwnedRequest {
    principals: [String; 2],
    labels: [Option<HashMap<String, String>>; 2],
    ips: [Option<IpAddr>; 2],
    ports: [u32; 2],
    protocol: i32,
    http: Option<(String, String)>,
}

impl OwnedRequest {
    /// Maps the vectors' request shorthand as the README says the upstream adapter does.
    pub fn from_vector(r: &Value) -> Self {
        let side = |k: &str| r.get(k).cloned().unwrap_or(Value::Null);
        let (src, dst) = (side("source"), side("destination"));
        let principal = |p: &Value| p.get("principal").and_then(Value::as_str).unwrap_or("").to_owned();
        let labels = |p: &Value| {
            p.get("labels")
                .and_then(Value::as_object)
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect())
        };
        let ip = |p: &Value| p.pointer("/address/ip").and_then(Value::as_str).and_then(|s| s.parse().ok());
        let port = |p: &Value| p.pointer("/address/port").and_then(Value::as_u64).unwrap_or(0) as u32;
        let protocol = match dst.pointer("/address/protocol").and_then(Value::as_str) {
            Some("UDP") => 17,
            _ => 6,
        };
        let http = r.get("http").map(|h| {
            let f = |k: &str| h.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
            (f("method"), f("path"))
        });
        OwnedRequest {
            principals: [principal(&src), principal(&dst)],
            labels: [labels(&src), labels(&dst)],
            ips: [ip(&src), ip(&dst)],
            ports: [port(&src), port(&dst)],
            protocol,
            http,
        }
    }

    pub fn with_protocol(mut self, protocol: i32) -> Self {
        self.protocol = protocol;
        self
    }

    pub fn request(&self) -> Request<'_> {
        let peer = |i: usize| Peer {
            address: self.ips[i].into(),
            port: self.ports[i],
            principal: &self.principals[i],
            labels: self.labels[i].as_ref(),
        };
        Request {
            source: peer(0),
            destination: peer(1),
            protocol: self.protocol,
            http: self.http.as_ref().map(|(m, p)| Http { method: m, path: p }),
        }
    }
}

/// A store whose endpoint has one tier (default Deny) holding one policy with `rule` as its
/// only inbound rule, with its action forced to allow: the check is OK iff the rule matches.
pub fn one_rule_store(rule: &Value, policy_namespace: &str, extra: &Value) -> Value {
    let mut rule = rule.clone();
    rule["action"] = json!("allow");
    let kind = if policy_namespace.is_empty() { "GlobalNetworkPolicy" } else { "NetworkPolicy" };
    let id = json!({"name": "p", "namespace": policy_namespace, "kind": kind});
    let mut store = extra.clone();
    if store.is_null() {
        store = json!({});
    }
    store["policies"] = json!([{"id": id, "policy": {"namespace": policy_namespace, "inbound_rules": [rule]}}]);
    store["endpoint"] = json!({"tiers": [{"name": "t", "default_action": "Deny", "ingress_policies": [id]}]});
    store
}
