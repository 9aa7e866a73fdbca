//! `projectcalico.org/v3` kinds (also read in their `crd.projectcalico.org/v1` form, which has the
//! same spec): policies, tiers, profiles, network sets and workload endpoints.
//!
//! Policy and profile specs reject unknown fields (see [`crate::rule`]); network sets and
//! workload endpoints accept and ignore them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{
    k8s::{K8sEgressRule, K8sIngressRule, LabelSelector},
    meta::{ObjectMeta, is_false, null_default},
    policy::{CalicoPolicyView, PolicyScope, PolicySpec, PolicyView, StagedAction, field_or, kubernetes_policy_spec},
    rule::{PolicyType, Protocol, Rule},
};

/// Name of the default tier, the tier of policies that name none.
pub const DEFAULT_TIER: &str = "default";
/// The tier Calico puts converted Kubernetes NetworkPolicies in.
pub const KUBERNETES_NETWORK_POLICY_TIER: &str = DEFAULT_TIER;
/// Calico's order for converted Kubernetes NetworkPolicies (`conversion.go`).
pub const KUBERNETES_NETWORK_POLICY_ORDER: f64 = 1000.0;
/// Name of the built-in tier for Kubernetes AdminNetworkPolicy.
pub const KUBE_ADMIN_TIER: &str = "kube-admin";
/// Name of the built-in tier for Kubernetes BaselineAdminNetworkPolicy.
pub const KUBE_BASELINE_TIER: &str = "kube-baseline";
/// Order of the `kube-admin` tier.
pub const KUBE_ADMIN_TIER_ORDER: f64 = 1_000.0;
/// Order of the `default` tier.
pub const DEFAULT_TIER_ORDER: f64 = 1_000_000.0;
/// Order of the `kube-baseline` tier.
pub const KUBE_BASELINE_TIER_ORDER: f64 = 10_000_000.0;
/// Legacy name prefix stripped from default-tier policy names (Calico names carry no tier prefix
/// since 3.30).
pub const LEGACY_DEFAULT_TIER_PREFIX: &str = "default.";
/// The one valid `performanceHints` value.
pub const PERFORMANCE_HINT_ASSUME_NEEDED: &str = "AssumeNeededOnEveryNode";

/// Maximum number of rules per direction in a policy or profile.
pub const MAX_RULES_PER_DIRECTION: usize = 1024;

/// A tier's action for traffic that no policy in the tier decided.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TierDefaultAction {
    /// Deny (the default when `defaultAction` is absent).
    #[default]
    Deny,
    /// Go on to the next tier.
    Pass,
}

/// Defines the spec of a Calico tiered policy from the one field list its four kinds share, and
/// its [`PolicySpec`]: `scope: Global` adds the fields only global policies have (`doNotTrack`,
/// `preDNAT`, `applyOnForward`, `namespaceSelector`), `staged_action` the staged kinds'
/// `stagedAction`. The fields stand in the documents' order, which serialising and serde's
/// "expected one of" list follow.
macro_rules! calico_policy_spec {
    (@spec $(#[$doc:meta])* $name:ident, $scope:ident, [$($staged_action:ident)?],
        [$($do_not_track:ident $pre_dnat:ident $apply_on_forward:ident $namespace_selector:ident)?]) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        pub struct $name {
            $(
                /// What applying the staged policy would do.
                #[serde(default, deserialize_with = "null_default")]
                pub $staged_action: StagedAction,
            )?
            /// Tier; `default` after parsing when absent.
            #[serde(default, deserialize_with = "null_default")]
            pub tier: String,
            /// Order in the tier; `None` is last.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub order: Option<f64>,
            /// Ingress rules (≤ 1024).
            #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
            pub ingress: Vec<Rule>,
            /// Egress rules (≤ 1024).
            #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
            pub egress: Vec<Rule>,
            /// Endpoint selector (a namespaced policy's: within its namespace).
            #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
            pub selector: String,
            /// Policy types; never empty after parsing (see [`default_policy_types`]).
            #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
            pub types: Vec<PolicyType>,
            $(
                /// `doNotTrack`.
                #[serde(default, deserialize_with = "null_default", skip_serializing_if = "is_false")]
                pub $do_not_track: bool,
                /// `preDNAT`.
                #[serde(rename = "preDNAT", default, deserialize_with = "null_default", skip_serializing_if = "is_false")]
                pub $pre_dnat: bool,
                /// `applyOnForward`.
                #[serde(default, deserialize_with = "null_default", skip_serializing_if = "is_false")]
                pub $apply_on_forward: bool,
            )?
            /// Selector over service account labels.
            #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
            pub service_account_selector: String,
            $(
                /// Selector over namespace labels.
                #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
                pub $namespace_selector: String,
            )?
            /// Performance hints (`AssumeNeededOnEveryNode`).
            #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
            pub performance_hints: Vec<String>,
        }

        impl PolicySpec for $name {
            fn view(&self) -> PolicyView<'_> {
                PolicyView::Calico(CalicoPolicyView {
                    scope: PolicyScope::$scope,
                    staged_action: field_or!(None $(, Some(self.$staged_action))?),
                    tier: &self.tier,
                    order: self.order,
                    ingress: &self.ingress,
                    egress: &self.egress,
                    selector: &self.selector,
                    types: &self.types,
                    do_not_track: field_or!(false $(, self.$do_not_track)?),
                    pre_dnat: field_or!(false $(, self.$pre_dnat)?),
                    apply_on_forward: field_or!(false $(, self.$apply_on_forward)?),
                    service_account_selector: &self.service_account_selector,
                    namespace_selector: field_or!("" $(, &self.$namespace_selector)?),
                    performance_hints: &self.performance_hints,
                })
            }

            fn apply_defaults(&mut self, name: &mut String) {
                normalise_policy_name_and_tier(name, &mut self.tier);
                default_policy_types(&mut self.types, !self.ingress.is_empty(), !self.egress.is_empty());
            }
        }
    };
    ($(#[$doc:meta])* $name:ident { scope: Global $(, $staged_action:ident)? }) => {
        calico_policy_spec!(@spec $(#[$doc])* $name, Global, [$($staged_action)?],
            [do_not_track pre_dnat apply_on_forward namespace_selector]);
    };
    ($(#[$doc:meta])* $name:ident { scope: Namespaced $(, $staged_action:ident)? }) => {
        calico_policy_spec!(@spec $(#[$doc])* $name, Namespaced, [$($staged_action)?], []);
    };
}

calico_policy_spec! {
    /// `GlobalNetworkPolicySpec`.
    GlobalNetworkPolicySpec { scope: Global }
}
calico_policy_spec! {
    /// `NetworkPolicySpec` (namespaced Calico policy).
    NetworkPolicySpec { scope: Namespaced }
}
calico_policy_spec! {
    /// `StagedGlobalNetworkPolicySpec`: a [`GlobalNetworkPolicySpec`] plus `stagedAction`.
    StagedGlobalNetworkPolicySpec { scope: Global, staged_action }
}
calico_policy_spec! {
    /// `StagedNetworkPolicySpec`: a [`NetworkPolicySpec`] plus `stagedAction`.
    StagedNetworkPolicySpec { scope: Namespaced, staged_action }
}

/// `StagedKubernetesNetworkPolicySpec`: `stagedAction` plus a Kubernetes NetworkPolicy spec.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StagedKubernetesNetworkPolicySpec {
    /// What applying the staged policy would do.
    #[serde(default, deserialize_with = "null_default")]
    pub staged_action: StagedAction,
    /// Pods the policy applies to (in its namespace).
    #[serde(default, deserialize_with = "null_default")]
    pub pod_selector: LabelSelector,
    /// Ingress rules.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub ingress: Vec<K8sIngressRule>,
    /// Egress rules.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub egress: Vec<K8sEgressRule>,
    /// Policy types; never empty after parsing (Kubernetes' defaulting).
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub policy_types: Vec<PolicyType>,
}

kubernetes_policy_spec!(StagedKubernetesNetworkPolicySpec, staged_action);

/// `TierSpec`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TierSpec {
    /// Order among tiers; `None` is last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<f64>,
    /// Action when no policy of the tier decided; `Deny` when absent.
    #[serde(default, deserialize_with = "null_default")]
    pub default_action: TierDefaultAction,
}

/// `ProfileSpec`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProfileSpec {
    /// Ingress rules.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub ingress: Vec<Rule>,
    /// Egress rules.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub egress: Vec<Rule>,
    /// Labels the profile gives its endpoints.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "BTreeMap::is_empty")]
    pub labels_to_apply: BTreeMap<String, String>,
}

/// `GlobalNetworkSetSpec` / `NetworkSetSpec`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkSetSpec {
    /// CIDRs (or bare addresses) in the set.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub nets: Vec<String>,
}

/// An `ipNATs` entry of a workload endpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpNat {
    /// `internalIP`.
    #[serde(rename = "internalIP", default, deserialize_with = "null_default")]
    pub internal_ip: String,
    /// `externalIP`.
    #[serde(rename = "externalIP", default, deserialize_with = "null_default")]
    pub external_ip: String,
}

/// A `ports` entry of a workload endpoint (its named ports).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointPort {
    /// Port name.
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    /// Protocol (TCP, UDP or SCTP).
    pub protocol: Protocol,
    /// Port number.
    pub port: u16,
    /// Host port, 0 for none.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "is_zero")]
    pub host_port: u16,
    /// Host IP.
    #[serde(rename = "hostIP", default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub host_ip: String,
}

fn is_zero(v: &u16) -> bool {
    *v == 0
}

/// `WorkloadEndpointSpec`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadEndpointSpec {
    /// Orchestrator (`k8s`, …).
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub orchestrator: String,
    /// Workload id.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub workload: String,
    /// Node name.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub node: String,
    /// Container id.
    #[serde(
        rename = "containerID",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub container_id: String,
    /// Pod name.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub pod: String,
    /// Endpoint id (`eth0`).
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub endpoint: String,
    /// Service account name.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub service_account_name: String,
    /// Addresses (CIDRs, normally /32 and /128).
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub ip_networks: Vec<String>,
    /// NAT mappings.
    #[serde(rename = "ipNATs", default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub ip_nats: Vec<IpNat>,
    /// IPv4 gateway.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub ipv4_gateway: String,
    /// IPv6 gateway.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub ipv6_gateway: String,
    /// Profiles (`kns.<ns>`, `ksa.<ns>.<sa>`).
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<String>,
    /// Host interface name.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub interface_name: String,
    /// MAC address.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub mac: String,
    /// Named ports.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<EndpointPort>,
    /// Source prefixes the endpoint may spoof.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub allow_spoofed_source_prefixes: Vec<String>,
}

macro_rules! resource_struct {
    ($(#[$doc:meta])* $name:ident, $spec:ty) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
        pub struct $name {
            /// Metadata.
            #[serde(default)]
            pub metadata: ObjectMeta,
            /// Spec.
            #[serde(default, deserialize_with = "null_default")]
            pub spec: $spec,
        }
    };
}

resource_struct!(
    /// `GlobalNetworkPolicy` (cluster-scoped).
    GlobalNetworkPolicy,
    GlobalNetworkPolicySpec
);
resource_struct!(
    /// Calico `NetworkPolicy` (namespaced).
    NetworkPolicy,
    NetworkPolicySpec
);
resource_struct!(
    /// `StagedGlobalNetworkPolicy` (cluster-scoped).
    StagedGlobalNetworkPolicy,
    StagedGlobalNetworkPolicySpec
);
resource_struct!(
    /// `StagedNetworkPolicy` (namespaced).
    StagedNetworkPolicy,
    StagedNetworkPolicySpec
);
resource_struct!(
    /// `StagedKubernetesNetworkPolicy` (namespaced).
    StagedKubernetesNetworkPolicy,
    StagedKubernetesNetworkPolicySpec
);
resource_struct!(
    /// `Tier` (cluster-scoped).
    Tier,
    TierSpec
);
resource_struct!(
    /// `Profile` (cluster-scoped).
    Profile,
    ProfileSpec
);
resource_struct!(
    /// `GlobalNetworkSet` (cluster-scoped).
    GlobalNetworkSet,
    NetworkSetSpec
);
resource_struct!(
    /// `NetworkSet` (namespaced).
    NetworkSet,
    NetworkSetSpec
);
resource_struct!(
    /// `WorkloadEndpoint` (namespaced).
    WorkloadEndpoint,
    WorkloadEndpointSpec
);

/// Calico's defaulting of `types` (`defaultPolicyTypesField`): when empty, `[Ingress]` if there
/// are no egress rules, `[Egress]` if there are only egress rules, `[Ingress, Egress]` if both.
/// Explicit types are kept.
pub fn default_policy_types(types: &mut Vec<PolicyType>, has_ingress: bool, has_egress: bool) {
    if !types.is_empty() {
        return;
    }
    match (has_ingress, has_egress) {
        (true, true) => types.extend([PolicyType::Ingress, PolicyType::Egress]),
        (false, true) => types.push(PolicyType::Egress),
        _ => types.push(PolicyType::Ingress),
    }
}

/// Empty tier → `default`; in the default tier, a legacy `default.` name prefix is stripped
/// (`determinePolicyName`). A name that is only the prefix is kept.
pub fn normalise_policy_name_and_tier(name: &mut String, tier: &mut String) {
    if tier.is_empty() {
        DEFAULT_TIER.clone_into(tier);
    }
    if let Some(rest) = policy_name_without_legacy_prefix(name, tier) {
        *name = rest.to_owned();
    }
}

/// The name with the legacy `default.` prefix removed, if it applies (`tier` empty or
/// `default`, and something follows the prefix).
pub fn policy_name_without_legacy_prefix<'a>(name: &'a str, tier: &str) -> Option<&'a str> {
    if !(tier.is_empty() || tier == DEFAULT_TIER) {
        return None;
    }
    name.strip_prefix(LEGACY_DEFAULT_TIER_PREFIX).filter(|rest| !rest.is_empty())
}

/// The three built-in tiers, as Calico creates them: `kube-admin` (order 1000, Pass),
/// `default` (1 000 000, Deny), `kube-baseline` (10 000 000, Pass).
pub fn builtin_tiers() -> Vec<Tier> {
    [
        (KUBE_ADMIN_TIER, KUBE_ADMIN_TIER_ORDER, TierDefaultAction::Pass),
        (DEFAULT_TIER, DEFAULT_TIER_ORDER, TierDefaultAction::Deny),
        (KUBE_BASELINE_TIER, KUBE_BASELINE_TIER_ORDER, TierDefaultAction::Pass),
    ]
    .into_iter()
    .map(|(name, order, default_action)| Tier {
        metadata: ObjectMeta::named(name, None),
        spec: TierSpec { order: Some(order), default_action },
    })
    .collect()
}
