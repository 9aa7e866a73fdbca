//! Policies as Felix holds them: the combined endpoint selector, the place in a tier, and the
//! converted rules (Calico's `networkpolicyprocessor.go`,
//! `globalnetworkpolicyprocessor.go`, `k8s/conversion/conversion.go`).

use std::borrow::Cow;
use std::collections::BTreeMap;

use alp_proto::felix::{Policy, PolicyId};
use alp_resources::{KUBERNETES_NETWORK_POLICY_ORDER, KUBERNETES_NETWORK_POLICY_TIER};
use alp_resources::{Kind, PolicyType, PolicyView, Resource, ResourceKey, Rule, StagedAction};
use alp_selector::Selector;

use crate::convert::{
    BadSelector, ConvertedRules, IpSetDef, LABEL_NAMESPACE, NAMESPACE_LABEL_PREFIX, SERVICE_ACCOUNT_LABEL_PREFIX,
    prefix_and_append,
};
use crate::k8s::{k8s_policy_selector, k8s_rules};

/// A policy's identity in Felix's model (`model.PolicyKey`): kind, namespace (empty for global
/// kinds) and name. A Kubernetes NetworkPolicy keeps its Kubernetes name under kind
/// `KubernetesNetworkPolicy`, as Calico HEAD's conversion names it (older releases used
/// `knp.default.<name>`); a StagedKubernetesNetworkPolicy likewise keeps its name under its own
/// kind.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct PolicyKey {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
}

impl PolicyKey {
    /// The policy a resource key stands for, if it is a policy kind.
    pub fn for_resource(key: &ResourceKey) -> Option<PolicyKey> {
        key.kind.is_policy().then(|| PolicyKey {
            kind: key.kind,
            namespace: key.namespace.clone().unwrap_or_default(),
            name: key.name.clone(),
        })
    }

    /// As a proto `PolicyID`.
    pub fn to_proto(&self) -> PolicyId {
        PolicyId { name: self.name.clone(), namespace: self.namespace.clone(), kind: self.kind.as_str().to_owned() }
    }

    /// The tie-break among policies of equal order (`policy_sorter.go` at HEAD):
    /// `"<name>/<namespace>/<kind>"`.
    pub fn tie_break(&self) -> String {
        format!("{}/{}/{}", self.name, self.namespace, self.kind.as_str())
    }
}

/// A policy that can apply to workload endpoints, converted.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PolicyDef {
    /// Its tier's name.
    pub tier: String,
    /// Its order; `+inf` when the policy has none.
    pub order: f64,
    /// Whether it goes in a tier's `ingress_policies` / `egress_policies`.
    pub ingress: bool,
    pub egress: bool,
    /// The combined endpoint selector; `None` when it does not parse (selects nothing).
    pub selector: Option<Selector>,
    /// A namespaced policy's namespace: its selector requires
    /// `projectcalico.org/namespace == '<ns>'` (an index hint).
    pub namespace: Option<String>,
    /// The rules and policy-level fields as sent.
    pub policy: Policy,
    /// The IP sets its rules name.
    pub ip_sets: BTreeMap<String, IpSetDef>,
}

impl PolicyDef {
    /// Whether the policy selects an endpoint with these (inherited-included) labels.
    pub fn selects(&self, labels: &BTreeMap<String, String>) -> bool {
        self.selector.as_ref().is_some_and(|s| s.matches(labels))
    }
}

/// What a policy resource says, whatever its kind, with a Kubernetes policy's rules and pod
/// selector converted to Calico's.
struct Spec<'a> {
    namespace: Option<&'a str>,
    tier: &'a str,
    order: Option<f64>,
    ingress: Cow<'a, [Rule]>,
    egress: Cow<'a, [Rule]>,
    selector: Cow<'a, str>,
    types: &'a [PolicyType],
    namespace_selector: &'a str,
    service_account_selector: &'a str,
}

/// The policy key and definition of a policy resource: `None` if the resource is not a policy,
/// `Some((key, None))` for a policy that never applies to workload endpoints (`doNotTrack`,
/// `preDNAT`, or a staged deletion).
pub(crate) fn policy_from_resource(resource: &Resource) -> Option<(PolicyKey, Option<PolicyDef>)> {
    let view = resource.as_policy()?;
    let key = PolicyKey::for_resource(&resource.key())?;
    let namespace = resource.namespace();
    let (spec, host_only) = match view {
        PolicyView::Calico(p) => (
            Spec {
                namespace,
                tier: p.tier,
                order: p.order,
                ingress: Cow::Borrowed(p.ingress),
                egress: Cow::Borrowed(p.egress),
                selector: Cow::Borrowed(p.selector),
                types: p.types,
                namespace_selector: p.namespace_selector,
                service_account_selector: p.service_account_selector,
            },
            p.do_not_track || p.pre_dnat,
        ),
        PolicyView::Kubernetes(p) => {
            let (ingress, egress) = k8s_rules(p.ingress, p.egress);
            let spec = Spec {
                namespace,
                tier: KUBERNETES_NETWORK_POLICY_TIER,
                order: Some(KUBERNETES_NETWORK_POLICY_ORDER),
                ingress: Cow::Owned(ingress),
                egress: Cow::Owned(egress),
                selector: Cow::Owned(k8s_policy_selector(p.pod_selector)),
                types: p.policy_types,
                namespace_selector: "",
                service_account_selector: "",
            };
            (spec, false)
        }
    };
    if host_only || view.staged_action() == Some(StagedAction::Delete) {
        return Some((key, None));
    }
    let def = convert_policy(&key, &spec);
    Some((key, Some(def)))
}

/// The endpoint selector Felix evaluates for a policy (`Policy.Selector` after the update
/// processors): for namespaced kinds `(<selector>) && projectcalico.org/namespace == '<ns>'`;
/// for global kinds the `pcns.`-prefixed namespaceSelector appended (with `all()` rewritten to
/// `has(projectcalico.org/namespace)`); then the `pcsa.`-prefixed serviceAccountSelector (for
/// global kinds with `all()` rewritten to `has(projectcalico.org/serviceaccount)`).
fn policy_selector(spec: &Spec<'_>) -> Result<String, BadSelector> {
    let mut selector = spec.selector.clone().into_owned();
    match spec.namespace {
        Some(ns) => {
            let ns_selector = format!("{LABEL_NAMESPACE} == '{ns}'");
            selector = if selector.is_empty() { ns_selector } else { format!("({selector}) && {ns_selector}") };
            prefix_and_append(selector, spec.service_account_selector, SERVICE_ACCOUNT_LABEL_PREFIX)
        }
        None => {
            if !spec.namespace_selector.is_empty() {
                selector = prefix_and_append(selector, spec.namespace_selector, NAMESPACE_LABEL_PREFIX)?
                    .replace("all()", "has(projectcalico.org/namespace)");
            }
            if !spec.service_account_selector.is_empty() {
                selector = prefix_and_append(selector, spec.service_account_selector, SERVICE_ACCOUNT_LABEL_PREFIX)?
                    .replace("all()", "has(projectcalico.org/serviceaccount)");
            }
            Ok(selector)
        }
    }
}

fn convert_policy(key: &PolicyKey, spec: &Spec<'_>) -> PolicyDef {
    let selector = policy_selector(spec).and_then(|s| Selector::parse(&s).map_err(|_| BadSelector)).ok();
    let rules = ConvertedRules::new(
        &spec.ingress,
        &spec.egress,
        spec.namespace,
        &format!("pol-in-default/{}", key.name),
        &format!("pol-out-default/{}", key.name),
    );
    let (ingress, egress) = if spec.types.is_empty() {
        (true, true)
    } else {
        (spec.types.contains(&PolicyType::Ingress), spec.types.contains(&PolicyType::Egress))
    };
    let tier = if spec.tier.is_empty() { alp_resources::DEFAULT_TIER } else { spec.tier };
    PolicyDef {
        tier: tier.to_owned(),
        order: spec.order.unwrap_or(f64::INFINITY),
        ingress,
        egress,
        policy: Policy {
            namespace: spec.namespace.unwrap_or_default().to_owned(),
            inbound_rules: rules.inbound,
            outbound_rules: rules.outbound,
            untracked: false,
            pre_dnat: false,
            original_selector: selector.as_ref().map(ToString::to_string).unwrap_or_default(),
            tier: tier.to_owned(),
        },
        selector,
        namespace: spec.namespace.filter(|ns| !ns.is_empty()).map(str::to_owned),
        ip_sets: rules.ip_sets,
    }
}
