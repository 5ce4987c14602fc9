//! TLS settings for `mqtts://`: a rustls client configuration on the `ring` crypto provider.
//!
//! `ring` is the provider every build already links (the embedded broker's `mqtt5` and
//! rumqttc's `rustls-webpki` bring it), so choosing it keeps one provider per binary
//! (docs/tls.md has the comparison and the decision). It is named explicitly for each
//! configuration rather than taken from rustls's process-wide default, so which provider the
//! daemon's TLS uses never depends on the feature set another crate enabled.
//!
//! The files are read again for every connection attempt ([`client_config`] is cheap), so a
//! renewed certificate is picked up on the next reconnect, and a file that is missing at
//! start-up is retried with the link's backoff instead of stopping the service.

use rustls::ClientConfig;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Certificate files for a TLS connection to the broker; every path is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// CA certificates (PEM) that may sign the broker's certificate; `None` uses the system's.
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain (PEM), for brokers that require one (mutual TLS).
    pub client_cert: Option<PathBuf>,
    /// Private key (PEM, PKCS#8, SEC1 or PKCS#1) of the client certificate.
    pub client_key: Option<PathBuf>,
}

/// Why a TLS configuration could not be built. Never carries key material.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsError {
    /// A file could not be read or holds no usable PEM section of the expected kind.
    #[error("{what} {path}: {reason}")]
    File {
        /// Which setting the file comes from (`mqtt.ca_file`, ...).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The system CA store gave no certificates and `mqtt.ca_file` is not set.
    #[error("no system CA certificates found; set mqtt.ca_file")]
    NoSystemRoots,
    /// Only one of `mqtt.client_cert` and `mqtt.client_key` is set.
    #[error("mqtt.client_cert and mqtt.client_key must be set together")]
    HalfClientIdentity,
    /// rustls refused the combination (for instance a key that does not fit the certificate).
    #[error("TLS settings refused: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Builds the rustls client configuration for `files` on the `ring` provider.
pub(crate) fn client_config(files: &TlsFiles) -> Result<Arc<ClientConfig>, TlsError> {
    let roots = root_store(files.ca_file.as_deref())?;
    let builder = ClientConfig::builder_with_provider(Arc::new(provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let config = match (&files.client_cert, &files.client_key) {
        (None, None) => builder.with_no_client_auth(),
        (Some(cert), Some(key)) => {
            let chain = read_certificates("mqtt.client_cert", cert)?;
            let key = read_private_key(key)?;
            builder.with_client_auth_cert(chain, key)?
        }
        _ => return Err(TlsError::HalfClientIdentity),
    };
    Ok(Arc::new(config))
}

/// The crypto provider of every TLS connection the daemon makes: `ring`, with rustls's default
/// cipher suites and key-exchange groups.
fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

fn root_store(ca_file: Option<&Path>) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            for certificate in read_certificates("mqtt.ca_file", path)? {
                roots.add(certificate).map_err(|error| TlsError::File {
                    what: "mqtt.ca_file",
                    path: path.to_owned(),
                    reason: format!("not a usable CA certificate: {error}"),
                })?;
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            for error in &native.errors {
                tracing::warn!(%error, "a system CA certificate could not be loaded");
            }
            // Some distribution bundles carry certificates webpki cannot parse; skip those.
            let (added, ignored) = roots.add_parsable_certificates(native.certs);
            tracing::debug!(added, ignored, "system CA certificates loaded");
            if roots.is_empty() {
                return Err(TlsError::NoSystemRoots);
            }
        }
    }
    Ok(roots)
}

fn read_certificates(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let file_error = |reason: String| TlsError::File {
        what,
        path: path.to_owned(),
        reason,
    };
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|error| file_error(describe_pem_error(&error)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| file_error(describe_pem_error(&error)))?;
    if certificates.is_empty() {
        return Err(file_error("no PEM CERTIFICATE section".into()));
    }
    Ok(certificates)
}

fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|error| TlsError::File {
        what: "mqtt.client_key",
        path: path.to_owned(),
        reason: match error {
            pem::Error::NoItemsFound => "no PEM PRIVATE KEY section".into(),
            other => describe_pem_error(&other),
        },
    })
}

/// A PEM error in words, without echoing file contents (a key file's bytes are secret).
fn describe_pem_error(error: &pem::Error) -> String {
    match error {
        pem::Error::Io(io) => format!("cannot read: {io}"),
        pem::Error::NoItemsFound => "no PEM section found".into(),
        pem::Error::MissingSectionEnd { .. } | pem::Error::IllegalSectionStart { .. } => {
            "malformed PEM (a section is not closed properly)".into()
        }
        pem::Error::Base64Decode(_) => "malformed PEM (bad base64)".into(),
        _ => "malformed PEM".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_ca_file_names_the_setting_and_the_path() {
        let files = TlsFiles {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..TlsFiles::default()
        };
        let message = client_config(&files).unwrap_err().to_string();
        assert!(message.starts_with("mqtt.ca_file /nonexistent/ca.pem: cannot read"));
    }

    #[test]
    fn ca_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "just text\n").expect("write");
        let message = client_config(&TlsFiles {
            ca_file: Some(path),
            ..TlsFiles::default()
        })
        .unwrap_err()
        .to_string();
        assert!(message.contains("no PEM CERTIFICATE section"), "{message}");
    }

    #[test]
    fn half_a_client_identity_is_refused() {
        let files = TlsFiles {
            client_key: Some("/k.pem".into()),
            ..TlsFiles::default()
        };
        assert!(matches!(
            client_config(&files),
            Err(TlsError::HalfClientIdentity) | Err(TlsError::NoSystemRoots)
        ));
    }

    #[test]
    fn key_file_contents_never_reach_the_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let key = dir.path().join("key.pem");
        std::fs::write(
            &key,
            "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n",
        )
        .expect("write");
        let message = read_private_key(&key).unwrap_err().to_string();
        assert!(message.starts_with("mqtt.client_key"), "{message}");
        assert!(!message.contains("c2VjcmV0"), "{message}");
    }
}
