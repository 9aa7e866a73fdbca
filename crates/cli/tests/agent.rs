//! The node agent and an authorizer over real sockets: `alp agent --serve-all` on a copy of
//! `examples/demo`, `alp server` dialling the agent's socket for shop/database, verdicts asked
//! with `alp client`. Policy, pod-label and namespace-label edits each change a verdict without
//! a restart; a broken file leaves everything else in force; `/metrics` reports it all.

mod common;

use std::{path::Path, time::Duration};

use common::{DENIED, OK, eventually, examples, free_addr, sample, scrape, spawn, verdict};

fn edit(dir: &Path, file: &str, from: &str, to: &str) {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{file} has no {from:?}");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn agent_feeds_authorizer_and_edits_take_effect() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    for f in ["cluster.yaml", "policies.yaml"] {
        std::fs::copy(examples().join("demo").join(f), data.join(f)).unwrap();
    }
    let prefix = tmp.path().join("nodeagent");
    let sock = tmp.path().join("authz.sock");
    let metrics_addr = free_addr();
    let _agent = spawn(
        &["agent", "--datastore", &format!("file:{}", data.display()), "--node", "demo-node"]
            .into_iter()
            .chain(["--policy-sync-prefix", prefix.to_str().unwrap(), "--serve-all"])
            .chain(["--metrics-addr", &metrics_addr])
            .collect::<Vec<_>>(),
        &tmp.path().join("agent.log"),
    );
    let sync_sock = prefix.join("mount/shop.database/socket");
    eventually("the agent creates the workload's socket", tmp.path(), || sync_sock.exists());
    let _server = spawn(
        &["server", "-l", sock.to_str().unwrap(), "-d", sync_sock.to_str().unwrap()],
        &tmp.path().join("server.log"),
    );
    let summary = |m: &str, p: &str| verdict(&sock, "shop", "summary", "127.0.0.12", m, p);
    let auditor = || verdict(&sock, "partners", "auditor", "127.0.0.14", "GET", "/admin/stats");
    eventually("in sync with the agent", tmp.path(), || summary("GET", "/records/1") == OK);

    // The example policies.
    assert_eq!(summary("DELETE", "/records/1"), DENIED);
    assert_eq!(summary("GET", "/admin"), DENIED, "the security tier");
    assert_eq!(verdict(&sock, "shop", "customer", "127.0.0.11", "GET", "/records/1"), DENIED);
    assert_eq!(verdict(&sock, "shop", "summary", "127.0.0.11", "GET", "/records/1"), DENIED, "wrong source IP");
    assert_eq!(auditor(), OK, "pass from the security tier, then the namespace selector");

    // A broken file, and a broken edit of a good one, leave everything in force.
    std::fs::write(data.join("broken.yaml"), "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: x, namespace: shop}\nspec: {selector: \"a ==\"}\n").unwrap();
    edit(&data, "policies.yaml", "order: 10\n", "order: 10\n  selector: \"a ==\"\n");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(summary("GET", "/records/1"), OK);
    assert_eq!(auditor(), OK);
    edit(&data, "policies.yaml", "order: 10\n  selector: \"a ==\"\n", "order: 10\n");

    // A policy edit: GET is no longer allowed to summary.
    edit(
        &data,
        "policies.yaml",
        "methods: [GET, POST], paths: [{prefix: /records}]",
        "methods: [POST], paths: [{prefix: /records}]",
    );
    eventually("the policy edit denies GET", tmp.path(), || summary("GET", "/records/1") == DENIED);
    assert_eq!(summary("POST", "/records/1"), OK);

    // A pod-label change: summary's pod no longer matches the source selector's IP set.
    edit(&data, "cluster.yaml", "labels: {app: summary}", "labels: {app: summary-v2}");
    eventually("the pod-label change removes summary from the IP set", tmp.path(), || {
        summary("POST", "/records/1") == DENIED
    });

    // A namespace-label change: partners is no longer external.
    edit(&data, "cluster.yaml", "labels: {env: external}", "labels: {env: internal}");
    eventually("the namespace-label change denies the auditor", tmp.path(), || auditor() == DENIED);

    let metrics = scrape(&metrics_addr).unwrap_or_default();
    assert_eq!(sample(&metrics, "alp_agent_datastore_in_sync"), Some(1.0), "{metrics}");
    assert_eq!(sample(&metrics, "alp_agent_policy_sync_streams"), Some(1.0), "one authorizer: {metrics}");
    assert_eq!(sample(&metrics, "alp_agent_policy_sync_streams_joined_total"), Some(1.0), "{metrics}");
    assert_eq!(sample(&metrics, "alp_agent_local_workloads"), Some(3.0), "the demo's three pods: {metrics}");
    assert_eq!(sample(&metrics, r#"alp_agent_datastore_events_total{event="init_done"}"#), Some(1.0), "{metrics}");
    // The initial resources, then at least the four good edits above.
    let applied = sample(&metrics, r#"alp_agent_datastore_events_total{event="apply"}"#).unwrap_or(0.0);
    assert!(applied >= 4.0 + 3.0, "{metrics}");
    let queued = sample(&metrics, "alp_agent_policy_sync_messages_total").unwrap_or(0.0);
    assert!(queued > 0.0, "{metrics}");
}
