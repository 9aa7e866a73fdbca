//! Parsing every kind from the shapes Calico's and Kubernetes' docs use, in YAML, JSON and the
//! `crd.projectcalico.org/v1` form, and the defaults applied on the way.

use alp_resources::{
    Action, IntOrString, Kind, PolicyType, Port, Protocol, Reason, Resource, ResourceKey, SelectorRole, StagedAction,
    TierDefaultAction, builtin_tiers, parse_documents, parse_value,
};

fn one(text: &str, file: &str) -> Resource {
    let mut all = parse_documents(text, file);
    assert_eq!(all.len(), 1, "{all:#?}");
    match all.remove(0) {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    }
}

fn yaml(text: &str) -> Resource {
    one(text, "test.yaml")
}

#[test]
fn global_network_policy_from_the_docs() {
    let r = yaml(
        r#"
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: allow-tcp-port-6379
spec:
  selector: role == 'database'
  types:
    - Ingress
    - Egress
  ingress:
    - action: Allow
      metadata:
        annotations:
          from: frontend
          to: database
      protocol: TCP
      source:
        selector: role == 'frontend'
      destination:
        ports:
          - 6379
  egress:
    - action: Allow
"#,
    );
    assert_eq!(r.kind(), Kind::GlobalNetworkPolicy);
    assert_eq!(r.name(), "allow-tcp-port-6379");
    assert_eq!(r.namespace(), None);
    let Resource::GlobalNetworkPolicy(p) = r else { panic!() };
    assert_eq!(p.spec.tier, "default");
    assert_eq!(p.spec.order, None);
    assert_eq!(p.spec.selector, "role == 'database'");
    assert_eq!(p.spec.types, [PolicyType::Ingress, PolicyType::Egress]);
    let rule = &p.spec.ingress[0];
    assert_eq!(rule.action, Action::Allow);
    assert_eq!(rule.protocol, Some(Protocol::Name("TCP".into())));
    assert_eq!(rule.source.selector, "role == 'frontend'");
    assert_eq!(rule.destination.ports, [Port::single(6379)]);
    assert_eq!(rule.metadata.as_ref().unwrap().annotations["from"], "frontend");
    assert_eq!(p.spec.egress[0].action, Action::Allow);
}

#[test]
fn network_policy_with_http_service_accounts_and_every_rule_field() {
    let r = yaml(
        r#"
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata:
  name: customer
  namespace: shop
  labels: {team: payments}
spec:
  tier: security
  order: 100.5
  selector: app == 'customer'
  serviceAccountSelector: role == 'api'
  ingress:
    - action: Allow
      ipVersion: 4
      protocol: TCP
      notProtocol: UDP
      source:
        serviceAccounts:
          names: ["api-service", "web"]
          selector: app == 'bookstore'
        nets: [10.0.0.0/8]
        notNets: [10.1.0.0/16]
        namespaceSelector: global()
        notSelector: banned == 'true'
      destination:
        ports: [80, "8000:8080", http-alt]
        notPorts: [8081]
      http:
        methods: ["GET", "PUT"]
        paths:
          - exact: /users
          - prefix: /users/
    - action: Deny
      protocol: ICMP
      icmp: {type: 8, code: 0}
      notICMP: {type: 3}
    - action: Pass
      protocol: 132
    - action: Log
      protocol: "6"
      source:
        services: {name: frontend, namespace: web}
  egress:
    - action: Allow
      destination:
        services:
          name: kubernetes
          namespace: default
"#,
    );
    assert_eq!(
        r.key(),
        ResourceKey { kind: Kind::NetworkPolicy, namespace: Some("shop".into()), name: "customer".into() }
    );
    let Resource::NetworkPolicy(p) = r else { panic!() };
    assert_eq!(p.metadata.labels["team"], "payments");
    assert_eq!(p.spec.tier, "security");
    assert_eq!(p.spec.order, Some(100.5));
    assert_eq!(p.spec.types, [PolicyType::Ingress, PolicyType::Egress]);
    let allow = &p.spec.ingress[0];
    assert_eq!(allow.ip_version, Some(4));
    assert_eq!(allow.not_protocol, Some(Protocol::Name("UDP".into())));
    let sa = allow.source.service_accounts.as_ref().unwrap();
    assert_eq!(sa.names, ["api-service", "web"]);
    assert_eq!(sa.selector, "app == 'bookstore'");
    assert_eq!(allow.source.nets, ["10.0.0.0/8"]);
    assert_eq!(allow.source.not_nets, ["10.1.0.0/16"]);
    assert_eq!(allow.source.namespace_selector, "global()");
    assert_eq!(allow.source.not_selector, "banned == 'true'");
    assert_eq!(
        allow.destination.ports,
        [Port::single(80), Port::Range { min: 8000, max: 8080 }, Port::Named("http-alt".into())]
    );
    assert_eq!(allow.destination.not_ports, [Port::single(8081)]);
    let http = allow.http.as_ref().unwrap();
    assert_eq!(http.methods, ["GET", "PUT"]);
    assert_eq!(http.paths[0].exact, "/users");
    assert_eq!(http.paths[1].prefix, "/users/");
    let icmp = &p.spec.ingress[1];
    assert_eq!(icmp.icmp.as_ref().unwrap().icmp_type, Some(8));
    assert_eq!(icmp.icmp.as_ref().unwrap().code, Some(0));
    assert_eq!(icmp.not_icmp.as_ref().unwrap().icmp_type, Some(3));
    assert_eq!(p.spec.ingress[2].action, Action::Pass);
    assert_eq!(p.spec.ingress[2].protocol, Some(Protocol::Number(132)));
    // A string of digits is a protocol number, as in Calico.
    assert_eq!(p.spec.ingress[3].protocol, Some(Protocol::Number(6)));
    assert_eq!(p.spec.ingress[3].source.services.as_ref().unwrap().name, "frontend");
    assert_eq!(p.spec.egress[0].destination.services.as_ref().unwrap().namespace, "default");
}

#[test]
fn staged_policies() {
    let r = yaml(
        r#"
apiVersion: projectcalico.org/v3
kind: StagedGlobalNetworkPolicy
metadata: {name: staged-gnp}
spec:
  stagedAction: Set
  order: 10
  selector: all()
  namespaceSelector: env == 'prod'
  egress: [{action: Deny}]
"#,
    );
    let Resource::StagedGlobalNetworkPolicy(p) = r else { panic!() };
    assert_eq!(p.spec.staged_action, StagedAction::Set);
    assert_eq!(p.spec.types, [PolicyType::Egress]);
    assert_eq!(p.spec.tier, "default");

    let r = yaml(
        r#"
apiVersion: projectcalico.org/v3
kind: StagedNetworkPolicy
metadata: {name: staged-np, namespace: production}
spec:
  selector: role == 'database'
  ingress:
    - action: Allow
      protocol: TCP
      source: {selector: role == 'frontend'}
      destination: {ports: [6379]}
"#,
    );
    let Resource::StagedNetworkPolicy(p) = r else { panic!() };
    assert_eq!(p.spec.staged_action, StagedAction::Set, "absent stagedAction is Set");
    assert_eq!(p.spec.types, [PolicyType::Ingress]);

    let r = yaml(
        r#"
apiVersion: projectcalico.org/v3
kind: StagedNetworkPolicy
metadata: {name: going-away, namespace: production}
spec:
  stagedAction: Delete
  tier: default
"#,
    );
    let Resource::StagedNetworkPolicy(p) = r else { panic!() };
    assert_eq!(p.spec.staged_action, StagedAction::Delete);
}

const K8S_NP_SPEC: &str = r#"
spec:
  podSelector:
    matchLabels:
      role: db
  policyTypes:
    - Ingress
    - Egress
  ingress:
    - from:
        - ipBlock:
            cidr: 172.17.0.0/16
            except:
              - 172.17.1.0/24
        - namespaceSelector:
            matchLabels:
              project: myproject
        - podSelector:
            matchLabels:
              role: frontend
            matchExpressions:
              - {key: tier, operator: In, values: [a, b]}
      ports:
        - protocol: TCP
          port: 6379
  egress:
    - to:
        - ipBlock:
            cidr: 10.0.0.0/24
      ports:
        - port: 5978
          endPort: 6000
        - port: http
"#;

#[test]
fn kubernetes_network_policy_from_the_docs() {
    let r = yaml(&format!(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: test-network-policy\n  namespace: default\n{K8S_NP_SPEC}"
    ));
    assert_eq!(r.kind(), Kind::KubernetesNetworkPolicy);
    assert_eq!(r.namespace(), Some("default"));
    let Resource::KubernetesNetworkPolicy(p) = r else { panic!() };
    assert_eq!(p.calico_name(), "test-network-policy", "Calico HEAD: the plain name (kind KubernetesNetworkPolicy)");
    assert_eq!(p.spec.pod_selector.match_labels["role"], "db");
    assert_eq!(p.spec.policy_types, [PolicyType::Ingress, PolicyType::Egress]);
    let from = &p.spec.ingress[0].from;
    let block = from[0].ip_block.as_ref().unwrap();
    assert_eq!(block.cidr, "172.17.0.0/16");
    assert_eq!(block.except, ["172.17.1.0/24"]);
    assert_eq!(
        from[1].namespace_selector.as_ref().unwrap().to_calico_selector(SelectorRole::Namespace),
        "project == 'myproject'"
    );
    assert_eq!(
        from[2].pod_selector.as_ref().unwrap().to_calico_selector(SelectorRole::Pod),
        "projectcalico.org/orchestrator == 'k8s' && role == 'frontend' && tier in { 'a', 'b' }"
    );
    assert_eq!(p.spec.ingress[0].ports[0].port, Some(IntOrString::Int(6379)));
    let egress_ports = &p.spec.egress[0].ports;
    assert_eq!(egress_ports[0].protocol.as_deref(), Some("TCP"), "protocol defaults to TCP");
    assert_eq!(egress_ports[0].end_port, Some(6000));
    assert_eq!(egress_ports[1].port, Some(IntOrString::String("http".into())));
}

#[test]
fn staged_kubernetes_network_policy() {
    let r = yaml(&format!(
        "apiVersion: projectcalico.org/v3\nkind: StagedKubernetesNetworkPolicy\nmetadata:\n  name: test-network-policy\n  namespace: default\n{}",
        K8S_NP_SPEC.replace("spec:\n", "spec:\n  stagedAction: Learn\n")
    ));
    let Resource::StagedKubernetesNetworkPolicy(p) = r else { panic!() };
    assert_eq!(p.spec.staged_action, StagedAction::Learn);
    assert_eq!(p.spec.pod_selector.match_labels["role"], "db");
    assert_eq!(p.spec.egress[0].to[0].ip_block.as_ref().unwrap().cidr, "10.0.0.0/24");
}

#[test]
fn tier_profile_network_sets_and_workload_endpoint() {
    let Resource::Tier(t) = yaml(
        "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata:\n  name: internal-access\nspec:\n  order: 100\n  defaultAction: Pass\n",
    ) else {
        panic!()
    };
    assert_eq!(t.spec.order, Some(100.0));
    assert_eq!(t.spec.default_action, TierDefaultAction::Pass);

    let Resource::Profile(p) = yaml(
        r#"
apiVersion: projectcalico.org/v3
kind: Profile
metadata:
  name: dev-apps
spec:
  ingress:
    - action: Deny
      source:
        nets:
          - 10.0.20.0/24
    - action: Allow
      source:
        selector: stage == 'development'
  egress:
    - action: Allow
  labelsToApply:
    stage: development
"#,
    ) else {
        panic!()
    };
    assert_eq!(p.spec.ingress.len(), 2);
    assert_eq!(p.spec.labels_to_apply["stage"], "development");

    let r = yaml(
        r#"
apiVersion: projectcalico.org/v3
kind: GlobalNetworkSet
metadata:
  name: a-name-for-the-set
  labels:
    role: external-database
spec:
  nets:
    - 198.51.100.0/28
    - 203.0.113.0/24
    - 2001:db8::1
"#,
    );
    assert_eq!(r.namespace(), None);
    let Resource::GlobalNetworkSet(s) = r else { panic!() };
    assert_eq!(s.metadata.labels["role"], "external-database");
    assert_eq!(s.spec.nets.len(), 3);

    let r = yaml(
        "apiVersion: projectcalico.org/v3\nkind: NetworkSet\nmetadata:\n  name: external-database\n  namespace: staging\n  labels: {role: db}\nspec:\n  nets: [198.51.100.0/28]\n",
    );
    assert_eq!(r.key().to_string(), "NetworkSet staging/external-database");

    let r = yaml(
        r#"
apiVersion: projectcalico.org/v3
kind: WorkloadEndpoint
metadata:
  name: node1-k8s-my--nginx--b1337a-eth0
  namespace: default
  labels:
    app: frontend
    projectcalico.org/namespace: default
    projectcalico.org/orchestrator: k8s
spec:
  node: node1
  orchestrator: k8s
  endpoint: eth0
  containerID: "1337495556942031415926535"
  pod: my-nginx-b1337a
  serviceAccountName: default
  interfaceName: cali0ef24ba
  mac: ca:fe:1d:52:bb:e9
  ipNetworks:
    - 192.168.0.0/32
  profiles:
    - kns.default
  ports:
    - name: some-port
      port: 1234
      protocol: TCP
    - name: another-port
      port: 5432
      protocol: UDP
"#,
    );
    let Resource::WorkloadEndpoint(w) = r else { panic!() };
    assert_eq!(w.spec.container_id, "1337495556942031415926535");
    assert_eq!(w.spec.ip_networks, ["192.168.0.0/32"]);
    assert_eq!(w.spec.ports[1].port, 5432);
    assert_eq!(w.spec.ports[1].protocol, Protocol::Name("UDP".into()));
}

#[test]
fn kubernetes_pod_namespace_service_account() {
    let r = yaml(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: web-5d9c7
  namespace: shop
  uid: 0b9e2f1c-1111-2222-3333-444455556666
  labels: {app: web, version: "1.0"}
  annotations:
    cni.projectcalico.org/podIP: 10.1.2.3/32
  deletionTimestamp: "2026-11-26T10:00:00Z"
  ownerReferences:
    - {apiVersion: apps/v1, kind: ReplicaSet, name: web-5d9c7, uid: x}
spec:
  nodeName: node-1
  serviceAccountName: web-sa
  hostNetwork: false
  containers:
    - name: web
      image: nginx
      ports:
        - name: http
          containerPort: 8080
        - containerPort: 9090
          protocol: UDP
  initContainers:
    - name: proxy
      restartPolicy: Always
      ports: [{name: admin, containerPort: 15000}]
status:
  phase: Running
  podIP: 10.1.2.3
  podIPs:
    - ip: 10.1.2.3
    - ip: fd00::3
  conditions: [{type: Ready, status: "True"}]
"#,
    );
    assert_eq!(r.key().to_string(), "Pod shop/web-5d9c7");
    let Resource::Pod(p) = r else { panic!() };
    assert_eq!(p.metadata.uid.as_deref(), Some("0b9e2f1c-1111-2222-3333-444455556666"));
    assert_eq!(p.metadata.labels["version"], "1.0");
    assert_eq!(p.metadata.deletion_timestamp.as_deref(), Some("2026-11-26T10:00:00Z"));
    assert_eq!(p.spec.node_name.as_deref(), Some("node-1"));
    assert_eq!(p.spec.service_account_name.as_deref(), Some("web-sa"));
    assert!(!p.spec.host_network);
    let ports = &p.spec.containers[0].ports;
    assert_eq!(ports[0].name.as_deref(), Some("http"));
    assert_eq!(ports[0].container_port, 8080);
    assert_eq!(ports[0].protocol.as_deref(), Some("TCP"), "protocol defaults to TCP");
    assert_eq!(ports[1].protocol.as_deref(), Some("UDP"));
    assert_eq!(p.spec.init_containers[0].restart_policy.as_deref(), Some("Always"));
    assert_eq!(p.status.phase.as_deref(), Some("Running"));
    assert_eq!(p.status.pod_ip.as_deref(), Some("10.1.2.3"));
    assert_eq!(p.status.pod_ips[1].ip, "fd00::3");

    let Resource::Namespace(ns) =
        yaml("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n  labels: {env: prod}\n")
    else {
        panic!()
    };
    assert_eq!(ns.metadata.labels["env"], "prod");
    let r = yaml(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: web-sa\n  namespace: shop\n  labels: {role: api}\n",
    );
    assert_eq!(r.key().to_string(), "ServiceAccount shop/web-sa");
    assert_eq!(r.metadata().labels["role"], "api");
}

#[test]
fn json_single_object_array_list_and_stream() {
    let gnp = r#"{"apiVersion":"projectcalico.org/v3","kind":"GlobalNetworkPolicy","metadata":{"name":"a"},"spec":{"selector":"all()","ingress":[{"action":"Allow","protocol":"TCP","destination":{"ports":[80,"1000:2000"]}}]}}"#;
    let Resource::GlobalNetworkPolicy(p) = one(gnp, "gnp.json") else { panic!() };
    assert_eq!(p.spec.ingress[0].destination.ports[1], Port::Range { min: 1000, max: 2000 });

    // Text that is JSON is read as JSON whatever the file is called.
    assert_eq!(one(gnp, "gnp.yaml").name(), "a");

    let array = format!(r#"[{gnp}, {{"apiVersion":"v1","kind":"Namespace","metadata":{{"name":"shop"}}}}]"#);
    let all = parse_documents(&array, "all.json");
    assert_eq!(
        all.iter().map(|r| r.as_ref().unwrap().kind()).collect::<Vec<_>>(),
        [Kind::GlobalNetworkPolicy, Kind::Namespace]
    );

    // kubectl's `List`.
    let list = format!(r#"{{"apiVersion":"v1","kind":"List","metadata":{{}},"items":[{gnp},{gnp}]}}"#);
    assert_eq!(parse_documents(&list, "list.json").len(), 2);

    // calicoctl's `<Kind>List`, and an API list whose items leave out apiVersion and kind.
    let list = r#"{"apiVersion":"projectcalico.org/v3","kind":"TierList","items":[{"metadata":{"name":"t1"},"spec":{"order":5}},{"apiVersion":"projectcalico.org/v3","kind":"Tier","metadata":{"name":"t2"}}]}"#;
    let all = parse_documents(list, "tiers.json");
    let names: Vec<_> = all.iter().map(|r| r.as_ref().unwrap().key().to_string()).collect();
    assert_eq!(names, ["Tier t1", "Tier t2"]);

    // Concatenated objects.
    let stream = format!("{gnp}\n{gnp}\n");
    assert_eq!(parse_documents(&stream, "stream.json").len(), 2);

    // An already-decoded value (an etcd value, an API object).
    let value: serde_json::Value = serde_json::from_str(gnp).unwrap();
    assert_eq!(
        parse_value(value, "/calico/resources/v3/projectcalico.org/globalnetworkpolicies/a")[0]
            .as_ref()
            .unwrap()
            .name(),
        "a"
    );
}

#[test]
fn yaml_list_kinds() {
    let text = r#"
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicyList
items:
  - apiVersion: projectcalico.org/v3
    kind: GlobalNetworkPolicy
    metadata: {name: a}
    spec: {selector: all()}
  - metadata: {name: b}
---
- apiVersion: v1
  kind: Namespace
  metadata: {name: shop}
"#;
    let keys: Vec<_> = parse_documents(text, "l.yaml").into_iter().map(|r| r.unwrap().key().to_string()).collect();
    assert_eq!(keys, ["GlobalNetworkPolicy a", "GlobalNetworkPolicy b", "Namespace shop"]);
}

#[test]
fn crd_projectcalico_org_v1_forms() {
    // As stored by the Kubernetes datastore: legacy `default.` name, Calico metadata annotation.
    let r = yaml(
        r#"
apiVersion: crd.projectcalico.org/v1
kind: GlobalNetworkPolicy
metadata:
  name: default.allow-dns
  annotations:
    projectcalico.org/metadata: '{"creationTimestamp":null}'
  resourceVersion: "12345"
  uid: 6d3b2f2c-aaaa-bbbb-cccc-ddddeeeeffff
spec:
  tier: default
  order: 200
  selector: all()
  types: [Egress]
  egress:
    - action: Allow
      protocol: UDP
      destination:
        selector: k8s-app == 'kube-dns'
        namespaceSelector: projectcalico.org/name == 'kube-system'
        ports: [53]
"#,
    );
    assert_eq!(r.key().to_string(), "GlobalNetworkPolicy allow-dns");
    assert_eq!(r.metadata().resource_version.as_deref(), Some("12345"));
    let Resource::GlobalNetworkPolicy(p) = r else { panic!() };
    assert_eq!(p.spec.types, [PolicyType::Egress]);

    for kind in ["NetworkPolicy", "StagedNetworkPolicy", "NetworkSet", "WorkloadEndpoint"] {
        let r = yaml(&format!(
            "apiVersion: crd.projectcalico.org/v1\nkind: {kind}\nmetadata: {{name: n, namespace: ns}}\n"
        ));
        assert_eq!(r.kind().as_str(), kind);
        assert_eq!(r.namespace(), Some("ns"));
    }
    for kind in ["Tier", "Profile", "GlobalNetworkSet", "StagedGlobalNetworkPolicy"] {
        let r = yaml(&format!("apiVersion: crd.projectcalico.org/v1\nkind: {kind}\nmetadata: {{name: n}}\n"));
        assert_eq!(r.kind().as_str(), kind);
    }
    // Only projectcalico.org groups are Calico: a NetworkPolicy of networking.k8s.io is Kubernetes'.
    let r = yaml("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: n, namespace: ns}\n");
    assert_eq!(r.kind(), Kind::KubernetesNetworkPolicy);
}

#[test]
fn default_types_follow_the_rules() {
    let case = |spec: &str| -> Vec<PolicyType> {
        let Resource::GlobalNetworkPolicy(p) = yaml(&format!(
            "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {{name: p}}\nspec: {spec}\n"
        )) else {
            panic!()
        };
        p.spec.types
    };
    use PolicyType::{Egress, Ingress};
    assert_eq!(case("{}"), [Ingress], "no rules");
    assert_eq!(case("{ingress: [{action: Allow}]}"), [Ingress]);
    assert_eq!(case("{egress: [{action: Allow}]}"), [Egress]);
    assert_eq!(case("{ingress: [{action: Allow}], egress: [{action: Deny}]}"), [Ingress, Egress]);
    assert_eq!(case("{types: [Egress], ingress: [{action: Allow}]}"), [Egress], "explicit types are kept");
    assert_eq!(case("{types: [Egress, Ingress]}"), [Egress, Ingress]);
    // A document without spec at all.
    let Resource::NetworkPolicy(p) =
        yaml("apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: p}\n")
    else {
        panic!()
    };
    assert_eq!(p.spec.types, [Ingress]);
    assert_eq!(p.spec.tier, "default");
    assert_eq!(p.metadata.namespace.as_deref(), Some("default"), "namespace defaults to default");
}

#[test]
fn legacy_default_prefix_and_tiers() {
    let name = |tier: &str, name: &str| {
        let tier = if tier.is_empty() { String::new() } else { format!("tier: {tier}") };
        yaml(&format!(
            "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {{name: {name}, namespace: ns}}\nspec: {{{tier}}}\n"
        ))
        .name()
        .to_owned()
    };
    assert_eq!(name("", "default.web"), "web");
    assert_eq!(name("default", "default.web"), "web");
    assert_eq!(name("security", "default.web"), "default.web", "only default-tier names lose the prefix");
    assert_eq!(name("security", "security.web"), "security.web");
    assert_eq!(name("", "web"), "web");
    assert_eq!(name("", "knp.default.web"), "knp.default.web");

    let Resource::Tier(t) = yaml("apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: t}\n") else {
        panic!()
    };
    assert_eq!(t.spec.default_action, TierDefaultAction::Deny, "nil defaultAction is Deny");
    assert_eq!(t.spec.order, None);
    let Resource::Tier(t) =
        yaml("apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: t}\nspec: {defaultAction: null}\n")
    else {
        panic!()
    };
    assert_eq!(t.spec.default_action, TierDefaultAction::Deny);

    let builtin: Vec<_> =
        builtin_tiers().into_iter().map(|t| (t.metadata.name, t.spec.order, t.spec.default_action)).collect();
    assert_eq!(
        builtin,
        [
            ("kube-admin".to_owned(), Some(1000.0), TierDefaultAction::Pass),
            ("default".to_owned(), Some(1_000_000.0), TierDefaultAction::Deny),
            ("kube-baseline".to_owned(), Some(10_000_000.0), TierDefaultAction::Pass),
        ]
    );
}

#[test]
fn kubernetes_policy_types_default() {
    let types = |spec: &str| {
        let Resource::KubernetesNetworkPolicy(p) = yaml(&format!(
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: p, namespace: ns}}\nspec: {spec}\n"
        )) else {
            panic!()
        };
        p.spec.policy_types
    };
    assert_eq!(types("{podSelector: {}}"), [PolicyType::Ingress]);
    assert_eq!(types("{podSelector: {}, egress: [{}]}"), [PolicyType::Ingress, PolicyType::Egress]);
    assert_eq!(types("{podSelector: {}, policyTypes: [Egress]}"), [PolicyType::Egress]);
}

#[test]
fn null_and_empty_fields_read_as_zero_values() {
    let r = yaml(
        r#"
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: p
  labels:
spec:
  selector:
  ingress:
  egress: ~
  types: null
"#,
    );
    let Resource::GlobalNetworkPolicy(p) = r else { panic!() };
    assert!(p.metadata.labels.is_empty());
    assert_eq!(p.spec.selector, "");
    assert_eq!(p.spec.types, [PolicyType::Ingress]);
}

#[test]
fn empty_and_null_documents_are_skipped() {
    let ns = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n";
    let text = format!("# header\n---\n---\n{ns}---\n~\n---\nnull\n...\n# trailing\n");
    let all = parse_documents(&text, "f.yaml");
    assert_eq!(all.len(), 1);
    assert!(all[0].is_ok());
    assert!(parse_documents("", "f.yaml").is_empty());
    assert!(parse_documents("   \n# nothing\n", "f.yaml").is_empty());
    assert!(parse_documents("null", "f.json").is_empty());
    assert!(parse_documents("", "f.json").is_empty());
}

#[test]
fn unsupported_kinds_are_typed_errors() {
    let text = "apiVersion: projectcalico.org/v3\nkind: FelixConfiguration\nmetadata: {name: default}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n";
    let all = parse_documents(text, "f.yaml");
    assert_eq!(all.len(), 2);
    for r in &all {
        let e = r.as_ref().unwrap_err();
        assert!(e.is_unsupported_kind(), "{e}");
        assert_eq!(e.key(), None);
    }
    let e = all[1].as_ref().unwrap_err();
    assert_eq!(e.reason, Reason::UnsupportedKind { api_version: "apps/v1".into(), kind: "Deployment".into() });
    assert_eq!(
        e.to_string(),
        "f.yaml: document 2 (line 4): Deployment web: unsupported kind Deployment (apiVersion apps/v1)"
    );
}

#[test]
fn bom_and_crlf() {
    let text = "\u{feff}apiVersion: v1\r\nkind: Namespace\r\nmetadata:\r\n  name: a\r\n---\r\napiVersion: v1\r\nkind: Namespace\r\nmetadata:\r\n  name: b\r\n";
    let names: Vec<_> = parse_documents(text, "f.yaml").into_iter().map(|r| r.unwrap().name().to_owned()).collect();
    assert_eq!(names, ["a", "b"]);
}

#[test]
fn the_policy_kinds_are_the_projected_ones() {
    for kind in Kind::ALL {
        let doc = format!("apiVersion: {}\nkind: {}\nmetadata: {{name: a}}\n", kind.api_version(), kind.type_kind());
        let r = one(&doc, "k.yaml");
        assert_eq!(r.kind(), kind);
        assert_eq!(r.as_policy().is_some(), kind.is_policy(), "{kind}");
    }
}
