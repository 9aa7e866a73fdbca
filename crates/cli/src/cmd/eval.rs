//! `alp eval`: the authorizer's decision offline, for tests, explain and replaying traffic.

use std::{collections::BTreeMap, fmt::Write as _, io::Read, process::ExitCode};

use alp_engine::{Config, Decision, Direction, Scope, Store};
use alp_envoy::{CheckRequest, check_request_from_json, to_request};
use anyhow::Context;
use clap::ValueEnum;

use crate::BadInput;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The policy-sync stream: one felix.ToDataplane per line in proto3 JSON (`-` = stdin).
    #[arg(long, env = "ALP_SYNC", required_unless_present = "datastore", conflicts_with = "datastore")]
    sync: Option<String>,
    /// Or: calculate the stream the agent would send `--workload` from this datastore (`file:DIR`
    /// or `etcd:http://HOST:PORT[,…]`).
    #[arg(long, env = "ALP_DATASTORE", requires = "workload")]
    datastore: Option<super::datastore::Datastore>,
    #[command(flatten)]
    etcd: super::datastore::EtcdTls,
    /// The workload (`NAMESPACE/POD`) whose policy `--datastore` gives.
    #[arg(long, env = "ALP_WORKLOAD", value_parser = super::datastore::parse_workload, requires = "datastore")]
    workload: Option<String>,
    /// One envoy.service.auth.v3.CheckRequest in proto3 JSON (`-` = stdin).
    #[arg(long, env = "ALP_REQUEST", conflicts_with = "requests", required_unless_present = "requests")]
    request: Option<String>,
    /// CheckRequests in proto3 JSON, one per line.
    #[arg(long, env = "ALP_REQUESTS")]
    requests: Option<String>,
    /// Print only a tally of the answers by status.
    #[arg(long, env = "ALP_COUNT")]
    count: bool,
    /// Evaluate each request N times (for timing from outside); print its answer once.
    #[arg(long, env = "ALP_REPEAT", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    repeat: u64,
    #[arg(long, env = "ALP_DIRECTION", value_enum, default_value_t = DirectionArg::Ingress)]
    direction: DirectionArg,
    /// `enforced`: staged policies are skipped (as the authorizer does); `staged`: evaluated as if enforced.
    #[arg(long, env = "ALP_SCOPE", value_enum, default_value_t = ScopeArg::Enforced)]
    scope: ScopeArg,
    /// Accept SPIFFE identities of this trust domain only (difference D7).
    #[arg(long, env = "ALP_TRUST_DOMAIN")]
    trust_domain: Option<String>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum DirectionArg {
    Ingress,
    Egress,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ScopeArg {
    Enforced,
    Staged,
}

fn read(path: &str) -> anyhow::Result<String> {
    if path == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).context("reading stdin")?;
        return Ok(s);
    }
    std::fs::read_to_string(path).map_err(|e| BadInput(format!("{path}: {e}")).into())
}

fn requests(args: &Args) -> anyhow::Result<Vec<CheckRequest>> {
    if let Some(path) = &args.request {
        let text = read(path)?;
        let req = check_request_from_json(&text).map_err(|e| BadInput(format!("{path}: {e}")))?;
        return Ok(vec![req]);
    }
    let path = args.requests.as_deref().unwrap_or("-");
    read(path)?
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| check_request_from_json(l).map_err(|e| BadInput(format!("{path}: line {}: {e}", i + 1)).into()))
        .collect()
}

/// One trace entry as `alp eval` prints it.
#[derive(serde::Serialize)]
struct HitJson<'a> {
    kind: &'a str,
    tier: &'a str,
    namespace: &'a str,
    name: &'a str,
    index: i32,
    action: &'static str,
}

/// One answer as `alp eval` prints it (fields in the documented order).
#[derive(serde::Serialize)]
pub struct DecisionJson<'a> {
    code: i32,
    status: &'static str,
    message: &'a str,
    trace: Vec<HitJson<'a>>,
}

impl<'a, 's: 'a> From<&'a Decision<'s>> for DecisionJson<'a> {
    fn from(d: &'a Decision<'s>) -> Self {
        DecisionJson {
            code: d.code as i32,
            status: d.code.name(),
            message: &d.message,
            trace: d
                .trace
                .iter()
                .map(|h| HitJson {
                    kind: h.kind(),
                    tier: h.tier(),
                    namespace: h.namespace(),
                    name: h.name(),
                    index: h.index,
                    action: h.action.as_str(),
                })
                .collect(),
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let stdin_twice = args.request.as_deref() == Some("-") || args.requests.as_deref() == Some("-");
    let (source, messages) = match (&args.sync, &args.datastore, &args.workload) {
        (Some(sync), _, _) => {
            if sync == "-" && stdin_twice {
                return Err(BadInput("only one of --sync and --request(s) can read stdin".into()).into());
            }
            let text = read(sync)?;
            (sync.clone(), alp_proto::jsonl::decode_lines(&text).map_err(|e| BadInput(format!("{sync}: {e}")))?)
        }
        (None, Some(ds), Some(workload)) => {
            let ds = ds.clone().with_tls(&args.etcd)?;
            (workload.clone(), alp_calc::workload_stream(super::datastore::load(&ds)?, workload))
        }
        _ => return Err(BadInput("give --sync, or --datastore with --workload".into()).into()),
    };
    let requests = requests(&args)?;

    let mut store = Store::new(Config { trust_domain: args.trust_domain.clone() });
    for (i, m) in messages.iter().enumerate() {
        if let Err(e) = store.apply(m) {
            eprintln!("alp: {source}: message {}: {e} (ignored, as the authorizer would)", i + 1);
        }
    }
    // The end of the stream counts as InSync.
    let snap = store.snapshot();
    let direction = match args.direction {
        DirectionArg::Ingress => Direction::Ingress,
        DirectionArg::Egress => Direction::Egress,
    };
    let scope = match args.scope {
        ScopeArg::Enforced => Scope::Enforced,
        ScopeArg::Staged => Scope::StagedAsEnforced,
    };

    let mut tally: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut out = String::new();
    for check in &requests {
        for _ in 1..args.repeat {
            std::hint::black_box(alp_engine::decide_with(&snap, &to_request(check), direction, scope).code);
        }
        let d = alp_engine::decide_with(&snap, &to_request(check), direction, scope);
        if args.count {
            *tally.entry(d.code.name()).or_default() += 1;
        } else {
            let _ = writeln!(out, "{}", serde_json::to_string(&DecisionJson::from(&d))?);
        }
    }
    if args.count {
        let _ = writeln!(out, "{}", serde_json::to_string(&tally)?);
    }
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}
