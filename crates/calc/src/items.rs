//! Labelled items: workload endpoints (from Pods or v3 WorkloadEndpoints) and network sets, the
//! things policy and rule selectors match, with the labels Calico adds to them.

use std::collections::BTreeMap;

use alp_felix::{
    ENDPOINT_ETH0, ORCHESTRATOR_K8S, namespace_profile, pod_endpoint_id, service_account_profile, workload_id,
};
use alp_proto::felix::WorkloadEndpointId;
use alp_resources::{GlobalNetworkSet, NetworkSet, Pod, WorkloadEndpoint};
use ipnet::IpNet;

use crate::convert::{
    LABEL_NAMESPACE, LABEL_ORCHESTRATOR, LABEL_SERVICE_ACCOUNT, NAMESPACE_LABEL_PREFIX, SERVICE_ACCOUNT_LABEL_PREFIX,
    parse_cidr_or_ip,
};
use crate::ids::veth_name_for_workload;

/// `cni.projectcalico.org/podIP`.
const ANNOTATION_POD_IP: &str = "cni.projectcalico.org/podIP";
/// `cni.projectcalico.org/podIPs`.
const ANNOTATION_POD_IPS: &str = "cni.projectcalico.org/podIPs";
/// `vpc.amazonaws.com/pod-ips`.
const ANNOTATION_AWS_POD_IPS: &str = "vpc.amazonaws.com/pod-ips";
/// The one pod annotation Calico copies onto the workload endpoint.
const ANNOTATION_NETWORK_STATUS: &str = "k8s.v1.cni.cncf.io/network-status";

/// Which resource an item came from.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum ItemKey {
    /// A Kubernetes Pod (namespace, name).
    Pod(String, String),
    /// A v3 WorkloadEndpoint (namespace, name).
    WorkloadEndpoint(String, String),
    /// A NetworkSet (namespace, name).
    NetworkSet(String, String),
    /// A GlobalNetworkSet.
    GlobalNetworkSet(String),
}

/// A named port of a workload endpoint.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct EndpointPort {
    pub name: String,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
    pub port: u16,
}

/// What makes an item a workload endpoint.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct EndpointData {
    pub id: WorkloadEndpointId,
    /// The pod's namespace and name (for [`crate::WorkloadKey`]).
    pub namespace: String,
    pub pod: String,
    /// Whether it runs on this node.
    pub local: bool,
    /// The interface name.
    pub name: String,
    pub mac: String,
    pub ipv4_nets: Vec<String>,
    pub ipv6_nets: Vec<String>,
    pub annotations: BTreeMap<String, String>,
    /// Named ports.
    pub ports: Vec<EndpointPort>,
    /// Bare addresses, for named-port members.
    pub addrs: Vec<String>,
}

/// An item as the datastore describes it (before profile labels are inherited).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ItemData {
    pub labels: BTreeMap<String, String>,
    /// Profiles whose labels it inherits, in order.
    pub profile_ids: Vec<String>,
    /// Its addresses as `NET` members (masked CIDRs).
    pub nets: Vec<String>,
    /// Set for workload endpoints.
    pub endpoint: Option<EndpointData>,
}

impl ItemData {
    pub fn is_local(&self) -> bool {
        self.endpoint.as_ref().is_some_and(|e| e.local)
    }
}

/// Labels as Felix gets them from an endpoint: `pcns.`/`pcsa.` labels dropped, so an endpoint
/// cannot pretend to be in another namespace (`workloadendpointprocessor.go`).
fn endpoint_labels(labels: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    labels
        .iter()
        .filter(|(k, _)| !k.starts_with(NAMESPACE_LABEL_PREFIX) && !k.starts_with(SERVICE_ACCOUNT_LABEL_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Splits networks into v4 and v6 strings.
fn split_families(nets: &[IpNet]) -> (Vec<String>, Vec<String>) {
    let v4 = nets.iter().filter(|n| matches!(n, IpNet::V4(_))).map(ToString::to_string).collect();
    let v6 = nets.iter().filter(|n| matches!(n, IpNet::V6(_))).map(ToString::to_string).collect();
    (v4, v6)
}

/// `IsFinished`: a pod that no longer owns its addresses.
fn pod_finished(pod: &Pod) -> bool {
    let ann = &pod.metadata.annotations;
    if pod.metadata.deletion_timestamp.is_some()
        && (ann.get(ANNOTATION_POD_IP).is_some_and(String::is_empty)
            || ann.get(ANNOTATION_AWS_POD_IPS).is_some_and(String::is_empty))
    {
        return true;
    }
    matches!(pod.status.phase.as_deref(), Some("Failed" | "Succeeded" | "Completed"))
}

/// `getPodIPs`: `status.podIPs`, else `status.podIP`, else the CNI annotations. `None` when an
/// address does not parse (Calico then fails the whole conversion).
fn pod_ips(pod: &Pod) -> Option<Vec<IpNet>> {
    let ann = &pod.metadata.annotations;
    let non_empty = |s: &&String| !s.is_empty();
    let texts: Vec<String> = if !pod.status.pod_ips.is_empty() {
        pod.status.pod_ips.iter().map(|p| p.ip.clone()).collect()
    } else if let Some(ip) = pod.status.pod_ip.as_ref().filter(non_empty) {
        vec![ip.clone()]
    } else if let Some(ips) = ann.get(ANNOTATION_POD_IPS).filter(non_empty) {
        ips.split(',').map(str::to_owned).collect()
    } else if let Some(ip) = ann.get(ANNOTATION_POD_IP).filter(non_empty) {
        vec![ip.clone()]
    } else if let Some(ips) = ann.get(ANNOTATION_AWS_POD_IPS).filter(non_empty) {
        ips.split(',').map(str::to_owned).collect()
    } else {
        Vec::new()
    };
    texts.iter().map(|t| parse_cidr_or_ip(t).map(|n| n.trunc())).collect()
}

/// A Kubernetes Pod as Calico's conversion makes it a workload endpoint
/// (`workload_endpoint_default.go`, then `workloadendpointprocessor.go`). `None` when it is not
/// one Felix would see: host-networked, unscheduled, or without addresses (finished pods lose
/// theirs).
pub(crate) fn pod_item(pod: &Pod, node: Option<&str>) -> Option<ItemData> {
    let node_name = pod.spec.node_name.as_deref().filter(|n| !n.is_empty())?;
    if pod.spec.host_network {
        return None;
    }
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone();
    let nets = if pod_finished(pod) { Vec::new() } else { pod_ips(pod)? };
    if nets.is_empty() {
        return None;
    }
    let sa = pod.spec.service_account_name.clone().unwrap_or_default();

    let mut labels = endpoint_labels(&pod.metadata.labels);
    labels.insert(LABEL_NAMESPACE.to_owned(), ns.clone());
    labels.insert(LABEL_ORCHESTRATOR.to_owned(), ORCHESTRATOR_K8S.to_owned());
    if !sa.is_empty() && sa.len() < 63 {
        labels.insert(LABEL_SERVICE_ACCOUNT.to_owned(), sa.clone());
    }
    let mut profile_ids = vec![namespace_profile(&ns)];
    if !sa.is_empty() {
        profile_ids.push(service_account_profile(&ns, &sa));
    }

    let ports = pod
        .spec
        .containers
        .iter()
        .chain(&pod.spec.init_containers)
        .flat_map(|c| &c.ports)
        .filter_map(|p| {
            let name = p.name.clone().filter(|n| !n.is_empty())?;
            let port = u16::try_from(p.container_port).ok().filter(|p| *p != 0)?;
            let protocol = match p.protocol.as_deref() {
                Some("TCP") | Some("") | None => "tcp",
                Some("UDP") => "udp",
                Some("SCTP") => "sctp",
                Some(_) => return None,
            };
            Some(EndpointPort { name, protocol: protocol.to_owned(), port })
        })
        .collect();
    let annotations = pod
        .metadata
        .annotations
        .get(ANNOTATION_NETWORK_STATUS)
        .map(|v| (ANNOTATION_NETWORK_STATUS.to_owned(), v.clone()))
        .into_iter()
        .collect();
    let (ipv4_nets, ipv6_nets) = split_families(&nets);
    Some(ItemData {
        labels,
        profile_ids,
        nets: nets.iter().map(ToString::to_string).collect(),
        endpoint: Some(EndpointData {
            id: pod_endpoint_id(&ns, &name),
            local: node.is_none_or(|n| n == node_name),
            name: veth_name_for_workload(&ns, &name),
            mac: String::new(),
            ipv4_nets,
            ipv6_nets,
            annotations,
            ports,
            addrs: nets.iter().map(|n| n.addr().to_string()).collect(),
            namespace: ns,
            pod: name,
        }),
    })
}

/// A v3 WorkloadEndpoint (etcd mode), as `workloadendpointprocessor.go` gives it to Felix. As
/// `calicoctl`/`clientv3` do when they store one, the `projectcalico.org/namespace` and
/// `projectcalico.org/orchestrator` labels are added when missing. `None` without addresses.
pub(crate) fn wep_item(wep: &WorkloadEndpoint, node: Option<&str>) -> Option<ItemData> {
    let ns = wep.metadata.namespace.clone().unwrap_or_default();
    let spec = &wep.spec;
    let nets: Vec<IpNet> = spec.ip_networks.iter().filter_map(|n| parse_cidr_or_ip(n)).map(|n| n.trunc()).collect();
    if nets.is_empty() {
        return None;
    }
    let orchestrator = if spec.orchestrator.is_empty() { ORCHESTRATOR_K8S } else { spec.orchestrator.as_str() };
    let mut labels = endpoint_labels(&wep.metadata.labels);
    labels.entry(LABEL_NAMESPACE.to_owned()).or_insert_with(|| ns.clone());
    labels.entry(LABEL_ORCHESTRATOR.to_owned()).or_insert_with(|| orchestrator.to_owned());
    if !spec.service_account_name.is_empty() {
        labels.insert(LABEL_SERVICE_ACCOUNT.to_owned(), spec.service_account_name.clone());
    }
    let pod = [&spec.pod, &spec.workload, &wep.metadata.name]
        .into_iter()
        .find(|s| !s.is_empty())
        .cloned()
        .unwrap_or_default();
    let ports = spec
        .ports
        .iter()
        .filter(|p| !p.name.is_empty())
        .map(|p| EndpointPort { name: p.name.clone(), protocol: p.protocol.to_v1(), port: p.port })
        .collect();
    let (ipv4_nets, ipv6_nets) = split_families(&nets);
    Some(ItemData {
        labels,
        profile_ids: spec.profiles.clone(),
        nets: nets.iter().map(ToString::to_string).collect(),
        endpoint: Some(EndpointData {
            id: WorkloadEndpointId {
                orchestrator_id: orchestrator.to_owned(),
                workload_id: workload_id(&ns, &pod),
                endpoint_id: if spec.endpoint.is_empty() { ENDPOINT_ETH0.to_owned() } else { spec.endpoint.clone() },
            },
            local: node.is_none_or(|n| n == spec.node),
            name: spec.interface_name.clone(),
            mac: spec.mac.clone(),
            ipv4_nets,
            ipv6_nets,
            annotations: wep.metadata.annotations.clone(),
            ports,
            addrs: nets.iter().map(|n| n.addr().to_string()).collect(),
            namespace: ns,
            pod,
        }),
    })
}

fn set_nets(nets: &[String]) -> Vec<String> {
    let mut out: Vec<String> = nets.iter().filter_map(|n| parse_cidr_or_ip(n)).map(|n| n.trunc().to_string()).collect();
    out.sort();
    out.dedup();
    out
}

/// A NetworkSet: its labels plus `projectcalico.org/namespace`, and the namespace's profile so it
/// inherits the `pcns.` labels (`networksetprocessor.go`).
pub(crate) fn network_set_item(set: &NetworkSet) -> ItemData {
    let ns = set.metadata.namespace.clone().unwrap_or_default();
    let mut labels = set.metadata.labels.clone();
    labels.insert(LABEL_NAMESPACE.to_owned(), ns.clone());
    ItemData { labels, profile_ids: vec![namespace_profile(&ns)], nets: set_nets(&set.spec.nets), endpoint: None }
}

/// A GlobalNetworkSet: only its own labels.
pub(crate) fn global_network_set_item(set: &GlobalNetworkSet) -> ItemData {
    ItemData {
        labels: set.metadata.labels.clone(),
        profile_ids: Vec::new(),
        nets: set_nets(&set.spec.nets),
        endpoint: None,
    }
}
