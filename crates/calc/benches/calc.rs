//! Calculator costs at scale: 10,000 pods in 100 namespaces, 1,000 namespaced policies (each
//! with a selector rule, a named port and a namespace-selector rule), on a node running 100 of
//! the pods. Measures the initial load and single changes on a loaded calculator.

use std::hint::black_box;

use alp_calc::Calculator;
use alp_resources::Resource;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

fn parse(doc: &str) -> Resource {
    match alp_resources::parse_documents(doc, "bench.yaml").into_iter().next() {
        Some(Ok(r)) => r,
        other => panic!("bench document does not parse: {other:?}"),
    }
}

fn pod(i: usize, app: usize) -> Resource {
    parse(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: pod{i}, namespace: ns{}, labels: {{app: app{app}}}}}\n\
         spec: {{nodeName: node{}, containers: [{{name: c, ports: [{{name: http, containerPort: 80}}]}}]}}\n\
         status: {{podIP: 10.{}.{}.{}}}\n",
        i % 100,
        i % 100,
        i / 65536,
        (i / 256) % 256,
        i % 256
    ))
}

fn policy(ns: usize, p: usize, source_app: usize) -> Resource {
    parse(&format!(
        "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {{name: pol{p}, namespace: ns{ns}}}\n\
         spec:\n  order: {p}\n  selector: app == 'app{p}'\n  ingress:\n  \
         - {{action: Allow, source: {{selector: \"app == 'app{source_app}'\"}}, destination: {{ports: [http]}}}}\n  \
         - {{action: Allow, source: {{namespaceSelector: \"team == 't{p}'\"}}}}\n"
    ))
}

fn cluster() -> Vec<Resource> {
    let mut out = Vec::new();
    for n in 0..100 {
        out.push(parse(&format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: ns{n}, labels: {{team: t{}}}}}\n",
            n % 10
        )));
        out.extend((0..10).map(|p| policy(n, p, (p + 1) % 10)));
    }
    out.extend((0..10_000).map(|i| pod(i, i % 10)));
    out
}

fn loaded(node: Option<&str>) -> Calculator {
    let mut calc = Calculator::new(node.map(str::to_owned));
    for r in cluster() {
        calc.apply(r);
    }
    calc
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("calc_10k_pods_1k_policies");
    g.sample_size(10);
    g.bench_function("initial_load_one_node", |b| {
        b.iter_batched(
            cluster,
            |rs| {
                let mut calc = Calculator::new(Some("node0".into()));
                for r in rs {
                    black_box(calc.apply(r));
                }
            },
            BatchSize::LargeInput,
        )
    });
    for (name, node) in [("one_node", Some("node0")), ("all_local", None)] {
        let mut calc = loaded(node);
        let (mut app, mut src) = (0, 0);
        g.bench_function(format!("remote_pod_label_change_{name}"), |b| {
            b.iter(|| {
                app = (app + 1) % 10;
                black_box(calc.apply(pod(1, app)))
            })
        });
        g.bench_function(format!("policy_rule_change_{name}"), |b| {
            b.iter(|| {
                src = (src + 1) % 10;
                black_box(calc.apply(policy(0, 0, src)))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
