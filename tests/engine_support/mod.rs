//! Shared fixtures for engine tests: a small routine library and a virtual clock.
#![allow(dead_code)]

use massaged::core::{
    Action, Command, Counters, Engine, EngineConfig, Frame, Output, Routine, Settings, Snapshot,
    Step, Technique, Zone,
};
use std::time::{Duration, Instant};

pub fn step(label: &str, zones: &[Zone], technique: Technique, seconds: u32) -> Step {
    Step {
        label: label.into(),
        zones: zones.to_vec(),
        technique,
        seconds,
        intensity: 100,
        tempo: 30,
    }
}

/// Two routines with known lengths: `short` (10 s + 20 s), `single` (one 60 s step).
pub fn library() -> Vec<Routine> {
    vec![
        Routine {
            id: "short".into(),
            name: "Short one".into(),
            description: "two steps".into(),
            steps: vec![
                step("Temple circles", &[Zone::Temples], Technique::Circles, 10),
                step(
                    "Sweep to crown",
                    &[Zone::Hairline, Zone::Crown],
                    Technique::Sweep,
                    20,
                ),
            ],
        },
        Routine {
            id: "single".into(),
            name: "Single".into(),
            description: "one step".into(),
            steps: vec![step("Neck knead", &[Zone::Neck], Technique::Knead, 60)],
        },
    ]
}

pub fn settings() -> Settings {
    Settings {
        routine: "short".into(),
        intensity: 50,
        minutes: 1,
        heat: false,
        relaxer_date: None,
    }
}

pub fn engine() -> Engine {
    engine_with(EngineConfig::default())
}

pub fn engine_with(config: EngineConfig) -> Engine {
    Engine::new(config, library(), settings(), Counters::default()).unwrap()
}

/// Everything the engine produced since the last drain, in order.
pub fn drain(engine: &mut Engine) -> Vec<Output> {
    std::iter::from_fn(|| engine.poll_output()).collect()
}

pub fn frames(outputs: &[Output]) -> Vec<&Frame> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Frame(f) => Some(f),
            _ => None,
        })
        .collect()
}

pub fn states(outputs: &[Output]) -> Vec<&Snapshot> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::State(s) => Some(&**s),
            _ => None,
        })
        .collect()
}

pub fn event_kinds(outputs: &[Output]) -> Vec<&'static str> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Event(e) => Some(e.kind.as_str()),
            _ => None,
        })
        .collect()
}

pub fn start() -> Command {
    Command::action(Action::Start)
}

/// Drives every timeout up to and including `until`, collecting outputs with their instants.
pub fn run_until(engine: &mut Engine, until: Instant) -> Vec<(Instant, Output)> {
    let mut out = Vec::new();
    while let Some(t) = engine.poll_timeout() {
        if t > until {
            break;
        }
        engine.handle_timeout(t);
        out.extend(drain(engine).into_iter().map(|o| (t, o)));
    }
    out
}

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}
