#[test]
fn explore() {
    let yaml = r#"
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: default.allow-tcp-6379
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
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: x, namespace: ns1}
spec:
  ingress:
  - action: Allow
    protocol: TCP
    destination:
      portz: [1]
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: x}
spec:
  ingress:
  - action: Allow
    protocol: TCP
    destination:
      ports: [70000]
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: x}
spec:
  ingress:
  - action: Allow
    destination:
      ports: [80]
  egress:
  - action: Allow
    http: {methods: [GET, GET]}
---
a: [1, 2
---
apiVersion: projectcalico.org/v3
kind: FelixConfiguration
metadata: {name: default}
"#;
    for r in alp_resources::parse_documents(yaml, "f.yaml") {
        match r {
            Ok(r) => println!("OK {}: {}", r.key(), serde_json::to_string(&r).unwrap()),
            Err(e) => println!("ERR {e}\n    key={:?}", e.key()),
        }
    }
}
