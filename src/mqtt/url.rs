//! The broker URL the link connects to: `mqtt://[user[:password]@]host[:port]` or `mqtts://...`.

use std::fmt;

/// A parsed broker URL.
#[derive(Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    /// `mqtts://`: connect with TLS.
    pub tls: bool,
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port; 1883 for `mqtt://` and 8883 for `mqtts://` when not given.
    pub port: u16,
    /// User name written in the URL, if any.
    pub(crate) username: Option<String>,
    /// Password written in the URL, if any.
    pub(crate) password: Option<String>,
}

// Hand-written so a password never reaches a log through `{:?}`.
impl fmt::Debug for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokerUrl")
            .field("tls", &self.tls)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

impl BrokerUrl {
    /// Parses a broker URL, saying what is wrong when it is not one.
    pub fn parse(url: &str) -> Result<BrokerUrl, String> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("'{url}' is not a URL; expected mqtt://host:port"))?;
        let tls = match scheme {
            "mqtt" => false,
            "mqtts" => true,
            other => {
                return Err(format!(
                    "scheme '{other}' is not supported; use mqtt:// or mqtts://"
                ));
            }
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#']) {
            return Err("the URL must not have a path, query or fragment".into());
        }
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((userinfo, hostport)) => (Some(userinfo), hostport),
            None => (None, authority),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(info) => match info.split_once(':') {
                Some((user, pass)) => (Some(user.to_owned()), Some(pass.to_owned())),
                None => (Some(info.to_owned()), None),
            },
        };
        let (host, port) = split_host_port(hostport)?;
        if host.is_empty() {
            return Err("the URL has no host".into());
        }
        let port = match port {
            None => {
                if tls {
                    8883
                } else {
                    1883
                }
            }
            Some(text) => match text.parse::<u16>() {
                Ok(port) if port > 0 => port,
                _ => return Err(format!("port '{text}' is not a number in 1..=65535")),
            },
        };
        Ok(BrokerUrl {
            tls,
            host: host.to_owned(),
            port,
            username,
            password,
        })
    }
}

fn split_host_port(hostport: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(rest) = hostport.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or("an IPv6 address needs a closing ']'")?;
        return match after {
            "" => Ok((host, None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((host, Some(port))),
                None => Err(format!("unexpected '{after}' after the host")),
            },
        };
    }
    Ok(match hostport.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (hostport, None),
    })
}

/// The URL with any password replaced by `***`, for logs and reports.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, hostport)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{hostport}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_tls_with_default_ports() {
        let url = BrokerUrl::parse("mqtt://broker.lan").expect("valid");
        assert_eq!(
            (url.tls, url.host.as_str(), url.port),
            (false, "broker.lan", 1883)
        );
        let url = BrokerUrl::parse("mqtts://broker.lan:9000/").expect("valid");
        assert_eq!(
            (url.tls, url.host.as_str(), url.port),
            (true, "broker.lan", 9000)
        );
        let url = BrokerUrl::parse("mqtts://broker").expect("valid");
        assert_eq!(url.port, 8883);
    }

    #[test]
    fn parses_credentials_and_ipv6() {
        let url = BrokerUrl::parse("mqtt://ha:s3cret@[::1]:1884").expect("valid");
        assert_eq!(url.host, "::1");
        assert_eq!(url.port, 1884);
        assert_eq!(url.username.as_deref(), Some("ha"));
        assert_eq!(url.password.as_deref(), Some("s3cret"));
        assert!(!format!("{url:?}").contains("s3cret"));
    }

    #[test]
    fn rejects_bad_urls() {
        for bad in [
            "broker:1883",
            "http://broker",
            "mqtt://",
            "mqtt://:1883",
            "mqtt://host:0",
            "mqtt://host:99999",
            "mqtt://host:abc",
            "mqtt://host/topic",
        ] {
            assert!(BrokerUrl::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn redacts_only_the_password() {
        assert_eq!(
            redact_url("mqtt://ha:s3cret@host:1883"),
            "mqtt://ha:***@host:1883"
        );
        assert_eq!(redact_url("mqtt://ha@host"), "mqtt://ha@host");
        assert_eq!(redact_url("mqtt://host"), "mqtt://host");
    }
}
