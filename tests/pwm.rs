//! The PWM driver against a temp directory laid out like /sys/class/pwm, with a thread
//! emulating the kernel's `export`/`unexport`. Writes are observed through the driver's
//! trace events (file and value) and through the files themselves.

#[allow(dead_code)]
mod support;

use massaged::config::{DriverKind, DriverSection, PwmSection};
use massaged::core::Frame;
use massaged::device::{DeviceError, Driver, PwmDriver};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use support::sysfs::create_channel;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};

/// Emulates the kernel side of a PWM class directory: creates `pwmN/` when `N` is written to
/// `export`, removes it on `unexport`.
struct FakeSysfs {
    root: tempfile::TempDir,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    exported: Arc<Mutex<Vec<(u32, u32)>>>,
    unexported: Arc<Mutex<Vec<(u32, u32)>>>,
}

fn take_number(path: &Path) -> Option<u32> {
    let text = fs::read_to_string(path).ok()?;
    let n = text.trim().parse().ok()?;
    // Clear first, so the driver's next export cannot be overwritten by this clear.
    fs::write(path, "").ok()?;
    Some(n)
}

impl FakeSysfs {
    fn new(chips: &[u32]) -> FakeSysfs {
        let root = tempfile::tempdir().unwrap();
        for chip in chips {
            let dir = root.path().join(format!("pwmchip{chip}"));
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join("export"), "").unwrap();
            fs::write(dir.join("unexport"), "").unwrap();
            fs::write(dir.join("npwm"), "16\n").unwrap();
        }
        let stop = Arc::new(AtomicBool::new(false));
        let exported = Arc::new(Mutex::new(Vec::new()));
        let unexported = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, exported, unexported) = (stop.clone(), exported.clone(), unexported.clone());
            let base = root.path().to_owned();
            let chips = chips.to_vec();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    for &chip in &chips {
                        let chip_dir = base.join(format!("pwmchip{chip}"));
                        // Noted before acting, so the driver cannot see the effect first.
                        if let Some(n) = take_number(&chip_dir.join("export")) {
                            exported.lock().unwrap().push((chip, n));
                            create_channel(&chip_dir, n);
                        }
                        if let Some(n) = take_number(&chip_dir.join("unexport")) {
                            unexported.lock().unwrap().push((chip, n));
                            let _ = fs::remove_dir_all(chip_dir.join(format!("pwm{n}")));
                        }
                    }
                    // Polling stands in for the kernel acting on the write.
                    std::thread::sleep(Duration::from_millis(1));
                }
            })
        };
        FakeSysfs {
            root,
            stop,
            thread: Some(thread),
            exported,
            unexported,
        }
    }

    fn path(&self) -> &Path {
        self.root.path()
    }

    fn attr(&self, chip: u32, channel: u32, name: &str) -> PathBuf {
        self.path()
            .join(format!("pwmchip{chip}/pwm{channel}/{name}"))
    }

    fn read(&self, chip: u32, channel: u32, name: &str) -> String {
        fs::read_to_string(self.attr(chip, channel, name)).unwrap()
    }

    fn section(&self) -> PwmSection {
        PwmSection {
            sysfs_root: self.path().to_owned(),
            chip: 0,
            outputs: Vec::new(),
            frequency_hz: 1000,
        }
    }
}

impl Drop for FakeSysfs {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Every "pwm sysfs write" event as (file relative to the root, value).
#[derive(Clone, Default)]
struct WriteLog {
    writes: Arc<Mutex<Vec<(String, String)>>>,
    root: PathBuf,
}

#[derive(Default)]
struct Fields {
    message: String,
    file: String,
    value: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record_debug(field, &value);
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.record_debug(field, &value);
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}").trim_matches('"').to_owned();
        match field.name() {
            "message" => self.message = text,
            "file" => self.file = text,
            "value" => self.value = text,
            _ => {}
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for WriteLog {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        if fields.message == "pwm sysfs write" {
            let file = Path::new(&fields.file)
                .strip_prefix(&self.root)
                .map(|p| p.display().to_string())
                .unwrap_or(fields.file);
            self.writes.lock().unwrap().push((file, fields.value));
        }
    }
}

impl WriteLog {
    /// Runs `f` with every sysfs write of this thread recorded.
    fn record<T>(root: &Path, f: impl FnOnce() -> T) -> (T, Vec<(String, String)>) {
        let log = WriteLog {
            writes: Arc::default(),
            root: root.to_owned(),
        };
        let subscriber = tracing_subscriber::registry().with(log.clone());
        let result = tracing::subscriber::with_default(subscriber, f);
        let writes = log.writes.lock().unwrap().clone();
        (result, writes)
    }
}

fn w(file: &str, value: &str) -> (String, String) {
    (file.to_owned(), value.to_owned())
}

/// Opens the driver for `channels` on the tree's default section, recording its sysfs writes.
fn open_recorded(sysfs: &FakeSysfs, channels: usize) -> (PwmDriver, Vec<(String, String)>) {
    let (driver, writes) =
        WriteLog::record(sysfs.path(), || PwmDriver::open(&sysfs.section(), channels));
    (driver.unwrap(), writes)
}

fn frame(levels: &[u16]) -> Frame {
    Frame {
        levels: levels.to_vec(),
    }
}

#[test]
fn open_exports_then_disables_sets_polarity_and_period_before_duty_then_enables() {
    let sysfs = FakeSysfs::new(&[0]);
    let (_driver, writes) = open_recorded(&sysfs, 2);
    assert_eq!(
        writes,
        vec![
            w("pwmchip0/export", "0"),
            w("pwmchip0/pwm0/enable", "0"),
            w("pwmchip0/pwm0/polarity", "normal"),
            w("pwmchip0/pwm0/period", "1000000"),
            w("pwmchip0/pwm0/duty_cycle", "0"),
            w("pwmchip0/pwm0/enable", "1"),
            w("pwmchip0/export", "1"),
            w("pwmchip0/pwm1/enable", "0"),
            w("pwmchip0/pwm1/polarity", "normal"),
            w("pwmchip0/pwm1/period", "1000000"),
            w("pwmchip0/pwm1/duty_cycle", "0"),
            w("pwmchip0/pwm1/enable", "1"),
        ]
    );
    assert_eq!(*sysfs.exported.lock().unwrap(), vec![(0, 0), (0, 1)]);
    for ch in 0..2 {
        assert_eq!(sysfs.read(0, ch, "period"), "1000000");
        assert_eq!(sysfs.read(0, ch, "duty_cycle"), "0");
        assert_eq!(sysfs.read(0, ch, "enable"), "1");
    }
}

#[test]
fn duty_cycle_is_written_only_for_changed_levels() {
    let sysfs = FakeSysfs::new(&[0]);
    let mut driver = PwmDriver::open(&sysfs.section(), 3).unwrap();
    let (result, writes) = WriteLog::record(sysfs.path(), || driver.write(&frame(&[0, 500, 1000])));
    result.unwrap();
    assert_eq!(
        writes,
        vec![
            w("pwmchip0/pwm1/duty_cycle", "500000"),
            w("pwmchip0/pwm2/duty_cycle", "1000000"),
        ]
    );
    let (result, writes) = WriteLog::record(sysfs.path(), || driver.write(&frame(&[0, 500, 1])));
    result.unwrap();
    assert_eq!(writes, vec![w("pwmchip0/pwm2/duty_cycle", "1000")]);
    assert_eq!(sysfs.read(0, 0, "duty_cycle"), "0");
    assert_eq!(sysfs.read(0, 1, "duty_cycle"), "500000");
    assert_eq!(sysfs.read(0, 2, "duty_cycle"), "1000");
}

#[test]
fn all_off_zeroes_every_channel_and_close_disables_and_unexports() {
    let sysfs = FakeSysfs::new(&[0]);
    let mut driver = PwmDriver::open(&sysfs.section(), 2).unwrap();
    driver.write(&frame(&[300, 700])).unwrap();
    let (result, writes) = WriteLog::record(sysfs.path(), || driver.all_off());
    result.unwrap();
    assert_eq!(
        writes,
        vec![
            w("pwmchip0/pwm0/duty_cycle", "0"),
            w("pwmchip0/pwm1/duty_cycle", "0"),
        ]
    );
    assert_eq!(sysfs.read(0, 1, "duty_cycle"), "0");
    let (result, writes) = WriteLog::record(sysfs.path(), || driver.close());
    result.unwrap();
    assert_eq!(
        writes,
        vec![
            w("pwmchip0/pwm0/duty_cycle", "0"),
            w("pwmchip0/pwm0/enable", "0"),
            w("pwmchip0/unexport", "0"),
            w("pwmchip0/pwm1/duty_cycle", "0"),
            w("pwmchip0/pwm1/enable", "0"),
            w("pwmchip0/unexport", "1"),
        ]
    );
}

#[test]
fn outputs_override_maps_the_heater_slot_to_another_chip() {
    let sysfs = FakeSysfs::new(&[0, 2]);
    let section = PwmSection {
        outputs: vec!["0:4".into(), "0:5".into(), "2:1".into()],
        ..sysfs.section()
    };
    let mut driver = PwmDriver::open(&section, 3).unwrap();
    driver.write(&frame(&[0, 0, 1000])).unwrap();
    assert_eq!(sysfs.read(2, 1, "duty_cycle"), "1000000");
    assert_eq!(sysfs.read(0, 4, "duty_cycle"), "0");
    assert_eq!(
        *sysfs.exported.lock().unwrap(),
        vec![(0, 4), (0, 5), (2, 1)]
    );
}

#[test]
fn a_channel_left_exported_and_on_is_zeroed_before_its_period_is_set() {
    let sysfs = FakeSysfs::new(&[0]);
    let chip_dir = sysfs.path().join("pwmchip0");
    create_channel(&chip_dir, 0);
    fs::write(sysfs.attr(0, 0, "period"), "5000000").unwrap();
    fs::write(sysfs.attr(0, 0, "duty_cycle"), "4000000").unwrap();
    fs::write(sysfs.attr(0, 0, "enable"), "1").unwrap();
    let (_driver, writes) = open_recorded(&sysfs, 1);
    assert_eq!(
        writes,
        vec![
            w("pwmchip0/pwm0/duty_cycle", "0"),
            w("pwmchip0/pwm0/enable", "0"),
            w("pwmchip0/pwm0/polarity", "normal"),
            w("pwmchip0/pwm0/period", "1000000"),
            w("pwmchip0/pwm0/duty_cycle", "0"),
            w("pwmchip0/pwm0/enable", "1"),
        ]
    );
    assert!(sysfs.exported.lock().unwrap().is_empty());
}

#[test]
fn a_channel_left_inversed_becomes_normal_while_disabled() {
    let sysfs = FakeSysfs::new(&[0]);
    create_channel(&sysfs.path().join("pwmchip0"), 0);
    fs::write(sysfs.attr(0, 0, "polarity"), "inversed").unwrap();
    fs::write(sysfs.attr(0, 0, "enable"), "1").unwrap();
    let (_driver, writes) = open_recorded(&sysfs, 1);
    assert_eq!(sysfs.read(0, 0, "polarity"), "normal");
    let disabled = writes
        .iter()
        .position(|x| *x == w("pwmchip0/pwm0/enable", "0"));
    let polarity = writes
        .iter()
        .position(|x| *x == w("pwmchip0/pwm0/polarity", "normal"));
    assert!(
        disabled.is_some() && polarity.is_some() && disabled < polarity,
        "disabled before the polarity write: {writes:?}"
    );
}

#[test]
fn a_polarity_the_kernel_refuses_fails_open_naming_the_channel() {
    let sysfs = FakeSysfs::new(&[0]);
    create_channel(&sysfs.path().join("pwmchip0"), 0);
    // Root ignores file modes: a directory in place of the file makes the write fail.
    let polarity = sysfs.attr(0, 0, "polarity");
    fs::remove_file(&polarity).unwrap();
    fs::create_dir(&polarity).unwrap();
    let err = PwmDriver::open(&sysfs.section(), 1).unwrap_err();
    assert!(
        matches!(
            err,
            DeviceError::Polarity {
                chip: 0,
                channel: 0,
                ..
            }
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("polarity normal") && text.contains("0:0"),
        "{text}"
    );
    assert_eq!(err.code(), "pwm_polarity");
    assert_eq!(sysfs.read(0, 0, "enable"), "0", "left disabled");
}

#[test]
fn an_unwritable_duty_cycle_gives_an_error_naming_the_file() {
    let sysfs = FakeSysfs::new(&[0]);
    let mut driver = PwmDriver::open(&sysfs.section(), 2).unwrap();
    let duty = sysfs.attr(0, 1, "duty_cycle");
    // Root ignores file modes, so make the write fail the way a vanished attribute would.
    fs::remove_file(&duty).unwrap();
    fs::create_dir(&duty).unwrap();
    let err = driver.write(&frame(&[0, 400])).unwrap_err();
    assert!(
        matches!(err, DeviceError::Io { ref path, .. } if *path == duty),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&duty.display().to_string()),
        "{err}"
    );
}

#[test]
fn a_removed_channel_fails_the_write_and_recover_exports_it_again() {
    let sysfs = FakeSysfs::new(&[0]);
    let mut driver = PwmDriver::open(&sysfs.section(), 2).unwrap();
    driver.write(&frame(&[100, 100])).unwrap();
    fs::remove_dir_all(sysfs.path().join("pwmchip0/pwm0")).unwrap();
    let err = driver.write(&frame(&[200, 100])).unwrap_err();
    assert!(
        err.to_string().contains("pwmchip0/pwm0/duty_cycle"),
        "{err}"
    );
    // recover never sleeps: the first attempt may find the export not there yet, a later
    // one (the caller's retry) finds it.
    let recovered = support::watch::poll(Duration::from_secs(5), || match driver.recover() {
        Ok(()) => Some(()),
        Err(DeviceError::ExportTimeout { waited_ms: 0, .. }) => None,
        Err(other) => panic!("recover: {other}"),
    });
    assert!(
        recovered.is_some(),
        "recover succeeds once the export appears"
    );
    assert_eq!(
        sysfs.exported.lock().unwrap()[..3],
        [(0, 0), (0, 1), (0, 0)]
    );
    assert_eq!(sysfs.read(0, 0, "enable"), "1");
    assert_eq!(
        sysfs.read(0, 1, "duty_cycle"),
        "0",
        "recover leaves every output off"
    );
    driver.write(&frame(&[200, 100])).unwrap();
    assert_eq!(sysfs.read(0, 0, "duty_cycle"), "200000");
    assert_eq!(sysfs.read(0, 1, "duty_cycle"), "100000");
}

#[test]
fn a_missing_chip_is_named_with_what_to_do() {
    let sysfs = FakeSysfs::new(&[0]);
    let section = PwmSection {
        chip: 3,
        ..sysfs.section()
    };
    let err = PwmDriver::open(&section, 1).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("pwmchip3") && text.contains("dtoverlay"),
        "{text}"
    );
}

#[test]
fn an_export_that_never_appears_times_out_naming_the_directory() {
    let root = tempfile::tempdir().unwrap();
    let chip = root.path().join("pwmchip0");
    fs::create_dir_all(&chip).unwrap();
    fs::write(chip.join("export"), "").unwrap();
    let section = PwmSection {
        sysfs_root: root.path().to_owned(),
        ..PwmSection::default()
    };
    let err = PwmDriver::open(&section, 1).unwrap_err();
    assert!(matches!(err, DeviceError::ExportTimeout { .. }), "{err:?}");
    assert!(err.to_string().contains("pwmchip0/pwm0"), "{err}");
}

#[test]
fn a_panic_that_unwinds_through_the_owner_leaves_every_output_off() {
    let sysfs = FakeSysfs::new(&[0]);
    let mut driver = PwmDriver::open(&sysfs.section(), 3).unwrap();
    driver.write(&frame(&[1000, 600, 300])).unwrap();
    assert_eq!(sysfs.read(0, 0, "duty_cycle"), "1000000");
    let owner = std::thread::spawn(move || {
        let _owned = driver;
        panic!("shell panicked while the motors run");
    });
    assert!(owner.join().is_err());
    for ch in 0..3 {
        assert_eq!(sysfs.read(0, ch, "duty_cycle"), "0", "channel {ch}");
    }
}

#[tokio::test]
async fn the_driver_enum_opens_pwm_from_the_driver_section() {
    let sysfs = FakeSysfs::new(&[0]);
    let section = DriverSection {
        kind: DriverKind::Pwm,
        pwm: sysfs.section(),
        ..DriverSection::default()
    };
    let mut driver = Driver::open(&section, 2).await.unwrap();
    assert_eq!(driver.kind(), DriverKind::Pwm);
    assert_eq!(driver.heartbeat_due(), None);
    let err = driver.write(&frame(&[1, 2, 3])).await.unwrap_err();
    assert!(matches!(
        err,
        DeviceError::FrameSize {
            expected: 2,
            got: 3
        }
    ));
    driver.write(&frame(&[250, 0])).await.unwrap();
    assert_eq!(sysfs.read(0, 0, "duty_cycle"), "250000");
    driver.close().await.unwrap();
    assert_eq!(*sysfs.unexported.lock().unwrap(), vec![(0, 0), (0, 1)]);
}
