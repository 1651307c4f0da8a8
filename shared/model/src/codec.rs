//! Turning documents into resources and back.
//!
//! Decoding is lenient about values and strict about shape: every unknown field and every
//! type mismatch becomes a [`Violation`] with its path, and a document whose shape is right
//! goes on to validation so that all problems are reported together.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::kind::{Kind, Layout};
use crate::meta::Meta;
use crate::resource::{Resource, Spec};
use crate::types::null_as_default;
use crate::validate::{Path, Violation, validate};

/// Why a document is not an acceptable resource.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", render(self))]
pub struct DecodeError {
    /// The document's type, when it named a known one.
    pub kind: Option<Kind>,
    /// The document's name, when it had one.
    pub name: Option<String>,
    pub violations: Vec<Violation>,
}

fn render(err: &DecodeError) -> String {
    err.violations
        .iter()
        .map(Violation::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// One document of a (possibly multi-document) input.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// 1-based line on which the document starts in the input.
    pub line: usize,
    pub outcome: Result<Resource, DecodeError>,
}

const META_KEYS: [&str; 6] = [
    "type",
    "name",
    "mesh",
    "labels",
    "creationTime",
    "modificationTime",
];

/// Decodes and validates one resource from a JSON value.
pub fn decode_value(value: Value) -> Result<Resource, DecodeError> {
    let (resource, mut violations, kind, name) = decode_shape(value);
    match resource {
        Some(resource) => {
            if let Err(found) = validate(&resource) {
                violations.extend(found);
            }
            if violations.is_empty() {
                Ok(resource)
            } else {
                Err(DecodeError {
                    kind,
                    name,
                    violations,
                })
            }
        }
        None => Err(DecodeError {
            kind,
            name,
            violations,
        }),
    }
}

/// Decodes a document that was validated when it was written (e.g. read back from a store):
/// shape errors still fail, but rules are not re-checked, so a rule made stricter in a later
/// release never makes stored resources unreadable.
pub fn decode_stored(value: Value) -> Result<Resource, DecodeError> {
    match decode_shape(value) {
        (Some(resource), violations, _, _) if violations.is_empty() => Ok(resource),
        (_, violations, kind, name) => Err(DecodeError {
            kind,
            name,
            violations,
        }),
    }
}

/// Decodes without validating; the resource is present when the document's shape was right.
fn decode_shape(
    value: Value,
) -> (
    Option<Resource>,
    Vec<Violation>,
    Option<Kind>,
    Option<String>,
) {
    let root = Path::root();
    let mut violations = Vec::new();
    let Value::Object(mut map) = value else {
        violations.push(Violation::new(
            &root,
            format!(
                "a resource must be a mapping with type and name, found {}",
                json_type(&value)
            ),
        ));
        return (None, violations, None, None);
    };
    let name = match map.get("name") {
        Some(Value::String(name)) => Some(name.clone()),
        _ => None,
    };
    let kind = match map.remove("type") {
        None => {
            violations.push(Violation::new(&root.field("type"), "must be set"));
            None
        }
        Some(Value::String(text)) => match text.parse::<Kind>() {
            Ok(kind) => Some(kind),
            Err(err) => {
                violations.push(Violation::new(&root.field("type"), err.to_string()));
                None
            }
        },
        Some(other) => {
            violations.push(Violation::new(
                &root.field("type"),
                format!("must be a string, found {}", json_type(&other)),
            ));
            None
        }
    };
    let Some(kind) = kind else {
        return (None, violations, None, name);
    };

    let meta = decode_meta(&mut map, &mut violations);
    let (spec, status) = match kind.layout() {
        Layout::Inline => (
            decode_spec(kind, Value::Object(map), &root, &mut violations),
            None,
        ),
        Layout::Spec => {
            let spec_value = map
                .remove("spec")
                .unwrap_or_else(|| Value::Object(Map::new()));
            let status = map.remove("status").filter(|s| !s.is_null());
            for key in map.keys() {
                violations.push(Violation::new(&root.field(key), "unknown field"));
            }
            (
                decode_spec(kind, spec_value, &root.field("spec"), &mut violations),
                status,
            )
        }
    };
    let resource = match (meta, spec) {
        (Some(meta), Some(spec)) => Some(Resource { meta, spec, status }),
        _ => None,
    };
    (resource, violations, Some(kind), name)
}

fn decode_meta(map: &mut Map<String, Value>, violations: &mut Vec<Violation>) -> Option<Meta> {
    let mut meta_map = Map::new();
    for key in &META_KEYS[1..] {
        if let Some(value) = map.remove(*key) {
            meta_map.insert((*key).to_string(), value);
        }
    }
    decode_typed::<MetaDoc>(Value::Object(meta_map), &Path::root(), violations).map(|doc| Meta {
        name: doc.name,
        mesh: doc.mesh,
        labels: doc.labels,
        creation_time: doc.creation_time,
        modification_time: doc.modification_time,
        trace: None,
    })
}

/// The metadata fields, each reading `null` as absent like the model's fields.
#[derive(serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct MetaDoc {
    #[serde(default, deserialize_with = "null_as_default")]
    name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    mesh: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    labels: std::collections::BTreeMap<String, String>,
    #[serde(default, deserialize_with = "null_as_default")]
    creation_time: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    modification_time: Option<String>,
}

fn decode_spec(
    kind: Kind,
    value: Value,
    at: &Path,
    violations: &mut Vec<Violation>,
) -> Option<Spec> {
    // An empty `spec:` or `conf:` in YAML is null: treat it as an empty mapping.
    let value = if value.is_null() {
        Value::Object(Map::new())
    } else {
        value
    };
    macro_rules! decode {
        ($($kind:ident => $variant:ident),+ $(,)?) => {
            match kind {
                $(Kind::$kind => decode_typed(value, at, violations).map(Spec::$variant),)+
            }
        };
    }
    decode! {
        Mesh => Mesh,
        MeshGateway => MeshGateway,
        MeshHttpRoute => MeshHttpRoute,
        MeshTcpRoute => MeshTcpRoute,
        MeshExternalService => MeshExternalService,
        MeshTrafficPermission => MeshTrafficPermission,
        MeshTimeout => MeshTimeout,
        MeshRetry => MeshRetry,
        MeshCircuitBreaker => MeshCircuitBreaker,
        MeshHealthCheck => MeshHealthCheck,
        MeshRateLimit => MeshRateLimit,
        MeshFaultInjection => MeshFaultInjection,
        MeshAccessLog => MeshAccessLog,
        MeshLoadBalancingStrategy => MeshLoadBalancingStrategy,
        MeshMetric => MeshMetric,
        HostnameGenerator => HostnameGenerator,
        Secret => Secret,
        GlobalSecret => GlobalSecret,
        Dataplane => Dataplane,
        ZoneIngress => ZoneIngress,
        ZoneEgress => ZoneEgress,
        Zone => Zone,
        ZoneInsight => ZoneInsight,
        DataplaneInsight => DataplaneInsight,
    }
}

/// Deserialises `T`, recording every ignored (unknown) field and the first type error, each
/// with its full path below `at`.
fn decode_typed<T: DeserializeOwned + serde::Serialize>(
    value: Value,
    at: &Path,
    violations: &mut Vec<Violation>,
) -> Option<T> {
    let mut track = serde_path_to_error::Track::new();
    let mut unknown = Vec::new();
    let input = value.clone();
    let result = {
        let deserializer = serde_path_to_error::Deserializer::new(value, &mut track);
        serde_ignored::deserialize(deserializer, |path| unknown.push(ignored_path(at, &path)))
    };
    for path in unknown {
        violations.push(Violation::new(&path, "unknown field"));
    }
    match result {
        Ok(decoded) => {
            // serde reads a struct from a list of its fields' values; a document must not.
            if let Ok(output) = serde_json::to_value(&decoded) {
                lists_for_mappings(&input, &output, at, violations);
            }
            Some(decoded)
        }
        Err(err) => {
            let path = tracked_path(at, &track.path());
            violations.push(Violation::new(&path, clean_serde_message(&err.to_string())));
            None
        }
    }
}

/// Reports every place where the document has a list and the model a mapping.
fn lists_for_mappings(input: &Value, output: &Value, at: &Path, violations: &mut Vec<Violation>) {
    match (input, output) {
        (Value::Array(_), Value::Object(_)) => {
            violations.push(Violation::new(
                at,
                "invalid type: a list, expected a mapping",
            ));
        }
        (Value::Object(inputs), Value::Object(outputs)) => {
            for (key, value) in inputs {
                if let Some(out) = outputs.get(key) {
                    lists_for_mappings(value, out, &at.child(key), violations);
                }
            }
        }
        (Value::Array(inputs), Value::Array(outputs)) => {
            for (i, (value, out)) in inputs.iter().zip(outputs).enumerate() {
                lists_for_mappings(value, out, &at.index(i), violations);
            }
        }
        _ => {}
    }
}

fn ignored_path(at: &Path, path: &serde_ignored::Path<'_>) -> Path {
    use serde_ignored::Path as P;
    match path {
        P::Root => at.clone(),
        P::Seq { parent, index } => ignored_path(at, parent).index(*index),
        P::Map { parent, key } => {
            let parent_path = ignored_path(at, parent);
            parent_path.child(key)
        }
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
            ignored_path(at, parent)
        }
    }
}

fn tracked_path(at: &Path, path: &serde_path_to_error::Path) -> Path {
    use serde_path_to_error::Segment;
    path.iter().fold(at.clone(), |acc, segment| match segment {
        Segment::Seq { index } => acc.index(*index),
        Segment::Map { key } => acc.child(key),
        Segment::Enum { .. } | Segment::Unknown => acc,
    })
}

/// serde's messages name Rust types (`u32`); say what a document author needs instead.
fn clean_serde_message(message: &str) -> String {
    message
        .replace(
            "expected u32",
            "expected a whole number from 0 to 4294967295",
        )
        .replace("expected i64", "expected a whole number")
        .replace("expected a borrowed string", "expected a string")
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// The document without its metadata (type, name, mesh, labels, times): what stores and KDS
/// carry as a resource's content next to their own metadata fields.
pub fn content_document(resource: &Resource) -> Value {
    let mut document = encode_value(resource);
    if let Value::Object(map) = &mut document {
        for key in META_KEYS {
            map.remove(key);
        }
    }
    document
}

/// The inverse of [`content_document`]: metadata and content back into one document.
pub fn assemble_document(
    kind: Kind,
    name: &str,
    mesh: Option<&str>,
    labels: &std::collections::BTreeMap<String, String>,
    content: &Map<String, Value>,
) -> Value {
    let mut document = Map::new();
    document.insert("type".into(), Value::from(kind.name()));
    document.insert("name".into(), Value::from(name));
    if let Some(mesh) = mesh.filter(|m| !m.is_empty()) {
        document.insert("mesh".into(), Value::from(mesh));
    }
    if !labels.is_empty() {
        let labels = labels
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())));
        document.insert("labels".into(), Value::Object(labels.collect()));
    }
    document.extend(content.iter().map(|(k, v)| (k.clone(), v.clone())));
    Value::Object(document)
}

/// The document form of a resource, keys in Kuma's order.
pub fn encode_value(resource: &Resource) -> Value {
    let kind = resource.kind();
    let mut map = Map::new();
    map.insert("type".into(), Value::from(kind.name()));
    map.insert("name".into(), Value::from(resource.meta.name.clone()));
    if let Some(mesh) = &resource.meta.mesh {
        map.insert("mesh".into(), Value::from(mesh.clone()));
    }
    if let Some(time) = &resource.meta.creation_time {
        map.insert("creationTime".into(), Value::from(time.clone()));
    }
    if let Some(time) = &resource.meta.modification_time {
        map.insert("modificationTime".into(), Value::from(time.clone()));
    }
    if !resource.meta.labels.is_empty() {
        let labels = resource
            .meta
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.clone())));
        map.insert("labels".into(), Value::Object(labels.collect()));
    }
    let spec = spec_value(&resource.spec);
    match kind.layout() {
        Layout::Inline => {
            if let Value::Object(fields) = spec {
                map.extend(fields);
            }
        }
        Layout::Spec => {
            map.insert("spec".into(), spec);
            if let Some(status) = &resource.status {
                map.insert("status".into(), status.clone());
            }
        }
    }
    Value::Object(map)
}

fn spec_value(spec: &Spec) -> Value {
    let result = match spec {
        Spec::Mesh(s) => serde_json::to_value(s),
        Spec::MeshGateway(s) => serde_json::to_value(s),
        Spec::MeshHttpRoute(s) => serde_json::to_value(s),
        Spec::MeshTcpRoute(s) => serde_json::to_value(s),
        Spec::MeshExternalService(s) => serde_json::to_value(s),
        Spec::MeshTrafficPermission(s) => serde_json::to_value(s),
        Spec::MeshTimeout(s) => serde_json::to_value(s),
        Spec::MeshRetry(s) => serde_json::to_value(s),
        Spec::MeshCircuitBreaker(s) => serde_json::to_value(s),
        Spec::MeshHealthCheck(s) => serde_json::to_value(s),
        Spec::MeshRateLimit(s) => serde_json::to_value(s),
        Spec::MeshFaultInjection(s) => serde_json::to_value(s),
        Spec::MeshAccessLog(s) => serde_json::to_value(s),
        Spec::MeshLoadBalancingStrategy(s) => serde_json::to_value(s),
        Spec::MeshMetric(s) => serde_json::to_value(s),
        Spec::HostnameGenerator(s) => serde_json::to_value(s),
        Spec::Secret(s) | Spec::GlobalSecret(s) => serde_json::to_value(s),
        Spec::Dataplane(s) => serde_json::to_value(s),
        Spec::ZoneIngress(s) => serde_json::to_value(s),
        Spec::ZoneEgress(s) => serde_json::to_value(s),
        Spec::Zone(s) => serde_json::to_value(s),
        Spec::ZoneInsight(s) => serde_json::to_value(s),
        Spec::DataplaneInsight(s) => serde_json::to_value(s),
    };
    // The model holds only strings, integers, booleans, lists and string-keyed maps, which
    // serde_json always represents.
    result.unwrap_or_else(|err| unreachable!("model types always serialise to JSON: {err}"))
}

/// The resource as YAML (one document, no leading `---`).
pub fn to_yaml(resource: &Resource) -> String {
    serde_norway::to_string(&encode_value(resource))
        .unwrap_or_else(|err| unreachable!("a JSON value always serialises to YAML: {err}"))
}

/// The resource as pretty-printed JSON.
pub fn to_json(resource: &Resource) -> String {
    serde_json::to_string_pretty(&encode_value(resource))
        .unwrap_or_else(|err| unreachable!("a JSON value always serialises: {err}"))
}

/// Splits YAML (or JSON, which YAML includes) into documents and decodes and validates each.
/// A top-level list is taken as a list of resources. Empty documents are skipped. Each
/// document is parsed once, so the cost stays linear in the input however many documents are
/// invalid.
pub fn parse_documents(text: &str) -> Vec<Document> {
    let mut documents = Vec::new();
    for (line, chunk) in Chunks::new(text) {
        documents.extend(parse_chunk(line, &chunk));
    }
    documents
}

/// The first document of `text`, and whether another follows it, without reading further:
/// for inputs that must hold exactly one resource.
pub fn parse_first_document(text: &str) -> (Option<Document>, bool) {
    let mut chunks = Chunks::new(text);
    let Some((line, chunk)) = chunks.next() else {
        return (None, false);
    };
    let mut parsed = parse_chunk(line, &chunk).into_iter();
    let first = parsed.next();
    let more = parsed.next().is_some() || chunks.next().is_some();
    (first, more)
}

/// The documents of one chunk starting at `line`: one, none (empty), or several (a list).
fn parse_chunk(line: usize, chunk: &str) -> Vec<Document> {
    match serde_norway::from_str::<Value>(chunk) {
        Ok(Value::Null) => Vec::new(),
        Ok(Value::Array(items)) => items
            .into_iter()
            .map(|item| Document {
                line,
                outcome: decode_value(item),
            })
            .collect(),
        Ok(value) => vec![Document {
            line,
            outcome: decode_value(value),
        }],
        Err(err) => {
            // The parser counts lines from the chunk's start; shift them so that the message
            // names lines of the whole input.
            let offset = line - 1;
            let at_line = err.location().map_or(line, |loc| loc.line() + offset);
            let message = format!("invalid YAML: {}", shift_lines(&err.to_string(), offset));
            let violations = vec![Violation::new(&Path::root(), message)];
            vec![Document {
                line: at_line,
                outcome: Err(DecodeError {
                    kind: None,
                    name: None,
                    violations,
                }),
            }]
        }
    }
}

/// `message` with every `line <n>` turned into `line <n + offset>`.
fn shift_lines(message: &str, offset: usize) -> String {
    const WORD: &str = "line ";
    let mut out = String::with_capacity(message.len() + 8);
    let mut rest = message;
    while let Some(at) = rest.find(WORD) {
        out.push_str(&rest[..at + WORD.len()]);
        rest = &rest[at + WORD.len()..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        match rest[..digits].parse::<usize>() {
            Ok(n) => out.push_str(&(n + offset).to_string()),
            Err(_) => out.push_str(&rest[..digits]),
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

/// Each document's first content line (1-based) and its text, one at a time.
struct Chunks<'a> {
    lines: std::iter::Enumerate<std::str::Lines<'a>>,
}

impl<'a> Chunks<'a> {
    fn new(text: &'a str) -> Self {
        Chunks {
            lines: text.lines().enumerate(),
        }
    }
}

impl Iterator for Chunks<'_> {
    type Item = (usize, String);

    fn next(&mut self) -> Option<(usize, String)> {
        let mut current = String::new();
        let mut start: Option<usize> = None;
        for (index, line) in self.lines.by_ref() {
            if is_separator(line) {
                if let Some(first) = start {
                    return Some((first, current));
                }
                current.clear();
                continue;
            }
            let trimmed = line.trim();
            if start.is_none() && (trimmed.is_empty() || trimmed.starts_with('#')) {
                continue;
            }
            start.get_or_insert(index + 1);
            current.push_str(line);
            current.push('\n');
        }
        start.map(|first| (first, current))
    }
}

fn is_separator(line: &str) -> bool {
    let rest = match line
        .strip_prefix("---")
        .or_else(|| line.strip_prefix("..."))
    {
        Some(rest) => rest,
        None => return false,
    };
    rest.is_empty() || rest.starts_with(' ') || rest.starts_with('\t')
}
