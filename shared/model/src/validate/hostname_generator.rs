//! HostnameGenerator rules: one selector kind, and a template that renders.

use super::{Path, Report};
use crate::types::HostnameGeneratorSpec;

/// The values a template may use.
const TEMPLATE_FIELDS: &[&str] = &[".DisplayName", ".Name", ".Namespace", ".Zone", ".Mesh"];

pub(super) fn validate(spec: &HostnameGeneratorSpec, path: &Path, report: &mut Report) {
    let selector_path = path.field("selector");
    match &spec.selector {
        None => report.add(&selector_path, "must be set"),
        Some(selector) => {
            let set = [
                selector.mesh_service.is_some(),
                selector.mesh_external_service.is_some(),
                selector.mesh_multi_zone_service.is_some(),
            ];
            if set.iter().filter(|s| **s).count() != 1 {
                report.add(
                    &selector_path,
                    "must set exactly one of meshService, meshExternalService, meshMultiZoneService",
                );
            }
        }
    }
    let template = path.field("template");
    if spec.template.is_empty() {
        report.add(&template, "must not be empty");
    } else if let Err(message) = check_template(&spec.template) {
        report.add(&template, message);
    }
}

/// Accepts `{{ .Field }}` and `{{ label "key" }}` actions around literal text.
fn check_template(template: &str) -> Result<(), String> {
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        if rest[..open].contains("}}") {
            return Err("has a '}}' without a matching '{{'".into());
        }
        let after = &rest[open + 2..];
        let close = after
            .find("}}")
            .ok_or("has a '{{' without a matching '}}'")?;
        let action = after[..close].trim();
        let known_field = TEMPLATE_FIELDS.contains(&action);
        let label = action
            .strip_prefix("label ")
            .map(str::trim)
            .is_some_and(|arg| arg.len() >= 2 && arg.starts_with('"') && arg.ends_with('"'));
        if !known_field && !label {
            return Err(format!(
                "unknown template action {{{{ {action} }}}}; use one of {}, or label \"key\"",
                TEMPLATE_FIELDS.join(", ")
            ));
        }
        rest = &after[close + 2..];
    }
    if rest.contains("}}") {
        return Err("has a '}}' without a matching '{{'".into());
    }
    Ok(())
}
