//! One projection of a policy, whatever its kind: every policy kind's spec implements
//! [`PolicySpec`], and [`PolicyView`] (from [`crate::Resource::as_policy`]) is what validation,
//! the defaults and the calculator read of it.
//!
//! Two shapes: Calico's tiered policies (GlobalNetworkPolicy, NetworkPolicy and their staged
//! forms) share one field list ([`CalicoPolicyView`]); Kubernetes NetworkPolicies and
//! StagedKubernetesNetworkPolicies share another ([`KubernetesPolicyView`]). Calico's kinds
//! implement [`PolicySpec`] in [`crate::calico`]; the Kubernetes NetworkPolicy, which knows
//! nothing of Calico, here.

use serde::{Deserialize, Serialize};

use crate::{
    k8s::{K8sEgressRule, K8sIngressRule, KubernetesNetworkPolicySpec, LabelSelector},
    rule::{PolicyType, Rule},
};

/// `stagedAction` of staged policies. Absent means `Set`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StagedAction {
    /// The staged policy would be created or updated.
    #[default]
    Set,
    /// The staged policy would delete its enforced counterpart.
    Delete,
    /// Learn mode.
    Learn,
    /// Ignored.
    Ignore,
}

/// Where a Calico policy applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PolicyScope {
    /// Cluster-wide (GlobalNetworkPolicy, StagedGlobalNetworkPolicy): it may select by
    /// namespace, and a rule's `services` must name a namespace.
    Global,
    /// In its own namespace (NetworkPolicy, StagedNetworkPolicy).
    Namespaced,
}

/// A policy resource's spec, borrowed, whatever its kind.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PolicyView<'a> {
    /// GlobalNetworkPolicy, NetworkPolicy and their staged forms.
    Calico(CalicoPolicyView<'a>),
    /// Kubernetes NetworkPolicy and StagedKubernetesNetworkPolicy.
    Kubernetes(KubernetesPolicyView<'a>),
}

impl PolicyView<'_> {
    /// `stagedAction` for the staged kinds (`Set` when absent), `None` for enforced ones.
    pub fn staged_action(&self) -> Option<StagedAction> {
        match self {
            PolicyView::Calico(p) => p.staged_action,
            PolicyView::Kubernetes(p) => p.staged_action,
        }
    }
}

/// The spec of a Calico tiered policy. Fields a kind does not have read as their zero value
/// (a NetworkPolicy's `namespace_selector` is `""`, its `do_not_track` is `false`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CalicoPolicyView<'a> {
    /// Global or namespaced.
    pub scope: PolicyScope,
    /// `stagedAction` of the staged kinds; `None` for enforced ones.
    pub staged_action: Option<StagedAction>,
    /// Tier (`default` once defaulted).
    pub tier: &'a str,
    /// Order in the tier; `None` is last.
    pub order: Option<f64>,
    /// Ingress rules.
    pub ingress: &'a [Rule],
    /// Egress rules.
    pub egress: &'a [Rule],
    /// Endpoint selector (a namespaced policy's: within its namespace).
    pub selector: &'a str,
    /// Policy types (never empty once defaulted).
    pub types: &'a [PolicyType],
    /// `doNotTrack` (global kinds).
    pub do_not_track: bool,
    /// `preDNAT` (global kinds).
    pub pre_dnat: bool,
    /// `applyOnForward` (global kinds).
    pub apply_on_forward: bool,
    /// Selector over service account labels.
    pub service_account_selector: &'a str,
    /// Selector over namespace labels (global kinds).
    pub namespace_selector: &'a str,
    /// Performance hints.
    pub performance_hints: &'a [String],
}

/// The spec of a Kubernetes NetworkPolicy, enforced or staged.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KubernetesPolicyView<'a> {
    /// `stagedAction` of a StagedKubernetesNetworkPolicy; `None` for a NetworkPolicy.
    pub staged_action: Option<StagedAction>,
    /// Pods the policy applies to (in its namespace).
    pub pod_selector: &'a LabelSelector,
    /// Policy types (never empty once defaulted).
    pub policy_types: &'a [PolicyType],
    /// Ingress rules.
    pub ingress: &'a [K8sIngressRule],
    /// Egress rules.
    pub egress: &'a [K8sEgressRule],
}

/// The spec of a policy kind: implementing it (and listing the kind in
/// [`crate::Resource::as_policy`]) is all a new policy kind needs for validation, defaults and
/// the calculator.
pub trait PolicySpec {
    /// The spec, borrowed.
    fn view(&self) -> PolicyView<'_>;

    /// Calico's (or the API server's) defaults for the spec; `name` is the policy's
    /// `metadata.name` (a default-tier policy loses a legacy `default.` prefix). Idempotent.
    fn apply_defaults(&mut self, name: &mut String);
}

/// `$value` when the kind has the field, `$default` when it does not: how the spec macros
/// ([`kubernetes_policy_spec`], `calico_policy_spec` in [`crate::calico`]) fill a view.
macro_rules! field_or {
    ($default:expr) => {
        $default
    };
    ($default:expr, $value:expr) => {
        $value
    };
}
pub(crate) use field_or;

/// Implements [`PolicySpec`] for a Kubernetes NetworkPolicy spec (`pod_selector`,
/// `policy_types`, `ingress`, `egress`); `staged_action` names the staged kind's field.
macro_rules! kubernetes_policy_spec {
    ($name:ty $(, $staged_action:ident)?) => {
        impl $crate::policy::PolicySpec for $name {
            fn view(&self) -> $crate::policy::PolicyView<'_> {
                $crate::policy::PolicyView::Kubernetes($crate::policy::KubernetesPolicyView {
                    staged_action: $crate::policy::field_or!(None $(, Some(self.$staged_action))?),
                    pod_selector: &self.pod_selector,
                    policy_types: &self.policy_types,
                    ingress: &self.ingress,
                    egress: &self.egress,
                })
            }

            fn apply_defaults(&mut self, _name: &mut String) {
                $crate::k8s::default_k8s_policy(&mut self.policy_types, &mut self.ingress, &mut self.egress);
            }
        }
    };
}
pub(crate) use kubernetes_policy_spec;

kubernetes_policy_spec!(KubernetesNetworkPolicySpec);
