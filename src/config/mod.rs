//! Configuration: TOML file plus `MASSAGED__SECTION__KEY` environment overrides.

mod builtin;
mod check;
mod convert;
mod device_id;
pub mod embedded_broker;
mod error;
mod load;
pub mod sections;
mod spans;
mod validate;
pub mod warnings;

pub use crate::device::parse_pwm_output;
pub use crate::mqtt::url::{BrokerUrl, redact_url};
pub use builtin::{BUILTIN_ROUTINES_TOML, builtin_routines};
pub use check::{CheckReport, check_config, check_config_with_env};
pub use device_id::{
    FALLBACK_DEVICE_ID, is_valid_device_id, resolve_device_id, sanitize_device_id,
};
pub use embedded_broker::{BrokerAccess, BrokerCredentials, EmbeddedBrokerSection, ExposureError};
pub use error::{ConfigErrors, ConfigIssue, Location};
pub use load::{DEFAULT_CONFIG_PATH, ENV_PREFIX, config_path, process_env};
pub use sections::*;
pub use validate::MAX_CHANNEL_SLOT;
pub use warnings::ConfigWarning;
