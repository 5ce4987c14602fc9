//! The serial driver through a pseudo-terminal pair, with a fake microcontroller on the master
//! side that checks every line against docs/serial-protocol.md using its own parser.

use massaged::config::{DriverKind, DriverSection, SerialSection};
use massaged::core::Frame;
use massaged::device::serial::{MAX_HEARTBEAT_MS, check_timings};
use massaged::device::{DeviceError, Driver, SerialDriver};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the fake microcontroller answers.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// `OK` to everything.
    Good,
    /// `ERR <seq> range` to frames.
    RejectFrames,
    /// `OK` with a wrong checksum to frames.
    CorruptFrames,
    /// No answer to frames.
    SilentOnFrames,
    /// Hang up (close the master) on the first frame instead of answering it.
    HangUpOnFrame,
    /// Answer the `HELLO`, then never read again (the line stops draining).
    StallAfterHello,
}

/// One line as the microcontroller understood it.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    at: Instant,
    kind: String,
    seq: u32,
    fields: Vec<String>,
}

/// The microcontroller's record: every line, and every rule a line broke.
#[derive(Debug, Default)]
struct Report {
    lines: Vec<Seen>,
    violations: Vec<String>,
    /// The master, kept open but unread ([`Mode::StallAfterHello`]).
    held: Option<BufReader<File>>,
}

/// CRC-8/SMBUS written independently of the driver's, from the protocol document.
fn crc8(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |mut crc, &b| {
        crc ^= b;
        for _ in 0..8 {
            crc = if crc & 0x80 != 0 {
                (crc << 1) ^ 0x07
            } else {
                crc << 1
            };
        }
        crc
    })
}

fn sealed(body: &str) -> String {
    format!("{body}*{:02X}\n", crc8(body.as_bytes()))
}

fn fake_mcu(master: OwnedFd, mode: Mode) -> JoinHandle<Report> {
    std::thread::spawn(move || {
        let mut report = Report::default();
        let mut writer = File::from(master.try_clone().unwrap());
        let mut reader = BufReader::new(File::from(master));
        let mut last_seq: Option<u32> = None;
        let mut channels = 0usize;
        let mut line = String::new();
        loop {
            line.clear();
            // EIO or EOF: the host side closed.
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let at = Instant::now();
            let Some(text) = line.strip_suffix('\n') else {
                report.violations.push(format!("unterminated {line:?}"));
                break;
            };
            let Some((body, sum)) = text.rsplit_once('*') else {
                report.violations.push(format!("no checksum: {text:?}"));
                continue;
            };
            if sum != format!("{:02X}", crc8(body.as_bytes())) {
                report.violations.push(format!("bad checksum: {text:?}"));
                continue;
            }
            let words: Vec<&str> = body.split(' ').collect();
            let kind = words[0].to_owned();
            let Some(seq) = words.get(1).and_then(|s| s.parse::<u32>().ok()) else {
                report.violations.push(format!("bad sequence: {text:?}"));
                continue;
            };
            if kind == "HELLO" {
                if words.len() != 5 || words[2] != "1" {
                    report.violations.push(format!("bad HELLO: {text:?}"));
                }
                channels = words.get(3).and_then(|c| c.parse().ok()).unwrap_or(0);
            } else if last_seq.is_some_and(|last| seq <= last) {
                report
                    .violations
                    .push(format!("sequence not increasing: {text:?}"));
            } else if last_seq.is_none() {
                report.violations.push(format!("{kind} before HELLO"));
            }
            if kind == "F" {
                let levels: Vec<&str> = words.get(2).map_or(vec![], |l| l.split(',').collect());
                let valid = levels
                    .iter()
                    .all(|l| l.parse::<u16>().is_ok_and(|l| l <= 1000));
                if levels.len() != channels || !valid || words.len() != 3 {
                    report.violations.push(format!("bad frame: {text:?}"));
                }
            }
            if !matches!(kind.as_str(), "HELLO" | "F" | "H" | "OFF") {
                report.violations.push(format!("unknown line: {text:?}"));
            }
            last_seq = Some(seq);
            let fields = words[2..].iter().map(|w| w.to_string()).collect();
            report.lines.push(Seen {
                at,
                kind: kind.clone(),
                seq,
                fields,
            });
            if mode == Mode::HangUpOnFrame && kind == "F" {
                break;
            }
            let reply = match (mode, kind.as_str()) {
                (_, "HELLO") => sealed(&format!("OK {seq} 1")),
                (Mode::RejectFrames, "F") => sealed(&format!("ERR {seq} range")),
                (Mode::CorruptFrames, "F") => format!("OK {seq}*{:02X}\n", crc8(b"x")),
                (Mode::SilentOnFrames, "F") => continue,
                _ => sealed(&format!("OK {seq}")),
            };
            writer.write_all(reply.as_bytes()).unwrap();
            if mode == Mode::StallAfterHello && kind == "HELLO" {
                report.held = Some(reader);
                return report;
            }
        }
        report
    })
}

/// A pseudo-terminal whose slave is reached through a symlink, as udev's /dev/serial/by-id does.
struct Line {
    _dir: tempfile::TempDir,
    link: PathBuf,
    slave: Option<OwnedFd>,
    mcu: Option<JoinHandle<Report>>,
}

impl Line {
    fn new(mode: Mode) -> Line {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("ttyMCU");
        let mut line = Line {
            _dir: dir,
            link,
            slave: None,
            mcu: None,
        };
        line.plug(mode);
        line
    }

    /// Creates a new pty with a fresh microcontroller and points the link at it.
    fn plug(&mut self, mode: Mode) {
        let pty = nix::pty::openpty(None, None).unwrap();
        let name = nix::unistd::ttyname(&pty.slave).unwrap();
        let _ = std::fs::remove_file(&self.link);
        std::os::unix::fs::symlink(&name, &self.link).unwrap();
        self.mcu = Some(fake_mcu(pty.master, mode));
        // Held until the driver has the port open, so the master never sees a hang-up before.
        self.slave = Some(pty.slave);
    }

    fn section(&self) -> SerialSection {
        SerialSection {
            port: self.link.clone(),
            baud: 115_200,
            heartbeat_ms: 40,
            heartbeat_timeout_ms: 400,
            ack_timeout_ms: 1000,
        }
    }

    fn driver_opened(&mut self) {
        self.slave = None;
    }

    /// Opens the serial driver with `slots` channels on `section` (this line's port, see
    /// [`Line::section`]), then lets go of the slave end.
    async fn open_driver(&mut self, section: &SerialSection, slots: usize) -> SerialDriver {
        let driver = SerialDriver::open(section, slots).await.unwrap();
        self.driver_opened();
        driver
    }

    /// Waits for the microcontroller to finish (the host closed the port) and returns its record.
    fn report(&mut self) -> Report {
        self.mcu.take().unwrap().join().unwrap()
    }

    fn port(&self) -> &Path {
        &self.link
    }
}

fn frame(levels: &[u16]) -> Frame {
    Frame {
        levels: levels.to_vec(),
    }
}

fn fields(levels: &[u16]) -> Vec<String> {
    vec![
        levels
            .iter()
            .map(|l| l.to_string())
            .collect::<Vec<_>>()
            .join(","),
    ]
}

#[tokio::test]
async fn frames_and_idle_heartbeats_reach_the_microcontroller_as_sent() {
    let mut line = Line::new(Mode::Good);
    let section = DriverSection {
        kind: DriverKind::Serial,
        serial: line.section(),
        ..DriverSection::default()
    };
    let mut driver = Driver::open(&section, 3).await.unwrap();
    line.driver_opened();
    let sent = [[0, 0, 0], [100, 200, 300], [1000, 0, 999], [5, 5, 5]];
    for levels in &sent {
        driver.write(&frame(levels)).await.unwrap();
    }
    // Idle, as the daemon's select loop: sleep until the heartbeat is due, send it.
    for _ in 0..10 {
        let due = driver.heartbeat_due().unwrap();
        tokio::time::sleep_until(due.into()).await;
        driver.heartbeat().await.unwrap();
    }
    driver.close().await.unwrap();
    let report = line.report();
    assert_eq!(report.violations, Vec::<String>::new());
    let kinds: Vec<&str> = report.lines.iter().map(|s| s.kind.as_str()).collect();
    let mut expected = vec!["HELLO"];
    expected.extend(["F"; 4]);
    expected.extend(["H"; 10]);
    expected.push("OFF");
    assert_eq!(kinds, expected);
    assert_eq!(report.lines[0].fields, vec!["1", "3", "400"]);
    for (seen, levels) in report.lines[1..5].iter().zip(&sent) {
        assert_eq!(seen.fields, fields(levels));
    }
    let timeout = Duration::from_millis(400);
    for pair in report.lines[4..].windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(
            gap < timeout,
            "{gap:?} of silence between {:?} and {:?}",
            pair[0],
            pair[1]
        );
    }
}

#[tokio::test]
async fn a_vanished_microcontroller_is_an_error_and_recover_reopens_the_port() {
    let mut line = Line::new(Mode::HangUpOnFrame);
    let mut driver = line.open_driver(&line.section(), 2).await;
    let err = driver.write(&frame(&[10, 20])).await.unwrap_err();
    assert!(matches!(err, DeviceError::SerialLost { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&line.port().display().to_string()),
        "{err}"
    );
    assert_eq!(driver.heartbeat_due(), None, "no heartbeats to a lost port");
    assert!(driver.all_off().await.is_err());
    let first = line.report();
    assert_eq!(first.lines.len(), 2, "{:?}", first.lines);

    // The adapter comes back (as a new device behind the same link).
    line.plug(Mode::Good);
    driver.recover().await.unwrap();
    line.driver_opened();
    assert!(driver.heartbeat_due().is_some());
    driver.write(&frame(&[10, 20])).await.unwrap();
    drop(driver);
    let second = line.report();
    assert_eq!(second.violations, Vec::<String>::new());
    let kinds: Vec<&str> = second.lines.iter().map(|s| s.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["HELLO", "F", "OFF"],
        "dropping the driver sends OFF"
    );
    assert_eq!(second.lines[1].fields, fields(&[10, 20]));
}

#[tokio::test]
async fn an_err_reply_is_an_error_with_the_reason() {
    let mut line = Line::new(Mode::RejectFrames);
    let mut driver = line.open_driver(&line.section(), 2).await;
    let err = driver.write(&frame(&[1, 2])).await.unwrap_err();
    match &err {
        DeviceError::Rejected { seq, reason, .. } => {
            assert_eq!((*seq, reason.as_str()), (2, "range"));
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    // The line still works: everything can be turned off.
    driver.all_off().await.unwrap();
    driver.close().await.unwrap();
    assert_eq!(line.report().violations, Vec::<String>::new());
}

#[tokio::test]
async fn a_reply_with_a_bad_checksum_is_a_protocol_error() {
    let mut line = Line::new(Mode::CorruptFrames);
    let mut driver = line.open_driver(&line.section(), 1).await;
    let err = driver.write(&frame(&[7])).await.unwrap_err();
    assert!(matches!(err, DeviceError::Protocol { .. }), "{err:?}");
    assert!(err.to_string().contains("checksum"), "{err}");
}

#[tokio::test]
async fn a_missing_acknowledgement_times_out() {
    let mut line = Line::new(Mode::SilentOnFrames);
    let section = SerialSection {
        ack_timeout_ms: 100,
        ..line.section()
    };
    let mut driver = line.open_driver(&section, 1).await;
    let err = driver.write(&frame(&[7])).await.unwrap_err();
    assert!(
        matches!(
            err,
            DeviceError::AckTimeout {
                seq: 2,
                timeout_ms: 100,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_missing_port_names_the_path() {
    let section = SerialSection {
        port: "/nonexistent/ttyMCU".into(),
        ..SerialSection::default()
    };
    let err = SerialDriver::open(&section, 1).await.unwrap_err();
    assert!(matches!(err, DeviceError::SerialOpen { .. }), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/ttyMCU"), "{err}");
}

#[tokio::test]
async fn a_heartbeat_slower_than_the_timeout_is_refused() {
    let section = SerialSection {
        heartbeat_ms: 1000,
        heartbeat_timeout_ms: 1000,
        ..SerialSection::default()
    };
    let err = SerialDriver::open(&section, 1).await.unwrap_err();
    assert!(
        err.to_string().contains("driver.serial.heartbeat_ms"),
        "{err}"
    );
}

#[test]
fn heartbeat_and_ack_timeouts_have_upper_bounds() {
    let ok = SerialSection::default();
    assert!(check_timings(&ok, Some(Duration::from_secs(15))).is_ok());
    let slow = SerialSection {
        heartbeat_ms: MAX_HEARTBEAT_MS + 1,
        heartbeat_timeout_ms: 10_000,
        ..ok.clone()
    };
    let err = check_timings(&slow, None).unwrap_err().to_string();
    assert!(
        err.contains("driver.serial.heartbeat_ms") && err.contains("5000"),
        "{err}"
    );
    let five = SerialSection {
        heartbeat_ms: MAX_HEARTBEAT_MS,
        heartbeat_timeout_ms: 10_000,
        ..ok.clone()
    };
    assert!(check_timings(&five, None).is_ok());
    // WatchdogSec=30s: the daemon pings every 15 s; one ack may not take that long.
    let patient = SerialSection {
        ack_timeout_ms: 15_000,
        ..ok
    };
    assert!(
        check_timings(&patient, None).is_ok(),
        "no watchdog, no bound"
    );
    let err = check_timings(&patient, Some(Duration::from_secs(15)))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("driver.serial.ack_timeout_ms") && err.contains("WatchdogSec"),
        "{err}"
    );
}

#[tokio::test]
async fn a_line_that_stops_draining_fails_the_write_within_the_timeout() {
    let mut line = Line::new(Mode::StallAfterHello);
    let section = SerialSection {
        ack_timeout_ms: 50,
        ..line.section()
    };
    let slots = 500;
    let mut driver = line.open_driver(&section, slots).await;
    // Unacknowledged frames time out one by one until the pty's buffer is full; then the
    // write itself must give up instead of blocking forever.
    let mut outcome = None;
    for _ in 0..1000 {
        let started = Instant::now();
        match driver.write(&frame(&vec![1000; slots])).await {
            Err(DeviceError::AckTimeout { .. }) => continue,
            other => {
                outcome = Some((other, started.elapsed()));
                break;
            }
        }
    }
    let (result, took) = outcome.expect("the line fills up");
    match result {
        Err(DeviceError::SerialLost { problem, .. }) => {
            assert!(
                problem.contains("did not complete within 50 ms"),
                "{problem}"
            )
        }
        other => panic!("expected a write timeout, got {other:?}"),
    }
    assert!(took < Duration::from_secs(5), "bounded: {took:?}");
}
