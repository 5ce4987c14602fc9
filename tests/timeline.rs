//! The simulated timeline of a built-in routine: a snapshot, and byte-identical reruns.

use massaged::config::Config;
use massaged::core::{Action, Command, Engine, Settings};
use massaged::timeline::{Timeline, simulate};

fn timeline(routine: &str, minutes: u32, frame_hz: u32) -> Timeline {
    let config = Config::default();
    let mut engine_config = config.engine_config().unwrap();
    engine_config.frame_hz = frame_hz;
    let settings = Settings {
        routine: routine.into(),
        intensity: 60,
        minutes,
        heat: false,
        relaxer_date: None,
    };
    let engine = Engine::new(
        engine_config,
        config.routine_library().unwrap(),
        settings,
        Default::default(),
    )
    .unwrap();
    simulate(engine, &Command::action(Action::Start)).unwrap()
}

#[test]
fn temple_circles_timeline_snapshot() {
    insta::assert_snapshot!(timeline("temple-circles", 4, 50).to_json());
}

#[test]
fn full_scalp_table_snapshot() {
    insta::assert_snapshot!(timeline("full-scalp", 15, 50).to_table());
}

#[test]
fn reruns_are_byte_identical() {
    let a = timeline("full-scalp", 20, 50);
    let b = timeline("full-scalp", 20, 50);
    assert_eq!(a.to_json(), b.to_json());
    assert_eq!(a.to_csv(), b.to_csv());
}

#[test]
fn a_longer_session_repeats_the_routine_and_ends_on_time() {
    let t = timeline("temple-circles", 10, 50);
    assert_eq!(t.end.as_secs(), 600);
    let starts_of_step_zero = t
        .events
        .iter()
        .filter(|(_, e)| e.step_index == Some(0))
        .count();
    assert_eq!(
        starts_of_step_zero, 3,
        "4-minute routine in 10 minutes: passes at 0, 4 and 8 min"
    );
    let csv = t.to_csv();
    let last = csv.lines().last().unwrap();
    assert!(
        last.split(',').skip(1).all(|l| l == "0"),
        "ends at zero: {last}"
    );
}

#[test]
fn a_shorter_session_ends_early_with_a_soft_stop() {
    let t = timeline("full-scalp", 2, 50);
    assert_eq!(t.end.as_secs(), 120);
    // The last two seconds ramp down: levels shrink towards zero instead of dropping at once.
    let tail: Vec<u16> = t
        .frames
        .iter()
        .filter(|(at, _)| at.as_millis() >= 118_000)
        .map(|(_, f)| *f.levels.iter().max().unwrap())
        .collect();
    assert!(tail.len() > 20, "frames during the soft stop");
    assert!(
        tail.first().unwrap() > &100 && *tail.last().unwrap() == 0,
        "{tail:?}"
    );
}
