//! `alp agent`: the node agent. Watches the datastore, calculates each local workload's policy
//! and serves it with Felix's policy-sync API on one socket per workload.

use std::{path::PathBuf, process::ExitCode};

use alp_calc::Calculator;
use alp_sync::{ServerConfig, SocketLayout, serve_workload_sockets};
use anyhow::Context;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::datastore::{Datastore, calculate};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Where the resources live: `file:DIR`.
    #[arg(long, env = "ALP_DATASTORE")]
    pub datastore: Datastore,
    /// This node's name: workloads with this `spec.nodeName` are served.
    #[arg(long, env = "ALP_NODE")]
    pub node: String,
    /// Felix's PolicySyncPathPrefix: creds in DIR/creds, sockets in DIR/mount/<uid>/socket.
    #[arg(long, env = "ALP_POLICY_SYNC_PREFIX", default_value = "/var/run/nodeagent")]
    pub policy_sync_prefix: PathBuf,
    /// Without Calico's CSI driver: create DIR/mount/<namespace>.<pod>/socket for every local workload.
    #[arg(long, env = "ALP_SERVE_ALL")]
    pub serve_all: bool,
}

/// Datastore events taken at once; the local workload list is refreshed after each batch.
const EVENT_BATCH: usize = 1024;

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        crate::signals::spawn_shutdown_on_signal(shutdown.clone())?;
        let Datastore::Files(dir) = args.datastore.clone();
        let (events_tx, mut events_rx) = mpsc::channel(4096);
        let watcher = tokio::spawn(alp_datastore_file::watch(
            dir,
            alp_datastore_file::POLL_INTERVAL,
            events_tx,
            shutdown.clone(),
        ));
        let (updates_tx, updates_rx) = mpsc::channel(4096);
        let (workloads_tx, workloads_rx) = watch::channel(Vec::new());
        let layout = if args.serve_all { SocketLayout::ServeAll(workloads_rx) } else { SocketLayout::Creds };
        let server = tokio::spawn(serve_workload_sockets(
            ServerConfig::new(&args.policy_sync_prefix, layout),
            updates_rx,
            shutdown.clone(),
        ));
        let mut calc = Calculator::new(Some(args.node.clone()));
        let mut batch = Vec::new();
        while tokio::select! {
            n = events_rx.recv_many(&mut batch, EVENT_BATCH) => n > 0,
            () = shutdown.cancelled() => false,
        } {
            for event in batch.drain(..) {
                for m in calculate(&mut calc, event) {
                    if updates_tx.send(m).await.is_err() {
                        break;
                    }
                }
            }
            let local: Vec<(String, String)> = calc.workloads().into_iter().map(|w| (w.namespace, w.name)).collect();
            workloads_tx.send_if_modified(|cur| {
                let changed = *cur != local;
                if changed {
                    *cur = local;
                }
                changed
            });
        }
        shutdown.cancel();
        drop(updates_tx);
        let _ = watcher.await;
        server.await.context("policy-sync server task")?.context("policy-sync server")?;
        Ok(ExitCode::SUCCESS)
    })
}
