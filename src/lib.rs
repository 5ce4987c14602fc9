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
pub mod picture;
pub mod store;
pub mod systemd;
pub mod timeline;
