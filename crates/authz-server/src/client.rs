//! Dialing the authorizer (for `alp client` and `alp health`).

use tonic::transport::{Channel, Endpoint};

/// A target that could not be dialled.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The target is the empty string.
    #[error("empty target")]
    Empty,
    /// Dialling the target failed.
    #[error("target {target:?}: {source}")]
    Transport {
        /// The target as given.
        target: String,
        /// Why the transport failed.
        source: tonic::transport::Error,
    },
}

/// Connects to `target`: `tcp://HOST:PORT`, or a Unix socket path (bare, `unix://PATH` or
/// `unix:PATH`), as Dikastes dials a path. Fails if the server cannot be reached now.
pub async fn connect(target: &str) -> Result<Channel, ConnectError> {
    let wrap = |source| ConnectError::Transport { target: target.to_owned(), source };
    if let Some(hostport) = target.strip_prefix("tcp://") {
        let endpoint = Endpoint::from_shared(format!("http://{}", hostport.trim_end_matches('/'))).map_err(wrap)?;
        return endpoint.tcp_nodelay(true).connect().await.map_err(wrap);
    }
    let path = target.strip_prefix("unix://").or_else(|| target.strip_prefix("unix:")).unwrap_or(target);
    if path.is_empty() {
        return Err(ConnectError::Empty);
    }
    alp_uds::channel(path).await.map_err(wrap)
}
