//! `alp-load`: drives an ext_authz v3 server over a Unix socket (or TCP) as Envoy would, in a
//! closed loop (N checks in flight) or an open loop (a fixed rate paced by a `timerfd`; the
//! schedule's lag is reported beside the latency), all on one thread, and reports throughput,
//! latency percentiles from HDR histograms, answer codes, and the server's CPU per check and
//! resident memory when given its pid.

use std::{
    collections::BTreeMap,
    os::fd::OwnedFd,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use envoy_types::pb::envoy::service::auth::v3::CheckRequest;
use h2::client::SendRequest;
use hdrhistogram::Histogram;
use tokio::io::unix::AsyncFd;

mod grpc;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Scenario {
    S1,
    S1MatchEarly,
    S2,
}

#[derive(Parser, Debug)]
#[command(about = "ext_authz v3 load generator")]
struct Args {
    /// The authorizer: a Unix socket path or `tcp://HOST:PORT`.
    #[arg(long)]
    target: String,
    /// Requests to send, cycled: CheckRequests in proto3 JSON, one per line.
    #[arg(long, conflicts_with = "scenario")]
    requests: Option<PathBuf>,
    /// Or the requests of a benchmark scenario.
    #[arg(long, value_enum)]
    scenario: Option<Scenario>,
    /// Closed loop: checks kept in flight.
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// Open loop: checks per second (overrides the closed loop).
    #[arg(long)]
    rate: Option<u64>,
    /// HTTP/2 connections to spread the load over.
    #[arg(long, default_value_t = 1)]
    connections: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Seconds of warm-up before measuring.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// The server's pid: report its CPU per check and resident memory.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

fn load_requests(args: &Args) -> anyhow::Result<Vec<CheckRequest>> {
    if let Some(path) = &args.requests {
        let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
        return text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| alp_envoy::check_request_from_json(l).map_err(Into::into))
            .collect();
    }
    let scenario = match args.scenario {
        Some(Scenario::S1) => alp_scenarios::s1(alp_scenarios::S1Variant::FullWalk),
        Some(Scenario::S1MatchEarly) => alp_scenarios::s1(alp_scenarios::S1Variant::MatchEarly),
        Some(Scenario::S2) => alp_scenarios::s2(),
        None => bail!("give --requests or --scenario"),
    };
    Ok(scenario.requests.into_iter().map(|(_, r)| r).collect())
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()
}

#[derive(Default)]
struct Tally {
    hist: Option<Histogram<u64>>,
    codes: BTreeMap<i32, u64>,
    errors: u64,
    /// Errors by kind (their messages), so a failing run says why.
    causes: BTreeMap<String, u64>,
}

impl Tally {
    fn new() -> Self {
        Tally { hist: Histogram::new_with_bounds(1, 60_000_000_000, 3).ok(), ..Tally::default() }
    }

    fn record(&mut self, ns: u64, result: Result<i32, grpc::CheckError>) {
        if let Some(h) = &mut self.hist {
            let _ = h.record(ns.max(1));
        }
        match result {
            Ok(c) => *self.codes.entry(c).or_default() += 1,
            Err(e) => {
                self.errors += 1;
                *self.causes.entry(e.to_string()).or_default() += 1;
            }
        }
    }

    fn merge(&mut self, other: Tally) {
        if let (Some(h), Some(o)) = (&mut self.hist, &other.hist) {
            let _ = h.add(o);
        }
        for (c, n) in other.codes {
            *self.codes.entry(c).or_default() += n;
        }
        self.errors += other.errors;
        for (c, n) in other.causes {
            *self.causes.entry(c).or_default() += n;
        }
    }
}

async fn closed_loop(
    client: SendRequest<Bytes>,
    reqs: Arc<Vec<Bytes>>,
    offset: usize,
    warm_until: Instant,
    stop_at: Instant,
) -> Tally {
    let mut tally = Tally::new();
    let mut i = offset;
    loop {
        let start = Instant::now();
        if start >= stop_at {
            return tally;
        }
        let code = grpc::check(&client, reqs[i % reqs.len()].clone()).await;
        i += 1;
        if start >= warm_until {
            tally.record(start.elapsed().as_nanos() as u64, code);
        }
    }
}

/// A periodic `timerfd` in the runtime's own epoll set: microsecond pacing on the thread that
/// sends, where tokio's timer has a 1 ms resolution and a pacing thread costs a cross-thread
/// wake-up per check.
struct Ticker {
    fd: AsyncFd<OwnedFd>,
}

impl Ticker {
    fn new(interval: Duration) -> std::io::Result<Ticker> {
        use rustix::time::{Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec};
        let fd =
            rustix::time::timerfd_create(TimerfdClockId::Monotonic, TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC)?;
        let period = Timespec { tv_sec: interval.as_secs() as i64, tv_nsec: i64::from(interval.subsec_nanos()) };
        rustix::time::timerfd_settime(
            &fd,
            TimerfdTimerFlags::empty(),
            &Itimerspec { it_interval: period, it_value: period },
        )?;
        // The safe constructor is deprecated because it cannot know that nothing else closes the
        // descriptor; this one is an `OwnedFd` moved in, so nothing can.
        #[allow(deprecated)]
        let fd = AsyncFd::new(fd)?;
        Ok(Ticker { fd })
    }

    /// Waits for the next expiry; returns how many periods have passed since the last call.
    async fn tick(&self) -> std::io::Result<u64> {
        loop {
            let mut guard = self.fd.readable().await?;
            let mut buf = [0u8; 8];
            match rustix::io::read(guard.get_inner(), &mut buf) {
                Ok(8) => return Ok(u64::from_ne_bytes(buf)),
                Ok(_) => return Err(std::io::Error::other("short read from timerfd")),
                Err(rustix::io::Errno::AGAIN) => guard.clear_ready(),
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// The open loop: a `timerfd` ticks at the rate and each tick starts one check (several if
/// ticks were missed), all on the runtime's one thread. Latency is taken from the moment a
/// check is sent; how late that was against its intended time is reported apart (`lag`), so
/// neither the generator's own stalls nor a stalled server go unseen.
async fn open_loop(
    clients: Vec<SendRequest<Bytes>>,
    reqs: Arc<Vec<Bytes>>,
    rate: u64,
    warm_until: Instant,
    stop_at: Instant,
) -> anyhow::Result<(Tally, Tally)> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(u64, u64, Result<i32, grpc::CheckError>)>();
    let interval = Duration::from_nanos(1_000_000_000 / rate.max(1));
    let ticker = Ticker::new(interval).context("timerfd")?;
    let begin = Instant::now();
    let mut n: u64 = 0;
    'pace: loop {
        let due = ticker.tick().await.context("timerfd")?;
        for _ in 0..due {
            n += 1;
            let intended = begin + interval.saturating_mul(u32::try_from(n).unwrap_or(u32::MAX));
            if intended >= stop_at {
                break 'pace;
            }
            let client = clients[n as usize % clients.len()].clone();
            let req = reqs[n as usize % reqs.len()].clone();
            let tx = tx.clone();
            let measured = intended >= warm_until;
            tokio::spawn(async move {
                let sent = Instant::now();
                let resp = grpc::check(&client, req).await;
                if measured {
                    let lag = sent.saturating_duration_since(intended).as_nanos() as u64;
                    let _ = tx.send((sent.elapsed().as_nanos() as u64, lag, resp));
                }
            });
        }
    }
    drop(tx);
    let mut tally = Tally::new();
    let mut lag = Tally::new();
    while let Some((ns, late, code)) = rx.recv().await {
        tally.record(ns, code);
        lag.record(late.max(1), Ok(0));
    }
    Ok((tally, lag))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let reqs: Arc<Vec<Bytes>> = Arc::new(load_requests(&args)?.iter().map(alp_authz_server::grpc_frame).collect());
    if reqs.is_empty() {
        bail!("no requests");
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let mut clients = Vec::new();
        for _ in 0..args.connections.max(1) {
            clients.push(grpc::connect(&args.target).await.with_context(|| format!("connecting to {}", args.target))?);
        }
        let warm_until = Instant::now() + Duration::from_secs_f64(args.warmup);
        let stop_at = warm_until + Duration::from_secs_f64(args.duration);
        // CPU is sampled from the end of warm-up.
        let pid = args.server_pid;
        let cpu_probe = tokio::spawn(async move {
            tokio::time::sleep_until(warm_until.into()).await;
            let start = pid.and_then(cpu_ticks);
            tokio::time::sleep_until(stop_at.into()).await;
            let end = pid.and_then(cpu_ticks);
            (start, end, pid.and_then(rss_kib))
        });
        let mut lag = None;
        let tally = if let Some(rate) = args.rate {
            let (tally, late) = open_loop(clients, reqs.clone(), rate, warm_until, stop_at).await?;
            lag = late.hist.map(|h| (h.value_at_quantile(0.5) as f64 / 1000.0, h.value_at_quantile(0.99) as f64 / 1000.0));
            tally
        } else {
            let mut tasks = Vec::new();
            for i in 0..args.concurrency.max(1) {
                let client = clients[i % clients.len()].clone();
                tasks.push(tokio::spawn(closed_loop(client, reqs.clone(), i, warm_until, stop_at)));
            }
            let mut all = Tally::new();
            for t in tasks {
                all.merge(t.await?);
            }
            all
        };
        let (cpu_start, cpu_end, rss) = cpu_probe.await?;
        let checks = tally.codes.values().sum::<u64>() + tally.errors;
        let hist = tally.hist.as_ref().context("histogram")?;
        let us = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
        let ticks_per_s = 100.0;
        let cpu_us_per_check = match (cpu_start, cpu_end) {
            (Some(a), Some(b)) if checks > 0 => Some((b - a) as f64 / ticks_per_s * 1e6 / checks as f64),
            _ => None,
        };
        let mode = match args.rate {
            Some(r) => format!("open loop {r}/s"),
            None => format!("closed loop c={}", args.concurrency),
        };
        let report = serde_json::json!({
            "mode": mode,
            "checks": checks,
            "throughput_per_s": checks as f64 / args.duration,
            "p50_us": us(0.50), "p99_us": us(0.99), "p999_us": us(0.999), "max_us": hist.max() as f64 / 1000.0,
            "codes": tally.codes, "errors": tally.errors, "error_causes": tally.causes,
            "server_cpu_us_per_check": cpu_us_per_check,
            "server_rss_kib": rss,
            "pacing_lag_p50_us": lag.map(|l| l.0), "pacing_lag_p99_us": lag.map(|l| l.1),
        });
        if args.json {
            println!("{report}");
        } else {
            println!(
                "{mode}: {checks} checks, {:.0}/s, p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs, codes {:?}, errors {} {:?}, server CPU/check {}, server RSS {}{}",
                checks as f64 / args.duration,
                us(0.50),
                us(0.99),
                us(0.999),
                tally.codes,
                tally.errors,
                tally.causes,
                cpu_us_per_check.map_or("-".into(), |c| format!("{c:.1} µs")),
                rss.map_or("-".into(), |r| format!("{} KiB", r)),
                lag.map_or(String::new(), |(p50, p99)| format!(", pacing lag p50 {p50:.1} µs, p99 {p99:.1} µs")),
            );
        }
        Ok(())
    })
}
