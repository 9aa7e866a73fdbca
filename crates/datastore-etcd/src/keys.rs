//! Calico's etcd key layout (libcalico-go's `model/resource.go`): `PREFIX<plural>/<name>` for
//! cluster-scoped kinds, `PREFIX<plural>/<namespace>/<name>` for namespaced ones.

use alp_resources::{Kind, ResourceKey};

use crate::Error;

/// Where Calico keeps its v3 resources; everything alp reads is under it.
pub const PREFIX: &str = "/calico/resources/v3/projectcalico.org/";

/// The path segment of `kind` under [`PREFIX`]; `None` for the Kubernetes kinds, which Calico's
/// etcd layout does not hold (there, workloads are WorkloadEndpoints and namespace and service
/// account labels live in `kns.*` / `ksa.*` Profiles).
pub fn plural(kind: Kind) -> Option<&'static str> {
    match kind {
        Kind::GlobalNetworkPolicy => Some("globalnetworkpolicies"),
        Kind::StagedGlobalNetworkPolicy => Some("stagedglobalnetworkpolicies"),
        Kind::NetworkPolicy => Some("networkpolicies"),
        Kind::StagedNetworkPolicy => Some("stagednetworkpolicies"),
        Kind::StagedKubernetesNetworkPolicy => Some("stagedkubernetesnetworkpolicies"),
        Kind::Tier => Some("tiers"),
        Kind::Profile => Some("profiles"),
        Kind::WorkloadEndpoint => Some("workloadendpoints"),
        Kind::GlobalNetworkSet => Some("globalnetworksets"),
        Kind::NetworkSet => Some("networksets"),
        Kind::KubernetesNetworkPolicy | Kind::Pod | Kind::Namespace | Kind::ServiceAccount => None,
    }
}

/// The kind stored under `plural`, if alp reads it.
pub fn kind_of_plural(plural: &str) -> Option<Kind> {
    Kind::ALL.into_iter().find(|k| self::plural(*k) == Some(plural))
}

/// The stored kind a user names on a command line (`alp get KIND`): the kind (`NetworkPolicy`),
/// its plural (`networkpolicies`), either in any case, or a calicoctl short name (`gnp`, `np`,
/// `wep`). Kubernetes kinds are not stored in etcd and are not found.
pub fn kind_named(name: &str) -> Option<Kind> {
    let short = match name.to_ascii_lowercase().as_str() {
        "gnp" => Some(Kind::GlobalNetworkPolicy),
        "np" => Some(Kind::NetworkPolicy),
        "wep" => Some(Kind::WorkloadEndpoint),
        _ => None,
    };
    short.or_else(|| {
        Kind::ALL
            .into_iter()
            .filter(|k| plural(*k).is_some())
            .find(|k| k.as_str().eq_ignore_ascii_case(name) || plural(*k).is_some_and(|p| p.eq_ignore_ascii_case(name)))
    })
}

/// The prefix holding every resource of `kind` (in `namespace`, when given, for namespaced kinds).
pub fn kind_prefix(kind: Kind, namespace: Option<&str>) -> Result<String, Error> {
    let plural = plural(kind).ok_or(Error::NotStored { kind })?;
    match namespace.filter(|_| kind.is_namespaced()) {
        Some(ns) => {
            check_segment(kind, "namespace", ns)?;
            Ok(format!("{PREFIX}{plural}/{ns}/"))
        }
        None => Ok(format!("{PREFIX}{plural}/")),
    }
}

fn check_segment(kind: Kind, what: &'static str, value: &str) -> Result<(), Error> {
    if value.is_empty() || value.contains('/') {
        return Err(Error::InvalidKeySegment { kind, what, value: value.to_owned() });
    }
    Ok(())
}

/// The etcd key of a resource.
pub fn etcd_key(key: &ResourceKey) -> Result<String, Error> {
    let plural = plural(key.kind).ok_or(Error::NotStored { kind: key.kind })?;
    check_segment(key.kind, "name", &key.name)?;
    if !key.kind.is_namespaced() {
        return Ok(format!("{PREFIX}{plural}/{}", key.name));
    }
    let ns = key.namespace.as_deref().unwrap_or_default();
    check_segment(key.kind, "namespace", ns)?;
    Ok(format!("{PREFIX}{plural}/{ns}/{}", key.name))
}

/// Why a key under a known plural does not name a resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyShape {
    /// `<plural>/<namespace>/<name>` expected.
    Namespaced,
    /// `<plural>/<name>` expected.
    ClusterScoped,
}

/// What an etcd key names: `Ok(None)` for keys alp does not read (outside [`PREFIX`], or a kind
/// such as `felixconfigurations`), an error for a key of a kind alp reads that has the wrong
/// number of segments.
pub(crate) fn parse_key(key: &str) -> Result<Option<ResourceKey>, KeyShape> {
    let Some(rest) = key.strip_prefix(PREFIX) else { return Ok(None) };
    let Some((plural, path)) = rest.split_once('/') else { return Ok(None) };
    let Some(kind) = kind_of_plural(plural) else { return Ok(None) };
    let segments: Vec<&str> = path.split('/').collect();
    match (kind.is_namespaced(), segments.as_slice()) {
        (true, [ns, name]) if !ns.is_empty() && !name.is_empty() => {
            Ok(Some(ResourceKey { kind, namespace: Some((*ns).to_owned()), name: (*name).to_owned() }))
        }
        (true, _) => Err(KeyShape::Namespaced),
        (false, [name]) if !name.is_empty() => {
            Ok(Some(ResourceKey { kind, namespace: None, name: (*name).to_owned() }))
        }
        (false, _) => Err(KeyShape::ClusterScoped),
    }
}

/// The end of the key range holding every key that starts with `prefix`.
pub(crate) fn range_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

#[cfg(test)]
mod tests;
