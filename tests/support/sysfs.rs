//! A temp directory laid out like `/sys/class/pwm` with a thread emulating the kernel's
//! `export`/`unexport`, for running the real daemon with `driver.kind = "pwm"`.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// An emulated PWM class directory with one chip; channels appear when exported.
pub struct FakePwm {
    root: tempfile::TempDir,
    chip: u32,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Reads and clears a number written to `export`/`unexport`.
fn take_number(path: &Path) -> Option<u32> {
    let text = fs::read_to_string(path).ok()?;
    let n = text.trim().parse().ok()?;
    // Cleared before acting, so a following write by the driver is not lost.
    fs::write(path, "").ok()?;
    Some(n)
}

/// Creates `pwmN/` with the attribute files the kernel provides. Built aside and renamed
/// into place: the kernel's directory appears with its attributes, never empty.
pub fn create_channel(chip_dir: &Path, channel: u32) {
    let dir = chip_dir.join(format!(".pwm{channel}.new"));
    fs::create_dir_all(&dir).expect("create channel dir");
    for (name, value) in [
        ("period", "0"),
        ("duty_cycle", "0"),
        ("enable", "0"),
        ("polarity", "normal"),
    ] {
        fs::write(dir.join(name), value).expect("create attribute");
    }
    fs::rename(&dir, chip_dir.join(format!("pwm{channel}"))).expect("channel dir into place");
}

impl FakePwm {
    /// A tree with `pwmchip{chip}/` (export, unexport, npwm) and the emulation thread running.
    pub fn new(chip: u32) -> FakePwm {
        let root = tempfile::tempdir().expect("temp dir");
        let chip_dir = root.path().join(format!("pwmchip{chip}"));
        fs::create_dir_all(&chip_dir).expect("chip dir");
        for (name, value) in [("export", ""), ("unexport", ""), ("npwm", "16\n")] {
            fs::write(chip_dir.join(name), value).expect("chip attribute");
        }
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(n) = take_number(&chip_dir.join("export")) {
                        create_channel(&chip_dir, n);
                    }
                    if let Some(n) = take_number(&chip_dir.join("unexport")) {
                        let _ = fs::remove_dir_all(chip_dir.join(format!("pwm{n}")));
                    }
                    // Polling stands in for the kernel acting on the write.
                    std::thread::sleep(Duration::from_millis(1));
                }
            })
        };
        FakePwm {
            root,
            chip,
            stop,
            thread: Some(thread),
        }
    }

    /// The `sysfs_root` to configure.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// `pwmchipC/pwmN/`.
    pub fn channel_dir(&self, channel: u32) -> PathBuf {
        self.root
            .path()
            .join(format!("pwmchip{}/pwm{channel}", self.chip))
    }

    /// The `duty_cycle` of `channel` as a number, `None` when missing or unreadable.
    pub fn duty(&self, channel: u32) -> Option<u64> {
        fs::read_to_string(self.channel_dir(channel).join("duty_cycle"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Duty cycles of channels `0..count` (`u64::MAX` where unreadable).
    pub fn duties(&self, count: u32) -> Vec<u64> {
        (0..count)
            .map(|ch| self.duty(ch).unwrap_or(u64::MAX))
            .collect()
    }

    /// Makes writes to `channel`'s duty cycle fail: the file becomes a directory.
    pub fn break_duty_cycle(&self, channel: u32) {
        let path = self.channel_dir(channel).join("duty_cycle");
        fs::remove_file(&path).expect("remove duty_cycle");
        fs::create_dir(&path).expect("duty_cycle as a directory");
    }

    /// Undoes [`FakePwm::break_duty_cycle`].
    pub fn repair_duty_cycle(&self, channel: u32) {
        let path = self.channel_dir(channel).join("duty_cycle");
        fs::remove_dir(&path).expect("remove duty_cycle directory");
        fs::write(&path, "0").expect("duty_cycle file");
    }

    /// TOML lines for the `[driver]` section (kind) and `[driver.pwm]` pointing at this tree;
    /// append as a daemon's extra config, where they land in its `[driver]` section.
    pub fn driver_toml(&self) -> String {
        format!(
            "kind = \"pwm\"\n\n[driver.pwm]\nsysfs_root = \"{}\"\nchip = {}\nfrequency_hz = 1000\n",
            self.root.path().display(),
            self.chip
        )
    }
}

impl Drop for FakePwm {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
