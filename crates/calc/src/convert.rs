//! Calico v3 rules and policies → Felix's proto rules and the IP sets they name
//! (Calico's `updateprocessors/rules.go`, `felix/calc/rule_scanner.go`,
//! `felix/calc/rule_convert.go`).
//!
//! Where Calico fails open on data it could not convert (a selector that does not parse is
//! dropped, widening the rule), alp fails closed: the rule names an IP set that is never sent
//! ([`INVALID_SELECTOR_SET_ID`]), so an authorizer that reaches it stops with an error
//! (D1 in README.md) instead of matching more than the user wrote.

use std::collections::BTreeMap;

use alp_proto::felix::{
    HttpMatch, IcmpTypeAndCode, IpVersion, PortRange, Profile, Protocol as ProtoProtocol, Rule as ProtoRule,
    RuleMetadata, ServiceAccountMatch as ProtoSaMatch, http_match, protocol::NumberOrName, rule::Icmp, rule::NotIcmp,
};
use alp_resources::{Action, EntityRule, Port, Protocol, Rule, ServiceAccountMatch};
use alp_selector::Selector;
use ipnet::IpNet;

use crate::ids::{fill_in_rule_ids, named_port_set_id, service_set_id};

/// `projectcalico.org/namespace`: the namespace of a workload endpoint or network set.
pub const LABEL_NAMESPACE: &str = "projectcalico.org/namespace";
/// `projectcalico.org/orchestrator`.
pub const LABEL_ORCHESTRATOR: &str = "projectcalico.org/orchestrator";
/// `projectcalico.org/serviceaccount`.
pub const LABEL_SERVICE_ACCOUNT: &str = "projectcalico.org/serviceaccount";
/// `projectcalico.org/name`: a namespace's or service account's own name, on its profile.
pub const LABEL_NAME: &str = "projectcalico.org/name";
/// Prefix of the namespace labels a workload inherits from its `kns.` profile.
pub const NAMESPACE_LABEL_PREFIX: &str = "pcns.";
/// Prefix of the service-account labels a workload inherits from its `ksa.` profile.
pub const SERVICE_ACCOUNT_LABEL_PREFIX: &str = "pcsa.";

/// The IP set id a rule names when one of its selectors could not be built (a selector that
/// does not parse). It is never sent, so the authorizer fails closed on that rule.
pub const INVALID_SELECTOR_SET_ID: &str = "alp:invalid-selector";

/// The named-port half of an IP set: endpoints' ports of this name and protocol.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct NamedPort {
    /// `tcp`, `udp` or `sctp`.
    pub protocol: &'static str,
    /// The port name.
    pub name: String,
}

/// An IP set a rule names: every endpoint and network set its selector matches
/// contributes its addresses (`NET`), or, with a named port, `"<ip>,<proto>:<port>"` for each
/// of its ports of that name (`IP_AND_PORT`).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct IpSetDef {
    /// `s:…` or `n:…`.
    pub id: String,
    /// Which endpoints contribute.
    pub selector: Selector,
    /// `None` for a selector (`NET`) set.
    pub named_port: Option<NamedPort>,
    /// When the selector requires `projectcalico.org/namespace == '<ns>'` (a namespaced
    /// policy's default scoping), that namespace: only items labelled with it can be members.
    /// An index hint; the selector alone decides.
    pub namespace: Option<String>,
}

/// Converted rules, and the IP sets they name (the ones alp can compute members for).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct ConvertedRules {
    pub inbound: Vec<ProtoRule>,
    pub outbound: Vec<ProtoRule>,
    pub ip_sets: BTreeMap<String, IpSetDef>,
}

impl ConvertedRules {
    /// Converts both directions; rule ids are seeded with `<seed_in>` / `<seed_out>`.
    pub fn new(ingress: &[Rule], egress: &[Rule], namespace: Option<&str>, seed_in: &str, seed_out: &str) -> Self {
        let mut ip_sets = BTreeMap::new();
        let mut inbound: Vec<ProtoRule> = ingress.iter().map(|r| convert_rule(r, namespace, &mut ip_sets)).collect();
        let mut outbound: Vec<ProtoRule> = egress.iter().map(|r| convert_rule(r, namespace, &mut ip_sets)).collect();
        fill_in_rule_ids(&mut inbound, seed_in);
        fill_in_rule_ids(&mut outbound, seed_out);
        ConvertedRules { inbound, outbound, ip_sets }
    }

    /// A profile's rules (seeds `prof-in-<name>` / `prof-out-<name>`, as `event_sequencer.go`).
    pub fn for_profile(name: &str, ingress: &[Rule], egress: &[Rule]) -> Self {
        ConvertedRules::new(ingress, egress, None, &format!("prof-in-{name}"), &format!("prof-out-{name}"))
    }

    /// As a proto `Profile`.
    pub fn to_profile(&self) -> Profile {
        Profile { inbound_rules: self.inbound.clone(), outbound_rules: self.outbound.clone() }
    }
}

/// A selector string that does not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadSelector;

/// `parseSelectorAttachPrefix`: the canonical form of `selector` with `prefix` in front of every
/// label name.
pub(crate) fn prefixed_selector(selector: &str, prefix: &str) -> Result<String, BadSelector> {
    Selector::parse(selector).map(|s| s.with_label_prefix(prefix).to_string()).map_err(|_| BadSelector)
}

/// `prefixAndAppendSelector`: `(<current>) && <prefixed new>`, or just the prefixed new one.
pub(crate) fn prefix_and_append(current: String, new: &str, prefix: &str) -> Result<String, BadSelector> {
    if new.is_empty() {
        return Ok(current);
    }
    let prefixed = prefixed_selector(new, prefix)?;
    Ok(if current.is_empty() { prefixed } else { format!("({current}) && {prefixed}") })
}

/// `parseServiceAccounts`: the `pcsa.`-prefixed selector ANDed with
/// `projectcalico.org/serviceaccount in {…}` for the names.
fn service_accounts_selector(sam: &ServiceAccountMatch) -> Result<String, BadSelector> {
    let prefixed = if sam.selector.is_empty() {
        String::new()
    } else {
        prefixed_selector(&sam.selector, SERVICE_ACCOUNT_LABEL_PREFIX)?
    };
    if sam.names.is_empty() {
        return Ok(prefixed);
    }
    let names = sam.names.join("', '");
    let by_name =
        Selector::parse(&format!("{LABEL_SERVICE_ACCOUNT} in {{ '{names}' }}")).map_err(|_| BadSelector)?.to_string();
    Ok(if prefixed.is_empty() { by_name } else { format!("({prefixed}) && ({by_name})") })
}

/// `GetEntityRuleSelector` / `getEndpointSelector`: one selector for everything an entity rule
/// says about endpoints. `namespace` is the policy's namespace (`None` for global policies and
/// profiles).
pub(crate) fn entity_selector(er: &EntityRule, namespace: Option<&str>) -> Result<String, BadSelector> {
    let sa_selector = match &er.service_accounts {
        Some(sam) => service_accounts_selector(sam)?,
        None => String::new(),
    };
    let ns_selector = if !er.namespace_selector.is_empty() {
        prefixed_selector(&er.namespace_selector, NAMESPACE_LABEL_PREFIX)?
            .replace("all()", "has(projectcalico.org/namespace)")
            .replace("global()", "!has(projectcalico.org/namespace)")
    } else if let Some(ns) = namespace.filter(|ns| !ns.is_empty()) {
        format!("{LABEL_NAMESPACE} == '{ns}'")
    } else {
        String::new()
    };
    let parts: Vec<&str> = [sa_selector.as_str(), er.selector.as_str()].into_iter().filter(|s| !s.is_empty()).collect();
    let mut selector = match parts.as_slice() {
        [] => String::new(),
        [one] => (*one).to_owned(),
        many => format!("({})", many.join(") && (")),
    };
    if !ns_selector.is_empty()
        && (!selector.is_empty() || !er.not_selector.is_empty() || !er.namespace_selector.is_empty())
    {
        selector = if selector.is_empty() { ns_selector } else { format!("({ns_selector}) && ({selector})") };
    }
    Ok(selector)
}

/// A side's selectors after `combineMatchesIfPossible`: a positive selector absorbs the negated
/// one as `(<pos>) && (!(<neg>))`.
struct SideSelectors {
    positive: Option<Result<Selector, BadSelector>>,
    negative: Option<Result<Selector, BadSelector>>,
    /// The namespace the positive selector is scoped to by default (see [`IpSetDef::namespace`]).
    namespace: Option<String>,
}

fn side_selectors(er: &EntityRule, namespace: Option<&str>) -> SideSelectors {
    let parse = |s: &str| Selector::parse(s).map_err(|_| BadSelector);
    let negative_raw = er.not_selector.as_str();
    // With no namespaceSelector, a namespaced policy's non-empty positive selector is
    // `(projectcalico.org/namespace == '<ns>') && (…)` or just that term.
    let scoped = namespace.filter(|ns| !ns.is_empty() && er.namespace_selector.is_empty()).map(str::to_owned);
    match entity_selector(er, namespace) {
        Err(e) => SideSelectors { positive: Some(Err(e)), negative: None, namespace: None },
        Ok(pos) if pos.is_empty() => SideSelectors {
            positive: None,
            negative: (!negative_raw.is_empty()).then(|| parse(negative_raw)),
            namespace: None,
        },
        Ok(pos) => {
            let combined = if negative_raw.is_empty() { pos } else { format!("({pos}) && (!({negative_raw}))") };
            SideSelectors { positive: Some(parse(&combined)), negative: None, namespace: scoped }
        }
    }
}

/// The IP set for a selector, registered in `sets`; its id.
fn selector_set(
    sel: &Result<Selector, BadSelector>,
    namespace: Option<&String>,
    sets: &mut BTreeMap<String, IpSetDef>,
) -> String {
    match sel {
        Ok(sel) => {
            let id = sel.unique_id();
            sets.entry(id.clone()).or_insert_with(|| IpSetDef {
                id: id.clone(),
                selector: sel.clone(),
                named_port: None,
                namespace: namespace.cloned(),
            });
            id
        }
        Err(BadSelector) => INVALID_SELECTOR_SET_ID.to_owned(),
    }
}

/// The IP set for a named port filtered by `positive` (or `all()`), registered in `sets`.
fn named_port_set(
    side: &SideSelectors,
    protocol: &'static str,
    name: &str,
    sets: &mut BTreeMap<String, IpSetDef>,
) -> String {
    let (selector, namespace) = match &side.positive {
        None => (Selector::all(), None),
        Some(Ok(sel)) => (sel.clone(), side.namespace.clone()),
        Some(Err(BadSelector)) => return INVALID_SELECTOR_SET_ID.to_owned(),
    };
    let id = named_port_set_id(&selector.unique_id(), protocol, name);
    sets.entry(id.clone()).or_insert_with(|| IpSetDef {
        id: id.clone(),
        selector,
        named_port: Some(NamedPort { protocol, name: name.to_owned() }),
        namespace,
    });
    id
}

/// `ruleActionAPIV2ToBackend`: lower case, `Pass` → `next-tier`.
pub(crate) fn action_to_v1(action: Action) -> &'static str {
    match action {
        Action::Allow => "allow",
        Action::Deny => "deny",
        Action::Log => "log",
        Action::Pass => "next-tier",
    }
}

/// `protocolToProtoProtocol` after `ToV1`: numbers stay numbers, names are lower-cased.
fn protocol_to_proto(p: &Protocol) -> ProtoProtocol {
    let number_or_name = match p {
        Protocol::Number(n) => NumberOrName::Number(i32::from(*n)),
        Protocol::Name(s) => NumberOrName::Name(s.to_lowercase()),
    };
    ProtoProtocol { number_or_name: Some(number_or_name) }
}

/// The named-port protocol of a rule (`labelindex` protocols): UDP or SCTP when the rule says
/// so, TCP otherwise.
fn named_port_protocol(p: Option<&Protocol>) -> &'static str {
    match p {
        Some(Protocol::Number(17)) => "udp",
        Some(Protocol::Number(132)) => "sctp",
        Some(Protocol::Name(s)) if s.eq_ignore_ascii_case("udp") => "udp",
        Some(Protocol::Name(s)) if s.eq_ignore_ascii_case("sctp") => "sctp",
        _ => "tcp",
    }
}

/// `ipVersionToProtoIPVersion`: explicit 4/6, else ICMP implies 4 and ICMPv6 implies 6.
fn ip_version(rule: &Rule) -> IpVersion {
    match rule.ip_version {
        Some(4) => IpVersion::Ipv4,
        Some(6) => IpVersion::Ipv6,
        Some(_) => IpVersion::Any,
        None => match rule.protocol.as_ref().map(Protocol::to_v1).as_deref() {
            Some("icmp") => IpVersion::Ipv4,
            Some("icmpv6") => IpVersion::Ipv6,
            _ => IpVersion::Any,
        },
    }
}

fn split_ports(ports: &[Port]) -> (Vec<PortRange>, Vec<&str>) {
    let mut numeric = Vec::new();
    let mut named = Vec::new();
    for p in ports {
        match p {
            Port::Range { min, max } => numeric.push(PortRange { first: i32::from(*min), last: i32::from(*max) }),
            Port::Named(name) => named.push(name.as_str()),
        }
    }
    (numeric, named)
}

/// Parses `s` as a CIDR or a bare address (a bare address is a /32 or /128).
pub(crate) fn parse_cidr_or_ip(s: &str) -> Option<IpNet> {
    s.parse::<IpNet>().ok().or_else(|| s.parse::<std::net::IpAddr>().ok().map(IpNet::from))
}

/// Source nets: as written (a bare address becomes a /32 or /128). A string that does not parse
/// is passed on unchanged so the authorizer rejects the rule (D8) rather than dropping
/// the criterion, as Calico does, and widening the rule.
fn src_nets(nets: &[String]) -> Vec<String> {
    nets.iter().map(|n| parse_cidr_or_ip(n).map_or_else(|| n.clone(), |net| net.to_string())).collect()
}

/// Destination nets: masked to the network (`NormalizeIPNets`); unparsable strings as for
/// [`src_nets`].
fn dst_nets(nets: &[String]) -> Vec<String> {
    nets.iter().map(|n| parse_cidr_or_ip(n).map_or_else(|| n.clone(), |net| net.trunc().to_string())).collect()
}

fn sa_match(er: &EntityRule) -> Option<ProtoSaMatch> {
    er.service_accounts
        .as_ref()
        .filter(|sam| !sam.names.is_empty() || !sam.selector.is_empty())
        .map(|sam| ProtoSaMatch { selector: sam.selector.clone(), names: sam.names.clone() })
}

/// One v3 rule → proto rule (without its id), registering the IP sets it names in `sets`.
/// `namespace` is the policy's namespace (`None` for global policies and profiles).
pub(crate) fn convert_rule(rule: &Rule, namespace: Option<&str>, sets: &mut BTreeMap<String, IpSetDef>) -> ProtoRule {
    let src = side_selectors(&rule.source, namespace);
    let dst = side_selectors(&rule.destination, namespace);
    let (src_ports, src_named) = split_ports(&rule.source.ports);
    let (dst_ports, dst_named) = split_ports(&rule.destination.ports);
    let (not_src_ports, not_src_named) = split_ports(&rule.source.not_ports);
    let (not_dst_ports, not_dst_named) = split_ports(&rule.destination.not_ports);
    let proto = named_port_protocol(rule.protocol.as_ref());

    // Named ports are always filtered by the positive selector of their side, even the
    // negated ones (rule_scanner.go).
    let named = |names: &[&str], side: &SideSelectors, sets: &mut BTreeMap<_, _>| {
        names.iter().map(|n| named_port_set(side, proto, n, sets)).collect::<Vec<String>>()
    };
    let src_named_port_ip_set_ids = named(&src_named, &src, sets);
    let dst_named_port_ip_set_ids = named(&dst_named, &dst, sets);
    let not_src_named_port_ip_set_ids = named(&not_src_named, &src, sets);
    let not_dst_named_port_ip_set_ids = named(&not_dst_named, &dst, sets);

    // A side whose only ports are named ones is covered by the named-port sets.
    let mut src_ip_set_ids = Vec::new();
    if !src_ports.is_empty() || src_named.is_empty() {
        src_ip_set_ids.extend(src.positive.as_ref().map(|s| selector_set(s, src.namespace.as_ref(), sets)));
    }
    let mut dst_ip_set_ids = Vec::new();
    if !dst_ports.is_empty() || dst_named.is_empty() {
        dst_ip_set_ids.extend(dst.positive.as_ref().map(|s| selector_set(s, dst.namespace.as_ref(), sets)));
    }
    let not_src_ip_set_ids: Vec<String> =
        src.negative.as_ref().map(|s| selector_set(s, None, sets)).into_iter().collect();
    let not_dst_ip_set_ids: Vec<String> =
        dst.negative.as_ref().map(|s| selector_set(s, None, sets)).into_iter().collect();

    // Services: alp has no Service/EndpointSlice model, so these sets are named with Felix's ids
    // but never sent; a rule that reaches one fails closed (D1).
    let service_ns =
        |svc_ns: &str| if svc_ns.is_empty() { namespace.unwrap_or_default().to_owned() } else { svc_ns.to_owned() };
    let mut dst_ip_port_set_ids = Vec::new();
    let (mut original_dst_service, mut original_dst_service_namespace) = (String::new(), String::new());
    if let Some(svc) = rule.destination.services.as_ref().filter(|s| !s.name.is_empty()) {
        let ns = service_ns(&svc.namespace);
        dst_ip_port_set_ids.push(service_set_id(true, &ns, &svc.name));
        original_dst_service = svc.name.clone();
        original_dst_service_namespace = svc.namespace.clone();
    }
    let (mut original_src_service, mut original_src_service_namespace) = (String::new(), String::new());
    if let Some(svc) = rule.source.services.as_ref().filter(|s| !s.name.is_empty()) {
        let ns = service_ns(&svc.namespace);
        src_ip_set_ids.push(service_set_id(false, &ns, &svc.name));
        original_src_service = svc.name.clone();
        original_src_service_namespace = svc.namespace.clone();
    }

    let icmp = rule.icmp.as_ref().and_then(|i| {
        let t = i32::try_from(i.icmp_type?).ok()?;
        Some(match i.code.and_then(|c| i32::try_from(c).ok()) {
            Some(code) => Icmp::IcmpTypeCode(IcmpTypeAndCode { r#type: t, code }),
            None => Icmp::IcmpType(t),
        })
    });
    let not_icmp = rule.not_icmp.as_ref().and_then(|i| {
        let t = i32::try_from(i.icmp_type?).ok()?;
        Some(match i.code.and_then(|c| i32::try_from(c).ok()) {
            Some(code) => NotIcmp::NotIcmpTypeCode(IcmpTypeAndCode { r#type: t, code }),
            None => NotIcmp::NotIcmpType(t),
        })
    });

    let http_match = rule.http.as_ref().map(|h| HttpMatch {
        methods: h.methods.clone(),
        paths: h
            .paths
            .iter()
            .filter_map(|p| {
                let m = if !p.exact.is_empty() {
                    http_match::path_match::PathMatch::Exact(p.exact.clone())
                } else if !p.prefix.is_empty() {
                    http_match::path_match::PathMatch::Prefix(p.prefix.clone())
                } else {
                    return None;
                };
                Some(http_match::PathMatch { path_match: Some(m) })
            })
            .collect(),
    });

    let metadata = rule
        .metadata
        .as_ref()
        .filter(|m| !m.annotations.is_empty())
        .map(|m| RuleMetadata { annotations: m.annotations.iter().map(|(k, v)| (k.clone(), v.clone())).collect() });

    ProtoRule {
        action: action_to_v1(rule.action).to_owned(),
        ip_version: ip_version(rule) as i32,
        protocol: rule.protocol.as_ref().map(protocol_to_proto),
        src_net: src_nets(&rule.source.nets),
        src_ports,
        dst_net: dst_nets(&rule.destination.nets),
        dst_ports,
        icmp,
        src_ip_set_ids,
        dst_ip_set_ids,
        src_named_port_ip_set_ids,
        dst_named_port_ip_set_ids,
        dst_ip_port_set_ids,
        not_protocol: rule.not_protocol.as_ref().map(protocol_to_proto),
        not_src_net: src_nets(&rule.source.not_nets),
        not_src_ports,
        not_dst_net: dst_nets(&rule.destination.not_nets),
        not_dst_ports,
        not_icmp,
        not_src_ip_set_ids,
        not_dst_ip_set_ids,
        not_src_named_port_ip_set_ids,
        not_dst_named_port_ip_set_ids,
        original_src_selector: rule.source.selector.clone(),
        original_dst_selector: rule.destination.selector.clone(),
        original_src_namespace_selector: rule.source.namespace_selector.clone(),
        original_dst_namespace_selector: rule.destination.namespace_selector.clone(),
        original_not_src_selector: rule.source.not_selector.clone(),
        original_not_dst_selector: rule.destination.not_selector.clone(),
        src_service_account_match: sa_match(&rule.source),
        dst_service_account_match: sa_match(&rule.destination),
        http_match,
        metadata,
        original_dst_service,
        original_dst_service_namespace,
        original_src_service,
        original_src_service_namespace,
        rule_id: String::new(),
    }
}

#[cfg(test)]
mod tests;
