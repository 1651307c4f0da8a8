//! Helpers shared by the table-driven validation tests.
//!
//! A table starts from a valid base document (YAML text). Each row names a case, derives a
//! document from the base (by editing a copy of its JSON value, or by giving a whole document),
//! and states the expected outcome: accepted, or rejected with a violation at an exact field
//! path whose message contains a key phrase. Failures print the case name, every violation
//! found and the document that was decoded.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use atoll_model::{DecodeError, Resource, Violation, decode_value};
#[allow(unused_imports)] // Not every test binary edits documents.
pub use serde_json::{Value, json};

/// An expected outcome: `None` to pass, or `(field path, message phrase)` to fail.
pub type Expect = Option<(&'static str, &'static str)>;

/// The document must be accepted.
pub const PASS: Expect = None;

/// The document must be rejected with a violation at exactly `field` whose message contains
/// `phrase`.
pub fn fail(field: &'static str, phrase: &'static str) -> Expect {
    Some((field, phrase))
}

/// How a row derives its document.
pub enum Input {
    /// Edit a copy of the table's base document.
    Edit(fn(&mut Value)),
    /// A whole document of its own.
    Doc(&'static str),
}

/// One row of a table.
pub struct Case {
    pub name: &'static str,
    pub input: Input,
    pub expect: Expect,
}

/// A row that edits a copy of the base document.
pub fn edit(name: &'static str, mutate: fn(&mut Value), expect: Expect) -> Case {
    Case {
        name,
        input: Input::Edit(mutate),
        expect,
    }
}

/// A row with a whole document (YAML or JSON text).
pub fn doc(name: &'static str, text: &'static str, expect: Expect) -> Case {
    Case {
        name,
        input: Input::Doc(text),
        expect,
    }
}

/// Parses a YAML (or JSON) test document; a syntax error is a bug in the test itself.
pub fn yaml(text: &str) -> Value {
    serde_norway::from_str(text)
        .unwrap_or_else(|err| panic!("test document is not valid YAML: {err}\n{text}"))
}

/// Decodes and validates a YAML document.
pub fn decode(text: &str) -> Result<Resource, DecodeError> {
    decode_value(yaml(text))
}

/// Every violation `decode_value` reports for the value; empty when it is accepted.
pub fn violations(value: Value) -> Vec<Violation> {
    match decode_value(value) {
        Ok(_) => Vec::new(),
        Err(err) => err.violations,
    }
}

/// One violation per line, `field: message`.
pub fn render(violations: &[Violation]) -> String {
    if violations.is_empty() {
        return "    (none)".to_string();
    }
    violations
        .iter()
        .map(|v| format!("    {:?}: {}", v.field, v.message))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Asserts that the base document is accepted, then checks every row, reporting all failing
/// rows together.
pub fn run_table(base: &str, cases: &[Case]) {
    let base_value = yaml(base);
    let found = violations(base_value.clone());
    assert!(
        found.is_empty(),
        "the base document must be accepted, but it has violations:\n{}\n{base}",
        render(&found)
    );
    let mut failures = Vec::new();
    for case in cases {
        let value = match &case.input {
            Input::Edit(mutate) => {
                let mut value = base_value.clone();
                mutate(&mut value);
                value
            }
            Input::Doc(text) => yaml(text),
        };
        if let Some(problem) = check(&value, case.expect) {
            failures.push(format!(
                "case {:?}: {problem}\n  document: {value}",
                case.name
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

/// What is wrong with the outcome of decoding `value`, if anything.
fn check(value: &Value, expect: Expect) -> Option<String> {
    let found = violations(value.clone());
    match expect {
        None if found.is_empty() => None,
        None => Some(format!(
            "expected the document to be accepted, but got violations:\n{}",
            render(&found)
        )),
        Some((field, phrase)) => {
            let hit = found
                .iter()
                .any(|v| v.field == field && v.message.contains(phrase));
            (!hit).then(|| {
                format!(
                    "expected a violation at `{field}` containing {phrase:?}, but got:\n{}",
                    render(&found)
                )
            })
        }
    }
}

/// Asserts that the document is rejected with exactly these violations (one per entry, in any
/// order), each given as `(field path, message phrase)`.
pub fn assert_exact_violations(name: &str, value: Value, expected: &[(&str, &str)]) {
    let found = violations(value);
    let mut unmatched: Vec<&Violation> = found.iter().collect();
    let mut missing = Vec::new();
    for (field, phrase) in expected {
        match unmatched
            .iter()
            .position(|v| v.field == *field && v.message.contains(phrase))
        {
            Some(at) => {
                unmatched.remove(at);
            }
            None => missing.push(format!("`{field}` containing {phrase:?}")),
        }
    }
    assert!(
        missing.is_empty() && unmatched.is_empty() && found.len() == expected.len(),
        "case {name:?}: expected exactly {} violations; missing: {missing:?}; unexpected: {:?}\nall violations:\n{}",
        expected.len(),
        unmatched.iter().map(|v| v.to_string()).collect::<Vec<_>>(),
        render(&found)
    );
}

// ---- editing documents by field path ------------------------------------------------------

/// One step of a field path.
#[derive(Debug)]
enum Segment {
    Key(String),
    Index(usize),
}

/// Parses the violation path syntax: `conf.listeners[0].tags["kuma.io/service"]`.
fn segments(path: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut name = String::new();
    let mut chars = path.chars().peekable();
    let flush = |name: &mut String, out: &mut Vec<Segment>| {
        if !name.is_empty() {
            out.push(Segment::Key(std::mem::take(name)));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '.' => flush(&mut name, &mut out),
            '[' => {
                flush(&mut name, &mut out);
                if chars.peek() == Some(&'"') {
                    chars.next();
                    let key: String = chars.by_ref().take_while(|&c| c != '"').collect();
                    assert_eq!(chars.next(), Some(']'), "bad path {path:?}");
                    out.push(Segment::Key(key));
                } else {
                    let digits: String = chars.by_ref().take_while(|&c| c != ']').collect();
                    let index = digits
                        .parse()
                        .unwrap_or_else(|_| panic!("bad index in path {path:?}"));
                    out.push(Segment::Index(index));
                }
            }
            c => name.push(c),
        }
    }
    flush(&mut name, &mut out);
    out
}

/// The value at `segment` below `value`, created (as null) when missing.
fn slot<'a>(value: &'a mut Value, segment: &Segment) -> &'a mut Value {
    match segment {
        Segment::Key(key) => {
            if value.is_null() {
                *value = Value::Object(Default::default());
            }
            let Value::Object(map) = value else {
                panic!("cannot take key {key:?} of {value}");
            };
            map.entry(key.clone()).or_insert(Value::Null)
        }
        Segment::Index(index) => {
            if value.is_null() {
                *value = Value::Array(Vec::new());
            }
            let Value::Array(items) = value else {
                panic!("cannot take index {index} of {value}");
            };
            if *index == items.len() {
                items.push(Value::Null);
            }
            &mut items[*index]
        }
    }
}

/// Sets the value at `path`, creating missing mappings (and appending at index == length).
pub fn set(doc: &mut Value, path: &str, new: Value) {
    let target = segments(path)
        .iter()
        .fold(doc, |value, segment| slot(value, segment));
    *target = new;
}

/// Removes the field or list item at `path`; it must exist.
pub fn remove(doc: &mut Value, path: &str) {
    let mut segments = segments(path);
    let last = segments.pop().expect("empty path");
    let mut parent = doc;
    for segment in &segments {
        parent = match (segment, parent) {
            (Segment::Key(key), Value::Object(map)) => map
                .get_mut(key)
                .unwrap_or_else(|| panic!("no {key:?} in path {path:?}")),
            (Segment::Index(index), Value::Array(items)) => items
                .get_mut(*index)
                .unwrap_or_else(|| panic!("no [{index}] in path {path:?}")),
            (segment, value) => panic!("cannot follow {segment:?} into {value} ({path:?})"),
        };
    }
    match (&last, parent) {
        (Segment::Key(key), Value::Object(map)) => {
            assert!(
                map.shift_remove(key).is_some(),
                "no {key:?} to remove at {path:?}"
            );
        }
        (Segment::Index(index), Value::Array(items)) => {
            items.remove(*index);
        }
        (segment, value) => panic!("cannot remove {segment:?} from {value} ({path:?})"),
    }
}

/// Appends to the list at `path`, creating it when missing.
pub fn push(doc: &mut Value, path: &str, item: Value) {
    let target = segments(path)
        .iter()
        .fold(doc, |value, segment| slot(value, segment));
    if target.is_null() {
        *target = Value::Array(Vec::new());
    }
    match target {
        Value::Array(items) => items.push(item),
        other => panic!("{path:?} is not a list: {other}"),
    }
}

/// A copy of the value at `path`; it must exist.
pub fn get(doc: &Value, path: &str) -> Value {
    segments(path)
        .iter()
        .fold(doc, |value, segment| match (segment, value) {
            (Segment::Key(key), Value::Object(map)) => map
                .get(key)
                .unwrap_or_else(|| panic!("no {key:?} in path {path:?}")),
            (Segment::Index(index), Value::Array(items)) => items
                .get(*index)
                .unwrap_or_else(|| panic!("no [{index}] in path {path:?}")),
            (segment, value) => panic!("cannot follow {segment:?} into {value} ({path:?})"),
        })
        .clone()
}
