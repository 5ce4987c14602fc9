//! Shared test helpers: a real MQTT broker on a free loopback port and a small MQTT client.
//!
//! Use from an integration test with `#[allow(dead_code)] mod support;` (not every test file
//! uses every helper); the benches include this same module by path, with their measuring
//! pieces in `bench.rs` next to it.
//!
//! * [`TestBroker::start`] runs the in-process embedded broker, or a real Mosquitto process when
//!   the environment has `MASSAGED_TEST_BROKER=mosquitto`. Both can be killed and restarted on
//!   the same port (reconnect tests); Mosquitto can also be frozen with SIGSTOP.
//! * [`TestClient`] connects with rumqttc, subscribes, publishes at QoS 1 and waits for the
//!   broker's acknowledgement, and waits for matching messages with a timeout
//!   ([`TestClient::expect`]), never by sleeping.
pub mod daemon;
pub mod routine;
pub mod sysfs;
pub mod watch;

use bytes::Bytes;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Generous default for waits in tests: only reached when something is broken.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Which broker implementation a [`TestBroker`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerKind {
    /// `massaged::broker::EmbeddedBroker`, in this process.
    Embedded,
    /// A `mosquitto` child process.
    Mosquitto,
}

impl BrokerKind {
    /// The kind chosen by `MASSAGED_TEST_BROKER` (`mosquitto`, or anything else for embedded);
    /// always Mosquitto in a build without the embedded broker (the `.deb` feature set).
    pub fn from_env() -> BrokerKind {
        match std::env::var("MASSAGED_TEST_BROKER").as_deref() {
            Ok("mosquitto") => BrokerKind::Mosquitto,
            _ if cfg!(not(feature = "embedded-broker")) => BrokerKind::Mosquitto,
            _ => BrokerKind::Embedded,
        }
    }

    /// Name used in printed figures.
    pub fn name(self) -> &'static str {
        match self {
            BrokerKind::Embedded => "embedded",
            BrokerKind::Mosquitto => "mosquitto",
        }
    }
}

enum Running {
    #[cfg(feature = "embedded-broker")]
    Embedded(massaged::broker::EmbeddedBroker),
    Mosquitto(Child),
    Stopped,
}

/// A running MQTT broker on 127.0.0.1 and a port chosen at start, kept across restarts.
pub struct TestBroker {
    kind: BrokerKind,
    addr: SocketAddr,
    running: Running,
    /// Mosquitto's `set_tcp_nodelay` (the latency bench compares both).
    nodelay: bool,
    /// Mosquitto's config and log live here; removed on drop.
    dir: tempfile::TempDir,
}

impl TestBroker {
    /// Starts the broker chosen by `MASSAGED_TEST_BROKER` on a free loopback port.
    pub fn start() -> TestBroker {
        TestBroker::start_kind(BrokerKind::from_env())
    }

    /// Starts a broker of `kind` on a free loopback port.
    pub fn start_kind(kind: BrokerKind) -> TestBroker {
        TestBroker::start_with(kind, true)
    }

    /// Starts a broker of `kind`; `nodelay` is Mosquitto's `set_tcp_nodelay` (the embedded
    /// broker always sets it).
    pub fn start_with(kind: BrokerKind, nodelay: bool) -> TestBroker {
        match kind {
            BrokerKind::Embedded => {
                let (addr, running) = start_embedded(SocketAddr::from(([127, 0, 0, 1], 0)));
                TestBroker {
                    kind,
                    addr,
                    running,
                    nodelay,
                    dir: tempfile::tempdir().expect("temp dir for the test broker"),
                }
            }
            BrokerKind::Mosquitto => {
                // Mosquitto cannot report a port it picked, so borrow a free one from the OS.
                // Another process could grab it in between; retry a few times if so.
                for _ in 0..5 {
                    let mut broker = TestBroker {
                        kind,
                        addr: free_loopback_addr(),
                        running: Running::Stopped,
                        nodelay,
                        dir: tempfile::tempdir().expect("temp dir for the test broker"),
                    };
                    match broker.spawn_mosquitto() {
                        Ok(child) => {
                            broker.running = Running::Mosquitto(child);
                            return broker;
                        }
                        Err(error) => {
                            eprintln!("mosquitto on {} failed, retrying: {error}", broker.addr)
                        }
                    }
                }
                panic!("could not start mosquitto on a free port (is it installed?)");
            }
        }
    }

    /// Which implementation runs.
    pub fn kind(&self) -> BrokerKind {
        self.kind
    }

    /// Address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Port clients connect to.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `mqtt://127.0.0.1:{port}`, as the daemon's config takes it.
    pub fn url(&self) -> String {
        format!("mqtt://{}", self.addr)
    }

    /// Pid of the broker process: this process's for the embedded broker.
    pub fn pid(&self) -> u32 {
        match &self.running {
            Running::Mosquitto(child) => child.id(),
            _ => std::process::id(),
        }
    }

    /// Whether the broker is running (not killed).
    pub fn is_running(&self) -> bool {
        !matches!(self.running, Running::Stopped)
    }

    /// Stops the broker at once, dropping every connection (Mosquitto: SIGKILL). Idempotent.
    pub fn kill(&mut self) {
        match std::mem::replace(&mut self.running, Running::Stopped) {
            #[cfg(feature = "embedded-broker")]
            Running::Embedded(mut broker) => broker.stop(),
            Running::Mosquitto(mut child) => {
                // Already exited is fine: kill only fails then.
                let _ = child.kill();
                let _ = child.wait();
            }
            Running::Stopped => {}
        }
    }

    /// Kills the broker if running and starts a fresh one (no retained state) on the same port.
    pub fn restart(&mut self) {
        self.kill();
        match self.kind {
            BrokerKind::Embedded => {
                let (_, running) = start_embedded(self.addr);
                self.running = running;
            }
            BrokerKind::Mosquitto => {
                let child = self.spawn_mosquitto().unwrap_or_else(|error| {
                    panic!("restarting mosquitto on {}: {error}", self.addr)
                });
                self.running = Running::Mosquitto(child);
            }
        }
    }

    /// Whether [`TestBroker::freeze`] works (Mosquitto only: the embedded broker shares our
    /// process).
    pub fn can_freeze(&self) -> bool {
        matches!(self.running, Running::Mosquitto(_))
    }

    /// Suspends the broker process (SIGSTOP): connections stay open but nothing answers.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Resumes a frozen broker (SIGCONT).
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let Running::Mosquitto(child) = &self.running else {
            panic!("freeze/thaw needs a running mosquitto (MASSAGED_TEST_BROKER=mosquitto)");
        };
        let status = Command::new("kill")
            .arg(signal)
            .arg(child.id().to_string())
            .status()
            .expect("running kill");
        assert!(status.success(), "kill {signal} {} failed", child.id());
    }

    /// Writes the config and starts mosquitto, returning once it accepts connections.
    fn spawn_mosquitto(&self) -> Result<Child, String> {
        let config = format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
             set_tcp_nodelay {nodelay}\nlog_type error\nlog_type warning\n",
            port = self.addr.port(),
            nodelay = self.nodelay,
        );
        start_mosquitto(self.dir.path(), &config, self.addr)
    }
}

/// Starts `mosquitto` on `config` (written to `mosquitto.conf` in `dir`, logging to
/// `mosquitto.log` there) and returns once it accepts connections on `addr`; an error with the
/// log if it exits first, or if it is not listening after [`TIMEOUT`].
pub fn start_mosquitto(dir: &Path, config: &str, addr: SocketAddr) -> Result<Child, String> {
    let config_path = dir.join("mosquitto.conf");
    let log_path = dir.join("mosquitto.log");
    let config = format!("log_dest file {}\n{config}", log_path.display());
    std::fs::write(&config_path, config).map_err(|e| format!("writing config: {e}"))?;
    let mut child = Command::new("mosquitto")
        .arg("-c")
        .arg(&config_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("spawning mosquitto: {e}"))?;
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            return Err(format!("mosquitto exited with {status}: {log}"));
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(child);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "mosquitto not listening on {addr} after {TIMEOUT:?}"
            ));
        }
        // Polling interval for a condition we cannot be notified of, not a synchronising sleep.
        std::thread::sleep(Duration::from_millis(10));
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        // A frozen mosquitto ignores nothing of SIGKILL, so kill works even then.
        self.kill();
    }
}

/// Starts the embedded broker on `addr` (port 0: any), returning where it listens.
#[cfg(feature = "embedded-broker")]
fn start_embedded(addr: SocketAddr) -> (SocketAddr, Running) {
    let broker = massaged::broker::EmbeddedBroker::start(addr)
        .unwrap_or_else(|error| panic!("embedded broker on {addr}: {error}"));
    (broker.local_addr(), Running::Embedded(broker))
}

#[cfg(not(feature = "embedded-broker"))]
fn start_embedded(_: SocketAddr) -> (SocketAddr, Running) {
    panic!("built without feature embedded-broker: set MASSAGED_TEST_BROKER=mosquitto")
}

/// A loopback address whose port was free a moment ago.
pub fn free_loopback_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a free loopback port");
    listener
        .local_addr()
        .expect("local address of a bound socket")
}

/// A message a [`TestClient`] received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// When the client's event loop took it off the socket (latency benches).
    pub at: Instant,
    /// Topic it was published on.
    pub topic: String,
    /// Payload.
    pub payload: Bytes,
    /// Whether the broker delivered it as retained.
    pub retain: bool,
}

impl Received {
    /// Payload as UTF-8 (lossy), for assertions.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
}

/// An acknowledgement the client's event loop saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    /// ConnAck.
    Conn,
    /// SubAck.
    Sub,
    /// PubAck.
    Pub,
}

/// What a client's event-loop task does on a connection error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Keep polling: rumqttc reconnects (tests that restart the broker).
    Reconnect,
    /// Panic: a bench's figures mean nothing after a lost connection.
    Panic,
}

/// The channels a client's event-loop task feeds.
pub struct EventLoopTask {
    /// Every incoming publish, timestamped.
    pub messages: mpsc::UnboundedReceiver<Received>,
    /// Every ConnAck, SubAck and PubAck.
    pub acks: mpsc::UnboundedReceiver<Ack>,
    /// The task; abort it to stop polling.
    pub task: tokio::task::JoinHandle<()>,
}

/// Connects with TCP_NODELAY, a clean session and 1 MiB packets, and spawns the task polling
/// the event loop (`options` are adjusted from there). Returns once the ConnAck came.
pub async fn connect_client(
    addr: SocketAddr,
    client_id: &str,
    capacity: usize,
    adjust: impl FnOnce(&mut MqttOptions),
    on_error: OnError,
) -> (AsyncClient, EventLoopTask) {
    let mut options = MqttOptions::new(client_id, addr.ip().to_string(), addr.port());
    options
        .set_keep_alive(Duration::from_secs(30))
        .set_clean_session(true)
        .set_max_packet_size(1 << 20, 1 << 20);
    adjust(&mut options);
    let (client, mut eventloop) = AsyncClient::new(options, capacity);
    let mut network = eventloop.network_options();
    network.set_tcp_nodelay(true);
    eventloop.set_network_options(network);
    let (messages_tx, messages) = mpsc::unbounded_channel();
    let (acks_tx, acks) = mpsc::unbounded_channel();
    let task_id = client_id.to_owned();
    let task = tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let _ = messages_tx.send(Received {
                        at: Instant::now(),
                        topic: p.topic,
                        payload: p.payload,
                        retain: p.retain,
                    });
                }
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let _ = acks_tx.send(Ack::Conn);
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    let _ = acks_tx.send(Ack::Sub);
                }
                Ok(Event::Incoming(Packet::PubAck(_))) => {
                    let _ = acks_tx.send(Ack::Pub);
                }
                Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => break,
                Ok(_) => {}
                Err(error) if on_error == OnError::Panic => panic!("{task_id}: {error}"),
                // Reconnect pacing while the broker is down, not synchronisation.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    });
    let mut events = EventLoopTask {
        messages,
        acks,
        task,
    };
    wait_ack(&mut events.acks, Ack::Conn, client_id, "connect").await;
    (client, events)
}

/// Waits for the next `wanted` acknowledgement on `acks`, skipping others; panics after
/// [`TIMEOUT`].
pub async fn wait_ack(
    acks: &mut mpsc::UnboundedReceiver<Ack>,
    wanted: Ack,
    client_id: &str,
    what: &str,
) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        match tokio::time::timeout_at(deadline, acks.recv()).await {
            Ok(Some(ack)) if ack == wanted => return,
            Ok(Some(_)) => continue,
            Ok(None) => panic!("{client_id}: client task ended during {what}"),
            Err(_) => panic!("{client_id}: no {wanted:?} ack for {what} within {TIMEOUT:?}"),
        }
    }
}

/// A plain MQTT client for tests. Operations are sequential (`&mut self`) and each waits for
/// the broker's acknowledgement, so "published" means the broker has the message.
pub struct TestClient {
    client: AsyncClient,
    events: EventLoopTask,
    client_id: String,
    probes: u32,
}

impl TestClient {
    /// Connects to `broker` with a clean session and waits for the ConnAck.
    pub async fn connect(broker: &TestBroker, client_id: &str) -> TestClient {
        TestClient::connect_to(broker.addr(), client_id).await
    }

    /// Connects to the broker at `addr` and waits for the ConnAck.
    pub async fn connect_to(addr: SocketAddr, client_id: &str) -> TestClient {
        let (client, events) =
            connect_client(addr, client_id, 64, |_| {}, OnError::Reconnect).await;
        TestClient {
            client,
            events,
            client_id: client_id.to_owned(),
            probes: 0,
        }
    }

    async fn wait_ack(&mut self, wanted: Ack, what: &str) {
        wait_ack(&mut self.events.acks, wanted, &self.client_id, what).await;
    }

    /// Subscribes to `filter` at QoS 1 and waits for the SubAck.
    pub async fn subscribe(&mut self, filter: &str) {
        self.client
            .subscribe(filter, QoS::AtLeastOnce)
            .await
            .expect("subscribe request");
        self.wait_ack(Ack::Sub, filter).await;
    }

    /// Publishes at QoS 1 and waits for the broker's PubAck.
    pub async fn publish(&mut self, topic: &str, payload: impl Into<Vec<u8>>, retain: bool) {
        self.client
            .publish(topic, QoS::AtLeastOnce, retain, payload)
            .await
            .expect("publish request");
        self.wait_ack(Ack::Pub, topic).await;
    }

    /// Waits for the next message on `filter` (MQTT wildcards allowed) that satisfies
    /// `predicate`; other messages received meanwhile are discarded. Panics after `timeout`.
    pub async fn expect(
        &mut self,
        filter: &str,
        predicate: impl Fn(&Received) -> bool,
        timeout: Duration,
    ) -> Received {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut skipped = Vec::new();
        loop {
            match tokio::time::timeout_at(deadline, self.events.messages.recv()).await {
                Ok(Some(message)) => {
                    if topic_matches(filter, &message.topic) && predicate(&message) {
                        return message;
                    }
                    skipped.push(format!("{} = {:?}", message.topic, message.text()));
                }
                Ok(None) => panic!("{}: client task ended", self.client_id),
                Err(_) => panic!(
                    "{}: no matching message on '{filter}' within {timeout:?}; skipped: {skipped:?}",
                    self.client_id
                ),
            }
        }
    }

    /// Waits for the next message on `filter` whose payload is `text`, at most [`TIMEOUT`].
    pub async fn expect_text(&mut self, filter: &str, text: &str) -> Received {
        self.expect(filter, |m| m.text() == text, TIMEOUT).await
    }

    /// Waits for the next message on `filter`, whatever its payload.
    pub async fn expect_any(&mut self, filter: &str, timeout: Duration) -> Received {
        self.expect(filter, |_| true, timeout).await
    }

    /// The retained payload on `topic`, or `None` when the broker holds none.
    ///
    /// Subscribes to `topic` (the subscription stays) together with a private probe topic,
    /// then publishes to the probe: the broker sends retained messages on subscribing, so
    /// they arrive before the probe does.
    pub async fn retained(&mut self, topic: &str, timeout: Duration) -> Option<Bytes> {
        self.probes += 1;
        let probe = format!("massaged-test-probe/{}/{}", self.client_id, self.probes);
        self.client
            .subscribe_many([
                rumqttc::SubscribeFilter::new(topic.to_owned(), QoS::AtLeastOnce),
                rumqttc::SubscribeFilter::new(probe.clone(), QoS::AtLeastOnce),
            ])
            .await
            .expect("subscribe request");
        self.wait_ack(Ack::Sub, topic).await;
        self.publish(&probe, "probe", false).await;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut value = None;
        loop {
            match tokio::time::timeout_at(deadline, self.events.messages.recv()).await {
                Ok(Some(message)) if message.topic == probe => return value,
                Ok(Some(message)) if message.topic == topic && message.retain => {
                    value = Some(message.payload);
                }
                Ok(Some(_)) => {}
                Ok(None) => panic!("{}: client task ended", self.client_id),
                Err(_) => panic!(
                    "{}: probe for '{topic}' not back within {timeout:?}",
                    self.client_id
                ),
            }
        }
    }

    /// Disconnects cleanly (no last will) and stops the client task.
    pub async fn disconnect(mut self) {
        let _ = self.client.disconnect().await;
        // Wait until the event loop has written DISCONNECT: it stops producing acks then.
        let _ = tokio::time::timeout(TIMEOUT, &mut self.events.task).await;
    }
}

impl Drop for TestClient {
    fn drop(&mut self) {
        self.events.task.abort();
    }
}

/// The payload as JSON; panics naming the topic when it is not.
pub fn json(message: &Received) -> serde_json::Value {
    serde_json::from_slice(&message.payload)
        .unwrap_or_else(|e| panic!("{} is not JSON ({e}): {}", message.topic, message.text()))
}

/// Whether the payload is a JSON state whose `state` is `state`.
pub fn is_state(message: &Received, state: &str) -> bool {
    serde_json::from_slice::<serde_json::Value>(&message.payload).is_ok_and(|v| v["state"] == state)
}

/// Whether MQTT topic `filter` (with `+` and `#`) matches `topic`.
pub fn topic_matches(filter: &str, topic: &str) -> bool {
    let mut levels = topic.split('/');
    for part in filter.split('/') {
        match part {
            "#" => return true,
            "+" => {
                if levels.next().is_none() {
                    return false;
                }
            }
            exact => {
                if levels.next() != Some(exact) {
                    return false;
                }
            }
        }
    }
    levels.next().is_none()
}
