//! Multi-document input: splitting, line numbers, syntax errors and JSON.

mod support;

use atoll_model::{Document, Kind, parse_documents};
use support::render;

/// Each document's start line and whether it decoded, for assertion messages.
fn describe(documents: &[Document]) -> String {
    documents
        .iter()
        .map(|d| match &d.outcome {
            Ok(r) => format!("line {}: ok {} {}", d.line, r.kind(), r.name()),
            Err(e) => format!("line {}: error\n{}", d.line, render(&e.violations)),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

const STREAM: &str = "\
# Atoll example resources.
# A comment before the first document.
type: Zone
name: zone-1
---
# The second document starts after this comment.

type: Mesh
name: default
mtls:
  enabledBackend: ca-1
  backends:
  - name: ca-1
    type: builtin
--- # a separator may carry a comment
type: MeshGateway
mesh: default
name: edge-gateway
selectors:
- match:
    kuma.io/service: edge-gateway
conf:
  listeners:
  - port: 8080
    protocol: HTTP
";

#[test]
fn three_documents_with_their_start_lines() {
    let documents = parse_documents(STREAM);
    let summary = describe(&documents);
    assert_eq!(documents.len(), 3, "{summary}");
    let expected = [
        (3, Kind::Zone, "zone-1"),
        (8, Kind::Mesh, "default"),
        (16, Kind::MeshGateway, "edge-gateway"),
    ];
    for (document, (line, kind, name)) in documents.iter().zip(expected) {
        let resource = document
            .outcome
            .as_ref()
            .unwrap_or_else(|_| panic!("every document must decode:\n{summary}"));
        assert_eq!(
            (document.line, resource.kind(), resource.name()),
            (line, kind, name),
            "{summary}"
        );
    }
}

#[test]
fn leading_separator_empty_documents_and_end_markers() {
    let text =
        "---\n# only a comment\n---\ntype: Zone\nname: a\n...\n---\n\n---\ntype: Zone\nname: b\n";
    let documents = parse_documents(text);
    let summary = describe(&documents);
    let lines: Vec<usize> = documents.iter().map(|d| d.line).collect();
    assert_eq!(lines, [4, 10], "{summary}");
    assert!(documents.iter().all(|d| d.outcome.is_ok()), "{summary}");
}

#[test]
fn invalid_document_does_not_hide_the_others() {
    let text = "\
type: Zone
name: zone-1
---
type: Zone
name: Zone_2
---
type: Zone
name: zone-3
";
    let documents = parse_documents(text);
    let summary = describe(&documents);
    assert_eq!(documents.len(), 3, "{summary}");
    assert!(documents[0].outcome.is_ok(), "{summary}");
    assert!(documents[2].outcome.is_ok(), "{summary}");
    let err = documents[1].outcome.as_ref().expect_err(&summary);
    assert_eq!(documents[1].line, 4, "{summary}");
    assert_eq!(err.kind, Some(Kind::Zone));
    assert_eq!(err.name.as_deref(), Some("Zone_2"));
    assert_eq!(err.violations.len(), 1, "{summary}");
    assert_eq!(err.violations[0].field, "name");
}

#[test]
fn yaml_syntax_error_is_reported_with_its_line() {
    // Line 7 has an unclosed flow mapping; the error is in the second document.
    let text = "\
type: Zone
name: zone-1
---
type: MeshGateway
mesh: default
name: broken
selectors: [ {match: {kuma.io/service: edge}
conf:
  listeners:
  - port: 8080
    protocol: HTTP
---
type: Zone
name: zone-3
";
    let documents = parse_documents(text);
    let summary = describe(&documents);
    assert_eq!(documents.len(), 3, "{summary}");
    assert!(documents[0].outcome.is_ok(), "{summary}");
    assert!(documents[2].outcome.is_ok(), "{summary}");
    let err = documents[1].outcome.as_ref().expect_err(&summary);
    assert_eq!(err.violations.len(), 1, "{summary}");
    assert_eq!(err.violations[0].field, "", "{summary}");
    assert!(
        err.violations[0].message.contains("invalid YAML"),
        "{summary}"
    );
    // The parser notices the missing `}` on line 8, where the next key starts; the message's
    // positions are lines of the whole input, not of the document.
    assert_eq!(documents[1].line, 8, "{summary}");
    let message = &err.violations[0].message;
    assert!(message.contains("at line 8 column 1"), "{summary}");
    assert!(
        message.contains("flow mapping at line 7 column 14"),
        "{summary}"
    );
}

#[test]
fn yaml_syntax_error_line_in_first_document() {
    let text = "# comment\n\ntype: Zone\nname: zone-1\n  bad: indentation\n";
    let documents = parse_documents(text);
    let summary = describe(&documents);
    assert_eq!(documents.len(), 1, "{summary}");
    assert!(documents[0].outcome.is_err(), "{summary}");
    assert_eq!(documents[0].line, 5, "{summary}");
    let err = documents[0].outcome.as_ref().unwrap_err();
    assert!(err.violations[0].message.contains("line 5"), "{summary}");
}

#[test]
fn bad_indentation_error_points_at_its_line() {
    let text = "\
type: Zone
name: zone-1
---
type: Zone
name: zone-2
  enabled: true
";
    let documents = parse_documents(text);
    let summary = describe(&documents);
    assert_eq!(documents.len(), 2, "{summary}");
    assert!(documents[0].outcome.is_ok(), "{summary}");
    assert!(documents[1].outcome.is_err(), "{summary}");
    assert_eq!(documents[1].line, 6, "{summary}");
    let err = documents[1].outcome.as_ref().unwrap_err();
    assert!(err.violations[0].message.contains("line 6"), "{summary}");
}

#[test]
fn json_documents_parse() {
    let compact = r#"{"type":"Zone","name":"zone-1","enabled":false}"#;
    let documents = parse_documents(compact);
    assert_eq!(documents.len(), 1, "{}", describe(&documents));
    let zone = documents[0].outcome.as_ref().expect("compact JSON decodes");
    assert_eq!((zone.kind(), zone.name()), (Kind::Zone, "zone-1"));

    let tabs = "{\n\t\"type\": \"Zone\",\n\t\"name\": \"zone-2\"\n}\n";
    let documents = parse_documents(tabs);
    let zone = documents[0]
        .outcome
        .as_ref()
        .expect("tab-indented JSON decodes");
    assert_eq!(zone.name(), "zone-2");

    let pretty = r#"{
  "type": "MeshGateway",
  "mesh": "default",
  "name": "edge-gateway",
  "selectors": [{"match": {"kuma.io/service": "edge-gateway"}}],
  "conf": {
    "listeners": [
      {"port": 8080, "protocol": "HTTP", "hostname": "foo.example.com"}
    ]
  }
}"#;
    let documents = parse_documents(pretty);
    let summary = describe(&documents);
    assert_eq!(documents.len(), 1, "{summary}");
    assert_eq!(documents[0].line, 1, "{summary}");
    let gateway = documents[0].outcome.as_ref().expect(&summary);
    assert_eq!(gateway.kind(), Kind::MeshGateway);
    assert_eq!(
        atoll_model::to_json(gateway)
            .parse::<serde_json::Value>()
            .ok(),
        serde_json::from_str(pretty).ok(),
        "JSON round trip"
    );
}

#[test]
fn json_and_yaml_documents_mix() {
    let text = "type: Zone\nname: zone-1\n---\n{\"type\": \"Zone\", \"name\": \"zone-2\"}\n";
    let documents = parse_documents(text);
    let summary = describe(&documents);
    let names: Vec<&str> = documents
        .iter()
        .filter_map(|d| d.outcome.as_ref().ok())
        .map(|r| r.name())
        .collect();
    assert_eq!(names, ["zone-1", "zone-2"], "{summary}");
    assert_eq!(documents[1].line, 4, "{summary}");
}

#[test]
fn top_level_list_is_a_list_of_resources() {
    let text = "- type: Zone\n  name: a\n- type: Zone\n  name: b\n";
    let documents = parse_documents(text);
    let summary = describe(&documents);
    let names: Vec<&str> = documents
        .iter()
        .filter_map(|d| d.outcome.as_ref().ok())
        .map(|r| r.name())
        .collect();
    assert_eq!(names, ["a", "b"], "{summary}");
}

#[test]
fn empty_input_has_no_documents() {
    assert!(parse_documents("").is_empty());
    assert!(parse_documents("# nothing here\n---\n\n").is_empty());
}

#[test]
fn a_list_where_a_mapping_belongs_is_refused() {
    for (text, field) in [
        (
            "type: MeshHTTPRoute\nname: r\nmesh: default\nspec: []\n",
            "spec",
        ),
        (
            "type: MeshGateway\nname: g\nmesh: default\nselectors:\n- match:\n    a: b\nconf: []\n",
            "conf",
        ),
        (
            "type: MeshGateway\nname: g\nmesh: default\nselectors:\n- []\nconf:\n  listeners:\n  - port: 80\n    protocol: HTTP\n",
            "selectors[0]",
        ),
    ] {
        let docs = atoll_model::parse_documents(text);
        let err = docs[0].outcome.as_ref().expect_err(text);
        assert!(
            err.violations
                .iter()
                .any(|v| v.field == field && v.message.contains("expected a mapping")),
            "{text}: {:?}",
            err.violations
        );
    }
}

#[test]
fn every_invalid_document_names_its_own_lines() {
    // Many broken documents: each error names lines of the whole input (each document is
    // parsed once, with its line numbers shifted, never re-parsed behind padding).
    let mut text = String::new();
    for i in 0..200 {
        text.push_str(&format!("type: Zone\nname: z{i}\nbad: [\n---\n"));
    }
    let documents = parse_documents(&text);
    assert_eq!(documents.len(), 200);
    for (i, doc) in documents.iter().enumerate() {
        let err = doc.outcome.as_ref().expect_err("unclosed list");
        let first_line = 4 * i + 1;
        assert!(
            doc.line >= first_line && doc.line <= first_line + 3,
            "document {i} at line {} (starts at {first_line})",
            doc.line
        );
        assert!(
            err.violations[0]
                .message
                .contains(&format!("line {}", doc.line)),
            "{}",
            err.violations[0].message
        );
    }
}

#[test]
fn the_first_document_is_read_alone() {
    let (first, more) = atoll_model::parse_first_document("type: Zone\nname: a\n");
    assert!(first.unwrap().outcome.is_ok());
    assert!(!more);
    // A second document is noticed without being parsed: it may be anything.
    let (first, more) =
        atoll_model::parse_first_document("type: Zone\nname: a\n---\n{{{ not yaml\n");
    assert!(first.unwrap().outcome.is_ok());
    assert!(more);
    let (first, more) = atoll_model::parse_first_document("# nothing\n");
    assert!(first.is_none() && !more);
    // A list is several documents.
    let (_, more) =
        atoll_model::parse_first_document("- type: Zone\n  name: a\n- type: Zone\n  name: b\n");
    assert!(more);
}
