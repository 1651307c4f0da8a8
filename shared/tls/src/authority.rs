//! A certificate authority that issues server and zone client certificates.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

use crate::TlsError;

/// A CA with its key, able to issue certificates.
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
        params.not_after = years_from_now(10);
        let cert_pem = params.self_signed(&key)?.pem();
        Ok(Authority {
            issuer: Issuer::new(params, key),
            cert_pem,
        })
    }

    /// A CA kept elsewhere (e.g. in the store), loaded to issue certificates again.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, TlsError> {
        let key = KeyPair::from_pem(key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key)?;
        Ok(Authority {
            issuer,
            cert_pem: cert_pem.to_string(),
        })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

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
        params.not_after = years_from_now(10);
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

impl Authority {
    /// A client certificate naming zone `zone` (SAN URI `spiffe://atoll/zone/<zone>`, CN
    /// `<zone>`), valid for a year; returns (certificate PEM, key PEM).
    pub fn issue_client(&self, zone: &str) -> Result<(String, String), TlsError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = name(zone);
        let uri = format!("{ZONE_URI_PREFIX}{zone}");
        params.subject_alt_names = vec![SanType::URI(uri.as_str().try_into()?)];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.not_after = years_from_now(1);
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

/// Zone identities are URIs under this prefix.
pub const ZONE_URI_PREFIX: &str = "spiffe://atoll/zone/";

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

fn years_from_now(years: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc() + time::Duration::days(365 * years)
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
    params.not_after = years_from_now(10);
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}
