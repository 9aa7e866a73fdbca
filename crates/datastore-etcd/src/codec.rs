//! etcd values ↔ resources: the JSON-serialised v3 resource, with the original name of
//! (staged) (global) network policies also in the `projectcalico.org/metadata` annotation.

use alp_resources::{Kind, PolicyView, Resource, ResourceError, ResourceKey, parse_value};
use serde_json::{Map, Value};

use crate::{
    Error,
    keys::{KeyShape, etcd_key, parse_key, plural},
};

/// The annotation in which Calico keeps a policy's original name (`{"name":"…"}`).
pub const METADATA_ANNOTATION: &str = "projectcalico.org/metadata";

/// Why the value under an etcd key was skipped. Each names the key and the field.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// A key under a kind alp reads with the wrong number of segments.
    #[error("{key}: the key does not name a resource: expected {expected}")]
    Key {
        /// The etcd key.
        key: String,
        /// The shape the kind's keys have.
        expected: &'static str,
    },
    /// The key is not UTF-8.
    #[error("{key}: the key is not UTF-8")]
    KeyNotUtf8 {
        /// The key, lossily decoded.
        key: String,
    },
    /// The value is not JSON.
    #[error("{key}: invalid JSON: {message}")]
    Json {
        /// The etcd key.
        key: String,
        /// serde_json's message, with line and column.
        message: String,
    },
    /// `metadata.annotations["projectcalico.org/metadata"]` is not a JSON object.
    #[error("{key}: metadata.annotations.{METADATA_ANNOTATION}: {message}")]
    MetadataAnnotation {
        /// The etcd key.
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// The value did not decode or validate as a resource (the error's file is the key).
    #[error(transparent)]
    Resource(Box<ResourceError>),
    /// The value is a list, or empty.
    #[error("{key}: expected one resource, found {found}")]
    NotOne {
        /// The etcd key.
        key: String,
        /// How many entries the value held.
        found: usize,
    },
    /// The value's kind is not the kind the key is for.
    #[error("{key}: kind: {found} stored under {plural}")]
    WrongKind {
        /// The etcd key.
        key: String,
        /// The value's kind.
        found: Kind,
        /// The key's plural.
        plural: &'static str,
    },
    /// `metadata.namespace` is not the key's namespace.
    #[error("{key}: metadata.namespace: {found:?} is not the key's namespace {expected:?}")]
    Namespace {
        /// The etcd key.
        key: String,
        /// The value's namespace.
        found: String,
        /// The key's namespace.
        expected: String,
    },
    /// `metadata.name` is not the key's name.
    #[error("{key}: metadata.name: {found:?} is not the key's name {expected:?}")]
    Name {
        /// The etcd key.
        key: String,
        /// The value's name (after the annotation and Calico's legacy-prefix rule).
        found: String,
        /// The key's name.
        expected: String,
    },
}

fn tier(resource: &Resource) -> Option<&str> {
    match resource.as_policy()? {
        PolicyView::Calico(p) => Some(p.tier),
        PolicyView::Kubernetes(_) => None,
    }
}

/// The original name in a policy's metadata annotation, removing the annotation.
fn take_original_name(metadata: &mut Map<String, Value>, key: &str) -> Result<Option<String>, DecodeError> {
    let Some(Value::Object(annotations)) = metadata.get_mut("annotations") else { return Ok(None) };
    let Some(raw) = annotations.remove(METADATA_ANNOTATION) else { return Ok(None) };
    let bad = |message: String| DecodeError::MetadataAnnotation { key: key.to_owned(), message };
    let Value::String(text) = raw else { return Err(bad("expected a string".to_owned())) };
    match serde_json::from_str::<Value>(&text).map_err(|e| bad(e.to_string()))? {
        Value::Object(mut fields) => match fields.remove("name") {
            Some(Value::String(name)) if !name.is_empty() => Ok(Some(name)),
            Some(Value::String(_) | Value::Null) | None => Ok(None),
            Some(_) => Err(bad("name: expected a string".to_owned())),
        },
        _ => Err(bad("expected a JSON object".to_owned())),
    }
}

/// Decodes the value stored under `key` at `mod_revision`.
///
/// `Ok(None)` for keys alp does not read. The resource gets `metadata.resourceVersion` =
/// `mod_revision` (as Calico's etcd backend does) and loses the metadata annotation; a name
/// or namespace missing from the value is taken from the key. A policy's key may carry the
/// policy's name or, as Calico before 3.30 wrote them, `<tier>.<name>`.
pub fn decode(key: &str, value: &[u8], mod_revision: i64) -> Result<Option<Resource>, DecodeError> {
    let expected = match parse_key(key) {
        Ok(Some(k)) => k,
        Ok(None) => return Ok(None),
        Err(shape) => {
            let expected = match shape {
                KeyShape::Namespaced => "<plural>/<namespace>/<name>",
                KeyShape::ClusterScoped => "<plural>/<name>",
            };
            return Err(DecodeError::Key { key: key.to_owned(), expected });
        }
    };
    let mut json: Value =
        serde_json::from_slice(value).map_err(|e| DecodeError::Json { key: key.to_owned(), message: e.to_string() })?;
    if let Value::Object(object) = &mut json {
        let metadata = object.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(metadata) = metadata {
            let original = take_original_name(metadata, key)?;
            if let Some(name) = original {
                metadata.insert("name".to_owned(), Value::String(name));
            }
            let missing = |v: Option<&Value>| v.and_then(Value::as_str).is_none_or(str::is_empty);
            if missing(metadata.get("name")) {
                metadata.insert("name".to_owned(), Value::String(expected.name.clone()));
            }
            if let Some(ns) = &expected.namespace
                && missing(metadata.get("namespace"))
            {
                metadata.insert("namespace".to_owned(), Value::String(ns.clone()));
            }
        }
    }
    let mut parsed = parse_value(json, key);
    let mut resource = match (parsed.pop(), parsed.len()) {
        (Some(Ok(r)), 0) => r,
        (Some(Err(e)), 0) => return Err(DecodeError::Resource(Box::new(e))),
        (last, before) => {
            return Err(DecodeError::NotOne { key: key.to_owned(), found: before + usize::from(last.is_some()) });
        }
    };
    if resource.kind() != expected.kind {
        let plural = plural(expected.kind).unwrap_or_default();
        return Err(DecodeError::WrongKind { key: key.to_owned(), found: resource.kind(), plural });
    }
    if resource.namespace() != expected.namespace.as_deref() {
        return Err(DecodeError::Namespace {
            key: key.to_owned(),
            found: resource.namespace().unwrap_or_default().to_owned(),
            expected: expected.namespace.unwrap_or_default(),
        });
    }
    let name = resource.name();
    let legacy =
        tier(&resource).is_some_and(|t| expected.name.strip_prefix(t).and_then(|r| r.strip_prefix('.')) == Some(name));
    if name != expected.name && !legacy {
        return Err(DecodeError::Name { key: key.to_owned(), found: name.to_owned(), expected: expected.name });
    }
    resource.metadata_mut().resource_version = Some(mod_revision.to_string());
    Ok(Some(resource))
}

/// The key and value `calicoctl apply` would store for `resource`: the v3 JSON without
/// `metadata.resourceVersion` (etcd's mod revision is the version), plus the metadata annotation
/// for (staged) (global) network policies. `uid` and `creationTimestamp` are stored as given,
/// never invented.
pub fn encode(resource: &Resource) -> Result<(String, String), Error> {
    let key: ResourceKey = resource.key();
    let etcd = etcd_key(&key)?;
    let mut stored = resource.clone();
    let metadata = stored.metadata_mut();
    metadata.resource_version = None;
    metadata.annotations.remove(METADATA_ANNOTATION);
    if key.kind.is_tiered_policy() {
        let original = serde_json::json!({ "name": key.name }).to_string();
        metadata.annotations.insert(METADATA_ANNOTATION.to_owned(), original);
    }
    let value = serde_json::to_string(&stored).map_err(|e| Error::Encode { key, message: e.to_string() })?;
    Ok((etcd, value))
}

#[cfg(test)]
mod tests;
