//! Incremental = from scratch: after any sequence of changes, the view folded from every
//! message the calculator sent equals the view of a fresh calculator fed the final datastore.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use alp_calc::Calculator;
use alp_resources::{Kind, Resource, ResourceKey};
use common::{View, resource};
use proptest::prelude::*;

const SELECTORS: [&str; 6] = ["all()", "app == 'web'", "app == 'db'", "has(app)", "app != 'web'", ""];
const NS_SELECTORS: [&str; 3] = ["env == 'x'", "all()", "env == 'y'"];
const NAMESPACES: [&str; 2] = ["a", "b"];

#[derive(Clone, Debug)]
enum Op {
    Apply(String),
    Delete(ResourceKey),
}

fn opt_label(key: &str, value: Option<&str>) -> String {
    value.map(|v| format!("{key}: {v}")).unwrap_or_default()
}

fn pod_op() -> impl Strategy<Value = Op> {
    (
        0..6usize,
        0..2usize,
        0..2usize,
        0..5u8,
        prop::option::of(prop::sample::select(vec!["web", "db"])),
        0..3usize,
        prop::option::of(prop::sample::select(vec![80u16, 8080])),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(i, ns, node, ip, app, sa, port, finished)| {
            let sa = ["s1", "s2", ""][sa];
            let ports = port.map(|p| format!("ports: [{{name: http, containerPort: {p}}}]")).unwrap_or_default();
            let phase = if finished { "Succeeded" } else { "Running" };
            Op::Apply(format!(
                "apiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}, namespace: {}, labels: {{{}}}}}\n\
                 spec: {{nodeName: n{node}, serviceAccountName: '{sa}', containers: [{{name: c, {ports}}}]}}\n\
                 status: {{phase: {phase}, podIP: 10.0.0.{ip}}}\n",
                NAMESPACES[ns],
                opt_label("app", app),
            ))
        })
}

fn policy_op() -> impl Strategy<Value = Op> {
    (
        0..4usize,
        0..3usize,
        0..2usize,
        prop::option::of(prop::sample::select(vec![1.0f64, 2.0])),
        prop::sample::select(SELECTORS.to_vec()),
        prop::sample::select(SELECTORS.to_vec()),
        prop::option::of(prop::sample::select(NS_SELECTORS.to_vec())),
        prop::bool::ANY,
        prop::bool::ANY,
    )
        .prop_map(|(i, kind, ns, order, sel, rule_sel, ns_sel, egress, tier)| {
            let tier = if tier { "t1" } else { "default" };
            let order = order.map(|o| format!("  order: {o}\n")).unwrap_or_default();
            let ns_sel_rule = ns_sel.map(|s| format!(", namespaceSelector: \"{s}\"")).unwrap_or_default();
            let types = if egress { "[Ingress, Egress]" } else { "[Ingress]" };
            let body = format!(
                "  tier: {tier}\n{order}  selector: \"{sel}\"\n  types: {types}\n  ingress:\n  \
                 - {{action: Allow, protocol: TCP, source: {{selector: \"{rule_sel}\"{ns_sel_rule}}}, destination: {{ports: [http]}}}}\n  \
                 - {{action: Deny, source: {{notSelector: \"{rule_sel}\"}}}}\n  \
                 egress: [{{action: Allow, destination: {{serviceAccounts: {{selector: \"role == 'r1'\"}}}}}}]\n"
            );
            match kind {
                0 => Op::Apply(format!(
                    "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {{name: q{i}}}\nspec:\n{body}{}",
                    ns_sel.map(|s| format!("  namespaceSelector: \"{s}\"\n")).unwrap_or_default()
                )),
                1 => Op::Apply(format!(
                    "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {{name: q{i}, namespace: {}}}\nspec:\n{body}",
                    NAMESPACES[ns]
                )),
                _ => Op::Apply(format!(
                    "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: q{i}, namespace: {}}}\nspec:\n  \
                     podSelector: {{matchLabels: {{app: {}}}}}\n  ingress:\n  - from: [{{podSelector: {{matchLabels: {{app: db}}}}}}]\n    \
                     ports: [{{port: http}}, {{port: 80}}]\n",
                    NAMESPACES[ns],
                    if egress { "web" } else { "db" }
                )),
            }
        })
}

fn other_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..2usize, prop::option::of(prop::sample::select(vec!["x", "y"]))).prop_map(|(ns, env)| Op::Apply(format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {}, labels: {{{}}}}}\n",
            NAMESPACES[ns],
            opt_label("env", env)
        ))),
        (0..2usize, 0..2usize, prop::option::of(prop::sample::select(vec!["r1", "r2"]))).prop_map(|(ns, sa, role)| {
            Op::Apply(format!(
                "apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: s{}, namespace: {}, labels: {{{}}}}}\n",
                sa + 1,
                NAMESPACES[ns],
                opt_label("role", role)
            ))
        }),
        (prop::option::of(prop::sample::select(vec!["web", "db"])), 0..3u8).prop_map(|(app, net)| Op::Apply(format!(
            "apiVersion: projectcalico.org/v3\nkind: NetworkSet\nmetadata: {{name: set, namespace: a, labels: {{{}}}}}\n\
             spec: {{nets: [192.168.0.{net}/32, 10.0.0.1/32]}}\n",
            opt_label("app", app)
        ))),
        (prop::option::of(prop::sample::select(vec![10.0f64, 2e6])), prop::bool::ANY).prop_map(|(order, pass)| {
            Op::Apply(format!(
                "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {{name: t1}}\nspec: {{{}defaultAction: {}}}\n",
                order.map(|o| format!("order: {o}, ")).unwrap_or_default(),
                if pass { "Pass" } else { "Deny" }
            ))
        }),
    ]
}

/// etcd-mode kinds: WorkloadEndpoints naming profiles, an explicit Profile, a GlobalNetworkSet.
fn etcd_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..2usize, 0..2usize, 0..2usize, 0..3u8, prop::option::of(prop::sample::select(vec!["web", "db"])), prop::sample::subsequence(vec!["kns.a", "prof", "projectcalico-default-allow"], 0..3))
            .prop_map(|(i, ns, node, ip, app, profiles)| Op::Apply(format!(
                "apiVersion: projectcalico.org/v3\nkind: WorkloadEndpoint\nmetadata: {{name: w{i}, namespace: {}, labels: {{{}}}}}\n\
                 spec: {{node: n{node}, pod: w{i}, ipNetworks: [10.0.1.{ip}/32], profiles: [{}], ports: [{{name: http, protocol: TCP, port: 81}}]}}\n",
                NAMESPACES[ns],
                opt_label("app", app),
                profiles.join(", ")
            ))),
        (prop::option::of(prop::sample::select(vec!["web", "db"])), prop::sample::select(SELECTORS.to_vec())).prop_map(|(app, sel)| {
            Op::Apply(format!(
                "apiVersion: projectcalico.org/v3\nkind: Profile\nmetadata: {{name: prof}}\n\
                 spec: {{labelsToApply: {{{}}}, ingress: [{{action: Allow, source: {{selector: \"{sel}\"}}}}]}}\n",
                opt_label("app", app)
            ))
        }),
        prop::bool::ANY.prop_map(|web| Op::Apply(format!(
            "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata: {{name: gset, labels: {{app: {}}}}}\n\
             spec: {{nets: [172.16.0.0/16]}}\n",
            if web { "web" } else { "db" }
        ))),
    ]
}

fn delete_op() -> impl Strategy<Value = Op> {
    (0..12usize, 0..6usize, 0..2usize).prop_map(|(kind, i, ns)| {
        let ns_name = NAMESPACES[ns].to_owned();
        let ns = Some(ns_name.clone());
        let (kind, namespace, name) = match kind {
            0..=2 => (Kind::Pod, ns, format!("p{i}")),
            3 => (Kind::GlobalNetworkPolicy, None, format!("q{}", i % 4)),
            4 => (Kind::NetworkPolicy, ns, format!("q{}", i % 4)),
            5 => (Kind::KubernetesNetworkPolicy, ns, format!("q{}", i % 4)),
            6 => (Kind::Namespace, None, ns_name),
            7 => (Kind::ServiceAccount, ns, format!("s{}", i % 2 + 1)),
            8 => (Kind::Tier, None, "t1".to_owned()),
            9 => (Kind::WorkloadEndpoint, ns, format!("w{}", i % 2)),
            10 => (Kind::Profile, None, "prof".to_owned()),
            _ => (Kind::GlobalNetworkSet, None, "gset".to_owned()),
        };
        Op::Delete(ResourceKey { kind, namespace, name })
    })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![4 => pod_op(), 3 => policy_op(), 2 => other_op(), 2 => etcd_op(), 2 => delete_op()]
}

/// Checks the view is self-consistent: the active policies and profiles are exactly those the
/// endpoints name, and every set they name was sent.
fn check_closed(view: &View) {
    let named_policies: BTreeSet<(String, String, String)> = view
        .endpoints
        .values()
        .flat_map(|e| e.tiers.iter().flat_map(|t| t.ingress_policies.iter().chain(&t.egress_policies)))
        .map(|p| (p.kind.clone(), p.namespace.clone(), p.name.clone()))
        .collect();
    assert_eq!(view.policies.keys().cloned().collect::<BTreeSet<_>>(), named_policies);
    let named_profiles: BTreeSet<String> =
        view.endpoints.values().flat_map(|e| e.profile_ids.iter().cloned()).collect();
    assert_eq!(view.profiles.keys().cloned().collect::<BTreeSet<_>>(), named_profiles);
    let referenced = view.referenced_sets();
    assert_eq!(view.ip_sets.keys().cloned().collect::<BTreeSet<_>>(), referenced);
}

proptest! {
    // 96 cases by default; `PROPTEST_CASES=N` for a longer run.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(96),
        ..ProptestConfig::default()
    })]

    #[test]
    fn incremental_equals_from_scratch(ops in prop::collection::vec(op(), 1..40), node in prop::option::of(0..2usize)) {
        let node = node.map(|n| format!("n{n}"));
        let mut calc = Calculator::new(node.clone());
        let mut datastore: BTreeMap<ResourceKey, Resource> = BTreeMap::new();
        let mut view = View::default();
        for op in ops {
            let out = match op {
                Op::Apply(yaml) => {
                    let r = resource(&yaml);
                    datastore.insert(r.key(), r.clone());
                    calc.apply(r)
                }
                Op::Delete(key) => {
                    datastore.remove(&key);
                    calc.delete(&key)
                }
            };
            view.fold(&out);
            check_closed(&view);
        }

        let mut fresh = Calculator::new(node);
        let mut expected = View::default();
        for r in datastore.into_values() {
            expected.fold(&fresh.apply(r));
        }
        prop_assert_eq!(&view, &expected);
        prop_assert_eq!(calc.workloads(), fresh.workloads());
    }
}
