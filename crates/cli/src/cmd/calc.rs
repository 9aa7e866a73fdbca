//! `alp calc --datastore file:DIR|etcd:URL --workload NS/POD`: the policy-sync stream the agent
//! would send that workload, as proto3 JSON lines, in order.

use std::process::ExitCode;

use super::datastore::{Datastore, EtcdTls, load, parse_workload};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Where the resources live: `file:DIR` or `etcd:http://HOST:PORT[,…]`.
    #[arg(long, env = "ALP_DATASTORE")]
    pub datastore: Datastore,
    #[command(flatten)]
    pub etcd: EtcdTls,
    /// The workload, `NAMESPACE/POD`.
    #[arg(long, env = "ALP_WORKLOAD", value_parser = parse_workload)]
    pub workload: String,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut out = String::new();
    let datastore = args.datastore.clone().with_tls(&args.etcd)?;
    for m in alp_calc::workload_stream(load(&datastore)?, &args.workload) {
        out.push_str(&alp_proto::jsonl::encode(&m));
        out.push('\n');
    }
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}
