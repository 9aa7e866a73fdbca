//! The node agent's end of Felix's policy-sync API: [`serve_workload_sockets`] takes the
//! calculator's global stream, runs Felix's processor (`alp_felix::Processor`) over it in one
//! task, and serves each local workload its own stream on its own Unix socket (Felix's binder
//! layout from creds files, or alp's serve-all mode), with a bounded queue per stream.
//!
//! ```text
//! calc ──ToDataplane──▶ processor task (server.rs) ◀──join/leave── PolicySync per socket (binder.rs) ══UDS══▶ alp-sync client
//! ```
//!
//! Files depend downwards only: `serve.rs` → `binder.rs` → `server.rs` → `metrics.rs`. The
//! authorizer's end is `alp-sync`.

mod binder;
mod metrics;
mod serve;
mod server;

pub use binder::LocalWorkload;
pub use metrics::ServerMetrics;
pub use serve::{ServerConfig, SocketLayout, serve_workload_sockets};
pub use server::{DEFAULT_QUEUE_LIMIT, ServeError};
