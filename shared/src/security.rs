//! Turns the security settings into what the transports need: a rustls client config for TLS
//! and a SASL config for rskafka's data path.
//!
//! Loading happens once at start-up; nothing here opens a socket. Without `SSL_CA_LOCATION`
//! the system's roots are used, which is what a managed cluster with a public CA needs.

use std::sync::Arc;

use crate::settings::{SaslMechanism, SecuritySettings};

#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error("SSL_CA_LOCATION {path}: {reason}")]
    CaFile { path: String, reason: String },
    #[error("no usable CA certificates in the system store: {0}")]
    SystemRoots(String),
    #[error("TLS setup: {0}")]
    Tls(String),
}

/// A rustls client configuration trusting the configured CA file or the system's roots.
pub fn tls_client_config(
    security: &SecuritySettings,
) -> Result<Arc<rustls::ClientConfig>, SecurityError> {
    let mut roots = rustls::RootCertStore::empty();
    match &security.ca_location {
        Some(path) => {
            let shown = path.display().to_string();
            let ca_error = |reason: String| SecurityError::CaFile {
                path: shown.clone(),
                reason,
            };
            let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
            let mut reader = std::io::BufReader::new(pem.as_slice());
            for certificate in rustls_pemfile::certs(&mut reader) {
                let certificate = certificate.map_err(|e| ca_error(e.to_string()))?;
                roots
                    .add(certificate)
                    .map_err(|e| ca_error(e.to_string()))?;
            }
            if roots.is_empty() {
                return Err(ca_error("holds no PEM certificate".into()));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for certificate in found.certs {
                // A single unparsable system certificate should not stop TLS altogether.
                let _ = roots.add(certificate);
            }
            if roots.is_empty() {
                return Err(SecurityError::SystemRoots(format!("{:?}", found.errors)));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SecurityError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The SASL configuration rskafka's data path uses, if the settings ask for SASL.
pub fn rskafka_sasl(security: &SecuritySettings) -> Option<rskafka::client::SaslConfig> {
    use rskafka::client::{Credentials, SaslConfig};
    let sasl = security.sasl.as_ref()?;
    let credentials = Credentials::new(sasl.username.clone(), sasl.password.clone());
    Some(match sasl.mechanism {
        SaslMechanism::Plain => SaslConfig::Plain(credentials),
        SaslMechanism::ScramSha256 => SaslConfig::ScramSha256(credentials),
        SaslMechanism::ScramSha512 => SaslConfig::ScramSha512(credentials),
    })
}
