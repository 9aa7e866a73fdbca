//! The HTTP side: Prometheus `/metrics`, and Dikastes's `/terminate` (served when
//! `DIKASTES_HTTP_BIND_PORT` is set; any method shuts the server down).

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    Router,
    extract::State,
    response::IntoResponse,
    routing::{any, get},
};
use http::{HeaderMap, HeaderValue, header};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::{Metrics, ServeError};

/// What `/terminate` answers, as Dikastes.
pub const TERMINATE_BODY: &str = "terminating Dikastes\n";

/// How long a graceful stop may wait for open HTTP requests (Dikastes: 10 s).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";
const OPENMETRICS_FORMAT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Something `/metrics` can show: the authorizer's [`Metrics`], or any Prometheus registry
/// (the agent's).
pub trait Scrape: Send + Sync + 'static {
    /// The metrics in the OpenMetrics text format.
    fn encode(&self) -> String;
}

impl Scrape for Metrics {
    fn encode(&self) -> String {
        Metrics::encode(self)
    }
}

impl Scrape for prometheus_client::registry::Registry {
    fn encode(&self) -> String {
        let mut out = String::with_capacity(4096);
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, self);
        out
    }
}

async fn metrics(State(metrics): State<Arc<dyn Scrape>>, headers: HeaderMap) -> impl IntoResponse {
    // Prometheus asks for OpenMetrics first; curl and older scrapers get the plain text type.
    let openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    let content_type = if openmetrics { OPENMETRICS_FORMAT } else { TEXT_FORMAT };
    ([(header::CONTENT_TYPE, HeaderValue::from_static(content_type))], metrics.encode())
}

async fn terminate(State(token): State<CancellationToken>) -> &'static str {
    info!("terminate requested over HTTP");
    token.cancel();
    TERMINATE_BODY
}

/// Binds `addr` and serves; see [`serve_http_on`].
pub async fn serve_http(
    addr: SocketAddr,
    metrics: Arc<dyn Scrape>,
    shutdown: CancellationToken,
    terminate: Option<CancellationToken>,
) -> Result<(), ServeError> {
    let listener = TcpListener::bind(addr).await.map_err(|source| ServeError::Http { addr, source })?;
    serve_http_on(listener, metrics, shutdown, terminate).await
}

/// Serves `GET /metrics` and, when `terminate` is given, `/terminate` (any method: answers
/// [`TERMINATE_BODY`] and cancels `terminate`). When `shutdown` is cancelled it stops accepting
/// and waits up to 10 s for open requests.
pub async fn serve_http_on(
    listener: TcpListener,
    metrics: Arc<dyn Scrape>,
    shutdown: CancellationToken,
    terminate_token: Option<CancellationToken>,
) -> Result<(), ServeError> {
    let addr = listener.local_addr().map_err(|source| ServeError::Http { addr: ([0, 0, 0, 0], 0).into(), source })?;
    let mut router = Router::new().route("/metrics", get(self::metrics)).with_state(metrics);
    if let Some(token) = terminate_token {
        router = router.merge(Router::new().route("/terminate", any(terminate)).with_state(token));
    }
    info!(%addr, "HTTP server listening");
    let server = axum::serve(listener, router).with_graceful_shutdown(shutdown.clone().cancelled_owned());
    let grace = async {
        shutdown.cancelled().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    let result = tokio::select! {
        r = server => r,
        () = grace => {
            info!(%addr, "HTTP server: open requests did not finish in time");
            Ok(())
        }
    };
    info!(%addr, "HTTP server stopped");
    result.map_err(|source| ServeError::Http { addr, source })
}
