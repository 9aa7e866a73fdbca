//! `envoy.service.auth.v3.Authorization/Check`.

use std::{sync::Arc, time::Instant};

use alp_engine::{Code, Live, decide};
use alp_envoy::to_request;
use envoy_types::pb::{
    envoy::service::auth::v3::{CheckRequest, CheckResponse, authorization_server::Authorization},
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
    Http,
    Network,
}

impl Kind {
    /// The check's kind, as the `kind` label of `alp_checks_total`.
    pub fn of(req: &CheckRequest) -> Kind {
        match req.attributes.as_ref().and_then(|a| a.request.as_ref()).and_then(|r| r.http.as_ref()) {
            Some(_) => Kind::Http,
            None => Kind::Network,
        }
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
    pub fn new(live: Arc<Live>, metrics: Arc<Metrics>) -> Self {
        Authorizer { live, metrics }
    }

    /// One check, without gRPC around it (the v3 service; a v2 service would convert to this).
    pub fn check_request(&self, req: &CheckRequest) -> CheckResponse {
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
                let decision = decide(snap, &to_request(req));
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
                if crate::trace::wants_trace(req) {
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

#[tonic::async_trait]
impl Authorization for Authorizer {
    async fn check(
        &self,
        request: tonic::Request<CheckRequest>,
    ) -> Result<tonic::Response<CheckResponse>, tonic::Status> {
        Ok(tonic::Response::new(self.check_request(request.get_ref())))
    }
}
