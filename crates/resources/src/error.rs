//! The crate's one error type.

use std::fmt;

use crate::resource::{Kind, ResourceKey};

/// One problem with one field of a resource, as [`crate::Resource::validate`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Path of the field, `serde_path_to_error` style with 0-based indices:
    /// `spec.ingress[0].destination.ports[1]`. Empty for the whole resource.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

impl FieldError {
    pub(crate) fn new(field: impl Into<String>, reason: impl Into<String>) -> FieldError {
        FieldError { field: field.into(), reason: reason.into() }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() { f.write_str(&self.reason) } else { write!(f, "{}: {}", self.field, self.reason) }
    }
}

/// Why a document (or list item) did not give a resource.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Reason {
    /// The YAML did not parse. The message carries the line and column in the file.
    #[error("invalid YAML: {0}")]
    Yaml(String),
    /// The JSON did not parse. The message carries the line and column in the file.
    #[error("invalid JSON: {0}")]
    Json(String),
    /// The document (or list item) is not a mapping.
    #[error("expected a mapping with apiVersion, kind, metadata, found {0}")]
    NotAnObject(&'static str),
    /// `apiVersion` is missing or not a string.
    #[error("missing apiVersion")]
    MissingApiVersion,
    /// `kind` is missing or not a string.
    #[error("missing kind")]
    MissingKind,
    /// A well-formed document of a kind alp does not read (a `FelixConfiguration`, a
    /// `Deployment`, …). A datastore may log and skip these.
    #[error("unsupported kind {kind} (apiVersion {api_version})")]
    UnsupportedKind {
        /// The document's `apiVersion`.
        api_version: String,
        /// The document's `kind`.
        kind: String,
    },
    /// The document does not have the kind's shape (wrong type, unknown field, bad port…).
    #[error("{0}")]
    Decode(String),
    /// The resource decoded but Calico's validator would reject it.
    #[error("{0}")]
    Invalid(String),
}

/// Why one document (or one item of a list) in a file did not give a resource.
///
/// Display: `FILE: document N[, items[I]] (line L): KIND [NS/]NAME: FIELD: REASON[; FIELD: REASON…]`.
/// Document numbers are **1-based** (the first document of a file is document 1); list item
/// indices and the indices in field paths are 0-based; lines are 1-based and give the line
/// where the document starts.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct ResourceError {
    /// The file (or key, or other source) given to the parser.
    pub file: String,
    /// 1-based document number within the file.
    pub document: usize,
    /// 0-based index of the item when the document is a list (`kind: List`, `…List` or an
    /// array).
    pub item: Option<usize>,
    /// 1-based line where the document starts (YAML), when known.
    pub line: Option<usize>,
    /// The document's `kind` as written, when it has one.
    pub kind: Option<String>,
    /// The kind alp reads that `apiVersion` and `kind` name, when they name one.
    pub known_kind: Option<Kind>,
    /// The resource's namespace (defaulted), when it is of a namespaced kind.
    pub namespace: Option<String>,
    /// The resource's name (as [`ResourceKey`] would have it), when it has one.
    pub name: Option<String>,
    /// Path of the offending field (see [`FieldError::field`]); empty for the whole document.
    pub field: String,
    /// What is wrong (already part of the message, so not reported as a `source`).
    pub reason: Reason,
    /// Further problems in the same resource (validation reports them all).
    pub more: Vec<FieldError>,
}

impl ResourceError {
    /// The key of the resource the document meant to define, when its kind is supported and it
    /// has a name. A datastore can use it to fail closed: keep the resource present but broken
    /// instead of silently absent.
    pub fn key(&self) -> Option<ResourceKey> {
        let kind = self.known_kind?;
        let name = self.name.clone().filter(|n| !n.is_empty())?;
        Some(ResourceKey { kind, namespace: self.namespace.clone(), name })
    }

    /// Whether this is [`Reason::UnsupportedKind`].
    pub fn is_unsupported_kind(&self) -> bool {
        matches!(self.reason, Reason::UnsupportedKind { .. })
    }

    /// Every problem: the first (`field`, `reason`) followed by `more`.
    pub fn problems(&self) -> Vec<FieldError> {
        let mut all = vec![FieldError::new(self.field.clone(), self.reason.to_string())];
        all.extend(self.more.iter().cloned());
        all
    }
}

impl ResourceError {
    fn render(&self) -> String {
        let mut out = String::new();
        let _ = self.write_to(&mut out);
        out
    }

    fn write_to(&self, f: &mut impl fmt::Write) -> fmt::Result {
        write!(f, "{}: document {}", self.file, self.document)?;
        if let Some(item) = self.item {
            write!(f, ", items[{item}]")?;
        }
        if let Some(line) = self.line {
            write!(f, " (line {line})")?;
        }
        f.write_str(": ")?;
        let kind = self.known_kind.map(Kind::as_str).or(self.kind.as_deref());
        if let Some(kind) = kind {
            f.write_str(kind)?;
            match (&self.namespace, &self.name) {
                (Some(ns), Some(name)) => write!(f, " {ns}/{name}")?,
                (None, Some(name)) => write!(f, " {name}")?,
                _ => {}
            }
            f.write_str(": ")?;
        }
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        write!(f, "{}", self.reason)?;
        for more in &self.more {
            write!(f, "; {more}")?;
        }
        Ok(())
    }
}
