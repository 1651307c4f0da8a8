//! HostnameGenerator templates: `{{ .DisplayName }}`, `{{ .Name }}`, `{{ .Namespace }}`,
//! `{{ .Zone }}`, `{{ .Mesh }}` and `{{ label "key" }}` around literal text, rendered for one
//! service and checked to be a DNS name.

use atoll_model::types::Tags;

/// What a template can refer to.
pub struct Subject<'a> {
    pub name: &'a str,
    pub mesh: &'a str,
    /// The zone the service comes from (`kuma.io/zone`), empty for the global's.
    pub zone: &'a str,
    pub labels: &'a Tags,
}

/// Renders `template` for `subject`; the error says why no hostname results.
pub fn render(template: &str, subject: &Subject<'_>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let close = after
            .find("}}")
            .ok_or("the template has a '{{' without a matching '}}'")?;
        let action = after[..close].trim();
        let value = match action {
            ".DisplayName" | ".Name" => subject.name.to_string(),
            ".Namespace" => String::new(),
            ".Zone" => subject.zone.to_string(),
            ".Mesh" => subject.mesh.to_string(),
            _ => {
                let key = action
                    .strip_prefix("label ")
                    .map(|k| k.trim().trim_matches('"'))
                    .ok_or_else(|| format!("unknown template action {{{{ {action} }}}}"))?;
                subject
                    .labels
                    .get(key)
                    .cloned()
                    .ok_or_else(|| format!("label {key:?} is not set on the service"))?
            }
        };
        out.push_str(&value);
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    check_dns_name(&out).map_err(|why| format!("{out:?} is not a DNS name: {why}"))?;
    Ok(out)
}

/// A DNS-1123 subdomain: dot-separated labels of lower-case letters, digits and '-', each 1 to
/// 63 characters, not starting or ending with '-', 253 characters at most.
pub fn check_dns_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("it is empty");
    }
    if name.len() > 253 {
        return Err("it is longer than 253 characters");
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("it has an empty label (a leading, trailing or doubled dot)");
        }
        if label.len() > 63 {
            return Err("a label is longer than 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err("only lower-case letters, digits, '-' and '.' are allowed");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a label starts or ends with '-'");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(labels: &Tags) -> Subject<'_> {
        Subject {
            name: "httpbin",
            mesh: "default",
            zone: "zone-1",
            labels,
        }
    }

    #[test]
    fn renders_fields_and_labels() {
        let labels = Tags::from([("team".to_string(), "payments".to_string())]);
        assert_eq!(
            render(
                "{{ .DisplayName }}.{{ label \"team\" }}.{{.Zone}}.extsvc.mesh.local",
                &subject(&labels)
            )
            .unwrap(),
            "httpbin.payments.zone-1.extsvc.mesh.local"
        );
    }

    #[test]
    fn refuses_what_is_not_a_dns_name_or_cannot_render() {
        let labels = Tags::new();
        for (template, why) in [
            (".{{ .Name }}.mesh", "empty label"),
            ("{{ .Name }}..mesh", "empty label"),
            ("{{ .Name }}_x.mesh", "lower-case"),
            ("{{ .Name }}.Mesh", "lower-case"),
            ("{{ label \"missing\" }}.mesh", "not set"),
            ("{{ .Namespace }}.mesh", "empty label"),
        ] {
            let err = render(template, &subject(&labels)).unwrap_err();
            assert!(err.contains(why), "{template}: {err}");
        }
    }
}
