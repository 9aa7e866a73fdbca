//! The calculator's state, one index per concern, as linkerd2's policy-controller index splits
//! namespace, pod and policy state. Each index keeps its own maps and the reverse maps that
//! make a change cheap, and marks in [`Pending`](crate::pending::Pending) what a change may have
//! altered downstream; `Calculator` (`calculator.rs`) joins them for each resource.
//!
//! * [`items`]: workload endpoints and network sets with their inherited labels, by namespace,
//!   and which are local;
//! * [`profiles`]: profiles (explicit, or derived from namespaces and service accounts), the
//!   labels they give, and which items inherit or (locally) name them;
//! * [`policies`]: tiers and policies, and which local workloads each policy selects;
//! * [`ip_sets`]: the active IP sets, their members and the policies and profiles holding them.

pub(crate) mod ip_sets;
pub(crate) mod items;
pub(crate) mod policies;
pub(crate) mod profiles;
