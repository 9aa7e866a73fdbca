use std::sync::{Arc, OnceLock};

use alp_ipset::IpSet;
use alp_model::{Direction, Endpoint, Policy, PolicyId, Profile, Scope, SetRef};

use crate::{
    contents::Contents,
    labels::LabelMap,
    plan::Plan,
    store::{Config, Store},
};

/// An immutable, fully compiled view of one store at one moment. Checks read it through an
/// `Arc` (the server keeps it in an `ArcSwap`), so an update never blocks a check.
#[derive(Debug)]
pub struct Snapshot {
    pub(crate) config: Arc<Config>,
    pub(crate) contents: Contents,
    /// Plans by (direction, scope); ingress/enforced is built eagerly, the rest on first use.
    plans: [OnceLock<Plan>; 4],
}

fn plan_slot(direction: Direction, scope: Scope) -> usize {
    (direction as usize) * 2 + scope as usize
}

impl Store {
    /// An immutable view of the current state, with the authorizer's plan (ingress, enforced)
    /// compiled and indexed. Cheap when little changed: compiled policies and sets are shared.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        Arc::new(Snapshot::build(self))
    }
}

impl Snapshot {
    fn build(store: &Store) -> Snapshot {
        let snap =
            Snapshot { config: store.config().clone(), contents: store.contents.clone(), plans: Default::default() };
        snap.plan(Direction::Ingress, Scope::Enforced);
        snap
    }

    /// The walk plan for a direction and scope.
    pub(crate) fn plan(&self, direction: Direction, scope: Scope) -> &Plan {
        let slot = plan_slot(direction, scope);
        // `plans` has exactly the four slots `plan_slot` can name.
        #[allow(clippy::indexing_slicing)]
        self.plans[slot].get_or_init(|| Plan::build(&self.contents, direction, scope))
    }

    pub(crate) fn set(&self, r: SetRef) -> Option<&IpSet> {
        self.contents.set(r)
    }

    pub(crate) fn set_name(&self, r: SetRef) -> &str {
        self.contents.set_name(r)
    }

    /// The IP set with Felix id `id`.
    pub fn ip_set(&self, id: &str) -> Option<&IpSet> {
        let i = self.contents.set_names.iter().position(|n| &**n == id)?;
        self.contents.sets.get(i).and_then(|s| s.as_deref())
    }

    /// The compiled policy stored under `id`.
    pub fn policy(&self, id: &PolicyId) -> Option<&Policy> {
        self.contents.policies.get(id).map(|p| &**p)
    }

    /// The compiled profile stored under `name`.
    pub fn profile(&self, name: &str) -> Option<&Profile> {
        self.contents.profiles.get(name).map(|p| &**p)
    }

    /// The local endpoint, once Felix has sent it.
    pub fn endpoint(&self) -> Option<&Endpoint> {
        self.contents.endpoint.as_deref()
    }

    /// Labels of a service account, as the last `ServiceAccountUpdate` gave them.
    pub fn service_account_labels(&self, namespace: &str, name: &str) -> Option<&LabelMap> {
        self.contents.service_accounts.get(namespace)?.get(name).map(|l| &**l)
    }

    /// Labels of a namespace, as the last `NamespaceUpdate` gave them.
    pub fn namespace_labels(&self, name: &str) -> Option<&LabelMap> {
        self.contents.namespaces.get(name).map(|l| &**l)
    }

    /// True once a `WorkloadEndpointUpdate` has been seen (and not removed).
    pub fn has_endpoint(&self) -> bool {
        self.contents.endpoint.is_some()
    }

    /// Number of policies held.
    pub fn policy_count(&self) -> usize {
        self.contents.policies.len()
    }

    /// Number of IP sets held, and their members in total.
    pub fn ip_set_stats(&self) -> (usize, usize) {
        self.contents.sets.iter().flatten().fold((0, 0), |(n, m), s| (n + 1, m + s.len()))
    }

    /// Approximate heap bytes of the IP sets (the bulk of a large snapshot).
    pub fn ip_set_heap_bytes(&self) -> usize {
        self.contents.sets.iter().flatten().map(|s| s.heap_bytes()).sum()
    }
}
