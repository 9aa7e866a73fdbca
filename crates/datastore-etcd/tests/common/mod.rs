//! A real etcd for the tests: started on free loopback ports with its own data directory,
//! stopped (SIGKILL) and restarted on the same ports and data, killed on drop. A TCP proxy in
//! front of it cuts the watcher off while etcd stays up. Every wait is bounded.

use std::{
    net::{SocketAddr, TcpListener},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use alp_datastore::Event;
use alp_datastore_etcd::{Config, Connection};
use alp_resources::{Kind, Resource, parse_documents};
use tokio::{sync::mpsc, task::AbortHandle};

/// How long any single expected thing may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(15);

/// The etcd binary: `ALP_ETCD`, else `etcd` on PATH. Missing etcd fails the test.
fn etcd_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("ALP_ETCD") {
        return PathBuf::from(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("etcd"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("etcd not found: set ALP_ETCD or install Debian's etcd-server (/usr/bin/etcd)"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Server certificate, key and CA for a TLS etcd.
#[derive(Debug, Clone)]
pub struct ServerTls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug)]
pub struct Etcd {
    bin: PathBuf,
    dir: tempfile::TempDir,
    client_port: u16,
    peer_port: u16,
    tls: Option<ServerTls>,
    extra_args: Vec<String>,
    child: Option<Child>,
}

impl Etcd {
    /// A started etcd on plain HTTP.
    pub async fn start() -> Etcd {
        Etcd::start_with(&[]).await
    }

    /// A started etcd on plain HTTP with more command-line arguments.
    pub async fn start_with(args: &[&str]) -> Etcd {
        let mut etcd = Etcd::new(None);
        etcd.extra_args = args.iter().map(|a| (*a).to_owned()).collect();
        etcd.restart().await;
        etcd
    }

    /// An etcd that is not running yet (see [`Etcd::restart`]); with `tls`, it serves clients over
    /// HTTPS and requires a client certificate signed by `tls.ca`.
    pub fn new(tls: Option<ServerTls>) -> Etcd {
        Etcd {
            bin: etcd_binary(),
            dir: tempfile::tempdir().unwrap(),
            client_port: free_port(),
            peer_port: free_port(),
            tls,
            extra_args: Vec::new(),
            child: None,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.client_port))
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.client_port)
    }

    /// A config for this etcd (quick timeouts and backoff, for tests).
    pub fn config(&self) -> Config {
        test_config(&self.url())
    }

    /// Starts etcd (again) on the same ports and data directory and waits until it answers.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "etcd is already running");
        let client_url = self.url();
        let peer_url = format!("http://127.0.0.1:{}", self.peer_port);
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.path().join("etcd.log")).unwrap();
        let mut cmd = Command::new(&self.bin);
        cmd.args(["--name", "default", "--data-dir"])
            .arg(self.dir.path().join("data"))
            .args(["--listen-client-urls", &client_url, "--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url, "--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("default={peer_url}")])
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        if let Some(tls) = &self.tls {
            cmd.arg("--cert-file").arg(&tls.cert).arg("--key-file").arg(&tls.key);
            cmd.arg("--trusted-ca-file").arg(&tls.ca).arg("--client-cert-auth");
        }
        self.child = Some(cmd.spawn().unwrap_or_else(|e| panic!("starting {}: {e}", self.bin.display())));
        self.wait_ready(self.ready_config()).await;
    }

    /// The config the readiness probe uses (for TLS, the tests' client certificate lives next
    /// to the server's).
    fn ready_config(&self) -> Config {
        let mut config = self.config();
        if let Some(tls) = &self.tls {
            let dir = tls.ca.parent().unwrap();
            config.ca_file = Some(tls.ca.clone());
            config.cert_file = Some(dir.join("client.crt"));
            config.key_file = Some(dir.join("client.key"));
        }
        config
    }

    async fn wait_ready(&mut self, config: Config) {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!("etcd exited with {status}:\n{}", self.log());
            }
            if let Ok(conn) = Connection::connect(&config).await
                && conn.get(Kind::Tier, None, None).await.is_ok()
            {
                return;
            }
            assert!(Instant::now() < deadline, "etcd did not answer within {WAIT:?}:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills etcd (SIGKILL: no goodbye to its clients) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Quick timeouts and backoff, so a reconnect takes well under a second.
pub fn test_config(url: &str) -> Config {
    let mut config = Config::new([url]);
    config.request_timeout = Duration::from_secs(2);
    config.min_backoff = Duration::from_millis(50);
    config.max_backoff = Duration::from_millis(400);
    config
}

/// A raw etcd client, for what the crate does not do: garbage values, compaction, raw reads.
pub async fn raw_client(etcd: &Etcd) -> etcd_client::Client {
    etcd_client::Client::connect([etcd.url()], None).await.unwrap()
}

/// A TCP proxy to etcd that can cut every connection through it (and refuse new ones) while
/// etcd stays up.
#[derive(Debug)]
pub struct Proxy {
    port: u16,
    open: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<AbortHandle>>>,
    accept: AbortHandle,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let open = Arc::new(AtomicBool::new(true));
        let connections: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let (open2, connections2) = (open.clone(), connections.clone());
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut downstream, _)) = listener.accept().await else { continue };
                if !open2.load(Ordering::SeqCst) {
                    continue;
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut up) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut downstream, &mut up).await;
                    }
                });
                connections2.lock().unwrap().push(task.abort_handle());
            }
        })
        .abort_handle();
        Proxy { port, open, connections, accept }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Closes every connection through the proxy and refuses new ones.
    pub fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for c in self.connections.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    pub fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

/// The next event, or a failure after [`WAIT`].
pub async fn next(rx: &mut mpsc::Receiver<Event>) -> Event {
    match tokio::time::timeout(WAIT, rx.recv()).await {
        Ok(Some(e)) => e,
        Ok(None) => panic!("the event stream ended"),
        Err(_) => panic!("no event within {WAIT:?}"),
    }
}

/// The next `n` events.
pub async fn take(rx: &mut mpsc::Receiver<Event>, n: usize) -> Vec<Event> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(next(rx).await);
    }
    out
}

/// Asserts that nothing arrives for `quiet`.
pub async fn assert_quiet(rx: &mut mpsc::Receiver<Event>, quiet: Duration) {
    if let Ok(Some(e)) = tokio::time::timeout(quiet, rx.recv()).await {
        panic!("unexpected event {}", summary(std::slice::from_ref(&e)).join(""));
    }
}

/// Waits until the watcher's connection state is `want`.
pub async fn wait_connected(connected: &mut tokio::sync::watch::Receiver<bool>, want: bool) {
    tokio::time::timeout(WAIT, connected.wait_for(|c| *c == want))
        .await
        .unwrap_or_else(|_| panic!("connection state did not become {want} within {WAIT:?}"))
        .unwrap();
}

/// `apply KIND [NS/]NAME [v=V]`, `delete KIND [NS/]NAME`, `init-done`.
pub fn summary(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e {
            Event::Apply(r) => match r.metadata().labels.get("v") {
                Some(v) => format!("apply {} v={v}", r.key()),
                None => format!("apply {}", r.key()),
            },
            Event::Delete(k) => format!("delete {k}"),
            Event::InitDone => "init-done".to_owned(),
        })
        .collect()
}

pub fn parse(yaml: &str) -> Resource {
    let mut parsed = parse_documents(yaml, "fixture.yaml");
    assert_eq!(parsed.len(), 1, "{yaml}");
    parsed.remove(0).unwrap_or_else(|e| panic!("{e}"))
}

/// A Tier labelled `v`.
pub fn tier(name: &str, v: u32) -> Resource {
    parse(&format!(
        "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {{name: {name}, labels: {{v: '{v}'}}}}\nspec: {{order: {v}}}\n"
    ))
}

/// One resource of every kind the etcd layout holds, each labelled `v`.
pub fn every_kind(v: u32) -> Vec<Resource> {
    let docs = [
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: gnp}\nspec:\n  selector: app == 'web'\n  ingress:\n  - action: Allow\n    http: {methods: [GET], paths: [{prefix: /api}]}\n",
        "apiVersion: projectcalico.org/v3\nkind: StagedGlobalNetworkPolicy\nmetadata: {name: sgnp}\nspec: {stagedAction: Set, selector: all(), ingress: [{action: Deny}]}\n",
        "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: np, namespace: shop}\nspec:\n  tier: sec\n  order: 10\n  selector: app == 'db'\n  ingress:\n  - action: Allow\n    source: {serviceAccounts: {names: [web]}}\n",
        "apiVersion: projectcalico.org/v3\nkind: StagedNetworkPolicy\nmetadata: {name: snp, namespace: shop}\nspec: {stagedAction: Set, selector: all(), egress: [{action: Allow}]}\n",
        "apiVersion: projectcalico.org/v3\nkind: StagedKubernetesNetworkPolicy\nmetadata: {name: sknp, namespace: shop}\nspec:\n  stagedAction: Set\n  podSelector: {matchLabels: {app: web}}\n  ingress:\n  - ports: [{port: 8080}]\n",
        "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: sec}\nspec: {order: 100, defaultAction: Pass}\n",
        "apiVersion: projectcalico.org/v3\nkind: Profile\nmetadata: {name: kns.shop}\nspec: {labelsToApply: {pcns.env: prod, pcns.projectcalico.org/name: shop}}\n",
        "apiVersion: projectcalico.org/v3\nkind: WorkloadEndpoint\nmetadata: {name: node1-k8s-web-eth0, namespace: shop, labels: {app: web}}\nspec:\n  orchestrator: k8s\n  node: node1\n  pod: web\n  endpoint: eth0\n  serviceAccountName: web\n  ipNetworks: [10.0.0.1/32]\n  profiles: [kns.shop, ksa.shop.web]\n",
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata: {name: gns}\nspec: {nets: [192.0.2.0/24]}\n",
        "apiVersion: projectcalico.org/v3\nkind: NetworkSet\nmetadata: {name: ns1, namespace: shop}\nspec: {nets: [198.51.100.0/28]}\n",
    ];
    docs.iter()
        .map(|d| {
            let mut r = parse(d);
            r.metadata_mut().labels.insert("v".to_owned(), v.to_string());
            r
        })
        .collect()
}

/// `resources` as the watcher reports them: sorted by key, with `resourceVersion` = `revision`.
pub fn as_stored(resources: &[Resource], revision: i64) -> Vec<Resource> {
    let mut out: Vec<Resource> = resources
        .iter()
        .cloned()
        .map(|mut r| {
            r.metadata_mut().resource_version = Some(revision.to_string());
            r
        })
        .collect();
    out.sort_by_key(Resource::key);
    out
}
