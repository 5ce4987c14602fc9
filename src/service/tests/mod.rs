//! Every policy of the service in virtual time: instants are built by arithmetic, nothing sleeps.

use super::*;
use crate::config::builtin_routines;
use crate::core::{Counters, EngineConfig, SessionState, Settings};
use crate::mqtt::outbox::Delivery;
use crate::mqtt::routine_image::PictureKey;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

mod commands;
mod device;
mod pictures;
mod publishing;
mod saves;
mod timers;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn settings(relaxer_date: Option<Date>) -> Settings {
    Settings {
        routine: "temple-circles".into(),
        intensity: 50,
        minutes: 10,
        heat: false,
        relaxer_date,
    }
}

fn config(watchdog: Option<Duration>) -> ServiceConfig {
    ServiceConfig {
        topics: Topics::new("massaged", "dev", "homeassistant"),
        discovery: Some("{\"discovery\":true}".into()),
        clock: WallClock::new(Instant::now(), SystemTime::UNIX_EPOCH),
        rate_limit_per_s: 10,
        rate_limit_burst: 5,
        max_payload_bytes: 4096,
        save_debounce: ms(50),
        watchdog,
        broker: "broker:1883".into(),
        routine_picture: false,
    }
}

fn service_with(t0: Instant, settings: Settings, config: ServiceConfig, seed: u64) -> Service {
    let engine = Engine::new(
        EngineConfig::default(),
        builtin_routines(),
        settings.clone(),
        Counters::default(),
    )
    .expect("engine");
    let saved = SavedState::new(&settings, Counters::default());
    Service::new(t0, engine, saved, config, fastrand::Rng::with_seed(seed))
}

/// A service connected at `t0`, with its start-up actions drained.
fn connected(t0: Instant) -> Service {
    let mut service = service_with(t0, settings(None), config(None), 1);
    service.handle_link(t0, LinkInput::Connected);
    drain(&mut service);
    service
}

fn drain(service: &mut Service) -> Vec<Action> {
    std::iter::from_fn(|| service.poll_action()).collect()
}

fn command(service: &mut Service, now: Instant, payload: &str) -> Vec<Action> {
    service.handle_link(now, message("massaged/dev/set", payload, false));
    drain(service)
}

fn message(topic: &str, payload: &str, retain: bool) -> LinkInput {
    LinkInput::Message {
        topic: topic.into(),
        payload: Bytes::copy_from_slice(payload.as_bytes()),
        retain,
    }
}

fn publishes<'a>(actions: &'a [Action], topic: &'a str) -> impl Iterator<Item = &'a Publish> {
    actions.iter().filter_map(move |a| match a {
        Action::Publish(p) if p.topic == topic => Some(p),
        _ => None,
    })
}

fn texts(actions: &[Action], topic: &str) -> Vec<String> {
    publishes(actions, topic)
        .map(|p| String::from_utf8_lossy(&p.payload).into_owned())
        .collect()
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).expect("JSON")
}

/// Runs the service's timers up to `until`, in virtual time; returns every action.
fn run_until(service: &mut Service, until: Instant) -> Vec<Action> {
    let mut actions = drain(service);
    while let Some(due) = service.poll_timeout().filter(|due| *due <= until) {
        service.handle_timeout(due);
        actions.extend(drain(service));
    }
    actions
}

/// Everything logged while `f` runs, as text lines.
fn logs<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("sink").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let sink = Sink::default();
    let writer = sink.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let result = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8_lossy(&sink.0.lock().expect("sink")).into_owned();
    (result, text.lines().map(str::to_owned).collect())
}
