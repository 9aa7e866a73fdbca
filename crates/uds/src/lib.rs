//! gRPC over Unix sockets: every `:authority` a client sends, accepted by our servers; and the
//! one channel our own clients dial a socket with ([`channel`]).
//!
//! grpc-go dialling a socket path (Calico's Dikastes and `healthz`, many CSI and CRI tools)
//! sends the path itself as `:authority` (`/var/run/nodeagent/socket`); gRPC C-core sends it
//! percent-encoded, others send nothing or `localhost`. h2 resets a stream whose authority is not
//! a URI authority with PROTOCOL_ERROR, so grpc-go clients could not talk to a tonic or h2
//! server at all. [`Filtered`] sits between a Unix socket and the server: a request whose
//! `:authority` h2 would refuse reaches it without that header; every other byte is unchanged.
//!
//! ```text
//! client ══UDS══▶ Filtered (AuthorityFilter: frames, HPACK) ──▶ h2 / tonic server
//! ```

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing))]

mod filter;
pub mod frame;
mod hpack;
#[cfg(feature = "io")]
mod io;

pub use filter::{AuthorityFilter, FilterError, MAX_HEADER_BLOCK, is_valid_authority};
pub use hpack::{HpackError, MAX_HEADER_LIST};
#[cfg(feature = "io")]
pub use io::{Filtered, channel, incoming};
