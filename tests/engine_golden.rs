//! Golden traces: the engine's outputs for fixed inputs, recorded in `tests/golden/` and
//! compared byte for byte, so a refactor (or another platform's arithmetic) cannot change a
//! single level unnoticed.
//!
//! Regenerate after an intended change with `MASSAGED_BLESS=1 cargo test --test engine_golden`
//! and review the diff.

mod engine_support;

use engine_support::*;
use massaged::core::{
    Action, Command, Date, Engine, EngineConfig, Fault, Output, Routine, SessionState, Step,
    Technique, Zone,
};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

/// Compares `actual` with the recorded file, or rewrites it when blessing.
fn check_golden(name: &str, actual: &str) {
    let path = golden_path(name);
    if std::env::var_os("MASSAGED_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; bless with MASSAGED_BLESS=1", path.display()));
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "{} differs from the recorded trace at line {}:\n  recorded: {:?}\n  now:      {:?}",
            path.display(),
            line + 1,
            expected.lines().nth(line),
            actual.lines().nth(line)
        );
    }
}

fn millis(d: Duration) -> String {
    format!("{}.{:03}", d.as_secs(), d.subsec_millis())
}

/// One line per output, instants relative to `t0`, so the text is the same on every run.
fn describe(t0: Instant, at: Instant, output: &Output, text: &mut String) {
    let t = millis(at - t0);
    match output {
        Output::Frame(frame) => {
            let levels: Vec<String> = frame.levels.iter().map(u16::to_string).collect();
            let _ = writeln!(text, "{t} frame {}", levels.join(","));
        }
        Output::Event(event) => {
            let _ = writeln!(
                text,
                "{t} event {} routine={} step={:?} index={:?} reason={:?} fault={:?}",
                event.kind.as_str(),
                event.routine,
                event.step,
                event.step_index,
                event.reason.map(|r| r.as_str()),
                event.fault.as_ref().map(|f| f.code.as_str()),
            );
        }
        Output::State(s) => {
            let _ = writeln!(
                text,
                "{t} state {} routine={} step={:?} zones={:?} intensity={} heat={} minutes={} \
                 elapsed={:?} remaining={:?} ends_at={:?} guard={} sessions={} massage_s={}",
                s.state.as_str(),
                s.routine,
                s.step_index,
                s.zones
                    .as_ref()
                    .map(|z| z.iter().map(|z| z.as_str()).collect::<Vec<_>>()),
                s.intensity,
                s.heat,
                s.minutes,
                s.elapsed.map(millis),
                s.remaining.map(millis),
                s.ends_at.map(|e| millis(e - t0)),
                s.guard_active,
                s.counters.sessions_total,
                s.counters.massage_seconds_total,
            );
        }
    }
}

/// A virtual-time driver that records every output as text.
struct Recorder {
    engine: Engine,
    t0: Instant,
    now: Instant,
    text: String,
}

impl Recorder {
    fn new(engine: Engine) -> Recorder {
        let t0 = Instant::now();
        let mut recorder = Recorder {
            engine,
            t0,
            now: t0,
            text: String::new(),
        };
        recorder.drain();
        recorder
    }

    fn drain(&mut self) {
        while let Some(output) = self.engine.poll_output() {
            describe(self.t0, self.now, &output, &mut self.text);
        }
    }

    /// Runs every timeout up to `t0 + at`.
    fn advance(&mut self, at: Duration) {
        let target = self.t0 + at;
        while let Some(t) = self.engine.poll_timeout() {
            if t > target {
                break;
            }
            self.now = t;
            self.engine.handle_timeout(t);
            self.drain();
        }
        self.now = target;
    }

    fn command(&mut self, at: Duration, cmd: &Command) {
        self.advance(at);
        let result = self.engine.handle_command(self.now, cmd);
        let _ = writeln!(
            self.text,
            "{} command action={:?} routine={:?} intensity={:?} minutes={:?} heat={:?} \
             force={} relaxer={:?} -> {:?}",
            millis(self.now - self.t0),
            cmd.action.map(Action::as_str),
            cmd.routine,
            cmd.intensity,
            cmd.minutes,
            cmd.heat,
            cmd.force,
            cmd.relaxer_date.map(|d| d.map(|d| d.to_string())),
            result.map_err(|r| r.code.as_str())
        );
        self.drain();
    }

    fn fault(&mut self, at: Duration) {
        self.advance(at);
        self.engine.handle_fault(
            self.now,
            Fault {
                code: "driver_io".into(),
                message: "golden".into(),
            },
        );
        let _ = writeln!(self.text, "{} fault", millis(self.now - self.t0));
        self.drain();
    }
}

/// A scripted session touching every feature: ramps, steps, pause, skip, live changes,
/// heat and its cap, a fault, the guard and stop.
#[test]
fn scripted_session_matches_the_recorded_trace() {
    let mut r = Recorder::new(engine_with(EngineConfig {
        frame_hz: 10,
        ramp: ms(1500),
        max_level: 800,
        heat_level: 600,
        max_heat: secs(120),
        progress_interval: secs(7),
        ..EngineConfig::default()
    }));
    r.engine.set_today("2026-11-25".parse::<Date>().unwrap());
    r.drain();
    let cmd = |f: fn(&mut Command)| {
        let mut c = Command::default();
        f(&mut c);
        c
    };
    r.command(
        secs(0),
        &cmd(|c| {
            c.action = Some(Action::Start);
            c.minutes = Some(5);
            c.heat = Some(true);
        }),
    );
    r.command(ms(12_300), &cmd(|c| c.intensity = Some(90)));
    r.command(ms(25_050), &Command::action(Action::Pause));
    r.command(ms(31_000), &Command::action(Action::Resume));
    r.command(ms(33_333), &Command::action(Action::Skip));
    r.command(secs(47), &cmd(|c| c.routine = Some("single".into())));
    r.command(ms(70_500), &cmd(|c| c.minutes = Some(2)));
    r.advance(secs(130));
    r.command(
        secs(140),
        &cmd(|c| c.relaxer_date = Some(Some("2026-11-27".parse().unwrap()))),
    );
    r.command(secs(141), &Command::action(Action::Start));
    r.command(
        secs(142),
        &cmd(|c| {
            c.action = Some(Action::Start);
            c.force = true;
            c.routine = Some("Short one".into());
        }),
    );
    r.command(secs(150), &cmd(|c| c.heat = Some(true)));
    r.fault(ms(160_200));
    r.command(secs(161), &Command::action(Action::ClearFault));
    r.command(secs(162), &cmd(|c| c.heat = Some(true)));
    r.advance(secs(300));
    r.command(
        secs(301),
        &cmd(|c| {
            c.action = Some(Action::Start);
            c.force = true;
            c.intensity = Some(20);
        }),
    );
    r.command(ms(305_555), &Command::action(Action::Stop));
    r.advance(secs(400));
    assert_eq!(r.engine.state(), SessionState::Idle);
    check_golden("scripted_session.txt", &r.text);
}

/// A deterministic generator (SplitMix64), so the random cases never depend on a crate's RNG.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }
}

/// A library with a step of reduced intensity and every technique, for the random runs.
fn wide_library() -> Vec<Routine> {
    let mut routines = library();
    routines.push(Routine {
        id: "mixed".into(),
        name: "Mixed".into(),
        description: String::new(),
        steps: vec![
            Step {
                intensity: 40,
                tempo: 90,
                ..step("Press the crown", &[Zone::Crown], Technique::Press, 7)
            },
            Step {
                tempo: 12,
                ..step(
                    "Sweep to the neck",
                    &[Zone::Hairline, Zone::Crown, Zone::Ears, Zone::Neck],
                    Technique::Sweep,
                    13,
                )
            },
        ],
    });
    routines
}

fn random_command(rng: &mut SplitMix) -> Command {
    let action = match rng.below(9) {
        0 | 1 => None,
        2 | 3 => Some(Action::Start),
        4 => Some(Action::Stop),
        5 => Some(Action::Pause),
        6 => Some(Action::Resume),
        7 => Some(Action::Skip),
        _ => Some(Action::ClearFault),
    };
    let routine = match rng.below(8) {
        0 => Some("short".to_string()),
        1 => Some("Single".to_string()),
        2 => Some("mixed".to_string()),
        3 => Some("missing".to_string()),
        _ => None,
    };
    Command {
        action,
        routine,
        intensity: rng.chance(3).then(|| rng.below(110) as u32),
        minutes: rng.chance(4).then(|| rng.below(35) as u32),
        heat: rng.chance(4).then(|| rng.chance(2)),
        force: rng.chance(2),
        relaxer_date: match rng.below(10) {
            0 => Some(None),
            1 => Some(Date::from_days_since_epoch(20_417 + rng.below(8) as i64)),
            _ => None,
        },
    }
}

/// FNV-1a of a text.
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Runs one seeded random case; returns the digests of its frame lines and of all other lines.
fn random_case(seed: u64) -> (u64, u64, usize) {
    let mut rng = SplitMix(seed);
    let config = EngineConfig {
        frame_hz: 1 + rng.below(60) as u32,
        ramp: ms(rng.below(3000)),
        max_level: rng.below(1001) as u16,
        heat_level: rng.below(1001) as u16,
        max_session_minutes: 1 + rng.below(30) as u32,
        max_heat: secs(60 * (1 + rng.below(20))),
        progress_interval: secs(1 + rng.below(15)),
        ..EngineConfig::default()
    };
    let engine = Engine::new(config, wide_library(), settings(), Default::default()).unwrap();
    let mut r = Recorder::new(engine);
    r.engine
        .set_today(Date::from_days_since_epoch(20_417).unwrap());
    r.drain();
    let mut at = Duration::ZERO;
    for _ in 0..(5 + rng.below(30)) {
        at += match rng.below(3) {
            0 => ms(rng.below(50)),
            1 => ms(rng.below(5_000)),
            _ => ms(rng.below(400_000)),
        };
        if rng.chance(15) {
            r.fault(at);
        } else {
            r.command(at, &random_command(&mut rng));
        }
    }
    r.advance(at + secs(3600));
    let (frames, other): (Vec<&str>, Vec<&str>) =
        r.text.lines().partition(|l| l.contains(" frame "));
    (
        fnv(&frames.join("\n")),
        fnv(&other.join("\n")),
        frames.len(),
    )
}

/// 200 seeded random command sequences: their digests are recorded, one line per seed.
#[test]
fn random_sequences_match_the_recorded_digests() {
    let mut text = String::from("# seed frames_fnv other_fnv frame_count\n");
    for seed in 0..200u64 {
        let (frames, other, count) = random_case(seed);
        let _ = writeln!(text, "{seed} {frames:016x} {other:016x} {count}");
    }
    check_golden("random_digests.txt", &text);
}
