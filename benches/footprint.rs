//! Footprint and real-time behaviour of the daemon process (sim driver), through the embedded
//! broker running on its own thread in this bench process.
//!
//! Prints: time from spawn to `online` and to discovery; idle RSS and CPU/wake-ups over an idle
//! window; CPU and wake-ups while a routine plays at 50 Hz; step-boundary lateness; RSS and
//! `stop` latency under a command flood.
//!
//! First, the build users install (the `.deb`: `--no-default-features`) and the default build
//! side by side: stripped binary size, idle RSS, private (unshared) memory, spawn to discovery.
//! The deployed build is built by the bench (`cargo build --release --no-default-features
//! --target-dir target/footprint-deployed`) unless `MASSAGED_FOOTPRINT_BINS` names the
//! binaries to compare: `NAME=PATH,NAME=PATH` (e.g. before and after a change).
//!
//! `cargo bench --bench footprint [-- --idle-secs 60 --starts 10 --flood-rate 10000 --flood-secs 10]`
//! The default idle window is 10 s so CI stays short; the documented figure uses 60.

#[path = "../tests/support/bench.rs"]
#[allow(dead_code)]
mod bench;
#[path = "../tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

use bench::{
    Client, cpu_ticks, json_str_is, ms, percentile, smaps_rollup_kb, status_kb, thread_schedstats,
};
use rumqttc::QoS;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::daemon::DaemonProcess;
use support::{BrokerKind, TIMEOUT, TestBroker};

struct Options {
    idle_secs: u64,
    starts: usize,
    run_secs: u64,
    flood_rate: u64,
    flood_secs: u64,
}

fn options() -> Options {
    let mut options = Options {
        idle_secs: 10,
        starts: 10,
        run_secs: 20,
        flood_rate: 10_000,
        flood_secs: 10,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> u64 {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} needs a number"))
        };
        match arg.as_str() {
            "--idle-secs" => options.idle_secs = number("--idle-secs"),
            "--starts" => options.starts = number("--starts") as usize,
            "--run-secs" => options.run_secs = number("--run-secs"),
            "--flood-rate" => options.flood_rate = number("--flood-rate"),
            "--flood-secs" => options.flood_secs = number("--flood-secs"),
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    options
}

const ROUTINE: &str = "bench-steps";
const STEP_SECONDS: u32 = 1;

fn main() {
    let options = options();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!("footprint: massaged run, sim driver, embedded broker in the bench process");
    println!("  machine: {}", bench::machine());
    let broker = TestBroker::start_with(BrokerKind::Embedded, true);
    runtime.block_on(async {
        builds_side_by_side(&broker, &options).await;
        startup(&broker, &options).await;
        idle_and_running(&broker, &options).await;
        flood(&broker, &options).await;
    });
}

/// Targets for the deployed build (issue 12.5).
const TARGET_RSS_KB: u64 = 5 * 1024;
const TARGET_DISCOVERY: Duration = Duration::from_millis(10);
const TARGET_BINARY_BYTES: u64 = 5_000_000;

/// The builds to compare, by name.
fn builds() -> Vec<(String, PathBuf)> {
    if let Ok(list) = std::env::var("MASSAGED_FOOTPRINT_BINS") {
        return list
            .split(',')
            .map(|item| {
                let (name, path) = item
                    .split_once('=')
                    .expect("MASSAGED_FOOTPRINT_BINS is NAME=PATH,NAME=PATH");
                (name.to_owned(), PathBuf::from(path))
            })
            .collect();
    }
    let target_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/footprint-deployed");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args([
            "build",
            "--release",
            "--no-default-features",
            "--bin",
            "massaged",
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run cargo build for the deployed build");
    assert!(status.success(), "building the deployed binary failed");
    vec![
        ("deployed".into(), target_dir.join("release/massaged")),
        (
            "default".into(),
            PathBuf::from(env!("CARGO_BIN_EXE_massaged")),
        ),
    ]
}

/// Size, idle memory and spawn-to-discovery of every build in [`builds`], one table.
async fn builds_side_by_side(broker: &TestBroker, options: &Options) {
    let builds = builds();
    let mut client = Client::connect(broker.addr(), "bench-builds").await;
    client.subscribe("homeassistant/device/+/config").await;
    client.subscribe("massaged/+/availability").await;
    println!(
        "  builds side by side (sim driver, idle 2 s after online; private = Private_Clean + Private_Dirty):"
    );
    println!(
        "    {:<16} {:>12} {:>9} {:>12} {:>16}",
        "build", "binary B", "RSS kB", "private kB", "discovery p50 ms"
    );
    for (name, bin) in &builds {
        let size = std::fs::metadata(bin)
            .unwrap_or_else(|e| panic!("{}: {e}", bin.display()))
            .len();
        let mut discovery = Vec::new();
        let mut idle = None;
        for start in 0..options.starts.max(1) {
            let daemon = bench::spawn_daemon_bin(bin, &broker.url(), "", false, "");
            let config = format!("homeassistant/device/{}/config", daemon.device_id);
            let availability = daemon.topic("availability");
            let (mut got_discovery, mut online) = (None, false);
            while got_discovery.is_none() || !online {
                let m = tokio::time::timeout(TIMEOUT, client.messages.recv())
                    .await
                    .expect("daemon published discovery")
                    .expect("client alive");
                if m.topic == config {
                    got_discovery = Some(m.at - daemon.spawned_at);
                } else if m.topic == availability && m.payload.as_ref() == b"online" {
                    online = true;
                }
            }
            discovery.extend(got_discovery);
            if start == 0 {
                // Start-up work (first save, discovery) done before reading memory.
                tokio::time::sleep(Duration::from_secs(2)).await;
                let pid = daemon.pid();
                let private =
                    smaps_rollup_kb(pid, "Private_Clean") + smaps_rollup_kb(pid, "Private_Dirty");
                idle = Some((smaps_rollup_kb(pid, "Rss"), private));
            }
        }
        discovery.sort();
        let (rss, private) = idle.expect("measured");
        let p50 = percentile(&discovery, 50.0);
        println!(
            "    {name:<16} {size:>12} {rss:>9} {private:>12} {:>16}",
            ms(p50)
        );
        if name == "deployed" {
            println!(
                "      targets: binary < 5 MB {}, RSS <= 5 MiB {}, discovery <= 10 ms {}",
                verdict(size < TARGET_BINARY_BYTES),
                verdict(rss <= TARGET_RSS_KB),
                verdict(p50 <= TARGET_DISCOVERY)
            );
        }
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

/// Time from spawning the process to `online` and to the discovery message.
async fn startup(broker: &TestBroker, options: &Options) {
    let mut client = Client::connect(broker.addr(), "bench-startup").await;
    client.subscribe("massaged/+/availability").await;
    client.subscribe("homeassistant/device/+/config").await;
    let mut online = Vec::new();
    let mut discovery = Vec::new();
    for _ in 0..options.starts {
        let daemon = bench::spawn_daemon(&broker.url(), "", false, "");
        let availability = daemon.topic("availability");
        let config = format!("homeassistant/device/{}/config", daemon.device_id);
        let (mut got_online, mut got_discovery) = (None, None);
        while got_online.is_none() || got_discovery.is_none() {
            let m = tokio::time::timeout(TIMEOUT, client.messages.recv())
                .await
                .expect("daemon came online")
                .expect("client alive");
            if m.topic == availability && m.payload.as_ref() == b"online" {
                got_online = Some(m.at - daemon.spawned_at);
            } else if m.topic == config {
                got_discovery = Some(m.at - daemon.spawned_at);
            }
        }
        online.extend(got_online);
        discovery.extend(got_discovery);
    }
    online.sort();
    discovery.sort();
    println!(
        "  start-up ({} spawns, from fork+exec to message received):",
        options.starts
    );
    println!(
        "    online:    median {} ms, max {} ms",
        ms(percentile(&online, 50.0)),
        ms(*online.last().expect("samples"))
    );
    println!(
        "    discovery: median {} ms, max {} ms",
        ms(percentile(&discovery, 50.0)),
        ms(*discovery.last().expect("samples"))
    );
}

/// CPU time in ns over every thread (schedstat), finer than the 10 ms ticks of /proc/pid/stat.
fn cpu_ns(pid: u32) -> u64 {
    thread_schedstats(pid).iter().map(|(_, _, ns)| ns).sum()
}

struct Window {
    secs: f64,
    wakeups: u64,
    cpu_ns: u64,
    ticks: u64,
    per_thread: Vec<(String, u64)>,
}

async fn window(pid: u32, length: Duration) -> Window {
    let before = thread_schedstats(pid);
    let t0 = cpu_ticks(pid);
    let started = Instant::now();
    // A measurement window, not synchronisation.
    tokio::time::sleep(length).await;
    let secs = started.elapsed().as_secs_f64();
    let after = thread_schedstats(pid);
    // Threads may come and go (tokio's blocking pool): a thread's count is its growth since
    // the window opened, or all of it when it started inside the window.
    let per_thread: Vec<(String, u64, u64)> = after
        .iter()
        .map(|(name, n, ns)| {
            let (n0, ns0) = before
                .iter()
                .find(|(b, _, _)| b == name)
                .map_or((0, 0), |(_, n, ns)| (*n, *ns));
            (name.clone(), n.saturating_sub(n0), ns.saturating_sub(ns0))
        })
        .collect();
    Window {
        secs,
        wakeups: per_thread.iter().map(|(_, n, _)| n).sum(),
        cpu_ns: per_thread.iter().map(|(_, _, ns)| ns).sum(),
        ticks: cpu_ticks(pid).saturating_sub(t0),
        per_thread: per_thread
            .into_iter()
            .map(|(name, n, _)| (name, n))
            .collect(),
    }
}

impl Window {
    fn print(&self, what: &str) {
        println!(
            "  {what} over {:.1} s: {} wake-ups ({:.2}/s), CPU {:.3} ms ({:.4} %), utime+stime {} ticks",
            self.secs,
            self.wakeups,
            self.wakeups as f64 / self.secs,
            self.cpu_ns as f64 / 1e6,
            self.cpu_ns as f64 / 1e9 / self.secs * 100.0,
            self.ticks
        );
        let threads: Vec<String> = self
            .per_thread
            .iter()
            .map(|(name, n)| format!("{name}: {n}"))
            .collect();
        println!("    wake-ups per thread: {}", threads.join(", "));
    }
}

async fn idle_and_running(broker: &TestBroker, options: &Options) {
    let routine = bench::steps_routine(ROUTINE, 10, STEP_SECONDS);
    let daemon = bench::spawn_daemon(&broker.url(), "", true, &routine);
    let pid = daemon.pid();
    let mut client = Client::connect(broker.addr(), "bench-running").await;
    client.subscribe(&daemon.topic("event")).await;
    client.subscribe(&daemon.topic("availability")).await;
    client
        .expect(&daemon.topic("availability"), |p| p == b"online", TIMEOUT)
        .await;
    // Let start-up work (first save, discovery) finish before the idle window.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_idle = status_kb(pid, "VmRSS");
    let idle = window(pid, Duration::from_secs(options.idle_secs)).await;
    println!("  idle (keep_alive_s = 30, the default):");
    println!("    RSS {rss_idle} kB");
    idle.print("  idle");

    let event = daemon.topic("event");
    let sent = Instant::now();
    client
        .publish(
            &daemon.topic("set"),
            format!(
                r#"{{"action": "start", "routine": "{ROUTINE}", "minutes": 1, "intensity": 60}}"#
            ),
        )
        .await;
    let started = client
        .expect(&event, |p| json_str_is(p, "event_type", "started"), TIMEOUT)
        .await;
    println!(
        "  running {ROUTINE} (10 steps of {STEP_SECONDS} s) at 50 Hz, recording frames to CSV:"
    );
    println!(
        "    start command -> started event: {} ms",
        ms(started.at - sent)
    );
    // The measurement window runs while the step events queue up in the client.
    let running = window(pid, Duration::from_secs(options.run_secs)).await;
    let rss_running = status_kb(pid, "VmRSS");
    running.print("  running");
    println!("    RSS {rss_running} kB");

    let mut late = Vec::new();
    let mut index = 0u32;
    while let Ok(Some(m)) = tokio::time::timeout(Duration::ZERO, client.messages.recv()).await {
        if m.topic == event && json_str_is(&m.payload, "event_type", "step") {
            index += 1;
            let ideal = Duration::from_secs(u64::from(index * STEP_SECONDS));
            let actual = m.at - started.at;
            late.push(actual.saturating_sub(ideal));
            if actual < ideal {
                println!(
                    "    note: step {index} arrived {} ms early",
                    ms(ideal - actual)
                );
            }
        }
    }
    late.sort();
    if late.is_empty() {
        println!("    no step events received");
    } else {
        println!(
            "    step boundaries via `step` events ({} boundaries, arrival - (started arrival + k s)):",
            late.len()
        );
        println!(
            "      late p50 {} ms, p99 {} ms, max {} ms",
            ms(percentile(&late, 50.0)),
            ms(percentile(&late, 99.0)),
            ms(*late.last().expect("samples"))
        );
    }
    frame_grid(&daemon);
    let hwm = status_kb(pid, "VmHWM");
    println!("    peak RSS (VmHWM) after idle + running: {hwm} kB");
}

/// Lateness of every recorded frame against the 50 Hz grid anchored at the session start.
///
/// The recording has millisecond timestamps from the driver's own origin. Every frame of a
/// session is due at `start + k * 20 ms`, so `(t - grid) mod 20` is its lateness once the
/// grid's phase is known; the most common phase is taken as the grid (most frames are on
/// time). Lateness of 20 ms or more would alias; figures have 1 ms resolution.
fn frame_grid(daemon: &DaemonProcess) {
    let text = std::fs::read_to_string(daemon.frames_path()).unwrap_or_default();
    let rows: Vec<(i64, bool)> = text
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut parts = line.split(',');
            let t: i64 = parts.next()?.parse().ok()?;
            let nonzero = parts.any(|p| p != "0");
            Some((t, nonzero))
        })
        .collect();
    let Some(first) = rows.iter().position(|(_, nonzero)| *nonzero) else {
        println!("    no session frames recorded");
        return;
    };
    let session: Vec<i64> = rows[first..]
        .iter()
        .take_while(|(_, nonzero)| *nonzero)
        .map(|(t, _)| *t)
        .collect();
    let t0 = session[0];
    let mut counts = [0usize; 20];
    for t in &session {
        counts[(t - t0).rem_euclid(20) as usize] += 1;
    }
    // Most frames are on time, so the most common phase is the grid.
    let grid = (0..20).max_by_key(|p| counts[*p as usize]).unwrap_or(0) as i64;
    let mut late: Vec<Duration> = session
        .iter()
        .map(|t| Duration::from_millis((t - t0 - grid).rem_euclid(20) as u64))
        .collect();
    late.sort();
    println!(
        "    frame timing from the recording ({} frames, 1 ms resolution): late p50 {} ms, p99 {} ms, max {} ms",
        late.len(),
        ms(percentile(&late, 50.0)),
        ms(percentile(&late, 99.0)),
        ms(*late.last().expect("frames"))
    );
}

/// Publishes `rate` commands a second for `secs` from its own thread (QoS 0, like Home
/// Assistant's default), so the measuring client is not slowed by it. Returns the count sent
/// and how long sending took.
fn spawn_flood(
    addr: std::net::SocketAddr,
    topic: String,
    rate: u64,
    secs: u64,
) -> std::thread::JoinHandle<(u64, Duration)> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("flood runtime");
        runtime.block_on(async move {
            let client = Client::connect(addr, "bench-flood").await;
            let started = Instant::now();
            let total = rate * secs;
            let mut sent = 0u64;
            while sent < total {
                let due = (started.elapsed().as_secs_f64() * rate as f64) as u64;
                while sent < due.min(total) {
                    let payload = format!(r#"{{"intensity": {}}}"#, 20 + sent % 60);
                    client
                        .client
                        .publish(&topic, QoS::AtMostOnce, false, payload)
                        .await
                        .expect("flood publish");
                    sent += 1;
                }
                // Pacing at 1 kHz, not synchronisation.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            (sent, started.elapsed())
        })
    })
}

async fn flood(broker: &TestBroker, options: &Options) {
    let daemon = bench::spawn_daemon(&broker.url(), "", false, "");
    let pid = daemon.pid();
    let mut client = Client::connect(broker.addr(), "bench-flood-watch").await;
    let state = daemon.topic("state");
    client.subscribe(&state).await;
    client
        .expect(&state, |p| json_str_is(p, "state", "idle"), TIMEOUT)
        .await;
    client
        .publish(
            &daemon.topic("set"),
            r#"{"action": "start", "routine": "full-scalp", "minutes": 5}"#,
        )
        .await;
    client
        .expect(&state, |p| json_str_is(p, "state", "running"), TIMEOUT)
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before = status_kb(pid, "VmRSS");
    println!(
        "  flood: {} commands/s for {} s on set while a session runs (default rate limit 20/s, burst 40), log at info to a file:",
        options.flood_rate, options.flood_secs
    );
    let flood = spawn_flood(
        broker.addr(),
        daemon.topic("set"),
        options.flood_rate,
        options.flood_secs,
    );
    let mut rss_samples = Vec::new();
    let flood_started = Instant::now();
    let stop_at = Duration::from_secs(options.flood_secs.saturating_sub(1).max(1));
    while flood_started.elapsed() < stop_at {
        tokio::time::sleep(Duration::from_millis(500)).await;
        rss_samples.push(status_kb(pid, "VmRSS"));
    }
    let sent = Instant::now();
    client.publish(&daemon.topic("set"), "stop").await;
    let stopped = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match client.messages.recv().await {
                Some(m) if m.topic == state && json_str_is(&m.payload, "state", "idle") => {
                    return m.at;
                }
                Some(_) => {}
                None => panic!("client ended"),
            }
        }
    })
    .await;
    match stopped {
        Ok(at) => println!(
            "    stop during the flood (at {:.1} s) -> idle state received: {} ms",
            stop_at.as_secs_f64(),
            ms(at - sent)
        ),
        Err(_) => println!("    stop during the flood: NO idle state within 5 s"),
    }
    let cpu_before = cpu_ns(pid);
    let (count, took) = flood.join().expect("flood thread");
    let cpu_flood = cpu_ns(pid) - cpu_before;
    println!(
        "    flood sent {count} commands in {:.2} s ({:.0}/s)",
        took.as_secs_f64(),
        count as f64 / took.as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_after = status_kb(pid, "VmRSS");
    let hwm = status_kb(pid, "VmHWM");
    println!(
        "    RSS before {rss_before} kB, during max {} kB, after {rss_after} kB; VmHWM {hwm} kB",
        rss_samples.iter().max().copied().unwrap_or(0)
    );
    println!(
        "    daemon CPU in the last part of the flood: {} ms",
        cpu_flood / 1_000_000
    );
    let log = std::fs::read_to_string(daemon.log_path()).unwrap_or_default();
    let count = |needle: &str| log.lines().filter(|l| l.contains(needle)).count();
    println!(
        "    log: {} lines, {} kB; 'command rejected' {}, 'command accepted' {}, 'message dropped' {}, 'publish dropped' {}",
        log.lines().count(),
        log.len() / 1024,
        count("command rejected"),
        count("command accepted"),
        count("message dropped"),
        count("publish dropped"),
    );
}
