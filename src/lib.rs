//! massaged: a Home Assistant scalp-massage headrest daemon.

pub mod config;
pub mod core;
pub mod device;
pub mod store;
