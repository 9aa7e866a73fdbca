//! Object metadata shared by every kind, and the serde helpers the models use.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

/// Go's `encoding/json` reads `null` into a slice, map or string as the zero value; so do we
/// (`labels: null`, `ingress: ~`, `selector:` with nothing after it).
pub(crate) fn null_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

/// The part of Kubernetes' `ObjectMeta` alp reads. Other metadata fields (`managedFields`,
/// `ownerReferences`, …) are accepted and ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    /// `metadata.name`; required (an empty name is a validation error).
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    /// `metadata.namespace`. After parsing, namespaced kinds always have one (`default` when the
    /// document left it out, as `calicoctl` does) and cluster-scoped kinds never do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// `metadata.uid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// `metadata.resourceVersion`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    /// `metadata.creationTimestamp`, as written (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<String>,
    /// `metadata.deletionTimestamp`, as written (RFC 3339); set while an object is being deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_timestamp: Option<String>,
    /// `metadata.labels`.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// `metadata.annotations`.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl ObjectMeta {
    /// Metadata with just a name (and namespace).
    pub fn named(name: impl Into<String>, namespace: Option<&str>) -> ObjectMeta {
        ObjectMeta { name: name.into(), namespace: namespace.map(str::to_owned), ..ObjectMeta::default() }
    }
}
