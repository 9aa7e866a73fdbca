//! The calculator: datastore resources in, Felix's calc-graph output out. It joins the indexes
//! (`index/`) for each resource and diffs their view against the outbox (`outbox.rs`).

use std::borrow::{Borrow, Cow};

use alp_datastore::Event;
use alp_felix::{namespace_profile, service_account_profile};
use alp_proto::felix::{InSync, ToDataplane, WorkloadEndpoint, WorkloadEndpointUpdate, to_dataplane::Payload};
use alp_resources::{Kind, Resource, ResourceKey};

use crate::WorkloadKey;
use crate::convert::LABEL_NAMESPACE;
use crate::index::ip_sets::{IpSets, Owner};
use crate::index::items::{Item, Items};
use crate::index::policies::Policies;
use crate::index::profiles::Profiles;
use crate::items::{ItemData, ItemKey, global_network_set_item, network_set_item, pod_item, wep_item};
use crate::outbox::{Batch, Outbox};
use crate::pending::Pending;
use crate::policy::{PolicyDef, PolicyKey, policy_from_resource};

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
    items: Items,
    profiles: Profiles,
    policies: Policies,
    ip_sets: IpSets,
    /// What the current call may have changed.
    pending: Pending,
    /// What has been sent.
    outbox: Outbox,
}

/// The endpoint update of a local workload, as it should be sent now.
fn desired_endpoint(items: &Items, policies: &Policies, key: &ItemKey) -> Option<WorkloadEndpointUpdate> {
    let item = items.get(key)?;
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
            tiers: policies.tiers_for(key),
            annotations: ep.annotations.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            is_istio_ambient: false,
        }),
    })
}

impl Calculator {
    /// A calculator for the workloads of `node` (Pods with `spec.nodeName == node`,
    /// WorkloadEndpoints with `spec.node == node`); `None` makes every workload local.
    pub fn new(node: Option<String>) -> Self {
        Calculator {
            node,
            items: Items::default(),
            profiles: Profiles::new(),
            policies: Policies::new(),
            ip_sets: IpSets::default(),
            pending: Pending::default(),
            outbox: Outbox::default(),
        }
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
            Resource::Tier(t) => self.policies.put_tier(&t.metadata.name, t.spec.clone(), &mut self.pending),
            Resource::Profile(p) => {
                let name = p.metadata.name.clone();
                self.profiles.set_explicit(&name, Some(p.spec.clone()));
                self.refresh_profile(&name);
            }
            Resource::Namespace(n) => {
                let name = n.metadata.name.clone();
                self.profiles.set_namespace(&name, Some(n.metadata.labels.clone()));
                self.refresh_profile(&namespace_profile(&name));
            }
            Resource::ServiceAccount(sa) => {
                let ns = sa.metadata.namespace.clone().unwrap_or_default();
                let name = sa.metadata.name.clone();
                let profile = service_account_profile(&ns, &name);
                self.profiles.set_service_account((ns, name), Some(sa.metadata.labels.clone()));
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
            Kind::Tier => self.policies.remove_tier(&name, &mut self.pending),
            Kind::Profile => {
                self.profiles.set_explicit(&name, None);
                self.refresh_profile(&name);
            }
            Kind::Namespace => {
                self.profiles.set_namespace(&name, None);
                self.refresh_profile(&namespace_profile(&name));
            }
            Kind::ServiceAccount => {
                let profile = service_account_profile(&ns, &name);
                self.profiles.set_service_account((ns, name), None);
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
        if std::mem::replace(&mut self.outbox.in_sync, true) {
            return Vec::new();
        }
        vec![ToDataplane::from(Payload::InSync(InSync {}))]
    }

    /// The local workloads (with addresses), by namespace and pod name, with their endpoint ids.
    pub fn workloads(&self) -> Vec<WorkloadKey> {
        let mut out: Vec<WorkloadKey> = self
            .items
            .local()
            .iter()
            .filter_map(|k| self.items.get(k)?.data.endpoint.as_ref())
            .map(|ep| WorkloadKey { namespace: ep.namespace.clone(), name: ep.pod.clone(), endpoint_id: ep.id.clone() })
            .collect();
        out.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        out
    }

    // ---------------------------------------------------------------------------------------
    // Changes that cross indexes.

    /// Recomputes a profile after one of its sources changed, and the items inheriting its
    /// labels if they changed.
    fn refresh_profile(&mut self, name: &str) {
        for key in self.profiles.refresh(name, &mut self.pending) {
            self.relabel_item(&key);
        }
    }

    /// Adds, replaces (`Some`) or removes (`None`) a policy.
    fn set_policy(&mut self, key: PolicyKey, def: Option<PolicyDef>) {
        self.policies.set(key, def, &self.items, &mut self.pending);
    }

    /// Adds, replaces (`Some`) or removes (`None`) an item.
    fn put_item(&mut self, key: ItemKey, data: Option<ItemData>) {
        let old = self.items.take(&key);
        let new = data.map(|data| Item { labels: self.profiles.effective_labels(&data), data });
        let old_local = old.as_ref().is_some_and(|i| i.data.is_local());
        let new_local = new.as_ref().is_some_and(|i| i.data.is_local());

        let old_pids: &[String] = old.as_ref().map_or(&[], |i| &i.data.profile_ids);
        let new_pids: &[String] = new.as_ref().map_or(&[], |i| &i.data.profile_ids);
        if old_pids != new_pids || old_local != new_local {
            self.profiles.rename_refs(&key, (old_pids, old_local), (new_pids, new_local), &mut self.pending);
        }

        let labels_changed = old.as_ref().map(|i| &i.labels) != new.as_ref().map(|i| &i.labels);
        let old_ns = old.as_ref().and_then(|i| i.labels.get(LABEL_NAMESPACE)).cloned();
        let new_ns = new.as_ref().and_then(|i| i.labels.get(LABEL_NAMESPACE)).cloned();
        self.items.move_namespace(&key, old_ns.as_ref(), new_ns.as_ref());
        let membership_changed = labels_changed
            || old.as_ref().map(|i| (&i.data.nets, i.data.endpoint.as_ref().map(|e| (&e.addrs, &e.ports))))
                != new.as_ref().map(|i| (&i.data.nets, i.data.endpoint.as_ref().map(|e| (&e.addrs, &e.ports))));
        self.items.set_local(&key, new_local);
        if old_local || new_local {
            self.pending.endpoints.insert(key.clone());
        }
        if let Some(item) = new {
            self.items.insert(key.clone(), item);
        }
        if membership_changed {
            self.ip_sets.reindex_item(&key, self.items.get(&key), old_ns.as_ref(), &mut self.pending);
        }
        if (old_local || new_local) && (labels_changed || old_local != new_local) {
            self.policies.select_for(&key, self.items.get(&key), &mut self.pending);
        }
    }

    /// Recomputes an item's inherited labels after a profile's labels changed.
    fn relabel_item(&mut self, key: &ItemKey) {
        let Some(item) = self.items.get(key) else { return };
        let labels = self.profiles.effective_labels(&item.data);
        let local = item.data.is_local();
        if labels == item.labels {
            return;
        }
        let old_ns = item.labels.get(LABEL_NAMESPACE).cloned();
        let new_ns = labels.get(LABEL_NAMESPACE).cloned();
        if let Some(item) = self.items.get_mut(key) {
            item.labels = labels;
        }
        self.items.move_namespace(key, old_ns.as_ref(), new_ns.as_ref());
        self.ip_sets.reindex_item(key, self.items.get(key), old_ns.as_ref(), &mut self.pending);
        if local {
            self.policies.select_for(key, self.items.get(key), &mut self.pending);
        }
    }

    /// Brings the IP-set references of every policy and profile that may have changed up to
    /// date: an active one holds its rules' sets, an inactive one none.
    fn sync_owners(&mut self) {
        let Calculator { items, profiles, policies, ip_sets, pending, outbox, .. } = self;
        let changed_policies: Vec<PolicyKey> = pending.policies.iter().cloned().collect();
        for pk in changed_policies {
            let desired = policies.active_ip_sets(&pk);
            ip_sets.set_owner_sets(Owner::Policy(pk), desired, items, &outbox.ip_sets, pending);
        }
        let changed_profiles: Vec<String> = pending.profiles.iter().cloned().collect();
        for name in changed_profiles {
            let desired = profiles.active_ip_sets(&name);
            ip_sets.set_owner_sets(Owner::Profile(name), desired, items, &outbox.ip_sets, pending);
        }
    }

    // ---------------------------------------------------------------------------------------
    // Output.

    /// Settles IP-set references, then emits the difference between what should be sent and
    /// what was, in the event sequencer's order.
    fn flush(&mut self) -> Vec<ToDataplane> {
        self.sync_owners();
        let mut pending = std::mem::take(&mut self.pending);
        let Calculator { items, profiles, policies, ip_sets, outbox, .. } = self;
        let mut batch = Batch::default();
        ip_sets.flush(&mut pending, &mut outbox.ip_sets, &mut batch);
        outbox.policies.sync(&pending.policies, |pk| policies.active(pk).map(Cow::Borrowed), &mut batch);
        outbox.profiles.sync(&pending.profiles, |name| profiles.active(name).map(Cow::Owned), &mut batch);
        outbox.endpoints.sync(
            &pending.endpoints,
            |key| desired_endpoint(items, policies, key).map(Cow::Owned),
            &mut batch,
        );
        // Service accounts and namespaces, from their profiles (`profile_decoder.go`).
        outbox.service_accounts.sync(
            &pending.service_accounts,
            |(ns, name)| profiles.service_account_labels(&service_account_profile(ns, name)).map(Cow::Owned),
            &mut batch,
        );
        outbox.namespaces.sync(
            &pending.namespaces,
            |name| profiles.namespace_labels(&namespace_profile(name)).map(Cow::Owned),
            &mut batch,
        );
        batch.into_messages()
    }
}
