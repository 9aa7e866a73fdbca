//! S2: a mesh service's policy (BENCHMARKS.md). The pod `ns-0/pod-0` (service account
//! `sa-0`, 10.64.0.10:8080) has 20 NetworkPolicies of namespace `ns-0` in two tiers:
//! `security` (default Pass, 8 policies of denies and passes) then `default` (default Deny, 12
//! policies of allows), plus the Kubernetes profiles `kns.ns-0` and `ksa.ns-0.sa-0`.
//!
//! The cluster: 50 namespaces `ns-0` … `ns-49`, each with 4 service accounts `sa-0` … `sa-3`
//! (200 in all) and one pod per service account at `10.64.<ns>.<10 + sa>`. As Felix does, every
//! rule with a peer selector, namespace selector or service-account clause also names the NET IP
//! set of the pods it selects (`src_ip_set_ids`), computed here from the same labels.

use alp_felix::{namespace_profile, pod_endpoint_id, service_account_profile};
use alp_proto::felix::{
    self, ActivePolicyUpdate, ActiveProfileUpdate, HttpMatch, InSync, NamespaceId, NamespaceUpdate, ProfileId,
    ServiceAccountId, ServiceAccountUpdate, TierInfo, ToDataplane, WorkloadEndpoint, WorkloadEndpointUpdate,
    http_match::{PathMatch, path_match},
    protocol::NumberOrName,
    to_dataplane::Payload,
};
use std::collections::{BTreeMap, HashMap};

use crate::{CheckRequest, Endpoint, HttpAttrs, Scenario, check_request, felix_set_id, net_set, policy_id, port};

/// Namespaces in the cluster.
pub const S2_NAMESPACES: usize = 50;
/// Service accounts in the cluster (4 per namespace).
pub const S2_SERVICE_ACCOUNTS: usize = 200;
const SA_PER_NS: usize = S2_SERVICE_ACCOUNTS / S2_NAMESPACES;
const ROLES: [&str; SA_PER_NS] = ["frontend", "backend", "batch", "admin"];
const TEAMS: [&str; 5] = ["payments", "search", "platform", "data", "web"];
const ENVS: [&str; 3] = ["prod", "staging", "dev"];
const QUARANTINED: [usize; 2] = [7, 13];
const MONITORING_NS: usize = 49;
const POLICY_NS: &str = "ns-0";
const KIND: &str = "NetworkPolicy";
const DST_PORT: u32 = 8080;

type Labels = Vec<(&'static str, String)>;

fn ns_labels(i: usize) -> Labels {
    let mut l = vec![
        ("kubernetes.io/metadata.name", format!("ns-{i}")),
        ("projectcalico.org/name", format!("ns-{i}")),
        ("team", TEAMS.get(i % TEAMS.len()).copied().unwrap_or_default().to_owned()),
        ("env", ENVS.get(i % ENVS.len()).copied().unwrap_or_default().to_owned()),
    ];
    if QUARANTINED.contains(&i) {
        l.push(("quarantine", "true".to_owned()));
    }
    if i == MONITORING_NS {
        l.push(("monitoring", "true".to_owned()));
    }
    l
}

fn app(i: usize, j: usize) -> String {
    format!("app-{}", (i * SA_PER_NS + j) % 10)
}

fn sa_labels(i: usize, j: usize) -> Labels {
    vec![
        ("projectcalico.org/name", format!("sa-{j}")),
        ("role", ROLES.get(j).copied().unwrap_or_default().to_owned()),
        ("app", app(i, j)),
    ]
}

fn pod_labels(i: usize, j: usize) -> Labels {
    vec![
        ("app", app(i, j)),
        ("role", ROLES.get(j).copied().unwrap_or_default().to_owned()),
        ("projectcalico.org/namespace", format!("ns-{i}")),
        ("projectcalico.org/serviceaccount", format!("sa-{j}")),
    ]
}

fn pod_ip(i: usize, j: usize) -> String {
    format!("10.64.{i}.{}", 10 + j)
}

/// The subset of the selector language S2 uses, so that the text sent to the engine and the
/// IP-set membership computed here cannot disagree.
#[derive(Clone, Copy, Debug)]
enum Sel {
    All,
    Eq(&'static str, &'static str),
    In(&'static str, &'static [&'static str]),
    Has(&'static str),
}

impl Sel {
    fn text(self) -> String {
        match self {
            Sel::All => "all()".to_owned(),
            Sel::Eq(k, v) => format!("{k} == '{v}'"),
            Sel::In(k, vs) => {
                let vs: Vec<String> = vs.iter().map(|v| format!("'{v}'")).collect();
                format!("{k} in {{{}}}", vs.join(", "))
            }
            Sel::Has(k) => format!("has({k})"),
        }
    }

    fn prefixed(self, prefix: &str) -> String {
        match self {
            Sel::All => "all()".to_owned(),
            Sel::Eq(k, v) => format!("{prefix}{k} == '{v}'"),
            Sel::In(k, vs) => {
                let vs: Vec<String> = vs.iter().map(|v| format!("'{v}'")).collect();
                format!("{prefix}{k} in {{{}}}", vs.join(", "))
            }
            Sel::Has(k) => format!("has({prefix}{k})"),
        }
    }

    fn matches(self, labels: &Labels) -> bool {
        let get = |key: &str| labels.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_str());
        match self {
            Sel::All => true,
            Sel::Eq(k, v) => get(k) == Some(v),
            Sel::In(k, vs) => get(k).is_some_and(|x| vs.contains(&x)),
            Sel::Has(k) => get(k).is_some(),
        }
    }
}

/// The source side of a rule.
#[derive(Clone, Copy, Debug, Default)]
struct Peer {
    namespace: Option<Sel>,
    sa_names: &'static [&'static str],
    sa_selector: Option<Sel>,
    pod_selector: Option<Sel>,
}

impl Peer {
    fn constrained(&self) -> bool {
        self.namespace.is_some()
            || !self.sa_names.is_empty()
            || self.sa_selector.is_some()
            || self.pod_selector.is_some()
    }

    /// Felix's pod selector for the rule's IP set: the namespaced policy's own namespace unless a
    /// namespace selector is given, then service-account and pod clauses.
    fn set_selector(&self) -> String {
        let mut parts = vec![match self.namespace {
            Some(ns) => ns.prefixed("pcns."),
            None => format!("projectcalico.org/namespace == '{POLICY_NS}'"),
        }];
        if !self.sa_names.is_empty() {
            parts.push(Sel::In("projectcalico.org/serviceaccount", self.sa_names).text());
        }
        if let Some(s) = self.sa_selector {
            parts.push(s.prefixed("pcsa."));
        }
        if let Some(s) = self.pod_selector {
            parts.push(s.text());
        }
        parts.iter().map(|p| format!("({p})")).collect::<Vec<_>>().join(" && ")
    }

    fn selects(&self, i: usize, j: usize) -> bool {
        let ns_ok = match self.namespace {
            Some(s) => s.matches(&ns_labels(i)),
            None => format!("ns-{i}") == POLICY_NS,
        };
        let name = format!("sa-{j}");
        ns_ok
            && (self.sa_names.is_empty() || self.sa_names.contains(&name.as_str()))
            && self.sa_selector.is_none_or(|s| s.matches(&sa_labels(i, j)))
            && self.pod_selector.is_none_or(|s| s.matches(&pod_labels(i, j)))
    }
}

#[derive(Clone, Copy, Debug)]
struct R {
    action: &'static str,
    src: Peer,
    methods: &'static [&'static str],
    exact: &'static [&'static str],
    prefix: &'static [&'static str],
    dst_ports: &'static [i32],
    protocol: Option<&'static str>,
}

const fn rule(action: &'static str) -> R {
    R {
        action,
        src: Peer { namespace: None, sa_names: &[], sa_selector: None, pod_selector: None },
        methods: &[],
        exact: &[],
        prefix: &[],
        dst_ports: &[],
        protocol: None,
    }
}

impl R {
    const fn ns(mut self, s: Sel) -> Self {
        self.src.namespace = Some(s);
        self
    }
    const fn sa_names(mut self, n: &'static [&'static str]) -> Self {
        self.src.sa_names = n;
        self
    }
    const fn sa(mut self, s: Sel) -> Self {
        self.src.sa_selector = Some(s);
        self
    }
    const fn pods(mut self, s: Sel) -> Self {
        self.src.pod_selector = Some(s);
        self
    }
    const fn methods(mut self, m: &'static [&'static str]) -> Self {
        self.methods = m;
        self
    }
    const fn exact(mut self, p: &'static [&'static str]) -> Self {
        self.exact = p;
        self
    }
    const fn prefix(mut self, p: &'static [&'static str]) -> Self {
        self.prefix = p;
        self
    }
    const fn ports(mut self, p: &'static [i32]) -> Self {
        self.dst_ports = p;
        self
    }
    const fn proto(mut self, p: &'static str) -> Self {
        self.protocol = Some(p);
        self
    }
}

/// Tier `security`, default Pass.
fn security() -> Vec<(&'static str, Vec<R>)> {
    vec![
        ("sec-quarantine", vec![rule("deny").ns(Sel::Eq("quarantine", "true"))]),
        (
            "sec-admin-paths",
            vec![rule("pass").sa(Sel::Eq("role", "admin")).prefix(&["/admin"]), rule("deny").prefix(&["/admin"])],
        ),
        (
            "sec-internal-paths",
            vec![
                rule("deny").ns(Sel::Eq("env", "dev")).prefix(&["/internal"]),
                rule("deny").ns(Sel::Eq("env", "staging")).prefix(&["/internal/debug"]),
            ],
        ),
        ("sec-methods", vec![rule("deny").methods(&["TRACE", "CONNECT"])]),
        (
            "sec-web-batch",
            vec![rule("deny").ns(Sel::Eq("team", "web")).sa_names(&["sa-2"]).exact(&["/api/v1/payments"])],
        ),
        (
            "sec-prod-fastpath",
            vec![
                rule("pass")
                    .ns(Sel::Eq("env", "prod"))
                    .sa(Sel::In("role", &["frontend", "backend"]))
                    .ports(&[8080])
                    .proto("TCP"),
            ],
        ),
        (
            "sec-debug",
            vec![rule("deny").prefix(&["/debug"]), rule("deny").methods(&["DELETE"]).prefix(&["/api/v1/payments"])],
        ),
        ("sec-admin-port", vec![rule("deny").ns(Sel::All).ports(&[9090]), rule("deny").proto("UDP")]),
    ]
}

/// Tier `default`, default Deny.
fn default_tier() -> Vec<(&'static str, Vec<R>)> {
    vec![
        (
            "allow-same-ns-read",
            vec![
                rule("allow").sa_names(&["sa-0", "sa-1"]).methods(&["GET", "HEAD"]).prefix(&["/api/v1"]).ports(&[8080]),
            ],
        ),
        (
            "allow-payments-write",
            vec![
                rule("allow")
                    .ns(Sel::Eq("team", "payments"))
                    .sa(Sel::Eq("role", "backend"))
                    .methods(&["POST"])
                    .exact(&["/api/v1/payments"]),
            ],
        ),
        (
            "allow-static",
            vec![rule("allow").pods(Sel::In("app", &["app-3", "app-4"])).methods(&["GET"]).prefix(&["/static"])],
        ),
        (
            "allow-search",
            vec![rule("allow").ns(Sel::Eq("team", "search")).methods(&["GET"]).prefix(&["/api/v1/search"])],
        ),
        (
            "allow-admin",
            vec![
                rule("allow").sa(Sel::Eq("role", "admin")).prefix(&["/admin"]),
                rule("allow")
                    .ns(Sel::Eq("team", "platform"))
                    .sa(Sel::Eq("role", "admin"))
                    .prefix(&["/admin", "/internal"]),
            ],
        ),
        (
            "allow-data-bulk",
            vec![
                rule("allow")
                    .ns(Sel::Eq("team", "data"))
                    .sa_names(&["sa-2"])
                    .methods(&["PUT", "POST"])
                    .prefix(&["/api/v1/bulk"]),
            ],
        ),
        (
            "allow-graphql",
            vec![
                rule("allow")
                    .ns(Sel::Eq("env", "prod"))
                    .sa(Sel::Eq("role", "frontend"))
                    .methods(&["POST"])
                    .exact(&["/graphql"])
                    .proto("TCP"),
            ],
        ),
        (
            "allow-web-assets",
            vec![rule("allow").ns(Sel::Eq("team", "web")).methods(&["GET", "HEAD"]).prefix(&["/assets", "/static"])],
        ),
        (
            "allow-staging-v2",
            vec![
                rule("allow")
                    .ns(Sel::Eq("env", "staging"))
                    .sa(Sel::Eq("role", "backend"))
                    .methods(&["GET"])
                    .prefix(&["/api/v2"]),
            ],
        ),
        (
            "allow-metrics",
            vec![rule("allow").ns(Sel::Has("monitoring")).methods(&["GET"]).exact(&["/metrics"]).ports(&[8080, 9090])],
        ),
        ("deny-legacy", vec![rule("deny").prefix(&["/api/v0"]), rule("deny").exact(&["/old", "/legacy/index.html"])]),
        ("allow-health", vec![rule("allow").methods(&["GET"]).exact(&["/healthz", "/readyz"])]),
    ]
}

struct Build {
    sets: Vec<(String, Vec<String>)>,
    set_index: HashMap<String, usize>,
}

impl Build {
    fn set_for(&mut self, peer: &Peer) -> String {
        let selector = peer.set_selector();
        let id = felix_set_id(&selector);
        if !self.set_index.contains_key(&id) {
            let mut members = Vec::new();
            for i in 0..S2_NAMESPACES {
                for j in 0..SA_PER_NS {
                    if peer.selects(i, j) {
                        members.push(format!("{}/32", pod_ip(i, j)));
                    }
                }
            }
            self.set_index.insert(id.clone(), self.sets.len());
            self.sets.push((id.clone(), members));
        }
        id
    }

    fn rule(&mut self, r: &R) -> felix::Rule {
        let mut out = felix::Rule { action: r.action.to_owned(), ..Default::default() };
        if let Some(p) = r.protocol {
            out.protocol = Some(felix::Protocol { number_or_name: Some(NumberOrName::Name(p.to_owned())) });
        }
        out.dst_ports = r.dst_ports.iter().map(|p| port(*p)).collect();
        if r.src.constrained() {
            out.src_ip_set_ids = vec![self.set_for(&r.src)];
            if let Some(ns) = r.src.namespace {
                out.original_src_namespace_selector = ns.text();
            }
            if let Some(pods) = r.src.pod_selector {
                out.original_src_selector = pods.text();
            }
            if !r.src.sa_names.is_empty() || r.src.sa_selector.is_some() {
                out.src_service_account_match = Some(felix::ServiceAccountMatch {
                    selector: r.src.sa_selector.map(Sel::text).unwrap_or_default(),
                    names: r.src.sa_names.iter().map(|n| (*n).to_owned()).collect(),
                });
            }
        }
        if !r.methods.is_empty() || !r.exact.is_empty() || !r.prefix.is_empty() {
            let path = |p: &&str, exact: bool| PathMatch {
                path_match: Some(if exact {
                    path_match::PathMatch::Exact((*p).to_owned())
                } else {
                    path_match::PathMatch::Prefix((*p).to_owned())
                }),
            };
            out.http_match = Some(HttpMatch {
                methods: r.methods.iter().map(|m| (*m).to_owned()).collect(),
                paths: r.exact.iter().map(|p| path(p, true)).chain(r.prefix.iter().map(|p| path(p, false))).collect(),
            });
        }
        out
    }
}

fn labels_map(l: Labels) -> BTreeMap<String, String> {
    l.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

fn principal(ns: usize, sa: usize) -> String {
    format!("spiffe://cluster.local/ns/ns-{ns}/sa/sa-{sa}")
}

fn request(ns: usize, sa: usize, method: &str, path: &str) -> CheckRequest {
    let (ip, p) = (pod_ip(ns, sa), principal(ns, sa));
    let (dst_ip, dst_p) = (pod_ip(0, 0), principal(0, 0));
    check_request(
        &Endpoint { ip: &ip, port: 40_000 + u32::try_from(ns * SA_PER_NS + sa).unwrap_or(0), principal: &p },
        &Endpoint { ip: &dst_ip, port: DST_PORT, principal: &dst_p },
        Some(&HttpAttrs { method, path, host: "svc-0.ns-0.svc.cluster.local:8080" }),
    )
}

/// The S2 requests: `(label, source namespace, source service account, method, path)`. Labels
/// starting with `allowed` are answered OK, those starting with `denied` PERMISSION_DENIED.
/// `allowed` and `denied` are the two the benchmarks time: `denied` walks both tiers to the
/// `default` tier's default Deny.
pub const S2_REQUESTS: [(&str, usize, usize, &str, &str); 8] = [
    ("allowed", 0, 1, "GET", "/api/v1/items/42?verbose=1"),
    ("denied", 4, 1, "GET", "/api/v1/items/42"),
    ("allowed-cross-namespace", 5, 1, "POST", "/api/v1/payments"),
    ("allowed-admin", 0, 3, "GET", "/admin/settings"),
    ("allowed-health", 20, 2, "GET", "/healthz"),
    ("denied-quarantine", 7, 0, "GET", "/healthz"),
    ("denied-admin-path", 0, 1, "DELETE", "/admin/users"),
    ("denied-method", 0, 0, "TRACE", "/api/v1/items"),
];

/// Scenario S2. Messages in Felix's join order: IP sets, policies (tier order), profiles, the
/// `WorkloadEndpointUpdate`, every `ServiceAccountUpdate`, every `NamespaceUpdate`, `InSync`.
/// Requests: [`S2_REQUESTS`].
pub fn s2() -> Scenario {
    let mut b = Build { sets: Vec::new(), set_index: HashMap::new() };
    let mut policies = Vec::new();
    let mut tiers = Vec::new();
    for (tier, default_action, list) in [("security", "Pass", security()), ("default", "Deny", default_tier())] {
        let mut info =
            TierInfo { name: tier.to_owned(), default_action: default_action.to_owned(), ..Default::default() };
        for (name, rules) in list {
            let id = policy_id(name, POLICY_NS, KIND);
            let policy = felix::Policy {
                namespace: POLICY_NS.to_owned(),
                inbound_rules: rules.iter().map(|r| b.rule(r)).collect(),
                tier: tier.to_owned(),
                ..Default::default()
            };
            info.ingress_policies.push(id.clone());
            policies.push(ToDataplane::from(Payload::ActivePolicyUpdate(ActivePolicyUpdate {
                id: Some(id),
                policy: Some(policy),
            })));
        }
        tiers.push(info);
    }

    let mut messages = Vec::new();
    for (id, members) in b.sets {
        messages.extend(net_set(&id, members));
    }
    messages.extend(policies);
    let allow = felix::Rule { action: "allow".to_owned(), ..Default::default() };
    let profiles = [
        (
            namespace_profile(POLICY_NS),
            felix::Profile { inbound_rules: vec![allow.clone()], outbound_rules: vec![allow] },
        ),
        (service_account_profile(POLICY_NS, "sa-0"), felix::Profile::default()),
    ];
    let profile_ids = profiles.iter().map(|(n, _)| n.clone()).collect();
    for (name, profile) in profiles {
        messages.push(ToDataplane::from(Payload::ActiveProfileUpdate(ActiveProfileUpdate {
            id: Some(ProfileId { name }),
            profile: Some(profile),
        })));
    }
    messages.push(ToDataplane::from(Payload::WorkloadEndpointUpdate(WorkloadEndpointUpdate {
        id: Some(pod_endpoint_id(POLICY_NS, "pod-0")),
        endpoint: Some(WorkloadEndpoint {
            state: "active".to_owned(),
            name: "cali0f1e2d3c4b5".to_owned(),
            profile_ids,
            ipv4_nets: vec![format!("{}/32", pod_ip(0, 0))],
            tiers,
            ..Default::default()
        }),
    })));
    for i in 0..S2_NAMESPACES {
        for j in 0..SA_PER_NS {
            messages.push(ToDataplane::from(Payload::ServiceAccountUpdate(ServiceAccountUpdate {
                id: Some(ServiceAccountId { namespace: format!("ns-{i}"), name: format!("sa-{j}") }),
                labels: labels_map(sa_labels(i, j)),
            })));
        }
    }
    for i in 0..S2_NAMESPACES {
        messages.push(ToDataplane::from(Payload::NamespaceUpdate(NamespaceUpdate {
            id: Some(NamespaceId { name: format!("ns-{i}") }),
            labels: labels_map(ns_labels(i)),
        })));
    }
    messages.push(ToDataplane::from(Payload::InSync(InSync {})));

    let requests = S2_REQUESTS
        .iter()
        .map(|(label, ns, sa, method, path)| ((*label).to_owned(), request(*ns, *sa, method, path)))
        .collect();
    Scenario { messages, requests }
}
