//! `alp server` (and `dikastes server`): the authorizer.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, sync::Arc};

use alp_authz_server::{Listen, Metrics};
use alp_engine::{Config, Live};
use alp_sync::ClientConfig;
use anyhow::{Context, bail};
use tokio_util::sync::CancellationToken;

use crate::BadInput;

/// Dikastes's default listen socket.
pub const DEFAULT_LISTEN: &str = "/var/run/dikastes/dikastes.sock";

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Where Envoy reaches us: a Unix socket path (replaced, mode 0777) or `tcp://HOST:PORT`.
    #[arg(short = 'l', long, env = "ALP_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: String,
    /// The policy-sync socket of the node agent (Felix or `alp agent`).
    #[arg(short = 'd', long, env = "ALP_DIAL")]
    pub dial: Option<PathBuf>,
    /// Prometheus metrics on this address (`/metrics`).
    #[arg(long, env = "ALP_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Accept SPIFFE identities of this trust domain only (difference D7).
    #[arg(long, env = "ALP_TRUST_DOMAIN")]
    pub trust_domain: Option<String>,
    /// Tokio worker threads.
    #[arg(long, env = "ALP_THREADS", default_value_t = 2)]
    pub threads: usize,
}

/// `DIKASTES_HTTP_BIND_PORT` / `DIKASTES_HTTP_BIND_ADDR` (§4.1): the `/terminate` endpoint.
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
    let Some(dial) = args.dial.clone() else {
        bail!(BadInput("--dial (the policy-sync socket) is required".into()));
    };
    let terminate_addr = dikastes_http_bind()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        let live = Live::new();
        let metrics = Arc::new(Metrics::new(live.clone()));
        let shutdown = CancellationToken::new();
        crate::signals::spawn_shutdown_on_signal(shutdown.clone())?;

        let mut sync = ClientConfig::new(dial);
        sync.engine = Config { trust_domain: args.trust_domain.clone() };
        let sync_task = tokio::spawn(alp_sync::run_client(sync, live.clone(), shutdown.child_token()));

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
