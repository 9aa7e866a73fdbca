//! The node agent's calculation graph: Calico resources in, the policy-sync stream Felix's calc
//! graph sends its policy-sync processor out.
//!
//! ```text
//! datastore (files | etcd | k8s) ──Resource──▶ Calculator ──ToDataplane (global)──▶ sync server (per workload)
//! ```
//!
//! [`Calculator`] keeps the datastore's policy-relevant state and, for every change, returns the
//! policy-sync messages that change brings, in the order Felix's event sequencer
//! flushes them: `IPSetUpdate` (full members), `IPSetDeltaUpdate`,
//! `ActivePolicyUpdate`, `ActiveProfileUpdate`, `WorkloadEndpointUpdate`, the removes in
//! reverse, then `ServiceAccountUpdate/Remove` and `NamespaceUpdate/Remove`. The stream covers
//! every local workload; choosing what each workload sees, ordering per endpoint and splitting
//! large IP sets are the processor's job ([`alp_felix::Processor`]), whose ids and profile names
//! this crate shares.
//!
//! What Felix does and this crate reproduces:
//! * workload endpoints from Pods or v3 WorkloadEndpoints with Calico's special labels and
//!   inherited profile labels (`pcns.*`, `pcsa.*`); profiles `kns.<ns>` / `ksa.<ns>.<sa>`;
//! * policy selection and the tier layout of each endpoint (built-in tiers `kube-admin`,
//!   `default`, `kube-baseline`);
//! * rule conversion, Kubernetes NetworkPolicy conversion, IP sets with Felix's ids and members.
//!
//! Where Calico would silently widen a rule on data it cannot convert, the converted rule names
//! an IP set that is never sent instead ([`INVALID_SELECTOR_SET_ID`]; Kubernetes Services are
//! not modelled, so `services` sets are never sent either): the authorizer fails closed there.
//!
//! Pure: no I/O, no async.
//!
//! ```
//! use alp_calc::Calculator;
//! use alp_proto::felix::to_dataplane::Payload;
//!
//! let docs = "
//! apiVersion: v1
//! kind: Namespace
//! metadata: {name: shop}
//! ---
//! apiVersion: v1
//! kind: Pod
//! metadata: {name: web, namespace: shop, labels: {app: web}}
//! spec: {nodeName: node-1}
//! status: {podIP: 10.0.0.5}
//! ---
//! apiVersion: projectcalico.org/v3
//! kind: NetworkPolicy
//! metadata: {name: allow-get, namespace: shop}
//! spec:
//!   selector: app == 'web'
//!   ingress: [{action: Allow, http: {methods: [GET]}}]
//! ";
//! let mut calc = Calculator::new(Some("node-1".into()));
//! let mut out = Vec::new();
//! for r in alp_resources::parse_documents(docs, "demo.yaml") {
//!     out.extend(calc.apply(r.unwrap()));
//! }
//! out.extend(calc.in_sync());
//! let endpoint = out.iter().rev().find_map(|m| match &m.payload {
//!     Some(Payload::WorkloadEndpointUpdate(u)) => u.endpoint.clone(),
//!     _ => None,
//! });
//! let endpoint = endpoint.unwrap();
//! assert_eq!(endpoint.ipv4_nets, ["10.0.0.5/32"]);
//! assert_eq!(endpoint.tiers[0].name, "default");
//! assert_eq!(endpoint.tiers[0].ingress_policies[0].name, "allow-get");
//! assert_eq!(calc.workloads()[0].name, "web");
//! ```

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing))]

mod calculator;
mod convert;
mod ids;
mod index;
mod items;
mod k8s;
mod outbox;
mod pending;
mod policy;

use std::borrow::Borrow;

use alp_proto::felix::{ToDataplane, WorkloadEndpointId};
use alp_resources::Resource;

pub use calculator::Calculator;
pub use convert::{
    INVALID_SELECTOR_SET_ID, LABEL_NAME, LABEL_NAMESPACE, LABEL_ORCHESTRATOR, LABEL_SERVICE_ACCOUNT,
    NAMESPACE_LABEL_PREFIX, SERVICE_ACCOUNT_LABEL_PREFIX,
};
pub use index::profiles::DEFAULT_ALLOW_PROFILE;

/// A local workload: its namespace and pod name (for a v3 WorkloadEndpoint, its `pod`, else its
/// `workload`), and the id its endpoint has on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WorkloadKey {
    /// The namespace.
    pub namespace: String,
    /// The pod name.
    pub name: String,
    /// `{orchestrator_id: "k8s", workload_id: "<ns>/<pod>", endpoint_id: "eth0"}` for pods
    /// ([`alp_felix::pod_endpoint_id`]).
    pub endpoint_id: WorkloadEndpointId,
}

/// The stream `workload_id` (`NS/POD`) receives from an agent whose datastore holds
/// `resources` (every workload local), joining once the calculator is in sync: what `alp calc`
/// prints and `alp eval --datastore` decides against.
pub fn workload_stream<R: Borrow<Resource>>(
    resources: impl IntoIterator<Item = R>,
    workload_id: &str,
) -> Vec<ToDataplane> {
    let mut calc = Calculator::new(None);
    let mut global = Vec::new();
    for r in resources {
        global.extend(calc.apply(r));
    }
    global.extend(calc.in_sync());
    alp_felix::WorkloadFeed::join_after(global, workload_id)
}
