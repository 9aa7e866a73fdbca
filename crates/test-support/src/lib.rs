//! Test support, outside the data flow: [`ScriptedSyncServer`] stands in for the node agent's
//! policy-sync server (Felix's `PolicySync` over a real Unix socket, h2c) so tests can drive the
//! sync client with scripted streams; [`BlockingSyncServer`] wraps it for tests without a tokio
//! runtime; `mk_*` and [`msg_json`] build `ToDataplane` messages and [`describe`] names one, the
//! same for every test that needs them; with feature `etcd`, the module `etcd` runs a real etcd.
//!
//! Not for production code: failures here panic with a message.

#[cfg(feature = "etcd")]
pub mod etcd;
mod messages;
pub mod raw_grpc;

use std::{
    io,
    path::{Path, PathBuf},
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use alp_proto::felix::{
    DataplaneStats, ReportResult, SyncRequest, ToDataplane,
    grpc::policy_sync_server::{PolicySync, PolicySyncServer},
};
use tokio::{
    net::UnixListener,
    sync::{mpsc, watch},
    task::JoinHandle,
};
use tokio_stream::Stream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, transport::Server};

pub use messages::{
    WORKLOAD_ID, allow_from, describe, gnp_id, members, mk_endpoint, mk_in_sync, mk_ip_set, mk_ip_set_delta,
    mk_namespace, mk_policy, mk_policy_remove, mk_policy_update, mk_profile, mk_service_account, mk_workload,
    mk_workload_remove, msg_json, strs,
};

/// How long [`ScriptedSyncServer::stop`] waits for a graceful shutdown (GOAWAY answered by
/// every connected client) before it abandons the server task.
const STOP_GRACE: Duration = Duration::from_secs(2);

type StreamTx = mpsc::UnboundedSender<Result<ToDataplane, Status>>;

#[derive(Debug, Default)]
struct State {
    initial: Vec<ToDataplane>,
    end_after_initial: bool,
    streams: Vec<StreamTx>,
    connected_at: Vec<Instant>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    connections_tx: watch::Sender<usize>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not wedge the server for the others.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Debug, Clone)]
struct Service {
    shared: Arc<Shared>,
}

type SyncStream = Pin<Box<dyn Stream<Item = Result<ToDataplane, Status>> + Send>>;

#[tonic::async_trait]
impl PolicySync for Service {
    type SyncStream = SyncStream;

    async fn sync(&self, _request: Request<SyncRequest>) -> Result<Response<SyncStream>, Status> {
        let (stream_tx, stream_rx) = mpsc::unbounded_channel();
        {
            // One lock: a concurrent `send` reaches this stream after its initial messages or not at all.
            let mut state = self.shared.state();
            for msg in &state.initial {
                let _ = stream_tx.send(Ok(msg.clone()));
            }
            if !state.end_after_initial {
                state.streams.push(stream_tx);
            }
            state.connected_at.push(Instant::now());
        }
        self.shared.connections_tx.send_modify(|n| *n += 1);
        let stream = tokio_stream::wrappers::UnboundedReceiverStream::new(stream_rx);
        Ok(Response::new(Box::pin(stream)))
    }

    async fn report(&self, _request: Request<DataplaneStats>) -> Result<Response<ReportResult>, Status> {
        Ok(Response::new(ReportResult { successful: false }))
    }
}

/// A scripted Felix policy-sync server on a Unix socket.
///
/// Every new `Sync` stream first receives the messages of [`set_initial`](Self::set_initial);
/// afterwards [`send`](Self::send) pushes to every stream open at that moment. Messages are not
/// remembered for later streams: to change what a reconnecting client sees, call `set_initial`.
///
/// Must be started inside a tokio runtime (or use [`BlockingSyncServer`]).
#[derive(Debug)]
pub struct ScriptedSyncServer {
    path: PathBuf,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl ScriptedSyncServer {
    /// Listens on `socket_path` (a stale file there is removed first) and serves in a spawned
    /// task. Panics outside a tokio runtime or when the socket cannot be bound.
    pub fn start(socket_path: &Path) -> ScriptedSyncServer {
        Self::try_start(socket_path)
            .unwrap_or_else(|e| panic!("scripted sync server on {}: {e}", socket_path.display()))
    }

    /// [`start`](Self::start), returning bind errors.
    pub fn try_start(socket_path: &Path) -> io::Result<ScriptedSyncServer> {
        match std::fs::remove_file(socket_path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let listener = UnixListener::bind(socket_path)?;
        let (connections_tx, _) = watch::channel(0);
        let shared = Arc::new(Shared { state: Mutex::default(), connections_tx });
        let service = PolicySyncServer::new(Service { shared: Arc::clone(&shared) });
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone().cancelled_owned();
        let task = tokio::spawn(async move {
            let incoming = alp_uds::incoming(listener);
            if let Err(e) = Server::builder().add_service(service).serve_with_incoming_shutdown(incoming, stop).await {
                tracing::warn!(error = %e, "scripted sync server failed");
            }
        });
        Ok(ScriptedSyncServer { path: socket_path.to_owned(), shared, shutdown, task: Some(task) })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What every new stream receives first (replaces the previous script).
    pub fn set_initial(&self, msgs: Vec<ToDataplane>) {
        self.shared.state().initial = msgs;
    }

    /// When set, every new stream ends right after its initial messages (a server that keeps
    /// hanging up, e.g. before InSync).
    pub fn set_end_after_initial(&self, end: bool) {
        self.shared.state().end_after_initial = end;
    }

    /// Pushes `msg` to every open stream; returns how many it reached.
    pub fn send(&self, msg: ToDataplane) -> usize {
        self.send_all([msg])
    }

    /// Pushes `msgs`, in order, to every open stream; returns how many streams they reached.
    pub fn send_all(&self, msgs: impl IntoIterator<Item = ToDataplane>) -> usize {
        let mut state = self.shared.state();
        let msgs: Vec<_> = msgs.into_iter().collect();
        state.streams.retain(|tx| msgs.iter().all(|m| tx.send(Ok(m.clone())).is_ok()));
        state.streams.len()
    }

    /// Ends every open stream cleanly (the client sees the end of the stream); returns how many.
    pub fn drop_streams(&self) -> usize {
        let mut state = self.shared.state();
        let n = state.streams.len();
        state.streams.clear();
        n
    }

    /// Ends every open stream with `status`; returns how many.
    pub fn fail_streams(&self, status: Status) -> usize {
        let mut state = self.shared.state();
        let streams = std::mem::take(&mut state.streams);
        streams.iter().filter(|tx| tx.send(Err(status.clone())).is_ok()).count()
    }

    /// Streams still open (a closed client is noticed at the next send).
    pub fn open_streams(&self) -> usize {
        let mut state = self.shared.state();
        state.streams.retain(|tx| !tx.is_closed());
        state.streams.len()
    }

    /// `Sync` calls so far.
    pub fn connections(&self) -> usize {
        *self.shared.connections_tx.borrow()
    }

    /// When each `Sync` call arrived, in order.
    pub fn connection_times(&self) -> Vec<Instant> {
        self.shared.state().connected_at.clone()
    }

    /// Waits until at least `n` `Sync` calls have arrived; false on timeout.
    pub async fn wait_for_connections(&self, n: usize, timeout: Duration) -> bool {
        let mut connections_rx = self.shared.connections_tx.subscribe();
        matches!(tokio::time::timeout(timeout, connections_rx.wait_for(|c| *c >= n)).await, Ok(Ok(_)))
    }

    /// Ends every stream, shuts the server down and removes the socket file.
    pub async fn stop(mut self) {
        self.drop_streams();
        self.shutdown.cancel();
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(STOP_GRACE, &mut task).await.is_err()
        {
            task.abort();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for ScriptedSyncServer {
    fn drop(&mut self) {
        if self.task.is_some() {
            self.drop_streams();
            self.shutdown.cancel();
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A [`ScriptedSyncServer`] with its own tokio runtime (one worker thread), for tests that are
/// not async. The scripting methods are on [`server`](Self::server).
#[derive(Debug)]
pub struct BlockingSyncServer {
    server: Option<ScriptedSyncServer>,
    runtime: tokio::runtime::Runtime,
}

impl BlockingSyncServer {
    /// Builds a runtime and starts the server in it. Panics on failure.
    pub fn start(socket_path: &Path) -> BlockingSyncServer {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("tokio runtime: {e}"));
        let server = {
            let _guard = runtime.enter();
            ScriptedSyncServer::start(socket_path)
        };
        BlockingSyncServer { server: Some(server), runtime }
    }

    /// The server, to script it.
    pub fn server(&self) -> &ScriptedSyncServer {
        self.server.as_ref().unwrap_or_else(|| unreachable!("present until stop"))
    }

    /// The runtime the server runs in.
    pub fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.runtime
    }

    /// Blocks until at least `n` `Sync` calls have arrived; false on timeout.
    pub fn wait_for_connections(&self, n: usize, timeout: Duration) -> bool {
        self.runtime.block_on(self.server().wait_for_connections(n, timeout))
    }

    /// Stops the server (see [`ScriptedSyncServer::stop`]) and its runtime.
    pub fn stop(mut self) {
        if let Some(server) = self.server.take() {
            self.runtime.block_on(server.stop());
        }
    }
}

impl Drop for BlockingSyncServer {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            self.runtime.block_on(server.stop());
        }
    }
}

/// Polls `cond` every few milliseconds until it holds; false if it still fails after `timeout`.
pub async fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
