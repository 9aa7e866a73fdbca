//! The one place a snapshot is published: one writer (the policy-sync client, or the
//! in-process calculator), many readers (checks, health, metrics), no lock on the read path.
//!
//! The types hold the rule: a [`LiveWriter`] cannot be cloned and writes through `&mut self`,
//! and every reader gets an `Arc<Live>` from it ([`LiveWriter::reader`]), which can only read.

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicU64, Ordering},
};

use arc_swap::{ArcSwapOption, Guard};

use crate::Snapshot;

/// The current snapshot plus the sync state that health and metrics report: the readers' side,
/// shared as `Arc<Live>`. Only its [`LiveWriter`] changes it.
#[derive(Debug)]
pub struct Live {
    current: ArcSwapOption<Snapshot>,
    connected: AtomicBool,
    in_sync: AtomicBool,
    published: AtomicU64,
    published_at_ms: AtomicU64,
    updates: AtomicU64,
}

impl Live {
    /// The snapshot checks read; `None` before the first InSync.
    pub fn load(&self) -> Guard<Option<Arc<Snapshot>>> {
        self.current.load()
    }

    /// True while the policy stream is connected.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// True once the current stream has reached InSync.
    pub fn is_in_sync(&self) -> bool {
        self.in_sync.load(Ordering::Relaxed)
    }

    /// Snapshots published so far.
    pub fn published(&self) -> u64 {
        self.published.load(Ordering::Relaxed)
    }

    /// Wall-clock milliseconds of the last publish (0 = never).
    pub fn published_at_ms(&self) -> u64 {
        self.published_at_ms.load(Ordering::Relaxed)
    }

    /// Policy-sync messages applied so far.
    pub fn updates(&self) -> u64 {
        self.updates.load(Ordering::Relaxed)
    }
}

/// The one writer of a [`Live`]: not `Clone`, and every change takes `&mut self`, so one task
/// (the sync client's or the standalone server's publisher) owns it.
#[derive(Debug)]
pub struct LiveWriter {
    live: Arc<Live>,
}

impl Default for LiveWriter {
    fn default() -> Self {
        LiveWriter::new()
    }
}

impl LiveWriter {
    /// Nothing published yet: checks answer UNAVAILABLE.
    pub fn new() -> Self {
        let live = Live {
            current: ArcSwapOption::empty(),
            connected: AtomicBool::new(false),
            in_sync: AtomicBool::new(false),
            published: AtomicU64::new(0),
            published_at_ms: AtomicU64::new(0),
            updates: AtomicU64::new(0),
        };
        LiveWriter { live: Arc::new(live) }
    }

    /// A reader of what this writer publishes (as many as wanted).
    pub fn reader(&self) -> Arc<Live> {
        Arc::clone(&self.live)
    }

    /// Swaps in a complete snapshot (taken at or after an InSync); `now_ms` is wall-clock time.
    pub fn publish(&mut self, snapshot: Arc<Snapshot>, now_ms: u64) {
        self.live.current.store(Some(snapshot));
        self.live.published.fetch_add(1, Ordering::Relaxed);
        self.live.published_at_ms.store(now_ms, Ordering::Relaxed);
    }

    /// Whether a stream to the policy source is open.
    pub fn set_connected(&mut self, connected: bool) {
        self.live.connected.store(connected, Ordering::Relaxed);
    }

    /// Readiness: InSync seen on the current stream (D5: the last snapshot keeps serving while not).
    pub fn set_in_sync(&mut self, in_sync: bool) {
        self.live.in_sync.store(in_sync, Ordering::Relaxed);
    }

    /// Counts applied policy-sync messages.
    pub fn count_updates(&mut self, n: u64) {
        self.live.updates.fetch_add(n, Ordering::Relaxed);
    }
}
