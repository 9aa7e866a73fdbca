//! [`serve_workload_sockets`]: the processor task (`server.rs`) and the sockets (`binder.rs`),
//! started together and stopped together.

use std::{path::PathBuf, time::Duration};

use alp_proto::felix::ToDataplane;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{
    ServerMetrics,
    binder::{self, LocalWorkload},
    server::{DEFAULT_QUEUE_LIMIT, ServeError, spawn_processor},
};
#[cfg(doc)]
use alp_felix::Processor;

/// Where the per-workload sockets come from.
#[derive(Debug)]
pub enum SocketLayout {
    /// Felix's binder: a socket `<prefix>/mount/<uid>/socket` for every
    /// `<prefix>/creds/<uid>.json`, polled every [`ServerConfig::poll_interval`].
    Creds,
    /// alp's serve-all mode: a socket `<prefix>/mount/<namespace>.<pod>/socket` for every
    /// local workload the calculator reports, without a CSI driver writing creds files.
    ServeAll(watch::Receiver<Vec<LocalWorkload>>),
}

/// How the policy-sync server runs.
#[derive(Debug)]
pub struct ServerConfig {
    /// Felix's `PolicySyncPathPrefix` (`/var/run/nodeagent`).
    pub prefix: PathBuf,
    /// Where the sockets come from.
    pub layout: SocketLayout,
    /// Unread messages a stream may hold before the next update disconnects it.
    pub queue_limit: usize,
    /// How often the creds directory is listed (Felix: 100 ms); in serve-all mode, how soon a
    /// socket that could not be bound is tried again.
    pub poll_interval: Duration,
    /// Counters and gauges the server updates.
    pub metrics: ServerMetrics,
}

impl ServerConfig {
    /// Sockets under `prefix` laid out as `layout`, with the default queue limit and Felix's
    /// poll interval.
    pub fn new(prefix: impl Into<PathBuf>, layout: SocketLayout) -> Self {
        ServerConfig {
            prefix: prefix.into(),
            layout,
            queue_limit: DEFAULT_QUEUE_LIMIT,
            poll_interval: binder::POLL_INTERVAL,
            metrics: ServerMetrics::default(),
        }
    }
}

/// Serves Felix's `PolicySync` to the workloads of this node until `shutdown` (then `Ok`) or
/// until the calculator's channel closes ([`ServeError::UpdatesClosed`]). `updates_rx` carries
/// the calc graph's global stream, which the [`Processor`] splits per workload. On the way out
/// every stream is ended and every socket this server created is removed.
pub async fn serve_workload_sockets(
    cfg: ServerConfig,
    updates_rx: mpsc::Receiver<ToDataplane>,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let stop = shutdown.child_token();
    let (processor, processor_task) = spawn_processor(updates_rx, cfg.queue_limit, cfg.metrics, stop.clone());
    info!(prefix = %cfg.prefix.display(), queue_limit = cfg.queue_limit, "policy-sync server starting");
    let sockets_task = match cfg.layout {
        SocketLayout::Creds => tokio::spawn(binder::run_binder(cfg.prefix, processor, cfg.poll_interval, stop.clone())),
        SocketLayout::ServeAll(workloads_rx) => {
            tokio::spawn(binder::run_serve_all(cfg.prefix, processor, workloads_rx, cfg.poll_interval, stop.clone()))
        }
    };
    let result = processor_task.await.map_err(ServeError::ProcessorTask).and_then(|r| r);
    stop.cancel();
    if let Err(e) = sockets_task.await {
        warn!(error = %e, "policy-sync socket task failed");
    }
    match &result {
        Ok(()) => info!("policy-sync server stopped"),
        Err(e) => warn!(error = %e, "policy-sync server stopped"),
    }
    result
}
