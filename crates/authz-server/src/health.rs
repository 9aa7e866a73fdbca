//! Health on the listen socket: Calico's `dikastes.Healthz` (readiness = in sync, liveness =
//! always) and the standard `grpc.health.v1.Health`, both read straight from [`Live`].

use std::{pin::Pin, sync::Arc, time::Duration};

use alp_engine::Live;
use alp_proto::dikastes::{HealthCheckRequest, HealthCheckResponse, grpc::healthz_server::Healthz};
use futures::Stream;
use tokio_util::sync::CancellationToken;
use tonic_health::pb::{self as grpc_health, health_check_response::ServingStatus, health_server};

/// How often a `grpc.health.v1.Health/Watch` stream looks at the sync state.
const WATCH_PERIOD: Duration = Duration::from_millis(200);

/// Services whose `grpc.health.v1` status follows readiness (`""` is the server as a whole).
const READY_SERVICES: [&str; 2] = ["", "envoy.service.auth.v3.Authorization"];
/// Services that answer whatever the sync state.
const LIVE_SERVICES: [&str; 2] = ["dikastes.Healthz", "grpc.health.v1.Health"];

/// Both health services, answering from [`Live`].
#[derive(Clone, Debug)]
pub struct Health {
    live: Arc<Live>,
    /// Ends open `Watch` streams so that a graceful stop does not wait for them.
    shutdown: CancellationToken,
}

impl Health {
    /// Health whose `Watch` streams end only when the client goes away.
    pub fn new(live: Arc<Live>) -> Self {
        Health::with_shutdown(live, CancellationToken::new())
    }

    /// Health whose `Watch` streams end when `shutdown` is cancelled.
    pub fn with_shutdown(live: Arc<Live>, shutdown: CancellationToken) -> Self {
        Health { live, shutdown }
    }

    fn status(&self, service: &str) -> ServingStatus {
        if READY_SERVICES.contains(&service) {
            if self.live.is_in_sync() { ServingStatus::Serving } else { ServingStatus::NotServing }
        } else if LIVE_SERVICES.contains(&service) {
            ServingStatus::Serving
        } else {
            ServingStatus::ServiceUnknown
        }
    }
}

#[tonic::async_trait]
impl Healthz for Health {
    async fn check_readiness(
        &self,
        _: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<HealthCheckResponse>, tonic::Status> {
        Ok(tonic::Response::new(HealthCheckResponse { healthy: self.live.is_in_sync() }))
    }

    async fn check_liveness(
        &self,
        _: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<HealthCheckResponse>, tonic::Status> {
        Ok(tonic::Response::new(HealthCheckResponse { healthy: true }))
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<grpc_health::HealthCheckResponse, tonic::Status>> + Send>>;

fn response(status: ServingStatus) -> grpc_health::HealthCheckResponse {
    grpc_health::HealthCheckResponse { status: status as i32 }
}

#[tonic::async_trait]
impl health_server::Health for Health {
    async fn check(
        &self,
        request: tonic::Request<grpc_health::HealthCheckRequest>,
    ) -> Result<tonic::Response<grpc_health::HealthCheckResponse>, tonic::Status> {
        match self.status(&request.get_ref().service) {
            ServingStatus::ServiceUnknown => Err(tonic::Status::not_found("service not registered")),
            status => Ok(tonic::Response::new(response(status))),
        }
    }

    type WatchStream = WatchStream;

    /// Sends the current status, then each change; an unknown service gets SERVICE_UNKNOWN
    /// and the call stays open, as the protocol says.
    async fn watch(
        &self,
        request: tonic::Request<grpc_health::HealthCheckRequest>,
    ) -> Result<tonic::Response<WatchStream>, tonic::Status> {
        let health = self.clone();
        let service = request.into_inner().service;
        let mut interval = tokio::time::interval(WATCH_PERIOD);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let stream = futures::stream::unfold(
            (health, service, None, interval),
            |(health, service, last, mut interval)| async move {
                loop {
                    let now = health.status(&service);
                    if last != Some(now) {
                        return Some((Ok(response(now)), (health, service, Some(now), interval)));
                    }
                    tokio::select! {
                        () = health.shutdown.cancelled() => return None,
                        _ = interval.tick() => {}
                    }
                }
            },
        );
        Ok(tonic::Response::new(Box::pin(stream)))
    }
}
