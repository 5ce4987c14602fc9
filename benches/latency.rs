//! Command-to-state latency through a broker, against a floor measured in the same run.
//!
//! A client publishes `{"intensity": N}` (QoS 1) to the daemon's `set` topic and times until
//! the retained state with `"intensity": N` arrives. The floor is a trivial bridge process
//! (rumqttc, TCP_NODELAY, this same binary re-executed) that republishes every payload it gets
//! on one topic to another, QoS 1 both ways, through the same broker. Commands to the bridge
//! and to the daemon are interleaved one for one, so both see the same machine load.
//!
//! `cargo bench --bench latency [-- --commands 1000 --rounds 3 --broker embedded|mosquitto|both]`

#[path = "../tests/support/bench.rs"]
#[allow(dead_code)]
mod bench;
#[path = "../tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

use bench::{Client, json_u64_is, median, ms, percentile};
use rumqttc::v5::mqttbytes::QoS as QoS5;
use rumqttc::v5::mqttbytes::v5::Packet as Packet5;
use rumqttc::v5::{AsyncClient as Client5, Event as Event5, MqttOptions as Options5};
use std::time::{Duration, Instant};
use support::{BrokerKind, TestBroker};

struct Options {
    commands: usize,
    rounds: usize,
    brokers: Vec<BrokerKind>,
    mosquitto_nodelay: bool,
}

fn options(args: &[String]) -> Options {
    let mut options = Options {
        commands: 1000,
        rounds: 3,
        brokers: vec![BrokerKind::Embedded, BrokerKind::Mosquitto],
        mosquitto_nodelay: true,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--commands" => {
                options.commands = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--commands N")
            }
            "--rounds" => {
                options.rounds = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--rounds N")
            }
            "--broker" => {
                options.brokers = match args.next().map(String::as_str) {
                    Some("embedded") => vec![BrokerKind::Embedded],
                    Some("mosquitto") => vec![BrokerKind::Mosquitto],
                    Some("both") => vec![BrokerKind::Embedded, BrokerKind::Mosquitto],
                    other => panic!("--broker embedded|mosquitto|both, got {other:?}"),
                }
            }
            // Shows what Mosquitto's default (Nagle on) costs.
            "--mosquitto-without-nodelay" => options.mosquitto_nodelay = false,
            // `cargo bench` passes this to every bench binary.
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    options
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if args.first().map(String::as_str) == Some("__bridge") {
        runtime.block_on(bridge(&args[1], &args[2], &args[3]));
        return;
    }
    let options = options(&args);
    println!("latency: command -> state through the broker, QoS 1, TCP_NODELAY on the clients");
    println!("  machine: {}", bench::machine());
    println!(
        "  {} commands per round, {} rounds, daemon and floor interleaved one for one",
        options.commands, options.rounds
    );
    for kind in &options.brokers {
        runtime.block_on(measure(*kind, &options));
    }
}

/// The floor: republishes every payload on `input` to `output`, from the polling task itself.
/// It speaks MQTT 5 like the daemon's link, so the ratio measures the daemon, not the protocol.
async fn bridge(addr: &str, input: &str, output: &str) {
    let addr: std::net::SocketAddr = addr.parse().expect("bridge address");
    let mut mqtt = Options5::new(
        format!("bench-bridge-{}", std::process::id()),
        addr.ip().to_string(),
        addr.port(),
    );
    mqtt.set_keep_alive(Duration::from_secs(30));
    mqtt.set_outgoing_inflight_upper_limit(100);
    let mut network = mqtt.network_options();
    network.set_tcp_nodelay(true);
    mqtt.set_network_options(network);
    let (client, mut eventloop) = Client5::new(mqtt, 64);
    loop {
        match eventloop.poll().await {
            Ok(Event5::Incoming(Packet5::ConnAck(_))) => {
                client
                    .try_subscribe(input, QoS5::AtLeastOnce)
                    .expect("bridge subscribe");
            }
            Ok(Event5::Incoming(Packet5::Publish(p))) => {
                client
                    .try_publish(output, QoS5::AtLeastOnce, false, p.payload.to_vec())
                    .expect("bridge publish");
            }
            Ok(_) => {}
            Err(error) => panic!("bridge: {error}"),
        }
    }
}

struct Round {
    floor: Vec<Duration>,
    daemon: Vec<Duration>,
}

async fn measure(kind: BrokerKind, options: &Options) {
    let nodelay = kind == BrokerKind::Embedded || options.mosquitto_nodelay;
    let broker = TestBroker::start_with(kind, nodelay);
    let daemon = bench::spawn_daemon(
        &broker.url(),
        "rate_limit_per_s = 1000000\nrate_limit_burst = 1000000",
        false,
        "",
    );
    let bridge_in = format!("bench/{}/in", daemon.device_id);
    let bridge_out = format!("bench/{}/out", daemon.device_id);
    let mut bridge = std::process::Command::new(std::env::current_exe().expect("current exe"))
        .args([
            "__bridge",
            &broker.addr().to_string(),
            &bridge_in,
            &bridge_out,
        ])
        .spawn()
        .expect("spawn bridge");

    let mut client = Client::connect(broker.addr(), "bench-latency").await;
    let state = daemon.topic("state");
    let set = daemon.topic("set");
    client.subscribe(&state).await;
    client.subscribe(&bridge_out).await;
    client.expect(&state, |_| true, support::TIMEOUT).await;
    // The bridge subscribes on its own schedule: ping it until it answers.
    let deadline = Instant::now() + support::TIMEOUT;
    loop {
        client.publish(&bridge_in, r#"{"intensity": 1}"#).await;
        let answered = tokio::time::timeout(Duration::from_millis(200), async {
            loop {
                match client.messages.recv().await {
                    Some(m) if m.topic == bridge_out => return,
                    Some(_) => {}
                    None => panic!("client ended"),
                }
            }
        })
        .await;
        if answered.is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "bridge never answered");
    }

    let one = async |client: &mut Client, topic: &str, reply: &str, value: u64| {
        let payload = format!(r#"{{"intensity": {value}}}"#);
        let sent = Instant::now();
        client.publish(topic, payload).await;
        let got = client
            .expect(
                reply,
                |p| json_u64_is(p, "intensity", value),
                Duration::from_secs(5),
            )
            .await;
        got.at - sent
    };
    // Warm-up: connections, caches, the daemon's first save.
    for i in 0..50 {
        let value = if i % 2 == 0 { 70 } else { 30 };
        one(&mut client, &bridge_in, &bridge_out, value).await;
        one(&mut client, &set, &state, value).await;
    }
    let mut rounds = Vec::new();
    for _ in 0..options.rounds {
        let mut round = Round {
            floor: Vec::with_capacity(options.commands),
            daemon: Vec::with_capacity(options.commands),
        };
        for i in 0..options.commands {
            let value = if i % 2 == 0 { 70 } else { 30 };
            round
                .floor
                .push(one(&mut client, &bridge_in, &bridge_out, value).await);
            round
                .daemon
                .push(one(&mut client, &set, &state, value).await);
        }
        round.floor.sort();
        round.daemon.sort();
        rounds.push(round);
    }
    let _ = bridge.kill();
    let _ = bridge.wait();

    let label = if kind == BrokerKind::Mosquitto && !nodelay {
        "mosquitto (set_tcp_nodelay false)"
    } else {
        kind.name()
    };
    println!("  broker: {label}");
    println!(
        "    round   floor p50   floor p99   daemon p50  daemon p99  ratio p50  ratio p99  (ms)"
    );
    let mut ratios50 = Vec::new();
    let mut ratios99 = Vec::new();
    for (n, round) in rounds.iter().enumerate() {
        let (f50, f99) = (
            percentile(&round.floor, 50.0),
            percentile(&round.floor, 99.0),
        );
        let (d50, d99) = (
            percentile(&round.daemon, 50.0),
            percentile(&round.daemon, 99.0),
        );
        let r50 = d50.as_secs_f64() / f50.as_secs_f64();
        let r99 = d99.as_secs_f64() / f99.as_secs_f64();
        ratios50.push(r50);
        ratios99.push(r99);
        println!(
            "    {:>5}   {:>9}   {:>9}   {:>10}  {:>10}  {r50:>9.2}  {r99:>9.2}",
            n + 1,
            ms(f50),
            ms(f99),
            ms(d50),
            ms(d99)
        );
    }
    let med = |f: fn(&Round) -> Duration| median(&rounds.iter().map(f).collect::<Vec<_>>());
    let ratio50 = median(&ratios50);
    println!(
        "    median  {:>9}   {:>9}   {:>10}  {:>10}  {ratio50:>9.2}  {:>9.2}",
        ms(med(|r| percentile(&r.floor, 50.0))),
        ms(med(|r| percentile(&r.floor, 99.0))),
        ms(med(|r| percentile(&r.daemon, 50.0))),
        ms(med(|r| percentile(&r.daemon, 99.0))),
        median(&ratios99),
    );
    println!(
        "    target daemon p50 <= 1.3 x floor p50 -> {}",
        if ratio50 <= 1.3 { "met" } else { "MISSED" }
    );
}
