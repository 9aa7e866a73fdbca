//! `alp selector eval|fmt|id`.

use std::{collections::BTreeMap, process::ExitCode};

use alp_selector::Selector;
use clap::Subcommand;

use crate::BadInput;

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print `true` or `false`: does SELECTOR match the labels?
    Eval {
        selector: String,
        /// The labels, as a JSON object of strings.
        #[arg(long, env = "ALP_LABELS", default_value = "{}")]
        labels: String,
    },
    /// Print the canonical form.
    Fmt { selector: String },
    /// Print Felix's IP-set id for the selector.
    Id { selector: String },
}

fn parse(text: &str) -> anyhow::Result<Selector> {
    Selector::parse(text).map_err(|e| BadInput(format!("selector {text:?}: {e}")).into())
}

pub fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Eval { selector, labels } => {
            let sel = parse(&selector)?;
            let labels: BTreeMap<String, String> = serde_json::from_str(&labels)
                .map_err(|e| BadInput(format!("--labels: not a JSON object of strings: {e}")))?;
            println!("{}", sel.matches(&labels));
        }
        Command::Fmt { selector } => println!("{}", parse(&selector)?),
        Command::Id { selector } => println!("{}", parse(&selector)?.unique_id()),
    }
    Ok(ExitCode::SUCCESS)
}
