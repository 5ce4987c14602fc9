//! The benches' measuring pieces, on top of the shared test support (`mod.rs` here): the
//! daemon configured as users run it, a client that queues publishes without waiting,
//! /proc readers and percentiles.
//!
//! A bench includes both by path:
//! `#[path = "../tests/support/mod.rs"] mod support;` and
//! `#[path = "../tests/support/bench.rs"] mod bench;`. Benches print figures; nothing here
//! asserts on timing.

use crate::support::daemon::{DaemonProcess, new_device_id};
use crate::support::routine::{Step, routine_toml};
use crate::support::{Ack, EventLoopTask, OnError, Received, connect_client, wait_ack};
use rumqttc::{AsyncClient, QoS};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use tokio::sync::mpsc;

/// A user routine of `count` steps of `seconds` each, alternating zones, for timing benches.
pub fn steps_routine(id: &str, count: usize, seconds: u32) -> String {
    let zones = ["temples", "neck", "hairline", "ears", "crown"];
    let labels: Vec<String> = (0..count).map(|n| format!("step {n}")).collect();
    let steps: Vec<Step> = labels
        .iter()
        .enumerate()
        .map(|(n, label)| (label.as_str(), zones[n % zones.len()], "circles", seconds))
        .collect();
    routine_toml(
        id,
        &format!("Bench {id}"),
        "bench",
        &steps,
        "intensity = 80\ntempo = 60",
    )
}

/// Starts `massaged run` against `url` with the sim driver; `mqtt_extra` goes into `[mqtt]`,
/// `tail` after everything (routines). Defaults otherwise, logging at info, as users run it.
pub fn spawn_daemon(url: &str, mqtt_extra: &str, record: bool, tail: &str) -> DaemonProcess {
    spawn_daemon_bin(
        Path::new(env!("CARGO_BIN_EXE_massaged")),
        url,
        mqtt_extra,
        record,
        tail,
    )
}

/// [`spawn_daemon`] with another build of the binary (the footprint comparison).
pub fn spawn_daemon_bin(
    bin: &Path,
    url: &str,
    mqtt_extra: &str,
    record: bool,
    tail: &str,
) -> DaemonProcess {
    let dir = tempfile::tempdir().expect("temp dir");
    let device_id = new_device_id("b");
    let record_line = if record {
        format!("record = \"{}\"\n", dir.path().join("frames.csv").display())
    } else {
        String::new()
    };
    let config = format!(
        "[device]\nid = \"{device_id}\"\nname = \"Bench headrest\"\n\n\
         [mqtt]\nurl = \"{url}\"\n{mqtt_extra}\n\n\
         [store]\npath = \"{state}\"\n\n\
         [log]\nlevel = \"info\"\nformat = \"text\"\n\n\
         [driver]\n{record_line}\n{tail}\n",
        state = dir.path().join("state.json").display(),
    );
    DaemonProcess::launch(bin, dir, device_id, &config, &[])
}

/// An MQTT client for load: its event loop timestamps every incoming publish, and publishes
/// are queued without waiting for the PubAck (1000 in flight).
pub struct Client {
    /// The rumqttc handle.
    pub client: AsyncClient,
    /// Incoming publishes.
    pub messages: mpsc::UnboundedReceiver<Received>,
    acks: mpsc::UnboundedReceiver<Ack>,
    task: tokio::task::JoinHandle<()>,
    id: String,
}

impl Client {
    /// Connects and waits for the ConnAck.
    pub async fn connect(addr: SocketAddr, id: &str) -> Client {
        let in_flight = |options: &mut rumqttc::MqttOptions| {
            options.set_inflight(1000);
        };
        let (client, events) = connect_client(addr, id, 10_000, in_flight, OnError::Panic).await;
        let EventLoopTask {
            messages,
            acks,
            task,
        } = events;
        Client {
            client,
            messages,
            acks,
            task,
            id: id.to_owned(),
        }
    }

    /// Subscribes at QoS 1 and waits for the SubAck.
    pub async fn subscribe(&mut self, filter: &str) {
        self.client
            .subscribe(filter, QoS::AtLeastOnce)
            .await
            .expect("subscribe");
        wait_ack(&mut self.acks, Ack::Sub, &self.id, filter).await;
    }

    /// Queues a publish (QoS 1, not retained) without waiting for the PubAck.
    pub async fn publish(&self, topic: &str, payload: impl Into<Vec<u8>>) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .expect("publish");
    }

    /// The next message on `topic` satisfying `predicate`; panics after `timeout`.
    pub async fn expect(
        &mut self,
        topic: &str,
        predicate: impl Fn(&[u8]) -> bool,
        timeout: Duration,
    ) -> Received {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.messages.recv()).await {
                Ok(Some(m)) if m.topic == topic && predicate(&m.payload) => return m,
                Ok(Some(_)) => {}
                _ => panic!("no matching message on {topic} within {timeout:?}"),
            }
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Whether a JSON payload has `"key": value` with a number equal to `value`.
pub fn json_u64_is(payload: &[u8], key: &str, value: u64) -> bool {
    serde_json::from_slice::<serde_json::Value>(payload)
        .ok()
        .and_then(|v| v.get(key).and_then(serde_json::Value::as_u64))
        == Some(value)
}

/// Whether a JSON payload has `"key": "value"`.
pub fn json_str_is(payload: &[u8], key: &str, value: &str) -> bool {
    serde_json::from_slice::<serde_json::Value>(payload)
        .ok()
        .and_then(|v| v.get(key).and_then(|s| s.as_str().map(str::to_owned)))
        .as_deref()
        == Some(value)
}

/// A `/proc/<pid>/status` field in kB (VmRSS, VmHWM, ...).
pub fn status_kb(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    text.lines()
        .find_map(|line| {
            let rest = line.strip_prefix(field)?.strip_prefix(':')?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// A field of `/proc/PID/smaps_rollup` in kB (`Rss`, `Private_Clean`, `Private_Dirty`, ...).
pub fn smaps_rollup_kb(pid: u32, field: &str) -> u64 {
    let text =
        std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).expect("proc smaps_rollup");
    text.lines()
        .find_map(|line| {
            let rest = line.strip_prefix(field)?.strip_prefix(':')?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/smaps_rollup"))
}

/// CPU time (utime + stime) of every thread of `pid`, in clock ticks (1/100 s on Linux).
pub fn cpu_ticks(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("proc stat");
    // Fields after the command name, which is in parentheses and may contain spaces.
    let after = &text[text.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after `pid (comm)`.
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

/// Per thread: (name, times scheduled onto a CPU, ns on CPU) from /proc/<pid>/task/*/schedstat.
pub fn thread_schedstats(pid: u32) -> Vec<(String, u64, u64)> {
    let mut threads = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return threads;
    };
    for task in tasks.flatten() {
        let path = task.path();
        let name = std::fs::read_to_string(path.join("comm"))
            .unwrap_or_default()
            .trim()
            .to_owned();
        let stat = std::fs::read_to_string(path.join("schedstat")).unwrap_or_default();
        let fields: Vec<u64> = stat
            .split_whitespace()
            .filter_map(|f| f.parse().ok())
            .collect();
        if fields.len() == 3 {
            threads.push((
                format!("{name}/{}", task.file_name().to_string_lossy()),
                fields[2],
                fields[0],
            ));
        }
    }
    threads.sort();
    threads
}

/// Times scheduled onto a CPU, summed over every thread.
pub fn wakeups(pid: u32) -> u64 {
    thread_schedstats(pid).iter().map(|(_, n, _)| n).sum()
}

/// The `p`-th percentile (0..=100) of sorted `values`, nearest rank.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    assert!(!sorted.is_empty());
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Median of unsorted `values`.
pub fn median<T: Copy + PartialOrd>(values: &[T]) -> T {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).expect("comparable"));
    v[v.len() / 2]
}

/// Milliseconds with three decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1e3)
}

/// One line describing the machine, printed with every set of figures.
pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown cpu".into());
    format!(
        "{cores} cores ({model}), shared with other developers compiling; loadavg {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    )
}
