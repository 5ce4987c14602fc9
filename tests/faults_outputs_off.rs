//! Death paths the daemon cannot handle itself (SIGKILL, watchdog abort, OOM kill, a double
//! panic: the process is gone without unwinding) leave PWM duty cycles where they were; what
//! systemd runs as `ExecStopPost=` (`massaged outputs-off --config FILE`) must zero and disable
//! every channel, also when the configuration no longer loads.

#[allow(dead_code)]
mod support;

use std::path::Path;
use std::process::{Command, Output};
use support::daemon::DaemonProcess;
use support::sysfs::FakePwm;
use support::{TIMEOUT, TestBroker, json};

/// Slots in the default channel map: ten motors and the heater.
const CHANNELS: u32 = 11;

fn read(pwm: &FakePwm, channel: u32, name: &str) -> String {
    std::fs::read_to_string(pwm.channel_dir(channel).join(name))
        .unwrap_or_else(|e| panic!("pwm{channel}/{name}: {e}"))
        .trim()
        .to_owned()
}

/// What systemd's `ExecStopPost=` runs, with the unit's `--config`.
fn outputs_off(config: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_massaged"))
        .arg("outputs-off")
        .arg("--config")
        .arg(config)
        .env_remove("MASSAGED_CONFIG")
        .output()
        .expect("run massaged outputs-off")
}

/// Starts a session at full intensity on the emulated tree, waits until duty cycles are above
/// zero, then SIGKILLs the daemon; returns the daemon (dead) with its config still on disk.
async fn kill_mid_session(broker: &TestBroker, pwm: &FakePwm) -> DaemonProcess {
    let mut daemon = DaemonProcess::spawn(
        broker,
        &format!("{}\n[engine]\nramp_ms = 0\n", pwm.driver_toml()),
    );
    let mut client = daemon
        .online_watcher(broker, &format!("{}-w", daemon.device_id))
        .await;
    daemon
        .command(
            &mut client,
            r#"{"id":"s","action":"start","routine":"full-scalp","intensity":100,"heat":true}"#,
        )
        .await;
    let reply = client
        .expect(&daemon.topic("response"), |m| json(m)["id"] == "s", TIMEOUT)
        .await;
    assert_eq!(json(&reply)["ok"], true, "{}", reply.text());
    let on = support::watch::poll(TIMEOUT, || {
        pwm.duties(CHANNELS).iter().any(|&d| d > 0).then_some(())
    });
    assert!(
        on.is_some(),
        "a duty above zero: {:?}",
        pwm.duties(CHANNELS)
    );
    daemon.kill();
    // The process died without unwinding: nothing zeroed the outputs.
    assert!(
        pwm.duties(CHANNELS).iter().any(|&d| d > 0),
        "still on after SIGKILL: {:?}",
        pwm.duties(CHANNELS)
    );
    daemon
}

fn assert_all_off(pwm: &FakePwm, output: &Output) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{:?}\n{stdout}\n{stderr}",
        output.status
    );
    for channel in 0..CHANNELS {
        assert_eq!(
            read(pwm, channel, "duty_cycle"),
            "0",
            "pwm{channel}: {stdout}"
        );
        assert_eq!(read(pwm, channel, "enable"), "0", "pwm{channel}: {stdout}");
        assert_eq!(read(pwm, channel, "polarity"), "normal", "pwm{channel}");
    }
    assert_eq!(
        stdout.matches("duty 0, disabled").count(),
        CHANNELS as usize,
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_session_then_exec_stop_post_zeroes_and_disables_every_channel() {
    let broker = TestBroker::start();
    let pwm = FakePwm::new(0);
    let daemon = kill_mid_session(&broker, &pwm).await;
    // A channel someone left inversed is put back too (at duty 0 it would be fully on).
    std::fs::write(pwm.channel_dir(3).join("polarity"), "inversed").unwrap();
    let output = outputs_off(&daemon.config_path());
    assert_all_off(&pwm, &output);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_off_works_from_a_config_that_no_longer_loads() {
    let broker = TestBroker::start();
    let pwm = FakePwm::new(0);
    let daemon = kill_mid_session(&broker, &pwm).await;
    // An edit after the daemon started: a broken routine; the restarted daemon would refuse
    // the file and never get to zero the outputs.
    let config = daemon.config_path();
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("\n[[routines]]\nid = \"Not Kebab\"\nname = \"\"\n");
    std::fs::write(&config, text).unwrap();
    let check = Command::new(env!("CARGO_BIN_EXE_massaged"))
        .arg("check-config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!check.status.success(), "the config is invalid");
    let output = outputs_off(&config);
    assert_all_off(&pwm, &output);
}

#[test]
fn a_config_that_is_not_toml_zeroes_every_exported_channel_under_the_root() {
    let pwm = FakePwm::new(0);
    for channel in [0, 5] {
        std::fs::write(pwm.root().join("pwmchip0/export"), channel.to_string()).unwrap();
        let appeared =
            support::watch::poll(TIMEOUT, || pwm.channel_dir(channel).is_dir().then_some(()));
        assert!(appeared.is_some());
        std::fs::write(pwm.channel_dir(channel).join("duty_cycle"), "700000").unwrap();
        std::fs::write(pwm.channel_dir(channel).join("enable"), "1").unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("massaged.toml");
    std::fs::write(&config, "[driver\nkind = pwm").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_massaged"))
        .args(["outputs-off", "--config"])
        .arg(&config)
        .env("MASSAGED__DRIVER__PWM__SYSFS_ROOT", pwm.root())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("not valid TOML"), "{stderr}");
    for channel in [0, 5] {
        assert_eq!(read(&pwm, channel, "duty_cycle"), "0");
        assert_eq!(read(&pwm, channel, "enable"), "0");
    }
}

#[test]
fn sim_has_nothing_to_turn_off_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("massaged.toml");
    std::fs::write(&config, "[driver]\nkind = \"sim\"\n[routines]\nbad = 1\n").unwrap();
    let output = outputs_off(&config);
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("nothing to turn off"));
}
