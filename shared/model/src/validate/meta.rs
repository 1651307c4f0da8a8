//! Name, mesh and labels, by the type's scope.

use super::common::{dns_label_name, labels, resource_name};
use super::{Path, Report};
use crate::kind::{Kind, Scope};
use crate::resource::Resource;

/// The longest DNS label.
const MAX_LABEL: usize = 63;

pub(super) fn validate(resource: &Resource, report: &mut Report) {
    let root = Path::root();
    let kind = resource.kind();
    let meta = &resource.meta;
    // Mesh and zone names become parts of DNS names and SNIs, so they must be DNS labels.
    match kind {
        Kind::Mesh | Kind::Zone => dns_label_name(report, &root.field("name"), &meta.name),
        _ => resource_name(report, &root.field("name"), &meta.name),
    }
    // A MeshExternalService's name becomes one label of its generated hostnames.
    if kind == Kind::MeshExternalService && meta.name.len() > MAX_LABEL {
        report.add(
            &root.field("name"),
            format!("must be at most {MAX_LABEL} characters for a MeshExternalService"),
        );
    }
    match (kind.scope(), &meta.mesh) {
        (Scope::Mesh, None) => report.add(&root.field("mesh"), "must be set"),
        (Scope::Mesh, Some(mesh)) => dns_label_name(report, &root.field("mesh"), mesh),
        (Scope::Global, Some(_)) => report.add(
            &root.field("mesh"),
            format!("must not be set: {kind} is not mesh-scoped"),
        ),
        (Scope::Global, None) => {}
    }
    labels(report, &root.field("labels"), &meta.labels);
}
