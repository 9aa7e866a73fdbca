//! The authorizer's edge toward Envoy: the ext_authz v3 `Authorization` service (HTTP and
//! network checks) answering from the snapshot the sync client publishes in [`Live`], Calico's
//! `dikastes.Healthz` and the standard `grpc.health.v1.Health` on the same socket, and a small
//! HTTP server for Prometheus `/metrics` and Dikastes's `/terminate`.
//!
//! ```text
//! sync client ──Arc<Snapshot>──▶ Live ──load() (no lock)──▶ Authorizer ◀══UDS/TCP, gRPC══ Envoy
//!                                  └──sync state──▶ Health, Metrics ◀── /metrics
//! ```
//!
//! A check answers only a `Status` (code and message), as Calico's check server does:
//! no `ok_response`, no `denied_response`, never a gRPC error. Before the first InSync every check
//! is UNAVAILABLE (difference D5).
//!
//! The `envoy.service.auth.v2` and `v2alpha` `Authorization` services (Envoy ≤ 1.17) are served
//! beside v3 on the same socket, as Dikastes does: converted to v3, decided alike, status copied
//! back.
//!
//! [`Live`]: alp_engine::Live

mod authorizer;
mod client;
mod conn;
mod health;
mod http;
mod metrics;
mod serve;
mod socket;
mod trace;
mod v2;

pub use alp_envoy::TRACE_EXTENSION;
pub use authorizer::{Authorizer, Kind, UNAVAILABLE_MESSAGE};
pub use client::{ConnectError, connect};
pub use conn::{CHECK_PATH, grpc_frame};
pub use health::Health;
pub use http::{Scrape, TERMINATE_BODY, serve_http, serve_http_on};
pub use metrics::Metrics;
pub use serve::{Bound, Listen, ListenParseError, MAX_CONCURRENT_STREAMS, ServeError, bind, serve, serve_on};
pub use trace::code_name;
pub use v2::{V2, V2Alpha, to_v3};
