//! `alp-replay`: a policy-sync server for benchmarks and demos. Every `Sync` stream gets the
//! same messages (a JSON-lines file or a benchmark scenario) followed by InSync.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, ValueEnum};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Scenario {
    S1,
    S1MatchEarly,
    S2,
}

#[derive(Parser, Debug)]
#[command(about = "Serve a fixed policy-sync stream on a Unix socket")]
struct Args {
    /// The Unix socket to listen on (replaced if it exists).
    #[arg(long)]
    socket: PathBuf,
    /// felix.ToDataplane messages in proto3 JSON, one per line.
    #[arg(long, conflicts_with = "scenario")]
    sync: Option<PathBuf>,
    /// Or a benchmark scenario's stream.
    #[arg(long, value_enum)]
    scenario: Option<Scenario>,
    /// Also write the stream as JSON lines to this file and keep serving.
    #[arg(long)]
    dump: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut messages = match (&args.sync, args.scenario) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
            alp_proto::jsonl::decode_lines(&text)?
        }
        (None, Some(Scenario::S1)) => alp_scenarios::s1(alp_scenarios::S1Variant::FullWalk).messages,
        (None, Some(Scenario::S1MatchEarly)) => alp_scenarios::s1(alp_scenarios::S1Variant::MatchEarly).messages,
        (None, Some(Scenario::S2)) => alp_scenarios::s2().messages,
        (None, None) => anyhow::bail!("give --sync or --scenario"),
    };
    if let Some(path) = &args.dump {
        std::fs::write(path, alp_scenarios::to_json_lines(&messages))?;
    }
    let in_sync = alp_test_support::mk_in_sync();
    if messages.last() != Some(&in_sync) {
        messages.push(in_sync);
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let server = alp_test_support::ScriptedSyncServer::try_start(&args.socket)?;
        server.set_initial(messages);
        eprintln!("alp-replay: serving {}", args.socket.display());
        tokio::signal::ctrl_c().await?;
        server.stop().await;
        Ok(())
    })
}
