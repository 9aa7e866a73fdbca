//! The policy-sync client against a scripted server on real Unix sockets.

use std::{path::Path, sync::Arc, time::Duration};

use alp_engine::{Live, LiveWriter};
use alp_model::PolicyId;
use alp_proto::felix::{IpSetUpdate, ToDataplane, to_dataplane::Payload};
use alp_sync::{ClientConfig, run_client};
use alp_test_support::{ScriptedSyncServer, eventually, mk_endpoint, mk_in_sync, mk_policy_update, msg_json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Generous: only a failing test waits this long.
const WAIT: Duration = Duration::from_secs(10);

const ALLOW: &str = r#"[{"action":"Allow"}]"#;
const ALLOW_DENY: &str = r#"[{"action":"Allow","httpMatch":{"methods":["GET"]}},{"action":"Deny"}]"#;

struct Client {
    live: Arc<Live>,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl Client {
    fn spawn(cfg: ClientConfig) -> Client {
        let writer = LiveWriter::new();
        let live = writer.reader();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run_client(cfg, writer, shutdown.clone()));
        Client { live, shutdown, task }
    }

    /// Fast reconnects so restarts take milliseconds.
    fn spawn_fast(socket: &Path) -> Client {
        let mut cfg = ClientConfig::new(socket);
        cfg.initial_backoff = Duration::from_millis(5);
        cfg.max_backoff = Duration::from_millis(50);
        Client::spawn(cfg)
    }

    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(WAIT, self.task)
            .await
            .unwrap_or_else(|_| panic!("run_client did not stop"))
            .unwrap_or_else(|e| panic!("run_client panicked: {e}"));
    }

    fn policy_count(&self) -> Option<usize> {
        self.live.load().as_ref().map(|s| s.policy_count())
    }

    fn inbound_rules(&self, name: &str) -> Option<usize> {
        self.live.load().as_ref().and_then(|s| s.policy(&gnp(name)).map(|p| p.inbound.len()))
    }
}

fn gnp(name: &str) -> PolicyId {
    PolicyId::new(name, "", "GlobalNetworkPolicy")
}

async fn until(what: &str, cond: impl FnMut() -> bool) {
    assert!(eventually(WAIT, cond).await, "timed out waiting for: {what}");
}

fn socket(dir: &tempfile::TempDir) -> std::path::PathBuf {
    dir.path().join("policysync.sock")
}

#[tokio::test]
async fn nothing_is_published_before_in_sync_then_ready() {
    let dir = tempfile::tempdir().unwrap();
    let server = ScriptedSyncServer::start(&socket(&dir));
    server.set_initial(vec![mk_policy_update("p1", ALLOW), mk_endpoint(&[("default", &["p1"])])]);
    let client = Client::spawn_fast(server.path());

    until("both messages applied", || client.live.updates() == 2).await;
    assert!(client.live.is_connected());
    assert!(!client.live.is_in_sync());
    assert!(client.live.load().is_none(), "published before InSync");
    assert_eq!(client.live.published(), 0);

    server.send(mk_in_sync());
    until("in sync", || client.live.is_in_sync()).await;
    assert_eq!(client.policy_count(), Some(1));
    assert!(client.live.load().as_ref().is_some_and(|s| s.has_endpoint()));
    assert!(client.live.published_at_ms() > 0);
    assert_eq!(server.connections(), 1);

    client.stop().await;
    server.stop().await;
}

#[tokio::test]
async fn restart_serves_old_snapshot_until_the_new_in_sync_and_drops_stale_objects() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket(&dir);
    let server = ScriptedSyncServer::start(&path);
    server.set_initial(vec![
        mk_policy_update("p1", ALLOW),
        mk_policy_update("only-first", ALLOW),
        mk_endpoint(&[("default", &["p1", "only-first"])]),
        mk_in_sync(),
    ]);
    let client = Client::spawn_fast(&path);
    until("first in sync", || client.live.is_in_sync()).await;
    assert_eq!(client.policy_count(), Some(2));

    // The agent goes away: stream dropped, socket removed.
    server.stop().await;
    until("disconnected", || !client.live.is_connected()).await;
    assert!(!client.live.is_in_sync(), "ready while disconnected");
    assert_eq!(client.policy_count(), Some(2), "the last snapshot keeps serving");

    // A new agent replays a CHANGED state, without InSync yet.
    let server = ScriptedSyncServer::start(&path);
    server.set_initial(vec![mk_policy_update("p1", ALLOW_DENY), mk_endpoint(&[("default", &["p1"])])]);
    until("reconnected", || client.live.is_connected()).await;
    until("replay applied", || client.live.updates() == 4 + 2).await;
    assert!(!client.live.is_in_sync());
    assert_eq!(client.policy_count(), Some(2), "half a replay must not be served");
    assert_eq!(client.inbound_rules("p1"), Some(1));

    server.send(mk_in_sync());
    until("second in sync", || client.live.is_in_sync()).await;
    // D5: a fresh store per connection; "only-first" was never resent, so it is gone.
    assert_eq!(client.policy_count(), Some(1));
    assert_eq!(client.inbound_rules("only-first"), None);
    assert_eq!(client.inbound_rules("p1"), Some(2));

    client.stop().await;
    server.stop().await;
}

#[tokio::test]
async fn a_stream_ending_in_an_error_reconnects_and_resyncs() {
    let dir = tempfile::tempdir().unwrap();
    let server = ScriptedSyncServer::start(&socket(&dir));
    server.set_initial(vec![mk_policy_update("p1", ALLOW), mk_in_sync()]);
    let client = Client::spawn_fast(server.path());
    until("in sync", || client.live.is_in_sync()).await;

    server.set_initial(vec![mk_policy_update("p2", ALLOW)]);
    assert_eq!(server.fail_streams(tonic::Status::unavailable("agent restarting")), 1);
    until("second stream", || server.connections() == 2 && client.live.updates() == 3).await;
    assert!(!client.live.is_in_sync());
    assert_eq!(client.inbound_rules("p1"), Some(1), "old snapshot still served");

    server.send(mk_in_sync());
    until("in sync again", || client.live.is_in_sync()).await;
    assert_eq!((client.inbound_rules("p1"), client.inbound_rules("p2")), (None, Some(1)));

    // A clean end of the stream (Felix's WorkloadEndpointRemove) also reconnects.
    assert_eq!(server.drop_streams(), 1);
    until("third stream", || server.connections() == 3).await;

    client.stop().await;
    server.stop().await;
}

#[tokio::test]
async fn updates_after_in_sync_are_published_in_batches() {
    let dir = tempfile::tempdir().unwrap();
    let server = ScriptedSyncServer::start(&socket(&dir));
    server.set_initial(vec![mk_endpoint(&[("default", &["p0"])]), mk_in_sync()]);
    let client = Client::spawn_fast(server.path());
    until("in sync", || client.live.is_in_sync()).await;
    let published = client.live.published();

    server.send(mk_policy_update("p0", ALLOW));
    until("one update visible", || client.inbound_rules("p0") == Some(1)).await;

    let n = 500;
    server.send_all((1..=n).map(|i| mk_policy_update(&format!("p{i}"), ALLOW)));
    until("every update visible", || client.policy_count() == Some(n + 1)).await;
    assert_eq!(client.live.updates(), 2 + 1 + n as u64);
    let publishes = client.live.published() - published;
    // Sent at once, they arrive in a few reads; one snapshot per message would be n + 1.
    assert!(publishes < 100, "{publishes} snapshots for {n} messages");

    client.stop().await;
    server.stop().await;
}

#[tokio::test]
async fn a_message_larger_than_grpcs_default_4mib_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let server = ScriptedSyncServer::start(&socket(&dir));
    let members: Vec<String> =
        (0..400_000u32).map(|i| format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255)).collect();
    let update = IpSetUpdate { id: "s:big".into(), members, r#type: 0 };
    let big = ToDataplane::from(Payload::IpsetUpdate(update));
    assert!(prost::Message::encoded_len(&big) > 4 << 20);
    server.set_initial(vec![big, mk_in_sync()]);
    let client = Client::spawn_fast(server.path());
    until("in sync", || client.live.is_in_sync()).await;
    assert_eq!(client.live.load().as_ref().and_then(|s| s.ip_set("s:big").map(|s| s.len())), Some(400_000));

    client.stop().await;
    server.stop().await;
}

#[tokio::test]
async fn store_errors_are_logged_and_the_stream_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let server = ScriptedSyncServer::start(&socket(&dir));
    server.set_initial(vec![
        msg_json(r#"{"ipsetDeltaUpdate":{"id":"s:unknown","addedMembers":["10.0.0.1"]}}"#),
        msg_json(r#"{"ipsetUpdate":{"id":"s:1","members":["10.0.0.0/8","not-a-cidr"],"type":"NET"}}"#),
        mk_policy_update("p1", ALLOW),
        mk_in_sync(),
    ]);
    let client = Client::spawn_fast(server.path());
    until("in sync", || client.live.is_in_sync()).await;
    assert_eq!(client.policy_count(), Some(1));
    assert_eq!(client.live.load().as_ref().and_then(|s| s.ip_set("s:1").map(|s| s.len())), Some(1));
    assert_eq!(server.connections(), 1, "a bad message must not break the stream");

    client.stop().await;
    server.stop().await;
}

#[tokio::test]
async fn shutdown_stops_the_client_while_it_backs_off() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = ClientConfig::new(socket(&dir)); // nothing listens there
    cfg.initial_backoff = Duration::from_secs(60);
    cfg.max_backoff = Duration::from_secs(60);
    let client = Client::spawn(cfg);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!client.live.is_connected());
    assert!(client.live.load().is_none());
    let started = std::time::Instant::now();
    client.stop().await;
    assert!(started.elapsed() < Duration::from_secs(5), "stop took {:?}", started.elapsed());
}

#[tokio::test]
async fn shutdown_stops_the_client_while_it_streams() {
    let dir = tempfile::tempdir().unwrap();
    let server = ScriptedSyncServer::start(&socket(&dir));
    server.set_initial(vec![mk_in_sync()]);
    let client = Client::spawn_fast(server.path());
    until("in sync", || client.live.is_in_sync()).await;
    let live = Arc::clone(&client.live);
    client.stop().await;
    assert!(!live.is_connected() && !live.is_in_sync());
    assert!(live.load().is_some(), "the snapshot stays for whoever still reads it");
    until("server saw the stream close", || server.open_streams() == 0).await;
    server.stop().await;
}

/// Gaps between the server's `Sync` calls.
fn gaps(server: &ScriptedSyncServer) -> Vec<Duration> {
    server.connection_times().windows(2).map(|w| w[1] - w[0]).collect()
}

#[tokio::test]
async fn reconnect_delays_grow_while_streams_end_before_in_sync() {
    let dir = tempfile::tempdir().unwrap();
    let server = ScriptedSyncServer::start(&socket(&dir));
    server.set_initial(vec![mk_policy_update("p1", ALLOW)]);
    server.set_end_after_initial(true);
    let mut cfg = ClientConfig::new(server.path());
    cfg.initial_backoff = Duration::from_millis(20);
    cfg.max_backoff = Duration::from_secs(60);
    let client = Client::spawn(cfg);
    assert!(server.wait_for_connections(6, WAIT).await);
    let gaps = gaps(&server);
    // Equal jitter: the k-th delay is at least half its step, 20 ms * 2^k / 2.
    for (k, gap) in gaps.iter().take(5).enumerate() {
        assert!(*gap >= Duration::from_millis(10 << k), "gap {k} = {gap:?} in {gaps:?}");
    }
    assert!(client.live.load().is_none(), "never in sync, never published");
    client.stop().await;
    server.stop().await;
}

#[tokio::test]
async fn reaching_in_sync_resets_the_backoff() {
    let dir = tempfile::tempdir().unwrap();
    let server = ScriptedSyncServer::start(&socket(&dir));
    server.set_initial(vec![mk_in_sync()]);
    server.set_end_after_initial(true);
    let mut cfg = ClientConfig::new(server.path());
    cfg.initial_backoff = Duration::from_millis(50);
    cfg.max_backoff = Duration::from_secs(60);
    let client = Client::spawn(cfg);
    assert!(server.wait_for_connections(8, WAIT).await);
    // Without the reset the 7th gap alone would be at least 50 ms * 2^6 / 2 = 1.6 s.
    let gaps = gaps(&server);
    assert!(gaps.iter().all(|g| *g < Duration::from_secs(1)), "{gaps:?}");
    client.stop().await;
    server.stop().await;
}
