//! A flood of commands does not starve the systemd watchdog: a fake notify socket records
//! `WATCHDOG=1` while four publishers flood `{root}/set` at QoS 0, and the pings keep coming
//! within the watchdog timeout. Afterwards a `stop` is still answered.

#[allow(dead_code)]
mod support;

use rumqttc::{AsyncClient, MqttOptions, QoS};
use std::net::SocketAddr;
use std::os::unix::net::UnixDatagram;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::daemon::DaemonProcess;
use support::{TIMEOUT, TestBroker, TestClient};

/// systemd's `WatchdogSec=` for the daemon; it pings every half of it.
const WATCHDOG: Duration = Duration::from_secs(2);
/// How long the flood lasts: several watchdog intervals.
const FLOOD: Duration = Duration::from_secs(4);
const PUBLISHERS: usize = 4;
/// Commands per publisher: 20,000 in all, as in issue 10's flood.
const PER_PUBLISHER: u64 = 5_000;

/// Every datagram received on the fake notify socket, with when it arrived.
type Notices = Arc<Mutex<Vec<(Instant, String)>>>;

fn record(socket: UnixDatagram) -> Notices {
    let notices: Notices = Arc::default();
    let sink = Arc::clone(&notices);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        // Ends when the test process exits; a read timeout only lets it notice nothing.
        while let Ok(n) = socket.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            sink.lock().expect("notices").push((Instant::now(), text));
        }
    });
    notices
}

fn count(notices: &Notices, text: &str) -> usize {
    notices
        .lock()
        .expect("notices")
        .iter()
        .filter(|(_, t)| t == text)
        .count()
}

/// Floods `topic` with [`PER_PUBLISHER`] mixed commands (QoS 0, no acknowledgements) spread
/// over [`FLOOD`]; returns how many went out.
async fn flood(addr: SocketAddr, name: String, topic: String, start: Instant) -> u64 {
    let mut options = MqttOptions::new(name, addr.ip().to_string(), addr.port());
    options.set_keep_alive(Duration::from_secs(30));
    let (client, mut eventloop) = AsyncClient::new(options, 1000);
    let poll = tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    let commands = [
        r#"{"action":"pause","id":"p"}"#,
        r#"{"intensity":55}"#,
        "resume",
        r#"{"action":"start","routine":"no-such-routine","id":"x"}"#,
        "{not json",
    ];
    let mut sent = 0u64;
    while sent < PER_PUBLISHER {
        if sent % 100 == 0 {
            // Pacing the sender over the flood's length, not synchronisation.
            let at = start + FLOOD.mul_f64(sent as f64 / PER_PUBLISHER as f64);
            tokio::time::sleep_until(at.into()).await;
        }
        let payload = commands[(sent % commands.len() as u64) as usize];
        if client
            .publish(&topic, QoS::AtMostOnce, false, payload)
            .await
            .is_err()
        {
            break;
        }
        sent += 1;
    }
    let _ = client.disconnect().await;
    let _ = tokio::time::timeout(TIMEOUT, poll).await;
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_flood_does_not_starve_the_watchdog() {
    let broker = TestBroker::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind the notify socket");
    let notices = record(socket);
    let usec = WATCHDOG.as_micros().to_string();
    let mut daemon = DaemonProcess::spawn_with_env(
        &broker,
        "",
        &[
            ("NOTIFY_SOCKET", socket_path.as_os_str()),
            ("WATCHDOG_USEC", usec.as_ref()),
        ],
    );
    // Only to wait for `online`; it would receive the flood too.
    daemon
        .online_watcher(&broker, "watchdog-online")
        .await
        .disconnect()
        .await;
    assert!(
        support::watch::poll(TIMEOUT, || (count(&notices, "READY=1") == 1).then_some(())).is_some(),
        "READY=1 sent: {}",
        daemon.log()
    );

    let mut client = TestClient::connect(&broker, "watchdog-after").await;
    client.subscribe(&daemon.topic("response")).await;
    let flood_start = Instant::now();
    let floods: Vec<_> = (0..PUBLISHERS)
        .map(|n| {
            tokio::spawn(flood(
                broker.addr(),
                format!("flood-{n}"),
                daemon.topic("set"),
                flood_start,
            ))
        })
        .collect();
    let mut sent = 0;
    for flood in floods {
        sent += flood.await.expect("flood task");
    }
    let flood_end = Instant::now();

    // The daemon still answers once it has worked through the flood. The link may still drop
    // a command that arrives while its queue is full (tests/link.rs covers `stop` there), so
    // ask again until answered.
    let deadline = Instant::now() + 3 * TIMEOUT;
    let mut attempt = 0;
    'answered: loop {
        attempt += 1;
        let id = format!("after-flood-{attempt}");
        let stop = format!(r#"{{"action":"stop","id":"{id}"}}"#);
        client.publish(&daemon.topic("set"), stop, false).await;
        let wait_until = (Instant::now() + Duration::from_secs(2)).min(deadline);
        loop {
            let left = wait_until.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, client.expect_any("#", 3 * TIMEOUT)).await {
                Ok(m) if m.text().contains(&id) => break 'answered,
                Ok(_) => {}
                Err(_) if Instant::now() < deadline => break,
                Err(_) => {
                    let log = daemon.log();
                    let tail: Vec<&str> = log.lines().rev().take(40).collect();
                    panic!("no answer to a stop after the flood; log tail: {tail:#?}");
                }
            }
        }
    }
    let answered = Instant::now();

    let pings: Vec<Instant> = notices
        .lock()
        .expect("notices")
        .iter()
        .filter(|(_, text)| text == "WATCHDOG=1")
        .map(|(at, _)| *at)
        .filter(|at| *at >= flood_start && *at <= answered)
        .collect();
    let window = answered - flood_start;
    // Pings are due every WATCHDOG / 2; allow for a slow machine, but a starved loop sends none.
    let expected = (window.as_secs_f64() / (WATCHDOG.as_secs_f64() / 2.0)) as usize;
    assert!(
        pings.len() + 2 >= expected,
        "{} pings in {window:?} during a flood of {sent} commands (expected about {expected})\n{}",
        pings.len(),
        daemon.log()
    );
    let mut gaps: Vec<Duration> = pings.windows(2).map(|w| w[1] - w[0]).collect();
    gaps.push(pings.first().map_or(window, |first| *first - flood_start));
    let longest = gaps.iter().max().copied().unwrap_or_default();
    assert!(
        longest < WATCHDOG,
        "longest gap between WATCHDOG=1 {longest:?} reaches WatchdogSec {WATCHDOG:?} \
         (flood of {sent} commands, ended after {:?})",
        flood_end - flood_start
    );
    eprintln!(
        "{} WATCHDOG=1 in {window:?}, longest gap {longest:?}, flood of {sent} commands",
        pings.len()
    );
    assert_eq!(
        sent,
        PER_PUBLISHER * PUBLISHERS as u64,
        "the whole flood went out"
    );

    daemon.signal("TERM");
    let status = daemon.wait_exit(TIMEOUT).expect("exits");
    assert!(status.success(), "{status:?}\n{}", daemon.log());
    assert!(count(&notices, "STOPPING=1") == 1, "STOPPING=1 sent");
}
