//! `atollctl validate -f FILE|-`: decode and validate every document, offline.

use std::io::Write;
use std::process::ExitCode;

use atoll_model::{Document, parse_documents};

use super::input;

#[derive(clap::Args)]
pub struct Args {
    /// A YAML or JSON file with one or more resources; `-` reads standard input.
    #[arg(short = 'f', long = "file")]
    file: String,
}

pub fn run(args: &Args) -> ExitCode {
    let text = match input::read(&args.file) {
        Ok(text) => text,
        Err(err) => {
            eprintln!("Error: {err:#}");
            return ExitCode::from(2);
        }
    };
    let documents = parse_documents(&text);
    let mut out = std::io::stdout().lock();
    let ok = report(input::display_name(&args.file), &documents, &mut out);
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Writes only the invalid documents' blocks; true when all are valid.
pub fn report_invalid(source: &str, documents: &[Document], out: &mut impl Write) -> bool {
    let invalid: Vec<Document> = documents
        .iter()
        .filter(|d| d.outcome.is_err())
        .cloned()
        .collect();
    if documents.is_empty() {
        let _ = writeln!(out, "{source}: no resources found");
        return false;
    }
    invalid.is_empty() || report(source, &invalid, out)
}

/// Writes one line per valid document and a block per invalid one; true when all are valid.
fn report(source: &str, documents: &[Document], out: &mut impl Write) -> bool {
    if documents.is_empty() {
        let _ = writeln!(out, "{source}: no resources found");
        return false;
    }
    let mut invalid = 0;
    for doc in documents {
        let _ = match &doc.outcome {
            Ok(resource) => {
                let mesh = resource
                    .mesh()
                    .map(|m| format!(" (mesh {m})"))
                    .unwrap_or_default();
                writeln!(
                    out,
                    "{source}:{}: {}/{}{mesh}: valid",
                    doc.line,
                    resource.kind(),
                    resource.name()
                )
            }
            Err(err) => {
                invalid += 1;
                let kind = err
                    .kind
                    .map_or("<unknown type>".to_string(), |k| k.to_string());
                let name = err.name.as_deref().unwrap_or("<unnamed>");
                let _ = writeln!(
                    out,
                    "{source}:{}: {kind}/{name}: {} violation(s)",
                    doc.line,
                    err.violations.len()
                );
                err.violations
                    .iter()
                    .try_for_each(|v| writeln!(out, "  {v}"))
            }
        };
    }
    let _ = writeln!(out, "{} document(s), {invalid} invalid", documents.len());
    invalid == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_names_document_line_and_every_violation() {
        let text = "type: Zone\nname: zone-1\n---\n# second\ntype: MeshGateway\nmesh: default\nname: gw\nconf:\n  listeners:\n  - port: 0\n    protocol: FOO\n";
        let mut out = Vec::new();
        assert!(!report("in.yaml", &parse_documents(text), &mut out));
        let out = String::from_utf8(out).unwrap();
        assert!(out.contains("in.yaml:1: Zone/zone-1: valid"), "{out}");
        assert!(
            out.contains("in.yaml:5: MeshGateway/gw: 3 violation(s)"),
            "{out}"
        );
        assert!(
            out.contains("  selectors: must have at least one selector"),
            "{out}"
        );
        assert!(
            out.contains("  conf.listeners[0].port: must be in the range 1-65535"),
            "{out}"
        );
        assert!(
            out.contains("  conf.listeners[0].protocol: unknown value \"FOO\""),
            "{out}"
        );
        assert!(out.ends_with("2 document(s), 1 invalid\n"), "{out}");
    }

    #[test]
    fn empty_input_is_an_error() {
        let mut out = Vec::new();
        assert!(!report("x", &parse_documents("# nothing\n"), &mut out));
    }
}
