use crate::{DefaultAction, PolicyId};

/// A tier as the local endpoint sees it: Felix's `TierInfo`.
#[derive(Clone, Debug)]
pub struct Tier {
    /// The tier's name, as in the policies' `tier`.
    pub name: String,
    /// Ingress policies of the tier, in evaluation order.
    pub ingress_policies: Vec<PolicyId>,
    /// Egress policies of the tier, in evaluation order.
    pub egress_policies: Vec<PolicyId>,
    /// What the tier does when none of its policies ends the walk.
    pub default_action: DefaultAction,
}

/// The local workload endpoint: its tiers (in order) and profiles.
#[derive(Clone, Debug, Default)]
pub struct Endpoint {
    /// The workload endpoint's name (Felix's `WorkloadEndpoint.name`).
    pub name: String,
    /// The endpoint's tiers, in evaluation order.
    pub tiers: Vec<Tier>,
    /// Ids of the profiles applied after the tiers, in order.
    pub profile_ids: Vec<String>,
}

impl From<&alp_proto::felix::WorkloadEndpoint> for Endpoint {
    fn from(ep: &alp_proto::felix::WorkloadEndpoint) -> Self {
        Endpoint {
            name: ep.name.clone(),
            tiers: ep
                .tiers
                .iter()
                .map(|t| Tier {
                    name: t.name.clone(),
                    ingress_policies: t.ingress_policies.iter().map(PolicyId::from).collect(),
                    egress_policies: t.egress_policies.iter().map(PolicyId::from).collect(),
                    default_action: DefaultAction::parse(&t.default_action),
                })
                .collect(),
            profile_ids: ep.profile_ids.clone(),
        }
    }
}
