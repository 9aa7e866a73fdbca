//! The active IP sets: each with its members (counted per contributing item), the policies
//! and profiles holding a reference on it, and an index by namespace scope.

use alp_proto::felix::{IpSetDeltaUpdate, IpSetRemove, IpSetUpdate, ip_set_update::IpSetType, to_dataplane::Payload};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::convert::{IpSetDef, LABEL_NAMESPACE};
use crate::index::items::{Item, Items};
use crate::items::{ItemData, ItemKey};
use crate::outbox::{Batch, Slot};
use crate::pending::Pending;
use crate::policy::PolicyKey;

/// What holds references on IP sets.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Owner {
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

/// The active IP sets and who holds them.
#[derive(Debug, Default)]
pub(crate) struct IpSets {
    /// The IP sets each active policy or profile holds a reference on.
    owners: FxHashMap<Owner, Vec<String>>,
    sets: FxHashMap<String, IpSetState>,
    /// Active IP sets by [`IpSetDef::namespace`].
    by_ns: FxHashMap<Option<String>, FxHashSet<String>>,
}

impl IpSets {
    /// Makes `owner` hold exactly the sets of `desired`: a set gaining its first reference is
    /// built from `items` and marked new, one losing its last is dropped (and marked removed if
    /// it was `sent`).
    pub fn set_owner_sets(
        &mut self,
        owner: Owner,
        desired: Vec<IpSetDef>,
        items: &Items,
        sent: &FxHashSet<String>,
        pending: &mut Pending,
    ) {
        let old = self.owners.remove(&owner).unwrap_or_default();
        let new: Vec<String> = desired.iter().map(|d| d.id.clone()).collect();
        for def in desired {
            if !old.contains(&def.id) {
                self.incref(def, items, pending);
            }
        }
        for id in &old {
            if !new.contains(id) {
                self.decref(id, sent, pending);
            }
        }
        if !new.is_empty() {
            self.owners.insert(owner, new);
        }
    }

    fn incref(&mut self, def: IpSetDef, items: &Items, pending: &mut Pending) {
        if let Some(set) = self.sets.get_mut(&def.id) {
            set.refs += 1;
            return;
        }
        let id = def.id.clone();
        let mut set = IpSetState { def, refs: 1, members: FxHashMap::default(), contrib: FxHashMap::default() };
        for (key, item) in items.candidates(set.def.namespace.as_deref()) {
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
        pending.removed_sets.remove(&id);
        pending.deltas.remove(&id);
        pending.new_sets.insert(id.clone());
        self.by_ns.entry(set.def.namespace.clone()).or_default().insert(id.clone());
        self.sets.insert(id, set);
    }

    fn decref(&mut self, id: &str, sent: &FxHashSet<String>, pending: &mut Pending) {
        let Some(set) = self.sets.get_mut(id) else { return };
        set.refs -= 1;
        if set.refs > 0 {
            return;
        }
        if let Some(set) = self.sets.remove(id)
            && let Some(ids) = self.by_ns.get_mut(&set.def.namespace)
        {
            ids.remove(id);
            if ids.is_empty() {
                self.by_ns.remove(&set.def.namespace);
            }
        }
        pending.new_sets.remove(id);
        pending.deltas.remove(id);
        if sent.contains(id) {
            pending.removed_sets.insert(id.to_owned());
        }
    }

    /// Re-evaluates one item against the active IP sets it can be in: the unscoped ones and
    /// those scoped to its namespace before (`old_ns`) or now.
    pub fn reindex_item(&mut self, key: &ItemKey, item: Option<&Item>, old_ns: Option<&String>, pending: &mut Pending) {
        let new_ns = item.and_then(|i| i.labels.get(LABEL_NAMESPACE));
        let mut buckets = vec![None, old_ns.cloned()];
        if new_ns != old_ns {
            buckets.push(new_ns.cloned());
        }
        for bucket in buckets.iter().filter_map(|ns| self.by_ns.get(ns)) {
            for id in bucket {
                if let Some(set) = self.sets.get_mut(id) {
                    reindex_in_set(set, key, item, pending);
                }
            }
        }
    }

    /// The IP-set messages of a flush: sets that became active (full members, marked `sent`),
    /// deltas of sent sets, removes of sent sets no longer active.
    /// The deltas are taken out of `pending`.
    pub fn flush(&self, pending: &mut Pending, sent: &mut FxHashSet<String>, batch: &mut Batch) {
        for id in &pending.new_sets {
            if let Some(set) = self.sets.get(id) {
                let mut members: Vec<String> = set.members.keys().cloned().collect();
                members.sort();
                let r#type = if set.def.named_port.is_some() { IpSetType::IpAndPort } else { IpSetType::Net };
                batch.push(
                    Slot::IpSetAdds,
                    Payload::IpsetUpdate(IpSetUpdate { id: id.clone(), members, r#type: r#type as i32 }),
                );
                sent.insert(id.clone());
            }
        }
        for (id, d) in std::mem::take(&mut pending.deltas) {
            if (d.added.is_empty() && d.removed.is_empty()) || !self.sets.contains_key(&id) || !sent.contains(&id) {
                continue;
            }
            batch.push(
                Slot::IpSetDeltas,
                Payload::IpsetDeltaUpdate(IpSetDeltaUpdate {
                    id,
                    added_members: d.added.into_iter().collect(),
                    removed_members: d.removed.into_iter().collect(),
                }),
            );
        }
        for id in &pending.removed_sets {
            if !self.sets.contains_key(id) && sent.remove(id) {
                batch.push(Slot::IpSetRemoves, Payload::IpsetRemove(IpSetRemove { id: id.clone() }));
            }
        }
    }
}
