//! `envoy.service.auth.v3.Authorization/Check`.

use std::{sync::Arc, time::Instant};

use alp_engine::{Code, Live, decide};
use alp_envoy::{to_request, wants_trace, wire};
use alp_model::Request;
use envoy_types::pb::{
    envoy::service::auth::v3::{CheckRequest, CheckResponse},
    google::rpc::Status,
};
use tracing::debug;

use crate::Metrics;

/// The message of a check answered before the first InSync.
pub const UNAVAILABLE_MESSAGE: &str = "not in sync with the policy source yet";

/// Which Envoy filter asked: the HTTP filter sends `attributes.request.http`, the network
/// filter does not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A check from Envoy's HTTP filter (`ext_authz` on a listener's HTTP chain).
    Http,
    /// A check from Envoy's network filter: one per connection, no HTTP attributes.
    Network,
}

impl Kind {
    /// The check's kind, as the `kind` label of `alp_checks_total`.
    pub fn of(req: &Request<'_>) -> Kind {
        if req.http.is_some() { Kind::Http } else { Kind::Network }
    }

    /// `http` or `network`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Http => "http",
            Kind::Network => "network",
        }
    }
}

/// Answers Envoy's checks from the snapshot currently published in [`Live`].
#[derive(Clone, Debug)]
pub struct Authorizer {
    live: Arc<Live>,
    metrics: Arc<Metrics>,
}

impl Authorizer {
    /// An authorizer that reads `live` and counts its checks in `metrics`.
    pub fn new(live: Arc<Live>, metrics: Arc<Metrics>) -> Self {
        Authorizer { live, metrics }
    }

    /// One check decoded as the subset a decision reads (what the v3 service does).
    pub fn check_wire(&self, req: &wire::CheckRequest) -> CheckResponse {
        self.check(&req.to_request(), req.wants_trace())
    }

    /// One check, from the full v3 message (the v2 services convert to it).
    pub fn check_request(&self, req: &CheckRequest) -> CheckResponse {
        self.check(&to_request(req), wants_trace(req))
    }

    /// Decides `req` on the current snapshot; `trace` puts the decision trace in the response's
    /// `dynamic_metadata`.
    pub fn check(&self, req: &Request<'_>, trace: bool) -> CheckResponse {
        let started = Instant::now();
        let kind = Kind::of(req);
        let guard = self.live.load();
        let mut dynamic_metadata = None;
        let (code, message) = match guard.as_ref() {
            None => {
                debug!(code = Code::Unavailable.name(), kind = kind.name(), "check: no snapshot yet");
                (Code::Unavailable, UNAVAILABLE_MESSAGE.to_owned())
            }
            Some(snap) => {
                let decision = decide(snap, req);
                // The verdict only: never headers, bodies or query strings.
                match decision.trace.last() {
                    Some(hit) => debug!(
                        code = decision.code.name(),
                        kind = kind.name(),
                        tier = hit.tier(),
                        policy_kind = hit.kind(),
                        namespace = hit.namespace(),
                        policy = hit.name(),
                        rule = hit.index,
                        action = ?hit.action,
                        "check"
                    ),
                    None => {
                        debug!(code = decision.code.name(), kind = kind.name(), message = %decision.message, "check")
                    }
                }
                if trace {
                    dynamic_metadata = Some(crate::trace::trace_metadata(&decision));
                }
                (decision.code, decision.message)
            }
        };
        drop(guard);
        self.metrics.record(kind, code, started.elapsed());
        CheckResponse {
            status: Some(Status { code: code as i32, message, details: Vec::new() }),
            dynamic_metadata,
            ..CheckResponse::default()
        }
    }
}
