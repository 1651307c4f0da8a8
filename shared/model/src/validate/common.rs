//! Checks shared by several resource types.

use std::net::IpAddr;

use super::{Path, Report};
use crate::duration;
use crate::enums::StringEnum;
use crate::types::{DataSource, Tags};

pub(crate) const PORT_RANGE: &str = "must be in the range 1-65535";

pub(crate) fn port(report: &mut Report, path: &Path, port: u32) {
    if !(1..=65535).contains(&port) {
        report.add(path, PORT_RANGE);
    }
}

pub(crate) fn opt_port(report: &mut Report, path: &Path, value: Option<u32>) {
    if let Some(value) = value {
        port(report, path, value);
    }
}

pub(crate) fn not_empty(report: &mut Report, path: &Path, value: &str) {
    if value.is_empty() {
        report.add(path, "must not be empty");
    }
}

/// A value of a closed set: unset is reported only when `required`.
pub(crate) fn one_of<E: StringEnum>(report: &mut Report, path: &Path, value: &E, required: bool) {
    if value.is_unset() {
        if required {
            report.add(
                path,
                format!("must be set to one of: {}", E::KNOWN.join(", ")),
            );
        }
    } else if !value.is_known() {
        report.add(
            path,
            format!(
                "unknown value {:?}: must be one of {}",
                value.as_str(),
                E::KNOWN.join(", ")
            ),
        );
    }
}

/// An RFC 1123 label: 1-63 of `a-z0-9-`, not starting or ending with `-`.
pub fn is_dns_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

/// A DNS name of one or more labels, at most 253 characters.
pub fn is_dns_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 253 && name.split('.').all(is_dns_label)
}

/// `*` alone (any host), or `*.` followed by a DNS name.
pub fn is_wildcard_hostname(name: &str) -> bool {
    name == "*" || name.strip_prefix("*.").is_some_and(is_dns_name)
}

pub(crate) fn hostname(report: &mut Report, path: &Path, value: &str) {
    if !is_dns_name(value) && !is_wildcard_hostname(value) {
        report.add(
            path,
            format!(
                "{value:?} must be a valid DNS name, optionally with '*' as its leftmost label"
            ),
        );
    }
}

/// A DNS-1123 subdomain as Kubernetes defines it: lower-case labels of letters, digits and
/// '-', not starting or ending with '-', at most 253 characters in all.
pub fn is_dns_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// A host name to send in a request: a lower-case DNS name, never an address or a wildcard.
pub(crate) fn precise_hostname(report: &mut Report, path: &Path, value: &str) {
    if value.parse::<IpAddr>().is_ok() {
        report.add(
            path,
            format!("{value:?} must be a host name, not an IP address"),
        );
    } else if !is_dns_subdomain(value) {
        report.add(
            path,
            format!("{value:?} must be a lower-case DNS name: letters, digits and '-' in labels separated by '.'"),
        );
    }
}

pub(crate) fn ip_or_dns(report: &mut Report, path: &Path, value: &str) {
    if value.is_empty() {
        report.add(path, "must not be empty");
    } else if value.parse::<IpAddr>().is_err() && !is_dns_name(value) {
        report.add(
            path,
            format!("{value:?} must be an IP address or a DNS name"),
        );
    }
}

/// A resource name: what fits in a URL path segment and a KDS `<name>.<mesh>` key.
pub(crate) fn resource_name(report: &mut Report, path: &Path, value: &str) {
    if value.is_empty() {
        report.add(path, "must be set");
    } else if value.len() > 253 {
        report.add(path, "must be at most 253 characters");
    } else if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        || !value.as_bytes()[0].is_ascii_alphanumeric()
    {
        report.add(
            path,
            format!("{value:?} must start with a letter or digit and contain only letters, digits, '-', '_' and '.'"),
        );
    }
}

/// Names that end up inside DNS names and SNIs (meshes, zones) must be DNS labels.
pub(crate) fn dns_label_name(report: &mut Report, path: &Path, value: &str) {
    if value.is_empty() {
        report.add(path, "must be set");
    } else if !is_dns_label(value) || value.bytes().any(|b| b.is_ascii_uppercase()) {
        report.add(
            path,
            format!("{value:?} must be a DNS label: 1-63 lower-case letters, digits and '-', not starting or ending with '-'"),
        );
    }
}

fn tag_key_ok(key: &str) -> bool {
    key.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'/'))
}

fn tag_value_ok(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'*'))
}

/// Kuma's tag rules: non-empty keys of `[a-zA-Z0-9.-_:/]`, non-empty values of `[a-zA-Z0-9.-_:]`.
pub(crate) fn tags(report: &mut Report, path: &Path, tags: &Tags) {
    for (key, value) in tags {
        let at = path.key(key);
        if key.is_empty() {
            report.add(&at, "tag key must not be empty");
        } else if !tag_key_ok(key) {
            report.add(
                &at,
                "tag key may contain only letters, digits and '.', '-', '_', ':', '/'",
            );
        }
        if value.is_empty() {
            report.add(&at, "tag value must not be empty");
        } else if !tag_value_ok(value) {
            report.add(
                &at,
                "tag value may contain only letters, digits and '.', '-', '_', ':'",
            );
        }
    }
}

pub(crate) fn forbid_tag(report: &mut Report, path: &Path, tags: &Tags, key: &str) {
    if tags.contains_key(key) {
        report.add(&path.key(key), "must not be set here");
    }
}

/// Labels: keys like tag keys, values free-form up to 253 characters.
pub(crate) fn labels(report: &mut Report, path: &Path, labels: &Tags) {
    for (key, value) in labels {
        let at = path.key(key);
        if key.is_empty() || !tag_key_ok(key) {
            report.add(&at, "label key must be non-empty and contain only letters, digits and '.', '-', '_', ':', '/'");
        }
        if value.len() > 253 {
            report.add(&at, "label value must be at most 253 characters");
        }
    }
}

/// Exactly one source, and `inline` must be base64.
pub(crate) fn data_source(report: &mut Report, path: &Path, source: &DataSource) {
    let set = source.sources_set();
    if set.len() != 1 {
        let found = if set.is_empty() {
            "none".to_string()
        } else {
            set.join(", ")
        };
        report.add(
            path,
            format!("must set exactly one of file, inline, inlineString, secret (found: {found})"),
        );
    }
    if let Some(Err(err)) = source.inline_bytes() {
        report.add(&path.field("inline"), format!("must be base64: {err}"));
    }
    for (field, value) in [("file", &source.file), ("secret", &source.secret)] {
        if value.as_deref() == Some("") {
            report.add(&path.field(field), "must not be empty");
        }
    }
}

pub(crate) fn duration(report: &mut Report, path: &Path, value: &Option<String>) {
    if let Some(text) = value
        && let Err(err) = duration::parse(text)
    {
        report.add(
            path,
            format!("{text:?} is not a duration ({err}); e.g. 10s, 1h30m, 1d"),
        );
    }
}

pub(crate) fn regex(report: &mut Report, path: &Path, pattern: &str) {
    if let Err(err) = regex_syntax::Parser::new().parse(pattern) {
        report.add(
            path,
            format!(
                "invalid regular expression: {}",
                first_line(&err.to_string())
            ),
        );
    }
}

fn first_line(text: &str) -> String {
    text.lines()
        .rev()
        .find(|l| l.starts_with("error:"))
        .unwrap_or(text)
        .to_string()
}

/// An `extension` needs a `type`, and is refused all the same: Kuma hands it to a plug-in,
/// Atoll loads none, so honouring it is impossible and ignoring it would be a silent lie.
pub(crate) fn extension(
    report: &mut Report,
    path: &Path,
    extension: Option<&crate::types::Extension>,
) {
    if let Some(extension) = extension {
        not_empty(report, &path.field("type"), &extension.extension_type);
        report.add(
            path,
            "is not supported: Atoll loads no extension plug-ins (see docs/choices.md)",
        );
    }
}
