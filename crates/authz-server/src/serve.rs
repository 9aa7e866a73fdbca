//! The gRPC listener: Authorization + Healthz + grpc.health on a Unix socket (as Calico) or TCP.

use std::{
    fmt, io,
    net::{SocketAddr, ToSocketAddrs},
    os::{fd::OwnedFd, unix::fs::PermissionsExt},
    path::{Path, PathBuf},
    str::FromStr,
    sync::Arc,
};

use alp_engine::Live;
use alp_proto::dikastes::grpc::healthz_server::HealthzServer;
use alp_proto::envoy_v2::envoy::service::auth::{
    v2::authorization_server::AuthorizationServer as V2AuthorizationServer,
    v2alpha::authorization_server::AuthorizationServer as V2AlphaAuthorizationServer,
};
use alp_uds::Filtered;
use tokio::net::{TcpListener, UnixListener};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tonic::service::Routes;
use tonic_health::pb::health_server::HealthServer;
use tracing::{info, warn};

use crate::{
    Authorizer, Health, Metrics, V2, V2Alpha,
    conn::{Services, serve_connection},
    socket::ReadRegistered,
};

/// HTTP/2 streams allowed at once on one connection (Envoy multiplexes its checks). It bounds
/// the memory an overloaded sidecar can spend on queued checks: with 16,384 an open-loop
/// overload drove RSS to ~250 MiB (S3); Envoy's ext_authz rarely has more than a few hundred
/// checks in flight per worker.
pub const MAX_CONCURRENT_STREAMS: u32 = 1_024;

/// Where the authorizer listens: a Unix socket path (Calico's `-l`), or `tcp://HOST:PORT`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listen {
    /// A Unix socket at this path.
    Unix(PathBuf),
    /// A TCP address.
    Tcp(SocketAddr),
}

/// A `--listen` value that is neither a path nor `tcp://HOST:PORT`.
#[derive(Debug, thiserror::Error)]
pub enum ListenParseError {
    /// The address is the empty string.
    #[error("empty listen address")]
    Empty,
    /// The value starts with `tcp://` but the rest is not `HOST:PORT`.
    #[error("listen address {0:?}: expected tcp://HOST:PORT")]
    BadTcp(String),
}

impl FromStr for Listen {
    type Err = ListenParseError;

    /// `tcp://HOST:PORT` (an IP literal, `[v6]`, or a name resolved once), `unix://PATH`,
    /// `unix:PATH`, or a bare path.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(hostport) = s.strip_prefix("tcp://") {
            let hostport = hostport.trim_end_matches('/');
            if let Ok(addr) = hostport.parse::<SocketAddr>() {
                return Ok(Listen::Tcp(addr));
            }
            return hostport
                .to_socket_addrs()
                .ok()
                .and_then(|mut addrs| addrs.next())
                .map(Listen::Tcp)
                .ok_or_else(|| ListenParseError::BadTcp(s.to_owned()));
        }
        let path = s.strip_prefix("unix://").or_else(|| s.strip_prefix("unix:")).unwrap_or(s);
        if path.is_empty() {
            return Err(ListenParseError::Empty);
        }
        Ok(Listen::Unix(PathBuf::from(path)))
    }
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Listen::Unix(path) => write!(f, "{}", path.display()),
            Listen::Tcp(addr) => write!(f, "tcp://{addr}"),
        }
    }
}

/// Why a server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A file at the listen path could not be removed before binding.
    #[error("removing the existing file at listen path {path}: {source}")]
    RemoveStale {
        /// The listen path.
        path: PathBuf,
        /// Why removing failed.
        source: io::Error,
    },
    /// The listen address could not be bound.
    #[error("binding {listen}: {source}")]
    Bind {
        /// The listen address as given.
        listen: String,
        /// Why binding failed.
        source: io::Error,
    },
    /// The Unix socket's mode could not be set to 0777 (so Envoy can connect).
    #[error("chmod 0777 on listen socket {path}: {source}")]
    Chmod {
        /// The socket path.
        path: PathBuf,
        /// Why the chmod failed.
        source: io::Error,
    },
    /// The HTTP server failed.
    #[error("HTTP server on {addr}: {source}")]
    Http {
        /// The HTTP server's address.
        addr: SocketAddr,
        /// Why it failed.
        source: io::Error,
    },
}

/// A bound listener, ready for [`serve_on`].
#[derive(Debug)]
pub enum Bound {
    /// A Unix-socket listener.
    Unix {
        /// The bound socket.
        listener: UnixListener,
        /// The socket's path.
        path: PathBuf,
    },
    /// A TCP listener.
    Tcp(TcpListener),
}

impl Bound {
    /// The TCP address actually bound (useful with port 0); `None` for a Unix socket.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Bound::Unix { .. } => None,
            Bound::Tcp(listener) => listener.local_addr().ok(),
        }
    }

    fn describe(&self) -> String {
        match self {
            Bound::Unix { path, .. } => path.display().to_string(),
            Bound::Tcp(listener) => listener.local_addr().map_or_else(|_| "tcp".to_owned(), |a| format!("tcp://{a}")),
        }
    }
}

fn bind_unix(path: &Path) -> Result<Bound, ServeError> {
    // As Calico: delete whatever is at the path (fatal if that fails), listen, chmod 0777.
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(source) => return Err(ServeError::RemoveStale { path: path.to_owned(), source }),
    }
    let listener =
        UnixListener::bind(path).map_err(|source| ServeError::Bind { listen: path.display().to_string(), source })?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777))
        .map_err(|source| ServeError::Chmod { path: path.to_owned(), source })?;
    Ok(Bound::Unix { listener, path: path.to_owned() })
}

/// Binds `listen` (must run inside a tokio runtime).
pub fn bind(listen: &Listen) -> Result<Bound, ServeError> {
    match listen {
        Listen::Unix(path) => bind_unix(path),
        Listen::Tcp(addr) => std::net::TcpListener::bind(addr)
            .and_then(|l| {
                l.set_nonblocking(true)?;
                TcpListener::from_std(l)
            })
            .map(Bound::Tcp)
            .map_err(|source| ServeError::Bind { listen: listen.to_string(), source }),
    }
}

/// Binds `listen` and serves until `shutdown` is cancelled; see [`serve_on`].
pub async fn serve(
    listen: Listen,
    live: Arc<Live>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    serve_on(bind(&listen)?, live, metrics, shutdown).await
}

/// Serves `envoy.service.auth.v3.Authorization` (and v2, v2alpha), `dikastes.Healthz` and `grpc.health.v1.Health`
/// on `bound`. When `shutdown` is cancelled it stops accepting, lets in-flight checks finish (open
/// health watches end), and returns.
pub async fn serve_on(
    bound: Bound,
    live: Arc<Live>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let listen = bound.describe();
    let health = Arc::new(Health::with_shutdown(live.clone(), shutdown.clone()));
    let authorizer = Authorizer::new(live, metrics);
    let routes = Routes::new(V2AuthorizationServer::new(V2(authorizer.clone())))
        .add_service(V2AlphaAuthorizationServer::new(V2Alpha(authorizer.clone())))
        .add_service(HealthzServer::from_arc(health.clone()))
        .add_service(HealthServer::from_arc(health))
        .prepare();
    let services = Arc::new(Services { authorizer, routes });
    info!(%listen, "ext_authz server listening");
    let connections = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            accepted = accept(&bound) => accepted,
            () = shutdown.cancelled() => break,
        };
        match accepted {
            Ok(io) => {
                connections.spawn(serve_connection(io, services.clone(), shutdown.clone()));
            }
            Err(e) => {
                // Out of file descriptors and the like: keep serving the connections we have.
                warn!(%listen, error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
    drop(bound);
    connections.close();
    connections.wait().await;
    info!(%listen, "ext_authz server stopped");
    Ok(())
}

/// The next connection. Both kinds go through the authority filter, so that one connection
/// type is served: a Unix socket's accepts the `:authority` forms gRPC clients send over Unix
/// sockets (grpc-go sends the socket path); TCP stays strict and passes untouched.
async fn accept(bound: &Bound) -> io::Result<Filtered<ReadRegistered>> {
    match bound {
        Bound::Unix { listener, .. } => {
            let fd: OwnedFd = listener.accept().await?.0.into_std()?.into();
            Ok(Filtered::new(ReadRegistered::new(fd)?))
        }
        Bound::Tcp(listener) => {
            let (io, _) = listener.accept().await?;
            io.set_nodelay(true)?;
            let fd: OwnedFd = io.into_std()?.into();
            Ok(Filtered::passthrough(ReadRegistered::new(fd)?))
        }
    }
}
