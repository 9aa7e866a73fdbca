//! The policy model the authorizer decides on. Felix's policy-sync messages (`alp-proto`) are
//! compiled here once, when they arrive: selectors parsed, CIDRs parsed, rule paths normalised,
//! IP-set ids interned. The engine then walks these types on every check without parsing.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing))]

mod action;
mod endpoint;
mod id;
mod request;
mod rule;
mod spiffe;

pub use action::{Action, DefaultAction, InvalidAction};
pub use endpoint::{Endpoint, Tier};
pub use id::{PolicyId, PolicyKind};
pub use request::{Address, Http, Peer, Request};
pub use rule::{
    HttpMatch, NamespaceMatch, Policy, PortRange, Profile, ProtocolMatch, Rule, RuleAction, RuleDefect,
    ServiceAccountMatch, SetRef, Side,
};
pub use spiffe::SpiffeId;

/// Traffic direction of a check: the authorizer only ever asks about ingress.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    #[default]
    /// Traffic into the local workload: the only direction a check asks about.
    Ingress,
    /// Traffic out of the local workload.
    Egress,
}

impl Direction {
    /// The lower-case name used in traces (`ingress` / `egress`).
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }
}

/// Which policies a walk counts: the enforced ones (staged kinds skipped, as the authorizer does),
/// or staged ones as if enforced (to preview what a staged policy would do).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Scope {
    #[default]
    /// Only enforced policies count; staged kinds are skipped.
    Enforced,
    /// Staged policies count as if they were enforced.
    StagedAsEnforced,
}
