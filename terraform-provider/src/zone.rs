//! `atoll_zone`: the Zone resource (through the generic resource) plus the KDS client
//! certificate the global issues for it, re-issued when it nears expiry.

use serde_json::json;

use crate::client::Client;
use crate::diag;
use crate::kinds::{Kind, ZONE_FIELDS};
use crate::resource::{self, Outcome, Private};
use crate::tfplugin6::{AttributePath, Diagnostic};
use crate::value::Value;

pub const KIND: Kind = Kind {
    type_name: "atoll_zone",
    api_type: "Zone",
    plural: "zones",
    in_mesh: false,
    fields: ZONE_FIELDS,
    description: "A Zone.",
};

/// Attributes the API does not hold: they are carried over from the prior state.
const CERTIFICATE: [&str; 5] = [
    "certificate",
    "key",
    "ca_certificate",
    "serial",
    "expires_at",
];
const DEFAULT_RENEW_BEFORE_HOURS: i64 = 720;

fn set(value: &mut Value, name: &str, to: Value) {
    if let Value::Map(map) = value {
        map.insert(name.into(), to);
    }
}

fn renew_before_hours(state: &Value) -> i64 {
    match state.get("renew_before_hours") {
        Value::Number(n) => n.as_i64().unwrap_or(DEFAULT_RENEW_BEFORE_HOURS),
        _ => DEFAULT_RENEW_BEFORE_HOURS,
    }
}

/// Whether the certificate in `state` is missing or expires within `window`'s renewal
/// window (the configuration's: a changed window applies to the plan that changes it).
pub fn needs_certificate(state: &Value, window: &Value, now: i64) -> bool {
    let Some(expires) = state
        .get("expires_at")
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
    else {
        return true;
    };
    state.get("certificate").is_null()
        || expires.timestamp() - now < renew_before_hours(window) * 3600
}

pub fn plan(prior: &Value, mut proposed: Value) -> (Value, Vec<AttributePath>) {
    let mut replace = Vec::new();
    let renamed = !prior.is_null() && prior.get("name") != proposed.get("name");
    if renamed {
        replace.push(crate::provider::path_to("name"));
    }
    if prior.is_null()
        || renamed
        || needs_certificate(prior, &proposed, chrono::Utc::now().timestamp())
    {
        for name in CERTIFICATE {
            set(&mut proposed, name, Value::Unknown);
        }
    }
    (proposed, replace)
}

pub async fn apply(client: &Client, prior: Value, planned: Value, private: Private) -> Outcome {
    if planned.is_null() {
        return resource::delete(client, &KIND, prior, private).await;
    }
    let mut outcome = if prior.is_null() {
        resource::create(client, &KIND, planned.clone()).await
    } else {
        resource::update(client, &KIND, prior.clone(), planned.clone(), private).await
    };
    if !outcome.diagnostics.is_empty() {
        return outcome;
    }
    if matches!(planned.get("certificate"), Value::Unknown) {
        let name = planned.get("name").as_str().unwrap_or_default().to_string();
        match issue(client, &name).await {
            Ok(values) => {
                for (attr, value) in values {
                    set(&mut outcome.state, attr, value);
                }
            }
            Err(diagnostics) => {
                for attr in CERTIFICATE {
                    let kept = prior.get(attr).clone();
                    set(&mut outcome.state, attr, kept);
                }
                outcome.diagnostics = diagnostics;
            }
        }
    }
    outcome
}

async fn issue(client: &Client, zone: &str) -> Result<Vec<(&'static str, Value)>, Vec<Diagnostic>> {
    let summary = format!("issuing zone {zone:?}'s certificate");
    let issued = client
        .post(&format!("/zones/{zone}/certificate"), &json!({}))
        .await
        .map_err(|err| diag::from_api(Some(&KIND), &summary, &err))?;
    let text = |field: &str| issued[field].as_str().map(str::to_string);
    let (Some(certificate), Some(key), Some(ca)) =
        (text("certificate"), text("key"), text("caCertificate"))
    else {
        return Err(vec![diag::error(
            summary,
            "the answer lacks certificate, key or caCertificate",
        )]);
    };
    let expires = expiry(&certificate).map_err(|e| vec![diag::error(summary.clone(), e)])?;
    Ok(vec![
        ("certificate", Value::String(certificate)),
        ("key", Value::String(key)),
        ("ca_certificate", Value::String(ca)),
        ("serial", Value::String(text("serial").unwrap_or_default())),
        ("expires_at", Value::String(expires)),
    ])
}

/// The certificate's `notAfter`, RFC 3339.
pub fn expiry(pem: &str) -> Result<String, String> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|e| e.to_string())?;
    let cert = pem.parse_x509().map_err(|e| e.to_string())?;
    let seconds = cert.validity().not_after.timestamp();
    chrono::DateTime::from_timestamp(seconds, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .ok_or_else(|| format!("notAfter {seconds} is out of range"))
}

pub async fn read(client: &Client, state: Value, private: Private) -> Outcome {
    let kept: Vec<(&str, Value)> = CERTIFICATE
        .iter()
        .chain(["renew_before_hours"].iter())
        .map(|a| (*a, state.get(a).clone()))
        .collect();
    let mut outcome = resource::read(client, &KIND, state, private).await;
    if !outcome.state.is_null() {
        for (attr, value) in kept {
            set(&mut outcome.state, attr, value);
        }
    }
    outcome
}

/// An imported zone has no certificate in state: the next plan issues one.
pub async fn import(client: &Client, id: &str) -> Result<(Value, Private), Vec<Diagnostic>> {
    let (mut state, private) = resource::import(client, &KIND, id).await?;
    for attr in CERTIFICATE.iter().chain(["renew_before_hours"].iter()) {
        set(&mut state, attr, Value::Null);
    }
    Ok((state, private))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_is_renewed_inside_the_window_only() {
        let mut state = Value::Map(Default::default());
        assert!(needs_certificate(&state, &state, 0), "no certificate yet");
        set(&mut state, "certificate", Value::str("PEM"));
        set(&mut state, "expires_at", Value::str("1970-02-01T00:00:00Z"));
        let expires = 31 * 24 * 3600;
        assert!(!needs_certificate(&state, &state, expires - 721 * 3600));
        assert!(needs_certificate(&state, &state, expires - 719 * 3600));
        let mut window = state.clone();
        set(&mut window, "renew_before_hours", Value::Number(1.into()));
        assert!(!needs_certificate(&state, &window, expires - 2 * 3600));
    }
}
