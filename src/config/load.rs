//! Loading: the TOML file, then `MASSAGED__SECTION__KEY` environment overrides, then validation.
//!
//! The file is first parsed with `toml` on its own, strictly and with spans, so syntax errors,
//! type errors and unknown keys point at a line. The `config` crate then layers the environment
//! over it (its lenient conversions are what environment strings need: `"20"` becomes a number,
//! `"true"` a bool).

use super::error::{ConfigErrors, ConfigIssue, Location};
use super::sections::Config;
use super::spans::SpanIndex;
use std::path::{Path, PathBuf};
use toml::de::DeTable;

/// Where the daemon looks for its configuration when no path is given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/massaged/massaged.toml";

/// Prefix of environment overrides; `__` also separates section and key.
pub const ENV_PREFIX: &str = "MASSAGED__";

/// The file the configuration is read from: `explicit` if given (it must exist), else
/// [`DEFAULT_CONFIG_PATH`] when it exists, else none (built-in defaults).
pub fn config_path(explicit: Option<&Path>) -> Option<PathBuf> {
    match explicit {
        Some(path) => Some(path.to_owned()),
        None => {
            let default = Path::new(DEFAULT_CONFIG_PATH);
            default.exists().then(|| default.to_owned())
        }
    }
}

/// The process's `MASSAGED__*` variables as (name, value) pairs.
pub fn process_env() -> Result<Vec<(String, String)>, ConfigErrors> {
    let mut vars = Vec::new();
    let mut issues = Vec::new();
    for (name, value) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if !has_env_prefix(name) {
            continue;
        }
        match value.into_string() {
            Ok(value) => vars.push((name.to_owned(), value)),
            Err(_) => issues.push(ConfigIssue {
                key: Some(env_key(name)),
                location: Some(Location::Env(name.to_owned())),
                message: "value is not valid UTF-8".into(),
            }),
        }
    }
    if issues.is_empty() {
        Ok(vars)
    } else {
        Err(ConfigErrors::new(issues))
    }
}

impl Config {
    /// Loads the configuration for the daemon: the file chosen by [`config_path`], the process
    /// environment's overrides, validated.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigErrors> {
        let env = process_env()?;
        Config::load_with_env(path, &env)
    }

    /// Like [`Config::load`] with an explicit environment (tests must not touch the real one).
    pub fn load_with_env(
        path: Option<&Path>,
        env: &[(String, String)],
    ) -> Result<Config, ConfigErrors> {
        let Some(file) = config_path(path) else {
            return Config::from_toml("", env);
        };
        let text = std::fs::read_to_string(&file).map_err(|error| {
            ConfigErrors::new(vec![ConfigIssue::general(
                format!("cannot read {}: {error}", file.display()),
                None,
            )])
            .in_file(Some(file.clone()))
        })?;
        Config::from_toml(&text, env).map_err(|errors| errors.in_file(Some(file)))
    }

    /// Parses file text, applies the `MASSAGED__SECTION__KEY` variables in `env` (others are
    /// ignored) and validates; every error names its key and line or variable.
    pub fn from_toml(text: &str, env: &[(String, String)]) -> Result<Config, ConfigErrors> {
        let (document, syntax_errors) = DeTable::parse_recoverable(text);
        let index = SpanIndex::new(text, document.get_ref());
        if !syntax_errors.is_empty() {
            // Errors without a span (e.g. the parser's recursion limit) take the place of the
            // error before them, or the file's start: every error must point somewhere.
            let mut last = Location::File { line: 1, column: 1 };
            let mut issues: Vec<ConfigIssue> = syntax_errors
                .iter()
                .map(|error| {
                    if let Some(span) = error.span() {
                        last = index.position(span.start);
                    }
                    ConfigIssue::general(
                        format!("TOML syntax: {}", error.message()),
                        Some(last.clone()),
                    )
                })
                .collect();
            if issues.len() > MAX_SYNTAX_ERRORS {
                let more = issues.len() - MAX_SYNTAX_ERRORS;
                issues.truncate(MAX_SYNTAX_ERRORS);
                issues.push(ConfigIssue::general(
                    format!("TOML syntax: {more} more errors after these"),
                    Some(last),
                ));
            }
            return Err(ConfigErrors::new(issues));
        }
        if let Err(error) = toml::from_str::<Config>(text) {
            return Err(ConfigErrors::new(vec![typed_issue(&index, &error)]));
        }
        let overrides = EnvOverrides::new(env);
        let config = merge(text, &overrides)?;
        let mut issues = config.issues();
        if issues.is_empty() {
            return Ok(config);
        }
        for issue in &mut issues {
            if let Some(key) = &issue.key {
                issue.location = overrides
                    .var_for(key)
                    .map(Location::Env)
                    .or_else(|| index.find(key));
            }
        }
        issues.sort_by_key(|issue| match &issue.location {
            Some(Location::File { line, column }) => (0, *line, *column),
            Some(Location::Env(_)) => (1, 0, 0),
            None => (2, 0, 0),
        });
        Err(ConfigErrors::new(issues))
    }
}

/// Syntax errors shown before the rest are summarised; the first ones are what needs fixing.
const MAX_SYNTAX_ERRORS: usize = 20;

/// A strict-deserialisation error located by its span.
fn typed_issue(index: &SpanIndex, error: &toml::de::Error) -> ConfigIssue {
    let offset = error.span().map(|span| span.start);
    let key = offset
        .and_then(|offset| index.key_at(offset))
        .map(str::to_owned);
    let mut message = error.message().trim().to_owned();
    if let Some(id) = key.as_deref().and_then(|key| routine_id(index, key)) {
        message = format!("routine '{id}': {message}");
    }
    ConfigIssue {
        key,
        location: offset.map(|offset| index.position(offset)),
        message,
    }
}

/// The id of the user routine a key such as `routines[2].steps[0].zones[1]` is in.
fn routine_id<'a>(index: &'a SpanIndex, key: &str) -> Option<&'a str> {
    let rest = key.strip_prefix("routines[")?;
    let n = &rest[..rest.find(']')?];
    index.text(&format!("routines[{n}].id"))
}

/// The environment overrides that apply, keyed like the file (`mqtt.keep_alive_s`).
struct EnvOverrides {
    vars: Vec<(String, String, String)>,
}

impl EnvOverrides {
    fn new(env: &[(String, String)]) -> EnvOverrides {
        let vars = env
            .iter()
            .filter(|(name, _)| has_env_prefix(name))
            .map(|(name, value)| (env_key(name), name.clone(), value.clone()))
            .collect();
        EnvOverrides { vars }
    }

    /// The variable that set `key` or one of its parents.
    fn var_for(&self, key: &str) -> Option<String> {
        self.vars
            .iter()
            .find(|(set, _, _)| {
                key == set
                    || key
                        .strip_prefix(set.as_str())
                        .is_some_and(|rest| rest.starts_with(['.', '[']))
            })
            .map(|(_, name, _)| name.clone())
    }

    /// Scalar overrides, for the `config` crate's environment source.
    fn scalars(&self) -> config::Map<String, String> {
        self.vars
            .iter()
            .filter(|(key, _, _)| !is_list_key(key))
            .map(|(_, name, value)| (name.clone(), value.clone()))
            .collect()
    }

    /// List overrides, comma-separated in the variable (`MASSAGED__DRIVER__CHANNELS__NECK=8,9`).
    fn lists(&self) -> impl Iterator<Item = (&str, Vec<String>)> {
        self.vars
            .iter()
            .filter(|(key, _, _)| is_list_key(key))
            .map(|(key, _, value)| {
                let items = value
                    .split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .map(str::to_owned)
                    .collect();
                (key.as_str(), items)
            })
    }
}

/// Keys whose environment value is a comma-separated list.
fn is_list_key(key: &str) -> bool {
    key == "driver.pwm.outputs"
        || key
            .strip_prefix("driver.channels.")
            .is_some_and(|zone| !zone.contains('.'))
}

fn has_env_prefix(name: &str) -> bool {
    name.get(..ENV_PREFIX.len())
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case(ENV_PREFIX))
}

/// `MASSAGED__SAFETY__MAX_LEVEL` -> `safety.max_level`.
fn env_key(name: &str) -> String {
    name[ENV_PREFIX.len()..].to_lowercase().replace("__", ".")
}

/// Layers the environment over the (already strictly checked) file text.
fn merge(text: &str, overrides: &EnvOverrides) -> Result<Config, ConfigErrors> {
    let environment = config::Environment::with_prefix("MASSAGED")
        .prefix_separator("__")
        .separator("__")
        .source(Some(overrides.scalars()));
    let mut builder = config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .add_source(environment);
    for (key, items) in overrides.lists() {
        builder = builder.set_override(key, items).map_err(|error| {
            let (_, message) = split_config_error(error);
            ConfigErrors::new(vec![ConfigIssue {
                key: Some(key.to_owned()),
                location: overrides.var_for(key).map(Location::Env),
                message,
            }])
        })?;
    }
    builder
        .build()
        .and_then(config::Config::try_deserialize::<Config>)
        .map_err(|error| {
            let (key, message) = split_config_error(error);
            let location = key
                .as_deref()
                .and_then(|key| overrides.var_for(key))
                .map(Location::Env);
            ConfigErrors::new(vec![ConfigIssue {
                key,
                location,
                message,
            }])
        })
}

/// The key and the bare message of a `config` crate error.
fn split_config_error(error: config::ConfigError) -> (Option<String>, String) {
    match error {
        config::ConfigError::Type {
            unexpected,
            expected,
            key,
            ..
        } => (
            key,
            format!("invalid type: {unexpected}, expected {expected}"),
        ),
        config::ConfigError::At { error, key, .. } => {
            let (inner_key, message) = split_config_error(*error);
            let key = match (key.or(inner_key), unknown_field(&message)) {
                (Some(key), Some(field)) => Some(format!("{key}.{field}")),
                (None, Some(field)) => Some(field.to_owned()),
                (key, None) => key,
            };
            (key, message)
        }
        config::ConfigError::NotFound(key) => (Some(key), "is missing".into()),
        config::ConfigError::Message(message) => {
            (unknown_field(&message).map(str::to_owned), message)
        }
        other => (None, other.to_string()),
    }
}

/// The field named by serde's "unknown field `x`, expected ..." message.
fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(&rest[..rest.find('`')?])
}
