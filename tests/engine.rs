//! The session engine in virtual time.

mod engine_support;

use engine_support::*;
use massaged::core::{
    Action, Command, Date, Engine, EngineConfig, EventKind, Fault, GuardReason, Output, Reason,
    RejectCode, SessionState,
};
use std::time::{Duration, Instant};

/// Drains `e`'s outputs so far, takes `begin` at a fresh instant `t0`, runs every timeout up to
/// `t0 + seconds` and takes `change` there. Returns `t0` and the outputs `change` produced.
fn begin_then(
    e: &mut Engine,
    begin: &Command,
    seconds: u64,
    change: &Command,
) -> (Instant, Vec<Output>) {
    drain(e);
    let t0 = Instant::now();
    e.handle_command(t0, begin).unwrap();
    run_until(e, t0 + secs(seconds));
    e.handle_command(t0 + secs(seconds), change).unwrap();
    (t0, drain(e))
}

/// How long after `t0` the first output of `timeline` that `wanted` accepts came.
fn first_at(
    timeline: &[(Instant, Output)],
    t0: Instant,
    wanted: impl Fn(&Output) -> bool,
) -> Option<Duration> {
    timeline
        .iter()
        .find(|(_, o)| wanted(o))
        .map(|(t, _)| *t - t0)
}

/// The `finished` event.
fn finished(output: &Output) -> bool {
    matches!(output, Output::Event(ev) if ev.kind.as_str() == "finished")
}

/// A frame with the heater (slot 10) off.
fn heater_off(output: &Output) -> bool {
    matches!(output, Output::Frame(f) if f.levels[10] == 0)
}

#[test]
fn starts_idle_with_zero_outputs_and_no_wakeups() {
    let mut e = engine();
    let out = drain(&mut e);
    assert!(
        matches!(&out[0], Output::Frame(f) if f.is_zero()),
        "first output is an all-zero frame"
    );
    assert_eq!(e.poll_timeout(), None);
    assert_eq!(e.state(), SessionState::Idle);
}

#[test]
fn session_soft_starts_and_announces_steps_at_exact_boundaries() {
    let mut e = engine();
    drain(&mut e);
    let t0 = Instant::now();
    e.handle_command(t0, &start()).unwrap();
    let out = drain(&mut e);
    assert_eq!(event_kinds(&out), ["started"]);
    assert_eq!(states(&out).last().unwrap().state, SessionState::Running);

    let timeline = run_until(&mut e, t0 + secs(61));
    let steps: Vec<(std::time::Duration, usize)> = timeline
        .iter()
        .filter_map(|(t, o)| match o {
            Output::Event(ev) if ev.kind.as_str() == "step" => {
                Some((*t - t0, ev.step_index.unwrap()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(steps, [(secs(10), 1), (secs(30), 0), (secs(40), 1)]);
    let finished: Vec<_> = timeline
        .iter()
        .filter(|(_, o)| matches!(o, Output::Event(ev) if ev.kind.as_str() == "finished"))
        .map(|(t, _)| *t - t0)
        .collect();
    assert_eq!(finished, [secs(60)]);
    assert_eq!(e.state(), SessionState::Idle);
    assert!(e.last_frame().is_zero());
    assert_eq!(e.poll_timeout(), None);

    // Soft start: the level rises over the ramp rather than jumping.
    let temple_levels: Vec<u16> = timeline
        .iter()
        .take_while(|(t, _)| *t - t0 <= ms(2000))
        .filter_map(|(_, o)| match o {
            Output::Frame(f) => Some(f.levels[0].max(f.levels[1])),
            _ => None,
        })
        .collect();
    assert!(
        temple_levels[0] < 50,
        "first frame is near zero: {}",
        temple_levels[0]
    );
    assert!(*temple_levels.iter().max().unwrap() > 300);
}

#[test]
fn one_hour_session_ends_at_exactly_one_hour() {
    let mut e = engine_with(EngineConfig {
        max_session_minutes: 60,
        ..EngineConfig::default()
    });
    drain(&mut e);
    let t0 = Instant::now();
    let cmd = Command {
        minutes: Some(60),
        ..start()
    };
    e.handle_command(t0, &cmd).unwrap();
    let timeline = run_until(&mut e, t0 + secs(3700));
    assert_eq!(first_at(&timeline, t0, finished), Some(secs(3600)));
    assert_eq!(e.counters().massage_seconds_total, 3600);
    assert_eq!(e.counters().sessions_total, 1);
}

#[test]
fn paused_time_is_not_counted_and_pause_zeroes_motors() {
    let mut e = engine();
    let (t0, out) = begin_then(&mut e, &start(), 5, &Command::action(Action::Pause));
    assert_eq!(event_kinds(&out), ["paused"]);
    assert!(frames(&out).last().unwrap().is_zero());
    assert_eq!(
        e.poll_timeout(),
        None,
        "no wake-ups while paused without heat"
    );
    let paused = e.snapshot(t0 + secs(50));
    assert_eq!(paused.elapsed, Some(secs(5)));
    assert_eq!(paused.ends_at, None);

    e.handle_command(t0 + secs(105), &Command::action(Action::Resume))
        .unwrap();
    assert_eq!(event_kinds(&drain(&mut e)), ["resumed"]);
    let timeline = run_until(&mut e, t0 + secs(200));
    assert_eq!(first_at(&timeline, t0, finished), Some(secs(160)));
}

#[test]
fn stop_zeroes_every_output_in_the_next_frame() {
    let mut e = engine();
    drain(&mut e);
    let t0 = Instant::now();
    let cmd = Command {
        heat: Some(true),
        ..start()
    };
    e.handle_command(t0, &cmd).unwrap();
    run_until(&mut e, t0 + secs(5));
    assert!(!e.last_frame().is_zero());
    e.handle_command(t0 + secs(5), &Command::action(Action::Stop))
        .unwrap();
    let out = drain(&mut e);
    assert!(
        matches!(&out[0], Output::Frame(f) if f.is_zero()),
        "the first output after stop is the zero frame"
    );
    assert_eq!(event_kinds(&out), ["stopped"]);
    assert_eq!(e.poll_timeout(), None);
    assert_eq!(e.counters().massage_seconds_total, 5);
}

#[test]
fn stop_is_accepted_in_every_state() {
    let mut e = engine();
    let t0 = Instant::now();
    assert!(e.handle_command(t0, &Command::action(Action::Stop)).is_ok());
    e.handle_fault(
        t0,
        Fault {
            code: "driver_io".into(),
            message: "gone".into(),
        },
    );
    assert!(e.handle_command(t0, &Command::action(Action::Stop)).is_ok());
    assert_eq!(e.state(), SessionState::Fault);
}

#[test]
fn skip_moves_to_the_next_step_and_keeps_the_session_end() {
    let mut e = engine();
    let (t0, out) = begin_then(&mut e, &start(), 3, &Command::action(Action::Skip));
    assert_eq!(event_kinds(&out), ["step"]);
    assert_eq!(states(&out).last().unwrap().step_index, Some(1));
    let timeline = run_until(&mut e, t0 + secs(61));
    let marks: Vec<_> = timeline
        .iter()
        .filter_map(|(t, o)| match o {
            Output::Event(ev) => Some((*t - t0, ev.kind.as_str())),
            _ => None,
        })
        .collect();
    // Step 1 ran from 3 s for 20 s, so the next pass begins at 23 s.
    assert_eq!(marks[0], (secs(23), "step"));
    assert_eq!(marks.last().unwrap(), &(secs(60), "finished"));
}

#[test]
fn skip_past_the_last_step_starts_the_next_pass() {
    let mut e = engine();
    let t0 = Instant::now();
    e.handle_command(t0, &start()).unwrap();
    e.handle_command(t0 + secs(12), &Command::action(Action::Skip))
        .unwrap();
    let out = drain(&mut e);
    assert_eq!(event_kinds(&out).last(), Some(&"step"));
    assert_eq!(e.snapshot(t0 + secs(12)).step_index, Some(0));
}

/// An engine at 10 Hz that started the `single` routine with `begin` and ran `seconds`, then
/// took `change`; its outputs drained. Returns it and the start instant.
fn single_at_10hz_then(begin: Command, seconds: u64, change: Command) -> (Engine, Instant) {
    let mut e = engine_with(EngineConfig {
        frame_hz: 10,
        ..EngineConfig::default()
    });
    let begin = Command {
        routine: Some("single".into()),
        ..begin
    };
    let (t0, _) = begin_then(&mut e, &begin, seconds, &change);
    (e, t0)
}

#[test]
fn intensity_change_ramps_instead_of_jumping() {
    let (mut e, t0) = single_at_10hz_then(
        Command {
            intensity: Some(100),
            ..start()
        },
        10,
        Command {
            intensity: Some(10),
            ..Command::default()
        },
    );
    // Knead never drops below 40% of the base level, so the base level bounds the channel.
    let timeline = run_until(&mut e, t0 + secs(14));
    let neck: Vec<u16> = timeline
        .iter()
        .filter_map(|(_, o)| match o {
            Output::Frame(f) => Some(f.levels[8]),
            _ => None,
        })
        .collect();
    let biggest_drop = neck
        .windows(2)
        .map(|w| i32::from(w[0]) - i32::from(w[1]))
        .max()
        .unwrap();
    assert!(
        biggest_drop < 200,
        "a 90% drop spread over the ramp, got a step of {biggest_drop}"
    );
    assert!(
        *neck.last().unwrap() <= 100,
        "settles at the new level: {neck:?}"
    );
}

#[test]
fn shortening_minutes_ends_with_a_soft_stop() {
    let (mut e, t0) = single_at_10hz_then(
        Command {
            minutes: Some(5),
            ..start()
        },
        90,
        Command {
            minutes: Some(1),
            ..Command::default()
        },
    );
    let timeline = run_until(&mut e, t0 + secs(100));
    let finished_at = first_at(&timeline, t0, finished).unwrap();
    assert!(
        finished_at > secs(90) && finished_at <= secs(92),
        "ends within one ramp: {finished_at:?}"
    );
    let neck: Vec<u16> = frames(&timeline.iter().map(|(_, o)| o.clone()).collect::<Vec<_>>())
        .iter()
        .map(|f| f.levels[8])
        .collect();
    assert!(neck.len() > 5, "several frames on the way down");
}

#[test]
fn heat_alone_is_capped_and_survives_no_session() {
    let mut e = engine();
    drain(&mut e);
    let t0 = Instant::now();
    let on = Command {
        heat: Some(true),
        ..Command::default()
    };
    e.handle_command(t0, &on).unwrap();
    let out = drain(&mut e);
    assert_eq!(frames(&out).last().unwrap().levels[10], 1000);
    assert_eq!(e.poll_timeout(), Some(t0 + secs(15 * 60)));
    let timeline = run_until(&mut e, t0 + secs(3600));
    assert_eq!(first_at(&timeline, t0, heater_off), Some(secs(15 * 60)));
    assert!(!e.snapshot(t0 + secs(3600)).heat);
    assert_eq!(e.poll_timeout(), None);
}

#[test]
fn session_heat_goes_off_when_the_session_ends() {
    let mut e = engine();
    let t0 = Instant::now();
    let cmd = Command {
        heat: Some(true),
        ..start()
    };
    e.handle_command(t0, &cmd).unwrap();
    run_until(&mut e, t0 + secs(61));
    assert!(e.last_frame().is_zero(), "heat went off with the session");
    assert!(!e.snapshot(t0 + secs(61)).heat);
}

/// An engine whose heat cap is 60 s, just started on a 5-minute session with heat; its
/// outputs drained. Returns it and the start instant.
fn heated_five_minutes_capped_at_60s() -> (Engine, Instant) {
    let mut e = engine_with(EngineConfig {
        max_heat: secs(60),
        ..EngineConfig::default()
    });
    let t0 = Instant::now();
    let cmd = Command {
        heat: Some(true),
        minutes: Some(5),
        ..start()
    };
    e.handle_command(t0, &cmd).unwrap();
    drain(&mut e);
    (e, t0)
}

#[test]
fn heat_is_capped_inside_a_long_session() {
    let (mut e, t0) = heated_five_minutes_capped_at_60s();
    let timeline = run_until(&mut e, t0 + secs(120));
    assert_eq!(first_at(&timeline, t0, heater_off), Some(secs(60)));
    assert_eq!(e.state(), SessionState::Running);
}

#[test]
fn relaxer_guard_refuses_start_unless_forced() {
    let mut e = engine();
    let t0 = Instant::now();
    e.set_today("2026-11-25".parse::<Date>().unwrap());
    let date = Command {
        relaxer_date: Some(Some("2026-11-27".parse().unwrap())),
        ..Command::default()
    };
    e.handle_command(t0, &date).unwrap();
    assert!(e.snapshot(t0).guard_active);
    drain(&mut e);
    let err = e.handle_command(t0, &start()).unwrap_err();
    assert_eq!(err.code, RejectCode::GuardActive);
    assert!(
        drain(&mut e).is_empty(),
        "a rejected command produces nothing"
    );
    let forced = Command {
        force: true,
        ..start()
    };
    e.handle_command(t0, &forced).unwrap();
    assert_eq!(e.state(), SessionState::Running);

    e.set_today("2026-11-28".parse::<Date>().unwrap());
    assert!(!e.guard_active(), "the guard ends after the relaxer date");
    e.set_today("2026-11-23".parse::<Date>().unwrap());
    assert!(
        !e.guard_active(),
        "four days before is outside a three-day window"
    );
}

#[test]
fn rejected_commands_change_nothing() {
    let mut e = engine();
    let t0 = Instant::now();
    drain(&mut e);
    let before = e.snapshot(t0);
    let cases = [
        (
            Command {
                routine: Some("nope".into()),
                intensity: Some(70),
                ..start()
            },
            RejectCode::UnknownRoutine,
        ),
        (
            Command {
                intensity: Some(101),
                ..Command::default()
            },
            RejectCode::OutOfRange,
        ),
        (
            Command {
                minutes: Some(31),
                routine: Some("single".into()),
                ..Command::default()
            },
            RejectCode::OutOfRange,
        ),
        (Command::action(Action::Pause), RejectCode::NotRunning),
        (Command::action(Action::Resume), RejectCode::NotRunning),
        (Command::action(Action::Skip), RejectCode::NotRunning),
    ];
    for (cmd, code) in cases {
        let err = e.handle_command(t0, &cmd).unwrap_err();
        assert_eq!(err.code, code, "{cmd:?}");
        assert!(!err.message.is_empty());
        assert_eq!(e.snapshot(t0), before);
        assert!(drain(&mut e).is_empty());
    }
}

#[test]
fn fault_zeroes_outputs_until_cleared() {
    let mut e = engine();
    let t0 = Instant::now();
    e.handle_command(t0, &start()).unwrap();
    run_until(&mut e, t0 + secs(5));
    drain(&mut e);
    e.handle_fault(
        t0 + secs(5),
        Fault {
            code: "driver_io".into(),
            message: "duty_cycle: No such device".into(),
        },
    );
    let out = drain(&mut e);
    assert!(matches!(&out[0], Output::Frame(f) if f.is_zero()));
    assert_eq!(event_kinds(&out), ["stopped", "fault"]);
    let state = (*states(&out).last().unwrap()).clone();
    assert_eq!(state.state, SessionState::Fault);
    assert_eq!(state.fault.unwrap().code, "driver_io");
    assert_eq!(
        e.handle_command(t0, &start()).unwrap_err().code,
        RejectCode::FaultActive
    );
    e.handle_command(t0 + secs(6), &Command::action(Action::ClearFault))
        .unwrap();
    assert_eq!(e.state(), SessionState::Idle);
    e.handle_command(t0 + secs(7), &start()).unwrap();
    assert_eq!(e.state(), SessionState::Running);
}

#[test]
fn routine_is_found_by_display_name_and_changes_live() {
    let mut e = engine();
    let t0 = Instant::now();
    e.handle_command(t0, &start()).unwrap();
    drain(&mut e);
    let change = Command {
        routine: Some("single".into()),
        ..Command::default()
    };
    e.handle_command(t0 + secs(15), &change).unwrap();
    let out = drain(&mut e);
    assert_eq!(event_kinds(&out), ["step"]);
    let s = (*states(&out).last().unwrap()).clone();
    assert_eq!(s.routine, "single");
    assert_eq!(s.step_index, Some(0));
    assert_eq!(s.remaining, Some(secs(45)), "the session end does not move");
    let by_name = Command {
        routine: Some("short ONE".into()),
        ..Command::default()
    };
    e.handle_command(t0 + secs(16), &by_name).unwrap();
    assert_eq!(e.settings().routine, "short");
}

#[test]
fn progress_republishes_state_while_running() {
    let mut e = engine();
    let t0 = Instant::now();
    e.handle_command(t0, &start()).unwrap();
    drain(&mut e);
    let timeline = run_until(&mut e, t0 + secs(25));
    let state_times: Vec<_> = timeline
        .iter()
        .filter(|(_, o)| matches!(o, Output::State(_)))
        .map(|(t, _)| *t - t0)
        .collect();
    assert_eq!(state_times, [secs(10), secs(20)]);
}

#[test]
fn max_level_caps_every_channel() {
    let mut e = engine_with(EngineConfig {
        max_level: 300,
        heat_level: 900,
        ..EngineConfig::default()
    });
    let t0 = Instant::now();
    let cmd = Command {
        intensity: Some(100),
        heat: Some(true),
        ..start()
    };
    e.handle_command(t0, &cmd).unwrap();
    let timeline = run_until(&mut e, t0 + secs(60));
    let top = timeline
        .iter()
        .filter_map(|(_, o)| match o {
            Output::Frame(f) => f.levels.iter().max().copied(),
            _ => None,
        })
        .max()
        .unwrap();
    assert_eq!(top, 300);
}

#[test]
fn stop_with_a_bad_field_still_stops_and_applies_nothing_else() {
    let mut e = engine();
    let t0 = Instant::now();
    e.handle_command(t0, &start()).unwrap();
    run_until(&mut e, t0 + secs(5));
    drain(&mut e);
    let cmd = Command {
        intensity: Some(500),
        routine: Some("single".into()),
        ..Command::action(Action::Stop)
    };
    let err = e.handle_command(t0 + secs(5), &cmd).unwrap_err();
    assert_eq!(err.code, RejectCode::OutOfRange);
    assert!(err.message.starts_with("stopped;"), "{}", err.message);
    let out = drain(&mut e);
    assert!(matches!(&out[0], Output::Frame(f) if f.is_zero()));
    assert_eq!(e.state(), SessionState::Idle);
    assert_eq!(
        e.settings().intensity,
        50,
        "the bad intensity is not applied"
    );
    assert_eq!(
        e.settings().routine,
        "short",
        "nor is the valid routine beside it"
    );
}

#[test]
fn heat_cap_is_reported_as_a_heat_off_event() {
    let (mut e, t0) = heated_five_minutes_capped_at_60s();
    let timeline = run_until(&mut e, t0 + secs(61));
    let heat_off: Vec<_> = timeline
        .iter()
        .filter_map(|(t, o)| match o {
            Output::Event(ev) if ev.kind == EventKind::HeatOff => Some((*t - t0, ev.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(heat_off.len(), 1, "{heat_off:?}");
    assert_eq!(heat_off[0].0, secs(60));
    assert_eq!(heat_off[0].1.reason, Some(Reason::HeatCap));
    assert_eq!(heat_off[0].1.routine, "short");
    // The frame that turns the heater off comes first, then the event.
    let at_cap: Vec<&Output> = timeline
        .iter()
        .filter(|(t, _)| *t - t0 == secs(60))
        .map(|(_, o)| o)
        .collect();
    let frame = at_cap
        .iter()
        .position(|o| heater_off(o))
        .expect("a frame with the heater off at the cap");
    let event = at_cap
        .iter()
        .position(|o| matches!(o, Output::Event(ev) if ev.kind == EventKind::HeatOff))
        .unwrap();
    assert!(frame < event);
    assert_eq!(e.state(), SessionState::Running, "the session goes on");
    // Heat turned off by the user or the session's end is no cap: no event.
    let mut e = engine();
    e.handle_command(
        t0,
        &Command {
            heat: Some(true),
            ..start()
        },
    )
    .unwrap();
    let timeline = run_until(&mut e, t0 + secs(61));
    assert!(
        !event_kinds(&timeline.into_iter().map(|(_, o)| o).collect::<Vec<_>>())
            .contains(&"heat_off")
    );
}

#[test]
fn a_lost_relaxer_date_keeps_the_guard_on_until_a_date_is_set() {
    let mut e = engine();
    let t0 = Instant::now();
    e.set_today("2026-11-25".parse::<Date>().unwrap());
    drain(&mut e);
    assert!(!e.guard_active());
    e.mark_relaxer_date_lost();
    let states_out = drain(&mut e);
    let state = states(&states_out);
    assert_eq!(state.len(), 1, "the state is republished");
    assert!(state[0].guard_active);
    assert_eq!(state[0].guard_reason, Some(GuardReason::RelaxerDateLost));
    assert!(e.guard_active());
    assert!(e.relaxer_date_lost());

    let err = e.handle_command(t0, &start()).unwrap_err();
    assert_eq!(err.code, RejectCode::GuardActive);
    assert!(err.message.contains("lost"), "{}", err.message);
    assert!(drain(&mut e).is_empty(), "a refused start changes nothing");
    // Other commands still work, and a forced start runs.
    e.handle_command(
        t0,
        &Command {
            intensity: Some(70),
            ..Command::default()
        },
    )
    .unwrap();
    assert!(e.snapshot(t0).guard_active);
    e.handle_command(
        t0,
        &Command {
            force: true,
            ..start()
        },
    )
    .unwrap();
    assert_eq!(e.state(), SessionState::Running);
    e.handle_command(t0 + secs(5), &Command::action(Action::Stop))
        .unwrap();

    // Setting the date again (here: clearing it) lifts the lost-date guard.
    e.handle_command(
        t0 + secs(6),
        &Command {
            relaxer_date: Some(None),
            ..Command::default()
        },
    )
    .unwrap();
    assert!(!e.relaxer_date_lost());
    let snapshot = e.snapshot(t0 + secs(6));
    assert!(!snapshot.guard_active);
    assert_eq!(snapshot.guard_reason, None);
    e.handle_command(t0 + secs(7), &start()).unwrap();

    // A start that sets the date in the same command is judged by that date.
    let mut e = engine();
    e.set_today("2026-11-25".parse::<Date>().unwrap());
    e.mark_relaxer_date_lost();
    let soon = Command {
        relaxer_date: Some(Some("2026-11-26".parse().unwrap())),
        ..start()
    };
    let err = e.handle_command(t0, &soon).unwrap_err();
    assert!(err.message.contains("2026-11-26"), "{}", err.message);
    let later = Command {
        relaxer_date: Some(Some("2026-12-20".parse().unwrap())),
        ..start()
    };
    e.handle_command(t0, &later).unwrap();
    assert_eq!(e.snapshot(t0).guard_reason, None);
}

#[test]
fn live_massage_time_counts_the_running_session() {
    let mut e = engine_with(EngineConfig {
        max_session_minutes: 60,
        ..EngineConfig::default()
    });
    let t0 = Instant::now();
    e.handle_command(
        t0,
        &Command {
            minutes: Some(2),
            ..start()
        },
    )
    .unwrap();
    run_until(&mut e, t0 + secs(61));
    assert_eq!(e.snapshot(t0 + ms(61_900)).massage_seconds_live(), 61);
    assert_eq!(
        e.counters().massage_seconds_total,
        0,
        "persisted only at the end"
    );
    e.handle_command(t0 + secs(70), &Command::action(Action::Pause))
        .unwrap();
    assert_eq!(e.snapshot(t0 + secs(100)).massage_seconds_live(), 70);
    e.handle_command(t0 + secs(100), &Command::action(Action::Resume))
        .unwrap();
    run_until(&mut e, t0 + secs(200));
    assert_eq!(e.counters().massage_seconds_total, 120);
    assert_eq!(e.snapshot(t0 + secs(200)).massage_seconds_live(), 120);
}

#[test]
fn a_routine_without_steps_is_an_error_not_a_panic() {
    use massaged::core::{Counters, EngineError};
    let mut routines = library();
    routines[1].steps.clear();
    let err = Engine::new(
        EngineConfig::default(),
        routines,
        settings(),
        Counters::default(),
    )
    .unwrap_err();
    assert!(matches!(err, EngineError::BadRoutine(_)), "{err:?}");
    assert!(err.to_string().contains("'single' has no steps"), "{err}");
    let bad = EngineConfig {
        frame_hz: 201,
        ..EngineConfig::default()
    };
    let err = Engine::new(bad, library(), settings(), Counters::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "engine setting frame_hz: 201 is out of range 1..=200"
    );
    assert!(matches!(
        Engine::new(
            EngineConfig::default(),
            vec![],
            settings(),
            Counters::default()
        ),
        Err(EngineError::NoRoutines)
    ));
}
