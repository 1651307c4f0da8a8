//! HostnameGenerator rules: one selector kind, and a template that renders.

use super::common::{is_dns_subdomain, not_empty};
use super::{Path, Report};
use crate::types::HostnameGeneratorSpec;

/// What each action stands for when a template is tried out: a valid DNS label, so that only
/// the template's literal text can make the result invalid.
const SAMPLE_VALUE: &str = "x";

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
    } else {
        match render_sample(&spec.template) {
            Err(message) => report.add(&template, message),
            // Kuma only parses the template and drops each name that turns out invalid when
            // it is generated; a template whose own text can never give a DNS name is refused
            // here instead, where its author sees why.
            Ok(rendered) if !is_dns_subdomain(&rendered) => report.add(
                &template,
                format!(
                    "cannot give a DNS name: with every value as {SAMPLE_VALUE:?} it renders {rendered:?}; the text around the actions must be lower-case letters, digits, '-' and '.', without a leading, trailing or doubled '.'"
                ),
            ),
            Ok(_) => {}
        }
    }
    if let Some(extension) = &spec.extension {
        not_empty(
            report,
            &path.field("extension").field("type"),
            &extension.extension_type,
        );
    }
}

/// Accepts `{{ .Field }}` and `{{ label "key" }}` actions around literal text, and renders
/// the template with [`SAMPLE_VALUE`] for every action.
fn render_sample(template: &str) -> Result<String, String> {
    let mut rendered = String::new();
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
        rendered.push_str(&rest[..open]);
        rendered.push_str(SAMPLE_VALUE);
        rest = &after[close + 2..];
    }
    if rest.contains("}}") {
        return Err("has a '}}' without a matching '{{'".into());
    }
    rendered.push_str(rest);
    Ok(rendered)
}
