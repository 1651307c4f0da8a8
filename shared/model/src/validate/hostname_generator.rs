//! HostnameGenerator rules: one selector kind, and a template that renders.

use super::common::{extension, is_dns_subdomain};
use super::{Path, Report};
use crate::types::HostnameGeneratorSpec;

/// What each action stands for when a template is tried out: a valid DNS label, so that only
/// the template's literal text can make the result invalid.
const SAMPLE_VALUE: &str = "x";

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
            // Atoll has no MeshService or MeshMultiZoneService resources to name.
            for (set, field) in [
                (selector.mesh_service.is_some(), "meshService"),
                (
                    selector.mesh_multi_zone_service.is_some(),
                    "meshMultiZoneService",
                ),
            ] {
                if set {
                    report.add(
                        &selector_path.field(field),
                        "is not supported yet: only meshExternalService hostnames are generated",
                    );
                }
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
    extension(report, &path.field("extension"), spec.extension.as_ref());
}

/// The template rendered with [`SAMPLE_VALUE`] for every action.
fn render_sample(template: &str) -> Result<String, String> {
    crate::hostname_template::render(template, |_| Ok(SAMPLE_VALUE.to_string()))
}
