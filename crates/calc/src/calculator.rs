//! The calculator: datastore resources in, Felix's calc-graph output out.

use std::{
    borrow::Borrow,
    collections::{BTreeMap, BTreeSet},
};

use alp_proto::felix::{
    ActivePolicyRemove, ActivePolicyUpdate, ActiveProfileRemove, ActiveProfileUpdate, InSync, IpSetDeltaUpdate,
    IpSetRemove, IpSetUpdate, NamespaceId, NamespaceRemove, NamespaceUpdate, Policy, Profile, ProfileId,
    ServiceAccountId, ServiceAccountRemove, ServiceAccountUpdate, TierInfo, ToDataplane, WorkloadEndpoint,
    WorkloadEndpointRemove, WorkloadEndpointUpdate, ip_set_update::IpSetType, to_dataplane::Payload,
};
use alp_resources::{Action, Kind, ProfileSpec, Resource, ResourceKey, Rule, TierDefaultAction, TierSpec};
use rustc_hash::{FxHashMap, FxHashSet};

use alp_datastore::Event;
use alp_felix::{namespace_of_profile, namespace_profile, service_account_of_profile, service_account_profile};

use crate::WorkloadKey;
use crate::convert::{
    ConvertedRules, IpSetDef, LABEL_NAME, LABEL_NAMESPACE, NAMESPACE_LABEL_PREFIX, SERVICE_ACCOUNT_LABEL_PREFIX,
};
use crate::items::{ItemData, ItemKey, global_network_set_item, network_set_item, pod_item, wep_item};
use crate::policy::{PolicyDef, PolicyKey, policy_from_resource};

/// The profile Calico synthesises in the Kubernetes datastore for host endpoints: allow all.
pub const DEFAULT_ALLOW_PROFILE: &str = "projectcalico-default-allow";

/// Felix's calculation graph for the policy-sync API, as a pure state machine.
///
/// Feed it the datastore's resources with [`Calculator::apply`] and [`Calculator::delete`], and
/// [`Calculator::in_sync`] once the initial listing is complete. Each call returns what Felix's
/// calc graph would send to its policy-sync processor for that change — one global stream for
/// all local workloads, in the flush order of Felix's `event_sequencer.go`: IP-set adds, IP-set
/// deltas, policy updates, profile updates, endpoint updates, endpoint removes, profile
/// removes, policy removes, IP-set removes, service accounts, namespaces. Only what changed is
/// sent.
///
/// * Workloads come from Pods (scheduled, not host-networked, with addresses) or v3
///   WorkloadEndpoints; they are local when on [`Calculator::new`]'s node. Every workload and
///   network set in the datastore feeds IP-set membership; only local ones get endpoint updates.
/// * A policy is active while it selects at least one local workload; a profile while a local
///   workload names it; an IP set while an active policy or profile names it.
/// * Indexes are incremental: a workload change re-evaluates that workload against the active
///   IP sets and (if local) the policies; a policy change evaluates its selector against the
///   local workloads and builds only the IP sets that become active; a namespace or service
///   account label change re-evaluates the items that inherit from its profile. Items,
///   policies and IP sets are also indexed by namespace: a namespaced policy's selector and
///   its rules' default-scoped selectors are only evaluated against items of that namespace.
#[derive(Debug)]
pub struct Calculator {
    node: Option<String>,
    builtin_tiers: BTreeMap<String, TierSpec>,
    tiers: BTreeMap<String, TierSpec>,
    namespaces: BTreeMap<String, BTreeMap<String, String>>,
    service_accounts: BTreeMap<(String, String), BTreeMap<String, String>>,
    explicit_profiles: BTreeMap<String, ProfileSpec>,

    /// Effective profiles by name (explicit, or derived from a namespace or service account).
    profiles: FxHashMap<String, ProfileData>,
    policies: BTreeMap<PolicyKey, PolicyDef>,
    /// Policies by [`PolicyDef::namespace`] (`None`: global kinds).
    policies_by_ns: FxHashMap<Option<String>, BTreeSet<PolicyKey>>,
    items: FxHashMap<ItemKey, Item>,
    /// Items by their `projectcalico.org/namespace` label (items without it are not here).
    items_by_ns: FxHashMap<String, FxHashSet<ItemKey>>,
    items_by_profile: FxHashMap<String, FxHashSet<ItemKey>>,
    local_eps: BTreeSet<ItemKey>,
    /// Local workload → the policies selecting it, and back (only non-empty entries).
    ep_policies: FxHashMap<ItemKey, BTreeSet<PolicyKey>>,
    policy_eps: FxHashMap<PolicyKey, FxHashSet<ItemKey>>,
    /// Profile → the local workloads naming it (only non-empty entries).
    profile_refs: FxHashMap<String, FxHashSet<ItemKey>>,
    /// The IP sets each active policy or profile holds a reference on.
    owner_sets: FxHashMap<Owner, Vec<String>>,
    ip_sets: FxHashMap<String, IpSetState>,
    /// Active IP sets by [`IpSetDef::namespace`].
    sets_by_ns: FxHashMap<Option<String>, FxHashSet<String>>,

    sent: Sent,
    pending: Pending,
    in_sync_sent: bool,
}

/// An item with its labels after profile inheritance.
#[derive(Debug)]
struct Item {
    data: ItemData,
    labels: BTreeMap<String, String>,
}

/// A profile: the labels it gives its endpoints and its converted rules.
#[derive(Clone, Debug, PartialEq)]
struct ProfileData {
    labels: BTreeMap<String, String>,
    rules: ConvertedRules,
}

/// What holds references on IP sets.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Owner {
    Policy(PolicyKey),
    Profile(String),
}

/// An active IP set: its members with a count of contributing items, and each item's share.
#[derive(Debug)]
struct IpSetState {
    def: IpSetDef,
    refs: usize,
    members: FxHashMap<String, u32>,
    contrib: FxHashMap<ItemKey, Vec<String>>,
}

/// What has been sent (the downstream processor's view).
#[derive(Debug, Default)]
struct Sent {
    ip_sets: FxHashSet<String>,
    policies: FxHashMap<PolicyKey, Policy>,
    profiles: FxHashMap<String, Profile>,
    endpoints: FxHashMap<ItemKey, WorkloadEndpointUpdate>,
    service_accounts: BTreeMap<(String, String), BTreeMap<String, String>>,
    namespaces: BTreeMap<String, BTreeMap<String, String>>,
}

/// Membership changes of a sent IP set since the last flush.
#[derive(Debug, Default)]
struct Delta {
    added: BTreeSet<String>,
    removed: BTreeSet<String>,
}

/// What the current call may have changed; the flush compares it with what was sent.
#[derive(Debug, Default)]
struct Pending {
    endpoints: BTreeSet<ItemKey>,
    policies: BTreeSet<PolicyKey>,
    profiles: BTreeSet<String>,
    namespaces: BTreeSet<String>,
    service_accounts: BTreeSet<(String, String)>,
    new_sets: BTreeSet<String>,
    removed_sets: BTreeSet<String>,
    deltas: BTreeMap<String, Delta>,
}

impl Pending {
    fn member_added(&mut self, id: &str, member: &str) {
        if self.new_sets.contains(id) {
            return;
        }
        let d = self.deltas.entry(id.to_owned()).or_default();
        if !d.removed.remove(member) {
            d.added.insert(member.to_owned());
        }
    }

    fn member_removed(&mut self, id: &str, member: &str) {
        if self.new_sets.contains(id) {
            return;
        }
        let d = self.deltas.entry(id.to_owned()).or_default();
        if !d.added.remove(member) {
            d.removed.insert(member.to_owned());
        }
    }
}

/// The members an item gives an IP set it matches (sorted, without duplicates).
fn members_for(data: &ItemData, def: &IpSetDef) -> Vec<String> {
    let mut out = match &def.named_port {
        None => data.nets.clone(),
        Some(np) => match &data.endpoint {
            None => Vec::new(),
            Some(ep) => ep
                .addrs
                .iter()
                .flat_map(|addr| {
                    ep.ports
                        .iter()
                        .filter(|p| p.name == np.name && p.protocol == np.protocol)
                        .map(move |p| format!("{addr},{}:{}", p.protocol, p.port))
                })
                .collect(),
        },
    };
    out.sort();
    out.dedup();
    out
}

/// Brings one item's contribution to one IP set up to date.
fn reindex_in_set(set: &mut IpSetState, key: &ItemKey, item: Option<&Item>, pending: &mut Pending) {
    let new = item
        .filter(|i| set.def.selector.matches(&i.labels))
        .map(|i| members_for(&i.data, &set.def))
        .unwrap_or_default();
    let old = set.contrib.remove(key).unwrap_or_default();
    if new != old {
        for m in old.iter().filter(|m| new.binary_search(m).is_err()) {
            if let Some(count) = set.members.get_mut(m) {
                *count -= 1;
                if *count == 0 {
                    set.members.remove(m);
                    pending.member_removed(&set.def.id, m);
                }
            }
        }
        for m in new.iter().filter(|m| old.binary_search(m).is_err()) {
            let count = set.members.entry(m.clone()).or_insert(0);
            *count += 1;
            if *count == 1 {
                pending.member_added(&set.def.id, m);
            }
        }
    }
    if !new.is_empty() {
        set.contrib.insert(key.clone(), new);
    }
}

/// `ksa.<namespace>.<name>` → (namespace, name), owned.
fn service_account_key(profile: &str) -> Option<(String, String)> {
    service_account_of_profile(profile).map(|(ns, sa)| (ns.to_owned(), sa.to_owned()))
}

/// `decodeLabels`: a profile's labels with the `pcns.`/`pcsa.` prefix stripped.
fn decode_labels(labels: &BTreeMap<String, String>, prefix: &str) -> BTreeMap<String, String> {
    labels.iter().map(|(k, v)| (k.strip_prefix(prefix).unwrap_or(k).to_owned(), v.clone())).collect()
}

/// Felix's stand-in for a profile an endpoint names but the datastore lacks
/// (`DummyDropRules`): deny both ways.
fn dummy_drop_profile(name: &str) -> Profile {
    ConvertedRules::for_profile(name, &[Rule::new(Action::Deny)], &[Rule::new(Action::Deny)]).to_profile()
}

impl Calculator {
    /// A calculator for the workloads of `node` (Pods with `spec.nodeName == node`,
    /// WorkloadEndpoints with `spec.node == node`); `None` makes every workload local.
    pub fn new(node: Option<String>) -> Self {
        let mut calc = Calculator {
            node,
            builtin_tiers: alp_resources::builtin_tiers().into_iter().map(|t| (t.metadata.name, t.spec)).collect(),
            tiers: BTreeMap::new(),
            namespaces: BTreeMap::new(),
            service_accounts: BTreeMap::new(),
            explicit_profiles: BTreeMap::new(),
            profiles: FxHashMap::default(),
            policies: BTreeMap::new(),
            policies_by_ns: FxHashMap::default(),
            items: FxHashMap::default(),
            items_by_ns: FxHashMap::default(),
            items_by_profile: FxHashMap::default(),
            local_eps: BTreeSet::new(),
            ep_policies: FxHashMap::default(),
            policy_eps: FxHashMap::default(),
            profile_refs: FxHashMap::default(),
            owner_sets: FxHashMap::default(),
            ip_sets: FxHashMap::default(),
            sets_by_ns: FxHashMap::default(),
            sent: Sent::default(),
            pending: Pending::default(),
            in_sync_sent: false,
        };
        if let Some(p) = calc.compute_profile(DEFAULT_ALLOW_PROFILE) {
            calc.profiles.insert(DEFAULT_ALLOW_PROFILE.to_owned(), p);
        }
        calc
    }

    /// Adds or replaces a resource; returns what that changes downstream.
    pub fn apply(&mut self, resource: impl Borrow<Resource>) -> Vec<ToDataplane> {
        let resource = resource.borrow();
        if let Some((key, def)) = policy_from_resource(resource) {
            self.set_policy(key, def);
            return self.flush();
        }
        let node = self.node.clone();
        let node = node.as_deref();
        match resource {
            Resource::Tier(t) => {
                self.tiers.insert(t.metadata.name.clone(), t.spec.clone());
                self.touch_all_endpoints();
            }
            Resource::Profile(p) => {
                let name = p.metadata.name.clone();
                self.explicit_profiles.insert(name.clone(), p.spec.clone());
                self.refresh_profile(&name);
            }
            Resource::Namespace(n) => {
                let name = n.metadata.name.clone();
                self.namespaces.insert(name.clone(), n.metadata.labels.clone());
                self.refresh_profile(&namespace_profile(&name));
            }
            Resource::ServiceAccount(sa) => {
                let ns = sa.metadata.namespace.clone().unwrap_or_default();
                let name = sa.metadata.name.clone();
                let profile = service_account_profile(&ns, &name);
                self.service_accounts.insert((ns, name), sa.metadata.labels.clone());
                self.refresh_profile(&profile);
            }
            Resource::Pod(p) => {
                let key = ItemKey::Pod(p.metadata.namespace.clone().unwrap_or_default(), p.metadata.name.clone());
                self.put_item(key, pod_item(p, node));
            }
            Resource::WorkloadEndpoint(w) => {
                let key = ItemKey::WorkloadEndpoint(
                    w.metadata.namespace.clone().unwrap_or_default(),
                    w.metadata.name.clone(),
                );
                self.put_item(key, wep_item(w, node));
            }
            Resource::NetworkSet(s) => {
                let key =
                    ItemKey::NetworkSet(s.metadata.namespace.clone().unwrap_or_default(), s.metadata.name.clone());
                self.put_item(key, Some(network_set_item(s)));
            }
            Resource::GlobalNetworkSet(s) => {
                let key = ItemKey::GlobalNetworkSet(s.metadata.name.clone());
                self.put_item(key, Some(global_network_set_item(s)));
            }
            // Policy kinds were handled above.
            Resource::GlobalNetworkPolicy(_)
            | Resource::NetworkPolicy(_)
            | Resource::StagedGlobalNetworkPolicy(_)
            | Resource::StagedNetworkPolicy(_)
            | Resource::StagedKubernetesNetworkPolicy(_)
            | Resource::KubernetesNetworkPolicy(_) => {}
        }
        self.flush()
    }

    /// Removes a resource; returns what that changes downstream.
    pub fn delete(&mut self, key: &ResourceKey) -> Vec<ToDataplane> {
        if let Some(pk) = PolicyKey::for_resource(key) {
            self.set_policy(pk, None);
            return self.flush();
        }
        let ns = key.namespace.clone().unwrap_or_default();
        let name = key.name.clone();
        match key.kind {
            Kind::Tier => {
                if self.tiers.remove(&name).is_some() {
                    self.touch_all_endpoints();
                }
            }
            Kind::Profile => {
                self.explicit_profiles.remove(&name);
                self.refresh_profile(&name);
            }
            Kind::Namespace => {
                self.namespaces.remove(&name);
                self.refresh_profile(&namespace_profile(&name));
            }
            Kind::ServiceAccount => {
                let profile = service_account_profile(&ns, &name);
                self.service_accounts.remove(&(ns, name));
                self.refresh_profile(&profile);
            }
            Kind::Pod => self.put_item(ItemKey::Pod(ns, name), None),
            Kind::WorkloadEndpoint => self.put_item(ItemKey::WorkloadEndpoint(ns, name), None),
            Kind::NetworkSet => self.put_item(ItemKey::NetworkSet(ns, name), None),
            Kind::GlobalNetworkSet => self.put_item(ItemKey::GlobalNetworkSet(name), None),
            Kind::GlobalNetworkPolicy
            | Kind::NetworkPolicy
            | Kind::StagedGlobalNetworkPolicy
            | Kind::StagedNetworkPolicy
            | Kind::StagedKubernetesNetworkPolicy
            | Kind::KubernetesNetworkPolicy => {}
        }
        self.flush()
    }

    /// One datastore event: [`apply`](Self::apply), [`delete`](Self::delete) or
    /// [`in_sync`](Self::in_sync).
    pub fn apply_event(&mut self, event: Event) -> Vec<ToDataplane> {
        match event {
            Event::Apply(r) => self.apply(&*r),
            Event::Delete(k) => self.delete(&k),
            Event::InitDone => self.in_sync(),
        }
    }

    /// The datastore finished its initial listing: `InSync`, the first time only.
    pub fn in_sync(&mut self) -> Vec<ToDataplane> {
        if std::mem::replace(&mut self.in_sync_sent, true) {
            return Vec::new();
        }
        vec![ToDataplane::from(Payload::InSync(InSync {}))]
    }

    /// The local workloads (with addresses), by namespace and pod name, with their endpoint ids.
    pub fn workloads(&self) -> Vec<WorkloadKey> {
        let mut out: Vec<WorkloadKey> = self
            .local_eps
            .iter()
            .filter_map(|k| self.items.get(k)?.data.endpoint.as_ref())
            .map(|ep| WorkloadKey { namespace: ep.namespace.clone(), name: ep.pod.clone(), endpoint_id: ep.id.clone() })
            .collect();
        out.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        out
    }

    // ---------------------------------------------------------------------------------------
    // Inputs.

    /// The tier of this name: the datastore's, else a built-in one (`kube-admin`, `default`,
    /// `kube-baseline`).
    fn tier(&self, name: &str) -> Option<&TierSpec> {
        self.tiers.get(name).or_else(|| self.builtin_tiers.get(name))
    }

    fn touch_all_endpoints(&mut self) {
        self.pending.endpoints.extend(self.ep_policies.keys().cloned());
    }

    /// The effective profile of this name: an explicit Profile, else the one Calico derives
    /// from a Namespace (`kns.`: the namespace's labels as `pcns.*` plus
    /// `pcns.projectcalico.org/name`, allow both ways) or a ServiceAccount (`ksa.`: `pcsa.*`
    /// labels, no rules), else the built-in `projectcalico-default-allow`.
    fn compute_profile(&self, name: &str) -> Option<ProfileData> {
        if let Some(spec) = self.explicit_profiles.get(name) {
            return Some(ProfileData {
                labels: spec.labels_to_apply.clone(),
                rules: ConvertedRules::for_profile(name, &spec.ingress, &spec.egress),
            });
        }
        let allow = [Rule::new(Action::Allow)];
        if let Some(ns) = namespace_of_profile(name)
            && let Some(labels) = self.namespaces.get(ns)
        {
            let mut l: BTreeMap<String, String> =
                labels.iter().map(|(k, v)| (format!("{NAMESPACE_LABEL_PREFIX}{k}"), v.clone())).collect();
            l.insert(format!("{NAMESPACE_LABEL_PREFIX}{LABEL_NAME}"), ns.to_owned());
            return Some(ProfileData { labels: l, rules: ConvertedRules::for_profile(name, &allow, &allow) });
        }
        if let Some(id) = service_account_key(name)
            && let Some(labels) = self.service_accounts.get(&id)
        {
            let mut l: BTreeMap<String, String> =
                labels.iter().map(|(k, v)| (format!("{SERVICE_ACCOUNT_LABEL_PREFIX}{k}"), v.clone())).collect();
            l.insert(format!("{SERVICE_ACCOUNT_LABEL_PREFIX}{LABEL_NAME}"), id.1);
            return Some(ProfileData { labels: l, rules: ConvertedRules::for_profile(name, &[], &[]) });
        }
        (name == DEFAULT_ALLOW_PROFILE)
            .then(|| ProfileData { labels: BTreeMap::new(), rules: ConvertedRules::for_profile(name, &allow, &allow) })
    }

    /// Recomputes a profile after one of its sources changed.
    fn refresh_profile(&mut self, name: &str) {
        let new = self.compute_profile(name);
        let old = self.profiles.remove(name);
        let labels_changed = old.as_ref().map(|p| &p.labels) != new.as_ref().map(|p| &p.labels);
        if old.as_ref().map(|p| &p.rules) != new.as_ref().map(|p| &p.rules) {
            self.pending.profiles.insert(name.to_owned());
        }
        if let Some(p) = new {
            self.profiles.insert(name.to_owned(), p);
        }
        if labels_changed {
            if let Some(ns) = namespace_of_profile(name) {
                self.pending.namespaces.insert(ns.to_owned());
            } else if let Some(id) = service_account_key(name) {
                self.pending.service_accounts.insert(id);
            }
            let mut inheriting: Vec<ItemKey> =
                self.items_by_profile.get(name).map(|s| s.iter().cloned().collect()).unwrap_or_default();
            inheriting.sort();
            for key in inheriting {
                self.relabel_item(&key);
            }
        }
    }

    /// Adds, replaces (`Some`) or removes (`None`) a policy.
    fn set_policy(&mut self, key: PolicyKey, def: Option<PolicyDef>) {
        let old = match def {
            Some(d) => {
                if self.policies.get(&key) == Some(&d) {
                    return;
                }
                self.policies_by_ns.entry(d.namespace.clone()).or_default().insert(key.clone());
                self.policies.insert(key.clone(), d)
            }
            None => self.policies.remove(&key),
        };
        if let Some(o) = &old
            && self.policies.get(&key).is_none_or(|d| d.namespace != o.namespace)
            && let Some(keys) = self.policies_by_ns.get_mut(&o.namespace)
        {
            keys.remove(&key);
            if keys.is_empty() {
                self.policies_by_ns.remove(&o.namespace);
            }
        }
        self.pending.policies.insert(key.clone());
        let placement = |d: &PolicyDef| (d.tier.clone(), d.order.to_bits(), d.ingress, d.egress);
        let placement_changed = old.as_ref().map(placement) != self.policies.get(&key).map(placement);

        let old_eps = self.policy_eps.remove(&key).unwrap_or_default();
        let mut new_eps = FxHashSet::default();
        if let Some(d) = self.policies.get(&key) {
            let mut consider = |ep: &ItemKey| {
                if self.items.get(ep).is_some_and(|item| item.data.is_local() && d.selects(&item.labels)) {
                    new_eps.insert(ep.clone());
                }
            };
            match &d.namespace {
                Some(ns) => self.items_by_ns.get(ns).into_iter().flatten().for_each(&mut consider),
                None => self.local_eps.iter().for_each(&mut consider),
            }
        }
        for ep in old_eps.difference(&new_eps) {
            self.pending.endpoints.insert(ep.clone());
            if let Some(pols) = self.ep_policies.get_mut(ep) {
                pols.remove(&key);
                if pols.is_empty() {
                    self.ep_policies.remove(ep);
                }
            }
        }
        for ep in new_eps.difference(&old_eps) {
            self.pending.endpoints.insert(ep.clone());
            self.ep_policies.entry(ep.clone()).or_default().insert(key.clone());
        }
        if placement_changed {
            self.pending.endpoints.extend(new_eps.iter().cloned());
        }
        if !new_eps.is_empty() {
            self.policy_eps.insert(key, new_eps);
        }
    }

    /// Labels after inheritance: the item's own labels win over its profiles', earlier profiles
    /// over later ones.
    fn effective_labels(&self, data: &ItemData) -> BTreeMap<String, String> {
        let mut labels = data.labels.clone();
        for pid in &data.profile_ids {
            if let Some(p) = self.profiles.get(pid) {
                for (k, v) in &p.labels {
                    labels.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
        }
        labels
    }

    /// Adds, replaces (`Some`) or removes (`None`) an item.
    fn put_item(&mut self, key: ItemKey, data: Option<ItemData>) {
        let old = self.items.remove(&key);
        let new = data.map(|data| Item { labels: self.effective_labels(&data), data });
        let old_local = old.as_ref().is_some_and(|i| i.data.is_local());
        let new_local = new.as_ref().is_some_and(|i| i.data.is_local());

        let old_pids: &[String] = old.as_ref().map_or(&[], |i| &i.data.profile_ids);
        let new_pids: &[String] = new.as_ref().map_or(&[], |i| &i.data.profile_ids);
        if old_pids != new_pids || old_local != new_local {
            for pid in old_pids {
                if let Some(s) = self.items_by_profile.get_mut(pid) {
                    s.remove(&key);
                    if s.is_empty() {
                        self.items_by_profile.remove(pid);
                    }
                }
                if old_local && let Some(s) = self.profile_refs.get_mut(pid) {
                    s.remove(&key);
                    if s.is_empty() {
                        self.profile_refs.remove(pid);
                        self.pending.profiles.insert(pid.clone());
                    }
                }
            }
            for pid in new_pids {
                self.items_by_profile.entry(pid.clone()).or_default().insert(key.clone());
                if new_local {
                    let s = self.profile_refs.entry(pid.clone()).or_default();
                    if s.is_empty() {
                        self.pending.profiles.insert(pid.clone());
                    }
                    s.insert(key.clone());
                }
            }
        }

        let labels_changed = old.as_ref().map(|i| &i.labels) != new.as_ref().map(|i| &i.labels);
        let old_ns = old.as_ref().and_then(|i| i.labels.get(LABEL_NAMESPACE)).cloned();
        let new_ns = new.as_ref().and_then(|i| i.labels.get(LABEL_NAMESPACE)).cloned();
        self.move_namespace(&key, old_ns.as_ref(), new_ns.as_ref());
        let membership_changed = labels_changed
            || old.as_ref().map(|i| (&i.data.nets, i.data.endpoint.as_ref().map(|e| (&e.addrs, &e.ports))))
                != new.as_ref().map(|i| (&i.data.nets, i.data.endpoint.as_ref().map(|e| (&e.addrs, &e.ports))));
        if new_local {
            self.local_eps.insert(key.clone());
        } else {
            self.local_eps.remove(&key);
        }
        if old_local || new_local {
            self.pending.endpoints.insert(key.clone());
        }
        if let Some(item) = new {
            self.items.insert(key.clone(), item);
        }
        if membership_changed {
            self.reindex_item_sets(&key, old_ns.as_ref());
        }
        if (old_local || new_local) && (labels_changed || old_local != new_local) {
            self.eval_ep_policies(&key);
        }
    }

    /// Keeps [`Calculator::items_by_ns`] up to date.
    fn move_namespace(&mut self, key: &ItemKey, old: Option<&String>, new: Option<&String>) {
        if old == new {
            return;
        }
        if let Some(ns) = old
            && let Some(keys) = self.items_by_ns.get_mut(ns)
        {
            keys.remove(key);
            if keys.is_empty() {
                self.items_by_ns.remove(ns);
            }
        }
        if let Some(ns) = new {
            self.items_by_ns.entry(ns.clone()).or_default().insert(key.clone());
        }
    }

    /// Recomputes an item's inherited labels after a profile's labels changed.
    fn relabel_item(&mut self, key: &ItemKey) {
        let Some(item) = self.items.get(key) else { return };
        let labels = self.effective_labels(&item.data);
        let local = item.data.is_local();
        if labels == item.labels {
            return;
        }
        let old_ns = item.labels.get(LABEL_NAMESPACE).cloned();
        let new_ns = labels.get(LABEL_NAMESPACE).cloned();
        if let Some(item) = self.items.get_mut(key) {
            item.labels = labels;
        }
        self.move_namespace(key, old_ns.as_ref(), new_ns.as_ref());
        self.reindex_item_sets(key, old_ns.as_ref());
        if local {
            self.eval_ep_policies(key);
        }
    }

    /// Re-evaluates one item against the active IP sets it can be in: the unscoped ones and
    /// those scoped to its namespace before (`old_ns`) or now.
    fn reindex_item_sets(&mut self, key: &ItemKey, old_ns: Option<&String>) {
        let item = self.items.get(key);
        let new_ns = item.and_then(|i| i.labels.get(LABEL_NAMESPACE));
        let mut buckets = vec![None, old_ns.cloned()];
        if new_ns != old_ns {
            buckets.push(new_ns.cloned());
        }
        for bucket in buckets.iter().filter_map(|ns| self.sets_by_ns.get(ns)) {
            for id in bucket {
                if let Some(set) = self.ip_sets.get_mut(id) {
                    reindex_in_set(set, key, item, &mut self.pending);
                }
            }
        }
    }

    /// Re-evaluates which policies select a (local) workload.
    fn eval_ep_policies(&mut self, key: &ItemKey) {
        let new: BTreeSet<PolicyKey> = match self.items.get(key) {
            Some(item) if item.data.is_local() => {
                let ns = item.labels.get(LABEL_NAMESPACE).cloned();
                let global = self.policies_by_ns.get(&None).into_iter().flatten();
                let scoped = ns.and_then(|ns| self.policies_by_ns.get(&Some(ns))).into_iter().flatten();
                global
                    .chain(scoped)
                    .filter(|k| self.policies.get(*k).is_some_and(|d| d.selects(&item.labels)))
                    .cloned()
                    .collect()
            }
            _ => BTreeSet::new(),
        };
        let old = self.ep_policies.remove(key).unwrap_or_default();
        if new != old {
            self.pending.endpoints.insert(key.clone());
            for p in old.difference(&new) {
                if let Some(eps) = self.policy_eps.get_mut(p) {
                    eps.remove(key);
                    if eps.is_empty() {
                        self.policy_eps.remove(p);
                        self.pending.policies.insert(p.clone());
                    }
                }
            }
            for p in new.difference(&old) {
                let eps = self.policy_eps.entry(p.clone()).or_default();
                if eps.is_empty() {
                    self.pending.policies.insert(p.clone());
                }
                eps.insert(key.clone());
            }
        }
        if !new.is_empty() {
            self.ep_policies.insert(key.clone(), new);
        }
    }

    // ---------------------------------------------------------------------------------------
    // IP-set references.

    /// Brings the IP-set references of every policy and profile that may have changed up to
    /// date: an active one holds its rules' sets, an inactive one none.
    fn sync_owners(&mut self) {
        let policies: Vec<PolicyKey> = self.pending.policies.iter().cloned().collect();
        for pk in policies {
            let desired: Vec<IpSetDef> = if self.policy_eps.contains_key(&pk) {
                self.policies.get(&pk).map(|d| d.ip_sets.values().cloned().collect()).unwrap_or_default()
            } else {
                Vec::new()
            };
            self.set_owner_sets(Owner::Policy(pk), desired);
        }
        let profiles: Vec<String> = self.pending.profiles.iter().cloned().collect();
        for name in profiles {
            let desired: Vec<IpSetDef> = if self.profile_refs.contains_key(&name) {
                self.profiles.get(&name).map(|p| p.rules.ip_sets.values().cloned().collect()).unwrap_or_default()
            } else {
                Vec::new()
            };
            self.set_owner_sets(Owner::Profile(name), desired);
        }
    }

    fn set_owner_sets(&mut self, owner: Owner, desired: Vec<IpSetDef>) {
        let old = self.owner_sets.remove(&owner).unwrap_or_default();
        let new: Vec<String> = desired.iter().map(|d| d.id.clone()).collect();
        for def in desired {
            if !old.contains(&def.id) {
                self.incref(def);
            }
        }
        for id in &old {
            if !new.contains(id) {
                self.decref(id);
            }
        }
        if !new.is_empty() {
            self.owner_sets.insert(owner, new);
        }
    }

    fn incref(&mut self, def: IpSetDef) {
        if let Some(set) = self.ip_sets.get_mut(&def.id) {
            set.refs += 1;
            return;
        }
        let id = def.id.clone();
        let mut set = IpSetState { def, refs: 1, members: FxHashMap::default(), contrib: FxHashMap::default() };
        let candidates: Box<dyn Iterator<Item = (&ItemKey, &Item)>> = match &set.def.namespace {
            Some(ns) => Box::new(
                self.items_by_ns.get(ns).into_iter().flatten().filter_map(|k| self.items.get(k).map(|i| (k, i))),
            ),
            None => Box::new(self.items.iter()),
        };
        for (key, item) in candidates {
            if set.def.selector.matches(&item.labels) {
                let members = members_for(&item.data, &set.def);
                if !members.is_empty() {
                    for m in &members {
                        *set.members.entry(m.clone()).or_insert(0) += 1;
                    }
                    set.contrib.insert(key.clone(), members);
                }
            }
        }
        self.pending.removed_sets.remove(&id);
        self.pending.deltas.remove(&id);
        self.pending.new_sets.insert(id.clone());
        self.sets_by_ns.entry(set.def.namespace.clone()).or_default().insert(id.clone());
        self.ip_sets.insert(id, set);
    }

    fn decref(&mut self, id: &str) {
        let Some(set) = self.ip_sets.get_mut(id) else { return };
        set.refs -= 1;
        if set.refs > 0 {
            return;
        }
        if let Some(set) = self.ip_sets.remove(id)
            && let Some(ids) = self.sets_by_ns.get_mut(&set.def.namespace)
        {
            ids.remove(id);
            if ids.is_empty() {
                self.sets_by_ns.remove(&set.def.namespace);
            }
        }
        self.pending.new_sets.remove(id);
        self.pending.deltas.remove(id);
        if self.sent.ip_sets.contains(id) {
            self.pending.removed_sets.insert(id.to_owned());
        }
    }

    // ---------------------------------------------------------------------------------------
    // Output.

    /// The tiers of a local workload, as Felix's `policy_resolver.go` lays them out: tiers with at
    /// least one selecting policy, valid ones first, then by order (none last), then name; in each, policies by order (none
    /// last), ties by `"<name>/<namespace>/<kind>"`.
    fn tiers_for(&self, key: &ItemKey) -> Vec<TierInfo> {
        let Some(pols) = self.ep_policies.get(key) else { return Vec::new() };
        let mut by_tier: BTreeMap<&str, Vec<(&PolicyKey, &PolicyDef)>> = BTreeMap::new();
        for pk in pols {
            if let Some(d) = self.policies.get(pk) {
                by_tier.entry(d.tier.as_str()).or_default().push((pk, d));
            }
        }
        let mut tiers: Vec<(bool, Option<f64>, TierInfo)> = Vec::new();
        for (name, mut pols) in by_tier {
            pols.sort_by(|a, b| a.1.order.total_cmp(&b.1.order).then_with(|| a.0.tie_break().cmp(&b.0.tie_break())));
            let ingress_policies: Vec<_> = pols.iter().filter(|(_, d)| d.ingress).map(|(k, _)| k.to_proto()).collect();
            let egress_policies: Vec<_> = pols.iter().filter(|(_, d)| d.egress).map(|(k, _)| k.to_proto()).collect();
            if ingress_policies.is_empty() && egress_policies.is_empty() {
                continue;
            }
            let tier = self.tier(name);
            let default_action = match tier.map(|t| t.default_action) {
                Some(TierDefaultAction::Pass) => "Pass",
                Some(TierDefaultAction::Deny) => "Deny",
                None => "",
            };
            tiers.push((
                tier.is_some(),
                tier.and_then(|t| t.order),
                TierInfo {
                    name: name.to_owned(),
                    ingress_policies,
                    egress_policies,
                    default_action: default_action.to_owned(),
                },
            ));
        }
        tiers.sort_by(|a, b| {
            b.0.cmp(&a.0)
                .then_with(|| match (a.1, b.1) {
                    (Some(x), Some(y)) => x.total_cmp(&y),
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (None, None) => std::cmp::Ordering::Equal,
                })
                .then_with(|| a.2.name.cmp(&b.2.name))
        });
        tiers.into_iter().map(|(_, _, t)| t).collect()
    }

    fn desired_endpoint(&self, key: &ItemKey) -> Option<WorkloadEndpointUpdate> {
        let item = self.items.get(key)?;
        let ep = item.data.endpoint.as_ref().filter(|e| e.local)?;
        Some(WorkloadEndpointUpdate {
            id: Some(ep.id.clone()),
            endpoint: Some(WorkloadEndpoint {
                state: "active".to_owned(),
                name: ep.name.clone(),
                mac: ep.mac.clone(),
                profile_ids: item.data.profile_ids.clone(),
                ipv4_nets: ep.ipv4_nets.clone(),
                ipv6_nets: ep.ipv6_nets.clone(),
                tiers: self.tiers_for(key),
                annotations: ep.annotations.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                is_istio_ambient: false,
            }),
        })
    }

    /// Settles IP-set references, then emits the difference between what should be sent and
    /// what was, in the event sequencer's order.
    fn flush(&mut self) -> Vec<ToDataplane> {
        self.sync_owners();
        let pending = std::mem::take(&mut self.pending);
        let mut out = Vec::new();

        // IP-set adds (full members), then deltas.
        for id in &pending.new_sets {
            if let Some(set) = self.ip_sets.get(id) {
                let mut members: Vec<String> = set.members.keys().cloned().collect();
                members.sort();
                let r#type = if set.def.named_port.is_some() { IpSetType::IpAndPort } else { IpSetType::Net };
                out.push(ToDataplane::from(Payload::IpsetUpdate(IpSetUpdate {
                    id: id.clone(),
                    members,
                    r#type: r#type as i32,
                })));
                self.sent.ip_sets.insert(id.clone());
            }
        }
        for (id, d) in pending.deltas {
            if (d.added.is_empty() && d.removed.is_empty())
                || !self.ip_sets.contains_key(&id)
                || !self.sent.ip_sets.contains(&id)
            {
                continue;
            }
            out.push(ToDataplane::from(Payload::IpsetDeltaUpdate(IpSetDeltaUpdate {
                id,
                added_members: d.added.into_iter().collect(),
                removed_members: d.removed.into_iter().collect(),
            })));
        }

        // Policies.
        let mut policy_removes = Vec::new();
        for pk in &pending.policies {
            let desired = self.policy_eps.contains_key(pk).then(|| self.policies.get(pk)).flatten().map(|d| &d.policy);
            match (desired, self.sent.policies.get(pk)) {
                (Some(d), Some(s)) if d == s => {}
                (Some(d), _) => {
                    out.push(ToDataplane::from(Payload::ActivePolicyUpdate(ActivePolicyUpdate {
                        id: Some(pk.to_proto()),
                        policy: Some(d.clone()),
                    })));
                    self.sent.policies.insert(pk.clone(), d.clone());
                }
                (None, Some(_)) => {
                    self.sent.policies.remove(pk);
                    policy_removes.push(ToDataplane::from(Payload::ActivePolicyRemove(ActivePolicyRemove {
                        id: Some(pk.to_proto()),
                    })));
                }
                (None, None) => {}
            }
        }

        // Profiles.
        let mut profile_removes = Vec::new();
        for name in &pending.profiles {
            let desired = self
                .profile_refs
                .contains_key(name)
                .then(|| self.profiles.get(name).map_or_else(|| dummy_drop_profile(name), |p| p.rules.to_profile()));
            match (desired, self.sent.profiles.get(name)) {
                (Some(d), Some(s)) if &d == s => {}
                (Some(d), _) => {
                    out.push(ToDataplane::from(Payload::ActiveProfileUpdate(ActiveProfileUpdate {
                        id: Some(ProfileId { name: name.clone() }),
                        profile: Some(d.clone()),
                    })));
                    self.sent.profiles.insert(name.clone(), d);
                }
                (None, Some(_)) => {
                    self.sent.profiles.remove(name);
                    profile_removes.push(ToDataplane::from(Payload::ActiveProfileRemove(ActiveProfileRemove {
                        id: Some(ProfileId { name: name.clone() }),
                    })));
                }
                (None, None) => {}
            }
        }

        // Endpoints.
        let mut endpoint_removes = Vec::new();
        for key in &pending.endpoints {
            let desired = self.desired_endpoint(key);
            let sent = self.sent.endpoints.get(key);
            if desired.as_ref() == sent {
                continue;
            }
            if let Some(old) = sent
                && desired.as_ref().is_none_or(|d| d.id != old.id)
            {
                endpoint_removes.push(ToDataplane::from(Payload::WorkloadEndpointRemove(WorkloadEndpointRemove {
                    id: old.id.clone(),
                })));
            }
            match desired {
                Some(d) => {
                    out.push(ToDataplane::from(Payload::WorkloadEndpointUpdate(d.clone())));
                    self.sent.endpoints.insert(key.clone(), d);
                }
                None => {
                    self.sent.endpoints.remove(key);
                }
            }
        }
        out.extend(endpoint_removes);
        out.extend(profile_removes);
        out.extend(policy_removes);

        // IP-set removes.
        for id in &pending.removed_sets {
            if !self.ip_sets.contains_key(id) && self.sent.ip_sets.remove(id) {
                out.push(ToDataplane::from(Payload::IpsetRemove(IpSetRemove { id: id.clone() })));
            }
        }

        // Service accounts and namespaces, from their profiles (`profile_decoder.go`).
        for (ns, name) in pending.service_accounts {
            let profile = service_account_profile(&ns, &name);
            let desired = self.profiles.get(&profile).map(|p| decode_labels(&p.labels, SERVICE_ACCOUNT_LABEL_PREFIX));
            let id = (ns, name);
            if desired.as_ref() == self.sent.service_accounts.get(&id) {
                continue;
            }
            let proto_id = Some(ServiceAccountId { namespace: id.0.clone(), name: id.1.clone() });
            match desired {
                Some(labels) => {
                    out.push(ToDataplane::from(Payload::ServiceAccountUpdate(ServiceAccountUpdate {
                        id: proto_id,
                        labels: labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                    })));
                    self.sent.service_accounts.insert(id, labels);
                }
                None => {
                    out.push(ToDataplane::from(Payload::ServiceAccountRemove(ServiceAccountRemove { id: proto_id })));
                    self.sent.service_accounts.remove(&id);
                }
            }
        }
        for name in pending.namespaces {
            let profile = namespace_profile(&name);
            let desired = self.profiles.get(&profile).map(|p| decode_labels(&p.labels, NAMESPACE_LABEL_PREFIX));
            if desired.as_ref() == self.sent.namespaces.get(&name) {
                continue;
            }
            let proto_id = Some(NamespaceId { name: name.clone() });
            match desired {
                Some(labels) => {
                    out.push(ToDataplane::from(Payload::NamespaceUpdate(NamespaceUpdate {
                        id: proto_id,
                        labels: labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                    })));
                    self.sent.namespaces.insert(name, labels);
                }
                None => {
                    out.push(ToDataplane::from(Payload::NamespaceRemove(NamespaceRemove { id: proto_id })));
                    self.sent.namespaces.remove(&name);
                }
            }
        }
        out
    }
}
