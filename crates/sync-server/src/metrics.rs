//! The policy-sync server's Prometheus metrics (registered by the agent).

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

/// Why the server ended a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum EndReason {
    /// The client fell more than the queue limit behind.
    Lagged,
    /// A newer stream for the same workload took over.
    Replaced,
    /// The workload went away.
    EndpointRemoved,
}

impl EndReason {
    fn name(self) -> &'static str {
        match self {
            EndReason::Lagged => "lagged",
            EndReason::Replaced => "replaced",
            EndReason::EndpointRemoved => "endpoint_removed",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

/// Counters and gauges of the policy-sync server; clones share the same values.
#[derive(Clone, Debug, Default)]
pub struct ServerMetrics {
    streams: Gauge,
    joined: Counter,
    messages: Counter,
    ended: Family<ReasonLabel, Counter>,
}

impl ServerMetrics {
    /// Registers the metrics under `alp_agent_policy_sync_*`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register("alp_agent_policy_sync_streams", "Open policy-sync streams", self.streams.clone());
        registry.register("alp_agent_policy_sync_streams_joined", "Policy-sync streams opened", self.joined.clone());
        registry.register(
            "alp_agent_policy_sync_messages",
            "Messages queued to policy-sync streams",
            self.messages.clone(),
        );
        registry.register(
            "alp_agent_policy_sync_streams_ended",
            "Policy-sync streams the agent ended, by reason",
            self.ended.clone(),
        );
    }

    pub(crate) fn set_streams(&self, open: usize) {
        self.streams.set(i64::try_from(open).unwrap_or(i64::MAX));
    }

    pub(crate) fn joined(&self) {
        self.joined.inc();
    }

    pub(crate) fn queued(&self) {
        self.messages.inc();
    }

    pub(crate) fn ended(&self, reason: EndReason) {
        self.ended.get_or_create(&ReasonLabel { reason: reason.name() }).inc();
    }

    /// Streams open now.
    pub fn streams(&self) -> i64 {
        self.streams.get()
    }

    /// Messages queued so far.
    pub fn messages(&self) -> u64 {
        self.messages.get()
    }
}
