//! Routines: the zones, techniques and steps a session plays.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// An area of the scalp that has its own actuators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Zone {
    /// Thumbs on the temples.
    Temples,
    /// Along the front hairline.
    Hairline,
    /// The centre of the scalp.
    Crown,
    /// Around the ears.
    Ears,
    /// The back of the neck.
    Neck,
}

impl Zone {
    /// Every zone, in the order hairline-to-neck sequences use.
    pub(crate) const ALL: [Zone; 5] = [
        Zone::Temples,
        Zone::Hairline,
        Zone::Crown,
        Zone::Ears,
        Zone::Neck,
    ];

    /// The lower-case name used in config, MQTT and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Zone::Temples => "temples",
            Zone::Hairline => "hairline",
            Zone::Crown => "crown",
            Zone::Ears => "ears",
            Zone::Neck => "neck",
        }
    }

    /// Dense index of the zone, for per-zone arrays.
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How pressure moves within a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Technique {
    /// Pressure rotates around the zone's actuators.
    Circles,
    /// Ramp, hold, release.
    Press,
    /// Slow deep waves, never fully released.
    Knead,
    /// A pressure peak travels across the ordered zones.
    Sweep,
}

impl Technique {
    /// The lower-case name used in config, MQTT and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Technique::Circles => "circles",
            Technique::Press => "press",
            Technique::Knead => "knead",
            Technique::Sweep => "sweep",
        }
    }
}

impl fmt::Display for Technique {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One step of a routine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Human label shown in Home Assistant, e.g. "Thumb circles at the temples".
    pub label: String,
    /// Zones the step works on; for `sweep` the order is the direction of travel.
    pub zones: Vec<Zone>,
    /// The technique.
    pub technique: Technique,
    /// Length of the step in seconds.
    pub seconds: u32,
    /// Relative intensity, percent of the user's level (1..=100).
    #[serde(default = "default_step_intensity")]
    pub intensity: u8,
    /// Cycles per minute (1..=240).
    #[serde(default = "default_tempo")]
    pub tempo: u16,
}

fn default_step_intensity() -> u8 {
    100
}

fn default_tempo() -> u16 {
    30
}

impl Step {
    /// Length of the step.
    pub fn duration(&self) -> Duration {
        Duration::from_secs(u64::from(self.seconds))
    }
}

/// A named, ordered list of steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Routine {
    /// Stable kebab-case id, e.g. `temple-circles`.
    pub id: String,
    /// Display name, e.g. "Temple circles".
    pub name: String,
    /// One-line description.
    #[serde(default)]
    pub description: String,
    /// The steps, played in order.
    #[serde(rename = "steps")]
    pub steps: Vec<Step>,
}

/// Longest allowed step; keeps all time arithmetic far from overflow.
pub(crate) const MAX_STEP_SECONDS: u32 = 3600;
/// Most steps a routine may have.
pub(crate) const MAX_STEPS: usize = 64;
/// Fastest allowed tempo in cycles per minute.
pub(crate) const MAX_TEMPO: u16 = 240;

/// Why a routine is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoutineError {
    /// The id is not kebab-case.
    #[error("routine id '{0}' is not kebab-case (lower-case letters, digits and single dashes)")]
    BadId(String),
    /// The display name is empty.
    #[error("routine '{0}' has an empty name")]
    EmptyName(String),
    /// No steps.
    #[error("routine '{0}' has no steps")]
    NoSteps(String),
    /// Too many steps.
    #[error("routine '{id}' has {count} steps; at most {MAX_STEPS} are allowed")]
    TooManySteps {
        /// Routine id.
        id: String,
        /// Number of steps found.
        count: usize,
    },
    /// A step is wrong.
    #[error("routine '{id}' step {index} ('{label}'): {problem}")]
    BadStep {
        /// Routine id.
        id: String,
        /// Zero-based step index.
        index: usize,
        /// The step's label.
        label: String,
        /// What is wrong.
        problem: String,
    },
    /// Two routines share an id.
    #[error("duplicate routine id '{0}'")]
    DuplicateId(String),
    /// Two routines share a display name (names select routines too).
    #[error("duplicate routine name '{0}'")]
    DuplicateName(String),
}

/// True when `s` is non-empty kebab-case: `[a-z0-9]+(-[a-z0-9]+)*`.
pub(crate) fn is_kebab_case(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl Routine {
    /// Total length of one pass through the steps.
    pub fn duration(&self) -> Duration {
        self.steps.iter().map(Step::duration).sum()
    }

    /// Checks every rule a routine must satisfy.
    pub(crate) fn validate(&self) -> Result<(), RoutineError> {
        if !is_kebab_case(&self.id) {
            return Err(RoutineError::BadId(self.id.clone()));
        }
        if self.name.trim().is_empty() {
            return Err(RoutineError::EmptyName(self.id.clone()));
        }
        if self.steps.is_empty() {
            return Err(RoutineError::NoSteps(self.id.clone()));
        }
        if self.steps.len() > MAX_STEPS {
            return Err(RoutineError::TooManySteps {
                id: self.id.clone(),
                count: self.steps.len(),
            });
        }
        for (index, step) in self.steps.iter().enumerate() {
            if let Some(problem) = step_problem(step) {
                return Err(RoutineError::BadStep {
                    id: self.id.clone(),
                    index,
                    label: step.label.clone(),
                    problem,
                });
            }
        }
        Ok(())
    }
}

fn step_problem(step: &Step) -> Option<String> {
    if step.label.trim().is_empty() {
        return Some("label is empty".into());
    }
    if step.zones.is_empty() {
        return Some("zones is empty".into());
    }
    let mut seen = Vec::with_capacity(step.zones.len());
    for zone in &step.zones {
        if seen.contains(zone) {
            return Some(format!("zone '{zone}' is listed twice"));
        }
        seen.push(*zone);
    }
    if step.seconds == 0 || step.seconds > MAX_STEP_SECONDS {
        return Some(format!(
            "seconds = {} is out of range 1..={MAX_STEP_SECONDS}",
            step.seconds
        ));
    }
    if step.intensity == 0 || step.intensity > 100 {
        return Some(format!(
            "intensity = {} is out of range 1..=100",
            step.intensity
        ));
    }
    if step.tempo == 0 || step.tempo > MAX_TEMPO {
        return Some(format!(
            "tempo = {} is out of range 1..={MAX_TEMPO}",
            step.tempo
        ));
    }
    None
}

/// Finds a routine by id, or by display name ignoring case; surrounding spaces are ignored.
pub fn find_routine(routines: &[Routine], name: &str) -> Option<usize> {
    let name = name.trim();
    routines.iter().position(|r| r.id == name).or_else(|| {
        routines
            .iter()
            .position(|r| r.name.eq_ignore_ascii_case(name))
    })
}

/// Checks a whole library: each routine valid, ids and names unique.
pub(crate) fn validate_library(routines: &[Routine]) -> Result<(), RoutineError> {
    for (i, routine) in routines.iter().enumerate() {
        routine.validate()?;
        for other in &routines[..i] {
            if other.id == routine.id {
                return Err(RoutineError::DuplicateId(routine.id.clone()));
            }
            if other.name.eq_ignore_ascii_case(&routine.name) {
                return Err(RoutineError::DuplicateName(routine.name.clone()));
            }
        }
    }
    Ok(())
}
