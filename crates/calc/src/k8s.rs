//! Kubernetes NetworkPolicy → Calico rules, as Calico's `K8sNetworkPolicyToCalico`
//! (`libcalico-go/lib/backend/k8s/conversion/conversion.go`).

use std::collections::BTreeMap;

use alp_resources::{
    Action, EntityRule, IntOrString, K8sEgressRule, K8sIngressRule, LabelSelector, NetworkPolicyPeer,
    NetworkPolicyPort, Port, Protocol, Rule, SelectorRole, label_selector_to_calico,
};
use ipnet::IpNet;

/// The endpoint selector of a converted policy: `projectcalico.org/orchestrator == 'k8s'` and
/// the pod selector's terms (namespace scoping is added like any namespaced policy's).
pub(crate) fn k8s_policy_selector(pod_selector: &LabelSelector) -> String {
    label_selector_to_calico(Some(pod_selector), SelectorRole::Pod)
}

/// The Calico rules of a Kubernetes NetworkPolicy's ingress and egress rules. A rule Calico
/// cannot convert (a bad port) is dropped, as Calico drops it; a peer whose `ipBlock` does not
/// parse drops its rule too (Calico would turn it into a match-everything peer).
pub(crate) fn k8s_rules(ingress: &[K8sIngressRule], egress: &[K8sEgressRule]) -> (Vec<Rule>, Vec<Rule>) {
    let inbound = ingress.iter().filter_map(|r| k8s_rule_to_calico(&r.from, &r.ports, true)).flatten().collect();
    let outbound = egress.iter().filter_map(|r| k8s_rule_to_calico(&r.to, &r.ports, false)).flatten().collect();
    (inbound, outbound)
}

/// `k8sRuleToCalico`: one Calico rule per (protocol, peer), each with all the ports of its
/// protocol (simplified to ranges); protocols in string order, an absent protocol first.
fn k8s_rule_to_calico(peers: &[NetworkPolicyPeer], ports: &[NetworkPolicyPort], ingress: bool) -> Option<Vec<Rule>> {
    let peers: Vec<Option<&NetworkPolicyPeer>> =
        if peers.is_empty() { vec![None] } else { peers.iter().map(Some).collect() };
    // protocol → ports; `None` means every port of the protocol.
    let mut protocol_ports: BTreeMap<String, Option<Vec<Port>>> = BTreeMap::new();
    if ports.is_empty() {
        protocol_ports.insert(String::new(), None);
    }
    for port in ports {
        let calico_ports = k8s_port_to_calico(port)?;
        let protocol = port.protocol.clone().unwrap_or_else(|| "TCP".to_owned());
        match calico_ports {
            None => {
                protocol_ports.insert(protocol, None);
            }
            Some(new) => match protocol_ports.get_mut(&protocol) {
                None => {
                    protocol_ports.insert(protocol, Some(new));
                }
                Some(Some(existing)) if !existing.is_empty() => existing.extend(new),
                Some(_) => {}
            },
        }
    }

    let mut rules = Vec::new();
    for (protocol, ports) in protocol_ports {
        let ports = ports.map(simplify_ports).unwrap_or_default();
        let protocol = (!protocol.is_empty()).then(|| protocol_from_string(&protocol));
        for peer in &peers {
            let mut entity = peer_to_entity(*peer)?;
            let mut rule = Rule::new(Action::Allow);
            rule.protocol = protocol.clone();
            if ingress {
                rule.source = entity;
                rule.destination.ports = ports.clone();
            } else {
                entity.ports = ports.clone();
                rule.destination = entity;
            }
            rules.push(rule);
        }
    }
    Some(rules)
}

/// `numorstring.ProtocolFromString`: digits are a number, anything else a name.
fn protocol_from_string(s: &str) -> Protocol {
    s.parse::<u8>().map_or_else(|_| Protocol::Name(s.to_owned()), Protocol::Number)
}

/// `k8sPortToCalico`: `Ok(None)` for no port (every port), the port (`port:endPort` for a range)
/// otherwise; `Err` for a port Calico cannot parse.
fn k8s_port_to_calico(port: &NetworkPolicyPort) -> Option<Option<Vec<Port>>> {
    let Some(p) = &port.port else { return Some(None) };
    let mut text = match p {
        IntOrString::Int(i) => i.to_string(),
        IntOrString::String(s) => s.clone(),
    };
    if let Some(end) = port.end_port {
        text = format!("{text}:{end}");
    }
    Port::parse(&text).ok().map(|p| Some(vec![p]))
}

/// `k8sPeerToCalicoFields`: an `ipBlock` becomes nets (masked) and not-nets; otherwise the pod
/// selector (with the orchestrator term) and the namespace selector.
fn peer_to_entity(peer: Option<&NetworkPolicyPeer>) -> Option<EntityRule> {
    let Some(peer) = peer else { return Some(EntityRule::default()) };
    if let Some(block) = &peer.ip_block {
        let masked = |c: &str| c.parse::<IpNet>().ok().map(|n| n.trunc().to_string());
        let nets = vec![masked(&block.cidr)?];
        let not_nets = block.except.iter().map(|e| masked(e)).collect::<Option<Vec<_>>>()?;
        return Some(EntityRule { nets, not_nets, ..EntityRule::default() });
    }
    Some(EntityRule {
        selector: label_selector_to_calico(peer.pod_selector.as_ref(), SelectorRole::Pod),
        namespace_selector: label_selector_to_calico(peer.namespace_selector.as_ref(), SelectorRole::Namespace),
        ..EntityRule::default()
    })
}

/// `SimplifyPorts`: named ports first (in order), then the numeric ports merged into the fewest
/// ranges; with at most one numeric port the list is returned as it was.
fn simplify_ports(ports: Vec<Port>) -> Vec<Port> {
    if ports.len() <= 1 {
        return ports;
    }
    let mut named = Vec::new();
    let mut ranges = Vec::new();
    for p in &ports {
        match p {
            Port::Named(_) => named.push(p.clone()),
            Port::Range { min, max } => ranges.push((*min, *max)),
        }
    }
    let count: u32 = ranges.iter().map(|(lo, hi)| u32::from(*hi) - u32::from(*lo) + 1).sum();
    if count <= 1 {
        return ports;
    }
    ranges.sort_unstable();
    let mut merged: Vec<(u16, u16)> = Vec::new();
    for (lo, hi) in ranges {
        match merged.last_mut() {
            Some((_, last)) if u32::from(lo) <= u32::from(*last) + 1 => *last = (*last).max(hi),
            _ => merged.push((lo, hi)),
        }
    }
    named.extend(merged.into_iter().map(|(min, max)| Port::Range { min, max }));
    named
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simplify() {
        let p = |s: &str| Port::parse(s).unwrap();
        assert_eq!(
            simplify_ports(vec![p("80"), p("81"), p("82"), p("9090"), p("foo")]),
            [p("foo"), p("80:82"), p("9090")]
        );
        assert_eq!(simplify_ports(vec![p("http"), p("80")]), [p("http"), p("80")]);
        assert_eq!(simplify_ports(vec![p("90"), p("80:85"), p("84:89")]), [p("80:90")]);
    }

    #[test]
    fn ports_by_protocol() {
        let port = |proto: &str, port: Option<IntOrString>, end: Option<i64>| NetworkPolicyPort {
            protocol: Some(proto.to_owned()),
            port,
            end_port: end,
        };
        let ports = [
            port("UDP", Some(IntOrString::Int(53)), None),
            port("TCP", Some(IntOrString::Int(80)), Some(90)),
            port("TCP", Some(IntOrString::String("http".into())), None),
        ];
        let rules = k8s_rule_to_calico(&[], &ports, true).unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].protocol, Some(Protocol::Name("TCP".into())));
        assert_eq!(rules[0].destination.ports, [Port::Named("http".into()), Port::Range { min: 80, max: 90 }]);
        assert_eq!(rules[1].protocol, Some(Protocol::Name("UDP".into())));
        // A port-less entry makes the protocol match every port.
        let rules =
            k8s_rule_to_calico(&[], &[port("TCP", Some(IntOrString::Int(80)), None), port("TCP", None, None)], true)
                .unwrap();
        assert!(rules[0].destination.ports.is_empty());
        // A named port with an end port does not convert: the rule is dropped.
        assert!(
            k8s_rule_to_calico(&[], &[port("TCP", Some(IntOrString::String("x".into())), Some(9))], true).is_none()
        );
    }
}
