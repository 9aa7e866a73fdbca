//! The event helpers of these tests; the etcd harness itself (start, kill, restart, proxy) is
//! `alp_test_support::etcd`, shared with the CLI's tests and the S5 benchmark.

pub use alp_test_support::etcd::*;

use std::time::Duration;

use alp_datastore::Event;
use alp_resources::{Resource, parse_documents};
use tokio::sync::mpsc;

/// The next event, or a failure after [`WAIT`].
pub async fn next(rx: &mut mpsc::Receiver<Event>) -> Event {
    match tokio::time::timeout(WAIT, rx.recv()).await {
        Ok(Some(e)) => e,
        Ok(None) => panic!("the event stream ended"),
        Err(_) => panic!("no event within {WAIT:?}"),
    }
}

/// The next `n` events.
pub async fn take(rx: &mut mpsc::Receiver<Event>, n: usize) -> Vec<Event> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(next(rx).await);
    }
    out
}

/// Asserts that nothing arrives for `quiet`.
pub async fn assert_quiet(rx: &mut mpsc::Receiver<Event>, quiet: Duration) {
    if let Ok(Some(e)) = tokio::time::timeout(quiet, rx.recv()).await {
        panic!("unexpected event {}", summary(std::slice::from_ref(&e)).join(""));
    }
}

/// Waits until the watcher's connection state is `want`.
pub async fn wait_connected(connected: &mut tokio::sync::watch::Receiver<bool>, want: bool) {
    tokio::time::timeout(WAIT, connected.wait_for(|c| *c == want))
        .await
        .unwrap_or_else(|_| panic!("connection state did not become {want} within {WAIT:?}"))
        .unwrap();
}

/// `apply KIND [NS/]NAME [v=V]`, `delete KIND [NS/]NAME`, `init-done`.
pub fn summary(events: &[Event]) -> Vec<String> {
    let labelled = |r: &Resource| match r.metadata().labels.get("v") {
        Some(v) => format!("{} v={v}", r.key()),
        None => r.key().to_string(),
    };
    events.iter().map(|e| e.summary(labelled, ToString::to_string)).collect()
}

pub fn parse(yaml: &str) -> Resource {
    let mut parsed = parse_documents(yaml, "fixture.yaml");
    assert_eq!(parsed.len(), 1, "{yaml}");
    parsed.remove(0).unwrap_or_else(|e| panic!("{e}"))
}

/// A Tier labelled `v`.
pub fn tier(name: &str, v: u32) -> Resource {
    parse(&format!(
        "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {{name: {name}, labels: {{v: '{v}'}}}}\nspec: {{order: {v}}}\n"
    ))
}

/// One resource of every kind the etcd layout holds, each labelled `v`.
pub fn every_kind(v: u32) -> Vec<Resource> {
    let docs = [
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: gnp}\nspec:\n  selector: app == 'web'\n  ingress:\n  - action: Allow\n    http: {methods: [GET], paths: [{prefix: /api}]}\n",
        "apiVersion: projectcalico.org/v3\nkind: StagedGlobalNetworkPolicy\nmetadata: {name: sgnp}\nspec: {stagedAction: Set, selector: all(), ingress: [{action: Deny}]}\n",
        "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: np, namespace: shop}\nspec:\n  tier: sec\n  order: 10\n  selector: app == 'db'\n  ingress:\n  - action: Allow\n    source: {serviceAccounts: {names: [web]}}\n",
        "apiVersion: projectcalico.org/v3\nkind: StagedNetworkPolicy\nmetadata: {name: snp, namespace: shop}\nspec: {stagedAction: Set, selector: all(), egress: [{action: Allow}]}\n",
        "apiVersion: projectcalico.org/v3\nkind: StagedKubernetesNetworkPolicy\nmetadata: {name: sknp, namespace: shop}\nspec:\n  stagedAction: Set\n  podSelector: {matchLabels: {app: web}}\n  ingress:\n  - ports: [{port: 8080}]\n",
        "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: sec}\nspec: {order: 100, defaultAction: Pass}\n",
        "apiVersion: projectcalico.org/v3\nkind: Profile\nmetadata: {name: kns.shop}\nspec: {labelsToApply: {pcns.env: prod, pcns.projectcalico.org/name: shop}}\n",
        "apiVersion: projectcalico.org/v3\nkind: WorkloadEndpoint\nmetadata: {name: node1-k8s-web-eth0, namespace: shop, labels: {app: web}}\nspec:\n  orchestrator: k8s\n  node: node1\n  pod: web\n  endpoint: eth0\n  serviceAccountName: web\n  ipNetworks: [10.0.0.1/32]\n  profiles: [kns.shop, ksa.shop.web]\n",
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata: {name: gns}\nspec: {nets: [192.0.2.0/24]}\n",
        "apiVersion: projectcalico.org/v3\nkind: NetworkSet\nmetadata: {name: ns1, namespace: shop}\nspec: {nets: [198.51.100.0/28]}\n",
    ];
    docs.iter()
        .map(|d| {
            let mut r = parse(d);
            r.metadata_mut().labels.insert("v".to_owned(), v.to_string());
            r
        })
        .collect()
}

/// `resources` as the watcher reports them: sorted by key, with `resourceVersion` = `revision`.
pub fn as_stored(resources: &[Resource], revision: i64) -> Vec<Resource> {
    let mut out: Vec<Resource> = resources
        .iter()
        .cloned()
        .map(|mut r| {
            r.metadata_mut().resource_version = Some(revision.to_string());
            r
        })
        .collect();
    out.sort_by_key(Resource::key);
    out
}
