//! Every item of the datastore (workload endpoints and network sets) with its labels after
//! profile inheritance, indexed by namespace, and the set of local workloads.

use std::collections::{BTreeMap, BTreeSet};

use rustc_hash::{FxHashMap, FxHashSet};

use crate::items::{ItemData, ItemKey};

/// An item with its labels after profile inheritance.
#[derive(Debug)]
pub(crate) struct Item {
    pub data: ItemData,
    pub labels: BTreeMap<String, String>,
}

/// The items, by key and by their `projectcalico.org/namespace` label.
#[derive(Debug, Default)]
pub(crate) struct Items {
    items: FxHashMap<ItemKey, Item>,
    /// Items by their `projectcalico.org/namespace` label (items without it are not here).
    by_ns: FxHashMap<String, FxHashSet<ItemKey>>,
    /// The local workloads.
    local: BTreeSet<ItemKey>,
}

impl Items {
    pub fn get(&self, key: &ItemKey) -> Option<&Item> {
        self.items.get(key)
    }

    pub fn get_mut(&mut self, key: &ItemKey) -> Option<&mut Item> {
        self.items.get_mut(key)
    }

    /// Takes an item out (its namespace and locality entries stay until changed).
    pub fn take(&mut self, key: &ItemKey) -> Option<Item> {
        self.items.remove(key)
    }

    pub fn insert(&mut self, key: ItemKey, item: Item) {
        self.items.insert(key, item);
    }

    /// The keys of the items in namespace `ns`.
    pub fn in_namespace<'a>(&'a self, ns: &str) -> impl Iterator<Item = &'a ItemKey> + 'a {
        self.by_ns.get(ns).into_iter().flatten()
    }

    /// The items an IP set scoped to `ns` can hold: those of that namespace, or every item.
    pub fn candidates<'a>(&'a self, ns: Option<&str>) -> Box<dyn Iterator<Item = (&'a ItemKey, &'a Item)> + 'a> {
        match ns {
            Some(ns) => Box::new(self.in_namespace(ns).filter_map(|k| self.items.get(k).map(|i| (k, i)))),
            None => Box::new(self.items.iter()),
        }
    }

    /// The local workloads, in key order.
    pub fn local(&self) -> &BTreeSet<ItemKey> {
        &self.local
    }

    pub fn set_local(&mut self, key: &ItemKey, local: bool) {
        if local {
            self.local.insert(key.clone());
        } else {
            self.local.remove(key);
        }
    }

    /// Moves an item from namespace `old` to `new` in the namespace index.
    pub fn move_namespace(&mut self, key: &ItemKey, old: Option<&String>, new: Option<&String>) {
        if old == new {
            return;
        }
        if let Some(ns) = old
            && let Some(keys) = self.by_ns.get_mut(ns)
        {
            keys.remove(key);
            if keys.is_empty() {
                self.by_ns.remove(ns);
            }
        }
        if let Some(ns) = new {
            self.by_ns.entry(ns.clone()).or_default().insert(key.clone());
        }
    }
}
