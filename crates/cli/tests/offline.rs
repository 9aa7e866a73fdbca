//! `alp eval` and `alp selector` as acceptance checks drive them: real binary, real files.

use std::{
    io::Write,
    process::{Command, Output, Stdio},
};

fn alp(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_alp"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn file(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_owned()
}

const SYNC: &str = r#"{"activePolicyUpdate":{"id":{"name":"p1","kind":"GlobalNetworkPolicy"},"policy":{"inboundRules":[{"action":"Deny","httpMatch":{"methods":["DELETE"]}},{"action":"allow","srcServiceAccountMatch":{"names":["web"]}}],"outboundRules":[{"action":"allow"}]}}}
{"active_policy_update":{"id":{"name":"staged","kind":"StagedGlobalNetworkPolicy"},"policy":{"inbound_rules":[{"action":"deny"}]}}}
{"workloadEndpointUpdate":{"id":{"workloadId":"ns/pod"},"endpoint":{"tiers":[{"name":"default","ingressPolicies":[{"name":"staged","kind":"StagedGlobalNetworkPolicy"},{"name":"p1","kind":"GlobalNetworkPolicy"}],"egressPolicies":[{"name":"p1","kind":"GlobalNetworkPolicy"}],"defaultAction":"Deny"}],"profileIds":["kns.ns"]}}}
"#;

fn req(sa: &str, method: &str) -> String {
    format!(
        r#"{{"attributes":{{"source":{{"principal":"spiffe://cluster.local/ns/ns/sa/{sa}"}},"request":{{"http":{{"method":"{method}","path":"/"}}}}}}}}"#
    )
}

#[test]
fn eval_prints_one_answer_per_request() {
    let dir = tempfile::tempdir().unwrap();
    let sync = file(&dir, "sync.jsonl", SYNC);
    let reqs = file(&dir, "reqs.jsonl", &[req("web", "GET"), req("web", "DELETE"), req("db", "GET")].join("\n"));
    let o = alp(&["eval", "--sync", &sync, "--requests", &reqs], None);
    assert!(o.status.success(), "{o:?}");
    let lines: Vec<_> = stdout(&o).lines().map(str::to_owned).collect();
    assert_eq!(
        lines,
        [
            r#"{"code":0,"status":"OK","message":"","trace":[{"kind":"GlobalNetworkPolicy","tier":"default","namespace":"","name":"p1","index":1,"action":"allow"}]}"#,
            r#"{"code":7,"status":"PERMISSION_DENIED","message":"","trace":[{"kind":"GlobalNetworkPolicy","tier":"default","namespace":"","name":"p1","index":0,"action":"deny"}]}"#,
            r#"{"code":7,"status":"PERMISSION_DENIED","message":"","trace":[{"kind":"GlobalNetworkPolicy","tier":"default","namespace":"","name":"p1","index":-1,"action":"deny"}]}"#,
        ]
    );
}

#[test]
fn eval_scope_direction_count_repeat_and_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let sync = file(&dir, "sync.jsonl", SYNC);
    let one = file(&dir, "one.json", &req("web", "GET"));
    let staged = alp(&["eval", "--sync", &sync, "--request", &one, "--scope", "staged"], None);
    assert!(stdout(&staged).contains(r#""name":"staged","index":0,"action":"deny""#), "{staged:?}");
    let egress = alp(&["eval", "--sync", &sync, "--request", &one, "--direction", "egress"], None);
    assert!(stdout(&egress).starts_with(r#"{"code":0"#), "{egress:?}");
    let reqs = file(&dir, "reqs.jsonl", &[req("web", "GET"), req("web", "GET"), req("x", "GET")].join("\n"));
    let count = alp(&["eval", "--sync", &sync, "--requests", &reqs, "--count", "--repeat", "50"], None);
    assert_eq!(stdout(&count).trim(), r#"{"OK":2,"PERMISSION_DENIED":1}"#);
    let piped = alp(&["eval", "--sync", "-", "--request", &one], Some(SYNC));
    assert!(stdout(&piped).starts_with(r#"{"code":0"#), "{piped:?}");
}

#[test]
fn eval_names_a_kubernetes_network_policy_and_a_tiers_first_policy_as_calico_does() {
    // shop/database's default tier: a staged policy (order 5), a Kubernetes NetworkPolicy (1000)
    // and a Calico one (2000); none matches a GET from nowhere.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/demo/cluster.yaml"),
        dir.path().join("cluster.yaml"),
    )
    .unwrap();
    file(
        &dir,
        "policies.yaml",
        "apiVersion: projectcalico.org/v3\nkind: StagedNetworkPolicy\nmetadata: {name: db-staged, namespace: shop}\n\
         spec: {stagedAction: Set, order: 5, selector: app == 'database', ingress: [{action: Deny}]}\n---\n\
         apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: db-knp, namespace: shop}\n\
         spec: {podSelector: {matchLabels: {app: database}}, ingress: [{from: [{podSelector: {matchLabels: {app: none}}}]}]}\n---\n\
         apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: db-last, namespace: shop}\n\
         spec: {order: 2000, selector: app == 'database', ingress: [{action: Allow, http: {methods: [POST]}}]}\n",
    );
    let one = file(&dir, "one.json", &req("web", "GET"));
    let datastore = format!("file:{}", dir.path().display());
    let o = alp(&["eval", "--datastore", &datastore, "--workload", "shop/database", "--request", &one], None);
    assert!(o.status.success(), "{o:?}");
    // Calico HEAD's id for the Kubernetes policy (not `knp.default.db-knp`), and the end-of-tier
    // deny attributed to the tier's first in-scope policy (not the staged one, not the last).
    assert_eq!(
        stdout(&o).trim(),
        r#"{"code":7,"status":"PERMISSION_DENIED","message":"","trace":[{"kind":"KubernetesNetworkPolicy","tier":"default","namespace":"shop","name":"db-knp","index":-1,"action":"deny"}]}"#
    );
}

#[test]
fn eval_without_endpoint_or_policy_fails_closed() {
    let dir = tempfile::tempdir().unwrap();
    let empty = file(&dir, "empty.jsonl", "");
    let one = file(&dir, "one.json", &req("web", "GET"));
    let o = alp(&["eval", "--sync", &empty, "--request", &one], None);
    assert!(stdout(&o).starts_with(r#"{"code":13,"status":"INTERNAL","message":"no workload endpoint"#), "{o:?}");
    let missing = file(&dir, "missing.jsonl", SYNC.lines().nth(2).unwrap());
    let o = alp(&["eval", "--sync", &missing, "--request", &one], None);
    assert!(
        stdout(&o).contains(r#""message":"policy gnp/p1 of tier default is missing from the policy store","trace":[]"#),
        "{o:?}"
    );
}

#[test]
fn malformed_input_exits_2_naming_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let bad = file(
        &dir,
        "bad.jsonl",
        &format!("{}\n{{\"ipsetUpdate\":{{\"id\":\"s\",\"type\":\"NOPE\"}}}}\n", SYNC.lines().next().unwrap()),
    );
    let one = file(&dir, "one.json", &req("web", "GET"));
    let o = alp(&["eval", "--sync", &bad, "--request", &one], None);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("line 2") && err.contains("ipsetUpdate.type"), "{err}");

    let sync = file(&dir, "sync.jsonl", SYNC);
    let bad_req =
        file(&dir, "bad.json", r#"{"attributes":{"destination":{"address":{"socketAddress":{"portValue":-1}}}}}"#);
    let o = alp(&["eval", "--sync", &sync, "--request", &bad_req], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("attributes.destination.address.socketAddress.portValue"));

    let o = alp(&["eval", "--sync", &dir.path().join("nope").to_string_lossy(), "--request", &one], None);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn selector_commands() {
    let o = alp(&["selector", "eval", "app == 'web' && !has(canary)", "--labels", r#"{"app":"web"}"#], None);
    assert_eq!(stdout(&o), "true\n");
    let o = alp(&["selector", "eval", "app == 'web'", "--labels", r#"{"app":"db"}"#], None);
    assert_eq!(stdout(&o), "false\n");
    let o = alp(&["selector", "fmt", "b in {'y','x','x'}"], None);
    assert_eq!(stdout(&o), "b in {\"x\", \"y\"}\n");
    let o = alp(&["selector", "id", "all()"], None);
    assert!(stdout(&o).starts_with("s:"));
    let o = alp(&["selector", "fmt", "a == "], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("position"));
    let o = alp(&["selector", "eval", "a == 'b'", "--labels", "[1]"], None);
    assert_eq!(o.status.code(), Some(2));
}
