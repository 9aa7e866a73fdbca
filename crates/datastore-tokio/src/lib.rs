//! Runs any datastore [`Backend`] on tokio: its events into an mpsc channel and whether its
//! datastore is reachable into a watch channel, until shutdown. The one place a backend meets
//! the runtime, for the agent, the standalone server and the backends' own tests alike.
//!
//! ```text
//! Backend::run ──Sink──▶ events_tx (mpsc) ──▶ calc
//!                    └──▶ connected (watch) ──▶ readiness, alp_agent_datastore_connected
//! ```

use alp_datastore::{Backend, Closed, Event, Sink};
use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;

/// The tokio [`Sink`]: events into a bounded channel, reachability into a watch.
#[derive(Debug)]
struct Channels {
    events_tx: mpsc::Sender<Event>,
    connected_tx: watch::Sender<bool>,
}

impl Sink for Channels {
    async fn send(&mut self, event: Event) -> Result<(), Closed> {
        self.events_tx.send(event).await.map_err(|_| Closed)
    }

    fn set_connected(&mut self, connected: bool) {
        self.connected_tx.send_replace(connected);
    }
}

/// Spawns `backend`'s watch: events into `events_tx` until `shutdown` (or until the receiver
/// goes away), and whether the datastore is reachable (`false` until the backend says so, and
/// once the watch has stopped).
pub fn spawn_watch(
    backend: impl Backend + 'static,
    events_tx: mpsc::Sender<Event>,
    shutdown: CancellationToken,
) -> (JoinHandle<()>, watch::Receiver<bool>) {
    let (connected_tx, connected_rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        let sink = Channels { events_tx, connected_tx: connected_tx.clone() };
        tokio::select! {
            () = shutdown.cancelled() => {}
            () = backend.run(sink) => {}
        }
        connected_tx.send_replace(false);
    });
    (task, connected_rx)
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, time::Duration};

    use super::*;

    /// Says it is connected, sends a namespace and `InitDone`, then waits for ever (or until
    /// its sink is closed, `forever` false).
    struct Scripted {
        forever: bool,
    }

    impl Backend for Scripted {
        async fn run(self, mut sink: impl Sink) {
            sink.set_connected(true);
            let yaml = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n";
            let ns = alp_resources::parse_documents(yaml, "t.yaml").remove(0).unwrap();
            for e in [Event::Apply(Arc::new(ns)), Event::InitDone] {
                if sink.send(e).await.is_err() {
                    return;
                }
            }
            if self.forever {
                std::future::pending::<()>().await;
            }
            while sink.send(Event::InitDone).await.is_ok() {}
        }
    }

    #[tokio::test]
    async fn events_and_reachability_reach_the_channels_until_shutdown() {
        let (events_tx, mut events_rx) = mpsc::channel(1);
        let shutdown = CancellationToken::new();
        let (task, mut connected) = spawn_watch(Scripted { forever: true }, events_tx, shutdown.clone());
        assert!(matches!(events_rx.recv().await, Some(Event::Apply(r)) if r.name() == "a"));
        assert_eq!(events_rx.recv().await, Some(Event::InitDone));
        assert!(*connected.borrow_and_update());
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap();
        assert!(!*connected.borrow(), "not reachable once stopped");
        assert_eq!(events_rx.recv().await, None, "the sender went with the watch");
    }

    #[tokio::test]
    async fn the_watch_stops_when_the_receiver_goes_away() {
        let (events_tx, events_rx) = mpsc::channel(1);
        let (task, connected) = spawn_watch(Scripted { forever: false }, events_tx, CancellationToken::new());
        drop(events_rx);
        tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap();
        assert!(!*connected.borrow());
    }
}
