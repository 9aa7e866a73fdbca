//! Kubernetes kinds alp reads: `v1` Pod, Namespace, ServiceAccount and `networking.k8s.io/v1`
//! NetworkPolicy (Calico's `KubernetesNetworkPolicy`).
//!
//! Pods, Namespaces and ServiceAccounts keep only the fields alp uses and ignore the rest.
//! NetworkPolicy specs reject unknown fields, as `kubectl`'s strict validation does.

use std::{collections::BTreeMap, fmt};

use serde::{
    Deserialize, Deserializer, Serialize, Serializer,
    de::{self, Visitor},
};

use crate::{
    meta::{ObjectMeta, is_false, null_default},
    rule::PolicyType,
};

/// The name prefix older Calico releases gave converted Kubernetes NetworkPolicies
/// (`knp.default.<name>`, kind `NetworkPolicy`). Calico HEAD no longer produces it (a converted
/// policy keeps its Kubernetes name, kind `KubernetesNetworkPolicy`), but its validation still
/// accepts a Calico NetworkPolicy named with it, and so does alp's.
pub const LEGACY_KUBERNETES_NETWORK_POLICY_NAME_PREFIX: &str = "knp.default.";

/// A `containerPort` entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerPort {
    /// Port name (an IANA service name), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Port number.
    #[serde(default)]
    pub container_port: i64,
    /// `TCP`, `UDP` or `SCTP`; `TCP` after parsing when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

/// A container (or init container) of a pod.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    /// Container name.
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    /// Its ports.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<ContainerPort>,
    /// `restartPolicy` (`Always` marks a native sidecar among init containers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<String>,
}

/// The part of `PodSpec` alp reads.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    /// Node the pod is scheduled on; `None` while unscheduled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// Service account name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Host-networked pods never become workload endpoints.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "is_false")]
    pub host_network: bool,
    /// Containers.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<Container>,
    /// Init containers.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub init_containers: Vec<Container>,
}

/// A `status.podIPs` entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodIp {
    /// The address.
    #[serde(default, deserialize_with = "null_default")]
    pub ip: String,
}

/// The part of `PodStatus` alp reads.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodStatus {
    /// `Pending`, `Running`, `Succeeded`, `Failed`, `Unknown` (or `Completed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// `podIP`.
    #[serde(rename = "podIP", default, skip_serializing_if = "Option::is_none")]
    pub pod_ip: Option<String>,
    /// `podIPs`.
    #[serde(rename = "podIPs", default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub pod_ips: Vec<PodIp>,
}

/// A Kubernetes `v1` Pod.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pod {
    /// Metadata (labels, annotations, uid, deletionTimestamp).
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Spec.
    #[serde(default, deserialize_with = "null_default")]
    pub spec: PodSpec,
    /// Status.
    #[serde(default, deserialize_with = "null_default")]
    pub status: PodStatus,
}

/// A Kubernetes `v1` Namespace (its labels matter).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Namespace {
    /// Metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
}

/// A Kubernetes `v1` ServiceAccount (its labels matter).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceAccount {
    /// Metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
}

/// A `matchExpressions` entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelSelectorRequirement {
    /// Label key.
    #[serde(default, deserialize_with = "null_default")]
    pub key: String,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist`.
    #[serde(default, deserialize_with = "null_default")]
    pub operator: String,
    /// Values (for `In` / `NotIn`).
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// A Kubernetes `LabelSelector`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelector {
    /// `key: value` pairs, all required.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    /// Requirements, all required.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

/// What a [`LabelSelector`] selects, for [`LabelSelector::to_calico_selector`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelectorRole {
    /// A pod selector: Calico adds `projectcalico.org/orchestrator == 'k8s'`.
    Pod,
    /// A namespace selector: an empty one means every namespace (`all()`).
    Namespace,
}

impl LabelSelector {
    /// Whether it has no terms.
    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }

    /// Calico's `k8sSelectorToCalico`: the selector string Calico builds for this selector.
    /// `matchLabels` in key order as `k == 'v'`, then `matchExpressions` in order (`k in { 'a',
    /// 'b' }`, `k not in { … }`, `has(k)`, `! has(k)`), joined with ` && `; a pod selector starts
    /// with `projectcalico.org/orchestrator == 'k8s'`, an empty namespace selector is `all()`.
    /// Namespace scoping of pod selectors is the caller's business.
    pub fn to_calico_selector(&self, role: SelectorRole) -> String {
        label_selector_to_calico(Some(self), role)
    }
}

/// [`LabelSelector::to_calico_selector`] for an optional selector: an absent pod selector is
/// just the orchestrator term, an absent namespace selector is `""` (no namespace criterion).
pub fn label_selector_to_calico(selector: Option<&LabelSelector>, role: SelectorRole) -> String {
    let mut terms: Vec<String> = Vec::new();
    if role == SelectorRole::Pod {
        terms.push("projectcalico.org/orchestrator == 'k8s'".to_owned());
    }
    let Some(s) = selector else {
        return terms.join(" && ");
    };
    if role == SelectorRole::Namespace && s.is_empty() {
        return "all()".to_owned();
    }
    for (k, v) in &s.match_labels {
        terms.push(format!("{k} == '{v}'"));
    }
    for e in &s.match_expressions {
        let values = e.values.join("', '");
        match e.operator.as_str() {
            "In" => terms.push(format!("{} in {{ '{values}' }}", e.key)),
            "NotIn" => terms.push(format!("{} not in {{ '{values}' }}", e.key)),
            "Exists" => terms.push(format!("has({})", e.key)),
            "DoesNotExist" => terms.push(format!("! has({})", e.key)),
            _ => {}
        }
    }
    terms.join(" && ")
}

/// `intstr.IntOrString`, as a NetworkPolicy port.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum IntOrString {
    /// A number.
    Int(i64),
    /// A string (a port name).
    String(String),
}

impl fmt::Display for IntOrString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IntOrString::Int(i) => write!(f, "{i}"),
            IntOrString::String(s) => f.write_str(s),
        }
    }
}

impl Serialize for IntOrString {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            IntOrString::Int(i) => serializer.serialize_i64(*i),
            IntOrString::String(s) => serializer.serialize_str(s),
        }
    }
}

impl<'de> Deserialize<'de> for IntOrString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = IntOrString;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer or a string")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<IntOrString, E> {
                Ok(IntOrString::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<IntOrString, E> {
                i64::try_from(v).map(IntOrString::Int).map_err(|_| E::custom(format_args!("{v} is out of range")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<IntOrString, E> {
                Ok(IntOrString::String(v.to_owned()))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// A NetworkPolicy `ipBlock`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpBlock {
    /// The CIDR.
    #[serde(default, deserialize_with = "null_default")]
    pub cidr: String,
    /// CIDRs inside it that are excluded.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub except: Vec<String>,
}

/// A NetworkPolicy peer (`from` / `to` entry).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkPolicyPeer {
    /// Pods (in the policy's namespace unless a namespace selector is given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_selector: Option<LabelSelector>,
    /// Namespaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// Addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_block: Option<IpBlock>,
}

/// A NetworkPolicy port.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkPolicyPort {
    /// `TCP`, `UDP` or `SCTP`; `TCP` after parsing when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// Port number or name; absent means every port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<IntOrString>,
    /// End of a port range starting at a numeric `port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_port: Option<i64>,
}

/// A NetworkPolicy ingress rule.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct K8sIngressRule {
    /// Sources; empty means everywhere.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub from: Vec<NetworkPolicyPeer>,
    /// Ports; empty means every port.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<NetworkPolicyPort>,
}

/// A NetworkPolicy egress rule.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct K8sEgressRule {
    /// Destinations; empty means everywhere.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<NetworkPolicyPeer>,
    /// Ports; empty means every port.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<NetworkPolicyPort>,
}

/// `NetworkPolicySpec` of `networking.k8s.io/v1`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubernetesNetworkPolicySpec {
    /// Pods the policy applies to (in its namespace); empty selects all.
    #[serde(default, deserialize_with = "null_default")]
    pub pod_selector: LabelSelector,
    /// Policy types; never empty after parsing (the API server's defaulting: `Ingress`, plus
    /// `Egress` when there are egress rules).
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub policy_types: Vec<PolicyType>,
    /// Ingress rules.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub ingress: Vec<K8sIngressRule>,
    /// Egress rules.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub egress: Vec<K8sEgressRule>,
}

/// A `networking.k8s.io/v1` NetworkPolicy. Calico HEAD (`K8sNetworkPolicyToCalico`) puts it in
/// tier `default` at order 1000 with id `{kind: KubernetesNetworkPolicy, namespace: <ns>, name:
/// <name>}`: its plain Kubernetes name ([`KubernetesNetworkPolicy::calico_name`]; older releases
/// named it `knp.default.<name>`); converting its rules is the calculator's job.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubernetesNetworkPolicy {
    /// Metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Spec.
    #[serde(default, deserialize_with = "null_default")]
    pub spec: KubernetesNetworkPolicySpec,
}

impl KubernetesNetworkPolicy {
    /// The name Calico HEAD gives the converted policy (kind `KubernetesNetworkPolicy`): its
    /// Kubernetes name, without the `knp.default.` prefix of older releases.
    pub fn calico_name(&self) -> &str {
        &self.metadata.name
    }
}

/// The API server's defaulting of a NetworkPolicy spec: when `policyTypes` is empty,
/// `Ingress`, plus `Egress` if there are egress rules; ports without a protocol are TCP.
pub(crate) fn default_k8s_policy(
    policy_types: &mut Vec<PolicyType>,
    ingress: &mut [K8sIngressRule],
    egress: &mut [K8sEgressRule],
) {
    if policy_types.is_empty() {
        policy_types.push(PolicyType::Ingress);
        if !egress.is_empty() {
            policy_types.push(PolicyType::Egress);
        }
    }
    let ports = ingress.iter_mut().flat_map(|r| &mut r.ports).chain(egress.iter_mut().flat_map(|r| &mut r.ports));
    for port in ports {
        if port.protocol.is_none() {
            port.protocol = Some("TCP".to_owned());
        }
    }
}
