//! A real etcd for tests and benchmarks (feature `etcd`): started on free loopback ports with its
//! own data directory, stopped (SIGKILL) and restarted on the same ports and data, killed on
//! drop. A TCP proxy in front of it cuts a watcher off while etcd stays up. Every wait is bounded.
//!
//! The binary is `ALP_ETCD`, else `etcd` on PATH (Debian's `etcd-server`); without one, starting
//! etcd panics: a test that needs etcd fails, it never skips.

use std::{
    net::{SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use alp_datastore_etcd::{Config, Connection};
use alp_resources::Kind;
use tokio::task::AbortHandle;

/// How long any single expected thing may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(15);

/// The etcd binary: `ALP_ETCD`, else `etcd` on PATH. Panics when there is none.
pub fn etcd_binary() -> PathBuf {
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
    /// The CA certificate (PEM) that signed `cert`.
    pub ca: PathBuf,
    /// The server's certificate (PEM).
    pub cert: PathBuf,
    /// The server's private key (PEM).
    pub key: PathBuf,
}

/// One etcd member on loopback.
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
    /// HTTPS and requires a client certificate signed by `tls.ca` (the readiness probe uses
    /// `client.crt` and `client.key` beside the CA).
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

    /// The client address etcd listens on.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.client_port))
    }

    /// The client URL: `https://` when started with TLS.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.client_port)
    }

    /// The data directory (and `etcd.log`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The running process's id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
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
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Kills etcd (SIGKILL: no goodbye to its clients) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// What etcd has written to its log so far.
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

/// A raw etcd client, for what the datastore crate does not do: garbage values, compaction, raw
/// reads.
pub async fn raw_client(etcd: &Etcd) -> etcd_client::Client {
    etcd_client::Client::connect([etcd.url()], None).await.unwrap()
}

/// A TCP proxy to etcd that can cut every connection through it (and refuse new ones) while
/// etcd stays up. Needs a tokio runtime.
#[derive(Debug)]
pub struct Proxy {
    port: u16,
    open: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<AbortHandle>>>,
    accept: AbortHandle,
}

impl Proxy {
    /// A TCP proxy on a free local port that forwards to `upstream`.
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

    /// The proxy's URL, for a client to dial instead of `upstream`.
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

    /// Accepts connections again after [`cut`](Self::cut).
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
