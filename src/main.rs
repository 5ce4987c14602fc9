//! The `massaged` command line.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use massaged::config::Config;
use massaged::core::{Command, Engine};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "massaged", version, about = "Scalp-massage headrest daemon for Home Assistant over MQTT")]
struct Cli {
    /// Configuration file (default: /etc/massaged/massaged.toml if it exists, else built-in defaults).
    #[arg(long, short, global = true, env = "MASSAGED_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// List the routines: id, name, length and description.
    Routines,
    /// Print the deterministic timeline of a routine without touching any device.
    Simulate {
        /// Routine id or display name.
        routine: String,
        /// Session length in minutes (default: one pass of the routine).
        #[arg(long)]
        minutes: Option<u32>,
        /// User intensity in percent.
        #[arg(long, default_value_t = 60)]
        intensity: u32,
        /// Frames per second (default: engine.frame_hz from the config).
        #[arg(long)]
        frame_hz: Option<u32>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Validate a configuration file; exits non-zero and names every bad key.
    CheckConfig {
        /// File to check (default: the --config file or /etc/massaged/massaged.toml).
        path: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Json,
    Csv,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("massaged: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Cmd::Routines => {
            let config = load(&cli.config)?;
            print_routines(&config)?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Simulate {
            routine,
            minutes,
            intensity,
            frame_hz,
            format,
        } => {
            let config = load(&cli.config)?;
            simulate(&config, &routine, minutes, intensity, frame_hz, format)?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::CheckConfig { path } => {
            let Some(path) = path.or(cli.config).or_else(default_config_path) else {
                bail!("no file to check: give a path or --config");
            };
            match massaged::config::check_config(&path) {
                Ok(report) => {
                    println!("{report}");
                    Ok(ExitCode::SUCCESS)
                }
                Err(errors) => {
                    eprintln!("{}: invalid configuration\n{errors}", path.display());
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}

fn default_config_path() -> Option<PathBuf> {
    let path = PathBuf::from(massaged::config::DEFAULT_PATH);
    path.exists().then_some(path)
}

fn load(path: &Option<PathBuf>) -> Result<Config> {
    Config::load(path.as_deref()).context("loading the configuration")
}

fn print_routines(config: &Config) -> Result<()> {
    let routines = config.routine_library()?;
    let width = routines.iter().map(|r| r.id.len()).max().unwrap_or(2);
    let name_width = routines.iter().map(|r| r.name.len()).max().unwrap_or(4);
    println!("{:<width$}  {:<name_width$}  {:>6}  description", "id", "name", "length");
    for r in &routines {
        let secs = r.duration().as_secs();
        println!(
            "{:<width$}  {:<name_width$}  {:>3}:{:02}  {}",
            r.id,
            r.name,
            secs / 60,
            secs % 60,
            r.description
        );
    }
    Ok(())
}

fn simulate(
    config: &Config,
    routine: &str,
    minutes: Option<u32>,
    intensity: u32,
    frame_hz: Option<u32>,
    format: Format,
) -> Result<()> {
    let mut engine_config = config.engine_config()?;
    if let Some(hz) = frame_hz {
        engine_config.frame_hz = hz;
    }
    let routines = config.routine_library()?;
    let length = routines
        .iter()
        .find(|r| r.id == routine || r.name.eq_ignore_ascii_case(routine))
        .map(|r| r.duration().as_secs().div_ceil(60) as u32)
        .with_context(|| format!("no routine named '{routine}' (see `massaged routines`)"))?;
    let minutes = minutes.unwrap_or(length.min(engine_config.max_session_minutes));
    let settings = massaged::core::Settings {
        routine: routine.to_string(),
        intensity,
        minutes,
        heat: false,
        relaxer_date: None,
    };
    let engine = Engine::new(engine_config, routines, settings, Default::default())?;
    let start = Command {
        routine: Some(routine.to_string()),
        minutes: Some(minutes),
        intensity: Some(intensity),
        force: true,
        ..Command::action(massaged::core::Action::Start)
    };
    let timeline = massaged::timeline::simulate(engine, &start)?;
    let text = match format {
        Format::Table => timeline.to_table(),
        Format::Json => timeline.to_json(),
        Format::Csv => timeline.to_csv(),
    };
    print!("{text}");
    Ok(())
}
