//! `[embedded_broker]`: who may connect to the in-process broker of `run --embedded-broker`,
//! and the one rule about where it may listen (loopback, unless clients must log in).

use super::error::ConfigIssue;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Clients the embedded broker accepts at once by default: the daemon, Home Assistant, a few
/// `massaged ctl` or debugging clients. A small number bounds what a flood of connections costs.
pub(crate) const DEFAULT_MAX_CLIENTS: usize = 16;

/// `[embedded_broker]`
///
/// `Debug` is written by hand so the password never reaches a log line.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbeddedBrokerSection {
    /// The one user clients log in as (the daemon itself included); none means anonymous
    /// clients, which is allowed only on a loopback address.
    pub(crate) username: Option<String>,
    /// That user's password (prefer `password_file`).
    pub(crate) password: Option<String>,
    /// File whose first line is the password (works with systemd `LoadCredential=`).
    pub(crate) password_file: Option<PathBuf>,
    /// Clients connected at once.
    pub(crate) max_clients: usize,
}

impl Default for EmbeddedBrokerSection {
    fn default() -> Self {
        EmbeddedBrokerSection {
            username: None,
            password: None,
            password_file: None,
            max_clients: DEFAULT_MAX_CLIENTS,
        }
    }
}

impl fmt::Debug for EmbeddedBrokerSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Destructured so that a new field cannot be added without deciding here.
        let EmbeddedBrokerSection {
            username,
            password,
            password_file,
            max_clients,
        } = self;
        f.debug_struct("EmbeddedBrokerSection")
            .field("username", username)
            .field("password", &password.as_ref().map(|_| "<redacted>"))
            .field("password_file", password_file)
            .field("max_clients", max_clients)
            .finish()
    }
}

/// A user name and password the embedded broker accepts.
#[derive(Clone, PartialEq, Eq)]
pub struct BrokerCredentials {
    /// User name.
    pub username: String,
    /// Password, in clear: the daemon logs in with it too.
    pub password: String,
}

impl fmt::Debug for BrokerCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokerCredentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Where the embedded broker listens and who may connect, checked: a non-loopback address
/// always comes with credentials. The only way to build one is [`BrokerAccess::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAccess {
    addr: SocketAddr,
    credentials: Option<BrokerCredentials>,
    max_clients: usize,
}

/// Why the embedded broker may not listen where it was asked to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExposureError {
    /// A non-loopback address without authentication.
    #[error(
        "embedded mqtt broker: refusing to listen on {0} without authentication: anyone who can \
         reach this address could start the motors. Either listen on loopback \
         (`--embedded-broker` alone means 127.0.0.1:1883), or set `username` and `password` \
         (or `password_file`) in the [embedded_broker] section of the configuration"
    )]
    Unauthenticated(SocketAddr),
    /// The password file could not be read.
    #[error("embedded_broker.password_file: cannot read {file}: {message}")]
    PasswordFile {
        /// The file named in the configuration.
        file: PathBuf,
        /// Why reading failed.
        message: String,
    },
}

impl BrokerAccess {
    /// Checks the one exposure rule: anonymous clients only on a loopback address.
    pub fn new(
        addr: SocketAddr,
        credentials: Option<BrokerCredentials>,
        max_clients: usize,
    ) -> Result<BrokerAccess, ExposureError> {
        if credentials.is_none() && !addr.ip().is_loopback() {
            return Err(ExposureError::Unauthenticated(addr));
        }
        Ok(BrokerAccess {
            addr,
            credentials,
            max_clients,
        })
    }

    /// The address to listen on.
    #[cfg(feature = "embedded-broker")]
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The user clients log in as; `None`: anonymous clients (loopback only).
    pub fn credentials(&self) -> Option<&BrokerCredentials> {
        self.credentials.as_ref()
    }

    /// Clients connected at once.
    #[cfg(feature = "embedded-broker")]
    pub(crate) fn max_clients(&self) -> usize {
        self.max_clients
    }
}

impl EmbeddedBrokerSection {
    /// The checked access for a broker on `addr`: reads `password_file` if set.
    pub fn access(&self, addr: SocketAddr) -> Result<BrokerAccess, ExposureError> {
        let password = match (&self.password, &self.password_file) {
            (Some(password), _) => Some(password.clone()),
            (None, Some(file)) => {
                let text =
                    std::fs::read_to_string(file).map_err(|error| ExposureError::PasswordFile {
                        file: file.clone(),
                        message: error.to_string(),
                    })?;
                Some(text.lines().next().unwrap_or_default().to_owned())
            }
            (None, None) => None,
        };
        let credentials = match (&self.username, password) {
            (Some(username), Some(password)) => Some(BrokerCredentials {
                username: username.clone(),
                password,
            }),
            // `issues` refuses a half-configured user before we get here.
            _ => None,
        };
        BrokerAccess::new(addr, credentials, self.max_clients)
    }

    /// Broken rules of the section, each naming its key.
    pub(crate) fn issues(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        let has_password = self.password.is_some() || self.password_file.is_some();
        if self.password.is_some() && self.password_file.is_some() {
            issues.push(ConfigIssue::at_key(
                "embedded_broker.password_file",
                "set either password or password_file, not both",
            ));
        }
        match (&self.username, has_password) {
            (Some(name), _) if name.is_empty() => issues.push(ConfigIssue::at_key(
                "embedded_broker.username",
                "must not be empty",
            )),
            (Some(_), false) => issues.push(ConfigIssue::at_key(
                "embedded_broker.password",
                "username is set, so password or password_file must be set too",
            )),
            (None, true) => issues.push(ConfigIssue::at_key(
                "embedded_broker.username",
                "a password is set, so username must be set too",
            )),
            _ => {}
        }
        if self.password.as_deref() == Some("") {
            issues.push(ConfigIssue::at_key(
                "embedded_broker.password",
                "must not be empty",
            ));
        }
        if !(1..=1000).contains(&self.max_clients) {
            issues.push(ConfigIssue::at_key(
                "embedded_broker.max_clients",
                format!("{} is out of range 1..=1000", self.max_clients),
            ));
        }
        issues
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> Option<BrokerCredentials> {
        Some(BrokerCredentials {
            username: "ha".into(),
            password: "pw".into(),
        })
    }

    #[test]
    fn anonymous_only_on_loopback() {
        let lan: SocketAddr = "0.0.0.0:1883".parse().unwrap();
        let error = BrokerAccess::new(lan, None, 16).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("0.0.0.0:1883"), "{text}");
        assert!(text.contains("[embedded_broker]"), "{text}");
        assert!(BrokerAccess::new(lan, user(), 16).is_ok());
        for local in ["127.0.0.1:1883", "[::1]:1883", "127.0.0.2:0"] {
            assert!(BrokerAccess::new(local.parse().unwrap(), None, 16).is_ok());
        }
        let v6_any: SocketAddr = "[::]:1883".parse().unwrap();
        assert!(BrokerAccess::new(v6_any, None, 16).is_err());
    }

    #[test]
    fn half_a_user_is_refused_by_key() {
        let section = EmbeddedBrokerSection {
            username: Some("ha".into()),
            ..Default::default()
        };
        let issues = section.issues();
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert!(format!("{issues:?}").contains("embedded_broker.password"));
        let section = EmbeddedBrokerSection {
            password: Some("pw".into()),
            max_clients: 0,
            ..Default::default()
        };
        let text = format!("{:?}", section.issues());
        assert!(text.contains("embedded_broker.username"), "{text}");
        assert!(text.contains("embedded_broker.max_clients"), "{text}");
        assert!(EmbeddedBrokerSection::default().issues().is_empty());
    }

    #[test]
    fn password_file_first_line_is_the_password() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "s3cret\nignored\n").unwrap();
        let section = EmbeddedBrokerSection {
            username: Some("ha".into()),
            password_file: Some(file),
            ..Default::default()
        };
        let access = section.access("0.0.0.0:1883".parse().unwrap()).unwrap();
        assert_eq!(access.credentials().unwrap().password, "s3cret");
        assert!(!format!("{access:?}").contains("s3cret"));
    }
}
