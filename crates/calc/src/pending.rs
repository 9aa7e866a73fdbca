//! What the current call may have changed: the keys each index marks as it goes, which the
//! flush compares with what was sent.

use std::collections::{BTreeMap, BTreeSet};

use crate::items::ItemKey;
use crate::policy::PolicyKey;

/// Membership changes of a sent IP set since the last flush.
#[derive(Debug, Default)]
pub(crate) struct Delta {
    pub added: BTreeSet<String>,
    pub removed: BTreeSet<String>,
}

/// What the current call may have changed; the flush compares it with what was sent.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    pub endpoints: BTreeSet<ItemKey>,
    pub policies: BTreeSet<PolicyKey>,
    pub profiles: BTreeSet<String>,
    pub namespaces: BTreeSet<String>,
    pub service_accounts: BTreeSet<(String, String)>,
    /// IP sets that became active: sent whole.
    pub new_sets: BTreeSet<String>,
    /// IP sets that are no longer active.
    pub removed_sets: BTreeSet<String>,
    /// Member changes of the other active sets.
    pub deltas: BTreeMap<String, Delta>,
}

impl Pending {
    /// `member` joined the active set `id` (nothing to record for a set sent whole).
    pub fn member_added(&mut self, id: &str, member: &str) {
        if let Some(d) = self.delta(id) {
            note(&mut d.added, &mut d.removed, member);
        }
    }

    /// `member` left the active set `id`.
    pub fn member_removed(&mut self, id: &str, member: &str) {
        if let Some(d) = self.delta(id) {
            note(&mut d.removed, &mut d.added, member);
        }
    }

    /// The delta of `id`, unless the set is new (it goes out whole).
    fn delta(&mut self, id: &str) -> Option<&mut Delta> {
        if self.new_sets.contains(id) {
            return None;
        }
        Some(self.deltas.entry(id.to_owned()).or_default())
    }
}

/// Records `member` on one side of a delta, unless it cancels a change on the other.
fn note(side: &mut BTreeSet<String>, other_side: &mut BTreeSet<String>, member: &str) {
    if !other_side.remove(member) {
        side.insert(member.to_owned());
    }
}
