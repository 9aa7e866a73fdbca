//! `--datastore etcd:URL[,URL…]`: Calico's etcd v3 layout (`/calico/resources/v3/…`)
//! as the same [`Event`](alp_datastore::Event) stream the file datastore produces, and the
//! writers behind `alp apply`, `alp delete` and `alp get`.
//!
//! ```text
//! etcd /calico/resources/v3/projectcalico.org/… ──list, watch──▶ View ──Event──▶ calc
//! alp apply | delete | get ──────────────────────▶ Connection (one transaction per call)
//! ```
//!
//! * [`Config`] is the [`Backend`](alp_datastore::Backend): it lists the prefix at a revision,
//!   sends every good resource and then `InitDone`, and watches from the next revision. After a
//!   disconnect it reconnects with backoff and resumes from the last revision it saw; after a
//!   compaction it lists again and sends only the difference. A value that does not decode is logged and skipped; a key whose value
//!   stops decoding keeps its last good resource until the key is deleted.
//! * Keys of kinds alp does not read (`felixconfigurations`, `nodes`, `ippools`, …) are ignored.
//! * Kubernetes kinds (Pod, Namespace, ServiceAccount, networking.k8s.io NetworkPolicy) have no
//!   key in this layout: workloads are WorkloadEndpoints and namespace and service-account labels
//!   come from `kns.<ns>` / `ksa.<ns>.<sa>` Profiles, as Calico's kube-controllers write them.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing))]

mod codec;
mod connection;
mod keys;
mod view;
mod watch;

use std::{path::PathBuf, time::Duration};

use alp_resources::{Kind, ResourceKey};

pub use codec::{DecodeError, METADATA_ANNOTATION, decode, encode};
pub use connection::{Connection, load};
pub use keys::{PREFIX, etcd_key, kind_named, kind_of_plural, kind_prefix, plural};

/// Where etcd is and how to reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Client URLs: `http://host:port`, `https://host:port` (or `host:port`).
    pub endpoints: Vec<String>,
    /// PEM CA bundle that signs the servers' certificates (`--etcd-ca`).
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (`--etcd-cert`); needs `key_file`.
    pub cert_file: Option<PathBuf>,
    /// PEM client key (`--etcd-key`); needs `cert_file`.
    pub key_file: Option<PathBuf>,
    /// Bound on each request (connect, a list page, a transaction, starting a watch).
    pub request_timeout: Duration,
    /// First delay before reconnecting the watch; doubled on each failure.
    pub min_backoff: Duration,
    /// Longest delay before reconnecting the watch.
    pub max_backoff: Duration,
}

impl Config {
    /// Defaults: no TLS, 5 s requests, reconnect backoff 100 ms → 5 s.
    pub fn new(endpoints: impl IntoIterator<Item = impl Into<String>>) -> Config {
        Config {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            ca_file: None,
            cert_file: None,
            key_file: None,
            request_timeout: Duration::from_secs(5),
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }

    /// A comma-separated endpoint list (what follows `etcd:` in `--datastore`).
    pub fn from_endpoint_list(list: &str) -> Result<Config, Error> {
        let endpoints: Vec<&str> = list.split(',').map(str::trim).collect();
        if endpoints.iter().any(|e| e.is_empty()) {
            return Err(Error::Endpoints(list.to_owned()));
        }
        Ok(Config::new(endpoints))
    }
}

/// Why an etcd operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The endpoint list is empty or has an empty entry.
    #[error("{0:?}: expected etcd endpoints, comma-separated (http://host:port,…)")]
    Endpoints(String),
    /// A TLS file could not be read.
    #[error("reading {}: {source}", path.display())]
    TlsFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Only one of the client certificate and key was given.
    #[error("a client certificate needs its key and a key its certificate (--etcd-cert with --etcd-key)")]
    TlsPair,
    /// The client library or the server refused the operation.
    #[error("etcd: {0}")]
    Etcd(#[from] etcd_client::Error),
    /// An operation did not finish within [`Config::request_timeout`].
    #[error("etcd: no answer within {0:?}")]
    Timeout(Duration),
    /// A kind that Calico's etcd layout does not hold.
    #[error(
        "kind {kind} has no etcd key: in etcd mode workloads are WorkloadEndpoints and namespace and service \
         account labels come from kns.<namespace> / ksa.<namespace>.<serviceaccount> Profiles"
    )]
    NotStored {
        /// The kind.
        kind: Kind,
    },
    /// A name or namespace that cannot be a key segment (empty, or with a `/`).
    #[error("{kind}: {what} {value:?} cannot be part of an etcd key")]
    InvalidKeySegment {
        /// The kind.
        kind: Kind,
        /// `name` or `namespace`.
        what: &'static str,
        /// The value.
        value: String,
    },
    /// A resource that did not serialise.
    #[error("{key}: {message}")]
    Encode {
        /// The resource.
        key: ResourceKey,
        /// serde_json's message.
        message: String,
    },
    /// A response without the header that carries the revision.
    #[error("etcd: response without a header")]
    NoHeader,
    /// The watch was cancelled by the server for a reason other than a compaction.
    #[error("etcd: watch cancelled: {0}")]
    WatchCancelled(String),
    /// The watch stream ended.
    #[error("etcd: watch stream ended")]
    WatchEnded,
}
