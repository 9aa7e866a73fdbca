use std::fmt;

use alp_http_path::{MethodMatcher, PathMatcher, PathRule};
use alp_proto::felix;
use alp_selector::Selector;
use ipnet::IpNet;

use crate::{Action, InvalidAction};

/// An IP set id interned by the store: an index into the snapshot's set table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SetRef(pub u32);

/// A rule's action, or the invalid string it carried (INVALID_ARGUMENT if such a rule matches).
pub type RuleAction = Result<Action, InvalidAction>;

/// Why a rule cannot be evaluated (difference D8): reaching it ends the check with
/// INVALID_ARGUMENT instead of silently never matching.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleDefect {
    /// The proto field, e.g. `src_net[1]`.
    pub field: String,
    /// The offending value as received.
    pub value: String,
    /// Why the value is rejected.
    pub reason: String,
}

impl fmt::Display for RuleDefect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}: {}", self.field, self.value, self.reason)
    }
}

/// An inclusive port range; a single port has `first == last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRange {
    /// Lowest port in the range.
    pub first: i32,
    /// Highest port in the range.
    pub last: i32,
}

impl PortRange {
    /// True if `port` lies in the range.
    pub fn contains(&self, port: u32) -> bool {
        i64::from(self.first) <= i64::from(port) && i64::from(port) <= i64::from(self.last)
    }
}

/// A protocol clause: a number, or a name Calico does not know (which never matches).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolMatch {
    /// An IP protocol number (6 TCP, 17 UDP, …).
    Number(i32),
    /// A protocol name Calico does not know: never matches.
    Unknown,
}

impl ProtocolMatch {
    fn from_proto(p: &felix::Protocol) -> Option<Self> {
        use felix::protocol::NumberOrName;
        Some(match p.number_or_name.as_ref()? {
            NumberOrName::Number(n) => ProtocolMatch::Number(*n),
            NumberOrName::Name(name) => {
                const NAMES: [(&str, i32); 6] =
                    [("icmp", 1), ("icmpv6", 58), ("tcp", 6), ("udp", 17), ("udplite", 136), ("sctp", 132)];
                NAMES
                    .iter()
                    .find(|(n, _)| name.eq_ignore_ascii_case(n))
                    .map_or(ProtocolMatch::Unknown, |(_, num)| ProtocolMatch::Number(*num))
            }
        })
    }

    /// True if the clause names `protocol`.
    pub fn is(&self, protocol: i32) -> bool {
        matches!(self, ProtocolMatch::Number(n) if *n == protocol)
    }
}

/// A rule's service-account clause on one side.
#[derive(Clone, Debug)]
pub struct ServiceAccountMatch {
    /// Empty = any name.
    pub names: Vec<String>,
    /// `""` in the rule = `all()`.
    pub selector: Selector,
}

/// The namespace criterion of one side (`computeNamespaceMatch`).
#[derive(Clone, Debug, Default)]
pub enum NamespaceMatch {
    /// No constraint.
    #[default]
    Any,
    /// `original_*_namespace_selector` against the peer namespace's labels.
    Selector(Selector),
    /// A namespaced policy's selector-bearing side: the peer must be in this namespace.
    Name(String),
}

/// One side (source or destination) of a rule.
#[derive(Clone, Debug, Default)]
pub struct Side {
    /// Service-account clause; `None` = any.
    pub service_accounts: Option<ServiceAccountMatch>,
    /// Namespace criterion.
    pub namespace: NamespaceMatch,
    /// IP sets the peer must be in (`*_ip_set_ids`).
    pub ip_sets: Vec<SetRef>,
    /// IP sets the peer must not be in (`not_*_ip_set_ids`).
    pub not_ip_sets: Vec<SetRef>,
    /// Named-port sets the peer's address and port must be in (`*_named_port_ip_set_ids`).
    pub named_port_sets: Vec<SetRef>,
    /// Named-port sets the peer's address and port must not be in.
    pub not_named_port_sets: Vec<SetRef>,
    /// `dst_ip_port_set_ids` (destination only).
    pub ip_port_sets: Vec<SetRef>,
    /// Ports the peer's port must be in (any of them); empty = any.
    pub ports: Vec<PortRange>,
    /// Ports the peer's port must not be in.
    pub not_ports: Vec<PortRange>,
    /// CIDRs the peer's address must be in (any of them); empty = any.
    pub nets: Vec<IpNet>,
    /// CIDRs the peer's address must not be in.
    pub not_nets: Vec<IpNet>,
    /// True when the side has no clause at all, so it matches every peer (set when compiled;
    /// `false` is always safe).
    pub unconstrained: bool,
}

impl Side {
    fn has_no_clause(&self) -> bool {
        self.service_accounts.is_none()
            && matches!(self.namespace, NamespaceMatch::Any)
            && self.set_refs().next().is_none()
            && self.ports.is_empty()
            && self.not_ports.is_empty()
            && self.nets.is_empty()
            && self.not_nets.is_empty()
    }

    fn set_refs(&self) -> impl Iterator<Item = SetRef> + '_ {
        self.ip_sets
            .iter()
            .chain(&self.not_ip_sets)
            .chain(&self.named_port_sets)
            .chain(&self.not_named_port_sets)
            .chain(&self.ip_port_sets)
            .copied()
    }
}

/// The HTTP clause: methods and normalised paths.
#[derive(Clone, Debug)]
pub struct HttpMatch {
    /// The methods the rule accepts (any when the rule names none).
    pub methods: MethodMatcher,
    /// The normalised paths the rule accepts (any when the rule names none).
    pub paths: PathMatcher,
}

/// A compiled rule: every clause parsed, ready to match without allocation.
#[derive(Clone, Debug)]
pub struct Rule {
    /// What matching the rule does, or the invalid action Felix sent.
    pub action: RuleAction,
    /// Set when a selector or CIDR did not parse (D8).
    pub defect: Option<RuleDefect>,
    /// Protocol the request must use; `None` = any.
    pub protocol: Option<ProtocolMatch>,
    /// Protocol the request must not use.
    pub not_protocol: Option<ProtocolMatch>,
    /// Clauses on the source peer.
    pub src: Side,
    /// Clauses on the destination peer.
    pub dst: Side,
    /// HTTP clause; `None` = any, including a connection-level check.
    pub http: Option<HttpMatch>,
}

/// Compiles one side; `names` are the side's proto fields.
struct SideFields<'a> {
    label: &'static str,
    sa: Option<&'a felix::ServiceAccountMatch>,
    original_selector: &'a str,
    original_not_selector: &'a str,
    original_namespace_selector: &'a str,
    ip_sets: &'a [String],
    not_ip_sets: &'a [String],
    named_port_sets: &'a [String],
    not_named_port_sets: &'a [String],
    ip_port_sets: &'a [String],
    ports: &'a [felix::PortRange],
    not_ports: &'a [felix::PortRange],
    nets: &'a [String],
    not_nets: &'a [String],
}

struct Compiler<'i, F> {
    intern: &'i mut F,
    defect: Option<RuleDefect>,
}

impl<F: FnMut(&str) -> SetRef> Compiler<'_, F> {
    fn defect(&mut self, field: String, value: &str, reason: String) {
        if self.defect.is_none() {
            self.defect = Some(RuleDefect { field, value: value.to_owned(), reason });
        }
    }

    fn selector(&mut self, field: String, text: &str) -> Selector {
        Selector::parse(text).unwrap_or_else(|e| {
            self.defect(field, text, e.to_string());
            Selector::all()
        })
    }

    fn sets(&mut self, ids: &[String]) -> Vec<SetRef> {
        ids.iter().map(|id| (self.intern)(id)).collect()
    }

    fn nets(&mut self, field: &str, nets: &[String]) -> Vec<IpNet> {
        let mut out = Vec::with_capacity(nets.len());
        for (i, n) in nets.iter().enumerate() {
            match n.parse::<IpNet>() {
                Ok(net) => out.push(net.trunc()),
                Err(e) => self.defect(format!("{field}[{i}]"), n, format!("not a CIDR: {e}")),
            }
        }
        out
    }

    fn side(&mut self, f: SideFields<'_>, policy_namespace: &str) -> Side {
        let l = f.label;
        let service_accounts =
            f.sa.filter(|sa| !sa.names.is_empty() || !sa.selector.is_empty()).map(|sa| ServiceAccountMatch {
                names: sa.names.clone(),
                selector: self.selector(format!("{l}_service_account_match.selector"), &sa.selector),
            });
        let namespace = if !f.original_namespace_selector.is_empty() {
            NamespaceMatch::Selector(
                self.selector(format!("original_{l}_namespace_selector"), f.original_namespace_selector),
            )
        } else if !policy_namespace.is_empty()
            && (!f.original_selector.is_empty()
                || !f.original_not_selector.is_empty()
                || f.sa.is_some_and(|sa| !sa.names.is_empty() || !sa.selector.is_empty()))
        {
            NamespaceMatch::Name(policy_namespace.to_owned())
        } else {
            NamespaceMatch::Any
        };
        let ranges = |r: &[felix::PortRange]| r.iter().map(|p| PortRange { first: p.first, last: p.last }).collect();
        let mut side = Side {
            service_accounts,
            namespace,
            ip_sets: self.sets(f.ip_sets),
            not_ip_sets: self.sets(f.not_ip_sets),
            named_port_sets: self.sets(f.named_port_sets),
            not_named_port_sets: self.sets(f.not_named_port_sets),
            ip_port_sets: self.sets(f.ip_port_sets),
            ports: ranges(f.ports),
            not_ports: ranges(f.not_ports),
            nets: self.nets(&format!("{l}_net"), f.nets),
            not_nets: self.nets(&format!("not_{l}_net"), f.not_nets),
            unconstrained: false,
        };
        side.unconstrained = side.has_no_clause();
        side
    }
}

impl Rule {
    /// Compiles a Felix rule of a policy in `policy_namespace` (`""` for cluster-scoped policies
    /// and profiles), interning every IP-set id through `intern`.
    pub fn compile<F: FnMut(&str) -> SetRef>(r: &felix::Rule, policy_namespace: &str, intern: &mut F) -> Rule {
        let mut c = Compiler { intern, defect: None };
        let src = c.side(
            SideFields {
                label: "src",
                sa: r.src_service_account_match.as_ref(),
                original_selector: &r.original_src_selector,
                original_not_selector: &r.original_not_src_selector,
                original_namespace_selector: &r.original_src_namespace_selector,
                ip_sets: &r.src_ip_set_ids,
                not_ip_sets: &r.not_src_ip_set_ids,
                named_port_sets: &r.src_named_port_ip_set_ids,
                not_named_port_sets: &r.not_src_named_port_ip_set_ids,
                ip_port_sets: &[],
                ports: &r.src_ports,
                not_ports: &r.not_src_ports,
                nets: &r.src_net,
                not_nets: &r.not_src_net,
            },
            policy_namespace,
        );
        let dst = c.side(
            SideFields {
                label: "dst",
                sa: r.dst_service_account_match.as_ref(),
                original_selector: &r.original_dst_selector,
                original_not_selector: &r.original_not_dst_selector,
                original_namespace_selector: &r.original_dst_namespace_selector,
                ip_sets: &r.dst_ip_set_ids,
                not_ip_sets: &r.not_dst_ip_set_ids,
                named_port_sets: &r.dst_named_port_ip_set_ids,
                not_named_port_sets: &r.not_dst_named_port_ip_set_ids,
                ip_port_sets: &r.dst_ip_port_set_ids,
                ports: &r.dst_ports,
                not_ports: &r.not_dst_ports,
                nets: &r.dst_net,
                not_nets: &r.not_dst_net,
            },
            policy_namespace,
        );
        let http = r.http_match.as_ref().map(|h| HttpMatch {
            methods: MethodMatcher::new(h.methods.iter().cloned()),
            paths: PathMatcher::new(h.paths.iter().filter_map(|p| {
                use felix::http_match::path_match::PathMatch as P;
                match p.path_match.as_ref()? {
                    P::Exact(e) => Some(PathRule::Exact(e.clone())),
                    P::Prefix(e) => Some(PathRule::Prefix(e.clone())),
                }
            })),
        });
        Rule {
            action: Action::parse(&r.action),
            defect: c.defect,
            protocol: r.protocol.as_ref().and_then(ProtocolMatch::from_proto),
            not_protocol: r.not_protocol.as_ref().and_then(ProtocolMatch::from_proto),
            src,
            dst,
            http,
        }
    }

    /// Every IP set the rule names.
    pub fn set_refs(&self) -> impl Iterator<Item = SetRef> + '_ {
        self.src.set_refs().chain(self.dst.set_refs())
    }
}

/// A compiled policy (Felix `Policy`).
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// `""` for cluster-scoped policies.
    pub namespace: String,
    /// The tier the policy belongs to.
    pub tier: String,
    /// Ingress rules, in order.
    pub inbound: Vec<Rule>,
    /// Egress rules, in order.
    pub outbound: Vec<Rule>,
}

impl Policy {
    /// Compiles every rule of a Felix policy.
    pub fn compile<F: FnMut(&str) -> SetRef>(p: &felix::Policy, intern: &mut F) -> Policy {
        Policy {
            namespace: p.namespace.clone(),
            tier: p.tier.clone(),
            inbound: p.inbound_rules.iter().map(|r| Rule::compile(r, &p.namespace, intern)).collect(),
            outbound: p.outbound_rules.iter().map(|r| Rule::compile(r, &p.namespace, intern)).collect(),
        }
    }
}

/// A compiled profile (Felix `Profile`); its rules are cluster-scoped.
#[derive(Clone, Debug, Default)]
pub struct Profile {
    /// Ingress rules, in order.
    pub inbound: Vec<Rule>,
    /// Egress rules, in order.
    pub outbound: Vec<Rule>,
}

impl Profile {
    /// Compiles every rule of a Felix profile.
    pub fn compile<F: FnMut(&str) -> SetRef>(p: &felix::Profile, intern: &mut F) -> Profile {
        Profile {
            inbound: p.inbound_rules.iter().map(|r| Rule::compile(r, "", intern)).collect(),
            outbound: p.outbound_rules.iter().map(|r| Rule::compile(r, "", intern)).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use alp_proto::felix;

    use super::*;

    fn compile(r: felix::Rule, namespace: &str) -> Rule {
        let mut next = 0u32;
        Rule::compile(&r, namespace, &mut |_| {
            next += 1;
            SetRef(next)
        })
    }

    #[test]
    fn only_a_side_without_clauses_is_unconstrained() {
        let bare = compile(felix::Rule { action: "allow".into(), ..Default::default() }, "");
        assert!(bare.src.unconstrained && bare.dst.unconstrained);

        let cases: [(&str, felix::Rule); 6] = [
            (
                "src ports",
                felix::Rule { src_ports: vec![felix::PortRange { first: 1, last: 2 }], ..Default::default() },
            ),
            ("src net", felix::Rule { src_net: vec!["10.0.0.0/8".into()], ..Default::default() }),
            ("src ip set", felix::Rule { src_ip_set_ids: vec!["s:a".into()], ..Default::default() }),
            (
                "src namespace selector",
                felix::Rule { original_src_namespace_selector: "all()".into(), ..Default::default() },
            ),
            (
                "src service accounts",
                felix::Rule {
                    src_service_account_match: Some(felix::ServiceAccountMatch {
                        names: vec!["sa".into()],
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ),
            (
                "src selector in a namespaced policy",
                felix::Rule { original_src_selector: "a == 'b'".into(), ..Default::default() },
            ),
        ];
        for (what, r) in cases {
            let rule = compile(r, "ns");
            assert!(!rule.src.unconstrained, "{what}");
            assert!(rule.dst.unconstrained, "{what}: the destination has no clause");
        }
    }
}
