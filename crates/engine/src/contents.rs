//! What a [`crate::Store`] holds and a [`crate::Snapshot`] freezes: the endpoint, policies,
//! profiles and IP sets, compiled, and the labels of service accounts and namespaces.

use std::{collections::HashMap, sync::Arc};

use alp_ipset::IpSet;
use alp_model::{Endpoint, Policy, PolicyId, Profile, SetRef};

use crate::labels::LabelMap;

/// The compiled state of one policy-sync connection. Cloning shares every compiled piece.
#[derive(Clone, Debug, Default)]
pub(crate) struct Contents {
    /// IP set ids by [`SetRef`] (a rule names its sets by reference).
    pub set_names: Vec<Arc<str>>,
    /// IP sets by [`SetRef`]; `None` for a set named but not (or no longer) stored.
    pub sets: Vec<Option<Arc<IpSet>>>,
    pub policies: HashMap<PolicyId, Arc<Policy>>,
    pub profiles: HashMap<String, Arc<Profile>>,
    pub endpoint: Option<Arc<Endpoint>>,
    /// namespace → name → labels
    pub service_accounts: HashMap<String, HashMap<String, Arc<LabelMap>>>,
    pub namespaces: HashMap<String, Arc<LabelMap>>,
}

impl Contents {
    pub fn set(&self, r: SetRef) -> Option<&IpSet> {
        self.sets.get(r.0 as usize).and_then(|s| s.as_deref())
    }

    pub fn set_name(&self, r: SetRef) -> &str {
        self.set_names.get(r.0 as usize).map_or("?", |s| s)
    }
}
