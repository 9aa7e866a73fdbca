//! Who acted in a trace step: a policy of a tier, or a profile. Plans keep one per slot; the
//! decision walk's trace steps point at them.

use std::borrow::Cow;

use alp_model::PolicyId;

/// Tier name used in traces for profiles.
pub const PROFILE_TIER: &str = "__PROFILE__";

/// Who acted in a trace step: a policy of a tier, or a profile (kept in the snapshot, so a
/// trace step is a reference and two numbers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub(crate) kind: Cow<'static, str>,
    pub(crate) tier: Cow<'static, str>,
    pub(crate) namespace: Cow<'static, str>,
    pub(crate) name: Cow<'static, str>,
}

impl Origin {
    pub(crate) const fn fixed(kind: &'static str, tier: &'static str, name: &'static str) -> Origin {
        Origin {
            kind: Cow::Borrowed(kind),
            tier: Cow::Borrowed(tier),
            namespace: Cow::Borrowed(""),
            name: Cow::Borrowed(name),
        }
    }

    pub(crate) fn policy(id: &PolicyId, tier: &str) -> Origin {
        Origin {
            kind: Cow::Owned(id.kind.clone()),
            tier: Cow::Owned(tier.to_owned()),
            namespace: Cow::Owned(id.namespace.clone()),
            name: Cow::Owned(id.name.clone()),
        }
    }

    pub(crate) fn profile(name: &str) -> Origin {
        Origin { name: Cow::Owned(name.to_owned()), ..Origin::fixed("Profile", PROFILE_TIER, "") }
    }
}

/// Where a walk that ran out of profiles (or found none) ends.
pub(crate) static NO_PROFILE: Origin = Origin::fixed("Profile", PROFILE_TIER, PROFILE_TIER);
