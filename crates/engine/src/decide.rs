//! The decision walk: Calico's checker (`app-policy/checker`), with alp's differences (D1–D8 in
//! README.md).

use std::{cell::Cell, fmt, net::IpAddr};

use alp_http_path::RequestPath;
use alp_ipset::IpSet;
use alp_model::{
    Action, DefaultAction, Direction, NamespaceMatch, Peer, Request, Rule, Scope, ServiceAccountMatch, Side, SpiffeId,
};
use smallvec::SmallVec;

use crate::{
    labels::Overlay,
    origin::{NO_PROFILE, Origin},
    plan::{EntryKind, Plan, missing_set, profile_rules},
    snapshot::Snapshot,
};

/// The `google.rpc.Code` of an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum Code {
    /// Allowed.
    Ok = 0,
    /// An error that has no better code.
    Unknown = 2,
    /// The request or a rule it reached cannot be evaluated (D8).
    InvalidArgument = 3,
    /// Denied by policy, or no policy allowed it.
    PermissionDenied = 7,
    /// The store lacks what the endpoint names: the endpoint itself, a policy or an IP set.
    Internal = 13,
    /// No snapshot yet, or the policy stream is broken: deny until in sync.
    Unavailable = 14,
}

impl Code {
    /// The canonical upper-case name (`PERMISSION_DENIED`).
    pub fn name(self) -> &'static str {
        match self {
            Code::Ok => "OK",
            Code::Unknown => "UNKNOWN",
            Code::InvalidArgument => "INVALID_ARGUMENT",
            Code::PermissionDenied => "PERMISSION_DENIED",
            Code::Internal => "INTERNAL",
            Code::Unavailable => "UNAVAILABLE",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

static UNKNOWN: Origin = Origin::fixed("", "", "");

/// One step of the trace: the rule (or end-of-tier / profile default, index −1) that acted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hit<'s> {
    origin: &'s Origin,
    /// The rule's position in its policy or profile; −1 for a tier's or profile's default.
    pub index: i32,
    /// What the step did.
    pub action: Action,
}

impl<'s> Hit<'s> {
    /// The policy's kind (`GlobalNetworkPolicy`, …), or `Profile`.
    pub fn kind(&self) -> &'s str {
        &self.origin.kind
    }

    /// The tier's name, or [`PROFILE_TIER`](crate::PROFILE_TIER).
    pub fn tier(&self) -> &'s str {
        &self.origin.tier
    }

    /// The policy's namespace (`""` when cluster-scoped).
    pub fn namespace(&self) -> &'s str {
        &self.origin.namespace
    }

    /// The policy's or profile's name.
    pub fn name(&self) -> &'s str {
        &self.origin.name
    }
}

/// The answer to one check. A denial is data, not an error.
#[derive(Clone, Debug)]
pub struct Decision<'s> {
    /// The answer's code: [`Code::Ok`] allows, anything else denies.
    pub code: Code,
    /// Empty unless the walk stopped short of a verdict (then it says why, and the trace is empty).
    pub message: String,
    /// The direction the check walked.
    pub direction: Direction,
    /// The steps that acted, in order: the last one gave the verdict.
    pub trace: SmallVec<[Hit<'s>; 2]>,
}

impl Decision<'_> {
    /// True when the request may proceed.
    pub fn allowed(&self) -> bool {
        self.code == Code::Ok
    }
}

/// Decides an ingress check with enforced policies only: what the authorizer answers Envoy.
pub fn decide<'s>(snap: &'s Snapshot, req: &Request<'_>) -> Decision<'s> {
    decide_with(snap, req, Direction::Ingress, Scope::Enforced)
}

/// Decides a check in any direction and scope (for explain and shadow evaluation).
pub fn decide_with<'s>(snap: &'s Snapshot, req: &Request<'_>, direction: Direction, scope: Scope) -> Decision<'s> {
    walk(snap, req, direction, scope, true)
}

/// [`decide_with`] without the port index: every rule is visited. Only for checking that the
/// index changes nothing (feature `unindexed`, which the crate's own tests turn on).
#[cfg(feature = "unindexed")]
pub fn decide_unindexed<'s>(snap: &'s Snapshot, req: &Request<'_>, direction: Direction, scope: Scope) -> Decision<'s> {
    walk(snap, req, direction, scope, false)
}

fn walk<'s>(snap: &'s Snapshot, req: &Request<'_>, direction: Direction, scope: Scope, indexed: bool) -> Decision<'s> {
    let plan = snap.plan(direction, scope);
    let mut walk = Walk {
        indexed,
        snap,
        plan,
        req,
        peers: [Cell::new(None), Cell::new(None)],
        ips: [Cell::new(None), Cell::new(None)],
        path: std::cell::OnceCell::new(),
        trace: SmallVec::new(),
        no_allow_from: Vec::new(),
    };
    let end = if plan.has_endpoint {
        walk.run(0)
    } else {
        End::Fail(Code::Internal, "no workload endpoint in the policy store".to_owned())
    };
    let (code, message) = match end {
        End::Allow => (Code::Ok, String::new()),
        End::Deny => (Code::PermissionDenied, String::new()),
        End::Fail(code, message) => {
            walk.trace.clear();
            (code, message)
        }
    };
    Decision { code, message, direction, trace: walk.trace }
}

enum End {
    Allow,
    Deny,
    Fail(Code, String),
}

/// How a rule matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Matched {
    No,
    Yes,
    /// Connection-level check against a rule with an HTTP clause (D4): it matches for some
    /// requests on the connection and not for others.
    IfHttp,
}

/// The peer identity of one side, resolved from its principal.
#[derive(Clone, Copy, Debug)]
enum PeerId<'r> {
    /// The principal is not a SPIFFE id: Calico has no peer, and peer clauses match.
    Unknown,
    /// Plain text (`""`): a peer with empty name and namespace, which peer clauses let through.
    Plain,
    /// D7: a SPIFFE id of a trust domain other than `--trust-domain`: constrained peer clauses fail.
    Foreign,
    Known {
        namespace: &'r str,
        name: &'r str,
    },
}

#[derive(Clone, Copy)]
enum Which {
    Src = 0,
    Dst = 1,
}

struct Walk<'s, 'r> {
    indexed: bool,
    snap: &'s Snapshot,
    plan: &'s Plan,
    req: &'r Request<'r>,
    peers: [Cell<Option<PeerId<'r>>>; 2],
    /// The addresses, parsed on first use.
    ips: [Cell<Option<Option<IpAddr>>>; 2],
    /// The request path, normalised on first use.
    path: std::cell::OnceCell<RequestPath<'r>>,
    trace: SmallVec<[Hit<'s>; 2]>,
    /// D4 memo: tiers from whose start no allow is reachable.
    no_allow_from: Vec<usize>,
}

impl<'s, 'r> Walk<'s, 'r> {
    fn hit_policy(&mut self, policy: u32, index: i32, action: Action) {
        let origin = self.plan.policies.get(policy as usize).map_or(&UNKNOWN, |p| &p.origin);
        self.trace.push(Hit { origin, index, action });
    }

    fn policy_label(&self, policy: u32) -> String {
        self.plan.policies.get(policy as usize).map_or_else(|| "?".to_owned(), |p| p.id.to_string())
    }

    /// Walks the tiers from `from_tier`, then the profiles.
    fn run(&mut self, from_tier: usize) -> End {
        let plan = self.plan;
        let mut t = from_tier;
        let mut candidates = if self.indexed {
            plan.candidates(self.req.destination.port, self.req.source.port)
        } else {
            plan.all_entries()
        };
        match plan.tiers.get(t) {
            Some(tier) => candidates.seek(tier.first_entry),
            None => candidates.seek(u32::MAX),
        }
        while let Some(pos) = candidates.next() {
            let Some(e) = plan.entries.get(pos as usize).copied() else { break };
            let et = e.tier as usize;
            if et < t {
                continue;
            }
            while t < et {
                if let Some(end) = self.end_of_tier(t) {
                    return end;
                }
                t += 1;
            }
            let Some(tier) = plan.tiers.get(t) else { break };
            // Dikastes reads a tier's default action at its first policy that does not match
            // (the one the end-of-tier step would name) and fails there on an invalid one:
            // reaching a later policy means the first did not decide.
            if let DefaultAction::Invalid(action) = &tier.default
                && e.policy != tier.first_policy
            {
                return invalid_default(&tier.name, action);
            }
            match e.kind {
                EntryKind::Rule => {}
                EntryKind::MissingPolicy => {
                    return End::Fail(
                        Code::Internal,
                        format!(
                            "policy {} of tier {} is missing from the policy store",
                            self.policy_label(e.policy),
                            tier.name
                        ),
                    );
                }
                EntryKind::MissingSet(set) => {
                    return End::Fail(
                        Code::Internal,
                        format!(
                            "IP set {} named by rule {} of policy {} is missing from the policy store",
                            self.snap.set_name(set),
                            e.rule,
                            self.policy_label(e.policy)
                        ),
                    );
                }
                EntryKind::Defect => {
                    let defect =
                        plan.rule(&e).and_then(|r| r.defect.as_ref()).map(|d| d.to_string()).unwrap_or_default();
                    return End::Fail(
                        Code::InvalidArgument,
                        format!("rule {} of policy {} is invalid: {defect}", e.rule, self.policy_label(e.policy)),
                    );
                }
            }
            let Some(rule) = plan.rule(&e) else { continue };
            let matched = match self.match_rule(rule) {
                Ok(m) => m,
                Err(msg) => return End::Fail(Code::InvalidArgument, msg),
            };
            let index = i32::try_from(e.rule).unwrap_or(i32::MAX);
            match (matched, &rule.action) {
                (Matched::No, _) | (_, Ok(Action::Log)) => {}
                (Matched::Yes | Matched::IfHttp, Ok(Action::Allow)) => {
                    self.hit_policy(e.policy, index, Action::Allow);
                    return End::Allow;
                }
                (Matched::Yes, Ok(Action::Deny)) => {
                    self.hit_policy(e.policy, index, Action::Deny);
                    return End::Deny;
                }
                (Matched::Yes, Ok(Action::Pass)) => {
                    self.hit_policy(e.policy, index, Action::Pass);
                    t = et + 1;
                    match plan.tiers.get(t) {
                        Some(next) => candidates.seek(next.first_entry),
                        None => break,
                    }
                }
                (Matched::Yes, Err(bad)) => {
                    return End::Fail(
                        Code::InvalidArgument,
                        format!("rule {} of policy {}: {bad}", e.rule, self.policy_label(e.policy)),
                    );
                }
                // D4: the requests this rule denies are refused by the HTTP check; the others go on.
                (Matched::IfHttp, Ok(Action::Deny) | Err(_)) => {}
                (Matched::IfHttp, Ok(Action::Pass)) => {
                    let mark = self.trace.len();
                    self.hit_policy(e.policy, index, Action::Pass);
                    if self.allow_reachable_from(et + 1) {
                        return End::Allow;
                    }
                    self.trace.truncate(mark);
                }
            }
        }
        while t < plan.tiers.len() {
            if let Some(end) = self.end_of_tier(t) {
                return end;
            }
            t += 1;
        }
        self.profiles()
    }

    /// D4: whether some request on this connection reaches an allow from the start of `tier`.
    fn allow_reachable_from(&mut self, tier: usize) -> bool {
        if self.no_allow_from.contains(&tier) {
            return false;
        }
        let mark = self.trace.len();
        if matches!(self.run(tier), End::Allow) {
            return true;
        }
        self.trace.truncate(mark);
        self.no_allow_from.push(tier);
        false
    }

    /// The end of a tier in which no policy decided; `None` means go on to the next tier.
    ///
    /// The end-of-tier step (index −1) names the tier's first in-scope policy, as Dikastes's
    /// `checkTiers` does: it takes the id of the first policy that did not match, and when the
    /// tier ends undecided none did. Which rules the port index skipped does not matter; the
    /// policy comes from the tier's plan. (A tier whose default is invalid fails at that same
    /// policy: see [`Walk::run`].)
    fn end_of_tier(&mut self, t: usize) -> Option<End> {
        let tier = self.plan.tiers.get(t)?;
        if !tier.in_scope() {
            return None;
        }
        let first = tier.first_policy;
        match &tier.default {
            DefaultAction::Deny(action) => {
                self.hit_policy(first, -1, *action);
                Some(End::Deny)
            }
            DefaultAction::Pass => {
                self.hit_policy(first, -1, Action::Pass);
                None
            }
            DefaultAction::Invalid(action) => Some(invalid_default(&tier.name, action)),
        }
    }

    fn profiles(&mut self) -> End {
        let plan = self.plan;
        let Some(last) = plan.profiles.last() else {
            self.trace.push(Hit { origin: &NO_PROFILE, index: -1, action: Action::Deny });
            return End::Deny;
        };
        for slot in &plan.profiles {
            let Some(profile) = slot.profile.as_deref() else { continue };
            for (i, rule) in profile_rules(profile, plan.direction).iter().enumerate() {
                let index = i32::try_from(i).unwrap_or(i32::MAX);
                if let Some(set) = missing_set(&self.snap.contents, rule) {
                    return End::Fail(
                        Code::Internal,
                        format!(
                            "IP set {} named by rule {i} of profile {} is missing from the policy store",
                            self.snap.set_name(set),
                            slot.name
                        ),
                    );
                }
                if let Some(defect) = &rule.defect {
                    return End::Fail(
                        Code::InvalidArgument,
                        format!("rule {i} of profile {} is invalid: {defect}", slot.name),
                    );
                }
                let matched = match self.match_rule(rule) {
                    Ok(m) => m,
                    Err(msg) => return End::Fail(Code::InvalidArgument, msg),
                };
                match (matched, &rule.action) {
                    (Matched::No, _) | (_, Ok(Action::Log)) => {}
                    (_, Ok(Action::Allow)) => {
                        self.trace.push(Hit { origin: &slot.origin, index, action: Action::Allow });
                        return End::Allow;
                    }
                    (Matched::Yes, Ok(action @ (Action::Deny | Action::Pass))) => {
                        self.trace.push(Hit { origin: &slot.origin, index, action: *action });
                        return End::Deny;
                    }
                    (Matched::Yes, Err(bad)) => {
                        return End::Fail(Code::InvalidArgument, format!("rule {i} of profile {}: {bad}", slot.name));
                    }
                    (Matched::IfHttp, _) => {}
                }
            }
        }
        self.trace.push(Hit { origin: &last.origin, index: -1, action: Action::Deny });
        End::Deny
    }

    fn match_rule(&self, rule: &Rule) -> Result<Matched, String> {
        if !self.side_matches(&rule.src, Which::Src) || !self.side_matches(&rule.dst, Which::Dst) {
            return Ok(Matched::No);
        }
        let matched = match (&rule.http, self.req.http) {
            (None, _) => Matched::Yes,
            (Some(_), None) => Matched::IfHttp,
            (Some(h), Some(r)) => {
                if !h.methods.matches(r.method) {
                    return Ok(Matched::No);
                }
                let path = self.path.get_or_init(|| RequestPath::new(r.path));
                if h.paths.matches_prepared(path).map_err(|e| e.to_string())? { Matched::Yes } else { Matched::No }
            }
        };
        let p = self.req.protocol;
        let protocol_ok = (1..=255).contains(&p)
            && rule.protocol.is_none_or(|m| m.is(p))
            && !rule.not_protocol.is_some_and(|m| m.is(p));
        Ok(if protocol_ok { matched } else { Matched::No })
    }

    fn side_matches(&self, side: &Side, which: Which) -> bool {
        side.unconstrained || self.side_clauses_match(side, which)
    }

    fn side_clauses_match(&self, side: &Side, which: Which) -> bool {
        ports_match(self, &side.ports, &side.named_port_sets, which, false)
            && ports_match(self, &side.not_ports, &side.not_named_port_sets, which, true)
            && nets_match(&side.nets, &side.not_nets, || self.ip(which))
            && side.ip_sets.iter().all(|r| self.set_has_ip(*r, which))
            && !side.not_ip_sets.iter().any(|r| self.set_has_ip(*r, which))
            && side.ip_port_sets.iter().all(|r| self.set_has_ip_port(*r, which))
            && side.service_accounts.as_ref().is_none_or(|sa| self.service_account_matches(sa, which))
            && self.namespace_matches(&side.namespace, which)
    }

    fn endpoint(&self, which: Which) -> &'r Peer<'r> {
        match which {
            Which::Src => &self.req.source,
            Which::Dst => &self.req.destination,
        }
    }

    /// The side's address, parsed on first use.
    fn ip(&self, which: Which) -> Option<IpAddr> {
        let [src, dst] = &self.ips;
        let cell = match which {
            Which::Src => src,
            Which::Dst => dst,
        };
        if let Some(ip) = cell.get() {
            return ip;
        }
        let ip = self.endpoint(which).address.ip();
        cell.set(Some(ip));
        ip
    }

    fn set(&self, r: alp_model::SetRef) -> Option<&'s IpSet> {
        self.snap.set(r)
    }

    fn set_has_ip(&self, r: alp_model::SetRef, which: Which) -> bool {
        match (self.set(r), self.ip(which)) {
            (Some(set), Some(ip)) => set.contains_ip(ip),
            _ => false,
        }
    }

    /// D3: named-port and IP-and-port sets are probed with `"<ip>,<proto>:<port>"` of that side.
    fn set_has_ip_port(&self, r: alp_model::SetRef, which: Which) -> bool {
        let port = self.endpoint(which).port;
        let (Some(set), Some(ip), Ok(protocol), Ok(port)) =
            (self.set(r), self.ip(which), u8::try_from(self.req.protocol), u16::try_from(port))
        else {
            return false;
        };
        set.contains_ip_port(ip, protocol, port)
    }

    fn peer(&self, which: Which) -> PeerId<'r> {
        let cell = match which {
            Which::Src => &self.peers[0],
            Which::Dst => &self.peers[1],
        };
        if let Some(p) = cell.get() {
            return p;
        }
        let principal = match which {
            Which::Src => self.req.source.principal,
            Which::Dst => self.req.destination.principal,
        };
        let id = if principal.is_empty() {
            PeerId::Plain
        } else {
            match SpiffeId::parse(principal) {
                None => PeerId::Unknown,
                Some(id) if self.snap.config.trust_domain.as_deref().is_some_and(|td| td != id.trust_domain) => {
                    PeerId::Foreign
                }
                Some(id) => PeerId::Known { namespace: id.namespace, name: id.service_account },
            }
        };
        cell.set(Some(id));
        id
    }

    fn service_account_matches(&self, sa: &ServiceAccountMatch, which: Which) -> bool {
        match self.peer(which) {
            PeerId::Unknown | PeerId::Plain => true,
            PeerId::Foreign => false,
            PeerId::Known { namespace, name } => {
                (sa.names.is_empty() || sa.names.iter().any(|n| n == name)) && {
                    let stored = self.snap.contents.service_accounts.get(namespace).and_then(|m| m.get(name));
                    let envoy = match which {
                        Which::Src => self.req.source.labels,
                        Which::Dst => self.req.destination.labels,
                    };
                    sa.selector.matches(&Overlay { top: stored.map(|a| &**a), bottom: envoy })
                }
            }
        }
    }

    fn namespace_matches(&self, ns: &NamespaceMatch, which: Which) -> bool {
        if matches!(ns, NamespaceMatch::Any) {
            return true;
        }
        match self.peer(which) {
            PeerId::Unknown | PeerId::Plain => true,
            PeerId::Foreign => false,
            PeerId::Known { namespace, .. } => match ns {
                NamespaceMatch::Any => true,
                NamespaceMatch::Name(n) => n == namespace,
                NamespaceMatch::Selector(s) => {
                    let labels = self.snap.contents.namespaces.get(namespace).map(|a| &**a);
                    s.matches(&Overlay { top: labels, bottom: None })
                }
            },
        }
    }
}

fn invalid_default(tier: &str, action: &str) -> End {
    End::Fail(Code::InvalidArgument, format!("tier {tier} has an invalid default action {action:?}"))
}

fn ports_match(
    walk: &Walk<'_, '_>,
    ranges: &[alp_model::PortRange],
    named: &[alp_model::SetRef],
    which: Which,
    negated: bool,
) -> bool {
    if ranges.is_empty() && named.is_empty() {
        return true;
    }
    let port = walk.endpoint(which).port;
    let hit = ranges.iter().any(|r| r.contains(port)) || named.iter().any(|r| walk.set_has_ip_port(*r, which));
    hit != negated
}

fn nets_match(nets: &[ipnet::IpNet], not_nets: &[ipnet::IpNet], ip: impl Fn() -> Option<IpAddr>) -> bool {
    if nets.is_empty() && not_nets.is_empty() {
        return true;
    }
    let ip = ip();
    let inside = |list: &[ipnet::IpNet]| ip.is_some_and(|ip| list.iter().any(|n| n.contains(&ip)));
    (nets.is_empty() || inside(nets)) && !inside(not_nets)
}
