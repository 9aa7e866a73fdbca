//! `alp agent`: the node agent. Watches the datastore, calculates each local workload's policy
//! and serves it with Felix's policy-sync API on one socket per workload.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, sync::Arc};

use alp_calc::Calculator;
use alp_datastore::Event;
use alp_sync_server::{ServerConfig, SocketLayout, serve_workload_sockets};
use anyhow::Context;
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::datastore::{Datastore, EtcdTls, spawn_watch};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Where the resources live: `file:DIR` or `etcd:http://HOST:PORT[,…]`.
    #[arg(long, env = "ALP_DATASTORE")]
    pub datastore: Datastore,
    #[command(flatten)]
    pub etcd: EtcdTls,
    /// This node's name: its workloads are served (Pods by `spec.nodeName`, WorkloadEndpoints by `spec.node`).
    #[arg(long, env = "ALP_NODE")]
    pub node: String,
    /// Felix's PolicySyncPathPrefix: creds in DIR/creds, sockets in DIR/mount/<uid>/socket.
    #[arg(long, env = "ALP_POLICY_SYNC_PREFIX", default_value = "/var/run/nodeagent")]
    pub policy_sync_prefix: PathBuf,
    /// Without Calico's CSI driver: create DIR/mount/<namespace>.<pod>/socket for every local workload.
    #[arg(long, env = "ALP_SERVE_ALL")]
    pub serve_all: bool,
    /// Prometheus metrics on this address (`/metrics`).
    #[arg(long, env = "ALP_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct EventLabel {
    event: &'static str,
}

/// The agent's own metrics; the policy-sync server registers its own beside them.
#[derive(Debug, Default)]
struct AgentMetrics {
    events: Family<EventLabel, Counter>,
    in_sync: Gauge,
    connected: Gauge,
    workloads: Gauge,
    published: Counter,
}

impl AgentMetrics {
    fn register(&self, registry: &mut Registry) {
        registry.register("alp_agent_datastore_events", "Datastore changes applied, by event", self.events.clone());
        registry.register(
            "alp_agent_datastore_in_sync",
            "1 once the datastore's initial listing is complete",
            self.in_sync.clone(),
        );
        registry.register(
            "alp_agent_datastore_connected",
            "1 while the datastore is reachable (etcd: a watch is established; files: always)",
            self.connected.clone(),
        );
        registry.register("alp_agent_local_workloads", "Workloads of this node", self.workloads.clone());
        registry.register("alp_agent_calculator_messages", "Messages the calculator published", self.published.clone());
    }

    fn event(&self, event: &Event) {
        let name = match event {
            Event::Apply(_) => "apply",
            Event::Delete(_) => "delete",
            Event::InitDone => {
                self.in_sync.set(1);
                "init_done"
            }
        };
        self.events.get_or_create(&EventLabel { event: name }).inc();
    }
}

/// Datastore events taken at once; the local workload list is refreshed after each batch.
const EVENT_BATCH: usize = 1024;

/// Keeps `gauge` at 1 while the datastore is reachable, 0 while not.
async fn follow_connected(gauge: Gauge, mut connected_rx: watch::Receiver<bool>) {
    loop {
        gauge.set(i64::from(*connected_rx.borrow_and_update()));
        if connected_rx.changed().await.is_err() {
            return;
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let datastore = args.datastore.clone().with_tls(&args.etcd)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        crate::signals::spawn_shutdown_on_signal(shutdown.clone())?;
        let (events_tx, mut events_rx) = mpsc::channel(4096);
        let (watcher, connected_rx) = spawn_watch(datastore, events_tx, shutdown.clone());
        let (updates_tx, updates_rx) = mpsc::channel(4096);
        let (workloads_tx, workloads_rx) = watch::channel(Vec::new());
        let layout = if args.serve_all { SocketLayout::ServeAll(workloads_rx) } else { SocketLayout::Creds };
        let config = ServerConfig::new(&args.policy_sync_prefix, layout);
        let metrics = AgentMetrics::default();
        tokio::spawn(follow_connected(metrics.connected.clone(), connected_rx));
        let mut http = None;
        if let Some(addr) = args.metrics_addr {
            let mut registry = Registry::default();
            metrics.register(&mut registry);
            config.metrics.register(&mut registry);
            http = Some(tokio::spawn(alp_authz_server::serve_http(addr, Arc::new(registry), shutdown.clone(), None)));
        }
        let server = tokio::spawn(serve_workload_sockets(config, updates_rx, shutdown.clone()));
        let mut calc = Calculator::new(Some(args.node.clone()));
        let mut batch = Vec::new();
        while tokio::select! {
            n = events_rx.recv_many(&mut batch, EVENT_BATCH) => n > 0,
            () = shutdown.cancelled() => false,
        } {
            for event in batch.drain(..) {
                metrics.event(&event);
                let messages = calc.apply_event(event);
                metrics.published.inc_by(messages.len() as u64);
                for m in messages {
                    if updates_tx.send(m).await.is_err() {
                        break;
                    }
                }
            }
            let local: Vec<(String, String)> = calc.workloads().into_iter().map(|w| (w.namespace, w.name)).collect();
            metrics.workloads.set(i64::try_from(local.len()).unwrap_or(i64::MAX));
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
        if let Some(http) = http {
            http.await.context("metrics server task")?.context("metrics server")?;
        }
        Ok(ExitCode::SUCCESS)
    })
}
