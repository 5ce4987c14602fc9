//! Computes every frame of a one-hour session at 50 Hz and prints figures.
//!
//! Baseline, measured in the same run: the same number of wake-ups through a loop that only
//! allocates and compares a frame, i.e. the cost of the shell's bookkeeping without any waveform.
//! Run with `cargo bench --bench engine`.

use massaged::config::builtin_routines;
use massaged::core::{Action, Command, Counters, Engine, EngineConfig, Frame, Settings};
use std::hint::black_box;
use std::time::{Duration, Instant};

const RUNS: usize = 15;

fn one_hour_session() -> (Duration, usize) {
    let config = EngineConfig {
        frame_hz: 50,
        max_session_minutes: 60,
        ..EngineConfig::default()
    };
    let settings = Settings {
        routine: "full-scalp".into(),
        intensity: 70,
        minutes: 60,
        heat: true,
        relaxer_date: None,
    };
    let mut engine = match Engine::new(config, builtin_routines(), settings, Counters::default()) {
        Ok(engine) => engine,
        Err(err) => panic!("engine: {err}"),
    };
    let t0 = Instant::now();
    let started = Instant::now();
    if let Err(err) = engine.handle_command(t0, &Command::action(Action::Start)) {
        panic!("start: {err}");
    }
    let mut wakeups = 0usize;
    while let Some(at) = engine.poll_timeout() {
        engine.handle_timeout(at);
        while let Some(output) = engine.poll_output() {
            black_box(output);
        }
        wakeups += 1;
    }
    (started.elapsed(), wakeups)
}

fn baseline(wakeups: usize) -> Duration {
    let started = Instant::now();
    let mut last = Frame::zero(11);
    for i in 0..wakeups {
        let mut frame = Frame::zero(11);
        frame.levels[i % 11] = (i % 1000) as u16;
        if frame != last {
            last = black_box(frame);
        }
    }
    black_box(last);
    started.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let mut session = Vec::with_capacity(RUNS);
    let mut base = Vec::with_capacity(RUNS);
    let mut wakeups = 0;
    for _ in 0..RUNS {
        let (elapsed, n) = one_hour_session();
        wakeups = n;
        session.push(elapsed);
        base.push(baseline(n));
    }
    let session = median(session);
    let base = median(base);
    let frames_per_s = wakeups as f64 / session.as_secs_f64();
    println!("engine: one-hour full-scalp session at 50 Hz, {RUNS} runs, medians");
    println!("  wake-ups (frames computed): {wakeups}");
    println!(
        "  engine:   {:>8.2} ms  ({frames_per_s:.0} frames/s)",
        session.as_secs_f64() * 1e3
    );
    println!(
        "  baseline: {:>8.2} ms  (frame alloc+compare only)",
        base.as_secs_f64() * 1e3
    );
    println!(
        "  ratio engine/baseline: {:.2}",
        session.as_secs_f64() / base.as_secs_f64()
    );
    println!(
        "  target: < 20 ms -> {}",
        if session < Duration::from_millis(20) {
            "met"
        } else {
            "MISSED"
        }
    );
}
