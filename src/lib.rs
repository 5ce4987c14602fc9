//! massaged: a Home Assistant scalp-massage headrest daemon.

#[cfg(feature = "embedded-broker")]
pub mod broker;
pub mod config;
pub mod core;
pub mod ctl;
pub mod daemon;
pub mod device;
pub mod forget;
pub mod logging;
pub mod mqtt;
pub mod outputs_off;
pub mod picture;
pub(crate) mod service;
pub mod store;
pub(crate) mod systemd;
pub mod timeline;
