//! The authorizer's end of Felix's policy-sync API, between the node agent's socket and the
//! engine: [`run_client`] streams `PolicySync/Sync` over a Unix socket into a fresh
//! [`alp_engine::Store`] per connection and publishes snapshots to [`alp_engine::Live`] from
//! InSync on (difference D5: fail closed until then, keep the last snapshot while
//! reconnecting); [`Backoff`] spaces the reconnects (difference D6). [`Publisher`] is that
//! apply → snapshot → publish → readiness path, the one the standalone server uses too.

mod backoff;
pub mod binder;
mod client;
mod metrics;
pub mod processor;
mod publisher;
pub mod server;

pub use backoff::{Backoff, Jitter};
pub use client::{ClientConfig, MAX_MESSAGE_BYTES, SyncError, run_client};
pub use metrics::ServerMetrics;
pub use processor::{EndpointKey, JoinId, MAX_MEMBERS_PER_MESSAGE, Outgoing, Processor};
pub use publisher::Publisher;
pub use server::{DEFAULT_QUEUE_LIMIT, LocalWorkload, ServeError, ServerConfig, SocketLayout, serve_workload_sockets};
