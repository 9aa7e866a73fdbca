//! `alp apply -f FILE|DIR` and `alp delete -f FILE|DIR` on the etcd datastore: every document is
//! checked first (the file datastore's errors, plus kinds that have no etcd key), then all of
//! them are written, or deleted, under Calico's keys in one transaction, as `calicoctl` would.
//! If any document is unfit, nothing is written.

use std::{collections::BTreeSet, io::Read, path::PathBuf, process::ExitCode};

use super::datastore::{Datastore, EtcdTls, etcd_once};
use crate::BadInput;
use alp_datastore_etcd::{Connection, etcd_key};
use alp_resources::{Resource, ResourceKey, parse_documents};

/// The arguments of `alp apply` and `alp delete`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A resource file (YAML or JSON, multi-document), a directory (every *.yaml, *.yml and
    /// *.json under it), or `-` for stdin. Repeatable.
    #[arg(short = 'f', long = "filename", value_name = "FILE|DIR", required = true)]
    pub files: Vec<PathBuf>,
    /// The datastore: `etcd:http://HOST:PORT[,…]`.
    #[arg(long, env = "ALP_DATASTORE")]
    pub datastore: Datastore,
    #[command(flatten)]
    pub etcd: EtcdTls,
}

/// The files named on the command line, directories expanded (sorted), with their text.
fn sources(paths: &[PathBuf], errors: &mut Vec<String>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            let mut text = String::new();
            match std::io::stdin().read_to_string(&mut text) {
                Ok(_) => out.push(("<stdin>".to_owned(), text)),
                Err(e) => errors.push(format!("<stdin>: {e}")),
            }
            continue;
        }
        let mut files = Vec::new();
        if path.is_dir() {
            if let Err(e) = alp_datastore_file::list(path, &mut files) {
                errors.push(format!("{}: {e}", path.display()));
            }
            files.sort();
        } else {
            files.push(path.clone());
        }
        for file in files {
            match std::fs::read_to_string(&file) {
                Ok(text) => out.push((file.display().to_string(), text)),
                Err(e) => errors.push(format!("{}: {e}", file.display())),
            }
        }
    }
    out
}

/// Every resource in `paths`, or (printed on stderr) every reason one cannot be written.
fn checked(paths: &[PathBuf]) -> anyhow::Result<Vec<Resource>> {
    let mut errors = Vec::new();
    let mut resources = Vec::new();
    for (file, text) in sources(paths, &mut errors) {
        for parsed in parse_documents(&text, &file) {
            match parsed {
                Ok(r) => match etcd_key(&r.key()) {
                    Ok(_) => resources.push(r),
                    Err(e) => errors.push(format!("{file}: {}: {e}", r.key())),
                },
                Err(e) => errors.push(e.to_string()),
            }
        }
    }
    if !errors.is_empty() {
        for e in &errors {
            eprintln!("alp: {e}");
        }
        let n = errors.len();
        return Err(BadInput(format!("{n} problem(s) in the input; nothing written")).into());
    }
    if resources.is_empty() {
        let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        return Err(BadInput(format!("no resources in {}", names.join(", "))).into());
    }
    Ok(resources)
}

/// `3 'GlobalNetworkPolicy' resource(s)` when all are of one kind, else `3 resource(s)`, as
/// calicoctl says it.
fn counted(keys: &[ResourceKey]) -> String {
    let kinds: BTreeSet<_> = keys.iter().map(|k| k.kind).collect();
    match kinds.first() {
        Some(kind) if kinds.len() == 1 => format!("{} '{kind}' resource(s)", keys.len()),
        _ => format!("{} resource(s)", keys.len()),
    }
}

/// `alp apply`: creates or replaces every resource.
pub fn apply(args: Args) -> anyhow::Result<ExitCode> {
    let datastore = args.datastore.clone().with_tls(&args.etcd)?;
    let name = datastore.to_string();
    let config = datastore.etcd("apply")?;
    let resources = checked(&args.files)?;
    etcd_once(&name, async { Connection::connect(&config).await?.apply(&resources).await })?;
    let keys: Vec<ResourceKey> = resources.iter().map(Resource::key).collect();
    println!("Successfully applied {}", counted(&keys));
    Ok(ExitCode::SUCCESS)
}

/// `alp delete`: deletes every resource's key; a key that is not there is reported and makes
/// the exit code 1 (the others are deleted).
pub fn delete(args: Args) -> anyhow::Result<ExitCode> {
    let datastore = args.datastore.clone().with_tls(&args.etcd)?;
    let name = datastore.to_string();
    let config = datastore.etcd("delete")?;
    let keys: BTreeSet<ResourceKey> = checked(&args.files)?.iter().map(Resource::key).collect();
    let keys: Vec<ResourceKey> = keys.into_iter().collect();
    let missing = etcd_once(&name, async { Connection::connect(&config).await?.delete(&keys).await })?;
    let deleted: Vec<ResourceKey> = keys.iter().filter(|k| !missing.contains(k)).cloned().collect();
    if missing.is_empty() {
        println!("Successfully deleted {}", counted(&deleted));
        return Ok(ExitCode::SUCCESS);
    }
    println!("Partial success: deleted {} out of {} resource(s)", deleted.len(), keys.len());
    for k in &missing {
        eprintln!("alp: resource does not exist: {k}");
    }
    Ok(ExitCode::FAILURE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_as_calicoctl_says_them() {
        let key = |kind, name: &str| ResourceKey { kind, namespace: None, name: name.to_owned() };
        let (a, b, c) = (
            key(alp_resources::Kind::Tier, "a"),
            key(alp_resources::Kind::Tier, "b"),
            key(alp_resources::Kind::GlobalNetworkPolicy, "c"),
        );
        assert_eq!(counted(&[a.clone(), b]), "2 'Tier' resource(s)");
        assert_eq!(counted(&[a, c]), "2 resource(s)");
        assert_eq!(counted(&[]), "0 resource(s)");
    }
}
