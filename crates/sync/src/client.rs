//! The policy-sync client: Dikastes's syncher (`app-policy/syncher`) with differences
//! D5 (a fresh store per connection, published only from InSync on) and D6 (backoff).

use std::{path::PathBuf, time::Duration};

use alp_engine::{Config, LiveWriter};
use alp_proto::felix::{SyncRequest, ToDataplane, grpc::policy_sync_client::PolicySyncClient};
use futures::{FutureExt as _, Stream, StreamExt as _};
use rand::{SeedableRng as _, rngs::StdRng};
use tokio_util::sync::CancellationToken;
use tonic::Status;
use tracing::{debug, info, warn};

use crate::{Backoff, Publisher};

/// Largest policy-sync message accepted. Felix splits IP sets to stay under gRPC's default
/// 4 MiB (82,200 members a message); this leaves room for big policies and other senders.
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// How long connecting to the socket (including the HTTP/2 handshake) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Most messages applied before a snapshot is published, so a busy stream still publishes.
const MAX_BATCH: u64 = 4096;

/// Where and how the client syncs.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The policy-sync Unix socket (Dikastes's `--dial`).
    pub dial: PathBuf,
    /// Settings for every connection's fresh store.
    pub engine: Config,
    /// First reconnect step (D6: 50 ms).
    pub initial_backoff: Duration,
    /// Largest reconnect step (D6: 5 s).
    pub max_backoff: Duration,
}

impl ClientConfig {
    /// Syncs from `dial` with the default engine settings and the D6 backoff.
    pub fn new(dial: impl Into<PathBuf>) -> Self {
        ClientConfig {
            dial: dial.into(),
            engine: Config::default(),
            initial_backoff: Backoff::DEFAULT_INITIAL,
            max_backoff: Backoff::DEFAULT_MAX,
        }
    }
}

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The policy-sync socket could not be connected.
    #[error("connecting to policy-sync socket {path}: {source}")]
    Connect {
        /// The socket's path.
        path: PathBuf,
        /// Why connecting failed.
        #[source]
        source: tonic::transport::Error,
    },
    /// The socket accepted no connection within the connect timeout.
    #[error("connecting to policy-sync socket {path}: no answer within {after:?}")]
    ConnectTimeout {
        /// The socket's path.
        path: PathBuf,
        /// The connect timeout that ran out.
        after: Duration,
    },
    /// The server answered `Sync` with an error status.
    #[error("PolicySync/Sync refused: {0}")]
    Refused(#[source] Status),
    /// The stream ended with an error status.
    #[error("policy-sync stream broken: {0}")]
    Broken(#[source] Status),
}

/// What one connection got as far as.
#[derive(Debug, Default)]
struct StreamStats {
    /// The `Sync` call was answered.
    opened: bool,
    /// Messages received.
    messages: u64,
    /// InSync received (a snapshot of this connection is published).
    in_sync: bool,
}

/// Syncs from `cfg.dial` into `live` until `shutdown`: one `PolicySync/Sync` stream at a time,
/// a fresh [`Store`](alp_engine::Store) per stream, published from InSync on (by a
/// [`Publisher`], the one writer of `live`). A broken stream leaves the last snapshot serving
/// (readiness false) and reconnects after a backoff delay.
pub async fn run_client(cfg: ClientConfig, live: LiveWriter, shutdown: CancellationToken) {
    let mut publisher = Publisher::new(live, cfg.engine.clone());
    let mut backoff = Backoff::new(cfg.initial_backoff, cfg.max_backoff);
    let mut rng = StdRng::from_os_rng();
    let mut failures: u32 = 0;
    info!(socket = %cfg.dial.display(), "policy sync client starting");
    while !shutdown.is_cancelled() {
        let mut stats = StreamStats::default();
        let outcome = tokio::select! {
            biased;
            () = shutdown.cancelled() => None,
            r = sync_once(&cfg, &mut publisher, &mut stats) => Some(r),
        };
        publisher.set_connected(false);
        let Some(outcome) = outcome else { break };
        if stats.in_sync {
            backoff.reset();
            failures = 0;
        }
        failures = failures.saturating_add(1);
        let delay = backoff.next_delay(&mut rng);
        let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        match outcome {
            Ok(()) => info!(
                messages = stats.messages,
                in_sync = stats.in_sync,
                delay_ms,
                "policy sync stream ended; reconnecting"
            ),
            Err(e) if failures == 1 || stats.opened => warn!(
                error = %Chain(&e),
                messages = stats.messages,
                in_sync = stats.in_sync,
                delay_ms,
                "policy sync disconnected; reconnecting"
            ),
            Err(e) => debug!(error = %Chain(&e), failures, delay_ms, "policy sync still unreachable"),
        }
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(delay) => {}
        }
    }
    publisher.set_connected(false);
    info!("policy sync client stopped");
}

/// One connection: connect, open the stream, pump it into a fresh store until it ends.
async fn sync_once(cfg: &ClientConfig, publisher: &mut Publisher, stats: &mut StreamStats) -> Result<(), SyncError> {
    let channel = match tokio::time::timeout(CONNECT_TIMEOUT, alp_uds::channel(&cfg.dial)).await {
        Ok(Ok(channel)) => channel,
        Ok(Err(source)) => return Err(SyncError::Connect { path: cfg.dial.clone(), source }),
        Err(_) => return Err(SyncError::ConnectTimeout { path: cfg.dial.clone(), after: CONNECT_TIMEOUT }),
    };
    let mut client = PolicySyncClient::new(channel).max_decoding_message_size(MAX_MESSAGE_BYTES);
    let mut stream = client.sync(SyncRequest {}).await.map_err(SyncError::Refused)?.into_inner();
    stats.opened = true;
    publisher.restart();
    publisher.set_connected(true);
    info!(socket = %cfg.dial.display(), "policy sync stream open");
    pump(&mut stream, publisher, stats).await.map_err(SyncError::Broken)
}

/// Applies the stream to the publisher's store until it ends. Before InSync nothing is
/// published; from InSync on, every batch is: one message awaited plus every message already
/// received, then one snapshot. `Ok` on a clean end.
async fn pump<S>(stream: &mut S, publisher: &mut Publisher, stats: &mut StreamStats) -> Result<(), Status>
where
    S: Stream<Item = Result<ToDataplane, Status>> + Unpin,
{
    loop {
        let first = match stream.next().await {
            None => return Ok(()),
            Some(Err(status)) => return Err(status),
            Some(Ok(msg)) => msg,
        };
        publisher.apply(&first);
        let mut batch: u64 = 1;
        let mut end = None;
        while batch < MAX_BATCH {
            match stream.next().now_or_never() {
                None => break,
                Some(None) => {
                    end = Some(Ok(()));
                    break;
                }
                Some(Some(Err(status))) => {
                    end = Some(Err(status));
                    break;
                }
                Some(Some(Ok(msg))) => {
                    publisher.apply(&msg);
                    batch += 1;
                }
            }
        }
        stats.messages += batch;
        publisher.publish().await.map_err(|e| Status::internal(format!("building the policy snapshot: {e}")))?;
        stats.in_sync = publisher.in_sync();
        if let Some(end) = end {
            return end;
        }
    }
}

/// An error with its sources, `: `-separated (tonic's transport errors say little on their own).
struct Chain<'a>(&'a dyn std::error::Error);

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(e) = source {
            let text = e.to_string();
            // Status and our own variants already print their source.
            if !self.0.to_string().contains(&text) {
                write!(f, ": {text}")?;
            }
            source = e.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
