use crate::{DefaultAction, PolicyId};

/// A tier as the local endpoint sees it: Felix's `TierInfo`.
#[derive(Clone, Debug)]
pub struct Tier {
    pub name: String,
    pub ingress_policies: Vec<PolicyId>,
    pub egress_policies: Vec<PolicyId>,
    pub default_action: DefaultAction,
}

/// The local workload endpoint: its tiers (in order) and profiles.
#[derive(Clone, Debug, Default)]
pub struct Endpoint {
    pub name: String,
    pub tiers: Vec<Tier>,
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
