//! Property tests: random command sequences and timings against an independent model of the
//! engine's invariants. Determinism (same inputs, same outputs) is proven against recorded
//! traces in `engine_golden.rs`, not by running the same code twice.

mod engine_support;

use engine_support::*;
use massaged::core::{
    Action, Command, Date, Engine, EngineConfig, EventKind, Fault, Output, Reason, SessionState,
};
use proptest::prelude::*;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
enum Op {
    Cmd(Command),
    Fault,
    /// The store reports that the saved relaxer date was lost.
    LoseRelaxerDate,
}

fn arb_command() -> impl Strategy<Value = Command> {
    let action = prop_oneof![
        Just(None),
        Just(Some(Action::Start)),
        Just(Some(Action::Stop)),
        Just(Some(Action::Pause)),
        Just(Some(Action::Resume)),
        Just(Some(Action::Skip)),
        Just(Some(Action::ClearFault)),
    ];
    let routine = prop_oneof![
        Just(None),
        Just(Some("short".to_string())),
        Just(Some("Single".to_string())),
        Just(Some("missing".to_string())),
    ];
    let relaxer = prop_oneof![
        4 => Just(None),
        1 => Just(Some(None)),
        1 => (0i64..10).prop_map(|d| Some(Date::from_days_since_epoch(20_417 + d))),
    ];
    (
        action,
        routine,
        proptest::option::of(0u32..120),
        proptest::option::of(0u32..40),
        proptest::option::of(any::<bool>()),
        any::<bool>(),
        relaxer,
    )
        .prop_map(
            |(action, routine, intensity, minutes, heat, force, relaxer_date)| Command {
                action,
                routine,
                intensity,
                minutes,
                heat,
                force,
                relaxer_date,
            },
        )
}

fn arb_ops() -> impl Strategy<Value = Vec<(u64, Op)>> {
    let op = prop_oneof![
        24 => arb_command().prop_map(Op::Cmd),
        2 => Just(Op::Fault),
        1 => Just(Op::LoseRelaxerDate),
    ];
    // Gaps from a frame to several minutes, so caps and boundaries are crossed.
    let gap = prop_oneof![0u64..50, 0u64..5_000, 0u64..400_000];
    proptest::collection::vec((gap, op), 1..25)
}

fn arb_config() -> impl Strategy<Value = EngineConfig> {
    (1u32..=60, 0u64..3000, 0u16..=1000, 1u32..=30, 1u64..=20).prop_map(
        |(frame_hz, ramp_ms, max_level, max_session_minutes, max_heat_minutes)| EngineConfig {
            frame_hz,
            ramp: Duration::from_millis(ramp_ms),
            max_level,
            max_session_minutes,
            max_heat: Duration::from_secs(max_heat_minutes * 60),
            ..EngineConfig::default()
        },
    )
}

/// Runs `ops` and checks every invariant on the way against an independent model.
fn run_checked(config: &EngineConfig, ops: &[(u64, Op)], t0: Instant) -> Result<(), TestCaseError> {
    let mut engine = Engine::new(config.clone(), library(), settings(), Default::default())
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    engine.set_today(Date::from_days_since_epoch(20_417).unwrap());
    let mut checker = Checker::new(config.clone(), settings().intensity);
    let mut now = t0;
    record(&mut engine, now, &mut checker)?;
    for (gap, op) in ops {
        let target = now + Duration::from_millis(*gap);
        let mut guard = 0u32;
        while let Some(t) = engine.poll_timeout() {
            if t > target {
                break;
            }
            prop_assert!(t >= now, "timeouts never go back in time");
            now = t;
            engine.handle_timeout(t);
            record(&mut engine, t, &mut checker)?;
            guard += 1;
            prop_assert!(guard < 2_000_000, "timeouts must make progress");
        }
        now = target;
        match op {
            Op::Fault => {
                engine.handle_fault(
                    now,
                    Fault {
                        code: "driver_io".into(),
                        message: "test".into(),
                    },
                );
                record(&mut engine, now, &mut checker)?;
                prop_assert!(engine.last_frame().is_zero());
            }
            Op::LoseRelaxerDate => {
                engine.mark_relaxer_date_lost();
                checker.relaxer_date_lost = true;
                record(&mut engine, now, &mut checker)?;
                prop_assert!(
                    engine.guard_active(),
                    "a lost relaxer date keeps the guard on"
                );
            }
            Op::Cmd(cmd) => {
                let before = engine.snapshot(now);
                let before_settings = engine.settings().clone();
                let was_idle = engine.state() == SessionState::Idle;
                match engine.handle_command(now, cmd) {
                    Ok(()) => {
                        prop_assert!(
                            !(cmd.action == Some(Action::Start)
                                && was_idle
                                && !cmd.force
                                && checker.relaxer_date_lost
                                && cmd.relaxer_date.is_none()),
                            "a start without force is refused while the relaxer date is lost"
                        );
                        checker.accepted(cmd);
                        if cmd.action == Some(Action::Stop) {
                            record_after_stop(&mut engine, now, &mut checker, "stop")?;
                        } else {
                            record(&mut engine, now, &mut checker)?;
                        }
                    }
                    Err(rejection) if cmd.action == Some(Action::Stop) => {
                        // A stop with bad fields still stops; only the fields are refused.
                        prop_assert!(!rejection.message.is_empty());
                        prop_assert_eq!(engine.settings(), &before_settings);
                        record_after_stop(&mut engine, now, &mut checker, "a refused stop")?;
                    }
                    Err(rejection) => {
                        prop_assert!(!rejection.message.is_empty());
                        prop_assert_eq!(
                            engine.snapshot(now),
                            before,
                            "a rejected command changes nothing"
                        );
                        prop_assert!(
                            engine.poll_output().is_none(),
                            "a rejected command outputs nothing"
                        );
                        checker.after(&engine, now)?;
                    }
                }
            }
        }
        let snap = engine.snapshot(now);
        let cap = Duration::from_secs(u64::from(config.max_session_minutes) * 60);
        prop_assert!(
            snap.elapsed.unwrap_or_default() <= cap,
            "no session longer than the cap"
        );
        if snap.state == SessionState::Idle || snap.state == SessionState::Fault {
            prop_assert_eq!(
                engine.poll_timeout().is_some(),
                snap.heat,
                "idle wakes up only for the heat cap"
            );
        }
    }
    Ok(())
}

/// Lets `checker` see every output the engine has ready at `at`, then its state.
fn record(engine: &mut Engine, at: Instant, checker: &mut Checker) -> Result<(), TestCaseError> {
    while let Some(out) = engine.poll_output() {
        checker.observe(at, &out)?;
    }
    checker.after(engine, at)
}

/// [`record`] after `what` stopped the session: the first output must be an all-zero frame.
fn record_after_stop(
    engine: &mut Engine,
    at: Instant,
    checker: &mut Checker,
    what: &str,
) -> Result<(), TestCaseError> {
    let first = engine.poll_output();
    prop_assert!(
        matches!(&first, Some(Output::Frame(f)) if f.is_zero()),
        "the first output after {what} is an all-zero frame, got {first:?}"
    );
    if let Some(out) = first {
        checker.observe(at, &out)?;
    }
    record(engine, at, checker)
}

/// An independent model of what the outputs may be, built from the commands alone.
struct Checker {
    config: EngineConfig,
    heat_on_since: Option<Instant>,
    /// The last period the heater was seen on, start and end.
    last_heat: Option<(Instant, Instant)>,
    paused_elapsed: Option<Duration>,
    /// The user level the model expects, from the accepted commands.
    intensity: u32,
    /// The highest user level since the running session started: ramps only move between
    /// levels that were set, so no motor may exceed `max_level * highest / 100`.
    highest_intensity: u32,
    relaxer_date_lost: bool,
    /// The live massage time last seen; it never goes back.
    massage_live: u64,
}

impl Checker {
    fn new(config: EngineConfig, intensity: u32) -> Checker {
        Checker {
            config,
            heat_on_since: None,
            last_heat: None,
            paused_elapsed: None,
            intensity,
            highest_intensity: intensity,
            relaxer_date_lost: false,
            massage_live: 0,
        }
    }

    /// Updates the model with a command the engine accepted (before its outputs are seen).
    fn accepted(&mut self, cmd: &Command) {
        if let Some(intensity) = cmd.intensity {
            self.intensity = intensity;
            self.highest_intensity = self.highest_intensity.max(intensity);
        }
        if cmd.relaxer_date.is_some() {
            self.relaxer_date_lost = false;
        }
    }

    /// The motor cap computed from the model, not from the engine's own arithmetic.
    fn motor_cap(&self) -> u16 {
        let cap = u32::from(self.config.max_level) * self.highest_intensity / 100;
        cap as u16
    }

    fn observe(&mut self, at: Instant, out: &Output) -> Result<(), TestCaseError> {
        match out {
            Output::Frame(frame) => {
                let heat_slot = self.config.channels.heat();
                let cap = self.motor_cap();
                for (slot, &level) in frame.levels.iter().enumerate() {
                    if Some(slot) == heat_slot {
                        let on = self.config.heat_level.min(self.config.max_level);
                        prop_assert!(
                            level == 0 || level == on,
                            "heater at {level}, neither off nor its level {on}"
                        );
                    } else {
                        prop_assert!(
                            level <= cap,
                            "motor {slot} at {level}, above max_level {} x intensity {}% = {cap}",
                            self.config.max_level,
                            self.highest_intensity
                        );
                    }
                }
                let heat = heat_slot.map_or(0, |slot| frame.levels[slot]);
                match (heat > 0, self.heat_on_since) {
                    (true, None) => self.heat_on_since = Some(at),
                    (true, Some(since)) => {
                        prop_assert!(
                            at - since <= self.config.max_heat,
                            "heat on longer than the cap"
                        );
                    }
                    (false, Some(since)) => {
                        self.heat_on_since = None;
                        self.last_heat = Some((since, at));
                    }
                    (false, None) => {}
                }
            }
            Output::State(snap) => {
                if snap.state == SessionState::Paused {
                    if let Some(elapsed) = self.paused_elapsed {
                        prop_assert_eq!(snap.elapsed, Some(elapsed), "paused time is not counted");
                    }
                    self.paused_elapsed = snap.elapsed;
                } else {
                    self.paused_elapsed = None;
                }
            }
            Output::Event(event) => {
                if event.kind == EventKind::Started {
                    // A new session starts at the current level; older levels no longer apply.
                    self.highest_intensity = self.intensity;
                }
                if event.kind == EventKind::HeatOff {
                    prop_assert_eq!(event.reason, Some(Reason::HeatCap));
                    if self.config.heat_level.min(self.config.max_level) > 0 {
                        let (since, until) = self.last_heat.unwrap_or((at, at));
                        prop_assert_eq!(
                            until,
                            at,
                            "heat_off comes with the frame that turns it off"
                        );
                        prop_assert_eq!(at - since, self.config.max_heat, "heat_off at the cap");
                    }
                }
            }
        }
        if let Some(since) = self.heat_on_since {
            prop_assert!(
                at - since <= self.config.max_heat,
                "heat on longer than the cap"
            );
        }
        Ok(())
    }

    /// Checks the engine's state once its outputs for `at` are drained.
    fn after(&mut self, engine: &Engine, at: Instant) -> Result<(), TestCaseError> {
        let frame = engine.last_frame();
        if engine.state() != SessionState::Running {
            let heat_slot = self.config.channels.heat();
            prop_assert!(
                frame
                    .levels
                    .iter()
                    .enumerate()
                    .all(|(slot, &l)| l == 0 || Some(slot) == heat_slot),
                "motors move only while running: {:?} in {:?}",
                frame.levels,
                engine.state()
            );
        }
        let snap = engine.snapshot(at);
        let live = snap.massage_seconds_live();
        prop_assert!(
            live >= self.massage_live,
            "live massage time went back from {} to {live}",
            self.massage_live
        );
        if snap.elapsed.is_none() {
            prop_assert_eq!(live, snap.counters.massage_seconds_total);
        }
        self.massage_live = live;
        prop_assert_eq!(snap.guard_active, engine.guard_active());
        if self.relaxer_date_lost {
            prop_assert!(
                snap.guard_active,
                "the guard stays on while the date is lost"
            );
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_for_random_command_sequences(config in arb_config(), ops in arb_ops()) {
        let t0 = Instant::now();
        run_checked(&config, &ops, t0)?;
    }
}
