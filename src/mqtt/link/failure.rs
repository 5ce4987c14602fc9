//! Failed connection attempts: a short machine-readable name for each cause (the `problem` log
//! field) and a log that warns when the cause changes and stays at debug for repeats, so a
//! broker that stays unreachable for days does not flood the journal.

use rumqttc::v5::ConnectionError;
use rumqttc::v5::mqttbytes::v5::ConnectReturnCode;

/// Logs failed connection attempts: a warning when the cause changes, debug for repeats.
/// Replaced by a fresh one on every ConnAck.
#[derive(Default)]
pub(super) struct FailureLog {
    last_reason: Option<String>,
    attempts: u64,
}

impl FailureLog {
    /// Logs one failed attempt to `broker`, named `problem`, described by `reason`.
    pub(super) fn record(&mut self, broker: &str, problem: &'static str, reason: &str) {
        self.attempts += 1;
        let attempts = self.attempts;
        if self.last_reason.as_deref() == Some(reason) {
            tracing::debug!(%broker, problem, error = %reason, attempts, "mqtt connection attempt failed");
        } else {
            tracing::warn!(%broker, problem, error = %reason, attempts, "mqtt connection attempt failed");
            self.last_reason = Some(reason.to_owned());
        }
    }
}

/// A short machine-readable name for why a connection attempt failed (the `problem` log field).
pub(super) fn problem_of(error: &ConnectionError) -> &'static str {
    match error {
        ConnectionError::ConnectionRefused(
            ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized,
        ) => "not_authorized",
        ConnectionError::ConnectionRefused(_) => "refused_by_broker",
        ConnectionError::Tls(tls_error) => match rustls_error(tls_error) {
            Some(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Some(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForNameContext { .. },
            )) => "tls_certificate_name_mismatch",
            Some(rustls::Error::InvalidCertificate(_)) => "tls_certificate_rejected",
            Some(rustls::Error::AlertReceived(_)) => "tls_rejected_by_broker",
            _ => "tls_handshake_failed",
        },
        ConnectionError::Io(_) => "unreachable",
        ConnectionError::Timeout(_) => "timeout",
        _ => "connection_failed",
    }
}

/// The rustls error inside a TLS failure, if it was one.
fn rustls_error(error: &rumqttc::v5::TlsError) -> Option<&rustls::Error> {
    match error {
        rumqttc::v5::TlsError::TLS(inner) => Some(inner),
        rumqttc::v5::TlsError::Io(io) => io.get_ref()?.downcast_ref::<rustls::Error>(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_failures_are_named() {
        let refused = ConnectionError::ConnectionRefused(ConnectReturnCode::NotAuthorized);
        assert_eq!(problem_of(&refused), "not_authorized");
        let bad_password =
            ConnectionError::ConnectionRefused(ConnectReturnCode::BadUserNamePassword);
        assert_eq!(problem_of(&bad_password), "not_authorized");
        let untrusted = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, untrusted);
        let tls = ConnectionError::Tls(rumqttc::v5::TlsError::Io(io));
        assert_eq!(problem_of(&tls), "tls_certificate_rejected");
        let wrong_name =
            rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName);
        let tls = ConnectionError::Tls(rumqttc::v5::TlsError::TLS(wrong_name));
        assert_eq!(problem_of(&tls), "tls_certificate_name_mismatch");
        let down = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(problem_of(&ConnectionError::Io(down)), "unreachable");
    }
}
