//! Text → resources: multi-document YAML (serde-saphyr) and JSON, one result per resource,
//! so that one bad document never hides the others.
//!
//! Each document is first read into a `serde_json::Value` (as Calico's own tools turn YAML into
//! JSON before decoding), then decoded into its kind's type with `serde_path_to_error`, so
//! decode errors carry the path of the field. YAML documents are split on their `---` / `...`
//! markers before parsing, so a syntax error stays inside its document.

use std::{collections::HashMap, sync::Arc};

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::{
    calico::policy_name_without_legacy_prefix,
    error::{Reason, ResourceError},
    resource::{DEFAULT_NAMESPACE, Kind, Resource},
};

/// Parses every resource in `text`, a file's contents. `file` names it in errors and picks
/// the format: a name ending in `.json` is read as JSON; anything else as YAML, except that
/// text starting with `{` or `[` that is valid JSON is read as JSON.
///
/// * YAML: any number of documents separated by `---` (and ended by `...`).
/// * JSON: one value, or several concatenated; a syntax error ends the file (everything
///   before it is kept).
/// * A document may be one resource, a list (`kind: List`, or `kind: <Kind>List`, with
///   `items`; items without `apiVersion`/`kind` take them from the list) or an array of
///   resources.
///
/// Empty and `null` documents are skipped. Every other document (or list item) gives exactly one
/// entry, in order: the resource, defaulted and validated, or a [`ResourceError`] naming the
/// file, the 1-based document number, the item, the line the document starts on, the kind and
/// name when known, the field path and the reason. Never panics.
pub fn parse_documents(text: &str, file: &str) -> Vec<Result<Resource, ResourceError>> {
    let parsed = parse_documents_cached(text, file, &mut DocumentCache::default());
    let mut out = Vec::with_capacity(parsed.len());
    for r in parsed {
        out.push(match r {
            Ok(r) => Ok(Arc::unwrap_or_clone(r)),
            Err(e) => Err(e),
        });
    }
    out
}

fn shared(parsed: Vec<Result<Resource, ResourceError>>, out: &mut Vec<Result<Arc<Resource>, ResourceError>>) {
    for r in parsed {
        out.push(match r {
            Ok(r) => Ok(Arc::new(r)),
            Err(e) => Err(e),
        });
    }
}

/// The resources of the YAML documents of one file that decoded without error, by the SHA-256
/// of their exact text: [`parse_documents_cached`] re-reads a file in which one document
/// changed by parsing only that document. It holds the documents of the last parse only,
/// sharing their resources with the caller.
#[derive(Debug, Default)]
pub struct DocumentCache {
    documents: HashMap<[u8; 32], Vec<Arc<Resource>>>,
}

fn digest(text: &str) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(text.as_bytes()).into()
}

/// [`parse_documents`], reusing the resources of documents whose text `cache` has seen (a
/// document that decoded cleanly gives the same resources wherever it stands in the file); the
/// cache then holds this text's documents.
pub fn parse_documents_cached(
    text: &str,
    file: &str,
    cache: &mut DocumentCache,
) -> Vec<Result<Arc<Resource>, ResourceError>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let head = text.trim_start();
    if is_json_file(file) || ((head.starts_with('{') || head.starts_with('[')) && json_is_valid(text)) {
        cache.documents.clear();
        let mut parsed = Vec::new();
        parse_json(text, file, &mut parsed);
        let mut out = Vec::with_capacity(parsed.len());
        shared(parsed, &mut out);
        return out;
    }
    parse_yaml(text, file, cache)
}

/// Decodes one already-parsed JSON value (an object from an API, an etcd value, …) exactly as
/// [`parse_documents`] decodes a document: a resource, or a list of them. `source` names it in
/// errors (as document 1).
pub fn parse_value(value: Value, source: &str) -> Vec<Result<Resource, ResourceError>> {
    let mut out = Vec::new();
    document(value, &Ctx { file: source, document: 1, line: None }, &mut out);
    out
}

fn is_json_file(file: &str) -> bool {
    file.len() >= 5 && file.get(file.len() - 5..).is_some_and(|ext| ext.eq_ignore_ascii_case(".json"))
}

fn json_is_valid(text: &str) -> bool {
    serde_json::Deserializer::from_str(text).into_iter::<serde::de::IgnoredAny>().all(|r| r.is_ok())
}

struct Ctx<'a> {
    file: &'a str,
    /// 1-based.
    document: usize,
    /// 1-based line where the document starts.
    line: Option<usize>,
}

impl Ctx<'_> {
    fn error(&self, item: Option<usize>, reason: Reason) -> ResourceError {
        ResourceError {
            file: self.file.to_owned(),
            document: self.document,
            item,
            line: self.line,
            kind: None,
            known_kind: None,
            namespace: None,
            name: None,
            field: String::new(),
            reason,
            more: Vec::new(),
        }
    }
}

/// Counts lines forward through a text: [`LineCounter::line_at`] gives the 1-based line of a
/// byte offset, in time proportional to the distance from the previous (smaller) offset.
struct LineCounter<'a> {
    text: &'a str,
    pos: usize,
    line: usize,
}

impl LineCounter<'_> {
    fn line_at(&mut self, pos: usize) -> usize {
        if pos > self.pos {
            let newlines = self.text.get(self.pos..pos).map_or(0, |t| t.bytes().filter(|b| *b == b'\n').count());
            self.line += newlines;
            self.pos = pos;
        }
        self.line
    }
}

fn parse_json(text: &str, file: &str, out: &mut Vec<Result<Resource, ResourceError>>) {
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    let mut lines = LineCounter { text, pos: 0, line: 1 };
    let mut document = 0;
    loop {
        let before = stream.byte_offset();
        let start = text.get(before..).map_or(before, |rest| before + (rest.len() - rest.trim_start().len()));
        let Some(next) = stream.next() else { break };
        document += 1;
        let ctx = Ctx { file, document, line: Some(lines.line_at(start)) };
        match next {
            Ok(value) => self::document(value, &ctx, out),
            Err(e) => {
                out.push(Err(ctx.error(None, Reason::Json(e.to_string()))));
                break;
            }
        }
    }
}

/// One YAML document's text and the 1-based line it starts on.
struct Chunk<'a> {
    text: &'a str,
    line: usize,
}

/// `---` or `...` at column 0, alone or followed by a space or tab.
fn is_marker(line: &str, marker: &str) -> bool {
    line.strip_prefix(marker).is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
}

/// Splits a YAML stream into documents at its markers. A `---` opens a new document unless
/// the current one has had nothing but comments and directives since the stream start or the
/// last `...` (then it is that document's start marker). A `...` ends the current document.
fn split_yaml(text: &str) -> Vec<Chunk<'_>> {
    let mut chunks = Vec::new();
    let mut start = 0usize;
    let mut start_line = 1usize;
    // Nothing but blank lines, comments and directives since `start`, and no `---` yet.
    let mut fresh = true;
    let mut offset = 0usize;
    for (i, raw) in text.split_inclusive('\n').enumerate() {
        let lineno = i + 1;
        let line = raw.trim_end_matches(['\n', '\r']);
        if is_marker(line, "---") {
            if !fresh {
                chunks.push(Chunk { text: text.get(start..offset).unwrap_or(""), line: start_line });
                start = offset;
                start_line = lineno;
            }
            fresh = false;
        } else if is_marker(line, "...") {
            let end = offset + raw.len();
            chunks.push(Chunk { text: text.get(start..end).unwrap_or(""), line: start_line });
            start = end;
            start_line = lineno + 1;
            fresh = true;
        } else if fresh {
            let t = line.trim_start();
            if !(t.is_empty() || t.starts_with('#') || line.starts_with('%')) {
                fresh = false;
            }
        }
        offset += raw.len();
    }
    if start < text.len() {
        chunks.push(Chunk { text: text.get(start..).unwrap_or(""), line: start_line });
    }
    chunks
}

fn yaml_message(e: &serde_saphyr::Error, first_line: usize) -> String {
    let plain = e.without_snippet().to_string();
    let Some(loc) = e.location() else { return plain };
    let suffix = format!(" at line {}, column {}", loc.line(), loc.column());
    let message = plain.strip_suffix(&suffix).unwrap_or(&plain);
    let message = message.replace(", set DuplicateKeyPolicy in Options if acceptable", "");
    let line = u64::try_from(first_line).unwrap_or(u64::MAX).saturating_add(loc.line()).saturating_sub(1);
    format!("{message} at line {line}, column {}", loc.column())
}

fn parse_yaml(text: &str, file: &str, cache: &mut DocumentCache) -> Vec<Result<Arc<Resource>, ResourceError>> {
    let mut out = Vec::new();
    let mut seen: HashMap<[u8; 32], Vec<Arc<Resource>>> = HashMap::new();
    for (i, chunk) in split_yaml(text).into_iter().enumerate() {
        let key = digest(chunk.text);
        if let Some(resources) = cache.documents.remove(&key).or_else(|| seen.get(&key).cloned()) {
            out.extend(resources.iter().cloned().map(Ok));
            seen.insert(key, resources);
            continue;
        }
        let mut parsed = Vec::new();
        parse_yaml_document(chunk.text, &Ctx { file, document: i + 1, line: Some(chunk.line) }, &mut parsed);
        if parsed.iter().all(Result::is_ok) {
            let resources: Vec<Arc<Resource>> = parsed.into_iter().filter_map(Result::ok).map(Arc::new).collect();
            out.extend(resources.iter().cloned().map(Ok));
            seen.insert(key, resources);
        } else {
            shared(parsed, &mut out);
        }
    }
    cache.documents = seen;
    out
}

fn parse_yaml_document(text: &str, ctx: &Ctx<'_>, out: &mut Vec<Result<Resource, ResourceError>>) {
    let options = serde_saphyr::options! {
        // YAML 1.2 booleans only: `y`, `n`, `yes`, `no`, `on`, `off` stay strings, so
        // `name: n` or a label value `no` reads as written.
        strict_booleans: true,
    };
    match serde_saphyr::from_str_with_options::<Option<Value>>(text, options) {
        Ok(Some(value)) => document(value, ctx, out),
        Ok(None) => {}
        Err(e) => out.push(Err(ctx.error(None, Reason::Yaml(yaml_message(&e, ctx.line.unwrap_or(1)))))),
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn is_list(map: &Map<String, Value>) -> bool {
    match map.get("kind").and_then(Value::as_str) {
        Some("List") => true,
        Some(kind) => kind.ends_with("List") && map.contains_key("items"),
        None => false,
    }
}

fn document(value: Value, ctx: &Ctx<'_>, out: &mut Vec<Result<Resource, ResourceError>>) {
    match value {
        Value::Null => {}
        Value::Array(items) => {
            for (i, item) in items.into_iter().enumerate() {
                out.push(decode(item, ctx, Some(i)).map_err(|e| *e));
            }
        }
        Value::Object(mut map) if is_list(&map) => {
            let api_version = map.get("apiVersion").cloned();
            let item_kind =
                map.get("kind").and_then(Value::as_str).and_then(|k| k.strip_suffix("List")).unwrap_or("").to_owned();
            let items = match map.remove("items") {
                Some(Value::Array(items)) => items,
                Some(Value::Null) | None => Vec::new(),
                Some(other) => {
                    let mut e =
                        ctx.error(None, Reason::Decode(format!("expected a list, found {}", type_name(&other))));
                    e.field = "items".to_owned();
                    e.kind = map.get("kind").and_then(Value::as_str).map(str::to_owned);
                    out.push(Err(e));
                    return;
                }
            };
            for (i, mut item) in items.into_iter().enumerate() {
                if let Value::Object(fields) = &mut item {
                    if let Some(api) = &api_version
                        && !fields.contains_key("apiVersion")
                    {
                        fields.insert("apiVersion".to_owned(), api.clone());
                    }
                    if !item_kind.is_empty() && !fields.contains_key("kind") {
                        fields.insert("kind".to_owned(), Value::String(item_kind.clone()));
                    }
                }
                out.push(decode(item, ctx, Some(i)).map_err(|e| *e));
            }
        }
        other => out.push(decode(other, ctx, None).map_err(|e| *e)),
    }
}

fn typed<T: DeserializeOwned>(value: Value) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        (path, e.into_inner().to_string())
    })
}

fn str_at<'v>(value: &'v Value, path: &[&str]) -> Option<&'v str> {
    path.iter().try_fold(value, |v, key| v.get(key)).and_then(Value::as_str)
}

/// One resource document (or list item) → a resource, defaulted and validated.
fn decode(value: Value, ctx: &Ctx<'_>, item: Option<usize>) -> Result<Resource, Box<ResourceError>> {
    if !value.is_object() {
        return Err(Box::new(ctx.error(item, Reason::NotAnObject(type_name(&value)))));
    }
    let mut err = Box::new(ctx.error(item, Reason::MissingKind));
    err.kind = str_at(&value, &["kind"]).map(str::to_owned);
    err.name = str_at(&value, &["metadata", "name"]).map(str::to_owned);
    let Some(kind_str) = err.kind.clone() else { return Err(err) };
    let Some(api_version) = str_at(&value, &["apiVersion"]).map(str::to_owned) else {
        err.reason = Reason::MissingApiVersion;
        return Err(err);
    };
    let Some(kind) = Kind::from_type_meta(&api_version, &kind_str) else {
        err.reason = Reason::UnsupportedKind { api_version, kind: kind_str };
        return Err(err);
    };
    err.known_kind = Some(kind);
    // The identity the resource will have once defaulted, for errors.
    if kind.is_namespaced() {
        let ns = str_at(&value, &["metadata", "namespace"]).filter(|ns| !ns.is_empty());
        err.namespace = Some(ns.unwrap_or(DEFAULT_NAMESPACE).to_owned());
    }
    if kind.is_tiered_policy() {
        let tier = str_at(&value, &["spec", "tier"]).unwrap_or("");
        if let Some(name) = err.name.as_deref().and_then(|n| policy_name_without_legacy_prefix(n, tier)) {
            err.name = Some(name.to_owned());
        }
    }

    let decoded = match kind {
        Kind::GlobalNetworkPolicy => typed(value).map(Resource::GlobalNetworkPolicy),
        Kind::NetworkPolicy => typed(value).map(Resource::NetworkPolicy),
        Kind::StagedGlobalNetworkPolicy => typed(value).map(Resource::StagedGlobalNetworkPolicy),
        Kind::StagedNetworkPolicy => typed(value).map(Resource::StagedNetworkPolicy),
        Kind::StagedKubernetesNetworkPolicy => typed(value).map(Resource::StagedKubernetesNetworkPolicy),
        Kind::Tier => typed(value).map(Resource::Tier),
        Kind::Profile => typed(value).map(Resource::Profile),
        Kind::GlobalNetworkSet => typed(value).map(Resource::GlobalNetworkSet),
        Kind::NetworkSet => typed(value).map(Resource::NetworkSet),
        Kind::WorkloadEndpoint => typed(value).map(Resource::WorkloadEndpoint),
        Kind::KubernetesNetworkPolicy => typed(value).map(Resource::KubernetesNetworkPolicy),
        Kind::Pod => typed(value).map(Resource::Pod),
        Kind::Namespace => typed(value).map(Resource::Namespace),
        Kind::ServiceAccount => typed(value).map(Resource::ServiceAccount),
    };
    let mut resource = match decoded {
        Ok(r) => r,
        Err((field, message)) => {
            err.field = field;
            err.reason = Reason::Decode(message);
            return Err(err);
        }
    };
    let mut problems = resource.validate().into_iter();
    if let Some(first) = problems.next() {
        err.field = first.field;
        err.reason = Reason::Invalid(first.reason);
        err.more = problems.collect();
        return Err(err);
    }
    resource.apply_defaults();
    Ok(resource)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(text: &str) -> Vec<(String, usize)> {
        split_yaml(text).into_iter().map(|c| (c.text.to_owned(), c.line)).collect()
    }

    #[test]
    fn split_on_markers() {
        assert_eq!(chunks("a: 1\n---\nb: 2\n"), vec![("a: 1\n".into(), 1), ("---\nb: 2\n".into(), 2)]);
        // A leading marker (after comments) starts the first document.
        assert_eq!(chunks("# c\n---\na: 1\n"), vec![("# c\n---\na: 1\n".into(), 1)]);
        // `...` ends a document; directives go with the next one.
        assert_eq!(
            chunks("a: 1\n...\n%YAML 1.2\n---\nb: 2\n"),
            vec![("a: 1\n...\n".into(), 1), ("%YAML 1.2\n---\nb: 2\n".into(), 3)]
        );
        // Not markers: `---x`, indented `---`.
        assert_eq!(chunks("a: |\n  ---\nb: ---x\n").len(), 1);
        // Empty documents still count.
        assert_eq!(chunks("a: 1\n---\n---\nb: 2\n").len(), 3);
        assert_eq!(chunks("a: 1\r\n---\r\nb: 2\r\n").len(), 2);
        assert!(chunks("").is_empty());
    }

    #[test]
    fn json_file_names() {
        assert!(is_json_file("x.json"));
        assert!(is_json_file("X.JSON"));
        assert!(!is_json_file("x.yaml"));
        assert!(!is_json_file("json"));
        assert!(!is_json_file("é.jso"));
    }
}
