//! Validation: what Calico's v3 validator (`libcalico-go/lib/validator/v3`, and the CRD
//! schemas it stands in for) and the Kubernetes API server reject, as far as alp relies on it.
//! Every problem is reported with the path of its field.

use std::{collections::BTreeSet, net::IpAddr, str::FromStr};

use alp_selector::Selector;
use ipnet::IpNet;

use crate::{
    calico::{EndpointPort, MAX_RULES_PER_DIRECTION, NetworkSetSpec, PERFORMANCE_HINT_ASSUME_NEEDED},
    error::FieldError,
    k8s::{LabelSelector, NetworkPolicyPeer, NetworkPolicyPort, Pod, SelectorRole},
    meta::ObjectMeta,
    policy::{CalicoPolicyView, KubernetesPolicyView, PolicyScope, PolicyView, StagedAction},
    resource::{Kind, Resource},
    rule::{EntityRule, HttpMatch, IcmpFields, PROTOCOL_NAMES, PolicyType, Port, Protocol, Rule},
};

/// Most HTTP methods, and most HTTP paths, in one rule.
pub const MAX_HTTP_MATCHES: usize = 20;
/// Longest HTTP path match.
pub const MAX_HTTP_PATH_LEN: usize = 1024;

const NUMERIC_PORTS_NEED_PROTOCOL: &str =
    "rules with numeric port or port range must set protocol to TCP or UDP or SCTP";
const PORTS_NEED_PORT_PROTOCOL: &str = "rules that specify ports must set protocol to TCP or UDP or SCTP";
const GLOBAL_ONLY_IN_NS_SELECTOR: &str = "global() can only be used in an EntityRule namespaceSelector";

#[derive(Default)]
struct Errors(Vec<FieldError>);

impl Errors {
    fn push(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.0.push(FieldError::new(field, reason));
    }
}

fn join(base: &str, key: &str) -> String {
    if base.is_empty() { key.to_owned() } else { format!("{base}.{key}") }
}

fn idx(base: &str, i: usize) -> String {
    format!("{base}[{i}]")
}

/// Calico's `nameLabelFmt`: `[a-z0-9]([-a-z0-9]*[a-z0-9])?` (no length limit).
fn is_label_fmt(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => alnum(first) && alnum(last) && b.iter().all(|c| alnum(c) || *c == b'-'),
        _ => false,
    }
}

/// A DNS-1123 label: `nameLabelFmt`, at most 63 characters.
pub fn is_dns_label(s: &str) -> bool {
    s.len() <= 63 && is_label_fmt(s)
}

/// A DNS-1123 subdomain (Calico's `nameRegex`): dot-separated `nameLabelFmt`s, at most 253
/// characters.
pub fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_label_fmt)
}

/// Kubernetes' `IsValidPortName` (an IANA service name): 1–15 characters of `a-z`, `0-9` and
/// `-`, at least one letter, not starting or ending with `-`, no `--`.
pub fn is_valid_port_name(s: &str) -> bool {
    (1..=15).contains(&s.len())
        && s.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && s.bytes().any(|c| c.is_ascii_lowercase())
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
}

/// Calico's `ParseCIDROrIP`: a CIDR (host bits allowed) or a bare address.
fn is_cidr_or_ip(s: &str) -> bool {
    IpNet::from_str(s).is_ok() || IpAddr::from_str(s).is_ok()
}

fn check_selector(errs: &mut Errors, field: String, sel: &str, allow_global: bool) {
    if sel.is_empty() {
        return;
    }
    if let Err(e) = Selector::parse(sel) {
        errs.push(field, format!("invalid selector {sel:?}: {e}"));
    } else if !allow_global && sel.contains("global(") {
        errs.push(field, GLOBAL_ONLY_IN_NS_SELECTOR);
    }
}

impl Resource {
    /// Everything wrong with the resource, each with its field path; empty when valid.
    ///
    /// Checks what Calico's v3 validator and CRD schemas reject that matters to alp (and what the
    /// Kubernetes API server rejects for its kinds): names; selectors (they must parse; `global()`
    /// only alone in an entity `namespaceSelector`); protocols (`TCP`, `UDP`, `ICMP`, `ICMPv6`,
    /// `SCTP`, `UDPLite` exactly, or 1–255) and ports (1–65535, min ≤ max, IANA port names,
    /// numeric ports only with TCP/UDP/SCTP); ICMP type/code; `ipVersion`; nets (CIDRs, one IP
    /// family per rule); HTTP matches (≤ 20 methods without duplicates, ≤ 20 paths of exactly
    /// one of `exact`/`prefix`, starting with `/`, without `?`, `#` or a space) and no HTTP
    /// clause in egress rules; service matches; ≤ 1024 rules per direction; unique `types`.
    /// Shapes (actions, policy types, a tier's `defaultAction`) are enforced when decoding.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errs = Errors::default();
        let policy = self.as_policy();
        let scope = match policy {
            Some(PolicyView::Calico(p)) => Some(p.scope),
            _ => None,
        };
        validate_metadata(&mut errs, self.kind(), scope, self.metadata());
        match policy {
            Some(PolicyView::Calico(p)) => validate_calico_policy(&mut errs, &p),
            Some(PolicyView::Kubernetes(p)) => validate_k8s_policy(&mut errs, &p),
            None => {}
        }
        match self {
            Resource::Profile(p) => {
                validate_rules(&mut errs, "spec.ingress", &p.spec.ingress, Direction::Ingress, None);
                validate_rules(&mut errs, "spec.egress", &p.spec.egress, Direction::Egress, None);
            }
            Resource::GlobalNetworkSet(s) => validate_network_set(&mut errs, &s.metadata, &s.spec),
            Resource::NetworkSet(s) => validate_network_set(&mut errs, &s.metadata, &s.spec),
            Resource::WorkloadEndpoint(w) => {
                for (i, net) in w.spec.ip_networks.iter().enumerate() {
                    if !is_cidr_or_ip(net) {
                        errs.push(idx("spec.ipNetworks", i), format!("invalid CIDR {net:?}"));
                    }
                }
                for (i, port) in w.spec.ports.iter().enumerate() {
                    validate_endpoint_port(&mut errs, &idx("spec.ports", i), port);
                }
            }
            Resource::Pod(p) => validate_pod(&mut errs, p),
            // Policies are validated above; tiers, namespaces and service accounts have nothing
            // to check beyond their metadata.
            _ => {}
        }
        errs.0
    }
}

/// `policy_scope`: the scope of a Calico tiered policy, whose names follow their own rules.
fn validate_metadata(errs: &mut Errors, kind: Kind, policy_scope: Option<PolicyScope>, meta: &ObjectMeta) {
    let name = meta.name.as_str();
    if name.is_empty() {
        errs.push("metadata.name", "name is required");
    } else {
        let ok = match (policy_scope, kind) {
            // `globalNetworkPolicyNameRegex`: a label, optionally after one `label.`.
            (Some(PolicyScope::Global), _) => {
                name.len() <= 253 && name.split('.').count() <= 2 && name.split('.').all(is_label_fmt)
            }
            // `networkPolicyNameRegex`: `label` or `label.label`, or `knp.default.<subdomain>`
            // (older releases' name for a converted Kubernetes NetworkPolicy, still accepted)
            // and `ossg.default.`.
            (Some(PolicyScope::Namespaced), _) => {
                let prefixed = [crate::k8s::LEGACY_KUBERNETES_NETWORK_POLICY_NAME_PREFIX, "ossg.default."]
                    .iter()
                    .find_map(|p| name.strip_prefix(p))
                    .is_some_and(is_dns_subdomain);
                name.len() <= 253 && (prefixed || (name.split('.').count() <= 2 && name.split('.').all(is_label_fmt)))
            }
            (None, Kind::Tier | Kind::Namespace) => is_dns_label(name),
            (None, _) => is_dns_subdomain(name),
        };
        if !ok {
            let what = match (policy_scope, kind) {
                (Some(_), _) => "lower case alphanumerics and '-', with at most one '.'",
                (None, Kind::Tier | Kind::Namespace) => {
                    "a DNS label (lower case alphanumerics and '-', at most 63 characters)"
                }
                (None, _) => "a DNS subdomain (lower case alphanumerics, '-' and '.', at most 253 characters)",
            };
            errs.push("metadata.name", format!("invalid name {name:?}: must be {what}"));
        }
    }
    if kind.is_namespaced()
        && let Some(ns) = meta.namespace.as_deref()
        && !ns.is_empty()
        && !is_dns_label(ns)
    {
        errs.push("metadata.namespace", format!("invalid namespace {ns:?}: must be a DNS label"));
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Ingress,
    Egress,
}

fn validate_calico_policy(errs: &mut Errors, p: &CalicoPolicyView<'_>) {
    if p.staged_action == Some(StagedAction::Delete) {
        // Every field but the tier (and the types) at its zero value.
        let zero = p.order.is_none()
            && p.ingress.is_empty()
            && p.egress.is_empty()
            && p.selector.is_empty()
            && !p.do_not_track
            && !p.pre_dnat
            && !p.apply_on_forward
            && p.service_account_selector.is_empty()
            && p.namespace_selector.is_empty()
            && p.performance_hints.is_empty();
        if !zero {
            errs.push("spec", "spec fields, except tier, should all be zero-value if stagedAction is Delete");
        }
        return;
    }
    if !p.tier.is_empty() && !is_dns_subdomain(p.tier) {
        errs.push("spec.tier", format!("invalid tier name {:?}", p.tier));
    }
    check_selector(errs, "spec.selector".into(), p.selector, false);
    check_selector(errs, "spec.namespaceSelector".into(), p.namespace_selector, false);
    check_selector(errs, "spec.serviceAccountSelector".into(), p.service_account_selector, false);
    check_unique_types(errs, "spec.types", p.types);
    let mut hints = BTreeSet::new();
    for (i, hint) in p.performance_hints.iter().enumerate() {
        if hint != PERFORMANCE_HINT_ASSUME_NEEDED {
            errs.push(idx("spec.performanceHints", i), format!("must be {PERFORMANCE_HINT_ASSUME_NEEDED}"));
        } else if !hints.insert(hint) {
            errs.push(idx("spec.performanceHints", i), "duplicate value");
        }
    }
    validate_rules(errs, "spec.ingress", p.ingress, Direction::Ingress, Some(p.scope));
    validate_rules(errs, "spec.egress", p.egress, Direction::Egress, Some(p.scope));
}

fn check_unique_types(errs: &mut Errors, field: &str, types: &[PolicyType]) {
    let mut seen = BTreeSet::new();
    for (i, t) in types.iter().enumerate() {
        if !seen.insert(*t) {
            errs.push(idx(field, i), format!("duplicate value {t:?}"));
        }
    }
}

/// `scope` is `None` for profiles: no direction-specific restrictions.
fn validate_rules(errs: &mut Errors, base: &str, rules: &[Rule], dir: Direction, scope: Option<PolicyScope>) {
    if rules.len() > MAX_RULES_PER_DIRECTION {
        errs.push(base, format!("at most {MAX_RULES_PER_DIRECTION} rules are allowed, found {}", rules.len()));
    }
    for (i, rule) in rules.iter().enumerate() {
        validate_rule(errs, &idx(base, i), rule, dir, scope);
    }
}

fn validate_protocol(errs: &mut Errors, field: String, p: &Protocol) {
    match p {
        Protocol::Number(0) => errs.push(field, "protocol number invalid: must be 1-255"),
        Protocol::Name(name) if !p.is_valid() => {
            let names: Vec<&str> = PROTOCOL_NAMES.iter().map(|(n, _)| *n).collect();
            errs.push(field, format!("protocol name invalid: {name:?} (must be one of {} or 1-255)", names.join(", ")));
        }
        _ => {}
    }
}

fn validate_icmp(errs: &mut Errors, base: &str, icmp: &IcmpFields) {
    if let Some(t) = icmp.icmp_type
        && !(0..=254).contains(&t)
    {
        errs.push(join(base, "type"), format!("ICMP type {t} must be between 0 and 254"));
    }
    if let Some(c) = icmp.code {
        if !(0..=255).contains(&c) {
            errs.push(join(base, "code"), format!("ICMP code {c} must be between 0 and 255"));
        }
        if icmp.icmp_type.is_none() {
            errs.push(join(base, "code"), "ICMP code specified without an ICMP type");
        }
    }
}

fn validate_rule(errs: &mut Errors, base: &str, rule: &Rule, dir: Direction, scope: Option<PolicyScope>) {
    if let Some(v) = rule.ip_version
        && v != 4
        && v != 6
    {
        errs.push(join(base, "ipVersion"), format!("ipVersion {v} must be 4 or 6"));
    }
    if let Some(p) = &rule.protocol {
        validate_protocol(errs, join(base, "protocol"), p);
    }
    if let Some(p) = &rule.not_protocol {
        validate_protocol(errs, join(base, "notProtocol"), p);
    }
    if let Some(icmp) = &rule.icmp {
        validate_icmp(errs, &join(base, "icmp"), icmp);
    }
    if let Some(icmp) = &rule.not_icmp {
        validate_icmp(errs, &join(base, "notICMP"), icmp);
    }

    // Ports need a protocol that has them (`validateRule`).
    for (side, entity) in [("source", &rule.source), ("destination", &rule.destination)] {
        for (name, ports) in [("ports", &entity.ports), ("notPorts", &entity.not_ports)] {
            let field = join(&join(base, side), name);
            match &rule.protocol {
                None => {
                    if !ports.iter().all(|p| matches!(p, Port::Named(_))) {
                        errs.push(field, NUMERIC_PORTS_NEED_PROTOCOL);
                    }
                }
                Some(p) => {
                    if !p.supports_ports() && !ports.is_empty() {
                        errs.push(field, PORTS_NEED_PORT_PROTOCOL);
                    }
                }
            }
        }
    }

    // Nets: CIDRs, one IP family per rule, matching ipVersion.
    let (mut seen_v4, mut seen_v6) = (false, false);
    for (side, entity) in [("source", &rule.source), ("destination", &rule.destination)] {
        for (name, nets) in [("nets", &entity.nets), ("notNets", &entity.not_nets)] {
            let field = join(&join(base, side), name);
            let (mut v4, mut v6) = (false, false);
            for (j, n) in nets.iter().enumerate() {
                match IpNet::from_str(n) {
                    Ok(IpNet::V4(_)) => v4 = true,
                    Ok(IpNet::V6(_)) => v6 = true,
                    Err(_) => errs.push(idx(&field, j), format!("invalid CIDR {n:?}")),
                }
            }
            if let Some(ipv) = rule.ip_version
                && ((v4 && ipv != 4) || (v6 && ipv != 6))
            {
                errs.push(field.clone(), "rule IP version doesn't match CIDR version");
            }
            if (v4 && seen_v6) || (v6 && seen_v4) || (v4 && v6) {
                errs.push(field, "rule contains both IPv4 and IPv6 CIDRs");
            }
            seen_v4 |= v4;
            seen_v6 |= v6;
        }
    }

    validate_entity(errs, &join(base, "source"), &rule.source);
    validate_entity(errs, &join(base, "destination"), &rule.destination);
    if let Some(http) = &rule.http {
        validate_http(errs, &join(base, "http"), http);
    }

    let Some(scope) = scope else { return };
    match dir {
        Direction::Egress => {
            if rule.http.is_some() {
                errs.push(join(base, "http"), "not allowed in egress rule");
            }
            if rule.source.services.is_some() {
                errs.push(join(base, "source.services"), "not allowed in egress rule source");
            }
        }
        Direction::Ingress => {
            if rule.destination.services.is_some() {
                errs.push(join(base, "destination.services"), "not allowed in ingress rule destination");
            }
        }
    }
    if scope == PolicyScope::Global {
        let (side, services) = match dir {
            Direction::Egress => ("destination", &rule.destination.services),
            Direction::Ingress => ("source", &rule.source.services),
        };
        if services.as_ref().is_some_and(|s| s.namespace.is_empty()) {
            errs.push(join(base, &format!("{side}.services.namespace")), "must specify a namespace");
        }
    }
}

fn validate_entity(errs: &mut Errors, base: &str, e: &EntityRule) {
    check_selector(errs, join(base, "selector"), &e.selector, false);
    check_selector(errs, join(base, "notSelector"), &e.not_selector, true);
    check_selector(errs, join(base, "namespaceSelector"), &e.namespace_selector, true);
    if e.namespace_selector.contains("global(") {
        let compact: String = e.namespace_selector.chars().filter(|c| *c != ' ' && *c != '\t').collect();
        if compact != "global()" {
            errs.push(join(base, "namespaceSelector"), "global() cannot be combined with other selectors");
        }
    }
    for (name, ports) in [("ports", &e.ports), ("notPorts", &e.not_ports)] {
        for (j, port) in ports.iter().enumerate() {
            validate_port(errs, idx(&join(base, name), j), port);
        }
    }
    if let Some(sa) = &e.service_accounts {
        check_selector(errs, join(base, "serviceAccounts.selector"), &sa.selector, false);
    }
    if let Some(svc) = &e.services {
        let field = join(base, "services");
        if svc.name.is_empty() {
            errs.push(join(&field, "name"), "must specify a service name");
        }
        if !e.selector.is_empty() || !e.not_selector.is_empty() {
            errs.push(field.clone(), "cannot specify Selector/NotSelector and Services on the same rule");
        }
        if !e.nets.is_empty() || !e.not_nets.is_empty() {
            errs.push(field, "cannot specify Nets/NotNets and Services on the same rule");
        }
    }
}

fn validate_port(errs: &mut Errors, field: String, port: &Port) {
    match port {
        Port::Range { min, max } => {
            if min > max {
                errs.push(field, format!("port range invalid: {min} is greater than {max}"));
            } else if *min < 1 {
                errs.push(field, "port range invalid, port number must be between 1 and 65535");
            }
        }
        Port::Named(name) => {
            if !is_valid_port_name(name) {
                errs.push(field, format!("invalid port name {name:?}: {PORT_NAME_RULE}"));
            }
        }
    }
}

const PORT_NAME_RULE: &str = "must be 1-15 characters of a-z, 0-9 and '-', with at least one letter, \
                              not starting or ending with '-' and without '--'";

fn validate_http(errs: &mut Errors, base: &str, http: &HttpMatch) {
    let methods = join(base, "methods");
    if http.methods.len() > MAX_HTTP_MATCHES {
        errs.push(
            methods.clone(),
            format!("at most {MAX_HTTP_MATCHES} methods are allowed, found {}", http.methods.len()),
        );
    }
    let distinct: BTreeSet<&String> = http.methods.iter().collect();
    if distinct.len() != http.methods.len() {
        errs.push(methods, format!("invalid methods (duplicates): {:?}", http.methods));
    }
    let paths = join(base, "paths");
    if http.paths.len() > MAX_HTTP_MATCHES {
        errs.push(paths.clone(), format!("at most {MAX_HTTP_MATCHES} paths are allowed, found {}", http.paths.len()));
    }
    for (j, path) in http.paths.iter().enumerate() {
        let field = idx(&paths, j);
        let (key, value) = match (path.exact.is_empty(), path.prefix.is_empty()) {
            (false, false) => {
                errs.push(field, "invalid path match: both 'exact' and 'prefix' are set");
                continue;
            }
            (true, true) => {
                errs.push(field, "invalid path match: either 'exact' or 'prefix' must be set");
                continue;
            }
            (false, true) => ("exact", &path.exact),
            (true, false) => ("prefix", &path.prefix),
        };
        let field = join(&field, key);
        if !value.starts_with('/') || value.contains(['?', '#', ' ']) {
            errs.push(
                field,
                format!("invalid path {value:?}: must start with `/` and not contain `?`, `#` or a space"),
            );
        } else if value.len() > MAX_HTTP_PATH_LEN {
            errs.push(field, format!("path is longer than {MAX_HTTP_PATH_LEN} characters"));
        }
    }
}

fn validate_network_set(errs: &mut Errors, meta: &ObjectMeta, spec: &NetworkSetSpec) {
    if meta.labels.contains_key("projectcalico.org/namespace") {
        errs.push("metadata.labels", "projectcalico.org/namespace is not a valid label name");
    }
    for (i, net) in spec.nets.iter().enumerate() {
        if !is_cidr_or_ip(net) {
            errs.push(idx("spec.nets", i), format!("invalid CIDR {net:?}"));
        }
    }
}

fn validate_endpoint_port(errs: &mut Errors, base: &str, port: &EndpointPort) {
    validate_protocol(errs, join(base, "protocol"), &port.protocol);
    if !port.protocol.supports_ports() {
        errs.push(join(base, "protocol"), "WorkloadEndpointPort protocol does not support ports");
    }
    if port.name.is_empty() {
        if port.host_port == 0 {
            errs.push(join(base, "name"), "WorkloadEndpointPort name must not be empty if no hostPort is specified");
        }
    } else if !is_valid_port_name(&port.name) {
        errs.push(join(base, "name"), format!("invalid port name {:?}: {PORT_NAME_RULE}", port.name));
    }
}

fn validate_pod(errs: &mut Errors, pod: &Pod) {
    let spec = &pod.spec;
    for (list, containers) in [("spec.containers", &spec.containers), ("spec.initContainers", &spec.init_containers)] {
        for (i, c) in containers.iter().enumerate() {
            for (j, port) in c.ports.iter().enumerate() {
                let base = idx(&join(&idx(list, i), "ports"), j);
                if !(1..=65535).contains(&port.container_port) {
                    errs.push(
                        join(&base, "containerPort"),
                        format!("{} must be between 1 and 65535", port.container_port),
                    );
                }
                if let Some(name) = &port.name
                    && !is_valid_port_name(name)
                {
                    errs.push(join(&base, "name"), format!("invalid port name {name:?}: {PORT_NAME_RULE}"));
                }
                check_k8s_protocol(errs, join(&base, "protocol"), port.protocol.as_deref());
            }
        }
    }
    if let Some(ip) = &pod.status.pod_ip
        && !ip.is_empty()
        && IpAddr::from_str(ip).is_err()
    {
        errs.push("status.podIP", format!("invalid IP address {ip:?}"));
    }
    for (i, ip) in pod.status.pod_ips.iter().enumerate() {
        if IpAddr::from_str(&ip.ip).is_err() {
            errs.push(join(&idx("status.podIPs", i), "ip"), format!("invalid IP address {:?}", ip.ip));
        }
    }
}

fn check_k8s_protocol(errs: &mut Errors, field: String, protocol: Option<&str>) {
    if let Some(p) = protocol
        && !matches!(p, "TCP" | "UDP" | "SCTP")
    {
        errs.push(field, format!("unsupported protocol {p:?}: supported values: \"SCTP\", \"TCP\", \"UDP\""));
    }
}

fn validate_k8s_policy(errs: &mut Errors, p: &KubernetesPolicyView<'_>) {
    if p.staged_action == Some(StagedAction::Delete) {
        let zero = p.pod_selector.is_empty() && p.ingress.is_empty() && p.egress.is_empty();
        if !zero {
            errs.push("spec", "spec fields should all be zero-value if stagedAction is Delete");
        }
        return;
    }
    validate_label_selector(errs, "spec.podSelector", p.pod_selector, SelectorRole::Pod);
    check_unique_types(errs, "spec.policyTypes", p.policy_types);
    for (i, rule) in p.ingress.iter().enumerate() {
        let base = idx("spec.ingress", i);
        validate_k8s_rule(errs, &base, "from", &rule.from, &rule.ports);
    }
    for (i, rule) in p.egress.iter().enumerate() {
        let base = idx("spec.egress", i);
        validate_k8s_rule(errs, &base, "to", &rule.to, &rule.ports);
    }
}

fn validate_k8s_rule(
    errs: &mut Errors,
    base: &str,
    peers_key: &str,
    peers: &[NetworkPolicyPeer],
    ports: &[NetworkPolicyPort],
) {
    for (j, peer) in peers.iter().enumerate() {
        validate_peer(errs, &idx(&join(base, peers_key), j), peer);
    }
    for (j, port) in ports.iter().enumerate() {
        validate_k8s_port(errs, &idx(&join(base, "ports"), j), port);
    }
}

fn validate_peer(errs: &mut Errors, base: &str, peer: &NetworkPolicyPeer) {
    let selectors = peer.pod_selector.is_some() || peer.namespace_selector.is_some();
    match &peer.ip_block {
        None if !selectors => errs.push(base, "must specify a peer"),
        None => {}
        Some(_) if selectors => errs.push(base, "may not specify both ipBlock and another peer"),
        Some(block) => {
            let field = join(base, "ipBlock");
            match IpNet::from_str(&block.cidr) {
                Err(_) => errs.push(join(&field, "cidr"), format!("invalid CIDR {:?}", block.cidr)),
                Ok(cidr) => {
                    for (k, except) in block.except.iter().enumerate() {
                        let efield = idx(&join(&field, "except"), k);
                        match IpNet::from_str(except) {
                            Err(_) => errs.push(efield, format!("invalid CIDR {except:?}")),
                            Ok(e) if !(cidr.contains(&e) && e.prefix_len() > cidr.prefix_len()) => {
                                errs.push(efield, format!("{except} must be a strict subset of `cidr` {}", block.cidr));
                            }
                            Ok(_) => {}
                        }
                    }
                }
            }
        }
    }
    if let Some(sel) = &peer.pod_selector {
        validate_label_selector(errs, &join(base, "podSelector"), sel, SelectorRole::Pod);
    }
    if let Some(sel) = &peer.namespace_selector {
        validate_label_selector(errs, &join(base, "namespaceSelector"), sel, SelectorRole::Namespace);
    }
}

fn validate_k8s_port(errs: &mut Errors, base: &str, port: &NetworkPolicyPort) {
    check_k8s_protocol(errs, join(base, "protocol"), port.protocol.as_deref());
    match &port.port {
        Some(crate::k8s::IntOrString::Int(p)) => {
            if !(1..=65535).contains(p) {
                errs.push(join(base, "port"), format!("port {p} must be between 1 and 65535"));
            }
            if let Some(end) = port.end_port {
                if end < *p {
                    errs.push(
                        join(base, "endPort"),
                        format!("endPort {end} must be greater than or equal to port {p}"),
                    );
                } else if end > 65535 {
                    errs.push(join(base, "endPort"), format!("endPort {end} must be between 1 and 65535"));
                }
            }
        }
        Some(crate::k8s::IntOrString::String(name)) => {
            if !is_valid_port_name(name) {
                errs.push(join(base, "port"), format!("invalid port name {name:?}: {PORT_NAME_RULE}"));
            }
            if port.end_port.is_some() {
                errs.push(join(base, "endPort"), "may not be specified when `port` is a named port");
            }
        }
        None => {
            if port.end_port.is_some() {
                errs.push(join(base, "endPort"), "may not be specified when `port` is not specified");
            }
        }
    }
}

fn validate_label_selector(errs: &mut Errors, base: &str, sel: &LabelSelector, role: SelectorRole) {
    let mut ok = true;
    for (i, req) in sel.match_expressions.iter().enumerate() {
        let field = idx(&join(base, "matchExpressions"), i);
        match req.operator.as_str() {
            "In" | "NotIn" => {
                if req.values.is_empty() {
                    errs.push(join(&field, "values"), "must be specified when `operator` is 'In' or 'NotIn'");
                    ok = false;
                }
            }
            "Exists" | "DoesNotExist" => {
                if !req.values.is_empty() {
                    errs.push(
                        join(&field, "values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    );
                    ok = false;
                }
            }
            other => {
                errs.push(join(&field, "operator"), format!("not a valid selector operator: {other:?}"));
                ok = false;
            }
        }
    }
    if ok {
        let calico = sel.to_calico_selector(role);
        if let Err(e) = Selector::parse(&calico) {
            errs.push(base, format!("labels do not make a valid selector ({calico:?}: {e})"));
        }
    }
}
