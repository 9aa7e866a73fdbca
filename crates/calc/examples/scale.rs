//! Rough timing at scale: 10,000 pods in 100 namespaces, 1,000 policies.
//! `cargo run --release -p alp-calc --example scale [node]`.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use alp_calc::Calculator;

fn main() {
    let node = std::env::args().nth(1);
    let mut docs = Vec::new();
    for n in 0..100 {
        docs.push(format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: ns{n}, labels: {{team: t{}}}}}\n", n % 10));
        for p in 0..10 {
            docs.push(format!(
                "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {{name: pol{p}, namespace: ns{n}}}\n\
                 spec:\n  order: {p}\n  selector: app == 'app{p}'\n  ingress:\n  \
                 - {{action: Allow, source: {{selector: \"app == 'app{}'\"}}, destination: {{ports: [http]}}}}\n  \
                 - {{action: Allow, source: {{namespaceSelector: \"team == 't{}'\"}}}}\n",
                (p + 1) % 10,
                p % 10
            ));
        }
    }
    for i in 0..10_000 {
        let (n, node_name) = (i % 100, format!("node{}", i % 100));
        docs.push(format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: pod{i}, namespace: ns{n}, labels: {{app: app{}}}}}\n\
             spec: {{nodeName: {node_name}, containers: [{{name: c, ports: [{{name: http, containerPort: 80}}]}}]}}\n\
             status: {{podIP: 10.{}.{}.{}}}\n",
            i % 10,
            i / 65536,
            (i / 256) % 256,
            i % 256
        ));
    }
    let resources: Vec<_> =
        docs.iter().map(|d| alp_resources::parse_documents(d, "x").into_iter().next().unwrap().unwrap()).collect();
    let mut calc = Calculator::new(node.clone());
    let t = Instant::now();
    let mut msgs = 0;
    for r in resources {
        msgs += calc.apply(r).len();
    }
    println!("initial load ({node:?}): {:?}, {msgs} messages, {} local workloads", t.elapsed(), calc.workloads().len());

    let relabel = |app: usize| {
        alp_resources::parse_documents(
            &format!(
                "apiVersion: v1\nkind: Pod\nmetadata: {{name: pod0, namespace: ns0, labels: {{app: app{app}}}}}\n\
                 spec: {{nodeName: node0, containers: [{{name: c, ports: [{{name: http, containerPort: 80}}]}}]}}\n\
                 status: {{podIP: 10.0.0.0}}\n"
            ),
            "x",
        )
        .remove(0)
        .unwrap()
    };
    let t = Instant::now();
    let n = 200;
    for k in 0..n {
        calc.apply(relabel(k % 10));
    }
    println!("pod label change: {:?} each", t.elapsed() / n as u32);

    let t = Instant::now();
    for k in 0..n {
        let doc = format!(
            "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {{name: pol0, namespace: ns0}}\n\
             spec:\n  order: 0\n  selector: app == 'app0'\n  ingress:\n  - {{action: Allow, source: {{selector: \"app == 'x{}'\"}}}}\n",
            k % 3
        );
        calc.apply(alp_resources::parse_documents(&doc, "x").remove(0).unwrap());
    }
    println!("policy change: {:?} each", t.elapsed() / n as u32);

    let t = Instant::now();
    for k in 0..20 {
        let doc = format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: ns0, labels: {{team: t{}}}}}\n", k % 10);
        calc.apply(alp_resources::parse_documents(&doc, "x").remove(0).unwrap());
    }
    println!("namespace label change: {:?} each", t.elapsed() / 20);
}
