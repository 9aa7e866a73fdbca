//! `alp-s5`: scenario S5 (BENCHMARKS.md) against a real `alp agent` process: 10,000 pods
//! on 100 nodes (100 on the agent's node), 1,000 policies, 100 namespaces, 500 service accounts.
//! Reports time to InSync on every local socket, the agent's memory, and the time from a
//! pod-label change and from a policy edit to a changed verdict at an authorizer.
//!
//! `--datastore file` (the default) writes one file per namespace and edits by rewriting ns-0's
//! file. `--datastore etcd` starts a real etcd (`ALP_ETCD` or `etcd` on PATH) on free loopback
//! ports with a temporary data directory, loads the scenario in Calico's layout
//! (WorkloadEndpoints and `kns.`/`ksa.` Profiles in place of Pods, Namespaces and
//! ServiceAccounts), edits one WorkloadEndpoint or one NetworkPolicy per sample, and also
//! measures recovery: etcd killed, restarted, and a change made after the restart timed to the
//! verdict.

use std::{
    fmt::Write as _,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use alp_datastore_etcd::Connection;
use alp_engine::{Code, Live, LiveWriter, decide};
use alp_model::{Address, Http, Peer, Request};
use alp_resources::{Resource, parse_documents};
use alp_test_support::etcd::Etcd;
use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use tokio_util::sync::CancellationToken;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Datastore {
    File,
    Etcd,
}

#[derive(Parser, Debug)]
#[command(about = "Scenario S5: the node agent on the file or etcd datastore")]
struct Args {
    /// The alp binary (default: next to this one).
    #[arg(long)]
    alp: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Datastore::File)]
    datastore: Datastore,
    #[arg(long, default_value_t = 100)]
    namespaces: usize,
    /// Pods per namespace (100 namespaces × 100 = 10,000 pods on 100 nodes).
    #[arg(long, default_value_t = 100)]
    pods_per_namespace: usize,
    /// Rounds of edits; each gives two samples of each kind.
    #[arg(long, default_value_t = 20)]
    samples: usize,
    /// etcd: how many times etcd is killed and restarted.
    #[arg(long, default_value_t = 3)]
    recoveries: usize,
    /// etcd: how long etcd stays down each time.
    #[arg(long, default_value_t = 1000)]
    outage_ms: u64,
    /// Keep the agent's log here (set ALP_LOG for its level).
    #[arg(long)]
    log: Option<PathBuf>,
    /// Only write the datastore files into this directory, then exit (for profiling the agent).
    #[arg(long)]
    write_only: Option<PathBuf>,
}

const NODES: usize = 100;
const SAS_PER_NS: usize = 5;
const POLICIES_PER_NS: usize = 10;
/// etcd's default limit on operations per transaction.
const TXN_OPS: usize = 128;

fn node_of(i: usize, pods: usize, j: usize) -> usize {
    (i * pods + j) % NODES
}

fn role(j: usize, role_of_p20: &str) -> String {
    if j == 20 { role_of_p20.to_owned() } else { format!("r-{}", j % 20) }
}

fn network_policy(i: usize, k: usize, methods: &str) -> String {
    format!(
        "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {{name: np-{k}, namespace: ns-{i}}}\nspec:\n  selector: app == 'a-{k}'\n  ingress:\n  - action: Allow\n    source: {{selector: role == 'r-{k}'}}\n    http: {{methods: {methods}}}\n"
    )
}

fn namespace_file(i: usize, pods: usize, role_of_p20: &str, methods: &str) -> String {
    let mut s = String::new();
    let _ = write!(s, "apiVersion: v1\nkind: Namespace\nmetadata: {{name: ns-{i}, labels: {{idx: \"{i}\"}}}}\n");
    for a in 0..SAS_PER_NS {
        let _ = write!(
            s,
            "---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: sa-{a}, namespace: ns-{i}, labels: {{sa: \"{a}\"}}}}\n"
        );
    }
    for j in 0..pods {
        let _ = write!(
            s,
            "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p-{j}, namespace: ns-{i}, labels: {{app: a-{}, role: {}}}}}\nspec: {{nodeName: node-{}, serviceAccountName: sa-{}}}\nstatus: {{podIP: 10.{i}.{}.{}}}\n",
            j % 10,
            role(j, role_of_p20),
            node_of(i, pods, j),
            j % SAS_PER_NS,
            j / 256,
            j % 256
        );
    }
    for k in 0..POLICIES_PER_NS {
        let _ = write!(s, "---\n{}", network_policy(i, k, if k == 0 { methods } else { "[GET]" }));
    }
    s
}

/// Pod `p-j` of `ns-i` as Calico's CNI plugin writes its WorkloadEndpoint.
fn workload_endpoint(i: usize, pods: usize, j: usize, role_of_p20: &str) -> String {
    let (node, sa) = (node_of(i, pods, j), j % SAS_PER_NS);
    format!(
        "apiVersion: projectcalico.org/v3\nkind: WorkloadEndpoint\nmetadata:\n  name: node--{node}-k8s-p--{j}-eth0\n  namespace: ns-{i}\n  labels: {{app: a-{}, role: {}, projectcalico.org/namespace: ns-{i}, projectcalico.org/orchestrator: k8s, projectcalico.org/serviceaccount: sa-{sa}}}\nspec: {{orchestrator: k8s, node: node-{node}, pod: p-{j}, endpoint: eth0, serviceAccountName: sa-{sa}, ipNetworks: [10.{i}.{}.{}/32], profiles: [kns.ns-{i}, ksa.ns-{i}.sa-{sa}]}}\n",
        j % 10,
        role(j, role_of_p20),
        j / 256,
        j % 256
    )
}

/// Namespace `ns-i` in Calico's etcd layout: its profiles, WorkloadEndpoints and policies.
fn namespace_in_etcd(i: usize, pods: usize) -> String {
    let mut s = format!(
        "apiVersion: projectcalico.org/v3\nkind: Profile\nmetadata: {{name: kns.ns-{i}}}\nspec: {{ingress: [{{action: Allow}}], egress: [{{action: Allow}}], labelsToApply: {{pcns.idx: \"{i}\", pcns.projectcalico.org/name: ns-{i}}}}}\n"
    );
    for a in 0..SAS_PER_NS {
        let _ = write!(
            s,
            "---\napiVersion: projectcalico.org/v3\nkind: Profile\nmetadata: {{name: ksa.ns-{i}.sa-{a}}}\nspec: {{labelsToApply: {{pcsa.sa: \"{a}\", pcsa.projectcalico.org/name: sa-{a}}}}}\n"
        );
    }
    for j in 0..pods {
        let _ = write!(s, "---\n{}", workload_endpoint(i, pods, j, "r-0"));
    }
    for k in 0..POLICIES_PER_NS {
        let _ = write!(s, "---\n{}", network_policy(i, k, "[GET]"));
    }
    s
}

fn parse(text: &str) -> anyhow::Result<Vec<Resource>> {
    parse_documents(text, "s5.yaml").into_iter().map(|r| r.map_err(Into::into)).collect()
}

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()
}

fn percentile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v.get(i).copied().unwrap_or(f64::NAN)
}

fn distribution(what: &str, v: &mut [f64]) {
    println!(
        "{what}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} samples)",
        percentile(v, 0.5),
        percentile(v, 0.99),
        percentile(v, 1.0),
        v.len()
    );
}

/// The value of the sample named exactly `series` in the agent's `/metrics`.
fn scrape(addr: &str, series: &str) -> Option<f64> {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(addr).ok()?;
    conn.write_all(b"GET /metrics HTTP/1.0\r\nHost: agent\r\n\r\n").ok()?;
    let mut text = String::new();
    conn.read_to_string(&mut text).ok()?;
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Waits until the verdict of ns-0's local pod for p-20's GET is `want`; returns the elapsed ms.
/// Polls every 100 µs on a thread of its own (tokio's timer would round the interval up to 1 ms).
async fn until_verdict(live: &Arc<Live>, want: Code, since: Instant) -> anyhow::Result<f64> {
    let live = live.clone();
    tokio::task::spawn_blocking(move || poll_verdict(&live, want, since)).await?
}

fn poll_verdict(live: &Live, want: Code, since: Instant) -> anyhow::Result<f64> {
    let req = Request {
        source: Peer {
            address: Address::Ip([10, 0, 0, 20].into()),
            port: 40000,
            principal: "spiffe://cluster.local/ns/ns-0/sa/sa-0",
            labels: None,
        },
        destination: Peer { address: Address::Ip([10, 0, 0, 0].into()), port: 8080, principal: "", labels: None },
        protocol: 6,
        http: Some(Http { method: "GET", path: "/" }),
    };
    loop {
        if let Some(snap) = live.load().as_ref()
            && decide(snap, &req).code == want
        {
            return Ok(since.elapsed().as_secs_f64() * 1e3);
        }
        if since.elapsed() > Duration::from_secs(10) {
            bail!("verdict never became {want:?}");
        }
        std::thread::sleep(Duration::from_micros(100));
    }
}

/// One change of ns-0 that flips the verdict polled by [`poll_verdict`].
#[derive(Clone, Copy, Debug)]
enum Edit {
    /// p-20's `role` label.
    Role(&'static str),
    /// np-0's allowed methods.
    Methods(&'static str),
}

/// Where the scenario lives and how an edit is made.
enum Store {
    Files { data: PathBuf, pods: usize, role: &'static str, methods: &'static str },
    Etcd { etcd: Etcd, connection: Box<Connection>, pods: usize, writes_ms: Vec<f64> },
}

impl Store {
    async fn edit(&mut self, edit: Edit) -> anyhow::Result<()> {
        match self {
            Store::Files { data, pods, role, methods } => {
                match edit {
                    Edit::Role(r) => *role = r,
                    Edit::Methods(m) => *methods = m,
                }
                // Write-then-rename, as editors and config management do: the agent never reads half a file.
                let tmp = data.join(".ns-0.yaml.tmp");
                std::fs::write(&tmp, namespace_file(0, *pods, role, methods))?;
                std::fs::rename(&tmp, data.join("ns-0.yaml"))?;
            }
            Store::Etcd { connection, pods, writes_ms, .. } => {
                let text = match edit {
                    Edit::Role(r) => workload_endpoint(0, *pods, 20, r),
                    Edit::Methods(m) => network_policy(0, 0, m),
                };
                let resources = parse(&text)?;
                let t = Instant::now();
                connection.apply(&resources).await?;
                writes_ms.push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
        Ok(())
    }
}

/// Starts etcd and loads the scenario into it, at most [`TXN_OPS`] resources per transaction.
async fn load_etcd(namespaces: usize, pods: usize) -> anyhow::Result<(Etcd, Connection)> {
    let etcd = Etcd::start().await;
    let connection = Connection::connect(&etcd.config()).await?;
    let started = Instant::now();
    let mut count = 0;
    for i in 0..namespaces {
        let resources = parse(&namespace_in_etcd(i, pods))?;
        count += resources.len();
        for chunk in resources.chunks(TXN_OPS) {
            connection.apply(chunk).await?;
        }
    }
    println!("etcd {}: {count} resources loaded in {:.0} ms", etcd.url(), started.elapsed().as_secs_f64() * 1e3);
    Ok((etcd, connection))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let alp = match args.alp.clone() {
        Some(p) => p,
        None => std::env::current_exe()?.with_file_name("alp"),
    };
    let pods = args.pods_per_namespace;
    if let Some(dir) = &args.write_only {
        std::fs::create_dir_all(dir)?;
        for i in 0..args.namespaces {
            std::fs::write(dir.join(format!("ns-{i}.yaml")), namespace_file(i, pods, "r-0", "[GET]"))?;
        }
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    runtime.block_on(run(args, alp))
}

async fn run(args: Args, alp: PathBuf) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let pods = args.pods_per_namespace;
    let (mut store, datastore) = match args.datastore {
        Datastore::File => {
            let data = tmp.path().join("data");
            std::fs::create_dir(&data)?;
            for i in 0..args.namespaces {
                std::fs::write(data.join(format!("ns-{i}.yaml")), namespace_file(i, pods, "r-0", "[GET]"))?;
            }
            let datastore = format!("file:{}", data.display());
            (Store::Files { data, pods, role: "r-0", methods: "[GET]" }, datastore)
        }
        Datastore::Etcd => {
            let (etcd, connection) = load_etcd(args.namespaces, pods).await?;
            let datastore = format!("etcd:{}", etcd.url());
            (Store::Etcd { etcd, connection: Box::new(connection), pods, writes_ms: Vec::new() }, datastore)
        }
    };
    let prefix = tmp.path().join("nodeagent");
    let metrics = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.to_string();
    let started = Instant::now();
    let agent = Kill(
        Command::new(&alp)
            .args(["agent", "--datastore", &datastore, "--node", "node-0", "--serve-all"])
            .args(["--metrics-addr", &metrics])
            .arg("--policy-sync-prefix")
            .arg(&prefix)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(args.log.clone().unwrap_or_else(|| tmp.path().join("agent.log")))?)
            .spawn()
            .with_context(|| alp.display().to_string())?,
    );
    let local: Vec<String> = (0..args.namespaces)
        .flat_map(|i| (0..pods).filter(move |j| node_of(i, pods, *j) == 0).map(move |j| format!("ns-{i}.p-{j}")))
        .collect();
    let shutdown = CancellationToken::new();
    let mut lives = Vec::new();
    for name in &local {
        let sock = prefix.join("mount").join(name).join("socket");
        while !sock.exists() {
            if started.elapsed() > Duration::from_secs(120) {
                bail!("no socket {}", sock.display());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let writer = LiveWriter::new();
        let live = writer.reader();
        let mut cfg = alp_sync::ClientConfig::new(sock);
        cfg.initial_backoff = Duration::from_millis(5);
        tokio::spawn(alp_sync::run_client(cfg, writer, shutdown.clone()));
        lives.push((name.clone(), live));
    }
    while !lives.iter().all(|(_, l)| l.is_in_sync()) {
        if started.elapsed() > Duration::from_secs(120) {
            bail!("not every workload reached InSync");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let in_sync = started.elapsed();
    let rss_in_sync = rss_kib(agent.0.id());
    let live: Arc<Live> =
        lives.iter().find(|(n, _)| n == "ns-0.p-0").map(|(_, l)| l.clone()).context("ns-0.p-0 is not local")?;
    until_verdict(&live, Code::Ok, Instant::now()).await?;

    let (mut label_ms, mut policy_ms) = (Vec::new(), Vec::new());
    for _ in 0..args.samples {
        for (edit, want) in [
            (Edit::Role("r-x"), Code::PermissionDenied),
            (Edit::Role("r-0"), Code::Ok),
            (Edit::Methods("[POST]"), Code::PermissionDenied),
            (Edit::Methods("[GET]"), Code::Ok),
        ] {
            let t = Instant::now();
            store.edit(edit).await?;
            let ms = until_verdict(&live, want, t).await?;
            match edit {
                Edit::Role(_) => label_ms.push(ms),
                Edit::Methods(_) => policy_ms.push(ms),
            }
        }
    }
    let rss_edits = rss_kib(agent.0.id());

    println!(
        "S5 ({:?}): {} namespaces, {} pods ({} local), {} policies, {} service accounts",
        args.datastore,
        args.namespaces,
        args.namespaces * pods,
        local.len(),
        args.namespaces * POLICIES_PER_NS,
        args.namespaces * SAS_PER_NS
    );
    println!("time to InSync on all {} local sockets: {:.0} ms", local.len(), in_sync.as_secs_f64() * 1e3);
    let mib = |k: Option<u64>| k.map_or(f64::NAN, |k| k as f64 / 1024.0);
    println!("agent RSS: {:.0} MiB at InSync, {:.0} MiB after the edits", mib(rss_in_sync), mib(rss_edits));
    distribution("pod-label change → verdict", &mut label_ms);
    distribution("policy edit → verdict", &mut policy_ms);

    if let Store::Etcd { etcd, pods, writes_ms, .. } = &mut store {
        distribution("  of which the etcd transaction (write → acknowledged)", writes_ms);
        let (mut down_ms, mut startup_ms, mut recovery_ms, mut reconnect_ms) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let connected = |want: f64| scrape(&metrics, "alp_agent_datastore_connected") == Some(want);
        for round in 0..args.recoveries {
            let killed = Instant::now();
            etcd.stop();
            while !connected(0.0) {
                if killed.elapsed() > Duration::from_secs(10) {
                    bail!("the agent did not notice etcd was gone");
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            down_ms.push(killed.elapsed().as_secs_f64() * 1e3);
            let (before, after) =
                if round % 2 == 0 { (Code::Ok, Code::PermissionDenied) } else { (Code::PermissionDenied, Code::Ok) };
            if until_verdict(&live, before, Instant::now()).await.is_err() {
                bail!("the last state is no longer served while etcd is down");
            }
            tokio::time::sleep(Duration::from_millis(args.outage_ms)).await;
            let restarted = Instant::now();
            etcd.restart().await;
            let up = Instant::now();
            startup_ms.push((up - restarted).as_secs_f64() * 1e3);
            let connection = Connection::connect(&etcd.config()).await?;
            let role = if round % 2 == 0 { "r-x" } else { "r-0" };
            connection.apply(&parse(&workload_endpoint(0, *pods, 20, role))?).await?;
            recovery_ms.push(until_verdict(&live, after, up).await?);
            while !connected(1.0) {
                if up.elapsed() > Duration::from_secs(10) {
                    bail!("the agent did not reconnect");
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            reconnect_ms.push(up.elapsed().as_secs_f64() * 1e3);
        }
        println!("etcd killed → agent reports disconnected: {:.0?} ms", down_ms);
        println!("etcd restarted → answering (its own start-up): {:.0?} ms", startup_ms);
        println!(
            "etcd back up (answering) → a change made then reaches the verdict: {:.0?} ms ({} ms outages)",
            recovery_ms, args.outage_ms
        );
        println!("etcd back up → agent reports connected (scraped after the verdict): {:.0?} ms", reconnect_ms);
    }
    shutdown.cancel();
    Ok(())
}
