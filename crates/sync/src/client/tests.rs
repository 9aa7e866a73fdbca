use std::sync::Arc;

use alp_engine::Live;
use alp_proto::felix::{self, to_dataplane::Payload};
use alp_test_support::{mk_in_sync as in_sync, mk_namespace};
use futures::channel::mpsc;

use super::*;

fn ns(name: &str) -> ToDataplane {
    mk_namespace(name, &[("k", name)])
}

fn bad() -> ToDataplane {
    Payload::NamespaceRemove(felix::NamespaceRemove { id: None }).into()
}

/// A publisher whose stream is open, as `sync_once` hands it to `pump`, and its reader.
fn connected() -> (Publisher, Arc<Live>) {
    let writer = LiveWriter::new();
    let live = writer.reader();
    let mut publisher = Publisher::new(writer, Config::default());
    publisher.set_connected(true);
    (publisher, live)
}

/// Waits (up to 10 s) for `cond`; snapshots are built on the blocking pool, so the pump
/// needs real time, not only turns of this runtime.
async fn wait_until(mut cond: impl FnMut() -> bool) {
    for _ in 0..10_000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("condition never held");
}

#[tokio::test]
async fn nothing_is_published_before_in_sync() {
    let (mut publisher, live) = connected();
    let mut stats = StreamStats::default();
    let mut stream = futures::stream::iter([ns("a"), ns("b")].map(Ok));
    assert!(pump(&mut stream, &mut publisher, &mut stats).await.is_ok());
    assert!(live.load().is_none());
    assert_eq!((live.published(), live.updates(), live.is_in_sync()), (0, 2, false));
}

#[tokio::test]
async fn messages_ready_together_are_published_once() {
    let (mut publisher, live) = connected();
    let mut stats = StreamStats::default();
    let msgs = [ns("a"), in_sync(), ns("b"), ns("c")];
    let mut stream = futures::stream::iter(msgs.map(Ok));
    assert!(pump(&mut stream, &mut publisher, &mut stats).await.is_ok());
    assert_eq!((live.published(), live.updates(), live.is_in_sync()), (1, 4, true));
    assert!(live.load().as_ref().is_some_and(|s| s.namespace_labels("c").is_some()));
}

#[tokio::test]
async fn each_arrival_after_in_sync_publishes_once_and_errors_do_not_stop() {
    let (mut publisher, live) = connected();
    let (msg_tx, mut msg_rx) = mpsc::unbounded();
    let pumped = tokio::spawn(async move {
        let mut stats = StreamStats::default();
        let end = pump(&mut msg_rx, &mut publisher, &mut stats).await;
        (end, stats.messages)
    });
    let send = |m: ToDataplane| msg_tx.unbounded_send(Ok(m)).unwrap_or_else(|e| panic!("{e}"));
    send(ns("a"));
    send(in_sync());
    // The test runtime has one thread: the pump runs only when this task waits.
    wait_until(|| live.published() >= 1).await;
    assert_eq!(live.published(), 1);
    for m in [ns("b"), bad(), ns("c")] {
        send(m);
    }
    wait_until(|| live.published() >= 2).await;
    assert_eq!(live.updates(), 5);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(live.published(), 2, "three messages ready together: one publish");
    assert!(live.load().as_ref().is_some_and(|s| s.namespace_labels("c").is_some()));
    msg_tx.unbounded_send(Err(Status::unavailable("gone"))).unwrap_or_else(|e| panic!("{e}"));
    let (end, messages) = pumped.await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(end.map_err(|s| s.code()), Err(tonic::Code::Unavailable));
    assert_eq!(messages, 5);
}

#[test]
fn chain_prints_sources_once() {
    let status = Status::unavailable("socket gone");
    let e = SyncError::Broken(status);
    assert_eq!(Chain(&e).to_string(), e.to_string());
}
