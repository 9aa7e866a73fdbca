//! Errors: one bad document never hides the others; every error names file, document,
//! resource, field and reason; every validation rule with its field path.

use alp_resources::{Kind, Reason, ResourceError, ResourceKey, parse_documents};
use serde_json::{Value, json};

fn errors_of(text: &str, file: &str) -> Vec<ResourceError> {
    parse_documents(text, file).into_iter().filter_map(Result::err).collect()
}

/// The single error a JSON document gives.
fn error_of(doc: &Value) -> ResourceError {
    let all = parse_documents(&doc.to_string(), "case.json");
    assert_eq!(all.len(), 1);
    match all.into_iter().next() {
        Some(Err(e)) => e,
        other => panic!("expected an error for {doc}, got {other:?}"),
    }
}

/// Asserts that `doc` is rejected with a problem at `field` whose reason contains `reason`.
#[track_caller]
fn rejects(doc: &Value, field: &str, reason: &str) {
    let e = error_of(doc);
    assert!(
        e.problems().iter().any(|p| p.field == field && p.reason.contains(reason)),
        "expected {field:?} ~ {reason:?} in: {e}"
    );
    assert!(e.to_string().contains(field), "{e}");
}

fn np_spec(spec: Value) -> Value {
    json!({"apiVersion": "projectcalico.org/v3", "kind": "NetworkPolicy",
           "metadata": {"name": "p", "namespace": "ns"}, "spec": spec})
}

fn gnp_spec(spec: Value) -> Value {
    json!({"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy",
           "metadata": {"name": "p"}, "spec": spec})
}

fn ingress(rule: Value) -> Value {
    np_spec(json!({"ingress": [rule]}))
}

fn k8s_np(spec: Value) -> Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
           "metadata": {"name": "p", "namespace": "ns"}, "spec": spec})
}

const GOOD: &str = "apiVersion: v1\nkind: Namespace\nmetadata: {name: good}\n";

#[test]
fn a_broken_document_does_not_hide_the_others() {
    let text = format!(
        "{GOOD}---\n# the bad one\napiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  ingress:\n    - action: Allow\n      protocol: TCP\n      destination:\n        ports: [80, 99999]\n---\n{GOOD}"
    );
    let all = parse_documents(&text, "dir/policies.yaml");
    assert_eq!(all.len(), 3);
    assert!(all[0].is_ok() && all[2].is_ok());
    let e = all[1].as_ref().unwrap_err();
    assert_eq!(e.file, "dir/policies.yaml");
    assert_eq!(e.document, 2);
    assert_eq!(e.line, Some(4));
    assert_eq!(e.field, "spec.ingress[0].destination.ports[1]");
    assert_eq!(
        e.key(),
        Some(ResourceKey { kind: Kind::NetworkPolicy, namespace: Some("shop".into()), name: "web".into() })
    );
    assert!(matches!(e.reason, Reason::Decode(_)));
    assert_eq!(
        e.to_string(),
        "dir/policies.yaml: document 2 (line 4): NetworkPolicy shop/web: spec.ingress[0].destination.ports[1]: port 99999 is out of range 0-65535"
    );
}

#[test]
fn a_yaml_syntax_error_stays_in_its_document() {
    let text = format!("{GOOD}---\nmetadata: {{name: [oops\nkind: x\n---\n{GOOD}");
    let all = parse_documents(&text, "f.yaml");
    assert_eq!(all.len(), 3, "{all:#?}");
    assert!(all[0].is_ok() && all[2].is_ok());
    let e = all[1].as_ref().unwrap_err();
    assert_eq!(e.document, 2);
    let Reason::Yaml(message) = &e.reason else { panic!("{e}") };
    // Lines are the file's, not the document's.
    assert!(message.contains("at line 5") || message.contains("at line 6"), "{message}");

    // Tabs for indentation, a duplicate key.
    let e = &errors_of("apiVersion: v1\nkind: Namespace\nkind: Pod\n", "f.yaml")[0];
    assert!(matches!(&e.reason, Reason::Yaml(m) if m.contains("duplicate")), "{e}");
}

#[test]
fn json_syntax_error_keeps_what_came_before() {
    let good = r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"a"}}"#;
    let all = parse_documents(&format!("{good}\n{good}\n{{\"apiVersion\": "), "f.json");
    assert_eq!(all.len(), 3);
    assert!(all[0].is_ok() && all[1].is_ok());
    let e = all[2].as_ref().unwrap_err();
    assert_eq!(e.document, 3);
    assert_eq!(e.line, Some(3));
    assert!(matches!(&e.reason, Reason::Json(m) if m.contains("line 3")), "{e}");
}

#[test]
fn document_level_errors() {
    let e = &errors_of("just a string\n", "f.yaml")[0];
    assert_eq!(e.reason, Reason::NotAnObject("a string"));
    let e = &errors_of("metadata: {name: x}\n", "f.yaml")[0];
    assert_eq!(e.reason, Reason::MissingKind);
    let e = &errors_of("kind: Tier\nmetadata: {name: x}\n", "f.yaml")[0];
    assert_eq!(e.reason, Reason::MissingApiVersion);
    assert_eq!(e.to_string(), "f.yaml: document 1 (line 1): Tier x: missing apiVersion");
    // An item of a list.
    let e = &errors_of(r#"[{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"a"}}, 7]"#, "f.json")[0];
    assert_eq!(e.item, Some(1));
    assert_eq!(
        e.to_string(),
        "f.json: document 1, items[1] (line 1): expected a mapping with apiVersion, kind, metadata, found a number"
    );
    let e = &errors_of("apiVersion: v1\nkind: List\nitems: {a: 1}\n", "f.yaml")[0];
    assert_eq!(e.field, "items");
}

#[test]
fn every_validation_problem_is_reported() {
    let e = error_of(&ingress(json!({
        "action": "Allow",
        "source": {"selector": "a ==", "notSelector": "(("},
        "destination": {"ports": [80]},
    })));
    let fields: Vec<String> = e.problems().into_iter().map(|p| p.field).collect();
    assert_eq!(
        fields,
        ["spec.ingress[0].destination.ports", "spec.ingress[0].source.selector", "spec.ingress[0].source.notSelector"]
    );
    assert!(matches!(e.reason, Reason::Invalid(_)));
    assert_eq!(e.more.len(), 2);
}

#[test]
fn selectors_must_parse() {
    rejects(&np_spec(json!({"selector": "app = 'x'"})), "spec.selector", "invalid selector");
    rejects(&np_spec(json!({"serviceAccountSelector": "has("})), "spec.serviceAccountSelector", "invalid selector");
    rejects(&gnp_spec(json!({"namespaceSelector": "a in {"})), "spec.namespaceSelector", "invalid selector");
    for side in ["source", "destination"] {
        for field in ["selector", "notSelector", "namespaceSelector"] {
            rejects(
                &ingress(json!({"action": "Allow", side: {field: "x == 'a' &&"}})),
                &format!("spec.ingress[0].{side}.{field}"),
                "invalid selector",
            );
        }
        rejects(
            &ingress(json!({"action": "Allow", side: {"serviceAccounts": {"selector": "!"}}})),
            &format!("spec.ingress[0].{side}.serviceAccounts.selector"),
            "invalid selector",
        );
    }
    // A newline is not selector whitespace.
    rejects(&np_spec(json!({"selector": "a == 'b'\n&& c == 'd'"})), "spec.selector", "invalid selector");
}

#[test]
fn global_selector_only_alone_in_entity_namespace_selectors() {
    let ok = parse_documents(
        &ingress(json!({"action": "Allow", "source": {"namespaceSelector": "global()"}})).to_string(),
        "f.json",
    );
    assert!(ok[0].is_ok(), "{ok:?}");
    rejects(
        &ingress(json!({"action": "Allow", "source": {"namespaceSelector": "global() && a == 'b'"}})),
        "spec.ingress[0].source.namespaceSelector",
        "global() cannot be combined",
    );
    rejects(
        &ingress(json!({"action": "Allow", "source": {"selector": "global()"}})),
        "spec.ingress[0].source.selector",
        "global() can only be used",
    );
    rejects(&np_spec(json!({"selector": "global()"})), "spec.selector", "global() can only be used");
}

#[test]
fn ports() {
    let tcp = |ports: Value| ingress(json!({"action": "Allow", "protocol": "TCP", "destination": {"ports": ports}}));
    rejects(&tcp(json!([0])), "spec.ingress[0].destination.ports[0]", "between 1 and 65535");
    rejects(&tcp(json!(["0:10"])), "spec.ingress[0].destination.ports[0]", "between 1 and 65535");
    rejects(&tcp(json!([80, 65536])), "spec.ingress[0].destination.ports[1]", "out of range 0-65535");
    rejects(&tcp(json!([-1])), "spec.ingress[0].destination.ports[0]", "out of range");
    rejects(&tcp(json!(["90:80"])), "spec.ingress[0].destination.ports[0]", "greater than maximum");
    rejects(&tcp(json!(["1:70000"])), "spec.ingress[0].destination.ports[0]", "invalid maximum port");
    rejects(&tcp(json!(["has space"])), "spec.ingress[0].destination.ports[0]", "invalid name for named port");
    rejects(&tcp(json!(["Upper_Case"])), "spec.ingress[0].destination.ports[0]", "invalid port name");
    rejects(&tcp(json!(["-web"])), "spec.ingress[0].destination.ports[0]", "invalid port name");
    rejects(&tcp(json!(["a-very-long-port-name"])), "spec.ingress[0].destination.ports[0]", "invalid port name");
    rejects(&tcp(json!(["80.5"])), "spec.ingress[0].destination.ports[0]", "invalid port name");
    rejects(&tcp(json!([80.5])), "spec.ingress[0].destination.ports[0]", "floating point");
    let not_ports = ingress(json!({"action": "Allow", "protocol": "UDP", "source": {"notPorts": ["x--y"]}}));
    rejects(&not_ports, "spec.ingress[0].source.notPorts[0]", "invalid port name");

    // Numeric ports need TCP, UDP or SCTP; named ports alone need no protocol.
    let ok = ingress(json!({"action": "Allow", "destination": {"ports": ["http"]}}));
    assert!(parse_documents(&ok.to_string(), "f.json")[0].is_ok());
    rejects(
        &ingress(json!({"action": "Allow", "destination": {"ports": ["http", 80]}})),
        "spec.ingress[0].destination.ports",
        "rules with numeric port or port range must set protocol",
    );
    rejects(
        &ingress(json!({"action": "Allow", "source": {"notPorts": ["1:2"]}})),
        "spec.ingress[0].source.notPorts",
        "must set protocol",
    );
    rejects(
        &ingress(json!({"action": "Allow", "protocol": "ICMP", "destination": {"ports": ["http"]}})),
        "spec.ingress[0].destination.ports",
        "rules that specify ports must set protocol to TCP or UDP or SCTP",
    );
    for proto in [json!("SCTP"), json!(6), json!("17"), json!(132)] {
        let ok = ingress(json!({"action": "Allow", "protocol": proto, "destination": {"ports": [80]}}));
        assert!(parse_documents(&ok.to_string(), "f.json")[0].is_ok(), "{proto}");
    }
}

#[test]
fn protocols() {
    for good in [
        json!("TCP"),
        json!("UDP"),
        json!("ICMP"),
        json!("ICMPv6"),
        json!("SCTP"),
        json!("UDPLite"),
        json!(1),
        json!(255),
        json!("255"),
    ] {
        let doc = ingress(json!({"action": "Allow", "protocol": good}));
        assert!(parse_documents(&doc.to_string(), "f.json")[0].is_ok(), "{good}");
    }
    rejects(
        &ingress(json!({"action": "Allow", "protocol": "tcp"})),
        "spec.ingress[0].protocol",
        "protocol name invalid",
    );
    rejects(
        &ingress(json!({"action": "Allow", "protocol": "any"})),
        "spec.ingress[0].protocol",
        "protocol name invalid",
    );
    rejects(&ingress(json!({"action": "Allow", "protocol": 0})), "spec.ingress[0].protocol", "protocol number invalid");
    rejects(
        &ingress(json!({"action": "Allow", "protocol": "0"})),
        "spec.ingress[0].protocol",
        "protocol number invalid",
    );
    rejects(&ingress(json!({"action": "Allow", "protocol": 256})), "spec.ingress[0].protocol", "out of range 0-255");
    rejects(
        &ingress(json!({"action": "Allow", "notProtocol": "FOO"})),
        "spec.ingress[0].notProtocol",
        "protocol name invalid",
    );
}

#[test]
fn actions_types_and_shapes() {
    rejects(&ingress(json!({"action": "allow"})), "spec.ingress[0].action", "unknown variant `allow`");
    rejects(&ingress(json!({"action": "Reject"})), "spec.ingress[0].action", "unknown variant");
    rejects(&ingress(json!({"protocol": "TCP"})), "spec.ingress[0]", "missing field `action`");
    rejects(&np_spec(json!({"types": ["ingress"]})), "spec.types[0]", "unknown variant `ingress`");
    rejects(&np_spec(json!({"types": ["Ingress", "Ingress"]})), "spec.types[1]", "duplicate");
    rejects(&np_spec(json!({"order": "10"})), "spec.order", "invalid type");
    rejects(&np_spec(json!({"ingress": {"action": "Allow"}})), "spec.ingress", "expected a sequence");
    // Unknown fields in rules and specs are rejected: dropping them would widen the rule.
    rejects(
        &ingress(json!({"action": "Allow", "destination": {"portz": [80]}})),
        "spec.ingress[0].destination.portz",
        "unknown field `portz`",
    );
    rejects(
        &ingress(json!({"action": "Allow", "http": {"method": ["GET"]}})),
        "spec.ingress[0].http.method",
        "unknown field",
    );
    rejects(&np_spec(json!({"selecter": "all()"})), "spec.selecter", "unknown field");
    rejects(&gnp_spec(json!({"performanceHints": ["Fast"]})), "spec.performanceHints[0]", "AssumeNeededOnEveryNode");
    let tier = json!({"apiVersion": "projectcalico.org/v3", "kind": "Tier", "metadata": {"name": "t"}, "spec": {"defaultAction": "Allow"}});
    rejects(&tier, "spec.defaultAction", "unknown variant `Allow`, expected `Deny` or `Pass`");
    let tier = json!({"apiVersion": "projectcalico.org/v3", "kind": "Tier", "metadata": {"name": "t"}, "spec": {"defaultAction": "Log"}});
    rejects(&tier, "spec.defaultAction", "unknown variant `Log`");
}

#[test]
fn http_clauses() {
    let http = |h: Value| ingress(json!({"action": "Allow", "http": h}));
    rejects(
        &np_spec(json!({"egress": [{"action": "Allow", "http": {"methods": ["GET"]}}]})),
        "spec.egress[0].http",
        "not allowed in egress rule",
    );
    rejects(
        &gnp_spec(json!({"egress": [{"action": "Deny"}, {"action": "Allow", "http": {"paths": [{"exact": "/"}]}}]})),
        "spec.egress[1].http",
        "not allowed in egress rule",
    );
    let methods: Vec<String> = (0..21).map(|i| format!("M{i}")).collect();
    rejects(&http(json!({"methods": methods})), "spec.ingress[0].http.methods", "at most 20 methods");
    rejects(&http(json!({"methods": ["GET", "PUT", "GET"]})), "spec.ingress[0].http.methods", "duplicates");
    let paths: Vec<Value> = (0..21).map(|i| json!({"exact": format!("/p{i}")})).collect();
    rejects(&http(json!({"paths": paths})), "spec.ingress[0].http.paths", "at most 20 paths");
    rejects(&http(json!({"paths": [{"exact": "/a", "prefix": "/b"}]})), "spec.ingress[0].http.paths[0]", "both");
    rejects(&http(json!({"paths": [{"exact": "/a"}, {}]})), "spec.ingress[0].http.paths[1]", "either");
    rejects(&http(json!({"paths": [{"exact": "a"}]})), "spec.ingress[0].http.paths[0].exact", "must start with `/`");
    rejects(
        &http(json!({"paths": [{"prefix": "/a?b"}]})),
        "spec.ingress[0].http.paths[0].prefix",
        "must start with `/`",
    );
    rejects(&http(json!({"paths": [{"prefix": "/a#b"}]})), "spec.ingress[0].http.paths[0].prefix", "`#`");
    rejects(&http(json!({"paths": [{"exact": "/a b"}]})), "spec.ingress[0].http.paths[0].exact", "a space");
    let long = format!("/{}", "a".repeat(1024));
    rejects(&http(json!({"paths": [{"exact": long}]})), "spec.ingress[0].http.paths[0].exact", "longer than 1024");
    // Twenty of each is fine, and HTTP in a profile's egress rules is not checked.
    let methods: Vec<String> = (0..20).map(|i| format!("M{i}")).collect();
    let paths: Vec<Value> = (0..20).map(|i| json!({"prefix": format!("/p{i}/")})).collect();
    assert!(parse_documents(&http(json!({"methods": methods, "paths": paths})).to_string(), "f.json")[0].is_ok());
}

#[test]
fn nets_and_ip_versions() {
    let src = |extra: Value| {
        let mut rule = json!({"action": "Allow"});
        for (k, v) in extra.as_object().unwrap() {
            rule[k] = v.clone();
        }
        ingress(rule)
    };
    rejects(
        &src(json!({"source": {"nets": ["10.0.0.0/8", "10.0.0.0/33"]}})),
        "spec.ingress[0].source.nets[1]",
        "invalid CIDR",
    );
    rejects(&src(json!({"source": {"notNets": ["10.0.0.1"]}})), "spec.ingress[0].source.notNets[0]", "invalid CIDR");
    rejects(
        &src(json!({"destination": {"nets": ["fe80::/10x"]}})),
        "spec.ingress[0].destination.nets[0]",
        "invalid CIDR",
    );
    rejects(
        &src(json!({"source": {"nets": ["10.0.0.0/8"]}, "destination": {"nets": ["fd00::/8"]}})),
        "spec.ingress[0].destination.nets",
        "both IPv4 and IPv6",
    );
    rejects(
        &src(json!({"source": {"nets": ["10.0.0.0/8", "fd00::/8"]}})),
        "spec.ingress[0].source.nets",
        "both IPv4 and IPv6",
    );
    rejects(
        &src(json!({"ipVersion": 6, "source": {"nets": ["10.0.0.0/8"]}})),
        "spec.ingress[0].source.nets",
        "doesn't match",
    );
    rejects(&src(json!({"ipVersion": 5})), "spec.ingress[0].ipVersion", "must be 4 or 6");
    rejects(&src(json!({"ipVersion": "4"})), "spec.ingress[0].ipVersion", "invalid type");
    // Host bits are allowed (Calico masks destination nets when converting).
    assert!(parse_documents(&src(json!({"destination": {"nets": ["10.0.0.1/24"]}})).to_string(), "f.json")[0].is_ok());
}

#[test]
fn icmp_fields() {
    let rule = |icmp: Value| ingress(json!({"action": "Allow", "protocol": "ICMP", "icmp": icmp}));
    rejects(&rule(json!({"type": 255})), "spec.ingress[0].icmp.type", "between 0 and 254");
    rejects(&rule(json!({"type": 3, "code": 256})), "spec.ingress[0].icmp.code", "between 0 and 255");
    rejects(&rule(json!({"code": 1})), "spec.ingress[0].icmp.code", "without an ICMP type");
    let not = ingress(json!({"action": "Allow", "protocol": "ICMP", "notICMP": {"type": -1}}));
    rejects(&not, "spec.ingress[0].notICMP.type", "between 0 and 254");
}

#[test]
fn service_matches() {
    rejects(
        &ingress(json!({"action": "Allow", "source": {"services": {"namespace": "x"}}})),
        "spec.ingress[0].source.services.name",
        "must specify a service name",
    );
    rejects(
        &ingress(json!({"action": "Allow", "source": {"services": {"name": "a"}, "selector": "all()"}})),
        "spec.ingress[0].source.services",
        "Selector/NotSelector and Services",
    );
    rejects(
        &ingress(json!({"action": "Allow", "source": {"services": {"name": "a"}, "nets": ["10.0.0.0/8"]}})),
        "spec.ingress[0].source.services",
        "Nets/NotNets and Services",
    );
    rejects(
        &ingress(json!({"action": "Allow", "destination": {"services": {"name": "a"}}})),
        "spec.ingress[0].destination.services",
        "not allowed in ingress rule destination",
    );
    rejects(
        &np_spec(json!({"egress": [{"action": "Allow", "source": {"services": {"name": "a"}}}]})),
        "spec.egress[0].source.services",
        "not allowed in egress rule source",
    );
    rejects(
        &gnp_spec(json!({"ingress": [{"action": "Allow", "source": {"services": {"name": "a"}}}]})),
        "spec.ingress[0].source.services.namespace",
        "must specify a namespace",
    );
}

#[test]
fn rule_count_limit() {
    let rules: Vec<Value> = (0..1025).map(|_| json!({"action": "Allow"})).collect();
    rejects(&np_spec(json!({"egress": rules})), "spec.egress", "at most 1024 rules");
    let rules: Vec<Value> = (0..1024).map(|_| json!({"action": "Allow"})).collect();
    assert!(parse_documents(&np_spec(json!({"ingress": rules})).to_string(), "f.json")[0].is_ok());
}

#[test]
fn names() {
    let named = |kind: &str, name: Value| json!({"apiVersion": "projectcalico.org/v3", "kind": kind, "metadata": {"name": name}});
    rejects(
        &json!({"apiVersion": "projectcalico.org/v3", "kind": "Tier", "metadata": {}}),
        "metadata.name",
        "required",
    );
    rejects(&named("Tier", json!("has.dot")), "metadata.name", "DNS label");
    rejects(&named("GlobalNetworkPolicy", json!("Upper")), "metadata.name", "invalid name");
    rejects(&named("GlobalNetworkPolicy", json!("a.b.c")), "metadata.name", "at most one '.'");
    rejects(&named("GlobalNetworkSet", json!("-x")), "metadata.name", "DNS subdomain");
    rejects(&named("Profile", json!(7)), "metadata.name", "invalid type");
    let np = json!({"apiVersion": "projectcalico.org/v3", "kind": "NetworkPolicy", "metadata": {"name": "p", "namespace": "Bad_NS"}});
    rejects(&np, "metadata.namespace", "DNS label");
    for ok in ["knp.default.web.v1", "tier1.web", "ksa.ns.sa", "kns.default"] {
        let kind = if ok.starts_with('k') && !ok.starts_with("knp") { "Profile" } else { "NetworkPolicy" };
        let doc =
            json!({"apiVersion": "projectcalico.org/v3", "kind": kind, "metadata": {"name": ok, "namespace": "ns"}});
        assert!(parse_documents(&doc.to_string(), "f.json")[0].is_ok(), "{ok}");
    }
}

#[test]
fn network_sets_endpoints_and_pods() {
    let gns = json!({"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkSet", "metadata": {"name": "s"},
                     "spec": {"nets": ["10.0.0.0/8", "nope", "10.0.0.1"]}});
    rejects(&gns, "spec.nets[1]", "invalid CIDR");
    let ns = json!({"apiVersion": "projectcalico.org/v3", "kind": "NetworkSet",
                    "metadata": {"name": "s", "namespace": "a", "labels": {"projectcalico.org/namespace": "b"}}});
    rejects(&ns, "metadata.labels", "projectcalico.org/namespace");
    let wep = json!({"apiVersion": "projectcalico.org/v3", "kind": "WorkloadEndpoint", "metadata": {"name": "w", "namespace": "a"},
                     "spec": {"ipNetworks": ["10.0.0.1/32", "x"], "ports": [{"name": "p", "port": 80, "protocol": "ICMP"}]}});
    rejects(&wep, "spec.ipNetworks[1]", "invalid CIDR");
    rejects(&wep, "spec.ports[0].protocol", "does not support ports");
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "a"},
                     "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 0}, {"name": "Bad", "containerPort": 80, "protocol": "ICMP"}]}]},
                     "status": {"podIP": "10.0.0.300"}});
    rejects(&pod, "spec.containers[0].ports[0].containerPort", "between 1 and 65535");
    rejects(&pod, "spec.containers[0].ports[1].name", "invalid port name");
    rejects(&pod, "spec.containers[0].ports[1].protocol", "unsupported protocol");
    rejects(&pod, "status.podIP", "invalid IP address");
}

#[test]
fn kubernetes_network_policies() {
    let from = |peer: Value| k8s_np(json!({"podSelector": {}, "ingress": [{"from": [peer]}]}));
    rejects(
        &from(json!({"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.1.0.0/24"]}})),
        "spec.ingress[0].from[0].ipBlock.except[0]",
        "strict subset",
    );
    rejects(
        &from(json!({"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.0.0.0/16"]}})),
        "spec.ingress[0].from[0].ipBlock.except[0]",
        "strict subset",
    );
    rejects(&from(json!({"ipBlock": {"cidr": "10.0.0.1"}})), "spec.ingress[0].from[0].ipBlock.cidr", "invalid CIDR");
    rejects(&from(json!({})), "spec.ingress[0].from[0]", "must specify a peer");
    rejects(
        &from(json!({"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}})),
        "spec.ingress[0].from[0]",
        "may not specify both ipBlock and another peer",
    );
    rejects(
        &from(json!({"podSelector": {"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["b"]}]}})),
        "spec.ingress[0].from[0].podSelector.matchExpressions[0].operator",
        "not a valid selector operator",
    );
    rejects(
        &from(json!({"namespaceSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}})),
        "spec.ingress[0].from[0].namespaceSelector.matchExpressions[0].values",
        "must be specified",
    );
    rejects(
        &from(
            json!({"namespaceSelector": {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}}),
        ),
        "spec.ingress[0].from[0].namespaceSelector.matchExpressions[0].values",
        "may not be specified",
    );
    rejects(
        &k8s_np(json!({"podSelector": {"matchLabels": {"a b": "c"}}})),
        "spec.podSelector",
        "do not make a valid selector",
    );
    let port = |p: Value| k8s_np(json!({"podSelector": {}, "egress": [{"ports": [p]}]}));
    rejects(&port(json!({"port": 0})), "spec.egress[0].ports[0].port", "between 1 and 65535");
    rejects(&port(json!({"port": "Web"})), "spec.egress[0].ports[0].port", "invalid port name");
    rejects(&port(json!({"protocol": "ICMP", "port": 1})), "spec.egress[0].ports[0].protocol", "unsupported protocol");
    rejects(&port(json!({"port": 100, "endPort": 99})), "spec.egress[0].ports[0].endPort", "greater than or equal");
    rejects(&port(json!({"port": "http", "endPort": 99})), "spec.egress[0].ports[0].endPort", "named port");
    rejects(&port(json!({"endPort": 99})), "spec.egress[0].ports[0].endPort", "not specified");
    rejects(&k8s_np(json!({"policyTypes": ["Ingress", "Ingress"]})), "spec.policyTypes[1]", "duplicate");
    rejects(&k8s_np(json!({"policyTypes": ["All"]})), "spec.policyTypes[0]", "unknown variant");
    rejects(&k8s_np(json!({"ingress": [{"source": []}]})), "spec.ingress[0].source", "unknown field");
}

#[test]
fn staged_delete_must_be_empty() {
    let snp = json!({"apiVersion": "projectcalico.org/v3", "kind": "StagedNetworkPolicy", "metadata": {"name": "p", "namespace": "a"},
                     "spec": {"stagedAction": "Delete", "selector": "all()"}});
    rejects(&snp, "spec", "stagedAction is Delete");
    let sknp = json!({"apiVersion": "projectcalico.org/v3", "kind": "StagedKubernetesNetworkPolicy", "metadata": {"name": "p", "namespace": "a"},
                      "spec": {"stagedAction": "Delete", "ingress": [{}]}});
    rejects(&sknp, "spec", "stagedAction is Delete");
    // A staged Set policy is validated like the enforced one.
    let sgnp = json!({"apiVersion": "projectcalico.org/v3", "kind": "StagedGlobalNetworkPolicy", "metadata": {"name": "p"},
                      "spec": {"egress": [{"action": "Allow", "http": {"methods": ["GET"]}}]}});
    rejects(&sgnp, "spec.egress[0].http", "not allowed in egress rule");
}

#[test]
fn invalid_resources_keep_their_key_for_failing_closed() {
    let e = error_of(&json!({"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy",
                             "metadata": {"name": "default.deny-all"}, "spec": {"selector": "(("}}));
    assert_eq!(
        e.key(),
        Some(ResourceKey { kind: Kind::GlobalNetworkPolicy, namespace: None, name: "deny-all".into() })
    );
    let e = error_of(&k8s_np(json!({"podSelector": 3})));
    assert_eq!(e.key().map(|k| k.kind), Some(Kind::KubernetesNetworkPolicy));
    assert_eq!(
        e.to_string(),
        "case.json: document 1 (line 1): KubernetesNetworkPolicy ns/p: spec.podSelector: invalid type: integer `3`, expected struct LabelSelector"
    );
}
