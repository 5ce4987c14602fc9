//! massaged: a Home Assistant scalp-massage headrest daemon.

#[cfg(feature = "embedded-broker")]
pub mod broker;
pub mod config;
pub mod core;
pub mod mqtt;
