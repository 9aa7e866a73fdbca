//! Shared helpers: resources from YAML, and the downstream view folded from the stream.
#![allow(dead_code, clippy::unwrap_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};

use alp_calc::Calculator;
use alp_proto::felix::{Policy, Profile, ToDataplane, WorkloadEndpoint, to_dataplane::Payload};
use alp_resources::Resource;

/// Every document of `yaml`, which must all parse.
pub fn resources(yaml: &str) -> Vec<Resource> {
    alp_resources::parse_documents(yaml, "test.yaml").into_iter().map(|r| r.unwrap()).collect()
}

/// The one document of `yaml`.
pub fn resource(yaml: &str) -> Resource {
    let mut all = resources(yaml);
    assert_eq!(all.len(), 1);
    all.remove(0)
}

/// Applies every document of `yaml`, returning all the output.
pub fn apply(calc: &mut Calculator, yaml: &str) -> Vec<ToDataplane> {
    resources(yaml).into_iter().flat_map(|r| calc.apply(r)).collect()
}

/// A pod on `node` with labels and an address.
pub fn pod(ns: &str, name: &str, node: &str, ip: &str, labels: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: {ns}, labels: {{{labels}}}}}\n\
         spec: {{nodeName: {node}, serviceAccountName: sa}}\nstatus: {{podIP: '{ip}'}}\n"
    )
}

/// A short name for each message, e.g. `ipset+`, `policy`, `endpoint-`.
pub fn kinds(out: &[ToDataplane]) -> Vec<&'static str> {
    out.iter()
        .map(|m| match m.payload.as_ref().unwrap() {
            Payload::InSync(_) => "in-sync",
            Payload::IpsetUpdate(_) => "ipset",
            Payload::IpsetDeltaUpdate(_) => "ipset-delta",
            Payload::IpsetRemove(_) => "ipset-",
            Payload::ActiveProfileUpdate(_) => "profile",
            Payload::ActiveProfileRemove(_) => "profile-",
            Payload::ActivePolicyUpdate(_) => "policy",
            Payload::ActivePolicyRemove(_) => "policy-",
            Payload::WorkloadEndpointUpdate(_) => "endpoint",
            Payload::WorkloadEndpointRemove(_) => "endpoint-",
            Payload::ServiceAccountUpdate(_) => "sa",
            Payload::ServiceAccountRemove(_) => "sa-",
            Payload::NamespaceUpdate(_) => "ns",
            Payload::NamespaceRemove(_) => "ns-",
        })
        .collect()
}

/// What a downstream consumer holds after folding the stream. Folding checks the stream is
/// consistent: deltas only for known sets, members added only when absent and removed only when
/// present, removes only for known objects.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct View {
    pub ip_sets: BTreeMap<String, (i32, BTreeSet<String>)>,
    pub policies: BTreeMap<(String, String, String), Policy>,
    pub profiles: BTreeMap<String, Profile>,
    pub endpoints: BTreeMap<String, WorkloadEndpoint>,
    pub service_accounts: BTreeMap<(String, String), BTreeMap<String, String>>,
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
    pub in_sync: usize,
}

impl View {
    pub fn fold(&mut self, out: &[ToDataplane]) {
        for m in out {
            match m.payload.clone().unwrap() {
                Payload::InSync(_) => self.in_sync += 1,
                Payload::IpsetUpdate(u) => {
                    let members: BTreeSet<String> = u.members.iter().cloned().collect();
                    assert_eq!(members.len(), u.members.len(), "duplicate members in {u:?}");
                    self.ip_sets.insert(u.id, (u.r#type, members));
                }
                Payload::IpsetDeltaUpdate(d) => {
                    let (_, members) =
                        self.ip_sets.get_mut(&d.id).unwrap_or_else(|| panic!("delta for unknown set {}", d.id));
                    for a in d.added_members {
                        assert!(members.insert(a.clone()), "{a} added to {} twice", d.id);
                    }
                    for r in d.removed_members {
                        assert!(members.remove(&r), "{r} removed from {} but absent", d.id);
                    }
                }
                Payload::IpsetRemove(r) => {
                    assert!(self.ip_sets.remove(&r.id).is_some(), "remove of unknown set {}", r.id)
                }
                Payload::ActivePolicyUpdate(u) => {
                    let id = u.id.unwrap();
                    self.policies.insert((id.kind, id.namespace, id.name), u.policy.unwrap());
                }
                Payload::ActivePolicyRemove(r) => {
                    let id = r.id.unwrap();
                    assert!(
                        self.policies.remove(&(id.kind, id.namespace, id.name)).is_some(),
                        "remove of unknown policy"
                    );
                }
                Payload::ActiveProfileUpdate(u) => {
                    self.profiles.insert(u.id.unwrap().name, u.profile.unwrap());
                }
                Payload::ActiveProfileRemove(r) => {
                    assert!(self.profiles.remove(&r.id.unwrap().name).is_some(), "remove of unknown profile");
                }
                Payload::WorkloadEndpointUpdate(u) => {
                    self.endpoints.insert(u.id.unwrap().workload_id, u.endpoint.unwrap());
                }
                Payload::WorkloadEndpointRemove(r) => {
                    assert!(self.endpoints.remove(&r.id.unwrap().workload_id).is_some(), "remove of unknown endpoint");
                }
                Payload::ServiceAccountUpdate(u) => {
                    let id = u.id.unwrap();
                    self.service_accounts.insert((id.namespace, id.name), u.labels.into_iter().collect());
                }
                Payload::ServiceAccountRemove(r) => {
                    let id = r.id.unwrap();
                    assert!(self.service_accounts.remove(&(id.namespace, id.name)).is_some());
                }
                Payload::NamespaceUpdate(u) => {
                    self.namespaces.insert(u.id.unwrap().name, u.labels.into_iter().collect());
                }
                Payload::NamespaceRemove(r) => assert!(self.namespaces.remove(&r.id.unwrap().name).is_some()),
            }
        }
    }

    /// Every IP-set id the active policies and profiles name.
    pub fn referenced_sets(&self) -> BTreeSet<String> {
        let rules = self
            .policies
            .values()
            .flat_map(|p| p.inbound_rules.iter().chain(&p.outbound_rules))
            .chain(self.profiles.values().flat_map(|p| p.inbound_rules.iter().chain(&p.outbound_rules)));
        rules
            .flat_map(|r| {
                r.src_ip_set_ids
                    .iter()
                    .chain(&r.dst_ip_set_ids)
                    .chain(&r.src_named_port_ip_set_ids)
                    .chain(&r.dst_named_port_ip_set_ids)
                    .chain(&r.not_src_ip_set_ids)
                    .chain(&r.not_dst_ip_set_ids)
                    .chain(&r.not_src_named_port_ip_set_ids)
                    .chain(&r.not_dst_named_port_ip_set_ids)
                    .cloned()
            })
            .collect()
    }
}

/// The view after applying `yaml` to a fresh calculator.
pub fn view_of(node: Option<&str>, yaml: &str) -> (Calculator, View) {
    let mut calc = Calculator::new(node.map(str::to_owned));
    let mut view = View::default();
    view.fold(&apply(&mut calc, yaml));
    (calc, view)
}
