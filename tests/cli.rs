//! The command line: `routines`, `simulate`, `check-config`, and `ctl`/`forget` against a
//! running daemon.

#[allow(dead_code)]
mod support;

use std::process::{Command, Output};
use support::daemon::DaemonProcess;
use support::routine::routine_toml;
use support::{TIMEOUT, TestBroker};

fn massaged(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_massaged"))
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("MASSAGED_CONFIG")
        .output()
        .expect("run massaged")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn routines_lists_every_builtin() {
    let out = massaged(&["--config", "config/massaged.toml", "routines"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for id in [
        "temple-circles",
        "hairline-circles",
        "hairline-to-crown",
        "neck-and-ears",
        "full-scalp",
        "pre-shampoo",
        "headache-relief",
        "stress-relief",
        "circulation",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(id)),
            "{id} missing:\n{text}"
        );
    }
}

#[test]
fn simulate_json_is_the_same_bytes_on_every_run() {
    let args = [
        "--config",
        "config/massaged.toml",
        "simulate",
        "full-scalp",
        "--format",
        "json",
    ];
    let a = massaged(&args);
    let b = massaged(&args);
    assert!(a.status.success(), "{}", stderr(&a));
    assert!(!a.stdout.is_empty());
    assert_eq!(a.stdout, b.stdout);
}

#[test]
fn check_config_names_the_bad_key_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[safety]\nmax_level = 5000\n").unwrap();
    let out = massaged(&["check-config", path.to_str().unwrap()]);
    assert!(!out.status.success());
    let text = stderr(&out);
    assert!(
        text.contains("safety.max_level") && text.contains("line 2"),
        "{text}"
    );
    let good = massaged(&["check-config", "config/massaged.toml"]);
    assert!(good.status.success(), "{}", stderr(&good));
}

fn ctl(daemon: &DaemonProcess, args: &[&str]) -> Output {
    let config = daemon.config_path();
    let mut all = vec!["--config", config.to_str().unwrap(), "ctl"];
    all.extend_from_slice(args);
    massaged(&all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_starts_reports_rejections_and_status_follows_availability() {
    let broker = TestBroker::start();
    let (mut daemon, _watch) = DaemonProcess::spawn_online(&broker, "", "cli-watch").await;

    let out = ctl(&daemon, &["start", "Temple circles", "--intensity", "40"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(stdout(&out).trim(), "ok");

    let status = ctl(&daemon, &["status"]);
    assert!(status.status.success(), "{}", stderr(&status));
    let text = stdout(&status);
    assert!(text.contains("availability: online"), "{text}");
    assert!(
        text.contains(r#""state": "running""#) && text.contains(r#""intensity": 40"#),
        "{text}"
    );

    let rejected = ctl(&daemon, &["start", "no-such-routine"]);
    assert!(!rejected.status.success());
    assert!(
        stderr(&rejected).contains("unknown_routine"),
        "{}",
        stderr(&rejected)
    );

    let out = ctl(&daemon, &["stop"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let paused = ctl(&daemon, &["pause"]);
    assert!(!paused.status.success());
    assert!(
        stderr(&paused).contains("not_running"),
        "{}",
        stderr(&paused)
    );

    daemon.signal("TERM");
    daemon.wait_exit(TIMEOUT).expect("daemon exits");
    let offline = ctl(&daemon, &["status"]);
    assert!(!offline.status.success(), "status fails while offline");
    assert!(
        stdout(&offline).contains("availability: offline"),
        "{}",
        stdout(&offline)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_clears_discovery_picture_state_and_availability() {
    let broker = TestBroker::start();
    let (mut daemon, mut client) = DaemonProcess::spawn_online(&broker, "", "forget-watch").await;
    let discovery = format!("homeassistant/device/{}/config", daemon.device_id);
    client.subscribe(&discovery).await;
    client
        .expect(&discovery, |m| m.text().contains("cmps"), TIMEOUT)
        .await;
    let picture = daemon.topic("routine_image");
    client.subscribe(&picture).await;
    client
        .expect(&picture, |m| m.text().starts_with("<svg"), TIMEOUT)
        .await;
    daemon.signal("TERM");
    daemon.wait_exit(TIMEOUT).expect("daemon exits");

    let config = daemon.config_path();
    let out = massaged(&["--config", config.to_str().unwrap(), "forget"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut fresh = support::TestClient::connect(&broker, "forget-check").await;
    for topic in [
        discovery,
        picture,
        daemon.topic("state"),
        daemon.topic("availability"),
    ] {
        let left = fresh
            .retained(&topic, std::time::Duration::from_millis(500))
            .await;
        assert!(
            left.as_ref().is_none_or(|p| p.is_empty()),
            "{topic} still retained: {left:?}\n{}",
            daemon.log()
        );
    }

    // Another device by id: its topics, and the message names it, not this config's device.
    let out = massaged(&[
        "--config",
        config.to_str().unwrap(),
        "forget",
        "--device",
        "old-den-pi",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("removed massaged/old-den-pi from Home Assistant"),
        "{}",
        stdout(&out)
    );
}

/// Runs massaged with its stdout a pipe whose reading end is closed at once, as after
/// `massaged ... | head -0`: writes fail with a broken pipe (`std::io::pipe` would close it
/// before the start, but is newer than the MSRV).
fn massaged_into_closed_pipe(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_massaged"))
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("MASSAGED_CONFIG")
        .env("RUST_BACKTRACE", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run massaged");
    drop(child.stdout.take());
    child.wait_with_output().expect("wait for massaged")
}

fn assert_quiet_end(out: &Output, what: &str) {
    assert!(out.status.success(), "{what}: {:?}", out.status);
    assert!(out.stderr.is_empty(), "{what}: {}", stderr(out));
}

#[test]
fn a_closed_stdout_ends_every_listing_quietly() {
    let config = ["--config", "config/massaged.toml"];
    for (what, args) in [
        (
            "simulate csv",
            &["simulate", "full-scalp", "--format", "csv"][..],
        ),
        (
            "simulate svg",
            &["simulate", "full-scalp", "--format", "svg"][..],
        ),
        ("simulate table", &["simulate", "full-scalp"][..]),
        ("routines", &["routines"][..]),
        (
            "check-config",
            &["check-config", "config/massaged.toml"][..],
        ),
    ] {
        let all: Vec<&str> = config.iter().chain(args).copied().collect();
        assert_quiet_end(&massaged_into_closed_pipe(&all), what);
    }
}

#[test]
fn simulate_csv_names_columns_after_zones_and_sides() {
    let out = massaged(&[
        "--config",
        "config/massaged.toml",
        "simulate",
        "pre-shampoo",
        "--format",
        "csv",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(
        text.lines().next(),
        Some(
            "t_ms,temples_left,temples_right,hairline_left,hairline_right,crown_left,\
             crown_right,ears_left,ears_right,neck_left,neck_right,heat"
        )
    );
}

#[test]
fn simulate_svg_draws_a_user_routine_the_same_bytes_every_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mine.toml");
    let routine = routine_toml(
        "my-temples",
        r#"My <temples> & \"more\""#,
        "mine",
        &[("Press & hold", "temples", "press", 40)],
        "",
    );
    std::fs::write(&path, routine).unwrap();
    let args = [
        "--config",
        path.to_str().unwrap(),
        "simulate",
        "my-temples",
        "--format",
        "svg",
    ];
    let a = massaged(&args);
    assert!(a.status.success(), "{}", stderr(&a));
    let svg = stdout(&a);
    assert!(svg.starts_with("<svg "), "{svg}");
    assert!(
        svg.contains("My &lt;temples&gt; &amp; &quot;more&quot;"),
        "{svg}"
    );
    assert!(svg.contains("press: Press &amp; hold"), "{svg}");
    assert_eq!(a.stdout, massaged(&args).stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_status_into_a_closed_pipe_ends_quietly() {
    let broker = TestBroker::start();
    let (mut daemon, _watch) = DaemonProcess::spawn_online(&broker, "", "cli-pipe-watch").await;
    let config = daemon.config_path();
    let out = massaged_into_closed_pipe(&["--config", config.to_str().unwrap(), "ctl", "status"]);
    assert_quiet_end(&out, "ctl status");
    daemon.signal("TERM");
    daemon.wait_exit(TIMEOUT).expect("daemon exits");
}
