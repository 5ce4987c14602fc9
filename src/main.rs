//! The `massaged` command line: its definition and the dispatch to each subcommand's body
//! in `cli/`.

mod cli;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};
use massaged::config::LogFormat;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "massaged",
    version,
    about = "Scalp-massage headrest daemon for Home Assistant over MQTT"
)]
struct Cli {
    /// Configuration file (default: /etc/massaged/massaged.toml if it exists, else built-in defaults).
    #[arg(long, short, global = true, env = "MASSAGED_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the service: connect to the broker, publish discovery, execute commands.
    Run {
        /// Start an in-process MQTT broker on ADDR and connect to it (no external broker needed).
        #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:1883")]
        embedded_broker: Option<SocketAddr>,
        /// Log format (default: log.format from the config).
        #[arg(long, value_enum)]
        log_format: Option<LogFormatArg>,
    },
    /// Control a running daemon over MQTT (uses the same config to find the broker and device).
    Ctl {
        /// Device id (default: device.id from the config, else the host name).
        #[arg(long)]
        device: Option<String>,
        #[command(subcommand)]
        action: CtlCmd,
    },
    /// Remove the device from Home Assistant and clear its retained picture, state and availability.
    Forget {
        /// Device id (default: device.id from the config, else the host name).
        #[arg(long)]
        device: Option<String>,
    },
    /// List the routines: id, name, length and description.
    Routines {
        /// Instead, write DIR/routines.md and a picture of every routine as DIR/routines/<id>.svg.
        #[arg(long, value_name = "DIR")]
        markdown: Option<PathBuf>,
    },
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
        /// Heat during the session.
        #[arg(long)]
        heat: bool,
        /// Output format (`svg`: a picture of the session).
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Set every output to zero and disable it (systemd runs this as `ExecStopPost=`); reads
    /// only the driver keys, so it works from an otherwise invalid configuration.
    OutputsOff,
    /// Validate a configuration file; exits non-zero and names every bad key.
    CheckConfig {
        /// File to check (default: the --config file or /etc/massaged/massaged.toml).
        path: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum CtlCmd {
    /// Start a session (or change the running one).
    Start {
        /// Routine id or display name (default: the selected routine).
        routine: Option<String>,
        /// Intensity in percent.
        #[arg(long)]
        intensity: Option<u32>,
        /// Session length in minutes.
        #[arg(long)]
        minutes: Option<u32>,
        /// Heat during the session.
        #[arg(long)]
        heat: bool,
        /// Start even inside the relaxer-guard window.
        #[arg(long)]
        force: bool,
    },
    /// Stop everything.
    Stop,
    /// Pause the session.
    Pause,
    /// Resume the session.
    Resume,
    /// Skip to the next step.
    Skip,
    /// Leave the fault state once the device works again.
    ClearFault,
    /// Print the state; exits non-zero when the daemon is offline.
    Status,
    /// Follow state and events.
    Watch,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormatArg {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Json,
    Csv,
    Svg,
}

fn main() -> ExitCode {
    match dispatch(Cli::parse()) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("massaged: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(args: Cli) -> Result<ExitCode> {
    let config = args.config.as_deref();
    match args.command {
        Cmd::Run {
            embedded_broker,
            log_format,
        } => {
            let log_format = log_format.map(|format| match format {
                LogFormatArg::Json => LogFormat::Json,
                LogFormatArg::Text => LogFormat::Text,
            });
            cli::run::run(config, embedded_broker, log_format)
        }
        Cmd::Ctl { device, action } => cli::ctl::ctl(config, device, action),
        Cmd::Forget { device } => cli::forget::forget(config, device),
        Cmd::Routines { markdown } => cli::routines::routines(config, markdown.as_deref()),
        Cmd::Simulate {
            routine,
            minutes,
            intensity,
            frame_hz,
            heat,
            format,
        } => {
            let session = cli::simulate::SimulateArgs {
                minutes,
                intensity,
                frame_hz,
                heat,
            };
            cli::simulate::simulate(config, &routine, &session, format)
        }
        Cmd::OutputsOff => cli::outputs_off::outputs_off(config),
        Cmd::CheckConfig { path } => cli::check_config::check_config(path.as_deref().or(config)),
    }
}
