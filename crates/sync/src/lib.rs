//! The authorizer's end of Felix's policy-sync API, between the node agent's socket and the
//! engine: [`run_client`] streams `PolicySync/Sync` over a Unix socket into a fresh
//! [`alp_engine::Store`] per connection and publishes snapshots to [`alp_engine::Live`] from
//! InSync on (difference D5: fail closed until then, keep the last snapshot while
//! reconnecting); [`Backoff`] spaces the reconnects (difference D6). [`Publisher`] is that
//! apply → snapshot → publish → readiness path, the one the standalone server uses too. The
//! agent's end is `alp-sync-server`.

mod backoff;
mod client;
mod publisher;

pub use backoff::{Backoff, Jitter};
pub use client::{ClientConfig, MAX_MESSAGE_BYTES, SyncError, run_client};
pub use publisher::Publisher;
