//! The node agent's policy-sync processor (Felix's `policysync.Processor`), as pure logic: the
//! global calc-graph stream goes in through [`Processor::apply`]; what each connected workload's
//! stream must carry comes out, in order.
//! Streams come and go through [`Processor::join`] and [`Processor::leave`]. No I/O, no tokio:
//! the agent's server (`alp-sync-server`) owns the queues and sockets.
//!
//! A workload sees only the policies, profiles and IP sets its endpoint references, and
//! everything a message refers to arrives before it. IP-set updates are split at
//! [`MAX_MEMBERS_PER_MESSAGE`], as Felix does.

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use alp_proto::felix::{
    ActivePolicyRemove, ActivePolicyUpdate, ActiveProfileRemove, ActiveProfileUpdate, InSync, IpSetDeltaUpdate,
    IpSetRemove, IpSetUpdate, NamespaceUpdate, PolicyId, ProfileId, Rule, ServiceAccountUpdate, ToDataplane,
    WorkloadEndpointRemove, WorkloadEndpointUpdate, to_dataplane::Payload,
};
use tracing::{debug, warn};

#[cfg(doc)]
use crate::MAX_MEMBERS_PER_MESSAGE;
use crate::{is_connectable, split_ip_set_delta, split_ip_set_update};

/// A workload's key: its `WorkloadEndpointID.workload_id`, `<namespace>/<pod>`.
pub type EndpointKey = String;

/// One `Sync` stream of a workload. Ids grow from 1; a leave names the join it ends, so a late
/// leave of a replaced stream does not end its successor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JoinId(u64);

impl JoinId {
    /// The number (1 for the processor's first join).
    pub fn get(self) -> u64 {
        self.0
    }
}

impl std::fmt::Display for JoinId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "join#{}", self.0)
    }
}

/// What the server must do with a workload's current stream.
#[derive(Clone, Debug, PartialEq)]
// Nearly every value is a message: boxing would allocate once more per message for nothing.
#[allow(clippy::large_enum_variant)]
pub enum Outgoing {
    /// Send this message.
    Message(ToDataplane),
    /// End the stream cleanly once the messages before this one are sent (the workload's
    /// endpoint was removed; the processor has forgotten the stream).
    End,
}

/// Felix's policy-sync processor state: every active policy, profile, IP set (with its
/// members), service account and namespace, and per workload its last endpoint update, its
/// current stream and what that stream has been sent.
#[derive(Debug, Default)]
pub struct Processor {
    catalog: Catalog,
    endpoints: BTreeMap<EndpointKey, EndpointInfo>,
    in_sync: bool,
    last_join: u64,
}

/// Everything the calc graph has sent that is not per endpoint.
#[derive(Debug, Default)]
struct Catalog {
    policies: HashMap<PolicyId, Stored<ActivePolicyUpdate>>,
    profiles: HashMap<String, Stored<ActiveProfileUpdate>>,
    ip_sets: HashMap<String, IpSetInfo>,
    service_accounts: BTreeMap<(String, String), ServiceAccountUpdate>,
    namespaces: BTreeMap<String, NamespaceUpdate>,
}

/// A policy or profile update as received, with the IP sets its rules name.
#[derive(Debug)]
struct Stored<U> {
    update: U,
    ip_sets: Vec<String>,
}

#[derive(Debug)]
struct IpSetInfo {
    r#type: i32,
    members: BTreeSet<String>,
}

impl IpSetInfo {
    fn full_update(&self, id: &str) -> IpSetUpdate {
        IpSetUpdate { id: id.to_owned(), members: self.members.iter().cloned().collect(), r#type: self.r#type }
    }
}

#[derive(Debug, Default)]
struct EndpointInfo {
    /// The current stream, if one is connected.
    join: Option<JoinId>,
    /// The last `WorkloadEndpointUpdate`, once the calc graph has sent one.
    update: Option<WorkloadEndpointUpdate>,
    /// What the current stream has been sent.
    synced_policies: HashSet<PolicyId>,
    synced_profiles: HashSet<String>,
    synced_ip_sets: HashSet<String>,
}

impl EndpointInfo {
    fn reset_synced(&mut self) {
        self.synced_policies.clear();
        self.synced_profiles.clear();
        self.synced_ip_sets.clear();
    }

    /// The policies of the endpoint's tiers in tier order, ingress list then egress list,
    /// each once.
    fn policies(&self) -> Vec<&PolicyId> {
        let Some(endpoint) = self.update.as_ref().and_then(|u| u.endpoint.as_ref()) else { return Vec::new() };
        let mut seen = HashSet::new();
        endpoint
            .tiers
            .iter()
            .flat_map(|t| t.ingress_policies.iter().chain(&t.egress_policies))
            .filter(|id| seen.insert(*id))
            .collect()
    }

    /// The endpoint's profiles, in order, each once.
    fn profiles(&self) -> Vec<&String> {
        let Some(endpoint) = self.update.as_ref().and_then(|u| u.endpoint.as_ref()) else { return Vec::new() };
        let mut seen = HashSet::new();
        endpoint.profile_ids.iter().filter(|id| seen.insert(*id)).collect()
    }

    fn references_policy(&self, id: &PolicyId) -> bool {
        self.update
            .as_ref()
            .and_then(|u| u.endpoint.as_ref())
            .is_some_and(|e| e.tiers.iter().any(|t| t.ingress_policies.contains(id) || t.egress_policies.contains(id)))
    }

    fn references_profile(&self, name: &str) -> bool {
        self.update.as_ref().and_then(|u| u.endpoint.as_ref()).is_some_and(|e| e.profile_ids.iter().any(|p| p == name))
    }
}

/// Sort key of a policy id, for a stable order of removals.
fn policy_key(id: &PolicyId) -> (&str, &str, &str) {
    (&id.kind, &id.namespace, &id.name)
}

/// The IP sets `rules` name, in order of first mention (every `*ip_set_ids` field Felix reads).
fn rule_ip_sets<'r>(rules: impl IntoIterator<Item = &'r Rule>) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for r in rules {
        let ids = [
            &r.src_ip_set_ids,
            &r.dst_ip_set_ids,
            &r.dst_ip_port_set_ids,
            &r.src_named_port_ip_set_ids,
            &r.dst_named_port_ip_set_ids,
            &r.not_src_ip_set_ids,
            &r.not_dst_ip_set_ids,
            &r.not_src_named_port_ip_set_ids,
            &r.not_dst_named_port_ip_set_ids,
        ];
        for id in ids.into_iter().flatten() {
            if seen.insert(id.as_str()) {
                out.push(id.clone());
            }
        }
    }
    out
}

impl Catalog {
    /// The IP sets the endpoint's known policies and profiles name, in order of first mention.
    fn needed_ip_sets(&self, ep: &EndpointInfo) -> Vec<String> {
        let mut seen = HashSet::new();
        let from_policies = ep.policies().into_iter().filter_map(|id| self.policies.get(id)).map(|s| &s.ip_sets);
        let from_profiles = ep.profiles().into_iter().filter_map(|id| self.profiles.get(id)).map(|s| &s.ip_sets);
        from_policies.chain(from_profiles).flatten().filter(|id| seen.insert(id.as_str())).cloned().collect()
    }

    /// Brings the endpoint's IP sets up to date: returns the messages that add the sets it now
    /// needs (full, split) and those that remove the sets it no longer needs. A needed set the
    /// calc graph has not sent yet is left out and sent when it arrives.
    fn ip_set_sync(&self, ep: &mut EndpointInfo) -> (Vec<ToDataplane>, Vec<ToDataplane>) {
        let needed = self.needed_ip_sets(ep);
        let mut adds = Vec::new();
        for id in &needed {
            if ep.synced_ip_sets.contains(id) {
                continue;
            }
            if let Some(set) = self.ip_sets.get(id) {
                adds.extend(split_ip_set_update(set.full_update(id)));
                ep.synced_ip_sets.insert(id.clone());
            } else {
                debug!(ip_set = %id, "IP set referenced before the calc graph sent it");
            }
        }
        let needed: HashSet<&str> = needed.iter().map(String::as_str).collect();
        let mut gone: Vec<String> =
            ep.synced_ip_sets.iter().filter(|id| !needed.contains(id.as_str())).cloned().collect();
        gone.sort();
        for id in &gone {
            ep.synced_ip_sets.remove(id);
        }
        let removes = gone.into_iter().map(|id| ToDataplane::from(Payload::IpsetRemove(IpSetRemove { id }))).collect();
        (adds, removes)
    }

    /// The full endpoint sync (Felix's `maybeSyncEndpoint`) for a connected endpoint with an
    /// update: new IP sets, new policies, new profiles, the endpoint, then the policies,
    /// profiles and IP sets it no longer references.
    fn sync_endpoint(&self, ep: &mut EndpointInfo) -> Vec<ToDataplane> {
        let Some(update) = ep.update.clone() else { return Vec::new() };
        let (mut out, ip_set_removes) = self.ip_set_sync(ep);

        let policies: Vec<PolicyId> = ep.policies().into_iter().cloned().collect();
        for id in &policies {
            if ep.synced_policies.contains(id) {
                continue;
            }
            match self.policies.get(id) {
                Some(stored) => {
                    out.push(ToDataplane::from(Payload::ActivePolicyUpdate(stored.update.clone())));
                    ep.synced_policies.insert(id.clone());
                }
                None => debug!(policy = ?id, "policy referenced before the calc graph sent it"),
            }
        }
        let profiles: Vec<String> = ep.profiles().into_iter().cloned().collect();
        for name in &profiles {
            if ep.synced_profiles.contains(name) {
                continue;
            }
            match self.profiles.get(name) {
                Some(stored) => {
                    out.push(ToDataplane::from(Payload::ActiveProfileUpdate(stored.update.clone())));
                    ep.synced_profiles.insert(name.clone());
                }
                None => debug!(profile = %name, "profile referenced before the calc graph sent it"),
            }
        }

        out.push(ToDataplane::from(Payload::WorkloadEndpointUpdate(update)));

        let referenced: HashSet<&PolicyId> = policies.iter().collect();
        let mut gone: Vec<PolicyId> =
            ep.synced_policies.iter().filter(|id| !referenced.contains(id)).cloned().collect();
        gone.sort_by(|a, b| policy_key(a).cmp(&policy_key(b)));
        for id in gone {
            ep.synced_policies.remove(&id);
            out.push(ToDataplane::from(Payload::ActivePolicyRemove(ActivePolicyRemove { id: Some(id) })));
        }
        let referenced: HashSet<&String> = profiles.iter().collect();
        let mut gone: Vec<String> = ep.synced_profiles.iter().filter(|n| !referenced.contains(n)).cloned().collect();
        gone.sort();
        for name in gone {
            ep.synced_profiles.remove(&name);
            out.push(ToDataplane::from(Payload::ActiveProfileRemove(ActiveProfileRemove {
                id: Some(ProfileId { name }),
            })));
        }

        out.extend(ip_set_removes);
        out
    }
}

/// Appends `msgs` for `key` to `out`.
fn push_all(out: &mut Vec<(EndpointKey, Outgoing)>, key: &str, msgs: impl IntoIterator<Item = ToDataplane>) {
    out.extend(msgs.into_iter().map(|m| (key.to_owned(), Outgoing::Message(m))));
}

impl Processor {
    /// An empty processor: nothing known, not in sync, no streams.
    pub fn new() -> Self {
        Processor::default()
    }

    /// True once the calc graph has sent InSync.
    pub fn in_sync(&self) -> bool {
        self.in_sync
    }

    /// The workload's current stream, if one is connected.
    pub fn current_join(&self, workload_id: &str) -> Option<JoinId> {
        self.endpoints.get(workload_id).and_then(|e| e.join)
    }

    /// True when the calc graph has sent an endpoint update for the workload (and no remove since).
    pub fn knows_endpoint(&self, workload_id: &str) -> bool {
        self.endpoints.get(workload_id).is_some_and(|e| e.update.is_some())
    }

    /// Number of workloads with a connected stream.
    pub fn connected(&self) -> usize {
        self.endpoints.values().filter(|e| e.join.is_some()).count()
    }

    fn connected_keys(&self) -> impl Iterator<Item = &EndpointKey> {
        self.endpoints.iter().filter(|(_, e)| e.join.is_some()).map(|(k, _)| k)
    }

    /// A new `Sync` stream for `workload_id`. Any older stream of the workload is forgotten:
    /// the caller must end it (Felix closes its channel). Returns the stream's id and what it
    /// must be sent first: the full endpoint sync if the endpoint is known, then every
    /// service account and namespace, then InSync if the calc graph has sent it.
    pub fn join(&mut self, workload_id: &str) -> (JoinId, Vec<ToDataplane>) {
        self.last_join += 1;
        let id = JoinId(self.last_join);
        let ep = self.endpoints.entry(workload_id.to_owned()).or_default();
        if let Some(old) = ep.join {
            debug!(workload = workload_id, old = %old, new = %id, "new stream replaces the old one");
        }
        ep.join = Some(id);
        ep.reset_synced();
        let mut out = self.catalog.sync_endpoint(ep);
        out.extend(
            self.catalog.service_accounts.values().map(|u| ToDataplane::from(Payload::ServiceAccountUpdate(u.clone()))),
        );
        out.extend(self.catalog.namespaces.values().map(|u| ToDataplane::from(Payload::NamespaceUpdate(u.clone()))));
        if self.in_sync {
            out.push(ToDataplane::from(Payload::InSync(InSync {})));
        }
        (id, out)
    }

    /// The stream `join` of `workload_id` ended. Ignored unless it is the workload's current stream.
    pub fn leave(&mut self, workload_id: &str, join: JoinId) {
        let Some(ep) = self.endpoints.get_mut(workload_id) else { return };
        if ep.join != Some(join) {
            debug!(workload = workload_id, stream = %join, "leave of a stream that is no longer current");
            return;
        }
        ep.join = None;
        ep.reset_synced();
        if ep.update.is_none() {
            self.endpoints.remove(workload_id);
        }
    }

    /// Applies one message of the calc graph's global stream. Returns, in order, what each
    /// connected workload's stream must carry because of it.
    pub fn apply(&mut self, msg_in: ToDataplane) -> Vec<(EndpointKey, Outgoing)> {
        let mut out = Vec::new();
        let Some(payload) = msg_in.payload else { return out };
        match payload {
            Payload::InSync(_) => {
                if !self.in_sync {
                    self.in_sync = true;
                    for key in self.connected_keys() {
                        out.push((key.clone(), Outgoing::Message(ToDataplane::from(Payload::InSync(InSync {})))));
                    }
                }
            }
            Payload::WorkloadEndpointUpdate(u) => self.endpoint_update(u, &mut out),
            Payload::WorkloadEndpointRemove(u) => self.endpoint_remove(u, &mut out),
            Payload::ActivePolicyUpdate(u) => self.policy_update(u, &mut out),
            Payload::ActivePolicyRemove(u) => {
                // The calc graph removes every reference first: the endpoint syncs have already
                // sent the remove to the streams that had the policy.
                if let Some(id) = u.id {
                    self.catalog.policies.remove(&id);
                }
            }
            Payload::ActiveProfileUpdate(u) => self.profile_update(u, &mut out),
            Payload::ActiveProfileRemove(u) => {
                if let Some(id) = u.id {
                    self.catalog.profiles.remove(&id.name);
                }
            }
            Payload::IpsetUpdate(u) => self.ip_set_update(u, &mut out),
            Payload::IpsetDeltaUpdate(u) => self.ip_set_delta(u, &mut out),
            Payload::IpsetRemove(u) => {
                self.catalog.ip_sets.remove(&u.id);
            }
            Payload::ServiceAccountUpdate(u) => {
                let Some(id) = u.id.as_ref() else { return missing_id(out, "ServiceAccountUpdate") };
                let key = (id.namespace.clone(), id.name.clone());
                self.broadcast(&mut out, Payload::ServiceAccountUpdate(u.clone()));
                self.catalog.service_accounts.insert(key, u);
            }
            Payload::ServiceAccountRemove(u) => {
                let Some(id) = u.id.as_ref() else { return missing_id(out, "ServiceAccountRemove") };
                self.catalog.service_accounts.remove(&(id.namespace.clone(), id.name.clone()));
                self.broadcast(&mut out, Payload::ServiceAccountRemove(u));
            }
            Payload::NamespaceUpdate(u) => {
                let Some(id) = u.id.as_ref() else { return missing_id(out, "NamespaceUpdate") };
                let key = id.name.clone();
                self.broadcast(&mut out, Payload::NamespaceUpdate(u.clone()));
                self.catalog.namespaces.insert(key, u);
            }
            Payload::NamespaceRemove(u) => {
                let Some(id) = u.id.as_ref() else { return missing_id(out, "NamespaceRemove") };
                self.catalog.namespaces.remove(&id.name);
                self.broadcast(&mut out, Payload::NamespaceRemove(u));
            }
        }
        out
    }

    /// Sends `payload` to every connected stream.
    fn broadcast(&self, out: &mut Vec<(EndpointKey, Outgoing)>, payload: Payload) {
        let m = ToDataplane::from(payload);
        for key in self.connected_keys() {
            out.push((key.clone(), Outgoing::Message(m.clone())));
        }
    }

    fn endpoint_update(&mut self, u: WorkloadEndpointUpdate, out: &mut Vec<(EndpointKey, Outgoing)>) {
        let Some(id) = u.id.as_ref() else {
            warn!("WorkloadEndpointUpdate without an id ignored");
            return;
        };
        if !is_connectable(id) {
            debug!(endpoint = ?id, "endpoint no policy-sync connection can stand for; ignored");
            return;
        }
        let key = id.workload_id.clone();
        let ep = self.endpoints.entry(key.clone()).or_default();
        ep.update = Some(u);
        if ep.join.is_some() {
            push_all(out, &key, self.catalog.sync_endpoint(ep));
        }
    }

    fn endpoint_remove(&mut self, u: WorkloadEndpointRemove, out: &mut Vec<(EndpointKey, Outgoing)>) {
        let Some(id) = u.id.as_ref() else {
            warn!("WorkloadEndpointRemove without an id ignored");
            return;
        };
        if !is_connectable(id) {
            return;
        }
        let key = id.workload_id.clone();
        if let Some(ep) = self.endpoints.remove(&key)
            && ep.join.is_some()
        {
            out.push((key.clone(), Outgoing::Message(ToDataplane::from(Payload::WorkloadEndpointRemove(u)))));
            out.push((key, Outgoing::End));
        }
    }

    fn policy_update(&mut self, u: ActivePolicyUpdate, out: &mut Vec<(EndpointKey, Outgoing)>) {
        let Some(id) = u.id.clone() else {
            warn!("ActivePolicyUpdate without an id ignored");
            return;
        };
        let ip_sets = u.policy.as_ref().map(|p| rule_ip_sets(p.inbound_rules.iter().chain(&p.outbound_rules)));
        let m = ToDataplane::from(Payload::ActivePolicyUpdate(u.clone()));
        self.catalog.policies.insert(id.clone(), Stored { update: u, ip_sets: ip_sets.unwrap_or_default() });
        self.resend(
            &m,
            |ep| ep.references_policy(&id),
            |ep| {
                ep.synced_policies.insert(id.clone());
            },
            out,
        );
    }

    fn profile_update(&mut self, u: ActiveProfileUpdate, out: &mut Vec<(EndpointKey, Outgoing)>) {
        let Some(name) = u.id.as_ref().map(|id| id.name.clone()) else {
            warn!("ActiveProfileUpdate without an id ignored");
            return;
        };
        let ip_sets = u.profile.as_ref().map(|p| rule_ip_sets(p.inbound_rules.iter().chain(&p.outbound_rules)));
        let m = ToDataplane::from(Payload::ActiveProfileUpdate(u.clone()));
        self.catalog.profiles.insert(name.clone(), Stored { update: u, ip_sets: ip_sets.unwrap_or_default() });
        self.resend(
            &m,
            |ep| ep.references_profile(&name),
            |ep| {
                ep.synced_profiles.insert(name.clone());
            },
            out,
        );
    }

    /// Sends a policy or profile update (already in the catalog) to every connected stream
    /// whose endpoint `references` it: the IP sets the stream now needs, the update, then the
    /// removes of the sets it no longer needs; `mark_synced` records that the stream has it.
    fn resend(
        &mut self,
        update: &ToDataplane,
        references: impl Fn(&EndpointInfo) -> bool,
        mark_synced: impl Fn(&mut EndpointInfo),
        out: &mut Vec<(EndpointKey, Outgoing)>,
    ) {
        for (key, ep) in &mut self.endpoints {
            if ep.join.is_none() || !references(ep) {
                continue;
            }
            let (adds, removes) = self.catalog.ip_set_sync(ep);
            push_all(out, key, adds);
            push_all(out, key, [update.clone()]);
            mark_synced(ep);
            push_all(out, key, removes);
        }
    }

    fn ip_set_update(&mut self, u: IpSetUpdate, out: &mut Vec<(EndpointKey, Outgoing)>) {
        let id = u.id.clone();
        let existed = self.catalog.ip_sets.contains_key(&id);
        let info = IpSetInfo { r#type: u.r#type, members: u.members.iter().cloned().collect() };
        self.catalog.ip_sets.insert(id.clone(), info);
        if existed {
            // Existing set: the new members go, split, to the streams that have it.
            let msgs = split_ip_set_update(u);
            for (key, ep) in &self.endpoints {
                if ep.join.is_some() && ep.synced_ip_sets.contains(&id) {
                    push_all(out, key, msgs.iter().cloned());
                }
            }
            return;
        }
        // A new set is only stored: the policy that names it comes later (Felix sends sets first).
        // Only out of order input (a policy that named the set first) makes a stream need it
        // now; Felix would crash there, alp sends it.
        let mut msgs = None;
        for (key, ep) in &mut self.endpoints {
            if ep.join.is_none() || ep.update.is_none() || !self.catalog.needed_ip_sets(ep).contains(&id) {
                continue;
            }
            warn!(ip_set = %id, workload = %key, "IP set arrived after a policy that names it");
            let msgs = msgs.get_or_insert_with(|| split_ip_set_update(u.clone()));
            push_all(out, key, msgs.iter().cloned());
            ep.synced_ip_sets.insert(id.clone());
        }
    }

    fn ip_set_delta(&mut self, u: IpSetDeltaUpdate, out: &mut Vec<(EndpointKey, Outgoing)>) {
        let Some(set) = self.catalog.ip_sets.get_mut(&u.id) else {
            debug!(ip_set = %u.id, "delta for an unknown IP set ignored");
            return;
        };
        set.members.extend(u.added_members.iter().cloned());
        for m in &u.removed_members {
            set.members.remove(m);
        }
        let id = u.id.clone();
        let mut msgs = None;
        for (key, ep) in &self.endpoints {
            if ep.join.is_some() && ep.synced_ip_sets.contains(&id) {
                let msgs = msgs.get_or_insert_with(|| split_ip_set_delta(u.clone()));
                push_all(out, key, msgs.iter().cloned());
            }
        }
    }
}

fn missing_id(out: Vec<(EndpointKey, Outgoing)>, what: &str) -> Vec<(EndpointKey, Outgoing)> {
    warn!(message = what, "policy-sync message without an id ignored");
    out
}
