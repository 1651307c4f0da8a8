//! HostnameGenerator templates: `{{ .Field }}` and `{{ label "key" }}` actions around literal
//! text. One parser for the validator (which tries a template with sample values) and the zone
//! (which renders it for each service).

/// The values a template may use.
pub const FIELDS: &[&str] = &[".DisplayName", ".Name", ".Namespace", ".Zone", ".Mesh"];

/// What an action asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action<'a> {
    /// One of [`FIELDS`], e.g. `.DisplayName`.
    Field(&'a str),
    /// The value of a label of the service.
    Label(&'a str),
}

/// Renders `template`, asking `value` for each action; the error says what is wrong with the
/// template or why a value is missing.
pub fn render(
    template: &str,
    mut value: impl FnMut(Action<'_>) -> Result<String, String>,
) -> Result<String, String> {
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
        let text = after[..close].trim();
        let label = text
            .strip_prefix("label ")
            .map(str::trim)
            .filter(|arg| arg.len() >= 2 && arg.starts_with('"') && arg.ends_with('"'))
            .map(|arg| &arg[1..arg.len() - 1]);
        let action = match label {
            Some(key) => Action::Label(key),
            None if FIELDS.contains(&text) => Action::Field(text),
            None => {
                return Err(format!(
                    "unknown template action {{{{ {text} }}}}; use one of {}, or label \"key\"",
                    FIELDS.join(", ")
                ));
            }
        };
        rendered.push_str(&rest[..open]);
        rendered.push_str(&value(action)?);
        rest = &after[close + 2..];
    }
    if rest.contains("}}") {
        return Err("has a '}}' without a matching '{{'".into());
    }
    rendered.push_str(rest);
    Ok(rendered)
}
