//! The datastore as the consumer has been told it: good etcd values by key, and the events that
//! turn one view into the next.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
};

use alp_datastore::{Event, diff};
use alp_resources::{Resource, ResourceKey};

use crate::codec::{DecodeError, decode};

/// One key of a listing: key, value, mod revision.
pub(crate) type Entry<'a> = (&'a str, &'a [u8], i64);

/// A value that did not decode, and whether an older good value of the key stays in force.
#[derive(Debug)]
pub(crate) struct Skipped {
    pub error: DecodeError,
    pub kept_last_good: bool,
}

/// Every etcd key whose value decoded, and the resources the consumer holds (shared with the
/// events, not copied).
///
/// A key whose value stops decoding keeps its last good resource (as the file datastore keeps a
/// file's last good content): a bad write never deletes anything; deleting the key does.
#[derive(Debug, Default)]
pub(crate) struct View {
    by_etcd_key: BTreeMap<String, Arc<Resource>>,
    /// The etcd keys giving each resource: more than one only when a legacy `<tier>.<name>`
    /// key and a plain one hold the same policy.
    owners: BTreeMap<ResourceKey, BTreeSet<String>>,
    emitted: BTreeMap<ResourceKey, Arc<Resource>>,
}

fn last_segment(etcd_key: &str) -> &str {
    etcd_key.rsplit('/').next().unwrap_or(etcd_key)
}

impl View {
    /// How many resources the consumer holds.
    pub fn len(&self) -> usize {
        self.emitted.len()
    }

    /// The resources the consumer holds, in key order.
    pub fn into_resources(self) -> Vec<Resource> {
        drop(self.by_etcd_key);
        self.emitted.into_values().map(Arc::unwrap_or_clone).collect()
    }

    /// The resource for `key` from its owners: the key that carries the plain name wins over a
    /// legacy one, then the first in key order.
    fn winner(&self, key: &ResourceKey) -> Option<&Arc<Resource>> {
        let owners = self.owners.get(key)?;
        let chosen = owners.iter().find(|k| last_segment(k) == key.name).or_else(|| owners.first())?;
        self.by_etcd_key.get(chosen)
    }

    fn settle(&mut self, key: &ResourceKey) -> Option<Event> {
        match (self.winner(key).cloned(), self.emitted.get(key)) {
            (Some(w), Some(cur)) if Arc::ptr_eq(&w, cur) || w == *cur => None,
            (Some(w), _) => {
                self.emitted.insert(key.clone(), w.clone());
                Some(Event::Apply(w))
            }
            (None, Some(_)) => {
                self.emitted.remove(key);
                Some(Event::Delete(key.clone()))
            }
            (None, None) => None,
        }
    }

    fn forget(&mut self, etcd_key: &str) -> Option<ResourceKey> {
        let old = self.by_etcd_key.remove(etcd_key)?.key();
        if let Some(owners) = self.owners.get_mut(&old) {
            owners.remove(etcd_key);
            if owners.is_empty() {
                self.owners.remove(&old);
            }
        }
        Some(old)
    }

    fn insert(&mut self, etcd_key: &str, resource: Arc<Resource>) -> ResourceKey {
        let key = resource.key();
        self.owners.entry(key.clone()).or_default().insert(etcd_key.to_owned());
        self.by_etcd_key.insert(etcd_key.to_owned(), resource);
        key
    }

    /// A put of `value` under `etcd_key`: the events it causes, or why it was skipped.
    pub fn put(&mut self, etcd_key: &str, value: &[u8], mod_revision: i64) -> Result<Vec<Event>, Skipped> {
        let resource = match decode(etcd_key, value, mod_revision) {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(Vec::new()),
            Err(error) => return Err(Skipped { error, kept_last_good: self.by_etcd_key.contains_key(etcd_key) }),
        };
        let old = self.forget(etcd_key);
        let new = self.insert(etcd_key, Arc::new(resource));
        let mut events: Vec<Event> = old.filter(|o| *o != new).and_then(|o| self.settle(&o)).into_iter().collect();
        events.extend(self.settle(&new));
        Ok(events)
    }

    /// A delete of `etcd_key`.
    pub fn delete(&mut self, etcd_key: &str) -> Vec<Event> {
        self.forget(etcd_key).and_then(|old| self.settle(&old)).into_iter().collect()
    }

    /// A complete listing: the difference from the current view as events (deletes first), and
    /// the values that were skipped.
    pub fn replace<'a>(&mut self, listing: impl IntoIterator<Item = Entry<'a>>) -> (Vec<Event>, Vec<Skipped>) {
        let mut previous = std::mem::take(&mut self.by_etcd_key);
        self.owners.clear();
        let mut skipped = Vec::new();
        for (etcd_key, value, mod_revision) in listing {
            match decode(etcd_key, value, mod_revision) {
                Ok(Some(r)) => {
                    self.insert(etcd_key, Arc::new(r));
                }
                Ok(None) => {}
                Err(error) => {
                    let last_good = previous.remove(etcd_key);
                    skipped.push(Skipped { error, kept_last_good: last_good.is_some() });
                    if let Some(r) = last_good {
                        self.insert(etcd_key, r);
                    }
                }
            }
        }
        let next: BTreeMap<ResourceKey, Arc<Resource>> =
            self.owners.keys().filter_map(|k| self.winner(k).map(|r| (k.clone(), r.clone()))).collect();
        let events = diff(&self.emitted, &next);
        self.emitted = next;
        (events, skipped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::PREFIX;

    fn tier(name: &str, order: u32) -> (String, Vec<u8>) {
        let value = format!(
            r#"{{"apiVersion":"projectcalico.org/v3","kind":"Tier","metadata":{{"name":"{name}"}},"spec":{{"order":{order}}}}}"#
        );
        (format!("{PREFIX}tiers/{name}"), value.into_bytes())
    }

    fn summary(events: &[Event]) -> Vec<String> {
        let versioned =
            |r: &Resource| format!("{}@{}", r.name(), r.metadata().resource_version.as_deref().unwrap_or(""));
        events.iter().map(|e| e.summary(versioned, |k| k.name.clone())).collect()
    }

    #[test]
    fn puts_deletes_and_last_good_values() {
        let mut view = View::default();
        let (a, av) = tier("a", 1);
        assert_eq!(summary(&view.put(&a, &av, 2).unwrap()), ["apply a@2"]);
        let err = view.put(&a, b"{", 3).unwrap_err();
        assert!(err.kept_last_good, "{}", err.error);
        assert_eq!(view.len(), 1);
        assert_eq!(summary(&view.delete(&a)), ["delete a"]);
        assert!(view.delete(&a).is_empty());
        let err = view.put(&a, b"{", 4).unwrap_err();
        assert!(!err.kept_last_good);
        assert!(view.put(&format!("{PREFIX}nodes/n"), b"{", 5).unwrap().is_empty());
    }

    #[test]
    fn replace_reports_only_the_difference() {
        let mut view = View::default();
        let (a, av) = tier("a", 1);
        let (b, bv) = tier("b", 1);
        let (c, cv) = tier("c", 1);
        let (events, skipped) = view.replace([(a.as_str(), av.as_slice(), 2), (b.as_str(), bv.as_slice(), 3)]);
        assert_eq!(summary(&events), ["apply a@2", "apply b@3"]);
        assert!(skipped.is_empty());
        let (_, bv2) = tier("b", 2);
        let (events, skipped) = view.replace([
            (a.as_str(), av.as_slice(), 2),
            (b.as_str(), b"{".as_slice(), 9),
            (c.as_str(), cv.as_slice(), 8),
        ]);
        assert_eq!(summary(&events), ["apply c@8"], "b keeps its last good value");
        assert!(skipped.first().is_some_and(|s| s.kept_last_good));
        let (events, _) = view.replace([(b.as_str(), bv2.as_slice(), 10)]);
        assert_eq!(summary(&events), ["delete a", "delete c", "apply b@10"]);
    }

    #[test]
    fn a_legacy_key_and_a_plain_key_for_one_policy() {
        let gnp = |name: &str| {
            format!(
                r#"{{"apiVersion":"projectcalico.org/v3","kind":"GlobalNetworkPolicy","metadata":{{"name":"{name}"}}}}"#
            )
        };
        let legacy = format!("{PREFIX}globalnetworkpolicies/default.p");
        let plain = format!("{PREFIX}globalnetworkpolicies/p");
        let mut view = View::default();
        assert_eq!(summary(&view.put(&legacy, gnp("default.p").as_bytes(), 2).unwrap()), ["apply p@2"]);
        assert_eq!(summary(&view.put(&plain, gnp("p").as_bytes(), 3).unwrap()), ["apply p@3"]);
        assert!(view.put(&legacy, gnp("default.p").as_bytes(), 4).unwrap().is_empty(), "the plain key wins");
        assert_eq!(summary(&view.delete(&plain)), ["apply p@4"]);
        assert_eq!(summary(&view.delete(&legacy)), ["delete p"]);
    }
}
