//! `alp server` (and `dikastes server`): the authorizer.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, sync::Arc};

use alp_authz_server::{Listen, Metrics};
use alp_engine::{Config, LiveWriter};
use alp_sync::ClientConfig;
use anyhow::{Context, bail};
use tokio_util::sync::CancellationToken;

#[cfg(feature = "full")]
use super::datastore::{Datastore, EtcdTls, parse_workload, spawn_watch};
use crate::BadInput;

/// Dikastes's default listen socket.
pub const DEFAULT_LISTEN: &str = "/var/run/dikastes/dikastes.sock";

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Where Envoy reaches us: a Unix socket path (replaced, mode 0777) or `tcp://HOST:PORT`.
    #[arg(short = 'l', long, env = "ALP_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: String,
    /// The policy-sync socket of the node agent (Felix or `alp agent`).
    #[cfg_attr(feature = "full", arg(short = 'd', long, env = "ALP_DIAL", conflicts_with = "datastore"))]
    #[cfg_attr(not(feature = "full"), arg(short = 'd', long, env = "ALP_DIAL"))]
    pub dial: Option<PathBuf>,
    /// Standalone, without an agent: calculate the policy from this datastore (`file:DIR` or
    /// `etcd:http://HOST:PORT[,…]`).
    #[cfg(feature = "full")]
    #[arg(long, env = "ALP_DATASTORE", requires = "workload")]
    pub datastore: Option<Datastore>,
    #[cfg(feature = "full")]
    #[command(flatten)]
    pub etcd: EtcdTls,
    /// Standalone: the workload (`NAMESPACE/POD`) this authorizer serves.
    #[cfg(feature = "full")]
    #[arg(long, env = "ALP_WORKLOAD", value_parser = parse_workload, requires = "datastore")]
    pub workload: Option<String>,
    /// Prometheus metrics on this address (`/metrics`).
    #[arg(long, env = "ALP_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Accept SPIFFE identities of this trust domain only (difference D7).
    #[arg(long, env = "ALP_TRUST_DOMAIN")]
    pub trust_domain: Option<String>,
    /// Threads serving checks (1: a single-threaded runtime; more: a work-stealing one).
    #[arg(long, env = "ALP_THREADS", default_value_t = 1)]
    pub threads: usize,
}

/// `DIKASTES_HTTP_BIND_PORT` (an integer ≥ 1) / `DIKASTES_HTTP_BIND_ADDR` (an IP, default all):
/// where Dikastes serves `/terminate`.
fn dikastes_http_bind() -> anyhow::Result<Option<SocketAddr>> {
    let Ok(port) = std::env::var("DIKASTES_HTTP_BIND_PORT") else { return Ok(None) };
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p >= 1)
        .ok_or_else(|| BadInput(format!("DIKASTES_HTTP_BIND_PORT must be an integer >= 1, not {port:?}")))?;
    let addr = match std::env::var("DIKASTES_HTTP_BIND_ADDR") {
        Ok(a) if !a.is_empty() => {
            a.parse().map_err(|_| BadInput(format!("DIKASTES_HTTP_BIND_ADDR must be an IP address, not {a:?}")))?
        }
        _ => std::net::IpAddr::from([0, 0, 0, 0]),
    };
    Ok(Some(SocketAddr::new(addr, port)))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let listen: Listen = args.listen.parse().map_err(|e| BadInput(format!("--listen {}: {e}", args.listen)))?;
    #[cfg(feature = "full")]
    let datastore = args.datastore.clone().map(|d| d.with_tls(&args.etcd)).transpose()?;
    #[cfg(feature = "full")]
    let standalone_feed = datastore.zip(args.workload.clone());
    #[cfg(not(feature = "full"))]
    let standalone_feed: Option<std::convert::Infallible> = None;
    if args.dial.is_none() && standalone_feed.is_none() {
        bail!(BadInput(if cfg!(feature = "full") {
            "give --dial (the policy-sync socket) or --datastore with --workload".into()
        } else {
            "give --dial (the policy-sync socket); this build has no standalone mode".into()
        }));
    }
    let terminate_addr = dikastes_http_bind()?;
    // One thread (the default): tokio's current-thread scheduler. A sidecar's checks are short
    // and independent, and on one thread they need none of the work-stealing scheduler's
    // cross-thread hand-offs (S3 in BENCHMARKS.md); snapshots are built off this thread.
    let runtime = match args.threads {
        0 | 1 => tokio::runtime::Builder::new_current_thread().enable_all().build(),
        n => tokio::runtime::Builder::new_multi_thread().worker_threads(n).enable_all().build(),
    }
    .context("starting the runtime")?;
    runtime.block_on(async move {
        // The one writer goes to whoever feeds the store; checks, health and metrics read.
        let writer = LiveWriter::new();
        let live = writer.reader();
        let metrics = Arc::new(Metrics::new(live.clone()));
        let shutdown = CancellationToken::new();
        crate::signals::spawn_shutdown_on_signal(shutdown.clone())?;

        let engine = Config { trust_domain: args.trust_domain.clone() };
        let sync_task = match (args.dial.clone(), standalone_feed) {
            (Some(dial), _) => {
                let mut sync = ClientConfig::new(dial);
                sync.engine = engine;
                tokio::spawn(alp_sync::run_client(sync, writer, shutdown.child_token()))
            }
            #[cfg(feature = "full")]
            (None, Some((datastore, workload))) => {
                tokio::spawn(standalone(datastore, workload, engine, writer, shutdown.child_token()))
            }
            #[cfg(not(feature = "full"))]
            (None, Some(never)) => match never {},
            (None, None) => unreachable!("checked above"),
        };

        let mut http = Vec::new();
        if let Some(addr) = args.metrics_addr {
            http.push(tokio::spawn(alp_authz_server::serve_http(addr, metrics.clone(), shutdown.clone(), None)));
        }
        if let Some(addr) = terminate_addr {
            http.push(tokio::spawn(alp_authz_server::serve_http(
                addr,
                metrics.clone(),
                shutdown.clone(),
                Some(shutdown.clone()),
            )));
        }
        let served = alp_authz_server::serve(listen, live, metrics, shutdown.clone()).await;
        shutdown.cancel();
        let _ = sync_task.await;
        for h in http {
            let _ = h.await;
        }
        served.context("serving ext_authz")?;
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(feature = "full")]
/// Standalone: the agent's calculator in-process for one workload, feeding the store directly
/// through the sync client's [`alp_sync::Publisher`].
///
/// Readiness is InSync and a reachable datastore: while etcd is away the last snapshot keeps
/// serving but the authorizer reports itself not ready, as it does when the agent's stream
/// breaks (D5).
async fn standalone(
    datastore: Datastore,
    workload: String,
    engine: Config,
    live: LiveWriter,
    shutdown: CancellationToken,
) {
    let (events_tx, mut events_rx) = tokio::sync::mpsc::channel(4096);
    let (watcher, mut connected_rx) = spawn_watch(datastore, events_tx, shutdown.clone());
    let mut calc = alp_calc::Calculator::new(None);
    let (mut feed, first) = alp_felix::WorkloadFeed::new(&workload);
    let mut publisher = alp_sync::Publisher::new(live, engine);
    let mut pending = first;
    loop {
        for m in pending.drain(..) {
            publisher.apply(&m);
        }
        publisher.set_connected(*connected_rx.borrow_and_update());
        if let Err(e) = publisher.publish().await {
            // The store went with the builder: the last snapshot keeps serving, not ready.
            tracing::error!(error = %e, "building the policy snapshot failed; standalone feed stopped");
            break;
        }
        let event = tokio::select! {
            e = events_rx.recv() => e,
            Ok(()) = connected_rx.changed() => continue,
            () = shutdown.cancelled() => None,
        };
        let Some(event) = event else { break };
        let mut global = calc.apply_event(event);
        while let Ok(more) = events_rx.try_recv() {
            global.extend(calc.apply_event(more));
        }
        pending = feed.apply(global);
    }
    publisher.set_connected(false);
    let _ = watcher.await;
}
