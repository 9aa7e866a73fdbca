//! `alp health liveness|readiness` (and `dikastes health`, and the `healthz` binary name):
//! exit 0 healthy, 1 bad argument, 2 RPC error, 3 unhealthy (Calico's `healthz` codes).

use std::process::ExitCode;

use alp_proto::dikastes::{HealthCheckRequest, grpc::healthz_client::HealthzClient};
use clap::ValueEnum;

use super::server::DEFAULT_LISTEN;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Probe {
    Liveness,
    Readiness,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    pub probe: Probe,
    /// The authorizer's socket (or `tcp://HOST:PORT`).
    #[arg(long, env = "ALP_DIAL_PATH", default_value = DEFAULT_LISTEN)]
    pub dial_path: String,
}

pub fn run(args: Args) -> ExitCode {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        return ExitCode::from(2);
    };
    runtime.block_on(async {
        let channel = match alp_authz_server::connect(&args.dial_path).await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("alp health: connecting to {}: {e}", args.dial_path);
                return ExitCode::from(2);
            }
        };
        let mut client = HealthzClient::new(channel);
        let resp = match args.probe {
            Probe::Liveness => client.check_liveness(HealthCheckRequest {}).await,
            Probe::Readiness => client.check_readiness(HealthCheckRequest {}).await,
        };
        match resp {
            Ok(r) if r.get_ref().healthy => ExitCode::SUCCESS,
            Ok(_) => {
                eprintln!("alp health: {:?}: not healthy", args.probe);
                ExitCode::from(3)
            }
            Err(e) => {
                eprintln!("alp health: {e}");
                ExitCode::from(2)
            }
        }
    })
}
