//! A certificate authority that issues server and zone client certificates.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::TlsError;

/// A CA with its key, able to issue certificates. Deliberately not `Debug`, so the key cannot
/// end up in a log line by accident.
pub struct Authority {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
}

impl Authority {
    /// A new self-signed CA named `common_name` (ECDSA P-256, ten years).
    pub fn generate(common_name: &str) -> Result<Self, TlsError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = name(common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        validity(&mut params, 10);
        let cert_pem = params.self_signed(&key)?.pem();
        Ok(Authority {
            issuer: Issuer::new(params, key),
            cert_pem,
        })
    }

    /// A CA kept elsewhere (e.g. in the store), loaded to issue certificates again.
    ///
    /// Refuses a certificate that is not a CA and a key that does not belong to it: rcgen would
    /// accept both and then sign certificates that chain to nothing, which would only show up
    /// later as zones failing their handshakes.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, TlsError> {
        let key = KeyPair::from_pem(key_pem)?;
        let der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| TlsError::InvalidCa(format!("no PEM certificate: {e}")))?;
        let (_, x509) = X509Certificate::from_der(&der)
            .map_err(|e| TlsError::InvalidCa(format!("unreadable certificate: {e}")))?;
        if !x509.is_ca() {
            return Err(TlsError::InvalidCa("the certificate is not a CA".into()));
        }
        if x509.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
            return Err(TlsError::InvalidCa(
                "the private key does not belong to the certificate".into(),
            ));
        }
        let issuer = Issuer::from_ca_cert_der(&der, key)?;
        Ok(Authority {
            issuer,
            cert_pem: cert_pem.to_string(),
        })
    }

    /// The CA certificate (PEM): what peers trust to verify certificates this CA issued.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub(crate) fn issuer(&self) -> &Issuer<'static, KeyPair> {
        &self.issuer
    }

    /// The CA's private key (PKCS#8 PEM). Secret: store it, never log it.
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// A server certificate for `hosts` (DNS names or IP addresses), valid for ten years;
    /// returns (certificate chain PEM, key PEM).
    pub fn issue_server(&self, hosts: &[String]) -> Result<(String, String), TlsError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(hosts.to_vec())?;
        params.distinguished_name = name(hosts.first().map_or("atoll", String::as_str));
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        validity(&mut params, 10);
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

impl Authority {
    /// A KDS client certificate for zone `zone`, valid for a year; returns (certificate PEM,
    /// key PEM). The zone's name is its identity: SAN URI `spiffe://atoll/zone/<zone>` (what
    /// [`zone_from_certificate`](crate::zone_from_certificate) reads back) and CN `<zone>` (for
    /// people reading the certificate). A short validity bounds how long a leaked zone key is
    /// useful; rotating means issuing a new one.
    pub fn issue_client(&self, zone: &str) -> Result<(String, String), TlsError> {
        let key = KeyPair::generate()?;
        let cert = zone_params(zone)?.signed_by(&key, &self.issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// A KDS client certificate for zone `zone` for the key of the PEM certificate signing
    /// request `csr_pem`, so the zone's key never leaves the zone. The request's signature is
    /// checked (it proves the requester holds the key); its subject and extensions are
    /// ignored: the identity is always exactly the zone's, as [`Authority::issue_client`]
    /// writes it.
    pub fn issue_client_for_csr(&self, zone: &str, csr_pem: &str) -> Result<String, TlsError> {
        let params = zone_params(zone)?;
        let csr = rcgen::CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| TlsError::InvalidCsr(e.to_string()))?;
        let cert = params.signed_by(&csr.public_key, &self.issuer)?;
        Ok(cert.pem())
    }
}

/// What every zone certificate says: its zone as SAN URI and CN, client authentication only,
/// valid for a year.
fn zone_params(zone: &str) -> Result<CertificateParams, TlsError> {
    // Checked here, not only by callers: whatever is signed becomes an identity the global
    // trusts, so a name that could not be read back unambiguously must never be issued.
    if !is_zone_name(zone) {
        return Err(TlsError::InvalidZone(zone.to_string()));
    }
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = name(zone);
    let uri = format!("{ZONE_URI_PREFIX}{zone}");
    params.subject_alt_names = vec![SanType::URI(uri.as_str().try_into()?)];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    validity(&mut params, 1);
    Ok(params)
}

/// Whether `zone` can be a zone identity: a DNS label in lower case (1-63 of `a-z`, `0-9`,
/// `-`, not starting or ending with `-`), as zone names are everywhere else in Atoll. Kept
/// here rather than borrowed from the model so this crate stays a leaf.
pub fn is_zone_name(zone: &str) -> bool {
    !zone.is_empty()
        && zone.len() <= 63
        && zone
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !zone.starts_with('-')
        && !zone.ends_with('-')
}

/// Zone identities are URIs under this prefix.
pub const ZONE_URI_PREFIX: &str = "spiffe://atoll/zone/";

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

/// Valid from an hour ago (peers' clocks may lag ours) for `years` years. Set explicitly:
/// rcgen's default start is 1975, which would make a "one year" certificate look decades old
/// and hide when it was really issued.
fn validity(params: &mut CertificateParams, years: i64) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(365 * years);
}

/// A self-signed certificate for `hostnames` (like `kumactl generate tls-certificate`), for
/// server or client authentication, valid ten years; returns (certificate PEM, key PEM).
pub fn self_signed(hostnames: &[String], client: bool) -> Result<(String, String), TlsError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(hostnames.to_vec())?;
    params.distinguished_name = name(hostnames.first().map_or("atoll", String::as_str));
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![if client {
        ExtendedKeyUsagePurpose::ClientAuth
    } else {
        ExtendedKeyUsagePurpose::ServerAuth
    }];
    validity(&mut params, 10);
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(pem: &str) -> Vec<u8> {
        CertificateDer::from_pem_slice(pem.as_bytes())
            .unwrap()
            .to_vec()
    }

    fn now_unix() -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp()
    }

    #[test]
    fn client_certificates_are_for_client_auth_only_and_last_a_year() {
        let ca = Authority::generate("kds").unwrap();
        let (cert, key) = ca.issue_client("zone-1").unwrap();
        assert!(key.contains("PRIVATE KEY"));
        let der = parsed(&cert);
        let (_, x509) = X509Certificate::from_der(&der).unwrap();
        let cn: Vec<_> = x509
            .subject()
            .iter_common_name()
            .map(|cn| cn.as_str().unwrap().to_string())
            .collect();
        assert_eq!(cn, ["zone-1"]);
        let eku = x509.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth && !eku.server_auth);
        assert!(!x509.is_ca());
        let days = (x509.validity().not_after.timestamp() - x509.validity().not_before.timestamp())
            / 86_400;
        assert_eq!(days, 365, "valid for {days} days");
        let age = now_unix() - x509.validity().not_before.timestamp();
        assert!((0..=2 * 3600).contains(&age), "issued {age}s ago");
    }

    #[test]
    fn csr_certificates_carry_the_zone_identity_and_the_requesters_key() {
        let ca = Authority::generate("kds").unwrap();
        let key = KeyPair::generate().unwrap();
        let mut request = CertificateParams::new(vec!["evil.example".to_string()]).unwrap();
        request.distinguished_name = name("zone-2");
        let csr = request.serialize_request(&key).unwrap().pem().unwrap();
        let cert = ca.issue_client_for_csr("zone-1", &csr).unwrap();
        let der = parsed(&cert);
        let (_, x509) = X509Certificate::from_der(&der).unwrap();
        assert_eq!(
            x509.public_key().subject_public_key.data.as_ref(),
            key.public_key_raw()
        );
        // The zone comes from the request path, never from the CSR's subject or SANs.
        assert_eq!(
            crate::verify_zone_certificate(ca.cert_pem(), &cert).unwrap(),
            "zone-1"
        );
        let sans = x509.subject_alternative_name().unwrap().unwrap();
        assert_eq!(sans.value.general_names.len(), 1);
        let err = ca.issue_client_for_csr("zone-1", "garbage").err().unwrap();
        assert!(matches!(err, TlsError::InvalidCsr(_)), "{err}");
        assert!(matches!(
            ca.issue_client_for_csr("Zone_1", &csr),
            Err(TlsError::InvalidZone(_))
        ));
    }

    #[test]
    fn invalid_zone_names_are_never_issued() {
        let ca = Authority::generate("kds").unwrap();
        for zone in ["", "Zone-1", "zone_1", "a/b", "-a", "a-", &"a".repeat(64)] {
            assert!(
                matches!(ca.issue_client(zone), Err(TlsError::InvalidZone(_))),
                "{zone:?} must be refused"
            );
        }
        assert!(is_zone_name("zone-1") && is_zone_name(&"a".repeat(63)));
    }

    #[test]
    fn a_ca_is_loaded_only_with_its_own_key() {
        let ca = Authority::generate("kds").unwrap();
        let other = Authority::generate("other").unwrap();
        let err = Authority::from_pem(ca.cert_pem(), &other.key_pem()).err();
        assert!(
            matches!(&err, Some(TlsError::InvalidCa(m)) if m.contains("does not belong")),
            "{:?}",
            err.map(|e| e.to_string())
        );
        let (leaf, leaf_key) = ca.issue_server(&["localhost".into()]).unwrap();
        let err = Authority::from_pem(&leaf, &leaf_key).err();
        assert!(
            matches!(&err, Some(TlsError::InvalidCa(m)) if m.contains("not a CA")),
            "{:?}",
            err.map(|e| e.to_string())
        );
        assert!(Authority::from_pem("garbage", &ca.key_pem()).is_err());
        assert!(Authority::from_pem(ca.cert_pem(), "garbage").is_err());
        let reloaded = Authority::from_pem(ca.cert_pem(), &ca.key_pem()).unwrap();
        assert_eq!(reloaded.cert_pem(), ca.cert_pem());
        assert_eq!(reloaded.key_pem(), ca.key_pem());
    }
}
