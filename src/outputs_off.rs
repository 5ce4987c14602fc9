//! `massaged outputs-off`: zero and disable every output after the daemon died, whatever state
//! it died in and whatever the configuration file now says.
//!
//! systemd runs it as `ExecStopPost=` after every exit of the service, including SIGKILL, a
//! watchdog abort and the OOM killer, where the daemon itself could not zero anything. It must
//! also work when the configuration is invalid (the daemon then refuses to start and never
//! zeroes the outputs it left on), so it reads only the `[driver]` keys it needs, one by one,
//! and takes the default for any key it cannot read. It never opens the driver the way the
//! daemon does (no export, no handshake that must succeed): it only turns off what is there.

use crate::config::{DEFAULT_CONFIG_PATH, ENV_PREFIX, PwmSection, SerialSection, parse_pwm_output};
use crate::device::protocol::{HostLine, encode_host};
use std::collections::BTreeSet;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long the serial all-off may take in total (open, write, acknowledgement).
pub(crate) const SERIAL_OFF_TIMEOUT: Duration = Duration::from_millis(1500);

/// Frame slots of the default channel map (ten motors and the heater), used for the serial
/// `HELLO` when the channel map cannot be read.
const DEFAULT_SLOTS: usize = 11;

/// Which outputs to turn off, as far as the configuration could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OffTarget {
    /// `driver.kind = "sim"`: nothing physical to turn off.
    Sim,
    /// PWM: every exported channel of these chips under `sysfs_root`.
    Pwm {
        /// The PWM class directory.
        sysfs_root: PathBuf,
        /// `driver.pwm.chip` and every chip named in `driver.pwm.outputs`.
        chips: BTreeSet<u32>,
    },
    /// Serial: an all-off to the microcontroller on `port`.
    Serial {
        /// The serial device.
        port: PathBuf,
        /// Its baud rate.
        baud: u32,
        /// Channels announced in the `HELLO` that precedes the `OFF`.
        slots: usize,
    },
}

/// What was read from the configuration: the target and what had to be assumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffPlan {
    /// The outputs to turn off.
    pub(crate) target: OffTarget,
    /// Keys that could not be read (and the default that was used instead).
    pub notes: Vec<String>,
}

/// The result of turning outputs off: one line per action, and the failures.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct OffReport {
    /// What was done, one line each (`pwmchip0/pwm3: duty 0, disabled`).
    pub done: Vec<String>,
    /// What failed, naming the file or port and the error.
    pub failed: Vec<String>,
}

/// Reads the driver keys from the config file text (`None`: no file) and the `MASSAGED__*`
/// variables in `env`, leniently: anything unreadable falls back to its default with a note.
/// A file that is not TOML at all gives the PWM fallback under the default sysfs root.
pub(crate) fn plan(text: Option<&str>, env: &[(String, String)]) -> OffPlan {
    let mut notes = Vec::new();
    let mut driver = match text.map(|t| t.parse::<toml::Table>()) {
        None => toml::Table::new(),
        Some(Ok(mut table)) => match table.remove("driver") {
            Some(toml::Value::Table(driver)) => driver,
            Some(_) => {
                notes.push("[driver] is not a table; using defaults".into());
                toml::Table::new()
            }
            None => toml::Table::new(),
        },
        Some(Err(error)) => {
            notes.push(format!(
                "the file is not valid TOML ({}); turning off every exported PWM channel",
                error.message()
            ));
            let mut driver = toml::Table::new();
            driver.insert("kind".into(), "unknown".into());
            driver
        }
    };
    apply_env(&mut driver, env);
    let kind = text_key(&driver, &["kind"], &mut notes).unwrap_or_else(|| "sim".into());
    match kind.as_str() {
        "sim" => OffTarget::Sim,
        "serial" => {
            let defaults = SerialSection::default();
            let port = text_key(&driver, &["serial", "port"], &mut notes)
                .map_or(defaults.port, PathBuf::from);
            let baud =
                number_key(&driver, &["serial", "baud"], &mut notes).unwrap_or(defaults.baud);
            let slots = slot_count(&driver, &mut notes);
            OffTarget::Serial { port, baud, slots }
        }
        other => {
            if other != "pwm" {
                notes.push(format!(
                    "driver.kind '{other}' is unknown; treating the device as PWM"
                ));
            }
            pwm_target(&driver, &mut notes)
        }
    }
    .into_plan(notes)
}

impl OffTarget {
    fn into_plan(self, notes: Vec<String>) -> OffPlan {
        OffPlan {
            target: self,
            notes,
        }
    }
}

/// The PWM root and chips; every chip under the root when the keys cannot be read at all.
fn pwm_target(driver: &toml::Table, notes: &mut Vec<String>) -> OffTarget {
    let defaults = PwmSection::default();
    let sysfs_root =
        text_key(driver, &["pwm", "sysfs_root"], notes).map_or(defaults.sysfs_root, PathBuf::from);
    let mut chips = BTreeSet::new();
    chips.insert(number_key(driver, &["pwm", "chip"], notes).unwrap_or(defaults.chip));
    match lookup(driver, &["pwm", "outputs"]) {
        Some(toml::Value::Array(list)) => {
            for (i, item) in list.iter().enumerate() {
                match item.as_str().and_then(parse_pwm_output) {
                    Some((chip, _)) => {
                        chips.insert(chip);
                    }
                    None => notes.push(format!("driver.pwm.outputs[{i}] is not CHIP:CHANNEL")),
                }
            }
        }
        Some(toml::Value::String(list)) => {
            for item in list.split(',') {
                match parse_pwm_output(item) {
                    Some((chip, _)) => {
                        chips.insert(chip);
                    }
                    None => notes.push(format!(
                        "driver.pwm.outputs item '{item}' is not CHIP:CHANNEL"
                    )),
                }
            }
        }
        Some(_) => notes.push("driver.pwm.outputs is not a list".into()),
        None => {}
    }
    if driver.get("kind").and_then(toml::Value::as_str) == Some("unknown") {
        chips.extend(all_chips(&sysfs_root));
    }
    OffTarget::Pwm { sysfs_root, chips }
}

/// Frame slots: one past the highest slot in the channel map and the heat channel.
fn slot_count(driver: &toml::Table, notes: &mut Vec<String>) -> usize {
    let mut highest = DEFAULT_SLOTS - 1;
    let slots = driver
        .get("channels")
        .and_then(toml::Value::as_table)
        .into_iter()
        .flat_map(|channels| channels.values())
        .filter_map(toml::Value::as_array)
        .flatten()
        .chain(driver.get("heat_channel"))
        .filter_map(toml::Value::as_integer);
    for slot in slots {
        match usize::try_from(slot) {
            Ok(slot) => highest = highest.max(slot),
            Err(_) => notes.push(format!("driver.channels slot {slot} is not a slot number")),
        }
    }
    highest + 1
}

/// `MASSAGED__DRIVER__A__B=value` becomes `a.b = "value"` in the driver table.
fn apply_env(driver: &mut toml::Table, env: &[(String, String)]) {
    let prefix = format!("{ENV_PREFIX}DRIVER__");
    for (name, value) in env {
        let Some(rest) = name.strip_prefix(&prefix) else {
            continue;
        };
        let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        let Some((last, parents)) = path.split_last() else {
            continue;
        };
        let mut table = &mut *driver;
        for part in parents {
            let entry = table
                .entry(part.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if !entry.is_table() {
                *entry = toml::Value::Table(toml::Table::new());
            }
            let toml::Value::Table(inner) = entry else {
                return;
            };
            table = inner;
        }
        table.insert(last.clone(), toml::Value::String(value.clone()));
    }
}

fn lookup<'a>(table: &'a toml::Table, path: &[&str]) -> Option<&'a toml::Value> {
    let (last, parents) = path.split_last()?;
    let mut table = table;
    for part in parents {
        table = table.get(*part)?.as_table()?;
    }
    table.get(*last)
}

fn text_key(table: &toml::Table, path: &[&str], notes: &mut Vec<String>) -> Option<String> {
    match lookup(table, path)? {
        toml::Value::String(text) => Some(text.clone()),
        _ => {
            notes.push(format!(
                "driver.{} is not a string; using the default",
                path.join(".")
            ));
            None
        }
    }
}

fn number_key(table: &toml::Table, path: &[&str], notes: &mut Vec<String>) -> Option<u32> {
    let number = match lookup(table, path)? {
        toml::Value::Integer(n) => u32::try_from(*n).ok(),
        toml::Value::String(text) => text.trim().parse().ok(),
        _ => None,
    };
    if number.is_none() {
        notes.push(format!(
            "driver.{} is not a number; using the default",
            path.join(".")
        ));
    }
    number
}

/// Every `pwmchipN` under `root`.
fn all_chips(root: &Path) -> Vec<u32> {
    numbered_entries(root, "pwmchip")
}

/// The numbers `N` of entries named `{prefix}N` in `dir` (none when it cannot be read).
fn numbered_entries(dir: &Path, prefix: &str) -> Vec<u32> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut numbers: Vec<u32> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.strip_prefix(prefix)?.parse().ok())
        .collect();
    numbers.sort_unstable();
    numbers
}

/// Writes one sysfs attribute (never creates it).
fn write_attr(path: &Path, value: &str) -> Result<(), String> {
    OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .and_then(|mut file| file.write_all(value.as_bytes()))
        .map_err(|e| format!("{}: writing '{value}': {e}", path.display()))
}

/// Duty 0, then disable, then polarity `normal`, on every exported channel of the chips.
/// Duty comes first because some controllers hold the last level while disabled; polarity last
/// (the kernel only changes it while disabled) so that an `inversed` channel is not left fully
/// on at duty 0 for the next start. A missing chip is only a note: nothing there can be on.
pub(crate) fn pwm_off(sysfs_root: &Path, chips: &BTreeSet<u32>) -> OffReport {
    let mut report = OffReport::default();
    for &chip in chips {
        let chip_dir = sysfs_root.join(format!("pwmchip{chip}"));
        if !chip_dir.is_dir() {
            report.done.push(format!(
                "{}: no such chip, nothing to turn off",
                chip_dir.display()
            ));
            continue;
        }
        for channel in numbered_entries(&chip_dir, "pwm") {
            let dir = chip_dir.join(format!("pwm{channel}"));
            let mut ok = true;
            for (name, value) in [("duty_cycle", "0"), ("enable", "0")] {
                if let Err(e) = write_attr(&dir.join(name), value) {
                    report.failed.push(e);
                    ok = false;
                }
            }
            let polarity = dir.join("polarity");
            let normal = fs::read_to_string(&polarity).is_ok_and(|p| p.trim() == "normal");
            if !normal && polarity.exists() {
                if let Err(e) = write_attr(&polarity, "normal") {
                    report.failed.push(e);
                    ok = false;
                }
            }
            if ok {
                report
                    .done
                    .push(format!("{}: duty 0, disabled", dir.display()));
            }
        }
    }
    report
}

/// `HELLO` (which turns every output off and resets the sequence) then `OFF`, waiting at most
/// [`SERIAL_OFF_TIMEOUT`] in all. The acknowledgements are not required: a microcontroller that
/// does not answer turns its outputs off by itself once the heartbeat stops.
pub(crate) async fn serial_off(port: &Path, baud: u32, slots: usize) -> OffReport {
    let mut report = OffReport::default();
    let result = tokio::time::timeout(SERIAL_OFF_TIMEOUT, send_serial_off(port, baud, slots)).await;
    match result {
        Ok(Ok(())) => report
            .done
            .push(format!("{}: HELLO and OFF sent", port.display())),
        Ok(Err(e)) => report.failed.push(format!("{}: {e}", port.display())),
        Err(_) => report.failed.push(format!(
            "{}: no all-off within {} ms; the microcontroller's heartbeat timeout turns it off",
            port.display(),
            SERIAL_OFF_TIMEOUT.as_millis()
        )),
    }
    report
}

async fn send_serial_off(port: &Path, baud: u32, slots: usize) -> Result<(), String> {
    use tokio::io::AsyncWriteExt;
    let builder = tokio_serial::new(port.to_string_lossy(), baud);
    let mut stream =
        tokio_serial::SerialStream::open(&builder).map_err(|e| format!("cannot open: {e}"))?;
    let timeout_ms = SerialSection::default().heartbeat_timeout_ms;
    let lines = [
        HostLine::Hello {
            seq: 1,
            channels: slots,
            timeout_ms,
        },
        HostLine::Off { seq: 2 },
    ];
    for line in &lines {
        AsyncWriteExt::write_all(&mut stream, encode_host(line).as_bytes())
            .await
            .map_err(|e| format!("write failed: {e}"))?;
    }
    AsyncWriteExt::flush(&mut stream)
        .await
        .map_err(|e| format!("flush failed: {e}"))?;
    Ok(())
}

/// Plans from the file at `path` (or the default path when it exists) and `env`, and turns
/// every output off. Reading the file may fail: that is a note, and the defaults apply.
pub async fn run(path: Option<&Path>, env: &[(String, String)]) -> (OffPlan, OffReport) {
    let file = path.map(Path::to_owned).or_else(|| {
        let default = Path::new(DEFAULT_CONFIG_PATH);
        default.exists().then(|| default.to_owned())
    });
    let mut read_note = None;
    let text = match &file {
        Some(file) => match fs::read_to_string(file) {
            Ok(text) => Some(text),
            Err(e) => {
                read_note = Some(format!("cannot read {}: {e}", file.display()));
                // Unknown driver: the PWM fallback is the only thing that can still be done.
                Some("[driver]\nkind = \"unknown\"\n".to_owned())
            }
        },
        None => None,
    };
    let mut plan = plan(text.as_deref(), env);
    plan.notes.splice(0..0, read_note);
    let report = match &plan.target {
        OffTarget::Sim => OffReport {
            done: vec!["driver.kind is sim: nothing to turn off".into()],
            failed: Vec::new(),
        },
        OffTarget::Pwm { sysfs_root, chips } => pwm_off(sysfs_root, chips),
        OffTarget::Serial { port, baud, slots } => serial_off(port, *baud, *slots).await,
    };
    (plan, report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chips(list: &[u32]) -> BTreeSet<u32> {
        list.iter().copied().collect()
    }

    #[test]
    fn no_file_means_sim() {
        assert_eq!(plan(None, &[]).target, OffTarget::Sim);
    }

    #[test]
    fn pwm_chips_come_from_chip_and_outputs_even_beside_broken_sections() {
        let text = "[routines]\nbroken = 3\n[driver]\nkind = \"pwm\"\nbogus = 1\n\
                    [driver.pwm]\nsysfs_root = \"/x\"\nchip = 2\noutputs = [\"0:1\", \"nonsense\"]\n";
        let plan = plan(Some(text), &[]);
        assert_eq!(
            plan.target,
            OffTarget::Pwm {
                sysfs_root: "/x".into(),
                chips: chips(&[0, 2])
            }
        );
        assert!(
            plan.notes.iter().any(|n| n.contains("outputs[1]")),
            "{:?}",
            plan.notes
        );
    }

    #[test]
    fn environment_overrides_the_file() {
        let env = [
            ("MASSAGED__DRIVER__KIND".to_owned(), "pwm".to_owned()),
            ("MASSAGED__DRIVER__PWM__CHIP".to_owned(), "4".to_owned()),
            ("MASSAGED__DEVICE__ID".to_owned(), "x".to_owned()),
        ];
        let plan = plan(Some("[driver]\nkind = \"sim\"\n"), &env);
        assert!(
            matches!(plan.target, OffTarget::Pwm { chips: ref got, .. } if *got == chips(&[4])),
            "{plan:?}"
        );
    }

    #[test]
    fn serial_counts_slots_from_the_channel_map() {
        let text =
            "[driver]\nkind = \"serial\"\nheat_channel = 14\n[driver.serial]\nport = \"/dev/x\"\n";
        assert_eq!(
            plan(Some(text), &[]).target,
            OffTarget::Serial {
                port: "/dev/x".into(),
                baud: 115_200,
                slots: 15
            }
        );
    }

    #[test]
    fn a_file_that_is_not_toml_falls_back_to_every_pwm_chip() {
        let root = tempfile::tempdir().unwrap();
        for chip in [0, 3] {
            fs::create_dir(root.path().join(format!("pwmchip{chip}"))).unwrap();
        }
        let env = [(
            "MASSAGED__DRIVER__PWM__SYSFS_ROOT".to_owned(),
            root.path().display().to_string(),
        )];
        let plan = plan(Some("[driver\nkind = "), &env);
        assert!(
            matches!(plan.target, OffTarget::Pwm { chips: ref got, .. } if *got == chips(&[0, 3])),
            "{plan:?}"
        );
        assert!(plan.notes[0].contains("not valid TOML"), "{:?}", plan.notes);
    }
}
