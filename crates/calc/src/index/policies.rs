//! Tiers and policies, and which local workloads each policy selects (both ways), with the
//! tier layout of a workload as Felix's policy resolver makes it.

use std::collections::{BTreeMap, BTreeSet};

use alp_proto::felix::{Policy, TierInfo};
use alp_resources::{TierDefaultAction, TierSpec};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::convert::{IpSetDef, LABEL_NAMESPACE};
use crate::index::items::{Item, Items};
use crate::items::ItemKey;
use crate::pending::Pending;
use crate::policy::{PolicyDef, PolicyKey};

/// The tiers, the policies, and the selection relation between policies and local workloads.
#[derive(Debug)]
pub(crate) struct Policies {
    builtin_tiers: BTreeMap<String, TierSpec>,
    tiers: BTreeMap<String, TierSpec>,
    policies: BTreeMap<PolicyKey, PolicyDef>,
    /// Policies by [`PolicyDef::namespace`] (`None`: global kinds).
    by_ns: FxHashMap<Option<String>, BTreeSet<PolicyKey>>,
    /// Local workload → the policies selecting it, and back (only non-empty entries).
    by_endpoint: FxHashMap<ItemKey, BTreeSet<PolicyKey>>,
    endpoints: FxHashMap<PolicyKey, FxHashSet<ItemKey>>,
}

impl Policies {
    /// No policies; the built-in tiers (`kube-admin`, `default`, `kube-baseline`).
    pub fn new() -> Self {
        Policies {
            builtin_tiers: alp_resources::builtin_tiers().into_iter().map(|t| (t.metadata.name, t.spec)).collect(),
            tiers: BTreeMap::new(),
            policies: BTreeMap::new(),
            by_ns: FxHashMap::default(),
            by_endpoint: FxHashMap::default(),
            endpoints: FxHashMap::default(),
        }
    }

    /// Adds or replaces a Tier; every selected workload's layout may change.
    pub fn put_tier(&mut self, name: &str, spec: TierSpec, pending: &mut Pending) {
        self.tiers.insert(name.to_owned(), spec);
        self.touch_selected(pending);
    }

    /// Removes a Tier; if there was one, every selected workload's layout may change.
    pub fn remove_tier(&mut self, name: &str, pending: &mut Pending) {
        if self.tiers.remove(name).is_some() {
            self.touch_selected(pending);
        }
    }

    fn touch_selected(&self, pending: &mut Pending) {
        pending.endpoints.extend(self.by_endpoint.keys().cloned());
    }

    /// The tier of this name: the datastore's, else a built-in one (`kube-admin`, `default`,
    /// `kube-baseline`).
    fn tier(&self, name: &str) -> Option<&TierSpec> {
        self.tiers.get(name).or_else(|| self.builtin_tiers.get(name))
    }

    /// Adds, replaces (`Some`) or removes (`None`) a policy, and re-evaluates which local
    /// workloads of `items` it selects.
    pub fn set(&mut self, key: PolicyKey, def: Option<PolicyDef>, items: &Items, pending: &mut Pending) {
        let old = match def {
            Some(d) => {
                if self.policies.get(&key) == Some(&d) {
                    return;
                }
                self.by_ns.entry(d.namespace.clone()).or_default().insert(key.clone());
                self.policies.insert(key.clone(), d)
            }
            None => self.policies.remove(&key),
        };
        if let Some(o) = &old
            && self.policies.get(&key).is_none_or(|d| d.namespace != o.namespace)
            && let Some(keys) = self.by_ns.get_mut(&o.namespace)
        {
            keys.remove(&key);
            if keys.is_empty() {
                self.by_ns.remove(&o.namespace);
            }
        }
        pending.policies.insert(key.clone());
        let placement = |d: &PolicyDef| (d.tier.clone(), d.order.to_bits(), d.ingress, d.egress);
        let placement_changed = old.as_ref().map(placement) != self.policies.get(&key).map(placement);

        let old_eps = self.endpoints.remove(&key).unwrap_or_default();
        let mut new_eps = FxHashSet::default();
        if let Some(d) = self.policies.get(&key) {
            let mut consider = |ep: &ItemKey| {
                if items.get(ep).is_some_and(|item| item.data.is_local() && d.selects(&item.labels)) {
                    new_eps.insert(ep.clone());
                }
            };
            match &d.namespace {
                Some(ns) => items.in_namespace(ns).for_each(&mut consider),
                None => items.local().iter().for_each(&mut consider),
            }
        }
        for ep in old_eps.difference(&new_eps) {
            pending.endpoints.insert(ep.clone());
            if let Some(pols) = self.by_endpoint.get_mut(ep) {
                pols.remove(&key);
                if pols.is_empty() {
                    self.by_endpoint.remove(ep);
                }
            }
        }
        for ep in new_eps.difference(&old_eps) {
            pending.endpoints.insert(ep.clone());
            self.by_endpoint.entry(ep.clone()).or_default().insert(key.clone());
        }
        if placement_changed {
            pending.endpoints.extend(new_eps.iter().cloned());
        }
        if !new_eps.is_empty() {
            self.endpoints.insert(key, new_eps);
        }
    }

    /// Re-evaluates which policies select a workload (none unless it is local); a policy that
    /// gains its first or loses its last workload is marked pending.
    pub fn select_for(&mut self, key: &ItemKey, item: Option<&Item>, pending: &mut Pending) {
        let new: BTreeSet<PolicyKey> = match item {
            Some(item) if item.data.is_local() => {
                let ns = item.labels.get(LABEL_NAMESPACE).cloned();
                let global = self.by_ns.get(&None).into_iter().flatten();
                let scoped = ns.and_then(|ns| self.by_ns.get(&Some(ns))).into_iter().flatten();
                global
                    .chain(scoped)
                    .filter(|k| self.policies.get(*k).is_some_and(|d| d.selects(&item.labels)))
                    .cloned()
                    .collect()
            }
            _ => BTreeSet::new(),
        };
        let old = self.by_endpoint.remove(key).unwrap_or_default();
        if new != old {
            pending.endpoints.insert(key.clone());
            for p in old.difference(&new) {
                if let Some(eps) = self.endpoints.get_mut(p) {
                    eps.remove(key);
                    if eps.is_empty() {
                        self.endpoints.remove(p);
                        pending.policies.insert(p.clone());
                    }
                }
            }
            for p in new.difference(&old) {
                let eps = self.endpoints.entry(p.clone()).or_default();
                if eps.is_empty() {
                    pending.policies.insert(p.clone());
                }
                eps.insert(key.clone());
            }
        }
        if !new.is_empty() {
            self.by_endpoint.insert(key.clone(), new);
        }
    }

    /// The policy as sent while it is active (selects a local workload); `None` otherwise.
    pub fn active(&self, key: &PolicyKey) -> Option<&Policy> {
        self.endpoints.contains_key(key).then(|| self.policies.get(key)).flatten().map(|d| &d.policy)
    }

    /// The IP sets an active policy's rules name (none while inactive).
    pub fn active_ip_sets(&self, key: &PolicyKey) -> Vec<IpSetDef> {
        if !self.endpoints.contains_key(key) {
            return Vec::new();
        }
        self.policies.get(key).map(|d| d.ip_sets.values().cloned().collect()).unwrap_or_default()
    }

    /// The tiers of a local workload, as Felix's `policy_resolver.go` lays them out: tiers with at
    /// least one selecting policy, valid ones first, then by order (none last), then name; in each, policies by order (none
    /// last), ties by `"<name>/<namespace>/<kind>"`.
    pub fn tiers_for(&self, key: &ItemKey) -> Vec<TierInfo> {
        let Some(pols) = self.by_endpoint.get(key) else { return Vec::new() };
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
}
