//! Configuration that works but that a careful user would want to hear about: a password sent
//! in clear text, a password in a file anyone on the machine can read. Logged once at start
//! and listed by `check-config`; never an error.

use super::sections::Config;
use crate::mqtt::url::BrokerUrl;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// One thing worth a warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigWarning {
    /// A password goes over `mqtt://` (no TLS) to a host that is not this machine.
    ClearTextPassword {
        /// The broker host.
        host: String,
    },
    /// A file holding a password can be read by every user of the machine.
    ReadableSecret {
        /// The file.
        file: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigWarning::ClearTextPassword { host } => write!(
                f,
                "the MQTT password goes to {host} in clear text (mqtt:// has no encryption): \
                 anyone on the network path can read it; use mqtts:// (see docs/tls.md)"
            ),
            ConfigWarning::ReadableSecret { file, mode } => write!(
                f,
                "{file} holds a password and every user can read it (mode {mode:03o}): run \
                 `chmod 600 {file}`, or `chown root:massaged {file} && chmod 640 {file}` \
                 as the package does",
                file = file.display(),
                mode = mode & 0o777,
            ),
        }
    }
}

/// Every warning for `config`, read from `file` (`None`: built-in defaults). Reads the
/// permissions of the config file and of the password files it names.
pub(crate) fn config_warnings(config: &Config, file: Option<&Path>) -> Vec<ConfigWarning> {
    let mut warnings = Vec::new();
    warnings.extend(clear_text_password(config));
    if let Some(file) = file {
        let holds_password = std::fs::read_to_string(file)
            .map(|text| file_holds_password(&text))
            .unwrap_or(false);
        if holds_password {
            warnings.extend(readable_by_others(file));
        }
    }
    let password_files = [
        &config.mqtt.password_file,
        &config.embedded_broker.password_file,
    ];
    for password_file in password_files.into_iter().flatten() {
        warnings.extend(readable_by_others(password_file));
    }
    warnings
}

/// Logs every warning of [`config_warnings`] once; called when the daemon starts.
pub fn log_warnings(config: &Config, file: Option<&Path>) {
    for warning in config_warnings(config, file) {
        tracing::warn!(%warning, "configuration");
    }
}

/// [`ConfigWarning::ClearTextPassword`] when `mqtt.url` is `mqtt://` to another host and a
/// password is configured (in the URL, `mqtt.password` or `mqtt.password_file`).
pub(crate) fn clear_text_password(config: &Config) -> Option<ConfigWarning> {
    let url = BrokerUrl::parse(&config.mqtt.url).ok()?;
    let has_password = url.password.is_some()
        || config.mqtt.password.is_some()
        || config.mqtt.password_file.is_some();
    (has_password && !url.tls && !is_loopback_host(&url.host))
        .then_some(ConfigWarning::ClearTextPassword { host: url.host })
}

/// `localhost`, or an address of the loopback interface.
fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Whether configuration text writes a password itself: `mqtt.password`,
/// `embedded_broker.password`, or a password in `mqtt.url`.
pub(crate) fn file_holds_password(text: &str) -> bool {
    let Ok(table) = text.parse::<toml::Table>() else {
        return false;
    };
    let section = |name: &str| table.get(name).and_then(toml::Value::as_table);
    let has_key = |name: &str, key: &str| section(name).is_some_and(|s| s.contains_key(key));
    let url_password = section("mqtt")
        .and_then(|s| s.get("url"))
        .and_then(toml::Value::as_str)
        .and_then(|url| BrokerUrl::parse(url).ok())
        .is_some_and(|url| url.password.is_some());
    has_key("mqtt", "password") || has_key("embedded_broker", "password") || url_password
}

/// [`ConfigWarning::ReadableSecret`] when `file` is readable by others (`o+r`). Group read is
/// fine: the package gives the files to group `massaged`.
fn readable_by_others(file: &Path) -> Option<ConfigWarning> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(file).ok()?.permissions().mode();
    (mode & 0o004 != 0).then(|| ConfigWarning::ReadableSecret {
        file: file.to_owned(),
        mode,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_url(url: &str) -> Config {
        let mut config = Config::default();
        config.mqtt.url = url.into();
        config
    }

    #[test]
    fn clear_text_only_for_a_password_to_another_host() {
        let warning = clear_text_password(&with_url("mqtt://ha:pw@broker.lan")).unwrap();
        assert!(warning.to_string().contains("broker.lan"), "{warning}");
        assert!(warning.to_string().contains("mqtts://"), "{warning}");
        assert_eq!(clear_text_password(&with_url("mqtt://broker.lan")), None);
        assert_eq!(
            clear_text_password(&with_url("mqtts://ha:pw@broker.lan")),
            None
        );
        for local in ["localhost", "127.0.0.1", "[::1]"] {
            let config = with_url(&format!("mqtt://ha:pw@{local}:1883"));
            assert_eq!(clear_text_password(&config), None, "{local}");
        }
        let mut config = with_url("mqtt://10.0.0.2");
        config.mqtt.password_file = Some("/run/credentials/pw".into());
        assert!(clear_text_password(&config).is_some());
    }

    #[test]
    fn password_in_the_file_is_found_where_it_can_be() {
        assert!(file_holds_password("[mqtt]\npassword = \"x\"\n"));
        assert!(file_holds_password("[mqtt]\nurl = \"mqtt://u:x@h\"\n"));
        assert!(file_holds_password("[embedded_broker]\npassword = \"x\"\n"));
        assert!(!file_holds_password("[mqtt]\nurl = \"mqtt://u@h\"\n"));
        assert!(!file_holds_password(
            "[mqtt]\npassword_file = \"/run/pw\"\n"
        ));
        assert!(!file_holds_password("not toml ["));
    }

    #[test]
    fn readable_file_names_the_chmod() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("massaged.toml");
        std::fs::write(&file, "[mqtt]\npassword = \"x\"\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let warnings = config_warnings(&Config::default(), Some(&file));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        let text = warnings[0].to_string();
        assert!(
            text.contains(&format!("chmod 600 {}", file.display())),
            "{text}"
        );
        assert!(text.contains("644"), "{text}");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(config_warnings(&Config::default(), Some(&file)).is_empty());
    }
}
