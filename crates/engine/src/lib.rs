//! The authorizer's core, between the policy-sync client and the ext_authz server:
//! [`Store`] applies Felix's policy-sync updates and, once in sync, yields immutable
//! [`Snapshot`]s in which everything is compiled and indexed; [`decide`] walks a snapshot's
//! tiers, policies and profiles for one request, as Calico's Dikastes does (with alp's
//! differences D1–D4, D7, D8). No I/O here.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing))]

mod contents;
mod decide;
mod labels;
mod live;
pub use labels::LabelMap;
mod origin;
mod plan;
mod snapshot;
mod store;

pub use alp_model::{Direction, Request, Scope};
#[cfg(feature = "unindexed")]
pub use decide::decide_unindexed;
pub use decide::{Code, Decision, Hit, decide, decide_with};
pub use live::{Live, LiveWriter};
pub use origin::PROFILE_TIER;
pub use snapshot::Snapshot;
pub use store::{Applied, Config, Store, StoreError};
