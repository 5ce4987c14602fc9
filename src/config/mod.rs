//! Configuration: TOML file plus `MASSAGED__SECTION__KEY` environment overrides.

mod builtin;
mod check;
mod convert;
mod device_id;
pub(crate) mod embedded_broker;
mod error;
mod load;
pub(crate) mod sections;
mod spans;
mod validate;
pub mod warnings;

pub(crate) use crate::device::parse_pwm_output;
pub use crate::mqtt::url::{BrokerUrl, redact_url};
#[cfg(test)]
pub(crate) use builtin::builtin_routine;
pub use builtin::{BUILTIN_ROUTINES_TOML, builtin_routines};
pub use check::{CheckReport, check_config, check_config_with_env};
#[cfg(feature = "embedded-broker")]
pub(crate) use embedded_broker::{BrokerAccess, BrokerCredentials, ExposureError};
pub use error::{ConfigErrors, ConfigIssue, Location};
pub use load::{DEFAULT_CONFIG_PATH, ENV_PREFIX, config_path, process_env};
pub use sections::*;
pub use warnings::ConfigWarning;
