//! The state file: round trip, corrupt files moved aside, unwritable paths, and crash safety
//! of saves killed with SIGKILL at arbitrary points.

use massaged::core::Date;
use massaged::store::{LoadWarning, SavedState, Store};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn sample() -> SavedState {
    SavedState {
        routine: "neck-and-ears".into(),
        intensity: 70,
        minutes: 15,
        heat: true,
        relaxer_date: Date::new(2026, 12, 1),
        sessions_total: 12,
        massage_seconds_total: 7200,
        ..SavedState::default()
    }
}

#[test]
fn a_saved_state_loads_back_identical() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path().join("sub/state.json"));
    store.save(&sample()).unwrap();
    let (loaded, warning) = store.load();
    assert!(warning.is_none(), "{warning:?}");
    assert_eq!(loaded, sample());
    let text = std::fs::read_to_string(store.path()).unwrap();
    assert!(text.contains("\"relaxer_date\": \"2026-12-01\""), "{text}");
    assert!(text.contains("\"version\": 1"), "{text}");
    let names: Vec<_> = std::fs::read_dir(dir.path().join("sub")).unwrap().collect();
    assert_eq!(names.len(), 1, "no temporary file left behind");
}

#[test]
fn a_missing_file_gives_defaults_without_warning() {
    let dir = tempfile::tempdir().unwrap();
    let (state, warning) = Store::new(dir.path().join("state.json")).load();
    assert_eq!(state, SavedState::default());
    assert!(warning.is_none());
}

#[test]
fn a_corrupt_file_is_moved_aside_and_defaults_are_used() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    std::fs::write(&path, "{\"version\": 1, \"intensity\": ").unwrap();
    let store = Store::new(&path);
    let (state, warning) = store.load();
    assert_eq!(state, SavedState::default());
    let bad = dir.path().join("state.json.bad");
    match warning {
        Some(LoadWarning::MovedAside { ref moved_to, .. }) => assert_eq!(*moved_to, bad),
        other => panic!("expected MovedAside, got {other:?}"),
    }
    assert!(warning.unwrap().to_string().contains("state.json.bad"));
    assert!(!path.exists());
    assert_eq!(
        std::fs::read_to_string(&bad).unwrap(),
        "{\"version\": 1, \"intensity\": "
    );
    // The next save starts a fresh, valid file.
    store.save(&sample()).unwrap();
    assert_eq!(store.load().0, sample());
}

#[test]
fn an_unwritable_location_gives_an_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    // Root ignores permissions; a regular file where a directory should be stops everyone.
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, "").unwrap();
    let store = Store::new(blocker.join("state.json"));
    let err = store.save(&sample()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("not-a-dir"), "{text}");
    assert!(text.contains("store.path"), "{text}");
}

const CHILD_ENV: &str = "MASSAGED_STORE_SAVER";

/// Not a test on its own: the body of the child process that the kill test starts and kills.
/// It saves in a loop, printing the counter of each save once `save` has returned.
#[test]
#[ignore = "child process of saves_killed_at_random_points_always_leave_a_parsable_file"]
fn store_saver_child() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let store = Store::new(path);
    let mut state = sample();
    for n in 1.. {
        state.sessions_total = n;
        state.routine = format!("routine-{}", "x".repeat((n % 50) as usize));
        store.save(&state).unwrap();
        println!("saved {n}");
    }
}

#[test]
fn saves_killed_at_random_points_always_leave_a_parsable_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let exe = std::env::current_exe().unwrap();
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    let mut acknowledged = 0u64;
    for round in 0..50 {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "store_saver_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let wanted = rng.u64(1..20);
        let mut last = 0;
        while last < wanted {
            let line = lines.next().expect("child exited early").unwrap();
            if let Some(n) = line.strip_prefix("saved ") {
                last = n.parse().unwrap();
            }
        }
        // SIGKILL lands somewhere inside one of the following saves.
        child.kill().unwrap();
        child.wait().unwrap();
        let (state, warning) = Store::new(&path).load();
        assert!(warning.is_none(), "round {round}: {warning:?}");
        assert!(
            state.sessions_total >= last,
            "round {round}: saved {last} was acknowledged but the file holds {}",
            state.sessions_total
        );
        acknowledged += last;
    }
    assert!(acknowledged >= 50);
}
