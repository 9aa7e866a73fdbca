//! The one path from policy-sync messages to the snapshot checks read, for the sync client and
//! the standalone server alike: messages applied to a [`Store`]; once it is in sync, a snapshot
//! built on the blocking pool and published to the authorizer's [`LiveWriter`]; readiness kept
//! as "connected and in sync".

use std::{
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use alp_engine::{Config, LiveWriter, Snapshot, Store};
use alp_proto::felix::ToDataplane;
use tokio::task::JoinError;
use tracing::{info, warn};

/// Owns an authorizer's [`LiveWriter`] and the store behind what it publishes.
///
/// Readiness (`Live::is_in_sync`) is true while the source is connected and a snapshot of the
/// current store, taken at or after its InSync, is published (D5: after a reconnect, the last
/// snapshot keeps serving, not ready, until the fresh store's InSync).
#[derive(Debug)]
pub struct Publisher {
    live: LiveWriter,
    engine: Config,
    store: Store,
    /// Messages applied since the last [`Publisher::publish`] (not yet counted in `live`).
    unpublished: u64,
    /// Messages applied to the current store.
    messages: u64,
    /// A snapshot of the current store taken at or after its InSync is published.
    in_sync: bool,
    /// The source is reachable (a policy-sync stream is open; the datastore answers).
    connected: bool,
}

impl Publisher {
    /// Publishes into `live`, from stores with the settings `engine`.
    pub fn new(live: LiveWriter, engine: Config) -> Self {
        let store = Store::new(engine.clone());
        Publisher { live, engine, store, unpublished: 0, messages: 0, in_sync: false, connected: false }
    }

    /// Starts again from a fresh store (D5: a new connection replays everything). The last
    /// snapshot keeps serving; not ready until this store's InSync.
    pub fn restart(&mut self) {
        self.store = Store::new(self.engine.clone());
        self.messages = 0;
        self.in_sync = false;
        self.live.set_in_sync(false);
    }

    /// Whether the source is reachable; not ready while it is not.
    pub fn set_connected(&mut self, connected: bool) {
        self.connected = connected;
        self.live.set_connected(connected);
        self.live.set_in_sync(connected && self.in_sync);
    }

    /// Applies one message to the store; a message that does not (fully) apply is logged and
    /// the rest of the store stays as it was.
    pub fn apply(&mut self, msg: &ToDataplane) {
        if let Err(e) = self.store.apply(msg) {
            warn!(error = %e, "policy-sync update not fully applied");
        }
        self.unpublished += 1;
        self.messages += 1;
    }

    /// Counts what was applied since the last call and, if the store is in sync, builds its
    /// snapshot on the blocking pool and publishes it. Nothing applied: nothing to do.
    ///
    /// `Err` when the builder panicked: the store went with it (it is left empty, and should be
    /// [restarted](Publisher::restart) or given up), the last snapshot keeps serving, not ready.
    pub async fn publish(&mut self) -> Result<(), JoinError> {
        if self.unpublished == 0 {
            return Ok(());
        }
        self.live.count_updates(std::mem::take(&mut self.unpublished));
        if !self.store.in_sync() {
            return Ok(());
        }
        let snapshot = match build_snapshot(&mut self.store).await {
            Ok(snapshot) => snapshot,
            Err(e) => {
                self.in_sync = false;
                self.live.set_in_sync(false);
                return Err(e);
            }
        };
        let policies = snapshot.policy_count();
        let endpoint = snapshot.has_endpoint();
        let (ip_sets, members) = snapshot.ip_set_stats();
        self.live.publish(snapshot, now_ms());
        if !self.in_sync {
            self.in_sync = true;
            info!(messages = self.messages, policies, endpoint, ip_sets, members, "policy sync in sync");
        }
        self.live.set_in_sync(self.connected);
        Ok(())
    }

    /// Whether a snapshot of the current store, taken at or after its InSync, is published.
    pub fn in_sync(&self) -> bool {
        self.in_sync
    }
}

/// Builds `store`'s snapshot on tokio's blocking pool: a large store takes tens of milliseconds
/// (S1: 80 ms), and checks must not wait for it on a runtime of one thread. The store is lent to
/// the builder and put back; if the builder panicked, it is left empty and the error returned.
async fn build_snapshot(store: &mut Store) -> Result<Arc<Snapshot>, JoinError> {
    let owned = std::mem::take(store);
    let (owned, snapshot) = tokio::task::spawn_blocking(move || {
        let snapshot = owned.snapshot();
        (owned, snapshot)
    })
    .await?;
    *store = owned;
    Ok(snapshot)
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use alp_engine::Live;
    use alp_test_support::{mk_in_sync as in_sync, msg_json};

    use super::*;

    fn ns(name: &str) -> ToDataplane {
        msg_json(&format!(r#"{{"namespaceUpdate":{{"id":{{"name":"{name}"}}}}}}"#))
    }

    fn publisher() -> (Publisher, Arc<Live>) {
        let writer = LiveWriter::new();
        let live = writer.reader();
        (Publisher::new(writer, Config::default()), live)
    }

    fn state(live: &Live) -> (u64, u64, bool, bool) {
        (live.published(), live.updates(), live.is_connected(), live.is_in_sync())
    }

    #[tokio::test]
    async fn ready_is_connected_and_in_sync() {
        let (mut p, live) = publisher();
        p.apply(&ns("a"));
        p.publish().await.unwrap();
        assert_eq!(state(&live), (0, 1, false, false), "counted, not published before InSync");

        p.apply(&in_sync());
        p.publish().await.unwrap();
        assert_eq!(state(&live), (1, 2, false, false), "published, but not ready while disconnected");
        assert!(p.in_sync());
        p.set_connected(true);
        assert_eq!(state(&live), (1, 2, true, true));

        // The datastore goes away and comes back (standalone on etcd): the store stays.
        p.set_connected(false);
        assert_eq!(state(&live), (1, 2, false, false));
        assert!(live.load().is_some(), "the last snapshot keeps serving");
        p.set_connected(true);
        assert_eq!(state(&live), (1, 2, true, true));

        // Nothing applied: nothing built.
        p.publish().await.unwrap();
        assert_eq!(live.published(), 1);
    }

    #[tokio::test]
    async fn a_restart_is_not_ready_until_its_own_in_sync() {
        let (mut p, live) = publisher();
        p.set_connected(true);
        for m in [ns("old"), in_sync()] {
            p.apply(&m);
        }
        p.publish().await.unwrap();
        assert_eq!(state(&live), (1, 2, true, true));

        // D5: a new connection replays into a fresh store; the old snapshot serves meanwhile.
        p.restart();
        assert!(!p.in_sync() && !live.is_in_sync());
        p.apply(&ns("new"));
        p.publish().await.unwrap();
        assert_eq!(state(&live), (1, 3, true, false));
        assert!(live.load().as_ref().is_some_and(|s| s.namespace_labels("old").is_some()));

        p.apply(&in_sync());
        p.publish().await.unwrap();
        assert_eq!(state(&live), (2, 4, true, true));
        let fresh = |s: &Arc<Snapshot>| s.namespace_labels("new").is_some() && s.namespace_labels("old").is_none();
        assert!(live.load().as_ref().is_some_and(fresh));
    }
}
