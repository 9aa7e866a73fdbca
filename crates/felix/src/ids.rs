//! The names Felix's policy-sync protocol gives things: endpoint ids, workload ids and the
//! profiles Calico derives from namespaces and service accounts.

use alp_proto::felix::WorkloadEndpointId;

/// The orchestrator of Kubernetes workloads: the `orchestrator_id` of a pod's endpoint, and of
/// every endpoint a policy-sync connection can stand for.
pub const ORCHESTRATOR_K8S: &str = "k8s";

/// The `endpoint_id` of a Kubernetes pod's only endpoint, and of every endpoint a policy-sync
/// connection can stand for.
pub const ENDPOINT_ETH0: &str = "eth0";

/// Prefix of a namespace's profile (`kns.<namespace>`).
pub const NAMESPACE_PROFILE_PREFIX: &str = "kns.";

/// Prefix of a service account's profile (`ksa.<namespace>.<name>`).
pub const SERVICE_ACCOUNT_PROFILE_PREFIX: &str = "ksa.";

/// A workload's id on the wire (`WorkloadEndpointID.workload_id`): `<namespace>/<pod>`.
pub fn workload_id(namespace: &str, pod: &str) -> String {
    format!("{namespace}/{pod}")
}

/// The endpoint id of a Kubernetes pod: `{k8s, <namespace>/<pod>, eth0}`.
pub fn pod_endpoint_id(namespace: &str, pod: &str) -> WorkloadEndpointId {
    WorkloadEndpointId {
        orchestrator_id: ORCHESTRATOR_K8S.to_owned(),
        workload_id: workload_id(namespace, pod),
        endpoint_id: ENDPOINT_ETH0.to_owned(),
    }
}

/// True when `id` names an endpoint a policy-sync connection can stand for (a pod's `eth0`
/// under `k8s`): Felix serves no other.
pub fn is_connectable(id: &WorkloadEndpointId) -> bool {
    id.orchestrator_id == ORCHESTRATOR_K8S && id.endpoint_id == ENDPOINT_ETH0
}

/// The profile of a namespace: `kns.<namespace>`.
pub fn namespace_profile(namespace: &str) -> String {
    format!("{NAMESPACE_PROFILE_PREFIX}{namespace}")
}

/// The profile of a service account: `ksa.<namespace>.<name>`.
pub fn service_account_profile(namespace: &str, name: &str) -> String {
    format!("{SERVICE_ACCOUNT_PROFILE_PREFIX}{namespace}.{name}")
}

/// `kns.<namespace>` → the namespace.
pub fn namespace_of_profile(profile: &str) -> Option<&str> {
    profile.strip_prefix(NAMESPACE_PROFILE_PREFIX)
}

/// `ksa.<namespace>.<name>` → (namespace, name), as Calico splits it (namespaces have no dots).
pub fn service_account_of_profile(profile: &str) -> Option<(&str, &str)> {
    profile.strip_prefix(SERVICE_ACCOUNT_PROFILE_PREFIX)?.split_once('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_round_trip() {
        assert_eq!(namespace_profile("shop"), "kns.shop");
        assert_eq!(namespace_of_profile("kns.shop"), Some("shop"));
        assert_eq!(service_account_profile("shop", "web.v2"), "ksa.shop.web.v2");
        assert_eq!(service_account_of_profile("ksa.shop.web.v2"), Some(("shop", "web.v2")));
        assert_eq!(service_account_of_profile("ksa.shop"), None);
        assert_eq!(namespace_of_profile("ksa.shop.web"), None);
    }

    #[test]
    fn only_pod_endpoints_are_connectable() {
        let id = pod_endpoint_id("shop", "web");
        assert_eq!(id.workload_id, "shop/web");
        assert!(is_connectable(&id));
        assert!(!is_connectable(&WorkloadEndpointId { endpoint_id: "eth1".into(), ..id.clone() }));
        assert!(!is_connectable(&WorkloadEndpointId { orchestrator_id: "openstack".into(), ..id }));
    }
}
