use std::fmt;

/// A policy's key in the store: (name, namespace, kind), as Felix's `PolicyID`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PolicyId {
    /// The policy's name.
    pub name: String,
    /// The policy's namespace; `""` for cluster-scoped kinds.
    pub namespace: String,
    /// The kind's name as Felix sends it (see [`PolicyKind`]).
    pub kind: String,
}

/// The policy kinds Felix names in `PolicyID.kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PolicyKind {
    /// Calico's namespaced `NetworkPolicy`.
    NetworkPolicy,
    /// Calico's cluster-scoped `GlobalNetworkPolicy`.
    GlobalNetworkPolicy,
    /// A staged (not enforced) `NetworkPolicy`.
    StagedNetworkPolicy,
    /// A staged (not enforced) `GlobalNetworkPolicy`.
    StagedGlobalNetworkPolicy,
    /// A staged (not enforced) Kubernetes `NetworkPolicy`.
    StagedKubernetesNetworkPolicy,
    /// A Kubernetes `networking.k8s.io/v1` `NetworkPolicy`.
    KubernetesNetworkPolicy,
    /// A Kubernetes `ClusterNetworkPolicy` (admin network policy).
    KubernetesClusterNetworkPolicy,
}

impl PolicyKind {
    const ALL: [(PolicyKind, &'static str, &'static str); 7] = [
        (PolicyKind::NetworkPolicy, "NetworkPolicy", "np"),
        (PolicyKind::GlobalNetworkPolicy, "GlobalNetworkPolicy", "gnp"),
        (PolicyKind::StagedNetworkPolicy, "StagedNetworkPolicy", "snp"),
        (PolicyKind::StagedGlobalNetworkPolicy, "StagedGlobalNetworkPolicy", "sgnp"),
        (PolicyKind::StagedKubernetesNetworkPolicy, "StagedKubernetesNetworkPolicy", "sknp"),
        (PolicyKind::KubernetesNetworkPolicy, "KubernetesNetworkPolicy", "knp"),
        (PolicyKind::KubernetesClusterNetworkPolicy, "KubernetesClusterNetworkPolicy", "kcnp"),
    ];

    /// Parses Felix's kind string.
    pub fn parse(kind: &str) -> Option<Self> {
        Self::ALL.iter().find(|(_, long, _)| *long == kind).map(|(k, _, _)| *k)
    }

    /// Felix's kind string.
    pub fn as_str(self) -> &'static str {
        Self::ALL.iter().find(|(k, _, _)| *k == self).map_or("", |(_, long, _)| long)
    }

    /// Felix's short form (`np`, `gnp`, …) used in logs and messages.
    pub fn short(self) -> &'static str {
        Self::ALL.iter().find(|(k, _, _)| *k == self).map_or("", |(_, _, s)| s)
    }

    /// Staged kinds are skipped by an enforcing walk.
    pub fn is_staged(self) -> bool {
        matches!(
            self,
            PolicyKind::StagedNetworkPolicy
                | PolicyKind::StagedGlobalNetworkPolicy
                | PolicyKind::StagedKubernetesNetworkPolicy
        )
    }
}

impl PolicyId {
    /// Builds an id from its parts.
    pub fn new(name: impl Into<String>, namespace: impl Into<String>, kind: impl Into<String>) -> Self {
        PolicyId { name: name.into(), namespace: namespace.into(), kind: kind.into() }
    }

    /// The parsed kind, if Felix's kind string is one we know.
    pub fn kind(&self) -> Option<PolicyKind> {
        PolicyKind::parse(&self.kind)
    }

    /// True for the staged kinds.
    pub fn is_staged(&self) -> bool {
        self.kind().is_some_and(PolicyKind::is_staged)
    }
}

impl From<&alp_proto::felix::PolicyId> for PolicyId {
    fn from(id: &alp_proto::felix::PolicyId) -> Self {
        PolicyId::new(id.name.clone(), id.namespace.clone(), id.kind.clone())
    }
}

/// `np/ns1/policy1`, or `gnp/policy1` for cluster-scoped policies, as Felix prints ids.
impl fmt::Display for PolicyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind: &str = match self.kind() {
            Some(k) => k.short(),
            None => &self.kind,
        };
        if self.namespace.is_empty() {
            write!(f, "{kind}/{}", self.name)
        } else {
            write!(f, "{kind}/{}/{}", self.namespace, self.name)
        }
    }
}
