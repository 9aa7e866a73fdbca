//! What a datastore backend (files, etcd, Kubernetes) tells the calculator: one stream of
//! [`Event`]s, the same for every backend, so the calculator cannot tell them apart.
//!
//! ```text
//! files | etcd | k8s ──Event──▶ calc ──▶ sync server / standalone store
//! ```
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing))]

use std::{collections::BTreeMap, sync::Arc};

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

/// The difference between two complete views of a datastore, as events (deletes first).
pub fn diff(old: &BTreeMap<ResourceKey, Resource>, new: &BTreeMap<ResourceKey, Resource>) -> Vec<Event> {
    let deletes = old.keys().filter(|k| !new.contains_key(*k)).map(|k| Event::Delete(k.clone()));
    let applies = new.iter().filter(|(k, r)| old.get(*k) != Some(*r)).map(|(_, r)| Event::Apply(Arc::new(r.clone())));
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

    #[test]
    fn diff_reports_adds_changes_and_deletes() {
        let old: BTreeMap<_, _> = [ns("a", "x"), ns("b", "x"), ns("c", "x")].into_iter().collect();
        let new: BTreeMap<_, _> = [ns("a", "x"), ns("b", "y"), ns("d", "x")].into_iter().collect();
        let events = diff(&old, &new);
        let summary: Vec<String> = events
            .iter()
            .map(|e| match e {
                Event::Apply(r) => format!("apply {}", r.name()),
                Event::Delete(k) => format!("delete {}", k.name),
                Event::InitDone => "init-done".into(),
            })
            .collect();
        assert_eq!(summary, ["delete c", "apply b", "apply d"]);
    }
}
