//! Shared pieces of the daemon benches: brokers, the daemon as a child process, a timestamping
//! MQTT client, /proc readers and percentiles.
//!
//! Benches print figures; nothing here asserts on timing.
#![allow(dead_code)]

use bytes::Bytes;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Longest wait for anything that should take milliseconds; only reached when broken.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Which broker a bench runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerKind {
    /// `massaged::broker::EmbeddedBroker` on its own thread in the bench process.
    Embedded,
    /// A `mosquitto` child process with `set_tcp_nodelay true`.
    Mosquitto,
}

impl BrokerKind {
    /// Name used in the printed figures.
    pub fn name(self) -> &'static str {
        match self {
            BrokerKind::Embedded => "embedded",
            BrokerKind::Mosquitto => "mosquitto",
        }
    }
}

enum Running {
    Embedded(massaged::broker::EmbeddedBroker),
    Mosquitto(Child),
}

/// A broker on a free loopback port.
pub struct Broker {
    addr: SocketAddr,
    running: Running,
    _dir: tempfile::TempDir,
}

impl Broker {
    /// Starts a broker of `kind`; `nodelay` only matters for Mosquitto.
    pub fn start(kind: BrokerKind, nodelay: bool) -> Broker {
        let dir = tempfile::tempdir().expect("temp dir");
        match kind {
            BrokerKind::Embedded => {
                let broker =
                    massaged::broker::EmbeddedBroker::start(SocketAddr::from(([127, 0, 0, 1], 0)))
                        .expect("embedded broker");
                Broker {
                    addr: broker.local_addr(),
                    running: Running::Embedded(broker),
                    _dir: dir,
                }
            }
            BrokerKind::Mosquitto => {
                let addr = free_loopback_addr();
                let config = dir.path().join("mosquitto.conf");
                std::fs::write(
                    &config,
                    format!(
                        "listener {} 127.0.0.1\nallow_anonymous true\npersistence false\n\
                         set_tcp_nodelay {nodelay}\nlog_dest none\n",
                        addr.port()
                    ),
                )
                .expect("mosquitto config");
                let child = Command::new("mosquitto")
                    .arg("-c")
                    .arg(&config)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("spawn mosquitto (is it installed?)");
                let deadline = Instant::now() + TIMEOUT;
                while TcpStream::connect(addr).is_err() {
                    assert!(
                        Instant::now() < deadline,
                        "mosquitto not listening on {addr}"
                    );
                    // Polling for a listener: there is nothing to be notified by.
                    std::thread::sleep(Duration::from_millis(10));
                }
                Broker {
                    addr,
                    running: Running::Mosquitto(child),
                    _dir: dir,
                }
            }
        }
    }

    /// Address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `mqtt://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("mqtt://{}", self.addr)
    }

    /// Pid of the broker process (the bench's own for the embedded broker).
    pub fn pid(&self) -> u32 {
        match &self.running {
            Running::Embedded(_) => std::process::id(),
            Running::Mosquitto(child) => child.id(),
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        match &mut self.running {
            Running::Embedded(broker) => broker.stop(),
            Running::Mosquitto(child) => {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// A loopback address whose port was free a moment ago.
pub fn free_loopback_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("local addr")
}

/// A user routine of `count` steps of `seconds` each, alternating zones, for timing benches.
pub fn steps_routine(id: &str, count: usize, seconds: u32) -> String {
    let zones = ["temples", "neck", "hairline", "ears", "crown"];
    let mut text =
        format!("[[routines]]\nid = \"{id}\"\nname = \"Bench {id}\"\ndescription = \"bench\"\n\n");
    for n in 0..count {
        text.push_str(&format!(
            "[[routines.steps]]\nlabel = \"step {n}\"\nzones = [\"{}\"]\ntechnique = \"circles\"\n\
             seconds = {seconds}\nintensity = 80\ntempo = 60\n\n",
            zones[n % zones.len()]
        ));
    }
    text
}

/// The real `massaged run` as a child process with the sim driver.
pub struct Daemon {
    child: Child,
    dir: tempfile::TempDir,
    /// Device id (unique per daemon).
    pub device_id: String,
    /// When the process was spawned.
    pub spawned_at: Instant,
}

impl Daemon {
    /// Spawns `massaged run` against `url`; `mqtt_extra` goes into `[mqtt]`, `tail` after
    /// everything (routines). Logs at info to a file in the temp dir.
    pub fn spawn(url: &str, mqtt_extra: &str, record: bool, tail: &str) -> Daemon {
        Daemon::spawn_bin(
            Path::new(env!("CARGO_BIN_EXE_massaged")),
            url,
            mqtt_extra,
            record,
            tail,
        )
    }

    /// [`Daemon::spawn`] with another build of the binary (the footprint comparison).
    pub fn spawn_bin(bin: &Path, url: &str, mqtt_extra: &str, record: bool, tail: &str) -> Daemon {
        let dir = tempfile::tempdir().expect("temp dir");
        let device_id = format!("b{:08x}", fastrand::u32(..));
        let record_line = if record {
            format!("record = \"{}\"\n", dir.path().join("frames.csv").display())
        } else {
            String::new()
        };
        let config = dir.path().join("massaged.toml");
        std::fs::write(
            &config,
            format!(
                "[device]\nid = \"{device_id}\"\nname = \"Bench headrest\"\n\n\
                 [mqtt]\nurl = \"{url}\"\n{mqtt_extra}\n\n\
                 [store]\npath = \"{state}\"\n\n\
                 [log]\nlevel = \"info\"\nformat = \"text\"\n\n\
                 [driver]\n{record_line}\n{tail}\n",
                state = dir.path().join("state.json").display(),
            ),
        )
        .expect("daemon config");
        let log = std::fs::File::create(dir.path().join("daemon.log")).expect("log file");
        let spawned_at = Instant::now();
        let child = Command::new(bin)
            .arg("run")
            .arg("--config")
            .arg(&config)
            .env_remove("RUST_LOG")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("JOURNAL_STREAM")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("spawn massaged");
        Daemon {
            child,
            dir,
            device_id,
            spawned_at,
        }
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `massaged/{id}/{leaf}`.
    pub fn topic(&self, leaf: &str) -> String {
        format!("massaged/{}/{leaf}", self.device_id)
    }

    /// The frame recording.
    pub fn frames_path(&self) -> PathBuf {
        self.dir.path().join("frames.csv")
    }

    /// The daemon's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("daemon.log")
    }

    /// The daemon's temp dir.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A message and the instant the client's event loop took it off the socket.
#[derive(Debug, Clone)]
pub struct Timed {
    /// When it was received.
    pub at: Instant,
    /// Topic.
    pub topic: String,
    /// Payload.
    pub payload: Bytes,
}

/// An MQTT client (TCP_NODELAY) whose event-loop task timestamps every incoming publish.
pub struct Client {
    /// The rumqttc handle.
    pub client: AsyncClient,
    /// Incoming publishes.
    pub messages: mpsc::UnboundedReceiver<Timed>,
    acks: mpsc::UnboundedReceiver<&'static str>,
    task: tokio::task::JoinHandle<()>,
}

impl Client {
    /// Connects and waits for the ConnAck.
    pub async fn connect(addr: SocketAddr, id: &str) -> Client {
        let mut options = MqttOptions::new(id, addr.ip().to_string(), addr.port());
        options
            .set_keep_alive(Duration::from_secs(30))
            .set_clean_session(true)
            .set_inflight(1000)
            .set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut eventloop) = AsyncClient::new(options, 10_000);
        let mut network = eventloop.network_options();
        network.set_tcp_nodelay(true);
        eventloop.set_network_options(network);
        let (messages_tx, messages) = mpsc::unbounded_channel();
        let (acks_tx, acks) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let _ = messages_tx.send(Timed {
                            at: Instant::now(),
                            topic: p.topic,
                            payload: p.payload,
                        });
                    }
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        let _ = acks_tx.send("connack");
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = acks_tx.send("suback");
                    }
                    Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => break,
                    Ok(_) => {}
                    Err(error) => panic!("bench client: {error}"),
                }
            }
        });
        let mut this = Client {
            client,
            messages,
            acks,
            task,
        };
        this.wait_ack("connack").await;
        this
    }

    async fn wait_ack(&mut self, wanted: &str) {
        loop {
            match tokio::time::timeout(TIMEOUT, self.acks.recv()).await {
                Ok(Some(ack)) if ack == wanted => return,
                Ok(Some(_)) => {}
                _ => panic!("no {wanted} within {TIMEOUT:?}"),
            }
        }
    }

    /// Subscribes at QoS 1 and waits for the SubAck.
    pub async fn subscribe(&mut self, filter: &str) {
        self.client
            .subscribe(filter, QoS::AtLeastOnce)
            .await
            .expect("subscribe");
        self.wait_ack("suback").await;
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
    ) -> Timed {
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
