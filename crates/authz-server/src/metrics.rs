//! Prometheus metrics. The check path touches only atomics: every `{code, kind}` counter exists
//! from the start, and the latency histogram is lock-free. Sync state is read from [`Live`] at
//! scrape time.

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use alp_engine::{Code, Live};
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet},
    metrics::{
        MetricType,
        counter::{ConstCounter, Counter},
        family::Family,
        gauge::ConstGauge,
    },
    registry::Registry,
};

use crate::Kind;

const CODES: [Code; 6] =
    [Code::Ok, Code::Unknown, Code::InvalidArgument, Code::PermissionDenied, Code::Internal, Code::Unavailable];
const KINDS: [Kind; 2] = [Kind::Http, Kind::Network];

fn code_index(code: Code) -> usize {
    match code {
        Code::Ok => 0,
        Code::Unknown => 1,
        Code::InvalidArgument => 2,
        Code::PermissionDenied => 3,
        Code::Internal => 4,
        Code::Unavailable => 5,
    }
}

fn kind_index(kind: Kind) -> usize {
    match kind {
        Kind::Http => 0,
        Kind::Network => 1,
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CheckLabels {
    code: &'static str,
    kind: &'static str,
}

/// Upper bounds of `alp_check_duration_seconds`, in nanoseconds: 1 µs to 10 ms.
const BUCKETS_NS: [u64; 13] = [
    1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000,
];

/// A fixed-bucket histogram of atomics (prometheus-client's own takes a lock per observation).
#[derive(Clone, Debug, Default)]
struct Latency(Arc<LatencyInner>);

#[derive(Debug, Default)]
struct LatencyInner {
    /// Per bucket (not cumulative); the last is `+Inf`.
    counts: [AtomicU64; BUCKETS_NS.len() + 1],
    sum_ns: AtomicU64,
}

impl Latency {
    fn observe(&self, elapsed: Duration) {
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let i = BUCKETS_NS.iter().position(|&b| ns <= b).unwrap_or(BUCKETS_NS.len());
        if let Some(c) = self.0.counts.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        self.0.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }
}

impl EncodeMetric for Latency {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), fmt::Error> {
        let mut buckets = [(0.0, 0u64); BUCKETS_NS.len() + 1];
        let mut count = 0;
        for (i, (slot, counter)) in buckets.iter_mut().zip(&self.0.counts).enumerate() {
            let n = counter.load(Ordering::Relaxed);
            count += n;
            let bound = BUCKETS_NS.get(i).map_or(f64::INFINITY, |&ns| ns as f64 / 1e9);
            *slot = (bound, n);
        }
        let sum = self.0.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// Reads the sync state from [`Live`] on each scrape.
#[derive(Debug)]
struct SyncCollector {
    live: Arc<Live>,
}

fn encode_one(encoder: &mut DescriptorEncoder, name: &str, help: &str, metric: &impl EncodeMetric) -> fmt::Result {
    let m = encoder.encode_descriptor(name, help, None, metric.metric_type())?;
    metric.encode(m)
}

impl Collector for SyncCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let live = &self.live;
        encode_one(
            &mut encoder,
            "alp_sync_connected",
            "1 while a stream to the policy source is open.",
            &ConstGauge::new(i64::from(live.is_connected())),
        )?;
        encode_one(
            &mut encoder,
            "alp_sync_in_sync",
            "1 once InSync was seen on the current stream (readiness).",
            &ConstGauge::new(i64::from(live.is_in_sync())),
        )?;
        encode_one(
            &mut encoder,
            "alp_sync_updates",
            "Policy-sync messages applied.",
            &ConstCounter::new(live.updates()),
        )?;
        encode_one(
            &mut encoder,
            "alp_snapshots_published",
            "Policy snapshots published to the check path.",
            &ConstCounter::new(live.published()),
        )?;
        let at_ms = live.published_at_ms();
        if at_ms > 0 {
            let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
            encode_one(
                &mut encoder,
                "alp_snapshot_age_seconds",
                "Seconds since the current snapshot was published (absent before the first).",
                &ConstGauge::new(now_ms.saturating_sub(at_ms) as f64 / 1e3),
            )?;
        }
        Ok(())
    }
}

/// The authorizer's Prometheus metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// `[code][kind]`, clones of the counters in the registered family.
    checks: [[Counter; KINDS.len()]; CODES.len()],
    duration: Latency,
}

impl Metrics {
    /// Check counters and latency, plus the sync state of `live` read at scrape time.
    pub fn new(live: Arc<Live>) -> Self {
        let mut registry = Registry::default();
        let family = Family::<CheckLabels, Counter>::default();
        let checks = CODES.map(|code| {
            KINDS.map(|kind| family.get_or_create_owned(&CheckLabels { code: code.name(), kind: kind.name() }))
        });
        registry.register("alp_checks", "ext_authz checks answered, by status code and filter kind", family);
        let duration = Latency::default();
        registry.register("alp_check_duration_seconds", "Time to answer one check", duration.clone());
        registry.register_collector(Box::new(SyncCollector { live }));
        Metrics { registry, checks, duration }
    }

    /// Counts one answered check.
    pub fn record(&self, kind: Kind, code: Code, elapsed: Duration) {
        if let Some(c) = self.checks.get(code_index(code)).and_then(|row| row.get(kind_index(kind))) {
            c.inc();
        }
        self.duration.observe(elapsed);
    }

    /// Checks answered so far with `code` for `kind`.
    pub fn checks(&self, kind: Kind, code: Code) -> u64 {
        self.checks.get(code_index(code)).and_then(|row| row.get(kind_index(kind))).map_or(0, Counter::get)
    }

    /// The metrics in the OpenMetrics text format (which Prometheus also reads as its text
    /// format 0.0.4; it ends with `# EOF`).
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(4096);
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
