//! Properties: parsing never panics, whatever the text; generated valid policies survive
//! serialise → parse unchanged, in JSON and in YAML; the document cache changes no result.

use alp_resources::{
    Action, EntityRule, GlobalNetworkPolicy, GlobalNetworkPolicySpec, HttpMatch, HttpPath, IcmpFields, NetworkPolicy,
    NetworkPolicySpec, ObjectMeta, PolicyType, Port, Protocol, Resource, Rule, RuleMetadata, ServiceAccountMatch,
    parse_documents,
};
use proptest::{collection::vec, option, prelude::*, sample::select};

const VALID_DOC: &str = r#"apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata:
  name: web
  namespace: shop
spec:
  selector: app == 'web'
  ingress:
    - action: Allow
      protocol: TCP
      source: {selector: "role in {'a', 'b'}", nets: [10.0.0.0/8]}
      destination: {ports: [80, "8000:8080", http]}
      http: {methods: [GET], paths: [{prefix: /api/}]}
---
["x", {"apiVersion": "v1", "kind": "List", "items": [null, 3]}]
"#;

fn check_no_panic(text: &str) {
    for file in ["f.yaml", "f.json"] {
        for r in parse_documents(text, file) {
            // Displaying errors must not panic either.
            if let Err(e) = r {
                let _ = e.to_string();
                let _ = e.key();
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn parse_never_panics_on_arbitrary_text(text in any::<String>()) {
        check_no_panic(&text);
    }

    #[test]
    fn parse_never_panics_on_yaml_like_text(text in "([a-zA-Z0-9 :\\-\\[\\]{},'\"#%&*!|>?.~\t]|\n|---\n|\\.\\.\\.\n|  ){0,300}") {
        check_no_panic(&text);
    }

    #[test]
    fn parse_never_panics_on_mutated_documents(
        at in 0usize..VALID_DOC.len(),
        len in 0usize..20,
        insert in "[^\u{0}]{0,10}",
    ) {
        let mut text = VALID_DOC.to_owned();
        let start = (0..=at).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        let end = (start + len..=text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(text.len());
        text.replace_range(start..end, &insert);
        check_no_panic(&text);
    }
}

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,12}[a-z0-9]"
}

fn selector() -> impl Strategy<Value = String> {
    select(vec![
        "",
        "all()",
        "app == 'web'",
        "role in {'a', 'b'} && !has(x)",
        "has(projectcalico.org/namespace)",
        "a != \"it's\"",
    ])
    .prop_map(str::to_owned)
}

fn protocol() -> impl Strategy<Value = Option<Protocol>> {
    prop_oneof![
        Just(None),
        select(vec!["TCP", "UDP", "SCTP", "ICMP", "ICMPv6", "UDPLite"])
            .prop_map(|n| Some(Protocol::Name(n.to_owned()))),
        (1u8..=255).prop_map(|n| Some(Protocol::Number(n))),
    ]
}

fn port(numeric: bool) -> BoxedStrategy<Port> {
    let named = select(vec!["http", "metrics", "grpc-web", "p8080"]).prop_map(|n| Port::Named(n.to_owned()));
    if numeric {
        prop_oneof![
            (1u16..=65535).prop_map(Port::single),
            (1u16..=65535, 0u16..1000).prop_map(|(min, d)| Port::Range { min, max: min.saturating_add(d) }),
            named,
        ]
        .boxed()
    } else {
        named.boxed()
    }
}

fn nets() -> impl Strategy<Value = Vec<String>> {
    vec(select(vec!["10.0.0.0/8", "192.168.1.0/24", "10.1.2.3/32", "0.0.0.0/0"]).prop_map(str::to_owned), 0..3)
}

fn entity(protocol: Option<Protocol>) -> impl Strategy<Value = EntityRule> {
    // Ports only where Calico allows them: numeric ones with TCP/UDP/SCTP, named ones also
    // without a protocol.
    let ports = match &protocol {
        Some(p) if p.supports_ports() => vec(port(true), 0..3).boxed(),
        None => vec(port(false), 0..2).boxed(),
        Some(_) => Just(Vec::new()).boxed(),
    };
    let not_ports = ports.clone();
    (
        nets(),
        nets(),
        selector(),
        selector(),
        select(vec!["", "all()", "global()", "env == 'prod'"]).prop_map(str::to_owned),
        ports,
        not_ports,
        option::of(
            (vec(name(), 0..3), selector()).prop_map(|(names, selector)| ServiceAccountMatch { names, selector }),
        ),
    )
        .prop_map(
            |(nets, not_nets, selector, not_selector, namespace_selector, ports, not_ports, service_accounts)| {
                EntityRule {
                    nets,
                    not_nets,
                    selector,
                    not_selector,
                    namespace_selector,
                    ports,
                    not_ports,
                    service_accounts,
                    services: None,
                }
            },
        )
}

fn http() -> impl Strategy<Value = HttpMatch> {
    (
        proptest::sample::subsequence(vec!["GET", "PUT", "POST", "DELETE", "PATCH"], 0..=5),
        vec(
            prop_oneof![
                "/[a-z0-9/._-]{0,20}".prop_map(|p| HttpPath { exact: p, prefix: String::new() }),
                "/[a-z0-9/._-]{0,20}".prop_map(|p| HttpPath { exact: String::new(), prefix: p }),
            ],
            0..4,
        ),
    )
        .prop_map(|(methods, paths)| HttpMatch { methods: methods.into_iter().map(str::to_owned).collect(), paths })
}

fn rule(ingress: bool) -> impl Strategy<Value = Rule> {
    protocol().prop_flat_map(move |protocol| {
        let icmp = match &protocol {
            Some(p) if p.number() == Some(1) || p.number() == Some(58) => option::of(
                (0i64..=254, option::of(0i64..=255)).prop_map(|(t, code)| IcmpFields { icmp_type: Some(t), code }),
            )
            .boxed(),
            _ => Just(None).boxed(),
        };
        let http = if ingress { option::of(http()).boxed() } else { Just(None).boxed() };
        (
            select(vec![Action::Allow, Action::Deny, Action::Log, Action::Pass]),
            option::of(Just(4i64)),
            Just(protocol.clone()),
            self::protocol(),
            icmp,
            entity(protocol.clone()),
            entity(protocol),
            http,
            option::of(
                proptest::collection::btree_map("[a-z]{1,5}", "[ -~]{0,10}", 0..3)
                    .prop_map(|annotations| RuleMetadata { annotations }),
            ),
        )
            .prop_map(
                |(action, ip_version, protocol, not_protocol, icmp, source, destination, http, metadata)| Rule {
                    action,
                    ip_version,
                    protocol,
                    not_protocol,
                    icmp,
                    not_icmp: None,
                    source,
                    destination,
                    http,
                    metadata,
                },
            )
    })
}

fn order() -> impl Strategy<Value = Option<f64>> {
    option::of((-4000i32..4_000_000).prop_map(|i| f64::from(i) / 4.0))
}

fn types() -> impl Strategy<Value = Vec<PolicyType>> {
    select(vec![
        vec![],
        vec![PolicyType::Ingress],
        vec![PolicyType::Egress],
        vec![PolicyType::Ingress, PolicyType::Egress],
    ])
}

fn meta(namespaced: bool) -> impl Strategy<Value = ObjectMeta> {
    (name(), name(), proptest::collection::btree_map("[a-z]{1,8}(/[a-z]{1,5})?", "[a-z0-9]{0,8}", 0..3)).prop_map(
        move |(name, ns, labels)| ObjectMeta {
            name,
            namespace: namespaced.then_some(ns),
            labels,
            ..ObjectMeta::default()
        },
    )
}

fn policy() -> impl Strategy<Value = Resource> {
    let tier = select(vec!["", "default", "security", "kube-admin"]).prop_map(str::to_owned);
    let gnp = (
        meta(false),
        tier.clone(),
        order(),
        vec(rule(true), 0..4),
        vec(rule(false), 0..4),
        selector(),
        types(),
        selector(),
        selector(),
    )
        .prop_map(|(metadata, tier, order, ingress, egress, selector, types, sa, ns)| {
            Resource::GlobalNetworkPolicy(GlobalNetworkPolicy {
                metadata,
                spec: GlobalNetworkPolicySpec {
                    tier,
                    order,
                    ingress,
                    egress,
                    selector,
                    types,
                    service_account_selector: sa,
                    namespace_selector: ns,
                    ..GlobalNetworkPolicySpec::default()
                },
            })
        });
    let np = (meta(true), tier, order(), vec(rule(true), 0..4), vec(rule(false), 0..4), selector(), types()).prop_map(
        |(metadata, tier, order, ingress, egress, selector, types)| {
            Resource::NetworkPolicy(NetworkPolicy {
                metadata,
                spec: NetworkPolicySpec {
                    tier,
                    order,
                    ingress,
                    egress,
                    selector,
                    types,
                    ..NetworkPolicySpec::default()
                },
            })
        },
    );
    prop_oneof![gnp, np].prop_map(|mut r| {
        r.apply_defaults();
        r
    })
}

fn parse_one(text: &str, file: &str) -> Result<Resource, String> {
    let mut all = parse_documents(text, file);
    if all.len() != 1 {
        return Err(format!("{} results for {text}", all.len()));
    }
    all.remove(0).map_err(|e| format!("{e}\n{text}"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn generated_policies_round_trip(policy in policy()) {
        prop_assert_eq!(policy.validate(), vec![]);

        let json = serde_json::to_string_pretty(&policy).unwrap();
        let back = parse_one(&json, "p.json").map_err(TestCaseError::fail)?;
        prop_assert_eq!(&back, &policy);

        let yaml = serde_saphyr::to_string(&policy).unwrap();
        let back = parse_one(&yaml, "p.yaml").map_err(TestCaseError::fail)?;
        prop_assert_eq!(&back, &policy);

        // Defaults are idempotent.
        let mut again = back.clone();
        again.apply_defaults();
        prop_assert_eq!(again, back);
    }
}

/// Documents for the cache property: valid ones, one that does not decode, one that does not
/// parse, one of an unsupported kind, a list, and an empty one.
const CACHE_DOCS: [&str; 8] = [
    "apiVersion: v1\nkind: Namespace\nmetadata: {name: a, labels: {x: '1'}}\n",
    "apiVersion: v1\nkind: Namespace\nmetadata: {name: a, labels: {x: '2'}}\n",
    "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: a}\nspec: {nodeName: n}\nstatus: {podIP: 10.0.0.1}\n",
    "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: np, namespace: a}\nspec: {selector: 'a ==='}\n",
    "apiVersion: v1\nkind: Pod\nmetadata: {name: [}\n",
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
    "apiVersion: v1\nkind: List\nitems:\n- {kind: ServiceAccount, metadata: {name: s, namespace: a}}\n",
    "# nothing\n",
];

fn file_of(docs: &[usize]) -> String {
    docs.iter().filter_map(|i| CACHE_DOCS.get(*i)).map(|d| format!("---\n{d}")).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Re-reading a file through the document cache gives exactly what a fresh parse gives
    /// (resources, errors with their document numbers and lines), edit after edit.
    #[test]
    fn cached_parse_equals_fresh_parse(edits in vec(vec(0..CACHE_DOCS.len(), 0..8), 1..6)) {
        let mut cache = alp_resources::DocumentCache::default();
        for docs in edits {
            let text = file_of(&docs);
            let cached = alp_resources::parse_documents_cached(&text, "f.yaml", &mut cache);
            let fresh = parse_documents(&text, "f.yaml");
            prop_assert_eq!(format!("{cached:?}"), format!("{fresh:?}"));
        }
    }
}
