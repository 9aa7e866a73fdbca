//! The node agent's policy-sync server (Felix's `policysync.Server` and the processor loop):
//! one tokio task owns the [`Processor`], fed by the
//! calculator's global stream and by the joins and leaves of `Sync` streams; one tonic
//! `PolicySync` server per workload socket, which knows the workload it serves (identity from
//! the listener, as Felix's binder does). The sockets themselves are the binder's
//! (`binder.rs`, above this file); `serve.rs` starts both.
//!
//! **Difference from Felix (backpressure).** Felix sends every message with a blocking channel
//! send, so one pod that stops reading stalls the processor and every other pod on the node.
//! Here every stream has its own queue and the processor never waits: a stream that still has
//! more than `queue_limit` unread messages when the next update for it comes is disconnected
//! (its stream ends with `RESOURCE_EXHAUSTED`) and the client resyncs on reconnect, as after any
//! broken stream. The limit bounds the backlog, not a single update: the join sequence never
//! counts against it, and one update's messages (a large IP set, split) are queued whole, so
//! neither alone disconnects a client that keeps reading. A backlog is counted in messages;
//! memory per stream is bounded by the limit plus the largest update.

use std::{
    collections::{HashMap, HashSet},
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
};

use alp_felix::{EndpointKey, JoinId, Outgoing, Processor};
use alp_proto::felix::{
    DataplaneStats, ReportResult, SyncRequest, ToDataplane,
    grpc::policy_sync_server::{PolicySync, PolicySyncServer},
};
use futures::{FutureExt as _, Stream};
use tokio::{
    net::UnixListener,
    sync::{mpsc, oneshot},
    task::JoinHandle,
};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::{Request, Response, Status, transport::Server};
use tracing::{debug, info, warn};

use crate::{ServerMetrics, metrics::EndReason};

/// Default for `ServerConfig::queue_limit`: unread messages a stream may hold before the next
/// update disconnects it.
pub const DEFAULT_QUEUE_LIMIT: usize = 1_000;

/// Why the server stopped without being asked to.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The calculator's side of the update channel was dropped.
    #[error("the calculator's update channel closed")]
    UpdatesClosed,
    /// The task that feeds updates to the per-workload streams panicked or was cancelled.
    #[error("policy-sync processor task failed: {0}")]
    ProcessorTask(#[source] tokio::task::JoinError),
}

/// What the `Sync` handlers ask of the processor task.
#[derive(Debug)]
enum Command {
    Join { workload_id: EndpointKey, reply_tx: oneshot::Sender<WorkloadStream> },
    Leave { workload_id: EndpointKey, join: JoinId },
}

/// Sends joins and leaves to the processor task; cheap to clone.
#[derive(Clone, Debug)]
pub struct ProcessorHandle {
    commands_tx: mpsc::UnboundedSender<Command>,
}

impl ProcessorHandle {
    /// Opens a stream for `workload_id`: its join sequence, then its live updates. `None` when
    /// the processor task has stopped.
    async fn join(&self, workload_id: &str) -> Option<WorkloadStream> {
        let (reply_tx, reply_rx) = oneshot::channel();
        self.commands_tx.send(Command::Join { workload_id: workload_id.to_owned(), reply_tx }).ok()?;
        reply_rx.await.ok()
    }
}

/// Spawns the task that owns the [`Processor`]: it applies `updates_rx` and serves joins and
/// leaves until `shutdown` or until `updates_rx` closes, then ends every stream.
pub fn spawn_processor(
    updates_rx: mpsc::Receiver<ToDataplane>,
    queue_limit: usize,
    metrics: ServerMetrics,
    shutdown: CancellationToken,
) -> (ProcessorHandle, JoinHandle<Result<(), ServeError>>) {
    let (commands_tx, commands_rx) = mpsc::unbounded_channel();
    let handle = ProcessorHandle { commands_tx: commands_tx.clone() };
    let task =
        ProcessorTask { processor: Processor::new(), outboxes: HashMap::new(), commands_tx, queue_limit, metrics };
    (handle, tokio::spawn(task.run(updates_rx, commands_rx, shutdown)))
}

/// The sending half of one stream's queue.
#[derive(Debug)]
struct Outbox {
    join: JoinId,
    tx: mpsc::UnboundedSender<ToDataplane>,
    /// Messages queued so far; the first `initial` are the join sequence.
    sent: u64,
    initial: u64,
    /// Messages the stream has taken from the queue.
    taken: Arc<AtomicU64>,
    /// Cancelled when the stream fell behind: it ends with an error.
    lagged: CancellationToken,
    metrics: ServerMetrics,
}

impl Outbox {
    fn send(&mut self, msg: ToDataplane) {
        self.sent += 1;
        self.metrics.queued();
        // A closed receiver means the stream is gone; its leave is on the way.
        let _ = self.tx.send(msg);
    }

    /// Unread messages queued after the join sequence: however long that sequence is, it is
    /// never held against the client.
    fn behind(&self) -> u64 {
        self.sent.saturating_sub(self.taken.load(Ordering::Relaxed).max(self.initial))
    }
}

#[derive(Debug)]
struct ProcessorTask {
    processor: Processor,
    outboxes: HashMap<EndpointKey, Outbox>,
    /// Handed to every stream, which sends its own leave when dropped.
    commands_tx: mpsc::UnboundedSender<Command>,
    queue_limit: usize,
    metrics: ServerMetrics,
}

impl ProcessorTask {
    async fn run(
        mut self,
        mut updates_rx: mpsc::Receiver<ToDataplane>,
        mut commands_rx: mpsc::UnboundedReceiver<Command>,
        shutdown: CancellationToken,
    ) -> Result<(), ServeError> {
        let result = loop {
            tokio::select! {
                () = shutdown.cancelled() => break Ok(()),
                Some(cmd) = commands_rx.recv() => self.command(cmd),
                update = updates_rx.recv() => match update {
                    Some(msg) => {
                        let out = self.processor.apply(msg);
                        self.deliver(out);
                    }
                    None => break Err(ServeError::UpdatesClosed),
                },
            }
            self.metrics.set_streams(self.outboxes.len());
        };
        // Dropping the senders ends every stream once its queue is read.
        let streams = self.outboxes.len();
        self.outboxes.clear();
        debug!(streams, "policy-sync processor stopped; streams ended");
        result
    }

    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Join { workload_id, reply_tx } => {
                let (join, msgs) = self.processor.join(&workload_id);
                let (tx, rx) = mpsc::unbounded_channel();
                let initial = msgs.len();
                let mut outbox = Outbox {
                    join,
                    tx,
                    sent: 0,
                    initial: initial as u64,
                    taken: Arc::new(AtomicU64::new(0)),
                    lagged: CancellationToken::new(),
                    metrics: self.metrics.clone(),
                };
                for m in msgs {
                    outbox.send(m);
                }
                let stream = WorkloadStream {
                    rx,
                    taken: Arc::clone(&outbox.taken),
                    lagged: Box::pin(outbox.lagged.clone().cancelled_owned()),
                    queue_limit: self.queue_limit,
                    leave: Some((self.commands_tx.clone(), workload_id.clone(), join)),
                    done: false,
                };
                info!(workload = %workload_id, stream = %join, initial, "policy-sync stream joined");
                self.metrics.joined();
                if let Some(old) = self.outboxes.insert(workload_id.clone(), outbox) {
                    // Dropping its sender ends the older stream cleanly, as Felix closes its channel.
                    info!(workload = %workload_id, old = %old.join, new = %join, "newer stream replaces the older one");
                    self.metrics.ended(EndReason::Replaced);
                }
                // A handler that has gone drops the stream, which sends its leave.
                let _ = reply_tx.send(stream);
            }
            Command::Leave { workload_id, join } => {
                if self.outboxes.get(&workload_id).is_some_and(|o| o.join == join) {
                    self.outboxes.remove(&workload_id);
                    info!(workload = %workload_id, stream = %join, "policy-sync stream left");
                }
                self.processor.leave(&workload_id, join);
            }
        }
    }

    /// Queues what one update produced. A stream found more than `queue_limit` messages behind
    /// (not counting its join sequence) at its first message of the update is disconnected
    /// instead.
    fn deliver(&mut self, out: Vec<(EndpointKey, Outgoing)>) {
        let mut checked: HashSet<EndpointKey> = HashSet::new();
        for (key, outgoing) in out {
            match outgoing {
                Outgoing::End => {
                    if let Some(outbox) = self.outboxes.remove(&key) {
                        info!(workload = %key, stream = %outbox.join, "endpoint removed; stream ends");
                        self.metrics.ended(EndReason::EndpointRemoved);
                    }
                }
                Outgoing::Message(msg) => {
                    let Some(outbox) = self.outboxes.get_mut(&key) else { continue };
                    if !checked.contains(&key) {
                        let behind = outbox.behind();
                        if behind > self.queue_limit as u64 {
                            let join = outbox.join;
                            if let Some(outbox) = self.outboxes.remove(&key) {
                                outbox.lagged.cancel();
                                self.metrics.ended(EndReason::Lagged);
                            }
                            self.processor.leave(&key, join);
                            warn!(
                                workload = %key, stream = %join, behind, limit = self.queue_limit,
                                "policy-sync client fell behind; disconnected, it must resync"
                            );
                            continue;
                        }
                        checked.insert(key.clone());
                    }
                    outbox.send(msg);
                }
            }
        }
    }
}

/// One `Sync` stream's receiving half: the queued messages, or an error once the processor
/// disconnected it for falling behind. Dropping it (the client went away) sends its leave.
#[derive(Debug)]
struct WorkloadStream {
    rx: mpsc::UnboundedReceiver<ToDataplane>,
    taken: Arc<AtomicU64>,
    lagged: Pin<Box<WaitForCancellationFutureOwned>>,
    queue_limit: usize,
    leave: Option<(mpsc::UnboundedSender<Command>, EndpointKey, JoinId)>,
    done: bool,
}

impl Stream for WorkloadStream {
    type Item = Result<ToDataplane, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        if this.lagged.poll_unpin(cx).is_ready() {
            this.done = true;
            this.rx.close();
            let msg =
                format!("policy-sync client fell more than {} messages behind; reconnect to resync", this.queue_limit);
            return Poll::Ready(Some(Err(Status::resource_exhausted(msg))));
        }
        match this.rx.poll_recv(cx) {
            Poll::Ready(Some(msg)) => {
                this.taken.fetch_add(1, Ordering::Relaxed);
                Poll::Ready(Some(Ok(msg)))
            }
            Poll::Ready(None) => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for WorkloadStream {
    fn drop(&mut self) {
        if let Some((commands_tx, workload_id, join)) = self.leave.take() {
            let _ = commands_tx.send(Command::Leave { workload_id, join });
        }
    }
}

/// `PolicySync` for the one workload whose socket the connection came in on.
#[derive(Clone, Debug)]
struct WorkloadService {
    workload_id: Arc<str>,
    processor: ProcessorHandle,
}

#[tonic::async_trait]
impl PolicySync for WorkloadService {
    type SyncStream = WorkloadStream;

    async fn sync(&self, _request: Request<SyncRequest>) -> Result<Response<WorkloadStream>, Status> {
        debug!(workload = %self.workload_id, "PolicySync/Sync");
        match self.processor.join(&self.workload_id).await {
            Some(stream) => Ok(Response::new(stream)),
            None => Err(Status::unavailable("policy-sync processor stopped")),
        }
    }

    async fn report(&self, _request: Request<DataplaneStats>) -> Result<Response<ReportResult>, Status> {
        // No flow collector here: Felix answers the same without one.
        Ok(Response::new(ReportResult { successful: false }))
    }
}

/// Serves `PolicySync` for `workload_id` on `listener` until `stop`: then the listener is
/// closed at once (Felix's `listener.Close()`), and the task ends when the connections still
/// open have closed.
pub fn spawn_workload_server(
    listener: UnixListener,
    workload_id: &str,
    processor: ProcessorHandle,
    stop: CancellationToken,
) -> JoinHandle<()> {
    let service = WorkloadService { workload_id: Arc::from(workload_id), processor };
    let workload_id = workload_id.to_owned();
    tokio::spawn(async move {
        let incoming = alp_uds::incoming(listener);
        let served = Server::builder()
            .add_service(PolicySyncServer::new(service))
            .serve_with_incoming_shutdown(incoming, stop.cancelled_owned())
            .await;
        if let Err(e) = served {
            warn!(workload = %workload_id, error = %e, "policy-sync socket server failed");
        }
    })
}
