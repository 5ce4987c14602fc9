//! The `massaged` command line.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use massaged::config::Config;
use massaged::core::{Command, Engine};
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
    /// Remove the device from Home Assistant and clear its retained state and availability.
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
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("massaged: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn dispatch(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Cmd::Run {
            embedded_broker,
            log_format,
        } => {
            let config = load(&cli.config)?;
            let format = match log_format {
                Some(LogFormatArg::Json) => massaged::config::LogFormat::Json,
                Some(LogFormatArg::Text) => massaged::config::LogFormat::Text,
                None => config.log.format,
            };
            massaged::logging::init(&config.log.level, format);
            massaged::config::warnings::log_warnings(
                &config,
                massaged::config::config_path(cli.config.as_deref()).as_deref(),
            );
            runtime()?.block_on(run(config, embedded_broker))?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Ctl { device, action } => {
            let config = load(&cli.config)?;
            massaged::logging::init("warn", massaged::config::LogFormat::Text);
            let (options, topics) = client_target(&config, device)?;
            let request = ctl_request(action);
            let outcome = runtime()?.block_on(massaged::ctl::run(options, topics, request))?;
            Ok(match outcome {
                massaged::ctl::CtlOutcome::Ok => ExitCode::SUCCESS,
                massaged::ctl::CtlOutcome::Failed => ExitCode::FAILURE,
            })
        }
        Cmd::Forget { device } => {
            let config = load(&cli.config)?;
            massaged::logging::init("warn", massaged::config::LogFormat::Text);
            let (options, topics) = client_target(&config, device)?;
            runtime()?.block_on(massaged::forget::run(options, topics))?;
            emit(&format!(
                "removed {} from Home Assistant and cleared its retained topics\n",
                topics_root(&config)
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Routines { markdown } => {
            let config = load(&cli.config)?;
            match markdown {
                Some(dir) => write_library_docs(&config, &dir)?,
                None => print_routines(&config)?,
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Simulate {
            routine,
            minutes,
            intensity,
            frame_hz,
            heat,
            format,
        } => {
            let config = load(&cli.config)?;
            let session = SimulateArgs {
                minutes,
                intensity,
                frame_hz,
                heat,
            };
            simulate(&config, &routine, &session, format)?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::OutputsOff => outputs_off(cli.config.as_deref()),
        Cmd::CheckConfig { path } => {
            match massaged::config::check_config(path.or(cli.config).as_deref()) {
                Ok(report) => {
                    emit(&format!("{report}\n"))?;
                    Ok(ExitCode::SUCCESS)
                }
                Err(errors) => {
                    eprintln!("{errors}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}

/// Never fails on the configuration: every problem is a note and the defaults apply. Exits
/// non-zero only when an output could not be turned off.
fn outputs_off(path: Option<&std::path::Path>) -> Result<ExitCode> {
    // The variables that are not UTF-8 are left out; the rest still apply.
    let env: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| k.starts_with(massaged::config::ENV_PREFIX))
        .collect();
    let (plan, report) = runtime()?.block_on(massaged::outputs_off::run(path, &env));
    for note in &plan.notes {
        eprintln!("massaged outputs-off: note: {note}");
    }
    for line in &report.done {
        println!("{line}");
    }
    for line in &report.failed {
        eprintln!("massaged outputs-off: FAILED: {line}");
    }
    Ok(if report.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn load(path: &Option<PathBuf>) -> Result<Config> {
    Config::load(path.as_deref()).context("loading the configuration")
}

/// Writes `text` to stdout. A closed stdout (a pipe into `head`) ends the output quietly: the
/// reader has what it wanted, which is not an error worth a message or a panic.
fn emit(text: &str) -> Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing to stdout"),
    }
}

fn write_library_docs(config: &Config, dir: &std::path::Path) -> Result<()> {
    let docs =
        massaged::picture::library_docs(&config.engine_config()?, &config.routine_library()?)?;
    let pictures = dir.join("routines");
    std::fs::create_dir_all(&pictures)
        .with_context(|| format!("creating {}", pictures.display()))?;
    for (file, svg) in &docs.pictures {
        let path = pictures.join(file);
        std::fs::write(&path, svg).with_context(|| format!("writing {}", path.display()))?;
    }
    let page = dir.join("routines.md");
    std::fs::write(&page, &docs.markdown).with_context(|| format!("writing {}", page.display()))?;
    Ok(())
}

fn print_routines(config: &Config) -> Result<()> {
    use std::fmt::Write as _;
    let routines = config.routine_library()?;
    let width = routines.iter().map(|r| r.id.len()).max().unwrap_or(2);
    let name_width = routines.iter().map(|r| r.name.len()).max().unwrap_or(4);
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{:<width$}  {:<name_width$}  {:>6}  description",
        "id", "name", "length"
    );
    for r in &routines {
        let secs = r.duration().as_secs();
        let _ = writeln!(
            text,
            "{:<width$}  {:<name_width$}  {:>3}:{:02}  {}",
            r.id,
            r.name,
            secs / 60,
            secs % 60,
            r.description
        );
    }
    emit(&text)
}

/// Session settings of `massaged simulate`.
struct SimulateArgs {
    minutes: Option<u32>,
    intensity: u32,
    frame_hz: Option<u32>,
    heat: bool,
}

fn simulate(config: &Config, routine: &str, session: &SimulateArgs, format: Format) -> Result<()> {
    let SimulateArgs {
        minutes,
        intensity,
        frame_hz,
        heat,
    } = *session;
    let mut engine_config = config.engine_config()?;
    if let Some(hz) = frame_hz {
        engine_config.frame_hz = hz;
    }
    let routines = config.routine_library()?;
    let length = massaged::core::routine::find_routine(&routines, routine)
        .map(|i| routines[i].duration().as_secs().div_ceil(60) as u32)
        .with_context(|| format!("no routine named '{routine}' (see `massaged routines`)"))?;
    let minutes = minutes.unwrap_or(length.min(engine_config.max_session_minutes));
    let settings = massaged::core::Settings {
        routine: routine.to_string(),
        intensity,
        minutes,
        heat,
        relaxer_date: None,
    };
    let engine = Engine::new(engine_config, routines, settings, Default::default())?;
    let start = Command {
        routine: Some(routine.to_string()),
        minutes: Some(minutes),
        intensity: Some(intensity),
        heat: Some(heat),
        force: true,
        ..Command::action(massaged::core::Action::Start)
    };
    let timeline = massaged::timeline::simulate(engine, &start)?;
    let text = match format {
        Format::Table => timeline.to_table(),
        Format::Json => timeline.to_json(),
        Format::Csv => timeline.to_csv(),
        Format::Svg => massaged::picture::timeline_svg(&timeline),
    };
    emit(&text)
}

#[cfg_attr(not(feature = "embedded-broker"), allow(unused_mut))]
async fn run(mut config: Config, embedded_broker: Option<SocketAddr>) -> Result<()> {
    // Only the embedded broker changes the options.
    #[cfg_attr(not(feature = "embedded-broker"), allow(unused_mut))]
    let mut options = massaged::daemon::RunOptions::default();
    #[cfg(feature = "embedded-broker")]
    let _broker = match embedded_broker {
        Some(addr) => {
            let access = config.embedded_broker.access(addr)?;
            let broker = massaged::broker::EmbeddedBroker::start_with(access.clone())
                .with_context(|| format!("starting the embedded broker on {addr}"))?;
            let local = broker.local_addr();
            tracing::info!(addr = %local, "embedded MQTT broker listening");
            // The daemon is one of the broker's clients: same address (loopback when the broker
            // listens on every interface) and, when the broker asks for one, the same login.
            let host = match local.ip() {
                std::net::IpAddr::V4(ip) if ip.is_unspecified() => "127.0.0.1".to_owned(),
                std::net::IpAddr::V6(ip) if ip.is_unspecified() => "::1".to_owned(),
                ip => ip.to_string(),
            };
            options.broker_override = Some((host, local.port()));
            if let Some(user) = access.credentials() {
                config.mqtt.username = Some(user.username.clone());
                config.mqtt.password = Some(user.password.clone());
                config.mqtt.password_file = None;
            }
            Some(broker)
        }
        None => None,
    };
    #[cfg(not(feature = "embedded-broker"))]
    if embedded_broker.is_some() {
        anyhow::bail!(
            "this build has no embedded broker (built without the cargo feature \
             `embedded-broker`); set mqtt.url to your MQTT broker instead"
        );
    }
    massaged::daemon::run(config, options).await?;
    Ok(())
}

fn topics_root(config: &Config) -> String {
    format!("{}/{}", config.mqtt.base_topic, config.device_id())
}

fn client_target(
    config: &Config,
    device: Option<String>,
) -> Result<(
    massaged::mqtt::link::LinkOptions,
    massaged::mqtt::topics::Topics,
)> {
    let device_id = device.unwrap_or_else(|| config.device_id());
    let topics = massaged::mqtt::topics::Topics::new(
        &config.mqtt.base_topic,
        &device_id,
        &config.homeassistant.discovery_prefix,
    );
    let options = massaged::daemon::link_options_from_config(config, "massaged-ctl")?;
    Ok((options, topics))
}

fn ctl_request(action: CtlCmd) -> massaged::ctl::CtlRequest {
    use massaged::ctl::CtlRequest;
    use serde_json::{Map, Value, json};
    let simple = |action: &str| {
        let mut map = Map::new();
        map.insert("action".into(), json!(action));
        CtlRequest::Command(map)
    };
    match action {
        CtlCmd::Start {
            routine,
            intensity,
            minutes,
            heat,
            force,
        } => {
            let mut map = Map::new();
            map.insert("action".into(), json!("start"));
            if let Some(routine) = routine {
                map.insert("routine".into(), Value::String(routine));
            }
            if let Some(intensity) = intensity {
                map.insert("intensity".into(), json!(intensity));
            }
            if let Some(minutes) = minutes {
                map.insert("minutes".into(), json!(minutes));
            }
            if heat {
                map.insert("heat".into(), json!(true));
            }
            if force {
                map.insert("force".into(), json!(true));
            }
            CtlRequest::Command(map)
        }
        CtlCmd::Stop => simple("stop"),
        CtlCmd::Pause => simple("pause"),
        CtlCmd::Resume => simple("resume"),
        CtlCmd::Skip => simple("skip"),
        CtlCmd::ClearFault => simple("clear_fault"),
        CtlCmd::Status => CtlRequest::Status,
        CtlCmd::Watch => CtlRequest::Watch,
    }
}
