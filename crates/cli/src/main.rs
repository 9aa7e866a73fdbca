//! `alp`: Calico application-layer policy for Envoy, reimplemented. This binary is the only
//! place where the pure core (selector, model, engine) meets files, sockets and processes.
//!
//! Invoked as `dikastes` it takes Dikastes's command line; invoked as `healthz` it is
//! `alp health` (with the old `-dialPath` flag).

mod cmd;
mod signals;

use std::{ffi::OsString, path::Path, process::ExitCode};

use clap::{Parser, Subcommand};
use tracing_subscriber::{filter::Targets, layer::SubscriberExt, util::SubscriberInitExt};

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
    #[cfg(feature = "full")]
    /// The node agent: datastore → per-workload policy-sync sockets.
    Agent(cmd::agent::Args),
    #[cfg(feature = "full")]
    /// Print the policy-sync stream a workload would receive, as JSON lines.
    Calc(cmd::calc::Args),
    /// Send one Check to a running authorizer and print the answer.
    Client(cmd::client::Args),
    /// Ask a running authorizer whether it is live or ready (exit 0 / 1 / 2 / 3).
    Health(cmd::health::Args),
    #[cfg(feature = "full")]
    /// Decide requests offline against a policy-sync stream.
    Eval(cmd::eval::Args),
    #[cfg(feature = "full")]
    /// The Calico selector language.
    #[command(subcommand)]
    Selector(cmd::selector::Command),
    #[cfg(feature = "full")]
    /// Write resources to the etcd datastore in Calico's layout (as calicoctl apply).
    Apply(cmd::apply::Args),
    #[cfg(feature = "full")]
    /// Delete resources from the etcd datastore (as calicoctl delete).
    Delete(cmd::apply::Args),
    #[cfg(feature = "full")]
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

/// Logs to stderr at the level `ALP_LOG` sets (`LEVEL` and `TARGET=LEVEL`, comma-separated,
/// e.g. `info,alp_sync=debug`), else info (debug for alp's own crates with `--debug`). A
/// `Targets` filter, not `EnvFilter`: it needs no regex engine, whose code an idle sidecar
/// would otherwise keep mapped.
fn init_logs(debug: bool) {
    let default = if debug { "info,alp=debug,alp_sync=debug,alp_authz_server=debug" } else { "info" };
    let (from_env, bad) = match std::env::var("ALP_LOG") {
        Ok(spec) => match spec.parse::<Targets>() {
            Ok(filter) => (Some(filter), None),
            Err(e) => (None, Some(format!("ALP_LOG={spec:?} ignored: {e}"))),
        },
        Err(_) => (None, None),
    };
    let filter = from_env.unwrap_or_else(|| default.parse().unwrap_or_default());
    let _ = tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(filter)
        .try_init();
    if let Some(bad) = bad {
        tracing::warn!("{bad}");
    }
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
        #[cfg(feature = "full")]
        Command::Agent(args) => cmd::agent::run(args),
        #[cfg(feature = "full")]
        Command::Calc(args) => cmd::calc::run(args),
        Command::Client(args) => cmd::client::run(args),
        Command::Health(args) => Ok(cmd::health::run(args)),
        #[cfg(feature = "full")]
        Command::Eval(args) => cmd::eval::run(args),
        #[cfg(feature = "full")]
        Command::Selector(cmd) => cmd::selector::run(cmd),
        #[cfg(feature = "full")]
        Command::Apply(args) => cmd::apply::apply(args),
        #[cfg(feature = "full")]
        Command::Delete(args) => cmd::apply::delete(args),
        #[cfg(feature = "full")]
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
