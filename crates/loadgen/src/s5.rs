//! `alp-s5`: scenario S5 (`spec/benchmarks.md`) against a real `alp agent` process on the file
//! datastore: 10,000 pods on 100 nodes (100 on the agent's node), 1,000 policies, 100 namespaces,
//! 500 service accounts. Reports time to InSync on every local socket, the agent's memory, and
//! the time from a pod-label change and from a policy edit to a changed verdict at an authorizer.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use alp_engine::{Code, Live, decide};
use alp_model::{Address, Http, Peer, Request};
use anyhow::{Context, bail};
use clap::Parser;
use tokio_util::sync::CancellationToken;

#[derive(Parser, Debug)]
#[command(about = "Scenario S5: the node agent on the file datastore")]
struct Args {
    /// The alp binary (default: next to this one).
    #[arg(long)]
    alp: Option<PathBuf>,
    #[arg(long, default_value_t = 100)]
    namespaces: usize,
    /// Pods per namespace (100 namespaces × 100 = 10,000 pods on 100 nodes).
    #[arg(long, default_value_t = 100)]
    pods_per_namespace: usize,
    /// Propagation samples of each kind.
    #[arg(long, default_value_t = 20)]
    samples: usize,
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
        let role = if j == 20 { role_of_p20.to_owned() } else { format!("r-{}", j % 20) };
        let _ = write!(
            s,
            "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p-{j}, namespace: ns-{i}, labels: {{app: a-{}, role: {role}}}}}\nspec: {{nodeName: node-{}, serviceAccountName: sa-{}}}\nstatus: {{podIP: 10.{i}.{}.{}}}\n",
            j % 10,
            (i * pods + j) % NODES,
            j % SAS_PER_NS,
            j / 256,
            j % 256
        );
    }
    for k in 0..POLICIES_PER_NS {
        let m = if k == 0 { methods } else { "[GET]" };
        let _ = write!(
            s,
            "---\napiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {{name: np-{k}, namespace: ns-{i}}}\nspec:\n  selector: app == 'a-{k}'\n  ingress:\n  - action: Allow\n    source: {{selector: role == 'r-{k}'}}\n    http: {{methods: {m}}}\n"
        );
    }
    s
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

fn write_ns0(data: &Path, pods: usize, role: &str, methods: &str) -> anyhow::Result<()> {
    // Write-then-rename, as editors and config management do: the agent never reads half a file.
    let tmp = data.join(".ns-0.yaml.tmp");
    std::fs::write(&tmp, namespace_file(0, pods, role, methods))?;
    std::fs::rename(&tmp, data.join("ns-0.yaml"))?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let alp = match args.alp.clone() {
        Some(p) => p,
        None => std::env::current_exe()?.with_file_name("alp"),
    };
    if let Some(dir) = &args.write_only {
        std::fs::create_dir_all(dir)?;
        for i in 0..args.namespaces {
            std::fs::write(
                dir.join(format!("ns-{i}.yaml")),
                namespace_file(i, args.pods_per_namespace, "r-0", "[GET]"),
            )?;
        }
        return Ok(());
    }
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("data");
    std::fs::create_dir(&data)?;
    for i in 0..args.namespaces {
        std::fs::write(data.join(format!("ns-{i}.yaml")), namespace_file(i, args.pods_per_namespace, "r-0", "[GET]"))?;
    }
    let prefix = tmp.path().join("nodeagent");
    let started = Instant::now();
    let agent = Kill(
        Command::new(&alp)
            .args(["agent", "--datastore", &format!("file:{}", data.display()), "--node", "node-0", "--serve-all"])
            .arg("--policy-sync-prefix")
            .arg(&prefix)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(args.log.clone().unwrap_or_else(|| tmp.path().join("agent.log")))?)
            .spawn()
            .with_context(|| alp.display().to_string())?,
    );
    let local: Vec<String> = (0..args.namespaces)
        .flat_map(|i| {
            (0..args.pods_per_namespace)
                .filter(move |j| (i * args.pods_per_namespace + j) % NODES == 0)
                .map(move |j| format!("ns-{i}.p-{j}"))
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    runtime.block_on(async {
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
            let live = Live::new();
            let mut cfg = alp_sync::ClientConfig::new(sock);
            cfg.initial_backoff = Duration::from_millis(5);
            tokio::spawn(alp_sync::run_client(cfg, live.clone(), shutdown.clone()));
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

        let pods = args.pods_per_namespace;
        let (mut label_ms, mut policy_ms) = (Vec::new(), Vec::new());
        for _ in 0..args.samples {
            let t = Instant::now();
            write_ns0(&data, pods, "r-x", "[GET]")?;
            label_ms.push(until_verdict(&live, Code::PermissionDenied, t).await?);
            let t = Instant::now();
            write_ns0(&data, pods, "r-0", "[GET]")?;
            label_ms.push(until_verdict(&live, Code::Ok, t).await?);
            let t = Instant::now();
            write_ns0(&data, pods, "r-0", "[POST]")?;
            policy_ms.push(until_verdict(&live, Code::PermissionDenied, t).await?);
            let t = Instant::now();
            write_ns0(&data, pods, "r-0", "[GET]")?;
            policy_ms.push(until_verdict(&live, Code::Ok, t).await?);
        }
        let rss_end = rss_kib(agent.0.id());
        shutdown.cancel();
        println!(
            "S5: {} namespaces, {} pods ({} local), {} policies, {} service accounts",
            args.namespaces,
            args.namespaces * pods,
            local.len(),
            args.namespaces * POLICIES_PER_NS,
            args.namespaces * SAS_PER_NS
        );
        println!("time to InSync on all {} local sockets: {:.0} ms", local.len(), in_sync.as_secs_f64() * 1e3);
        println!(
            "agent RSS: {} MiB at InSync, {} MiB after the edits",
            rss_in_sync.map_or(f64::NAN, |k| k as f64 / 1024.0),
            rss_end.map_or(f64::NAN, |k| k as f64 / 1024.0)
        );
        for (what, v) in [("pod-label change → verdict", &mut label_ms), ("policy edit → verdict", &mut policy_ms)]
        {
            println!(
                "{what}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} samples)",
                percentile(v, 0.5),
                percentile(v, 0.99),
                percentile(v, 1.0),
                v.len()
            );
        }
        Ok(())
    })
}
