//! `--datastore`: which backend, its watch and a one-shot read. The in-process path from
//! there to a workload's policy-sync stream (calculator → Felix's processor) is
//! `alp_calc::workload_stream` and `alp_felix::WorkloadFeed`; `alp agent` runs the same
//! calculator but serves the stream on sockets.

use std::{path::PathBuf, time::Duration};

use alp_datastore::{Backend, Sink};
pub use alp_datastore_tokio::spawn_watch;
use alp_resources::Resource;

use crate::BadInput;

/// The longest wait between attempts to reach etcd again. A refused connection costs etcd
/// nothing and a reconnect resumes the watch where it stopped, so etcd's return is noticed
/// within this, whatever the outage's length.
const ETCD_MAX_BACKOFF: Duration = Duration::from_secs(1);

/// A `--datastore` value.
#[derive(Clone, Debug)]
pub enum Datastore {
    /// `file:DIR`, the embedded default.
    Files(PathBuf),
    /// `etcd:URL[,URL…]`: Calico's etcd v3 layout.
    Etcd(alp_datastore_etcd::Config),
}

impl std::str::FromStr for Datastore {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.split_once(':') {
            Some(("file", dir)) if !dir.is_empty() => Ok(Datastore::Files(dir.into())),
            Some(("etcd", endpoints)) => {
                let mut config =
                    alp_datastore_etcd::Config::from_endpoint_list(endpoints).map_err(|e| e.to_string())?;
                config.max_backoff = ETCD_MAX_BACKOFF;
                Ok(Datastore::Etcd(config))
            }
            _ if s == "kubernetes" => Err("the Kubernetes datastore is not built yet; use file:DIR or etcd:URL".into()),
            _ => Err(format!("{s:?}: expected file:DIR or etcd:http://HOST:PORT[,…]")),
        }
    }
}

impl std::fmt::Display for Datastore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Datastore::Files(dir) => write!(f, "file:{}", dir.display()),
            Datastore::Etcd(config) => write!(f, "etcd:{}", config.endpoints.join(",")),
        }
    }
}

/// TLS to etcd, wherever `--datastore` is taken (ignored for `file:`).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct EtcdTls {
    /// etcd: PEM CA bundle that signs the servers' certificates (needs https:// endpoints).
    #[arg(long, env = "ALP_ETCD_CA")]
    pub etcd_ca: Option<PathBuf>,
    /// etcd: PEM client certificate (with --etcd-key).
    #[arg(long, env = "ALP_ETCD_CERT")]
    pub etcd_cert: Option<PathBuf>,
    /// etcd: PEM client key (with --etcd-cert).
    #[arg(long, env = "ALP_ETCD_KEY")]
    pub etcd_key: Option<PathBuf>,
}

impl Datastore {
    /// The datastore with `tls` in force. Certificates need `https://` endpoints (a bare
    /// `host:port` is dialled over TLS), and a client certificate needs its key.
    pub fn with_tls(self, tls: &EtcdTls) -> Result<Datastore, BadInput> {
        let Datastore::Etcd(mut config) = self else { return Ok(self) };
        if tls.etcd_cert.is_some() != tls.etcd_key.is_some() {
            return Err(BadInput("--etcd-cert and --etcd-key go together".into()));
        }
        if (tls.etcd_ca.is_some() || tls.etcd_cert.is_some())
            && let Some(plain) = config.endpoints.iter().find(|e| e.starts_with("http://"))
        {
            return Err(BadInput(format!("--etcd-ca/--etcd-cert/--etcd-key need https:// endpoints, not {plain}")));
        }
        config.ca_file = tls.etcd_ca.clone();
        config.cert_file = tls.etcd_cert.clone();
        config.key_file = tls.etcd_key.clone();
        Ok(Datastore::Etcd(config))
    }

    /// The etcd config, for the commands that only write to etcd.
    pub fn etcd(self, command: &str) -> Result<alp_datastore_etcd::Config, BadInput> {
        match self {
            Datastore::Etcd(config) => Ok(config),
            Datastore::Files(dir) => Err(BadInput(format!(
                "alp {command} works on etcd (--datastore etcd:http://HOST:PORT); the files under {} are edited as files",
                dir.display()
            ))),
        }
    }
}

/// The backend a `--datastore` names (run with [`spawn_watch`]): files are always reachable;
/// etcd is while a watch is established.
impl Backend for Datastore {
    async fn run(self, sink: impl Sink) {
        match self {
            Datastore::Files(dir) => alp_datastore_file::Config::new(dir).run(sink).await,
            Datastore::Etcd(config) => config.run(sink).await,
        }
    }
}

/// Runs one etcd operation on a current-thread runtime. The error names the datastore and
/// carries the client's message (which already includes its cause) as text.
pub fn etcd_once<T>(
    datastore: &str,
    operation: impl Future<Output = Result<T, alp_datastore_etcd::Error>>,
) -> anyhow::Result<T> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(operation).map_err(|e| anyhow::anyhow!("{datastore}: {e}"))
}

/// Every resource in the datastore, read once; what did not parse or decode is reported on
/// stderr and left out.
pub fn load(datastore: &Datastore) -> anyhow::Result<Vec<Resource>> {
    let (resources, errors) = match datastore {
        Datastore::Files(dir) => {
            if !dir.is_dir() {
                return Err(BadInput(format!("{}: not a directory", dir.display())).into());
            }
            alp_datastore_file::load(dir)
        }
        Datastore::Etcd(config) => etcd_once(&datastore.to_string(), alp_datastore_etcd::load(config))?,
    };
    for e in &errors {
        eprintln!("alp: {e}");
    }
    Ok(resources)
}

/// `NS/POD`.
pub fn parse_workload(s: &str) -> Result<String, String> {
    match s.split_once('/') {
        Some((ns, pod)) if !ns.is_empty() && !pod.is_empty() && !pod.contains('/') => Ok(s.to_owned()),
        _ => Err(format!("{s:?}: expected NAMESPACE/POD")),
    }
}
