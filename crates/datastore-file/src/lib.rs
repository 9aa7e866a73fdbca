//! `--datastore file:DIR`, the embedded default: every `*.yaml`, `*.yml` and
//! `*.json` under DIR, multi-document, picked up while running: a filesystem notification
//! (inotify) wakes a rescan after a short quiet period, and a slow poll of modification times
//! catches anything a notification missed.
//! A file that stops parsing keeps its last good content in force (a bad parse never deletes
//! anything) and the error names file, document, resource and field; other files are untouched.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime},
};

use alp_datastore::{Backend, Event, Sink};
use alp_resources::{DocumentCache, Resource, ResourceError, ResourceKey, parse_documents_cached};
use smallvec::SmallVec;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

/// Fallback poll interval, for filesystems without notifications.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// After a notification, wait until the directory has been quiet this long, then rescan, so an
/// editor's write-rename dance is read once, complete.
pub const DEBOUNCE: Duration = Duration::from_millis(2);

/// A file that held resources and is found empty is taken as emptied only once it has stayed
/// so this long (an editor writing in place truncates it first).
pub const EMPTY_GRACE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
}

#[derive(Debug)]
struct FileState {
    stamp: Stamp,
    resources: BTreeMap<ResourceKey, Arc<Resource>>,
    /// The file's documents as last parsed: an edit re-parses only the documents it changed.
    documents: DocumentCache,
}

/// What a scan found.
#[derive(Debug, Default)]
pub struct Scan {
    /// Changes of the merged view since the previous scan.
    pub events: Vec<Event>,
    /// Documents that did not parse or validate (their file's last good content stays).
    pub errors: Vec<ResourceError>,
    /// Files that could not be read.
    pub io_errors: Vec<String>,
}

/// A directory of resource files and the merged view of their content.
#[derive(Debug)]
pub struct FileDatastore {
    dir: PathBuf,
    files: BTreeMap<PathBuf, FileState>,
    /// The files that hold each key, sorted (the last one wins); almost always one.
    holders: HashMap<ResourceKey, SmallVec<[Arc<Path>; 1]>>,
    view: BTreeMap<ResourceKey, Arc<Resource>>,
}

fn is_resource_file(path: &Path) -> bool {
    let hidden = path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'));
    !hidden && matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json"))
}

/// Appends the resource files under `dir` (recursively: `*.yaml`, `*.yml`, `*.json`, hidden
/// files skipped) to `out`, as the datastore reads them.
pub fn list(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            list(&path, out)?;
        } else if is_resource_file(&path) {
            out.push(path);
        }
    }
    Ok(())
}

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp { modified: meta.modified().ok(), len: meta.len() })
}

impl FileDatastore {
    /// A datastore over `dir`; nothing is read until [`FileDatastore::rescan`].
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileDatastore { dir: dir.into(), files: BTreeMap::new(), holders: HashMap::new(), view: BTreeMap::new() }
    }

    /// The merged view: every resource of every file (a later file wins on a duplicate key).
    pub fn view(&self) -> &BTreeMap<ResourceKey, Arc<Resource>> {
        &self.view
    }

    /// Brings the view's entry for `key` up to date with the files; the event, if it changed.
    fn settle(&mut self, key: &ResourceKey) -> Option<Event> {
        let winner = self
            .holders
            .get(key)
            .and_then(|paths| paths.last())
            .and_then(|path| self.files.get(&**path))
            .and_then(|f| f.resources.get(key))
            .cloned();
        match (winner, self.view.get(key)) {
            (Some(w), Some(cur)) if Arc::ptr_eq(&w, cur) || *w == **cur => None,
            (Some(w), _) => {
                self.view.insert(key.clone(), w.clone());
                Some(Event::Apply(w))
            }
            (None, Some(_)) => {
                self.view.remove(key);
                Some(Event::Delete(key.clone()))
            }
            (None, None) => None,
        }
    }

    /// Forgets that `path` holds `keys`.
    fn release<'k>(&mut self, path: &Path, keys: impl Iterator<Item = &'k ResourceKey>) {
        for k in keys {
            if let Some(paths) = self.holders.get_mut(k) {
                paths.retain(|p| **p != *path);
                if paths.is_empty() {
                    self.holders.remove(k);
                }
            }
        }
    }

    /// Reads the files that changed since the last scan and reports how the view changed.
    pub fn rescan(&mut self) -> Scan {
        let mut scan = Scan::default();
        let mut paths = Vec::new();
        if let Err(e) = list(&self.dir, &mut paths) {
            scan.io_errors.push(format!("{}: {e}", self.dir.display()));
            return scan;
        }
        // Keys whose winner may have changed; only they are compared (a change costs the file, not the datastore).
        let mut touched: BTreeSet<ResourceKey> = BTreeSet::new();
        let listed: BTreeSet<&PathBuf> = paths.iter().collect();
        let gone: Vec<PathBuf> = self.files.keys().filter(|p| !listed.contains(p)).cloned().collect();
        for p in gone {
            if let Some(f) = self.files.remove(&p) {
                self.release(&p, f.resources.keys());
                touched.extend(f.resources.into_keys());
            }
        }
        for path in paths {
            let Some(now) = stamp(&path) else { continue };
            if self.files.get(&path).is_some_and(|f| f.stamp == now) {
                continue;
            }
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) => {
                    scan.io_errors.push(format!("{}: {e}", path.display()));
                    continue;
                }
            };
            let held = self.files.get(&path).is_some_and(|f| !f.resources.is_empty());
            let just_written = now.modified.and_then(|m| m.elapsed().ok()).is_none_or(|age| age < EMPTY_GRACE);
            if text.trim().is_empty() && held && just_written {
                // Most likely truncated by an in-place write still in progress: its stamp is not
                // recorded, so the next scan looks again.
                continue;
            }
            let mut previous = self.files.remove(&path);
            let mut documents = previous.as_mut().map(|p| std::mem::take(&mut p.documents)).unwrap_or_default();
            let mut good = BTreeMap::new();
            let mut bad = 0;
            for doc in parse_documents_cached(&text, &path.to_string_lossy(), &mut documents) {
                match doc {
                    Ok(r) => {
                        good.insert(r.key(), r);
                    }
                    Err(e) if e.is_unsupported_kind() => {
                        scan.errors.push(e);
                    }
                    Err(e) => {
                        bad += 1;
                        scan.errors.push(e);
                    }
                }
            }
            if bad > 0
                && let Some(prev) = &previous
            {
                // Keep the last good content: nothing this file held disappears on a bad parse.
                for (k, r) in &prev.resources {
                    good.entry(k.clone()).or_insert_with(|| r.clone());
                }
            }
            if let Some(prev) = previous {
                self.release(&path, prev.resources.keys());
                touched.extend(prev.resources.into_keys());
            }
            let holder: Arc<Path> = Arc::from(path.as_path());
            for k in good.keys() {
                let paths = self.holders.entry(k.clone()).or_default();
                if let Err(at) = paths.binary_search(&holder) {
                    paths.insert(at, holder.clone());
                }
            }
            touched.extend(good.keys().cloned());
            self.files.insert(path, FileState { stamp: now, resources: good, documents });
        }
        let (deletes, applies): (Vec<Event>, Vec<Event>) =
            touched.iter().filter_map(|k| self.settle(k)).partition(|e| matches!(e, Event::Delete(_)));
        scan.events = deletes.into_iter().chain(applies).collect();
        scan
    }
}

fn report(scan: &Scan) {
    for e in &scan.errors {
        warn!(error = %e, "resource skipped");
    }
    for e in &scan.io_errors {
        warn!(error = %e, "file not read");
    }
}

/// A recursive filesystem watch that pokes `wake_tx`; `None` (polling only) where unsupported.
fn notify_on_change(dir: &Path, wake_tx: mpsc::Sender<()>) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher;
    let mut watcher = notify::recommended_watcher(move |_: notify::Result<notify::Event>| {
        let _ = wake_tx.try_send(());
    })
    .map_err(|e| warn!(error = %e, "no filesystem notifications; polling only"))
    .ok()?;
    match watcher.watch(dir, notify::RecursiveMode::Recursive) {
        Ok(()) => Some(watcher),
        Err(e) => {
            warn!(error = %e, dir = %dir.display(), "no filesystem notifications; polling only");
            None
        }
    }
}

/// Reads DIR once: every valid resource, and the errors.
pub fn load(dir: &Path) -> (Vec<Resource>, Vec<String>) {
    let mut ds = FileDatastore::new(dir);
    let scan = ds.rescan();
    let errors = scan.errors.iter().map(ToString::to_string).chain(scan.io_errors).collect();
    (ds.view.into_values().map(Arc::unwrap_or_clone).collect(), errors)
}

/// `file:DIR` as a [`Backend`]: the directory and how often it is polled besides notifications.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The directory whose resource files make the datastore.
    pub dir: PathBuf,
    /// The fallback poll, for changes no notification reported.
    pub poll_interval: Duration,
}

impl Config {
    /// `dir`, polled every [`POLL_INTERVAL`].
    pub fn new(dir: impl Into<PathBuf>) -> Config {
        Config { dir: dir.into(), poll_interval: POLL_INTERVAL }
    }
}

impl Backend for Config {
    /// Streams DIR's resources: the initial content, [`Event::InitDone`], then changes (on a
    /// notification, or polled every `poll_interval`), until the sink closes. Always connected.
    async fn run(self, mut sink: impl Sink) {
        let Config { dir, poll_interval } = self;
        sink.set_connected(true);
        let (wake_tx, mut wake_rx) = mpsc::channel::<()>(1);
        let _watcher = notify_on_change(&dir, wake_tx);
        let mut ds = FileDatastore::new(&dir);
        let first = ds.rescan();
        report(&first);
        info!(dir = %dir.display(), resources = ds.view().len(), "file datastore loaded");
        for e in first.events.into_iter().chain(std::iter::once(Event::InitDone)) {
            if sink.send(e).await.is_err() {
                return;
            }
        }
        let mut tick = tokio::time::interval(poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                Some(()) = wake_rx.recv() => {
                    // Debounce: let a burst of writes finish.
                    while tokio::time::timeout(DEBOUNCE, wake_rx.recv()).await.is_ok_and(|w| w.is_some()) {}
                }
            }
            let started = std::time::Instant::now();
            let scan = ds.rescan();
            report(&scan);
            if !scan.events.is_empty() {
                debug!(events = scan.events.len(), elapsed_us = started.elapsed().as_micros(), "datastore changed");
            }
            for e in scan.events {
                if sink.send(e).await.is_err() {
                    return;
                }
            }
        }
    }
}
