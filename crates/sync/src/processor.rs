//! The node agent's policy-sync processor (Felix's `policysync.Processor`), as pure logic: the
//! global calc-graph stream goes in through [`Processor::apply`]; what each connected workload's
//! stream must carry comes out, in order.
//! Streams come and go through [`Processor::join`] and [`Processor::leave`]. No I/O, no tokio:
//! the server (`server.rs`) owns the queues and sockets.
//!
//! A workload sees only the policies, profiles and IP sets its endpoint references, and
//! everything a message refers to arrives before it. IP-set updates are split at
//! [`MAX_MEMBERS_PER_MESSAGE`], as Felix does.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use alp_proto::felix::{
    ActivePolicyRemove, ActivePolicyUpdate, ActiveProfileRemove, ActiveProfileUpdate, InSync, IpSetDeltaUpdate,
    IpSetRemove, IpSetUpdate, NamespaceUpdate, PolicyId, ProfileId, Rule, ServiceAccountUpdate, ToDataplane,
    WorkloadEndpointRemove, WorkloadEndpointUpdate, to_dataplane::Payload,
};
use tracing::{debug, warn};

/// Most IP-set members in one message (Felix's `MaxMembersPerMessage`): 51 bytes per member at
/// worst (an IPv6 address with protocol and port) keeps a message under gRPC's default 4 MiB.
pub const MAX_MEMBERS_PER_MESSAGE: usize = 82_200;

/// The orchestrator id of every endpoint a policy-sync connection can stand for (Felix's).
pub const ORCHESTRATOR_ID: &str = "k8s";

/// The endpoint id of every endpoint a policy-sync connection can stand for (Felix's).
pub const ENDPOINT_ID: &str = "eth0";

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

fn msg(payload: Payload) -> ToDataplane {
    ToDataplane { payload: Some(payload), ..ToDataplane::default() }
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

/// `members` in chunks of at most [`MAX_MEMBERS_PER_MESSAGE`]; at least one chunk, possibly empty.
fn chunks(members: Vec<String>) -> Vec<Vec<String>> {
    if members.len() <= MAX_MEMBERS_PER_MESSAGE {
        return vec![members];
    }
    let mut out = Vec::with_capacity(members.len().div_ceil(MAX_MEMBERS_PER_MESSAGE));
    let mut rest = members.into_iter();
    loop {
        let chunk: Vec<String> = rest.by_ref().take(MAX_MEMBERS_PER_MESSAGE).collect();
        if chunk.is_empty() {
            return out;
        }
        out.push(chunk);
    }
}

/// A full IP-set update as Felix sends it: one `IPSetUpdate` with the first chunk of
/// members (possibly empty), then one `IPSetDeltaUpdate{added_members}` per further chunk.
pub fn split_ip_set_update(update: IpSetUpdate) -> Vec<ToDataplane> {
    let IpSetUpdate { id, members, r#type } = update;
    let mut chunks = chunks(members).into_iter();
    let first = chunks.next().unwrap_or_default();
    let mut out = Vec::with_capacity(1 + chunks.len());
    out.push(msg(Payload::IpsetUpdate(IpSetUpdate { id: id.clone(), members: first, r#type })));
    out.extend(chunks.map(|added_members| {
        msg(Payload::IpsetDeltaUpdate(IpSetDeltaUpdate { id: id.clone(), added_members, removed_members: Vec::new() }))
    }));
    out
}

/// A delta as Felix sends it: one message per chunk of added members, each also
/// carrying the last remaining chunk of removed members when both fit in one message; then the
/// remaining removed chunks, last first. A delta that fits is sent as it is.
pub fn split_ip_set_delta(delta: IpSetDeltaUpdate) -> Vec<ToDataplane> {
    let IpSetDeltaUpdate { id, added_members, removed_members } = delta;
    let mut adds = chunks(added_members).into_iter();
    let mut removes = chunks(removed_members);
    let mut out = Vec::new();
    loop {
        let added = adds.next();
        if added.is_none() && removes.is_empty() {
            return out;
        }
        let added_members = added.unwrap_or_default();
        let fits = removes.last().is_some_and(|r| added_members.len() + r.len() <= MAX_MEMBERS_PER_MESSAGE);
        let removed_members = if fits { removes.pop().unwrap_or_default() } else { Vec::new() };
        out.push(msg(Payload::IpsetDeltaUpdate(IpSetDeltaUpdate { id: id.clone(), added_members, removed_members })));
    }
}

/// True when `id` names an endpoint a policy-sync connection can stand for.
fn is_connectable(orchestrator_id: &str, endpoint_id: &str) -> bool {
    orchestrator_id == ORCHESTRATOR_ID && endpoint_id == ENDPOINT_ID
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
        let removes = gone.into_iter().map(|id| msg(Payload::IpsetRemove(IpSetRemove { id }))).collect();
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
                    out.push(msg(Payload::ActivePolicyUpdate(stored.update.clone())));
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
                    out.push(msg(Payload::ActiveProfileUpdate(stored.update.clone())));
                    ep.synced_profiles.insert(name.clone());
                }
                None => debug!(profile = %name, "profile referenced before the calc graph sent it"),
            }
        }

        out.push(msg(Payload::WorkloadEndpointUpdate(update)));

        let referenced: HashSet<&PolicyId> = policies.iter().collect();
        let mut gone: Vec<PolicyId> =
            ep.synced_policies.iter().filter(|id| !referenced.contains(id)).cloned().collect();
        gone.sort_by(|a, b| policy_key(a).cmp(&policy_key(b)));
        for id in gone {
            ep.synced_policies.remove(&id);
            out.push(msg(Payload::ActivePolicyRemove(ActivePolicyRemove { id: Some(id) })));
        }
        let referenced: HashSet<&String> = profiles.iter().collect();
        let mut gone: Vec<String> = ep.synced_profiles.iter().filter(|n| !referenced.contains(n)).cloned().collect();
        gone.sort();
        for name in gone {
            ep.synced_profiles.remove(&name);
            out.push(msg(Payload::ActiveProfileRemove(ActiveProfileRemove { id: Some(ProfileId { name }) })));
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
        out.extend(self.catalog.service_accounts.values().map(|u| msg(Payload::ServiceAccountUpdate(u.clone()))));
        out.extend(self.catalog.namespaces.values().map(|u| msg(Payload::NamespaceUpdate(u.clone()))));
        if self.in_sync {
            out.push(msg(Payload::InSync(InSync {})));
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
                        out.push((key.clone(), Outgoing::Message(msg(Payload::InSync(InSync {})))));
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
        let m = msg(payload);
        for key in self.connected_keys() {
            out.push((key.clone(), Outgoing::Message(m.clone())));
        }
    }

    fn endpoint_update(&mut self, u: WorkloadEndpointUpdate, out: &mut Vec<(EndpointKey, Outgoing)>) {
        let Some(id) = u.id.as_ref() else {
            warn!("WorkloadEndpointUpdate without an id ignored");
            return;
        };
        if !is_connectable(&id.orchestrator_id, &id.endpoint_id) {
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
        if !is_connectable(&id.orchestrator_id, &id.endpoint_id) {
            return;
        }
        let key = id.workload_id.clone();
        if let Some(ep) = self.endpoints.remove(&key)
            && ep.join.is_some()
        {
            out.push((key.clone(), Outgoing::Message(msg(Payload::WorkloadEndpointRemove(u)))));
            out.push((key, Outgoing::End));
        }
    }

    fn policy_update(&mut self, u: ActivePolicyUpdate, out: &mut Vec<(EndpointKey, Outgoing)>) {
        let Some(id) = u.id.clone() else {
            warn!("ActivePolicyUpdate without an id ignored");
            return;
        };
        let ip_sets = u.policy.as_ref().map(|p| rule_ip_sets(p.inbound_rules.iter().chain(&p.outbound_rules)));
        let m = msg(Payload::ActivePolicyUpdate(u.clone()));
        self.catalog.policies.insert(id.clone(), Stored { update: u, ip_sets: ip_sets.unwrap_or_default() });
        for (key, ep) in &mut self.endpoints {
            if ep.join.is_none() || !ep.references_policy(&id) {
                continue;
            }
            let (adds, removes) = self.catalog.ip_set_sync(ep);
            push_all(out, key, adds);
            push_all(out, key, [m.clone()]);
            ep.synced_policies.insert(id.clone());
            push_all(out, key, removes);
        }
    }

    fn profile_update(&mut self, u: ActiveProfileUpdate, out: &mut Vec<(EndpointKey, Outgoing)>) {
        let Some(name) = u.id.as_ref().map(|id| id.name.clone()) else {
            warn!("ActiveProfileUpdate without an id ignored");
            return;
        };
        let ip_sets = u.profile.as_ref().map(|p| rule_ip_sets(p.inbound_rules.iter().chain(&p.outbound_rules)));
        let m = msg(Payload::ActiveProfileUpdate(u.clone()));
        self.catalog.profiles.insert(name.clone(), Stored { update: u, ip_sets: ip_sets.unwrap_or_default() });
        for (key, ep) in &mut self.endpoints {
            if ep.join.is_none() || !ep.references_profile(&name) {
                continue;
            }
            let (adds, removes) = self.catalog.ip_set_sync(ep);
            push_all(out, key, adds);
            push_all(out, key, [m.clone()]);
            ep.synced_profiles.insert(name.clone());
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

#[cfg(test)]
mod tests {
    use alp_proto::felix::{
        NamespaceId, NamespaceRemove, Policy, Profile, ServiceAccountId, ServiceAccountRemove, TierInfo,
        WorkloadEndpoint, WorkloadEndpointId,
    };

    use super::*;

    const A: &str = "ns/a";
    const B: &str = "ns/b";

    fn pid(name: &str) -> PolicyId {
        PolicyId { name: name.into(), namespace: String::new(), kind: "GlobalNetworkPolicy".into() }
    }

    fn rule(sets: &[&str]) -> Rule {
        Rule {
            action: "Allow".into(),
            src_ip_set_ids: sets.iter().map(|s| (*s).to_owned()).collect(),
            ..Rule::default()
        }
    }

    fn policy(name: &str, sets: &[&str]) -> ToDataplane {
        let policy = Policy { inbound_rules: vec![rule(sets)], ..Policy::default() };
        msg(Payload::ActivePolicyUpdate(ActivePolicyUpdate { id: Some(pid(name)), policy: Some(policy) }))
    }

    fn profile(name: &str, sets: &[&str]) -> ToDataplane {
        let profile = Profile { inbound_rules: vec![], outbound_rules: vec![rule(sets)] };
        msg(Payload::ActiveProfileUpdate(ActiveProfileUpdate {
            id: Some(ProfileId { name: name.into() }),
            profile: Some(profile),
        }))
    }

    fn ipset(id: &str, members: &[&str]) -> ToDataplane {
        let members = members.iter().map(|m| (*m).to_owned()).collect();
        msg(Payload::IpsetUpdate(IpSetUpdate { id: id.into(), members, r#type: 2 }))
    }

    fn members(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("10.{}.{}.{}/32", i >> 16, (i >> 8) & 255, i & 255)).collect()
    }

    fn delta(id: &str, added: &[&str], removed: &[&str]) -> ToDataplane {
        msg(Payload::IpsetDeltaUpdate(IpSetDeltaUpdate {
            id: id.into(),
            added_members: added.iter().map(|m| (*m).to_owned()).collect(),
            removed_members: removed.iter().map(|m| (*m).to_owned()).collect(),
        }))
    }

    fn wep_id(workload: &str) -> WorkloadEndpointId {
        WorkloadEndpointId {
            orchestrator_id: ORCHESTRATOR_ID.into(),
            workload_id: workload.into(),
            endpoint_id: ENDPOINT_ID.into(),
        }
    }

    /// An endpoint with tiers `(name, ingress, egress)` and profiles.
    fn wep(workload: &str, tiers: &[(&str, &[&str], &[&str])], profiles: &[&str]) -> ToDataplane {
        let tiers = tiers
            .iter()
            .map(|(name, ingress, egress)| TierInfo {
                name: (*name).into(),
                ingress_policies: ingress.iter().map(|p| pid(p)).collect(),
                egress_policies: egress.iter().map(|p| pid(p)).collect(),
                default_action: "Deny".into(),
            })
            .collect();
        let endpoint = WorkloadEndpoint {
            profile_ids: profiles.iter().map(|p| (*p).to_owned()).collect(),
            tiers,
            ..WorkloadEndpoint::default()
        };
        msg(Payload::WorkloadEndpointUpdate(WorkloadEndpointUpdate {
            id: Some(wep_id(workload)),
            endpoint: Some(endpoint),
        }))
    }

    fn wep_remove(workload: &str) -> ToDataplane {
        msg(Payload::WorkloadEndpointRemove(WorkloadEndpointRemove { id: Some(wep_id(workload)) }))
    }

    fn sa(ns: &str, name: &str) -> ToDataplane {
        let id = ServiceAccountId { namespace: ns.into(), name: name.into() };
        msg(Payload::ServiceAccountUpdate(ServiceAccountUpdate { id: Some(id), labels: Default::default() }))
    }

    fn namespace(name: &str) -> ToDataplane {
        msg(Payload::NamespaceUpdate(NamespaceUpdate {
            id: Some(NamespaceId { name: name.into() }),
            labels: Default::default(),
        }))
    }

    fn in_sync() -> ToDataplane {
        msg(Payload::InSync(InSync {}))
    }

    /// A short name per message, to compare sequences.
    fn describe(m: &ToDataplane) -> String {
        match m.payload.as_ref() {
            None => "none".into(),
            Some(Payload::InSync(_)) => "in-sync".into(),
            Some(Payload::IpsetUpdate(u)) => format!("set {} ({})", u.id, u.members.len()),
            Some(Payload::IpsetDeltaUpdate(u)) => {
                format!("delta {} +{} -{}", u.id, u.added_members.len(), u.removed_members.len())
            }
            Some(Payload::IpsetRemove(u)) => format!("remove set {}", u.id),
            Some(Payload::ActivePolicyUpdate(u)) => format!("policy {}", u.id.as_ref().map_or("?", |i| &i.name)),
            Some(Payload::ActivePolicyRemove(u)) => {
                format!("remove policy {}", u.id.as_ref().map_or("?", |i| &i.name))
            }
            Some(Payload::ActiveProfileUpdate(u)) => format!("profile {}", u.id.as_ref().map_or("?", |i| &i.name)),
            Some(Payload::ActiveProfileRemove(u)) => {
                format!("remove profile {}", u.id.as_ref().map_or("?", |i| &i.name))
            }
            Some(Payload::WorkloadEndpointUpdate(u)) => {
                format!("endpoint {}", u.id.as_ref().map_or("?", |i| &i.workload_id))
            }
            Some(Payload::WorkloadEndpointRemove(u)) => {
                format!("remove endpoint {}", u.id.as_ref().map_or("?", |i| &i.workload_id))
            }
            Some(Payload::ServiceAccountUpdate(u)) => {
                format!("sa {}", u.id.as_ref().map_or("?".into(), |i| format!("{}/{}", i.namespace, i.name)))
            }
            Some(Payload::ServiceAccountRemove(u)) => {
                format!("remove sa {}", u.id.as_ref().map_or("?".into(), |i| format!("{}/{}", i.namespace, i.name)))
            }
            Some(Payload::NamespaceUpdate(u)) => format!("ns {}", u.id.as_ref().map_or("?", |i| &i.name)),
            Some(Payload::NamespaceRemove(u)) => format!("remove ns {}", u.id.as_ref().map_or("?", |i| &i.name)),
        }
    }

    fn names(msgs: &[ToDataplane]) -> Vec<String> {
        msgs.iter().map(describe).collect()
    }

    /// What `out` sends to `key`, `end` for the end of the stream.
    fn for_key(out: &[(EndpointKey, Outgoing)], key: &str) -> Vec<String> {
        out.iter()
            .filter(|(k, _)| k == key)
            .map(|(_, o)| match o {
                Outgoing::Message(m) => describe(m),
                Outgoing::End => "end".into(),
            })
            .collect()
    }

    fn apply_all(p: &mut Processor, msgs: impl IntoIterator<Item = ToDataplane>) -> Vec<(EndpointKey, Outgoing)> {
        msgs.into_iter().flat_map(|m| p.apply(m)).collect()
    }

    fn strs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    /// A processor that knows A's endpoint (tier t1: p1 ingress, p2 egress; tier t2: p3
    /// ingress, p1 egress again; profiles kns.ns, ksa.ns.sa), what it references, and things it
    /// does not reference.
    fn loaded() -> Processor {
        let mut p = Processor::new();
        let out = apply_all(
            &mut p,
            [
                ipset("s1", &["10.0.0.1/32"]),
                ipset("s2", &["10.0.0.2/32", "10.0.0.3/32"]),
                ipset("s9", &["10.9.9.9/32"]),
                policy("p1", &["s1"]),
                policy("p2", &["s1"]),
                policy("p3", &[]),
                policy("p9", &["s9"]),
                profile("kns.ns", &["s2"]),
                profile("ksa.ns.sa", &[]),
                wep(A, &[("t1", &["p1"], &["p2"]), ("t2", &["p3"], &["p1"])], &["kns.ns", "ksa.ns.sa"]),
                sa("ns", "sa"),
                sa("ns", "default"),
                namespace("ns"),
                namespace("other"),
                in_sync(),
            ],
        );
        assert!(out.is_empty(), "nothing is connected yet: {out:?}");
        p
    }

    #[test]
    fn join_sends_endpoint_sync_then_service_accounts_and_namespaces_then_in_sync() {
        let mut p = loaded();
        let (join, msgs) = p.join(A);
        assert_eq!(join.get(), 1);
        assert_eq!(
            names(&msgs),
            strs(&[
                "set s1 (1)",
                "set s2 (2)",
                "policy p1",
                "policy p2",
                "policy p3",
                "profile kns.ns",
                "profile ksa.ns.sa",
                "endpoint ns/a",
                "sa ns/default",
                "sa ns/sa",
                "ns ns",
                "ns other",
                "in-sync",
            ])
        );
        assert_eq!(p.current_join(A), Some(join));
    }

    #[test]
    fn join_of_an_unknown_endpoint_gets_service_accounts_namespaces_and_in_sync_then_its_sync() {
        let mut p = loaded();
        let (_, msgs) = p.join(B);
        assert_eq!(names(&msgs), strs(&["sa ns/default", "sa ns/sa", "ns ns", "ns other", "in-sync"]));
        let out = p.apply(wep(B, &[("t1", &["p9"], &[])], &[]));
        assert_eq!(for_key(&out, B), strs(&["set s9 (1)", "policy p9", "endpoint ns/b"]));
        assert!(for_key(&out, A).is_empty());
    }

    #[test]
    fn in_sync_goes_out_once_and_joins_before_it_get_none() {
        let mut p = Processor::new();
        p.apply(namespace("ns"));
        let (_, msgs) = p.join(A);
        assert_eq!(names(&msgs), strs(&["ns ns"]));
        let out = p.apply(in_sync());
        assert_eq!(for_key(&out, A), strs(&["in-sync"]));
        assert!(p.apply(in_sync()).is_empty(), "a second InSync is ignored");
        let (_, msgs) = p.join(B);
        assert_eq!(names(&msgs), strs(&["ns ns", "in-sync"]));
    }

    #[test]
    fn a_newer_join_replaces_the_older_and_a_late_leave_of_the_older_is_ignored() {
        let mut p = loaded();
        let (first, _) = p.join(A);
        let (second, msgs) = p.join(A);
        assert!(second > first);
        assert_eq!(msgs.len(), 13, "the newer stream gets the full sequence again");
        p.leave(A, first);
        assert_eq!(p.current_join(A), Some(second), "the older stream's leave must not end the newer");
        assert_eq!(for_key(&p.apply(namespace("x")), A), strs(&["ns x"]));
        p.leave(A, second);
        assert_eq!(p.current_join(A), None);
        assert!(p.apply(namespace("y")).is_empty());
        assert!(p.knows_endpoint(A), "the endpoint outlives its stream");
    }

    #[test]
    fn leave_forgets_a_workload_without_an_endpoint() {
        let mut p = Processor::new();
        let (join, _) = p.join(B);
        assert_eq!(p.connected(), 1);
        p.leave(B, join);
        assert_eq!((p.connected(), p.knows_endpoint(B)), (0, false));
        assert!(p.endpoints.is_empty());
    }

    #[test]
    fn endpoint_remove_is_sent_then_the_stream_ends_and_the_endpoint_is_forgotten() {
        let mut p = loaded();
        let (join, _) = p.join(A);
        p.join(B);
        let out = p.apply(wep_remove(A));
        assert_eq!(for_key(&out, A), strs(&["remove endpoint ns/a", "end"]));
        assert!(for_key(&out, B).is_empty());
        assert_eq!((p.current_join(A), p.knows_endpoint(A)), (None, false));
        p.leave(A, join); // the stream's own leave comes later: harmless
        assert_eq!(for_key(&p.apply(namespace("x")), A), Vec::<String>::new());
        // Removing an endpoint without a stream sends nothing.
        p.apply(wep(A, &[], &[]));
        assert!(p.apply(wep_remove(A)).is_empty());
    }

    #[test]
    fn policy_update_sends_added_sets_then_the_policy_then_removed_sets_to_referencing_streams_only() {
        let mut p = loaded();
        p.join(A);
        p.apply(wep(B, &[("t1", &["p9"], &[])], &[]));
        p.join(B);
        p.apply(ipset("s3", &["10.0.0.4/32", "10.0.0.5/32", "10.0.0.6/32"]));
        // p2 moves from s1 to s3: s1 is still needed by p1, so nothing is removed.
        let out = p.apply(policy("p2", &["s3"]));
        assert_eq!(for_key(&out, A), strs(&["set s3 (3)", "policy p2"]));
        assert!(for_key(&out, B).is_empty());
        // p1 drops s1 too: now nothing needs s1.
        let out = p.apply(policy("p1", &["s3"]));
        assert_eq!(for_key(&out, A), strs(&["policy p1", "remove set s1"]));
        // An unreferenced policy is only stored.
        assert!(p.apply(policy("p-new", &["s1"])).is_empty());
    }

    #[test]
    fn profile_update_goes_to_streams_whose_endpoint_names_it() {
        let mut p = loaded();
        p.join(A);
        p.apply(ipset("s3", &["10.0.0.4/32"]));
        let out = p.apply(profile("kns.ns", &["s3"]));
        assert_eq!(for_key(&out, A), strs(&["set s3 (1)", "profile kns.ns", "remove set s2"]));
        assert!(p.apply(profile("kns.other", &["s9"])).is_empty());
    }

    #[test]
    fn endpoint_update_adds_before_and_removes_after_the_endpoint() {
        let mut p = loaded();
        p.join(A);
        // Drop tier t2 (p3) and p2; add p9 (set s9); drop profile ksa.
        let out = p.apply(wep(A, &[("t1", &["p1", "p9"], &[])], &["kns.ns"]));
        assert_eq!(
            for_key(&out, A),
            strs(&[
                "set s9 (1)",
                "policy p9",
                "endpoint ns/a",
                "remove policy p2",
                "remove policy p3",
                "remove profile ksa.ns.sa"
            ])
        );
        // Drop everything: policies, profiles, then sets, in that order, after the endpoint.
        let out = p.apply(wep(A, &[], &[]));
        assert_eq!(
            for_key(&out, A),
            strs(&[
                "endpoint ns/a",
                "remove policy p1",
                "remove policy p9",
                "remove profile kns.ns",
                "remove set s1",
                "remove set s2",
                "remove set s9",
            ])
        );
        // An unchanged endpoint resends only itself.
        assert_eq!(for_key(&p.apply(wep(A, &[], &[])), A), strs(&["endpoint ns/a"]));
    }

    #[test]
    fn ip_set_updates_reach_only_streams_that_have_the_set() {
        let mut p = loaded();
        p.join(A);
        p.apply(wep(B, &[("t1", &["p9"], &[])], &[]));
        p.join(B);
        // New set: only stored.
        assert!(p.apply(ipset("s-new", &["10.1.0.0/16"])).is_empty());
        // Existing set: the full new content, to A only.
        let out = p.apply(ipset("s1", &["10.0.0.7/32", "10.0.0.8/32"]));
        assert_eq!(for_key(&out, A), strs(&["set s1 (2)"]));
        assert!(for_key(&out, B).is_empty());
        let out = p.apply(delta("s2", &["10.0.0.9/32"], &["10.0.0.2/32"]));
        assert_eq!(for_key(&out, A), strs(&["delta s2 +1 -1"]));
        assert!(for_key(&out, B).is_empty());
        assert!(p.apply(delta("unknown", &["10.0.0.1/32"], &[])).is_empty(), "delta of an unknown set");
        // The store follows the deltas: a new stream gets the current members.
        let (_, msgs) = p.join(A);
        let s2 = msgs.iter().find_map(|m| match &m.payload {
            Some(Payload::IpsetUpdate(u)) if u.id == "s2" => Some(u.members.clone()),
            _ => None,
        });
        assert_eq!(s2, Some(strs(&["10.0.0.3/32", "10.0.0.9/32"])));
        // IPSetRemove only drops the set from the store.
        assert!(p.apply(msg(Payload::IpsetRemove(IpSetRemove { id: "s9".into() }))).is_empty());
        assert!(!p.catalog.ip_sets.contains_key("s9"));
    }

    #[test]
    fn service_accounts_and_namespaces_go_to_every_stream_and_are_remembered() {
        let mut p = loaded();
        p.join(A);
        p.join(B);
        let remove_sa = msg(Payload::ServiceAccountRemove(ServiceAccountRemove {
            id: Some(ServiceAccountId { namespace: "ns".into(), name: "default".into() }),
        }));
        let remove_ns =
            msg(Payload::NamespaceRemove(NamespaceRemove { id: Some(NamespaceId { name: "other".into() }) }));
        let out = apply_all(&mut p, [sa("ns2", "x"), namespace("ns2"), remove_sa, remove_ns]);
        for key in [A, B] {
            assert_eq!(for_key(&out, key), strs(&["sa ns2/x", "ns ns2", "remove sa ns/default", "remove ns other"]));
        }
        let (_, msgs) = p.join("ns/c");
        assert_eq!(names(&msgs), strs(&["sa ns/sa", "sa ns2/x", "ns ns", "ns ns2", "in-sync"]));
    }

    #[test]
    fn references_before_definitions_are_sent_when_the_definitions_arrive() {
        // Out of order input (Felix's calc graph never sends it; Felix would crash).
        let mut p = Processor::new();
        p.apply(wep(A, &[("t1", &["p1"], &[])], &[]));
        let (_, msgs) = p.join(A);
        assert_eq!(names(&msgs), strs(&["endpoint ns/a"]));
        let out = p.apply(policy("p1", &["s1"]));
        assert_eq!(for_key(&out, A), strs(&["policy p1"]));
        let out = p.apply(ipset("s1", &["10.0.0.1/32"]));
        assert_eq!(for_key(&out, A), strs(&["set s1 (1)"]));
        let out = p.apply(delta("s1", &["10.0.0.2/32"], &[]));
        assert_eq!(for_key(&out, A), strs(&["delta s1 +1 -0"]));
    }

    #[test]
    fn endpoints_no_connection_can_stand_for_are_ignored() {
        let mut p = Processor::new();
        let mut other = wep(A, &[], &[]);
        if let Some(Payload::WorkloadEndpointUpdate(u)) = other.payload.as_mut()
            && let Some(id) = u.id.as_mut()
        {
            id.endpoint_id = "eth1".into();
        }
        p.join(A);
        assert!(p.apply(other).is_empty());
        assert!(!p.knows_endpoint(A));
    }

    #[test]
    fn full_updates_split_at_the_member_limit() {
        let update = |n: usize| IpSetUpdate { id: "s".into(), members: members(n), r#type: 2 };
        assert_eq!(names(&split_ip_set_update(update(0))), strs(&["set s (0)"]));
        assert_eq!(names(&split_ip_set_update(update(MAX_MEMBERS_PER_MESSAGE))), strs(&["set s (82200)"]));
        let msgs = split_ip_set_update(update(2 * MAX_MEMBERS_PER_MESSAGE + 5));
        assert_eq!(names(&msgs), strs(&["set s (82200)", "delta s +82200 -0", "delta s +5 -0"]));
        let mut all: Vec<String> = Vec::new();
        for m in msgs {
            match m.payload {
                Some(Payload::IpsetUpdate(u)) => {
                    assert_eq!(u.r#type, 2);
                    all.extend(u.members);
                }
                Some(Payload::IpsetDeltaUpdate(u)) => all.extend(u.added_members),
                _ => unreachable!(),
            }
        }
        assert_eq!(all, members(2 * MAX_MEMBERS_PER_MESSAGE + 5), "chunks in order, nothing lost");
    }

    #[test]
    fn deltas_split_with_remove_chunks_taken_from_the_end_when_they_fit() {
        let d = |adds: usize, removes: usize| IpSetDeltaUpdate {
            id: "s".into(),
            added_members: members(adds),
            removed_members: members(removes).into_iter().map(|m| format!("r{m}")).collect(),
        };
        assert_eq!(names(&split_ip_set_delta(d(0, 0))), strs(&["delta s +0 -0"]));
        assert_eq!(names(&split_ip_set_delta(d(10, 20))), strs(&["delta s +10 -20"]));
        // 100,000 each: the second add chunk (17,800) has room for the last remove chunk.
        assert_eq!(
            names(&split_ip_set_delta(d(100_000, 100_000))),
            strs(&["delta s +82200 -0", "delta s +17800 -17800", "delta s +0 -82200"])
        );
        // Removes only: the chunks go last first.
        let msgs = split_ip_set_delta(d(0, 200_000));
        assert_eq!(names(&msgs), strs(&["delta s +0 -35600", "delta s +0 -82200", "delta s +0 -82200"]));
        let mut removed: Vec<String> = Vec::new();
        for m in msgs.into_iter().rev() {
            if let Some(Payload::IpsetDeltaUpdate(u)) = m.payload {
                removed.extend(u.removed_members);
            }
        }
        assert_eq!(removed.len(), 200_000);
        assert_eq!(removed, d(0, 200_000).removed_members);
    }

    #[test]
    fn large_sets_are_split_on_join_on_update_and_on_delta() {
        let mut p = Processor::new();
        let big = IpSetUpdate { id: "big".into(), members: members(200_000), r#type: 2 };
        apply_all(
            &mut p,
            [msg(Payload::IpsetUpdate(big)), policy("p1", &["big"]), wep(A, &[("t1", &["p1"], &[])], &[])],
        );
        let (_, msgs) = p.join(A);
        assert_eq!(
            names(&msgs),
            strs(&["set big (82200)", "delta big +82200 -0", "delta big +35600 -0", "policy p1", "endpoint ns/a"])
        );
        let bigger = IpSetUpdate { id: "big".into(), members: members(170_000), r#type: 2 };
        let out = p.apply(msg(Payload::IpsetUpdate(bigger)));
        assert_eq!(for_key(&out, A), strs(&["set big (82200)", "delta big +82200 -0", "delta big +5600 -0"]));
        let gone: Vec<String> = members(100_000);
        let d = IpSetDeltaUpdate { id: "big".into(), added_members: vec![], removed_members: gone };
        let out = p.apply(msg(Payload::IpsetDeltaUpdate(d)));
        assert_eq!(for_key(&out, A), strs(&["delta big +0 -17800", "delta big +0 -82200"]));
        assert_eq!(p.catalog.ip_sets.get("big").map(|s| s.members.len()), Some(70_000));
    }

    #[test]
    fn ip_set_references_cover_every_set_field_of_both_directions() {
        let r = Rule {
            src_ip_set_ids: strs(&["a"]),
            dst_ip_set_ids: strs(&["b"]),
            dst_ip_port_set_ids: strs(&["c"]),
            src_named_port_ip_set_ids: strs(&["d"]),
            dst_named_port_ip_set_ids: strs(&["e"]),
            not_src_ip_set_ids: strs(&["f"]),
            not_dst_ip_set_ids: strs(&["g", "a"]),
            not_src_named_port_ip_set_ids: strs(&["h"]),
            not_dst_named_port_ip_set_ids: strs(&["i"]),
            ..Rule::default()
        };
        let out = Rule { dst_ip_set_ids: strs(&["j"]), ..Rule::default() };
        assert_eq!(rule_ip_sets([&r, &out]), strs(&["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]));
    }
}
