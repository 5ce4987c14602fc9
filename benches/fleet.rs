//! Many devices, one broker: N daemons (`massaged@` style: each its own device id, config and
//! state file) against one Mosquitto, then Home Assistant's birth message.
//!
//! Reports: time until all N are online; after `homeassistant/status online`, the time until
//! every daemon has republished its discovery and state, the spread of those republishes
//! (p10/p50/p90: the random delay is what keeps them from landing at once), the peak message
//! rate through the broker (as delivered to one `#` subscriber, 100 ms buckets scaled to 1 s,
//! and the busiest whole second), and each daemon's RSS (median, max).
//!
//! `cargo bench --bench fleet [-- --daemons 100]` (needs `mosquitto` on the PATH).

#[path = "../tests/support/bench.rs"]
#[allow(dead_code)]
mod bench;
#[path = "../tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

use bench::{Client, machine, median, ms, percentile, status_kb};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use support::daemon::DaemonProcess;
use support::{BrokerKind, Received, TestBroker};

/// Longest wait for the whole fleet to come online or republish; only reached when broken.
const FLEET_TIMEOUT: Duration = Duration::from_secs(120);

fn daemons_arg(args: &[String]) -> usize {
    args.windows(2)
        .find(|w| w[0] == "--daemons")
        .and_then(|w| w[1].parse().ok())
        .unwrap_or(100)
}

/// The device id in `massaged/{id}/...` or `homeassistant/device/{id}/config`.
fn device_of(topic: &str) -> Option<&str> {
    let mut parts = topic.split('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("massaged"), Some(id), _) => Some(id),
        (Some("homeassistant"), Some("device"), Some(id)) => Some(id),
        _ => None,
    }
}

/// The next message `watcher` receives about a daemon of the fleet (`ids`: device id to
/// index), with that daemon's index; panics unless every daemon was `what` by `deadline`.
async fn next_from_fleet(
    watcher: &mut Client,
    ids: &HashMap<String, usize>,
    deadline: tokio::time::Instant,
    what: &str,
) -> (usize, Received) {
    loop {
        let message = tokio::time::timeout_at(deadline, watcher.messages.recv())
            .await
            .unwrap_or_else(|_| panic!("every daemon {what} in time"))
            .expect("watcher open");
        if let Some(&i) = device_of(&message.topic).and_then(|id| ids.get(id)) {
            return (i, message);
        }
    }
}

/// Peak messages per second: over 100 ms buckets (scaled) and over whole seconds.
fn peak_rates(times: &[Instant], origin: Instant) -> (u64, u64) {
    let mut tenths: HashMap<u128, u64> = HashMap::new();
    let mut seconds: HashMap<u128, u64> = HashMap::new();
    for t in times {
        let since = t.saturating_duration_since(origin).as_millis();
        *tenths.entry(since / 100).or_default() += 1;
        *seconds.entry(since / 1000).or_default() += 1;
    }
    (
        tenths.values().max().copied().unwrap_or(0) * 10,
        seconds.values().max().copied().unwrap_or(0),
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let count = daemons_arg(&args);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(count));
}

async fn run(count: usize) {
    println!("fleet: {count} daemons, one mosquitto; {}", machine());
    let broker = TestBroker::start_with(BrokerKind::Mosquitto, true);
    let mut watcher = Client::connect(broker.addr(), "fleet-watch").await;
    watcher.subscribe("massaged/+/availability").await;
    watcher.subscribe("massaged/+/state").await;
    watcher.subscribe("homeassistant/device/+/config").await;

    let started = Instant::now();
    let daemons: Vec<DaemonProcess> = (0..count)
        .map(|_| bench::spawn_daemon(&broker.url(), "", false, ""))
        .collect();
    let ids: HashMap<String, usize> = daemons
        .iter()
        .enumerate()
        .map(|(i, d)| (d.device_id.clone(), i))
        .collect();
    let mut online = vec![None::<Instant>; count];
    let mut seen_online = 0;
    let deadline = tokio::time::Instant::now() + FLEET_TIMEOUT;
    while seen_online < count {
        let (i, message) = next_from_fleet(&mut watcher, &ids, deadline, "online").await;
        let is_online =
            message.topic.ends_with("/availability") && message.payload.as_ref() == b"online";
        if is_online && online[i].is_none() {
            online[i] = Some(message.at);
            seen_online += 1;
        }
    }
    let all_online = online
        .iter()
        .flatten()
        .max()
        .expect("online")
        .duration_since(started);
    println!(
        "all {count} online {} ms after the first spawn",
        ms(all_online)
    );

    // Let the start-up publishes settle, then drop what is queued.
    tokio::time::sleep(Duration::from_secs(3)).await;
    while watcher.messages.try_recv().is_ok() {}
    let mut rss_before: Vec<u64> = daemons
        .iter()
        .map(|d| status_kb(d.pid(), "VmRSS"))
        .collect();
    rss_before.sort_unstable();

    let mut everything = Client::connect(broker.addr(), "fleet-rate").await;
    everything.subscribe("#").await;
    // The retained messages the subscription brings are not part of the birth's traffic.
    tokio::time::sleep(Duration::from_secs(1)).await;
    while everything.messages.try_recv().is_ok() {}
    let birth = Instant::now();
    watcher.publish("homeassistant/status", "online").await;
    let mut discovery = vec![None::<Instant>; count];
    let mut state = vec![None::<Instant>; count];
    let mut done = 0;
    let deadline = tokio::time::Instant::now() + FLEET_TIMEOUT;
    while done < count {
        let (i, message) = next_from_fleet(&mut watcher, &ids, deadline, "republished").await;
        let slot = if message.topic.ends_with("/config") {
            &mut discovery[i]
        } else if message.topic.ends_with("/state") {
            &mut state[i]
        } else {
            continue;
        };
        if slot.is_none() {
            *slot = Some(message.at);
            if discovery[i].is_some() && state[i].is_some() {
                done += 1;
            }
        }
    }
    let finished = Instant::now();
    // Whatever else the birth caused (availability, late duplicates) within a second more.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut times = Vec::new();
    while let Ok(message) = everything.messages.try_recv() {
        if message.at >= birth {
            times.push(message.at);
        }
    }
    let mut republished: Vec<Duration> = discovery
        .iter()
        .zip(&state)
        .map(|(d, s)| {
            let last = d.expect("discovery").max(s.expect("state"));
            last.duration_since(birth)
        })
        .collect();
    republished.sort_unstable();
    let (peak_100ms, peak_1s) = peak_rates(&times, birth);
    let mut rss: Vec<u64> = daemons
        .iter()
        .map(|d| status_kb(d.pid(), "VmRSS"))
        .collect();
    rss.sort_unstable();

    println!(
        "birth -> every discovery and state republished: {} ms",
        ms(finished.duration_since(birth))
    );
    println!(
        "republish spread (per daemon, birth -> its discovery and state): min {} p10 {} p50 {} p90 {} max {} ms",
        ms(republished[0]),
        ms(percentile(&republished, 10.0)),
        ms(percentile(&republished, 50.0)),
        ms(percentile(&republished, 90.0)),
        ms(republished[count - 1]),
    );
    println!(
        "messages after the birth: {} in {} ms; peak rate {peak_100ms}/s (100 ms buckets), {peak_1s} in the busiest second",
        times.len(),
        ms(finished.duration_since(birth)),
    );
    println!(
        "daemon RSS: median {} kB, max {} kB (before the birth: median {} kB, max {} kB)",
        median(&rss),
        rss[count - 1],
        median(&rss_before),
        rss_before[count - 1],
    );
    // Clients first: a broker gone under them would end their event loops with a panic.
    drop(everything);
    drop(watcher);
    drop(daemons);
    drop(broker);
}
