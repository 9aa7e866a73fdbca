//! Calculator behaviour through its public API: apply resources, look at the stream.

mod common;

use alp_calc::{Calculator, INVALID_SELECTOR_SET_ID};
use alp_proto::felix::{
    IpVersion, PortRange, Rule, TierInfo, http_match::path_match::PathMatch, ip_set_update::IpSetType,
    protocol::NumberOrName, rule::Icmp, to_dataplane::Payload,
};
use alp_resources::{Kind, ResourceKey};
use common::{View, apply, kinds, pod, resource, view_of};

const ALL_ID: &str = "s:5y5I3VdRZfDU01O--xXAPx2yxCQQqMf0M6IWug";
const APP_WEB_ID: &str = "s:oy593DLyi5BRwxLRqXScOfE9YMyW5S4KAhmzFg";
const SHOP_APP_WEB_ID: &str = "s:lJBhNRljR9R5cj5JnoqyWyAWYfVVg5fFHQTCUA";
const NAMED_HTTP_ALL_ID: &str = "n:cl9_Kgeu4H0OGLbhovVR3NBLUOZscKeMK1Mu4A";

/// Namespace `shop` (env=prod), service account `shop/sa` (role=web), local pod `web`
/// (10.0.0.1, named port http=8080), remote pod `db` (10.0.0.2).
fn cluster() -> String {
    let mut y = String::from(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {env: prod}}\n---\n\
         apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: sa, namespace: shop, labels: {role: web}}\n---\n\
         apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop, labels: {app: web}}\n\
         spec:\n  nodeName: n1\n  serviceAccountName: sa\n  containers: [{name: c, ports: [{name: http, containerPort: 8080}]}]\n\
         status: {podIP: 10.0.0.1}\n---\n",
    );
    y.push_str(&pod("shop", "db", "n2", "10.0.0.2", "app: db"));
    y
}

fn endpoint<'a>(view: &'a View, workload: &str) -> &'a alp_proto::felix::WorkloadEndpoint {
    view.endpoints.get(workload).unwrap_or_else(|| panic!("no endpoint {workload}: {:?}", view.endpoints.keys()))
}

fn tier_names(tiers: &[TierInfo]) -> Vec<(&str, &str)> {
    tiers.iter().map(|t| (t.name.as_str(), t.default_action.as_str())).collect()
}

fn ids(list: &[alp_proto::felix::PolicyId]) -> Vec<String> {
    list.iter().map(|p| format!("{}:{}/{}", p.kind, p.namespace, p.name)).collect()
}

fn policy<'a>(view: &'a View, kind: &str, ns: &str, name: &str) -> &'a alp_proto::felix::Policy {
    view.policies.get(&(kind.into(), ns.into(), name.into())).unwrap_or_else(|| panic!("no policy {kind} {ns}/{name}"))
}

fn gnp(name: &str, extra: &str) -> String {
    format!(
        "---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {{name: {name}}}\nspec:\n{extra}\n"
    )
}

fn np(name: &str, extra: &str) -> String {
    format!(
        "---\napiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {{name: {name}, namespace: shop}}\nspec:\n{extra}\n"
    )
}

#[test]
fn tiers_and_policies_are_ordered_as_felix_orders_them() {
    let mut y = cluster();
    y.push_str(
        "---\napiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: t-b}\nspec: {order: 10, defaultAction: Pass}\n\
         ---\napiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: t-a}\nspec: {order: 10, defaultAction: Deny}\n\
         ---\napiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: t-nil}\nspec: {}\n",
    );
    let allow_all = "  selector: all()\n  ingress: [{action: Allow}]";
    y.push_str(&gnp("p-b", &format!("  tier: t-b\n  order: 5\n{allow_all}")));
    y.push_str(&gnp("p-a", &format!("  tier: t-a\n{allow_all}")));
    y.push_str(&gnp("p-nil", &format!("  tier: t-nil\n{allow_all}")));
    y.push_str(&gnp("p-ghost", &format!("  tier: ghost\n{allow_all}")));
    y.push_str(&gnp("p-admin", &format!("  tier: kube-admin\n{allow_all}")));
    y.push_str(&np("np1", "  order: 100\n  selector: app == 'web'\n  types: [Ingress, Egress]\n  ingress: [{action: Allow}]\n  egress: [{action: Allow}]"));
    y.push_str(&np("np2", "  order: 100\n  types: [Egress]\n  egress: [{action: Allow}]"));
    y.push_str(&gnp("zeta", &format!("  order: 100\n{allow_all}")));
    y.push_str(&gnp("aaa", allow_all));
    y.push_str(&gnp("only-db", "  selector: app == 'db'\n  ingress: [{action: Deny}]"));
    let (_, view) = view_of(Some("n1"), &y);

    let ep = endpoint(&view, "shop/web");
    assert_eq!(
        tier_names(&ep.tiers),
        [
            ("t-a", "Deny"),
            ("t-b", "Pass"),
            ("kube-admin", "Pass"),
            ("default", "Deny"),
            ("t-nil", "Deny"),
            ("ghost", ""),
        ]
    );
    let default = ep.tiers.iter().find(|t| t.name == "default").unwrap();
    assert_eq!(
        ids(&default.ingress_policies),
        ["NetworkPolicy:shop/np1", "GlobalNetworkPolicy:/zeta", "GlobalNetworkPolicy:/aaa",]
    );
    assert_eq!(ids(&default.egress_policies), ["NetworkPolicy:shop/np1", "NetworkPolicy:shop/np2"]);
    // A policy that selects only a remote pod is not active.
    assert!(!view.policies.contains_key(&("GlobalNetworkPolicy".into(), String::new(), "only-db".into())));
    assert_eq!(policy(&view, "NetworkPolicy", "shop", "np1").tier, "default");
    assert_eq!(policy(&view, "GlobalNetworkPolicy", "", "p-b").tier, "t-b");
    assert_eq!(view.policies.len(), 9);
}

#[test]
fn policy_level_fields() {
    let mut y = cluster();
    y.push_str(&np(
        "np1",
        "  selector: app == 'web'\n  serviceAccountSelector: role == 'web'\n  ingress: [{action: Allow}]",
    ));
    y.push_str(&gnp("g1", "  namespaceSelector: env == 'prod'\n  ingress: [{action: Allow}]"));
    let (_, view) = view_of(Some("n1"), &y);
    let p = policy(&view, "NetworkPolicy", "shop", "np1");
    assert_eq!(p.namespace, "shop");
    assert_eq!(
        p.original_selector,
        "((app == \"web\" && projectcalico.org/namespace == \"shop\") && pcsa.role == \"web\")"
    );
    let g = policy(&view, "GlobalNetworkPolicy", "", "g1");
    assert_eq!(g.namespace, "");
    assert_eq!(g.original_selector, "pcns.env == \"prod\"");
    assert!(!g.untracked && !g.pre_dnat);
}

#[test]
fn staged_kinds_are_included_and_host_only_policies_are_not() {
    let mut y = cluster();
    y.push_str(
        "---\napiVersion: projectcalico.org/v3\nkind: StagedNetworkPolicy\nmetadata: {name: s1, namespace: shop}\n\
         spec: {selector: all(), ingress: [{action: Deny}]}\n\
         ---\napiVersion: projectcalico.org/v3\nkind: StagedGlobalNetworkPolicy\nmetadata: {name: s2}\n\
         spec: {selector: all(), ingress: [{action: Deny}]}\n\
         ---\napiVersion: projectcalico.org/v3\nkind: StagedKubernetesNetworkPolicy\nmetadata: {name: s3, namespace: shop}\n\
         spec: {podSelector: {}, ingress: [{}]}\n\
         ---\napiVersion: projectcalico.org/v3\nkind: StagedNetworkPolicy\nmetadata: {name: s4, namespace: shop}\n\
         spec: {stagedAction: Delete}\n",
    );
    y.push_str(&gnp(
        "dnt",
        "  selector: all()\n  doNotTrack: true\n  applyOnForward: true\n  ingress: [{action: Deny}]",
    ));
    y.push_str(&gnp(
        "pre",
        "  selector: all()\n  preDNAT: true\n  applyOnForward: true\n  types: [Ingress]\n  ingress: [{action: Deny}]",
    ));
    let (_, view) = view_of(Some("n1"), &y);
    let ep = endpoint(&view, "shop/web");
    assert_eq!(tier_names(&ep.tiers), [("default", "Deny")]);
    assert_eq!(
        ids(&ep.tiers[0].ingress_policies),
        ["StagedKubernetesNetworkPolicy:shop/s3", "StagedNetworkPolicy:shop/s1", "StagedGlobalNetworkPolicy:/s2",]
    );
    assert_eq!(view.policies.len(), 3);
    let s3 = policy(&view, "StagedKubernetesNetworkPolicy", "shop", "s3");
    assert_eq!(s3.inbound_rules.len(), 1);
    assert_eq!(s3.inbound_rules[0].action, "allow");
}

#[test]
fn every_rule_field_is_converted() {
    let mut y = cluster();
    y.push_str(&gnp(
        "rules",
        r#"  selector: all()
  types: [Ingress, Egress]
  ingress:
  - action: Pass
    protocol: TCP
    source:
      nets: [10.1.2.3/16, 10.9.9.9/32]
      notNets: [10.1.0.0/24]
      ports: [80, "8000:8080"]
      serviceAccounts: {names: [a, b]}
    destination:
      nets: [10.2.3.4/16]
      notPorts: [9090]
    http:
      methods: [GET, POST]
      paths: [{exact: /a}, {prefix: /b}]
    metadata: {annotations: {owner: team}}
  - action: Log
    protocol: ICMP
    icmp: {type: 8, code: 0}
    notProtocol: UDP
    source: {selector: "app == 'web'", notSelector: "app == 'db'"}
    destination: {notSelector: "app == 'db'"}
  - action: Deny
    protocol: 17
    ipVersion: 6
    source: {serviceAccounts: {selector: "role == 'web'"}}
  egress:
  - action: Allow
"#,
    ));
    let (_, view) = view_of(Some("n1"), &y);
    let p = policy(&view, "GlobalNetworkPolicy", "", "rules");
    let [r0, r1, r2] = p.inbound_rules.as_slice() else { panic!("{:?}", p.inbound_rules) };

    assert_eq!(r0.action, "next-tier");
    assert_eq!(r0.protocol.as_ref().unwrap().number_or_name, Some(NumberOrName::Name("tcp".into())));
    assert_eq!(r0.ip_version, IpVersion::Any as i32);
    assert_eq!(r0.src_net, ["10.1.2.3/16", "10.9.9.9/32"]);
    assert_eq!(r0.not_src_net, ["10.1.0.0/24"]);
    assert_eq!(r0.dst_net, ["10.2.0.0/16"]);
    assert_eq!(r0.src_ports, [PortRange { first: 80, last: 80 }, PortRange { first: 8000, last: 8080 }]);
    assert_eq!(r0.not_dst_ports, [PortRange { first: 9090, last: 9090 }]);
    let sa = r0.src_service_account_match.as_ref().unwrap();
    assert_eq!((sa.names.as_slice(), sa.selector.as_str()), (&["a".to_owned(), "b".to_owned()][..], ""));
    assert!(r0.dst_service_account_match.is_none());
    // The names become a selector set on the source side.
    assert_eq!(r0.src_ip_set_ids.len(), 1);
    let http = r0.http_match.as_ref().unwrap();
    assert_eq!(http.methods, ["GET", "POST"]);
    let paths: Vec<_> = http.paths.iter().map(|p| p.path_match.clone().unwrap()).collect();
    assert_eq!(paths, [PathMatch::Exact("/a".into()), PathMatch::Prefix("/b".into())]);
    assert_eq!(r0.metadata.as_ref().unwrap().annotations.get("owner").map(String::as_str), Some("team"));
    assert_eq!(r0.rule_id.len(), 16);

    assert_eq!(r1.action, "log");
    assert_eq!(r1.ip_version, IpVersion::Ipv4 as i32, "ICMP implies IPv4");
    assert_eq!(r1.icmp, Some(Icmp::IcmpTypeCode(alp_proto::felix::IcmpTypeAndCode { r#type: 8, code: 0 })));
    assert_eq!(r1.not_protocol.as_ref().unwrap().number_or_name, Some(NumberOrName::Name("udp".into())));
    assert_eq!(r1.original_src_selector, "app == 'web'");
    assert_eq!(r1.original_not_src_selector, "app == 'db'");
    assert_eq!(r1.original_not_dst_selector, "app == 'db'");
    // A positive selector absorbs the negated one; a lone negated one stays negated, unscoped.
    let web_not_db = alp_selector::Selector::parse("(app == 'web') && (!(app == 'db'))").unwrap().unique_id();
    assert_eq!(r1.src_ip_set_ids, [web_not_db]);
    assert!(r1.not_src_ip_set_ids.is_empty());
    let db = alp_selector::Selector::parse("app == 'db'").unwrap().unique_id();
    assert_eq!(r1.not_dst_ip_set_ids, std::slice::from_ref(&db));
    assert!(view.ip_sets.contains_key(&db));

    assert_eq!(r2.action, "deny");
    assert_eq!(r2.protocol.as_ref().unwrap().number_or_name, Some(NumberOrName::Number(17)));
    assert_eq!(r2.ip_version, IpVersion::Ipv6 as i32);
    let sa = r2.src_service_account_match.as_ref().unwrap();
    assert_eq!((sa.names.len(), sa.selector.as_str()), (0, "role == 'web'"));
    let pcsa = alp_selector::Selector::parse("pcsa.role == 'web'").unwrap().unique_id();
    assert_eq!(r2.src_ip_set_ids, std::slice::from_ref(&pcsa));
    // The SA label comes from the service account's profile: both pods run as shop/sa.
    assert_eq!(view.ip_sets[&pcsa].1.iter().collect::<Vec<_>>(), ["10.0.0.1/32", "10.0.0.2/32"]);

    assert_eq!(p.outbound_rules.len(), 1);
    assert_ne!(p.outbound_rules[0].rule_id, r0.rule_id);
    // Every referenced set was sent.
    assert!(view.referenced_sets().iter().all(|id| view.ip_sets.contains_key(id)));
}

#[test]
fn selectors_become_net_sets_with_felix_ids() {
    let mut y = cluster();
    y.push_str(&gnp("g", "  selector: all()\n  ingress:\n  - {action: Allow, source: {selector: all()}}\n  - {action: Allow, source: {selector: \"app == 'web'\"}}"));
    y.push_str(&np("n", "  selector: all()\n  ingress:\n  - {action: Allow, source: {selector: \"app == 'web'\"}}\n  - {action: Allow, source: {notSelector: \"app == 'web'\"}}"));
    let (_, view) = view_of(Some("n1"), &y);
    let g = policy(&view, "GlobalNetworkPolicy", "", "g");
    assert_eq!(g.inbound_rules[0].src_ip_set_ids, [ALL_ID]);
    assert_eq!(g.inbound_rules[1].src_ip_set_ids, [APP_WEB_ID]);
    let n = policy(&view, "NetworkPolicy", "shop", "n");
    assert_eq!(n.inbound_rules[0].src_ip_set_ids, [SHOP_APP_WEB_ID], "namespaced policies scope selectors");
    // A notSelector alone still scopes the side to the namespace; the positive selector then
    // absorbs the negated one.
    let ns_not_web = alp_selector::Selector::parse("(projectcalico.org/namespace == 'shop') && (!(app == 'web'))")
        .unwrap()
        .unique_id();
    assert_eq!(n.inbound_rules[1].src_ip_set_ids, std::slice::from_ref(&ns_not_web));
    assert!(n.inbound_rules[1].not_src_ip_set_ids.is_empty());
    assert_eq!(view.ip_sets[&ns_not_web].1.iter().collect::<Vec<_>>(), ["10.0.0.2/32"]);

    let (ty, all) = &view.ip_sets[ALL_ID];
    assert_eq!(*ty, IpSetType::Net as i32);
    assert_eq!(all.iter().collect::<Vec<_>>(), ["10.0.0.1/32", "10.0.0.2/32"], "remote workloads are members too");
    assert_eq!(view.ip_sets[APP_WEB_ID].1.iter().collect::<Vec<_>>(), ["10.0.0.1/32"]);
}

#[test]
fn named_ports_become_ip_and_port_sets() {
    let mut y = cluster();
    y.push_str(&np(
        "named",
        "  selector: all()\n  ingress:\n  - action: Allow\n    protocol: TCP\n    destination: {ports: [http]}\n  \
         - action: Allow\n    protocol: TCP\n    source: {selector: \"app == 'web'\", ports: [http]}\n  \
         - action: Allow\n    protocol: TCP\n    source: {selector: \"app == 'web'\", ports: [http, 80]}",
    ));
    let (_, view) = view_of(Some("n1"), &y);
    let p = policy(&view, "NetworkPolicy", "shop", "named");
    let [r0, r1, r2] = p.inbound_rules.as_slice() else { panic!() };
    assert_eq!(r0.dst_named_port_ip_set_ids, [NAMED_HTTP_ALL_ID]);
    assert!(r0.dst_ip_set_ids.is_empty());
    let (ty, members) = &view.ip_sets[NAMED_HTTP_ALL_ID];
    assert_eq!(*ty, IpSetType::IpAndPort as i32);
    assert_eq!(members.iter().collect::<Vec<_>>(), ["10.0.0.1,tcp:8080"]);

    // Filtered by the side's positive selector; a side with only named ports has no plain set.
    assert_eq!(r1.src_named_port_ip_set_ids.len(), 1);
    assert!(r1.src_ip_set_ids.is_empty());
    assert_eq!(r2.src_named_port_ip_set_ids, r1.src_named_port_ip_set_ids);
    assert_eq!(r2.src_ip_set_ids, [SHOP_APP_WEB_ID]);
    assert_eq!(r2.src_ports, [PortRange { first: 80, last: 80 }]);
}

#[test]
fn pod_label_changes_move_members() {
    let mut y = cluster();
    y.push_str(&gnp("g", "  selector: all()\n  ingress: [{action: Allow, source: {selector: \"app == 'web'\"}}]"));
    let (mut calc, mut view) = view_of(Some("n1"), &y);
    assert_eq!(view.ip_sets[APP_WEB_ID].1.len(), 1);

    // The remote pod gains the label: only a delta goes out.
    let out = apply(&mut calc, &pod("shop", "db", "n2", "10.0.0.2", "app: web"));
    assert_eq!(kinds(&out), ["ipset-delta"]);
    let Some(Payload::IpsetDeltaUpdate(d)) = &out[0].payload else { panic!() };
    assert_eq!(
        (d.id.as_str(), d.added_members.as_slice(), d.removed_members.len()),
        (APP_WEB_ID, &["10.0.0.2/32".to_owned()][..], 0)
    );
    view.fold(&out);

    // And loses it again.
    let out = apply(&mut calc, &pod("shop", "db", "n2", "10.0.0.2", "app: db"));
    let Some(Payload::IpsetDeltaUpdate(d)) = &out[0].payload else { panic!() };
    assert_eq!(d.removed_members, ["10.0.0.2/32"]);
    view.fold(&out);

    // Re-applying the same pod changes nothing.
    assert!(apply(&mut calc, &pod("shop", "db", "n2", "10.0.0.2", "app: db")).is_empty());
    assert_eq!(view.ip_sets[APP_WEB_ID].1.iter().collect::<Vec<_>>(), ["10.0.0.1/32"]);
}

#[test]
fn namespace_labels_drive_namespace_selectors() {
    let mut y = cluster();
    y.push_str(&gnp(
        "g",
        "  selector: all()\n  ingress: [{action: Allow, source: {namespaceSelector: \"env == 'dev'\"}}]",
    ));
    y.push_str(&gnp("by-ns", "  namespaceSelector: env == 'dev'\n  ingress: [{action: Deny}]"));
    let (mut calc, mut view) = view_of(Some("n1"), &y);
    let set = alp_selector::Selector::parse("pcns.env == 'dev'").unwrap().unique_id();
    assert!(view.ip_sets[&set].1.is_empty());
    assert_eq!(endpoint(&view, "shop/web").tiers[0].ingress_policies.len(), 1);

    let out = apply(&mut calc, "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {env: dev}}\n");
    assert_eq!(kinds(&out), ["ipset-delta", "policy", "endpoint", "ns"]);
    view.fold(&out);
    assert_eq!(view.ip_sets[&set].1.iter().collect::<Vec<_>>(), ["10.0.0.1/32", "10.0.0.2/32"]);
    assert_eq!(
        ids(&endpoint(&view, "shop/web").tiers[0].ingress_policies),
        ["GlobalNetworkPolicy:/by-ns", "GlobalNetworkPolicy:/g"]
    );
    let ns = &view.namespaces["shop"];
    assert_eq!(ns.get("env").map(String::as_str), Some("dev"));
    assert_eq!(ns.get("projectcalico.org/name").map(String::as_str), Some("shop"));
}

#[test]
fn service_account_labels_drive_service_account_selectors() {
    let mut y = cluster();
    y.push_str(&np(
        "n",
        "  selector: all()\n  ingress: [{action: Allow, source: {serviceAccounts: {selector: \"role == 'db'\"}}}]",
    ));
    let (mut calc, mut view) = view_of(Some("n1"), &y);
    assert_eq!(view.service_accounts[&("shop".into(), "sa".into())].get("role").map(String::as_str), Some("web"));
    let set = alp_selector::Selector::parse("(projectcalico.org/namespace == 'shop') && (pcsa.role == 'db')")
        .unwrap()
        .unique_id();
    assert!(view.ip_sets[&set].1.is_empty());

    let out = apply(
        &mut calc,
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: sa, namespace: shop, labels: {role: db}}\n",
    );
    assert_eq!(kinds(&out), ["ipset-delta", "sa"]);
    view.fold(&out);
    // Both pods run as shop/sa.
    assert_eq!(view.ip_sets[&set].1.len(), 2);

    let out =
        calc.delete(&ResourceKey { kind: Kind::ServiceAccount, namespace: Some("shop".into()), name: "sa".into() });
    view.fold(&out);
    assert!(view.ip_sets[&set].1.is_empty());
    assert!(view.service_accounts.is_empty());
    // The profile the pods name is gone: Felix's stand-in drops everything.
    assert_eq!(view.profiles["ksa.shop.sa"].inbound_rules[0].action, "deny");
}

#[test]
fn pods_come_and_go() {
    let mut y = cluster();
    y.push_str(&np("n", "  selector: app == 'web'\n  ingress: [{action: Allow, source: {selector: all()}}]"));
    let (mut calc, mut view) = view_of(Some("n1"), &y);
    let scoped_all =
        alp_selector::Selector::parse("(projectcalico.org/namespace == 'shop') && (all())").unwrap().unique_id();
    assert_eq!(view.ip_sets[&scoped_all].1.len(), 2);

    // A second local pod: its endpoint (with the same policy) and a set delta.
    let out = apply(&mut calc, &pod("shop", "web2", "n1", "10.0.0.3", "app: web"));
    assert_eq!(kinds(&out), ["ipset-delta", "endpoint"]);
    view.fold(&out);
    assert_eq!(ids(&endpoint(&view, "shop/web2").tiers[0].ingress_policies), ["NetworkPolicy:shop/n"]);
    assert_eq!(calc.workloads().iter().map(|w| w.name.as_str()).collect::<Vec<_>>(), ["web", "web2"]);

    // Deleting the remote pod: only a delta.
    let out = calc.delete(&ResourceKey { kind: Kind::Pod, namespace: Some("shop".into()), name: "db".into() });
    assert_eq!(kinds(&out), ["ipset-delta"]);
    view.fold(&out);

    // Deleting the local pods: the last one takes the policy, profiles and sets with it,
    // removes after the endpoint remove.
    let del = |name: &str| ResourceKey { kind: Kind::Pod, namespace: Some("shop".into()), name: name.into() };
    let out = calc.delete(&del("web2"));
    assert_eq!(kinds(&out), ["ipset-delta", "endpoint-"]);
    view.fold(&out);
    let out = calc.delete(&del("web"));
    assert_eq!(kinds(&out), ["endpoint-", "profile-", "profile-", "policy-", "ipset-"]);
    view.fold(&out);
    assert_eq!(
        view,
        View {
            service_accounts: view.service_accounts.clone(),
            namespaces: view.namespaces.clone(),
            ..View::default()
        }
    );
    assert!(calc.workloads().is_empty());
}

#[test]
fn output_follows_the_event_sequencer_order() {
    let mut calc = Calculator::new(Some("n1".into()));
    let out = apply(&mut calc, &cluster());
    assert_eq!(kinds(&out), ["ns", "sa", "profile", "profile", "endpoint"]);
    let out = apply(
        &mut calc,
        &np("n", "  selector: all()\n  ingress: [{action: Allow, source: {selector: \"app == 'db'\"}}]"),
    );
    assert_eq!(kinds(&out), ["ipset", "policy", "endpoint"]);
    let out = calc.delete(&ResourceKey { kind: Kind::NetworkPolicy, namespace: Some("shop".into()), name: "n".into() });
    assert_eq!(kinds(&out), ["endpoint", "policy-", "ipset-"]);
}

#[test]
fn unchanged_outputs_are_not_resent() {
    let mut y = cluster();
    y.push_str(&np("n", "  selector: all()\n  ingress: [{action: Allow}]"));
    y.push_str(&np("m", "  selector: all()\n  ingress: [{action: Allow}]"));
    let (mut calc, _) = view_of(Some("n1"), &y);
    // A policy update that changes nothing visible; an unrelated label on the remote pod.
    assert!(apply(&mut calc, &np("n", "  selector: all()\n  ingress: [{action: Allow}]")).is_empty());
    assert!(apply(&mut calc, &pod("shop", "db", "n2", "10.0.0.2", "app: db, x: y")).is_empty());
    // A changed rule: the policy alone.
    let out = apply(&mut calc, &np("n", "  selector: all()\n  ingress: [{action: Deny}]"));
    assert_eq!(kinds(&out), ["policy"]);
    // A changed order that moves it before m: the endpoint alone.
    let out = apply(&mut calc, &np("n", "  order: 5\n  selector: all()\n  ingress: [{action: Deny}]"));
    assert_eq!(kinds(&out), ["endpoint"]);
}

#[test]
fn pods_that_are_not_workload_endpoints() {
    let (calc, view) = view_of(
        Some("n1"),
        "apiVersion: v1\nkind: Pod\nmetadata: {name: host, namespace: shop}\nspec: {nodeName: n1, hostNetwork: true}\nstatus: {podIP: 10.0.0.9}\n\
         ---\napiVersion: v1\nkind: Pod\nmetadata: {name: pending, namespace: shop}\nspec: {}\nstatus: {podIP: 10.0.0.8}\n\
         ---\napiVersion: v1\nkind: Pod\nmetadata: {name: done, namespace: shop}\nspec: {nodeName: n1}\nstatus: {phase: Succeeded, podIP: 10.0.0.7}\n\
         ---\napiVersion: v1\nkind: Pod\nmetadata: {name: noip, namespace: shop}\nspec: {nodeName: n1}\n\
         ---\napiVersion: v1\nkind: Pod\nmetadata: {name: annotated, namespace: shop, annotations: {cni.projectcalico.org/podIPs: '10.0.0.6,fd00::6'}}\nspec: {nodeName: n1}\n",
    );
    assert_eq!(view.endpoints.keys().collect::<Vec<_>>(), ["shop/annotated"]);
    let ep = endpoint(&view, "shop/annotated");
    assert_eq!(
        (ep.ipv4_nets.as_slice(), ep.ipv6_nets.as_slice()),
        (&["10.0.0.6/32".to_owned()][..], &["fd00::6/128".to_owned()][..])
    );
    assert_eq!(ep.state, "active");
    assert!(ep.name.starts_with("cali") && ep.name.len() == 15, "{}", ep.name);
    assert_eq!(ep.profile_ids, ["kns.shop"]);
    let w = &calc.workloads()[0];
    assert_eq!(w.endpoint_id.workload_id, "shop/annotated");
    assert_eq!((w.endpoint_id.orchestrator_id.as_str(), w.endpoint_id.endpoint_id.as_str()), ("k8s", "eth0"));
}

#[test]
fn a_kubernetes_network_policy_is_named_as_calico_head_names_it() {
    // A Kubernetes NetworkPolicy `web`, a Calico NetworkPolicy `web` and one named with the old
    // prefix `knp.default.web` (which Calico's validation still accepts) are three policies.
    let mut y = cluster();
    y.push_str(
        "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: web, namespace: shop}\nspec:\n  \
         podSelector: {}\n  ingress: [{}]\n",
    );
    y.push_str(&np("web", "  order: 1000\n  selector: all()\n  ingress: [{action: Allow}]"));
    y.push_str(&np("knp.default.web", "  order: 1000\n  selector: all()\n  ingress: [{action: Allow}]"));
    let (_, view) = view_of(Some("n1"), &y);
    // Same order: Felix's tie-break `<name>/<namespace>/<kind>`.
    assert_eq!(
        ids(&endpoint(&view, "shop/web").tiers[0].ingress_policies),
        ["NetworkPolicy:shop/knp.default.web", "KubernetesNetworkPolicy:shop/web", "NetworkPolicy:shop/web"]
    );
    let knp = policy(&view, "KubernetesNetworkPolicy", "shop", "web");
    assert_eq!((knp.tier.as_str(), knp.namespace.as_str()), ("default", "shop"));
    // Rule ids are seeded with the policy's name: the KNP's one allow-all rule has the id of the
    // same rule in a policy named `web`, not that of one named `knp.default.web`.
    let rule_id = |kind, name| policy(&view, kind, "shop", name).inbound_rules[0].rule_id.clone();
    assert_eq!(knp.inbound_rules.len(), 1);
    assert_eq!(rule_id("KubernetesNetworkPolicy", "web"), rule_id("NetworkPolicy", "web"));
    assert_ne!(rule_id("KubernetesNetworkPolicy", "web"), rule_id("NetworkPolicy", "knp.default.web"));
}

#[test]
fn kubernetes_network_policies_are_converted() {
    let mut y = cluster();
    y.push_str(
        "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: knp, namespace: shop}\nspec:\n  \
         podSelector: {matchLabels: {app: web}}\n  policyTypes: [Ingress, Egress]\n  ingress:\n  \
         - from:\n    - podSelector: {matchLabels: {app: db}}\n    - namespaceSelector: {matchLabels: {env: prod}}\n    \
         - ipBlock: {cidr: 10.5.0.1/16, except: [10.5.1.0/24]}\n    ports:\n    - {port: http}\n    - {protocol: UDP, port: 53}\n    \
         - {port: 8000, endPort: 8080}\n  egress: [{}]\n",
    );
    y.push_str(&np("calico", "  order: 1000\n  selector: all()\n  ingress: [{action: Allow}]"));
    let (_, view) = view_of(Some("n1"), &y);
    let ep = endpoint(&view, "shop/web");
    // Calico HEAD's id: the plain Kubernetes name under kind KubernetesNetworkPolicy (older
    // releases named it `knp.default.knp`).
    assert_eq!(ids(&ep.tiers[0].ingress_policies), ["NetworkPolicy:shop/calico", "KubernetesNetworkPolicy:shop/knp"]);
    assert_eq!(ids(&ep.tiers[0].egress_policies), ["KubernetesNetworkPolicy:shop/knp"]);
    assert!(view.policies.keys().all(|id| !id.2.starts_with("knp.default.")), "{:?}", view.policies.keys());
    let p = policy(&view, "KubernetesNetworkPolicy", "shop", "knp");
    assert_eq!(p.namespace, "shop");
    assert_eq!(p.tier, "default");
    assert_eq!(
        p.original_selector,
        "((projectcalico.org/orchestrator == \"k8s\" && app == \"web\") && projectcalico.org/namespace == \"shop\")"
    );
    // TCP (http, 8000-8080) × 3 peers, then UDP (53) × 3 peers.
    assert_eq!(p.inbound_rules.len(), 6);
    let tcp: Vec<&Rule> = p.inbound_rules.iter().take(3).collect();
    assert!(tcp.iter().all(|r| r.protocol.as_ref().unwrap().number_or_name == Some(NumberOrName::Name("tcp".into()))));
    assert!(
        tcp.iter()
            .all(|r| r.dst_ports == [PortRange { first: 8000, last: 8080 }] && r.dst_named_port_ip_set_ids.len() == 1)
    );
    let pod_peer = alp_selector::Selector::parse(
        "(projectcalico.org/namespace == 'shop') && (projectcalico.org/orchestrator == 'k8s' && app == 'db')",
    )
    .unwrap()
    .unique_id();
    assert_eq!(tcp[0].src_ip_set_ids, [pod_peer]);
    assert_eq!(tcp[0].original_src_selector, "projectcalico.org/orchestrator == 'k8s' && app == 'db'");
    let ns_peer = alp_selector::Selector::parse("(pcns.env == 'prod') && (projectcalico.org/orchestrator == 'k8s')")
        .unwrap()
        .unique_id();
    assert_eq!(tcp[1].src_ip_set_ids, std::slice::from_ref(&ns_peer));
    assert_eq!(view.ip_sets[&ns_peer].1.len(), 2);
    assert_eq!(
        (tcp[2].src_net.as_slice(), tcp[2].not_src_net.as_slice()),
        (&["10.5.0.0/16".to_owned()][..], &["10.5.1.0/24".to_owned()][..])
    );
    assert!(tcp[2].src_ip_set_ids.is_empty());
    let udp = &p.inbound_rules[3];
    assert_eq!(udp.dst_ports, [PortRange { first: 53, last: 53 }]);
    assert_eq!(p.outbound_rules.len(), 1);
    assert_eq!(p.outbound_rules[0].action, "allow");
}

#[test]
fn profiles_from_namespaces_service_accounts_and_the_datastore() {
    let (mut calc, mut view) = view_of(Some("n1"), &cluster());
    let kns = &view.profiles["kns.shop"];
    assert_eq!((kns.inbound_rules.len(), kns.outbound_rules.len()), (1, 1));
    assert_eq!(kns.inbound_rules[0].action, "allow");
    assert!(view.profiles["ksa.shop.sa"].inbound_rules.is_empty());
    assert_eq!(endpoint(&view, "shop/web").profile_ids, ["kns.shop", "ksa.shop.sa"]);

    // A pod in a namespace the datastore lacks: the profile is Felix's deny-all stand-in.
    let out = apply(&mut calc, &pod("ghost", "p", "n1", "10.0.0.4", "a: b"));
    view.fold(&out);
    assert_eq!(view.profiles["kns.ghost"].inbound_rules[0].action, "deny");
    let out = apply(&mut calc, "apiVersion: v1\nkind: Namespace\nmetadata: {name: ghost}\n");
    assert_eq!(kinds(&out), ["profile", "ns"]);
    view.fold(&out);
    assert_eq!(view.profiles["kns.ghost"].inbound_rules[0].action, "allow");

    // etcd mode: explicit profiles, their labels inherited, their rules' sets built.
    let (_, view) = view_of(
        Some("n1"),
        "apiVersion: projectcalico.org/v3\nkind: Profile\nmetadata: {name: prof}\n\
         spec:\n  labelsToApply: {team: x}\n  ingress: [{action: Allow, source: {selector: \"team == 'x'\"}}]\n---\n\
         apiVersion: projectcalico.org/v3\nkind: WorkloadEndpoint\nmetadata: {name: n1-k8s-w-eth0, namespace: ns1, labels: {app: w}}\n\
         spec: {node: n1, orchestrator: k8s, pod: w, endpoint: eth0, interfaceName: cali1, ipNetworks: [10.9.0.1/32], profiles: [prof, projectcalico-default-allow], \
         ports: [{name: http, protocol: TCP, port: 80}]}\n---\n\
         apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: g}\n\
         spec: {selector: \"team == 'x'\", ingress: [{action: Allow, destination: {ports: [http]}}]}\n",
    );
    let ep = endpoint(&view, "ns1/w");
    let default_allow = &view.profiles["projectcalico-default-allow"];
    assert_eq!(
        (default_allow.inbound_rules[0].action.as_str(), default_allow.outbound_rules[0].action.as_str()),
        ("allow", "allow")
    );
    assert_eq!(ep.name, "cali1");
    assert_eq!(ep.profile_ids, ["prof", "projectcalico-default-allow"]);
    assert_eq!(ep.tiers[0].ingress_policies[0].name, "g", "inherited profile labels select");
    let team = alp_selector::Selector::parse("team == 'x'").unwrap().unique_id();
    assert_eq!(view.profiles["prof"].inbound_rules[0].src_ip_set_ids, std::slice::from_ref(&team));
    assert_eq!(view.ip_sets[&team].1.iter().collect::<Vec<_>>(), ["10.9.0.1/32"]);
    assert_eq!(view.ip_sets[NAMED_HTTP_ALL_ID].1.iter().collect::<Vec<_>>(), ["10.9.0.1,tcp:80"]);
}

#[test]
fn network_sets_are_members() {
    let mut y = cluster();
    y.push_str(
        "---\napiVersion: projectcalico.org/v3\nkind: NetworkSet\nmetadata: {name: ext, namespace: shop, labels: {kind: ext}}\n\
         spec: {nets: [192.168.1.7/24, 10.8.8.8]}\n\
         ---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata: {name: world, labels: {kind: ext}}\n\
         spec: {nets: [8.8.8.8/32]}\n",
    );
    y.push_str(&gnp(
        "g",
        "  selector: all()\n  ingress:\n  - {action: Allow, source: {selector: \"kind == 'ext'\"}}\n  \
         - {action: Allow, source: {namespaceSelector: \"env == 'prod'\", selector: \"kind == 'ext'\"}}",
    ));
    let (mut calc, mut view) = view_of(Some("n1"), &y);
    let p = policy(&view, "GlobalNetworkPolicy", "", "g");
    let all_ext = &view.ip_sets[&p.inbound_rules[0].src_ip_set_ids[0]].1;
    assert_eq!(all_ext.iter().collect::<Vec<_>>(), ["10.8.8.8/32", "192.168.1.0/24", "8.8.8.8/32"]);
    let prod_ext = &view.ip_sets[&p.inbound_rules[1].src_ip_set_ids[0]].1;
    assert_eq!(
        prod_ext.iter().collect::<Vec<_>>(),
        ["10.8.8.8/32", "192.168.1.0/24"],
        "namespaced sets inherit pcns labels"
    );

    let out = calc.delete(&ResourceKey { kind: Kind::GlobalNetworkSet, namespace: None, name: "world".into() });
    assert_eq!(kinds(&out), ["ipset-delta"]);
    view.fold(&out);
}

#[test]
fn in_sync_is_sent_once() {
    let mut calc = Calculator::new(None);
    assert_eq!(kinds(&calc.in_sync()), ["in-sync"]);
    assert!(calc.in_sync().is_empty());
}

#[test]
fn without_a_node_every_workload_is_local() {
    let (calc, view) = view_of(None, &cluster());
    assert_eq!(view.endpoints.keys().collect::<Vec<_>>(), ["shop/db", "shop/web"]);
    assert_eq!(calc.workloads().len(), 2);
}

#[test]
fn unparsable_selectors_fail_closed() {
    // The resources crate rejects these; a resource built in code can still carry one.
    let mut calc = Calculator::new(Some("n1".into()));
    let mut view = View::default();
    view.fold(&apply(&mut calc, &cluster()));
    let mut r = resource(&gnp("g", "  selector: all()\n  ingress: [{action: Allow, source: {selector: all()}}]"));
    if let alp_resources::Resource::GlobalNetworkPolicy(p) = &mut r {
        p.spec.ingress[0].source.selector = "app ==".into();
    }
    view.fold(&calc.apply(r));
    let p = policy(&view, "GlobalNetworkPolicy", "", "g");
    assert_eq!(p.inbound_rules[0].src_ip_set_ids, [INVALID_SELECTOR_SET_ID]);
    assert!(!view.ip_sets.contains_key(INVALID_SELECTOR_SET_ID));
}

#[test]
fn tier_changes_reach_endpoints() {
    let mut y = cluster();
    y.push_str(&gnp("g", "  tier: sec\n  selector: all()\n  ingress: [{action: Allow}]"));
    let (mut calc, mut view) = view_of(Some("n1"), &y);
    assert_eq!(tier_names(&endpoint(&view, "shop/web").tiers), [("sec", "")]);
    let out = apply(
        &mut calc,
        "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: sec}\nspec: {order: 1, defaultAction: Pass}\n",
    );
    assert_eq!(kinds(&out), ["endpoint"]);
    view.fold(&out);
    assert_eq!(tier_names(&endpoint(&view, "shop/web").tiers), [("sec", "Pass")]);
    view.fold(&calc.delete(&ResourceKey { kind: Kind::Tier, namespace: None, name: "sec".into() }));
    assert_eq!(tier_names(&endpoint(&view, "shop/web").tiers), [("sec", "")]);
}
