//! Per-workload sockets (Felix's `pod2daemon/binder`): a socket
//! `<prefix>/mount/<uid>/socket` for every creds file `<prefix>/creds/<uid>.json` the CSI
//! driver writes, and alp's serve-all mode, which makes `<prefix>/mount/<ns>.<pod>/socket` for
//! every local workload itself. A connection's workload is the socket it came in on.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    fmt, io,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use tokio::{net::UnixListener, sync::watch, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::server::{ProcessorHandle, spawn_workload_server};

/// A local workload in serve-all mode: `(namespace, pod)`.
pub type LocalWorkload = (String, String);

/// Felix's `PollSleepTime`: how often the creds directory is listed.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Where the creds files are, under the prefix.
pub const CREDS_DIR: &str = "creds";
/// Where the per-workload socket directories are, under the prefix.
pub const MOUNT_DIR: &str = "mount";
/// The socket's file name in its workload's directory.
pub const SOCKET_NAME: &str = "socket";
/// The creds files' extension.
pub const CREDS_EXTENSION: &str = ".json";

/// How long closing waits for a socket's open connections before abandoning its server task.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// A workload's creds file (`pod2daemon/flexvol/creds.Credentials`). The Go struct has no json
/// tags and Go matches keys case-insensitively, so `"uid"`, `"NAMESPACE"` … are read too; a
/// key given twice keeps its last value, `null` leaves a field as it was, and other keys are
/// ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Credentials {
    pub uid: String,
    /// The pod's name.
    pub workload: String,
    pub namespace: String,
    pub service_account: String,
}

impl Credentials {
    /// Parses a creds file.
    pub fn from_json(text: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(text)
    }

    /// The workload id the connection stands for: `<namespace>/<workload>`.
    pub fn workload_id(&self) -> String {
        alp_felix::workload_id(&self.namespace, &self.workload)
    }
}

/// Go's `strings.EqualFold` for a field name: the only characters outside ASCII that fold to
/// an ASCII letter are `ſ` (to `s`) and the Kelvin sign (to `k`).
fn key_matches(key: &str, field: &str) -> bool {
    let fold = |c: char| match c {
        '\u{17F}' => 's',
        '\u{212A}' => 'k',
        c => c.to_ascii_lowercase(),
    };
    key.chars().map(fold).eq(field.chars().map(fold))
}

impl<'de> Deserialize<'de> for Credentials {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CredsVisitor;

        impl<'de> Visitor<'de> for CredsVisitor {
            type Value = Credentials;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object with UID, Workload, Namespace and ServiceAccount")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Credentials, A::Error> {
                let mut c = Credentials::default();
                while let Some(key) = map.next_key::<String>()? {
                    let field = if key_matches(&key, "UID") {
                        &mut c.uid
                    } else if key_matches(&key, "Workload") {
                        &mut c.workload
                    } else if key_matches(&key, "Namespace") {
                        &mut c.namespace
                    } else if key_matches(&key, "ServiceAccount") {
                        &mut c.service_account
                    } else {
                        map.next_value::<IgnoredAny>()?;
                        continue;
                    };
                    if let Some(value) = map.next_value::<Option<String>>()? {
                        *field = value;
                    }
                }
                Ok(c)
            }
        }

        deserializer.deserialize_map(CredsVisitor)
    }
}

/// Why a workload's socket could not be served.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("reading creds file {path}: {source}")]
    ReadCreds {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("creds file {path}: {source}")]
    ParseCreds {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("creating socket directory {path}: {source}")]
    SocketDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("removing the file in the way at {path}: {source}")]
    RemoveStale {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("listening on {path}: {source}")]
    Listen {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("chmod 0777 {path}: {source}")]
    Chmod {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Listens on `path` as Felix does: create the directory if needed, remove whatever file is
/// there, listen, `chmod 0777` (the pod's user is unknown).
fn listen(path: &Path) -> Result<UnixListener, BindError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| BindError::SocketDir { path: dir.to_owned(), source })?;
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            return Err(BindError::RemoveStale { path: path.to_owned(), source: e });
        }
        _ => {}
    }
    let listener = UnixListener::bind(path).map_err(|source| BindError::Listen { path: path.to_owned(), source })?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777)).map_err(|source| {
        let _ = std::fs::remove_file(path);
        BindError::Chmod { path: path.to_owned(), source }
    })?;
    Ok(listener)
}

/// One served socket.
#[derive(Debug)]
struct BoundSocket {
    path: PathBuf,
    workload_id: String,
    stop: CancellationToken,
    task: JoinHandle<()>,
    /// Serve-all made the directory, so it removes it too.
    remove_dir: bool,
}

impl BoundSocket {
    fn serve(
        path: PathBuf,
        workload_id: String,
        remove_dir: bool,
        processor: &ProcessorHandle,
        stop: &CancellationToken,
    ) -> Result<Self, BindError> {
        let listener = listen(&path)?;
        let stop = stop.child_token();
        let task = spawn_workload_server(listener, &workload_id, processor.clone(), stop.clone());
        info!(socket = %path.display(), workload = %workload_id, "serving policy sync");
        Ok(BoundSocket { path, workload_id, stop, task, remove_dir })
    }

    /// Stops accepting and removes the socket (as closing a Go Unix listener unlinks it). Open
    /// streams go on until the processor ends them, and the server task with them: the
    /// returned task need not be awaited.
    fn close(self) -> JoinHandle<()> {
        self.stop.cancel();
        if let Err(e) = std::fs::remove_file(&self.path)
            && e.kind() != io::ErrorKind::NotFound
        {
            warn!(socket = %self.path.display(), error = %e, "removing socket");
        }
        if self.remove_dir
            && let Some(dir) = self.path.parent()
            && let Err(e) = std::fs::remove_dir(dir)
        {
            debug!(dir = %dir.display(), error = %e, "socket directory left in place");
        }
        info!(socket = %self.path.display(), workload = %self.workload_id, "stopped serving policy sync");
        self.task
    }
}

/// Closes the sockets of workloads that went away, without waiting for their open streams.
fn close_gone(sockets: &mut HashMap<String, BoundSocket>, keep: impl Fn(&str) -> bool) {
    let gone: Vec<String> = sockets.keys().filter(|k| !keep(k)).cloned().collect();
    for key in gone {
        if let Some(socket) = sockets.remove(&key) {
            drop(socket.close());
        }
    }
}

/// Closes every socket (shutting down: the processor ends every stream) and waits a little
/// for their servers.
async fn close_all(sockets: impl IntoIterator<Item = BoundSocket>) {
    let mut tasks: Vec<JoinHandle<()>> = sockets.into_iter().map(BoundSocket::close).collect();
    let all = futures::future::join_all(tasks.iter_mut());
    if tokio::time::timeout(CLOSE_GRACE, all).await.is_err() {
        tasks.iter().for_each(JoinHandle::abort);
    }
}

/// The uids of the creds files in `dir`.
async fn list_creds(dir: &Path) -> io::Result<HashSet<String>> {
    let mut entries = tokio::fs::read_dir(dir).await?;
    let mut uids = HashSet::new();
    while let Some(entry) = entries.next_entry().await? {
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
        if let Some(uid) = name.strip_suffix(CREDS_EXTENSION)
            && !matches!(uid, "" | "." | "..")
        {
            uids.insert(uid.to_owned());
        }
    }
    Ok(uids)
}

/// Reads `<prefix>/creds/<uid>.json` and serves `<prefix>/mount/<uid>/socket` for it.
async fn bind_creds(
    prefix: &Path,
    uid: &str,
    processor: &ProcessorHandle,
    stop: &CancellationToken,
) -> Result<BoundSocket, BindError> {
    let creds_path = prefix.join(CREDS_DIR).join(format!("{uid}{CREDS_EXTENSION}"));
    let text = tokio::fs::read(&creds_path)
        .await
        .map_err(|source| BindError::ReadCreds { path: creds_path.clone(), source })?;
    let creds = Credentials::from_json(&text).map_err(|source| BindError::ParseCreds { path: creds_path, source })?;
    let path = prefix.join(MOUNT_DIR).join(uid).join(SOCKET_NAME);
    BoundSocket::serve(path, creds.workload_id(), false, processor, stop)
}

/// Felix's binder: lists `<prefix>/creds` every `poll` (waiting for it to appear), serves a
/// socket for every new `<uid>.json` and closes the socket of every file that went away, until
/// `stop`; then closes every socket.
///
/// Unlike Felix, a creds file that cannot be read or parsed, or whose socket cannot be bound,
/// is tried again at the next poll (the CSI driver may still be writing it), and a listing
/// error keeps the sockets as they are and is retried (Felix stops watching for good).
pub(crate) async fn run_binder(prefix: PathBuf, processor: ProcessorHandle, poll: Duration, stop: CancellationToken) {
    let creds_dir = prefix.join(CREDS_DIR);
    let mut sockets: HashMap<String, BoundSocket> = HashMap::new();
    let mut failing: HashSet<String> = HashSet::new();
    let mut listing_error: Option<io::ErrorKind> = None;
    info!(creds = %creds_dir.display(), "watching for workload creds files");
    loop {
        match list_creds(&creds_dir).await {
            Ok(uids) => {
                if listing_error.take().is_some() {
                    info!(creds = %creds_dir.display(), "creds directory readable");
                }
                close_gone(&mut sockets, |uid| uids.contains(uid));
                failing.retain(|uid| uids.contains(uid));
                for uid in uids {
                    if sockets.contains_key(&uid) {
                        continue;
                    }
                    match bind_creds(&prefix, &uid, &processor, &stop).await {
                        Ok(socket) => {
                            failing.remove(&uid);
                            sockets.insert(uid, socket);
                        }
                        Err(e) if failing.insert(uid.clone()) => {
                            warn!(uid = %uid, error = %e, "workload not served yet; trying again")
                        }
                        Err(e) => debug!(uid = %uid, error = %e, "workload still not served"),
                    }
                }
            }
            Err(e) => {
                if listing_error != Some(e.kind()) {
                    if e.kind() == io::ErrorKind::NotFound && sockets.is_empty() {
                        info!(creds = %creds_dir.display(), "waiting for the creds directory");
                    } else {
                        warn!(creds = %creds_dir.display(), error = %e, "listing creds; sockets kept as they are");
                    }
                }
                listing_error = Some(e.kind());
            }
        }
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(poll) => {}
        }
    }
    close_all(sockets.into_values()).await;
}

/// The socket directory name of a local workload, `<namespace>.<pod>`, if both names are
/// usable in a path (a namespace has no dots, so the name is unambiguous).
fn serve_all_dir(namespace: &str, pod: &str) -> Option<String> {
    let usable = |s: &str| !s.is_empty() && s != "." && s != ".." && !s.contains(['/', '\0']);
    (usable(namespace) && usable(pod) && !namespace.contains('.')).then(|| format!("{namespace}.{pod}"))
}

/// Serve-all mode: a socket `<prefix>/mount/<namespace>.<pod>/socket` for every workload in
/// `workloads_rx`, made (directory included) when the workload appears and removed when it
/// goes, until `stop`; then every socket is removed. A socket that cannot be bound is tried
/// again every `poll`. If the sender goes away the sockets stay as they are.
pub(crate) async fn run_serve_all(
    prefix: PathBuf,
    processor: ProcessorHandle,
    mut workloads_rx: watch::Receiver<Vec<LocalWorkload>>,
    poll: Duration,
    stop: CancellationToken,
) {
    let mount = prefix.join(MOUNT_DIR);
    let mut sockets: HashMap<String, BoundSocket> = HashMap::new();
    let mut failing: HashSet<String> = HashSet::new();
    let mut watching = true;
    loop {
        let wanted: BTreeMap<String, String> = workloads_rx
            .borrow_and_update()
            .iter()
            .filter_map(|(ns, pod)| match serve_all_dir(ns, pod) {
                Some(dir) => Some((dir, alp_felix::workload_id(ns, pod))),
                None => {
                    warn!(namespace = %ns, pod = %pod, "workload name not usable in a socket path; not served");
                    None
                }
            })
            .collect();
        close_gone(&mut sockets, |dir| wanted.contains_key(dir));
        failing.retain(|dir| wanted.contains_key(dir));
        for (dir, workload_id) in wanted {
            if sockets.contains_key(&dir) {
                continue;
            }
            let path = mount.join(&dir).join(SOCKET_NAME);
            match BoundSocket::serve(path, workload_id, true, &processor, &stop) {
                Ok(socket) => {
                    failing.remove(&dir);
                    sockets.insert(dir, socket);
                }
                Err(e) if failing.insert(dir.clone()) => warn!(error = %e, "workload not served yet; trying again"),
                Err(e) => debug!(error = %e, "workload still not served"),
            }
        }
        let retry = !failing.is_empty();
        tokio::select! {
            () = stop.cancelled() => break,
            changed = workloads_rx.changed(), if watching => {
                if changed.is_err() {
                    info!("local workload list closed; sockets kept as they are");
                    watching = false;
                }
            }
            () = tokio::time::sleep(poll), if retry => {}
        }
    }
    close_all(sockets.into_values()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creds_keys_are_case_insensitive_like_go() {
        let c = Credentials::from_json(
            br#"{"uid":"u1","WORKLOAD":"pod-a","nameSpace":"ns1","serviceaccount":"sa","Extra":{"x":1}}"#,
        )
        .unwrap();
        assert_eq!(
            c,
            Credentials {
                uid: "u1".into(),
                workload: "pod-a".into(),
                namespace: "ns1".into(),
                service_account: "sa".into()
            }
        );
        assert_eq!(c.workload_id(), "ns1/pod-a");
    }

    #[test]
    fn creds_last_key_wins_null_keeps_and_go_folding_applies() {
        let c = Credentials::from_json(
            "{\"Namespace\":\"a\",\"namespace\":\"b\",\"Workload\":\"w\",\"workload\":null,\"\u{17F}erviceAccount\":\"s\"}"
                .as_bytes(),
        )
        .unwrap();
        assert_eq!((c.namespace.as_str(), c.workload.as_str(), c.service_account.as_str()), ("b", "w", "s"));
    }

    #[test]
    fn creds_errors() {
        assert!(Credentials::from_json(br#"{"Namespace":1}"#).is_err());
        assert!(Credentials::from_json(b"[]").is_err());
        assert!(Credentials::from_json(b"{\"Namespace\":\"a\"").is_err());
        assert_eq!(Credentials::from_json(b"{}").unwrap(), Credentials::default());
    }

    #[test]
    fn serve_all_dir_names() {
        assert_eq!(serve_all_dir("ns", "pod.with.dots").as_deref(), Some("ns.pod.with.dots"));
        assert_eq!(serve_all_dir("", "pod"), None);
        assert_eq!(serve_all_dir("ns", ".."), None);
        assert_eq!(serve_all_dir("ns", "a/b"), None);
        assert_eq!(serve_all_dir("n.s", "pod"), None);
    }
}
