//! The one place a snapshot is published: one writer (the policy-sync client, or the
//! in-process calculator), many readers (checks), no lock on the read path.

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicU64, Ordering},
};

use arc_swap::{ArcSwapOption, Guard};

use crate::Snapshot;

/// The current snapshot plus the sync state that health and metrics report.
#[derive(Debug, Default)]
pub struct Live {
    current: ArcSwapOption<Snapshot>,
    connected: AtomicBool,
    in_sync: AtomicBool,
    published: AtomicU64,
    published_at_ms: AtomicU64,
    updates: AtomicU64,
}

impl Live {
    /// Nothing published yet: checks answer UNAVAILABLE.
    pub fn new() -> Arc<Self> {
        Arc::new(Live::default())
    }

    /// The snapshot checks read; `None` before the first InSync.
    pub fn load(&self) -> Guard<Option<Arc<Snapshot>>> {
        self.current.load()
    }

    /// Swaps in a complete snapshot (taken at or after an InSync); `now_ms` is wall-clock time.
    pub fn publish(&self, snapshot: Arc<Snapshot>, now_ms: u64) {
        self.current.store(Some(snapshot));
        self.published.fetch_add(1, Ordering::Relaxed);
        self.published_at_ms.store(now_ms, Ordering::Relaxed);
    }

    /// Whether a stream to the policy source is open.
    pub fn set_connected(&self, connected: bool) {
        self.connected.store(connected, Ordering::Relaxed);
    }

    /// Readiness: InSync seen on the current stream (D5: the last snapshot keeps serving while not).
    pub fn set_in_sync(&self, in_sync: bool) {
        self.in_sync.store(in_sync, Ordering::Relaxed);
    }

    /// Counts applied policy-sync messages.
    pub fn count_updates(&self, n: u64) {
        self.updates.fetch_add(n, Ordering::Relaxed);
    }

    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

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
