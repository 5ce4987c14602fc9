//! Property tests: random command sequences and timings against the engine's invariants.

mod engine_support;

use engine_support::*;
use massaged::core::{Action, Command, Date, Engine, EngineConfig, Fault, Output, SessionState};
use proptest::prelude::*;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
enum Op {
    Cmd(Command),
    Fault,
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
        12 => arb_command().prop_map(Op::Cmd),
        1 => Just(Op::Fault),
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

/// What one run produced, with every instant made relative to the start.
type Trace = Vec<(Duration, Output)>;

/// Runs `ops` and checks every invariant on the way; returns the full trace.
fn run_checked(
    config: &EngineConfig,
    ops: &[(u64, Op)],
    t0: Instant,
) -> Result<Trace, TestCaseError> {
    let mut engine = Engine::new(config.clone(), library(), settings(), Default::default())
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    engine.set_today(Date::from_days_since_epoch(20_417).unwrap());
    let mut trace: Trace = Vec::new();
    let mut checker = Checker::new(config.clone());
    let mut now = t0;
    let record = |engine: &mut Engine,
                  at: Instant,
                  trace: &mut Trace,
                  checker: &mut Checker|
     -> Result<(), TestCaseError> {
        while let Some(out) = engine.poll_output() {
            checker.observe(at, &out)?;
            trace.push((at - t0, out));
        }
        Ok(())
    };
    record(&mut engine, now, &mut trace, &mut checker)?;
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
            record(&mut engine, t, &mut trace, &mut checker)?;
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
                record(&mut engine, now, &mut trace, &mut checker)?;
                prop_assert!(engine.last_frame().is_zero());
            }
            Op::Cmd(cmd) => {
                let before = engine.snapshot(now);
                let before_settings = engine.settings().clone();
                match engine.handle_command(now, cmd) {
                    Ok(()) => {
                        let first = engine.poll_output();
                        if cmd.action == Some(Action::Stop) {
                            prop_assert!(
                                matches!(&first, Some(Output::Frame(f)) if f.is_zero()),
                                "the first output after stop is an all-zero frame, got {first:?}"
                            );
                        }
                        if let Some(out) = first {
                            checker.observe(now, &out)?;
                            trace.push((now - t0, out));
                        }
                        record(&mut engine, now, &mut trace, &mut checker)?;
                    }
                    Err(rejection) if cmd.action == Some(Action::Stop) => {
                        // A stop with bad fields still stops; only the fields are refused.
                        prop_assert!(!rejection.message.is_empty());
                        prop_assert_eq!(engine.settings(), &before_settings);
                        let first = engine.poll_output();
                        prop_assert!(
                            matches!(&first, Some(Output::Frame(f)) if f.is_zero()),
                            "the first output after a refused stop is an all-zero frame"
                        );
                        if let Some(out) = first {
                            checker.observe(now, &out)?;
                            trace.push((now - t0, out));
                        }
                        record(&mut engine, now, &mut trace, &mut checker)?;
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
    Ok(trace)
}

/// Tracks heat and pause across outputs.
struct Checker {
    config: EngineConfig,
    heat_on_since: Option<Instant>,
    paused_elapsed: Option<Duration>,
}

impl Checker {
    fn new(config: EngineConfig) -> Checker {
        Checker {
            config,
            heat_on_since: None,
            paused_elapsed: None,
        }
    }

    fn observe(&mut self, at: Instant, out: &Output) -> Result<(), TestCaseError> {
        match out {
            Output::Frame(frame) => {
                let top = frame.levels.iter().copied().max().unwrap_or(0);
                prop_assert!(
                    top <= self.config.max_level,
                    "level {top} above max_level {}",
                    self.config.max_level
                );
                let heat = self
                    .config
                    .channels
                    .heat()
                    .map_or(0, |slot| frame.levels[slot]);
                match (heat > 0, self.heat_on_since) {
                    (true, None) => self.heat_on_since = Some(at),
                    (true, Some(since)) => {
                        prop_assert!(
                            at - since <= self.config.max_heat,
                            "heat on longer than the cap"
                        );
                    }
                    (false, _) => self.heat_on_since = None,
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
            Output::Event(_) => {}
        }
        if let Some(since) = self.heat_on_since {
            prop_assert!(
                at - since <= self.config.max_heat,
                "heat on longer than the cap"
            );
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_for_random_command_sequences(config in arb_config(), ops in arb_ops()) {
        let t0 = Instant::now();
        run_checked(&config, &ops, t0)?;
    }

    #[test]
    fn same_inputs_give_the_same_outputs(config in arb_config(), ops in arb_ops()) {
        let t0 = Instant::now();
        let a = run_checked(&config, &ops, t0)?;
        let b = run_checked(&config, &ops, t0)?;
        prop_assert!(a == b, "two runs of the same inputs differ");
    }
}
