//! The real `massaged` binary as a child process, configured against a [`TestBroker`].
//!
//! Each daemon gets its own temp dir with its config, saved state (`state.json`), frame
//! recording (`frames.csv`, written by the sim driver on every frame) and log (`daemon.log`).

use super::TestBroker;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A running daemon process.
pub struct DaemonProcess {
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// Device id, unique per daemon so tests sharing a broker don't see each other.
    pub device_id: String,
    /// When the process was spawned (startup benches measure from here).
    pub spawned_at: Instant,
}

/// A fresh device id: `{prefix}` and eight hex digits.
pub fn new_device_id(prefix: &str) -> String {
    format!("{prefix}{:08x}", fastrand::u32(..))
}

/// A command starting the built-in `temple-circles` routine with the heater on.
pub const START_WITH_HEAT: &str = r#"{"action":"start","routine":"temple-circles","heat":true}"#;

/// The daemon's topic root for a device id.
pub fn root(device_id: &str) -> String {
    format!("massaged/{device_id}")
}

impl DaemonProcess {
    /// Starts `massaged run` against `broker` with the sim driver recording frames.
    /// `extra_toml` is appended to the generated config (use it for more sections/keys).
    pub fn spawn(broker: &TestBroker, extra_toml: &str) -> DaemonProcess {
        let dir = tempfile::tempdir().expect("temp dir");
        let device_id = new_device_id("t");
        DaemonProcess::spawn_in(dir, device_id, &broker.url(), "", extra_toml, &[])
    }

    /// Like [`DaemonProcess::spawn`], with extra environment variables (`NOTIFY_SOCKET`,
    /// `MASSAGED__SECTION__KEY` overrides).
    pub fn spawn_with_env(
        broker: &TestBroker,
        extra_toml: &str,
        env: &[(&str, &std::ffi::OsStr)],
    ) -> DaemonProcess {
        let dir = tempfile::tempdir().expect("temp dir");
        let device_id = new_device_id("t");
        DaemonProcess::spawn_in(dir, device_id, &broker.url(), "", extra_toml, env)
    }

    /// Starts `massaged run` against the broker at `url` (any scheme); `mqtt_keys` are TOML
    /// lines added to the `[mqtt]` section (credentials, TLS files).
    pub fn spawn_with_url(url: &str, mqtt_keys: &str, extra_toml: &str) -> DaemonProcess {
        let dir = tempfile::tempdir().expect("temp dir");
        let device_id = new_device_id("t");
        DaemonProcess::spawn_in(dir, device_id, url, mqtt_keys, extra_toml, &[])
    }

    /// Starts a daemon reusing another's directory and device id (a restart); the previous
    /// process is killed first if it still runs.
    pub fn respawn(
        mut previous: DaemonProcess,
        broker: &TestBroker,
        extra_toml: &str,
    ) -> DaemonProcess {
        previous.kill();
        let dir = std::mem::replace(&mut previous.dir, tempfile::tempdir().expect("temp dir"));
        let device_id = std::mem::take(&mut previous.device_id);
        DaemonProcess::spawn_in(dir, device_id, &broker.url(), "", extra_toml, &[])
    }

    fn spawn_in(
        dir: tempfile::TempDir,
        device_id: String,
        url: &str,
        mqtt_keys: &str,
        extra_toml: &str,
        env: &[(&str, &std::ffi::OsStr)],
    ) -> DaemonProcess {
        let config = format!(
            "[device]\nid = \"{device_id}\"\nname = \"Test headrest\"\n\n\
             [mqtt]\nurl = \"{url}\"\nkeep_alive_s = 5\nprogress_interval_s = 1\n{mqtt_keys}\n\n\
             [store]\npath = \"{state}\"\ndebounce_ms = 50\n\n\
             [log]\nlevel = \"debug\"\nformat = \"text\"\n\n\
             [driver]\nrecord = \"{frames}\"\n\n{extra_toml}\n",
            state = dir.path().join("state.json").display(),
            frames = dir.path().join("frames.csv").display(),
        );
        DaemonProcess::launch(
            Path::new(env!("CARGO_BIN_EXE_massaged")),
            dir,
            device_id,
            &config,
            env,
        )
    }

    /// Writes `config` to `massaged.toml` in `dir` and starts `bin run` on it, stdout and
    /// stderr appended to `daemon.log` there. `config` should keep its state (and any frame
    /// recording) in `dir` too.
    pub fn launch(
        bin: &Path,
        dir: tempfile::TempDir,
        device_id: String,
        config: &str,
        env: &[(&str, &std::ffi::OsStr)],
    ) -> DaemonProcess {
        let config_path = dir.path().join("massaged.toml");
        std::fs::write(&config_path, config).expect("write config");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join("daemon.log"))
            .expect("log file");
        let spawned_at = Instant::now();
        let child = Command::new(bin)
            .arg("run")
            .arg("--config")
            .arg(&config_path)
            .env_remove("RUST_LOG")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("JOURNAL_STREAM")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("spawn massaged");
        DaemonProcess {
            child: Some(child),
            dir,
            device_id,
            spawned_at,
        }
    }

    /// The daemon's temp dir.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Path of the daemon's config file (for `massaged ctl` and `forget`, which read it too).
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("massaged.toml")
    }

    /// Path of the frame recording (`frames.csv`).
    pub fn frames_path(&self) -> PathBuf {
        self.dir.path().join("frames.csv")
    }

    /// Path of the daemon's log.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("daemon.log")
    }

    /// Path of the saved state.
    pub fn state_path(&self) -> PathBuf {
        self.dir.path().join("state.json")
    }

    /// `massaged/{id}`.
    pub fn root(&self) -> String {
        root(&self.device_id)
    }

    /// `massaged/{id}/{leaf}`.
    pub fn topic(&self, leaf: &str) -> String {
        format!("{}/{leaf}", self.root())
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Sends a signal by name (`TERM`, `INT`, `KILL`, `STOP`, `CONT`).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} {}", self.pid());
    }

    /// Waits for the process to exit, at most `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            // Polling a child's exit status has no event to wait on without a runtime.
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Kills the process (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Every recorded frame as (t_ms, levels), in order.
    pub fn frames(&self) -> Vec<(u64, Vec<u16>)> {
        let text = std::fs::read_to_string(self.frames_path()).unwrap_or_default();
        text.lines()
            .skip(1)
            .filter_map(|line| {
                let mut parts = line.split(',');
                let t = parts.next()?.parse().ok()?;
                let levels = parts.map(|p| p.parse().unwrap_or(u16::MAX)).collect();
                Some((t, levels))
            })
            .collect()
    }

    /// The last recorded frame.
    pub fn last_frame(&self) -> Option<Vec<u16>> {
        self.frames().pop().map(|(_, levels)| levels)
    }

    /// Waits until the recording satisfies `predicate`, at most `timeout`.
    pub fn wait_frames(
        &self,
        timeout: Duration,
        predicate: impl Fn(&[(u64, Vec<u16>)]) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if predicate(&self.frames()) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            // The recording is a file; there is no change notification to wait on.
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The daemon's log so far (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }
}

impl Drop for DaemonProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

impl DaemonProcess {
    /// Publishes `payload` to the daemon's `set` topic through `client`, acknowledged.
    pub async fn command(&self, client: &mut super::TestClient, payload: &str) {
        client.publish(&self.topic("set"), payload, false).await;
    }

    /// Waits on `client` (subscribed to the daemon's root) for `offline` on availability.
    pub async fn expect_offline(&self, client: &mut super::TestClient) {
        client
            .expect_text(&self.topic("availability"), "offline")
            .await;
    }

    /// The daemon's Home Assistant device discovery topic.
    pub fn discovery_topic(&self) -> String {
        format!("homeassistant/device/{}/config", self.device_id)
    }

    /// A client subscribed to everything the daemon publishes (its root and its discovery),
    /// returned as soon as subscribed.
    pub async fn watcher(&self, broker: &TestBroker, client_id: &str) -> super::TestClient {
        let mut client = super::TestClient::connect(broker, client_id).await;
        client.subscribe(&format!("{}/#", self.root())).await;
        client.subscribe(&self.discovery_topic()).await;
        client
    }

    /// A client subscribed to everything under the daemon's root, returned once the daemon
    /// has published `online`.
    pub async fn online_watcher(&self, broker: &TestBroker, client_id: &str) -> super::TestClient {
        let mut client = super::TestClient::connect(broker, client_id).await;
        client.subscribe(&format!("{}/#", self.root())).await;
        client
            .expect(
                &self.topic("availability"),
                |m| m.text() == "online",
                super::TIMEOUT,
            )
            .await;
        client
    }

    /// Starts a daemon against `broker` (as [`DaemonProcess::spawn`]) and returns it with its
    /// [`DaemonProcess::online_watcher`].
    pub async fn spawn_online(
        broker: &TestBroker,
        extra_toml: &str,
        client_id: &str,
    ) -> (DaemonProcess, super::TestClient) {
        let daemon = DaemonProcess::spawn(broker, extra_toml);
        let client = daemon.online_watcher(broker, client_id).await;
        (daemon, client)
    }
}
