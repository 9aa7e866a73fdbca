//! Felix's policy-sync protocol, as pure logic: what the calculator and the agent's server
//! must agree on, in one place.
//!
//! ```text
//! calc ──ToDataplane (global)──▶ Processor ──per-workload ToDataplane──▶ sync server (sockets) | WorkloadFeed (in-process)
//! ```
//!
//! * [`ids`](crate::ORCHESTRATOR_K8S): the endpoint id of a pod (`k8s`, `<ns>/<pod>`, `eth0`),
//!   the only endpoints a policy-sync connection stands for, and the profiles Calico derives
//!   from namespaces (`kns.<ns>`) and service accounts (`ksa.<ns>.<sa>`);
//! * splitting: full IP-set updates and deltas cut at [`MAX_MEMBERS_PER_MESSAGE`], as Felix
//!   cuts them ([`split_ip_set_update`], [`split_ip_set_delta`]);
//! * [`Processor`]: Felix's `policysync.Processor`, the calculator's global stream in, what
//!   each connected workload's stream must carry out (only what its endpoint references,
//!   everything a message refers to before it);
//! * [`WorkloadFeed`]: the processor joined for one workload, for the standalone authorizer,
//!   `alp calc` and `alp eval --datastore`.
//!
//! Pure: no I/O, no async. The agent's sockets and queues are `alp-sync-server`'s.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing))]

mod feed;
mod ids;
mod processor;
mod split;

pub use feed::WorkloadFeed;
pub use ids::{
    ENDPOINT_ETH0, NAMESPACE_PROFILE_PREFIX, ORCHESTRATOR_K8S, SERVICE_ACCOUNT_PROFILE_PREFIX, is_connectable,
    namespace_of_profile, namespace_profile, pod_endpoint_id, service_account_of_profile, service_account_profile,
    workload_id,
};
pub use processor::{EndpointKey, JoinId, Outgoing, Processor};
pub use split::{MAX_MEMBERS_PER_MESSAGE, split_ip_set_delta, split_ip_set_update};
