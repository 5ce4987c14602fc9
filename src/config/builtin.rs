//! The built-in routine library, written in the same TOML format as users' own routines.

use crate::core::Routine;
use crate::core::routine::validate_library;
use serde::Deserialize;

/// The text of `config/routines.toml`, compiled in.
pub const BUILTIN_ROUTINES_TOML: &str = include_str!("../../config/routines.toml");

/// A file holding only `[[routines]]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoutineFile {
    routines: Vec<Routine>,
}

/// The built-in routines, in file order.
pub fn builtin_routines() -> Vec<Routine> {
    // Invariant: the embedded file parses and validates; the test
    // `builtin_routines_parse_and_validate` proves it for every build.
    let file: RoutineFile =
        toml::from_str(BUILTIN_ROUTINES_TOML).expect("embedded routines.toml parses");
    debug_assert!(validate_library(&file.routines).is_ok());
    file.routines
}

/// The built-in routine `id`, for tests; panics naming it when there is none.
#[cfg(test)]
pub(crate) fn builtin_routine(id: &str) -> Routine {
    builtin_routines()
        .into_iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("no built-in routine {id}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Technique, Zone};

    #[test]
    fn builtin_routines_parse_and_validate() {
        let file: RoutineFile = toml::from_str(BUILTIN_ROUTINES_TOML).expect("parses");
        validate_library(&file.routines).expect("validates");
        assert_eq!(builtin_routines(), file.routines);
    }

    #[test]
    fn library_has_the_promised_routines_of_sensible_length() {
        let routines = builtin_routines();
        for id in [
            "temple-circles",
            "hairline-circles",
            "hairline-to-crown",
            "neck-and-ears",
            "full-scalp",
            "pre-shampoo",
            "headache-relief",
            "stress-relief",
            "circulation",
        ] {
            assert!(routines.iter().any(|r| r.id == id), "missing {id}");
        }
        for routine in &routines {
            let secs = routine.duration().as_secs();
            assert!(
                (180..=900).contains(&secs),
                "{} lasts {secs} s, outside 3..=15 minutes",
                routine.id
            );
            assert!(
                !routine.description.is_empty(),
                "{} has no description",
                routine.id
            );
        }
    }

    #[test]
    fn full_scalp_is_the_classic_sequence() {
        let full = builtin_routine("full-scalp");
        let zones: Vec<&[Zone]> = full.steps.iter().map(|s| s.zones.as_slice()).collect();
        assert_eq!(
            zones,
            [
                &[Zone::Temples][..],
                &[Zone::Hairline],
                &[Zone::Hairline, Zone::Crown],
                &[Zone::Neck, Zone::Ears],
            ]
        );
        assert_eq!(full.steps[0].label, "Thumb circles at the temples");
        assert_eq!(full.steps[2].technique, Technique::Sweep);
    }

    #[test]
    fn headache_relief_is_gentle_acupressure_on_temples_and_neck() {
        let relief = builtin_routine("headache-relief");
        assert!(relief.steps.iter().all(|s| s.intensity <= 50));
        assert!(relief.steps.iter().any(|s| s.technique == Technique::Press));
        assert!(
            relief
                .steps
                .iter()
                .flat_map(|s| &s.zones)
                .all(|z| matches!(z, Zone::Temples | Zone::Neck))
        );
    }
}
