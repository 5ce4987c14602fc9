//! Who can reach `massaged run --embedded-broker`: the real binary, real TCP.
//!
//! * a non-loopback address without a login in `[embedded_broker]` is refused, saying how to
//!   fix it;
//! * with a login, anonymous clients are refused and the configured user gets through;
//! * a packet larger than the daemon's own limit closes that client only: the daemon answers;
//! * a password in clear text to another host is a warning at start.
#![cfg(feature = "embedded-broker")]

use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, EventLoop, MqttOptions, Packet, QoS,
};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Only reached when something is broken.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A `massaged run --embedded-broker ADDR` child whose log lines arrive on a channel.
struct Daemon {
    child: Child,
    lines: mpsc::Receiver<String>,
    device_id: String,
    _dir: tempfile::TempDir,
}

impl Daemon {
    /// `listen`: the `--embedded-broker` address; `None` runs against `mqtt.url` of `extra`.
    fn spawn(listen: Option<SocketAddr>, extra: &str) -> Daemon {
        let dir = tempfile::tempdir().expect("temp dir");
        let device_id = format!("x{:08x}", fastrand::u32(..));
        let config = dir.path().join("massaged.toml");
        std::fs::write(
            &config,
            format!(
                "[device]\nid = \"{device_id}\"\n\n[store]\npath = \"{}\"\n\n\
                 [log]\nlevel = \"info\"\nformat = \"text\"\n\n{extra}\n",
                dir.path().join("state.json").display()
            ),
        )
        .expect("write config");
        let mut command = Command::new(env!("CARGO_BIN_EXE_massaged"));
        command.args(["run", "--config"]).arg(&config);
        if let Some(listen) = listen {
            command.arg("--embedded-broker").arg(listen.to_string());
        }
        let mut child = command
            .env_remove("RUST_LOG")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("JOURNAL_STREAM")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn massaged");
        let (tx, lines) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Daemon {
            child,
            lines,
            device_id,
            _dir: dir,
        }
    }

    /// Waits for a log line containing `needle`; returns every line read so far on failure.
    fn wait_line(&self, needle: &str) -> Result<String, Vec<String>> {
        let mut seen = Vec::new();
        let deadline = std::time::Instant::now() + TIMEOUT;
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return Ok(line),
                Ok(line) => seen.push(line),
                Err(_) => break,
            }
        }
        Err(seen)
    }

    fn topic(&self, leaf: &str) -> String {
        format!("massaged/{}/{leaf}", self.device_id)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("local addr").port()
}

fn client(port: u16, id: &str, login: Option<(&str, &str)>) -> (AsyncClient, EventLoop) {
    let mut options = MqttOptions::new(id, "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(30));
    if let Some((user, password)) = login {
        options.set_credentials(user, password);
    }
    AsyncClient::new(options, 16)
}

/// Polls until the ConnAck; the connection's outcome.
async fn connack(eventloop: &mut EventLoop) -> Result<(), ConnectionError> {
    loop {
        match tokio::time::timeout(TIMEOUT, eventloop.poll())
            .await
            .expect("broker answered the connect")?
        {
            Event::Incoming(Packet::ConnAck(_)) => return Ok(()),
            _ => continue,
        }
    }
}

/// Publishes a command with an id and waits for the daemon's response on `{root}/response`.
async fn command_answered(daemon: &Daemon, port: u16, login: Option<(&str, &str)>) {
    let (client, mut eventloop) = client(port, "exposure-check", login);
    connack(&mut eventloop).await.expect("login accepted");
    for leaf in ["response", "availability"] {
        client
            .subscribe(daemon.topic(leaf), QoS::AtLeastOnce)
            .await
            .expect("subscribe");
    }
    let mut sent = false;
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let event = tokio::time::timeout_at(deadline, eventloop.poll())
            .await
            .expect("the daemon answered the command")
            .expect("connection stays up");
        match event {
            // `online` comes after the daemon's own subscriptions: the command will be seen.
            Event::Incoming(Packet::Publish(p))
                if !sent
                    && p.topic == daemon.topic("availability")
                    && p.payload.as_ref() == b"online" =>
            {
                sent = true;
                client
                    .publish(
                        daemon.topic("set"),
                        QoS::AtLeastOnce,
                        false,
                        r#"{"action": "stop", "id": "still-there"}"#,
                    )
                    .await
                    .expect("publish");
            }
            Event::Incoming(Packet::Publish(p)) if p.topic == daemon.topic("response") => {
                let reply: serde_json::Value = serde_json::from_slice(&p.payload).expect("json");
                assert_eq!(reply["id"], "still-there", "{reply}");
                assert_eq!(reply["ok"], true, "{reply}");
                return;
            }
            _ => {}
        }
    }
}

#[test]
fn every_interface_without_a_login_is_refused_with_the_fix() {
    let listen = SocketAddr::from(([0, 0, 0, 0], free_port()));
    let mut daemon = Daemon::spawn(Some(listen), "");
    let line = daemon
        .wait_line("refusing to listen")
        .unwrap_or_else(|seen| panic!("no refusal; output: {seen:#?}"));
    assert!(line.contains(&listen.to_string()), "{line}");
    assert!(line.contains("[embedded_broker]"), "{line}");
    assert!(line.contains("password_file"), "{line}");
    let status = daemon.child.wait().expect("daemon exits");
    assert!(!status.success(), "{status}");
    // Nothing listens there.
    assert!(TcpStream::connect(("127.0.0.1", listen.port())).is_err());
}

#[tokio::test]
async fn with_a_login_strangers_are_refused_and_the_user_gets_in() {
    let port = free_port();
    let daemon = Daemon::spawn(
        Some(SocketAddr::from(([0, 0, 0, 0], port))),
        "[embedded_broker]\nusername = \"ha\"\npassword = \"s3cret\"\n",
    );
    daemon
        .wait_line("embedded MQTT broker listening")
        .unwrap_or_else(|seen| panic!("broker did not start; output: {seen:#?}"));

    let (_anonymous, mut eventloop) = client(port, "stranger", None);
    match connack(&mut eventloop).await {
        Err(ConnectionError::ConnectionRefused(
            ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized,
        )) => {}
        other => panic!("anonymous client not refused: {other:?}"),
    }
    let (_guess, mut eventloop) = client(port, "guesser", Some(("ha", "s3cre")));
    assert!(
        matches!(
            connack(&mut eventloop).await,
            Err(ConnectionError::ConnectionRefused(_))
        ),
        "wrong password accepted"
    );

    // The daemon logged in with the same user; it answers the user's command.
    command_answered(&daemon, port, Some(("ha", "s3cret"))).await;
}

#[tokio::test]
async fn an_oversized_packet_closes_only_that_client() {
    let port = free_port();
    let daemon = Daemon::spawn(Some(SocketAddr::from(([127, 0, 0, 1], port))), "");
    daemon
        .wait_line("embedded MQTT broker listening")
        .unwrap_or_else(|seen| panic!("broker did not start; output: {seen:#?}"));

    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    // MQTT 3.1.1 CONNECT, clean session, keep-alive 30 s, client id "big".
    stream
        .write_all(&[
            0x10, 15, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 30, 0, 3, b'b', b'i', b'g',
        ])
        .expect("send connect");
    let mut connack = [0u8; 4];
    stream.read_exact(&mut connack).expect("connack");
    assert_eq!(connack, [0x20, 2, 0, 0], "connection accepted");

    // PUBLISH QoS 0 announcing 16 MiB (remaining length as a 4-byte varint), then stream it.
    let announced: u32 = 16 << 20;
    let mut header = vec![0x30];
    let mut left = announced;
    loop {
        let mut byte = (left % 128) as u8;
        left /= 128;
        if left > 0 {
            byte |= 0x80;
        }
        header.push(byte);
        if left == 0 {
            break;
        }
    }
    header.extend_from_slice(&[0, 1, b't']);
    let mut sent = 0usize;
    let chunk = vec![b'x'; 64 * 1024];
    let mut closed = stream.write_all(&header).is_err();
    while !closed && sent < announced as usize {
        match stream.write(&chunk) {
            Ok(0) | Err(_) => closed = true,
            Ok(n) => sent += n,
        }
    }
    if !closed {
        // Everything fit into socket buffers; the broker must still drop the connection.
        let mut probe = [0u8; 1];
        closed = match stream.read(&mut probe) {
            Ok(0) => true,
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            Ok(_) => false,
        };
    }
    assert!(closed, "the broker kept a 16 MiB packet's connection open");
    drop(stream);

    command_answered(&daemon, port, None).await;
}

#[test]
fn a_clear_text_password_to_another_host_is_a_warning_at_start() {
    // 192.0.2.1 (TEST-NET-1) is never reachable: the daemon keeps retrying; we only read the log.
    let daemon = Daemon::spawn(None, "[mqtt]\nurl = \"mqtt://ha:s3cret@192.0.2.1:1883\"\n");
    let line = daemon
        .wait_line("clear text")
        .unwrap_or_else(|seen| panic!("no warning; output: {seen:#?}"));
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains("192.0.2.1"), "{line}");
    assert!(!line.contains("s3cret"), "{line}");
}
