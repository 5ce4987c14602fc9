//! massaged: a Home Assistant scalp-massage headrest daemon.

pub mod config;
pub mod core;
pub mod timeline;
pub mod ctl;
pub mod daemon;
pub mod forget;
pub mod logging;
pub mod systemd;
