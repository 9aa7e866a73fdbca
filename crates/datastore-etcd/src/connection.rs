//! One client connection and the one-shot operations: list, apply, delete, get, load.

use std::{collections::BTreeMap, future::Future, time::Duration};

use alp_resources::{Kind, Resource, ResourceKey};
use etcd_client::{
    Certificate, Client, ConnectOptions, GetOptions, Identity, KeyValue, TlsOptions, Txn, TxnOp, TxnOpResponse,
    WatchOptions, WatchStream,
};

use crate::{
    Config, DecodeError, Error,
    codec::encode,
    keys::{PREFIX, etcd_key, kind_prefix, range_end},
    view::{Entry, View},
};

/// Keys per page when listing, so one response stays far below the 4 MiB message limit.
const PAGE: i64 = 500;

/// HTTP/2 keepalive on the connection, so a server that vanishes without closing is noticed.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(5);

/// A client for one [`Config`], every request bounded by [`Config::request_timeout`].
#[derive(Clone)]
pub struct Connection {
    client: Client,
    timeout: Duration,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

fn read(path: &std::path::Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::TlsFile { path: path.to_owned(), source })
}

fn tls_options(config: &Config) -> Result<Option<TlsOptions>, Error> {
    let identity = match (&config.cert_file, &config.key_file) {
        (Some(cert), Some(key)) => Some(Identity::from_pem(read(cert)?, read(key)?)),
        (None, None) => None,
        _ => return Err(Error::TlsPair),
    };
    if config.ca_file.is_none() && identity.is_none() {
        return Ok(None);
    }
    let mut tls = TlsOptions::new();
    if let Some(ca) = &config.ca_file {
        tls = tls.ca_certificate(Certificate::from_pem(read(ca)?));
    }
    if let Some(identity) = identity {
        tls = tls.identity(identity);
    }
    Ok(Some(tls))
}

impl Connection {
    /// Connects to `config`'s endpoints (the first request fails if none answers).
    pub async fn connect(config: &Config) -> Result<Connection, Error> {
        if config.endpoints.is_empty() {
            return Err(Error::Endpoints(String::new()));
        }
        let mut options = ConnectOptions::new()
            .with_connect_timeout(config.request_timeout)
            .with_timeout(config.request_timeout)
            .with_keep_alive(KEEPALIVE_INTERVAL, KEEPALIVE_TIMEOUT);
        if let Some(tls) = tls_options(config)? {
            options = options.with_tls(tls);
        }
        let timeout = config.request_timeout;
        let client = timed(timeout, Client::connect(&config.endpoints, Some(options))).await?;
        Ok(Connection { client, timeout })
    }

    async fn timed<T>(&self, f: impl Future<Output = Result<T, etcd_client::Error>>) -> Result<T, Error> {
        timed(self.timeout, f).await
    }

    /// Every key-value under `prefix` at one revision (paged), and that revision.
    pub(crate) async fn list(&self, prefix: &str) -> Result<(i64, Vec<KeyValue>), Error> {
        let end = range_end(prefix);
        let mut from = prefix.as_bytes().to_vec();
        let mut revision = 0;
        let mut out = Vec::new();
        loop {
            let mut options = GetOptions::new().with_range(end.clone()).with_limit(PAGE);
            if revision > 0 {
                options = options.with_revision(revision);
            }
            let mut client = self.client.clone();
            let mut page = self.timed(client.get(from.clone(), Some(options))).await?;
            if revision == 0 {
                revision = page.header().ok_or(Error::NoHeader)?.revision();
            }
            let more = page.more();
            let kvs = page.take_kvs();
            let Some(last) = kvs.last() else { break };
            from = last.key().to_vec();
            from.push(0);
            out.extend(kvs);
            if !more {
                break;
            }
        }
        Ok((revision, out))
    }

    /// A watch of every key under [`PREFIX`] from `start_revision`.
    pub(crate) async fn watch_prefix(&self, start_revision: i64) -> Result<WatchStream, Error> {
        let options = WatchOptions::new().with_prefix().with_start_revision(start_revision).with_progress_notify();
        let mut client = self.client.clone();
        self.timed(client.watch(PREFIX, Some(options))).await
    }

    /// Stores every resource under its key as `calicoctl apply` would (see [`encode`]), all in one
    /// transaction: nothing is written unless everything is. A later resource with the same key
    /// wins. Returns the revision of the write.
    pub async fn apply(&self, resources: &[Resource]) -> Result<i64, Error> {
        let mut puts = BTreeMap::new();
        for r in resources {
            let (key, value) = encode(r)?;
            puts.insert(key, value);
        }
        let ops: Vec<TxnOp> = puts.into_iter().map(|(k, v)| TxnOp::put(k, v, None)).collect();
        let mut client = self.client.clone();
        let response = self.timed(client.txn(Txn::new().and_then(ops))).await?;
        Ok(response.header().ok_or(Error::NoHeader)?.revision())
    }

    /// Deletes the resources' keys in one transaction; returns the keys that were not there.
    pub async fn delete(&self, keys: &[ResourceKey]) -> Result<Vec<ResourceKey>, Error> {
        let mut unique: BTreeMap<String, &ResourceKey> = BTreeMap::new();
        for k in keys {
            unique.insert(etcd_key(k)?, k);
        }
        let ops: Vec<TxnOp> = unique.keys().map(|k| TxnOp::delete(k.as_str(), None)).collect();
        let mut client = self.client.clone();
        let response = self.timed(client.txn(Txn::new().and_then(ops))).await?;
        let missing = unique
            .values()
            .zip(response.op_responses())
            .filter(|(_, r)| matches!(r, TxnOpResponse::Delete(d) if d.deleted() == 0))
            .map(|(k, _)| (*k).clone())
            .collect();
        Ok(missing)
    }

    /// The stored resources of `kind`: in `namespace` (every namespace when `None`) and named
    /// `name` when given, in key order, with the values under the kind's prefix that did not
    /// decode. Resources carry `metadata.resourceVersion` (the key's mod revision).
    pub async fn get(
        &self,
        kind: Kind,
        namespace: Option<&str>,
        name: Option<&str>,
    ) -> Result<(Vec<Resource>, Vec<DecodeError>), Error> {
        let prefix = kind_prefix(kind, namespace)?;
        let (_, kvs) = self.list(&prefix).await?;
        let (resources, errors) = resources_of(&kvs);
        let wanted = resources.into_iter().filter(|r| name.is_none_or(|n| r.name() == n)).collect();
        Ok((wanted, errors))
    }
}

async fn timed<T>(timeout: Duration, f: impl Future<Output = Result<T, etcd_client::Error>>) -> Result<T, Error> {
    match tokio::time::timeout(timeout, f).await {
        Ok(r) => r.map_err(Error::from),
        Err(_) => Err(Error::Timeout(timeout)),
    }
}

/// The listing's entries whose keys are UTF-8; the others as errors.
pub(crate) fn entries(kvs: &[KeyValue]) -> (Vec<Entry<'_>>, Vec<DecodeError>) {
    let mut good = Vec::with_capacity(kvs.len());
    let mut bad = Vec::new();
    for kv in kvs {
        match kv.key_str() {
            Ok(k) => good.push((k, kv.value(), kv.mod_revision())),
            Err(_) => bad.push(DecodeError::KeyNotUtf8 { key: String::from_utf8_lossy(kv.key()).into_owned() }),
        }
    }
    (good, bad)
}

fn resources_of(kvs: &[KeyValue]) -> (Vec<Resource>, Vec<DecodeError>) {
    let (listing, mut errors) = entries(kvs);
    let mut view = View::default();
    let (_, skipped) = view.replace(listing);
    errors.extend(skipped.into_iter().map(|s| s.error));
    (view.into_resources(), errors)
}

/// Lists the datastore once (for `alp eval` and `alp calc`): every resource alp reads, and the
/// values that were skipped.
pub async fn load(config: &Config) -> Result<(Vec<Resource>, Vec<String>), Error> {
    let connection = Connection::connect(config).await?;
    let (_, kvs) = connection.list(PREFIX).await?;
    let (resources, errors) = resources_of(&kvs);
    Ok((resources, errors.iter().map(ToString::to_string).collect()))
}
