//! Configuration: TOML file plus `MASSAGED__SECTION__KEY` environment overrides.

pub mod sections;

pub use sections::*;
