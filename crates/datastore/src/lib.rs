//! What a datastore backend (files, etcd, Kubernetes) tells the calculator: one stream of
//! [`Event`]s, the same for every backend, so the calculator cannot tell them apart. Every
//! backend is a [`Backend`]: it watches its datastore into a [`Sink`], and whoever runs it
//! (the binary, a test) decides what the sink is; the traits need no async runtime.
//!
//! ```text
//! files | etcd | k8s ──Backend::run──▶ Sink ──Event──▶ calc ──▶ sync server / standalone store
//! ```
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing))]

use std::{borrow::Borrow, collections::BTreeMap, sync::Arc};

pub use alp_resources::{Resource, ResourceError, ResourceKey};

/// One change in the datastore.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A resource was added or replaced (shared with the backend's view, not copied).
    Apply(Arc<Resource>),
    /// A resource went away.
    Delete(ResourceKey),
    /// The initial listing is complete: what came before is the whole datastore.
    InitDone,
}

impl Event {
    /// One line saying what happened (`apply …`, `delete …`, `init-done`), the resource and
    /// the key written by `resource` and `key`: what tests compare.
    pub fn summary(&self, resource: impl Fn(&Resource) -> String, key: impl Fn(&ResourceKey) -> String) -> String {
        match self {
            Event::Apply(r) => format!("apply {}", resource(r)),
            Event::Delete(k) => format!("delete {}", key(k)),
            Event::InitDone => "init-done".to_owned(),
        }
    }
}

/// The consumer went away: a backend stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Closed;

/// Where a backend reports: its events, in order, and whether its datastore is reachable.
pub trait Sink: Send {
    /// Hands `event` on, waiting while the consumer is behind; `Err(Closed)` once it is gone.
    fn send(&mut self, event: Event) -> impl Future<Output = Result<(), Closed>> + Send;

    /// Whether the datastore is reachable now (etcd: a watch is established). Nothing is
    /// deleted on a disconnect: the consumer keeps the state it has.
    fn set_connected(&mut self, connected: bool);
}

/// A datastore backend: `file:DIR`, `etcd:URL`, (next) the Kubernetes API.
pub trait Backend: Send {
    /// Watches the datastore into `sink`: every resource, [`Event::InitDone`], then each change,
    /// with the reachability as it changes (a backend that is always reachable says so before
    /// its first event). Errors are logged and retried by the backend, which returns only once
    /// `sink` is closed; dropping the future stops it.
    fn run(self, sink: impl Sink) -> impl Future<Output = ()> + Send;
}

/// The difference between two complete views of a datastore, as events (deletes first, then
/// what is new or changed, each in key order).
///
/// The views hold plain or shared resources (`Resource`, `Arc<Resource>`); an applied resource
/// is `new`'s own when it is shared already, not a copy, and one held by both views (the same
/// allocation) is unchanged without being compared.
pub fn diff<O, N>(old: &BTreeMap<ResourceKey, O>, new: &BTreeMap<ResourceKey, N>) -> Vec<Event>
where
    O: Borrow<Resource>,
    N: Borrow<Resource> + Clone + Into<Arc<Resource>>,
{
    let unchanged = |cur: &O, r: &N| {
        let (cur, r): (&Resource, &Resource) = (cur.borrow(), r.borrow());
        std::ptr::eq(cur, r) || cur == r
    };
    let deletes = old.keys().filter(|k| !new.contains_key(*k)).map(|k| Event::Delete(k.clone()));
    let applies = new
        .iter()
        .filter(|(k, r)| old.get(*k).is_none_or(|cur| !unchanged(cur, r)))
        .map(|(_, r)| Event::Apply(r.clone().into()));
    deletes.chain(applies).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(name: &str, label: &str) -> (ResourceKey, Resource) {
        let yaml = format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}, labels: {{team: {label}}}}}\n");
        let r = alp_resources::parse_documents(&yaml, "t.yaml").remove(0).unwrap();
        (r.key(), r)
    }

    fn summary(events: &[Event]) -> Vec<String> {
        events.iter().map(|e| e.summary(|r| r.name().to_owned(), |k| k.name.clone())).collect()
    }

    #[test]
    fn diff_reports_adds_changes_and_deletes() {
        let old: BTreeMap<_, _> = [ns("a", "x"), ns("b", "x"), ns("c", "x")].into_iter().collect();
        let new: BTreeMap<_, _> = [ns("a", "x"), ns("b", "y"), ns("d", "x")].into_iter().collect();
        assert_eq!(summary(&diff(&old, &new)), ["delete c", "apply b", "apply d"]);
        assert!(diff(&new, &new).is_empty());
    }

    #[test]
    fn diff_over_shared_resources_shares_them() {
        let shared = |entries: Vec<(ResourceKey, Resource)>| -> BTreeMap<_, _> {
            entries.into_iter().map(|(k, r)| (k, Arc::new(r))).collect()
        };
        let old = shared(vec![ns("a", "x"), ns("b", "x"), ns("c", "x")]);
        let mut new = shared(vec![ns("b", "y"), ns("d", "x")]);
        // `a` is the same allocation in both, `c` an equal copy: neither is applied.
        new.insert(old.keys().next().unwrap().clone(), old.values().next().unwrap().clone());
        let (c_key, c) = ns("c", "x");
        new.insert(c_key, Arc::new(c));
        let events = diff(&old, &new);
        assert_eq!(summary(&events), ["apply b", "apply d"]);
        for e in &events {
            let Event::Apply(r) = e else { panic!("{e:?}") };
            assert!(Arc::ptr_eq(r, &new[&r.key()]), "the new view's resource, not a copy");
        }

        // Plain views against shared ones, either way round.
        let plain: BTreeMap<_, _> = old.iter().map(|(k, r)| (k.clone(), Resource::clone(r))).collect();
        assert_eq!(summary(&diff(&plain, &new)), ["apply b", "apply d"]);
        let plain_new: BTreeMap<_, _> = new.iter().map(|(k, r)| (k.clone(), Resource::clone(r))).collect();
        assert_eq!(summary(&diff(&new, &plain_new)), Vec::<String>::new());
        assert_eq!(summary(&diff(&plain_new, &old)), ["delete d", "apply b"]);
    }
}
