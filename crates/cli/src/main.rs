//! `alp`: Calico application-layer policy for Envoy, reimplemented. This binary is the only
//! place where the pure core (selector, model, engine) meets files, sockets and processes.
//!
//! Invoked as `dikastes` it takes Dikastes's command line; invoked as `healthz` it is
//! `alp health` (with the old `-dialPath` flag).

mod cmd;
mod signals;

use std::{ffi::OsString, path::Path, process::ExitCode};

use clap::{Parser, Subcommand};

/// Input that is malformed: reported on stderr, exit code 2.
#[derive(Debug)]
pub(crate) struct BadInput(pub String);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

#[derive(Parser, Debug)]
#[command(name = "alp", version, about = "Calico application-layer policy for Envoy ext_authz")]
struct Cli {
    /// Log at debug level.
    #[arg(long, global = true, env = "ALP_DEBUG")]
    debug: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The authorizer: Envoy ext_authz fed by a policy-sync stream.
    Server(cmd::server::Args),
    /// The node agent: datastore → per-workload policy-sync sockets.
    Agent(cmd::agent::Args),
    /// Print the policy-sync stream a workload would receive, as JSON lines.
    Calc(cmd::calc::Args),
    /// Send one Check to a running authorizer and print the answer.
    Client(cmd::client::Args),
    /// Ask a running authorizer whether it is live or ready (exit 0 / 1 / 2 / 3).
    Health(cmd::health::Args),
    /// Decide requests offline against a policy-sync stream.
    Eval(cmd::eval::Args),
    /// The Calico selector language.
    #[command(subcommand)]
    Selector(cmd::selector::Command),
    /// Write resources to the etcd datastore in Calico's layout (as calicoctl apply).
    Apply(cmd::apply::Args),
    /// Delete resources from the etcd datastore (as calicoctl delete).
    Delete(cmd::apply::Args),
    /// Read resources back from the etcd datastore as YAML or JSON (as calicoctl get).
    Get(cmd::get::Args),
}

/// The arguments as `alp` understands them, whatever name the binary was invoked under.
fn arguments() -> Vec<OsString> {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let name = args.first().and_then(|a| Path::new(a).file_name()).and_then(|n| n.to_str()).unwrap_or("alp");
    if name == "healthz" {
        // Calico's /healthz: `healthz [-dialPath P] liveness|readiness`.
        let rest = args.split_off(1).into_iter().map(|a| match a.to_str() {
            Some("-dialPath" | "--dialPath") => OsString::from("--dial-path"),
            Some(s) if s.starts_with("-dialPath=") || s.starts_with("--dialPath=") => {
                OsString::from(format!("--dial-path={}", s.split_once('=').map_or("", |(_, v)| v)))
            }
            _ => a,
        });
        return std::iter::once(OsString::from("alp")).chain(std::iter::once("health".into())).chain(rest).collect();
    }
    args
}

fn init_logs(debug: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ALP_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(if debug {
            "info,alp=debug,alp_sync=debug,alp_authz_server=debug"
        } else {
            "info"
        })
    });
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

fn main() -> ExitCode {
    let args = arguments();
    let is_health = args.get(1).and_then(|a| a.to_str()) == Some("health");
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() && is_health => {
            // The health probe's contract: a bad argument exits 1.
            let _ = e.print();
            return ExitCode::from(1);
        }
        Err(e) => e.exit(),
    };
    init_logs(cli.debug);
    let result = match cli.command {
        Command::Server(args) => cmd::server::run(args),
        Command::Agent(args) => cmd::agent::run(args),
        Command::Calc(args) => cmd::calc::run(args),
        Command::Client(args) => cmd::client::run(args),
        Command::Health(args) => Ok(cmd::health::run(args)),
        Command::Eval(args) => cmd::eval::run(args),
        Command::Selector(cmd) => cmd::selector::run(cmd),
        Command::Apply(args) => cmd::apply::apply(args),
        Command::Delete(args) => cmd::apply::delete(args),
        Command::Get(args) => cmd::get::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) if e.downcast_ref::<BadInput>().is_some() => {
            eprintln!("alp: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("alp: {e:#}");
            ExitCode::FAILURE
        }
    }
}
