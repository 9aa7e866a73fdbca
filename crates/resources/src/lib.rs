//! Calico resources as users write them, the first stop of the datastores: text (a file, an
//! etcd value, an API object) → typed, defaulted, validated [`Resource`]s for the calculator.
//!
//! ```text
//! datastore (files | etcd | k8s) ──text──▶ parse_documents ──Resource──▶ calc
//! ```
//!
//! * Kinds: `projectcalico.org/v3` (and `crd.projectcalico.org/v1`) GlobalNetworkPolicy,
//!   NetworkPolicy, their staged forms, StagedKubernetesNetworkPolicy, Tier, Profile,
//!   GlobalNetworkSet, NetworkSet, WorkloadEndpoint; Kubernetes `v1` Pod, Namespace,
//!   ServiceAccount and `networking.k8s.io/v1` NetworkPolicy.
//! * [`parse_documents`] reads multi-document YAML or JSON; one bad document never hides
//!   the others, and every [`ResourceError`] names file, document, kind/name, field and reason.
//! * Defaults are Calico's ([`Resource::apply_defaults`], [`builtin_tiers`]); validation is what
//!   Calico's validator rejects that matters here ([`Resource::validate`]).
//! * Every policy kind's spec is a [`PolicySpec`]: [`Resource::as_policy`] gives one borrowed
//!   [`PolicyView`] (Calico's tiered policies or Kubernetes NetworkPolicies, enforced or staged),
//!   which validation, the defaults and the calculator read.
//!
//! Pure: no I/O, no async.
//!
//! ```
//! let yaml = "
//! apiVersion: projectcalico.org/v3
//! kind: NetworkPolicy
//! metadata: {name: allow-get, namespace: shop}
//! spec:
//!   selector: app == 'web'
//!   ingress:
//!   - action: Allow
//!     http: {methods: [GET]}
//! ";
//! let parsed = alp_resources::parse_documents(yaml, "policy.yaml");
//! let Ok(alp_resources::Resource::NetworkPolicy(np)) = &parsed[0] else { panic!() };
//! assert_eq!(np.spec.tier, "default");
//! assert_eq!(np.spec.types, [alp_resources::PolicyType::Ingress]);
//! ```

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing))]

mod calico;
mod error;
mod k8s;
mod meta;
mod parse;
mod policy;
mod resource;
mod rule;
mod validate;

// Each item once, at the root: the modules are private.
pub use calico::*;
pub use error::{FieldError, Reason, ResourceError};
pub use k8s::*;
pub use meta::ObjectMeta;
pub use parse::{DocumentCache, parse_documents, parse_documents_cached, parse_value};
pub use policy::{CalicoPolicyView, KubernetesPolicyView, PolicyScope, PolicySpec, PolicyView, StagedAction};
pub use resource::{
    CALICO_API_VERSION, CALICO_CRD_API_VERSION, DEFAULT_NAMESPACE, K8S_CORE_API_VERSION, K8S_NETWORKING_API_VERSION,
    Kind, Resource, ResourceKey,
};
pub use rule::*;
pub use validate::{MAX_HTTP_MATCHES, MAX_HTTP_PATH_LEN, is_dns_label, is_dns_subdomain, is_valid_port_name};
