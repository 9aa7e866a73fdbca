//! What has been sent downstream, and the one diff that turns "what should be sent now" into
//! updates and removes, in Felix's event-sequencer order.

use std::{borrow::Cow, collections::BTreeMap, fmt::Debug, hash::Hash};

use alp_proto::felix::{
    ActivePolicyRemove, ActivePolicyUpdate, ActiveProfileRemove, ActiveProfileUpdate, NamespaceId, NamespaceRemove,
    NamespaceUpdate, Policy, Profile, ProfileId, ServiceAccountId, ServiceAccountRemove, ServiceAccountUpdate,
    ToDataplane, WorkloadEndpointRemove, WorkloadEndpointUpdate, to_dataplane::Payload,
};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::items::ItemKey;
use crate::policy::PolicyKey;

/// Where a message goes in a flush, in the order Felix's `event_sequencer.go` flushes: IP-set
/// adds, IP-set deltas, policy updates, profile updates, endpoint updates, endpoint removes,
/// profile removes, policy removes, IP-set removes, service accounts, namespaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    IpSetAdds,
    IpSetDeltas,
    PolicyUpdates,
    ProfileUpdates,
    EndpointUpdates,
    EndpointRemoves,
    ProfileRemoves,
    PolicyRemoves,
    IpSetRemoves,
    ServiceAccounts,
    Namespaces,
}

const SLOTS: usize = Slot::Namespaces as usize + 1;

/// One flush's messages, filled in any order, read in [`Slot`] order.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    slots: [Vec<ToDataplane>; SLOTS],
}

impl Batch {
    pub fn push(&mut self, slot: Slot, payload: Payload) {
        if let Some(messages) = self.slots.get_mut(slot as usize) {
            messages.push(payload.into());
        }
    }

    /// The messages, slot after slot.
    pub fn into_messages(self) -> Vec<ToDataplane> {
        let mut out = Vec::with_capacity(self.slots.iter().map(Vec::len).sum());
        for messages in self.slots {
            out.extend(messages);
        }
        out
    }
}

/// One kind of object the calculator sends: its key, what is sent for it, its messages and
/// where they go.
pub(crate) trait Sendable {
    type Key: Clone + Eq + Hash + Debug;
    type Value: Clone + PartialEq + Debug;
    /// Where its updates go, and its removes.
    const UPDATES: Slot;
    const REMOVES: Slot;
    fn update(key: &Self::Key, value: &Self::Value) -> Payload;
    fn remove(key: &Self::Key, sent: &Self::Value) -> Payload;
    /// Whether `new` is still the object `sent` was sent as; when not, `sent` is removed as
    /// well as `new` sent (a workload endpoint whose id changed).
    fn same_object(_sent: &Self::Value, _new: &Self::Value) -> bool {
        true
    }
}

/// What was last sent for each key of one kind.
#[derive(Debug)]
pub(crate) struct Sent<S: Sendable> {
    values: FxHashMap<S::Key, S::Value>,
}

impl<S: Sendable> Default for Sent<S> {
    fn default() -> Self {
        Sent { values: FxHashMap::default() }
    }
}

impl<S: Sendable> Sent<S> {
    /// For each key, in order, compares what should be sent now (`desired`, `None` when
    /// nothing should) with what was: the same, nothing; different, an update; no longer
    /// wanted, a remove (a remove too before the update when the object changed identity).
    /// Remembers what it sends.
    pub fn sync<'k, 'd>(
        &mut self,
        keys: impl IntoIterator<Item = &'k S::Key>,
        mut desired: impl FnMut(&S::Key) -> Option<Cow<'d, S::Value>>,
        batch: &mut Batch,
    ) where
        S::Key: 'k,
        S::Value: 'd,
    {
        for key in keys {
            let desired = desired(key);
            let sent = self.values.get(key);
            if desired.as_deref() == sent {
                continue;
            }
            if let Some(old) = sent
                && desired.as_deref().is_none_or(|d| !S::same_object(old, d))
            {
                batch.push(S::REMOVES, S::remove(key, old));
            }
            match desired {
                Some(d) => {
                    batch.push(S::UPDATES, S::update(key, &d));
                    self.values.insert(key.clone(), d.into_owned());
                }
                None => {
                    self.values.remove(key);
                }
            }
        }
    }
}

/// An active policy.
#[derive(Debug)]
pub(crate) enum ActivePolicy {}

impl Sendable for ActivePolicy {
    type Key = PolicyKey;
    type Value = Policy;
    const UPDATES: Slot = Slot::PolicyUpdates;
    const REMOVES: Slot = Slot::PolicyRemoves;
    fn update(key: &PolicyKey, policy: &Policy) -> Payload {
        Payload::ActivePolicyUpdate(ActivePolicyUpdate { id: Some(key.to_proto()), policy: Some(policy.clone()) })
    }
    fn remove(key: &PolicyKey, _: &Policy) -> Payload {
        Payload::ActivePolicyRemove(ActivePolicyRemove { id: Some(key.to_proto()) })
    }
}

/// An active profile.
#[derive(Debug)]
pub(crate) enum ActiveProfile {}

impl Sendable for ActiveProfile {
    type Key = String;
    type Value = Profile;
    const UPDATES: Slot = Slot::ProfileUpdates;
    const REMOVES: Slot = Slot::ProfileRemoves;
    fn update(name: &String, profile: &Profile) -> Payload {
        Payload::ActiveProfileUpdate(ActiveProfileUpdate {
            id: Some(ProfileId { name: name.clone() }),
            profile: Some(profile.clone()),
        })
    }
    fn remove(name: &String, _: &Profile) -> Payload {
        Payload::ActiveProfileRemove(ActiveProfileRemove { id: Some(ProfileId { name: name.clone() }) })
    }
}

/// A local workload's endpoint.
#[derive(Debug)]
pub(crate) enum Endpoint {}

impl Sendable for Endpoint {
    type Key = ItemKey;
    type Value = WorkloadEndpointUpdate;
    const UPDATES: Slot = Slot::EndpointUpdates;
    const REMOVES: Slot = Slot::EndpointRemoves;
    fn update(_: &ItemKey, update: &WorkloadEndpointUpdate) -> Payload {
        Payload::WorkloadEndpointUpdate(update.clone())
    }
    fn remove(_: &ItemKey, sent: &WorkloadEndpointUpdate) -> Payload {
        Payload::WorkloadEndpointRemove(WorkloadEndpointRemove { id: sent.id.clone() })
    }
    fn same_object(sent: &WorkloadEndpointUpdate, new: &WorkloadEndpointUpdate) -> bool {
        sent.id == new.id
    }
}

/// Labels, as a `ServiceAccountUpdate` or `NamespaceUpdate` carries them.
type Labels = BTreeMap<String, String>;

/// A service account's labels.
#[derive(Debug)]
pub(crate) enum ServiceAccount {}

impl Sendable for ServiceAccount {
    type Key = (String, String);
    type Value = Labels;
    const UPDATES: Slot = Slot::ServiceAccounts;
    const REMOVES: Slot = Slot::ServiceAccounts;
    fn update((namespace, name): &(String, String), labels: &Labels) -> Payload {
        Payload::ServiceAccountUpdate(ServiceAccountUpdate {
            id: Some(ServiceAccountId { namespace: namespace.clone(), name: name.clone() }),
            labels: labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        })
    }
    fn remove((namespace, name): &(String, String), _: &Labels) -> Payload {
        Payload::ServiceAccountRemove(ServiceAccountRemove {
            id: Some(ServiceAccountId { namespace: namespace.clone(), name: name.clone() }),
        })
    }
}

/// A namespace's labels.
#[derive(Debug)]
pub(crate) enum Namespace {}

impl Sendable for Namespace {
    type Key = String;
    type Value = Labels;
    const UPDATES: Slot = Slot::Namespaces;
    const REMOVES: Slot = Slot::Namespaces;
    fn update(name: &String, labels: &Labels) -> Payload {
        Payload::NamespaceUpdate(NamespaceUpdate {
            id: Some(NamespaceId { name: name.clone() }),
            labels: labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        })
    }
    fn remove(name: &String, _: &Labels) -> Payload {
        Payload::NamespaceRemove(NamespaceRemove { id: Some(NamespaceId { name: name.clone() }) })
    }
}

/// Everything sent so far: the downstream processor's view.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    pub ip_sets: FxHashSet<String>,
    pub policies: Sent<ActivePolicy>,
    pub profiles: Sent<ActiveProfile>,
    pub endpoints: Sent<Endpoint>,
    pub service_accounts: Sent<ServiceAccount>,
    pub namespaces: Sent<Namespace>,
    /// Whether `InSync` went out.
    pub in_sync: bool,
}
