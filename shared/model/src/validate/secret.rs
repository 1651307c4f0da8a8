//! Secret and GlobalSecret rules.

use super::{Path, Report};
use crate::types::SecretSpec;

pub(super) fn validate(spec: &SecretSpec, root: &Path, report: &mut Report) {
    let at = root.field("data");
    if spec.data.is_empty() {
        report.add(&at, "must not be empty");
    } else if let Err(err) = spec.bytes() {
        report.add(&at, format!("must be base64: {err}"));
    }
}
