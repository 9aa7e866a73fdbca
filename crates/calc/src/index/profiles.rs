//! Profiles: explicit ones, those Calico derives from Namespaces (`kns.`) and ServiceAccounts
//! (`ksa.`), the built-in `projectcalico-default-allow`; the labels each gives the items that
//! name it, and which items inherit from (or, locally, name) each.

use std::collections::BTreeMap;

use alp_felix::{namespace_of_profile, service_account_of_profile};
use alp_proto::felix::Profile;
use alp_resources::{Action, ProfileSpec, Rule};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::convert::{ConvertedRules, IpSetDef, LABEL_NAME, NAMESPACE_LABEL_PREFIX, SERVICE_ACCOUNT_LABEL_PREFIX};
use crate::items::{ItemData, ItemKey};
use crate::pending::Pending;

/// The profile Calico synthesises in the Kubernetes datastore for host endpoints: allow all.
pub const DEFAULT_ALLOW_PROFILE: &str = "projectcalico-default-allow";

/// A profile: the labels it gives its endpoints and its converted rules.
#[derive(Clone, Debug, PartialEq)]
struct ProfileData {
    labels: BTreeMap<String, String>,
    rules: ConvertedRules,
}

/// A service account's key, `(namespace, name)`.
pub(crate) type ServiceAccountKey = (String, String);

/// `ksa.<namespace>.<name>` → (namespace, name), owned.
fn service_account_key(profile: &str) -> Option<ServiceAccountKey> {
    service_account_of_profile(profile).map(|(ns, sa)| (ns.to_owned(), sa.to_owned()))
}

/// `decodeLabels`: a profile's labels with the `pcns.`/`pcsa.` prefix stripped.
fn decode_labels(labels: &BTreeMap<String, String>, prefix: &str) -> BTreeMap<String, String> {
    labels.iter().map(|(k, v)| (k.strip_prefix(prefix).unwrap_or(k).to_owned(), v.clone())).collect()
}

/// Felix's stand-in for a profile an endpoint names but the datastore lacks
/// (`DummyDropRules`): deny both ways.
fn dummy_drop_profile(name: &str) -> Profile {
    ConvertedRules::for_profile(name, &[Rule::new(Action::Deny)], &[Rule::new(Action::Deny)]).to_profile()
}

/// Removes `key` from the set under `name`; true when that emptied (and dropped) the set.
fn remove_ref(map: &mut FxHashMap<String, FxHashSet<ItemKey>>, name: &str, key: &ItemKey) -> bool {
    let Some(s) = map.get_mut(name) else { return false };
    s.remove(key);
    if s.is_empty() {
        map.remove(name);
        return true;
    }
    false
}

/// The profiles' sources, the effective profiles, and the items that refer to them.
#[derive(Debug)]
pub(crate) struct Profiles {
    explicit: BTreeMap<String, ProfileSpec>,
    namespaces: BTreeMap<String, BTreeMap<String, String>>,
    service_accounts: BTreeMap<ServiceAccountKey, BTreeMap<String, String>>,
    /// Effective profiles by name (explicit, or derived from a namespace or service account).
    effective: FxHashMap<String, ProfileData>,
    /// Profile → the items inheriting its labels.
    inheriting: FxHashMap<String, FxHashSet<ItemKey>>,
    /// Profile → the local workloads naming it (only non-empty entries): the active profiles.
    named_locally: FxHashMap<String, FxHashSet<ItemKey>>,
}

impl Profiles {
    /// No sources yet: only the built-in `projectcalico-default-allow`.
    pub fn new() -> Self {
        let mut profiles = Profiles {
            explicit: BTreeMap::new(),
            namespaces: BTreeMap::new(),
            service_accounts: BTreeMap::new(),
            effective: FxHashMap::default(),
            inheriting: FxHashMap::default(),
            named_locally: FxHashMap::default(),
        };
        if let Some(p) = profiles.compute(DEFAULT_ALLOW_PROFILE) {
            profiles.effective.insert(DEFAULT_ALLOW_PROFILE.to_owned(), p);
        }
        profiles
    }

    /// Adds, replaces (`Some`) or removes (`None`) a Profile resource.
    pub fn set_explicit(&mut self, name: &str, spec: Option<ProfileSpec>) {
        match spec {
            Some(spec) => self.explicit.insert(name.to_owned(), spec),
            None => self.explicit.remove(name),
        };
    }

    /// Adds, replaces (`Some`) or removes (`None`) a Namespace's labels.
    pub fn set_namespace(&mut self, name: &str, labels: Option<BTreeMap<String, String>>) {
        match labels {
            Some(labels) => self.namespaces.insert(name.to_owned(), labels),
            None => self.namespaces.remove(name),
        };
    }

    /// Adds, replaces (`Some`) or removes (`None`) a ServiceAccount's labels.
    pub fn set_service_account(&mut self, key: ServiceAccountKey, labels: Option<BTreeMap<String, String>>) {
        match labels {
            Some(labels) => self.service_accounts.insert(key, labels),
            None => self.service_accounts.remove(&key),
        };
    }

    /// The effective profile of this name: an explicit Profile, else the one Calico derives
    /// from a Namespace (`kns.`: the namespace's labels as `pcns.*` plus
    /// `pcns.projectcalico.org/name`, allow both ways) or a ServiceAccount (`ksa.`: `pcsa.*`
    /// labels, no rules), else the built-in `projectcalico-default-allow`.
    fn compute(&self, name: &str) -> Option<ProfileData> {
        if let Some(spec) = self.explicit.get(name) {
            return Some(ProfileData {
                labels: spec.labels_to_apply.clone(),
                rules: ConvertedRules::for_profile(name, &spec.ingress, &spec.egress),
            });
        }
        let allow = [Rule::new(Action::Allow)];
        if let Some(ns) = namespace_of_profile(name)
            && let Some(labels) = self.namespaces.get(ns)
        {
            let mut l: BTreeMap<String, String> =
                labels.iter().map(|(k, v)| (format!("{NAMESPACE_LABEL_PREFIX}{k}"), v.clone())).collect();
            l.insert(format!("{NAMESPACE_LABEL_PREFIX}{LABEL_NAME}"), ns.to_owned());
            return Some(ProfileData { labels: l, rules: ConvertedRules::for_profile(name, &allow, &allow) });
        }
        if let Some(id) = service_account_key(name)
            && let Some(labels) = self.service_accounts.get(&id)
        {
            let mut l: BTreeMap<String, String> =
                labels.iter().map(|(k, v)| (format!("{SERVICE_ACCOUNT_LABEL_PREFIX}{k}"), v.clone())).collect();
            l.insert(format!("{SERVICE_ACCOUNT_LABEL_PREFIX}{LABEL_NAME}"), id.1);
            return Some(ProfileData { labels: l, rules: ConvertedRules::for_profile(name, &[], &[]) });
        }
        (name == DEFAULT_ALLOW_PROFILE)
            .then(|| ProfileData { labels: BTreeMap::new(), rules: ConvertedRules::for_profile(name, &allow, &allow) })
    }

    /// Recomputes a profile after one of its sources changed: its rules changing marks it
    /// pending; its labels changing marks its namespace or service account pending and returns
    /// the items that inherit them (in key order), to relabel.
    pub fn refresh(&mut self, name: &str, pending: &mut Pending) -> Vec<ItemKey> {
        let new = self.compute(name);
        let old = self.effective.remove(name);
        let labels_changed = old.as_ref().map(|p| &p.labels) != new.as_ref().map(|p| &p.labels);
        if old.as_ref().map(|p| &p.rules) != new.as_ref().map(|p| &p.rules) {
            pending.profiles.insert(name.to_owned());
        }
        if let Some(p) = new {
            self.effective.insert(name.to_owned(), p);
        }
        if !labels_changed {
            return Vec::new();
        }
        if let Some(ns) = namespace_of_profile(name) {
            pending.namespaces.insert(ns.to_owned());
        } else if let Some(id) = service_account_key(name) {
            pending.service_accounts.insert(id);
        }
        let mut relabel: Vec<ItemKey> =
            self.inheriting.get(name).map(|s| s.iter().cloned().collect()).unwrap_or_default();
        relabel.sort();
        relabel
    }

    /// Labels after inheritance: the item's own labels win over its profiles', earlier profiles
    /// over later ones.
    pub fn effective_labels(&self, data: &ItemData) -> BTreeMap<String, String> {
        let mut labels = data.labels.clone();
        for pid in &data.profile_ids {
            if let Some(p) = self.effective.get(pid) {
                for (k, v) in &p.labels {
                    labels.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
        }
        labels
    }

    /// An item that named `old` profiles (local: `old_local`) now names `new` (`new_local`):
    /// the profiles no longer or newly named by a local workload are marked pending.
    pub fn rename_refs(
        &mut self,
        key: &ItemKey,
        (old, old_local): (&[String], bool),
        (new, new_local): (&[String], bool),
        pending: &mut Pending,
    ) {
        for pid in old {
            remove_ref(&mut self.inheriting, pid, key);
            if old_local && remove_ref(&mut self.named_locally, pid, key) {
                pending.profiles.insert(pid.clone());
            }
        }
        for pid in new {
            self.inheriting.entry(pid.clone()).or_default().insert(key.clone());
            if new_local {
                let s = self.named_locally.entry(pid.clone()).or_default();
                if s.is_empty() {
                    pending.profiles.insert(pid.clone());
                }
                s.insert(key.clone());
            }
        }
    }

    /// Whether a local workload names the profile (it is active).
    pub fn is_active(&self, name: &str) -> bool {
        self.named_locally.contains_key(name)
    }

    /// The profile as sent while active: its rules, or deny both ways when the datastore lacks
    /// it. `None` while inactive.
    pub fn active(&self, name: &str) -> Option<Profile> {
        self.is_active(name)
            .then(|| self.effective.get(name).map_or_else(|| dummy_drop_profile(name), |p| p.rules.to_profile()))
    }

    /// The IP sets an active profile's rules name (none while inactive).
    pub fn active_ip_sets(&self, name: &str) -> Vec<IpSetDef> {
        if !self.is_active(name) {
            return Vec::new();
        }
        self.effective.get(name).map(|p| p.rules.ip_sets.values().cloned().collect()).unwrap_or_default()
    }

    /// A namespace's labels as `NamespaceUpdate` carries them (`profile_decoder.go`), from its
    /// profile.
    pub fn namespace_labels(&self, profile: &str) -> Option<BTreeMap<String, String>> {
        self.effective.get(profile).map(|p| decode_labels(&p.labels, NAMESPACE_LABEL_PREFIX))
    }

    /// A service account's labels as `ServiceAccountUpdate` carries them, from its profile.
    pub fn service_account_labels(&self, profile: &str) -> Option<BTreeMap<String, String>> {
        self.effective.get(profile).map(|p| decode_labels(&p.labels, SERVICE_ACCOUNT_LABEL_PREFIX))
    }
}
