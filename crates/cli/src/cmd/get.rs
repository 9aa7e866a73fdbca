//! `alp get KIND [NAME]`: resources read back from the etcd datastore, as `calicoctl get -o yaml`
//! prints them (one resource by name, else a `<Kind>List`); the output can be applied again.

use std::process::ExitCode;

use alp_datastore_etcd::{Connection, kind_named};
use alp_resources::{CALICO_API_VERSION, DEFAULT_NAMESPACE, Resource, ResourceKey};
use clap::ValueEnum;

use super::datastore::{Datastore, EtcdTls, etcd_once};
use crate::BadInput;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Output {
    Yaml,
    Json,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The kind: `GlobalNetworkPolicy`, its plural, either in any case, or `gnp`, `np`, `wep`.
    pub kind: String,
    /// One resource; without it, every resource of the kind.
    pub name: Option<String>,
    /// The namespace of namespaced kinds (default `default`, as calicoctl).
    #[arg(short = 'n', long, conflicts_with = "all_namespaces")]
    pub namespace: Option<String>,
    /// Namespaced kinds: every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// How to print the resources.
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Yaml)]
    pub output: Output,
    /// The datastore: `etcd:http://HOST:PORT[,…]`.
    #[arg(long, env = "ALP_DATASTORE")]
    pub datastore: Datastore,
    #[command(flatten)]
    pub etcd: EtcdTls,
}

/// `calicoctl get` without a name: the items of one kind.
#[derive(serde::Serialize)]
struct List<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    kind: String,
    items: &'a [Resource],
}

fn render<T: serde::Serialize>(value: &T, output: Output) -> anyhow::Result<String> {
    Ok(match output {
        Output::Yaml => serde_saphyr::to_string(value)?,
        Output::Json => serde_json::to_string_pretty(value)? + "\n",
    })
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let datastore = args.datastore.clone().with_tls(&args.etcd)?;
    let source = datastore.to_string();
    let config = datastore.etcd("get")?;
    let kind = kind_named(&args.kind).ok_or_else(|| {
        let lower = args.kind.to_ascii_lowercase();
        let kubernetes = ["pod", "namespace", "serviceaccount"].iter().any(|k| lower.trim_end_matches('s') == *k);
        let hint = if kubernetes {
            "; in etcd mode workloads are WorkloadEndpoints (wep) and namespace and service account labels live in \
             kns.* / ksa.* Profiles"
        } else {
            ""
        };
        BadInput(format!("{:?}: not a kind stored in etcd{hint}", args.kind))
    })?;
    let namespace = match (kind.is_namespaced(), args.all_namespaces) {
        (true, false) => Some(args.namespace.clone().unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned())),
        _ => None,
    };
    let (resources, skipped) = etcd_once(&source, async {
        Connection::connect(&config).await?.get(kind, namespace.as_deref(), args.name.as_deref()).await
    })?;
    for e in &skipped {
        eprintln!("alp: skipped: {e}");
    }
    let text = match (&args.name, resources.as_slice()) {
        (Some(name), []) => {
            let key = ResourceKey { kind, namespace, name: name.clone() };
            eprintln!("alp: resource does not exist: {key}");
            return Ok(ExitCode::FAILURE);
        }
        (Some(_), [one]) => render(one, args.output)?,
        (_, items) => {
            render(&List { api_version: CALICO_API_VERSION, kind: format!("{kind}List"), items }, args.output)?
        }
    };
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}
