use std::fmt;

/// A rule's action, parsed case-insensitively as Calico's checker does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Allow the request and end the walk.
    Allow,
    /// Deny the request and end the walk.
    Deny,
    /// `pass` or `next-tier`: go on to the next tier.
    Pass,
    /// Matching a `log` rule does not end the walk.
    Log,
}

/// An action string that is none of allow, deny, pass, next-tier or log.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid action {0:?}")]
pub struct InvalidAction(pub String);

impl Action {
    /// Parses `allow|deny|pass|next-tier|log`, ignoring ASCII case.
    pub fn parse(s: &str) -> Result<Self, InvalidAction> {
        const TABLE: [(&str, Action); 5] = [
            ("allow", Action::Allow),
            ("deny", Action::Deny),
            ("pass", Action::Pass),
            ("next-tier", Action::Pass),
            ("log", Action::Log),
        ];
        TABLE
            .iter()
            .find(|(name, _)| s.eq_ignore_ascii_case(name))
            .map(|(_, a)| *a)
            .ok_or_else(|| InvalidAction(s.to_owned()))
    }

    /// The lower-case name used in traces.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Deny => "deny",
            Action::Pass => "pass",
            Action::Log => "log",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a tier does when none of its policies matched, read as Dikastes reads
/// `TierInfo.default_action`: the tier passes only on exactly `Pass`; any other action it knows
/// ends the check denied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DefaultAction {
    /// Exactly `Pass`: on to the next tier.
    Pass,
    /// Any other action (`Deny` as Felix sends it, but also `Allow`, `pass`, `next-tier` or
    /// `log` in any case, which Dikastes parses and then denies on, since only `Pass` passes):
    /// the check is denied, and the end-of-tier step shows this action.
    Deny(Action),
    /// Not an action (Felix sends `""` for a policy whose tier does not exist): the check ends
    /// with INVALID_ARGUMENT at the first policy of the tier that does not match.
    Invalid(String),
}

impl DefaultAction {
    /// Parses a `TierInfo.default_action`.
    pub fn parse(s: &str) -> Self {
        if s == "Pass" {
            return DefaultAction::Pass;
        }
        match Action::parse(s) {
            Ok(action) => DefaultAction::Deny(action),
            Err(_) => DefaultAction::Invalid(s.to_owned()),
        }
    }
}
