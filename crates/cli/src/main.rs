//! `alp`: Calico application-layer policy for Envoy, reimplemented. This binary is the only
//! place where the pure core (selector, model, engine) meets files, sockets and processes.

mod cmd;

use std::process::ExitCode;

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
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Decide requests offline against a policy-sync stream.
    Eval(cmd::eval::Args),
    /// The Calico selector language.
    #[command(subcommand)]
    Selector(cmd::selector::Command),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Eval(args) => cmd::eval::run(args),
        Command::Selector(cmd) => cmd::selector::run(cmd),
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
