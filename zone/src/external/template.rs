//! HostnameGenerator templates: `{{ .DisplayName }}`, `{{ .Name }}`, `{{ .Namespace }}`,
//! `{{ .Zone }}`, `{{ .Mesh }}` and `{{ label "key" }}` around literal text, rendered for one
//! service and checked to be a DNS name.

use atoll_model::hostname_template::{self, Action};
use atoll_model::types::Tags;
use atoll_model::validate::is_dns_subdomain;

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
    let out = hostname_template::render(template, |action| match action {
        Action::Field(".DisplayName" | ".Name") => Ok(subject.name.to_string()),
        Action::Field(".Zone") => Ok(subject.zone.to_string()),
        Action::Field(".Mesh") => Ok(subject.mesh.to_string()),
        // Universal has no namespaces.
        Action::Field(_) => Ok(String::new()),
        Action::Label(key) => subject
            .labels
            .get(key)
            .cloned()
            .ok_or_else(|| format!("label {key:?} is not set on the service")),
    })?;
    if !is_dns_subdomain(&out) {
        return Err(format!(
            "{out:?} is not a DNS name: lower-case letters, digits and '-' in labels of at most 63 characters, separated by single dots"
        ));
    }
    Ok(out)
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
            (".{{ .Name }}.mesh", "not a DNS name"),
            ("{{ .Name }}..mesh", "not a DNS name"),
            ("{{ .Name }}_x.mesh", "not a DNS name"),
            ("{{ .Name }}.Mesh", "not a DNS name"),
            ("{{ label \"missing\" }}.mesh", "not set"),
            ("{{ .Namespace }}.mesh", "not a DNS name"),
        ] {
            let err = render(template, &subject(&labels)).unwrap_err();
            assert!(err.contains(why), "{template}: {err}");
        }
    }
}
