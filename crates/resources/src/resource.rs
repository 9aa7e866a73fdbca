//! [`Resource`]: one enum over every kind alp reads, with its [`Kind`] and [`ResourceKey`].

use std::fmt;

use serde::{Serialize, Serializer};

use crate::{
    calico::{
        GlobalNetworkPolicy, GlobalNetworkSet, NetworkPolicy, NetworkSet, Profile, StagedGlobalNetworkPolicy,
        StagedKubernetesNetworkPolicy, StagedNetworkPolicy, Tier, WorkloadEndpoint,
    },
    k8s::{KubernetesNetworkPolicy, Namespace, Pod, ServiceAccount},
    meta::ObjectMeta,
    policy::{PolicySpec, PolicyView},
};

/// `projectcalico.org/v3`.
pub const CALICO_API_VERSION: &str = "projectcalico.org/v3";
/// `crd.projectcalico.org/v1`, the Kubernetes-datastore CRD form of the same kinds.
pub const CALICO_CRD_API_VERSION: &str = "crd.projectcalico.org/v1";
/// Kubernetes core `v1`.
pub const K8S_CORE_API_VERSION: &str = "v1";
/// `networking.k8s.io/v1`.
pub const K8S_NETWORKING_API_VERSION: &str = "networking.k8s.io/v1";

/// The namespace given to namespaced resources that name none (as `calicoctl` does).
pub const DEFAULT_NAMESPACE: &str = "default";

/// Every kind alp reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `projectcalico.org/v3` GlobalNetworkPolicy.
    GlobalNetworkPolicy,
    /// `projectcalico.org/v3` NetworkPolicy.
    NetworkPolicy,
    /// `projectcalico.org/v3` StagedGlobalNetworkPolicy.
    StagedGlobalNetworkPolicy,
    /// `projectcalico.org/v3` StagedNetworkPolicy.
    StagedNetworkPolicy,
    /// `projectcalico.org/v3` StagedKubernetesNetworkPolicy.
    StagedKubernetesNetworkPolicy,
    /// `projectcalico.org/v3` Tier.
    Tier,
    /// `projectcalico.org/v3` Profile.
    Profile,
    /// `projectcalico.org/v3` GlobalNetworkSet.
    GlobalNetworkSet,
    /// `projectcalico.org/v3` NetworkSet.
    NetworkSet,
    /// `projectcalico.org/v3` WorkloadEndpoint.
    WorkloadEndpoint,
    /// `networking.k8s.io/v1` NetworkPolicy (Calico's name for it).
    KubernetesNetworkPolicy,
    /// `v1` Pod.
    Pod,
    /// `v1` Namespace.
    Namespace,
    /// `v1` ServiceAccount.
    ServiceAccount,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 14] = [
        Kind::GlobalNetworkPolicy,
        Kind::NetworkPolicy,
        Kind::StagedGlobalNetworkPolicy,
        Kind::StagedNetworkPolicy,
        Kind::StagedKubernetesNetworkPolicy,
        Kind::Tier,
        Kind::Profile,
        Kind::GlobalNetworkSet,
        Kind::NetworkSet,
        Kind::WorkloadEndpoint,
        Kind::KubernetesNetworkPolicy,
        Kind::Pod,
        Kind::Namespace,
        Kind::ServiceAccount,
    ];

    /// The kind's name; `KubernetesNetworkPolicy` for the Kubernetes NetworkPolicy (Calico's
    /// model kind), the `kind:` value otherwise.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::GlobalNetworkPolicy => "GlobalNetworkPolicy",
            Kind::NetworkPolicy => "NetworkPolicy",
            Kind::StagedGlobalNetworkPolicy => "StagedGlobalNetworkPolicy",
            Kind::StagedNetworkPolicy => "StagedNetworkPolicy",
            Kind::StagedKubernetesNetworkPolicy => "StagedKubernetesNetworkPolicy",
            Kind::Tier => "Tier",
            Kind::Profile => "Profile",
            Kind::GlobalNetworkSet => "GlobalNetworkSet",
            Kind::NetworkSet => "NetworkSet",
            Kind::WorkloadEndpoint => "WorkloadEndpoint",
            Kind::KubernetesNetworkPolicy => "KubernetesNetworkPolicy",
            Kind::Pod => "Pod",
            Kind::Namespace => "Namespace",
            Kind::ServiceAccount => "ServiceAccount",
        }
    }

    /// The `kind:` value in a document.
    pub fn type_kind(self) -> &'static str {
        match self {
            Kind::KubernetesNetworkPolicy => "NetworkPolicy",
            other => other.as_str(),
        }
    }

    /// The `apiVersion:` written when serialising (Calico kinds as `projectcalico.org/v3`).
    pub fn api_version(self) -> &'static str {
        match self {
            Kind::KubernetesNetworkPolicy => K8S_NETWORKING_API_VERSION,
            Kind::Pod | Kind::Namespace | Kind::ServiceAccount => K8S_CORE_API_VERSION,
            _ => CALICO_API_VERSION,
        }
    }

    /// Whether resources of this kind live in a namespace.
    pub fn is_namespaced(self) -> bool {
        matches!(
            self,
            Kind::NetworkPolicy
                | Kind::StagedNetworkPolicy
                | Kind::StagedKubernetesNetworkPolicy
                | Kind::NetworkSet
                | Kind::WorkloadEndpoint
                | Kind::KubernetesNetworkPolicy
                | Kind::Pod
                | Kind::ServiceAccount
        )
    }

    /// Whether it is a policy kind (the resources [`Resource::as_policy`] projects).
    pub fn is_policy(self) -> bool {
        self.is_tiered_policy() || matches!(self, Kind::KubernetesNetworkPolicy | Kind::StagedKubernetesNetworkPolicy)
    }

    /// Whether it is a Calico policy kind with a `tier` (GNP, NP and their staged forms).
    pub fn is_tiered_policy(self) -> bool {
        matches!(
            self,
            Kind::GlobalNetworkPolicy
                | Kind::NetworkPolicy
                | Kind::StagedGlobalNetworkPolicy
                | Kind::StagedNetworkPolicy
        )
    }

    /// The kind a document's `apiVersion` and `kind` name, if alp reads it. Calico kinds are
    /// accepted under both `projectcalico.org/v3` and `crd.projectcalico.org/v1`.
    pub fn from_type_meta(api_version: &str, kind: &str) -> Option<Kind> {
        match api_version {
            CALICO_API_VERSION | CALICO_CRD_API_VERSION => {
                Kind::ALL.into_iter().find(|k| k.api_version() == CALICO_API_VERSION && k.type_kind() == kind)
            }
            K8S_CORE_API_VERSION => match kind {
                "Pod" => Some(Kind::Pod),
                "Namespace" => Some(Kind::Namespace),
                "ServiceAccount" => Some(Kind::ServiceAccount),
                _ => None,
            },
            K8S_NETWORKING_API_VERSION => (kind == "NetworkPolicy").then_some(Kind::KubernetesNetworkPolicy),
            _ => None,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What identifies a resource: kind, namespace (namespaced kinds only) and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceKey {
    /// The kind.
    pub kind: Kind,
    /// The namespace, `None` for cluster-scoped kinds.
    pub namespace: Option<String>,
    /// The name (for default-tier policies, without a legacy `default.` prefix).
    pub name: String,
}

/// `Kind namespace/name` or `Kind name`.
impl fmt::Display for ResourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// One resource of any kind alp reads.
///
/// Resources from [`crate::parse_documents`] are defaulted (see [`Resource::apply_defaults`])
/// and valid (see [`Resource::validate`]). Serialising writes `apiVersion` and `kind` first
/// (Calico kinds as `projectcalico.org/v3`); parsing that output gives the same resource.
#[derive(Clone, Debug, PartialEq)]
#[allow(missing_docs)]
pub enum Resource {
    GlobalNetworkPolicy(GlobalNetworkPolicy),
    NetworkPolicy(NetworkPolicy),
    StagedGlobalNetworkPolicy(StagedGlobalNetworkPolicy),
    StagedNetworkPolicy(StagedNetworkPolicy),
    StagedKubernetesNetworkPolicy(StagedKubernetesNetworkPolicy),
    Tier(Tier),
    Profile(Profile),
    GlobalNetworkSet(GlobalNetworkSet),
    NetworkSet(NetworkSet),
    WorkloadEndpoint(WorkloadEndpoint),
    KubernetesNetworkPolicy(KubernetesNetworkPolicy),
    Pod(Pod),
    Namespace(Namespace),
    ServiceAccount(ServiceAccount),
}

/// The one list of variants: calls `$body` with `$r` bound to the inner struct, whatever the
/// variant; or, in the second form, `$policy` for the policy kinds (their `spec` a
/// [`PolicySpec`]) and `$other` for the rest.
macro_rules! each {
    ($self:expr, $r:ident => $body:expr) => {
        each!($self, policy $r => $body, other $r => $body)
    };
    ($self:expr, policy $p:pat => $policy:expr, other $o:pat => $other:expr) => {
        match $self {
            Resource::GlobalNetworkPolicy($p) => $policy,
            Resource::NetworkPolicy($p) => $policy,
            Resource::StagedGlobalNetworkPolicy($p) => $policy,
            Resource::StagedNetworkPolicy($p) => $policy,
            Resource::StagedKubernetesNetworkPolicy($p) => $policy,
            Resource::KubernetesNetworkPolicy($p) => $policy,
            Resource::Tier($o) => $other,
            Resource::Profile($o) => $other,
            Resource::GlobalNetworkSet($o) => $other,
            Resource::NetworkSet($o) => $other,
            Resource::WorkloadEndpoint($o) => $other,
            Resource::Pod($o) => $other,
            Resource::Namespace($o) => $other,
            Resource::ServiceAccount($o) => $other,
        }
    };
}

impl Resource {
    /// The kind.
    pub fn kind(&self) -> Kind {
        match self {
            Resource::GlobalNetworkPolicy(_) => Kind::GlobalNetworkPolicy,
            Resource::NetworkPolicy(_) => Kind::NetworkPolicy,
            Resource::StagedGlobalNetworkPolicy(_) => Kind::StagedGlobalNetworkPolicy,
            Resource::StagedNetworkPolicy(_) => Kind::StagedNetworkPolicy,
            Resource::StagedKubernetesNetworkPolicy(_) => Kind::StagedKubernetesNetworkPolicy,
            Resource::Tier(_) => Kind::Tier,
            Resource::Profile(_) => Kind::Profile,
            Resource::GlobalNetworkSet(_) => Kind::GlobalNetworkSet,
            Resource::NetworkSet(_) => Kind::NetworkSet,
            Resource::WorkloadEndpoint(_) => Kind::WorkloadEndpoint,
            Resource::KubernetesNetworkPolicy(_) => Kind::KubernetesNetworkPolicy,
            Resource::Pod(_) => Kind::Pod,
            Resource::Namespace(_) => Kind::Namespace,
            Resource::ServiceAccount(_) => Kind::ServiceAccount,
        }
    }

    /// The metadata.
    pub fn metadata(&self) -> &ObjectMeta {
        each!(self, r => &r.metadata)
    }

    /// The metadata, mutably.
    pub fn metadata_mut(&mut self) -> &mut ObjectMeta {
        each!(self, r => &mut r.metadata)
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.metadata().name
    }

    /// The namespace; `None` for cluster-scoped kinds (whatever the metadata says).
    pub fn namespace(&self) -> Option<&str> {
        if self.kind().is_namespaced() { self.metadata().namespace.as_deref() } else { None }
    }

    /// Kind, namespace and name.
    pub fn key(&self) -> ResourceKey {
        ResourceKey { kind: self.kind(), namespace: self.namespace().map(str::to_owned), name: self.name().to_owned() }
    }

    /// The spec of a policy kind (Calico's tiered policies, Kubernetes NetworkPolicies and their
    /// staged forms), borrowed; `None` for other kinds.
    pub fn as_policy(&self) -> Option<PolicyView<'_>> {
        each!(self, policy p => Some(p.spec.view()), other _ => None)
    }

    /// Applies Calico's (and Kubernetes') defaults in place; [`crate::parse_documents`] has
    /// already done this. Idempotent.
    ///
    /// * namespaced kinds without a namespace get `default`; cluster-scoped kinds lose theirs;
    /// * policies: empty `tier` → `default`; in the default tier a legacy `default.` name
    ///   prefix is stripped; empty `types` → defaulted from the rules
    ///   ([`default_policy_types`](crate::calico::default_policy_types));
    /// * Kubernetes NetworkPolicies (and staged ones): empty `policyTypes` → `Ingress` (+
    ///   `Egress` with egress rules); ports without a protocol → `TCP`;
    /// * pod container ports without a protocol → `TCP`;
    /// * a Tier's absent `defaultAction` is already `Deny` when decoded.
    pub fn apply_defaults(&mut self) {
        let namespaced = self.kind().is_namespaced();
        let meta = self.metadata_mut();
        if namespaced {
            if meta.namespace.as_deref().is_none_or(str::is_empty) {
                meta.namespace = Some(DEFAULT_NAMESPACE.to_owned());
            }
        } else {
            meta.namespace = None;
        }
        each!(self, policy p => p.spec.apply_defaults(&mut p.metadata.name), other _ => {});
        if let Resource::Pod(p) = self {
            let spec = &mut p.spec;
            for port in spec.containers.iter_mut().chain(&mut spec.init_containers).flat_map(|c| &mut c.ports) {
                if port.protocol.is_none() {
                    port.protocol = Some("TCP".to_owned());
                }
            }
        }
    }
}

#[derive(Serialize)]
struct Typed<'a, T> {
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    kind: &'static str,
    #[serde(flatten)]
    inner: &'a T,
}

impl Serialize for Resource {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let kind = self.kind();
        each!(self, r => Typed { api_version: kind.api_version(), kind: kind.type_kind(), inner: r }.serialize(serializer))
    }
}
