//! Hiding private keys from readers who may not see secrets: a data source that can hold a
//! private key (a MeshGateway listener's certificates, a `provided` Mesh CA's key, a
//! MeshExternalService's client key) keeps its shape but loses its inline content.

use crate::resource::{Resource, Spec};
use crate::types::DataSource;

/// What replaces inline key material.
pub const REDACTED: &str = "<redacted: reading key material needs the view-secrets permission>";

fn redact(source: &mut DataSource) -> bool {
    let mut changed = false;
    for value in [&mut source.inline, &mut source.inline_string] {
        if value.is_some() {
            *value = Some(REDACTED.to_string());
            changed = true;
        }
    }
    changed
}

/// Replaces inline private key material in `resource`; whether anything was replaced.
/// References (`secret`, `file`) stay: they name where the key is, not the key.
pub fn redact_key_material(resource: &mut Resource) -> bool {
    let mut changed = false;
    match &mut resource.spec {
        Spec::Mesh(mesh) => {
            for backend in mesh.mtls.iter_mut().flat_map(|m| m.backends.iter_mut()) {
                if let Some(key) = backend.conf.as_mut().and_then(|c| c.key.as_mut()) {
                    changed |= redact(key);
                }
            }
        }
        Spec::MeshGateway(gateway) => {
            for listener in gateway.conf.iter_mut().flat_map(|c| c.listeners.iter_mut()) {
                for source in listener
                    .tls
                    .iter_mut()
                    .flat_map(|t| t.certificates.iter_mut())
                {
                    changed |= redact(source);
                }
            }
        }
        Spec::MeshExternalService(service) => {
            let key = service
                .tls
                .as_mut()
                .and_then(|t| t.verification.as_mut())
                .and_then(|v| v.client_key.as_mut());
            if let Some(key) = key {
                changed |= redact(key);
            }
        }
        _ => {}
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Resource {
        crate::parse_documents(yaml)
            .remove(0)
            .outcome
            .expect("valid")
    }

    #[test]
    fn inline_keys_are_replaced_and_references_kept() {
        let mut gateway = parse(
            "type: MeshGateway\nmesh: default\nname: edge\nselectors:\n- match:\n    kuma.io/service: edge\nconf:\n  listeners:\n  - port: 8443\n    protocol: HTTPS\n    hostname: a.example.com\n    tls:\n      mode: TERMINATE\n      certificates:\n      - inlineString: \"-----BEGIN PRIVATE KEY-----\"\n      - secret: edge-cert\n",
        );
        assert!(redact_key_material(&mut gateway));
        let Spec::MeshGateway(spec) = &gateway.spec else {
            unreachable!()
        };
        let certificates = &spec.conf.as_ref().unwrap().listeners[0]
            .tls
            .as_ref()
            .unwrap()
            .certificates;
        assert_eq!(certificates[0].inline_string.as_deref(), Some(REDACTED));
        assert_eq!(certificates[1].secret.as_deref(), Some("edge-cert"));

        let mut mesh = parse(
            "type: Mesh\nname: m\nmtls:\n  enabledBackend: p\n  backends:\n  - name: p\n    type: provided\n    conf:\n      cert:\n        inline: Y2VydA==\n      key:\n        inline: a2V5\n",
        );
        assert!(redact_key_material(&mut mesh));
        let Spec::Mesh(spec) = &mesh.spec else {
            unreachable!()
        };
        let conf = spec.mtls.as_ref().unwrap().backends[0]
            .conf
            .as_ref()
            .unwrap();
        assert_eq!(conf.key.as_ref().unwrap().inline.as_deref(), Some(REDACTED));
        assert_eq!(
            conf.cert.as_ref().unwrap().inline.as_deref(),
            Some("Y2VydA=="),
            "certificates are public"
        );

        let mut plain = parse("type: Mesh\nname: plain\n");
        assert!(!redact_key_material(&mut plain));
    }
}
