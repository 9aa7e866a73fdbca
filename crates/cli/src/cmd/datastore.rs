//! `--datastore` and the in-process path from resources to a workload's policy-sync stream:
//! datastore events → calculator → Felix's processor → the messages one workload receives.
//! `alp agent` runs the same calculator but serves the stream on sockets.

use std::path::PathBuf;

use alp_calc::Calculator;
use alp_datastore::Event;
use alp_proto::felix::ToDataplane;
use alp_sync::{Outgoing, Processor};

use crate::BadInput;

/// A `--datastore` value.
#[derive(Clone, Debug)]
pub enum Datastore {
    /// `file:DIR`, the embedded default.
    Files(PathBuf),
}

impl std::str::FromStr for Datastore {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.split_once(':') {
            Some(("file", dir)) if !dir.is_empty() => Ok(Datastore::Files(dir.into())),
            Some(("etcd", _)) => Err("the etcd datastore is not built yet (issue 5); use file:DIR".into()),
            _ if s == "kubernetes" => Err("the Kubernetes datastore is not built yet; use file:DIR".into()),
            _ => Err(format!("{s:?}: expected file:DIR")),
        }
    }
}

/// `NS/POD`.
pub fn parse_workload(s: &str) -> Result<String, String> {
    match s.split_once('/') {
        Some((ns, pod)) if !ns.is_empty() && !pod.is_empty() && !pod.contains('/') => Ok(s.to_owned()),
        _ => Err(format!("{s:?}: expected NAMESPACE/POD")),
    }
}

/// Feeds one datastore event to the calculator.
pub fn calculate(calc: &mut Calculator, event: Event) -> Vec<ToDataplane> {
    match event {
        Event::Apply(r) => calc.apply(&*r),
        Event::Delete(k) => calc.delete(&k),
        Event::InitDone => calc.in_sync(),
    }
}

/// One workload's view of the processor's output: what its stream would carry.
#[derive(Debug)]
pub struct WorkloadFeed {
    processor: Processor,
    workload_id: String,
    join: alp_sync::JoinId,
}

impl WorkloadFeed {
    /// Joins `workload_id` (`NS/POD`) on a fresh processor.
    pub fn new(workload_id: &str) -> (Self, Vec<ToDataplane>) {
        let mut processor = Processor::new();
        let (join, first) = processor.join(workload_id);
        (WorkloadFeed { processor, workload_id: workload_id.to_owned(), join }, first)
    }

    /// Applies the calculator's global messages; returns what the workload receives.
    pub fn apply(&mut self, messages: Vec<ToDataplane>) -> Vec<ToDataplane> {
        let mut out = Vec::new();
        for m in messages {
            for (key, outgoing) in self.processor.apply(m) {
                if key != self.workload_id {
                    continue;
                }
                match outgoing {
                    Outgoing::Message(m) => out.push(m),
                    Outgoing::End => {
                        // The workload went away: the stream ends; rejoin so a return is seen.
                        let (join, again) = self.processor.join(&self.workload_id);
                        self.join = join;
                        out.extend(again);
                    }
                }
            }
        }
        out
    }
}

/// The stream `workload` would receive from an agent over `datastore`, read once.
pub fn workload_stream(datastore: &Datastore, workload: &str) -> anyhow::Result<Vec<ToDataplane>> {
    let Datastore::Files(dir) = datastore;
    if !dir.is_dir() {
        return Err(BadInput(format!("{}: not a directory", dir.display())).into());
    }
    let (resources, errors) = alp_datastore_file::load(dir);
    for e in &errors {
        eprintln!("alp: {e}");
    }
    let mut calc = Calculator::new(None);
    let mut global = Vec::new();
    for r in resources {
        global.extend(calc.apply(r));
    }
    global.extend(calc.in_sync());
    let mut processor = Processor::new();
    for m in global {
        let _ = processor.apply(m);
    }
    Ok(processor.join(workload).1)
}
