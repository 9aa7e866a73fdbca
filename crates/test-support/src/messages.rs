//! `ToDataplane` builders for tests, and a short name per message to compare sequences: one
//! of each, so that every test speaks of the same messages in the same words.

use alp_proto::felix::{
    self, ActivePolicyUpdate, ActiveProfileUpdate, IpSetDeltaUpdate, IpSetUpdate, NamespaceId, NamespaceUpdate, Policy,
    PolicyId, Profile, ProfileId, Rule, ServiceAccountId, ServiceAccountUpdate, TierInfo, ToDataplane,
    WorkloadEndpoint, WorkloadEndpointId, WorkloadEndpointRemove, WorkloadEndpointUpdate, ip_set_update::IpSetType,
    to_dataplane::Payload,
};

/// The workload id [`mk_endpoint`] uses (`<namespace>/<pod>`).
pub const WORKLOAD_ID: &str = "ns/pod";

/// One `ToDataplane` in proto3 JSON (as in `alp eval --sync` files). Panics naming the field.
pub fn msg_json(line: &str) -> ToDataplane {
    alp_proto::jsonl::decode(line)
        .unwrap_or_else(|(field, message)| panic!("ToDataplane {line}: at {field}: {message}"))
}

/// `InSync{}`.
pub fn mk_in_sync() -> ToDataplane {
    Payload::InSync(felix::InSync {}).into()
}

/// The id of the GlobalNetworkPolicy `name` (no namespace).
pub fn gnp_id(name: &str) -> PolicyId {
    PolicyId { name: name.into(), namespace: String::new(), kind: "GlobalNetworkPolicy".into() }
}

/// A rule allowing the sources in the IP sets `sets` (every source when there are none).
pub fn allow_from(sets: &[&str]) -> Rule {
    Rule { action: "Allow".into(), src_ip_set_ids: strs(sets), ..Rule::default() }
}

/// `ActivePolicyUpdate` of the GlobalNetworkPolicy `name` with one inbound rule,
/// [`allow_from`]`(sets)`.
pub fn mk_policy(name: &str, sets: &[&str]) -> ToDataplane {
    let policy = Policy { inbound_rules: vec![allow_from(sets)], ..Policy::default() };
    Payload::ActivePolicyUpdate(ActivePolicyUpdate { id: Some(gnp_id(name)), policy: Some(policy) }).into()
}

/// `ActivePolicyUpdate` of the GlobalNetworkPolicy `name` with `rules_json` (a JSON array of
/// proto3 JSON `Rule`s) as its inbound rules.
pub fn mk_policy_update(name: &str, rules_json: &str) -> ToDataplane {
    msg_json(&format!(
        r#"{{"activePolicyUpdate":{{"id":{{"name":{},"kind":"GlobalNetworkPolicy"}},"policy":{{"inboundRules":{rules_json}}}}}}}"#,
        json_str(name)
    ))
}

/// `ActivePolicyRemove` of the GlobalNetworkPolicy `name`.
pub fn mk_policy_remove(name: &str) -> ToDataplane {
    msg_json(&format!(
        r#"{{"activePolicyRemove":{{"id":{{"name":{},"kind":"GlobalNetworkPolicy"}}}}}}"#,
        json_str(name)
    ))
}

/// `ActiveProfileUpdate` of the profile `name` with these rules.
pub fn mk_profile(name: &str, inbound_rules: Vec<Rule>, outbound_rules: Vec<Rule>) -> ToDataplane {
    Payload::ActiveProfileUpdate(ActiveProfileUpdate {
        id: Some(ProfileId { name: name.into() }),
        profile: Some(Profile { inbound_rules, outbound_rules }),
    })
    .into()
}

/// A full `IPSetUpdate` of the NET set `id`.
pub fn mk_ip_set(id: &str, members: Vec<String>) -> ToDataplane {
    Payload::IpsetUpdate(IpSetUpdate { id: id.into(), members, r#type: IpSetType::Net as i32 }).into()
}

/// An `IPSetDeltaUpdate` of the set `id`.
pub fn mk_ip_set_delta(id: &str, added_members: Vec<String>, removed_members: Vec<String>) -> ToDataplane {
    Payload::IpsetDeltaUpdate(IpSetDeltaUpdate { id: id.into(), added_members, removed_members }).into()
}

/// The endpoint id of the pod `workload_id` (`<namespace>/<pod>`), as the agent sends it.
fn pod_endpoint_id(workload_id: &str) -> WorkloadEndpointId {
    WorkloadEndpointId { orchestrator_id: "k8s".into(), workload_id: workload_id.into(), endpoint_id: "eth0".into() }
}

/// `WorkloadEndpointUpdate` of the pod `workload_id` (`<namespace>/<pod>`) with one tier per
/// `(name, ingress policies, egress policies)`, every policy a GlobalNetworkPolicy, every tier's
/// default action Deny, and these profiles.
pub fn mk_workload(workload_id: &str, tiers: &[(&str, &[&str], &[&str])], profiles: &[&str]) -> ToDataplane {
    let tiers = tiers
        .iter()
        .map(|(name, ingress, egress)| TierInfo {
            name: (*name).into(),
            ingress_policies: ingress.iter().map(|p| gnp_id(p)).collect(),
            egress_policies: egress.iter().map(|p| gnp_id(p)).collect(),
            default_action: "Deny".into(),
        })
        .collect();
    let endpoint = WorkloadEndpoint { profile_ids: strs(profiles), tiers, ..WorkloadEndpoint::default() };
    Payload::WorkloadEndpointUpdate(WorkloadEndpointUpdate {
        id: Some(pod_endpoint_id(workload_id)),
        endpoint: Some(endpoint),
    })
    .into()
}

/// `WorkloadEndpointRemove` of the pod `workload_id`.
pub fn mk_workload_remove(workload_id: &str) -> ToDataplane {
    Payload::WorkloadEndpointRemove(WorkloadEndpointRemove { id: Some(pod_endpoint_id(workload_id)) }).into()
}

/// `WorkloadEndpointUpdate` for [`WORKLOAD_ID`] with one tier per `(tier, ingress policy
/// names)`, every policy a GlobalNetworkPolicy, every tier's default action Deny.
pub fn mk_endpoint(tiers: &[(&str, &[&str])]) -> ToDataplane {
    let tiers: Vec<(&str, &[&str], &[&str])> = tiers.iter().map(|(tier, ingress)| (*tier, *ingress, &[][..])).collect();
    mk_workload(WORKLOAD_ID, &tiers, &[])
}

fn labels(labels: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
    labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// `ServiceAccountUpdate` of `namespace/name` with these labels.
pub fn mk_service_account(namespace: &str, name: &str, with_labels: &[(&str, &str)]) -> ToDataplane {
    let id = ServiceAccountId { namespace: namespace.into(), name: name.into() };
    Payload::ServiceAccountUpdate(ServiceAccountUpdate { id: Some(id), labels: labels(with_labels) }).into()
}

/// `NamespaceUpdate` of `name` with these labels.
pub fn mk_namespace(name: &str, with_labels: &[(&str, &str)]) -> ToDataplane {
    let id = NamespaceId { name: name.into() };
    Payload::NamespaceUpdate(NamespaceUpdate { id: Some(id), labels: labels(with_labels) }).into()
}

/// `n` distinct NET members, `10.a.b.c/32`, in order.
pub fn members(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("10.{}.{}.{}/32", i >> 16, (i >> 8) & 255, i & 255)).collect()
}

/// Owned strings.
pub fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

/// A short name per message, to compare sequences: `set <id> (<members>)`,
/// `delta <id> +<added> -<removed>`, `policy <name>`, `endpoint <workload>`, `remove …`, `in-sync`.
pub fn describe(m: &ToDataplane) -> String {
    match m.payload.as_ref() {
        None => "none".into(),
        Some(Payload::InSync(_)) => "in-sync".into(),
        Some(Payload::IpsetUpdate(u)) => format!("set {} ({})", u.id, u.members.len()),
        Some(Payload::IpsetDeltaUpdate(u)) => {
            format!("delta {} +{} -{}", u.id, u.added_members.len(), u.removed_members.len())
        }
        Some(Payload::IpsetRemove(u)) => format!("remove set {}", u.id),
        Some(Payload::ActivePolicyUpdate(u)) => format!("policy {}", u.id.as_ref().map_or("?", |i| &i.name)),
        Some(Payload::ActivePolicyRemove(u)) => format!("remove policy {}", u.id.as_ref().map_or("?", |i| &i.name)),
        Some(Payload::ActiveProfileUpdate(u)) => format!("profile {}", u.id.as_ref().map_or("?", |i| &i.name)),
        Some(Payload::ActiveProfileRemove(u)) => format!("remove profile {}", u.id.as_ref().map_or("?", |i| &i.name)),
        Some(Payload::WorkloadEndpointUpdate(u)) => {
            format!("endpoint {}", u.id.as_ref().map_or("?", |i| &i.workload_id))
        }
        Some(Payload::WorkloadEndpointRemove(u)) => {
            format!("remove endpoint {}", u.id.as_ref().map_or("?", |i| &i.workload_id))
        }
        Some(Payload::ServiceAccountUpdate(u)) => {
            format!("sa {}", u.id.as_ref().map_or("?".into(), |i| format!("{}/{}", i.namespace, i.name)))
        }
        Some(Payload::ServiceAccountRemove(u)) => {
            format!("remove sa {}", u.id.as_ref().map_or("?".into(), |i| format!("{}/{}", i.namespace, i.name)))
        }
        Some(Payload::NamespaceUpdate(u)) => format!("ns {}", u.id.as_ref().map_or("?", |i| &i.name)),
        Some(Payload::NamespaceRemove(u)) => format!("remove ns {}", u.id.as_ref().map_or("?", |i| &i.name)),
    }
}

fn json_str(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}
