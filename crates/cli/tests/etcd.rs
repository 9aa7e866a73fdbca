//! The `alp` binary on a real etcd (`alp_test_support::etcd`: Debian's etcd on free loopback
//! ports, a temporary data directory): `alp apply`, `get` and `delete`; `alp eval` and `alp calc`
//! giving exactly what they give from files; and `alp agent` on etcd feeding authorizers through
//! live changes, an etcd kill and restart, corrupt values and a compaction past its revision.

mod common;

use std::path::{Path, PathBuf};

use common::{
    DENIED, Kill, OK, alp, client, eventually, examples, free_addr, sample, scrape, spawn, stderr, stdout, verdict,
};

use alp_datastore_etcd::PREFIX;
use alp_resources::{Resource, parse_documents};
use alp_test_support::etcd::{Etcd, Proxy, raw_client};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// `alp ARGS --datastore DS`, which must succeed; its stdout.
fn ok(args: &[&str], ds: &str) -> String {
    let o = alp(&[args, &["--datastore", ds]].concat());
    assert!(o.status.success(), "alp {args:?}: {o:?}");
    stdout(&o)
}

fn parse(text: &str) -> Vec<Resource> {
    parse_documents(text, "output.yaml").into_iter().map(|r| r.unwrap_or_else(|e| panic!("{e}\n{text}"))).collect()
}

fn names(resources: &[Resource]) -> Vec<String> {
    resources.iter().map(|r| r.key().to_string()).collect()
}

fn without_version(mut resources: Vec<Resource>) -> Vec<Resource> {
    resources.iter_mut().for_each(|r| r.metadata_mut().resource_version = None);
    resources
}

/// A CheckRequest for the demo's database (127.0.0.13:8443) in proto3 JSON.
fn check(ns: &str, sa: &str, ip: &str, method: &str, path: &str) -> String {
    format!(
        r#"{{"attributes":{{"source":{{"address":{{"socketAddress":{{"address":"{ip}","portValue":40000}}}},"principal":"spiffe://cluster.local/ns/{ns}/sa/{sa}"}},"destination":{{"address":{{"socketAddress":{{"address":"127.0.0.13","portValue":8443}}}}}},"request":{{"http":{{"method":"{method}","path":"{path}"}}}}}}}}"#
    )
}

#[test]
fn eval_and_calc_from_etcd_match_the_files() {
    let rt = runtime();
    let etcd = rt.block_on(Etcd::start());
    let ds = format!("etcd:{}", etcd.url());
    let (files, in_etcd) = (examples().join("demo"), examples().join("demo-etcd"));
    assert_eq!(
        std::fs::read_to_string(files.join("policies.yaml")).unwrap(),
        std::fs::read_to_string(in_etcd.join("policies.yaml")).unwrap(),
        "the etcd form of the demo has the same policies"
    );
    assert_eq!(ok(&["apply", "-f", in_etcd.to_str().unwrap()], &ds), "Successfully applied 15 resource(s)\n");

    let tmp = tempfile::tempdir().unwrap();
    let requests = tmp.path().join("requests.jsonl");
    let checks = [
        check("shop", "summary", "127.0.0.12", "GET", "/records/1"),
        check("shop", "summary", "127.0.0.12", "POST", "/records"),
        check("shop", "summary", "127.0.0.12", "DELETE", "/records/1"),
        check("shop", "summary", "127.0.0.12", "GET", "/admin"),
        check("shop", "summary", "127.0.0.11", "GET", "/records/1"),
        check("shop", "customer", "127.0.0.11", "GET", "/records/1"),
        check("partners", "auditor", "127.0.0.14", "GET", "/records/audit"),
        check("partners", "auditor", "127.0.0.14", "GET", "/admin/stats"),
        check("partners", "auditor", "127.0.0.14", "GET", "/records/1"),
        check("shop", "auditor", "127.0.0.14", "GET", "/admin/stats"),
    ];
    std::fs::write(&requests, checks.join("\n")).unwrap();
    let file_ds = format!("file:{}", files.display());
    let eval = |ds: &str| {
        let o =
            alp(&["eval", "--datastore", ds, "--workload", "shop/database", "--requests", requests.to_str().unwrap()]);
        assert!(o.status.success() && stderr(&o).is_empty(), "{ds}: {o:?}");
        stdout(&o)
    };
    let (from_files, from_etcd) = (eval(&file_ds), eval(&ds));
    assert_eq!(from_etcd, from_files);
    let codes: Vec<&str> = from_etcd.lines().map(|l| &l[..l.find(',').unwrap()]).collect();
    let (allowed, denied) = (r#"{"code":0"#, r#"{"code":7"#);
    assert_eq!(
        codes,
        [allowed, allowed, denied, denied, denied, denied, allowed, allowed, denied, denied],
        "{from_etcd}"
    );

    // What each local workload receives is the same, message for message.
    for workload in ["shop/database", "shop/summary", "shop/customer", "partners/auditor"] {
        let calc = |ds: &str| ok(&["calc", "--workload", workload], ds);
        let from_etcd = calc(&ds);
        assert!(from_etcd.lines().count() > 5, "{workload}: {from_etcd}");
        assert_eq!(from_etcd, calc(&file_ds), "{workload}");
    }
}

#[test]
fn apply_get_delete_round_trip() {
    let rt = runtime();
    let etcd = rt.block_on(Etcd::start());
    let ds = format!("etcd:{}", etcd.url());
    let get = |args: &[&str]| parse(&ok(&[&["get"], args].concat(), &ds));
    let tmp = tempfile::tempdir().unwrap();

    // One bad document among good ones: every problem named, exit 2, nothing written.
    let input = tmp.path().join("input");
    std::fs::create_dir_all(input.join("sub")).unwrap();
    std::fs::write(
        input.join("good.yaml"),
        "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: t1}\nspec: {order: 5}\n---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: g1}\nspec: {selector: all()}\n",
    )
    .unwrap();
    std::fs::write(
        input.join("sub/bad.yaml"),
        "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: t2}\n---\napiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: np1, namespace: shop}\nspec: {selector: \"app ==\"}\n",
    )
    .unwrap();
    std::fs::write(input.join("notes.txt"), "not a resource file").unwrap();
    let o = alp(&["apply", "-f", input.to_str().unwrap(), "--datastore", &ds]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let err = stderr(&o);
    assert!(err.contains("sub/bad.yaml: document 2") && err.contains("NetworkPolicy shop/np1: spec.selector"), "{err}");
    assert!(err.contains("nothing written"), "{err}");
    assert!(get(&["tiers"]).is_empty() && get(&["gnp"]).is_empty(), "nothing was written");

    // Kubernetes kinds have no etcd key: refused, naming file and resource.
    let cluster = examples().join("demo/cluster.yaml");
    let o = alp(&["apply", "-f", cluster.to_str().unwrap(), "--datastore", &ds]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let err = stderr(&o);
    for resource in ["Namespace shop", "ServiceAccount shop/summary", "Pod shop/database", "Pod partners/auditor"] {
        assert!(err.contains(&format!("cluster.yaml: {resource}: kind ")), "{resource}: {err}");
    }
    assert!(err.contains("has no etcd key"), "{err}");
    let o = alp(&["get", "pods", "-A", "--datastore", &ds]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");

    // The demo in Calico's layout, read back.
    let demo = examples().join("demo-etcd");
    assert_eq!(ok(&["apply", "-f", demo.to_str().unwrap()], &ds), "Successfully applied 15 resource(s)\n");
    let written: Vec<Resource> = ["cluster.yaml", "policies.yaml"]
        .iter()
        .flat_map(|f| parse(&std::fs::read_to_string(demo.join(f)).unwrap()))
        .collect();
    let gnp = get(&["globalnetworkpolicy", "admin-api"]);
    let original: Vec<Resource> = written.iter().filter(|r| r.name() == "admin-api").cloned().collect();
    assert_eq!(without_version(gnp.clone()), original, "the stored policy is the one applied");
    assert!(gnp[0].metadata().resource_version.is_some(), "etcd's mod revision is the resourceVersion");
    assert!(get(&["np"]).is_empty(), "without -n, namespaced kinds are read from `default`");
    let in_shop = get(&["networkpolicies", "-n", "shop"]);
    assert_eq!(
        names(&in_shop),
        [
            "NetworkPolicy shop/customer-public",
            "NetworkPolicy shop/database-clients",
            "NetworkPolicy shop/summary-readers"
        ]
    );
    assert_eq!(get(&["np", "-A"]), in_shop);
    assert_eq!(names(&get(&["wep", "-A"])).len(), 4);
    assert_eq!(get(&["profiles"]).len(), 6);
    let json = ok(&["get", "wep", "-n", "shop", "-o", "json"], &ds);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["kind"], "WorkloadEndpointList");
    assert_eq!(value["items"].as_array().map(Vec::len), Some(3), "{json}");
    let o = alp(&["get", "tier", "nope", "--datastore", &ds]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("resource does not exist: Tier nope"), "{o:?}");

    // `alp get` output applies again, unchanged.
    let listed = tmp.path().join("listed.yaml");
    std::fs::write(&listed, ok(&["get", "np", "-n", "shop"], &ds)).unwrap();
    assert_eq!(
        ok(&["apply", "-f", listed.to_str().unwrap()], &ds),
        "Successfully applied 3 'NetworkPolicy' resource(s)\n"
    );
    assert_eq!(without_version(get(&["np", "-n", "shop"])), without_version(in_shop));

    // Delete: gone; deleting again reports every missing key and exits 1.
    let policies = demo.join("policies.yaml");
    assert_eq!(ok(&["delete", "-f", policies.to_str().unwrap()], &ds), "Successfully deleted 5 resource(s)\n");
    assert!(get(&["np", "-A"]).is_empty() && get(&["gnp"]).is_empty() && get(&["tiers"]).is_empty());
    assert_eq!(get(&["profiles"]).len(), 6, "the rest is untouched");
    let o = alp(&["delete", "-f", policies.to_str().unwrap(), "--datastore", &ds]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert_eq!(stdout(&o), "Partial success: deleted 0 out of 5 resource(s)\n");
    assert!(stderr(&o).contains("resource does not exist: GlobalNetworkPolicy admin-api"), "{o:?}");

    // Certificates need https:// endpoints; the file datastore is not written by apply.
    let o = alp(&["get", "tiers", "--datastore", &ds, "--etcd-ca", "/nonexistent/ca.crt"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("need https:// endpoints"), "{o:?}");
    let o = alp(&["apply", "-f", policies.to_str().unwrap(), "--datastore", "file:/tmp"]);
    assert_eq!(o.status.code(), Some(2));
}

/// `alp health readiness`'s exit code.
fn readiness(sock: &Path) -> Option<i32> {
    alp(&["health", "readiness", "--dial-path", sock.to_str().unwrap()]).status.code()
}

/// Applies `text` (one or more documents) with `alp apply`.
fn apply_yaml(dir: &Path, ds: &str, text: &str) {
    let file = dir.join("change.yaml");
    std::fs::write(&file, text).unwrap();
    ok(&["apply", "-f", file.to_str().unwrap()], ds);
}

/// `examples/demo-etcd`'s document that contains `marker`.
fn document(file: &str, marker: &str) -> String {
    let text = std::fs::read_to_string(examples().join("demo-etcd").join(file)).unwrap();
    let doc = text.split("\n---\n").find(|d| d.contains(marker));
    doc.unwrap_or_else(|| panic!("{file}: no {marker}")).to_owned()
}

/// [`document`] with `from` replaced by `to`.
fn edited(file: &str, marker: &str, from: &str, to: &str) -> String {
    let doc = document(file, marker);
    assert!(doc.contains(from), "{file}: {marker} has no {from:?}");
    doc.replacen(from, to, 1)
}

/// `alp agent` on `ds` for demo-node (serve-all, metrics) and `alp server` dialling the
/// database's socket; logs in `tmp`.
struct Node {
    tmp: tempfile::TempDir,
    sock: PathBuf,
    metrics: String,
    _agent: Kill,
    _server: Kill,
}

impl Node {
    fn start(ds: &str) -> Node {
        let tmp = tempfile::tempdir().unwrap();
        let logs = tmp.path();
        let prefix = logs.join("nodeagent");
        let metrics = free_addr();
        let agent = spawn(
            &["agent", "--datastore", ds, "--node", "demo-node", "--serve-all", "--metrics-addr", &metrics]
                .into_iter()
                .chain(["--policy-sync-prefix", prefix.to_str().unwrap()])
                .collect::<Vec<_>>(),
            &logs.join("agent.log"),
        );
        let sync_sock = prefix.join("mount/shop.database/socket");
        eventually("the agent creates the database's socket", logs, || sync_sock.exists());
        let sock = logs.join("authz.sock");
        let server = spawn(
            &["server", "-l", sock.to_str().unwrap(), "-d", sync_sock.to_str().unwrap()],
            &logs.join("server.log"),
        );
        Node { tmp, sock, metrics, _agent: agent, _server: server }
    }

    fn metric(&self, series: &str) -> Option<f64> {
        sample(&scrape(&self.metrics)?, series)
    }

    /// `alp_agent_datastore_events_total` for `event`.
    fn events(&self, event: &str) -> Option<f64> {
        self.metric(&format!("alp_agent_datastore_events_total{{event=\"{event}\"}}"))
    }
}

#[test]
fn agent_on_etcd_feeds_authorizers_through_changes_and_an_etcd_restart() {
    let rt = runtime();
    let mut etcd = rt.block_on(Etcd::start());
    let ds = format!("etcd:{}", etcd.url());
    ok(&["apply", "-f", examples().join("demo-etcd").to_str().unwrap()], &ds);

    let node = Node::start(&ds);
    let (logs, sock) = (node.tmp.path(), node.sock.clone());
    // A standalone authorizer on the same etcd, with the calculator in-process.
    let standalone = logs.join("standalone.sock");
    let _standalone = spawn(
        &["server", "-l", standalone.to_str().unwrap(), "--datastore", &ds, "--workload", "shop/database"],
        &logs.join("standalone.log"),
    );

    let summary = |sock: &Path, method: &str, path: &str| client(sock, "shop", "summary", "127.0.0.12", method, path);
    let auditor = || verdict(&sock, "partners", "auditor", "127.0.0.14", "GET", "/admin/stats");
    eventually("in sync through the agent", logs, || summary(&sock, "GET", "/records/1").0 == OK);
    eventually("in sync standalone", logs, || summary(&standalone, "GET", "/records/1").0 == OK);
    assert_eq!(readiness(&standalone), Some(0));
    assert_eq!(summary(&sock, "DELETE", "/records/1").0, DENIED);
    let (code, trace) = summary(&sock, "GET", "/admin");
    assert!(code == DENIED && trace.contains("admin-api"), "the security tier: {trace}");
    assert_eq!(verdict(&sock, "shop", "customer", "127.0.0.11", "GET", "/records/1"), DENIED);
    assert_eq!(auditor(), OK);
    let metric = |series: &str| node.metric(series);
    assert_eq!(metric("alp_agent_datastore_connected"), Some(1.0));
    assert_eq!(metric("alp_agent_datastore_in_sync"), Some(1.0));
    assert_eq!(metric("alp_agent_local_workloads"), Some(3.0), "the WEPs on demo-node");

    // Live changes of a policy, a WEP's labels, a profile's labels, and a delete.
    apply_yaml(logs, &ds, &edited("policies.yaml", "database-clients", "methods: [GET, POST]", "methods: [POST]"));
    eventually("the policy edit denies GET", logs, || summary(&sock, "GET", "/records/1").0 == DENIED);
    assert_eq!(summary(&sock, "POST", "/records/1").0, OK);
    apply_yaml(logs, &ds, &edited("cluster.yaml", "k8s-summary-eth0", "app: summary", "app: summary-v2"));
    eventually("the WEP label change takes summary out of the IP set", logs, || {
        summary(&sock, "POST", "/records/1").0 == DENIED
    });
    apply_yaml(logs, &ds, &edited("cluster.yaml", "kns.partners", "pcns.env: external", "pcns.env: internal"));
    eventually("the namespace profile's labels deny the auditor", logs, || auditor() == DENIED);
    let gnp = logs.join("admin-api.yaml");
    std::fs::write(&gnp, document("policies.yaml", "name: admin-api")).unwrap();
    ok(&["delete", "-f", gnp.to_str().unwrap()], &ds);
    eventually("the deleted policy is out of the security tier", logs, || {
        let (code, trace) = summary(&sock, "GET", "/admin");
        code == DENIED && !trace.contains("admin-api") && trace.contains("database-clients")
    });
    eventually("the standalone authorizer sees the same", logs, || {
        summary(&standalone, "POST", "/records/1").0 == DENIED
    });

    // etcd killed: both authorizers answer from the last state; the agent reports it.
    etcd.stop();
    eventually("the agent notices etcd is gone", logs, || metric("alp_agent_datastore_connected") == Some(0.0));
    eventually("the standalone authorizer is not ready", logs, || readiness(&standalone) == Some(3));
    assert_eq!(summary(&sock, "POST", "/records/1").0, DENIED);
    assert_eq!(summary(&standalone, "POST", "/records/1").0, DENIED);
    assert_eq!(auditor(), DENIED);
    assert_eq!(readiness(&sock), Some(0), "the agent's stream is intact");

    // etcd back: a change made right after the restart arrives, through both paths.
    rt.block_on(etcd.restart());
    apply_yaml(logs, &ds, &document("cluster.yaml", "k8s-summary-eth0"));
    eventually("the agent reconnects", logs, || metric("alp_agent_datastore_connected") == Some(1.0));
    eventually("the post-restart change reaches the agent's authorizer", logs, || {
        summary(&sock, "POST", "/records/1").0 == OK
    });
    eventually("… and the standalone one", logs, || summary(&standalone, "POST", "/records/1").0 == OK);
    eventually("the standalone authorizer is ready again", logs, || readiness(&standalone) == Some(0));
    assert_eq!(summary(&sock, "GET", "/records/1").0, DENIED, "the earlier policy edit holds");
    assert_eq!(auditor(), DENIED, "the earlier profile edit holds");

    // Nothing lost or repeated: the 15 resources, 4 changes and a delete, after one listing.
    assert_eq!(node.events("apply"), Some(15.0 + 4.0));
    assert_eq!(node.events("delete"), Some(1.0));
    assert_eq!(node.events("init_done"), Some(1.0));
}

#[test]
fn agent_relists_after_a_compaction_and_skips_corrupt_values() {
    // Multi-threaded: the proxy between etcd and the agent runs on the runtime's workers.
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let etcd = rt.block_on(Etcd::start());
    let proxy = rt.block_on(Proxy::start(etcd.addr()));
    let direct = format!("etcd:{}", etcd.url());
    ok(&["apply", "-f", examples().join("demo-etcd").to_str().unwrap()], &direct);
    let mut raw = rt.block_on(raw_client(&etcd));
    let mut put = |path: &str, value: &str| {
        let key = format!("{PREFIX}{path}");
        rt.block_on(raw.put(key, value, None)).unwrap().header().map(|h| h.revision()).unwrap()
    };
    put("networkpolicies/shop/broken", "{not json");

    let node = Node::start(&format!("etcd:{}", proxy.url()));
    let (logs, sock) = (node.tmp.path(), node.sock.clone());
    let summary = |method: &str, path: &str| client(&sock, "shop", "summary", "127.0.0.12", method, path);
    eventually("in sync past the corrupt value", logs, || summary("GET", "/records/1").0 == OK);
    assert_eq!(node.events("apply"), Some(15.0));

    // A good key turning bad keeps its last good policy; the next good write arrives.
    put("networkpolicies/shop/database-clients", r#"{"kind":"NetworkPolicy","spec":{"selector":"app =="}}"#);
    apply_yaml(logs, &direct, &edited("policies.yaml", "database-clients", "methods: [GET, POST]", "methods: [POST]"));
    eventually("the policy edit after the corrupt value denies GET", logs, || summary("GET", "/records/1").0 == DENIED);
    assert_eq!(summary("POST", "/records/1").0, OK);

    // Cut off from etcd while a WEP changes, a policy goes and history is compacted past the agent.
    proxy.cut();
    eventually("the agent notices", logs, || node.metric("alp_agent_datastore_connected") == Some(0.0));
    apply_yaml(logs, &direct, &edited("cluster.yaml", "k8s-summary-eth0", "app: summary", "app: summary-v2"));
    let gnp = logs.join("admin-api.yaml");
    std::fs::write(&gnp, document("policies.yaml", "name: admin-api")).unwrap();
    ok(&["delete", "-f", gnp.to_str().unwrap()], &direct);
    let latest = put(
        "globalnetworksets/unrelated",
        r#"{"apiVersion":"projectcalico.org/v3","kind":"GlobalNetworkSet","metadata":{"name":"unrelated"},"spec":{"nets":["192.0.2.0/24"]}}"#,
    );
    rt.block_on(raw.compact(latest, None)).unwrap();
    assert_eq!(summary("POST", "/records/1").0, OK, "the last state is served meanwhile");

    proxy.restore();
    eventually("the agent lists again", logs, || node.metric("alp_agent_datastore_connected") == Some(1.0));
    eventually("the WEP change arrives", logs, || summary("POST", "/records/1").0 == DENIED);
    let (code, trace) = summary("GET", "/admin");
    assert!(code == DENIED && !trace.contains("admin-api"), "the deleted policy is gone: {trace}");
    let log = std::fs::read_to_string(logs.join("agent.log")).unwrap();
    assert!(log.contains("compacted past the watch; listing again"), "{log}");
    // The new listing sent only the difference: the WEP, the new network set and the delete.
    assert_eq!(node.events("apply"), Some(15.0 + 1.0 + 2.0));
    assert_eq!(node.events("delete"), Some(1.0));
    assert_eq!(node.events("init_done"), Some(1.0));
}
