//! Flood bench (issue 10): 4 publishers send 20,000 mixed commands at QoS 0 while a session
//! runs; a `stop` goes out mid-flood. Measures the time from publishing the stop to the idle
//! state on the broker, counts stops lost (no idle state within 5 s) and the share of id'd
//! commands that got an answer (`{root}/response`).
//!
//! `cargo bench --bench flood -- [--broker embedded|mosquitto] [--runs N]`

#[path = "../tests/support/bench.rs"]
#[allow(dead_code)]
mod bench;
#[path = "../tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

use bench::{Client, ms, percentile};
use rumqttc::QoS;
use std::collections::HashSet;
use std::time::{Duration, Instant};
use support::daemon::DaemonProcess;
use support::{BrokerKind, TestBroker};

const PUBLISHERS: usize = 4;
const COMMANDS: usize = 20_000;
const STOP_LOST_AFTER: Duration = Duration::from_secs(5);

fn mixed_command(n: usize) -> String {
    match n % 5 {
        0 => format!(r#"{{"intensity":{},"id":"c{n}"}}"#, 20 + n % 60),
        1 => format!(r#"{{"action":"launch","id":{n}}}"#),
        2 => "not json".to_string(),
        3 => format!(r#"{{"heat":"yes","id":"c{n}"}}"#),
        _ => format!(r#"{{"minutes":{},"id":"c{n}"}}"#, 5 + n % 20),
    }
}

fn has_id(n: usize) -> bool {
    n % 5 != 2
}

async fn one_run(
    broker: &TestBroker,
    daemon: &DaemonProcess,
    run: usize,
) -> (Option<Duration>, f64) {
    let set = daemon.topic("set");
    let state = daemon.topic("state");
    let response = daemon.topic("response");
    let mut watcher = Client::connect(broker.addr(), &format!("flood-watch-{run}")).await;
    watcher.subscribe(&state).await;
    watcher.subscribe(&response).await;
    // The retained state says the daemon is connected (the first run waits for it to start).
    watcher.expect(&state, |_| true, support::TIMEOUT).await;
    let starter = Client::connect(broker.addr(), &format!("flood-start-{run}")).await;
    starter
        .publish(&set, r#"{"action":"start","minutes":10}"#)
        .await;
    watcher
        .expect(
            &state,
            |p| bench::json_str_is(p, "state", "running"),
            support::TIMEOUT,
        )
        .await;

    let mut publishers = Vec::new();
    for p in 0..PUBLISHERS {
        publishers.push(Client::connect(broker.addr(), &format!("flood-{run}-{p}")).await);
    }
    let stopper = Client::connect(broker.addr(), &format!("flood-stop-{run}")).await;
    let per = COMMANDS / PUBLISHERS;
    let mut tasks = Vec::new();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<Instant>();
    let mut stop_tx = Some(stop_tx);
    for (p, publisher) in publishers.into_iter().enumerate() {
        let set = set.clone();
        let stop = if p == 0 { stop_tx.take() } else { None };
        let stopper = if p == 0 {
            Some(stopper.client.clone())
        } else {
            None
        };
        tasks.push(tokio::spawn(async move {
            let mut stop = stop;
            for i in 0..per {
                let n = p * per + i;
                if i == per / 2
                    && let (Some(tx), Some(stopper)) = (stop.take(), stopper.as_ref())
                {
                    let at = Instant::now();
                    stopper
                        .publish(
                            &set,
                            QoS::AtMostOnce,
                            false,
                            r#"{"action":"stop","id":"stop"}"#,
                        )
                        .await
                        .expect("stop publish");
                    let _ = tx.send(at);
                }
                publisher
                    .client
                    .publish(&set, QoS::AtMostOnce, false, mixed_command(n))
                    .await
                    .expect("flood publish");
            }
            publisher
        }));
    }
    let stop_at = stop_rx.await.expect("stop sent");
    let mut idle_at = None;
    let mut answered = HashSet::new();
    let deadline = tokio::time::Instant::now() + STOP_LOST_AFTER;
    while let Ok(Some(m)) = tokio::time::timeout_at(deadline, watcher.messages.recv()).await {
        if m.topic == state && idle_at.is_none() && bench::json_str_is(&m.payload, "state", "idle")
        {
            idle_at = Some(m.at);
        } else if m.topic == response
            && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&m.payload)
        {
            answered.insert(v["id"].to_string());
        }
    }
    for task in tasks {
        let _ = task.await;
    }
    let ids = (0..COMMANDS).filter(|n| has_id(*n)).count() + 1;
    let latency = idle_at.map(|at| at.saturating_duration_since(stop_at));
    (latency, answered.len() as f64 / ids as f64)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let kind = match value("--broker").as_deref() {
        Some("mosquitto") => BrokerKind::Mosquitto,
        _ => BrokerKind::Embedded,
    };
    let runs: usize = value("--runs").and_then(|r| r.parse().ok()).unwrap_or(5);
    let broker = TestBroker::start_with(kind, true);
    let daemon = bench::spawn_daemon(&broker.url(), "", false, "");
    println!(
        "flood: broker {}, {runs} runs, {COMMANDS} commands from {PUBLISHERS} publishers at QoS 0",
        kind.name()
    );
    println!("machine: {}", bench::machine());
    let mut latencies = Vec::new();
    let mut lost = 0;
    let mut shares = Vec::new();
    for run in 0..runs {
        let (latency, share) = one_run(&broker, &daemon, run).await;
        match latency {
            Some(l) => latencies.push(l),
            None => lost += 1,
        }
        shares.push(share);
        println!(
            "run {run}: stop -> idle state {} ms, answered {:.1} %",
            latency.map_or("LOST".into(), ms),
            share * 100.0
        );
    }
    latencies.sort();
    if !latencies.is_empty() {
        println!(
            "stop -> idle state on the broker: p50 {} ms, p99 {} ms (n={})",
            ms(percentile(&latencies, 50.0)),
            ms(percentile(&latencies, 99.0)),
            latencies.len()
        );
    }
    let mean_share = shares.iter().sum::<f64>() / shares.len().max(1) as f64;
    println!(
        "stops lost: {lost} of {runs}; id'd commands answered: {:.1} %",
        mean_share * 100.0
    );
}
