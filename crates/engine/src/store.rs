use std::{collections::HashMap, sync::Arc};

use alp_ipset::{InvalidMember, IpSet, IpSetType};
use alp_model::{Endpoint, Policy, PolicyId, Profile, SetRef};
use alp_proto::felix::{self, ip_set_update::IpSetType as WireSetType, to_dataplane::Payload};

use crate::contents::Contents;

/// Engine settings that come from the command line, not from the stream.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// Difference D7: when set, a SPIFFE principal of another trust domain is not a local
    /// identity: service-account and namespace clauses that constrain the peer do not match it.
    pub trust_domain: Option<String>,
}

/// What applying one message did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The stream said InSync: a snapshot may be taken.
    InSync,
    /// State changed.
    Updated,
    /// Nothing changed (e.g. an empty message).
    Ignored,
}

/// A message that could not be (fully) applied. The rest of the store is untouched; for a bad
/// member, the other members of the update are applied.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A message that must carry an id (named here) had none.
    #[error("{0} without an id")]
    MissingId(&'static str),
    /// An `IPSetDeltaUpdate` for a set never created.
    #[error("IPSetDeltaUpdate for unknown IP set {0:?}")]
    UnknownSet(String),
    /// An `IPSetUpdate` whose `type` is not a known set type.
    #[error("IPSetUpdate {id:?} has unknown type {value}: set not stored")]
    UnknownSetType {
        /// The set's id.
        id: String,
        /// The `type` value received.
        value: i32,
    },
    /// A member of the set does not parse; the other members are applied.
    #[error("IP set {id:?}: {source}")]
    InvalidMember {
        /// The set's id.
        id: String,
        /// Why the member is rejected.
        #[source]
        source: InvalidMember,
    },
}

/// The policy store of one policy-sync connection (difference D5: a fresh store per
/// connection). Updates compile what they carry at once; [`Store::snapshot`] only assembles.
#[derive(Debug, Default)]
pub struct Store {
    config: Arc<Config>,
    in_sync: bool,
    set_index: HashMap<String, SetRef>,
    pub(crate) contents: Contents,
}

impl Store {
    /// An empty store.
    pub fn new(config: Config) -> Self {
        Store { config: Arc::new(config), ..Store::default() }
    }

    /// True once InSync has been applied.
    pub fn in_sync(&self) -> bool {
        self.in_sync
    }

    pub(crate) fn config(&self) -> &Arc<Config> {
        &self.config
    }

    fn intern(index: &mut HashMap<String, SetRef>, names: &mut Vec<Arc<str>>, id: &str) -> SetRef {
        if let Some(r) = index.get(id) {
            return *r;
        }
        let r = SetRef(u32::try_from(names.len()).unwrap_or(u32::MAX));
        names.push(Arc::from(id));
        index.insert(id.to_owned(), r);
        r
    }

    fn set_ref(&mut self, id: &str) -> SetRef {
        let r = Self::intern(&mut self.set_index, &mut self.contents.set_names, id);
        let i = r.0 as usize;
        if self.contents.sets.len() <= i {
            self.contents.sets.resize(i + 1, None);
        }
        r
    }

    fn set_slot(&mut self, r: SetRef) -> Option<&mut Option<Arc<IpSet>>> {
        self.contents.sets.get_mut(r.0 as usize)
    }

    /// Applies one policy-sync message as Dikastes's policy store does: an update replaces, a
    /// remove deletes, anything else is ignored.
    pub fn apply(&mut self, msg: &felix::ToDataplane) -> Result<Applied, StoreError> {
        let Some(payload) = msg.payload.as_ref() else { return Ok(Applied::Ignored) };
        match payload {
            Payload::InSync(_) => {
                self.in_sync = true;
                return Ok(Applied::InSync);
            }
            Payload::IpsetUpdate(u) => return self.ipset_update(u),
            Payload::IpsetDeltaUpdate(u) => return self.ipset_delta(u),
            Payload::IpsetRemove(u) => {
                if let Some(r) = self.set_index.get(&u.id).copied()
                    && let Some(slot) = self.set_slot(r)
                {
                    *slot = None;
                }
            }
            Payload::ActivePolicyUpdate(u) => {
                let id = u.id.as_ref().ok_or(StoreError::MissingId("ActivePolicyUpdate"))?;
                let policy = u.policy.clone().unwrap_or_default();
                let (index, names) = (&mut self.set_index, &mut self.contents.set_names);
                let compiled = Policy::compile(&policy, &mut |s: &str| Self::intern(index, names, s));
                self.grow_sets();
                self.contents.policies.insert(PolicyId::from(id), Arc::new(compiled));
            }
            Payload::ActivePolicyRemove(u) => {
                let id = u.id.as_ref().ok_or(StoreError::MissingId("ActivePolicyRemove"))?;
                self.contents.policies.remove(&PolicyId::from(id));
            }
            Payload::ActiveProfileUpdate(u) => {
                let id = u.id.as_ref().ok_or(StoreError::MissingId("ActiveProfileUpdate"))?;
                let profile = u.profile.clone().unwrap_or_default();
                let (index, names) = (&mut self.set_index, &mut self.contents.set_names);
                let compiled = Profile::compile(&profile, &mut |s: &str| Self::intern(index, names, s));
                self.grow_sets();
                self.contents.profiles.insert(id.name.clone(), Arc::new(compiled));
            }
            Payload::ActiveProfileRemove(u) => {
                let id = u.id.as_ref().ok_or(StoreError::MissingId("ActiveProfileRemove"))?;
                self.contents.profiles.remove(&id.name);
            }
            Payload::WorkloadEndpointUpdate(u) => {
                self.contents.endpoint = Some(Arc::new(u.endpoint.as_ref().map(Endpoint::from).unwrap_or_default()));
            }
            Payload::WorkloadEndpointRemove(_) => self.contents.endpoint = None,
            Payload::ServiceAccountUpdate(u) => {
                let id = u.id.as_ref().ok_or(StoreError::MissingId("ServiceAccountUpdate"))?;
                self.contents
                    .service_accounts
                    .entry(id.namespace.clone())
                    .or_default()
                    .insert(id.name.clone(), Arc::new(u.labels.clone().into_iter().collect()));
            }
            Payload::ServiceAccountRemove(u) => {
                let id = u.id.as_ref().ok_or(StoreError::MissingId("ServiceAccountRemove"))?;
                if let Some(by_name) = self.contents.service_accounts.get_mut(&id.namespace) {
                    by_name.remove(&id.name);
                    if by_name.is_empty() {
                        self.contents.service_accounts.remove(&id.namespace);
                    }
                }
            }
            Payload::NamespaceUpdate(u) => {
                let id = u.id.as_ref().ok_or(StoreError::MissingId("NamespaceUpdate"))?;
                self.contents.namespaces.insert(id.name.clone(), Arc::new(u.labels.clone().into_iter().collect()));
            }
            Payload::NamespaceRemove(u) => {
                let id = u.id.as_ref().ok_or(StoreError::MissingId("NamespaceRemove"))?;
                self.contents.namespaces.remove(&id.name);
            }
        }
        Ok(Applied::Updated)
    }

    fn grow_sets(&mut self) {
        if self.contents.sets.len() < self.contents.set_names.len() {
            self.contents.sets.resize(self.contents.set_names.len(), None);
        }
    }

    fn ipset_update(&mut self, u: &felix::IpSetUpdate) -> Result<Applied, StoreError> {
        let kind = match WireSetType::try_from(u.r#type) {
            Ok(WireSetType::Ip) => IpSetType::Ip,
            Ok(WireSetType::IpAndPort) => IpSetType::IpAndPort,
            Ok(WireSetType::Net) => IpSetType::Net,
            Err(_) => return Err(StoreError::UnknownSetType { id: u.id.clone(), value: u.r#type }),
        };
        let mut set = IpSet::new(kind);
        set.reserve_hint(u.members.len());
        let mut first_bad = None;
        for m in &u.members {
            if let Err(e) = set.add(m) {
                first_bad.get_or_insert(e);
            }
        }
        let r = self.set_ref(&u.id);
        if let Some(slot) = self.set_slot(r) {
            *slot = Some(Arc::new(set));
        }
        match first_bad {
            Some(source) => Err(StoreError::InvalidMember { id: u.id.clone(), source }),
            None => Ok(Applied::Updated),
        }
    }

    fn ipset_delta(&mut self, u: &felix::IpSetDeltaUpdate) -> Result<Applied, StoreError> {
        let slot = self
            .set_index
            .get(&u.id)
            .copied()
            .and_then(|r| self.contents.sets.get_mut(r.0 as usize))
            .and_then(Option::as_mut)
            .ok_or_else(|| StoreError::UnknownSet(u.id.clone()))?;
        let set = Arc::make_mut(slot);
        let mut first_bad = None;
        for m in &u.added_members {
            if let Err(e) = set.add(m) {
                first_bad.get_or_insert(e);
            }
        }
        for m in &u.removed_members {
            set.remove(m);
        }
        match first_bad {
            Some(source) => Err(StoreError::InvalidMember { id: u.id.clone(), source }),
            None => Ok(Applied::Updated),
        }
    }
}
