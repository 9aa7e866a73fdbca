//! Calico's own clients against alp, over the Unix sockets they are deployed on:
//! * Calico's real Dikastes (`$ALP_DIKASTES`, Go: `scripts/build-dikastes.sh`) fed by `alp agent`
//!   reaches InSync (its `healthz readiness`), and a policy added or removed in the datastore
//!   reaches it on the same stream;
//! * `dikastes client` and Calico's `healthz` (grpc-go, the socket path as `:authority`) against
//!   `alp server`: the same codes as `alp client` asking the same thing, not ready until synced;
//! * gRPC C-core (Python grpcio, `$ALP_PYTHON` or `<repo>/.venv/bin/python`, running
//!   `interop/grpc_client.py`) with the socket path as `:authority` and with its own default
//!   (the path without its leading '/', percent-encoded), both checked by capturing them: Sync
//!   to in_sync on the agent, Healthz on the server.
//!
//! A missing binary is a failure, never a skip. Dikastes v3.31 answers every Check UNKNOWN (no
//! provider registered; fixed in v3.32), so its verdicts are not compared here: the wire is.

mod common;

use std::{
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

use common::{Kill, alp, answer, eventually, examples, spawn, spawn_binary};

const POLICY_NAME: &str = "interop-probe";
const POLICY: &str = "apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: interop-probe, namespace: shop}
spec:
  order: 50
  selector: app == 'database'
  ingress:
  - action: Allow
    http: {methods: [PATCH]}
";
/// Decides before the demo's security tier: DELETE denied, GET allowed, the rest passed on. Its
/// rules name no caller: a source clause becomes an IP set as well (Felix's conversion), and
/// `dikastes client` sends no address, so it would never match.
const FIRST_TIER: &str = "apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: interop}
spec: {order: 10, defaultAction: Pass}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: interop-first, namespace: shop}
spec:
  tier: interop
  order: 10
  selector: app == 'database'
  ingress:
  - action: Deny
    http: {methods: [DELETE]}
  - action: Allow
    http: {methods: [GET]}
";
/// What Dikastes's sync client logs when its stream fails (then it retries every second).
const BROKEN: &str = "connection to Policy Sync server broken";

/// Calico's dikastes: `$ALP_DIKASTES`. Its `healthz` is beside it.
fn dikastes() -> PathBuf {
    let Some(path) = std::env::var_os("ALP_DIKASTES") else {
        panic!(
            "ALP_DIKASTES is not set: point it at Calico's dikastes (`bash scripts/build-dikastes.sh` builds it \
             and prints its path on its last line; healthz is beside it)"
        );
    };
    let path = PathBuf::from(path);
    assert!(path.is_file(), "ALP_DIKASTES={} is not a file", path.display());
    assert!(healthz_binary(&path).is_file(), "no healthz beside ALP_DIKASTES={}", path.display());
    path
}

fn healthz_binary(dikastes: &Path) -> PathBuf {
    dikastes.with_file_name("healthz")
}

/// Python with grpcio, grpcio-tools and hpack: `$ALP_PYTHON`, else `<repo>/.venv/bin/python`.
fn python() -> PathBuf {
    let path = match std::env::var_os("ALP_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => examples().join("../.venv/bin/python"),
    };
    assert!(
        path.is_file(),
        "no Python at {}: set ALP_PYTHON, or make <repo>/.venv (python3 -m venv .venv && .venv/bin/pip install \
         grpcio==1.85.4 grpcio-tools==1.85.4 hpack==4.2.0; `bash .ci/run` does)",
        path.display()
    );
    path
}

/// Calico's `healthz -dialPath SOCK liveness|readiness`: its exit code (0 healthy, 2 RPC error,
/// 3 unhealthy).
fn healthz(dikastes: &Path, sock: &Path, which: &str) -> i32 {
    let out = Command::new(healthz_binary(dikastes))
        .args(["-dialPath", sock.to_str().unwrap(), which])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    out.status.code().unwrap_or(-1)
}

/// A copy of `examples/demo` in `tmp/data`, with `extra` files beside it.
fn demo_copy(tmp: &Path, extra: &[(&str, &str)]) -> PathBuf {
    let data = tmp.join("data");
    std::fs::create_dir(&data).unwrap();
    for f in ["cluster.yaml", "policies.yaml"] {
        std::fs::copy(examples().join("demo").join(f), data.join(f)).unwrap();
    }
    for (name, text) in extra {
        std::fs::write(data.join(name), text).unwrap();
    }
    data
}

/// `alp agent --serve-all` on `data`, and its policy-sync socket for `workload` (`ns.pod`).
fn spawn_agent(tmp: &Path, data: &Path, workload: &str) -> (Kill, PathBuf) {
    let prefix = tmp.join("nodeagent");
    let agent = spawn(
        &["agent", "--datastore", &format!("file:{}", data.display()), "--node", "demo-node"]
            .into_iter()
            .chain(["--policy-sync-prefix", prefix.to_str().unwrap(), "--serve-all"])
            .collect::<Vec<_>>(),
        &tmp.join("agent.log"),
    );
    (agent, prefix.join(format!("mount/{workload}/socket")))
}

/// The status code in `dikastes client`'s log line `Check response: … status:{code:N …}`
/// (protobuf text omits a zero code, and may put spaces after the colons).
fn dikastes_code(out: &Output) -> u32 {
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "dikastes client failed: {log}");
    let response = log.split_once("Check response:").unwrap_or_else(|| panic!("no Check response in {log}")).1;
    let Some((_, status)) = response.split_once("status:") else { return 0 };
    let status = status.trim_start().strip_prefix('{').unwrap_or_else(|| panic!("no status message in {log}"));
    let Some(code) = status.trim_start().strip_prefix("code:") else { return 0 };
    let code = code.trim_start();
    code[..code.find(|c: char| !c.is_ascii_digit()).unwrap_or(code.len())].parse().unwrap()
}

/// The Dikastes log lines that carry a sync update of `kind` naming `name`.
fn updates(log: &Path, kind: &str, name: &str) -> usize {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines().filter(|l| l.contains("Received sync API Update") && l.contains(kind) && l.contains(name)).count()
}

fn log_has(log: &Path, what: &str) -> bool {
    std::fs::read_to_string(log).unwrap_or_default().contains(what)
}

#[test]
fn real_dikastes_syncs_from_alp_agent() {
    let dikastes = dikastes();
    let tmp = tempfile::tempdir().unwrap();
    let data = demo_copy(tmp.path(), &[]);
    let (_agent, sync_sock) = spawn_agent(tmp.path(), &data, "shop.database");
    eventually("the agent creates the workload's socket", tmp.path(), || sync_sock.exists());
    let sock = tmp.path().join("dikastes.sock");
    let log = tmp.path().join("dikastes.log");
    let args = ["server", "-l", sock.to_str().unwrap(), "-d", sync_sock.to_str().unwrap(), "--debug"];
    let mut server = spawn_binary(&dikastes, &args, &log);

    eventually("Dikastes in sync with alp agent (healthz readiness 0)", tmp.path(), || {
        healthz(&dikastes, &sock, "readiness") == 0
    });
    assert_eq!(healthz(&dikastes, &sock, "liveness"), 0);
    assert!(log_has(&log, "Successfully connected to Policy Sync server"));
    for kind in ["ipset_update", "active_profile_update", "workload_endpoint_update", "namespace_update"] {
        assert!(updates(&log, kind, "") > 0, "no {kind} in the join sequence");
    }
    for policy in ["admin-api", "database-clients"] {
        assert_eq!(updates(&log, "active_policy_update", policy), 1, "{policy} in the join sequence");
    }

    // A policy added, then removed, in the datastore: both reach Dikastes on the same stream.
    std::fs::write(data.join("interop.yaml"), POLICY).unwrap();
    eventually("the new policy reaches Dikastes", tmp.path(), || {
        updates(&log, "active_policy_update", POLICY_NAME) == 1
    });
    assert_eq!(healthz(&dikastes, &sock, "readiness"), 0);
    std::fs::remove_file(data.join("interop.yaml")).unwrap();
    eventually("the policy's removal reaches Dikastes", tmp.path(), || {
        updates(&log, "active_policy_remove", POLICY_NAME) == 1
    });
    assert_eq!(healthz(&dikastes, &sock, "readiness"), 0);

    assert!(server.0.try_wait().unwrap().is_none(), "Dikastes exited");
    assert_eq!(updates(&log, "in_sync", ""), 1, "one stream: InSync once");
    assert!(!log_has(&log, BROKEN), "Dikastes lost its stream:\n{}", std::fs::read_to_string(&log).unwrap());
}

#[test]
fn dikastes_client_and_healthz_against_alp_server() {
    let dikastes = dikastes();
    let tmp = tempfile::tempdir().unwrap();
    let sync_sock = tmp.path().join("nodeagent/mount/shop.database/socket");
    let sock = tmp.path().join("authz.sock");
    let _server = spawn(
        &["server", "-l", sock.to_str().unwrap(), "-d", sync_sock.to_str().unwrap()],
        &tmp.path().join("server.log"),
    );
    eventually("alp server listens", tmp.path(), || sock.exists());

    // No agent yet: alive, not ready.
    assert_eq!(healthz(&dikastes, &sock, "liveness"), 0);
    assert_eq!(healthz(&dikastes, &sock, "readiness"), 3);

    // A first tier that decides some checks before the demo's security tier, whose path rules
    // answer INVALID_ARGUMENT to a check without a path (what `dikastes client` sends).
    let data = demo_copy(tmp.path(), &[("interop.yaml", FIRST_TIER)]);
    let (_agent, agent_sock) = spawn_agent(tmp.path(), &data, "shop.database");
    assert_eq!(agent_sock, sync_sock);
    eventually("alp server in sync (healthz readiness 0)", tmp.path(), || healthz(&dikastes, &sock, "readiness") == 0);
    assert_eq!(healthz(&dikastes, &sock, "liveness"), 0);

    // What `dikastes client` sends: the source principal, the method, no path, no addresses
    // (without --method it panics on a nil docopt value, so every case has one). `alp client` is
    // asked the same (`--path ""`, no addresses). The codes expected are alp's, for the record.
    let cases = [
        ("shop", "summary", "GET", 0),
        ("partners", "auditor", "GET", 0),
        ("shop", "summary", "DELETE", 7),
        ("shop", "customer", "DELETE", 7),
        ("shop", "summary", "POST", 3),
        ("partners", "auditor", "PUT", 3),
    ];
    for (ns, sa, method, code) in cases {
        let args = ["client", ns, sa, "-d", sock.to_str().unwrap(), "--method", method];
        let theirs = dikastes_code(&Command::new(&dikastes).args(args).stdin(Stdio::null()).output().unwrap());
        let (ours, _) = answer(&alp(&[&args[..], &["--path", ""]].concat()));
        eprintln!("{ns}/{sa} {method}: dikastes client {theirs}, alp client {ours}");
        assert_eq!(ours.split(' ').next(), Some(code.to_string().as_str()), "{ns}/{sa} {method}: alp client");
        assert_eq!(theirs, code, "{ns}/{sa} {method}: dikastes client's code, alp client's {ours}");
    }
}

#[test]
fn grpc_core_clients_against_alp() {
    let python = python();
    let tmp = tempfile::tempdir().unwrap();
    // The agent replaces a workload's stream when another joins (as Felix does): the script
    // syncs as shop/summary, the server as shop/database.
    let data = demo_copy(tmp.path(), &[]);
    let (_agent, server_sync_sock) = spawn_agent(tmp.path(), &data, "shop.database");
    let sync_sock = server_sync_sock.parent().unwrap().with_file_name("shop.summary/socket");
    eventually("the agent creates the sockets", tmp.path(), || sync_sock.exists() && server_sync_sock.exists());
    let sock = tmp.path().join("authz.sock");
    let _server = spawn(
        &["server", "-l", sock.to_str().unwrap(), "-d", server_sync_sock.to_str().unwrap()],
        &tmp.path().join("server.log"),
    );
    eventually("alp server in sync", tmp.path(), || {
        alp(&["health", "readiness", "--dial-path", sock.to_str().unwrap()]).status.success()
    });

    let capture = tmp.path().join("capture/mount/shop.database/socket");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/grpc_client.py");
    let out = Command::new(&python)
        .arg(&script)
        .args(["--capture", capture.to_str().unwrap()])
        .args(["--sync", sync_sock.to_str().unwrap(), "--authz", sock.to_str().unwrap()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{text}{}", String::from_utf8_lossy(&out.stderr));
    let line = |prefix: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` line in:\n{text}"))
            .to_owned()
    };

    // What each channel sends as :authority: grpc-go's form, then C-core's own (the path
    // without its leading '/', percent-encoded).
    let capture = capture.to_str().unwrap();
    assert_eq!(line("authority path: "), capture);
    assert_eq!(line("authority default: "), capture.trim_start_matches('/').replace('/', "%2F"));
    for mode in ["path", "default"] {
        let sync = line(&format!("sync {mode}: "));
        for kind in ["active_policy_update", "workload_endpoint_update", "service_account_update"] {
            assert!(sync.contains(kind), "sync {mode}: no {kind}: {sync}");
        }
        assert!(sync.ends_with(" in_sync"), "sync {mode}: {sync}");
        assert_eq!(line(&format!("readiness {mode}: ")), "healthy=True");
    }
    assert!(out.status.success(), "grpc_client.py failed");
}
