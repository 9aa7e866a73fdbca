//! Shared by the `server_*` tests: an agent (`serve_workload_sockets`) in a temporary prefix,
//! fed by a channel, and a raw `PolicySync` client over its Unix sockets.

#![allow(dead_code, unused_imports)] // each test binary uses a part of it

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use alp_proto::felix::{SyncRequest, ToDataplane, grpc::policy_sync_client::PolicySyncClient, to_dataplane::Payload};
use alp_sync::MAX_MESSAGE_BYTES;
use alp_sync_server::{LocalWorkload, ServeError, ServerConfig, SocketLayout, serve_workload_sockets};
use alp_test_support::eventually;
use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;
use tonic::{Code, Streaming, transport::Channel};

/// Generous: only a failing test waits this long.
pub const WAIT: Duration = Duration::from_secs(20);

/// The binder's poll in tests (Felix: 100 ms).
pub const POLL: Duration = Duration::from_millis(10);

pub struct Agent {
    pub dir: tempfile::TempDir,
    pub updates_tx: mpsc::Sender<ToDataplane>,
    pub shutdown: CancellationToken,
    pub task: JoinHandle<Result<(), ServeError>>,
}

impl Agent {
    /// Felix's layout: sockets from creds files.
    pub fn creds(queue_limit: usize) -> Agent {
        Agent::start(|_| SocketLayout::Creds, queue_limit)
    }

    /// Serve-all: sockets for the workloads in `workloads_rx`.
    pub fn serve_all(workloads_rx: watch::Receiver<Vec<LocalWorkload>>) -> Agent {
        Agent::start(|_| SocketLayout::ServeAll(workloads_rx), alp_sync_server::DEFAULT_QUEUE_LIMIT)
    }

    fn start(layout: impl FnOnce(&Path) -> SocketLayout, queue_limit: usize) -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = ServerConfig::new(dir.path(), layout(dir.path()));
        cfg.queue_limit = queue_limit;
        cfg.poll_interval = POLL;
        let (updates_tx, updates_rx) = mpsc::channel(16);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(serve_workload_sockets(cfg, updates_rx, shutdown.clone()));
        Agent { dir, updates_tx, shutdown, task }
    }

    pub fn prefix(&self) -> &Path {
        self.dir.path()
    }

    /// Sends global messages as the calculator would.
    pub async fn send(&self, msgs: impl IntoIterator<Item = ToDataplane>) {
        for m in msgs {
            self.updates_tx.send(m).await.unwrap_or_else(|_| panic!("agent stopped"));
        }
    }

    /// Writes `<prefix>/creds/<uid>.json` (atomically) with the given JSON.
    pub fn write_creds_json(&self, uid: &str, json: &str) {
        let creds = self.prefix().join("creds");
        std::fs::create_dir_all(&creds).unwrap();
        let tmp = creds.join(format!(".{uid}.tmp"));
        std::fs::write(&tmp, json).unwrap();
        std::fs::rename(&tmp, creds.join(format!("{uid}.json"))).unwrap();
    }

    /// Writes the creds file of pod `workload` in `namespace` as the CSI driver does.
    pub fn write_creds(&self, uid: &str, namespace: &str, workload: &str) {
        self.write_creds_json(
            uid,
            &format!(
                r#"{{"UID":"{uid}","Workload":"{workload}","Namespace":"{namespace}","ServiceAccount":"default"}}"#
            ),
        );
    }

    pub fn remove_creds(&self, uid: &str) {
        std::fs::remove_file(self.prefix().join("creds").join(format!("{uid}.json"))).unwrap();
    }

    /// `<prefix>/mount/<name>/socket`.
    pub fn socket(&self, name: &str) -> PathBuf {
        self.prefix().join("mount").join(name).join("socket")
    }

    /// Stops the agent; returns how it ended.
    pub async fn stop(self) -> Result<(), ServeError> {
        self.shutdown.cancel();
        let Agent { dir, task, .. } = self;
        let result = tokio::time::timeout(WAIT, task).await.expect("agent did not stop").expect("agent panicked");
        drop(dir);
        result
    }
}

pub async fn until(what: &str, cond: impl FnMut() -> bool) {
    assert!(eventually(WAIT, cond).await, "timed out waiting for: {what}");
}

pub async fn socket_appears(path: &Path) {
    until(&format!("socket {}", path.display()), || path.exists()).await;
}

pub async fn socket_disappears(path: &Path) {
    until(&format!("socket {} removed", path.display()), || !path.exists()).await;
}

pub async fn channel(path: &Path) -> Result<Channel, tonic::transport::Error> {
    alp_uds::channel(path).await
}

pub async fn client(path: &Path) -> PolicySyncClient<Channel> {
    let channel = channel(path).await.unwrap_or_else(|e| panic!("connecting to {}: {e}", path.display()));
    PolicySyncClient::new(channel).max_decoding_message_size(MAX_MESSAGE_BYTES)
}

/// Opens a `Sync` stream on the socket at `path`.
pub async fn open(path: &Path) -> Streaming<ToDataplane> {
    client(path).await.sync(SyncRequest {}).await.unwrap_or_else(|e| panic!("Sync: {e}")).into_inner()
}

/// The next message, `Ok(None)` at a clean end, `Err(code)` when the stream fails.
pub async fn next(stream: &mut Streaming<ToDataplane>) -> Result<Option<ToDataplane>, Code> {
    tokio::time::timeout(WAIT, stream.message()).await.expect("no message in time").map_err(|s| s.code())
}

/// The next `n` messages, described.
pub async fn take(stream: &mut Streaming<ToDataplane>, n: usize) -> Vec<String> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        match next(stream).await {
            Ok(Some(m)) => out.push(describe(&m)),
            other => panic!("message {i} of {n}: {other:?} after {out:?}"),
        }
    }
    out
}

/// Messages up to and including the first InSync, described.
pub async fn through_in_sync(stream: &mut Streaming<ToDataplane>) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        match next(stream).await {
            Ok(Some(m)) => {
                out.push(describe(&m));
                if matches!(m.payload, Some(Payload::InSync(_))) {
                    return out;
                }
            }
            other => panic!("stream ended before InSync: {other:?} after {out:?}"),
        }
    }
}

pub use alp_test_support::{describe, members, mk_ip_set as ip_set, mk_policy as policy, strs};

/// `WorkloadEndpointUpdate` of `<namespace>/<pod>` with one tier of ingress policies and profiles.
pub fn endpoint(workload_id: &str, policies: &[&str], profiles: &[&str]) -> ToDataplane {
    alp_test_support::mk_workload(workload_id, &[("default", policies, &[])], profiles)
}

pub fn endpoint_remove(workload_id: &str) -> ToDataplane {
    alp_test_support::mk_workload_remove(workload_id)
}

/// A profile allowing everything in.
pub fn profile(name: &str) -> ToDataplane {
    alp_test_support::mk_profile(name, vec![alp_test_support::allow_from(&[])], vec![])
}

pub fn service_account(namespace: &str, name: &str) -> ToDataplane {
    alp_test_support::mk_service_account(namespace, name, &[("app", name)])
}

/// A `NamespaceUpdate` whose labels weigh about `bytes`.
pub fn namespace(name: &str, bytes: usize) -> ToDataplane {
    alp_test_support::mk_namespace(name, &[("filler", &"x".repeat(bytes))])
}
