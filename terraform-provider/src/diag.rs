//! Terraform diagnostics from the API's errors: a field cause becomes an error pointing at
//! the attribute it names.

use crate::client::{ApiError, Cause};
use crate::kinds::Kind;
use crate::tfplugin6::attribute_path::{Step, step::Selector};
use crate::tfplugin6::{AttributePath, Diagnostic, diagnostic::Severity};

pub fn error(summary: impl Into<String>, detail: impl Into<String>) -> Diagnostic {
    Diagnostic {
        severity: Severity::Error as i32,
        summary: summary.into(),
        detail: detail.into(),
        attribute: None,
    }
}

pub fn warning(summary: impl Into<String>, detail: impl Into<String>) -> Diagnostic {
    Diagnostic {
        severity: Severity::Warning as i32,
        ..error(summary, detail)
    }
}

/// `conf.listeners[0].port` as Terraform's path, the first segment mapped to its HCL
/// attribute; `None` when the field is not one of the resource's attributes.
pub fn attribute_path(kind: Option<&Kind>, field: &str) -> Option<AttributePath> {
    let mut steps = Vec::new();
    for (i, segment) in field.split('.').enumerate() {
        let (name, indexes) = match segment.find('[') {
            Some(at) => (&segment[..at], &segment[at..]),
            None => (segment, ""),
        };
        if name.is_empty() {
            return None;
        }
        let name = if i == 0 {
            match name {
                "name" | "mesh" | "labels" | "spec" => name.to_string(),
                other => kind?.field_by_json(other)?.hcl.to_string(),
            }
        } else {
            name.to_string()
        };
        steps.push(Step {
            selector: Some(Selector::AttributeName(name)),
        });
        for index in indexes.split('[').filter(|s| !s.is_empty()) {
            let index = index.trim_end_matches(']');
            let selector = match index.parse::<i64>() {
                Ok(n) => Selector::ElementKeyInt(n),
                Err(_) => Selector::ElementKeyString(index.trim_matches('"').to_string()),
            };
            steps.push(Step {
                selector: Some(selector),
            });
        }
    }
    Some(AttributePath { steps })
}

fn cause(kind: Option<&Kind>, summary: &str, cause: &Cause) -> Diagnostic {
    Diagnostic {
        attribute: attribute_path(kind, &cause.field),
        ..error(summary, format!("{}: {}", cause.field, cause.message))
    }
}

/// One diagnostic per field the API named, or one for the whole error.
pub fn from_api(kind: Option<&Kind>, summary: &str, err: &ApiError) -> Vec<Diagnostic> {
    match err {
        ApiError::Status {
            causes, details, ..
        } if !causes.is_empty() => causes
            .iter()
            .map(|c| {
                let mut d = cause(kind, summary, c);
                d.detail = format!("{details}: {}", d.detail);
                d
            })
            .collect(),
        ApiError::Status { status: 409, .. } => vec![error(
            summary,
            format!(
                "{err}\nThe resource changed since Terraform last read it; nothing was overwritten. \
                 Run `terraform plan` to see the change, then apply again."
            ),
        )],
        other => vec![error(summary, other.to_string())],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_a_field_path_onto_attributes_and_indexes() {
        let kind = crate::kinds::find("atoll_mesh_gateway");
        let path = attribute_path(kind, "conf.listeners[0].port").unwrap();
        let steps: Vec<_> = path
            .steps
            .into_iter()
            .map(|s| s.selector.unwrap())
            .collect();
        assert_eq!(
            steps,
            vec![
                Selector::AttributeName("conf".into()),
                Selector::AttributeName("listeners".into()),
                Selector::ElementKeyInt(0),
                Selector::AttributeName("port".into()),
            ]
        );
        let mesh = crate::kinds::find("atoll_mesh");
        let path = attribute_path(mesh, "skipCreatingInitialPolicies[1]").unwrap();
        assert_eq!(
            path.steps[0].selector,
            Some(Selector::AttributeName(
                "skip_creating_initial_policies".into()
            ))
        );
        assert!(attribute_path(mesh, "notAField").is_none());
    }
}
