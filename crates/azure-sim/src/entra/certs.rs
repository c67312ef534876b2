//! Self-signed certificates registered as app credentials ("Certificates &
//! secrets" in the app registration), and the thumbprints Entra matches a
//! client assertion's `x5t` / `x5t#S256` header against
//! (identity-platform/certificate-credentials).

use rand::Rng;
use rcgen::{date_time_ymd, CertificateParams, DistinguishedName, DnType, KeyPair, SerialNumber};
use rustls::pki_types::PrivatePkcs8KeyDer;
use sha2::{Digest, Sha256};

use super::keys::RsaKey;
use crate::errors::SimError;

/// A certificate registered on an app, with what verification needs.
pub(crate) struct AppCertificate {
    /// `CERTIFICATE` then `PRIVATE KEY` (PKCS#8), the layout azure-identity's
    /// `certificate_path` and msal's `private_key` accept.
    pub pem: String,
    /// SHA-1 of the DER certificate: the `x5t` header and the portal's thumbprint.
    pub sha1: Vec<u8>,
    /// SHA-256 of the DER certificate: the `x5t#S256` header.
    pub sha256: Vec<u8>,
    /// DER `RSAPublicKey` to verify assertion signatures with.
    pub public_key: Vec<u8>,
}

impl AppCertificate {
    /// Issues a self-signed certificate for `key`, as `New-SelfSignedCertificate`
    /// or `openssl req -x509` would for an app registration.
    pub fn issue(key: &RsaKey, common_name: &str) -> Result<Self, SimError> {
        let der = PrivatePkcs8KeyDer::from(key.pkcs8_der.clone());
        let pair = KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_RSA_SHA256)?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        dn.push(DnType::OrganizationName, "tenantwatch");
        params.distinguished_name = dn;
        params.not_before = date_time_ymd(2024, 1, 1);
        params.not_after = date_time_ymd(2034, 1, 1);
        // A random serial keeps certificates of different simulator runs apart
        // even though they share the process's key.
        params.serial_number = Some(SerialNumber::from(rand::thread_rng().gen::<u64>() >> 1));
        let cert = params.self_signed(&pair)?;
        let cert_der = cert.der().to_vec();
        Ok(Self {
            pem: format!("{}{}", cert.pem(), pair.serialize_pem()),
            sha1: ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &cert_der)
                .as_ref()
                .to_vec(),
            sha256: Sha256::digest(&cert_der).to_vec(),
            public_key: key.public_der(),
        })
    }

    /// Upper-case hex SHA-1 thumbprint, as the Entra portal shows it.
    pub fn thumbprint_hex(&self) -> String {
        hex::encode_upper(&self.sha1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entra::keys;

    #[test]
    fn certificate_pem_has_both_blocks_and_thumbprints_match_the_der() {
        let ks = keys::key_set().unwrap();
        let c = AppCertificate::issue(&ks.identity, "test").unwrap();
        assert!(c.pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(c.pem.contains("-----BEGIN PRIVATE KEY-----"));
        assert_eq!(c.sha1.len(), 20);
        assert_eq!(c.sha256.len(), 32);
        assert_eq!(c.thumbprint_hex().len(), 40);
        assert_eq!(c.public_key, ks.identity.public_der());
        let again = AppCertificate::issue(&ks.identity, "test").unwrap();
        assert_ne!(c.sha256, again.sha256, "serials differ, so thumbprints do");
    }
}
