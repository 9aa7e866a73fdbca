//! The long-running watch: list, `InitDone`, watch; resume after a disconnect, re-list after a
//! compaction.

use std::time::Duration;

use alp_datastore::{Backend, Event, Sink};
use etcd_client::EventType;
use tracing::{debug, info, warn};

use crate::{
    Config, Error,
    connection::{Connection, entries},
    keys::PREFIX,
    view::{Skipped, View},
};

/// Why a session with etcd ended.
enum End {
    /// The consumer went away.
    ReceiverGone,
    /// The watch's start revision was compacted: list again.
    Compacted(i64),
    /// etcd is unreachable or the stream broke: reconnect after a backoff.
    Failed(Error),
}

#[derive(Debug)]
struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    fn new(min: Duration, max: Duration) -> Backoff {
        Backoff { min, max: max.max(min), next: min }
    }

    fn reset(&mut self) {
        self.next = self.min;
    }

    fn step(&mut self) -> Duration {
        let now = self.next;
        self.next = (now * 2).min(self.max);
        now
    }
}

fn report(skipped: &Skipped) {
    warn!(error = %skipped.error, kept_last_good = skipped.kept_last_good, "etcd value skipped");
}

struct Watcher<S> {
    config: Config,
    sink: S,
    view: View,
    /// The revision the view is complete at; `None` until listed, and after a compaction.
    revision: Option<i64>,
    init_done: bool,
    backoff: Backoff,
}

impl<S: Sink> Watcher<S> {
    async fn send(&mut self, events: impl IntoIterator<Item = Event>) -> Result<(), End> {
        for e in events {
            self.sink.send(e).await.map_err(|_| End::ReceiverGone)?;
        }
        Ok(())
    }

    /// Lists the prefix and sends the difference from the current view (everything, the first
    /// time, followed by `InitDone`).
    async fn relist(&mut self, connection: &Connection) -> Result<i64, End> {
        let (revision, kvs) = connection.list(PREFIX).await.map_err(End::Failed)?;
        let (listing, bad_keys) = entries(&kvs);
        let (events, skipped) = self.view.replace(listing);
        for error in bad_keys {
            warn!(%error, "etcd key skipped");
        }
        skipped.iter().for_each(report);
        info!(revision, resources = self.view.len(), changes = events.len(), "etcd datastore listed");
        self.send(events).await?;
        if !self.init_done {
            self.send([Event::InitDone]).await?;
            self.init_done = true;
        }
        self.revision = Some(revision);
        Ok(revision)
    }

    /// One connection: list if needed, then watch until something breaks.
    async fn session(&mut self) -> End {
        let connection = match Connection::connect(&self.config).await {
            Ok(c) => c,
            Err(e) => return End::Failed(e),
        };
        let revision = match self.revision {
            Some(r) => r,
            None => match self.relist(&connection).await {
                Ok(r) => r,
                Err(end) => return end,
            },
        };
        let mut stream = match connection.watch_prefix(revision + 1).await {
            Ok(s) => s,
            Err(e) => return End::Failed(e),
        };
        self.sink.set_connected(true);
        self.backoff.reset();
        debug!(from = revision + 1, "etcd watch started");
        loop {
            let response = match stream.message().await {
                Ok(Some(r)) => r,
                Ok(None) => return End::Failed(Error::WatchEnded),
                Err(e) => return End::Failed(e.into()),
            };
            if response.compact_revision() > 0 {
                return End::Compacted(response.compact_revision());
            }
            if response.canceled() {
                return End::Failed(Error::WatchCancelled(response.cancel_reason().to_owned()));
            }
            if !response.created() && response.events().is_empty() {
                // A progress notification: every change up to the header's revision has been sent,
                // so a reconnect can resume from there even if the prefix itself was quiet.
                let progress = response.header().map(|h| h.revision());
                self.revision = self.revision.max(progress);
                continue;
            }
            for event in response.events() {
                let Some(kv) = event.kv() else { continue };
                let Ok(key) = kv.key_str() else {
                    warn!(key = %String::from_utf8_lossy(kv.key()), "etcd key is not UTF-8; skipped");
                    continue;
                };
                let events = match event.event_type() {
                    EventType::Put => self.view.put(key, kv.value(), kv.mod_revision()).unwrap_or_else(|skipped| {
                        report(&skipped);
                        Vec::new()
                    }),
                    EventType::Delete => self.view.delete(key),
                };
                self.revision = self.revision.max(Some(kv.mod_revision()));
                if let Err(end) = self.send(events).await {
                    return end;
                }
            }
        }
    }
}

impl Backend for Config {
    /// Streams the resources under [`PREFIX`]: the initial listing, [`Event::InitDone`], then
    /// every change, until the sink closes.
    ///
    /// The sink hears `connected` while a watch is established and not while etcd is unreachable
    /// (the consumer keeps the state it has; nothing is deleted on a disconnect). A broken
    /// connection is retried with exponential backoff ([`Config::min_backoff`] →
    /// [`Config::max_backoff`]) and the watch resumes after the last revision seen, so no change
    /// is lost or repeated. When that revision has been compacted, the prefix is listed again and
    /// only the difference from the current view is sent.
    async fn run(self, sink: impl Sink) {
        let backoff = Backoff::new(self.min_backoff, self.max_backoff);
        let mut watcher =
            Watcher { config: self, sink, view: View::default(), revision: None, init_done: false, backoff };
        loop {
            let end = watcher.session().await;
            watcher.sink.set_connected(false);
            match end {
                End::ReceiverGone => break,
                End::Compacted(compacted) => {
                    info!(revision = ?watcher.revision, compacted, "etcd history compacted past the watch; listing again");
                    watcher.revision = None;
                }
                End::Failed(error) => {
                    let delay = watcher.backoff.step();
                    warn!(%error, retry_in = ?delay, "etcd unreachable or watch broken; reconnecting");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        let steps: Vec<u128> = (0..8).map(|_| b.step().as_millis()).collect();
        assert_eq!(steps, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        b.reset();
        assert_eq!(b.step(), Duration::from_millis(100));
    }
}
